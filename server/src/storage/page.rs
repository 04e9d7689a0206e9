//! What both backends share when they read changes back: opening a sealed change, and
//! assembling a pull page from rows in relay order (grouped by document, bounded in changes
//! and bytes, with the cursor rule).

use std::collections::HashMap;

use fieldsync_protocol::crypto::{Cipher, Sealed};
use fieldsync_protocol::wire::{
    DocChanges, DocKind, DocNotice, NoticeKind, PROTOCOL_VERSION, PullResponse, RefusedChange,
    SurveyState, SurveyUpdate,
};
use serde_bytes::ByteBuf;
use uuid::Uuid;

use super::{Result, StorageError};
use crate::keys::{KeyRing, change_binding};

/// Decrypt one stored change of a document (`wrapped`: its document key as stored).
pub(crate) fn open_change(
    keys: &KeyRing,
    org: &Cipher,
    org_id: &str,
    doc_id: &str,
    wrapped: &[u8],
    seq: i64,
    payload: &[u8],
) -> Result<Vec<u8>> {
    let sealed = Sealed::from_bytes(payload).map_err(|e| StorageError::Corrupt(e.to_string()))?;
    let cipher = keys
        .doc_cipher(org, org_id, doc_id, wrapped)
        .map_err(|e| StorageError::Corrupt(e.to_string()))?;
    let plain = cipher
        .open_owned(&change_binding(org_id, doc_id, seq), sealed)
        .map_err(|e| StorageError::Corrupt(format!("change {seq}: {e}")))?;
    Ok(plain.as_bytes().to_vec())
}

/// A pull page being filled from rows in relay order.
pub(crate) struct Page {
    docs: Vec<DocChanges>,
    index: HashMap<Uuid, usize>,
    refused: Vec<RefusedChange>,
    notices: Vec<(i64, DocNotice)>,
    /// Where the page must end because its notices filled it.
    capped: Option<i64>,
    cursor: i64,
    last: i64,
    count: u32,
    bytes: usize,
    limit: u32,
    max_bytes: usize,
}

impl Page {
    /// A page after `cursor` of at most `limit` changes or about `max_bytes` of them.
    pub(crate) fn new(cursor: i64, limit: u32, max_bytes: usize) -> Page {
        Page {
            docs: Vec::new(),
            index: HashMap::new(),
            refused: Vec::new(),
            notices: Vec::new(),
            capped: None,
            cursor,
            last: cursor,
            count: 0,
            bytes: 0,
            limit,
            max_bytes,
        }
    }

    /// The notices after the cursor up to `high` (relay number, doc id, kind as stored), read
    /// in relay order before the changes, at most the page's limit of them. Returns where the
    /// changes read next must stop: at the last notice when they fill the page.
    pub(crate) fn notices(&mut self, high: i64, rows: Vec<(i64, String, String)>) -> Result<i64> {
        let full = rows.len() >= self.limit as usize;
        for (relay, doc_id, kind) in rows {
            let doc_id =
                Uuid::parse_str(&doc_id).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            let kind = match kind.as_str() {
                "erased" => NoticeKind::Erased,
                "restricted" => NoticeKind::Restricted,
                "unrestricted" => NoticeKind::Unrestricted,
                other => return Err(StorageError::Corrupt(format!("notice kind {other:?}"))),
            };
            self.notices.push((relay, DocNotice { doc_id, kind }));
        }
        let end = match self.notices.last() {
            Some((relay, _)) if full => *relay,
            _ => high,
        };
        self.capped = full.then_some(end);
        Ok(end)
    }

    /// A notice of a change of the caller's session that the checks refused, with the reason
    /// stored for it (if one was).
    pub(crate) fn refused(
        &mut self,
        relay: i64,
        doc_id: Uuid,
        hash: Vec<u8>,
        reason: Option<String>,
    ) {
        self.last = relay;
        self.count += 1;
        self.refused.push(RefusedChange {
            doc_id,
            hash: ByteBuf::from(hash),
            reason: reason.unwrap_or_else(|| "the server's checks refused it".to_owned()),
        });
    }

    /// An accepted change; false once the page holds its bytes (read no more rows: pages are
    /// bounded in bytes too, whatever the change count asked for; one larger change still
    /// goes out whole).
    pub(crate) fn change(
        &mut self,
        relay: i64,
        doc_id: Uuid,
        survey_id: Uuid,
        survey_version: u32,
        plain: Vec<u8>,
    ) -> bool {
        self.last = relay;
        self.count += 1;
        let slot = *self.index.entry(doc_id).or_insert_with(|| {
            self.docs.push(DocChanges {
                doc_id,
                kind: DocKind::Response,
                survey_id,
                survey_version,
                changes: Vec::new(),
            });
            self.docs.len() - 1
        });
        self.bytes += plain.len();
        self.docs[slot].changes.push(ByteBuf::from(plain));
        self.bytes < self.max_bytes
    }

    /// The answer, given the high-water mark of the snapshot the rows came from (of changes
    /// and notices). A short page means everything up to the high-water mark (or the last
    /// notice, when notices filled the page) was examined, including rows the caller may not
    /// see, so the next pull starts after all of them. Notices past the page's end come again
    /// with the next page.
    pub(crate) fn finish(
        self,
        high: i64,
        surveys: Vec<SurveyUpdate>,
        survey_states: Vec<SurveyState>,
    ) -> PullResponse {
        let end = self.capped.unwrap_or(high);
        let full = (self.count >= self.limit || self.bytes >= self.max_bytes) && self.last < end;
        let next = if full {
            self.last
        } else {
            end.max(self.cursor)
        };
        let more = next < high;
        let notices = self
            .notices
            .into_iter()
            .filter(|(relay, _)| *relay <= next)
            .map(|(_, n)| n)
            .collect();
        PullResponse {
            protocol: PROTOCOL_VERSION,
            docs: self.docs,
            surveys,
            survey_states,
            cursor: next as u64,
            more,
            refused: self.refused,
            notices,
            epoch: None,
            restarted: false,
        }
    }
}
