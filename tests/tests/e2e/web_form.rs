//! A respondent answers a survey in headless Chromium at a phone's width: a password-protected
//! link, a skip, a calculation, a repeat and a constraint error, the connection lost mid-way
//! and the page sent when it returns; the coordinator's export holds the response; a wrong
//! password and an expired link are refused. Screenshots of each step are written under the
//! test target directory (`web-form/`), to be looked at.

use std::path::PathBuf;
use std::time::Duration;

use fieldsync_e2e::browser::{Browser, PHONE};
use fieldsync_e2e::{Fault, FaultProxy, World, fixture};

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-form")
}

/// A link to the follow-up survey, created with the CLI as a coordinator would.
fn link(w: &World, extra: &[&str], password: Option<&str>) -> String {
    let mut args = vec!["link", "create", "followup", "--json"];
    args.extend_from_slice(extra);
    if password.is_some() {
        args.push("--password");
    }
    let env: Vec<(&str, &str)> = password
        .map(|p| vec![("FIELDSYNC_LINK_PASSWORD", p)])
        .unwrap_or_default();
    let out = w.admin.run_env(&args, &env);
    assert_eq!(out.code, Some(0), "link create: {}", out.describe());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("link JSON");
    let url = v["url"].as_str().expect("url").to_owned();
    // The path, to open through the proxy.
    url[url.find("/f/").expect("a /f/ path")..].to_owned()
}

#[test]
fn a_respondent_answers_a_protected_link_in_a_browser_through_a_dropped_connection() {
    let w = World::start();
    let form = fixture("surveys/followup-web.json");
    w.admin
        .ok(&["survey", "publish", form.to_str().expect("utf-8 path")]);
    let path = link(&w, &["--label", "Follow-up by web"], Some("river-stone-42"));
    let proxy = FaultProxy::start(w.server.addr(), 7);
    let b = Browser::start(PHONE);
    let dir = shots();

    b.goto(&format!("{}{path}", proxy.url()));
    b.wait_for_text("Password");
    b.screenshot(&dir, "01-password");
    b.type_into("#password", "not-the-password");
    b.press("password");
    b.wait_for_text("That password is not right");
    b.type_into("#password", "river-stone-42");
    b.press("password");
    b.wait_for_text("Name of the head of household");
    b.screenshot(&dir, "02-first-question");

    b.type_into("#answer", "Amina Njeri");
    b.press("next");
    b.wait_for_text("Age of the head");
    b.type_into("#answer", "12");
    b.press("next");
    b.wait_for_text("The head of household is an adult");
    b.screenshot(&dir, "03-constraint");
    b.type_into("#answer", "41");
    b.press("next");
    b.wait_for_text("Are there children?");
    b.click("input[value=yes]");
    b.press("next");
    b.wait_for_text("0 so far");
    b.press("add");
    b.wait_for_text("Child's name");
    b.type_into("#answer", "Baraka");

    // The connection drops as the page is sent: the answer is kept in the browser.
    proxy.force(Some(Fault::DropBeforeForward));
    proxy.set_faults(true);
    b.press("next");
    b.wait_for_text("No connection");
    b.screenshot(&dir, "04-offline");
    std::thread::sleep(Duration::from_secs(3));
    proxy.set_faults(false);
    b.wait_for_text("1 so far");

    b.press("add");
    b.wait_for_text("Child's name");
    b.type_into("#answer", "Zawadi");
    b.press("next");
    b.wait_for_text("2 so far");
    b.press("noadd");
    b.wait_for_text("Anything to add?");
    b.press("skip");
    b.wait_for_text("Check your answers");
    b.screenshot(&dir, "05-review");
    b.press("submit");
    b.wait_for_text("Thank you");
    b.screenshot(&dir, "06-thanks");

    // The coordinator's export holds it, with the calculation and both entries.
    let rows = (0..100)
        .find_map(|_| {
            let rows = w.export_rows("followup");
            if rows.is_empty() {
                std::thread::sleep(Duration::from_millis(300));
                None
            } else {
                Some(rows)
            }
        })
        .expect("the web response reaches the export");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let answers = &rows[0]["answers"];
    assert_eq!(answers["head"], "Amina Njeri", "{rows:?}");
    assert_eq!(answers["age"], 41);
    assert_eq!(answers["age_months"], "492");
    let kids = answers["child"].as_array().expect("the repeat");
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert_eq!(rows[0]["status"], "submitted");
    assert!(
        rows[0]["enumerator"]
            .as_str()
            .is_some_and(|e| e.contains("Follow-up by web")),
        "collected by the link: {:?}",
        rows[0]["enumerator"]
    );
}

#[test]
fn an_expired_link_is_refused_in_the_browser() {
    let w = World::start();
    let form = fixture("surveys/followup-web.json");
    w.admin
        .ok(&["survey", "publish", form.to_str().expect("utf-8 path")]);
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let path = link(&w, &["--expires", &soon], None);
    let b = Browser::start(PHONE);
    // (The server's tests check the same link opens before; here only the respondent's view.)
    std::thread::sleep(Duration::from_millis(2500));
    b.goto(&format!("{}{path}", w.server.url()));
    b.wait_for_text("This survey link is not open");
    b.screenshot(&shots(), "07-expired");
}
