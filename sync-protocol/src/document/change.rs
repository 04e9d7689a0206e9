//! Metadata of one raw Automerge change, read without loading a document, because the sync path
//! dedupes and orders changes by hash long before (or instead of) materialising a document.

use automerge::{ActorId, Change, ChangeHash};

use super::DocError;

/// The identity and causal position of one change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeInfo {
    /// The change's hash: its identity, and what later changes name as a dependency.
    pub hash: ChangeHash,
    /// The actor (per-install writer id) that made the change.
    pub actor: ActorId,
    /// The change's position among that actor's changes to this document, from 1.
    pub seq: u64,
    /// The changes this one directly follows.
    pub deps: Vec<ChangeHash>,
}

impl ChangeInfo {
    /// Decodes raw change bytes (as produced by `changes_since`) and returns their metadata.
    ///
    /// This parses the change with Automerge, so it is subject to the same rule as loading a
    /// document: the server calls it only on bytes it produced itself or inside its sandboxed
    /// worker, never on client-supplied bytes in the server process.
    pub fn decode(bytes: &[u8]) -> Result<ChangeInfo, DocError> {
        let change = Change::try_from(bytes).map_err(DocError::BadChange)?;
        Ok(ChangeInfo {
            hash: change.hash(),
            actor: change.actor_id().clone(),
            seq: change.seq(),
            deps: change.deps().to_vec(),
        })
    }
}

/// The map keys a change's operations write (answers, metadata, entries of repeats), each
/// once, in order. Parses the change with Automerge: call it only where
/// [`ChangeInfo::decode`] may be called.
pub fn map_keys(bytes: &[u8]) -> Result<Vec<String>, DocError> {
    let change = Change::try_from(bytes).map_err(DocError::BadChange)?;
    let mut keys: Vec<String> = Vec::new();
    for op in change.decode().operations {
        if let automerge::legacy::Key::Map(k) = op.key
            && !keys.iter().any(|seen| seen == k.as_str())
        {
            keys.push(k.to_string());
        }
    }
    Ok(keys)
}

/// Raw bytes of the changes in `doc` that are not ancestors of `heads` (all changes for an
/// empty `heads`), in an order that applies cleanly (dependencies first).
pub(crate) fn raw_changes_since(
    doc: &mut automerge::AutoCommit,
    heads: &[ChangeHash],
) -> Vec<Vec<u8>> {
    doc.get_changes(heads)
        .iter()
        .map(|change| change.raw_bytes().to_vec())
        .collect()
}

/// Parses raw changes, refusing the whole batch if any one is malformed so that nothing is
/// half-applied.
pub(crate) fn parse_changes<I, B>(changes: I) -> Result<Vec<Change>, DocError>
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    changes
        .into_iter()
        .map(|bytes| Change::try_from(bytes.as_ref()).map_err(DocError::BadChange))
        .collect()
}

/// Commit options for one typed edit: the caller's time, in the whole seconds Automerge's
/// change header is documented to hold (the crate reads no clock).
pub(crate) fn commit_options(now_ms: i64) -> automerge::transaction::CommitOptions {
    automerge::transaction::CommitOptions::default().with_time(now_ms.div_euclid(1000))
}
