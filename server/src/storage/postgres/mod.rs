//! The PostgreSQL backend, for deployments that run several `fieldsync-server` instances on
//! one database (or that want the database their operators already run, back up and
//! replicate). Selected with `serve --database postgres://…`.
//!
//! Connections come from a pool (deadpool); every operation is one transaction, committed
//! before it returns (PostgreSQL's commit is durable with its default `synchronous_commit`).
//! What several instances at once need, and how it is done here:
//! - **Idempotent pushes.** A push locks the rows of its documents (in id order, so two
//!   pushes never deadlock) before it decides anything; the same change pushed to two
//!   instances at once is stored by the first and acknowledged as a duplicate by the second.
//! - **A pull cursor that never skips a change.** Changes are pulled by their *relay* number,
//!   handed out when the materialiser settles them, under the row lock of the one `relay`
//!   counter, which is held until commit: relay numbers therefore commit in order, and a
//!   pull's snapshot always holds a gap-free prefix of them. (The storage sequence `seq` is a
//!   plain sequence; its numbers may commit out of order, and no cursor reads them.)
//! - **Materialisers on every instance.** A materialiser claims queued documents with a lease
//!   (`FOR UPDATE SKIP LOCKED`), so two instances do not check the same document at once;
//!   settling is idempotent, so a lease that runs out costs work, never correctness.
//! - **Migrations** run under an advisory lock, so instances starting together upgrade once.

mod backend;
mod invitations;
mod links;
mod media;
mod meta;
mod redeem;
mod responses;
mod rights;
mod rows;
mod settle;
mod sync;

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::keys::KeyRing;
use crate::storage::StorageError;

/// Upgrades, in order: entry `i` takes a database to version `i + 1`, in the same
/// transaction as the version bump. Never edit a released entry; add a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_schema.sql"),
    include_str!("migrations/0002_respondents_rights.sql"),
    include_str!("migrations/0003_attachments.sql"),
    include_str!("migrations/0004_device_names.sql"),
    include_str!("migrations/0005_links.sql"),
];
/// The version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;
/// The advisory lock key migrations hold ("fieldsyn" in ASCII).
const MIGRATION_LOCK: i64 = 0x6669_656c_6473_796e;
/// Connections per instance.
const POOL_SIZE: usize = 16;

/// A PostgreSQL database; cheap to clone.
#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
    keys: Arc<KeyRing>,
    /// The database, for messages (no password).
    location: String,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl From<tokio_postgres::Error> for StorageError {
    fn from(e: tokio_postgres::Error) -> Self {
        let busy = e.is_closed()
            || matches!(
                e.code(),
                Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::TOO_MANY_CONNECTIONS
                    || *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW
            );
        // The server's own words (`Display` of the error says only "db error").
        let text = match (e.as_db_error(), std::error::Error::source(&e)) {
            (Some(db), _) => format!("{}: {}", db.code().code(), db.message()),
            (None, Some(source)) => format!("{e}: {source}"),
            (None, None) => e.to_string(),
        };
        if busy {
            StorageError::Busy(text)
        } else {
            StorageError::Backend(text)
        }
    }
}

impl From<deadpool_postgres::PoolError> for StorageError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => StorageError::from(e),
            other => StorageError::Busy(format!("no database connection: {other}")),
        }
    }
}

/// Where a URL points, without its password.
fn location(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_default();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

impl Postgres {
    /// Connect to the database at `url` (`postgres://user:password@host:port/dbname`) and
    /// bring its schema up to date.
    pub async fn connect(url: &str, keys: Arc<KeyRing>) -> Result<Postgres, StorageError> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            StorageError::Invalid(format!(
                "--database {:?} is not a PostgreSQL URL ({e}); write postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                redact(url)
            ))
        })?;
        let location = location(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(std::time::Duration::from_secs(10)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| {
                StorageError::Backend(format!("cannot set up the connection pool: {e}"))
            })?;
        let pg = Postgres {
            pool,
            keys,
            location,
        };
        pg.migrate().await.map_err(|e| match e {
            StorageError::Busy(why) | StorageError::Backend(why) => {
                StorageError::Backend(format!("cannot open the database {}: {why}", pg.location))
            }
            other => other,
        })?;
        Ok(pg)
    }

    /// Bring the schema up to date, in one transaction under the migration lock.
    async fn migrate(&self) -> Result<(), StorageError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let has_meta: bool = tx
            .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
            .await?
            .get(0);
        let mut version: u32 = if has_meta {
            let found: String = tx
                .query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])
                .await?
                .get(0);
            match found.parse::<u32>() {
                Ok(v) if (1..=SCHEMA_VERSION).contains(&v) => v,
                _ => {
                    return Err(StorageError::NewerSchema {
                        location: self.location.clone(),
                        found,
                    });
                }
            }
        } else {
            0
        };
        while version < SCHEMA_VERSION {
            tx.batch_execute(MIGRATIONS[version as usize]).await?;
            version += 1;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&version.to_string()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The schema version of the database.
    pub async fn schema_version(&self) -> Result<String, StorageError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])
            .await?
            .get(0))
    }
}

/// A URL with its password replaced, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A `u32` as PostgreSQL's BIGINT (it has no unsigned types).
fn big(n: u32) -> i64 {
    i64::from(n)
}

/// A BIGINT read back as the `u32` it was written from.
fn small(n: i64) -> Result<u32, StorageError> {
    u32::try_from(n).map_err(|_| StorageError::Corrupt(format!("{n} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://fs:secret@db.example:5432/fieldsync"),
            "postgres://fs:***@db.example:5432/fieldsync"
        );
        assert_eq!(redact("postgres://fs@db/x"), "postgres://fs@db/x");
        let config: tokio_postgres::Config = "postgres://fs:secret@db.example:6543/fieldsync"
            .parse()
            .expect("url");
        assert_eq!(location(&config), "postgres://fs@db.example:6543/fieldsync");
    }
}
