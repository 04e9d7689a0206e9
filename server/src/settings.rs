//! The server's settings: one typed struct, filled from flags and `FIELDSYNC_*` environment
//! variables by clap, checked before anything starts.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::storage::Database;
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
    /// Defaults to `master.key` inside the data directory. Every instance on one PostgreSQL
    /// database must be given the same file.
    #[arg(long, env = "FIELDSYNC_MASTER_KEY")]
    pub master_key: Option<PathBuf>,

    /// A PostgreSQL database, `postgres://USER:PASSWORD@HOST:PORT/DATABASE`, instead of the
    /// embedded SQLite file in the data directory. Several instances may share it.
    #[arg(long, env = "FIELDSYNC_DATABASE")]
    pub database: Option<String>,
}

impl DataArgs {
    /// The database this instance uses: `--database`, or SQLite in the data directory.
    pub fn database(&self) -> Result<Database, String> {
        match self.database.as_deref().map(str::trim) {
            None | Some("") => Ok(Database::Sqlite(self.data_dir.join("fieldsync.sqlite"))),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Database::Postgres(url.to_owned()))
            }
            Some(other) => Err(format!(
                "--database {:?} is not a PostgreSQL URL; write postgres://USER:PASSWORD@HOST:PORT/DATABASE, or leave it out to use SQLite in --data",
                crate::storage::postgres::redact(other)
            )),
        }
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

