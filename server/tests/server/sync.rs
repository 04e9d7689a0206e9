//! Batched push and paged pull through the router: pushes are idempotent, a pull from another
//! session returns exactly what was pushed, and paging with a cursor neither loses nor repeats
//! a change.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use fieldsync_protocol::wire::{DocChanges, PullResponse, PushOutcome};
use uuid::Uuid;

use super::common::*;

/// What a client can observe of the server after a push, in a form comparable across
/// servers: row counts of the sync tables and the materialised responses as exported.
#[derive(Debug, PartialEq, Eq)]
struct Dump {
    changes: i64,
    docs: i64,
    queue_after_materialising: i64,
    indexed: i64,
    export: Vec<String>,
}

/// Check that another session pulls exactly `sent`, once each, then dump the state.
async fn dump(h: &Harness, org: &Org, survey: Uuid, sent: &[DocChanges]) -> Dump {
    let pulled = flatten(&h.pull_all(&org.coordinator).await);
    assert_eq!(
        pulled,
        flatten(sent),
        "another session pulls exactly what was pushed, once"
    );
    h.materialize().await;
    let r = h
        .send(
            Req::get(format!(
                "/v1/surveys/{survey}/export?format=jsonl&status=all"
            ))
            .token(&org.coordinator),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "export: {}", r.text());
    let mut export: Vec<String> = r
        .text()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("jsonl");
            // The one thing that differs between servers: the survey's id.
            assert_eq!(v["survey_id"], survey.to_string());
            v["survey_id"] = serde_json::Value::Null;
            v.to_string()
        })
        .collect();
    export.sort();
    Dump {
        changes: h.count("changes").await,
        docs: h.count("docs").await,
        queue_after_materialising: h.count("materialize_queue").await,
        indexed: h.count("response_index").await,
        export,
    }
}

fn flatten(docs: &[DocChanges]) -> BTreeSet<(Uuid, Vec<u8>)> {
    let mut out = BTreeSet::new();
    for d in docs {
        for c in &d.changes {
            assert!(
                out.insert((d.doc_id, c.to_vec())),
                "change of {} pulled twice",
                d.doc_id
            );
        }
    }
    out
}

/// Six responses of three changes each; the same ids, actors and clocks every time.
fn batch(survey: Uuid) -> Vec<DocChanges> {
    (0..6u8)
        .map(|i| {
            response_with(
                Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0000 + u128::from(i)),
                [i + 1; 16],
                1_718_000_000_000,
                survey,
                1,
                &[
                    &[("enumerator_name", text(&format!("Enumerator {i}")))],
                    &[
                        ("head_name", text(&format!("Head {i}"))),
                        (
                            "hh_size",
                            fieldsync_protocol::Answer::Integer(i64::from(i) + 1),
                        ),
                    ],
                ],
            )
        })
        .collect()
}

