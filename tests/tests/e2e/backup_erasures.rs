//! Backups and erasure: a backup restored after an erasure gets the erasure applied again
//! (`fieldsync-server admin erasures` / `reapply-erasures`) before it serves, keys and all, and
//! a device still holding a copy cannot bring it back.

use fieldsync_e2e::World;
use fieldsync_e2e::data::all_files;
use fieldsync_e2e::server::server_command;
use serde_json::json;

use crate::rights_support::{
    Api, collect, copy_dir, files_holding, household, publish_household, server_blobs,
};

#[test]
fn a_restored_backup_gets_its_erasures_applied_again_and_nothing_comes_back() {
    let mut w = World::start();
    let survey = publish_household(&w);
    let api = Api::new(&w, "admin");
    let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    let person = "Samuel Njoroge";
    let ids = collect(
        &w,
        &device,
        "household_survey",
        &[household(person, "before backup")],
    );
    device.sync();
    api.wait_listed(&survey, 1);
    let secrets = [
        server_blobs(&w, "SELECT wrapped_key FROM docs WHERE id = ?1", &ids[0]),
        server_blobs(&w, "SELECT payload FROM changes WHERE doc_id = ?1", &ids[0]),
    ]
    .concat();

    // A backup, taken while the response exists.
    let data = w.server.data_dir().to_path_buf();
    let backup = w.root().join("backup");
    w.server.stop();
    copy_dir(&data, &backup);
    w.server.restart();

    w.admin.ok(&[
        "subject",
        "erase",
        person,
        "--reason",
        "request 12",
        "--yes",
    ]);
    let list = w.out_path("erased.jsonl");
    let data_arg = data.to_str().expect("utf-8").to_owned();
    let out = server_command(&[
        "admin",
        "erasures",
        "--out",
        list.to_str().expect("utf-8"),
        "--data",
        &data_arg,
    ]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(
        std::fs::read_to_string(&list)
            .expect("list")
            .contains(&ids[0])
    );

    // The disaster: the backup comes back, erased response and all.
    w.server.stop();
    for file in all_files(&data) {
        std::fs::remove_file(file).expect("clear the data directory");
    }
    copy_dir(&backup, &data);
    assert!(
        !files_holding(&data, &secrets).is_empty(),
        "the backup holds the response"
    );
    let out = server_command(&[
        "admin",
        "reapply-erasures",
        "--from",
        list.to_str().expect("utf-8"),
        "--data",
        &data_arg,
    ]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(
        files_holding(&data, &secrets).is_empty(),
        "erased again, keys and all"
    );
    w.server.restart();
    assert_eq!(
        w.admin.json(&["subject", "find", person])["responses"],
        json!([])
    );
    assert!(api.listed(&survey).0.is_empty());
    // The device still holds its copy (its cursor is past the first notice): an edit of it is
    // refused as erased, and it deletes its copy.
    device.ok(&[
        "response",
        "edit",
        &ids[0],
        "--set",
        "comments=after restore",
    ]);
    let report = device.sync();
    assert!(report["erased"].to_string().contains(&ids[0]), "{report}");
    device.fails(&["response", "show", &ids[0]], 7);
}
