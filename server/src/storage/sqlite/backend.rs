//! [`Sqlite`]: the storage trait over the embedded database, each operation one closure run on
//! the writer thread (writes, committed durably in groups) or a reader connection (reads).

use std::path::Path;
use std::sync::Arc;

use fieldsync_protocol::api::{MemberInfo, Published, ResponsePage, ResponseView, SurveyInfo};
use fieldsync_protocol::wire::{PullResponse, SurveyStatus};
use uuid::Uuid;

use super::{Store, audit, orgs, principals, responses, surveys, sync};
use crate::auth::Caller;
use crate::keys::KeyRing;
use crate::storage::{
    AuditEntry, AuditEvent, DocMaterial, NewCredential, NewOrg, NewPrincipal, Org, Principal,
    PublishPlan, PullQuery, Pushed, Queued, Redeem, Redeemed, ResponseQuery, Result, Settlement,
    Storage, StorageError, Summary, VerifiedDoc,
};

/// The embedded SQLite backend: one database file.
#[derive(Clone, Debug)]
pub struct Sqlite {
    store: Store,
    keys: Arc<KeyRing>,
}

impl Sqlite {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: &Path, keys: Arc<KeyRing>) -> Result<Sqlite> {
        Ok(Sqlite {
            store: Store::open(path)?,
            keys,
        })
    }
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

#[async_trait::async_trait]
impl Storage for Sqlite {
    async fn pin_region(&self, region: &str) -> Result<()> {
        let store = self.store.clone();
        let region = region.to_owned();
        tokio::task::spawn_blocking(move || store.pin_region(&region))
            .await
            .map_err(|_| StorageError::TaskFailed)?
    }

