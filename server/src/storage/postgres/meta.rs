//! The database's own facts in `meta`: its region, its master key's check value and its
//! incarnation (new after each restore), and the relay counter that cursors count.

use super::Postgres;
use crate::storage::{Result, StorageError};

impl Postgres {
    pub(super) async fn meta_pin_region(&self, region: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('region', $1) ON CONFLICT (key) DO NOTHING",
            &[&region],
        )
        .await?;
        let pinned: String = tx
            .query_one("SELECT value FROM meta WHERE key = 'region'", &[])
            .await?
            .try_get(0)?;
        tx.commit().await?;
        if pinned != region {
            return Err(StorageError::WrongRegion {
                location: self.location.clone(),
                pinned,
                requested: region.to_owned(),
            });
        }
        Ok(())
    }

    pub(super) async fn meta_pin_master_key(&self, check: Vec<u8>) -> Result<Vec<u8>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('master_key_check', encode($1, 'hex'))
             ON CONFLICT (key) DO NOTHING",
            &[&check],
        )
        .await?;
        let stored: Vec<u8> = tx
            .query_one(
                "SELECT decode(value, 'hex') FROM meta WHERE key = 'master_key_check'",
                &[],
            )
            .await?
            .try_get(0)?;
        tx.commit().await?;
        Ok(stored)
    }

    pub(super) async fn meta_incarnation(&self, candidate: &str, replace: bool) -> Result<String> {
        let client = self.client().await?;
        let sql = if replace {
            "INSERT INTO meta (key, value) VALUES ('incarnation', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value RETURNING value"
        } else {
            "INSERT INTO meta (key, value) VALUES ('incarnation', $1)
             ON CONFLICT (key) DO UPDATE SET value = meta.value RETURNING value"
        };
        Ok(client.query_one(sql, &[&candidate]).await?.try_get(0)?)
    }

    pub(super) async fn meta_relay_counter(&self) -> Result<i64> {
        let client = self.client().await?;
        Ok(client
            .query_one("SELECT value FROM counters WHERE name = 'relay'", &[])
            .await?
            .try_get(0)?)
    }

    pub(super) async fn meta_operator_audit_key(&self) -> Result<Option<Vec<u8>>> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "SELECT decode(value, 'hex') FROM meta WHERE key = 'operator_audit_key'",
                &[],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    pub(super) async fn meta_rewrap(&self, rotation: crate::keys::Rotation) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for (id, wrapped) in &rotation.orgs {
            tx.execute(
                "UPDATE orgs SET wrapped_key = $2 WHERE id = $1",
                &[id, wrapped],
            )
            .await?;
        }
        for (key, value) in [
            ("master_key_check", &rotation.check),
            ("operator_audit_key", &rotation.operator_audit),
        ] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ($1, encode($2, 'hex'))
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, value],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
