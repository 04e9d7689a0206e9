//! The audit log is tamper-evident: a chain of 1,000 entries verifies, and changing or
//! deleting any entry (first, middle, last) is detected by `fieldsync audit verify`; what
//! respondents answered and who they are never appear in it.

use fieldsync_e2e::World;
use serde_json::json;

use crate::rights_support::{Api, collect, export_subject};

fn server_db(w: &World) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(w.server.data_dir().join("fieldsync.sqlite"))
        .expect("open the server database");
    db.busy_timeout(std::time::Duration::from_secs(10))
        .expect("busy timeout");
    db
}

/// `fieldsync audit verify`: Ok(verified count) or Err(what it reported).
fn verify(w: &World) -> Result<u64, String> {
    let out = w.admin.run(&["--json", "audit", "verify"]);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("audit verify printed no JSON ({e}): {}", out.describe()));
    match out.code {
        Some(0) => {
            assert_eq!(v["problem"], json!(null), "{v}");
            Ok(v["verified"].as_u64().expect("count"))
        }
        Some(1) => {
            assert!(out.stderr.contains("tampered"), "{}", out.describe());
            Err(v["problem"].as_str().expect("problem").to_owned())
        }
        _ => panic!("audit verify: {}", out.describe()),
    }
}

type Row = (
    i64,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

fn row(db: &rusqlite::Connection, id: i64) -> Row {
    db.query_row(
        "SELECT id, org_id, at, actor_id, actor_role, action, target, detail, prev, mac FROM audit WHERE id = ?1",
        [id],
        |r| {
            Ok((
                r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?,
                r.get(7)?, r.get(8)?, r.get(9)?,
            ))
        },
    )
    .expect("the audit entry")
}

fn put_back(db: &rusqlite::Connection, r: &Row) {
    db.execute(
        "INSERT INTO audit (id, org_id, at, actor_id, actor_role, action, target, detail, prev, mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        rusqlite::params![r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9],
    )
    .expect("put the entry back");
}

#[test]
fn a_chain_of_a_thousand_entries_verifies_and_any_change_or_removal_is_detected() {
    let w = World::start();
    w.publish("household-v1.json");
    let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    let sentinel = format!("Audit{}Sentinel", uuid::Uuid::new_v4().simple());
    let person = "Wanjiku Kamau";
    let mut answers = fieldsync_e2e::data::case("household-v1.json", "valid_complete_in_person");
    answers.insert("head_name".into(), person.into());
    answers.insert("comments".into(), sentinel.clone().into());
    collect(&w, &device, "household_survey", &[answers]);
    device.sync();
    // Every right exercised on the person, so the log records all of it.
    let api = Api::new(&w, "admin");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while w.admin.json(&["subject", "find", person])["responses"] == json!([]) {
        assert!(
            std::time::Instant::now() < deadline,
            "the response was never indexed"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    export_subject(&w, person);
    for args in [
        vec!["subject", "restrict", person],
        vec!["subject", "unrestrict", person],
        vec!["subject", "opt-out", person],
        vec![
            "subject",
            "erase",
            person,
            "--reason",
            "request by letter",
            "--yes",
        ],
    ] {
        w.admin.ok(&args);
    }
    // A reason naming the person is refused: the log must never hold it.
    let why = w.admin.fails(
        &[
            "subject",
            "erase",
            person,
            "--reason",
            &format!("asked by {person}"),
            "--yes",
        ],
        6,
    );
    assert!(why.contains("identifier"), "{why}");
    // Make the chain long.
    for i in 0..1000 {
        api.put("/v1/org/support-access", &json!({ "enabled": i % 2 == 0 }));
    }
    let verified = verify(&w).expect("an untouched chain verifies");
    assert!(verified >= 1000, "{verified} entries verified");

    let db = server_db(&w);
    let org_ids: Vec<i64> = db
        .prepare("SELECT id FROM audit WHERE org_id = ?1 ORDER BY id")
        .expect("prepare")
        .query_map([&w.org_id], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("ids");
    // Nothing a respondent said, and nobody's identity, in any column of any entry.
    let everything: String = db
        .prepare("SELECT coalesce(actor_id,'') || ' ' || action || ' ' || coalesce(target,'') || ' ' || coalesce(detail,'') FROM audit")
        .expect("prepare")
        .query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows")
        .join("\n")
        .to_lowercase();
    assert_eq!(everything.matches(&sentinel.to_lowercase()).count(), 0);
    assert_eq!(
        everything.matches("wanjiku").count(),
        0,
        "the subject is named in the log"
    );
    assert!(
        everything.contains("subject_erase"),
        "the erasure is audited"
    );

    let (first, middle, last) = (
        org_ids[0],
        org_ids[org_ids.len() / 2],
        *org_ids.last().expect("entries"),
    );
    for id in [first, middle, last] {
        // Changed: detected and named.
        let original = row(&db, id);
        db.execute(
            "UPDATE audit SET detail = 'nothing happened' WHERE id = ?1",
            [id],
        )
        .expect("tamper");
        let problem = verify(&w).expect_err("a changed entry is detected");
        assert!(problem.contains(&id.to_string()), "{problem}");
        db.execute("DELETE FROM audit WHERE id = ?1", [id])
            .expect("undo");
        put_back(&db, &original);
        verify(&w).expect("restored");
        // Removed: detected.
        db.execute("DELETE FROM audit WHERE id = ?1", [id])
            .expect("remove");
        let problem = verify(&w).expect_err("a removed entry is detected");
        assert!(problem.contains("removed"), "{problem}");
        put_back(&db, &original);
        verify(&w).expect("restored");
    }
    // Two entries swapped in place (ids kept) break the chain too.
    let (a, b) = (row(&db, org_ids[10]), row(&db, org_ids[11]));
    db.execute(
        "UPDATE audit SET detail = ?2, action = ?3, at = ?4 WHERE id = ?1",
        rusqlite::params![a.0, b.7, b.5, b.2],
    )
    .expect("swap");
    db.execute(
        "UPDATE audit SET detail = ?2, action = ?3, at = ?4 WHERE id = ?1",
        rusqlite::params![b.0, a.7, a.5, a.2],
    )
    .expect("swap");
    if (a.5.clone(), a.7.clone(), a.2) != (b.5.clone(), b.7.clone(), b.2) {
        verify(&w).expect_err("reordered entries are detected");
    }
}
