//! `admin backup` while devices push, `admin restore` into a new data directory, and the
//! devices that synced after the backup bring back, at their next sync, everything the
//! backup lacks: nothing acknowledged is lost.

use std::collections::BTreeSet;

use fieldsync_e2e::server::server_command;
use fieldsync_e2e::{Client, World};

use crate::rights_support::{collect, household, publish_household};

/// The response ids and head names of an export.
fn exported(w: &World) -> BTreeSet<(String, String)> {
    w.export_rows("household_survey")
        .iter()
        .map(|r| {
            (
                r["response_id"].as_str().unwrap_or_default().to_owned(),
                r["head_name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A server with the household survey and one device that has synced one response.
fn a_device_with_a_synced_response() -> (World, Client) {
    let w = World::start();
    publish_household(&w);
    let (amina, _) = w.enumerator("tablet-a", "Amina Odhiambo", &["household_survey"]);
    collect(
        &w,
        &amina,
        "household_survey",
        &[household("Achieng One", "before")],
    );
    amina.sync();
    (w, amina)
}

#[test]
fn a_backup_taken_during_pushes_restores_and_devices_bring_back_what_it_lacks() {
    let (mut w, amina) = a_device_with_a_synced_response();
    let (baraka, _) = w.enumerator("tablet-b", "Baraka Mwangi", &["household_survey"]);

    let data = w.server.data_dir().to_path_buf();
    let backup = w.root().join("fieldsync-backup.sqlite");
    let (data_arg, backup_arg) = (
        data.to_str().expect("utf-8").to_owned(),
        backup.to_str().expect("utf-8").to_owned(),
    );
    // The backup runs while another device collects and pushes.
    std::thread::scope(|s| {
        let pushing = s.spawn(|| {
            for i in 0..3 {
                collect(
                    &w,
                    &baraka,
                    "household_survey",
                    &[household(&format!("Baraka Head {i}"), "during")],
                );
                baraka.sync();
            }
        });
        let out = server_command(&["admin", "backup", "--data", &data_arg, "--out", &backup_arg]);
        assert_eq!(out.code, Some(0), "{}", out.describe());
        assert!(out.stdout.contains("integrity checked"), "{}", out.stdout);
        pushing.join().expect("the pushing device");
    });
    // After the backup: more responses, acknowledged by the server.
    collect(
        &w,
        &amina,
        "household_survey",
        &[household("Achieng Two", "after")],
    );
    amina.sync();
    let before = exported(&w);
    assert_eq!(before.len(), 5, "{before:?}");
    // A coordinator's store holds copies of every response.
    w.admin.sync();

    // The server's disk is lost; the backup is restored into a new data directory, with the
    // master key kept apart from it.
    w.server.stop();
    let restored = w.root().join("restored-data");
    std::fs::create_dir_all(&restored).expect("create the new directory");
    std::fs::copy(data.join("master.key"), restored.join("master.key")).expect("the master key");
    let restored_arg = restored.to_str().expect("utf-8");
    let out = server_command(&[
        "admin",
        "restore",
        "--from",
        &backup_arg,
        "--data",
        restored_arg,
    ]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let out = server_command(&["admin", "verify", "--data", restored_arg]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(out.stdout.contains("audit chain"), "{}", out.stdout);
    w.server.restart_on(&restored);
    let lacking = exported(&w);
    assert!(
        lacking.len() < before.len(),
        "the backup was taken before the last response: {lacking:?}"
    );

    // The admin syncs first: its copies of the devices' responses are left to the devices
    // (pushed from here, a response would become the admin's and its device's refused).
    let report = w.admin.sync();
    assert_eq!(report["requeued"], 0, "{report}");
    // Each device finds its cursor belongs to the old database and pushes everything again.
    let report = amina.sync();
    assert_eq!(report["requeued"], 2, "{report}");
    assert_eq!(report["rejected"], serde_json::json!([]), "{report}");
    baraka.sync();
    assert_eq!(exported(&w), before, "nothing acknowledged is lost");
    // A later sync is an ordinary one again.
    let again = amina.sync();
    assert_eq!(again["requeued"], 0, "{again}");
}

/// A backup never overwrites a file, a restore never replaces a database unless told, and
/// nothing restores into the directory of a running server.
#[test]
fn backup_and_restore_refuse_to_overwrite_and_a_running_server_s_directory() {
    let w = World::start();
    let data = w.server.data_dir().to_str().expect("utf-8").to_owned();
    let backup = w.root().join("b.sqlite");
    let backup_arg = backup.to_str().expect("utf-8");
    std::fs::write(&backup, "keep me").expect("a file in the way");
    let out = server_command(&["admin", "backup", "--data", &data, "--out", backup_arg]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert_eq!(std::fs::read_to_string(&backup).expect("kept"), "keep me");
    std::fs::remove_file(&backup).expect("remove");
    let out = server_command(&["admin", "backup", "--data", &data, "--out", backup_arg]);
    assert_eq!(out.code, Some(0), "{}", out.describe());

    let out = server_command(&["admin", "restore", "--from", backup_arg, "--data", &data]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(out.stderr.contains("is in use"), "{}", out.stderr);
    let other = w.root().join("other");
    std::fs::create_dir_all(&other).expect("dir");
    let out = server_command(&[
        "admin",
        "restore",
        "--from",
        backup_arg,
        "--data",
        other.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.code, Some(2), "no master key there: {}", out.describe());
    assert!(out.stderr.contains("master key"), "{}", out.stderr);
}

/// `admin rotate-master-key` on a stopped server: a new key file, every organisation key and
/// the operator audit chain rewrapped, everything still readable, every audit chain intact;
/// the old key no longer opens the database.
#[test]
fn rotating_the_master_key_keeps_everything_readable_and_retires_the_old_key() {
    let (mut w, amina) = a_device_with_a_synced_response();
    let before = exported(&w);
    // The operator's own audit chain gets an entry (a support agent is created).
    let data = w.server.data_dir().to_path_buf();
    let data_arg = data.to_str().expect("utf-8").to_owned();
    let out = server_command(&[
        "admin",
        "create-support",
        "--name",
        "Support One",
        "--data",
        &data_arg,
    ]);
    assert_eq!(out.code, Some(0), "{}", out.describe());

    let out = server_command(&["admin", "rotate-master-key", "--data", &data_arg]);
    assert_eq!(
        out.code,
        Some(2),
        "refused while the server runs: {}",
        out.describe()
    );
    w.server.stop();
    let old_key = std::fs::read(data.join("master.key")).expect("the old key");
    let out = server_command(&["admin", "rotate-master-key", "--data", &data_arg]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(
        out.stdout.contains("1 organisation key(s)"),
        "{}",
        out.stdout
    );
    let new_key = std::fs::read(data.join("master.key")).expect("the new key");
    assert_ne!(old_key, new_key);
    assert!(!data.join("master.key.next").exists());
    // The old key is kept beside it, for the backups taken before.
    let kept: Vec<_> = std::fs::read_dir(&data)
        .expect("list")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".old"))
        .collect();
    assert_eq!(kept.len(), 1, "{:?}", out.stdout);
    assert_eq!(std::fs::read(kept[0].path()).expect("kept"), old_key);
    assert!(out.stdout.contains(".old"), "{}", out.stdout);
    let out = server_command(&["admin", "verify", "--data", &data_arg]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(
        out.stdout.contains("operator audit chain of") && !out.stdout.contains("PROBLEM"),
        "{}",
        out.stdout
    );

    w.server.restart();
    assert_eq!(
        exported(&w),
        before,
        "every response reads under the new key"
    );
    collect(
        &w,
        &amina,
        "household_survey",
        &[household("Achieng Two", "after")],
    );
    amina.sync();
    assert_eq!(exported(&w).len(), 2);
    w.server.stop();

    // The old key is retired: a server given it refuses to start.
    let old = w.root().join("old.key");
    std::fs::write(&old, &old_key).expect("keep the old key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = server_command(&[
        "admin",
        "list-orgs",
        "--data",
        &data_arg,
        "--master-key",
        old.to_str().expect("utf-8"),
    ]);
    assert_ne!(out.code, Some(0), "{}", out.describe());
    assert!(out.stderr.contains("master key"), "{}", out.stderr);
}
