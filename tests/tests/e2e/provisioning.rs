//! The ops side of the first week: provisioning from the command line, scripting with a
//! config file and JSON errors, what a sync reports, and enrollments that survive a bad link
//! or a code read out over the phone.

use fieldsync_e2e::World;
use fieldsync_e2e::client::str_field;
use fieldsync_e2e::data::{self, jsonl};

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// What ops could only do over HTTP: list enumerators, issue a lost enrollment code again
/// (the old one stops working), revoke by a short id or a name, list the server's
/// organisations; and what scripts need: FIELDSYNC_SERVER, errors as JSON with --json.
#[test]
fn ops_list_enumerators_reissue_codes_and_list_organisations() {
    let w = World::start();
    w.publish("household-v1.json");
    let added = w.admin.json(&[
        "enumerator",
        "add",
        "Baraka Otieno",
        "--survey",
        "household_survey",
    ]);
    let lost_code = str_field(&added, "code");
    let id = str_field(&added, "id");
    let listed = w.admin.json(&["enumerator", "list"]);
    let names: Vec<String> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| str_field(e, "name"))
        .collect();
    assert_eq!(names, ["Baraka Otieno"], "only enumerators: {listed}");
    assert!(
        w.admin
            .ok(&["enumerator", "list"])
            .contains("Baraka Otieno")
    );

    // The code was lost: a new one, by name; the old one no longer enrolls.
    let again = w.admin.json(&["enumerator", "code", "baraka otieno"]);
    assert_eq!(str_field(&again, "id"), id);
    let new_code = str_field(&again, "code");
    assert_ne!(new_code, lost_code);
    let url = w.server.url();
    let device = w.client("tablet-2");
    let refused = device.run_env(
        &["enroll", "--code", &lost_code],
        &[("FIELDSYNC_SERVER", &url)],
    );
    assert_eq!(refused.code, Some(4), "{}", refused.describe());
    let enrolled = device.run_env(
        &["enroll", "--code", &new_code],
        &[("FIELDSYNC_SERVER", &url)],
    );
    assert_eq!(
        enrolled.code,
        Some(0),
        "FIELDSYNC_SERVER names the server: {}",
        enrolled.describe()
    );

    // --json: the error is one JSON object on stderr, saying what and which exit.
    let out = device.run(&["--json", "response", "show", "0000"]);
    assert_eq!(out.code, Some(7), "{}", out.describe());
    let err: serde_json::Value = serde_json::from_str(out.stderr.trim())
        .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {}", out.stderr));
    assert_eq!(
        (&err["code"], &err["exit"]),
        (&"not_found".into(), &7.into()),
        "{err}"
    );
    assert!(str_field(&err, "error").contains("0000"), "{err}");

    // Revoked by an id prefix, as `member list` shows ids.
    let said = w.admin.ok(&["member", "revoke", &id[..8]]);
    assert!(said.contains(&id), "{said}");
    let err = w.admin.fails(&["enumerator", "code", &id], 6);
    assert!(err.contains("revoked"), "{err}");

    let data_dir = w.server.data_dir().to_str().expect("utf-8").to_owned();
    let orgs = fieldsync_e2e::server::server_command(&[
        "admin",
        "list-orgs",
        "--json",
        "--data",
        &data_dir,
    ]);
    assert_eq!(orgs.code, Some(0), "{}", orgs.describe());
    let orgs: serde_json::Value = serde_json::from_str(&orgs.stdout).expect("JSON");
    let orgs = orgs.as_array().expect("a list");
    assert_eq!(orgs.len(), 1, "{orgs:?}");
    assert_eq!(
        orgs[0]["active_principals"], 1,
        "the admin; the enumerator is revoked: {orgs:?}"
    );
}

/// A home's config.toml gives defaults (the server to enroll with, --json, the unlock time);
/// a flag wins over it; a file with a typo is refused naming the file. Shell completions are
/// generated from the command tree.
#[test]
fn a_config_file_gives_defaults_and_flags_override_it() {
    let w = World::start();
    w.publish("household-v1.json");
    let code = |name: &str| {
        str_field(
            &w.admin
                .json(&["enumerator", "add", name, "--survey", "household_survey"]),
            "code",
        )
    };
    let url = w.server.url();
    let device = w.client("tablet-3");
    std::fs::create_dir_all(device.home()).expect("home");
    let config = device.home().join("config.toml");
    std::fs::write(&config, format!("server = \"{url}\"\njson = true\n")).expect("config");
    let enrolled = device.run(&["enroll", "--code", &code("Neema Achieng")]);
    assert_eq!(enrolled.code, Some(0), "{}", enrolled.describe());
    // `json = true`: output is JSON without --json.
    let status: serde_json::Value =
        serde_json::from_str(&device.ok(&["status"])).expect("JSON status");
    assert!(status.get("pending_responses").is_some(), "{status}");

    // A flag wins: the file names a server that is not there.
    let other = w.client("tablet-4");
    std::fs::create_dir_all(other.home()).expect("home");
    std::fs::write(
        other.home().join("config.toml"),
        "server = \"http://127.0.0.1:9\"\n",
    )
    .expect("config");
    let enrolled = other.run(&["enroll", "--server", &url, "--code", &code("Juma Mwangi")]);
    assert_eq!(enrolled.code, Some(0), "{}", enrolled.describe());

    std::fs::write(&config, "sever = \"http://x\"\n").expect("typo");
    let err = device.fails(&["status"], 6);
    assert!(
        err.contains("config.toml") && err.contains("sever"),
        "{err}"
    );

    for shell in ["bash", "zsh", "fish"] {
        let script = w.admin.ok(&["completions", shell]);
        assert!(
            script.contains("fieldsync") && script.contains("unlock"),
            "{shell}: {script}"
        );
    }
}

