//! The `fieldsync` CLI in one client home, as a user would run it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::bins::binaries;
use crate::process::{self, Output, Running};

/// Longest time one CLI command may take (a sync of thousands of responses in a debug build
/// included) before the test kills it and fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(240);

/// One client home (one device or one member's machine) and its passphrase.
#[derive(Clone, Debug)]
pub struct Client {
    home: PathBuf,
    /// `None` runs the CLI without `FIELDSYNC_PASSPHRASE` (and with no terminal to ask on).
    passphrase: Option<String>,
}

impl Client {
    /// A client whose home is `home`, with a fresh random passphrase.
    pub fn new(home: &Path) -> Client {
        Client {
            home: home.to_path_buf(),
            passphrase: Some(format!("pass-{}", uuid::Uuid::new_v4().simple())),
        }
    }

    /// The same home, typed with another passphrase.
    pub fn with_passphrase(&self, passphrase: &str) -> Client {
        Client {
            home: self.home.clone(),
            passphrase: Some(passphrase.to_owned()),
        }
    }

    /// The same home, with no passphrase given.
    pub fn without_passphrase(&self) -> Client {
        Client {
            home: self.home.clone(),
            passphrase: None,
        }
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn passphrase(&self) -> Option<&str> {
        self.passphrase.as_deref()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&binaries().client);
        process::clean_env(&mut cmd);
        if let Some(passphrase) = &self.passphrase {
            cmd.env("FIELDSYNC_PASSPHRASE", passphrase);
        }
        cmd.env("NO_COLOR", "1")
            .arg("--home")
            .arg(&self.home)
            .args(args);
        cmd
    }

    fn describe(&self, args: &[&str]) -> String {
        format!(
            "`fieldsync --home {} {}`",
            self.home.display(),
            args.join(" ")
        )
    }

    /// Start `fieldsync ARGS` with a stdin pipe the test keeps open (to type into it, then
    /// perhaps kill the process mid-way); stdout and stderr are discarded.
    pub fn spawn_typing(&self, args: &[&str]) -> std::process::Child {
        let mut cmd = self.command(args);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.describe(args)))
    }

    /// Start `fieldsync ARGS` without waiting for it.
    pub fn spawn(&self, args: &[&str]) -> Running {
        process::spawn(self.command(args), None, self.describe(args))
    }

    /// Run `fieldsync ARGS` with `stdin` (or none) to completion.
    pub fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let started = std::time::Instant::now();
        let out =
            process::spawn(self.command(args), stdin, self.describe(args)).wait(COMMAND_TIMEOUT);
        // Shown by the test runner when a test fails: what ran, how it ended, how long it took.
        eprintln!(
            "[e2e] {} -> {:?} in {:.1?}",
            self.describe(args),
            out.code,
            started.elapsed()
        );
        out
    }

    /// Run `fieldsync ARGS` with its standard output a pipe nobody reads: the read end is
    /// closed before the command starts, as `| head` closes it after a line. Returns the
    /// exit code and stderr (stdout stays empty).
    pub fn run_unread(&self, args: &[&str]) -> Output {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let mut cmd = self.command(args);
        cmd.stdin(std::process::Stdio::null()).stdout(writer);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.describe(args)));
        let out = Output {
            code: out.status.code(),
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("[e2e] {} | (closed) -> {:?}", self.describe(args), out.code);
        out
    }

    /// Run `fieldsync ARGS` to completion with `env` set.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = process::spawn(cmd, None, self.describe(args)).wait(COMMAND_TIMEOUT);
        eprintln!(
            "[e2e] {} with {env:?} -> {:?}",
            self.describe(args),
            out.code
        );
        out
    }

    /// Run `fieldsync ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, None)
    }

    /// Run and require exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_stdin(args, None)
    }

    /// Run with `stdin` and require exit 0; returns stdout.
    pub fn ok_stdin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run_stdin(args, stdin);
        assert_eq!(
            out.code,
            Some(0),
            "{} failed\n{}",
            self.describe(args),
            out.describe()
        );
        out.stdout
    }

    /// Run with `--json`, require exit 0 and parse stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let args = json_args(args);
        let stdout = self.ok(&args);
        parse_json(&stdout, &self.describe(&args))
    }

    /// Run with `--json` and require exit `code`; returns the whole output.
    pub fn json_code(&self, args: &[&str], code: i32) -> Output {
        let args = json_args(args);
        let out = self.run(&args);
        assert_eq!(
            out.code,
            Some(code),
            "{}: expected exit {code}\n{}",
            self.describe(&args),
            out.describe()
        );
        out
    }

    /// Run and require exit `code`; returns stderr, which must say something.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        self.fails_stdin(args, None, code)
    }

    /// Run with `stdin` and require exit `code`; returns stderr, which must say something.
    pub fn fails_stdin(&self, args: &[&str], stdin: Option<&str>, code: i32) -> String {
        let out = self.run_stdin(args, stdin);
        assert_eq!(
            out.code,
            Some(code),
            "{}: expected exit {code}\n{}",
            self.describe(args),
            out.describe()
        );
        assert!(
            !out.stderr.trim().is_empty(),
            "{} failed with exit {code} but printed no message on stderr",
            self.describe(args)
        );
        out.stderr
    }

    /// `fieldsync login --server URL --token TOKEN`.
    pub fn login(&self, url: &str, token: &str) {
        self.ok(&["login", "--server", url, "--token", token]);
    }

    /// `fieldsync --json sync`.
    pub fn sync(&self) -> Value {
        self.json(&["sync"])
    }

    /// `fieldsync --json status`.
    pub fn status(&self) -> Value {
        self.json(&["status"])
    }

    /// `fieldsync --json response list [filters]` as rows.
    pub fn responses(&self, filters: &[&str]) -> Vec<Value> {
        let mut args = vec!["response", "list"];
        args.extend_from_slice(filters);
        match self.json(&args) {
            Value::Array(rows) => rows,
            other => panic!("`response list --json` printed no array: {other}"),
        }
    }

    /// Ids of `response list [filters]`, sorted.
    pub fn response_ids(&self, filters: &[&str]) -> Vec<String> {
        let mut ids: Vec<String> = self
            .responses(filters)
            .iter()
            .map(|r| str_field(r, "id"))
            .collect();
        ids.sort();
        ids
    }
}

/// Put `--json` before the subcommand, where it works whether or not clap marks it global.
fn json_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    all
}

/// Parse a command's stdout as JSON, or fail saying which command printed what.
pub fn parse_json(stdout: &str, what: &str) -> Value {
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{what} printed no JSON ({e}):\n{stdout}"))
}

/// A string field of a JSON object, or a failed test.
pub fn str_field(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("field {key:?} is not a string ({other}) in {v}"),
    }
}

/// An integer field of a JSON object, or a failed test.
pub fn int_field(v: &Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("field {key:?} is not an integer in {v}"))
}
