//! The CLI on a real (pseudo-)terminal, as an enumerator uses it: the passphrase asked once
//! for a working session, an interview answered with `now` and `today`, a draft given up.

use fieldsync_e2e::World;
use fieldsync_e2e::client::str_field;
use fieldsync_e2e::tty::Tty;

/// One working day on a tablet: unlock once (a typo asked again), run commands without the
/// passphrase, answer an interview with `today`, `now` and a `lat, lon` location, give up a
/// second interview half-way (quit, and a saved draft discarded), then lock.
#[test]
fn a_day_on_a_terminal_unlocks_once_and_answers_with_now_and_today() {
    let w = World::start();
    w.publish("health-facility.json");
    let (device, _) = w.enumerator(
        "tablet-1",
        "Amina Odhiambo",
        &["health_facility_assessment"],
    );
    let passphrase = device
        .passphrase()
        .expect("the world's clients have one")
        .to_owned();
    let locked = device.without_passphrase();
    // One hour west of UTC, as a POSIX zone (no zone database needed). West, so that the
    // device's date is never ahead of the UTC date `today()` in constraints is checked with.
    let env = [("TZ", "AZOT+1")];

    let err = locked.fails(&["status"], 5);
    assert!(err.contains("FIELDSYNC_PASSPHRASE"), "{err}");

    let mut t = Tty::start(device.home(), &["unlock", "--for", "10m"], &env);
    t.expect("passphrase:");
    t.send("not-the-passphrase");
    t.expect("wrong passphrase; try again");
    t.expect("passphrase:");
    t.send(&passphrase);
    t.expect("unlocked for 10 minutes");
    let (code, out) = t.finish();
    assert_eq!(code, Some(0), "{out}");
    // Later commands need no passphrase, with or without a terminal.
    locked.ok(&["status"]);

    let mut t = Tty::start(
        device.home(),
        &["collect", "health_facility_assessment"],
        &env,
    );
    for (question, answer) in [
        ("(facility_code:", "KBR-0001"),
        ("(facility_name:", "Kibera clinic"),
        ("(facility_type:", "clinic"),
        ("(ownership:", "public"),
        ("(gps:", "-1.3133, 36.7876"),
        ("(assessment_date:", "today"),
        ("(incharge_name:", "Wanjiru Kamau"),
        ("(doctors:", "2"),
        ("(nurses:", "5"),
        ("(chws:", ""),
        ("(has_electricity:", "no"),
        ("(services:", "outpatient lab"),
        ("(stockout_last_3m:", "no"),
        ("(visit_end:", "now"),
        ("(remarks:", ""),
    ] {
        t.expect(question);
        t.expect("> ");
        t.send(answer);
    }
    t.expect("summary:");
    t.expect("> ");
    t.send("y");
    let (code, out) = t.finish();
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("passphrase:"), "the unlock lasts: {out}");

    let ids = locked.response_ids(&["--status", "submitted"]);
    assert_eq!(ids.len(), 1);
    let shown = locked.json(&["response", "show", &ids[0]]);
    let answer = |name: &str| -> String {
        shown["answers"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == name))
            .map(|x| str_field(x, "value"))
            .unwrap_or_else(|| panic!("no {name} in {shown}"))
    };
    let today_utc = time::OffsetDateTime::now_utc();
    let today_there = today_utc.to_offset(time::UtcOffset::from_hms(-1, 0, 0).expect("offset"));
    assert_eq!(
        answer("assessment_date"),
        today_there.date().to_string(),
        "today is the device's date"
    );
    let end = answer("visit_end");
    assert!(
        end.starts_with(&today_there.date().to_string()) && end.ends_with("-01:00"),
        "now is the device's clock in its offset: {end}"
    );
    let stamped = time::OffsetDateTime::parse(&end, &time::format_description::well_known::Rfc3339)
        .expect("an ISO 8601 time");
    assert!(
        (stamped - today_utc).whole_seconds().abs() < 300,
        "now is now: {end}"
    );
    assert_eq!(answer("gps"), "-1.3133 36.7876");

    // An interview answered up to the facility's name, which the user then leaves.
    let half_way = |code: &str| {
        let mut t = Tty::start(
            device.home(),
            &["collect", "health_facility_assessment"],
            &env,
        );
        t.expect("(facility_code:");
        t.expect("> ");
        t.send(code);
        t.expect("(facility_name:");
        t.expect("> ");
        t
    };
    // Quitting half-way keeps nothing once confirmed...
    let mut t = half_way("KBR-0002");
    t.send(":quit");
    t.expect("quit without saving?");
    t.send("y");
    let (code, out) = t.finish();
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        locked.responses(&[]).len(),
        1,
        "the quit interview left nothing"
    );
    // ...and a draft kept with :save is discarded later.
    let mut t = half_way("KBR-0003");
    t.send(":save");
    let (code, out) = t.finish();
    assert_eq!(code, Some(0), "{out}");
    let drafts = locked.response_ids(&["--status", "draft"]);
    assert_eq!(drafts.len(), 1);
    let mut t = Tty::start(device.home(), &["response", "discard", &drafts[0]], &env);
    t.expect("gone");
    assert_eq!(t.finish().0, Some(0));
    assert_eq!(locked.responses(&[]).len(), 1);

    // Locked again: the next command needs the passphrase.
    let said = locked.ok(&["lock"]);
    assert!(said.contains("locked"), "{said}");
    locked.fails(&["status"], 5);
}
