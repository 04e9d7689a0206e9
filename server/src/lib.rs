//! The fieldsync sync server as a library: [`router`] builds the HTTP API over an [`AppState`],
//! [`serve`] runs it on a listener until shutdown. `main.rs` only parses settings and calls
//! these, so tests build the same router without a socket.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod invite;
pub mod keys;
pub mod lockfile;
pub mod materialize;
pub mod metrics;
pub mod service;
pub mod settings;
pub mod storage;
pub mod tls;
pub mod web;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};

use crate::auth::AttemptLimiter;
use crate::keys::KeyRing;
use crate::settings::Settings;
use crate::storage::{Database, Db};
use crate::worker::{WorkerLimits, WorkerPool};

/// Everything a request handler may use; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database, behind the storage trait.
    pub db: Db,
    pub keys: Arc<KeyRing>,
    pub workers: Arc<WorkerPool>,
    pub settings: Arc<Settings>,
    pub limiter: Arc<AttemptLimiter>,
    /// The server-wide concurrency limit: one semaphore shared by every route with a token.
    pub concurrency: Arc<Semaphore>,
    /// Slots of the sign-in routes (login, enroll), apart from everyone else's.
    pub public_slots: Arc<Semaphore>,
    /// Requests in progress per caller.
    pub callers: Arc<api::CallerSlots>,
    /// KiB of request bodies that may be in memory at once.
    pub inflight: Arc<Semaphore>,
    /// Exports streaming at once.
    pub exports: Arc<Semaphore>,
    /// Wakes the background materialiser when changes arrive.
    pub materialize: Arc<Notify>,
    /// Pushes being handled right now and when the last one ended; the materialiser gives
    /// way to them (see [`materialize::run`]).
    pub pushes: materialize::PushActivity,
    /// Pulls waiting for just-pushed changes to be checked; while there are any, the
    /// materialiser does not give way to pushes.
    pub pulls_waiting: Arc<AtomicUsize>,
    /// The last `/readyz` verdict.
    pub ready: Arc<api::health::ReadyCache>,
    /// The database's incarnation (new after each restore): the `epoch` pulls answer with.
    pub incarnation: Arc<str>,
    /// The SMTP sender of invitations, when the server has one.
    pub mailer: Option<Arc<invite::send::Mailer>>,
    /// Wakes the invitation sender when invitations are added.
    pub invitations: Arc<Notify>,
}

/// How to build an [`AppState`].
#[derive(Debug)]
pub struct StateConfig {
    pub database: Database,
    pub master_key: PathBuf,
    pub worker_exe: PathBuf,
    pub worker_limits: WorkerLimits,
    pub settings: Settings,
}

impl AppState {
    /// Open the database and keys and prepare the worker pool (workers start on demand).
    pub async fn open(cfg: StateConfig) -> anyhow::Result<AppState> {
        if let Some(dir) = cfg.master_key.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let keys = Arc::new(KeyRing::load_or_create(&cfg.master_key)?);
        let db = storage::open(&cfg.database, keys.clone(), &cfg.settings.region).await?;
        let settings = cfg.settings;
        let settings_mail = settings.mail.clone();
        let incarnation = db
            .incarnation(&uuid::Uuid::new_v4().simple().to_string(), false)
            .await?;
        Ok(AppState {
            db,
            keys,
            workers: Arc::new(WorkerPool::new(cfg.worker_exe, cfg.worker_limits)),
            limiter: Arc::new(AttemptLimiter::new(
                settings.login_attempts,
                settings.login_attempts_per_address,
                settings.login_window,
            )),
            concurrency: Arc::new(Semaphore::new(settings.max_concurrency)),
            public_slots: Arc::new(Semaphore::new(settings.max_public_concurrency)),
            callers: Arc::new(api::CallerSlots::new(settings.max_per_caller)),
            inflight: Arc::new(Semaphore::new(settings.max_inflight.div_ceil(1024))),
            exports: Arc::new(Semaphore::new(settings.max_exports)),
            settings: Arc::new(settings),
            materialize: Arc::new(Notify::new()),
            pushes: materialize::PushActivity::default(),
            pulls_waiting: Arc::new(AtomicUsize::new(0)),
            ready: Arc::default(),
            incarnation: incarnation.into(),
            mailer: invite::send::Mailer::from_args(&settings_mail)
                .map_err(|e| anyhow::anyhow!(e))?
                .map(Arc::new),
            invitations: Arc::new(Notify::new()),
        })
    }
}

/// The HTTP API.
pub fn router(state: AppState) -> Router {
    api::router(state)
}

/// Serve the API on `listener` until `shutdown` resolves, with the background materialiser
/// running beside it. In-flight requests finish before this returns.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    tls: Option<Arc<tls::Tls>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = Arc::new(Notify::new());
    let materializer = tokio::spawn(materialize::run(state.clone(), stop.clone()));
    let sender_stop = Arc::new(Notify::new());
    let mut sender = tokio::spawn(invite::send::run(state.clone(), sender_stop.clone()));
    let purger = state
        .settings
        .purge_every
        .map(|every| tokio::spawn(purge_on_schedule(state.db.clone(), every)));
    let settings = state.settings.clone();
    let result = http::serve(listener, router(state), settings, tls, shutdown).await;
    stop.notify_one();
    sender_stop.notify_one();
    let _ = materializer.await;
    // An email being handed to the mail server is let finish, briefly.
    if tokio::time::timeout(std::time::Duration::from_secs(5), &mut sender)
        .await
        .is_err()
    {
        sender.abort();
    }
    if let Some(p) = purger {
        p.abort();
    }
    result
}

/// Erase responses past their survey's retention period, and delete files no response names
/// any more, at start and then every `every`
/// (until the server stops and aborts it; an erasure in progress is one transaction).
async fn purge_on_schedule(db: storage::Db, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match service::rights::purge(&db, storage::now_ms(), "server").await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                erased = n,
                "retention purge erased responses past their period"
            ),
            Err(e) => tracing::warn!(error = %e, "retention purge failed; it runs again later"),
        }
        match service::media::sweep(&db, storage::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "deleted files no response names any more"),
            Err(e) => tracing::warn!(error = %e, "the file sweep failed; it runs again later"),
        }
    }
}
