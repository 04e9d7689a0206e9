//! The `fieldsync` process is SIGKILLed at seeded random moments while it collects an answers
//! file, imports a few thousand rows and syncs, dozens of times over: a flat battery can
//! strike at any instruction. After every kill the store is intact SQLite, still opens with
//! the passphrase, and holds everything that was saved before; at the end one clean sync puts
//! every response the device holds on the server exactly once, with its answers. The kill
//! moment is random; what is asserted never depends on it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use fieldsync_e2e::client::{COMMAND_TIMEOUT, int_field, str_field};
use fieldsync_e2e::data::{self, Answers, HOUSEHOLD_V1_QUESTIONS, answers_of, assert_answers};
use fieldsync_e2e::rng::{SeedGuard, seeds};
use fieldsync_e2e::{Client, Output, Rng, World};
use serde_json::{Value, json};

/// Seeds run by default; `FIELDSYNC_CRASH_SEED=N` runs only N.
const SEEDS: [u64; 1] = [0x00C2_A541];
const SEED_VAR: &str = "FIELDSYNC_CRASH_SEED";
/// Responses in each `collect --answers` file: one whole transaction and a part of one.
const COLLECT_ROWS: usize = 1_200;
/// Rows in each import file: two transactions.
const IMPORT_ROWS: usize = 2_000;
/// Responses per transaction of `collect --answers` and `import` (the CLI's `import::BATCH`).
const BATCH: usize = 1_000;
/// How many times each batch command runs, in a seeded order; the first run of each goes to
/// completion and times the command, nearly every later one is killed somewhere in it.
const BATCH_RUNS: [(Op, usize); 2] = [(Op::Collect, 9), (Op::Import, 9)];
/// How often a (killed) sync follows a batch command, so that most syncs have work to do.
const SYNC_AFTER_PERCENT: u64 = 67;
/// The store file in a client home (`client-cli/src/store/mod.rs`, `DB_FILE`).
const STORE_FILE: &str = "fieldsync.sqlite";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Collect,
    Import,
    Sync,
}

/// The responses one collect or import stored (whole or in part): the file's rows, by their
/// unique enumerator name, and how many of them the store holds.
struct Created {
    run: usize,
    rows: Vec<Answers>,
    stored: usize,
}

#[test]
fn a_client_killed_at_random_moments_keeps_what_it_saved_and_syncs_once() {
    for seed in seeds(SEED_VAR, &SEEDS) {
        let _guard = SeedGuard::new(SEED_VAR, seed);
        let started = Instant::now();
        run(seed);
        eprintln!(
            "[e2e] crash seed {seed} passed in {:.1?}",
            started.elapsed()
        );
    }
}

