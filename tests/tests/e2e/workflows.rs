//! What a field team, a coordinator and ops run into in their first week: each test drives
//! the real binaries through one workflow that went wrong before it was fixed.

use fieldsync_e2e::World;

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
