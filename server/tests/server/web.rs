//! Web forms on the real server, driven over HTTP as a browser without script would: a
//! password-protected link, a skip, a calculation, a repeat and a constraint error, the
//! submission arriving as an ordinary response; wrong passwords, unknown and closed links
//! refused alike; a page posted without its browser's cookie refused.

use std::time::Duration;

use axum::http::StatusCode;
use fieldsync_protocol::Answer;
use fieldsync_protocol::api::{CreatedLink, ResponsePage, ResponseView};

use super::common::*;

/// A follow-up with a skip, a calculation, a repeat and a constraint (also the browser test's).
const FORM: &str = include_str!("../../../fixtures/surveys/followup-web.json");

/// A browser without script: one cookie, and the form fields of the last page.
struct Browser {
    http: reqwest::blocking::Client,
    base: String,
    path: String,
    cookie: Option<String>,
    page: String,
    status: StatusCode,
}

impl Browser {
    fn open(server: &Server, path: &str) -> Browser {
        let mut b = Browser {
            http: Server::client(),
            base: server.url.clone(),
            path: path.to_owned(),
            cookie: None,
            page: String::new(),
            status: StatusCode::OK,
        };
        let r = b
            .http
            .get(format!("{}{}", b.base, b.path))
            .send()
            .expect("GET the link");
        b.take(r);
        b
    }

    fn take(&mut self, r: reqwest::blocking::Response) {
        if let Some(c) = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()) {
            assert!(
                c.contains("HttpOnly") && c.contains("Secure") && c.contains("SameSite=Strict"),
                "{c}"
            );
            self.cookie = Some(c.split(';').next().unwrap_or_default().to_owned());
        }
        let csp = r
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        self.status = StatusCode::from_u16(r.status().as_u16()).expect("status");
        self.page = r.text().expect("page");
        assert!(
            csp.contains("default-src 'none'"),
            "CSP: {csp:?} on {} {}",
            self.status,
            self.page
        );
    }

    fn state(&self) -> String {
        let marker = "name=\"state\" value=\"";
        let start = self.page.find(marker).map(|i| i + marker.len());
        start
            .and_then(|s| {
                self.page[s..]
                    .find('"')
                    .map(|e| self.page[s..s + e].to_owned())
            })
            .unwrap_or_default()
    }

    /// Press `action` with these fields.
    fn press(&mut self, action: &str, fields: &[(&str, &str)]) {
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.append_pair("state", &self.state());
        body.append_pair("action", action);
        for (k, v) in fields {
            body.append_pair(k, v);
        }
        let mut req = self
            .http
            .post(format!("{}{}", self.base, self.path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.finish());
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().expect("POST the form");
        self.take(r);
    }

    fn answer(&mut self, value: &str) {
        self.press("next", &[("answer", value)]);
    }

    fn shows(&self, text: &str) -> bool {
        self.page.contains(text)
    }
}

fn setup() -> (tempfile::TempDir, Server, String, uuid::Uuid) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (_, admin_once) = create_org_cli(&data, "Acme");
    let server = Server::start(&data, &[]);
    let client = Server::client();
    let admin = login_http(&server, &client, &admin_once);
    let coordinator = coordinator_http(&server, &client, &admin);
    let published = publish_http(&server, &client, &coordinator, FORM);
    (dir, server, coordinator, published.survey_id)
}

fn create_link(
    server: &Server,
    token: &str,
    survey: uuid::Uuid,
    body: serde_json::Value,
) -> CreatedLink {
    let r = server.send(
        &Server::client(),
        Req::post(format!("/v1/surveys/{survey}/links"))
            .token(token)
            .json(&body),
    );
    assert_eq!(r.status, StatusCode::CREATED, "create link: {}", r.text());
    r.json()
}

