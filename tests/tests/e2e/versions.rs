//! A coordinator publishes a new survey version while a device is in the field: the device
//! gets it at its next sync and collects on it, while a draft started on v1 stays on v1.

use fieldsync_e2e::client::{int_field, str_field};
use fieldsync_e2e::data::{self, Answers, jsonl};
use fieldsync_e2e::{Client, World};
use serde_json::{Value, json};

/// Collect one response from a JSON Lines file; returns its id.
fn collect_one(
    w: &World,
    device: &Client,
    name: &str,
    answers: &Answers,
    extra: &[&str],
) -> String {
    let file = w.file(name, &jsonl(std::slice::from_ref(answers)));
    let mut args = vec![
        "collect",
        "household_survey",
        "--answers",
        file.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    let stored = device.json(&args);
    assert_eq!(stored["stored"], 1, "{stored}");
    stored["ids"][0]
        .as_str()
        .unwrap_or_else(|| panic!("collect --json gave no id: {stored}"))
        .to_owned()
}

#[test]
fn new_version_reaches_the_device_and_v1_drafts_stay_on_v1() {
    let w = World::start();
    let v1 = w.publish("household-v1.json");
    assert_eq!(v1["version"], 1, "{v1}");
    let survey_id = str_field(&v1, "survey_id");
    let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);

    // On v1: one submitted response and one draft whose head is 16 (valid on v1 only).
    let v1_complete = data::case("household-v1.json", "valid_complete_in_person");
    let submitted_v1 = collect_one(&w, &device, "v1.jsonl", &v1_complete, &[]);
    let mut young = data::case("household-v1.json", "valid_head_age_16_allowed_in_v1");
    young.insert("enumerator_name".into(), "Draft Keeper".into());
    let draft = collect_one(&w, &device, "draft.jsonl", &young, &["--draft"]);
    device.sync();

    // The coordinator publishes v2 while the device is in the field.
    let v2 = w.publish("household-v2.json");
    assert_eq!(v2["version"], 2, "{v2}");
    assert_eq!(
        str_field(&v2, "survey_id"),
        survey_id,
        "v2 is a version of the same survey"
    );

    let report = device.sync();
    assert!(int_field(&report, "surveys_updated") >= 1, "{report}");
    let shown_v2 = device
        .json(&["survey", "show", "household_survey", "--version", "2"])
        .to_string();
    assert!(
        shown_v2.contains("members_over65"),
        "v2 on the device: {shown_v2}"
    );
    assert!(
        shown_v2.contains("internet_access"),
        "v2 on the device: {shown_v2}"
    );
    assert!(
        !shown_v2.contains("head_marital"),
        "v2 removed head_marital: {shown_v2}"
    );
    let shown_v1 = device
        .json(&["survey", "show", survey_id.as_str(), "--version", "1"])
        .to_string();
    assert!(
        shown_v1.contains("head_marital"),
        "v1 stays on the device: {shown_v1}"
    );

    // New responses go on v2, with v2's rules: a head aged 16 is refused.
    let v2_young = data::case("household-v2.json", "head_age_16_rejected_in_v2");
    let file = w.file("v2-young.jsonl", &jsonl(&[v2_young]));
    let refused = device.json_code(
        &[
            "collect",
            "household_survey",
            "--answers",
            file.to_str().expect("utf-8"),
        ],
        6,
    );
    let refused_json: Value = serde_json::from_str(refused.stdout.trim())
        .unwrap_or_else(|e| panic!("no JSON for a refused file ({e})\n{}", refused.describe()));
    assert_eq!(refused_json["stored"], 0, "{refused_json}");
    assert_eq!(refused_json["invalid"][0]["line"], 1, "{refused_json}");
    assert!(
        refused_json["invalid"][0]["errors"]
            .to_string()
            .contains("head_age"),
        "{refused_json}"
    );

    let v2_complete = data::case("household-v2.json", "valid_complete_in_person");
    let on_v2 = collect_one(&w, &device, "v2.jsonl", &v2_complete, &[]);
    let shown = device.json(&["response", "show", &on_v2]);
    assert_eq!(data::meta(&shown, "survey_version"), 2, "{shown}");

    // The v1 draft still opens, on v1, and is valid there.
    let shown = device.json(&["response", "show", &draft]);
    assert_eq!(data::meta(&shown, "survey_version"), 1, "{shown}");
    assert_eq!(data::meta(&shown, "status"), "draft", "{shown}");
    assert_eq!(
        shown["errors"],
        json!([]),
        "head_age 16 is valid on v1: {shown}"
    );
    device.ok_stdin(
        &["collect", "household_survey", "--resume", &draft],
        Some(":save\n"),
    );
    let shown = device.json(&["response", "show", &draft]);
    assert_eq!(
        data::meta(&shown, "survey_version"),
        1,
        "resuming keeps v1: {shown}"
    );
    device.ok(&["response", "submit", &draft]);
    let shown = device.json(&["response", "show", &draft]);
    assert_eq!(data::meta(&shown, "status"), "submitted", "{shown}");
    assert_eq!(data::answers_of(&shown)["head_age"], 16, "{shown}");
    device.sync();

    // The export holds both versions' columns, each row on its own version.
    let out = w.out_path("export.csv");
    w.admin.ok(&[
        "export",
        "household_survey",
        "--format",
        "csv",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let csv = data::parse_csv(&std::fs::read_to_string(&out).expect("export written"));
    for column in [
        "head_marital",
        "members_over65",
        "internet_access",
        "head_age",
    ] {
        assert!(
            csv.header.iter().any(|h| h == column),
            "no {column} column in {:?}",
            csv.header
        );
    }
    assert_eq!(csv.rows.len(), 3, "{:?}", csv.rows);
    let row = |id: &str| {
        csv.rows
            .iter()
            .find(|r| r["response_id"] == id)
            .unwrap_or_else(|| panic!("response {id} is not in the export"))
    };
    let r = row(&submitted_v1);
    assert_eq!(r["survey_version"], "1");
    assert_eq!(r["head_marital"], "married");
    assert_eq!(r["members_over65"], "");
    let r = row(&draft);
    assert_eq!(r["survey_version"], "1");
    assert_eq!(r["head_age"], "16");
    assert_eq!(r["status"], "submitted");
    let r = row(&on_v2);
    assert_eq!(r["survey_version"], "2");
    assert_eq!(r["head_marital"], "");
    assert_eq!(
        r["members_over65"],
        data::cell(&v2_complete, "members_over65")
    );
    assert_eq!(
        r["internet_access"],
        data::cell(&v2_complete, "internet_access")
    );
}
