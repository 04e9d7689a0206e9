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
    // Shown by the form's version wherever a user sees one.
    let shown = w.admin.ok(&["survey", "show", "household_survey"]);
    assert!(shown.contains("version 2024.2 (number 2)"), "{shown}");
    let shown = w
        .admin
        .ok(&["survey", "show", "household_survey", "--version", "1"]);
    assert!(shown.contains("version 2024.1 (number 1)"), "{shown}");
    w.admin.sync();
    let listed = w.admin.ok(&["survey", "list"]);
    assert!(listed.contains("2024.2 (2)"), "{listed}");
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

/// Drafts used to sync into exports with no way to give one up. Now a draft is discarded
/// (gone if it never left the device, marked `discarded` everywhere if it did), exports hold
/// handed-in responses unless asked otherwise, and both listings filter by status, day and
/// device.
#[test]
fn drafts_are_discarded_and_stay_out_of_exports_unless_asked_for() {
    let w = World::start();
    w.publish("household-v1.json");
    let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    let submitted = w.file("submitted.jsonl", &jsonl(&data::household_v1(0, 2)));
    device.ok(&["collect", "household_survey", "--answers", path(&submitted)]);
    let drafts = w.file("drafts.jsonl", &jsonl(&data::household_v1(10, 2)));
    device.ok(&[
        "collect",
        "household_survey",
        "--answers",
        path(&drafts),
        "--draft",
    ]);
    device.sync();
    let synced_drafts = device.response_ids(&["--status", "draft"]);
    assert_eq!(synced_drafts.len(), 2);
    let local = w.file("local.jsonl", &jsonl(&data::household_v1(20, 1)));
    device.ok(&[
        "collect",
        "household_survey",
        "--answers",
        path(&local),
        "--draft",
    ]);
    let never_sent = device
        .response_ids(&["--status", "draft"])
        .into_iter()
        .find(|id| !synced_drafts.contains(id))
        .expect("the new draft");

    assert_eq!(
        w.export_rows("household_survey").len(),
        2,
        "the export holds the two submitted responses, not the drafts"
    );

    // A draft that never left the device disappears.
    let said = device.ok(&["response", "discard", &never_sent]);
    assert!(said.contains("gone"), "{said}");
    assert!(!device.response_ids(&[]).contains(&never_sent));
    // One the server holds is marked discarded, and the mark travels.
    let gone = &synced_drafts[0];
    let marked = device.json(&["response", "discard", gone]);
    assert_eq!(
        (&marked["deleted"], &marked["status"]),
        (&serde_json::json!(false), &serde_json::json!("discarded")),
        "{marked}"
    );
    device.sync();
    let submitted_id = device.response_ids(&["--status", "submitted"])[0].clone();
    let err = device.fails(&["response", "discard", &submitted_id], 6);
    assert!(
        err.contains("not a draft") && err.contains("rejected"),
        "a handed-in response is not discarded, and the message says what to do instead: {err}"
    );
    let err = device.fails(&["response", "edit", gone, "--set", "comments=late"], 6);
    assert!(err.contains("discarded"), "{err}");

    let (coordinator, _) = w.member("coordinator", "Grace Coordinator", "coordinator");
    coordinator.sync();
    assert_eq!(
        coordinator.response_ids(&["--status", "discarded"]),
        vec![gone.clone()]
    );
    let export = |extra: &[&str]| -> Vec<serde_json::Value> {
        let out = w.out_path("filtered.jsonl");
        let mut args = vec![
            "export",
            "household_survey",
            "--format",
            "jsonl",
            "--out",
            path(&out),
        ];
        args.extend_from_slice(extra);
        coordinator.ok(&args);
        data::parse_jsonl(&std::fs::read_to_string(&out).expect("export written"))
    };
    let statuses = |rows: &[serde_json::Value]| -> Vec<String> {
        let mut s: Vec<String> = rows.iter().map(|r| str_field(r, "status")).collect();
        s.sort();
        s
    };
    assert_eq!(statuses(&export(&[])), ["submitted", "submitted"]);
    assert_eq!(statuses(&export(&["--status", "draft"])), ["draft"]);
    assert_eq!(
        statuses(&export(&["--status", "all"])),
        ["discarded", "draft", "submitted", "submitted"]
    );
    assert_eq!(
        statuses(&export(&["--status", "draft,discarded"])),
        ["discarded", "draft"]
    );

    // Day and device filters, on the export and on the device's own listing.
    let device_name = str_field(&export(&[])[0], "author_device");
    assert_eq!(export(&["--device", &device_name]).len(), 2);
    let unknown = coordinator.fails(
        &[
            "export",
            "household_survey",
            "--format",
            "jsonl",
            "--device",
            "someone-else",
        ],
        6,
    );
    assert!(unknown.contains("no device \"someone-else\""), "{unknown}");
    assert_eq!(
        export(&["--since", "2000-01-01", "--until", "2999-12-31"]).len(),
        2
    );
    assert_eq!(export(&["--since", "2999-01-01"]).len(), 0);
    assert_eq!(device.responses(&["--since", "2999-01-01"]).len(), 0);
    assert_eq!(device.responses(&["--until", "2000-01-01"]).len(), 0);
    assert_eq!(device.responses(&["--device", &device_name]).len(), 4);
    let err = coordinator.fails(
        &[
            "export",
            "household_survey",
            "--format",
            "csv",
            "--since",
            "last week",
        ],
        6,
    );
    assert!(
        err.contains("last week") && err.contains("YYYY-MM-DD"),
        "a date that is not one is refused with the form to use: {err}"
    );
}

