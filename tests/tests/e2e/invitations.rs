//! Email invitations against an SMTP sink on loopback: each person on the list gets one
//! email with a personal link that opens the survey once, and an opt-out link; a second run
//! of the same list sends nothing twice; an address on the do-not-contact list (by the
//! coordinator, or by its own opt-out link) receives nothing; a refused mailbox is reported.

use fieldsync_e2e::smtp::{Mail, SmtpSink};
use fieldsync_e2e::web::WebForm;
use fieldsync_e2e::{Backend, World, fixture};
use serde_json::Value;

/// What the server puts in its emails' links (the test reaches the server itself).
const PUBLIC: &str = "http://surveys.acme.test";

/// The link in `mail` after `marker` (`/f/` or `/o/`), on the test server.
fn link_in(w: &World, mail: &Mail, marker: &str) -> String {
    // Undo quoted-printable soft line breaks and escapes, as a mail program does.
    let text = mail.data.replace("=\r\n", "").replace("=3D", "=");
    let start = text
        .find(&format!("{PUBLIC}{marker}"))
        .unwrap_or_else(|| panic!("no {marker} link in:\n{}", mail.data))
        + PUBLIC.len();
    let path: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-'))
        .collect();
    format!("{}{path}", w.server.url())
}

fn invite(w: &World, survey: &str, list: &std::path::Path) -> Value {
    w.admin
        .json(&["invite", survey, "--to", list.to_str().expect("utf-8 path")])
}

#[test]
fn invitations_arrive_once_with_working_links_and_opted_out_addresses_get_nothing() {
    let sink = SmtpSink::start();
    let port = sink.port();
    let w = World::start_with(
        &Backend::Sqlite,
        &[
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            &port,
            "--smtp-tls",
            "none",
            "--smtp-from",
            "Acme surveys <surveys@acme.test>",
            "--public-url",
            PUBLIC,
        ],
    );
    for form in ["followup-web.json", "household-v1.json"] {
        let path = fixture(&format!("surveys/{form}"));
        w.admin
            .ok(&["survey", "publish", path.to_str().expect("utf-8")]);
    }
    // Zawadi asked not to be contacted, before any invitation.
    w.admin.ok(&["subject", "opt-out", "Zawadi@Example.org"]);
    let list = w.file(
        "people.csv",
        "name,email\nAmina Njeri,amina@example.org\nBaraka,baraka@example.org\n\
         Zawadi,zawadi@example.org\nNobody,bounce@example.org\n",
    );

    let first = invite(&w, "followup", &list);
    assert_eq!(first["added"], 4, "{first}");
    let report = &first["report"];
    assert_eq!(report["sent"], 2, "{first}");
    assert_eq!(report["opted_out"], 1, "{first}");
    assert_eq!(report["failed"], 1, "{first}");
    assert_eq!(report["pending"], 0, "{first}");
    let failure = &report["failures"][0];
    assert_eq!(failure["email"], "bounce@example.org", "{first}");
    assert!(
        failure["error"].as_str().is_some_and(|e| e.contains("550")),
        "the mail server's refusal is reported: {first}"
    );
    let mails = sink.wait_for(2);
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(
        sink.to("zawadi@example.org").is_empty(),
        "an opted-out address gets nothing"
    );
    let amina = &sink.to("amina@example.org")[0];
    assert!(amina.data.contains("Hello Amina Njeri"), "{}", amina.data);
    assert!(amina.data.contains("List-Unsubscribe"), "{}", amina.data);

    // Amina's personal link opens the survey and takes her response, once.
    let link = link_in(&w, amina, "/f/");
    let mut f = WebForm::open(&link);
    assert_eq!(f.question().as_deref(), Some("head"), "{}", f.page);
    for answer in ["Amina Njeri", "41"] {
        f.press("next", &[answer]);
    }
    f.press("next", &["no"]);
    f.press("skip", &[]);
    let review = f.page.clone();
    f.press("submit", &[]);
    assert!(f.page.contains("Thank you"), "{}", f.page);
    // Her phone lost the answer and sends the page again: still thanked, still one response.
    f.page = review;
    f.press("submit", &[]);
    assert!(f.page.contains("Thank you"), "the retry: {}", f.page);
    let again = WebForm::open(&link);
    assert_eq!(again.status, 404, "a personal link takes one response");
    let rows = (0..100)
        .find_map(|_| {
            let rows = w.export_rows("followup");
            if rows.is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            (!rows.is_empty()).then_some(rows)
        })
        .expect("the response reaches the export");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["answers"]["head"], "Amina Njeri");

    // The same list again: nobody new, nothing sent twice.
    let second = invite(&w, "followup", &list);
    assert_eq!(second["added"], 0, "{second}");
    assert_eq!(second["already_invited"], 4, "{second}");
    assert_eq!(second["report"]["answered"], 1, "{second}");
    assert_eq!(sink.mails().len(), 2, "a re-run sends nothing twice");

    // Baraka opts out with his email's link; the next survey's invitations skip him.
    let optout = link_in(&w, &sink.to("baraka@example.org")[0], "/o/");
    let asked = WebForm::open(&optout);
    assert!(asked.page.contains("Stop invitations"), "{}", asked.page);
    let done = reqwest::blocking::Client::new()
        .post(&optout)
        .send()
        .expect("confirm the opt-out");
    assert_eq!(done.status(), 200);
    let other = invite(&w, "household_survey", &list);
    assert_eq!(other["report"]["opted_out"], 2, "{other}");
    assert_eq!(other["report"]["sent"], 1, "{other}");
    sink.wait_for(3);
    assert_eq!(
        sink.to("baraka@example.org").len(),
        1,
        "nothing after his opt-out"
    );
    assert_eq!(sink.to("amina@example.org").len(), 2);
}
