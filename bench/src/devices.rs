//! Many devices at once: K device stores syncing to the server together, each pushing M
//! responses; every one acknowledged, none lost, push latency percentiles.

use std::time::{Duration, Instant};

use anyhow::bail;
use fieldsync_client::client::ApiClient;
use fieldsync_client::engine;
use fieldsync_client::store::Store;

use crate::Args;
use crate::scenarios::{
    Counting, Org, Row, check, import, new_device, per_sec, round, wait_materialised,
};

pub(crate) fn many_devices(
    org: &Org,
    args: &Args,
    ok: &mut bool,
    coordinator: &mut Store,
    already: usize,
) -> anyhow::Result<Row> {
    let k = args.devices();
    let m = args.per_device();
    // Prepare devices in parallel: each store creation derives a passphrase key on purpose
    // slowly (PBKDF2, 600,000 iterations).
    let mut devices = Vec::with_capacity(k);
    std::thread::scope(|s| -> anyhow::Result<()> {
        let chunks: Vec<Vec<usize>> = (0..k)
            .collect::<Vec<_>>()
            .chunks(k.div_ceil(4).max(1))
            .map(|c| c.to_vec())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || -> anyhow::Result<Vec<(Store, ApiClient)>> {
                    let mut out = Vec::new();
                    for d in chunk {
                        let (mut store, client) = new_device(org, &format!("dev{d}"), d)?;
                        import(&mut store, &org.survey.survey_id.to_string(), m)?;
                        out.push((store, client));
                    }
                    Ok(out)
                })
            })
            .collect();
        for h in handles {
            let part = h
                .join()
                .map_err(|_| anyhow::anyhow!("device setup panicked"))??;
            devices.extend(part);
        }
        Ok(())
    })?;

    let start = Instant::now();
    let results: Vec<anyhow::Result<(u64, Vec<Duration>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter_mut()
            .map(|(store, client)| {
                s.spawn(move || -> anyhow::Result<(u64, Vec<Duration>)> {
                    let counting = Counting::new(client);
                    let report = engine::sync(store, &counting, &mut |_| {})?;
                    if !report.rejected.is_empty() {
                        bail!("rejected: {:?}", report.rejected);
                    }
                    let lat = counting
                        .latencies
                        .lock()
                        .map(|l| l.clone())
                        .unwrap_or_default();
                    Ok((report.pushed_docs, lat))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("device sync panicked")))
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let (server_peak, worker_peak) = org.peak_memory();
    let mut acknowledged = 0;
    let mut latencies = Vec::new();
    let mut failures = 0;
    for r in results {
        match r {
            Ok((n, lat)) => {
                acknowledged += n;
                latencies.extend(lat);
            }
            Err(e) => {
                eprintln!("device sync failed: {e:#}");
                failures += 1;
            }
        }
    }
    check(ok, failures == 0, "every device synced");
    check(
        ok,
        acknowledged as usize == k * m,
        "every device's responses were acknowledged",
    );
    // Nothing lost: once the server has checked them, the coordinator pulls exactly the new
    // responses.
    wait_materialised(org, k * m)?;
    engine::sync(coordinator, &org.admin, &mut |_| {})?;
    let held = coordinator.status_report()?.responses as usize;
    check(
        ok,
        held == already + k * m,
        "the server holds every device's responses exactly once",
    );
    latencies.sort();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let idx = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        round(latencies[idx].as_secs_f64() * 1000.0)
    };
    let mut row = Row::new("many_devices", k);
    row.set("devices", k)
        .set("responses_per_device", m)
        .set("acknowledged", acknowledged)
        .set("failed_devices", failures)
        .set("seconds", round(elapsed.as_secs_f64()))
        .set("responses_per_sec", per_sec(k * m, elapsed))
        .set("latency_p50_ms", pct(0.50))
        .set("latency_p95_ms", pct(0.95))
        .set("latency_p99_ms", pct(0.99))
        .set("server_peak_rss_mib", round(server_peak as f64 / 1048576.0))
        .set("worker_peak_rss_mib", round(worker_peak as f64 / 1048576.0));
    Ok(row)
}
