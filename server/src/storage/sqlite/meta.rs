//! The database's own facts in `meta` that a restore or a key rotation changes: its
//! incarnation, the operator audit chain's wrapped seed, the master key's check value, and the
//! relay counter cursors count.

use super::backend::Sqlite;
use crate::storage::Result;

impl Sqlite {
    pub(super) async fn meta_incarnation(&self, candidate: &str, replace: bool) -> Result<String> {
        let candidate = candidate.to_owned();
        self.store
            .write(move |tx| {
                let sql = if replace {
                    "INSERT INTO meta (key, value) VALUES ('incarnation', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                } else {
                    "INSERT INTO meta (key, value) VALUES ('incarnation', ?1)
                     ON CONFLICT (key) DO NOTHING"
                };
                tx.execute(sql, [&candidate])?;
                Ok(tx.query_row(
                    "SELECT value FROM meta WHERE key = 'incarnation'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
    }

    pub(super) async fn meta_operator_audit_key(&self) -> Result<Option<Vec<u8>>> {
        self.store
            .read(|c| {
                use rusqlite::OptionalExtension;
                let hex: Option<String> = c
                    .prepare_cached("SELECT value FROM meta WHERE key = 'operator_audit_key'")?
                    .query_row([], |r| r.get(0))
                    .optional()?;
                hex.map(|h| super::unhex(&h)).transpose()
            })
            .await
    }

    pub(super) async fn meta_rewrap(&self, rotation: crate::keys::Rotation) -> Result<()> {
        self.store
            .write(move |tx| {
                let mut org =
                    tx.prepare_cached("UPDATE orgs SET wrapped_key = ?2 WHERE id = ?1")?;
                for (id, wrapped) in &rotation.orgs {
                    org.execute(rusqlite::params![id, wrapped])?;
                }
                let mut meta = tx.prepare_cached(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )?;
                meta.execute(["master_key_check", &super::hex(&rotation.check)])?;
                meta.execute(["operator_audit_key", &super::hex(&rotation.operator_audit)])?;
                Ok(())
            })
            .await
    }

    pub(super) async fn meta_relay_counter(&self) -> Result<i64> {
        self.store
            .read(|c| {
                Ok(
                    c.prepare_cached("SELECT value FROM counters WHERE name = 'relay'")?
                        .query_row([], |r| r.get(0))?,
                )
            })
            .await
    }
}
