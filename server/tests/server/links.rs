//! Survey links and email invitations in every storage backend: tokens found by their hash
//! only, places on a limited link taken atomically, revocation; invitations recorded once
//! per address, claimed under a lease, retried, reported, answered once, and found by their
//! opt-out token.

use fieldsync_protocol::api::NewLink as NewLinkRequest;
use fieldsync_protocol::crypto::token_hash;
use fieldsync_server::service;
use fieldsync_server::storage::{AuditEvent, InvitationStatus, NewInvitation, SendOutcome, now_ms};

use crate::common::contract::each_backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_and_invitations_hold_in_every_backend() {
    each_backend(|backend, w| async move {
        let survey = w.publish().await.to_string();
        let created = service::links::create(
            w.db(),
            &w.admin,
            &survey,
            NewLinkRequest {
                label: Some("doorstep".into()),
                max_responses: Some(2),
                ..NewLinkRequest::default()
            },
        )
        .await
        .expect("create a link");
        let token = created.path.trim_start_matches("/f/");
        let (link, invitation) = service::links::by_token(w.db(), token)
            .await
            .expect("look up")
            .expect("found by its token");
        assert!(invitation.is_none(), "{backend}");
        assert_eq!(link.label, "doorstep", "{backend}");
        assert!(
            service::links::by_token(w.db(), "fsf_not-a-token")
                .await
                .expect("look up")
                .is_none(),
            "{backend}"
        );
        // Two places, then full; a place given back is taken again.
        let now = now_ms();
        for _ in 0..2 {
            assert!(
                w.db().take_link_place(&link.id, now).await.expect("take"),
                "{backend}"
            );
        }
        assert!(
            !w.db().take_link_place(&link.id, now).await.expect("take"),
            "{backend}"
        );
        w.db().release_link_place(&link.id).await.expect("release");
        assert!(
            w.db().take_link_place(&link.id, now).await.expect("take"),
            "{backend}"
        );
        let listed = service::links::list(w.db(), &w.admin, Some(&survey))
            .await
            .expect("list");
        assert_eq!(listed.len(), 1, "{backend}");
        assert_eq!(listed[0].responses, 2, "{backend}");
        assert!(!listed[0].open, "a full link is closed: {backend}");
        service::links::revoke(w.db(), &w.admin, &link.id)
            .await
            .expect("revoke");
        let (revoked, _) = service::links::by_token(w.db(), token)
            .await
            .expect("look up")
            .expect("still found");
        assert!(revoked.revoked_at.is_some(), "{backend}");

        // Invitations: once per address.
        let people: Vec<NewInvitation> = (0..3u8)
            .map(|i| NewInvitation {
                id: uuid::Uuid::now_v7().to_string(),
                address_hash: [i; 32],
                sealed: vec![i; 8],
            })
            .collect();
        let audit = || AuditEvent::by(&w.admin, "invitations_added");
        let added = w
            .db()
            .add_invitations(&w.org_id, &survey, &link.id, people.clone(), audit())
            .await
            .expect("add");
        assert_eq!(added, 3, "{backend}");
        let again = w
            .db()
            .add_invitations(&w.org_id, &survey, &link.id, people.clone(), audit())
            .await
            .expect("add again");
        assert_eq!(again, 0, "{backend}");
        let claimed = w
            .db()
            .claim_invitations(now_ms(), 60_000, 10)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 3, "{backend}");
        assert!(
            claimed
                .iter()
                .all(|c| c.status == InvitationStatus::Sending)
        );
        assert!(
            w.db()
                .claim_invitations(now_ms(), 60_000, 10)
                .await
                .expect("claim")
                .is_empty(),
            "leased: {backend}"
        );
        let (sent, retried, failed) = (&claimed[0], &claimed[1], &claimed[2]);
        let (personal, optout) = (token_hash("fsi_one"), token_hash("fso_one"));
        w.db()
            .finish_invitation(
                &sent.id,
                SendOutcome::Prepared {
                    token_hash: personal,
                    optout_hash: optout,
                },
            )
            .await
            .expect("prepare");
        w.db()
            .finish_invitation(&sent.id, SendOutcome::Sent)
            .await
            .expect("sent");
        w.db()
            .finish_invitation(
                &retried.id,
                SendOutcome::Failed {
                    error: "421 busy".into(),
                    retry_at: Some(now_ms() - 1),
                },
            )
            .await
            .expect("retry later");
        w.db()
            .finish_invitation(
                &failed.id,
                SendOutcome::Failed {
                    error: "550 no such mailbox".into(),
                    retry_at: None,
                },
            )
            .await
            .expect("failed");
        let due = w
            .db()
            .claim_invitations(now_ms(), 60_000, 10)
            .await
            .expect("claim");
        assert_eq!(due.len(), 1, "{backend}");
        assert_eq!(due[0].id, retried.id, "{backend}");
        assert_eq!(due[0].attempts, 1, "{backend}");
        w.db()
            .finish_invitation(&retried.id, SendOutcome::OptedOut)
            .await
            .expect("opted out");
        let summary = w
            .db()
            .invitation_summary(&w.org_id, &survey)
            .await
            .expect("summary");
        assert_eq!(
            (
                summary.pending,
                summary.sent,
                summary.failed,
                summary.opted_out
            ),
            (0, 1, 1, 1),
            "{backend}"
        );
        assert_eq!(summary.failures.len(), 1, "{backend}");
        assert_eq!(summary.failures[0].2, "550 no such mailbox", "{backend}");

        // The personal token finds it; it is answered once.
        let found = w
            .db()
            .invitation_by_token(personal)
            .await
            .expect("by token")
            .expect("found");
        assert_eq!(found.id, sent.id, "{backend}");
        let response = uuid::Uuid::now_v7().to_string();
        let use_it = || w.db().use_invitation(&sent.id, &response, now_ms());
        assert!(use_it().await.expect("use"), "{backend}");
        assert!(!use_it().await.expect("use"), "{backend}");
        w.db().unuse_invitation(&sent.id).await.expect("unuse");
        assert!(use_it().await.expect("use"), "{backend}");
        let used = w
            .db()
            .invitation_by_token(personal)
            .await
            .expect("by token")
            .expect("found");
        assert_eq!(
            used.used_by.as_deref(),
            Some(response.as_str()),
            "{backend}"
        );
        let summary = w
            .db()
            .invitation_summary(&w.org_id, &survey)
            .await
            .expect("summary");
        assert_eq!(summary.answered, 1, "{backend}");
        let (org, hash) = w
            .db()
            .invitation_by_optout(optout)
            .await
            .expect("by opt-out")
            .expect("found");
        let address = people
            .iter()
            .find(|p| p.id == sent.id)
            .expect("one of those added")
            .address_hash;
        assert_eq!(
            (org.as_str(), hash),
            (w.org_id.as_str(), address),
            "{backend}"
        );
    })
    .await;
}
