//! The frozen schema-2 response document `fixtures/golden/response-v2.automerge` (repeats,
//! nested repeats, a conflict inside an instance, concurrent additions and a deletion that
//! wins over a concurrent edit): like schema 1's, it must keep loading with the same meaning.
//! Also: schema-1 documents still open and move to schema 2 with their first instance.
//!
//! Set `FIELDSYNC_WRITE_GOLDEN=1` to rewrite the file after a deliberate format change.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::golden_tests::golden_path;
use super::repeat_tests::{answers_of, inst, schema_of};
use super::response::tests::actor;
use super::{ActorId, Conflict, ConflictValue, NewResponse, ResponseDoc, ResponseMeta, Status};
use crate::Answer;

const CREATED: i64 = 1_767_261_600_000; // 2026-01-01T10:00:00Z
const DEVICE_LABEL: &str = "device:tablet-07";
const COORDINATOR_LABEL: &str = "member:alice";

// Fixed instance ids (the hyphenated UUID v4 form fresh ids take).
const AMA: &str = "1b4e28ba-2fa1-4d2c-883f-0016d3cca427";
const KOFI: &str = "2c5f39cb-30b2-4e3d-994a-1127e4ddb538";
const ESI: &str = "e7a3c1d0-51b6-4f7a-8c2e-3349a6ffd75a";
const YAW: &str = "7d9b4e2f-62c7-4a8b-9d3f-445ab700e86b";
const VISIT_1: &str = "3d6a4adc-41c3-4f4e-a05b-2238f5eec649";
const VISIT_2: &str = "4e7b5bed-52d4-4a5f-b16c-3349a6ffd750";

const FROZEN: &str = "response-v2.automerge";
const TODAY: &str = "response-v2-batch.automerge";

fn hex(n: u8) -> String {
    ActorId::from(actor(n)).to_hex_string()
}

fn meta() -> NewResponse {
    NewResponse {
        response_id: Uuid::from_u128(0x019b_7a2c_5800_7000_8000_0000_0000_0002),
        survey_id: Uuid::from_u128(0x019b_7a2c_5800_7000_8000_0000_0000_00bb),
        survey_version: 4,
        author_device: "tablet-07".to_owned(),
    }
}

fn members_path(id: &str, question: &str) -> String {
    format!("members#{id}/{question}")
}

