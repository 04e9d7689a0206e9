//! Build the binaries under test once per test process and find them.
//!
//! The e2e crate does not own `fieldsync-server`, `fieldsync` or `fieldsync-bench`, so cargo does
//! not build them for `cargo nextest run -p fieldsync-e2e`. We run `cargo build --bins` for those packages
//! with the profile this test was built with, and take the executables' paths from cargo's
//! own JSON messages, so a custom target directory or profile needs no guessing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Paths of the binaries under test.
#[derive(Debug)]
pub struct Binaries {
    pub server: PathBuf,
    pub client: PathBuf,
    /// The benchmark harness, run in its short mode so it cannot rot.
    pub bench: PathBuf,
}

impl Binaries {
    /// The directory holding both binaries (for `PATH`).
    pub fn dir(&self) -> &Path {
        self.client
            .parent()
            .expect("the client binary has a parent directory")
    }
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives inside the workspace")
        .to_path_buf()
}

/// A file under `fixtures/`.
pub fn fixture(relative: &str) -> PathBuf {
    let path = workspace_root().join("fixtures").join(relative);
    assert!(path.exists(), "missing fixture {}", path.display());
    path
}

/// Build (once per process) and return the binaries under test.
pub fn binaries() -> &'static Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    BINS.get_or_init(build)
}

fn build() -> Binaries {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args([
            "build",
            "--bins",
            "-p",
            "fieldsync-server",
            "-p",
            "fieldsync-client",
            "-p",
            "fieldsync-bench",
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let started = std::time::Instant::now();
    let out = cmd
        .output()
        .expect("cannot run cargo to build the binaries");
    eprintln!(
        "[e2e] cargo build of the binaries took {:.1?}",
        started.elapsed()
    );
    assert!(
        out.status.success(),
        "building fieldsync-server and fieldsync failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut server = None;
    let mut client = None;
    let mut bench = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        match msg["target"]["name"].as_str() {
            Some("fieldsync-server") => server = Some(PathBuf::from(exe)),
            Some("fieldsync") => client = Some(PathBuf::from(exe)),
            Some("fieldsync-bench") => bench = Some(PathBuf::from(exe)),
            _ => {}
        }
    }
    let bins = Binaries {
        server: server.expect("cargo built no fieldsync-server binary"),
        client: client.expect("cargo built no fieldsync binary"),
        bench: bench.expect("cargo built no fieldsync-bench binary"),
    };
    assert!(bins.server.exists() && bins.client.exists() && bins.bench.exists());
    bins
}
