//! [`Sqlite`]: the storage trait over the embedded database, each operation one closure run on
//! the writer thread (writes, committed durably in groups) or a reader connection (reads).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use fieldsync_protocol::api::{MemberInfo, Published, ResponsePage, ResponseView, SurveyInfo};
use fieldsync_protocol::document::Status;
use fieldsync_protocol::wire::{PullResponse, SurveyStatus};
use uuid::Uuid;

use super::{Store, audit, orgs, principals, responses, rights, surveys, sync};
use crate::auth::Caller;
use crate::keys::KeyRing;
use crate::storage::{
    AuditEntry, AuditEvent, AuditHead, DocMaterial, ErasedRecord, ErasureCause, Expired,
    NewCredential, NewOrg, NewPrincipal, Org, OrgListing, Principal, Publication, PublishPlan,
    PullQuery, Pushed, Queued, Redeem, Redeemed, ResponseQuery, Result, Settlement, Storage,
    StorageError, SubjectResponse, Summary, VerifiedDoc, now_ms,
};

/// The embedded SQLite backend: one database file.
#[derive(Clone, Debug)]
pub struct Sqlite {
    pub(super) store: Store,
    pub(super) keys: Arc<KeyRing>,
}

impl Sqlite {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: &Path, keys: Arc<KeyRing>) -> Result<Sqlite> {
        Ok(Sqlite {
            store: Store::open(path)?,
            keys,
        })
    }

    /// After deleting what must not survive (an erasure, released files): the rows are gone
    /// and their pages zeroed, but the log's older frames still hold them until it is
    /// checkpointed. Readers can hold the log for a while: then the deletion (committed)
    /// stands, and the checkpoint is retried in the background.
    pub(super) async fn scrub_log(&self) -> Result<()> {
        let store = self.store.clone();
        let first = tokio::task::spawn_blocking(move || store.checkpoint())
            .await
            .map_err(|_| StorageError::TaskFailed)?;
        if let Err(e) = first {
            tracing::warn!(error = %e, "deleted, but the write-ahead log is busy; emptying it in the background");
            let store = self.store.clone();
            tokio::spawn(async move {
                for _ in 0..60 {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    let store = store.clone();
                    if let Ok(Ok(())) =
                        tokio::task::spawn_blocking(move || store.checkpoint()).await
                    {
                        return;
                    }
                }
                tracing::error!(
                    "the write-ahead log could not be emptied after a deletion; restart the server to empty it"
                );
            });
        }
        Ok(())
    }

    /// One write that may find nothing to change (`f` says whether it changed anything);
    /// `audit` is recorded with it only when it did.
    pub(super) async fn write_audited_if<F>(&self, audit: AuditEvent, f: F) -> Result<bool>
    where
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<bool> + Send + 'static,
    {
        let keys = self.keys.clone();
        self.store
            .write(move |tx| {
                let changed = f(tx)?;
                if changed {
                    audit::record(tx, &keys, &audit)?;
                }
                Ok(changed)
            })
            .await
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

    async fn incarnation(&self, candidate: &str, replace: bool) -> Result<String> {
        self.meta_incarnation(candidate, replace).await
    }

    async fn operator_audit_key(&self) -> Result<Option<Vec<u8>>> {
        self.meta_operator_audit_key().await
    }

    async fn rewrap(&self, rotation: crate::keys::Rotation) -> Result<()> {
        self.meta_rewrap(rotation).await
    }

    async fn relay_counter(&self) -> Result<i64> {
        self.meta_relay_counter().await
    }

    async fn create_org(&self, org: NewOrg, admin: NewPrincipal) -> Result<()> {
        let keys = self.keys.clone();
        self.store
            .write(move |tx| {
                orgs::insert(tx, &org)?;
                principals::create(tx, &admin)?;
                audit::record(tx, &keys, &org.audit)
            })
            .await
    }

    async fn org(&self, org_id: &str) -> Result<Option<Org>> {
        let org_id = org_id.to_owned();
        self.store.read(move |c| orgs::get(c, &org_id)).await
    }

    async fn orgs(&self) -> Result<Vec<OrgListing>> {
        self.store.read(|c| orgs::list(c)).await
    }

    async fn set_support_access(
        &self,
        org_id: &str,
        enabled: bool,
        audit: AuditEvent,
    ) -> Result<()> {
        let keys = self.keys.clone();
        let org_id = org_id.to_owned();
        self.store
            .write(move |tx| {
                orgs::set_support_access(tx, &org_id, enabled)?;
                audit::record(tx, &keys, &audit)
            })
            .await
    }

    async fn ready(&self) -> Result<()> {
        self.store
            .read(|c| Ok::<_, StorageError>(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await?;
        // Through the one writer thread: it is alive and not stuck.
        self.store.write(|_| Ok::<_, StorageError>(())).await
    }

    async fn authenticate(&self, token_hash: [u8; 32]) -> Result<Option<Principal>> {
        self.store
            .read(move |c| principals::authenticate(c, &token_hash))
            .await
    }

    async fn redeem(&self, r: Redeem) -> Result<Option<Redeemed>> {
        let keys = self.keys.clone();
        self.store
            .write(move |tx| {
                let Some((principal, retry)) = principals::redeem(tx, &r.hash, r.from, &r.new)?
                else {
                    return Ok(None);
                };
                if let Some(device) = r.device_name() {
                    tx.execute(
                        "UPDATE principals SET device_name = ?2 WHERE id = ?1",
                        rusqlite::params![principal.id, device],
                    )?;
                }
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
                    &keys,
                    &AuditEvent {
                        org_id: principal.org_id.clone(),
                        actor_id: principal.id.clone(),
                        actor_role: principal.role.as_str().to_owned(),
                        action: if retry {
                            format!("{}_retried", r.action)
                        } else {
                            r.action.clone()
                        },
                        target: principal.org_id.as_ref().map(|_| principal.id.clone()),
                        detail: r.client.clone(),
                    },
                )?;
                Ok(Some(Redeemed { principal, org }))
            })
            .await
    }

    async fn create_principal(&self, new: NewPrincipal) -> Result<()> {
        let keys = self.keys.clone();
        self.store
            .write(move |tx| {
                principals::create(tx, &new)?;
                if let Some(org_id) = &new.org_id {
                    for survey in &new.assign {
                        surveys::assign(tx, org_id, survey, &new.id)?;
                    }
                }
                match &new.audit {
                    Some(a) => audit::record(tx, &keys, a),
                    None => Ok(()),
                }
            })
            .await
    }

    async fn issue_credential(
        &self,
        principal_id: &str,
        credential: NewCredential,
        audit: AuditEvent,
    ) -> Result<()> {
        let keys = self.keys.clone();
        let id = principal_id.to_owned();
        self.store
            .write(move |tx| {
                if credential.kind.is_one_time() {
                    tx.prepare_cached(
                        "UPDATE credentials SET revoked_at = ?3
                         WHERE principal_id = ?1 AND kind = ?2 AND used_at IS NULL
                           AND revoked_at IS NULL",
                    )?
                    .execute(rusqlite::params![
                        id,
                        credential.kind.as_str(),
                        now_ms()
                    ])?;
                }
                principals::insert_credential(tx, &id, &credential)?;
                audit::record(tx, &keys, &audit)
            })
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
        let keys = self.keys.clone();
        let (org_id, id) = (org_id.to_owned(), principal_id.to_owned());
        self.store
            .write(move |tx| {
                if !principals::revoke(tx, &org_id, &id)? {
                    return Ok(false);
                }
                audit::record(tx, &keys, &audit)?;
                Ok(true)
            })
            .await
    }

    async fn revoke_credential(&self, token_hash: [u8; 32], audit: AuditEvent) -> Result<()> {
        let keys = self.keys.clone();
        self.store
            .write(move |tx| {
                principals::revoke_token(tx, &token_hash)?;
                audit::record(tx, &keys, &audit)
            })
            .await
    }

    async fn revoke_support(&self, support_id: &str, audit: AuditEvent) -> Result<bool> {
        let keys = self.keys.clone();
        let id = support_id.to_owned();
        self.store
            .write(move |tx| {
                if !principals::revoke_support(tx, &id)? {
                    return Ok(false);
                }
                audit::record(tx, &keys, &audit)?;
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
        let keys = self.keys.clone();
        self.store
            .write(move |tx| audit::record(tx, &keys, &event))
            .await
    }

    async fn audit_log(&self, org_id: &str, after_id: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        let org_id = org_id.to_owned();
        self.store
            .read(move |c| audit::list(c, Some(&org_id), after_id, limit))
            .await
    }

    async fn audit_about(&self, org_id: &str, targets: Vec<String>) -> Result<Vec<AuditEntry>> {
        let org_id = org_id.to_owned();
        self.store
            .read(move |c| audit::about(c, &org_id, &targets))
            .await
    }

    async fn publish(&self, org_id: &str, form_id: &str, plan: PublishPlan) -> Result<Published> {
        let keys = self.keys.clone();
        let (org_id, form_id) = (org_id.to_owned(), form_id.to_owned());
        self.store
            .write(move |tx| {
                let head = surveys::head(tx, &org_id, &form_id)?;
                let write = match plan(head)? {
                    Publication::New(write) => write,
                    Publication::Unchanged(published) => return Ok(published),
                };
                surveys::write_version(tx, &org_id, &form_id, &write)?;
                audit::record(tx, &keys, &write.audit)?;
                Ok(Published {
                    survey_id: Uuid::parse_str(&write.survey_id)
                        .map_err(|e| StorageError::Corrupt(e.to_string()))?,
                    form_id,
                    version: write.version,
                    label: write.label.clone(),
                    unchanged: false,
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
        self.write_audited_if(audit, move |tx| {
            surveys::set_status(tx, &org_id, &id, status)
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
        let keys = self.keys.clone();
        let (org_id, id, enumerator) = (
            org_id.to_owned(),
            survey_id.to_owned(),
            enumerator_id.to_owned(),
        );
        self.store
            .write(move |tx| {
                surveys::assign(tx, &org_id, &id, &enumerator)?;
                audit::record(tx, &keys, &audit)
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

    async fn queued_material(
        &self,
        limit: u32,
        busy: &HashSet<String>,
    ) -> Result<Vec<(Queued, Option<DocMaterial>)>> {
        let keys = self.keys.clone();
        let busy = busy.clone();
        self.store
            .read(move |c| {
                // Busy documents are still queued until their round settles: read past them.
                let more = u32::try_from(busy.len()).unwrap_or(u32::MAX);
                let queued = responses::queued(c, limit.saturating_add(more))?;
                let mut out = Vec::with_capacity(queued.len());
                let free = queued.into_iter().filter(|q| !busy.contains(&q.doc_id));
                for item in free.take(limit as usize) {
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

    async fn count_responses(
        &self,
        org_id: &str,
        survey_id: &str,
        statuses: Vec<Status>,
    ) -> Result<u64> {
        let (org_id, id) = (org_id.to_owned(), survey_id.to_owned());
        self.store
            .read(move |c| responses::count(c, &org_id, &id, &statuses))
            .await
    }

    async fn subject_responses(
        &self,
        org_id: &str,
        subjects: Vec<[u8; 32]>,
        survey_id: Option<String>,
    ) -> Result<Vec<SubjectResponse>> {
        let org_id = org_id.to_owned();
        self.store
            .read(move |c| rights::subject_responses(c, &org_id, &subjects, survey_id.as_deref()))
            .await
    }

    async fn erase(
        &self,
        org_id: &str,
        doc_ids: Vec<String>,
        cause: ErasureCause,
        audit: AuditEvent,
    ) -> Result<Vec<String>> {
        let keys = self.keys.clone();
        let org_id = org_id.to_owned();
        let erased = self
            .store
            .write(move |tx| {
                let erased = rights::erase(tx, &org_id, &doc_ids, cause)?;
                audit::record(tx, &keys, &audit)?;
                Ok::<_, StorageError>(erased)
            })
            .await?;
        for id in &erased {
            self.keys.forget_doc(id);
        }
        if erased.is_empty() {
            return Ok(erased);
        }
        self.scrub_log().await?;
        Ok(erased)
    }

    async fn erased(&self, after: &str, limit: u32) -> Result<Vec<ErasedRecord>> {
        let after = after.to_owned();
        self.store
            .read(move |c| rights::erased_page(c, &after, limit))
            .await
    }

    async fn set_restricted(
        &self,
        org_id: &str,
        doc_ids: Vec<String>,
        restricted: bool,
        audit: AuditEvent,
    ) -> Result<Vec<String>> {
        let keys = self.keys.clone();
        let org_id = org_id.to_owned();
        self.store
            .write(move |tx| {
                let changed = rights::set_restricted(tx, &org_id, &doc_ids, restricted)?;
                audit::record(tx, &keys, &audit)?;
                Ok(changed)
            })
            .await
    }

    async fn set_do_not_contact(
        &self,
        org_id: &str,
        subject: [u8; 32],
        listed: bool,
        audit: AuditEvent,
    ) -> Result<bool> {
        let org_id = org_id.to_owned();
        self.write_audited_if(audit, move |tx| {
            rights::set_do_not_contact(tx, &org_id, &subject, listed)
        })
        .await
    }

    async fn do_not_contact(&self, org_id: &str, subjects: Vec<[u8; 32]>) -> Result<Vec<[u8; 32]>> {
        let org_id = org_id.to_owned();
        self.store
            .read(move |c| rights::do_not_contact(c, &org_id, &subjects))
            .await
    }

    async fn set_retention(
        &self,
        org_id: &str,
        survey_id: &str,
        retention_ms: Option<i64>,
        audit: AuditEvent,
    ) -> Result<bool> {
        let (org_id, id) = (org_id.to_owned(), survey_id.to_owned());
        self.write_audited_if(audit, move |tx| {
            rights::set_retention(tx, &org_id, &id, retention_ms)
        })
        .await
    }

    async fn expired(&self, now: i64, limit: u32) -> Result<Vec<Expired>> {
        self.store
            .read(move |c| rights::expired(c, now, limit))
            .await
    }

    async fn audit_chain(
        &self,
        org_id: Option<&str>,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let org_id = owned(org_id);
        self.store
            .read(move |c| audit::list(c, org_id.as_deref(), after_id, limit))
            .await
    }

    async fn audit_head(&self, org_id: Option<&str>) -> Result<Option<AuditHead>> {
        let chain = crate::storage::chain_of(org_id).to_owned();
        self.store
            .read(move |c| rights::audit_head(c, &chain))
            .await
    }
}
