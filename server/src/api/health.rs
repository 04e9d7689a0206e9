//! `/healthz` (the process answers) and `/readyz` (it can do its work): for a load balancer
//! or an orchestrator, without a token.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::AppState;

/// How long one readiness verdict is reused: probes from many balancers cost one check.
const FRESH: Duration = Duration::from_secs(1);
/// How long each check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /healthz`: the process is up and serving HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "live",
    tag = "health",
    summary = "Liveness: the process answers",
    responses((status = 200, description = "Always `ok`", body = String, content_type = "text/plain"))
)]
pub async fn live() -> &'static str {
    "ok"
}

/// The outcome of each readiness check.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// `ok`, or what is wrong, by check: database, workers, disk.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub checks: std::collections::BTreeMap<&'static str, String>,
}

/// The last verdict, reused while fresh.
#[derive(Debug, Default)]
pub struct ReadyCache(Mutex<Option<(Instant, Readiness)>>);

/// `GET /readyz`: 200 when the database answers (and, on SQLite, its writer thread commits),
/// a document checker answers, and the data directory has room; 503 naming what failed.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "ready",
    tag = "health",
    summary = "Readiness: the server can do its work",
    description = "Checks that the database answers (on SQLite, that its writer commits), that \
        a document checker answers, and that the data directory has room. A verdict is reused \
        for a second.",
    responses(
        (status = 200, description = "Ready: every check is `ok`", body = Readiness),
        (status = 503, description = "Not ready: the checks name what failed", body = Readiness),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    let cached = {
        let last = state.ready.0.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < FRESH)
            .map(|(_, r)| r.clone())
    };
    let verdict = match cached {
        Some(r) => r,
        None => {
            let r = check(&state).await;
            if !r.ready {
                tracing::warn!(checks = ?r.checks, "not ready");
            }
            *state.ready.0.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((Instant::now(), r.clone()));
            r
        }
    };
    let status = if verdict.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (status, axum::Json(verdict)).into_response();
    response.extensions_mut().insert(super::KeepBody);
    response
}

async fn check(state: &AppState) -> Readiness {
    let timed = |what: &str, r: Result<Result<(), String>, tokio::time::error::Elapsed>| match r {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => e,
        Err(_) => format!("{what} did not answer within {} s", CHECK_TIMEOUT.as_secs()),
    };
    let database = tokio::time::timeout(CHECK_TIMEOUT, async {
        state
            .db
            .ready()
            .await
            .map_err(|e| format!("the database failed: {e}"))
    });
    let workers = tokio::time::timeout(CHECK_TIMEOUT, state.workers.ready());
    let (database, workers) = tokio::join!(database, workers);
    let mut checks = std::collections::BTreeMap::new();
    checks.insert("database", timed("the database", database));
    checks.insert("workers", timed("the document checkers", workers));
    if let Some((dir, least)) = &state.settings.disk {
        checks.insert("disk", disk(dir, *least));
    }
    Readiness {
        ready: checks.values().all(|v| v == "ok"),
        checks,
    }
}

/// `ok` when `dir`'s file system has at least `least` bytes free for this user.
fn disk(dir: &std::path::Path, least: u64) -> String {
    match rustix::fs::statvfs(dir) {
        Ok(s) => {
            let free = s.f_bavail.saturating_mul(s.f_frsize);
            if free >= least {
                "ok".to_owned()
            } else {
                format!(
                    "only {} MiB free in {} (at least {} MiB needed; free space or raise the volume)",
                    free / (1024 * 1024),
                    dir.display(),
                    least / (1024 * 1024)
                )
            }
        }
        Err(e) => format!("cannot read the free space of {}: {e}", dir.display()),
    }
}
