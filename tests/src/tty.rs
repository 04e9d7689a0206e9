//! The `fieldsync` CLI on a terminal: each command runs under util-linux `script`, which gives
//! it a pseudo-terminal as its controlling terminal (so the passphrase is asked on /dev/tty
//! and the interview sees a terminal), while the test types lines and waits for what the
//! command prints, as a person would.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bins::binaries;
use crate::process;

/// How long one expected line may take to appear.
const WAIT: Duration = Duration::from_secs(60);

/// One command running on a pseudo-terminal.
#[derive(Debug)]
pub struct Tty {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Arc<Mutex<String>>,
    /// How much of the output earlier expectations consumed.
    seen: usize,
    what: String,
}

impl Tty {
    /// Start `fieldsync --home HOME ARGS` on a terminal, with `env` set (and no
    /// FIELDSYNC_PASSPHRASE unless `env` gives one).
    pub fn start(home: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Tty {
        let mut words = vec![quote(&binaries().client.to_string_lossy())];
        words.push("--home".into());
        words.push(quote(&home.to_string_lossy()));
        words.extend(args.iter().map(|a| quote(a)));
        let line = words.join(" ");
        let mut cmd = Command::new("script");
        process::clean_env(&mut cmd);
        cmd.args([
            "--quiet",
            "--return",
            "--flush",
            "--command",
            &line,
            "/dev/null",
        ])
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `script` (util-linux) for {line}: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .expect("output")
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        eprintln!("[e2e] on a terminal: fieldsync {}", args.join(" "));
        Tty {
            stdin: child.stdin.take(),
            child,
            output,
            seen: 0,
            what: format!("`fieldsync {}`", args.join(" ")),
        }
    }

    /// Wait until `text` appears after what earlier expectations consumed; returns the output
    /// up to and including it.
    pub fn expect(&mut self, text: &str) -> String {
        let start = Instant::now();
        loop {
            {
                let out = self.output.lock().expect("output");
                if let Some(at) = out[self.seen..].find(text) {
                    let end = self.seen + at + text.len();
                    let got = out[self.seen..end].to_owned();
                    self.seen = end;
                    return got;
                }
                if start.elapsed() > WAIT {
                    panic!(
                        "{} never printed {text:?}; it printed:\n{}",
                        self.what,
                        &out[self.seen..]
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Type one line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("the terminal is still open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("cannot type into {}: {e}", self.what));
    }

    /// Wait for the command to end; its exit code and everything it printed.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                std::thread::sleep(Duration::from_millis(50));
                let out = self.output.lock().expect("output").clone();
                return (status.code(), out);
            }
            if start.elapsed() > WAIT {
                let _ = self.child.kill();
                panic!(
                    "{} did not end; it printed:\n{}",
                    self.what,
                    self.output.lock().expect("output")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `s` as one word for the shell `script` runs the command with.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
