//! A response's summary, as the index stores it (encrypted), and what both backends derive
//! from it.

use serde::{Deserialize, Serialize};

use super::{Result, StorageError};
use fieldsync_protocol::api::ResponseView;

/// Why a response shows as unreadable after a settlement, if it does: nothing of it is
/// accepted (`readable` is false) and its changes were refused, or wait for changes the
/// server lacks.
pub(crate) fn unreadable_because(readable: bool, first_refusal: Option<String>) -> Option<String> {
    match (readable, first_refusal) {
        (true, _) => None,
        (false, Some(reason)) => Some(format!(
            "nothing readable has been pushed for it; its changes were refused: {reason}"
        )),
        (false, None) => Some(
            "its changes depend on changes the server does not have; the device that made them must sync"
                .to_owned(),
        ),
    }
}

/// How a decrypted summary is decoded: the sync limits, with room for a large response.
pub(crate) fn decode_summary(plain: &[u8]) -> Result<Summary> {
    let limits = fieldsync_protocol::cbor::Limits {
        max_bytes: 64 * 1024 * 1024,
        ..fieldsync_protocol::cbor::Limits::SYNC
    };
    fieldsync_protocol::cbor::decode(plain, &limits)
        .map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// A response's line in a listing, from its summary.
pub(crate) fn list_item(
    doc_id: &str,
    summary: Summary,
) -> Result<fieldsync_protocol::api::ResponseListItem> {
    use fieldsync_protocol::api::ResponseListItem;
    let id = uuid::Uuid::parse_str(doc_id).map_err(|e| StorageError::Corrupt(e.to_string()))?;
    let warnings = summary.warnings();
    Ok(match summary.view {
        Some(v) => ResponseListItem {
            id,
            survey_version: v.survey_version,
            status: v.status,
            valid: v.errors.is_empty() && summary.broken.is_none(),
            errors: v.errors,
            conflicts: v.conflicts.into_iter().map(|c| c.question).collect(),
            broken: summary.broken,
            updated_at: v.updated_at,
            restricted: summary.restricted,
            warnings: warnings.clone(),
        },
        None => ResponseListItem {
            id,
            survey_version: 0,
            status: "unknown".into(),
            valid: false,
            errors: Vec::new(),
            conflicts: Vec::new(),
            broken: summary.broken,
            updated_at: 0,
            restricted: summary.restricted,
            warnings,
        },
    })
}

/// What the index stores (encrypted) about one response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub view: Option<ResponseView>,
    /// Why the document could not be read, when it could not.
    pub broken: Option<String>,
    /// Its processing is restricted (not stored in the summary: the backend sets it from the
    /// document's row when it reads one).
    #[serde(skip)]
    pub restricted: bool,
    /// It names a person on the do-not-contact list (found when it was settled).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub do_not_contact: bool,
}

impl Summary {
    /// What a coordinator should be warned of.
    pub fn warnings(&self) -> Vec<String> {
        if self.do_not_contact {
            vec![fieldsync_protocol::api::DO_NOT_CONTACT_WARNING.to_owned()]
        } else {
            Vec::new()
        }
    }
}