/// A sync says what it brought: which survey versions arrived (by the form's own version)
/// and how many responses it left with conflicting answers.
#[test]
fn a_sync_reports_the_survey_versions_that_arrived_and_the_conflicts_it_made() {
    let w = World::start();
    w.publish("household-v1.json");
    let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    let rows = w.file("rows.jsonl", &jsonl(&data::household_v1(0, 1)));
    device.ok(&["collect", "household_survey", "--answers", path(&rows)]);
    device.sync();
    let id = device.response_ids(&[])[0].clone();
    let (coordinator, _) = w.member("coordinator", "Grace Coordinator", "coordinator");
    coordinator.sync();

    w.publish("household-v2.json");
    // Both change the same answer while apart.
    device.ok(&["response", "edit", &id, "--set", "comments=from the tablet"]);
    coordinator.ok(&["response", "edit", &id, "--set", "comments=from the office"]);
    let report = device.sync();
    let arrived = report["surveys_arrived"]
        .as_array()
        .expect("a list")
        .clone();
    assert_eq!(arrived.len(), 1, "{report}");
    assert_eq!(
        (
            &arrived[0]["form_id"],
            &arrived[0]["version"],
            &arrived[0]["label"]
        ),
        (&"household_survey".into(), &2.into(), &"2024.2".into()),
        "{report}"
    );
    let report = coordinator.sync();
    assert_eq!(
        report["new_conflicts"],
        serde_json::json!([id]),
        "the coordinator's copy now holds both values: {report}"
    );
    // The tablet pulls the office's value and says so, in words.
    let said = device.ok(&["sync"]);
    assert!(
        said.contains("1 response(s) now have conflicting answers"),
        "{said}"
    );
    let said = coordinator.ok(&["sync"]);
    assert!(
        !said.contains("conflicting answers"),
        "reported once: {said}"
    );
}

/// A bad link used to burn the one-time code: the server enrolled the device, the answer
/// was lost, and the retry was refused as "already used". The retry of the same exchange from
/// the same home now gets the same enrollment; the code still works nowhere else.
#[test]
fn an_enrollment_whose_answer_was_lost_succeeds_when_retried() {
    let w = World::start();
    w.publish("household-v1.json");
    let added = w.admin.json(&[
        "enumerator",
        "add",
        "Halima Yusuf",
        "--survey",
        "household_survey",
    ]);
    let code = str_field(&added, "code");
    let proxy = fieldsync_e2e::FaultProxy::start(w.server.addr(), 7);
    proxy.force(Some(fieldsync_e2e::Fault::LostAck));
    proxy.set_faults(true);
    let device = w.client("tablet-5");
    let url = proxy.url();
    let lost = device.run(&["enroll", "--server", &url, "--code", &code]);
    assert_ne!(
        lost.code,
        Some(0),
        "the answer never arrived: {}",
        lost.describe()
    );
    proxy.set_faults(false);
    let again = device.run(&["enroll", "--server", &url, "--code", &code]);
    assert_eq!(
        again.code,
        Some(0),
        "the retry enrolls: {}",
        again.describe()
    );
    let rows = w.file("rows.jsonl", &jsonl(&data::household_v1(0, 1)));
    device.ok(&["collect", "household_survey", "--answers", path(&rows)]);
    device.sync();
    assert_eq!(
        w.export_rows("household_survey").len(),
        1,
        "the session works"
    );
    // Elsewhere the code is spent.
    let other = w.client("tablet-6");
    let err = other.fails(&["enroll", "--server", &w.server.url(), "--code", &code], 4);
    assert!(err.contains("already used"), "{err}");
}

/// Enrollment codes are short enough to read out over the phone, and typed back any way a
/// person would (lower case, spaces, O for zero); `--qr` draws the code for a camera.
#[test]
fn an_enrollment_code_read_out_over_the_phone_still_enrolls() {
    let w = World::start();
    w.publish("household-v1.json");
    let code = w.admin.ok(&[
        "enumerator",
        "add",
        "Zawadi Njeri",
        "--survey",
        "household_survey",
        "--quiet",
    ]);
    let code = code.trim().to_owned();
    assert_eq!(code.len(), 17, "three groups of five: {code}");
    assert_eq!(code.matches('-').count(), 2, "{code}");
    let as_typed = code.to_lowercase().replace('-', " ").replace('0', "o");
    let device = w.client("tablet-7");
    device.ok(&["enroll", "--server", &w.server.url(), "--code", &as_typed]);
    assert_eq!(
        device.status()["account"]
            .as_str()
            .map(|a| a.contains("Zawadi")),
        Some(true)
    );

    let drawn = w.admin.ok(&["enumerator", "add", "Imani Wafula", "--qr"]);
    assert!(
        drawn.contains('█') || drawn.contains('▀'),
        "a QR code is drawn: {drawn}"
    );
}