/// The format of the server's log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `fieldsync-server serve` settings.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Address to listen on.
    #[arg(long, env = "FIELDSYNC_LISTEN", default_value = "127.0.0.1:8470")]
    pub listen: SocketAddr,

    /// How log lines are written to stderr: `text` (coloured only on a terminal) or `json`
    /// (one object per line, for log collectors). The level comes from FIELDSYNC_LOG
    /// (default `info`: one line per request, and whatever goes wrong).
    #[arg(long, env = "FIELDSYNC_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

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

    /// Requests from one caller (one device or member token) handled at once; more are
    /// answered 429, so one caller cannot take the capacity every other caller needs.
    #[arg(long, env = "FIELDSYNC_MAX_PER_CALLER", default_value_t = 16)]
    pub max_per_caller: usize,

    /// Sign-in requests (login, enroll: the only routes without a token) handled at once.
    /// They have their own slots, so unauthenticated traffic cannot take sync's.
    #[arg(long, env = "FIELDSYNC_MAX_PUBLIC_CONCURRENCY", default_value_t = 32)]
    pub max_public_concurrency: usize,

    /// Request bodies held in memory at once across the whole server, in MiB (each request
    /// reserves its declared length before its body is read; more wait, then get 503). With
    /// the SQLite caches and the workers this sets the server's memory ceiling (README).
    #[arg(long, env = "FIELDSYNC_MAX_INFLIGHT_MB", default_value_t = 128)]
    pub max_inflight_mb: usize,

    /// Longest time a client may take to send a request's headers, in seconds.
    #[arg(long, env = "FIELDSYNC_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Longest time a client may take to send a request's body, in seconds.
    #[arg(long, env = "FIELDSYNC_BODY_TIMEOUT", default_value_t = 30)]
    pub body_timeout_secs: u64,

    /// Longest time a response may wait for the client to read it, in seconds (a client
    /// that stops reading an export is disconnected after this).
    #[arg(long, env = "FIELDSYNC_SEND_TIMEOUT", default_value_t = 60)]
    pub send_timeout_secs: u64,

    /// Exports streaming at once; more wait up to --queue-wait-ms, then get 503.
    #[arg(long, env = "FIELDSYNC_MAX_EXPORTS", default_value_t = 8)]
    pub max_exports: usize,

    /// Open connections at once across the server, and from one client address.
    #[arg(long, env = "FIELDSYNC_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Open connections at once from one client address.
    #[arg(
        long,
        env = "FIELDSYNC_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 512
    )]
    pub max_connections_per_address: usize,

    /// Failed login or enrollment attempts allowed per minute with one token or code from one
    /// client address (one person retrying a wrong code is stopped, and stopped alone).
    #[arg(long, env = "FIELDSYNC_LOGIN_ATTEMPTS", default_value_t = 10)]
    pub login_attempts: u32,

    /// Failed login or enrollment attempts allowed per minute from one client address, whatever
    /// was tried: a whole team behind one NAT shares it, and so does a guesser.
    #[arg(
        long,
        env = "FIELDSYNC_LOGIN_ATTEMPTS_PER_ADDRESS",
        default_value_t = 100
    )]
    pub login_attempts_per_address: u32,

    /// A reverse proxy or load balancer whose `X-Forwarded-For` header is believed, as an
    /// address or a network (`10.0.0.0/8`); repeat it or separate with commas. Requests from
    /// anywhere else are attributed to their own address, whatever they claim.
    #[arg(
        long = "trusted-proxy",
        env = "FIELDSYNC_TRUSTED_PROXY",
        value_delimiter = ',',
        value_parser = parse_network
    )]
    pub trusted_proxies: Vec<Network>,

    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first); read
    /// again, with --tls-key, when the server receives SIGHUP.
    #[arg(
        long,
        env = "FIELDSYNC_TLS_CERT",
        requires = "tls_key",
        value_name = "FILE"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(
        long,
        env = "FIELDSYNC_TLS_KEY",
        requires = "tls_cert",
        value_name = "FILE"
    )]
    pub tls_key: Option<PathBuf>,

    /// Print the effective settings, where each comes from (flag, variable, file or default),
    /// as TOML with passwords hidden, and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Serve Prometheus metrics at `http://ADDRESS/metrics` on a listener of its own (off
    /// unless given; keep it on an address only the monitoring system reaches).
    #[arg(long, env = "FIELDSYNC_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Number of sandboxed Automerge worker processes.
    #[arg(long, env = "FIELDSYNC_WORKERS", default_value_t = 2)]
    pub workers: usize,

    /// Address-space limit of each worker process while it materialises, in MiB.
    #[arg(long, env = "FIELDSYNC_WORKER_MEMORY_MB", default_value_t = 1024)]
    pub worker_memory_mb: u64,

    /// Address-space limit of a worker while it parses a push, in MiB: smaller than the
    /// materialising limit, so a crafted input that allocates without bound dies sooner.
    #[arg(long, env = "FIELDSYNC_CHECK_MEMORY_MB", default_value_t = 256)]
    pub check_memory_mb: u64,

    /// Longest time a worker may spend on one request before it is killed, in seconds.
    #[arg(long, env = "FIELDSYNC_WORKER_TIMEOUT", default_value_t = 20)]
    pub worker_timeout_secs: u64,

    /// How often the server erases responses past their survey's retention period, in
    /// seconds (also once at start); 0 leaves it to `fieldsync-server admin purge`.
    #[arg(long, env = "FIELDSYNC_PURGE_EVERY", default_value_t = 3600)]
    pub purge_every_secs: u64,

    /// `/readyz` fails when the data directory's file system has less free space than this,
    /// in MiB (SQLite; a database that cannot grow refuses every push).
    #[arg(long, env = "FIELDSYNC_MIN_FREE_DISK_MB", default_value_t = 256)]
    pub min_free_disk_mb: u64,

    #[command(flatten)]
    pub mail: crate::invite::MailArgs,
}

/// An address or network, as `--trusted-proxy` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` is in this network (an IPv4 address also matches as IPv4-mapped IPv6).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.base, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

fn parse_network(s: &str) -> Result<Network, String> {
    let s = s.trim();
    let (ip, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
    let base: IpAddr = ip.parse().map_err(|_| {
        format!("{s:?} is not an address or a network; write 10.1.2.3 or 10.0.0.0/8")
    })?;
    let most = if base.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => most,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= most)
            .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {most}"))?,
    };
    Ok(Network { base, prefix })
}

impl ServeArgs {
    /// `serve` with no flags but `--region`: the defaults, from the flags' definitions.
    pub fn defaults(region: &str) -> ServeArgs {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            serve: ServeArgs,
        }
        <Defaults as clap::Parser>::parse_from(["fieldsync-server", "--region", region]).serve
    }

    /// The sandbox's limits these flags set.
    pub fn worker_limits(&self) -> crate::worker::WorkerLimits {
        crate::worker::WorkerLimits {
            size: self.workers,
            memory_bytes: self.worker_memory_mb * 1024 * 1024,
            check_memory_bytes: self.check_memory_mb * 1024 * 1024,
            timeout: Duration::from_secs(self.worker_timeout_secs.max(1)),
            queue_timeout: crate::worker::QUEUE_TIMEOUT,
        }
    }
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
    pub login_attempts_per_address: u32,
    pub login_window: Duration,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Network>,
    pub max_per_caller: usize,
    pub max_public_concurrency: usize,
    /// Bytes of request bodies in memory at once.
    pub max_inflight: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub send_timeout: Duration,
    pub max_exports: usize,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// How often the retention purge runs; `None`: never on its own.
    pub purge_every: Option<Duration>,
    /// The directory whose free space `/readyz` checks (SQLite's), and the least it needs.
    pub disk: Option<(std::path::PathBuf, u64)>,
    /// How invitations are mailed.
    pub mail: crate::invite::MailArgs,
}

