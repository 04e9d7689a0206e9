//! Devices and a coordinator sync through a proxy that drops, cuts, truncates, duplicates,
//! delays and resets their requests, while the server is SIGKILLed and restarted (once in the
//! middle of a sync). Once the network is good again and everyone has synced, every response
//! is on the server exactly once and every change a CLI reported as saved is on every side
//! that holds the response. Decided by counts and equality only, never by timing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use fieldsync_e2e::client::{COMMAND_TIMEOUT, int_field, parse_json, str_field};
use fieldsync_e2e::data::{self, Answers, answers_of, assert_answers, jsonl};
use fieldsync_e2e::rng::{SeedGuard, seeds};
use fieldsync_e2e::{Client, Fault, FaultProxy, Output, Rng, World};
use serde_json::{Value, json};

/// Seeds run by default; `FIELDSYNC_FAULT_SEED=N` runs only N.
const SEEDS: [u64; 2] = [0x00F1_E1D5, 0x5EED_2024];
const SEED_VAR: &str = "FIELDSYNC_FAULT_SEED";
const DEVICES: usize = 3;
const ROUNDS: usize = 4;
/// Responses each device collects per round.
const PER_ROUND: usize = 2;
/// Answers the coordinator corrects per round.
const COORDINATOR_EDITS: usize = 2;
/// Rows one device imports in round 1: more than one push batch (the engine's `PUSH_DOCS`,
/// 1000) and more than one pull page for the coordinator (`PULL_LIMIT`, 2000 changes), so that
/// faults hit pipelined pushes and paged pulls too.
const BULK_ROWS: usize = 2_100;
/// Bulk responses whose answers are read back on each side (all of them are on the server).
const BULK_SAMPLE: usize = 3;
/// `response show` commands run at once when reading answers back.
const SHOWS_AT_ONCE: usize = 4;
/// Full sync passes allowed, faults off, before everyone must be quiet.
const SETTLE_PASSES: usize = 5;

/// Exit codes a sync may end with while the network is faulty: ok, or 3, "server
/// unreachable (nothing is lost; sync again later)" (README, exit codes).
const FAULTY_SYNC_EXITS: [Option<i32>; 2] = [Some(0), Some(3)];

#[test]
fn sync_through_faults_and_server_crashes_keeps_every_change_exactly_once() {
    for seed in seeds(SEED_VAR, &SEEDS) {
        let _guard = SeedGuard::new(SEED_VAR, seed);
        let started = Instant::now();
        run(seed);
        eprintln!(
            "[e2e] fault seed {seed} passed in {:.1?}",
            started.elapsed()
        );
    }
}

/// Everyone who syncs: the devices, then the coordinator (index `DEVICES`).
struct Team {
    devices: Vec<Client>,
    coordinator: Client,
}

impl Team {
    fn member(&self, i: usize) -> &Client {
        self.devices.get(i).unwrap_or(&self.coordinator)
    }

    fn name(&self, i: usize) -> String {
        if i < self.devices.len() {
            format!("device {i}")
        } else {
            "coordinator".into()
        }
    }
}

/// What the test knows must end up everywhere: each response's answers (after every edit a
/// CLI reported as saved) and the device that created it; and the bulk import's responses,
/// whose ids `import` does not print, by their unique enumerator name.
#[derive(Default)]
struct Expected {
    answers: BTreeMap<String, Answers>,
    owner: BTreeMap<String, usize>,
    bulk: BTreeMap<String, Answers>,
    bulk_ids: BTreeSet<String>,
    bulk_owner: usize,
}

impl Expected {
    /// Every response id device `device` created (the coordinator's: all of them).
    fn held_by(&self, device: usize) -> Vec<String> {
        let mut ids: Vec<String> = self
            .owner
            .iter()
            .filter(|(_, d)| **d == device || device == DEVICES)
            .map(|(id, _)| id.clone())
            .collect();
        if device == self.bulk_owner || device == DEVICES {
            ids.extend(self.bulk_ids.iter().cloned());
        }
        ids.sort();
        ids
    }

