//! What the rights tests share: collecting responses from answers files, reading the sealed
//! rows a server or a client home holds for a response and searching every file for them, a
//! backup copy of a data directory, and the API over HTTP with a session of its own.

use std::collections::BTreeSet;
use std::path::Path;

use fieldsync_e2e::data::{self, all_files, contains, jsonl};
use fieldsync_e2e::{Client, World};
use serde_json::{Value, json};

/// Collect one response per answers set on `device` from a file; returns their ids.
pub fn collect(w: &World, device: &Client, survey: &str, rows: &[data::Answers]) -> Vec<String> {
    let file = w.file(
        &format!("{survey}-{}.jsonl", uuid::Uuid::new_v4()),
        &jsonl(rows),
    );
    let stored = device.json(&[
        "collect",
        survey,
        "--answers",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(stored["invalid"], json!([]), "{stored}");
    stored["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("collect --json has no ids: {stored}"))
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect()
}

/// The admin's `subject export` of `person`: the JSON written, and the CSV beside it.
pub fn export_subject(w: &World, person: &str) -> (Value, String) {
    let out = w.out_path(&format!("subject-{}.json", uuid::Uuid::new_v4()));
    w.admin.ok(&[
        "subject",
        "export",
        person,
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let json = std::fs::read_to_string(&out).expect("export written");
    let csv = std::fs::read_to_string(out.with_extension("csv")).expect("csv written");
    (
        serde_json::from_str(&json).expect("the export is JSON"),
        csv,
    )
}

/// The admin publishes the household survey (version 1); its id.
pub fn publish_household(w: &World) -> String {
    let published = w.publish("household-v1.json");
    published["survey_id"]
        .as_str()
        .unwrap_or_else(|| panic!("publish --json has no survey_id: {published}"))
        .to_owned()
}

pub fn household(head: &str, comment: &str) -> data::Answers {
    let mut a = data::case("household-v1.json", "valid_complete_in_person");
    a.insert("head_name".into(), head.into());
    a.insert("comments".into(), comment.into());
    a
}

/// The blobs `sql` selects (one `?1` parameter) from the SQLite database at `path`, read
/// beside the process that owns it, as an attacker with a copy of the files could.
fn blobs(path: &Path, sql: &str, id: &str) -> Vec<Vec<u8>> {
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut stmt = db.prepare(sql).expect("prepare");
    stmt.query_map([id], |r| r.get::<_, Vec<u8>>(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Rows of the server's SQLite database.
pub fn server_blobs(w: &World, sql: &str, id: &str) -> Vec<Vec<u8>> {
    blobs(&w.server.data_dir().join("fieldsync.sqlite"), sql, id)
}

/// The sealed rows a client home holds for a response (its snapshot and outbox changes).
pub fn client_blobs(client: &Client, id: &str) -> Vec<Vec<u8>> {
    let path = client.home().join("fieldsync.sqlite");
    [
        "SELECT snapshot FROM docs WHERE id = ?1",
        "SELECT change FROM outbox WHERE doc_id = ?1",
    ]
    .iter()
    .flat_map(|sql| blobs(&path, sql, id))
    .collect()
}

/// Every file under `dir` holding any of `blobs` (a sealed value is unique: its nonce is
/// random), or a 32-byte window of one (a page may hold only part of a long value).
pub fn files_holding(dir: &Path, blobs: &[Vec<u8>]) -> Vec<String> {
    let mut found = Vec::new();
    for file in all_files(dir) {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        for blob in blobs {
            let probe = &blob[..blob.len().min(48)];
            let tail = &blob[blob.len().saturating_sub(32)..];
            if contains(&bytes, probe) || contains(&bytes, tail) {
                found.push(file.display().to_string());
                break;
            }
        }
    }
    found
}

pub fn ids_of(found: &Value) -> BTreeSet<String> {
    found["responses"]
        .as_array()
        .unwrap_or_else(|| panic!("no responses in {found}"))
        .iter()
        .map(|r| r["response_id"].as_str().expect("id").to_owned())
        .collect()
}

/// The API as a member with `role` sees it, over HTTP with a session of its own.
pub struct Api {
    base: String,
    token: String,
    http: reqwest::blocking::Client,
}

impl Api {
    pub fn new(w: &World, role: &str) -> Api {
        let token = w.admin.ok(&[
            "member",
            "add",
            &format!("api {role}"),
            "--role",
            role,
            "--quiet",
        ]);
        let http = reqwest::blocking::Client::new();
        let base = w.server.url();
        let grant: Value = http
            .post(format!("{base}/v1/login"))
            .json(&json!({ "token": token.trim() }))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .expect("log in over HTTP");
        Api {
            base,
            token: grant["token"].as_str().expect("session token").to_owned(),
            http,
        }
    }

    pub fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub fn put(&self, path: &str, body: &Value) {
        self.http
            .put(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("PUT {path}: {e}"));
    }

    /// Wait (at most 20 s) until the server's listing of a survey holds `n` responses (they
    /// are listed once the server has checked them).
    pub fn wait_listed(&self, survey_id: &str, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.listed(survey_id).0.len() != n {
            assert!(
                std::time::Instant::now() < deadline,
                "never listed {n} responses"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The ids in the server's listing of a survey's responses, and which are restricted.
    pub fn listed(&self, survey_id: &str) -> (BTreeSet<String>, BTreeSet<String>) {
        let page = self.get(&format!("/v1/surveys/{survey_id}/responses"));
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let ids = items
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        let restricted = items
            .iter()
            .filter(|r| r["restricted"] == json!(true))
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        (ids, restricted)
    }
}

/// Copy every file of `from` into `to` (a backup of a stopped server's data directory).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for file in all_files(from) {
        let rel = file.strip_prefix(from).expect("inside");
        std::fs::copy(&file, to.join(rel)).expect("copy a file");
    }
}
