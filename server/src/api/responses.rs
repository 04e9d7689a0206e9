//! The coordinator's read side: list a survey's responses, show one decrypted, and export a
//! survey's responses as CSV or JSON Lines, streamed page by page so that an export of any
//! size holds only one page in memory.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use fieldsync_protocol::api::{EXPORT_TOTAL_HEADER, ResponsePage, ResponseView};
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::responses;

/// Rows per export page.
const EXPORT_PAGE: u32 = 500;
/// How long an export waits at most for just-pushed responses to be materialised (and never
/// more than half the request timeout, so the caller gets this clear answer, not a timeout).
const EXPORT_SETTLE: Duration = Duration::from_secs(120);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only responses with this status (draft, submitted, has_issues, approved, rejected,
    /// edited, discarded).
    status: Option<String>,
    /// Only responses with validation errors.
    #[serde(default)]
    invalid: bool,
    /// Only responses with conflicted answers.
    #[serde(default)]
    conflicted: bool,
    /// The `next` of the previous page.
    after: Option<String>,
    /// Responses per page, 1 to 5000 (500 by default).
    limit: Option<u32>,
}

/// `GET /v1/surveys/{id}/responses`.
#[utoipa::path(
    get,
    path = "/v1/surveys/{id}/responses",
    operation_id = "list_responses",
    tag = "responses",
    summary = "List a survey's responses, a page at a time",
    description = "An enumerator device sees only the responses it made; restricted responses \
        are listed to admins only.",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The survey's id"), ListQuery),
    responses(
        (status = 200, description = "A page of responses", body = ResponsePage),
        (status = 400, description = "A query value of the wrong type"),
        (status = 404, description = "No such survey visible to the caller"),
        (status = 422, description = "An unknown status"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<ResponsePage>, ApiError> {
    let listing = responses::Listing {
        status: q.status,
        invalid_only: q.invalid,
        conflicted_only: q.conflicted,
        after: q.after,
        limit: q.limit,
    };
    Ok(axum::Json(
        responses::list(&state.db, &caller, &id, listing).await?,
    ))
}

/// `GET /v1/responses/{id}`: one response, decrypted.
#[utoipa::path(
    get,
    path = "/v1/responses/{id}",
    operation_id = "show_response",
    tag = "responses",
    summary = "Show one response, decrypted",
    description = "An enumerator device sees only the responses it made; a restricted response \
        only an admin.",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The response's id")),
    responses(
        (status = 200, description = "The response as the server materialised it",
            body = ResponseView),
        (status = 403, description = "The response is restricted and the caller is not an admin"),
        (status = 404, description = "No such response visible to the caller"),
        (status = 422, description = "The response is stored but cannot be read"),
        (status = 503, description = "The response was received and is still being processed"),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ResponseView>, ApiError> {
    Ok(axum::Json(responses::show(&state.db, &caller, &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (the default) or `jsonl` (JSON Lines).
    format: Option<String>,
    /// Comma-separated statuses, or `all`; by default every handed-in response (not drafts,
    /// not discarded ones).
    status: Option<String>,
    /// Collected on or after this day (`YYYY-MM-DD`, UTC) or instant (RFC 3339).
    since: Option<String>,
    /// Collected on or before this day (the whole day) or before this instant.
    until: Option<String>,
    /// Only responses created on this device (its name or id).
    device: Option<String>,
    /// Only responses this enumerator or member collected (name or id).
    enumerator: Option<String>,
    /// The time zone of the CSV's times (IANA name or offset; UTC by default).
    tz: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Csv,
    Jsonl,
}

/// `GET /v1/surveys/{id}/export?format=csv|jsonl&status=…&since=…&until=…&device=…&enumerator=…&tz=…`:
/// the survey's readable responses the filter admits (handed-in ones by default), one CSV
/// column per question across all versions, times in ISO 8601 in the zone asked for (JSON
/// Lines keeps them as ms since the epoch).
#[utoipa::path(
    get,
    path = "/v1/surveys/{id}/export",
    operation_id = "export_responses",
    tag = "responses",
    summary = "Export a survey's responses as CSV or JSON Lines",
    description = "For admins, coordinators, ops and support staff. The body streams: CSV has \
        a header row, then one row per response and one column per question across every \
        version (answers inside repeats are left out), times in ISO 8601 in the zone asked \
        for; JSON Lines has one object per response with all its answers, times in ms since \
        the epoch. Responses pushed just before wait to be processed first (for a bounded \
        time). An error while streaming ends the body early.",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The survey's id"), ExportQuery),
    responses(
        (status = 200, description = "The export, streamed",
            headers(("x-fieldsync-total" = u64, description = "The number of rows, when only \
                statuses narrow the export")),
            content(
                (String = "text/csv; charset=utf-8"),
                (String = "application/x-ndjson"),
            )),
        (status = 403, description = "An enumerator device cannot export responses"),
        (status = 404, description = "No such survey visible to the caller"),
        (status = 422, description = "An unknown format, status, time zone, device or \
            enumerator, a bad date, or `since` not before `until`"),
        (status = 503, description = "Responses are still being processed, or the most \
            exports and downloads the server runs at once are running"),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let (id, columns) = responses::export_columns(&state.db, &caller, &id).await?;
    let zone = match q.tz.as_deref() {
        Some(tz) => fieldsync_protocol::zone::Zone::parse(tz)
            .map_err(|e| ApiError::Invalid(format!("tz: {e}")))?,
        None => fieldsync_protocol::zone::Zone::utc(),
    };
    // Who collected each response, by the id its device wrote: one read per export.
    let members = state.db.members(&caller.org_id).await?;
    let filter = responses::ExportFilter::parse(
        q.status.as_deref(),
        q.since.as_deref(),
        q.until.as_deref(),
        responses::Collectors {
            device: q.device.as_deref(),
            enumerator: q.enumerator.as_deref(),
            members: &members,
        },
    )?;
    let format = match q.format.as_deref().unwrap_or("csv") {
        "csv" => Format::Csv,
        "jsonl" => Format::Jsonl,
        other => {
            return Err(ApiError::Invalid(format!(
                "unknown export format {other:?}; use csv or jsonl"
            )));
        }
    };
    settle(&state, &caller.org_id, &id).await?;
    let total = match filter.statuses_only() {
        Some(statuses) => Some(
            state
                .db
                .count_responses(&caller.org_id, &id, statuses.to_vec())
                .await?,
        ),
        None => None,
    };
    let names: HashMap<String, Collector> = members
        .into_iter()
        .map(|m| {
            let who = Collector {
                name: m.name,
                device: m.device.unwrap_or_default(),
            };
            (m.id.to_string(), who)
        })
        .collect();

    // Exports have their own permits: once its headers are sent an export leaves the request
    // limits, so without these a crowd of exports that are never read would hold a page of
    // memory each, without bound. The permit lives in the body stream.
    let Some(permit) = export_permit(&state).await else {
        return Err(ApiError::Unavailable(format!(
            "{} exports are already running; retry in a minute",
            state.settings.max_exports
        )));
    };
    // A bounded channel: the producer reads one page at a time and waits whenever the client
    // reads slower than we produce, so memory stays at a few pages; a client that stops
    // reading for the send timeout ends the export (and the connection's write timeout
    // closes its socket).
    let (tx, rx) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let db = state.db.clone();
    let org = caller.org_id.clone();
    let send_timeout = state.settings.send_timeout;
    tokio::spawn(async move {
        let send = |item| {
            let tx = tx.clone();
            async move {
                match tokio::time::timeout(send_timeout, tx.send(item)).await {
                    Ok(Ok(())) => true,
                    Ok(Err(_)) => false, // the client went away
                    Err(_) => {
                        tracing::info!("export stopped: the client stopped reading");
                        false
                    }
                }
            }
        };
        if format == Format::Csv {
            let mut header = Vec::new();
            if let Err(e) = write_csv_header(&mut header, &columns) {
                send(Err(std::io::Error::other(e.to_string()))).await;
                return;
            }
            if !send(Ok(header)).await {
                return;
            }
        }
        let mut after = String::new();
        loop {
            let page = db.export_page(&org, &id, &after, EXPORT_PAGE).await;
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "export failed");
                    send(Err(std::io::Error::other("export failed"))).await;
                    return;
                }
            };
            let Some(last) = page.last() else { return };
            after = last.id.to_string();
            let full = page.len() as u32 >= EXPORT_PAGE;
            let mut page = page;
            page.retain(|r| filter.admits(r));
            let chunk = match format {
                Format::Csv => csv_rows(&page, &columns, &names, &zone),
                Format::Jsonl => jsonl_rows(&page, &names),
            };
            drop(page);
            let sent = match chunk {
                Ok(bytes) => send(Ok(bytes)).await,
                Err(e) => {
                    send(Err(std::io::Error::other(e))).await;
                    return;
                }
            };
            if !sent || !full {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold((rx, permit), |(mut rx, permit)| async move {
        rx.recv().await.map(|item| (item, (rx, permit)))
    });
    let mut resp = Body::from_stream(stream).into_response();
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Jsonl => "application/x-ndjson",
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(total) = total {
        resp.headers_mut()
            .insert(EXPORT_TOTAL_HEADER, HeaderValue::from(total));
    }
    Ok(resp)
}

pub(super) async fn export_permit(state: &AppState) -> Option<ExportPermit> {
    let sem = state.exports.clone();
    let permit = match sem.clone().try_acquire_owned() {
        Ok(p) => Some(p),
        Err(_) => tokio::time::timeout(state.settings.queue_wait, sem.acquire_owned())
            .await
            .ok()
            .and_then(Result::ok),
    }?;
    Some(ExportPermit {
        _slot: permit,
        _open: crate::metrics::InProgress::enter(crate::metrics::EXPORTS_OPEN),
    })
}

/// One export's place among `--max-exports`, counted as open until its stream ends.
pub(super) struct ExportPermit {
    _slot: tokio::sync::OwnedSemaphorePermit,
    _open: crate::metrics::InProgress,
}

/// Wait (bounded) until every response of the survey pushed so far is materialised, so an
/// export right after a sync contains it.
async fn settle(state: &AppState, org: &str, survey: &str) -> Result<(), ApiError> {
    let start = Instant::now();
    let limit = EXPORT_SETTLE.min(state.settings.request_timeout / 2);
    loop {
        let pending = state.db.pending(org, survey).await?;
        if pending == 0 {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(ApiError::Unavailable(format!(
                "{pending} responses are still being processed; try the export again shortly"
            )));
        }
        state.materialize.notify_one();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const META_COLUMNS: [&str; 8] = [
    "response_id",
    "survey_version",
    "status",
    "author_device",
    "enumerator",
    "device_name",
    "created_at",
    "updated_at",
];

fn write_csv_header(out: &mut Vec<u8>, columns: &[String]) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(
        META_COLUMNS
            .iter()
            .copied()
            .chain(columns.iter().map(String::as_str)),
    )?;
    w.flush()?;
    Ok(())
}

/// Who collected a response: the member or enumerator its device is enrolled as, and the
/// name that device gave itself.
#[derive(Debug, Default)]
struct Collector {
    name: String,
    device: String,
}

fn collector<'n>(names: &'n HashMap<String, Collector>, r: &ResponseView) -> &'n Collector {
    static NOBODY: Collector = Collector {
        name: String::new(),
        device: String::new(),
    };
    names.get(&r.author_device).unwrap_or(&NOBODY)
}

fn csv_rows(
    page: &[ResponseView],
    columns: &[String],
    names: &HashMap<String, Collector>,
    zone: &fieldsync_protocol::zone::Zone,
) -> Result<Vec<u8>, String> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(page.len() * 256));
    for r in page {
        let mut record: Vec<String> = vec![
            r.id.to_string(),
            r.survey_version.to_string(),
            r.status.clone(),
            r.author_device.clone(),
            collector(names, r).name.clone(),
            collector(names, r).device.clone(),
            zone.format_ms(r.created_at),
            zone.format_ms(r.updated_at),
        ];
        record.extend(
            columns
                .iter()
                .map(|c| r.answers.get(c).map(|a| a.to_text()).unwrap_or_default()),
        );
        w.write_record(&record).map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

fn jsonl_rows(
    page: &[ResponseView],
    names: &HashMap<String, Collector>,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(page.len() * 512);
    for r in page {
        let line = serde_json::json!({
            "response_id": r.id,
            "survey_id": r.survey_id,
            "survey_version": r.survey_version,
            "status": r.status,
            "author_device": r.author_device,
            "enumerator": collector(names, r).name,
            "device_name": collector(names, r).device,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "answers": r.answers,
            "errors": r.errors,
            "conflicts": r.conflicts.iter().map(|c| &c.question).collect::<Vec<_>>(),
        });
        serde_json::to_writer(&mut out, &line).map_err(|e| e.to_string())?;
        out.push(b'\n');
    }
    Ok(out)
}
