//! Web forms: a survey answered in a browser at a link (`/f/{token}`), by people without an
//! account or the app. Pages are rendered here, one question at a time, by the same
//! interview as `fieldsync collect` ([`fieldsync_protocol::survey::interview`]): relevance,
//! calculations, choice filters, repeats and constraints are decided by the one engine. The
//! interview travels sealed in each page ([`state`]); the server keeps nothing between pages.
//! A submitted response becomes an ordinary response document, pushed as the link's
//! principal through the sandbox check and the push path, like a device's.
//!
//! Security: every page is `no-store`, sends no referrer (the token is in the path), and is
//! under a Content-Security-Policy allowing only this server's own stylesheet and script;
//! the state is bound to a `Secure; HttpOnly; SameSite=Strict` session cookie (a page posted
//! from another site or browser is refused: CSRF); passwords are checked against their
//! Argon2id hash behind the sign-in attempt limiter; no answer is ever in a URL or a log.

mod optout;
mod page;
mod state;
mod submit;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fieldsync_protocol::crypto::Cipher;
use fieldsync_protocol::survey::interview::{Action, Interview, Reply, Screen};
use fieldsync_protocol::survey::{Survey, ValidationContext};
use fieldsync_protocol::wire::SurveyStatus;

use crate::AppState;
use crate::api::session::ClientIp;
use crate::error::ApiError;
use crate::service;
use crate::storage::{InvitationRow, LinkRow, now_ms};
pub use state::FormState;

/// Largest form post (the sealed state and one answer).
pub const MAX_POST: usize = state::MAX_STATE + 64 * 1024;

const COOKIE: &str = "fieldsync_form";

const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
    form-action 'self'; base-uri 'none'; frame-ancestors 'none'; connect-src 'self'";

/// The web form's routes (merged into the router under the sign-in slots).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/f/assets/form.css", get(css))
        .route("/f/assets/form.js", get(js))
        .route("/f/{token}", get(open).post(post))
        .route("/o/{token}", get(optout::ask).post(optout::confirm))
        .layer(middleware::from_fn(headers))
}

async fn headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("form.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("form.js"),
    )
}

fn html(status: StatusCode, body: String) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    // A refusal here is a page for a person, not the API's error body.
    response.extensions_mut().insert(crate::api::KeepBody);
    response
}

/// What a link that does not open shows: the same page whether it never existed, was
/// revoked, expired or is full (nobody learns which links exist by trying them).
fn closed() -> Response {
    html(
        StatusCode::NOT_FOUND,
        page::message(
            "Survey closed",
            "This survey link is not open",
            "The link may have expired, been closed, or already been used. Ask whoever sent it to you for a new one.",
        ),
    )
}

/// The browser's form session: its cookie, or a new one to set.
fn session(headers: &HeaderMap) -> (String, bool) {
    let found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, v)| *k == COOKIE && v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|(_, v)| v.to_owned());
    match found {
        Some(s) => (s, false),
        // 256 random bits, as every token here; a failing random source leaves the page
        // without a session, and its post is refused by the session check.
        None => (
            fieldsync_protocol::crypto::new_token("").unwrap_or_default(),
            true,
        ),
    }
}

