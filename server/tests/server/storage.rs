//! The storage contract: what every backend of the `Storage` trait must do, tested at the
//! trait, so that one suite holds each backend to the same behaviour. Each scenario runs on a
//! fresh database of every backend: the embedded SQLite, and PostgreSQL when the run has one
//! (see `common::databases`).
//!
//! The change bytes pushed here are opaque to storage (the sandbox parses them before a push
//! reaches it, and checks them before they are relayed), so scenarios push made-up bytes and
//! settle them with made-up verdicts, as the materialiser would.

use std::collections::BTreeSet;

use fieldsync_protocol::api::Role;
use fieldsync_protocol::crypto::token_hash;
use fieldsync_protocol::wire::{PullResponse, PushOutcome, SurveyStatus};
use fieldsync_server::auth::Caller;
use fieldsync_server::error::ApiError;
use fieldsync_server::service::{self, new_credential};
use fieldsync_server::storage::{
    AuditEvent, CredentialKind, Db, PullQuery, Redeem, ResponseQuery, StorageError,
};
use fieldsync_server::worker::ChangeVerdict;
use uuid::Uuid;

use crate::common::contract::{REGION, changes, each_backend, settle_all, stored};
use crate::common::fixture;

async fn pull_all(db: &Db, caller: &Caller) -> (BTreeSet<Vec<u8>>, Vec<PullResponse>) {
    let mut cursor = 0;
    let mut seen = BTreeSet::new();
    let mut pages = Vec::new();
    loop {
        let page = db
            .pull(PullQuery {
                caller: caller.clone(),
                cursor,
                limit: 3,
                max_bytes: 1 << 20,
                known_surveys: Vec::new(),
            })
            .await
            .expect("pull");
        for d in &page.docs {
            for c in &d.changes {
                assert!(seen.insert(c.to_vec()), "a change came twice");
            }
        }
        cursor = page.cursor;
        let more = page.more;
        pages.push(page);
        if !more {
            return (seen, pages);
        }
    }
}