/// A reviewed response used to change silently: an enumerator's edit left it `reviewed`.
/// Reviews now have ODK Central's states and a comment; an edit after a review shows as
/// `edited`; an approved response takes no more changes from devices, on the device and on
/// the server (for a device that edits before it learns of the approval).
#[test]
fn reviews_have_states_and_comments_and_approved_responses_stay_as_approved() {
    let w = World::start();
    w.publish("household-v1.json");
    let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    let rows = w.file("rows.jsonl", &jsonl(&data::household_v1(0, 4)));
    device.ok(&["collect", "household_survey", "--answers", path(&rows)]);
    device.sync();
    let ids = device.response_ids(&[]);
    let (approved, issues, rejected, late) = (&ids[0], &ids[1], &ids[2], &ids[3]);

    let (coordinator, _) = w.member("coordinator", "Grace Coordinator", "coordinator");
    coordinator.sync();
    coordinator.ok(&["response", "review", approved, "--state", "approved"]);
    coordinator.ok(&[
        "response",
        "review",
        issues,
        "--state",
        "has_issues",
        "--comment",
        "check the age",
    ]);
    coordinator.ok(&["response", "review", rejected, "--state", "rejected"]);
    let err = device.fails(&["response", "review", late], 4);
    assert!(err.contains("coordinators"), "{err}");
    coordinator.sync();

    device.sync();
    let shown = device.json(&["response", "show", issues]);
    assert_eq!(
        (&shown["status"], &shown["review_comment"]),
        (
            &serde_json::json!("has_issues"),
            &serde_json::json!("check the age")
        ),
        "{shown}"
    );
    assert!(
        device
            .ok(&["response", "show", issues])
            .contains("review comment: check the age")
    );
    // Fixing a response sent back shows that it changed since the review.
    device.ok(&["response", "edit", issues, "--set", "comments=age checked"]);
    assert_eq!(
        str_field(&device.json(&["response", "show", issues]), "status"),
        "edited"
    );
    // An approved one is not changed from a device.
    let err = device.fails(
        &["response", "edit", approved, "--set", "comments=again"],
        6,
    );
    assert!(err.contains("approved"), "{err}");

    // The device edits one the coordinator approves meanwhile: the server refuses the edit.
    coordinator.ok(&["response", "review", late, "--state", "approved"]);
    coordinator.sync();
    device.ok(&["response", "edit", late, "--set", "comments=too late"]);
    let out = device.run(&["--json", "sync"]);
    assert_eq!(out.code, Some(6), "{}", out.describe());
    assert!(
        out.stdout.contains(late.as_str()) && out.stdout.contains("approved"),
        "the sync names the refused response and why: {}",
        out.describe()
    );

    coordinator.sync();
    let rows = w.export_rows("household_survey");
    let by_id = |id: &str| {
        rows.iter()
            .find(|r| str_field(r, "response_id") == id)
            .unwrap_or_else(|| panic!("{id} exported"))
            .clone()
    };
    assert_eq!(str_field(&by_id(issues), "status"), "edited");
    assert_eq!(by_id(issues)["answers"]["comments"], "age checked");
    assert_eq!(str_field(&by_id(approved), "status"), "approved");
    assert_eq!(str_field(&by_id(rejected), "status"), "rejected");
    assert_eq!(str_field(&by_id(late), "status"), "approved");
    assert_ne!(
        by_id(late)["answers"]["comments"],
        "too late",
        "the edit of an approved response was not taken"
    );
    assert_eq!(
        coordinator.response_ids(&["--status", "edited"]),
        vec![issues.clone()]
    );
}

