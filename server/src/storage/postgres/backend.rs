//! [`Storage`] for [`Postgres`]: organisations, principals, the audit log and surveys here;
//! the sync path in [`super::sync`], the materialiser in [`super::responses`] and
//! [`super::settle`], shared rows and statements in [`super::rows`].

/// A transaction from the pool.
pub(super) type Tx<'a> = deadpool_postgres::Transaction<'a>;

use std::collections::HashSet;

use fieldsync_protocol::api::{MemberInfo, Published, ResponsePage, ResponseView, SurveyInfo};
use fieldsync_protocol::document::Status;
use fieldsync_protocol::wire::{PullResponse, SurveyStatus};

use super::rows::{
    assign, create_principal, insert_credential, member_row, org_row, principal_row, record,
    revoke_credentials_of, status_of, survey_rows, uuid_of,
};
use super::{Postgres, big, small};
use crate::auth::Caller;
use crate::storage::{
    AuditEntry, AuditEvent, AuditHead, DocMaterial, ErasedRecord, ErasureCause, Expired,
    NewCredential, NewOrg, NewPrincipal, Org, OrgListing, Principal, Publication, PublishPlan,
    PullQuery, Pushed, Queued, Redeem, Redeemed, ResponseQuery, Result, Settlement, Storage,
    StorageError, SubjectResponse, Summary, SurveyHead, VerifiedDoc, now_ms,
};

impl Postgres {
    /// Run `f` in a read-only transaction that sees one snapshot.
    pub(super) async fn client(&self) -> Result<deadpool_postgres::Client> {
        Ok(self.pool.get().await?)
    }
}

#[async_trait::async_trait]
impl Storage for Postgres {
    async fn pin_region(&self, region: &str) -> Result<()> {
        self.meta_pin_region(region).await
    }

    async fn pin_master_key(&self, check: Vec<u8>) -> Result<Vec<u8>> {
        self.meta_pin_master_key(check).await
    }

    async fn incarnation(&self, candidate: &str, replace: bool) -> Result<String> {
        self.meta_incarnation(candidate, replace).await
    }

    async fn relay_counter(&self) -> Result<i64> {
        self.meta_relay_counter().await
    }

    async fn operator_audit_key(&self) -> Result<Option<Vec<u8>>> {
        self.meta_operator_audit_key().await
    }

    async fn rewrap(&self, rotation: crate::keys::Rotation) -> Result<()> {
        self.meta_rewrap(rotation).await
    }

