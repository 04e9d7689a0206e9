//! Nothing typed is lost: an interview whose process is killed mid-way (a flat battery, a
//! closed terminal) leaves a draft holding every answer given so far, which resumes and syncs.

use std::io::Write;
use std::time::{Duration, Instant};

use fieldsync_e2e::World;
use fieldsync_e2e::client::str_field;
use fieldsync_e2e::data::answers_of;

#[test]
fn a_killed_interview_keeps_every_answer_typed_so_far() {
    let world = World::start();
    world.publish("household-v1.json");
    let (device, _) = world.enumerator("tablet", "Amina Odhiambo", &["household_survey"]);

    let mut child = device.spawn_typing(&["collect", "household_survey"]);
    let mut stdin = child.stdin.take().expect("stdin pipe");
    // enumerator_name, interview_start, interview_mode, consent, head_name, head_sex — and the
    // pipe stays open, as a person still thinking about the next question.
    for line in [
        "Amina Odhiambo",
        "2024-06-14T09:12:00+03:00",
        "phone",
        "yes",
        "Grace Wanjiru",
        "female",
    ] {
        writeln!(stdin, "{line}").expect("type an answer");
    }
    stdin.flush().expect("flush");

    // Wait (bounded) until the draft on disk holds the last answer typed, then kill -9.
    let started = Instant::now();
    let draft = loop {
        let drafts = device.json(&["response", "list", "--status", "draft"]);
        let found = drafts.as_array().and_then(|rows| rows.first()).cloned();
        if let Some(row) = found {
            let shown = device.json(&["response", "show", &str_field(&row, "id")]);
            if answers_of(&shown).get("head_sex").and_then(|v| v.as_str()) == Some("female") {
                break row;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the interview's answers never reached the store"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    child.kill().expect("kill the interview");
    let _ = child.wait();
    drop(stdin);

    let id = str_field(&draft, "id");
    let answers = answers_of(&device.json(&["response", "show", &id]));
    for (question, value) in [
        ("enumerator_name", "Amina Odhiambo"),
        ("interview_mode", "phone"),
        ("consent", "yes"),
        ("head_name", "Grace Wanjiru"),
        ("head_sex", "female"),
    ] {
        assert_eq!(
            answers.get(question).and_then(|v| v.as_str()),
            Some(value),
            "{question} after the kill: {answers:?}"
        );
    }

    // The draft resumes at its first unanswered question and can be handed in.
    let rest = [
        ":skip",   // head_dob (optional)
        "34",      // head_age
        ":skip",   // phone (optional)
        ":skip",   // head_marital (optional)
        "2",       // head_education, by number
        "1",       // hh_size
        "0",       // children_under5
        "english", // languages
        "1000",    // monthly_income; the dwelling group is not relevant by phone
        "no",      // received_aid
        ":skip",   // comments (optional)
        "y",       // submit
    ];
    let mut typed = rest.join("\n");
    typed.push('\n');
    device.ok_stdin(
        &["collect", "household_survey", "--resume", &id],
        Some(&typed),
    );
    let shown = device.json(&["response", "show", &id]);
    assert_eq!(
        shown["status"], "submitted",
        "the resumed draft is handed in: {shown}"
    );
    let answers = answers_of(&shown);
    assert_eq!(
        answers.get("head_name").and_then(|v| v.as_str()),
        Some("Grace Wanjiru")
    );
    assert_eq!(
        answers.get("head_age").and_then(|v| v.as_i64()),
        Some(34),
        "{answers:?}"
    );
    let report = device.sync();
    assert_eq!(report["pushed_docs"], 1, "{report}");
}
