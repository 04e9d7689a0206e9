//! An enumerator collects 50 responses with the server down, then syncs; a coordinator sees
//! exactly those 50 with the answers typed.

use std::collections::BTreeSet;

use fieldsync_e2e::World;
use fieldsync_e2e::client::int_field;
use fieldsync_e2e::data::{
    self, Answers, HOUSEHOLD_V1_QUESTIONS, assert_answers, assert_csv_answers, jsonl,
};
use serde_json::json;

/// The lines an enumerator types for a phone interview, in form order, and the answers they
/// must produce. Exercises going back (`<`), skipping optional questions (`:skip`), a select
/// answered by its number and one by its name, and submitting with `y`.
pub fn phone_interview(enumerator: &str, head_name: &str) -> (String, Answers) {
    let lines = [
        enumerator,                        // enumerator_name
        "2024-06-14T15:40:00Z",            // interview_start
        "phone",                           // interview_mode (default in_person)
        "yes",                             // consent; location is not relevant by phone
        "Somebody Else",                   // head_name, corrected below
        "<",                               // back to head_name
        head_name,                         // head_name
        "female",                          // head_sex
        ":skip",                           // head_dob (optional)
        "34",                              // head_age
        ":skip",                           // phone (optional)
        ":skip",                           // head_marital (optional)
        "4",                               // head_education: choice 4 = tertiary
        "1",                               // hh_size; children_school is not relevant for 1
        "0",                               // children_under5
        "english",                         // languages
        "52000.5",                         // monthly_income; the dwelling group is not relevant
        "yes",                             // received_aid
        "County government cash transfer", // aid_source
        ":skip",                           // comments (optional)
        "y",                               // submit
    ];
    let mut text = lines.join("\n");
    text.push('\n');
    let answers = json!({
        "enumerator_name": enumerator,
        "interview_start": "2024-06-14T15:40:00Z",
        "interview_mode": "phone",
        "consent": "yes",
        "head_name": head_name,
        "head_sex": "female",
        "head_age": 34,
        "head_education": "tertiary",
        "hh_size": 1,
        "children_under5": 0,
        "languages": "english",
        "monthly_income": 52000.5,
        "received_aid": "yes",
        "aid_source": "County government cash transfer",
    });
    (text, answers.as_object().expect("object").clone())
}

#[test]
fn offline_collection_reaches_the_coordinator_exactly() {
    let mut w = World::start();
    let published = w.publish("household-v1.json");
    assert_eq!(published["form_id"], "household_survey");
    assert_eq!(published["version"], 1);
    let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    device.sync();

    // No signal from here on.
    w.server.stop();

    let mut expected = data::household_v1(0, 49);
    let file = w.file("answers.jsonl", &jsonl(&expected));
    let stored = device.json(&[
        "collect",
        "household_survey",
        "--answers",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(stored["stored"], 49, "{stored}");
    assert_eq!(stored["invalid"], json!([]), "{stored}");
    let file_ids: BTreeSet<String> = stored["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("collect --json has no ids: {stored}"))
        .iter()
        .map(|v| v.as_str().expect("id is a string").to_owned())
        .collect();
    assert_eq!(file_ids.len(), 49);

    let (interview, interview_answers) = phone_interview("Interviewer 00049", "Grace Achieng");
    device.ok_stdin(&["collect", "household_survey"], Some(&interview));
    expected.push(interview_answers);

    let device_ids = device.response_ids(&[]);
    assert_eq!(device_ids.len(), 50, "the device lists {device_ids:?}");
    assert!(file_ids.iter().all(|id| device_ids.contains(id)));
    let status = device.status();
    assert_eq!(int_field(&status, "pending_responses"), 50, "{status}");

    // Back in range.
    w.server.restart();
    let report = device.sync();
    assert_eq!(report["pushed_docs"], 50, "{report}");
    assert_eq!(report["rejected"], json!([]), "{report}");
    let status = device.status();
    assert_eq!(int_field(&status, "pending_responses"), 0, "{status}");
    assert_eq!(int_field(&status, "pending_changes"), 0, "{status}");

    let (coordinator, _) = w.member("coordinator", "Cora Njeri", "coordinator");
    coordinator.sync();
    let listed = coordinator.response_ids(&["--survey", "household_survey"]);
    assert_eq!(listed, device_ids, "the coordinator lists other responses");

    // Exported values, response by response, matched by the unique enumerator name.
    let out = w.out_path("export.jsonl");
    coordinator.ok(&[
        "export",
        "household_survey",
        "--format",
        "jsonl",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let rows = data::parse_jsonl(&std::fs::read_to_string(&out).expect("export written"));
    assert_eq!(rows.len(), 50);
    let exported = data::by_answer(&rows, "enumerator_name");
    let mut exported_ids: Vec<String> = exported.values().map(|(id, _)| id.clone()).collect();
    exported_ids.sort();
    assert_eq!(exported_ids, device_ids);
    for want in &expected {
        let key = data::cell(want, "enumerator_name");
        let (id, got) = exported
            .get(&key)
            .unwrap_or_else(|| panic!("no exported response by {key}"));
        assert_answers(want, got, &format!("response {id} ({key})"));
    }

    // The CSV export holds the same values.
    let csv_out = w.out_path("export.csv");
    coordinator.ok(&[
        "export",
        "household_survey",
        "--format",
        "csv",
        "--out",
        csv_out.to_str().expect("utf-8"),
    ]);
    let csv = data::parse_csv(&std::fs::read_to_string(&csv_out).expect("export written"));
    let meta = [
        "response_id",
        "survey_version",
        "status",
        "author_device",
        "enumerator",
        "device_name",
        "created_at",
        "updated_at",
    ];
    assert_eq!(csv.header[..8], meta.map(String::from), "{:?}", csv.header);
    let questions: Vec<String> = HOUSEHOLD_V1_QUESTIONS
        .iter()
        .map(|q| q.to_string())
        .collect();
    assert_eq!(csv.header[8..], questions[..], "one column per question");
    assert_eq!(csv.rows.len(), 50);
    for want in &expected {
        let key = data::cell(want, "enumerator_name");
        let row = csv
            .rows
            .iter()
            .find(|r| r["enumerator_name"] == key)
            .unwrap_or_else(|| panic!("no CSV row by {key}"));
        assert_eq!(row["survey_version"], "1");
        assert_eq!(row["status"], "submitted");
        assert_eq!(
            row["enumerator"], "Amina Odhiambo",
            "who collected it, by name"
        );
        assert_csv_answers(want, row, &questions, &key);
    }
}