/// `n` new responses of three changes each.
fn fresh(survey: Uuid, n: usize) -> Vec<DocChanges> {
    (0..n)
        .map(|i| {
            response(
                survey,
                1,
                &[
                    &[("enumerator_name", text(&format!("Enumerator {i}")))],
                    &[("head_name", text(&format!("Head {i}")))],
                ],
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_push_sent_once_twice_or_ten_times_leaves_identical_server_state() {
    let survey_def = fixture("surveys/household-v1.json");
    let mut dumps = Vec::new();
    for (db, times) in test_databases()
        .into_iter()
        .flat_map(|db| [1, 2, 10].map(|t| (db.clone(), t)))
    {
        let h = Harness::new_on(&db).await;
        let org = h.org("Acme").await;
        let survey = h.publish(&org.admin, &survey_def).await.survey_id;
        let device = org.enumerator_token_for_push(&h, survey).await;
        let docs = batch(survey);
        for attempt in 1..=times {
            let resp = h.push_ok(&device, docs.clone()).await;
            assert_eq!(resp.results.len(), docs.len());
            for (result, doc) in resp.results.iter().zip(&docs) {
                assert_eq!(result.doc_id, doc.doc_id, "results come in request order");
                let n = doc.changes.len() as u32;
                let want = if attempt == 1 {
                    PushOutcome::Stored {
                        new: n,
                        duplicate: 0,
                    }
                } else {
                    PushOutcome::Stored {
                        new: 0,
                        duplicate: n,
                    }
                };
                assert_eq!(result.outcome, want, "push {attempt} of {times}");
            }
        }
        let d = dump(&h, &org, survey, &docs).await;
        assert_eq!(
            (d.docs, d.changes, d.indexed, d.queue_after_materialising),
            (6, 18, 6, 0)
        );
        assert_eq!(d.export.len(), 6, "{:#?}", d.export);
        dumps.push(d);
    }
    // Three dumps per backend, and the backends agree with each other too.
    for d in &dumps[1..] {
        assert_eq!(
            &dumps[0], d,
            "pushing twice or ten times, or on another backend, differs from pushing once"
        );
    }
}

trait PushAs {
    async fn enumerator_token_for_push(&self, h: &Harness, survey: Uuid) -> String;
}

impl PushAs for Org {
    /// The enumerator's device, assigned to `survey` (idempotently).
    async fn enumerator_token_for_push(&self, h: &Harness, survey: Uuid) -> String {
        h.assign(&self.admin, survey, &self.enumerator_id).await;
        self.enumerator.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_interrupted_after_some_documents_resumes_without_duplicates() {
    for db in test_databases() {
        let (h, org, survey) = Harness::with_household_on(&db).await;
        let docs = fresh(survey, 6);
        // A first attempt got only half the documents (and only their first change) through.
        let partial: Vec<DocChanges> = docs[..3]
            .iter()
            .cloned()
            .map(|mut d| {
                d.changes.truncate(1);
                d
            })
            .collect();
        h.push_ok(&org.coordinator, partial).await;
        // The retry sends everything.
        let resp = h.push_ok(&org.coordinator, docs.clone()).await;
        for (i, r) in resp.results.iter().enumerate() {
            let want = if i < 3 {
                PushOutcome::Stored {
                    new: 2,
                    duplicate: 1,
                }
            } else {
                PushOutcome::Stored {
                    new: 3,
                    duplicate: 0,
                }
            };
            assert_eq!(r.outcome, want, "document {i}");
        }
        let pulled = flatten(&h.pull_all(&org.admin).await);
        let sent = flatten(&docs);
        assert_eq!(
            pulled, sent,
            "another session pulls exactly what was pushed, once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_pages_through_every_change_once_and_skips_the_pushing_session() {
    for db in test_databases() {
        let (h, org, survey) = Harness::with_household_on(&db).await;
        let docs = fresh(survey, 24);
        h.push_ok(&org.coordinator, docs.clone()).await;

        // Small pages: every change exactly once, cursors strictly increasing.
        let mut cursor = 0;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let r = h
                .send(
                    Req::post("/v1/sync/pull")
                        .token(&org.admin)
                        .cbor(&pull_request(cursor, 7)),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK);
            let page: PullResponse = r.cbor();
            assert!(page.cursor >= cursor, "the cursor never goes back");
            let n: usize = page.docs.iter().map(|d| d.changes.len()).sum();
            assert!(n <= 7, "a page holds at most the limit");
            seen.extend(page.docs);
            cursor = page.cursor;
            pages += 1;
            assert!(pages < 100, "paging does not end");
            if !page.more {
                break;
            }
        }
        assert_eq!(flatten(&seen), flatten(&docs));
        assert!(pages >= (24 * 3) / 7, "small pages were used");

        // Nothing new: one small round trip with an empty page and the same cursor.
        let r = h
            .send(
                Req::post("/v1/sync/pull")
                    .token(&org.admin)
                    .cbor(&pull_request(cursor, 7)),
            )
            .await;
        let page: PullResponse = r.cbor();
        assert!(page.docs.is_empty() && !page.more);
        assert_eq!(page.cursor, cursor);

        // The session that pushed does not get its own changes back.
        let own = h.pull_all(&org.coordinator).await;
        assert!(
            own.is_empty(),
            "the pushing session pulled its own changes: {}",
            own.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_pulls_only_its_own_responses_and_a_coordinator_pulls_all() {
    for db in test_databases() {
        let (h, org, survey) = Harness::with_household_on(&db).await;
        let (_, other_device) = h.enumerator(&org, "Other", &[survey]).await;
        h.assign(&org.admin, survey, &org.enumerator_id).await;
        let mine = fresh(survey, 6);
        let theirs = fresh(survey, 6);
        h.push_ok(&org.enumerator, mine.clone()).await;
        h.push_ok(&other_device, theirs.clone()).await;
        h.push_ok(&org.coordinator, vec![response(survey, 1, &[])])
            .await;

        // A second token of the same device (e.g. after re-enrolment) sees only its own documents.
        let again = {
            let id = org.enumerator_id.clone();
            let (token, credential) = fieldsync_server::service::new_credential(
                fieldsync_server::storage::CredentialKind::Device,
            )
            .expect("token");
            h.state
                .db
                .issue_credential(
                    &id,
                    credential,
                    fieldsync_server::storage::AuditEvent::operator(None, "test_credential"),
                )
                .await
                .expect("issue");
            token
        };
        assert_eq!(flatten(&h.pull_all(&again).await), flatten(&mine));
        let all = flatten(&h.pull_all(&org.admin).await);
        assert!(flatten(&mine).is_subset(&all) && flatten(&theirs).is_subset(&all));
        assert_eq!(all.len(), 2 * 6 * 3 + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_write_another_devices_response() {
    for db in test_databases() {
        let (h, org, survey) = Harness::with_household_on(&db).await;
        let (_, other) = h.enumerator(&org, "Other", &[survey]).await;
        h.assign(&org.admin, survey, &org.enumerator_id).await;
        let doc = response(survey, 1, &[&[("head_name", text("Original"))]]);
        h.push_ok(&org.enumerator, vec![doc.clone()]).await;
        let mut hijack = doc.clone();
        hijack.changes = response(survey, 1, &[&[("head_name", text("Hijacked"))]]).changes;
        let resp = h.push_ok(&other, vec![hijack]).await;
        assert!(
            matches!(&resp.results[0].outcome, PushOutcome::Rejected { code, .. } if *code == fieldsync_protocol::wire::ErrorCode::NotFound),
            "{:?}",
            resp.results
        );
        assert_eq!(flatten(&h.pull_all(&org.admin).await), flatten(&[doc]));
    }
}

/// Every page names the database's incarnation. A cursor of another incarnation (the
/// database was restored since), or one past anything the database handed out (a client
/// that never learnt the incarnation), starts again from the beginning and says
/// `restarted`, so the client pushes again what a restored database lacks; the right one
/// pages on as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_of_another_database_restarts_the_pull_from_the_beginning() {
    for db in test_databases() {
        let (h, org, survey) = Harness::with_household_on(&db).await;
        let docs = fresh(survey, 3);
        h.push_ok(&org.coordinator, docs.clone()).await;
        h.materialize().await;
        let pull = |cursor: u64, epoch: Option<String>| {
            let mut req = pull_request(cursor, 1000);
            req.epoch = epoch;
            Req::post("/v1/sync/pull").token(&org.admin).cbor(&req)
        };
        let first: PullResponse = h.send(pull(0, None)).await.cbor();
        let epoch = first
            .epoch
            .clone()
            .expect("every page names the incarnation");
        assert!(!first.restarted);
        assert_eq!(first.docs.len(), 3);
        let caught_up: PullResponse = h.send(pull(first.cursor, Some(epoch.clone()))).await.cbor();
        assert!(caught_up.docs.is_empty() && !caught_up.restarted);

        for (cursor, other) in [
            (first.cursor, Some("an-older-database".to_owned())),
            (first.cursor + 1_000_000, None),
        ] {
            let page: PullResponse = h.send(pull(cursor, other)).await.cbor();
            assert!(page.restarted, "{db:?}: cursor {cursor}");
            assert_eq!(page.epoch.as_deref(), Some(epoch.as_str()));
            assert_eq!(
                flatten(&page.docs),
                flatten(&docs),
                "the page starts from the beginning"
            );
        }
    }
}
