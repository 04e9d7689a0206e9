//! The web form and the CLI decide alike. For every fixture form, a seeded respondent walks
//! the web form with random answers (some outside the constraints, optional questions now and
//! then skipped, repeat entries added at random); the same lines are then typed into
//! `fieldsync collect` on an enrolled device. Both must refuse the same answers with the same
//! messages (validation) and store the same answers, calculations included, as the
//! coordinator's export shows (relevance and calculation: each line answers whatever question
//! the interview asks next, so a form that asked another question, or skipped one, on either
//! side would store other answers or refuse other lines).

use serde_json::Value;

use fieldsync_e2e::web::WebForm;
use fieldsync_e2e::{Rng, World, fixture};

/// (fixture, form id, the folder of its attached files): every fixture form a web form can
/// take (`site-visit-media` asks for files, which links refuse).
const FORMS: &[(&str, &str, Option<&str>)] = &[
    ("followup-web.json", "followup", None),
    ("household-v1.json", "household_survey", None),
    // (household-v2 is the same form id: a second version of the survey above.)
    ("health-facility.json", "health_facility_assessment", None),
    ("household-roster.json", "household_roster", None),
    ("market-prices.json", "market_prices", Some("market-media")),
];

/// Respondents per form.
const SEEDS: u64 = 4;

/// XLSForm's metadata types: filled in by the device or the web form itself (its id, its
/// clock), not answered, so left out of the comparison.
const METADATA: &[&str] = &[
    "start",
    "end",
    "today",
    "deviceid",
    "username",
    "email",
    "phonenumber",
    "simserial",
    "subscriberid",
    "audit",
];

/// The names of a fixture form's metadata questions.
fn metadata_of(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(&format!("surveys/{file}"))).expect("fixture");
    let form: Value = serde_json::from_str(&text).expect("fixture JSON");
    form["survey"]
        .as_array()
        .expect("survey rows")
        .iter()
        .filter(|r| r["type"].as_str().is_some_and(|t| METADATA.contains(&t)))
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect()
}

/// Text answers to try, in order, on a text field that refuses the one before (a free text
/// field takes the first; geopoints, codes and phone numbers the later ones).
const TEXTS: &[&str] = &[
    "Wanjiru",
    "-1.2921 36.8219",
    "ABC-1234",
    "+254712345678",
    "0712345678",
    "5",
];

/// What was sent to the web form, as lines the CLI takes, and what the web form refused.
struct Walk {
    lines: Vec<String>,
    problems: Vec<String>,
    asked: Vec<String>,
    /// Repeat entries added with the "add another" button.
    added: usize,
}

fn random_answer(f: &WebForm, rng: &mut Rng, attempt: usize) -> Vec<String> {
    let choices = f.choices();
    let Some((kind, whole)) = f.field() else {
        return vec![String::new()];
    };
    match kind.as_str() {
        "radio" => vec![choices[rng.index(choices.len())].clone()],
        "checkbox" => {
            let picked: Vec<String> = choices.iter().filter(|_| rng.chance(40)).cloned().collect();
            if picked.is_empty() {
                vec![choices[rng.index(choices.len())].clone()]
            } else {
                picked
            }
        }
        "number" if whole => {
            // Now and then out of range: constraints must refuse alike.
            let n = if rng.chance(15) {
                rng.range(150, 400) as i64
            } else {
                rng.range(0, 60) as i64
            };
            vec![n.to_string()]
        }
        "number" => vec![format!("{}.{}", rng.range(0, 300), rng.range(0, 9))],
        "date" => vec![format!(
            "20{:02}-{:02}-{:02}",
            rng.range(20, 24),
            rng.range(1, 12),
            rng.range(1, 28)
        )],
        "time" => vec![format!("{:02}:{:02}", rng.range(0, 23), rng.range(0, 59))],
        "datetime-local" => vec![format!(
            "2024-{:02}-{:02}T{:02}:{:02}",
            rng.range(1, 6),
            rng.range(1, 28),
            rng.range(6, 18),
            rng.range(0, 59)
        )],
        _ => vec![TEXTS[attempt % TEXTS.len()].to_owned()],
    }
}

