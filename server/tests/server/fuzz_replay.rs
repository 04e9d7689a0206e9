//! The fuzz corpus, replayed by the ordinary test suite: every file of `fuzz/corpus/<target>/`
//! and every regression input kept as `fuzz/artifacts/<target>/regress-*` runs through the same
//! function its fuzz target calls, with the same properties (`fieldsync_protocol::fuzz_targets`
//! and `fuzz/src/push.rs`, which is included here). The push targets run through the test
//! `Harness`, so through the real router and the real worker binary.
//!
//! The generated seeds (`seed-*` files) are checked to be in the corpus; after changing them
//! (or after `cargo fuzz cmin` dropped some), write them again with
//! `FIELDSYNC_WRITE_FUZZ_SEEDS=1 cargo nextest run -p fieldsync-server fuzz_replay`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fieldsync_protocol::api::Role;
use fieldsync_protocol::fuzz_targets as ft;
use fieldsync_server::worker::WorkerPool;

use super::common::*;

#[allow(dead_code)]
#[path = "../../../fuzz/src/push.rs"]
mod push;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every input of one target: its corpus, then its kept regression inputs, each sorted.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (dir, prefix) in [("corpus", ""), ("artifacts", "regress-")] {
        let dir = fuzz_dir().join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix) && !n.starts_with('.'))
            })
            .collect();
        files.sort();
        for p in files {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            let name = p
                .strip_prefix(fuzz_dir())
                .unwrap_or(&p)
                .display()
                .to_string();
            out.push((name, bytes));
        }
    }
    out
}

/// The seeds as `fuzz_targets::seeds` makes them from the fixtures.
fn generated_seeds() -> Vec<ft::Seed> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/hostile");
    let mut hostile: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "bin" || x == "automerge")
        })
        .map(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&p).unwrap_or_else(|e| panic!("{e}")))
        })
        .collect();
    hostile.sort();
    assert!(hostile.len() >= 10, "fixtures/hostile/ has its files");
    let golden =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/golden/push-request-v1.cbor");
    let golden = std::fs::read(&golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
    ft::seeds(&hostile, &golden)
}

#[test]
fn the_generated_seeds_are_in_the_corpus() {
    let write = std::env::var_os("FIELDSYNC_WRITE_FUZZ_SEEDS").is_some();
    let mut missing = Vec::new();
    for seed in generated_seeds() {
        let path = fuzz_dir().join("corpus").join(seed.target).join(&seed.name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
                .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&path, &seed.bytes).unwrap_or_else(|e| panic!("{e}"));
        }
        if std::fs::read(&path).ok().as_deref() != Some(seed.bytes.as_slice()) {
            missing.push(path.display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "seeds missing or changed in the corpus: {missing:#?}\nwrite them with \
         FIELDSYNC_WRITE_FUZZ_SEEDS=1 cargo nextest run -p fieldsync-server fuzz_replay"
    );
}

/// Run `check` on every input of `target`, and fail naming every input that fails.
fn replay_in_process(target: &str, check: impl Fn(&[u8]) -> Result<(), String>) -> usize {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no corpus for {target}");
    let mut failures = Vec::new();
    for (name, bytes) in &inputs {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(bytes))) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => failures.push(format!("{name}: {why}")),
            Err(_) => failures.push(format!("{name}: panicked (see above)")),
        }
    }
    assert!(failures.is_empty(), "{target}: {failures:#?}");
    inputs.len()
}

#[test]
fn wire_decode_corpus_replays() {
    let decoded = std::cell::Cell::new(0usize);
    let n = replay_in_process("wire_decode", |bytes| {
        let report = ft::wire_decode(bytes)?;
        decoded.set(decoded.get() + usize::from(!report.decoded.is_empty()));
        Ok(())
    });
    assert!(
        decoded.get() > 0,
        "none of the {n} inputs decodes as a message"
    );
}

#[test]
fn change_info_corpus_replays() {
    // automerge panics on some of these inputs, inside `catch_automerge_panic`: expected, so
    // not printed (each test runs in a process of its own under nextest).
    let loud = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !ft::expecting_panic() {
            loud(info);
        }
    }));
    replay_in_process("change_info", |bytes| ft::change_info(bytes).map(|_| ()));
}

/// Coordinators the push corpus is pushed as, in turn.
const CALLERS: usize = 96;

/// Both push targets through one harness, as the fuzz targets run them: every input pushed
/// and checked, what was stored materialised and read back, and the known-good push after
/// every few inputs and at the end.
#[test]
fn push_corpus_replays() {
    // No background materialiser: the replay drains it itself after each push, as the fuzz
    // targets do. The pool gets the fuzz targets' limits (3 s per request instead of 20), so
    // time bombs cost seconds.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut h = rt.block_on(Harness::without_materialiser());
    h.state.workers = Arc::new(WorkerPool::new(PathBuf::from(BIN), push::worker_limits()));
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut slow = Vec::new();
    let mut count = 0;
    let tally = rt.block_on(async {
        let org = h.org("Fuzz").await;
        let survey = h
            .publish(&org.admin, &fixture("surveys/household-v1.json"))
            .await
            .survey_id;
        // Inputs that kill a worker get their caller refused for a minute after three; enough
        // callers that every input of the corpus is really checked (asserted below).
        let mut callers = vec![org.coordinator.clone()];
        for i in 0..CALLERS {
            callers.push(
                h.member(&org, Role::Coordinator, &format!("Fuzz {i}"))
                    .await
                    .1,
            );
        }
        let mut target = push::Target::new(survey, callers, org.admin.clone(), org.ops.clone());
        for (kind, dir) in [("body", "push_path"), ("changes", "push_changes")] {
            for (name, bytes) in inputs(dir) {
                let t = Instant::now();
                let r = match kind {
                    "body" => target.push_body(&h.state, &bytes).await,
                    _ => target.push_changes(&h.state, &bytes).await,
                };
                if let Err(why) = r {
                    failures.push(format!("{name}: {why}"));
                }
                if t.elapsed() > Duration::from_secs(5) {
                    slow.push(format!("{name}: {:?}", t.elapsed()));
                }
                count += 1;
                if count % 25 == 0
                    && let Err(why) = target.canary(&h.state).await
                {
                    failures.push(format!("canary after {name}: {why}"));
                }
            }
        }
        if let Err(why) = target.canary(&h.state).await {
            failures.push(format!("final canary: {why}"));
        }
        target.tally
    });
    eprintln!(
        "replayed {count} push inputs in {:?}: {tally:?}; slow: {slow:#?}",
        started.elapsed()
    );
    assert!(count > 0, "no push corpus");
    assert!(failures.is_empty(), "push corpus: {failures:#?}");
    assert!(tally.stored > 0, "some pushes were stored: {tally:?}");
    assert!(
        !tally.statuses.contains_key(&429),
        "every caller was refused for crashing workers, so some inputs went unchecked; raise \
         CALLERS: {tally:?}"
    );
}
