//! Prometheus metrics, on a listener of their own (`serve --metrics-listen`).
//!
//! The server records through the `metrics` facade everywhere; until [`install`] has run
//! (it runs only when `--metrics-listen` is given) every recording is a no-op. Labels hold
//! only route templates, methods, status codes and fixed words: never an organisation, a
//! token, an id or anything a respondent wrote, so a scrape reveals nothing about whose data
//! the server holds.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

pub const HTTP_REQUESTS: &str = "fieldsync_http_requests_total";
pub const HTTP_DURATION: &str = "fieldsync_http_request_duration_seconds";
pub const PUSH_DOCUMENTS: &str = "fieldsync_push_documents";
pub const PUSH_BYTES: &str = "fieldsync_push_bytes";
pub const PULL_CHANGES: &str = "fieldsync_pull_changes";
pub const PULL_BYTES: &str = "fieldsync_pull_bytes";
pub const WRITE_GROUP: &str = "fieldsync_db_write_group_size";
pub const COMMIT_DURATION: &str = "fieldsync_db_commit_duration_seconds";
pub const WRITE_QUEUE: &str = "fieldsync_db_write_queue_depth";
pub const MATERIALIZER_LAG: &str = "fieldsync_materializer_lag_seconds";
pub const MATERIALIZED: &str = "fieldsync_materialized_documents_total";
pub const WORKERS_BUSY: &str = "fieldsync_workers_busy";
pub const WORKER_CRASHES: &str = "fieldsync_worker_crashes_total";
pub const WORKER_TIMEOUTS: &str = "fieldsync_worker_timeouts_total";
pub const EXPORTS_OPEN: &str = "fieldsync_exports_open";
pub const SIGN_IN_REFUSALS: &str = "fieldsync_sign_in_refusals_total";
pub const INVITATIONS: &str = "fieldsync_invitations_total";
pub const CONNECTIONS_OPEN: &str = "fieldsync_connections_open";
pub const CONNECTIONS_REFUSED: &str = "fieldsync_connections_refused_total";

/// Bucket bounds of the latency histograms, in seconds.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Bucket bounds of the size histograms, in bytes (powers of four from 256 bytes to 64 MiB).
const BYTES: &[f64] = &[
    256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0, 67108864.0,
];
/// Bucket bounds of the count histograms (documents, changes, jobs).
const COUNTS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 5000.0,
];

/// Install the process-wide recorder and describe every metric. Fails if a recorder is
/// already installed (once per process).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)?
        .set_buckets_for_metric(Matcher::Suffix("_bytes".into()), BYTES)?
        .set_buckets_for_metric(Matcher::Full(PUSH_DOCUMENTS.into()), COUNTS)?
        .set_buckets_for_metric(Matcher::Full(PULL_CHANGES.into()), COUNTS)?
        .set_buckets_for_metric(Matcher::Full(WRITE_GROUP.into()), COUNTS)?
        .install_recorder()?;
    describe();
    Ok(handle)
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "Requests answered, by route template, method and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer a request (to its headers, for a streamed export), by route and method"
    );
    describe_histogram!(PUSH_DOCUMENTS, "Documents in each accepted push");
    describe_histogram!(
        PUSH_BYTES,
        Unit::Bytes,
        "Change bytes in each accepted push"
    );
    describe_histogram!(PULL_CHANGES, "Changes in each pull page");
    describe_histogram!(PULL_BYTES, Unit::Bytes, "Change bytes in each pull page");
    describe_histogram!(
        WRITE_GROUP,
        "Writes committed together by the SQLite writer thread"
    );
    describe_histogram!(
        COMMIT_DURATION,
        Unit::Seconds,
        "Time the SQLite writer thread takes to run and commit one group"
    );
    describe_gauge!(WRITE_QUEUE, "Writes waiting for the SQLite writer thread");
    describe_gauge!(
        MATERIALIZER_LAG,
        Unit::Seconds,
        "How long the materialiser's queue has not been empty: an upper bound on the age of the oldest response waiting to be validated"
    );
    describe_counter!(
        MATERIALIZED,
        "Responses validated and indexed by the materialiser"
    );
    describe_gauge!(
        WORKERS_BUSY,
        "Document checker processes working on a request"
    );
    describe_counter!(
        WORKER_CRASHES,
        "Document checker processes that died or broke the protocol"
    );
    describe_counter!(
        WORKER_TIMEOUTS,
        "Document checker processes stopped for taking too long"
    );
    describe_gauge!(EXPORTS_OPEN, "Exports streaming now");
    describe_counter!(
        SIGN_IN_REFUSALS,
        "Logins and enrollments refused, by reason (wrong credential, rate limited)"
    );
    describe_gauge!(CONNECTIONS_OPEN, "Client connections open");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections closed at once because the server or the address was at its limit"
    );
}

/// Serve `GET /metrics` on `listener` until the process ends, and keep the histograms'
/// storage bounded between scrapes.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle) -> std::io::Result<()> {
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(5));
        loop {
            ticks.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    axum::serve(listener, app).await
}

/// A gauge raised for as long as the guard lives (work in progress).
#[derive(Debug)]
pub struct InProgress(&'static str);

impl InProgress {
    pub fn enter(name: &'static str) -> InProgress {
        metrics::gauge!(name).increment(1.0);
        InProgress(name)
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}
