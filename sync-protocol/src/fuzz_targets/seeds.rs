//! The generated seed inputs of every fuzz target, from the hostile fixtures and the golden
//! push, so a fuzzer starts from inputs that reach deep into each target.

use super::*;

/// One generated seed input: the fuzz target it is for, a stable file name, the bytes.
#[derive(Debug, Clone)]
pub struct Seed {
    pub target: &'static str,
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Files of `fixtures/hostile/` that must not run in-process at all (they abort on an
/// allocation failure or take seconds to minutes): left out of the in-process `change_info`
/// seeds. The push targets get them all, since there they reach only the sandbox.
pub const NOT_IN_PROCESS: &[&str] = &[
    "alloc-bomb-bundle.bin",
    "alloc-bomb-change.bin",
    "time-bomb-change.bin",
];

/// The generated seeds of every target. `hostile` is `fixtures/hostile/` (name, bytes; the
/// README is skipped), `golden_push` is `fixtures/golden/push-request-v1.cbor`.
pub fn seeds(hostile: &[(String, Vec<u8>)], golden_push: &[u8]) -> Vec<Seed> {
    let mut out = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| {
        out.push(Seed {
            target,
            name: format!("seed-{name}"),
            bytes,
        });
    };
    let enc = |m: &dyn ErasedMessage| m.cbor();
    let survey = SURVEY_PLACEHOLDER;
    let now = 1_718_000_000_000;
    let good_a = canary_response(Uuid::from_u128(0xa1), survey, 1, now);
    let good_b = canary_response(Uuid::from_u128(0xb2), survey, 1, now + 10);
    let push = |docs: Vec<DocChanges>| PushRequest {
        protocol: PROTOCOL_VERSION,
        docs,
    };

    // wire_decode: every message type, valid, in both versions, and broken in every way the
    // scan knows.
    let good_push = push(vec![good_a.clone(), good_b.clone()]);
    add("wire_decode", "golden-push-v1", golden_push.to_vec());
    add("wire_decode", "push-request", enc(&good_push));
    let mut v1 = good_push.clone();
    v1.protocol = 1;
    add("wire_decode", "push-request-v1", enc(&v1));
    let push_resp = PushResponse {
        protocol: PROTOCOL_VERSION,
        results: vec![
            DocPushResult {
                doc_id: good_a.doc_id,
                outcome: PushOutcome::Stored {
                    new: 2,
                    duplicate: 1,
                },
            },
            DocPushResult {
                doc_id: good_b.doc_id,
                outcome: PushOutcome::Rejected {
                    code: ErrorCode::SurveyClosed,
                    message: "survey is closed".into(),
                },
            },
            DocPushResult {
                doc_id: Uuid::from_u128(3),
                outcome: PushOutcome::Unknown,
            },
        ],
    };
    add("wire_decode", "push-response", enc(&push_resp));
    let pull_req = PullRequest {
        protocol: PROTOCOL_VERSION,
        cursor: 1234,
        limit: 500,
        known_surveys: vec![crate::wire::KnownSurvey {
            survey_id: survey,
            latest_version: 2,
        }],
        epoch: Some("6f1c2d".into()),
    };
    add("wire_decode", "pull-request", enc(&pull_req));
    let pull_resp = PullResponse {
        protocol: PROTOCOL_VERSION,
        docs: vec![good_a.clone()],
        surveys: vec![crate::wire::SurveyUpdate {
            survey_id: survey,
            status: crate::wire::SurveyStatus::Closing,
            latest_version: 3,
            document: ByteBuf::from(vec![1, 2, 3]),
        }],
        survey_states: vec![crate::wire::SurveyState {
            survey_id: survey,
            status: crate::wire::SurveyStatus::Closed,
        }],
        cursor: 99,
        more: true,
        notices: vec![crate::wire::DocNotice {
            doc_id: good_a.doc_id,
            kind: crate::wire::NoticeKind::Erased,
        }],
        refused: vec![crate::wire::RefusedChange {
            doc_id: good_a.doc_id,
            hash: ByteBuf::from(vec![7; 32]),
            reason: "it would break its document".into(),
        }],
        epoch: Some("6f1c2d".into()),
        restarted: true,
    };
    add("wire_decode", "pull-response", enc(&pull_resp));
    let mut err = ErrorBody::new(ErrorCode::MalformedDocument, "bad change");
    err.doc_id = Some(good_a.doc_id);
    err.details = vec!["one".into(), "two".into()];
    err.docs = vec![crate::wire::DocFault {
        doc_id: good_a.doc_id,
        message: "bad".into(),
    }];
    err.protocols = Some(crate::wire::ProtocolRange::OURS);
    err.request_id = Some("req-1".into());
    add("wire_decode", "error-body", enc(&err));
    // A newer peer's error code and push outcome, and a version nobody speaks.
    add(
        "wire_decode",
        "error-body-future-code",
        cbor_of(&serde_json::json!({
            "protocol": 1, "code": "quota_exceeded", "message": "wait until tomorrow"
        })),
    );
    add(
        "wire_decode",
        "push-response-future-outcome",
        cbor_of(&serde_json::json!({
            "protocol": 2,
            "results": [{"doc_id": serde_bytes::Bytes::new(&[1; 16]), "outcome": {"outcome": "deferred", "until": 5}}]
        })),
    );
    let mut v99 = good_push.clone();
    v99.protocol = 99;
    add("wire_decode", "push-request-v99", enc(&v99));
    let whole = enc(&good_push);
    add(
        "wire_decode",
        "truncated-push",
        whole[..whole.len() / 2].to_vec(),
    );
    let mut trailing = whole.clone();
    trailing.push(0);
    add("wire_decode", "trailing-byte", trailing);
    // Nesting one past the limit, and exactly at it.
    let mut deep = vec![0x81u8; 17];
    deep.push(0);
    add("wire_decode", "deep-17", deep);
    let mut at_limit = vec![0x81u8; 15];
    at_limit.push(0);
    add("wire_decode", "deep-15", at_limit);
    // Deep nesting inside a push's `docs`.
    let mut deep_docs = cbor_of(&serde_json::json!({"protocol": 2}));
    deep_docs[0] = 0xa2; // a map of two pairs: protocol, docs
    deep_docs.extend_from_slice(&[0x64, b'd', b'o', b'c', b's']);
    deep_docs.extend(std::iter::repeat_n(0x81, 40));
    deep_docs.push(0);
    add("wire_decode", "deep-docs", deep_docs);
    add(
        "wire_decode",
        "bytes-claim-2p60",
        vec![0x5b, 0x10, 0, 0, 0, 0, 0, 0, 0, 1],
    );
    // 4,000 declared documents that are each one zero byte: serde reserves room for all of
    // them before the first fails (the worst case of `alloc_budget`).
    let mut junk_docs = cbor_of(&serde_json::json!({"protocol": 2}));
    junk_docs[0] = 0xa2;
    junk_docs.extend_from_slice(&[0x64, b'd', b'o', b'c', b's', 0x99, 0x0f, 0xa0]);
    junk_docs.extend(std::iter::repeat_n(0, 4000));
    add("wire_decode", "junk-docs", junk_docs);
    add(
        "wire_decode",
        "array-claim-4g",
        vec![0x9a, 0xff, 0xff, 0xff, 0xff, 0x00],
    );
    add("wire_decode", "map-claim", vec![0xa3, 0x01, 0x02]);
    add("wire_decode", "indefinite", vec![0x9f, 0x01, 0xff]);
    add("wire_decode", "tag", vec![0xc0, 0x01]);
    add("wire_decode", "break", vec![0xff]);
    add("wire_decode", "reserved", vec![0x1c]);
    // A document id written as text, and a change as an array of integers (serde reads both).
    add(
        "wire_decode",
        "uuid-as-text",
        cbor_of(&serde_json::json!({
            "protocol": 2,
            "docs": [{
                "doc_id": good_a.doc_id.to_string(), "kind": "response",
                "survey_id": survey.to_string(), "survey_version": 1,
                "changes": [[0x85, 0x6f, 0x4a, 0x83]]
            }]
        })),
    );
    add(
        "wire_decode",
        "garbage",
        (0u32..96)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    );

    // change_info and push_changes: raw change bytes. The poison edits depend on the base
    // document's one change, so they also come after it.
    let base_change = hostile
        .iter()
        .find(|(n, _)| n == "poison-edit-base.automerge")
        .and_then(|(_, b)| catch_automerge_panic(|| ResponseDoc::load(b))?.ok())
        .map(|mut d| d.all_changes().concat());
    let valid_changes: Vec<u8> = good_a
        .changes
        .iter()
        .flat_map(|c| c.iter().copied())
        .collect();
    for target in ["change_info", "push_changes"] {
        add(target, "valid-response", valid_changes.clone());
        add(target, "empty", Vec::new());
        if let Some(base) = &base_change {
            add(target, "base-change", base.clone());
        }
        for (name, bytes) in hostile {
            if target == "change_info" && NOT_IN_PROCESS.contains(&name.as_str()) {
                continue;
            }
            add(target, &format!("hostile-{name}"), bytes.clone());
            if let (Some(base), true) = (
                &base_change,
                name.ends_with("edit.bin") || name.ends_with("edit-obj.bin"),
            ) {
                add(
                    target,
                    &format!("hostile-base+{name}"),
                    [base.as_slice(), bytes].concat(),
                );
            }
        }
    }

    // push_path: whole push bodies, documents of the placeholder survey.
    add("push_path", "valid-two-docs", enc(&good_push));
    add("push_path", "valid-v1", enc(&v1));
    add("push_path", "v99", enc(&v99));
    add(
        "push_path",
        "same-doc-twice",
        enc(&push(vec![good_a.clone(), good_a.clone()])),
    );
    let mut empty = good_b.clone();
    empty.changes.clear();
    add("push_path", "no-changes", enc(&push(vec![empty])));
    let mut other_survey = good_b.clone();
    other_survey.survey_id = Uuid::from_u128(0xdead);
    add(
        "push_path",
        "unknown-survey",
        enc(&push(vec![other_survey])),
    );
    let mut survey_kind = good_b.clone();
    survey_kind.kind = DocKind::Survey;
    add("push_path", "survey-kind", enc(&push(vec![survey_kind])));
    add("push_path", "truncated", whole[..whole.len() / 2].to_vec());
    add("push_path", "garbage", vec![0xa2, 0x00, 0xff, 0x13]);
    for (name, bytes) in hostile {
        let doc = |changes: Vec<Vec<u8>>, id: u128| DocChanges {
            doc_id: Uuid::from_u128(id),
            kind: DocKind::Response,
            survey_id: survey,
            survey_version: 1,
            changes: changes.into_iter().map(ByteBuf::from).collect(),
        };
        let id = u128::from_be_bytes(doc_id_for(bytes).into_bytes());
        add(
            "push_path",
            &format!("hostile-{name}"),
            enc(&push(vec![doc(vec![bytes.clone()], id)])),
        );
        // Beside a good document: the batch is split to find the one at fault.
        add(
            "push_path",
            &format!("hostile-beside-good-{name}"),
            enc(&push(vec![good_b.clone(), doc(vec![bytes.clone()], id)])),
        );
        if let (Some(base), true) = (
            &base_change,
            name.ends_with("edit.bin") || name.ends_with("edit-obj.bin"),
        ) {
            add(
                "push_path",
                &format!("hostile-base+{name}"),
                enc(&push(vec![doc(vec![base.clone(), bytes.clone()], id ^ 1)])),
            );
        }
    }
    out
}

fn cbor_of(value: &serde_json::Value) -> Vec<u8> {
    cbor::encode(value).unwrap_or_else(|e| panic!("a JSON value encodes: {e}"))
}

/// [`Message::to_cbor`] behind a reference of one type, for the seed list above.
trait ErasedMessage {
    fn cbor(&self) -> Vec<u8>;
}

impl<M: Message> ErasedMessage for M {
    fn cbor(&self) -> Vec<u8> {
        self.to_cbor()
            .unwrap_or_else(|e| panic!("a seed message encodes: {e}"))
    }
}