fn with_cookie(mut response: Response, session: &str, new: bool) -> Response {
    if new
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{COOKIE}={session}; Path=/f/; HttpOnly; Secure; SameSite=Strict"
        ))
    {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// A link and what its pages need: the organisation's cipher and the survey version.
struct Opened {
    link: LinkRow,
    /// The personal invitation the token is, if it is one.
    invitation: Option<InvitationRow>,
    /// Closing: no new visits; closed: no responses at all.
    survey_status: SurveyStatus,
    /// The version loaded (the latest, unless a page named its own).
    version: u32,
    cipher: Arc<Cipher>,
    survey: Arc<Survey>,
    title: String,
    path: String,
}

impl Opened {
    /// Whether a new visit may start: the link and the survey open, and a personal
    /// invitation unanswered.
    fn is_open(&self) -> bool {
        self.link.open_at(now_ms())
            && self.invitation.as_ref().is_none_or(|i| i.used_at.is_none())
            && self.survey_status == SurveyStatus::Open
    }

    /// Whether the page of `response_id` may go on: the link open, and a personal invitation
    /// unanswered or answered by this very response (its submission sent again).
    fn is_open_for(&self, response_id: &uuid::Uuid) -> bool {
        self.link.open_at(now_ms())
            && self.survey_status != SurveyStatus::Closed
            && self.invitation.as_ref().is_none_or(|i| {
                i.used_at.is_none() || i.used_by.as_deref() == Some(&response_id.to_string())
            })
    }
}

async fn load(state: &AppState, token: &str, version: Option<u32>) -> Result<Opened, ApiError> {
    let Some((link, invitation)) = service::links::by_token(&state.db, token).await? else {
        return Err(ApiError::NotFound("no such link".into()));
    };
    let cipher = service::org_keys(&state.db, &state.keys, &link.org_id)
        .await?
        .cipher
        .clone();
    let info = state
        .db
        .survey(&link.org_id, &link.survey_id, None)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such link".into()))?;
    let version = version.unwrap_or(info.latest_version);
    let (json, _) = state
        .db
        .survey_version(&link.org_id, &link.survey_id, version)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such survey version".into()))?;
    let survey = Survey::parse_json(&json)
        .map_err(|e| ApiError::Internal(format!("a published survey does not parse: {e}")))?;
    Ok(Opened {
        survey_status: info.status,
        version,
        title: survey.title().to_owned(),
        survey: Arc::new(survey),
        cipher,
        link,
        invitation,
        path: format!("/f/{token}"),
    })
}

/// `GET /f/{token}`: the first page (the password, or the first question).
async fn open(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (session, new) = session(&headers);
    let response = match first_page(&state, &token, &session).await {
        Ok(r) => r,
        Err(ApiError::NotFound(_)) => closed(),
        Err(e) => failure(&e),
    };
    with_cookie(response, &session, new)
}

async fn first_page(state: &AppState, token: &str, session: &str) -> Result<Response, ApiError> {
    let o = load(state, token, None).await?;
    if !o.is_open() {
        return Ok(closed());
    }
    let fresh = FormState {
        session: session.to_owned(),
        response_id: uuid::Uuid::now_v7(),
        survey_version: o.version,
        unlocked: o.link.password_hash.is_none(),
        reviewed_at: None,
        interview: None,
    };
    render(&o, fresh, None, StatusCode::OK)
}

/// Render the page for `st`: the password page until it is unlocked, then the interview's
/// current screen.
fn render(
    o: &Opened,
    mut st: FormState,
    problem: Option<&str>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    render_typed(o, &mut st, problem, None, status)
}

/// [`render`], showing `typed` again in the question's field (an answer that was refused).
fn render_typed(
    o: &Opened,
    st: &mut FormState,
    problem: Option<&str>,
    typed: Option<&str>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let seal = |st: &FormState| {
        state::seal(&o.cipher, &o.link.org_id, &o.link.id, st)
            .map_err(|e| ApiError::Internal(format!("cannot seal a form page: {e}")))
    };
    if !st.unlocked {
        let sealed = seal(st)?;
        return Ok(html(
            status,
            page::password(&o.title, &o.path, &sealed, problem),
        ));
    }
    let mut iv = interview(o, st);
    let screen_is_review = matches!(iv.screen(), Screen::Review { .. });
    if screen_is_review && st.reviewed_at.is_none() {
        st.reviewed_at = Some(now_ms());
    }
    st.interview = Some(iv.snapshot());
    let sealed = seal(st)?;
    let language = iv.language().map(str::to_owned);
    let screen = iv.screen();
    let frame = page::Frame {
        title: &o.title,
        action: &o.path,
        state: &sealed,
        problem,
        survey: &o.survey,
        language: language.as_deref(),
        typed,
    };
    Ok(html(status, page::screen(&frame, &screen)))
}

fn interview(o: &Opened, st: &FormState) -> Interview {
    let ctx = ValidationContext::at(time::OffsetDateTime::now_utc());
    match &st.interview {
        Some(snapshot) => Interview::restore(Arc::clone(&o.survey), ctx, snapshot.clone()),
        None => Interview::new(Arc::clone(&o.survey), ctx),
    }
}

/// A form post, read from its body.
#[derive(Debug, Default)]
struct Posted {
    state: String,
    action: String,
    answers: Vec<String>,
    password: Option<String>,
    language: Option<String>,
    tz: Option<i32>,
}

fn read_post(body: &[u8]) -> Posted {
    let mut p = Posted::default();
    for (k, v) in form_urlencoded::parse(body) {
        match &*k {
            "state" => p.state = v.into_owned(),
            "action" => p.action = v.into_owned(),
            "answer" => p.answers.push(v.into_owned()),
            "password" => p.password = Some(v.into_owned()),
            "language" => p.language = Some(v.into_owned()),
            "tz" => p.tz = v.trim().parse().ok(),
            _ => {}
        }
    }
    p
}

/// `POST /f/{token}`: one step of the form (a password, an answer, a button).
async fn post(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let (session, new) = session(&headers);
    let body = match Bytes::from_request(req, &state).await {
        Ok(b) if b.len() <= MAX_POST => b,
        _ => {
            return html(
                StatusCode::PAYLOAD_TOO_LARGE,
                page::message(
                    "Too large",
                    "That answer is too long",
                    "Go back and shorten it.",
                ),
            );
        }
    };
    let posted = read_post(&body);
    let response = match step(&state, &token, ip, &session, posted).await {
        Ok(r) => r,
        Err(ApiError::NotFound(_)) => closed(),
        Err(e) => failure(&e),
    };
    with_cookie(response, &session, new)
}

fn failure(e: &ApiError) -> Response {
    match e {
        ApiError::RateLimited(_) => html(
            StatusCode::TOO_MANY_REQUESTS,
            page::message(
                "Too many tries",
                "Too many wrong passwords",
                "Wait a minute, then try again with the password you were given.",
            ),
        ),
        other => {
            tracing::warn!(error = %other, "a web form page failed");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                page::message(
                    "Try again",
                    "Something went wrong on our side",
                    "Your answers on this page were not lost: go back and send the page again in a minute.",
                ),
            )
        }
    }
}

