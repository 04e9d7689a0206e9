//! One test's world: a temp directory holding a server data directory, its logs, and the
//! client homes of everyone involved, with an organisation and a logged-in admin.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

use crate::bins::fixture;
use crate::client::{Client, str_field};
use crate::databases::Backend;
use crate::server::{Server, create_org_with};

/// Everything one test needs; dropping it kills the server and deletes the files.
#[derive(Debug)]
pub struct World {
    // Field order matters: the server is killed before its directory is deleted.
    pub server: Server,
    pub admin: Client,
    pub org_id: String,
    root: TempDir,
}

impl World {
    /// A server with one organisation, and its admin logged in from `ROOT/admin`.
    pub fn start() -> World {
        World::start_on(&Backend::Sqlite)
    }

    /// The same, with the server on `backend`.
    pub fn start_on(backend: &Backend) -> World {
        World::start_with(backend, &[])
    }

    /// The same, with more `serve` arguments.
    pub fn start_with(backend: &Backend, serve_args: &[&str]) -> World {
        let root = tempfile::Builder::new()
            .prefix("fieldsync-e2e-")
            .tempdir()
            .expect("create a temp dir");
        let data = root.path().join("server-data");
        let args = backend.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (org_id, admin_token) = create_org_with(&data, "Acme Health", &args);
        let mut serve = args.clone();
        serve.extend_from_slice(serve_args);
        let server = Server::start(&data, &serve);
        let admin = Client::new(&root.path().join("admin"));
        admin.login(&server.url(), &admin_token);
        World {
            server,
            admin,
            org_id,
            root,
        }
    }

    /// The last `n` lines the server logged.
    pub fn log_tail(&self, n: usize) -> String {
        let logs = self.server.logs();
        let lines: Vec<&str> = logs.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The temp directory of this test.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A client home `ROOT/name` (not yet logged in or enrolled).
    pub fn client(&self, name: &str) -> Client {
        Client::new(&self.root().join(name))
    }

    /// Write `content` to `ROOT/files/name` and return its path.
    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let dir = self.root().join("files");
        std::fs::create_dir_all(&dir).expect("create files dir");
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write test file");
        path
    }

    /// A path for an output file under `ROOT/files` (outside every client home).
    pub fn out_path(&self, name: &str) -> PathBuf {
        let dir = self.root().join("files");
        std::fs::create_dir_all(&dir).expect("create files dir");
        dir.join(name)
    }

    /// The admin's JSON Lines export of `survey`, one value per response.
    pub fn export_rows(&self, survey: &str) -> Vec<Value> {
        let export = self.out_path("export.jsonl");
        self.admin.ok(&[
            "export",
            survey,
            "--format",
            "jsonl",
            "--out",
            export.to_str().expect("utf-8 temp path"),
        ]);
        crate::data::parse_jsonl(&std::fs::read_to_string(&export).expect("export written"))
    }

    /// The admin publishes a fixture survey (`surveys/NAME`); returns the `--json` answer.
    pub fn publish(&self, survey_fixture: &str) -> Value {
        let path = fixture(&format!("surveys/{survey_fixture}"));
        self.admin
            .json(&["survey", "publish", path.to_str().expect("utf-8 path")])
    }

    /// The admin adds a member with `role`, who logs in from `ROOT/home`.
    pub fn member(&self, home: &str, name: &str, role: &str) -> (Client, String) {
        self.member_via(home, name, role, &self.server.url())
    }

    /// Like [`World::member`], logging in at `url` (a proxy in front of the server), which
    /// the home then stays bound to.
    pub fn member_via(&self, home: &str, name: &str, role: &str, url: &str) -> (Client, String) {
        let added = self.admin.json(&["member", "add", name, "--role", role]);
        let client = self.client(home);
        client.login(url, &str_field(&added, "token"));
        (client, str_field(&added, "id"))
    }

    /// The admin adds an enumerator assigned to `surveys`, whose device enrolls from
    /// `ROOT/home`; returns the device and the enumerator's id.
    pub fn enumerator(&self, home: &str, name: &str, surveys: &[&str]) -> (Client, String) {
        self.enumerator_via(home, name, surveys, &self.server.url())
    }

    /// Like [`World::enumerator`], enrolling at `url` (a proxy in front of the server), which
    /// the device then stays bound to.
    pub fn enumerator_via(
        &self,
        home: &str,
        name: &str,
        surveys: &[&str],
        url: &str,
    ) -> (Client, String) {
        let mut args = vec!["enumerator", "add", name];
        for s in surveys {
            args.extend(["--survey", s]);
        }
        let added = self.admin.json(&args);
        let device = self.client(home);
        device.ok(&[
            "enroll",
            "--server",
            url,
            "--code",
            &str_field(&added, "code"),
            "--device-name",
            home,
        ]);
        (device, str_field(&added, "id"))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "[e2e] last server log lines ({}):\n{}",
                self.server.log_path().display(),
                self.log_tail(40)
            );
        }
    }
}
