//! Bad input and failures get their documented exit code and a clear message, and nothing
//! already stored on the device is lost.

use fieldsync_e2e::World;
use fieldsync_e2e::client::int_field;
use fieldsync_e2e::data::{self, jsonl};

#[test]
fn bad_input_fails_clearly_and_loses_nothing() {
    let mut w = World::start();
    w.publish("household-v1.json");
    let (device, device_id) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    let good = w.file("good.jsonl", &jsonl(&data::household_v1(0, 3)));
    device.ok(&[
        "collect",
        "household_survey",
        "--answers",
        good.to_str().expect("utf-8"),
    ]);
    let stored = device.response_ids(&[]);
    assert_eq!(stored.len(), 3);
    let still_there = |when: &str| {
        assert_eq!(
            device.response_ids(&[]),
            stored,
            "after {when}, the stored responses changed"
        );
    };

    // An unknown survey: exit 7, naming it.
    let err = device.fails(
        &[
            "collect",
            "no_such_survey",
            "--answers",
            good.to_str().expect("utf-8"),
        ],
        7,
    );
    assert!(
        err.contains("no_such_survey"),
        "the message names the survey:\n{err}"
    );
    still_there("an unknown survey");
    let err = device.fails(
        &["response", "show", "00000000-0000-4000-8000-000000000000"],
        7,
    );
    assert!(
        err.contains("00000000-0000-4000-8000-000000000000"),
        "{err}"
    );

    // A bad answers file: exit 6, every problem by line, and only the valid line stored.
    let mut wrong = data::case("household-v1.json", "constraints");
    wrong.insert("enumerator_name".into(), "Wrong Answers".into());
    let text = format!(
        "{}this is not json\n{}",
        jsonl(&data::household_v1(100, 1)),
        jsonl(&[wrong])
    );
    let bad = w.file("bad.jsonl", &text);
    let err = device.fails(
        &[
            "collect",
            "household_survey",
            "--answers",
            bad.to_str().expect("utf-8"),
        ],
        6,
    );
    assert!(
        err.contains("line 2"),
        "the message names the line that is not JSON:\n{err}"
    );
    assert!(
        err.contains("line 3"),
        "the message names the line with invalid answers:\n{err}"
    );
    for question in ["head_name", "head_age", "phone", "children_under5"] {
        assert!(
            err.contains(question),
            "the message lists the problem with {question}:\n{err}"
        );
    }
    let after = device.response_ids(&[]);
    assert_eq!(
        after.len(),
        4,
        "the one valid line is stored, nothing else: {after:?}"
    );
    assert!(stored.iter().all(|id| after.contains(id)));
    let stored = after;
    let missing = w.out_path("missing.jsonl");
    let err = device.fails(
        &[
            "collect",
            "household_survey",
            "--answers",
            missing.to_str().expect("utf-8"),
        ],
        6,
    );
    assert!(
        err.contains("missing.jsonl"),
        "the message names the file:\n{err}"
    );
    assert_eq!(device.response_ids(&[]), stored);

    // A wrong passphrase: exit 5 for reading and for syncing, and the store still opens with
    // the right one.
    let thief = device.with_passphrase("not the passphrase");
    let err = thief.fails(&["response", "list"], 5);
    assert!(err.to_lowercase().contains("passphrase"), "{err}");
    thief.fails(&["sync"], 5);
    let err = device.without_passphrase().fails(&["status"], 5);
    assert!(
        err.contains("FIELDSYNC_PASSPHRASE"),
        "the message says how to give it:\n{err}"
    );
    assert_eq!(device.response_ids(&[]), stored);

    // The server is unreachable: exit 3, and status still shows what waits to be sent.
    w.server.stop();
    let err = device.fails(&["sync"], 3);
    assert!(
        err.contains(&w.server.url()) || err.to_lowercase().contains("reach"),
        "the message says the server cannot be reached:\n{err}"
    );
    let status = device.status();
    assert_eq!(int_field(&status, "pending_responses"), 4, "{status}");
    assert_eq!(device.response_ids(&[]), stored);
    w.server.restart();

    // The device is revoked: exit 4 on its next sync, and its responses stay on it.
    let more = w.file("more.jsonl", &jsonl(&data::household_v1(200, 1)));
    device.ok(&[
        "collect",
        "household_survey",
        "--answers",
        more.to_str().expect("utf-8"),
    ]);
    let stored = device.response_ids(&[]);
    assert_eq!(stored.len(), 5);
    w.admin.ok(&["member", "revoke", &device_id]);
    let err = device.fails(&["sync"], 4);
    assert!(
        err.to_lowercase().contains("revoked") || err.to_lowercase().contains("token"),
        "{err}"
    );
    assert_eq!(
        device.response_ids(&[]),
        stored,
        "a refused sync loses nothing"
    );
    let status = device.status();
    assert_eq!(int_field(&status, "pending_responses"), 5, "{status}");

    // A revoked member is refused too.
    let (coordinator, coordinator_id) = w.member("coordinator", "Cora Njeri", "coordinator");
    coordinator.sync();
    w.admin.ok(&["member", "revoke", &coordinator_id]);
    coordinator.fails(&["sync"], 4);
    coordinator.fails(&["member", "list"], 4);
}

#[test]
fn a_closed_survey_refuses_new_responses_and_keeps_the_old_ones() {
    let w = World::start();
    w.publish("household-v1.json");
    let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    let first = w.file("first.jsonl", &jsonl(&data::household_v1(0, 2)));
    device.ok(&[
        "collect",
        "household_survey",
        "--answers",
        first.to_str().expect("utf-8"),
    ]);
    device.sync();
    let stored = device.response_ids(&[]);

    w.admin
        .ok(&["survey", "status", "household_survey", "closed"]);
    device.sync();
    let more = w.file("more.jsonl", &jsonl(&data::household_v1(10, 1)));
    let err = device.fails(
        &[
            "collect",
            "household_survey",
            "--answers",
            more.to_str().expect("utf-8"),
        ],
        6,
    );
    assert!(
        err.contains("closed"),
        "the message says the survey is closed:\n{err}"
    );
    assert_eq!(
        device.response_ids(&[]),
        stored,
        "the collected responses stay"
    );

    // The coordinator still exports what was collected before the survey closed.
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
    let mut exported: Vec<String> = csv.rows.iter().map(|r| r["response_id"].clone()).collect();
    exported.sort();
    assert_eq!(exported, stored);
    assert!(!w.server.logs().contains("panicked"), "{}", w.log_tail(40));
}
