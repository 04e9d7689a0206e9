//! A new response's first change. [`ResponseDoc::create`] builds the document in one batch;
//! [`ResponseDoc::create_changes`] writes the one change op by op without building any
//! document at all (the import path: building Automerge's op set and then reading the change
//! back out of it is most of the cost of a new response).

use std::collections::HashMap;
use std::num::NonZeroU64;

use automerge::legacy::{Key, ObjectId, Op, OpId, OpType, SortedVec};
use automerge::transaction::Transactable;
use automerge::{
    ActorId, AutoCommit, Change, ChangeHash, ExpandedChange, ObjType, ROOT, ReadDoc, ScalarValue,
    hydrate,
};

use super::change::commit_options;
use super::repeat::{self, Level, WriteLog};
use super::response::{KIND, NewResponse, ResponseDoc, Status, Writer};
use super::{DocError, RESPONSE_SCHEMA_REPEATS, SCHEMA_VERSION};
use crate::{Answer, Answers};

/// The root's scalar keys of a new response, in the order they are written.
fn header(
    meta: &NewResponse,
    status: Status,
    schema: i64,
    now: i64,
) -> [(&'static str, ScalarValue); 9] {
    let text = |s: String| ScalarValue::Str(s.into());
    [
        ("schema", ScalarValue::Int(schema)),
        ("kind", text(KIND.to_owned())),
        (
            "response_id",
            text(meta.response_id.hyphenated().to_string()),
        ),
        ("survey_id", text(meta.survey_id.hyphenated().to_string())),
        (
            "survey_version",
            ScalarValue::Int(i64::from(meta.survey_version)),
        ),
        ("author_device", text(meta.author_device.clone())),
        ("created_at", ScalarValue::Timestamp(now)),
        ("updated_at", ScalarValue::Timestamp(now)),
        ("status", text(status.as_str().to_owned())),
    ]
}

impl ResponseDoc {
    /// Creates a response with its first answers and status in ONE change: the path for an
    /// interview saved at once and for batch imports, where a change per step would triple
    /// what is stored, hashed and sent.
    ///
    /// Repeat instances without an id get a fresh one; [`ResponseDoc::answers`] shows it (or
    /// call [`super::assign_instance_ids`] first to know them up front). The document is
    /// written with schema 2 when it holds an instance, else with schema 1.
    pub fn create(
        meta: NewResponse,
        actor: impl Into<ActorId>,
        author_label: &str,
        answers: &Answers,
        status: Status,
        now: i64,
    ) -> Result<Self, DocError> {
        let actor = actor.into();
        let actor_hex = actor.to_hex_string();
        let schema = if repeat::has_instances(answers) {
            RESPONSE_SCHEMA_REPEATS
        } else {
            SCHEMA_VERSION
        };
        // The whole tree but repeats is built in one batch (two splices of Automerge's op set
        // instead of one per value: most of the cost of building a response one put at a
        // time). A refused value drops the whole document being built, so nothing is left.
        let scalar = |v: ScalarValue| hydrate::Value::Scalar(v);
        let text = |s: String| scalar(ScalarValue::Str(s.into()));
        let level = Level::root(ROOT);
        let mut fresh = HashMap::with_capacity(answers.len());
        let mut repeats = Vec::new();
        for (question, value) in answers {
            match repeat::fresh_scalar(&level, question, value)? {
                Some(v) => {
                    fresh.insert(question.clone(), scalar(v));
                }
                None => repeats.push((question, value)),
            }
        }
        let authors = HashMap::from([(actor_hex.clone(), text(author_label.to_owned()))]);
        let mut tree: HashMap<String, hydrate::Value> = header(&meta, status, schema, now)
            .into_iter()
            .map(|(key, value)| (key.to_owned(), scalar(value)))
            .collect();
        tree.insert("answers".to_owned(), hydrate::Map::from(fresh).into());
        tree.insert("authors".to_owned(), hydrate::Map::from(authors).into());
        let mut doc = AutoCommit::new().with_actor(actor);
        doc.init_root_from_hydrate(&hydrate::Map::from(tree))?;
        if !repeats.is_empty() {
            let (_, map) = doc
                .get(ROOT, "answers")?
                .ok_or_else(|| DocError::MissingField {
                    field: "answers".to_owned(),
                })?;
            let root = Level::root(map);
            let mut log = WriteLog::default();
            for (question, value) in repeats {
                repeat::write_answer(&mut doc, &root, question, value, &mut log)?;
            }
        }
        doc.commit_with(commit_options(now));
        Ok(Self {
            doc,
            writer: Some(Writer {
                actor_hex,
                label: author_label.to_owned(),
                recorded: true,
            }),
        })
    }

    /// The changes [`ResponseDoc::create`] would make, without a document: for a response
    /// without repeats, its one change written op by op (the same keys, values and types as
    /// the document would hold; the server and every peer read it as any other change); with
    /// repeats, the document is built after all. Each change comes with its hash.
    pub fn create_changes(
        meta: NewResponse,
        actor: impl Into<ActorId>,
        author_label: &str,
        answers: &Answers,
        status: Status,
        now: i64,
    ) -> Result<Vec<(ChangeHash, Vec<u8>)>, DocError> {
        if answers.values().any(|a| matches!(a, Answer::Repeat(_))) {
            return Ok(
                Self::create(meta, actor, author_label, answers, status, now)?.all_changes_hashed(),
            );
        }
        let actor = actor.into();
        let level = Level::root(ROOT);
        let mut ops = Vec::with_capacity(answers.len() + 12);
        let put = |obj: ObjectId, key: &str, value: ScalarValue| Op {
            action: OpType::Put(value),
            obj,
            key: Key::Map(key.into()),
            pred: SortedVec::new(),
            insert: false,
        };
        let make = |key: &str| Op {
            action: OpType::Make(ObjType::Map),
            obj: ObjectId::Root,
            key: Key::Map(key.into()),
            pred: SortedVec::new(),
            insert: false,
        };
        for (key, value) in header(&meta, status, SCHEMA_VERSION, now) {
            ops.push(put(ObjectId::Root, key, value));
        }
        ops.push(make("answers"));
        let answers_obj = ObjectId::Id(OpId::new(ops.len() as u64, &actor));
        for (question, value) in answers {
            if let Some(scalar) = repeat::fresh_scalar(&level, question, value)? {
                ops.push(put(answers_obj.clone(), question, scalar));
            }
        }
        ops.push(make("authors"));
        let authors_obj = ObjectId::Id(OpId::new(ops.len() as u64, &actor));
        ops.push(put(
            authors_obj,
            &actor.to_hex_string(),
            ScalarValue::Str(author_label.into()),
        ));
        let change = Change::from(ExpandedChange {
            operations: ops,
            actor_id: actor,
            hash: None,
            seq: 1,
            start_op: NonZeroU64::MIN,
            time: now.div_euclid(1000),
            message: None,
            deps: Vec::new(),
            extra_bytes: Vec::new(),
            author: None,
        });
        Ok(vec![(change.hash(), change.raw_bytes().to_vec())])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::super::ResponseMeta;
    use super::*;
    use crate::RepeatInstance;
    use crate::document::response::tests::actor;

    fn meta() -> NewResponse {
        NewResponse {
            response_id: Uuid::from_u128(0x0194_2a6b_1c00_7000_8000_0000_0000_0042),
            survey_id: Uuid::from_u128(0x0194_2a6b_1c00_7000_8000_0000_0000_00aa),
            survey_version: 3,
            author_device: "tablet-07".to_owned(),
        }
    }

    fn answers(pairs: &[(&str, Answer)]) -> Answers {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    /// What a reader sees of a document: everything the schema holds.
    fn seen(doc: &ResponseDoc) -> (ResponseMeta, Status, Answers, BTreeMap<String, String>) {
        (
            doc.meta().expect("meta"),
            doc.status().expect("status"),
            doc.answers().expect("answers"),
            doc.authors().expect("authors"),
        )
    }

    #[test]
    fn the_direct_change_reads_as_the_document_create_builds() {
        let cases = [
            answers(&[]),
            answers(&[("name", "Ama Mensah".into())]),
            answers(&[
                ("age", Answer::Integer(-34)),
                ("height_m", Answer::Decimal(1.62)),
                ("name", "Ama \u{e9} Mensah".into()),
                ("notes", "".into()),
                ("zeta", Answer::Integer(i64::MAX)),
            ]),
        ];
        for (i, a) in cases.iter().enumerate() {
            for status in [Status::Draft, Status::Submitted] {
                let now = 1_735_725_600_123 + i as i64;
                let direct =
                    ResponseDoc::create_changes(meta(), actor(1), "device:t", a, status, now)
                        .expect("direct");
                assert_eq!(direct.len(), 1);
                let mut read = ResponseDoc::from_changes(direct.iter().map(|(_, c)| c))
                    .expect("the direct change loads");
                let mut built = ResponseDoc::create(meta(), actor(1), "device:t", a, status, now)
                    .expect("create");
                assert_eq!(seen(&read), seen(&built), "case {i}");
                assert_eq!(read.heads(), vec![direct[0].0], "the hash is the change's");
                // The same ops, so the same number of them, and a later edit builds on it.
                let ops = |bytes: &[u8]| Change::try_from(bytes).expect("change").len();
                assert_eq!(ops(&direct[0].1), ops(&built.all_changes()[0]));
                let mut edited = read.with_writer(actor(1), "device:t");
                edited
                    .set_answer("name", &"Kofi".into(), now + 1000)
                    .expect("edit");
                assert_eq!(edited.answers().expect("answers")["name"], "Kofi".into());
            }
        }
    }

    #[test]
    fn a_bad_answer_name_is_refused_as_create_refuses_it() {
        let a = answers(&[("members#x", "Ama".into())]);
        let direct =
            ResponseDoc::create_changes(meta(), actor(1), "d", &a, Status::Draft, 0).unwrap_err();
        let built = ResponseDoc::create(meta(), actor(1), "d", &a, Status::Draft, 0).unwrap_err();
        assert_eq!(direct.to_string(), built.to_string());
        let nan = answers(&[("x", Answer::Decimal(f64::NAN))]);
        assert!(
            ResponseDoc::create_changes(meta(), actor(1), "d", &nan, Status::Draft, 0).is_err()
        );
    }

    #[test]
    fn a_response_with_repeats_is_built_as_a_document() {
        let member = RepeatInstance {
            id: "3d6a4adc-41c3-4f4e-a05b-2238f5eec649".to_owned(),
            answers: answers(&[("age", Answer::Integer(30))]),
        };
        let a = answers(&[
            ("head", "Ama".into()),
            ("members", Answer::Repeat(vec![member])),
        ]);
        let direct = ResponseDoc::create_changes(meta(), actor(1), "d", &a, Status::Draft, 5_000)
            .expect("changes");
        let read = ResponseDoc::from_changes(direct.iter().map(|(_, c)| c)).expect("loads");
        let built =
            ResponseDoc::create(meta(), actor(1), "d", &a, Status::Draft, 5_000).expect("create");
        assert_eq!(seen(&read), seen(&built));
    }
}
