//! A form written as an XLSForm workbook runs end to end: checked offline, published from the
//! `.xlsx`, collected by an interview over stdin in French (a counted repeat, a choice filter,
//! piped labels, a calculation, metadata filled in by the device) and from an answers file
//! with nested entries, synced, and exported with every entry and computed value.

use fieldsync_e2e::World;
use fieldsync_e2e::bins::fixture;
use serde_json::{Value, json};

#[test]
fn an_xlsform_workbook_with_a_repeat_is_checked_published_collected_and_exported() {
    let w = World::start();
    let book = fixture("forms/household-roster.xlsx");
    let book = book.to_str().expect("utf-8 path");

    // Offline check, no home needed.
    let offline = w.client("nobody");
    let checked = offline.ok(&["survey", "check", book]);
    assert!(checked.contains("is a valid form"), "{checked}");
    let converted = w.out_path("roster.json");
    offline.ok(&[
        "survey",
        "convert",
        book,
        "--out",
        converted.to_str().expect("utf-8"),
    ]);
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(&converted).expect("written")).expect("json");
    assert_eq!(json["settings"]["form_id"], "household_roster");

    let published = w.admin.json(&["survey", "publish", book]);
    assert_eq!(published["form_id"], "household_roster");
    let (tablet, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_roster"]);
    tablet.sync();

    // An interview in French: two members, the child is asked about school.
    let lines = [
        "Achieng", // hh_name
        "1",       // region: north
        "2",       // district: the second of the north's, lakes
        "2",       // n_members: the repeat gets two entries
        "Achieng", "41", // member 1
        "Otieno", "9", "oui", // member 2, school asked, answered by label
        "y",
    ];
    let mut typed = lines.join("\n");
    typed.push('\n');
    let shown = tablet.ok_stdin(
        &["collect", "household_roster", "--lang", "fr"],
        Some(&typed),
    );
    for expected in [
        "Combien de personnes vivent dans le ménage de Achieng ?",
        "-- Membre 2 --",
        "Âge de Otieno",
        "Otieno va-t-il à l'école ?",
        "1) Collines [hills]",
        "submitted response",
    ] {
        assert!(
            shown.contains(expected),
            "the interview shows {expected:?}:\n{shown}"
        );
    }
    assert!(
        !shown.contains("Côte"),
        "the south's district is filtered out:\n{shown}"
    );

    // The same form from an answers file, entries as a list.
    let file = w.file(
        "roster.jsonl",
        &format!(
            "{}\n",
            json!({
                "hh_name": "Wanjiru", "region": "south", "district": "coast", "n_members": 1,
                "member": [{"m_name": "Wanjiru", "m_age": 67}]
            })
        ),
    );
    tablet.json(&[
        "collect",
        "household_roster",
        "--answers",
        file.to_str().expect("utf-8"),
    ]);
    // A wrong entry is refused with its place named.
    let bad = w.file(
        "bad.jsonl",
        &format!(
            "{}\n",
            json!({
                "hh_name": "X", "region": "south", "district": "coast", "n_members": 1,
                "member": [{"m_name": "Y", "m_age": 300}]
            })
        ),
    );
    let refused = tablet.fails(
        &[
            "collect",
            "household_roster",
            "--answers",
            bad.to_str().expect("utf-8"),
        ],
        6,
    );
    assert!(refused.contains("member[1]/m_age"), "{refused}");

    tablet.sync();
    w.admin.sync();
    let rows = w.export_rows("household_roster");
    assert_eq!(rows.len(), 2, "{rows:?}");
    let by_head = |name: &str| -> &Value {
        rows.iter()
            .find(|r| r["answers"]["hh_name"] == name)
            .unwrap_or_else(|| panic!("no response of {name}: {rows:?}"))
    };
    let achieng = &by_head("Achieng")["answers"];
    assert_eq!(achieng["district"], "lakes");
    let members = achieng["member"].as_array().expect("entries exported");
    assert_eq!(members.len(), 2);
    assert_eq!(members[1]["m_name"], "Otieno");
    assert_eq!(members[1]["m_school"], "yes");
    assert!(
        members
            .iter()
            .all(|m| m["_id"].as_str().is_some_and(|id| !id.is_empty()))
    );
    assert_eq!(achieng["n_adults"], "1");
    assert_eq!(achieng["oldest"], "41");
    for meta in ["started", "finished", "visit_day", "device"] {
        assert!(
            achieng[meta].as_str().is_some_and(|v| !v.is_empty()),
            "{meta}: {achieng}"
        );
    }
    let wanjiru = &by_head("Wanjiru")["answers"];
    assert_eq!(wanjiru["member"][0]["m_age"], 67);
    assert_eq!(wanjiru["n_adults"], "1");

    // CSV as ODK exports a form with repeats: a zip of the main table and the members' table.
    let zip_path = w.out_path("roster.zip");
    w.admin.ok(&[
        "export",
        "household_roster",
        "--format",
        "csv",
        "--split-select-multiple",
        "--labels",
        "--out",
        zip_path.to_str().expect("utf-8"),
    ]);
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(&zip_path).expect("zip")).expect("a zip");
    let mut read = |name: &str| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut archive.by_name(name).expect(name), &mut text)
            .expect("readable");
        text
    };
    let main = read("household_roster.csv");
    assert_eq!(
        main.lines().count(),
        3,
        "a header and two responses:\n{main}"
    );
    assert!(
        main.lines().next().is_some_and(|h| h.starts_with("KEY,")),
        "{main}"
    );
    let members = read("household_roster-member.csv");
    let lines: Vec<&str> = members.lines().collect();
    assert_eq!(lines[0], "PARENT_KEY,KEY,m_name,m_age,m_school");
    assert_eq!(lines.len(), 4, "three entries in all:\n{members}");
    assert!(
        lines.iter().any(|l| l.ends_with(",Otieno,9,Yes")),
        "labels instead of names:\n{members}"
    );
    let child_row = lines.iter().find(|l| l.contains("Otieno")).expect("row");
    let parent = child_row.split(',').next().expect("parent key");
    assert!(
        main.contains(parent),
        "PARENT_KEY names a response of the main table"
    );
}