    async fn pin_master_key(&self, check: Vec<u8>) -> Result<Vec<u8>> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.pin_master_key(check))
            .await
            .map_err(|_| StorageError::TaskFailed)?
    }

    async fn create_org(&self, org: NewOrg, admin: NewPrincipal) -> Result<()> {
        self.store
            .write(move |tx| {
                orgs::insert(tx, &org)?;
                principals::create(tx, &admin)?;
                audit::record(tx, &org.audit)
            })
            .await
    }

    async fn org(&self, org_id: &str) -> Result<Option<Org>> {
        let org_id = org_id.to_owned();
        self.store.read(move |c| orgs::get(c, &org_id)).await
    }

    async fn set_support_access(
        &self,
        org_id: &str,
        enabled: bool,
        audit: AuditEvent,
    ) -> Result<()> {
        let org_id = org_id.to_owned();
        self.store
            .write(move |tx| {
                orgs::set_support_access(tx, &org_id, enabled)?;
                audit::record(tx, &audit)
            })
            .await
    }

    async fn authenticate(&self, token_hash: [u8; 32]) -> Result<Option<Principal>> {
        self.store
            .read(move |c| principals::authenticate(c, &token_hash))
            .await
    }

    async fn redeem(&self, r: Redeem) -> Result<Option<Redeemed>> {
        self.store
            .write(move |tx| {
                let Some(principal) = principals::redeem(tx, &r.hash, r.from, &r.new)? else {
                    return Ok(None);
                };
                let org = match &principal.org_id {
                    Some(org_id) => Some(
                        orgs::get(tx, org_id)?
                            .filter(|o| o.region == r.region)
                            .ok_or_else(|| StorageError::NotFound("no such organisation".into()))?,
                    ),
                    None => None,
                };
                audit::record(
                    tx,
                    &AuditEvent {
                        org_id: principal.org_id.clone(),
                        actor_id: principal.id.clone(),
                        actor_role: principal.role.as_str().to_owned(),
                        action: r.action.clone(),
                        target: principal.org_id.as_ref().map(|_| principal.id.clone()),
                        detail: r.client.clone(),
                    },
                )?;
                Ok(Some(Redeemed { principal, org }))
            })
            .await
    }

    async fn create_principal(&self, new: NewPrincipal) -> Result<()> {
        self.store
            .write(move |tx| {
                principals::create(tx, &new)?;
                if let Some(org_id) = &new.org_id {
                    for survey in &new.assign {
                        surveys::assign(tx, org_id, survey, &new.id)?;
                    }
                }
                match &new.audit {
                    Some(a) => audit::record(tx, a),
                    None => Ok(()),
                }
            })
            .await
    }

    async fn issue_credential(&self, principal_id: &str, credential: NewCredential) -> Result<()> {
        let id = principal_id.to_owned();
        self.store
            .write(move |tx| principals::insert_credential(tx, &id, &credential))
            .await
    }

    async fn member(&self, org_id: &str, principal_id: &str) -> Result<Option<MemberInfo>> {
        let (org_id, id) = (org_id.to_owned(), principal_id.to_owned());
        self.store
            .read(move |c| principals::get(c, &org_id, &id))
            .await
    }

    async fn members(&self, org_id: &str) -> Result<Vec<MemberInfo>> {
        let org_id = org_id.to_owned();
        self.store.read(move |c| principals::list(c, &org_id)).await
    }

    async fn revoke_member(
        &self,
        org_id: &str,
        principal_id: &str,
        audit: AuditEvent,
    ) -> Result<bool> {
        let (org_id, id) = (org_id.to_owned(), principal_id.to_owned());
        self.store
            .write(move |tx| {
                if !principals::revoke(tx, &org_id, &id)? {
                    return Ok(false);
                }
                audit::record(tx, &audit)?;
                Ok(true)
            })
            .await
    }

    async fn revoke_credential(&self, token_hash: [u8; 32], audit: AuditEvent) -> Result<()> {
        self.store
            .write(move |tx| {
                principals::revoke_token(tx, &token_hash)?;
                audit::record(tx, &audit)
            })
            .await
    }

    async fn revoke_support(&self, support_id: &str, audit: AuditEvent) -> Result<bool> {
        let id = support_id.to_owned();
        self.store
            .write(move |tx| {
                if !principals::revoke_support(tx, &id)? {
                    return Ok(false);
                }
                audit::record(tx, &audit)?;
                Ok(true)
            })
            .await
    }

    async fn sign_in_failures(&self, client: &str) -> Result<Option<(i64, u32)>> {
        let client = client.to_owned();
        self.store
            .read(move |c| principals::sign_in_failures(c, &client))
            .await
    }

    async fn record_sign_in_failure(&self, client: &str, window_ms: i64) -> Result<()> {
        let client = client.to_owned();
        self.store
            .write(move |tx| principals::record_sign_in_failure(tx, &client, window_ms))
            .await
    }

    async fn record_audit(&self, event: AuditEvent) -> Result<()> {
        self.store.write(move |tx| audit::record(tx, &event)).await
    }

    async fn audit_log(&self, org_id: &str, after_id: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        let org_id = org_id.to_owned();
        self.store
            .read(move |c| audit::list(c, &org_id, after_id, limit))
            .await
    }

    async fn publish(&self, org_id: &str, form_id: &str, plan: PublishPlan) -> Result<Published> {
        let (org_id, form_id) = (org_id.to_owned(), form_id.to_owned());
        self.store
            .write(move |tx| {
                let head = surveys::head(tx, &org_id, &form_id)?;
                let write = plan(head)?;
                surveys::write_version(tx, &org_id, &form_id, &write)?;
                audit::record(tx, &write.audit)?;
                Ok(Published {
                    survey_id: Uuid::parse_str(&write.survey_id)
                        .map_err(|e| StorageError::Corrupt(e.to_string()))?,
                    form_id,
                    version: write.version,
                })
            })
            .await
    }

    async fn surveys(&self, org_id: &str, enumerator: Option<&str>) -> Result<Vec<SurveyInfo>> {
        let (org_id, enumerator) = (org_id.to_owned(), owned(enumerator));
        self.store
            .read(move |c| surveys::list(c, &org_id, enumerator.as_deref()))
            .await
    }

    async fn survey(
        &self,
        org_id: &str,
        survey_id: &str,
        enumerator: Option<&str>,
    ) -> Result<Option<SurveyInfo>> {
        let (org_id, id, enumerator) = (org_id.to_owned(), survey_id.to_owned(), owned(enumerator));
        self.store
            .read(move |c| surveys::get(c, &org_id, &id, enumerator.as_deref()))
            .await
    }

    async fn survey_version(
        &self,
        org_id: &str,
        survey_id: &str,
        version: u32,
    ) -> Result<Option<(String, i64)>> {
        let (org_id, id) = (org_id.to_owned(), survey_id.to_owned());
        self.store
            .read(move |c| surveys::version(c, &org_id, &id, version))
            .await
    }

    async fn survey_definitions(&self, org_id: &str, survey_id: &str) -> Result<Vec<String>> {
        let (org_id, id) = (org_id.to_owned(), survey_id.to_owned());
        self.store
            .read(move |c| surveys::definitions(c, &org_id, &id))
            .await
    }

    async fn set_survey_status(
        &self,
        org_id: &str,
        survey_id: &str,
        status: SurveyStatus,
        audit: AuditEvent,
    ) -> Result<bool> {
        let (org_id, id) = (org_id.to_owned(), survey_id.to_owned());
        self.store
            .write(move |tx| {
                if !surveys::set_status(tx, &org_id, &id, status)? {
                    return Ok(false);
                }
                audit::record(tx, &audit)?;
                Ok(true)
            })
            .await
    }

    async fn assign(
        &self,
        org_id: &str,
        survey_id: &str,
        enumerator_id: &str,
        audit: AuditEvent,
    ) -> Result<()> {
        let (org_id, id, enumerator) = (
            org_id.to_owned(),
            survey_id.to_owned(),
            enumerator_id.to_owned(),
        );
        self.store
            .write(move |tx| {
                surveys::assign(tx, &org_id, &id, &enumerator)?;
                audit::record(tx, &audit)
            })
            .await
    }

    async fn push(&self, pusher: Caller, docs: Vec<VerifiedDoc>) -> Result<Pushed> {
        let keys = self.keys.clone();
        self.store
            .write(move |tx| sync::push(tx, &keys, &pusher, &docs))
            .await
    }

    async fn pull(&self, query: PullQuery) -> Result<PullResponse> {
        let keys = self.keys.clone();
        self.store.read(move |c| sync::pull(c, &keys, &query)).await
    }

    async fn unchecked_for(&self, caller: &Caller) -> Result<bool> {
        let caller = caller.clone();
        self.store
            .read(move |c| sync::unchecked_for(c, &caller))
            .await
    }

    async fn queued_material(&self, limit: u32) -> Result<Vec<(Queued, Option<DocMaterial>)>> {
        let keys = self.keys.clone();
        self.store
            .read(move |c| {
                let queued = responses::queued(c, limit)?;
                let mut out = Vec::with_capacity(queued.len());
                for item in queued {
                    let material = responses::material(c, &keys, &item.org_id, &item.doc_id)?;
                    out.push((item, material));
                }
                Ok(out)
            })
            .await
    }

    async fn settle(&self, settled: Vec<Settlement>) -> Result<()> {
        let keys = self.keys.clone();
        self.store
            .write(move |tx| {
                for s in &settled {
                    match s {
                        Settlement::Gone(doc_id) => responses::forget_queued(tx, doc_id)?,
                        Settlement::Done(done) => {
                            let (item, material, outcome) = &**done;
                            responses::save_summary(
                                tx,
                                &keys,
                                &item.org_id,
                                &item.doc_id,
                                material,
                                outcome,
                            )?
                        }
                    }
                }
                Ok(())
            })
            .await
    }

    async fn responses(&self, query: ResponseQuery) -> Result<ResponsePage> {
        let keys = self.keys.clone();
        self.store
            .read(move |c| responses::list(c, &keys, &query))
            .await
    }

    async fn response(
        &self,
        org_id: &str,
        doc_id: &str,
        owner: Option<&str>,
    ) -> Result<Option<Summary>> {
        let keys = self.keys.clone();
        let (org_id, doc_id, owner) = (org_id.to_owned(), doc_id.to_owned(), owned(owner));
        self.store
            .read(move |c| responses::get(c, &keys, &org_id, &doc_id, owner.as_deref()))
            .await
    }

    async fn export_page(
        &self,
        org_id: &str,
        survey_id: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ResponseView>> {
        let keys = self.keys.clone();
        let (org_id, id, after) = (org_id.to_owned(), survey_id.to_owned(), after.to_owned());
        self.store
            .read(move |c| responses::export_page(c, &keys, &org_id, &id, &after, limit))
            .await
    }

    async fn pending(&self, org_id: &str, survey_id: &str) -> Result<u64> {
        let (org_id, id) = (org_id.to_owned(), survey_id.to_owned());
        self.store
            .read(move |c| responses::pending(c, &org_id, &id))
            .await
    }
}