/// One-time secrets work exactly once and only in their region; tokens authenticate until
/// revoked; every step is in the audit log, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_secrets_redeem_once_tokens_authenticate_until_revoked() {
    each_backend(|backend, w| async move {
        let db = w.db();
        let org = db.org(&w.org_id).await.expect("org").expect("exists");
        assert_eq!(
            (org.name.as_str(), org.region.as_str(), org.support_access),
            ("Acme", REGION, false),
            "{backend}"
        );

        let (secret, login) = new_credential(CredentialKind::Login).expect("token");
        let (coordinator, _) = w.member(Role::Coordinator, "coord", &[]).await;
        db.issue_credential(
            &coordinator.principal_id,
            login,
            fieldsync_server::storage::AuditEvent::operator(None, "test_credential"),
        )
        .await
        .expect("issue");
        let redeem = |region: &str| {
            let (_, new) = new_credential(CredentialKind::Session).expect("token");
            (
                new.hash,
                Redeem {
                    hash: token_hash(&secret),
                    from: CredentialKind::Login,
                    new,
                    region: region.to_owned(),
                    action: "login".into(),
                    client: Some("laptop".into()),
                },
            )
        };
        // Another region's instance does not know the organisation, and uses nothing up.
        let (_, elsewhere) = redeem("us-east");
        assert!(
            matches!(db.redeem(elsewhere).await, Err(StorageError::NotFound(_))),
            "{backend}"
        );
        let (session, here) = redeem(REGION);
        let found = db.redeem(here).await.expect("redeem").expect("redeemed");
        assert_eq!(found.principal.id, coordinator.principal_id, "{backend}");
        assert_eq!(found.org.map(|o| o.id), Some(w.org_id.clone()), "{backend}");
        let (_, again) = redeem(REGION);
        assert!(
            db.redeem(again).await.expect("redeem").is_none(),
            "{backend}: a secret works once"
        );

        // With an attempt id: the same exchange sent again (its answer lost) is answered
        // again, for the same credential; another attempt id is not.
        let (second, login) = new_credential(CredentialKind::Login).expect("token");
        db.issue_credential(
            &coordinator.principal_id,
            login,
            AuditEvent::operator(None, "test_credential"),
        )
        .await
        .expect("issue");
        let attempt = |id: &str| {
            let (token, new) =
                fieldsync_server::service::retry_token(CredentialKind::Session, &second, id);
            let r = Redeem {
                hash: token_hash(&second),
                from: CredentialKind::Login,
                new,
                region: REGION.to_owned(),
                action: "login".into(),
                client: None,
            };
            (token, r)
        };
        let (first_token, first) = attempt("attempt-0123456789abcdef");
        assert!(
            db.redeem(first).await.expect("redeem").is_some(),
            "{backend}"
        );
        let (retry_token, retry) = attempt("attempt-0123456789abcdef");
        assert_eq!(retry_token, first_token);
        let again = db
            .redeem(retry)
            .await
            .expect("redeem")
            .expect("a retry is answered");
        assert_eq!(again.principal.id, coordinator.principal_id, "{backend}");
        let (_, other) = attempt("attempt-fedcba9876543210");
        assert!(
            db.redeem(other).await.expect("redeem").is_none(),
            "{backend}: another attempt id gets nothing"
        );

        let who = db.authenticate(session).await.expect("auth").expect("live");
        assert_eq!(
            (who.role, who.org_id.as_deref()),
            (Role::Coordinator, Some(w.org_id.as_str()))
        );
        assert!(
            db.authenticate(token_hash("fss_unknown"))
                .await
                .expect("auth")
                .is_none()
        );
        assert!(
            db.revoke_member(
                &w.org_id,
                &coordinator.principal_id,
                AuditEvent::by(&w.admin, "member_revoked")
            )
            .await
            .expect("revoke")
        );
        assert!(
            db.authenticate(session).await.expect("auth").is_none(),
            "{backend}: revoked"
        );
        assert!(
            !db.revoke_member(
                "another-org",
                &coordinator.principal_id,
                AuditEvent::by(&w.admin, "x")
            )
            .await
            .expect("revoke"),
            "{backend}: another organisation's member is not found"
        );

        let log = db.audit_log(&w.org_id, 0, 100).await.expect("audit");
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            // The retried exchange is audited as one.
            [
                "org_created",
                "login",
                "login",
                "login_retried",
                "member_revoked"
            ],
            "{backend}"
        );
        let after_first = db.audit_log(&w.org_id, log[0].id, 1).await.expect("audit");
        assert_eq!(after_first.len(), 1);
        assert_eq!(
            after_first[0].action, "login",
            "{backend}: pages after an id"
        );
        assert!(
            db.audit_log("another-org", 0, 100)
                .await
                .expect("audit")
                .is_empty()
        );
    })
    .await;
}

/// Publications at once get distinct consecutive versions; a closed survey takes none, and
/// its refusal writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publications_number_versions_without_gaps_or_repeats() {
    each_backend(|backend, w| async move {
        // Eight forms of one survey, each its own `version` (one definition published twice
        // is published once).
        let base: serde_json::Value =
            serde_json::from_str(&fixture("surveys/household-v1.json")).expect("json");
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let mut form = base.clone();
            form["settings"]["version"] = format!("2024.{i}").into();
            let (db, admin, text) = (w.db().clone(), w.admin.clone(), form.to_string());
            tasks.spawn(async move { service::surveys::publish(&db, &admin, &text).await });
        }
        let mut versions = BTreeSet::new();
        let mut ids = BTreeSet::new();
        while let Some(r) = tasks.join_next().await {
            let p = r.expect("task").expect("publish");
            versions.insert(p.version);
            ids.insert(p.survey_id);
        }
        assert_eq!(versions, (1..=8).collect(), "{backend}");
        assert_eq!(ids.len(), 1, "{backend}: one survey");
        let id = ids.into_iter().next().expect("id").to_string();
        assert_eq!(
            w.db()
                .survey_definitions(&w.org_id, &id)
                .await
                .expect("defs")
                .len(),
            8
        );
        let info = w
            .db()
            .survey(&w.org_id, &id, None)
            .await
            .expect("survey")
            .expect("exists");
        assert_eq!(
            (info.latest_version, info.versions.len()),
            (8, 8),
            "{backend}"
        );

        service::surveys::set_status(w.db(), &w.admin, &id, SurveyStatus::Closed)
            .await
            .expect("close");
        let mut next = base.clone();
        next["settings"]["version"] = "2024.9".into();
        let refused = service::surveys::publish(w.db(), &w.admin, &next.to_string()).await;
        assert!(
            matches!(refused, Err(ApiError::Conflict(_))),
            "{backend}: {refused:?}"
        );
        let info = w
            .db()
            .survey(&w.org_id, &id, None)
            .await
            .expect("survey")
            .expect("exists");
        assert_eq!(
            (info.latest_version, info.status),
            (8, SurveyStatus::Closed),
            "{backend}"
        );
        assert!(
            w.db()
                .survey_version(&w.org_id, &id, 8)
                .await
                .expect("v8")
                .is_some()
        );
        assert!(
            w.db()
                .survey_version(&w.org_id, &id, 9)
                .await
                .expect("v9")
                .is_none()
        );
        assert!(
            w.db()
                .survey("another-org", &id, None)
                .await
                .expect("survey")
                .is_none()
        );
    })
    .await;
}

