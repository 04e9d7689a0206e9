//! The world of the storage contract tests: a fresh database of one backend, an organisation
//! with an admin, members, a published survey, made-up changes to push, and settling them as
//! the materialiser would.

use std::sync::Arc;

use fieldsync_protocol::api::{ResponseView, Role};
use fieldsync_protocol::crypto::token_hash;
use fieldsync_protocol::wire::{DocChanges, DocKind, PushOutcome};
use fieldsync_server::auth::Caller;
use fieldsync_server::keys::KeyRing;
use fieldsync_server::service::{self, new_credential};
use fieldsync_server::storage::{self, CredentialKind, Db, NewPrincipal, Settlement, VerifiedDoc};
use fieldsync_server::worker::{ChangeVerdict, Checked};
use serde_bytes::ByteBuf;
use uuid::Uuid;

use super::{TestDb, fixture, test_databases};

pub(crate) const REGION: &str = "eu-central";

/// A fresh, empty database of one backend, and what keeps it alive.
pub(crate) struct Fresh {
    pub(crate) db: Db,
    pub(crate) keys: Arc<KeyRing>,
    _dir: tempfile::TempDir,
}

impl Fresh {
    async fn new(kind: &TestDb) -> Fresh {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = Arc::new(KeyRing::load_or_create(&dir.path().join("master.key")).expect("keys"));
        let database = kind.fresh(dir.path()).await;
        let db = storage::open(&database, keys.clone(), REGION)
            .await
            .unwrap_or_else(|e| panic!("open {database}: {e}"));
        Fresh {
            db,
            keys,
            _dir: dir,
        }
    }
}

/// An organisation with an admin (logged in) and a coordinator caller.
pub(crate) struct World {
    pub(crate) fresh: Fresh,
    pub(crate) org_id: String,
    pub(crate) admin: Caller,
}

impl World {
    async fn new(fresh: Fresh) -> World {
        let created = service::orgs::create(&fresh.db, &fresh.keys, "Acme", REGION)
            .await
            .expect("create org");
        let admin = Caller {
            principal_id: created.admin_id.clone(),
            session: "admin-session".into(),
            name: "admin".into(),
            role: Role::Admin,
            org_id: created.org_id.clone(),
        };
        World {
            fresh,
            org_id: created.org_id,
            admin,
        }
    }

    pub(crate) fn db(&self) -> &Db {
        &self.fresh.db
    }

    /// A member of `role` with a session: the caller, and its token.
    pub(crate) async fn member(
        &self,
        role: Role,
        name: &str,
        surveys: &[Uuid],
    ) -> (Caller, String) {
        let id = Uuid::new_v4().to_string();
        let kind = if role == Role::Enumerator {
            CredentialKind::Device
        } else {
            CredentialKind::Session
        };
        let (token, credential) = new_credential(kind).expect("token");
        self.db()
            .create_principal(NewPrincipal {
                id: id.clone(),
                org_id: Some(self.org_id.clone()),
                role,
                name: name.into(),
                created_by: Some(self.admin.principal_id.clone()),
                credential,
                assign: surveys.iter().map(Uuid::to_string).collect(),
                audit: None,
            })
            .await
            .expect("create member");
        let caller = Caller {
            principal_id: id,
            session: format!("{name}-session"),
            name: name.into(),
            role,
            org_id: self.org_id.clone(),
        };
        (caller, token)
    }

    pub(crate) async fn publish(&self) -> Uuid {
        self.publish_fixture("household-v1.json").await
    }

    /// Publish the survey `fixtures/surveys/NAME`.
    pub(crate) async fn publish_fixture(&self, name: &str) -> Uuid {
        let text = fixture(&format!("surveys/{name}"));
        service::surveys::publish(self.db(), &self.admin, &text)
            .await
            .expect("publish")
            .survey_id
    }
}

/// Run `scenario` on a fresh world of every backend.
pub(crate) async fn each_backend<F, Fut>(scenario: F)
where
    F: Fn(&'static str, World) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for kind in test_databases() {
        scenario(kind.name(), World::new(Fresh::new(&kind).await).await).await;
    }
}

pub(crate) fn changes(doc: Uuid, survey: Uuid, n: u8) -> VerifiedDoc {
    let bytes: Vec<ByteBuf> = (0..n)
        .map(|i| ByteBuf::from(format!("{doc} change {i}").into_bytes()))
        .collect();
    let hashes = bytes
        .iter()
        .map(|b| ByteBuf::from(token_hash(&String::from_utf8_lossy(b)).to_vec()))
        .collect();
    VerifiedDoc {
        doc: DocChanges {
            doc_id: doc,
            kind: DocKind::Response,
            survey_id: survey,
            survey_version: 1,
            changes: bytes,
        },
        hashes,
        touched: Vec::new(),
    }
}

pub(crate) fn stored(outcome: &PushOutcome) -> (u32, u32) {
    match outcome {
        PushOutcome::Stored { new, duplicate } => (*new, *duplicate),
        other => panic!("not stored: {other:?}"),
    }
}

/// Settle everything queued as the materialiser would: each pending change gets `verdict`,
/// and the response reads as an empty draft.
pub(crate) async fn settle_all(db: &Db, verdict: impl Fn(usize) -> ChangeVerdict) {
    settle_with(db, verdict, |_| Vec::new()).await
}

/// [`settle_all`], with each document's identifiers (for the subject index) from `subjects`.
pub(crate) async fn settle_with(
    db: &Db,
    verdict: impl Fn(usize) -> ChangeVerdict,
    subjects: impl Fn(&str) -> Vec<String>,
) {
    settle_named(db, verdict, subjects, |_| Vec::new()).await
}

/// [`settle_with`], with the attachments each document's answers name from `media`.
pub(crate) async fn settle_named(
    db: &Db,
    verdict: impl Fn(usize) -> ChangeVerdict,
    subjects: impl Fn(&str) -> Vec<String>,
    media: impl Fn(&str) -> Vec<String>,
) {
    loop {
        let queued = db
            .queued_material(512, &Default::default())
            .await
            .expect("queued");
        if queued.is_empty() {
            return;
        }
        let mut settled = Vec::new();
        for (item, material) in queued {
            let Some(material) = material else {
                settled.push(Settlement::Gone(item.doc_id));
                continue;
            };
            let verdicts: Vec<ChangeVerdict> = (0..material.pending.len()).map(&verdict).collect();
            let any = verdicts
                .iter()
                .any(|v| matches!(v, ChangeVerdict::Accepted))
                || !material.accepted.is_empty();
            let view = any.then(|| ResponseView {
                id: Uuid::parse_str(&item.doc_id).expect("id"),
                survey_id: Uuid::parse_str(&material.survey_id).expect("survey"),
                survey_version: material.survey_version,
                author_device: "device".into(),
                created_at: 1,
                updated_at: 2,
                status: "draft".into(),
                answers: Default::default(),
                errors: Vec::new(),
                conflicts: Vec::new(),
                warnings: Vec::new(),
                review_comment: None,
            });
            let checked = Checked {
                verdicts,
                view,
                subjects: subjects(&item.doc_id),
                media: media(&item.doc_id),
            };
            settled.push(Settlement::Done(Box::new((item, material, Ok(checked)))));
        }
        db.settle(settled).await.expect("settle");
    }
}
