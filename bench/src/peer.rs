//! `--peer pouchdb`: the same workload through PouchDB replicating to express-pouchdb, run in
//! the same process tree on the same machine right after ours, so every figure can be read as
//! a ratio measured in one run. The peer is installed from the npm registry into a cache
//! directory on first use (pinned versions); its script (`bench/peer/pouchdb.js`) is built
//! into this binary and written beside the installed modules.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::scenarios::{Row, round};

const SCRIPT: &str = include_str!("../peer/pouchdb.js");
/// The versions the issue names: PouchDB 9 to express-pouchdb 4.2, LevelDB on both sides.
const PACKAGE: &str = r#"{
  "name": "fieldsync-bench-peer",
  "private": true,
  "description": "PouchDB and express-pouchdb for fieldsync-bench --peer pouchdb",
  "dependencies": { "pouchdb": "9.0.0", "express-pouchdb": "4.2.0", "express": "4.21.2" }
}
"#;

/// What the peer's client reported.
#[derive(Deserialize)]
pub(crate) struct PeerRun {
    pub n: usize,
    pub local_write_seconds: f64,
    pub push_seconds: f64,
    pub pushed: usize,
    pub noop_seconds: f64,
    pub noop_written: usize,
    pub pull_seconds: f64,
    pub pulled: usize,
}

impl PeerRun {
    pub fn local_write_per_sec(&self) -> f64 {
        self.n as f64 / self.local_write_seconds.max(1e-9)
    }
    pub fn push_per_sec(&self) -> f64 {
        self.pushed as f64 / self.push_seconds.max(1e-9)
    }
    pub fn pull_per_sec(&self) -> f64 {
        self.pulled as f64 / self.pull_seconds.max(1e-9)
    }
}

/// Where the peer is installed: `$FIELDSYNC_BENCH_CACHE`, else `$XDG_CACHE_HOME` or
/// `~/.cache`, under `fieldsync-bench/pouchdb`.
fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FIELDSYNC_BENCH_CACHE") {
        return Ok(PathBuf::from(dir).join("pouchdb"));
    }
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache"),
    };
    Ok(base.join("fieldsync-bench").join("pouchdb"))
}

/// Install the peer (once: again only when the pinned versions change) and write its script.
fn install() -> anyhow::Result<PathBuf> {
    let dir = cache_dir()?;
    std::fs::create_dir_all(&dir)?;
    let package = dir.join("package.json");
    let current = std::fs::read_to_string(&package).unwrap_or_default();
    if current != PACKAGE || !dir.join("node_modules/pouchdb").exists() {
        std::fs::write(&package, PACKAGE)?;
        eprintln!(
            "fieldsync-bench: installing PouchDB 9 and express-pouchdb 4.2 into {} (once)",
            dir.display()
        );
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .status()
            .context("running npm (the peer needs Node.js and npm on PATH)")?;
        if !status.success() {
            bail!(
                "npm install in {} failed ({status}); the peer needs the npm registry",
                dir.display()
            );
        }
    }
    let script = dir.join("pouchdb.js");
    std::fs::write(&script, SCRIPT)?;
    Ok(script)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run the peer over the given answers (one JSON object each) in `work`.
pub(crate) fn run(
    work: &Path,
    answers: impl Iterator<Item = serde_json::Value>,
) -> anyhow::Result<PeerRun> {
    let script = install()?;
    std::fs::create_dir_all(work)?;
    let docs = work.join("answers.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&docs)?);
    for a in answers {
        serde_json::to_writer(&mut out, &a)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    drop(out);

    let mut server = Killed(
        Command::new("node")
            .arg(&script)
            .arg("server")
            .arg(work.join("server"))
            .stdout(Stdio::piped())
            .spawn()
            .context("starting node (the peer needs Node.js on PATH)")?,
    );
    let stdout = server
        .0
        .stdout
        .take()
        .context("peer server has no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let port: serde_json::Value =
        serde_json::from_str(&line).with_context(|| format!("peer server said {line:?}"))?;
    let port = port["port"]
        .as_u64()
        .context("peer server printed no port")?;
    let out = Command::new("node")
        .arg(&script)
        .arg("client")
        .arg(work.join("client"))
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(&docs)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("the PouchDB peer failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().context("the peer printed nothing")?;
    let run: PeerRun = serde_json::from_str(last)?;
    Ok(run)
}

/// The peer's figures as a row, and our figures over theirs as another.
pub(crate) fn rows(peer: &PeerRun, ours: &Ours, ok: &mut bool) -> [Row; 2] {
    crate::scenarios::check(ok, peer.pushed == peer.n, "the peer pushed every document");
    crate::scenarios::check(ok, peer.pulled == peer.n, "the peer pulled every document");
    crate::scenarios::check(
        ok,
        peer.noop_written == 0,
        "the peer's no-op replication wrote nothing",
    );
    let mut theirs = Row::new("peer_pouchdb", peer.n);
    theirs
        .set("local_write_per_sec", round(peer.local_write_per_sec()))
        .set("push_per_sec", round(peer.push_per_sec()))
        .set("pull_per_sec", round(peer.pull_per_sec()))
        .set("noop_ms", round(peer.noop_seconds * 1000.0));
    let ratio = |a: f64, b: f64| (a / b.max(1e-9) * 100.0).round() / 100.0;
    let mut vs = Row::new("versus_peer", peer.n);
    vs.set(
        "import_ratio",
        ratio(ours.import_per_sec, peer.local_write_per_sec()),
    )
    .set("push_ratio", ratio(ours.push_per_sec, peer.push_per_sec()))
    .set("pull_ratio", ratio(ours.pull_per_sec, peer.pull_per_sec()))
    .set(
        "noop_ratio",
        ratio(peer.noop_seconds * 1000.0, ours.noop_ms),
    );
    [theirs, vs]
}

/// Our figures the ratios are taken of.
pub(crate) struct Ours {
    pub import_per_sec: f64,
    pub push_per_sec: f64,
    pub pull_per_sec: f64,
    pub noop_ms: f64,
}
