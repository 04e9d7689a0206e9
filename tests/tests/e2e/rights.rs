//! Respondents' rights with the real binaries: access (find and export a person across surveys
//! and versions), erasure (nothing readable left on the server or on any device, and an
//! offline device cannot bring it back), restriction, retention, and cursors after deletions.

use std::collections::BTreeSet;

use fieldsync_e2e::World;
use fieldsync_e2e::data;
use fieldsync_e2e::server::server_command;
use serde_json::json;

use crate::rights_support::{
    Api, client_blobs, collect, export_subject, files_holding, household, ids_of,
    publish_household, server_blobs,
};

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

    let (export, csv) = export_subject(&w, person);
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
    let survey = publish_household(&w);
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
    let survey = publish_household(&w);
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
    assert_eq!(device.status()["restricted"], json!(1), "status counts it");
    // The response's processing record shows the restriction.
    let record = export_subject(&w, person).0.to_string();
    assert!(record.contains("subject_restrict"), "{record}");
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
    let survey = publish_household(&w);
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
