//! Answers are never stored in plaintext: a sentinel typed in an interview and given in an
//! answers file is nowhere in the client homes (database, WAL, anything else), the server's
//! data directory or the server's logs, after sync and export.

use fieldsync_e2e::data::{self, files_containing, jsonl};
use fieldsync_e2e::{Client, World};

use crate::offline::phone_interview;

#[test]
fn typed_answers_are_nowhere_in_plaintext_at_rest() {
    let mut w = World::start();
    w.publish("household-v1.json");
    let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    let sentinel = format!("Zqx{}Sentinel", uuid::Uuid::new_v4().simple());

    // Typed in an interview...
    let typed_name = format!("Mary {sentinel} Wanjiru");
    let (interview, _) = phone_interview("Interviewer One", &typed_name);
    device.ok_stdin(&["collect", "household_survey"], Some(&interview));
    // ...and given in a file, which the test then deletes (it is the user's own file).
    let mut answers = data::case("household-v1.json", "valid_complete_in_person");
    answers.insert("comments".into(), format!("Said {sentinel} twice").into());
    let file = w.file("answers.jsonl", &jsonl(&[answers]));
    device.ok(&[
        "collect",
        "household_survey",
        "--answers",
        file.to_str().expect("utf-8"),
    ]);
    std::fs::remove_file(&file).expect("remove the answers file");
    device.sync();

    // A coordinator reads and exports them (to a file outside every client home).
    let (coordinator, _) = w.member("coordinator", "Cora Njeri", "coordinator");
    coordinator.sync();
    let shown: Vec<String> = coordinator
        .response_ids(&[])
        .iter()
        .map(|id| coordinator.json(&["response", "show", id]).to_string())
        .collect();
    assert!(
        shown.iter().any(|s| s.contains(&typed_name)),
        "the coordinator reads the typed answer: {shown:?}"
    );
    let out = w.out_path("export.csv");
    coordinator.ok(&[
        "export",
        "household_survey",
        "--format",
        "csv",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let export = std::fs::read_to_string(&out).expect("export written");
    assert_eq!(
        export.matches(&sentinel).count(),
        2,
        "the export holds both answers:\n{export}"
    );
    std::fs::remove_file(&out).expect("remove the export");

    // While everything runs (WAL files present)...
    let wal = data::all_files(w.server.data_dir());
    assert!(
        wal.iter().any(|p| p.to_string_lossy().ends_with("-wal")),
        "expected a server WAL to search: {wal:?}"
    );
    check(
        &w,
        &[&device, &coordinator],
        &sentinel,
        "with the server running",
    );
    // ...and after the server stopped and checkpointed.
    w.server.stop();
    check(
        &w,
        &[&device, &coordinator],
        &sentinel,
        "with the server stopped",
    );
    // The search itself works: the sentinel is found where it is written in plaintext.
    let probe = w.file("probe.txt", &sentinel);
    assert_eq!(
        files_containing(probe.parent().expect("dir"), &sentinel),
        vec![probe]
    );
}

/// Fail if `sentinel` is in any file of the client homes, the server data directory or the
/// server log.
fn check(w: &World, clients: &[&Client], sentinel: &str, when: &str) {
    let mut leaks = Vec::new();
    for client in clients.iter().copied().chain([&w.admin]) {
        leaks.extend(files_containing(client.home(), sentinel));
    }
    leaks.extend(files_containing(w.server.data_dir(), sentinel));
    if w.server.logs().contains(sentinel) {
        leaks.push(w.server.log_path().to_path_buf());
    }
    assert!(
        leaks.is_empty(),
        "{when}: the answer is in plaintext in {leaks:?}"
    );
}