/// The edits frozen in the file. The device creates a household with two members, the first
/// with one visit. Then, offline on both sides: the coordinator corrects Ama's age, adds Yaw
/// and deletes Kofi; the device sets Ama's age differently, adds a second visit, gives Kofi an
/// age and adds Esi, then submits. They merge.
fn build() -> ResponseDoc {
    let first = answers_of(vec![
        ("head_name", "Ama Mensah".into()),
        (
            "members",
            Answer::Repeat(vec![
                inst(
                    AMA,
                    vec![
                        ("name", "Ama Mensah".into()),
                        ("age", Answer::Integer(34)),
                        (
                            "visits",
                            Answer::Repeat(vec![inst(
                                VISIT_1,
                                vec![
                                    ("date", "2025-12-05".into()),
                                    ("outcome", "completed".into()),
                                ],
                            )]),
                        ),
                    ],
                ),
                inst(
                    KOFI,
                    vec![("name", "Kofi Mensah".into()), ("height_m", 1.31.into())],
                ),
            ]),
        ),
    ]);
    let mut device = ResponseDoc::create(
        meta(),
        actor(1),
        DEVICE_LABEL,
        &first,
        Status::Draft,
        CREATED,
    )
    .expect("create");
    let mut coordinator = ResponseDoc::from_changes(device.all_changes())
        .expect("coordinator copy")
        .with_writer(actor(2), COORDINATOR_LABEL);

    let later = CREATED + 3_600_000;
    coordinator
        .set_answer(&members_path(AMA, "age"), &Answer::Integer(35), later)
        .expect("coordinator edit");
    let Some(Answer::Repeat(mut list)) = coordinator.answer("members").expect("members") else {
        panic!("members")
    };
    list.push(inst(
        YAW,
        vec![("name", "Yaw Boateng".into()), ("age", Answer::Integer(61))],
    ));
    coordinator
        .set_answer("members", &Answer::Repeat(list), later + 1_000)
        .expect("coordinator adds");
    coordinator
        .remove_answer(&format!("members#{KOFI}"), later + 2_000)
        .expect("coordinator deletes");

    let soon = CREATED + 120_000;
    device
        .set_answer(&members_path(AMA, "age"), &Answer::Integer(36), soon)
        .expect("device edit");
    device
        .set_answer(
            &members_path(AMA, "visits"),
            &Answer::Repeat(vec![
                inst(
                    VISIT_1,
                    vec![
                        ("date", "2025-12-05".into()),
                        ("outcome", "completed".into()),
                    ],
                ),
                inst(VISIT_2, vec![("date", "2025-12-19".into())]),
            ]),
            soon + 1_000,
        )
        .expect("device adds a visit");
    let Some(Answer::Repeat(mut list)) = device.answer("members").expect("members") else {
        panic!("members")
    };
    list[1].answers.insert("age".to_owned(), Answer::Integer(9));
    list.push(inst(
        ESI,
        vec![("name", "Esi Mensah".into()), ("age", Answer::Integer(2))],
    ));
    device
        .set_answers([("members", Answer::Repeat(list))], soon + 2_000)
        .expect("device edits and adds");
    device
        .set_status(Status::Submitted, soon + 3_000)
        .expect("submit");
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
fn golden_response_v2_loads_with_its_meaning() {
    for name in [FROZEN, TODAY] {
        assert_golden_meaning(&read_golden(name));
    }
}

fn assert_golden_meaning(bytes: &[u8]) {
    let mut doc = ResponseDoc::load(bytes).expect("the golden document loads");
    assert_eq!(schema_of(&mut doc), 2);
    assert_eq!(
        doc.meta().expect("meta"),
        ResponseMeta {
            response_id: meta().response_id,
            survey_id: meta().survey_id,
            survey_version: 4,
            author_device: "tablet-07".to_owned(),
            created_at: CREATED,
            updated_at: CREATED + 3_602_000,
            status: Status::Submitted,
        }
    );

    // Kofi is gone although the device edited him concurrently (a deletion wins); Yaw and Esi
    // were both appended at the same position and appear in id order; Ama has both visits.
    // Ama's age shows the coordinator's value: both writes are concurrent and the
    // coordinator's op has the greater id.
    let want = answers_of(vec![
        ("head_name", "Ama Mensah".into()),
        (
            "members",
            Answer::Repeat(vec![
                inst(
                    AMA,
                    vec![
                        ("name", "Ama Mensah".into()),
                        ("age", Answer::Integer(35)),
                        (
                            "visits",
                            Answer::Repeat(vec![
                                inst(
                                    VISIT_1,
                                    vec![
                                        ("date", "2025-12-05".into()),
                                        ("outcome", "completed".into()),
                                    ],
                                ),
                                inst(VISIT_2, vec![("date", "2025-12-19".into())]),
                            ]),
                        ),
                    ],
                ),
                inst(
                    YAW,
                    vec![("name", "Yaw Boateng".into()), ("age", Answer::Integer(61))],
                ),
                inst(
                    ESI,
                    vec![("name", "Esi Mensah".into()), ("age", Answer::Integer(2))],
                ),
            ]),
        ),
    ]);
    assert_eq!(doc.answers().expect("answers"), want);
    assert_eq!(
        doc.answer(&format!("members#{AMA}/visits#{VISIT_2}/date"))
            .expect("a nested path"),
        Some("2025-12-19".into())
    );

    assert_eq!(
        doc.conflicts().expect("conflicts"),
        vec![Conflict {
            question: members_path(AMA, "age"),
            values: vec![
                ConflictValue {
                    value: Answer::Integer(35),
                    actor: hex(2),
                    author: Some(COORDINATOR_LABEL.to_owned()),
                },
                ConflictValue {
                    value: Answer::Integer(36),
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
fn golden_response_v2_is_what_the_same_edits_produce_today() {
    super::golden_tests::assert_rebuilds_golden(&read_golden(TODAY), build());
}

#[test]
fn a_schema_1_document_reads_and_moves_to_schema_2_with_its_first_instance() {
    // The schema-1 golden file, read only: its meaning is checked in `golden_tests`.
    let path = golden_path("response-v1.automerge");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let mut doc = ResponseDoc::load(&bytes)
        .expect("schema 1 loads")
        .with_writer(actor(3), "member:carol");
    assert_eq!(schema_of(&mut doc), 1);
    let before = doc.answers().expect("answers");
    let conflicts = doc.conflicts().expect("conflicts");
    assert_eq!(conflicts.len(), 1);
    // An edit without repeats keeps schema 1.
    doc.set_answer("village", &"Ada".into(), CREATED)
        .expect("set");
    assert_eq!(schema_of(&mut doc), 1);
    doc.set_answer(
        "members",
        &Answer::Repeat(vec![inst(AMA, vec![("age", Answer::Integer(34))])]),
        CREATED + 1,
    )
    .expect("first instance");
    assert_eq!(schema_of(&mut doc), 2);
    let reloaded = ResponseDoc::load(&doc.save()).expect("reload");
    let mut want = before;
    want.insert("village".to_owned(), "Ada".into());
    want.insert(
        "members".to_owned(),
        Answer::Repeat(vec![inst(AMA, vec![("age", Answer::Integer(34))])]),
    );
    assert_eq!(reloaded.answers().expect("answers"), want);
    assert_eq!(reloaded.conflicts().expect("conflicts"), conflicts);
}
