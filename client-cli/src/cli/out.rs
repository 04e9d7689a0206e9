//! Standard output for every command. When its reader goes away (`fieldsync … | head -1`),
//! the command ends at once and quietly, with the status a shell reports for a process that
//! SIGPIPE ended, as other Unix tools do; not with a panic, and not with an error message for
//! output nobody reads any more. The signal itself stays ignored (Rust's default), so a
//! server that drops a connection is still an error the sync handles and retries.
//!
//! Commands print with [`outln!`] and write through [`stdout`]; a failure other
//! than a closed reader (a full disk behind a redirect) ends the command with a message.

use std::io::{self, Write};

/// Standard output, locked, ending the command as described above when it cannot be written.
pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

pub struct Stdout(io::StdoutLock<'static>);

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(failed)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(failed)
    }
}

/// A closed reader ends the process here; any other error goes back to the command.
fn failed(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(i32::from(fieldsync_client::exit::CLOSED));
    }
    e
}

/// Write formatted text to [`stdout`]; an error other than a closed reader ends the command
/// with a message (`println!` would panic).
pub fn print(args: std::fmt::Arguments<'_>) {
    if let Err(e) = stdout().write_fmt(args) {
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(i32::from(fieldsync_client::exit::FAILURE));
    }
}

/// `println!` for commands (see the module).
macro_rules! outln {
    () => {
        $crate::cli::out::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}
