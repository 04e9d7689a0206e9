//! `fieldsync unlock` and `fieldsync lock`: the passphrase once per working session.
//!
//! `unlock` opens the store with the passphrase and starts an agent: a small background
//! `fieldsync` process that holds the store key in memory and hands it, over a Unix socket
//! only this user can reach, to later commands on the same home, until the time given runs
//! out or `fieldsync lock` ends it. Those commands then skip the passphrase and its key
//! derivation (PBKDF2, about 0.3 s). The key never touches the disk.
//!
//! The socket lives in `$XDG_RUNTIME_DIR/fieldsync/` (or `/tmp/fieldsync-UID/`), a directory
//! that must belong to the user and be closed to everyone else, named after the home, so each
//! home has its own agent. The agent answers only requests naming its store's id.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use fieldsync_client::exit::Failure;
use fieldsync_client::store::{Store, StoreError};
use fieldsync_protocol::crypto::SecretKey;

use super::Settings;

/// Unlock the store for a while: later commands on this home skip the passphrase.
#[derive(Debug, clap::Args)]
pub struct UnlockArgs {
    /// How long the unlock lasts: a number and a unit (d, h, m or s); `unlock_for` in
    /// config.toml, else 8h.
    #[arg(long = "for", value_name = "PERIOD", value_parser = super::parse_seconds)]
    period: Option<u64>,
}

/// Lock the store again: end this home's unlock agent, so the next command asks for the
/// passphrase.
#[derive(Debug, clap::Args)]
pub struct LockArgs {}

/// The agent itself, started by `unlock` (not for people to run).
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    #[arg(long)]
    socket: PathBuf,
    #[arg(long)]
    store_id: String,
    #[arg(long)]
    seconds: u64,
}

pub fn unlock(args: UnlockArgs, s: &Settings) -> anyhow::Result<u8> {
    let period = s.config.unlock_for(args.period)?;
    let store = s.open_store_with_passphrase()?;
    let socket = socket_path(&s.home, true)?;
    // A running agent is replaced: the new unlock's period counts from now.
    let _ = ask(&socket, "lock");
    let _ = std::fs::remove_file(&socket);
    let exe = std::env::current_exe().context("cannot find the fieldsync program to start")?;
    let mut agent = std::process::Command::new(exe);
    agent
        .args(["agent", "--socket"])
        .arg(&socket)
        .args(["--store-id", store.id(), "--seconds"])
        .arg(period.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        // Its own process group: closing the terminal or Ctrl-C here does not end it.
        .env_remove("FIELDSYNC_PASSPHRASE");
    std::os::unix::process::CommandExt::process_group(&mut agent, 0);
    let mut child = agent.spawn().context("cannot start the unlock agent")?;
    {
        let mut stdin = child.stdin.take().context("the agent has no input")?;
        writeln!(stdin, "{}", to_hex(store.key().expose_bytes()))?;
    }
    // The agent says `ready` once its socket listens.
    let mut ready = String::new();
    BufReader::new(child.stdout.take().context("the agent has no output")?)
        .read_line(&mut ready)?;
    if ready.trim() != "ready" {
        let _ = child.kill();
        return Err(anyhow::anyhow!(
            "the unlock agent did not start; commands keep asking for the passphrase"
        ));
    }
    let minutes = period.div_ceil(60);
    if s.json {
        s.print_json(&serde_json::json!({"unlocked": true, "seconds": period}))?;
    } else {
        outln!(
            "unlocked for {}; `fieldsync lock` locks it sooner",
            if minutes >= 120 {
                format!("{} hours", minutes.div_ceil(60))
            } else {
                format!("{minutes} minutes")
            }
        );
    }
    Ok(0)
}

pub fn lock(_args: LockArgs, s: &Settings) -> anyhow::Result<u8> {
    // No directory (never unlocked here) or one not safe to use: no agent to end.
    let socket = socket_path(&s.home, false).ok();
    let was = socket.as_ref().is_some_and(|p| ask(p, "lock").is_ok());
    if let Some(socket) = &socket {
        let _ = std::fs::remove_file(socket);
    }
    if s.json {
        s.print_json(&serde_json::json!({"locked": true, "was_unlocked": was}))?;
    } else if was {
        outln!("locked; the next command asks for the passphrase");
    } else {
        outln!("was not unlocked");
    }
    Ok(0)
}

/// Run the agent: read the key from stdin, serve it until the period ends or `lock`.
pub fn agent(args: AgentArgs) -> anyhow::Result<u8> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let key = from_hex(line.trim()).context("the agent was given no key")?;
    let listener = UnixListener::bind(&args.socket)
        .with_context(|| format!("cannot listen on {}", args.socket.display()))?;
    std::fs::set_permissions(&args.socket, std::fs::Permissions::from_mode(0o600))?;
    println!("ready");
    std::io::stdout().flush()?;
    let socket = args.socket.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(args.seconds));
        let _ = std::fs::remove_file(&socket);
        std::process::exit(0);
    });
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut request = String::new();
        if BufReader::new(&stream).read_line(&mut request).is_err() {
            continue;
        }
        match request.trim().split_once(' ') {
            Some(("key", id)) if id == args.store_id => {
                let _ = writeln!(stream, "{}", to_hex(key.expose_bytes()));
            }
            _ if request.trim() == "lock" => {
                let _ = writeln!(stream, "locked");
                let _ = std::fs::remove_file(&args.socket);
                return Ok(0);
            }
            _ => {
                let _ = writeln!(stream, "no");
            }
        }
    }
    Ok(0)
}

/// The key an agent holds for the store in `home`, if one runs.
pub fn agent_key(home: &Path) -> Option<SecretKey> {
    let id = Store::id_of(home).ok()?;
    let socket = socket_path(home, false).ok()?;
    let answer = ask(&socket, &format!("key {id}")).ok()?;
    from_hex(answer.trim())
}

/// Send one request line to the agent at `socket` and read its answer line.
fn ask(socket: &Path, request: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    writeln!(stream, "{request}")?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    Ok(answer)
}

/// Where the agent of `home` listens. The directory is created closed to everyone else, and
/// refused if it exists open to others or owned by someone else (another user could read keys
/// from a socket they placed there).
/// Only `unlock` creates the directory (`create`); looking for an agent never does.
fn socket_path(home: &Path, create: bool) -> anyhow::Result<PathBuf> {
    let owner = std::fs::metadata(home)
        .map_err(|_| StoreError::Missing(home.to_owned()))?
        .uid();
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(run) => PathBuf::from(run).join("fieldsync"),
        None => std::env::temp_dir().join(format!("fieldsync-{owner}")),
    };
    if !dir.exists() && create {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != owner || meta.mode() & 0o077 != 0 {
        return Err(Failure::Invalid(format!(
            "{} must be a directory of yours that nobody else can open; remove it and unlock again",
            dir.display()
        ))
        .into());
    }
    let home = std::fs::canonicalize(home).unwrap_or_else(|_| home.to_owned());
    let digest = ring::digest::digest(&ring::digest::SHA256, home.as_os_str().as_encoded_bytes());
    Ok(dir.join(format!("{}.sock", to_hex(&digest.as_ref()[..12]))))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<SecretKey> {
    if text.len() != 2 * SecretKey::LEN || !text.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; SecretKey::LEN];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(SecretKey::from_bytes(bytes))
}