async fn step(
    state: &AppState,
    token: &str,
    ip: Option<std::net::IpAddr>,
    session: &str,
    posted: Posted,
) -> Result<Response, ApiError> {
    // A token that is no link gets the password page's refusal when a password is tried,
    // like a link whose password is wrong; anything else, the closed page.
    let o = match load(state, token, None).await {
        Ok(o) => o,
        Err(ApiError::NotFound(_)) if posted.action == "password" => {
            state.limiter.check(&state.db, ip, token).await?;
            service::links::burn_password_check(posted.password.unwrap_or_default()).await;
            state.limiter.failed(&state.db, ip, token).await;
            return Ok(html(
                StatusCode::FORBIDDEN,
                page::password("Survey", &format!("/f/{token}"), "", Some(WRONG_PASSWORD)),
            ));
        }
        Err(e) => return Err(e),
    };
    let Some(mut st) = state::open(&o.cipher, &o.link.org_id, &o.link.id, &posted.state) else {
        return Ok(expired_page(&o));
    };
    if st.session != session {
        // Posted from another browser session (or another site): the CSRF check.
        return Ok(html(
            StatusCode::FORBIDDEN,
            page::message(
                &o.title,
                "This page belongs to another visit",
                "Open the survey link again to start from the beginning.",
            ),
        ));
    }
    let o = if st.survey_version == o.version {
        o
    } else {
        // The respondent goes on with the version they started on.
        load(state, token, Some(st.survey_version)).await?
    };
    if !o.is_open_for(&st.response_id) {
        return Ok(closed());
    }
    if !st.unlocked {
        return unlock(state, &o, ip, token, st, posted).await;
    }
    let mut iv = interview(&o, &st);
    // The browser's offset from UTC (its script fills it in): what typed times mean.
    if let Some(minutes) = posted.tz.filter(|m| m.abs() <= 16 * 60)
        && let Ok(offset) = time::UtcOffset::from_whole_seconds(-minutes * 60)
    {
        iv.set_offset(offset);
    }
    let answer = posted.answers.join(" ");
    let reply = match posted.action.as_str() {
        "language" => {
            let language = posted.language.filter(|l| o.survey.languages().contains(l));
            iv.set_language(language);
            Reply::Ok
        }
        "back" => iv.act(Action::Back),
        "skip" => iv.act(Action::Skip),
        "add" => iv.act(Action::AddEntry(true)),
        "noadd" => iv.act(Action::AddEntry(false)),
        "delete" => iv.act(Action::Delete),
        "submit" => {
            let reply = iv.act(Action::Submit);
            if reply == Reply::Ok {
                st.interview = Some(iv.snapshot());
                return submit::submit(state, &o, &st, &iv).await;
            }
            reply
        }
        _ => iv.act(Action::Answer(&answer)),
    };
    if !matches!(posted.action.as_str(), "submit") {
        st.reviewed_at = None;
    }
    // A new repeat entry gets its id now, kept in the page: the response built from this
    // state is the same document however often it is sent.
    let mut answers = iv.answers().clone();
    fieldsync_protocol::document::assign_instance_ids(&mut answers);
    iv.adopt(answers);
    st.interview = Some(iv.snapshot());
    let (problem, status) = match &reply {
        Reply::Ok => (None, StatusCode::OK),
        Reply::Problem(m) => (Some(m.as_str()), StatusCode::UNPROCESSABLE_ENTITY),
    };
    let typed = (problem.is_some() && posted.action == "next").then_some(answer.as_str());
    render_typed(&o, &mut st, problem, typed, status)
}

const WRONG_PASSWORD: &str = "That password is not right. Check it and try again.";

async fn unlock(
    state: &AppState,
    o: &Opened,
    ip: Option<std::net::IpAddr>,
    token: &str,
    mut st: FormState,
    posted: Posted,
) -> Result<Response, ApiError> {
    let (Some(hash), Some(given)) = (o.link.password_hash.clone(), posted.password) else {
        return render(
            o,
            st,
            Some("Type the password to open the survey."),
            StatusCode::OK,
        );
    };
    state.limiter.check(&state.db, ip, token).await?;
    if !service::links::password_matches(hash, given).await {
        state.limiter.failed(&state.db, ip, token).await;
        return render(o, st, Some(WRONG_PASSWORD), StatusCode::FORBIDDEN);
    }
    st.unlocked = true;
    render(o, st, None, StatusCode::OK)
}

fn expired_page(o: &Opened) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        page::message(
            &o.title,
            "This page can no longer be used",
            "Open the survey link again to start from the beginning.",
        ),
    )
}