/// A partly failed import says to fix the rows and run it again; that used to store every
/// row again. Each row now has a stable id (the file's own `KEY`/`instanceID` column, or one
/// made from its answers), so a re-run adds only what was not stored.
#[test]
fn an_import_run_again_after_fixing_its_rows_stores_nothing_twice() {
    let w = World::start();
    w.publish("household-v1.json");
    let (ops, _) = w.member("ops", "Olu Ops", "ops");
    ops.sync();
    let import = |file: &std::path::Path, code: i32| -> serde_json::Value {
        let out = ops.json_code(&["import", "household_survey", path(file)], code);
        serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("no JSON ({e})\n{}", out.describe()))
    };
    let mut rows = data::household_v1(0, 4);
    let good_age = rows[2]["head_age"].clone();
    rows[2].insert("head_age".into(), serde_json::json!(200));
    let file = w.file(
        "households.csv",
        &data::to_csv(&data::HOUSEHOLD_V1_QUESTIONS, &rows),
    );
    let first = import(&file, 6);
    assert_eq!(
        (&first["stored"], &first["already_stored"]),
        (&3.into(), &0.into()),
        "{first}"
    );

    // The user fixes the row and runs the same command, as the message told them.
    rows[2].insert("head_age".into(), good_age);
    std::fs::write(&file, data::to_csv(&data::HOUSEHOLD_V1_QUESTIONS, &rows)).expect("rewrite");
    let second = import(&file, 0);
    assert_eq!(
        (&second["stored"], &second["already_stored"]),
        (&1.into(), &3.into()),
        "{second}"
    );
    let third = import(&file, 0);
    assert_eq!(
        (&third["stored"], &third["already_stored"]),
        (&0.into(), &4.into()),
        "{third}"
    );
    let said = ops.ok(&["import", "household_survey", path(&file)]);
    assert!(said.contains("4 already stored"), "{said}");

    // A file with its own ids (ODK's KEY column, `uuid:` prefix) is stored under them.
    let keyed_rows = data::household_v1(50, 2);
    let keys = [
        "uuid:6f1c2a4e-8b3d-4c5e-9f60-0a1b2c3d4e5f",
        "uuid:7a2d3b5f-9c4e-4d6f-8a71-1b2c3d4e5f60",
    ];
    let csv = data::to_csv(&data::HOUSEHOLD_V1_QUESTIONS, &keyed_rows);
    let keyed: String = csv
        .lines()
        .enumerate()
        .map(|(i, line)| match i {
            0 => format!("KEY,{line}\n"),
            n => format!("{},{line}\n", keys[n - 1]),
        })
        .collect();
    let keyed_file = w.file("keyed.csv", &keyed);
    assert_eq!(import(&keyed_file, 0)["stored"], 2);
    assert_eq!(import(&keyed_file, 0)["already_stored"], 2);
    let ids = ops.response_ids(&[]);
    for key in keys {
        assert!(
            ids.contains(&key.trim_start_matches("uuid:").to_owned()),
            "{key} is the response's id: {ids:?}"
        );
    }
    // JSON Lines with an instanceID key, likewise.
    let mut line = data::household_v1(60, 1).remove(0);
    line.insert(
        "instanceID".into(),
        "uuid:0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f".into(),
    );
    let jsonl_file = w.file("one.jsonl", &jsonl(&[line]));
    assert_eq!(import(&jsonl_file, 0)["stored"], 1);
    assert_eq!(import(&jsonl_file, 0)["already_stored"], 1);
    assert!(
        ops.response_ids(&[])
            .contains(&"0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f".to_owned())
    );

    ops.sync();
    assert_eq!(
        w.export_rows("household_survey").len(),
        7,
        "four rows, two keyed rows and one line, each once"
    );
}