fn run(seed: u64) {
    let w = World::start();
    w.publish("household-v1.json");
    let (device, _) = w.enumerator("tablet", "Amina Odhiambo", &["household_survey"]);
    let mut rng = Rng::new(seed);
    // Which stored response to read back depends on where a kill landed: a separate stream,
    // so that the kill moments of a seed do not depend on it.
    let mut sample = Rng::new(seed ^ 0x5A5A_5A5A);
    let mut batches: Vec<Op> = BATCH_RUNS
        .iter()
        .flat_map(|&(op, n)| std::iter::repeat_n(op, n))
        .collect();
    rng.shuffle(&mut batches);
    let mut schedule = Vec::new();
    for op in batches {
        schedule.push(op);
        if rng.chance(SYNC_AFTER_PERCENT) {
            schedule.push(Op::Sync);
        }
    }

    let mut timing = Timing::default();
    let mut held: BTreeSet<String> = BTreeSet::new();
    let mut pending: u64 = 0;
    let mut created: Vec<Created> = Vec::new();
    // Every row of every input file, by its unique enumerator name.
    let mut rows_by_name: HashMap<String, Answers> = HashMap::new();
    let mut kills: BTreeMap<Op, u32> = BTreeMap::new();
    for (run, op) in schedule.into_iter().enumerate() {
        let (args, rows) = command(&w, op, run);
        for row in &rows {
            rows_by_name.insert(data::cell(row, "enumerator_name"), row.clone());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // The first run of a command times it; later ones die somewhere in that time.
        let kill_after = timing
            .window(op, pending)
            .map(|d| Duration::from_millis(rng.below(d.as_millis() as u64 + 1)));
        let started = Instant::now();
        let mut child = device.spawn(&args);
        let out = match kill_after {
            None => child.wait(COMMAND_TIMEOUT),
            Some(moment) => {
                while !child.finished() && started.elapsed() < moment {
                    std::thread::sleep(Duration::from_millis(2));
                }
                child.kill()
            }
        };
        let killed = out.code.is_none();
        if out.code == Some(0) {
            timing.record(op, started.elapsed(), &out.stdout);
        }
        if killed {
            *kills.entry(op).or_default() += 1;
        }
        let what = format!(
            "run {run} ({op:?}, {}, seed {seed})",
            match kill_after {
                Some(m) if killed => format!("killed after {m:?}"),
                _ => "ran to its end".into(),
            }
        );
        eprintln!("[e2e] {what}");

        // The store survived: sound SQLite, unlocked by the passphrase, nothing lost.
        let integrity = integrity_check(&device.home().join(STORE_FILE));
        assert_eq!(integrity, "ok", "{what}: integrity_check of the store");
        let status = device.status();
        let now: BTreeSet<String> = device.response_ids(&[]).into_iter().collect();
        let lost: Vec<&String> = held.difference(&now).collect();
        assert!(
            lost.is_empty(),
            "{what}: responses saved before are gone: {lost:?}"
        );
        let new: Vec<String> = now.difference(&held).cloned().collect();

        match op {
            Op::Collect | Op::Import => {
                check_batch_command(&out, &what, op, &rows, &new);
                if !new.is_empty() {
                    created.push(Created {
                        run,
                        rows,
                        stored: new.len(),
                    });
                }
            }
            Op::Sync => {
                assert!(
                    killed || out.code == Some(0),
                    "{what}: sync failed\n{}",
                    out.describe()
                );
                assert!(new.is_empty(), "{what}: a sync created responses: {new:?}");
                let now_pending = pending_of(&status);
                assert!(
                    now_pending <= pending,
                    "{what}: a sync made more responses pending ({pending} -> {now_pending})"
                );
            }
        }
        // One response read back whole: new if the run stored some, else any; a kill never
        // leaves a response with answers from nowhere or half of its row.
        let pool: Vec<&String> = if new.is_empty() {
            now.iter().collect()
        } else {
            new.iter().collect()
        };
        if !pool.is_empty() {
            read_back(
                &device,
                pool[sample.index(pool.len())],
                &rows_by_name,
                &what,
            );
        }
        pending = pending_of(&status);
        held = now;
    }
    eprintln!(
        "[e2e] seed {seed}: kills {kills:?}; {} responses on the device; {timing:?}",
        held.len()
    );

    // One clean sync converges: everything on the server, exactly once, with its answers.
    let report = device.sync();
    assert_eq!(report["rejected"], json!([]), "{report}");
    let again = device.sync();
    assert_eq!(again["pushed_docs"], 0, "nothing left to push: {again}");
    let status = device.status();
    for field in ["pending_responses", "pending_changes", "rejected"] {
        assert_eq!(int_field(&status, field), 0, "{field} in {status}");
    }
    check_server_holds(&w, &held, &created);
}

/// `pending_responses` of a `status --json` report.
fn pending_of(status: &Value) -> u64 {
    int_field(status, "pending_responses").unsigned_abs()
}

/// How long each command takes when it is not killed, so that kill moments spread over its
/// whole run. Only where the kills land depends on this, never what is asserted.
#[derive(Debug, Default)]
struct Timing {
    /// The fastest complete run of each command.
    fastest: BTreeMap<Op, Duration>,
    /// The lowest time per pushed response of a complete sync (its fixed costs included).
    sync_per_doc: Option<Duration>,
}

impl Timing {
    /// The span to draw a kill moment from: as long as the fastest complete run, so that
    /// nearly every run is killed; `None` until the command has run once to its end.
    fn window(&self, op: Op, pending: u64) -> Option<Duration> {
        let fastest = *self.fastest.get(&op)?;
        let span = match (op, self.sync_per_doc) {
            (Op::Sync, Some(per_doc)) => {
                fastest.max(per_doc * u32::try_from(pending).unwrap_or(u32::MAX))
            }
            _ => fastest,
        };
        Some(span)
    }

    /// Learn from a run that completed in `elapsed` and printed `stdout`.
    fn record(&mut self, op: Op, elapsed: Duration, stdout: &str) {
        let fastest = self.fastest.entry(op).or_insert(elapsed);
        *fastest = (*fastest).min(elapsed);
        if op == Op::Sync {
            let pushed = serde_json::from_str::<Value>(stdout.trim())
                .ok()
                .and_then(|r| r["pushed_docs"].as_u64())
                .unwrap_or(0);
            if let Ok(pushed @ 1..) = u32::try_from(pushed) {
                let per_doc = elapsed / pushed;
                self.sync_per_doc = Some(self.sync_per_doc.map_or(per_doc, |d| d.min(per_doc)));
            }
        }
    }
}

/// The arguments of run `run` of `op`, and the rows its input file holds. Every row's
/// enumerator name is unique across the whole test, so rows can be traced to their file.
fn command(w: &World, op: Op, run: usize) -> (Vec<String>, Vec<Answers>) {
    let path = |name: &str, text: &str| {
        w.file(name, text)
            .to_str()
            .expect("utf-8 temp path")
            .to_owned()
    };
    match op {
        Op::Collect => {
            let rows = data::household_v1(run * 10_000, COLLECT_ROWS);
            let file = path(&format!("collect-{run}.jsonl"), &data::jsonl(&rows));
            let args = ["--json", "collect", "household_survey", "--answers", &file];
            (args.map(String::from).to_vec(), rows)
        }
        Op::Import => {
            let rows = data::household_v1(run * 10_000, IMPORT_ROWS);
            // CSV and JSON Lines take different paths through the importer: alternate.
            let file = if run.is_multiple_of(2) {
                path(
                    &format!("import-{run}.csv"),
                    &data::to_csv(&HOUSEHOLD_V1_QUESTIONS, &rows),
                )
            } else {
                path(&format!("import-{run}.jsonl"), &data::jsonl(&rows))
            };
            let args = ["--json", "import", "household_survey", &file];
            (args.map(String::from).to_vec(), rows)
        }
        Op::Sync => (vec!["--json".into(), "sync".into()], Vec::new()),
    }
}

/// After a collect or an import, killed or not: what it reported is there, and a killed one
/// left whole transactions only.
fn check_batch_command(out: &Output, what: &str, op: Op, rows: &[Answers], new: &[String]) {
    // The report comes at the very end; a process killed after printing it has still
    // reported everything in it as saved.
    let report: Option<Value> = serde_json::from_str(out.stdout.trim()).ok();
    match (&report, out.code) {
        (Some(report), Some(0) | None) => {
            assert_eq!(report["stored"], rows.len(), "{what}: {report}");
            assert_eq!(
                new.len(),
                rows.len(),
                "{what}: the store lacks reported rows"
            );
            if op == Op::Collect {
                let reported: BTreeSet<String> = report["ids"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{what}: no ids in {report}"))
                    .iter()
                    .map(|id| id.as_str().expect("ids are strings").to_owned())
                    .collect();
                let new: BTreeSet<String> = new.iter().cloned().collect();
                assert_eq!(reported, new, "{what}: reported ids and stored ids differ");
            }
        }
        (None, None) => {
            // Nothing was reported, so nothing is owed, but each transaction is all or
            // nothing.
            assert!(
                new.len() <= rows.len()
                    && (new.len().is_multiple_of(BATCH) || new.len() == rows.len()),
                "{what}: {} of {} rows are stored, not whole transactions of {BATCH}",
                new.len(),
                rows.len()
            );
        }
        _ => panic!("{what}: the command failed\n{}", out.describe()),
    }
}

/// Response `id` on the device holds exactly the answers of the row it was stored from.
fn read_back(device: &Client, id: &str, rows_by_name: &HashMap<String, Answers>, what: &str) {
    let got = answers_of(&device.json(&["response", "show", id]));
    let name = data::cell(&got, "enumerator_name");
    let want = rows_by_name
        .get(&name)
        .unwrap_or_else(|| panic!("{what}: response {id} ({name:?}) is from no input row"));
    assert_answers(want, &got, &format!("{what}: response {id}"));
}

/// `PRAGMA integrity_check` of the store, read-only (so it changes nothing the CLI finds).
fn integrity_check(path: &Path) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("cannot open {} read-only: {e}", path.display()));
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .expect("prepare integrity_check");
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .unwrap_or_else(|e| panic!("integrity_check of {} failed: {e}", path.display()));
    lines.join("\n")
}