/// Walk the web form at `url` to the end with `seed`'s answers.
fn walk(url: &str, seed: u64) -> Walk {
    let mut rng = Rng::new(seed);
    let mut f = WebForm::open(url);
    let mut walk = Walk {
        lines: Vec::new(),
        problems: Vec::new(),
        asked: Vec::new(),
        added: 0,
    };
    let mut attempt = 0;
    for _ in 0..400 {
        if f.page.contains("Thank you") {
            return walk;
        }
        if let Some(q) = f.question() {
            if walk.asked.last() != Some(&q) {
                walk.asked.push(q);
                attempt = 0;
            }
            if f.has_button("skip") && rng.chance(15) {
                walk.lines.push(":skip".into());
                f.press("skip", &[]);
                continue;
            }
            // A field holding a default: sometimes taken as it is (an empty line).
            // (Not a refused answer shown again to correct.)
            if f.problem().is_none() && f.value().is_some_and(|v| !v.is_empty()) && rng.chance(50) {
                walk.lines.push(String::new());
                f.press("next", &[]);
            } else {
                let answer = random_answer(&f, &mut rng, attempt);
                walk.lines.push(answer.join(" "));
                let refs: Vec<&str> = answer.iter().map(String::as_str).collect();
                f.press("next", &refs);
            }
            if f.status == 422 {
                walk.problems
                    .push(f.problem().expect("a refusal says what is wrong"));
                attempt += 1;
            }
        } else if f.has_button("add") {
            // The first entry always, then now and then another.
            let add = walk.added == 0 || (walk.added < 3 && rng.chance(60));
            walk.added += usize::from(add);
            walk.lines.push(if add { "y" } else { "n" }.into());
            f.press(if add { "add" } else { "noadd" }, &[]);
        } else if f.has_button("submit") {
            walk.lines.push("y".into());
            f.press("submit", &[]);
        } else {
            panic!("seed {seed}: a page with nothing to do:\n{}", f.page);
        }
    }
    panic!("seed {seed}: the walk did not end:\n{}", f.page);
}

/// A response's answers without `metadata` and without repeat entries' ids.
fn comparable(answers: &Value, metadata: &[String]) -> Value {
    match answers {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !metadata.contains(k) && k.as_str() != "_id")
                .map(|(k, v)| (k.clone(), comparable(v, metadata)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| comparable(v, metadata)).collect())
        }
        other => other.clone(),
    }
}

#[test]
fn the_web_form_and_the_cli_refuse_ask_and_store_alike() {
    let w = World::start();
    let forms: Vec<&str> = FORMS.iter().map(|(_, id, _)| *id).collect();
    for (file, _, media) in FORMS {
        let path = fixture(&format!("surveys/{file}"));
        let mut args = vec!["survey", "publish", path.to_str().expect("utf-8")];
        let media_dir = media.map(|m| fixture(&format!("surveys/{m}")));
        if let Some(m) = &media_dir {
            args.extend(["--media", m.to_str().expect("utf-8")]);
        }
        w.admin.ok(&args);
    }
    let (device, _) = w.enumerator("tablet", "Grace Achieng", &forms);
    device.sync();
    let (mut refused, mut skipped, mut entries) = (0, 0, 0);
    for (file, form, _) in FORMS {
        let metadata = metadata_of(file);
        let created = w
            .admin
            .json(&["link", "create", form, "--label", "web respondent"]);
        let url = created["url"].as_str().expect("url").to_owned();
        for seed in 0..SEEDS {
            let web = walk(&url, seed * 7919 + 11);
            refused += web.problems.len();
            skipped += web.lines.iter().filter(|l| *l == ":skip").count();
            entries += web.added;
            let typed = web.lines.join("\n") + "\n";
            let out = device.run_stdin(&["collect", form], Some(&typed));
            assert_eq!(out.code, Some(0), "{form} seed {seed}: {}", out.describe());
            // Validation: the same refusals, with the same messages.
            let cli_problems: Vec<&str> = out
                .stdout
                .lines()
                .chain(out.stderr.lines())
                .filter_map(|l| l.trim_start().strip_prefix("! "))
                .collect();
            assert_eq!(
                cli_problems, web.problems,
                "{form} seed {seed}: refusals differ; lines {:?}",
                web.lines
            );
            device.sync();
            let rows = w.export_rows(form);
            let (from_web, from_cli): (Vec<&Value>, Vec<&Value>) = rows
                .iter()
                .partition(|r| r["enumerator"].as_str().is_some_and(|e| e.contains("web")));
            let (Some(a), Some(b)) = (from_web.last(), from_cli.last()) else {
                panic!("{form} seed {seed}: both responses exported: {rows:?}");
            };
            // Relevance and calculation: the same answers stored, calculations included.
            assert_eq!(
                comparable(&a["answers"], &metadata),
                comparable(&b["answers"], &metadata),
                "{form} seed {seed}: asked {:?}, lines {:?}",
                web.asked,
                web.lines
            );
        }
    }
    // The walks went through refusals, skips and repeat entries, not only the easy path.
    assert!(
        refused > 0 && skipped > 0 && entries > 0,
        "refused {refused}, skipped {skipped}, entries added {entries}"
    );
}
