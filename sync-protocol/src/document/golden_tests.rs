//! The frozen response document `fixtures/golden/response-v1.automerge`: every document a device
//! or the server has ever saved must keep loading with the same meaning, so a layout or
//! encoding change fails here instead of drifting silently.
//!
//! Set `FIELDSYNC_WRITE_GOLDEN=1` to rewrite the file after a deliberate format change, and
//! commit it together with the new `SCHEMA_VERSION` (or a new fixture name).

use std::collections::BTreeMap;

use uuid::Uuid;

use super::response::tests::actor;
use super::{ActorId, Conflict, ConflictValue, NewResponse, ResponseDoc, ResponseMeta, Status};
use crate::{Answer, Answers};

const CREATED: i64 = 1_735_725_600_000; // 2025-01-01T10:00:00Z
const DEVICE_LABEL: &str = "device:tablet-07";
const COORDINATOR_LABEL: &str = "member:alice";

/// The file as first written (read only: documents saved then must keep their meaning), or
/// the bytes today's code writes for the same edits (`-batch`: since a new response's first
/// change is built in one batch, its ops are ordered by key).
pub(super) fn golden_path(name: &str) -> String {
    format!("{}/../fixtures/golden/{name}", env!("CARGO_MANIFEST_DIR"))
}

const FROZEN: &str = "response-v1.automerge";
const TODAY: &str = "response-v1-batch.automerge";

fn hex(n: u8) -> String {
    ActorId::from(actor(n)).to_hex_string()
}

fn meta() -> NewResponse {
    NewResponse {
        response_id: Uuid::from_u128(0x0194_2a6b_1c00_7000_8000_0000_0000_0001),
        survey_id: Uuid::from_u128(0x0194_2a6b_1c00_7000_8000_0000_0000_00aa),
        survey_version: 2,
        author_device: "tablet-07".to_owned(),
    }
}

/// The edits frozen in the file: a device fills in a form and submits it; offline, the device
/// and a coordinator both change `household_size`; they merge.
fn build() -> ResponseDoc {
    let mut device = ResponseDoc::new(meta(), actor(1), DEVICE_LABEL, CREATED).expect("create");
    let page: [(&str, Answer); 4] = [
        ("name", "Ama Mensah".into()),
        ("age", Answer::Integer(34)),
        ("height_m", Answer::Decimal(1.62)),
        ("household_size", Answer::Integer(5)),
    ];
    device.set_answers(page, CREATED + 60_000).expect("page");
    device
        .set_status(Status::Submitted, CREATED + 61_000)
        .expect("submit");
    let mut coordinator = ResponseDoc::from_changes(device.all_changes())
        .expect("coordinator copy")
        .with_writer(actor(2), COORDINATOR_LABEL);
    coordinator
        .set_answer("household_size", &Answer::Integer(6), CREATED + 3_600_000)
        .expect("coordinator edit");
    device
        .set_answer("household_size", &Answer::Integer(7), CREATED + 120_000)
        .expect("device edit");
    device
        .set_answer("village", &"Kpong".into(), CREATED + 120_000)
        .expect("device edit");
    device.merge(&mut coordinator).expect("merge");
    device
}

fn read_golden(name: &str) -> Vec<u8> {
    let path = golden_path(name);
    if name == TODAY && std::env::var_os("FIELDSYNC_WRITE_GOLDEN").is_some() {
        std::fs::write(&path, build().save()).expect("write golden");
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn golden_response_v1_loads_with_its_meaning() {
    for name in [FROZEN, TODAY] {
        assert_golden_meaning(&read_golden(name));
    }
}

fn assert_golden_meaning(bytes: &[u8]) {
    let doc = ResponseDoc::load(bytes).expect("the golden document loads");

    assert_eq!(
        doc.meta().expect("meta"),
        ResponseMeta {
            response_id: meta().response_id,
            survey_id: meta().survey_id,
            survey_version: 2,
            author_device: "tablet-07".to_owned(),
            created_at: CREATED,
            // The coordinator's edit is the latest, though the device's op wins the register.
            updated_at: CREATED + 3_600_000,
            status: Status::Submitted,
        }
    );

    // Both concurrent writes have the same Lamport counter; the greater actor id (the
    // coordinator's) wins, on every replica.
    let want: Answers = [
        ("age", Answer::Integer(34)),
        ("height_m", Answer::Decimal(1.62)),
        ("household_size", Answer::Integer(6)),
        ("name", "Ama Mensah".into()),
        ("village", "Kpong".into()),
    ]
    .into_iter()
    .map(|(q, a)| (q.to_owned(), a))
    .collect();
    assert_eq!(doc.answers().expect("answers"), want);

    assert_eq!(
        doc.conflicts().expect("conflicts"),
        vec![Conflict {
            question: "household_size".to_owned(),
            values: vec![
                ConflictValue {
                    value: Answer::Integer(6),
                    actor: hex(2),
                    author: Some(COORDINATOR_LABEL.to_owned()),
                },
                ConflictValue {
                    value: Answer::Integer(7),
                    actor: hex(1),
                    author: Some(DEVICE_LABEL.to_owned()),
                },
            ],
        }]
    );

    assert_eq!(
        doc.authors().expect("authors"),
        BTreeMap::from([
            (hex(1), DEVICE_LABEL.to_owned()),
            (hex(2), COORDINATOR_LABEL.to_owned()),
        ])
    );
}

#[test]
fn golden_response_v1_is_what_the_same_edits_produce_today() {
    assert_rebuilds_golden(&read_golden(TODAY), build());
}

/// `fresh`, built today by the same edits, is the golden document: change hashes cover the
/// change encoding and the schema's keys and values, so equal heads and equal change bytes
/// mean today's code writes what old devices read and vice versa.
pub(super) fn assert_rebuilds_golden(golden: &[u8], mut fresh: ResponseDoc) {
    let mut loaded = ResponseDoc::load(golden).expect("load");
    assert_eq!(loaded.heads(), fresh.heads());
    assert_eq!(loaded.all_changes(), fresh.all_changes());
    assert_eq!(
        fresh.save(),
        golden,
        "save() output changed; if deliberate, regenerate with FIELDSYNC_WRITE_GOLDEN=1"
    );
}
