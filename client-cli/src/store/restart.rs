//! After the server was restored from a backup: it may lack changes and files it once
//! acknowledged, and this device's cursor means nothing there. The first page of the new
//! start (`restarted`) puts every change of every response this client created back in the
//! outbox with its files back in the upload queue, in the page's transaction; the
//! server keeps what it lacks and counts the rest as duplicates.

use fieldsync_protocol::api::Role;
use rusqlite::Transaction;
use uuid::Uuid;

use super::{Store, StoreError};

impl Store {
    /// The server database the cursor belongs to (its `epoch`), if a pull has told it.
    pub fn epoch(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .meta("epoch")?
            .map(|raw| String::from_utf8_lossy(&raw).into_owned()))
    }

    /// Record the server's epoch in `tx` (with the cursor of the page that brought it).
    pub(super) fn set_epoch(&self, tx: &Transaction<'_>, epoch: &str) -> Result<(), StoreError> {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('epoch', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [epoch.as_bytes()],
        )?;
        Ok(())
    }

    /// Queue again, in `tx`, every change of every response this client created (a device
    /// holds only its own) and every attachment. Returns how many responses were queued.
    ///
    /// A member's store also holds the responses of devices; those are left to the devices.
    /// The server makes whoever first pushes a response it lacks its owner, and a device may
    /// only push to its own responses: pushed from a coordinator's copy first, a response
    /// would be lost to the device that made it, and its later edits refused.
    pub(super) fn queue_everything_again(&self, tx: &Transaction<'_>) -> Result<u64, StoreError> {
        let ids: Vec<String> = tx
            .prepare("SELECT id FROM docs ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let me = self.account().map(|a| (a.role, a.principal_id.to_string()));
        let mut queued = 0;
        for key in ids {
            let id = Uuid::parse_str(&key)
                .map_err(|_| StoreError::Corrupt(format!("response id {key:?} is not a UUID")))?;
            let (mut doc, _) = self.load_doc(&id)?;
            let mine = match &me {
                Some((Role::Enumerator, _)) | None => true,
                Some((_, principal)) => doc.meta().is_ok_and(|m| m.author_device == *principal),
            };
            if !mine {
                continue;
            }
            self.add_outbox(tx, &id, &doc.all_changes())?;
            // Its files too (not those of responses left to their devices).
            tx.prepare_cached(
                "UPDATE media SET sent = 0, uploaded = 0 WHERE doc_id = ?1 AND failed IS NULL",
            )?
            .execute([&key])?;
            queued += 1;
        }
        Ok(queued)
    }
}