/// The same batch pushed many times at once is stored once: every push is acknowledged, and
/// the new changes across all of them add up to the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_pushed_many_times_at_once_is_stored_once() {
    each_backend(|backend, w| async move {
        let survey = w.publish().await;
        let (coordinator, _) = w.member(Role::Coordinator, "coord", &[]).await;
        let docs: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let (db, caller, docs) = (w.db().clone(), coordinator.clone(), docs.clone());
            tasks.spawn(async move {
                let batch = docs.iter().map(|d| changes(*d, survey, 4)).collect();
                db.push(caller, batch).await
            });
        }
        let (mut new, mut duplicate) = (0, 0);
        while let Some(r) = tasks.join_next().await {
            for result in r.expect("task").expect("push").results {
                let (n, d) = stored(&result.outcome);
                new += n;
                duplicate += d;
            }
        }
        assert_eq!((new, duplicate), (12, 60), "{backend}");
        let queued = w
            .db()
            .queued_material(100, &Default::default())
            .await
            .expect("queued");
        assert_eq!(queued.len(), 3, "{backend}");
        for (_, material) in &queued {
            let m = material.as_ref().expect("material");
            assert_eq!((m.accepted.len(), m.pending.len()), (0, 4), "{backend}");
        }
    })
    .await;
}

/// The materialiser reads its next round while the last one is being written: documents of
/// that round are still queued, and must not be handed out (and checked, and settled) twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_still_being_settled_is_not_handed_out_again() {
    each_backend(|backend, w| async move {
        let survey = w.publish().await;
        let (coordinator, _) = w.member(Role::Coordinator, "coord", &[]).await;
        let docs: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let batch = docs.iter().map(|d| changes(*d, survey, 1)).collect();
        w.db().push(coordinator, batch).await.expect("push");
        let first = w
            .db()
            .queued_material(2, &Default::default())
            .await
            .expect("first round");
        assert_eq!(first.len(), 2, "{backend}");
        let busy = first.iter().map(|(q, _)| q.doc_id.clone()).collect();
        let next = w.db().queued_material(10, &busy).await.expect("next round");
        let next: Vec<&str> = next.iter().map(|(q, _)| q.doc_id.as_str()).collect();
        let rest: Vec<String> = docs
            .iter()
            .map(Uuid::to_string)
            .filter(|d| !busy.contains(d))
            .collect();
        assert_eq!(
            next, rest,
            "{backend}: only the document not in the first round"
        );
    })
    .await;
}

