//! The storage contract for respondents' rights, on every backend: the subject index is fed
//! by settlements and finds a person; restriction and erasure are told to pullers in order,
//! refuse pushes with their own codes and keep responses out of listings and exports; cursors
//! stay good after deletions; the retention purge erases as erasure does; the audit chain
//! verifies.

use fieldsync_protocol::api::Role;
use fieldsync_protocol::wire::{ErrorCode, NoticeKind, PullResponse, PushOutcome};
use fieldsync_server::auth::Caller;
use fieldsync_server::service;
use fieldsync_server::storage::{AuditEvent, Db, ErasureCause, PullQuery, ResponseQuery, now_ms};
use fieldsync_server::worker::ChangeVerdict;
use uuid::Uuid;

use crate::common::contract::{changes, each_backend, settle_with, stored};

/// Settle everything queued, every change accepted; `subjects` gives each document's
/// identifiers.
async fn settle(db: &Db, subjects: impl Fn(&str) -> Vec<String>) {
    settle_with(db, |_| ChangeVerdict::Accepted, subjects).await
}

/// Pull everything after `cursor`: the changes' documents, the notices, the last cursor.
async fn pull_from(db: &Db, caller: &Caller, mut cursor: u64) -> (Vec<PullResponse>, u64) {
    let mut pages = Vec::new();
    loop {
        let page = db
            .pull(PullQuery {
                caller: caller.clone(),
                cursor,
                limit: 2,
                max_bytes: 1 << 20,
                known_surveys: Vec::new(),
            })
            .await
            .expect("pull");
        assert!(page.cursor >= cursor, "a cursor never goes back");
        cursor = page.cursor;
        let more = page.more;
        pages.push(page);
        if !more {
            return (pages, cursor);
        }
    }
}

fn notices(pages: &[PullResponse]) -> Vec<(Uuid, NoticeKind)> {
    pages
        .iter()
        .flat_map(|p| p.notices.iter().map(|n| (n.doc_id, n.kind)))
        .collect()
}

fn pulled_docs(pages: &[PullResponse]) -> Vec<Uuid> {
    pages
        .iter()
        .flat_map(|p| p.docs.iter().map(|d| d.doc_id))
        .collect()
}

