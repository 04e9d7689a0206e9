//! The server's settings: one typed struct, filled from flags and `FIELDSYNC_*` environment
//! variables by clap, checked before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Where the data lives and which region this instance serves; shared by every subcommand.
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// Directory holding the database and, by default, the master key.
    #[arg(
        long = "data",
        env = "FIELDSYNC_DATA",
        default_value = "./fieldsync-data"
    )]
    pub data_dir: PathBuf,

    /// The region this instance serves. Organisations are pinned to the region of the instance
    /// that created them; their data, keys and backups never leave it.
    #[arg(long, env = "FIELDSYNC_REGION", default_value = "eu-central")]
    pub region: String,

    /// The master key file (32 bytes, mode 0600). Created on first start if missing.
    /// Defaults to `master.key` inside the data directory.
    #[arg(long, env = "FIELDSYNC_MASTER_KEY")]
    pub master_key: Option<PathBuf>,
}

impl DataArgs {
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("fieldsync.sqlite")
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.master_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// Check the region name: it is written into every organisation, so it must be plain.
    pub fn validate(&self) -> Result<(), String> {
        let ok = !self.region.is_empty()
            && self.region.len() <= 32
            && self
                .region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(())
        } else {
            Err(format!(
                "region {:?} is not valid; use lowercase letters, digits and '-', e.g. eu-central",
                self.region
            ))
        }
    }
}

/// `fieldsync-server serve` settings.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Address to listen on.
    #[arg(long, env = "FIELDSYNC_LISTEN", default_value = "127.0.0.1:8470")]
    pub listen: SocketAddr,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "FIELDSYNC_MAX_BODY", default_value_t = 32 * 1024 * 1024)]
    pub max_body: usize,

    /// Requests handled at once across the whole server; more wait up to --queue-wait-ms, then
    /// get 503.
    #[arg(long, env = "FIELDSYNC_MAX_CONCURRENCY", default_value_t = 256)]
    pub max_concurrency: usize,

    /// How long a request may wait for a free slot when the server is at its concurrency limit.
    #[arg(long, env = "FIELDSYNC_QUEUE_WAIT_MS", default_value_t = 2000)]
    pub queue_wait_ms: u64,

    /// Longest time one request may take, in seconds (exports are exempt: they stream).
    #[arg(long, env = "FIELDSYNC_REQUEST_TIMEOUT", default_value_t = 60)]
    pub request_timeout_secs: u64,

    /// Failed login or enrollment attempts allowed per client address per minute.
    #[arg(long, env = "FIELDSYNC_LOGIN_ATTEMPTS", default_value_t = 10)]
    pub login_attempts: u32,

    /// Number of sandboxed Automerge worker processes.
    #[arg(long, env = "FIELDSYNC_WORKERS", default_value_t = 2)]
    pub workers: usize,

    /// Address-space limit of each worker process, in MiB.
    #[arg(long, env = "FIELDSYNC_WORKER_MEMORY_MB", default_value_t = 1024)]
    pub worker_memory_mb: u64,

    /// Longest time a worker may spend on one request before it is killed, in seconds.
    #[arg(long, env = "FIELDSYNC_WORKER_TIMEOUT", default_value_t = 20)]
    pub worker_timeout_secs: u64,
}

/// The settings the running server needs, resolved from [`ServeArgs`].
#[derive(Clone, Debug)]
pub struct Settings {
    pub region: String,
    pub max_body: usize,
    pub max_concurrency: usize,
    pub queue_wait: Duration,
    pub request_timeout: Duration,
    pub login_attempts: u32,
    pub login_window: Duration,
}

impl Settings {
    pub fn from_args(args: &ServeArgs) -> Result<Settings, String> {
        args.data.validate()?;
        if args.max_concurrency == 0 {
            return Err("--max-concurrency must be at least 1".into());
        }
        if args.workers == 0 {
            return Err("--workers must be at least 1".into());
        }
        if args.worker_memory_mb < 64 {
            return Err("--worker-memory-mb must be at least 64".into());
        }
        Ok(Settings {
            region: args.data.region.clone(),
            max_body: args.max_body,
            max_concurrency: args.max_concurrency,
            queue_wait: Duration::from_millis(args.queue_wait_ms),
            request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            login_attempts: args.login_attempts.max(1),
            login_window: Duration::from_secs(60),
        })
    }

    /// Settings for tests and embedding: the defaults of `serve`.
    pub fn for_region(region: &str) -> Settings {
        Settings {
            region: region.to_owned(),
            max_body: 32 * 1024 * 1024,
            max_concurrency: 256,
            queue_wait: Duration::from_millis(2000),
            request_timeout: Duration::from_secs(60),
            login_attempts: 10,
            login_window: Duration::from_secs(60),
        }
    }
}
