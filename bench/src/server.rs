//! Running the real `fieldsync-server` binary for a benchmark: its own temporary data
//! directory, port 0 on loopback, and its peak memory read from /proc.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};

/// A running server.
pub struct Server {
    child: Child,
    pub url: String,
    pub data: PathBuf,
}

/// The `fieldsync-server` binary next to this one (same target directory and profile).
pub fn server_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me.parent().context("bench binary has no directory")?;
    let path = dir.join("fieldsync-server");
    if !path.exists() {
        bail!(
            "{} is missing; build it first: cargo build --release -p fieldsync-server -p fieldsync-bench",
            path.display()
        );
    }
    Ok(path)
}

/// Create an organisation in `data` (or on the database `flags` name) and return its
/// one-time admin token.
pub fn create_org(data: &Path, flags: &[String]) -> anyhow::Result<String> {
    let out = Command::new(server_binary()?)
        .args([
            "admin",
            "create-org",
            "--name",
            "Bench Org",
            "--json",
            "--data",
        ])
        .arg(data)
        .args(flags)
        .output()?;
    if !out.status.success() {
        bail!(
            "create-org failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    v["admin_token"]
        .as_str()
        .map(str::to_owned)
        .context("create-org printed no admin_token")
}

impl Server {
    /// Start the server on `data` and wait until it listens.
    pub fn start(data: &Path, extra: &[String]) -> anyhow::Result<Server> {
        let mut child = Command::new(server_binary()?)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env("FIELDSYNC_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("no server stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .context("server did not start listening within 30 s")?;
        Ok(Server {
            child,
            url,
            data: data.to_owned(),
        })
    }

    /// Peak resident memory of the server process, and the largest of its worker processes,
    /// in bytes.
    pub fn peak_memory(&self) -> (u64, u64) {
        let pid = self.child.id();
        let main = vm_hwm(pid).unwrap_or(0);
        let workers = children(pid)
            .into_iter()
            .filter_map(vm_hwm)
            .max()
            .unwrap_or(0);
        (main, workers)
    }

    /// Bytes the server's data directory occupies (database, WAL, key).
    pub fn disk_bytes(&self) -> u64 {
        dir_bytes(&self.data)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident set size of a process (VmHWM), bytes.
pub fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Reset this process's peak RSS so the next scenario measures its own peak.
pub fn reset_own_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    // The command name is in parentheses and may hold spaces; fields follow it.
                    let rest = s.rsplit_once(')')?.1;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Total size of the files under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A fresh database on the PostgreSQL server at `base`; its URL.
pub fn fresh_postgres(base: &str) -> anyhow::Result<String> {
    let name = format!("fieldsync_bench_{}", uuid::Uuid::new_v4().simple());
    let create = format!("CREATE DATABASE {name}");
    postgres(base, |client| async move {
        client.batch_execute(&create).await?;
        Ok(())
    })?;
    let cut = base.rfind('/').context("a database URL has a path")?;
    Ok(format!("{}/{name}", &base[..cut]))
}

/// Bytes the PostgreSQL database at `url` occupies.
pub fn postgres_bytes(url: &str) -> anyhow::Result<u64> {
    postgres(url, |client| async move {
        let n: i64 = client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?
            .get(0);
        Ok(n as u64)
    })
}

fn postgres<T, F, Fut>(url: &str, f: F) -> anyhow::Result<T>
where
    F: FnOnce(tokio_postgres::Client) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        let task = tokio::spawn(connection);
        let out = f(client).await;
        let _ = task.await;
        out
    })
}