#[test]
fn a_respondent_answers_a_password_protected_link_and_the_coordinator_gets_the_response() {
    let (_dir, server, coordinator, survey) = setup();
    let link = create_link(
        &server,
        &coordinator,
        survey,
        serde_json::json!({ "label": "Follow-up by web", "password": "river-stone-42" }),
    );
    assert!(link.path.starts_with("/f/fsf_"), "{}", link.path);

    let mut b = Browser::open(&server, &link.path);
    assert!(b.shows("type=\"password\""), "{}", b.page);
    b.press("password", &[("password", "wrong-guess-1")]);
    assert_eq!(b.status, StatusCode::FORBIDDEN);
    assert!(b.shows("password is not right"), "{}", b.page);
    b.press("password", &[("password", "river-stone-42")]);
    assert!(b.shows("Name of the head of household"), "{}", b.page);

    b.answer("Amina Njeri");
    assert!(b.shows("Age of the head"), "{}", b.page);
    // The constraint's own message, and the same question again.
    b.answer("12");
    assert_eq!(b.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(b.shows("The head of household is an adult"), "{}", b.page);
    assert!(
        b.shows("value=\"12\""),
        "what was typed stays to be corrected"
    );
    b.answer("41");
    assert!(b.shows("Are there children?"), "{}", b.page);
    b.answer("yes");
    // The repeat asks before its first entry, as the app does.
    assert!(b.shows("0 so far"), "{}", b.page);
    b.press("add", &[]);
    assert!(b.shows("Child&#39;s name"), "{}", b.page);
    b.answer("Baraka");
    assert!(b.shows("Add another"), "{}", b.page);
    b.press("add", &[]);
    b.answer("Zawadi");
    b.press("noadd", &[]);
    assert!(b.shows("Anything to add?"), "{}", b.page);
    b.press("skip", &[]);
    assert!(b.shows("Check your answers"), "{}", b.page);
    assert!(b.shows("Zawadi") && b.shows("41"), "{}", b.page);
    assert!(b.shows("<dd>Yes</dd>"), "a choice by its label: {}", b.page);
    let review = b.page.clone();
    b.press("submit", &[]);
    assert!(b.shows("Thank you"), "{}", b.page);
    // The same page sent again (a retry after a lost answer) is the same response.
    b.page = review;
    b.press("submit", &[]);
    assert!(b.shows("Thank you"), "{}", b.page);
    let client = Server::client();
    let responses = wait_for(Duration::from_secs(30), || {
        let page: ResponsePage = server
            .send(
                &client,
                Req::get(format!("/v1/surveys/{survey}/responses")).token(&coordinator),
            )
            .json();
        (page.items.len() == 1).then_some(page)
    });
    let id = responses.items[0].id;
    let shown: ResponseView = server
        .send(
            &client,
            Req::get(format!("/v1/responses/{id}")).token(&coordinator),
        )
        .json();
    assert_eq!(shown.status, "submitted");
    assert_eq!(
        shown.answers.get("head"),
        Some(&Answer::from("Amina Njeri"))
    );
    // A calculation is kept as text, as on a device.
    assert_eq!(shown.answers.get("age_months"), Some(&Answer::from("492")));
    let kids = shown
        .answers
        .get("child")
        .and_then(Answer::as_repeat)
        .expect("repeat");
    assert_eq!(kids.len(), 2);
    assert!(shown.errors.is_empty(), "{:?}", shown.errors);
    let links: Vec<fieldsync_protocol::api::LinkInfo> = server
        .send(&client, Req::get("/v1/links").token(&coordinator))
        .json();
    assert_eq!(links[0].responses, 1, "the retry took no second place");
    // Nothing typed reached the log.
    let log = String::from_utf8_lossy(&server.stderr()).into_owned();
    for secret in ["Amina", "Zawadi", "river-stone-42", &link.path[3..]] {
        assert!(!log.contains(secret), "{secret:?} in the log");
    }
}

#[test]
fn unknown_revoked_and_expired_links_and_foreign_pages_are_refused() {
    let (_dir, server, coordinator, survey) = setup();
    // An unknown token reads like a link with a password: any password is wrong.
    let mut b = Browser::open(&server, "/f/fsf_0000000000000000000000000000");
    assert_eq!(b.status, StatusCode::NOT_FOUND);
    b.press("password", &[("password", "anything-at-all")]);
    assert_eq!(b.status, StatusCode::FORBIDDEN);
    assert!(b.shows("password is not right"), "{}", b.page);

    let open = create_link(&server, &coordinator, survey, serde_json::json!({}));
    let mut b = Browser::open(&server, &open.path);
    assert!(b.shows("Name of the head of household"), "{}", b.page);
    // The page posted without the browser's cookie (another site, another browser).
    b.cookie = None;
    b.answer("Amina");
    assert_eq!(b.status, StatusCode::FORBIDDEN, "{}", b.page);

    let r = server.send(
        &Server::client(),
        Req::post(format!("/v1/links/{}/revoke", open.link.id)).token(&coordinator),
    );
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let b = Browser::open(&server, &open.path);
    assert_eq!(b.status, StatusCode::NOT_FOUND);
    assert!(b.shows("not open"), "{}", b.page);

    // A survey closed while a respondent is on it takes no more from them, nor new visits.
    let closing = create_link(&server, &coordinator, survey, serde_json::json!({}));
    let mut b = Browser::open(&server, &closing.path);
    assert!(b.shows("Name of the head of household"), "{}", b.page);
    let r = server.send(
        &Server::client(),
        Req::put(format!("/v1/surveys/{survey}/status"))
            .token(&coordinator)
            .json(&serde_json::json!({ "status": "closed" })),
    );
    assert!(r.status.is_success(), "{}", r.text());
    b.answer("Amina");
    assert_eq!(b.status, StatusCode::NOT_FOUND, "{}", b.page);
    assert!(Browser::open(&server, &closing.path).shows("not open"));
    let r = server.send(
        &Server::client(),
        Req::put(format!("/v1/surveys/{survey}/status"))
            .token(&coordinator)
            .json(&serde_json::json!({ "status": "open" })),
    );
    assert!(r.status.is_success(), "{}", r.text());

    // A form that asks for files cannot be answered in a browser: no link to it.
    let media = publish_http(
        &server,
        &Server::client(),
        &coordinator,
        include_str!("../../../fixtures/surveys/site-visit-media.json"),
    );
    let r = server.send(
        &Server::client(),
        Req::post(format!("/v1/surveys/{}/links", media.survey_id))
            .token(&coordinator)
            .json(&serde_json::json!({})),
    );
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("collect it with the app"), "{}", r.text());

    let soon = fieldsync_server::storage::now_ms() + 1500;
    let expiring = create_link(
        &server,
        &coordinator,
        survey,
        serde_json::json!({ "expires_at": soon }),
    );
    let mut b = Browser::open(&server, &expiring.path);
    assert!(b.shows("Name of the head of household"), "{}", b.page);
    std::thread::sleep(Duration::from_millis(1600));
    b.answer("Amina");
    assert_eq!(b.status, StatusCode::NOT_FOUND);
    assert!(b.shows("not open"), "{}", b.page);
}

