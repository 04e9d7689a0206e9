//! `fieldsync-server`: parse settings, then call into the library.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 bad usage or settings.

mod admin;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use fieldsync_server::settings::{DataArgs, LogFormat, ServeArgs, Settings};
use fieldsync_server::storage::Database;
use fieldsync_server::{AppState, StateConfig};

#[derive(Parser, Debug)]
#[command(
    name = "fieldsync-server",
    version,
    about = "fieldsync sync server: organisations, surveys and batched encrypted sync"
)]
struct Cli {
    /// A configuration file (TOML): the long flags of `serve` without their dashes as keys,
    /// e.g. `max-body = 1048576`. Flags and FIELDSYNC_* variables win over it.
    #[arg(long, global = true, env = "FIELDSYNC_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (creates the database and master key on first start).
    Serve(Box<ServeArgs>),
    /// Administration from the command line, on the server's data directory.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Internal: a sandboxed Automerge worker, started by the server itself.
    #[command(hide = true)]
    Worker {
        /// Set by the pool from `serve --worker-memory-mb`.
        #[arg(long)]
        memory_bytes: u64,
        /// Set by the pool from `serve --check-memory-mb`.
        #[arg(long)]
        check_memory_bytes: u64,
    },
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (command, file) = match fieldsync_server::config::with_file(Cli::command(), &argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let matches = command.clone().get_matches_from(&argv);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Worker {
            memory_bytes,
            check_memory_bytes,
        } => fieldsync_server::worker::run_worker(memory_bytes, check_memory_bytes),
        Command::Serve(args) if args.print_config => {
            let serve = command.find_subcommand("serve").expect("serve exists");
            let serve_matches = matches
                .subcommand_matches("serve")
                .expect("serve was given");
            print!(
                "{}",
                fieldsync_server::config::print(serve, serve_matches, &file)
            );
            Settings::from_args(&args)
                .map(|_| ())
                .map_err(|e| UsageError(e).into())
        }
        Command::Serve(args) => serve(*args),
        Command::Admin(command) => admin::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            if err.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// A problem with the command line or settings (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FIELDSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colour codes only where a person reads them: not in a file or a collector.
        LogFormat::Text => log
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => log.json().flatten_event(true).init(),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::from_args(&args).map_err(UsageError)?;
    init_tracing(args.log_format);
    // Connections are capped by --max-connections, not by the default 1,024 descriptors.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "cannot raise the open-file limit");
    }
    let database = args.data.database().map_err(UsageError)?;
    // Held until the process ends: `admin restore` cannot swap the database under us.
    let _lock = fieldsync_server::lockfile::lock(&args.data.data_dir).map_err(UsageError)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(
                fieldsync_server::tls::Tls::load(cert, key).map_err(UsageError)?,
            )),
            _ => None,
        };
        let state = open_state(database, &args.data, settings, &args).await?;
        if let Some(at) = args.metrics_listen {
            let handle = fieldsync_server::metrics::install()?;
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen for metrics on {at}"))?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, "metrics at http://{addr}/metrics");
            tokio::spawn(async move {
                if let Err(e) = fieldsync_server::metrics::serve(listener, handle).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, region = %state.settings.region, data = %args.data.data_dir.display(), "fieldsync-server listening");
        let scheme = if tls.is_some() { "https" } else { "http" };
        if let Some(tls) = &tls {
            tokio::spawn(fieldsync_server::tls::reload_on_hangup(tls.clone()));
        }
        // Scripts and tests read this line to find the port when --listen uses port 0.
        println!("listening on {scheme}://{addr}");
        fieldsync_server::serve(listener, state, tls, shutdown_signal()).await?;
        tracing::info!("fieldsync-server stopped");
        Ok(())
    })
}

async fn open_state(
    database: Database,
    data: &DataArgs,
    settings: Settings,
    args: &ServeArgs,
) -> anyhow::Result<AppState> {
    let worker_exe = std::env::current_exe().context("cannot find this program's path")?;
    AppState::open(StateConfig {
        database,
        master_key: data.master_key_path(),
        worker_exe,
        worker_limits: args.worker_limits(),
        settings,
    })
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
