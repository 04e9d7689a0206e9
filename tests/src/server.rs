//! A real `fieldsync-server serve` on 127.0.0.1, and the offline `admin` commands.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::bins::binaries;
use crate::process::{self, Output};

/// How long a server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a graceful stop may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running (or stopped) server on one data directory. Dropping it kills the process.
#[derive(Debug)]
pub struct Server {
    program: PathBuf,
    child: Option<Child>,
    data: PathBuf,
    log: PathBuf,
    extra: Vec<String>,
    addr: SocketAddr,
    /// `http` or `https` (with `--tls-cert`), as the server said it listens.
    scheme: String,
}

impl Server {
    /// Start `fieldsync-server serve --data DIR --listen 127.0.0.1:0 [extra]`. Its stderr (the
    /// logs) is appended to `DIR.log`, beside the data directory.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Server {
        Server::start_program(&binaries().server, data_dir, extra_args)
    }

    /// [`Server::start`] with another copy of the server program (one a test can take away,
    /// so that the workers it starts cannot start).
    pub fn start_program(program: &Path, data_dir: &Path, extra_args: &[&str]) -> Server {
        let mut log = data_dir.as_os_str().to_owned();
        log.push(".log");
        let mut server = Server {
            program: program.to_path_buf(),
            child: None,
            data: data_dir.to_path_buf(),
            log: PathBuf::from(log),
            extra: extra_args.iter().map(|s| s.to_string()).collect(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            scheme: "http".into(),
        };
        server.launch();
        server
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (`https://` when it serves TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Send the server SIGHUP (it reads its TLS certificate and key again).
    pub fn hang_up(&self) {
        let pid = self.child.as_ref().expect("the server is running").id();
        assert!(signal(pid, "HUP"), "kill -HUP {pid}");
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The file the server's stderr goes to, across restarts.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the server has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kill the server with SIGKILL, as a power cut would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop the server with SIGTERM and wait for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if !signal(child.id(), "TERM") {
            let _ = child.kill();
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "fieldsync-server did not stop within {STOP_TIMEOUT:?} of SIGTERM; logs:\n{}",
                        self.logs()
                    );
                }
            }
        }
    }

    /// Start the server again on the same data directory and the same port, so that clients
    /// that remember its URL reach it. Stops it first if it is running.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Stop the server and start it on another data directory, on the same port (a server
    /// restored from a backup where the old one was).
    pub fn restart_on(&mut self, data_dir: &Path) {
        self.stop();
        let mut log = data_dir.as_os_str().to_owned();
        log.push(".log");
        self.data = data_dir.to_path_buf();
        self.log = PathBuf::from(log);
        self.launch();
    }

    fn launch(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        let started = Instant::now();
        // The port of a killed server can take a moment to become free again.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.try_launch() {
                Ok(()) => {
                    eprintln!(
                        "[e2e] fieldsync-server listening on {} after {:.1?}",
                        self.addr,
                        started.elapsed()
                    );
                    return;
                }
                Err(message) if self.addr.port() != 0 && Instant::now() < deadline => {
                    let _ = message;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(message) => panic!("{message}"),
            }
        }
    }

    fn try_launch(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.data).expect("create the server data directory");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log file");
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(&self.program);
        process::clean_env(&mut cmd);
        cmd.arg("serve")
            .arg("--data")
            .arg(&self.data)
            .arg("--listen")
            .arg(self.addr.to_string())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start fieldsync-server: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if let Some(url) = line.trim().strip_prefix("listening on ") {
                            let _ = tx.send(url.to_owned());
                            break;
                        }
                    }
                }
            }
            // Keep draining so that the server never blocks on a full stdout pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(url) => {
                    let (scheme, addr) = url
                        .split_once("://")
                        .ok_or_else(|| format!("bad listening line {url:?}"))?;
                    self.scheme = scheme.to_owned();
                    self.addr = addr
                        .parse()
                        .map_err(|e| format!("bad listening address {addr:?}: {e}"))?;
                    assert!(
                        self.addr.ip().is_loopback(),
                        "server must listen on loopback"
                    );
                    self.child = Some(child);
                    return Ok(());
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!(
                            "fieldsync-server exited ({status}) before listening; logs:\n{}",
                            self.logs_since(log_start)
                        ));
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "fieldsync-server did not print `listening on` within {START_TIMEOUT:?}; logs:\n{}",
                        self.logs_since(log_start)
                    ));
                }
            }
        }
    }

    fn logs_since(&self, offset: u64) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let mut all = Vec::new();
            let _ = f.read_to_end(&mut all);
            text = String::from_utf8_lossy(all.get(offset as usize..).unwrap_or_default())
                .into_owned();
        }
        text
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Send signal `name` (`TERM`, `HUP`) to process `pid`; whether it was sent.
fn signal(pid: u32, name: &str) -> bool {
    Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Run `fieldsync-server ARGS` to completion (at most 60 s).
pub fn server_command(args: &[&str]) -> Output {
    server_command_env(args, &[])
}

/// [`server_command`] with environment variables.
pub fn server_command_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(&binaries().server);
    process::clean_env(&mut cmd);
    cmd.args(args).envs(env.iter().copied());
    process::spawn(cmd, None, format!("fieldsync-server {args:?}")).wait(Duration::from_secs(60))
}

/// Create an organisation on a data directory; returns `(org_id, admin_token)`.
pub fn create_org(data_dir: &Path, name: &str) -> (String, String) {
    create_org_with(data_dir, name, &[])
}

/// [`create_org`] with extra flags (`--database URL`).
pub fn create_org_with(data_dir: &Path, name: &str, extra: &[&str]) -> (String, String) {
    let data = data_dir.to_str().expect("utf-8 temp path");
    let mut args = vec![
        "admin",
        "create-org",
        "--name",
        name,
        "--data",
        data,
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = server_command(&args);
    assert_eq!(out.code, Some(0), "create-org failed\n{}", out.describe());
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("create-org printed no JSON ({e})\n{}", out.describe()));
    let field = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("create-org JSON lacks {k}: {v}"))
            .to_owned()
    };
    (field("org_id"), field("admin_token"))
}
