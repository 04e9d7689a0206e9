//! What a field team, a coordinator and ops run into in their first week: each test drives
//! the real binaries through one workflow that went wrong before it was fixed.

use fieldsync_e2e::World;
use fieldsync_e2e::client::{int_field, str_field};
use fieldsync_e2e::data::{self, jsonl};

/// `fieldsync … | head -1` closes the command's output after one line. Every way a command
/// writes (lines, a JSON document, a streamed export) then ends quietly with 141, the status
/// a shell shows for a process SIGPIPE ended; it used to panic with exit 101 ("failed printing
/// to stdout: Broken pipe") or report the pipe as an error.
#[test]
fn a_closed_output_ends_every_command_quietly() {
    let w = World::start();
    w.publish("household-v1.json");
    let (coordinator, _) = w.member("coordinator", "Grace Coordinator", "coordinator");
    coordinator.sync();
    for args in [
        &["survey", "show", "household_survey"][..],
        &["survey", "list"],
        &["--json", "status"],
        &["export", "household_survey", "--format", "csv"],
    ] {
        let out = coordinator.run_unread(args);
        assert_eq!(
            out.code,
            Some(141),
            "`fieldsync {}` with its output closed: {}",
            args.join(" "),
            out.stderr
        );
        assert!(
            out.stderr.trim().is_empty(),
            "`fieldsync {}` says nothing when nobody reads its output: {}",
            args.join(" "),
            out.stderr
        );
    }
}

/// A revoked device is told to enroll again; on the same home that used to fail with
/// "cannot store TEXT value in BLOB column meta.value" after spending the new code, leaving
/// the responses it had not sent stuck. Re-enrolled, it sends them under its new enrollment.
#[test]
fn a_revoked_device_enrolls_again_on_its_home_and_sends_what_waited() {
    let w = World::start();
    w.publish("household-v1.json");
    let (device, first_id) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    let sent = w.file("sent.jsonl", &jsonl(&data::household_v1(0, 2)));
    device.ok(&["collect", "household_survey", "--answers", path(&sent)]);
    device.sync();
    let waiting = w.file("waiting.jsonl", &jsonl(&data::household_v1(100, 3)));
    device.ok(&["collect", "household_survey", "--answers", path(&waiting)]);

    w.admin.ok(&["member", "revoke", &first_id]);
    let err = device.fails(&["sync"], 4);
    assert!(
        err.contains("fieldsync enroll"),
        "the refusal says what to do: {err}"
    );

    let again = w.admin.json(&[
        "enumerator",
        "add",
        "Amina Odhiambo",
        "--survey",
        "household_survey",
    ]);
    let url = w.server.url();
    device.ok(&[
        "enroll",
        "--server",
        &url,
        "--code",
        &str_field(&again, "code"),
    ]);
    assert_eq!(
        int_field(&device.status(), "pending_responses"),
        0,
        "the enrollment's first sync sent the three responses that waited"
    );
    assert_eq!(
        device.response_ids(&[]).len(),
        5,
        "nothing on the device was lost"
    );
    let (coordinator, _) = w.member("coordinator", "Grace Coordinator", "coordinator");
    coordinator.sync();
    assert_eq!(
        coordinator.response_ids(&[]).len(),
        5,
        "the server holds the two sent before and the three sent after"
    );
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The form's `version` setting is its version, as in ODK. The same file published twice
/// used to become versions 2 and 3 without a word; now the second time is a no-op that says
/// so, and a different definition under a version already published is refused.
#[test]
fn publishing_follows_the_forms_own_version() {
    let w = World::start();
    let v1 = fieldsync_e2e::fixture("surveys/household-v1.json");
    let first = w.admin.json(&["survey", "publish", path(&v1)]);
    assert_eq!(
        (first["version"].as_u64(), first["label"].as_str()),
        (Some(1), Some("2024.1")),
        "{first}"
    );

    let again = w.admin.json(&["survey", "publish", path(&v1)]);
    assert_eq!(again["unchanged"], true, "{again}");
    assert_eq!(again["version"], 1, "{again}");
    let said = w.admin.ok(&["survey", "publish", path(&v1)]);
    assert!(
        said.contains("version 2024.1") && said.contains("nothing was published"),
        "the no-op says so, naming the form's version: {said}"
    );
    let shown = w.admin.json(&["survey", "show", "household_survey"]);
    assert_eq!(
        shown["versions"],
        serde_json::json!([1]),
        "no version was added"
    );

    // The same version label with another definition: refused, and nothing changes.
    let mut edited: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&v1).expect("fixture")).expect("json");
    edited["settings"]["form_title"] = "Household survey, edited".into();
    let edited = w.file("edited.json", &edited.to_string());
    let err = w.admin.fails(&["survey", "publish", path(&edited)], 6);
    assert!(
        err.contains("2024.1") && err.contains("already published"),
        "the refusal names the version and what to do: {err}"
    );
    let shown = w.admin.json(&["survey", "show", "household_survey"]);
    assert_eq!(
        shown["versions"],
        serde_json::json!([1]),
        "nothing was published"
    );

    // A new version label publishes the next version.
    let v2 = fieldsync_e2e::fixture("surveys/household-v2.json");
    let second = w.admin.json(&["survey", "publish", path(&v2)]);
    assert_eq!(
        (
            second["version"].as_u64(),
            second["label"].as_str(),
            &second["unchanged"]
        ),
        (Some(2), Some("2024.2"), &serde_json::Value::Bool(false)),
        "{second}"
    );
}

/// A CSV saved on Windows (CRLF line ends) reports an invalid row on its own line, as the
/// same file with LF does; `import --dry-run` checks a file without storing anything.
#[test]
fn import_reports_the_right_lines_for_crlf_files_and_dry_run_stores_nothing() {
    let w = World::start();
    w.publish("household-v1.json");
    let (ops, _) = w.member("ops", "Olu Ops", "ops");
    ops.sync();
    // Two files of different rows, each with its third row invalid.
    let csv = |first: usize| {
        let mut rows = data::household_v1(first, 4);
        rows[2].insert("head_age".into(), serde_json::json!(200));
        data::to_csv(&data::HOUSEHOLD_V1_QUESTIONS, &rows)
    };
    let lf = csv(0);
    assert!(!lf.contains('\r'), "the fixture writer uses LF");
    for (name, text) in [("lf.csv", lf), ("crlf.csv", csv(10).replace('\n', "\r\n"))] {
        let file = w.file(name, &text);
        for dry in [true, false] {
            let mut args = vec!["import", "household_survey", path(&file)];
            if dry {
                args.push("--dry-run");
            }
            let out = ops.json_code(&args, 6);
            let report: serde_json::Value = serde_json::from_str(out.stdout.trim())
                .unwrap_or_else(|e| panic!("no JSON ({e})\n{}", out.describe()));
            let lines: Vec<i64> = report["invalid"]
                .as_array()
                .unwrap_or_else(|| panic!("{report}"))
                .iter()
                .map(|r| int_field(r, "line"))
                .collect();
            assert_eq!(
                lines,
                vec![4],
                "{name}: the header is line 1, the third row line 4"
            );
            let stored = if dry { 0 } else { 3 };
            assert_eq!(report["stored"], stored, "{name}, dry run {dry}: {report}");
            if dry {
                assert_eq!(
                    report["valid"], 3,
                    "{name}: a dry run counts the valid rows"
                );
            }
        }
    }
    assert_eq!(
        ops.responses(&["--survey", "household_survey"]).len(),
        6,
        "three from each real import, none from the dry runs"
    );
}
