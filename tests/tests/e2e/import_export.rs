//! Ops imports 10,000 rows from CSV: invalid rows are reported by line and not stored, the
//! rest sync and export with exactly the imported values.

use fieldsync_e2e::client::int_field;
use fieldsync_e2e::data::{self, HOUSEHOLD_V1_QUESTIONS};
use fieldsync_e2e::{World, backends};
use serde_json::{Value, json};

#[test]
fn ops_imports_ten_thousand_rows_and_exports_the_same_values() {
    for backend in backends() {
        let w = World::start_on(&backend);
        w.publish("household-v1.json");
        let (ops, _) = w.member("ops", "Olu Ops", "ops");
        ops.sync();

        let mut rows = data::household_v1(0, 10_000);
        // Invalid rows; the header is line 1, so row i is on line i + 2.
        let bad = [
            (0usize, "head_age", json!(200)),
            (4_999, "hh_size", json!("many")),
            (9_999, "consent", json!("maybe")),
        ];
        for (i, question, value) in &bad {
            let mut full = data::case("household-v1.json", "valid_complete_in_person");
            full.insert(
                "enumerator_name".into(),
                data::cell(&rows[*i], "enumerator_name").into(),
            );
            full.insert((*question).into(), value.clone());
            rows[*i] = full;
        }
        let file = w.file("import.csv", &data::to_csv(&HOUSEHOLD_V1_QUESTIONS, &rows));

        let out = ops.json_code(
            &[
                "import",
                "household_survey",
                file.to_str().expect("utf-8"),
                "--format",
                "csv",
            ],
            6,
        );
        let report: Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("import --json printed no JSON ({e})\n{}", out.describe()));
        assert_eq!(report["stored"], 9_997, "{report}");
        let invalid = report["invalid"]
            .as_array()
            .unwrap_or_else(|| panic!("{report}"));
        let lines: Vec<i64> = invalid.iter().map(|r| int_field(r, "line")).collect();
        assert_eq!(
            lines,
            vec![2, 5_001, 10_001],
            "invalid rows by line: {report}"
        );
        for (entry, (_, question, _)) in invalid.iter().zip(&bad) {
            assert!(
                entry["errors"].to_string().contains(question),
                "line {} should blame {question}: {entry}",
                entry["line"]
            );
        }
        assert_eq!(
            ops.responses(&["--survey", "household_survey"]).len(),
            9_997
        );

        let report = ops.sync();
        assert_eq!(report["pushed_docs"], 9_997, "{report}");
        assert_eq!(report["rejected"], json!([]), "{report}");

        let export = w.out_path("export.csv");
        ops.ok(&[
            "export",
            "household_survey",
            "--format",
            "csv",
            "--out",
            export.to_str().expect("utf-8"),
        ]);
        let csv = data::parse_csv(&std::fs::read_to_string(&export).expect("export written"));
        assert_eq!(csv.rows.len(), 9_997);
        let questions: Vec<String> = HOUSEHOLD_V1_QUESTIONS
            .iter()
            .map(|q| q.to_string())
            .collect();
        let mut by_enumerator = std::collections::HashMap::new();
        for row in &csv.rows {
            let previous = by_enumerator.insert(row["enumerator_name"].clone(), row);
            assert!(
                previous.is_none(),
                "{} exported twice",
                row["enumerator_name"]
            );
        }
        for (i, want) in rows.iter().enumerate() {
            let key = data::cell(want, "enumerator_name");
            let found = by_enumerator.get(&key);
            if bad.iter().any(|(b, _, _)| *b == i) {
                assert!(found.is_none(), "invalid line {} was stored", i + 2);
                continue;
            }
            let row =
                found.unwrap_or_else(|| panic!("line {} ({key}) is not in the export", i + 2));
            data::assert_csv_answers(want, row, &questions, &format!("line {}", i + 2));
        }
    }
}