/// Pulls relay only settled changes, each once, in pages, never to the session that pushed
/// them; a refused change reaches only its pusher, as a notice; a device sees only its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_relay_checked_changes_once_to_whoever_may_see_them() {
    each_backend(|backend, w| async move {
        let survey = w.publish().await;
        let (device, _) = w.member(Role::Enumerator, "device", &[survey]).await;
        let (other_device, _) = w.member(Role::Enumerator, "other", &[survey]).await;
        let (coordinator, _) = w.member(Role::Coordinator, "coord", &[]).await;
        let mine = Uuid::new_v4();
        let pushed = w
            .db()
            .push(device.clone(), vec![changes(mine, survey, 5)])
            .await
            .expect("push");
        assert!(pushed.stored_any);
        assert!(
            w.db().unchecked_for(&coordinator).await.expect("unchecked"),
            "{backend}"
        );
        assert!(
            !w.db().unchecked_for(&device).await.expect("unchecked"),
            "{backend}: its own do not count"
        );
        let (before, _) = pull_all(w.db(), &coordinator).await;
        assert!(
            before.is_empty(),
            "{backend}: nothing is relayed before it is checked"
        );

        // Change 3 is refused; the others are accepted.
        settle_all(w.db(), |i| {
            if i == 3 {
                ChangeVerdict::Refused("breaks the document".into())
            } else {
                ChangeVerdict::Accepted
            }
        })
        .await;
        assert!(!w.db().unchecked_for(&coordinator).await.expect("unchecked"));
        let (seen, pages) = pull_all(w.db(), &coordinator).await;
        assert_eq!(seen.len(), 4, "{backend}: every accepted change once");
        assert!(pages.len() > 1, "{backend}: pages of 3");
        assert!(
            pages.iter().all(|p| p.refused.is_empty()),
            "{backend}: refusals go to the pusher only"
        );
        let (own, pages) = pull_all(w.db(), &device).await;
        assert!(
            own.is_empty(),
            "{backend}: a session does not pull back what it pushed"
        );
        let refused: Vec<_> = pages.iter().flat_map(|p| &p.refused).collect();
        assert_eq!(refused.len(), 1, "{backend}");
        assert_eq!(
            (refused[0].doc_id, refused[0].reason.as_str()),
            (mine, "breaks the document")
        );
        let (theirs, _) = pull_all(w.db(), &other_device).await;
        assert!(
            theirs.is_empty(),
            "{backend}: a device sees only its own documents"
        );

        // A cursor at the end sees only what is new.
        let (_, pages) = pull_all(w.db(), &coordinator).await;
        let end = pages.last().expect("page").cursor;
        let second = Uuid::new_v4();
        w.db()
            .push(device.clone(), vec![changes(second, survey, 2)])
            .await
            .expect("push");
        settle_all(w.db(), |_| ChangeVerdict::Accepted).await;
        let page = w
            .db()
            .pull(PullQuery {
                caller: coordinator.clone(),
                cursor: end,
                limit: 100,
                max_bytes: 1 << 20,
                known_surveys: Vec::new(),
            })
            .await
            .expect("pull");
        let docs: Vec<Uuid> = page.docs.iter().map(|d| d.doc_id).collect();
        assert_eq!(docs, vec![second], "{backend}");
        assert_eq!(page.docs[0].changes.len(), 2);
        assert_eq!(
            page.surveys.len(),
            1,
            "{backend}: a client that holds no survey gets it"
        );
    })
    .await;
}

/// The push rules hold inside the backend: a device cannot write another's document, nor a
/// survey it is not assigned; a closed survey takes no new documents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_rules_hold_in_every_backend() {
    each_backend(|backend, w| async move {
        let survey = w.publish().await;
        let (device, _) = w.member(Role::Enumerator, "device", &[survey]).await;
        let (stranger, _) = w.member(Role::Enumerator, "stranger", &[]).await;
        let doc = Uuid::new_v4();
        let first = w
            .db()
            .push(device.clone(), vec![changes(doc, survey, 1)])
            .await
            .expect("push");
        assert_eq!(stored(&first.results[0].outcome), (1, 0), "{backend}");
        for (who, doc) in [(&stranger, doc), (&stranger, Uuid::new_v4())] {
            let r = w
                .db()
                .push(who.clone(), vec![changes(doc, survey, 2)])
                .await
                .expect("push");
            assert!(
                matches!(r.results[0].outcome, PushOutcome::Rejected { .. }),
                "{backend}"
            );
            assert!(!r.stored_any);
        }
        service::surveys::set_status(w.db(), &w.admin, &survey.to_string(), SurveyStatus::Closed)
            .await
            .expect("close");
        let r = w
            .db()
            .push(device.clone(), vec![changes(Uuid::new_v4(), survey, 1)])
            .await
            .expect("push");
        assert!(
            matches!(r.results[0].outcome, PushOutcome::Rejected { .. }),
            "{backend}"
        );
        // A retry of what was stored before closing is still acknowledged.
        let retry = w
            .db()
            .push(device.clone(), vec![changes(doc, survey, 1)])
            .await
            .expect("push");
        assert_eq!(stored(&retry.results[0].outcome), (0, 1), "{backend}");
    })
    .await;
}

