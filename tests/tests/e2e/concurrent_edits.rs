//! An enumerator (offline) and a coordinator edit the same response: after syncing, both hold
//! the same merged answers, the answer both changed is reported as a conflict on both sides
//! with both values, and resolving it once clears it everywhere.

use std::collections::BTreeMap;

use fieldsync_e2e::data::{self, jsonl};
use fieldsync_e2e::{World, backends};
use serde_json::{Value, json};

/// The conflicts `fieldsync response conflicts ID --json` reports: question → its values.
/// Accepts any nesting of objects `{"question": Q, "values": [V | {"value": V, ..}]}`.
fn conflicts(client: &fieldsync_e2e::Client, id: &str) -> BTreeMap<String, Vec<Value>> {
    fn walk(v: &Value, out: &mut BTreeMap<String, Vec<Value>>) {
        match v {
            Value::Object(map) => {
                if let (Some(Value::String(q)), Some(Value::Array(values))) =
                    (map.get("question"), map.get("values"))
                {
                    let values = values
                        .iter()
                        .map(|x| x.get("value").cloned().unwrap_or_else(|| x.clone()))
                        .collect();
                    out.insert(q.clone(), values);
                } else {
                    map.values().for_each(|x| walk(x, out));
                }
            }
            Value::Array(items) => items.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(&client.json(&["response", "conflicts", id]), &mut out);
    out
}

#[test]
fn concurrent_edits_merge_and_a_real_conflict_is_shown_until_resolved() {
    for backend in backends() {
        let mut w = World::start_on(&backend);
        w.publish("household-v1.json");
        let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
        let mut answers = data::case("household-v1.json", "valid_complete_in_person");
        answers.insert("rooms".into(), json!(2));
        let file = w.file("one.jsonl", &jsonl(&[answers]));
        let stored = device.json(&[
            "collect",
            "household_survey",
            "--answers",
            file.to_str().expect("utf-8"),
        ]);
        let id = stored["ids"][0]
            .as_str()
            .unwrap_or_else(|| panic!("no id: {stored}"))
            .to_owned();
        device.sync();

        let (coordinator, _) = w.member("coordinator", "Cora Njeri", "coordinator");
        coordinator.sync();
        assert!(
            coordinator.response_ids(&[]).contains(&id),
            "the coordinator's client has the synced response"
        );

        // The device goes out of range; its enumerator corrects two answers and rooms.
        w.server.stop();
        device.ok(&[
            "response",
            "edit",
            &id,
            "--set",
            "head_name=Joseph Mwangi Kariuki",
            "--set",
            "comments=Corrected the name on a second visit",
            "--set",
            "rooms=3",
        ]);
        w.server.restart();

        // Meanwhile the coordinator corrects two other answers and rooms too.
        coordinator.ok(&[
            "response",
            "edit",
            &id,
            "--set",
            "monthly_income=20000",
            "--set",
            "water_minutes=40",
            "--set",
            "rooms=4",
        ]);
        coordinator.sync();

        // The device comes back; then the coordinator and the device sync again.
        device.sync();
        coordinator.sync();
        device.sync();

        let on_device = device.json(&["response", "show", &id]);
        let on_coordinator = coordinator.json(&["response", "show", &id]);
        let merged = data::answers_of(&on_device);
        assert_eq!(
            merged,
            data::answers_of(&on_coordinator),
            "both sides hold the same merged answers"
        );
        assert_eq!(merged["head_name"], "Joseph Mwangi Kariuki", "{merged:?}");
        assert_eq!(
            merged["comments"], "Corrected the name on a second visit",
            "{merged:?}"
        );
        assert!(
            data::same_value(&merged["monthly_income"], &json!(20000)),
            "{merged:?}"
        );
        assert!(
            data::same_value(&merged["water_minutes"], &json!(40)),
            "{merged:?}"
        );
        let rooms = &merged["rooms"];
        assert!(
            data::same_value(rooms, &json!(3)) || data::same_value(rooms, &json!(4)),
            "rooms is one of the two edits: {merged:?}"
        );

        // The shared answer is a conflict on both sides, with both values visible.
        for (who, client) in [("device", &device), ("coordinator", &coordinator)] {
            let found = conflicts(client, &id);
            assert_eq!(
                found.keys().collect::<Vec<_>>(),
                vec!["rooms"],
                "{who}: exactly rooms is in conflict: {found:?}"
            );
            let values = &found["rooms"];
            assert_eq!(values.len(), 2, "{who}: both values of rooms: {values:?}");
            for want in [json!(3), json!(4)] {
                assert!(
                    values.iter().any(|v| data::same_value(v, &want)),
                    "{who}: value {want} of rooms is not shown: {values:?}"
                );
            }
            assert!(
                data::same_value(&values[0], &merged["rooms"]),
                "{who}: the merged value comes first: {values:?}"
            );
            let conflicted = client.response_ids(&["--conflicted"]);
            assert_eq!(
                conflicted,
                vec![id.clone()],
                "{who}: response list --conflicted"
            );
        }

        // The coordinator resolves it; after syncing, it is clear everywhere.
        coordinator.ok(&["response", "resolve", &id, "rooms", "--value", "5"]);
        coordinator.sync();
        device.sync();
        for (who, client) in [("device", &device), ("coordinator", &coordinator)] {
            let shown = client.json(&["response", "show", &id]);
            assert!(
                data::same_value(&data::answers_of(&shown)["rooms"], &json!(5)),
                "{who}: {shown}"
            );
            let found = conflicts(client, &id);
            assert!(
                found.is_empty(),
                "{who}: conflict still reported: {found:?}"
            );
            assert_eq!(
                client.response_ids(&["--conflicted"]),
                Vec::<String>::new(),
                "{who}"
            );
        }
        let on_device = device.json(&["response", "show", &id]);
        let on_coordinator = coordinator.json(&["response", "show", &id]);
        assert_eq!(
            data::answers_of(&on_device),
            data::answers_of(&on_coordinator)
        );

        // The server agrees: the export shows the resolved value and no conflict.
        let out = w.out_path("export.jsonl");
        w.admin.ok(&[
            "export",
            "household_survey",
            "--format",
            "jsonl",
            "--out",
            out.to_str().expect("utf-8"),
        ]);
        let rows = data::parse_jsonl(&std::fs::read_to_string(&out).expect("export written"));
        assert_eq!(rows.len(), 1);
        assert!(
            data::same_value(&rows[0]["answers"]["rooms"], &json!(5)),
            "{}",
            rows[0]
        );
        assert_eq!(rows[0]["conflicts"], Value::Array(vec![]), "{}", rows[0]);
        assert_eq!(rows[0]["answers"]["head_name"], "Joseph Mwangi Kariuki");
    }
}
