//! Exports people can analyse and listings people can tell apart: times in the zone asked
//! for, who collected each response on which device, filters by enumerator and device, and
//! the subject of each response in `response list`.

use fieldsync_e2e::World;
use fieldsync_e2e::data::{self, jsonl, parse_csv};

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Two enumerators on their own tablets; the coordinator exports in Nairobi time, narrowed to
/// one enumerator or one device, and lists responses by who they are about. Before, the times
/// were milliseconds since 1970, no column said which device a response came from, and
/// `--device` only took an internal id.
#[test]
fn exports_show_local_times_and_who_collected_on_which_device() {
    let w = World::start();
    w.publish("household-v1.json");
    let (amina, _) = w.enumerator("tablet-07", "Amina Odhiambo", &["household_survey"]);
    let (baraka, baraka_id) = w.enumerator("tablet-09", "Baraka Mwangi", &["household_survey"]);
    for (device, first) in [(&amina, 0), (&baraka, 4)] {
        let answers = w.file(
            &format!("answers-{first}.jsonl"),
            &jsonl(&data::household_v1(first, 2)),
        );
        device.ok(&["collect", "household_survey", "--answers", path(&answers)]);
        device.sync();
    }

    let listed = w.admin.ok(&["enumerator", "list"]);
    assert!(
        listed.contains("DEVICE") && listed.contains("tablet-07") && listed.contains("tablet-09"),
        "each enumerator's device is listed by its name: {listed}"
    );

    let export = |extra: &[&str], file: &str| {
        let out = w.out_path(file);
        let mut args = vec!["export", "household_survey", "--format", "csv"];
        args.extend(extra);
        args.extend(["--out", path(&out)]);
        w.admin.ok(&args);
        parse_csv(&std::fs::read_to_string(&out).expect("export written")).rows
    };
    let rows = export(&["--tz", "Africa/Nairobi"], "nairobi.csv");
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let created = &row["created_at"];
        assert!(
            created.len() == 29 && created.ends_with("+03:00") && created.as_bytes()[10] == b'T',
            "ISO 8601 in Nairobi time, to the millisecond: {created}"
        );
        let expected_device = match row["enumerator"].as_str() {
            "Amina Odhiambo" => "tablet-07",
            "Baraka Mwangi" => "tablet-09",
            other => panic!("every row names who collected it: {other:?}"),
        };
        assert_eq!(row["device_name"], expected_device);
    }
    let utc = export(&[], "utc.csv");
    assert!(
        utc.iter().all(|r| r["created_at"].ends_with("+00:00")),
        "UTC unless asked otherwise"
    );

    // Narrowed to one enumerator (by name, in any case) or one device (by its name or id).
    let hers = export(&["--enumerator", "amina odhiambo"], "amina.csv");
    assert_eq!(hers.len(), 2);
    assert!(hers.iter().all(|r| r["enumerator"] == "Amina Odhiambo"));
    let tablet = export(&["--device", "tablet-09"], "tablet.csv");
    assert_eq!(tablet.len(), 2);
    assert!(tablet.iter().all(|r| r["device_name"] == "tablet-09"));
    let by_id = export(&["--device", &baraka_id[..8]], "by-id.csv");
    assert_eq!(by_id.len(), 2, "an id prefix names a device too");
    let none = export(
        &["--device", "tablet-07", "--enumerator", "Baraka Mwangi"],
        "none.csv",
    );
    assert!(none.is_empty(), "both filters hold at once");

    // Reshaped CSV is built on the client: the same zone applies.
    let split = export(&["--split-geopoint", "--tz", "+05:30"], "split.csv");
    assert!(
        split.iter().all(|r| r["created_at"].ends_with("+05:30")),
        "{:?}",
        split.first()
    );

    let err = w.admin.fails(
        &[
            "export",
            "household_survey",
            "--format",
            "csv",
            "--enumerator",
            "Chiku",
        ],
        6,
    );
    assert!(
        err.contains("no enumerator \"Chiku\"") && err.contains("enumerator list"),
        "an unknown enumerator is named, with where to look: {err}"
    );
    let err = w.admin.fails(
        &[
            "export",
            "household_survey",
            "--format",
            "csv",
            "--tz",
            "Mars/Olympus",
        ],
        2,
    );
    assert!(
        err.contains("Africa/Nairobi") && err.contains("+03:00"),
        "a zone that does not exist says what to write: {err}"
    );

    // The coordinator's listing shows who each response is about, and narrows by enumerator.
    let (coordinator, _) = w.member("coordinator", "Grace Coordinator", "coordinator");
    coordinator.sync();
    let listing = coordinator.ok(&["response", "list"]);
    assert!(
        listing.contains("SUBJECT")
            && listing.contains("Head Of Household 00000")
            && listing.contains("Head Of Household 00005"),
        "the subject field of each response is listed: {listing}"
    );
    let his = coordinator.json(&["response", "list", "--enumerator", "Baraka Mwangi"]);
    let subjects: Vec<&str> = his
        .as_array()
        .expect("list")
        .iter()
        .map(|r| r["subject"].as_str().expect("subject"))
        .collect();
    assert_eq!(subjects.len(), 2, "{his}");
    assert!(
        subjects
            .iter()
            .all(|s| s.starts_with("Head Of Household 0000")),
        "{subjects:?}"
    );
    assert!(
        !subjects.contains(&"Head Of Household 00000"),
        "{subjects:?}"
    );
    let mine = amina.json(&["response", "list", "--enumerator", "Amina Odhiambo"]);
    assert_eq!(
        mine.as_array().map(Vec::len),
        Some(2),
        "a device finds its own responses by its own name: {mine}"
    );
}
