//! The benchmark harness keeps working: `fieldsync-bench --short` runs every scenario end to
//! end at small sizes and its correctness checks hold (counts, nothing lost). No timing is
//! asserted; figures are for BENCHMARKS.md, not for tests.

use std::process::Command;
use std::time::Duration;

use fieldsync_e2e::{binaries, postgres_server, process};

const SCENARIOS: [&str; 9] = [
    "collect",
    "push",
    "materialise",
    "pull",
    "noop_sync",
    "at_rest",
    "baseline",
    "many_devices",
    "attachments",
];

/// On SQLite, and (when the run has PostgreSQL) on three instances on one PostgreSQL database.
#[test]
fn the_benchmark_short_mode_runs_every_scenario_and_loses_nothing() {
    let mut runs = vec![Vec::new()];
    if let Some(base) = postgres_server() {
        runs.push(vec![
            "--postgres".to_owned(),
            base,
            "--instances".to_owned(),
            "3".to_owned(),
        ]);
    }
    for extra in runs {
        short_run(&extra);
    }
}

fn short_run(extra: &[String]) {
    let bins = binaries();
    let mut cmd = Command::new(&bins.bench);
    process::clean_env(&mut cmd);
    cmd.arg("--short").args(extra);
    let out = process::spawn(cmd, None, format!("fieldsync-bench --short {extra:?}"))
        .wait(Duration::from_secs(600));
    assert_eq!(
        out.code,
        Some(0),
        "the short benchmark failed\n{}",
        out.describe()
    );
    let rows: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for scenario in SCENARIOS {
        assert!(
            rows.iter().any(|r| r["scenario"] == scenario),
            "no {scenario} line in the benchmark output:\n{}",
            out.stdout
        );
    }
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["scenario"] == name)
            .cloned()
            .unwrap_or_default()
    };
    // Every device's responses were acknowledged, and a no-op sync is one round trip.
    let devices = row("many_devices");
    assert_eq!(
        devices["acknowledged"].as_u64(),
        Some(
            devices["devices"].as_u64().unwrap_or(0)
                * devices["responses_per_device"].as_u64().unwrap_or(0)
        ),
        "{devices}"
    );
    assert_eq!(devices["failed_devices"].as_u64(), Some(0), "{devices}");
    assert_eq!(row("noop_sync")["round_trips"].as_u64(), Some(1));
}