/// The server's export holds exactly the device's responses, each once, and each with the
/// answers of the row it was stored from.
fn check_server_holds(w: &World, held: &BTreeSet<String>, created: &[Created]) {
    let rows = w.export_rows("household_survey");
    let mut ids: Vec<String> = rows.iter().map(|r| str_field(r, "response_id")).collect();
    ids.sort();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "a response is on the server twice");
    assert_eq!(
        &unique, held,
        "the server holds other responses than the device"
    );

    // Names are unique per row of every file, so a row stored twice would show here too.
    let by_name = data::by_answer(&rows, "enumerator_name");
    let mut per_run: HashMap<usize, usize> = HashMap::new();
    let rows_by_name: HashMap<String, (usize, &Answers)> = created
        .iter()
        .flat_map(|c| {
            c.rows
                .iter()
                .map(move |r| (data::cell(r, "enumerator_name"), (c.run, r)))
        })
        .collect();
    for (name, (id, got)) in &by_name {
        let (run, want) = rows_by_name
            .get(name)
            .unwrap_or_else(|| panic!("response {id} ({name:?}) is from no file"));
        assert_answers(want, got, &format!("response {id} on the server"));
        *per_run.entry(*run).or_default() += 1;
    }
    for c in created {
        assert_eq!(
            per_run.get(&c.run).copied().unwrap_or(0),
            c.stored,
            "run {}: the server holds another number of its rows than the device did",
            c.run
        );
    }
}