#[test]
fn a_respondent_chooses_the_language_and_choices_follow_the_filter() {
    let (_dir, server, coordinator, _) = setup();
    let roster = publish_http(
        &server,
        &Server::client(),
        &coordinator,
        include_str!("../../../fixtures/surveys/household-roster.json"),
    );
    let link = create_link(
        &server,
        &coordinator,
        roster.survey_id,
        serde_json::json!({}),
    );
    let mut b = Browser::open(&server, &link.path);
    assert!(b.shows("Name of the head of household"), "{}", b.page);
    assert!(
        b.shows("<option value=\"Français (fr)\""),
        "a language choice: {}",
        b.page
    );
    b.press("language", &[("language", "Français (fr)")]);
    assert!(b.shows("Nom du chef de ménage"), "{}", b.page);
    b.answer("Amina");
    assert!(b.shows("Région"), "{}", b.page);
    // The district's choices are those of the region picked (choice_filter).
    let region = b
        .page
        .split("name=\"answer\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a region to pick")
        .to_owned();
    b.answer(&region);
    assert!(b.shows("District"), "{}", b.page);
    let districts: Vec<&str> = b
        .page
        .split("name=\"answer\" value=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    let form: serde_json::Value = serde_json::from_str(include_str!(
        "../../../fixtures/surveys/household-roster.json"
    ))
    .expect("fixture JSON");
    let expected: Vec<&str> = form["choices"]
        .as_array()
        .expect("choices")
        .iter()
        .filter(|c| c["list_name"] == "district" && c["region"] == region.as_str())
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        !expected.is_empty(),
        "the fixture has districts in {region}"
    );
    assert_eq!(districts, expected, "only {region}'s districts are offered");
}
