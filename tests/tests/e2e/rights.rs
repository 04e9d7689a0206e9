//! Respondents' rights with the real binaries: access (find and export a person across surveys
//! and versions), erasure (nothing readable left on the server or on any device, and an
//! offline device cannot bring it back), restriction, retention, and cursors after deletions.

use std::collections::BTreeSet;
use std::path::Path;

use fieldsync_e2e::data::{self, all_files, contains, jsonl};
use fieldsync_e2e::server::server_command;
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

fn household(head: &str, comment: &str) -> data::Answers {
    let mut a = data::case("household-v1.json", "valid_complete_in_person");
    a.insert("head_name".into(), head.into());
    a.insert("comments".into(), comment.into());
    a
}

/// Rows of the server's SQLite database (read beside the running server, as an attacker with
/// a copy of the data directory could).
pub fn server_blobs(w: &World, sql: &str, id: &str) -> Vec<Vec<u8>> {
    let db = rusqlite::Connection::open_with_flags(
        w.server.data_dir().join("fieldsync.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the server database");
    let mut stmt = db.prepare(sql).expect("prepare");
    stmt.query_map([id], |r| r.get::<_, Vec<u8>>(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// The sealed rows a client home holds for a response (its snapshot and outbox changes).
fn client_blobs(client: &Client, id: &str) -> Vec<Vec<u8>> {
    let db = rusqlite::Connection::open_with_flags(
        client.home().join("fieldsync.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the client store");
    let mut out: Vec<Vec<u8>> = db
        .prepare("SELECT snapshot FROM docs WHERE id = ?1")
        .expect("prepare")
        .query_map([id], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let outbox: Vec<Vec<u8>> = db
        .prepare("SELECT change FROM outbox WHERE doc_id = ?1")
        .expect("prepare")
        .query_map([id], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    out.extend(outbox);
    out
}

/// Every file under `dir` holding any of `blobs` (a sealed value is unique: its nonce is
/// random), or a 32-byte window of one (a page may hold only part of a long value).
fn files_holding(dir: &Path, blobs: &[Vec<u8>]) -> Vec<String> {
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

fn ids_of(found: &Value) -> BTreeSet<String> {
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

#[test]
fn access_finds_and_exports_a_person_across_surveys_and_versions_and_no_one_else() {
    let w = World::start();
    w.publish("household-v1.json");
    w.publish("health-facility.json");
    let (device, _) = w.enumerator(
        "tablet-1",
        "Amina Odhiambo",
        &["household_survey", "health_facility_assessment"],
    );
    device.sync();
    let person = "Grace Achieng";
    let mut mine = collect(
        &w,
        &device,
        "household_survey",
        &[household(person, "v1 visit")],
    );
    let others = collect(
        &w,
        &device,
        "household_survey",
        &[
            household("Joseph Mwangi", "neighbour"),
            household("Grace Achieng Otieno", "a different person"),
        ],
    );
    let mut facility = data::case("health-facility.json", "valid_complete");
    facility.insert("incharge_name".into(), "  grace ACHIENG ".into());
    mine.extend(collect(
        &w,
        &device,
        "health_facility_assessment",
        &[facility],
    ));
    device.sync();
    // A second version of the household survey; the person answers it too.
    w.publish("household-v2.json");
    device.sync();
    let mut v2 = data::case("household-v2.json", "valid_complete_in_person");
    v2.insert("head_name".into(), "Grace  Achieng".into());
    mine.extend(collect(&w, &device, "household_survey", &[v2]));
    device.sync();
    // A coordinator corrects one of them: audited with the question, never the value.
    let (coordinator, _) = w.member("coordinator", "Cora Njeri", "coordinator");
    coordinator.sync();
    let corrected = mine[0].clone();
    coordinator.ok(&[
        "response",
        "edit",
        &corrected,
        "--set",
        "comments=corrected by phone",
    ]);
    coordinator.sync();
    let mine: BTreeSet<String> = mine.into_iter().collect();

    let found = w.admin.json(&["subject", "find", "grace achieng"]);
    assert_eq!(
        ids_of(&found),
        mine,
        "every response of the person, and only theirs: {found}"
    );
    let versions: BTreeSet<i64> = found["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .map(|r| r["survey_version"].as_i64().expect("version"))
        .collect();
    assert_eq!(versions, BTreeSet::from([1, 2]), "{found}");
    // One survey only.
    let one = w.admin.json(&[
        "subject",
        "find",
        person,
        "--survey",
        "health_facility_assessment",
    ]);
    assert_eq!(ids_of(&one).len(), 1, "{one}");

    let out = w.out_path("grace.json");
    w.admin.ok(&[
        "subject",
        "export",
        person,
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let export: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("export written"))
            .expect("json");
    let exported: BTreeSet<String> = export["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .map(|r| {
            r["response"]["response_id"]
                .as_str()
                .expect("id")
                .to_owned()
        })
        .collect();
    assert_eq!(
        exported, mine,
        "the export covers every response of the person"
    );
    for r in export["responses"].as_array().expect("responses") {
        assert!(
            r["view"]["answers"].is_object(),
            "answers are exported: {r}"
        );
    }
    let csv = std::fs::read_to_string(out.with_extension("csv")).expect("csv written");
    for text in [export.to_string(), csv.clone()] {
        for other in [
            "Joseph Mwangi",
            "Grace Achieng Otieno",
            "neighbour",
            "a different person",
        ] {
            assert!(
                !text.contains(other),
                "another person's data ({other}) was exported"
            );
        }
        for id in &others {
            assert!(
                !text.contains(id.as_str()),
                "another response ({id}) was exported"
            );
        }
    }
    assert!(
        csv.contains("corrected by phone"),
        "the CSV holds the answers:\n{csv}"
    );
    let record = export["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .find(|r| r["response"]["response_id"] == json!(corrected))
        .expect("the corrected response");
    let edit = record["processing"]
        .as_array()
        .expect("a processing record")
        .iter()
        .find(|e| e["action"] == json!("response_edited"))
        .unwrap_or_else(|| panic!("the correction is in the processing record: {record}"));
    assert_eq!(edit["detail"], json!("questions: comments"), "{edit}");
    assert_eq!(edit["actor_role"], json!("coordinator"), "{edit}");
    // Audited, without the identifier.
    let audit = w.admin.json(&["audit", "list"]).to_string();
    assert!(
        audit.contains("subject_export") && audit.contains("subject_find"),
        "{audit}"
    );
    assert!(
        !audit.to_lowercase().contains("achieng"),
        "the audit log names the person: {audit}"
    );
    assert!(
        !audit.contains("corrected by phone"),
        "the audit log holds an answer: {audit}"
    );
}

#[test]
fn erasure_leaves_nothing_readable_anywhere_and_cannot_be_undone_by_a_device() {
    let w = World::start();
    let survey = w.publish("household-v1.json")["survey_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let api = Api::new(&w, "admin");
    let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    let (late, _) = w.enumerator("tablet-2", "Brian Kip", &["household_survey"]);
    let (coordinator, _) = w.member("coordinator", "Cora Njeri", "coordinator");
    let sentinel = format!("Erase{}Me", uuid::Uuid::new_v4().simple());
    let person = "Peter Otieno";
    let on_device = collect(
        &w,
        &device,
        "household_survey",
        &[household(person, &sentinel)],
    );
    let on_late = collect(
        &w,
        &late,
        "household_survey",
        &[household(person, &sentinel)],
    );
    let kept = collect(
        &w,
        &device,
        "household_survey",
        &[household("Ruth Wambui", "stays")],
    );
    device.sync();
    late.sync();
    api.wait_listed(&survey, 3);
    coordinator.sync();
    let erased: Vec<String> = on_device.iter().chain(&on_late).cloned().collect();

    // What would let anyone read the responses: their wrapped keys and sealed changes on the
    // server, and the sealed copies on each device.
    let mut server_secrets = Vec::new();
    for id in &erased {
        server_secrets.extend(server_blobs(
            &w,
            "SELECT wrapped_key FROM docs WHERE id = ?1",
            id,
        ));
        server_secrets.extend(server_blobs(
            &w,
            "SELECT payload FROM changes WHERE doc_id = ?1",
            id,
        ));
        server_secrets.extend(server_blobs(
            &w,
            "SELECT summary FROM response_index WHERE doc_id = ?1",
            id,
        ));
    }
    assert!(
        server_secrets.len() >= 6,
        "the test found the server's rows"
    );
    assert!(
        !files_holding(w.server.data_dir(), &server_secrets).is_empty(),
        "the probe works"
    );
    let device_secrets = client_blobs(&device, &on_device[0]);
    let coordinator_secrets: Vec<Vec<u8>> = erased
        .iter()
        .flat_map(|id| client_blobs(&coordinator, id))
        .collect();
    assert!(!device_secrets.is_empty() && coordinator_secrets.len() >= 2);

    // The device that was offline edits its copy meanwhile.
    late.ok(&[
        "response",
        "edit",
        &on_late[0],
        "--set",
        "comments=edited offline",
    ]);

    let out = w.admin.json(&[
        "subject",
        "erase",
        person,
        "--reason",
        "erasure request 2026-12-01, ticket 7",
        "--yes",
    ]);
    let gone: BTreeSet<String> = out["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    assert_eq!(gone, erased.iter().cloned().collect(), "{out}");

    // The server: nothing left in any file (database, WAL, anything), with the server running.
    let leaks = files_holding(w.server.data_dir(), &server_secrets);
    assert!(
        leaks.is_empty(),
        "erased keys or ciphertext remain in {leaks:?}"
    );
    assert!(data::files_containing(w.server.data_dir(), &sentinel).is_empty());
    assert!(w.admin.json(&["subject", "find", person])["responses"] == json!([]));
    let rows = w.export_rows("household_survey");
    assert_eq!(
        rows.len(),
        1,
        "only the other person's response is exported: {rows:?}"
    );
    assert!(!rows[0].to_string().contains(&sentinel));
    assert_eq!(api.listed(&survey).0, kept.iter().cloned().collect());

    // Devices that synced delete their copies at their next sync.
    for (client, secrets, id) in [
        (&device, &device_secrets, &on_device[0]),
        (&coordinator, &coordinator_secrets, &on_device[0]),
    ] {
        let report = client.sync();
        assert!(
            report["erased"].to_string().contains(id.as_str()),
            "{report}"
        );
        let leaks = files_holding(client.home(), secrets);
        assert!(
            leaks.is_empty(),
            "{}: an erased copy remains in {leaks:?}",
            client.home().display()
        );
        client.fails(&["response", "show", id], 7);
    }

    // The offline device pushes its edit: refused, nothing stored, its copy deleted too.
    let late_secrets = client_blobs(&late, &on_late[0]);
    let report = late.sync();
    assert!(
        report["erased"].to_string().contains(on_late[0].as_str()),
        "{report}"
    );
    assert_eq!(
        report["rejected"],
        json!([]),
        "an erasure is not an error to act on: {report}"
    );
    assert!(files_holding(late.home(), &late_secrets).is_empty());
    late.fails(&["response", "show", &on_late[0]], 7);
    for id in &erased {
        assert!(server_blobs(&w, "SELECT payload FROM changes WHERE doc_id = ?1", id).is_empty());
        assert!(server_blobs(&w, "SELECT id FROM docs WHERE id = ?1", id).is_empty());
    }
    assert_eq!(api.listed(&survey).0, kept.iter().cloned().collect());

    // After the deletions, the coordinator (whose cursor is past the erased rows) still
    // receives every later change.
    let later = collect(
        &w,
        &device,
        "household_survey",
        &[household("Ann Mutua", "after")],
    );
    device.sync();
    coordinator.sync();
    coordinator.ok(&["response", "show", &later[0]]);
}

#[test]
fn restriction_freezes_a_person_on_both_sides_and_lifts_cleanly() {
    let w = World::start();
    let survey = w.publish("household-v1.json")["survey_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let admin_api = Api::new(&w, "admin");
    let coordinator_api = Api::new(&w, "coordinator");
    let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    let (coordinator, _) = w.member("coordinator", "Cora Njeri", "coordinator");
    let person = "Halima Yusuf";
    let ids = collect(
        &w,
        &device,
        "household_survey",
        &[household(person, "first visit")],
    );
    let id = &ids[0];
    device.sync();
    coordinator.sync();
    admin_api.wait_listed(&survey, 1);

    let out = w.admin.json(&["subject", "restrict", person]);
    assert_eq!(out["responses"], json!([id]), "{out}");
    // The device has not synced yet and edits; the server refuses the edit and keeps nothing
    // of it, the device keeps it waiting.
    device.ok(&[
        "response",
        "edit",
        id,
        "--set",
        "comments=edited while restricted",
    ]);
    // Exit 6, as for any refused response: the edit waits on the device.
    let out = device.json_code(&["sync"], 6);
    assert!(
        out.stdout
            .contains("is restricted at the respondent's request"),
        "{}",
        out.describe()
    );
    // Now both sides know: edits are refused with a clear message.
    let why = device.fails(&["response", "edit", id, "--set", "comments=again"], 6);
    assert!(why.contains("restricted"), "{why}");
    coordinator.sync();
    let why = coordinator.fails(&["response", "edit", id, "--set", "comments=review"], 6);
    assert!(why.contains("restricted"), "{why}");
    // Out of exports and the coordinator's listing; an admin still sees it, marked.
    assert!(w.export_rows("household_survey").is_empty());
    assert!(coordinator_api.listed(&survey).0.is_empty());
    let (listed, restricted) = admin_api.listed(&survey);
    assert_eq!(listed, BTreeSet::from([id.clone()]));
    assert_eq!(restricted, BTreeSet::from([id.clone()]));

    // Lifted: the kept edit goes through, and the response is exported again.
    w.admin.ok(&["subject", "unrestrict", person]);
    let report = device.sync();
    assert_eq!(report["rejected"], json!([]), "{report}");
    let rows = w.export_rows("household_survey");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].to_string().contains("edited while restricted"),
        "{rows:?}"
    );
    assert_eq!(
        coordinator_api.listed(&survey),
        (BTreeSet::from([id.clone()]), BTreeSet::new())
    );
    coordinator.sync();
    coordinator.ok(&["response", "edit", id, "--set", "comments=reviewed"]);
}

#[test]
fn retention_purges_responses_past_their_period_as_erasure_does() {
    let w = World::start();
    let survey = w.publish("household-v1.json")["survey_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let api = Api::new(&w, "admin");
    let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    let ids = collect(
        &w,
        &device,
        "household_survey",
        &[household("Old Respondent", "kept two seconds")],
    );
    device.sync();
    let secrets: Vec<Vec<u8>> = [
        server_blobs(&w, "SELECT wrapped_key FROM docs WHERE id = ?1", &ids[0]),
        server_blobs(&w, "SELECT payload FROM changes WHERE doc_id = ?1", &ids[0]),
    ]
    .concat();
    let device_secrets = client_blobs(&device, &ids[0]);
    w.admin
        .ok(&["survey", "retention", "household_survey", "2s"]);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let fresh = collect(
        &w,
        &device,
        "household_survey",
        &[household("New Respondent", "fresh")],
    );
    device.sync();
    api.wait_listed(&survey, 2);

    let data_dir = w.server.data_dir().to_str().expect("utf-8").to_owned();
    let dry = server_command(&["admin", "purge", "--dry-run", "--json", "--data", &data_dir]);
    assert_eq!(dry.code, Some(0), "{}", dry.describe());
    assert!(
        dry.stdout.contains(&ids[0]) && !dry.stdout.contains(&fresh[0]),
        "{}",
        dry.stdout
    );
    assert_eq!(api.listed(&survey).0.len(), 2, "a dry run erases nothing");

    let run = server_command(&["admin", "purge", "--json", "--data", &data_dir]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(run.stdout.contains("\"erased\":1"), "{}", run.stdout);
    assert!(files_holding(w.server.data_dir(), &secrets).is_empty());
    assert_eq!(api.listed(&survey).0, BTreeSet::from([fresh[0].clone()]));
    let report = device.sync();
    assert!(report["erased"].to_string().contains(&ids[0]), "{report}");
    assert!(files_holding(device.home(), &device_secrets).is_empty());
    let audit = w.admin.json(&["audit", "list"]).to_string();
    assert!(audit.contains("retention_purge"), "{audit}");
}

/// Copy every file of `from` into `to` (a backup of a stopped server's data directory).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for file in all_files(from) {
        let rel = file.strip_prefix(from).expect("inside");
        std::fs::copy(&file, to.join(rel)).expect("copy a file");
    }
}

#[test]
fn a_restored_backup_gets_its_erasures_applied_again_and_nothing_comes_back() {
    let mut w = World::start();
    let survey = w.publish("household-v1.json")["survey_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let api = Api::new(&w, "admin");
    let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    let person = "Samuel Njoroge";
    let ids = collect(
        &w,
        &device,
        "household_survey",
        &[household(person, "before backup")],
    );
    device.sync();
    api.wait_listed(&survey, 1);
    let secrets = [
        server_blobs(&w, "SELECT wrapped_key FROM docs WHERE id = ?1", &ids[0]),
        server_blobs(&w, "SELECT payload FROM changes WHERE doc_id = ?1", &ids[0]),
    ]
    .concat();

    // A backup, taken while the response exists.
    let data = w.server.data_dir().to_path_buf();
    let backup = w.root().join("backup");
    w.server.stop();
    copy_dir(&data, &backup);
    w.server.restart();

    w.admin.ok(&[
        "subject",
        "erase",
        person,
        "--reason",
        "request 12",
        "--yes",
    ]);
    let list = w.out_path("erased.jsonl");
    let data_arg = data.to_str().expect("utf-8").to_owned();
    let out = server_command(&[
        "admin",
        "erasures",
        "--out",
        list.to_str().expect("utf-8"),
        "--data",
        &data_arg,
    ]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(
        std::fs::read_to_string(&list)
            .expect("list")
            .contains(&ids[0])
    );

    // The disaster: the backup comes back, erased response and all.
    w.server.stop();
    for file in all_files(&data) {
        std::fs::remove_file(file).expect("clear the data directory");
    }
    copy_dir(&backup, &data);
    assert!(
        !files_holding(&data, &secrets).is_empty(),
        "the backup holds the response"
    );
    let out = server_command(&[
        "admin",
        "reapply-erasures",
        "--from",
        list.to_str().expect("utf-8"),
        "--data",
        &data_arg,
    ]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(
        files_holding(&data, &secrets).is_empty(),
        "erased again, keys and all"
    );
    w.server.restart();
    assert_eq!(
        w.admin.json(&["subject", "find", person])["responses"],
        json!([])
    );
    assert!(api.listed(&survey).0.is_empty());
    // The device still holds its copy (its cursor is past the first notice): an edit of it is
    // refused as erased, and it deletes its copy.
    device.ok(&[
        "response",
        "edit",
        &ids[0],
        "--set",
        "comments=after restore",
    ]);
    let report = device.sync();
    assert!(report["erased"].to_string().contains(&ids[0]), "{report}");
    device.fails(&["response", "show", &ids[0]], 7);
}