    async fn create_org(&self, org: NewOrg, admin: NewPrincipal) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO orgs (id, name, region, support_access, wrapped_key, key_id, created_at)
             VALUES ($1, $2, $3, FALSE, $4, $5, $6)",
            &[
                &org.id,
                &org.name,
                &org.region,
                &org.wrapped_key,
                &big(org.key_id),
                &now_ms(),
            ],
        )
        .await?;
        create_principal(&tx, &admin).await?;
        record(&tx, &self.keys, &org.audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn org(&self, org_id: &str) -> Result<Option<Org>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        org_row(&tx, org_id).await
    }

    async fn orgs(&self) -> Result<Vec<OrgListing>> {
        let client = self.client().await?;
        client
            .query(
                "SELECT o.id, o.name, o.region, o.support_access, o.created_at,
                        (SELECT count(*) FROM principals p
                         WHERE p.org_id = o.id AND p.revoked_at IS NULL)
                 FROM orgs o ORDER BY o.created_at, o.id",
                &[],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(OrgListing {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    region: r.try_get(2)?,
                    support_access: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    active_principals: r.try_get(5)?,
                })
            })
            .collect()
    }

    async fn set_support_access(
        &self,
        org_id: &str,
        enabled: bool,
        audit: AuditEvent,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "UPDATE orgs SET support_access = $2 WHERE id = $1",
            &[&org_id, &enabled],
        )
        .await?;
        record(&tx, &self.keys, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn authenticate(&self, token_hash: [u8; 32]) -> Result<Option<Principal>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT p.id, p.org_id, p.role, p.name FROM credentials c
                 JOIN principals p ON p.id = c.principal_id
                 WHERE c.hash = $1 AND c.kind IN ('session', 'device')
                   AND c.revoked_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > $2)
                   AND p.revoked_at IS NULL",
            )
            .await?;
        client
            .query_opt(&stmt, &[&&token_hash[..], &now_ms()])
            .await?
            .map(|r| principal_row(&r))
            .transpose()
    }

    async fn ready(&self) -> Result<()> {
        self.client().await?.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn redeem(&self, r: Redeem) -> Result<Option<Redeemed>> {
        self.redeem_secret(r).await
    }

    async fn create_principal(&self, new: NewPrincipal) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        create_principal(&tx, &new).await?;
        if let Some(org_id) = &new.org_id {
            for survey in &new.assign {
                assign(&tx, org_id, survey, &new.id).await?;
            }
        }
        if let Some(a) = &new.audit {
            record(&tx, &self.keys, a).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn issue_credential(
        &self,
        principal_id: &str,
        credential: NewCredential,
        audit: AuditEvent,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if credential.kind.is_one_time() {
            tx.execute(
                "UPDATE credentials SET revoked_at = $3
                 WHERE principal_id = $1 AND kind = $2 AND used_at IS NULL AND revoked_at IS NULL",
                &[&principal_id, &credential.kind.as_str(), &now_ms()],
            )
            .await?;
        }
        insert_credential(&tx, principal_id, &credential).await?;
        record(&tx, &self.keys, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn member(&self, org_id: &str, principal_id: &str) -> Result<Option<MemberInfo>> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT id, name, role, created_at, revoked_at, device_name FROM principals
                 WHERE org_id = $1 AND id = $2",
                &[&org_id, &principal_id],
            )
            .await?
            .map(|r| member_row(&r))
            .transpose()
    }

    async fn members(&self, org_id: &str) -> Result<Vec<MemberInfo>> {
        let client = self.client().await?;
        client
            .query(
                "SELECT id, name, role, created_at, revoked_at, device_name FROM principals
                 WHERE org_id = $1 ORDER BY created_at, id",
                &[&org_id],
            )
            .await?
            .iter()
            .map(member_row)
            .collect()
    }

    async fn revoke_member(
        &self,
        org_id: &str,
        principal_id: &str,
        audit: AuditEvent,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute(
                "UPDATE principals SET revoked_at = coalesce(revoked_at, $3)
                 WHERE org_id = $1 AND id = $2",
                &[&org_id, &principal_id, &now_ms()],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        revoke_credentials_of(&tx, principal_id).await?;
        record(&tx, &self.keys, &audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn revoke_credential(&self, token_hash: [u8; 32], audit: AuditEvent) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "UPDATE credentials SET revoked_at = coalesce(revoked_at, $2) WHERE hash = $1",
            &[&&token_hash[..], &now_ms()],
        )
        .await?;
        record(&tx, &self.keys, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_support(&self, support_id: &str, audit: AuditEvent) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute(
                "UPDATE principals SET revoked_at = coalesce(revoked_at, $2)
                 WHERE id = $1 AND role = 'support' AND org_id IS NULL",
                &[&support_id, &now_ms()],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        revoke_credentials_of(&tx, support_id).await?;
        record(&tx, &self.keys, &audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn sign_in_failures(&self, client: &str) -> Result<Option<(i64, u32)>> {
        let db = self.client().await?;
        db.query_opt(
            "SELECT window_start, failures FROM login_failures WHERE client = $1",
            &[&client],
        )
        .await?
        .map(|r| Ok((r.try_get(0)?, small(r.try_get(1)?)?)))
        .transpose()
    }

    async fn record_sign_in_failure(&self, client: &str, window_ms: i64) -> Result<()> {
        let mut db = self.client().await?;
        let tx = db.transaction().await?;
        let now = now_ms();
        tx.execute(
            "DELETE FROM login_failures WHERE window_start <= $1",
            &[&(now - window_ms)],
        )
        .await?;
        tx.execute(
            "INSERT INTO login_failures (client, window_start, failures) VALUES ($1, $2, 1)
             ON CONFLICT (client) DO UPDATE SET failures = login_failures.failures + 1",
            &[&client, &now],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_audit(&self, event: AuditEvent) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        record(&tx, &self.keys, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_log(&self, org_id: &str, after_id: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        self.chain_page(Some(org_id), after_id, limit).await
    }

    async fn audit_about(&self, org_id: &str, targets: Vec<String>) -> Result<Vec<AuditEntry>> {
        self.entries_about(org_id, &targets).await
    }

    async fn publish(&self, org_id: &str, form_id: &str, plan: PublishPlan) -> Result<Published> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // One publication of a form at a time, across instances: the second waits here and
        // then sees the first's version (a new statement sees what committed before it).
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))",
            &[&org_id, &form_id],
        )
        .await?;
        let head = tx
            .query_opt(
                "SELECT id, latest_version, status, doc FROM surveys
                 WHERE org_id = $1 AND form_id = $2 FOR UPDATE",
                &[&org_id, &form_id],
            )
            .await?
            .map(|r| {
                Ok::<_, StorageError>(SurveyHead {
                    id: r.try_get(0)?,
                    latest_version: small(r.try_get(1)?)?,
                    status: status_of(r.try_get(2)?)?,
                    doc: r.try_get(3)?,
                })
            })
            .transpose()?;
        let w = match plan(head)? {
            Publication::New(w) => w,
            Publication::Unchanged(published) => {
                tx.commit().await?;
                return Ok(published);
            }
        };
        if w.version == 1 {
            tx.execute(
                "INSERT INTO surveys (id, org_id, form_id, title, status, latest_version, doc, created_at)
                 VALUES ($1, $2, $3, $4, 'open', 1, $5, $6)",
                &[&w.survey_id, &org_id, &form_id, &w.title, &w.doc, &w.published_at],
            )
            .await?;
        } else {
            tx.execute(
                "UPDATE surveys SET latest_version = $3, title = $4, doc = $5
                 WHERE id = $1 AND org_id = $2",
                &[&w.survey_id, &org_id, &big(w.version), &w.title, &w.doc],
            )
            .await?;
        }
        tx.execute(
            "INSERT INTO survey_versions (survey_id, version, definition, published_at, published_by)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &w.survey_id,
                &big(w.version),
                &w.definition,
                &w.published_at,
                &w.published_by,
            ],
        )
        .await?;
        record(&tx, &self.keys, &w.audit).await?;
        tx.commit().await?;
        Ok(Published {
            survey_id: uuid_of(&w.survey_id)?,
            form_id: form_id.to_owned(),
            version: w.version,
            label: w.label.clone(),
            unchanged: false,
        })
    }

    async fn surveys(&self, org_id: &str, enumerator: Option<&str>) -> Result<Vec<SurveyInfo>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        survey_rows(&tx, org_id, None, enumerator).await
    }

    async fn survey(
        &self,
        org_id: &str,
        survey_id: &str,
        enumerator: Option<&str>,
    ) -> Result<Option<SurveyInfo>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        Ok(survey_rows(&tx, org_id, Some(survey_id), enumerator)
            .await?
            .pop())
    }

    async fn survey_version(
        &self,
        org_id: &str,
        survey_id: &str,
        version: u32,
    ) -> Result<Option<(String, i64)>> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT v.definition, v.published_at FROM survey_versions v
                 JOIN surveys s ON s.id = v.survey_id
                 WHERE s.org_id = $1 AND v.survey_id = $2 AND v.version = $3",
                &[&org_id, &survey_id, &big(version)],
            )
            .await?
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
    }

    async fn survey_definitions(&self, org_id: &str, survey_id: &str) -> Result<Vec<String>> {
        let client = self.client().await?;
        client
            .query(
                "SELECT v.definition FROM survey_versions v JOIN surveys s ON s.id = v.survey_id
                 WHERE s.org_id = $1 AND v.survey_id = $2 ORDER BY v.version",
                &[&org_id, &survey_id],
            )
            .await?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
    }

    async fn set_survey_status(
        &self,
        org_id: &str,
        survey_id: &str,
        status: SurveyStatus,
        audit: AuditEvent,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute(
                "UPDATE surveys SET status = $3 WHERE org_id = $1 AND id = $2",
                &[&org_id, &survey_id, &status.as_str()],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        record(&tx, &self.keys, &audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn assign(
        &self,
        org_id: &str,
        survey_id: &str,
        enumerator_id: &str,
        audit: AuditEvent,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        assign(&tx, org_id, survey_id, enumerator_id).await?;
        record(&tx, &self.keys, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn push(&self, pusher: Caller, docs: Vec<VerifiedDoc>) -> Result<Pushed> {
        self.push_batch(&pusher, &docs).await
    }

    async fn pull(&self, query: PullQuery) -> Result<PullResponse> {
        self.pull_page(&query).await
    }

    async fn unchecked_for(&self, caller: &Caller) -> Result<bool> {
        self.any_unchecked_for(caller).await
    }

    async fn queued_material(
        &self,
        limit: u32,
        _busy: &HashSet<String>,
    ) -> Result<Vec<(Queued, Option<DocMaterial>)>> {
        // A busy document is still claimed (its lease outlives a round), so it is not
        // claimed again.
        self.claim_queued(limit).await
    }

    async fn settle(&self, settled: Vec<Settlement>) -> Result<()> {
        self.settle_all(&settled).await
    }

    async fn responses(&self, query: ResponseQuery) -> Result<ResponsePage> {
        self.list_responses(&query).await
    }

    async fn response(
        &self,
        org_id: &str,
        doc_id: &str,
        owner: Option<&str>,
    ) -> Result<Option<Summary>> {
        self.one_response(org_id, doc_id, owner).await
    }

    async fn export_page(
        &self,
        org_id: &str,
        survey_id: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ResponseView>> {
        self.export_rows(org_id, survey_id, after, limit).await
    }

    async fn pending(&self, org_id: &str, survey_id: &str) -> Result<u64> {
        self.pending_count(org_id, survey_id).await
    }

    async fn count_responses(
        &self,
        org_id: &str,
        survey_id: &str,
        statuses: Vec<Status>,
    ) -> Result<u64> {
        self.status_count(org_id, survey_id, &statuses).await
    }

    async fn subject_responses(
        &self,
        org_id: &str,
        subjects: Vec<[u8; 32]>,
        survey_id: Option<String>,
    ) -> Result<Vec<SubjectResponse>> {
        self.subject_rows(org_id, &subjects, survey_id.as_deref())
            .await
    }

    async fn erase(
        &self,
        org_id: &str,
        doc_ids: Vec<String>,
        cause: ErasureCause,
        audit: AuditEvent,
    ) -> Result<Vec<String>> {
        self.erase_docs(org_id, &doc_ids, cause, &audit).await
    }

    async fn erased(&self, after: &str, limit: u32) -> Result<Vec<ErasedRecord>> {
        self.erased_page(after, limit).await
    }

    async fn set_restricted(
        &self,
        org_id: &str,
        doc_ids: Vec<String>,
        restricted: bool,
        audit: AuditEvent,
    ) -> Result<Vec<String>> {
        self.restrict_docs(org_id, &doc_ids, restricted, &audit)
            .await
    }

    async fn set_do_not_contact(
        &self,
        org_id: &str,
        subject: [u8; 32],
        listed: bool,
        audit: AuditEvent,
    ) -> Result<bool> {
        self.list_do_not_contact(org_id, subject, listed, &audit)
            .await
    }

    async fn do_not_contact(&self, org_id: &str, subjects: Vec<[u8; 32]>) -> Result<Vec<[u8; 32]>> {
        self.listed_do_not_contact(org_id, &subjects).await
    }

    async fn set_retention(
        &self,
        org_id: &str,
        survey_id: &str,
        retention_ms: Option<i64>,
        audit: AuditEvent,
    ) -> Result<bool> {
        self.retention(org_id, survey_id, retention_ms, &audit)
            .await
    }

    async fn expired(&self, now: i64, limit: u32) -> Result<Vec<Expired>> {
        self.expired_rows(now, limit).await
    }

    async fn audit_chain(
        &self,
        org_id: Option<&str>,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        self.chain_page(org_id, after_id, limit).await
    }

    async fn audit_head(&self, org_id: Option<&str>) -> Result<Option<AuditHead>> {
        self.chain_head(org_id).await
    }
}
