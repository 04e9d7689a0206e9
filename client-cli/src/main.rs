//! The `fieldsync` binary: the command-line interface over the client core library. All
//! logic lives in `fieldsync_client`; `cli/` is interface and glue.
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
