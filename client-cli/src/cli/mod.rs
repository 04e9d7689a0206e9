//! The `fieldsync` command tree: global options, the settings they resolve to, one module
//! per subcommand, and the one place where errors become messages and exit codes.

#[macro_use]
mod out;

mod audit;
mod collect;
mod collected;
mod config;
mod enroll;
mod enumerator;
mod export;
mod export_media;
mod import;
mod invite;
mod link;
mod login;
mod logout;
mod media;
mod member;
mod org;
mod response;
mod status;
mod subject;
mod survey;
mod sync;
mod unlock;
mod whoami;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fieldsync_client::client::ApiClient;
use fieldsync_client::exit::{self, Failure};
use fieldsync_client::store::{self, Store};
use serde::Serialize;

const LONG_ABOUT: &str = "fieldsync: collect survey responses offline and sync them with a \
fieldsync server.

Enumerators enroll a device, collect interviews with or without a connection and sync when \
back in range; coordinators and ops log in to publish surveys, manage members, review, \
import and export. Everything typed is kept in an encrypted store in --home, unlocked with \
the passphrase from FIELDSYNC_PASSPHRASE (or typed on a terminal; `fieldsync unlock` keeps it unlocked for a working session, `fieldsync lock` ends that). FIELDSYNC_HOME and FIELDSYNC_SERVER stand in for --home and --server. With --json, errors are one JSON object on stderr: {\"error\": message, \"code\": name of the exit code, \"exit\": number}.

exit codes:
  0  ok
  1  other failure
  2  usage error
  3  server unreachable, busy or rate limited (nothing is lost; try again later)
  4  authentication or permission refused (log in or enroll again)
  5  wrong or missing passphrase (set FIELDSYNC_PASSPHRASE)
  6  invalid input (bad file, invalid responses or rows, bad survey, closed survey)
  7  not found (unknown survey, response or member)
  141  output closed before it was all written (`| head`); nothing else is said";

/// The fieldsync command line.
#[derive(Debug, Parser)]
#[command(name = "fieldsync", version, about, long_about = LONG_ABOUT)]
pub struct Cli {
    /// The client home holding this device's encrypted store.
    #[arg(long, global = true, env = "FIELDSYNC_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Machine-readable output: one JSON document on stdout (errors still go to stderr).
    #[arg(long, global = true)]
    json: bool,
    /// Trust the certificate authority in this PEM file for the server's certificate, besides
    /// the system's (a server with a private CA). Also `ca_cert` in config.toml.
    #[arg(long, global = true, env = "FIELDSYNC_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Enroll(enroll::Args),
    Login(login::Args),
    Logout(logout::Args),
    Whoami(whoami::Args),
    #[command(subcommand)]
    Member(member::Command),
    #[command(subcommand)]
    Enumerator(enumerator::Command),
    #[command(subcommand)]
    Link(link::Command),
    Invite(invite::Args),
    #[command(subcommand)]
    Org(org::Command),
    #[command(subcommand)]
    Subject(subject::Command),
    #[command(subcommand)]
    Audit(audit::Command),
    #[command(subcommand)]
    Survey(survey::Command),
    Collect(collect::Args),
    #[command(subcommand)]
    Response(response::Command),
    #[command(subcommand)]
    Media(media::Command),
    Sync(sync::Args),
    Status(status::Args),
    Import(import::Args),
    Export(export::Args),
    Unlock(unlock::UnlockArgs),
    Lock(unlock::LockArgs),
    /// Print a completion script for a shell: `fieldsync completions bash >
    /// ~/.local/share/bash-completion/completions/fieldsync` (zsh: a file `_fieldsync` in a
    /// directory of `$fpath`; fish: `~/.config/fish/completions/fieldsync.fish`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    #[command(hide = true)]
    Agent(unlock::AgentArgs),
}

/// The passphrase, never printed.
pub struct Passphrase(String);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// What every command needs, resolved from flags and the environment.
#[derive(Debug)]
pub struct Settings {
    pub home: PathBuf,
    pub json: bool,
    passphrase: Option<Passphrase>,
    /// `$FIELDSYNC_HOME/config.toml`.
    pub config: config::Config,
}

impl Settings {
    fn from_cli(cli: &Cli) -> Result<Settings, Failure> {
        let home = cli
            .home
            .clone()
            .unwrap_or_else(fieldsync_client::default_home);
        let config = config::Config::load(&home)?;
        let ca_cert = cli.ca_cert.clone().or_else(|| config.ca_cert.clone());
        if let Some(pem) = ca_cert {
            fieldsync_client::client::trust_ca_file(&pem)
                .map_err(|e| Failure::Invalid(format!("--ca-cert: {e}")))?;
        }
        Ok(Settings {
            json: cli.json || config.json.unwrap_or(false),
            home,
            config,
            // An empty variable counts as not set: it is a forgotten value, not a passphrase.
            passphrase: std::env::var("FIELDSYNC_PASSPHRASE")
                .ok()
                .filter(|p| !p.is_empty())
                .map(Passphrase),
        })
    }

    fn passphrase(&self, creating: bool) -> anyhow::Result<String> {
        if let Some(p) = &self.passphrase {
            return Ok(p.0.clone());
        }
        if !std::io::stdin().is_terminal() {
            return Err(Failure::Passphrase(
                "no passphrase given and no terminal to ask on; set FIELDSYNC_PASSPHRASE".into(),
            )
            .into());
        }
        let first = rpassword::prompt_password(if creating {
            "choose a passphrase for the new store: "
        } else {
            "passphrase: "
        })
        .context("cannot read the passphrase from the terminal; set FIELDSYNC_PASSPHRASE")?;
        if creating {
            let again = rpassword::prompt_password("type it again: ").context(
                "cannot read the passphrase from the terminal; set FIELDSYNC_PASSPHRASE",
            )?;
            if again != first {
                return Err(Failure::Passphrase(
                    "the two passphrases differ; run the command again".into(),
                )
                .into());
            }
        }
        Ok(first)
    }

    /// Open and unlock the store in the client home: with the key of a running unlock agent
    /// when there is one (and no FIELDSYNC_PASSPHRASE), else with the passphrase.
    pub fn open_store(&self) -> anyhow::Result<Store> {
        if !store::exists(&self.home) {
            return Err(store::StoreError::Missing(self.home.clone()).into());
        }
        if self.passphrase.is_none()
            && let Some(key) = unlock::agent_key(&self.home)
            && let Ok(store) = Store::open_unlocked(&self.home, store::Unlock::Key(key))
        {
            return Ok(store);
        }
        self.open_store_with_passphrase()
    }

    /// Open the store with the passphrase; one typed wrong on a terminal is asked again (three
    /// tries in all).
    pub fn open_store_with_passphrase(&self) -> anyhow::Result<Store> {
        if !store::exists(&self.home) {
            return Err(store::StoreError::Missing(self.home.clone()).into());
        }
        let mut tries = 1;
        loop {
            let pass = self.passphrase(false)?;
            match Store::open(&self.home, &pass) {
                Err(store::StoreError::Crypto(
                    fieldsync_protocol::crypto::CryptoError::WrongPassphrase,
                )) if self.passphrase.is_none() && tries < 3 => {
                    eprintln!("wrong passphrase; try again");
                    tries += 1;
                }
                opened => return Ok(opened?),
            }
        }
    }

    /// Open the store, or create it when the home has none yet.
    pub fn open_or_create_store(&self) -> anyhow::Result<Store> {
        if store::exists(&self.home) {
            return self.open_store();
        }
        let pass = self.passphrase(true)?;
        Ok(Store::create(&self.home, &pass)?)
    }

    /// Print one JSON document on stdout.
    pub fn print_json<T: Serialize + ?Sized>(&self, value: &T) -> anyhow::Result<()> {
        let mut out = out::stdout();
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
        Ok(())
    }
}

/// A client for the server this store is logged in to, with its token.
pub fn api(store: &Store) -> anyhow::Result<ApiClient> {
    let account = store.require_account()?;
    Ok(ApiClient::new(
        &account.server,
        Some(account.token.clone()),
    )?)
}

/// Whether the account may manage the organisation (not an enumerator's device).
pub fn is_manager(store: &Store) -> bool {
    store
        .account()
        .is_some_and(|a| a.role != fieldsync_protocol::api::Role::Enumerator)
}

/// A progress bar on stderr, drawn only on a terminal.
pub fn progress_bar(len: Option<u64>) -> indicatif::ProgressBar {
    let bar = match len {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::no_length(),
    };
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// Run the command line and turn the outcome into an exit code.
pub fn main() -> ExitCode {
    // Before any thread exists (see the function).
    fieldsync_client::store::init_local_offset();
    let cli = Cli::parse();
    let settings = match Settings::from_cli(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::INVALID);
        }
    };
    match run(cli.command, &settings) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let _ = std::io::stdout().flush();
            let code = exit::code_for(e.as_ref());
            if settings.json {
                // Scripts read errors as they read results: one JSON object, on stderr.
                eprintln!(
                    "{}",
                    serde_json::json!({
                        "error": format!("{e:#}"),
                        "code": exit::name_of(code),
                        "exit": code,
                    })
                );
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(code)
        }
    }
}