    fn owned_by(&self, device: usize) -> Vec<String> {
        self.owner
            .iter()
            .filter(|(_, d)| **d == device)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn set(&mut self, id: &str, question: &str, value: &str) {
        self.answers
            .get_mut(id)
            .unwrap_or_else(|| panic!("edited response {id} was never created"))
            .insert(question.into(), value.into());
    }
}

fn run(seed: u64) {
    let mut w = World::start();
    w.publish("household-v1.json");
    let proxy = FaultProxy::start(w.server.addr(), seed);
    let mut rng = Rng::new(seed.rotate_left(17) ^ 0xC0FF_EE00);
    let url = proxy.url();
    // Enrolment and login go through the proxy with faults off: their one-time secrets are
    // not what this test is about.
    let devices = (0..DEVICES)
        .map(|d| {
            let name = format!("Enumerator {d}");
            let home = format!("tablet-{d}");
            w.enumerator_via(&home, &name, &["household_survey"], &url)
                .0
        })
        .collect();
    let (coordinator, _) = w.member_via("coordinator", "Cora Njeri", "coordinator", &url);
    coordinator.sync();
    let team = Team {
        devices,
        coordinator,
    };

    let mut expected = Expected::default();
    let mut exits: BTreeMap<String, u32> = BTreeMap::new();
    proxy.set_faults(true);
    for round in 0..ROUNDS {
        collect_and_edit(&w, &team, &mut expected, &mut rng, seed, round);
        let mut order: Vec<usize> = (0..=DEVICES).collect();
        rng.shuffle(&mut order);
        if round == 1 {
            // The first device in the order imports a few thousand rows, and the server dies
            // while it pushes them.
            let who = order
                .iter()
                .position(|&who| who < DEVICES)
                .expect("the order has devices");
            let who = order.remove(who);
            bulk_import(&w, &team.devices[who], who, &mut expected);
            let out = sync_while_the_server_dies(&mut w, &proxy, team.member(who));
            tally(&mut exits, &team.name(who), &out);
        }
        if round.is_multiple_of(2) {
            for &who in &order {
                let out = team.member(who).run(&["--json", "sync"]);
                tally(&mut exits, &team.name(who), &out);
            }
        } else {
            // All at once: concurrent pushes and pulls through the same faulty proxy.
            let running: Vec<_> = order
                .iter()
                .map(|&who| (who, team.member(who).spawn(&["--json", "sync"])))
                .collect();
            for (who, sync) in running {
                tally(&mut exits, &team.name(who), &sync.wait(COMMAND_TIMEOUT));
            }
        }
        if round.is_multiple_of(2) {
            // A power cut between rounds: SIGKILL, then the same data directory again.
            w.server.kill();
            w.server.restart();
            proxy.set_upstream(w.server.addr());
        }
    }

    proxy.set_faults(false);
    settle(&team);
    let counts = proxy.counts();
    eprintln!("[e2e] seed {seed}: proxy {counts}");
    eprintln!("[e2e] seed {seed}: faults by route {:?}", counts.by_route);
    eprintln!("[e2e] seed {seed}: sync exits under faults {exits:?}");
    check_everything_arrived(&w, &team, &expected);
    for kind in Fault::ALL {
        assert!(
            counts.of(kind) > 0,
            "fault {kind:?} was never exercised: {counts}"
        );
    }
    let logs = w.server.logs();
    assert!(!logs.contains("panicked"), "the server panicked:\n{logs}");
}

/// One round of offline work: each device collects new responses and corrects a name on one
/// of its own; the coordinator corrects comments on responses it already holds.
fn collect_and_edit(
    w: &World,
    team: &Team,
    expected: &mut Expected,
    rng: &mut Rng,
    seed: u64,
    round: usize,
) {
    for (d, device) in team.devices.iter().enumerate() {
        let first = (round * DEVICES + d) * PER_ROUND;
        let rows = data::household_v1(first, PER_ROUND);
        let file = w.file(&format!("round{round}-device{d}.jsonl"), &jsonl(&rows));
        let stored = device.json(&[
            "collect",
            "household_survey",
            "--answers",
            file.to_str().expect("utf-8 temp path"),
        ]);
        assert_eq!(stored["stored"], PER_ROUND, "{stored}");
        let ids = stored["ids"]
            .as_array()
            .unwrap_or_else(|| panic!("collect --json has no ids: {stored}"));
        assert_eq!(ids.len(), PER_ROUND, "{stored}");
        for (id, answers) in ids.iter().zip(rows) {
            let id = id.as_str().expect("response ids are strings").to_owned();
            expected.owner.insert(id.clone(), d);
            let previous = expected.answers.insert(id.clone(), answers);
            assert!(previous.is_none(), "collect reused id {id}");
        }
        let own = expected.owned_by(d);
        let id = &own[rng.index(own.len())];
        let name = format!("Enumerator {d}, corrected in round {round} (seed {seed})");
        device.ok(&[
            "response",
            "edit",
            id,
            "--set",
            &format!("enumerator_name={name}"),
        ]);
        expected.set(id, "enumerator_name", &name);
    }
    // The coordinator can only correct what its syncs have brought it so far (and leaves the
    // bulk import alone, whose ids the test matches by name only).
    let held: Vec<String> = team
        .coordinator
        .response_ids(&[])
        .into_iter()
        .filter(|id| expected.answers.contains_key(id))
        .collect();
    for k in 0..COORDINATOR_EDITS {
        // Draw even when there is nothing to pick, so the seed's later choices stay the same.
        let pick = rng.next_u64() as usize;
        let Some(id) = held.get(pick % held.len().max(1)) else {
            continue;
        };
        let note = format!("checked by the coordinator in round {round}, #{k}");
        team.coordinator
            .ok(&["response", "edit", id, "--set", &format!("comments={note}")]);
        expected.set(id, "comments", &note);
    }
}

/// `device` imports `BULK_ROWS` rows; their ids are what appeared on the device.
fn bulk_import(w: &World, device: &Client, who: usize, expected: &mut Expected) {
    let rows = data::household_v1(100_000, BULK_ROWS);
    let file = w.file(
        "bulk.csv",
        &data::to_csv(&data::HOUSEHOLD_V1_QUESTIONS, &rows),
    );
    let before: BTreeSet<String> = device.response_ids(&[]).into_iter().collect();
    let report = device.json(&[
        "import",
        "household_survey",
        file.to_str().expect("utf-8 temp path"),
    ]);
    assert_eq!(report["stored"], BULK_ROWS, "{report}");
    let after: BTreeSet<String> = device.response_ids(&[]).into_iter().collect();
    expected.bulk_ids = after.difference(&before).cloned().collect();
    assert_eq!(expected.bulk_ids.len(), BULK_ROWS);
    expected.bulk_owner = who;
    expected.bulk = rows
        .into_iter()
        .map(|r| (data::cell(&r, "enumerator_name"), r))
        .collect();
}

/// Start `client`'s sync with faults off, SIGKILL the server as soon as the proxy has handed
/// it a request of this sync (or the sync ended first), then restart the server.
fn sync_while_the_server_dies(w: &mut World, proxy: &FaultProxy, client: &Client) -> Output {
    proxy.set_faults(false);
    let before = proxy.counts().forwarded;
    let mut sync = client.spawn(&["--json", "sync"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sync.finished() && proxy.counts().forwarded == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    w.server.kill();
    let out = sync.wait(COMMAND_TIMEOUT);
    eprintln!(
        "[e2e] sync cut by a server crash ended with {:?}:\n{}",
        out.code, out.stderr
    );
    w.server.restart();
    proxy.set_upstream(w.server.addr());
    proxy.set_faults(true);
    out
}

/// Count a faulty-network sync's exit code; only the documented network outcomes are fine.
fn tally(exits: &mut BTreeMap<String, u32>, who: &str, out: &Output) {
    *exits.entry(format!("{:?}", out.code)).or_default() += 1;
    assert!(
        FAULTY_SYNC_EXITS.contains(&out.code),
        "{who}: a sync on a faulty network ended with an undocumented outcome\n{}",
        out.describe()
    );
    if out.code != Some(0) {
        assert!(
            !out.stderr.trim().is_empty(),
            "{who}: a failed sync said nothing\n{}",
            out.describe()
        );
    }
}

/// Faults off: everyone syncs, pass after pass, until a whole pass moves nothing.
fn settle(team: &Team) {
    for pass in 0..SETTLE_PASSES {
        let mut moved = 0;
        for who in 0..=DEVICES {
            let report = team.member(who).sync();
            assert_eq!(
                report["rejected"],
                json!([]),
                "{}: {report}",
                team.name(who)
            );
            moved += int_field(&report, "pushed_docs") + int_field(&report, "pulled_docs");
        }
        eprintln!("[e2e] settling pass {pass}: {moved} document(s) moved");
        if moved == 0 {
            return;
        }
    }
    panic!("syncs still move documents after {SETTLE_PASSES} clean passes");
}

/// The server, the coordinator and every device hold exactly what was saved.
fn check_everything_arrived(w: &World, team: &Team, expected: &Expected) {
    let rows = w.export_rows("household_survey");
    let mut on_server: BTreeMap<String, &Value> = BTreeMap::new();
    for row in &rows {
        let id = str_field(row, "response_id");
        assert!(
            on_server.insert(id.clone(), row).is_none(),
            "response {id} is on the server twice"
        );
    }
    let want: BTreeSet<&String> = expected.answers.keys().chain(&expected.bulk_ids).collect();
    let have: BTreeSet<&String> = on_server.keys().collect();
    assert_eq!(
        have,
        want,
        "the server holds {} responses, the devices created {}",
        have.len(),
        want.len()
    );
    for (id, answers) in &expected.answers {
        assert_answers(
            answers,
            row_answers(on_server[id]),
            &format!("{id} on the server"),
        );
    }
    // The bulk rows by name: each exactly once (names are unique), with the imported answers.
    let mut bulk_seen = BTreeSet::new();
    for id in &expected.bulk_ids {
        let got = row_answers(on_server[id]);
        let name = data::cell(got, "enumerator_name");
        let want = expected
            .bulk
            .get(&name)
            .unwrap_or_else(|| panic!("bulk response {id} ({name:?}) is from no imported row"));
        assert!(
            bulk_seen.insert(name.clone()),
            "row {name:?} is stored twice"
        );
        assert_answers(want, got, &format!("bulk response {id} on the server"));
    }

    for who in 0..=DEVICES {
        let client = team.member(who);
        let name = team.name(who);
        let holds = expected.held_by(who);
        assert_eq!(
            client.response_ids(&[]),
            holds,
            "{name} holds other responses"
        );
        // Every response shown by id, and a sample of the bulk import (matched by name).
        let holds_bulk = who == DEVICES || who == expected.bulk_owner;
        let sample = if holds_bulk { BULK_SAMPLE } else { 0 };
        let bulk = expected
            .bulk_ids
            .iter()
            .step_by((BULK_ROWS / BULK_SAMPLE).max(1))
            .take(sample);
        let shown: Vec<&String> = holds
            .iter()
            .filter(|id| expected.answers.contains_key(*id))
            .chain(bulk)
            .collect();
        for (id, got) in shown.iter().zip(show_all(client, &shown)) {
            let want = match expected.answers.get(*id) {
                Some(want) => want,
                None => {
                    let key = data::cell(&got, "enumerator_name");
                    expected.bulk.get(&key).unwrap_or_else(|| {
                        panic!("{name}: bulk response {id} ({key:?}) is from no imported row")
                    })
                }
            };
            assert_answers(want, &got, &format!("response {id} on {name}"));
        }
        let status = client.status();
        for field in [
            "pending_responses",
            "pending_changes",
            "rejected",
            "conflicted",
        ] {
            assert_eq!(int_field(&status, field), 0, "{name}: {field} in {status}");
        }
    }
}

/// The answers `response show --json` gives for each of `ids`, a few commands at a time:
/// each spends most of its time deriving the store key from the passphrase, on one core.
fn show_all(client: &Client, ids: &[&String]) -> Vec<Answers> {
    let mut all = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(SHOWS_AT_ONCE) {
        let running: Vec<_> = chunk
            .iter()
            .map(|id| client.spawn(&["--json", "response", "show", id]))
            .collect();
        for (id, show) in chunk.iter().zip(running) {
            let out = show.wait(COMMAND_TIMEOUT);
            assert_eq!(out.code, Some(0), "response show {id}\n{}", out.describe());
            all.push(answers_of(&parse_json(
                &out.stdout,
                &format!("response show {id}"),
            )));
        }
    }
    all
}

/// The answers of an exported row.
fn row_answers(row: &Value) -> &Answers {
    row["answers"]
        .as_object()
        .unwrap_or_else(|| panic!("exported row without answers: {row}"))
}