impl Settings {
    pub fn from_args(args: &ServeArgs) -> Result<Settings, String> {
        args.data.validate()?;
        if args.tls_cert.is_some() != args.tls_key.is_some() {
            return Err(
                "--tls-cert and --tls-key go together: give the certificate chain and its key"
                    .into(),
            );
        }
        if args.max_concurrency == 0 {
            return Err("--max-concurrency must be at least 1".into());
        }
        if args.workers == 0 {
            return Err("--workers must be at least 1".into());
        }
        if args.worker_memory_mb < 64 || args.check_memory_mb < 64 {
            return Err("--worker-memory-mb and --check-memory-mb must be at least 64".into());
        }
        for (value, flag) in [
            (args.max_per_caller, "--max-per-caller"),
            (args.max_public_concurrency, "--max-public-concurrency"),
            (args.max_exports, "--max-exports"),
            (args.max_connections, "--max-connections"),
            (
                args.max_connections_per_address,
                "--max-connections-per-address",
            ),
        ] {
            if value == 0 {
                return Err(format!("{flag} must be at least 1"));
            }
        }
        if args.max_inflight_mb * 1024 * 1024 < args.max_body {
            return Err(format!(
                "--max-inflight-mb ({} MiB) must hold at least one body of --max-body ({} bytes)",
                args.max_inflight_mb, args.max_body
            ));
        }
        Ok(Settings {
            region: args.data.region.clone(),
            max_body: args.max_body,
            max_concurrency: args.max_concurrency,
            queue_wait: Duration::from_millis(args.queue_wait_ms),
            request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            login_attempts: args.login_attempts.max(1),
            login_attempts_per_address: args.login_attempts_per_address.max(1),
            login_window: Duration::from_secs(60),
            trusted_proxies: args.trusted_proxies.clone(),
            max_per_caller: args.max_per_caller,
            max_public_concurrency: args.max_public_concurrency,
            max_inflight: args.max_inflight_mb * 1024 * 1024,
            header_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
            body_timeout: Duration::from_secs(args.body_timeout_secs.max(1)),
            send_timeout: Duration::from_secs(args.send_timeout_secs.max(1)),
            max_exports: args.max_exports,
            max_connections: args.max_connections,
            max_connections_per_address: args.max_connections_per_address,
            mail: {
                // Checked now, so a bad address or sender stops the start with its reason.
                crate::invite::send::Mailer::from_args(&args.mail)?;
                args.mail.clone()
            },
            purge_every: (args.purge_every_secs > 0)
                .then(|| Duration::from_secs(args.purge_every_secs)),
            disk: matches!(
                args.data.database(),
                Ok(crate::storage::Database::Sqlite(_))
            )
            .then(|| {
                (
                    args.data.data_dir.clone(),
                    args.min_free_disk_mb * 1024 * 1024,
                )
            }),
        })
    }

    /// Settings for tests and embedding: the defaults of `serve` (from its flag definitions,
    /// the one place they are written), without the free-space check of a data directory.
    pub fn for_region(region: &str) -> Settings {
        Settings {
            disk: None,
            ..Settings::from_args(&ServeArgs::defaults(region))
                .expect("the defaults of serve are valid")
        }
    }

    /// Where a request came from: the connecting address, or, when that is a trusted proxy,
    /// the last address in `X-Forwarded-For` that is not one (the entries before it could have
    /// been written by the client).
    pub fn client_address(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        if !self.is_trusted_proxy(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.is_trusted_proxy(ip) => client = ip,
                Ok(ip) => return ip,
                // Unreadable: nothing further left can be trusted.
                Err(_) => return client,
            }
        }
        client
    }

    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(ip))
    }
}
