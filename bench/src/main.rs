//! `fieldsync-bench`: measures fieldsync end to end over loopback against the targets in the
//! brief — a real `fieldsync-server` process with its own temporary data directory, real
//! encrypted client stores driven through the client library — and prints one JSON line per
//! scenario plus a readable table. `--short` runs small sizes and checks only correctness
//! (counts, nothing lost), so CI keeps the harness from rotting without timing anything.
//!
//! Build and run: `cargo build --release -p fieldsync-server -p fieldsync-bench &&
//! target/release/fieldsync-bench` (see BENCHMARKS.md).

mod devices;
mod media;
mod peer;
mod scenarios;
mod server;

use std::process::ExitCode;

use clap::Parser;

/// Benchmark fieldsync: collect, push, pull, no-op sync, many devices, at rest, baseline,
/// attachments.
#[derive(Parser, Debug, Clone)]
#[command(name = "fieldsync-bench", version)]
pub struct Args {
    /// Small sizes for CI: checks counts, prints figures, asserts no timing.
    #[arg(long)]
    pub short: bool,
    /// Responses for push, pull, no-op sync and at-rest (default 100000; 400 with --short).
    #[arg(long)]
    pub n: Option<usize>,
    /// Responses collected one at a time in the collect scenario (default 2000; 50 with --short).
    #[arg(long)]
    pub one_at_a_time: Option<usize>,
    /// Devices syncing at once (default 200; 4 with --short).
    #[arg(long)]
    pub devices: Option<usize>,
    /// Responses each device pushes (default 50; 10 with --short).
    #[arg(long)]
    pub per_device: Option<usize>,
    /// Skip the many-devices scenario.
    #[arg(long)]
    pub skip_devices: bool,
    /// Run the server on PostgreSQL: a fresh database is created on the server this URL
    /// names (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`, a role that may create databases).
    #[arg(long, env = "FIELDSYNC_BENCH_POSTGRES")]
    pub postgres: Option<String>,
    /// Server instances on the one PostgreSQL database (needs --postgres): devices are spread
    /// over them, and the coordinator pulls from another instance than the one pushed to.
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// Run the same workload through a peer right after ours and print the ratios:
    /// `pouchdb` (PouchDB 9 replicating to express-pouchdb 4.2, installed from the npm
    /// registry into ~/.cache/fieldsync-bench on first use; needs Node.js).
    #[arg(long, value_enum)]
    pub peer: Option<Peer>,
    /// Skip the attachments scenario.
    #[arg(long)]
    pub skip_media: bool,
}

/// A peer to compare with.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Pouchdb,
}

impl Args {
    pub fn n(&self) -> usize {
        self.n.unwrap_or(if self.short { 400 } else { 100_000 })
    }
    pub fn one_at_a_time(&self) -> usize {
        self.one_at_a_time
            .unwrap_or(if self.short { 50 } else { 2000 })
    }
    pub fn devices(&self) -> usize {
        self.devices.unwrap_or(if self.short { 4 } else { 200 })
    }
    pub fn per_device(&self) -> usize {
        self.per_device.unwrap_or(if self.short { 10 } else { 50 })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.instances == 0 || (args.instances > 1 && args.postgres.is_none()) {
        eprintln!(
            "fieldsync-bench: --instances above 1 needs --postgres (SQLite is one instance's file)"
        );
        return ExitCode::from(2);
    }
    match scenarios::run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("fieldsync-bench: a correctness check failed (see above)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("fieldsync-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}
