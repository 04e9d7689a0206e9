//! The README's quick-start walkthrough works as written: the fenced block with the info
//! string `sh e2e-walkthrough` is run, command by command in one shell, in a temp directory,
//! against the binaries under test on a free loopback port.
//!
//! Conventions the walkthrough follows so that it is both copy-pasteable and testable:
//! - the server is started with a line `fieldsync-server serve ... &`; the test runs that line
//!   itself, waits for the server to listen, and stops it at the end;
//! - the server address is `127.0.0.1:8470` (replaced here by a free port);
//! - paths are relative to the repository root (`fixtures/` is available);
//! - the last command prints a CSV export of the collected (submitted) responses on stdout.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use fieldsync_e2e::data::parse_csv;
use fieldsync_e2e::{binaries, process, workspace_root};

const MARKER: &str = "```sh e2e-walkthrough";

/// The walkthrough's lines, from the fenced block marked for it.
fn walkthrough(readme: &str) -> Option<String> {
    let start = readme.find(MARKER)?;
    let body = &readme[start + MARKER.len()..];
    let body = body.strip_prefix('\n').unwrap_or(body);
    let end = body.find("\n```")?;
    Some(body[..end].to_owned())
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy fixture");
        }
    }
}

/// Kills the walkthrough's server whatever happens.
struct KillOnDrop(std::path::PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
    }
}

#[test]
fn readme_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let Some(block) = walkthrough(&readme) else {
        panic!(
            "README.md has no walkthrough: add a fenced block opened with {MARKER:?} \
             (server, organisation, survey, enumerator, offline collection, sync, export)"
        );
    };
    let bins = binaries();
    let dir = tempfile::Builder::new()
        .prefix("fieldsync-e2e-readme-")
        .tempdir()
        .expect("temp dir");
    copy_dir(
        &workspace_root().join("fixtures"),
        &dir.path().join("fixtures"),
    );

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let pid_file = dir.path().join("walkthrough-server.pid");
    let _guard = KillOnDrop(pid_file.clone());

    let mut script = String::from("set -euo pipefail\n");
    let mut saw_serve = false;
    for line in block
        .replace("127.0.0.1:8470", &addr)
        .replace("localhost:8470", &addr)
        .lines()
    {
        let trimmed = line.trim();
        if trimmed.starts_with("fieldsync-server serve") && trimmed.ends_with('&') {
            saw_serve = true;
            let command = trimmed.trim_end_matches('&');
            script.push_str(&format!(
                "{command} > walkthrough-server.out 2> walkthrough-server.log &\n\
                 echo $! > walkthrough-server.pid\n\
                 for _ in $(seq 1 600); do grep -q 'listening on' walkthrough-server.out && break; sleep 0.1; done\n\
                 grep -q 'listening on' walkthrough-server.out || {{ cat walkthrough-server.log >&2; exit 99; }}\n"
            ));
        } else {
            script.push_str(line);
            script.push('\n');
        }
    }
    assert!(
        saw_serve,
        "the walkthrough starts the server with a `fieldsync-server serve ... &` line:\n{block}"
    );

    let path = format!(
        "{}:{}",
        bins.dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    process::clean_env(&mut cmd);
    cmd.arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("xdg-data"))
        .env("FIELDSYNC_LISTEN", &addr);
    let out =
        process::spawn(cmd, None, "the README walkthrough".into()).wait(Duration::from_secs(300));
    let server_log =
        std::fs::read_to_string(dir.path().join("walkthrough-server.log")).unwrap_or_default();
    assert_eq!(
        out.code,
        Some(0),
        "the README walkthrough failed\n--- script ---\n{script}\n{}\n--- server log ---\n{server_log}",
        out.describe()
    );

    // It ends with an export of what was collected.
    let export = out
        .stdout
        .find("response_id,")
        .map(|i| &out.stdout[i..])
        .unwrap_or_else(|| panic!("the walkthrough ends without a CSV export:\n{}", out.stdout));
    let csv = parse_csv(export);
    assert!(
        !csv.rows.is_empty(),
        "the export has no responses:\n{export}"
    );
    for row in &csv.rows {
        assert!(!row["response_id"].is_empty(), "{row:?}");
        assert_eq!(
            row["status"], "submitted",
            "the walkthrough hands in what it collects: {row:?}"
        );
        assert_eq!(
            (row["enumerator"].as_str(), row["device_name"].as_str()),
            ("Amina Odhiambo", "tablet-1"),
            "{row:?}"
        );
        assert!(row["created_at"].ends_with("+03:00"), "{row:?}");
    }
}