/// Settled responses are listed, shown and exported from the index, each only to whoever may
/// see it; nothing waits once everything is settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_responses_are_listed_shown_and_exported() {
    each_backend(|backend, w| async move {
        let survey = w.publish().await;
        let (device, _) = w.member(Role::Enumerator, "device", &[survey]).await;
        let mut ids: Vec<Uuid> = (0..7).map(|_| Uuid::new_v4()).collect();
        ids.sort();
        let batch = ids.iter().map(|d| changes(*d, survey, 2)).collect();
        w.db().push(device.clone(), batch).await.expect("push");
        let s = survey.to_string();
        assert_eq!(
            w.db().pending(&w.org_id, &s).await.expect("pending"),
            7,
            "{backend}"
        );
        settle_all(w.db(), |_| ChangeVerdict::Accepted).await;
        assert_eq!(
            w.db().pending(&w.org_id, &s).await.expect("pending"),
            0,
            "{backend}"
        );

        let query = |owner: Option<String>, after: Option<String>| ResponseQuery {
            org_id: w.org_id.clone(),
            survey_id: s.clone(),
            owner,
            after,
            limit: 5,
            ..Default::default()
        };
        let page = w.db().responses(query(None, None)).await.expect("list");
        assert_eq!(page.items.len(), 5, "{backend}");
        let next = page.next.clone().expect("a next page");
        let rest = w
            .db()
            .responses(query(None, Some(next)))
            .await
            .expect("list");
        let listed: Vec<Uuid> = page.items.iter().chain(&rest.items).map(|i| i.id).collect();
        assert_eq!(listed, ids, "{backend}: id order, across pages");
        let none = w
            .db()
            .responses(query(Some("someone-else".into()), None))
            .await
            .expect("list");
        assert!(none.items.is_empty(), "{backend}: an owner filter");

        let one = w
            .db()
            .response(&w.org_id, &ids[0].to_string(), None)
            .await
            .expect("show")
            .expect("visible");
        assert_eq!(one.view.map(|v| v.id), Some(ids[0]), "{backend}");
        assert!(
            w.db()
                .response(&w.org_id, &ids[0].to_string(), Some("someone-else"))
                .await
                .expect("show")
                .is_none()
        );
        assert!(
            w.db()
                .response("another-org", &ids[0].to_string(), None)
                .await
                .expect("show")
                .is_none()
        );

        let mut exported = Vec::new();
        let mut after = String::new();
        loop {
            let page = w
                .db()
                .export_page(&w.org_id, &s, &after, 3)
                .await
                .expect("export");
            let Some(last) = page.last() else { break };
            after = last.id.to_string();
            exported.extend(page.iter().map(|v| v.id));
        }
        assert_eq!(exported, ids, "{backend}");
        // An export narrowed by status knows its rows before it streams (its progress bar).
        let count = |statuses| w.db().count_responses(&w.org_id, &s, statuses);
        use fieldsync_protocol::document::Status;
        assert_eq!(
            count(vec![Status::Draft]).await.expect("count"),
            7,
            "{backend}"
        );
        assert_eq!(
            count(vec![Status::Submitted, Status::Approved])
                .await
                .expect("count"),
            0,
            "{backend}"
        );
    })
    .await;
}