fn refused_with(outcome: &PushOutcome) -> ErrorCode {
    match outcome {
        PushOutcome::Rejected { code, .. } => code.clone(),
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rights_hold_in_every_backend() {
    each_backend(|backend, w| async move {
        let survey = w.publish().await;
        let s = survey.to_string();
        let (device, _) = w.member(Role::Enumerator, "device", &[survey]).await;
        let (coordinator, _) = w.member(Role::Coordinator, "coordinator", &[]).await;
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let pushed = w
            .db()
            .push(
                device.clone(),
                vec![changes(a, survey, 2), changes(b, survey, 2)],
            )
            .await
            .expect("push");
        assert_eq!(stored(&pushed.results[0].outcome), (2, 0));
        let a_id = a.to_string();
        settle(w.db(), |doc| {
            if doc == a_id {
                vec!["amina bello".into(), "musa bello".into()]
            } else {
                vec!["someone else".into()]
            }
        })
        .await;

        // Found by any identifier it holds, in its organisation only.
        let org = w.db().org(&w.org_id).await.expect("org").expect("exists");
        let keys = w
            .fresh
            .keys
            .org_keys(&org.id, &org.wrapped_key)
            .expect("keys");
        let hash = keys.subject_hash("musa bello");
        let found = w
            .db()
            .subject_responses(&w.org_id, vec![hash], None)
            .await
            .expect("find");
        assert_eq!(
            found.iter().map(|f| f.doc_id.clone()).collect::<Vec<_>>(),
            std::slice::from_ref(&a_id),
            "{backend}"
        );
        assert!(
            w.db()
                .subject_responses("another-org", vec![hash], None)
                .await
                .expect("find")
                .is_empty()
        );

        // A coordinator has everything; its cursor is at the top.
        let (pages, top) = pull_from(w.db(), &coordinator, 0).await;
        assert_eq!(pulled_docs(&pages).len(), 2, "{backend}");

        // Restricted: told once, edits refused, repeats acknowledged, out of lists and exports.
        let audit = || AuditEvent::by(&w.admin, "test");
        let changed = w
            .db()
            .set_restricted(&w.org_id, vec![a_id.clone()], true, audit())
            .await
            .expect("restrict");
        assert_eq!(changed, std::slice::from_ref(&a_id), "{backend}");
        let again = w
            .db()
            .set_restricted(&w.org_id, vec![a_id.clone()], true, audit())
            .await
            .expect("restrict");
        assert!(again.is_empty(), "{backend}: nothing changed, nothing told");
        let (pages, after_restrict) = pull_from(w.db(), &coordinator, top).await;
        assert_eq!(notices(&pages), [(a, NoticeKind::Restricted)], "{backend}");
        let edit = w
            .db()
            .push(device.clone(), vec![changes(a, survey, 3)])
            .await
            .expect("push");
        assert_eq!(
            refused_with(&edit.results[0].outcome),
            ErrorCode::Restricted,
            "{backend}"
        );
        let repeat = w
            .db()
            .push(device.clone(), vec![changes(a, survey, 2)])
            .await
            .expect("push");
        assert_eq!(stored(&repeat.results[0].outcome), (0, 2), "{backend}");
        let list = |include_restricted| ResponseQuery {
            org_id: w.org_id.clone(),
            survey_id: s.clone(),
            include_restricted,
            limit: 50,
            ..Default::default()
        };
        let plain = w.db().responses(list(false)).await.expect("list");
        assert_eq!(
            plain.items.iter().map(|i| i.id).collect::<Vec<_>>(),
            [b],
            "{backend}"
        );
        let admin = w.db().responses(list(true)).await.expect("list");
        assert_eq!(
            admin
                .items
                .iter()
                .filter(|i| i.restricted)
                .map(|i| i.id)
                .collect::<Vec<_>>(),
            [a]
        );
        let export = w
            .db()
            .export_page(&w.org_id, &s, "", 50)
            .await
            .expect("export");
        assert_eq!(
            export.iter().map(|v| v.id).collect::<Vec<_>>(),
            [b],
            "{backend}"
        );
        assert!(
            w.db()
                .response(&w.org_id, &a_id, None)
                .await
                .expect("show")
                .expect("kept")
                .restricted
        );
        w.db()
            .set_restricted(&w.org_id, vec![a_id.clone()], false, audit())
            .await
            .expect("lift");
        let (pages, lifted) = pull_from(w.db(), &coordinator, after_restrict).await;
        assert_eq!(
            notices(&pages),
            [(a, NoticeKind::Unrestricted)],
            "{backend}"
        );

        // Erased: told, gone from everything, and a push of it is refused and stores nothing.
        let erased = w
            .db()
            .erase(
                &w.org_id,
                vec![a_id.clone(), Uuid::new_v4().to_string()],
                ErasureCause::Request,
                audit(),
            )
            .await
            .expect("erase");
        assert_eq!(
            erased,
            std::slice::from_ref(&a_id),
            "{backend}: only what existed"
        );
        assert!(
            w.db()
                .erase(
                    "another-org",
                    vec![b.to_string()],
                    ErasureCause::Request,
                    audit()
                )
                .await
                .expect("erase")
                .is_empty(),
            "{backend}: not another organisation's"
        );
        assert!(
            w.db()
                .response(&w.org_id, &a_id, None)
                .await
                .expect("show")
                .is_none()
        );
        assert!(
            w.db()
                .subject_responses(&w.org_id, vec![hash], None)
                .await
                .expect("find")
                .is_empty()
        );
        let back = w
            .db()
            .push(device.clone(), vec![changes(a, survey, 4)])
            .await
            .expect("push");
        assert_eq!(
            refused_with(&back.results[0].outcome),
            ErrorCode::Erased,
            "{backend}"
        );
        assert!(
            !back.stored_any
                && w.db()
                    .queued_material(10, &Default::default())
                    .await
                    .expect("queue")
                    .is_empty()
        );
        let (pages, after_erase) = pull_from(w.db(), &coordinator, lifted).await;
        assert_eq!(notices(&pages), [(a, NoticeKind::Erased)], "{backend}");
        assert!(pulled_docs(&pages).is_empty(), "{backend}");

        // After the deletion, later changes still reach a puller whose cursor is past it.
        let c = Uuid::new_v4();
        w.db()
            .push(device.clone(), vec![changes(c, survey, 2)])
            .await
            .expect("push");
        settle(w.db(), |_| Vec::new()).await;
        let (pages, _) = pull_from(w.db(), &coordinator, after_erase).await;
        assert_eq!(
            pulled_docs(&pages),
            [c],
            "{backend}: nothing skipped after the deletion"
        );
        // And a fresh puller sees no erased change at all.
        let (pages, _) = pull_from(w.db(), &coordinator, 0).await;
        assert!(!pulled_docs(&pages).contains(&a), "{backend}");

        // The do-not-contact list: a new response naming a listed person is flagged.
        let other = keys.subject_hash("someone else");
        assert!(
            w.db()
                .set_do_not_contact(&w.org_id, other, true, audit())
                .await
                .expect("opt out")
        );
        assert!(
            !w.db()
                .set_do_not_contact(&w.org_id, other, true, audit())
                .await
                .expect("again")
        );
        assert_eq!(
            w.db()
                .do_not_contact(&w.org_id, vec![other, hash])
                .await
                .expect("listed"),
            [other]
        );
        let b_id = b.to_string();
        w.db()
            .push(device.clone(), vec![changes(b, survey, 3)])
            .await
            .expect("push");
        settle(w.db(), |doc| {
            if doc == b_id {
                vec!["someone else".into()]
            } else {
                Vec::new()
            }
        })
        .await;
        let flagged = w.db().responses(list(false)).await.expect("list");
        let warned: Vec<Uuid> = flagged
            .items
            .iter()
            .filter(|i| !i.warnings.is_empty())
            .map(|i| i.id)
            .collect();
        assert_eq!(warned, [b], "{backend}");

        // Retention: nothing expires without a period; with one, the purge erases as
        // erasure does and devices are told.
        assert!(
            w.db()
                .expired(now_ms() + 60_000, 100)
                .await
                .expect("expired")
                .is_empty()
        );
        assert!(
            w.db()
                .set_retention(&w.org_id, &s, Some(1_000), audit())
                .await
                .expect("retention")
        );
        let due = w
            .db()
            .expired(now_ms() + 60_000, 100)
            .await
            .expect("expired");
        assert_eq!(due.len(), 2, "{backend}: {due:?}");
        let purged = service::rights::purge(w.db(), now_ms() + 60_000, "test")
            .await
            .expect("purge");
        assert_eq!(purged, 2, "{backend}");
        let (pages, _) = pull_from(w.db(), &coordinator, after_erase).await;
        let told: Vec<Uuid> = notices(&pages)
            .into_iter()
            .filter(|(_, k)| *k == NoticeKind::Erased)
            .map(|(d, _)| d)
            .collect();
        assert_eq!(told.len(), 2, "{backend}: {told:?}");
        assert!(
            w.db()
                .responses(list(true))
                .await
                .expect("list")
                .items
                .is_empty()
        );

        // The audit chain of the organisation, and that of no organisation, verify.
        let org_chain =
            service::rights::verify_chain(w.db(), &w.fresh.keys, Some((&org.id, &org.wrapped_key)))
                .await
                .expect("verify");
        assert_eq!(org_chain.problem, None, "{backend}");
        assert!(org_chain.verified >= 5, "{backend}: {org_chain:?}");
        w.db()
            .record_audit(AuditEvent::operator(None, "test_operator"))
            .await
            .expect("audit");
        let none = service::rights::verify_chain(w.db(), &w.fresh.keys, None)
            .await
            .expect("verify");
        assert_eq!((none.problem, none.verified), (None, 1), "{backend}");
    })
    .await;
}
