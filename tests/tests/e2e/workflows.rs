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