fn run(command: Command, s: &Settings) -> anyhow::Result<u8> {
    match command {
        Command::Enroll(a) => enroll::run(a, s),
        Command::Login(a) => login::run(a, s),
        Command::Logout(a) => logout::run(a, s),
        Command::Whoami(a) => whoami::run(a, s),
        Command::Member(c) => member::run(c, s),
        Command::Enumerator(c) => enumerator::run(c, s),
        Command::Link(c) => link::run(c, s),
        Command::Invite(a) => invite::run(a, s),
        Command::Org(c) => org::run(c, s),
        Command::Subject(c) => subject::run(c, s),
        Command::Audit(c) => audit::run(c, s),
        Command::Survey(c) => survey::run(c, s),
        Command::Collect(a) => collect::run(a, s),
        Command::Response(c) => response::run(c, s),
        Command::Media(c) => media::run(c, s),
        Command::Sync(a) => sync::run(a, s),
        Command::Status(a) => status::run(a, s),
        Command::Import(a) => import::run(a, s),
        Command::Export(a) => export::run(a, s),
        Command::Completions { shell } => {
            let mut out = out::stdout();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "fieldsync",
                &mut out,
            );
            out.flush()?;
            Ok(0)
        }
        Command::Unlock(a) => unlock::unlock(a, s),
        Command::Lock(a) => unlock::lock(a, s),
        Command::Agent(a) => unlock::agent(a),
    }
}

/// A period written as a number and a unit (`d`, `h`, `m` or `s`: `365d`, `8h`), in seconds;
/// at least one second.
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bad = || {
        format!("{text:?} is not a period; write a number and a unit (d, h, m or s), such as 8h")
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let per = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(format!("{text:?} is no time at all; give at least 1s"));
    }
    Ok(n.saturating_mul(per))
}

/// Format milliseconds since the epoch as an RFC 3339 UTC time.
pub fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}
