//! The embedded SQLite store: one database file in the data directory, opened in WAL mode with
//! `synchronous=FULL` so that a committed transaction survives a crash or power loss.
//!
//! rusqlite is synchronous, so nothing here runs on the async executor. Writes go to one writer
//! thread that owns the only write connection and commits waiting writes in groups
//! ([`writer`]); reads run on tokio's blocking pool on a small pool of reader connections that
//! WAL lets run beside the writer.
//!
//! Query functions live in the submodules, grouped by what they are about; each takes the
//! organisation id and filters on it. [`Sqlite`] implements [`crate::storage::Storage`] over
//! them, one closure per operation.

mod audit;
mod backend;
mod invitations;
mod links;
mod media;
mod meta;
mod orgs;
mod principals;
mod responses;
mod rights;
mod surveys;
mod sync;
mod writer;

pub use backend::Sqlite;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::Semaphore;

use crate::storage::StorageError;

/// The schema as first released (version 1); every database starts from it and then runs the
/// migration chain, so a new database and an upgraded one go through the same steps.
const SCHEMA_V1: &str = include_str!("schema.sql");
/// Upgrades, in order: entry `i` takes a database from version `i + 1` to `i + 2`. Each runs
/// in the same transaction as the version bump, so an interrupted upgrade leaves the old
/// version intact. Never edit a released entry; add a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0002_checked_relay.sql"),
    include_str!("migrations/0003_sign_in_failures.sql"),
    include_str!("migrations/0004_respondents_rights.sql"),
    include_str!("migrations/0005_attachments.sql"),
    include_str!("migrations/0006_device_names.sql"),
    include_str!("migrations/0007_links.sql"),
];
/// The version this build writes.
pub const SCHEMA_VERSION: u32 = 1 + MIGRATIONS.len() as u32;
const MAX_IDLE_READERS: usize = 8;
/// Async reads running at once (see `Inner::read_slots`).
const MAX_READERS: usize = 8;

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(err, _)
                if matches!(
                    err.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                StorageError::Busy(e.to_string())
            }
            _ => StorageError::Backend(e.to_string()),
        }
    }
}

/// The database file and its connections: one writer thread, a pool of readers; cheap to
/// clone.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Jobs for the writer thread (see [`writer`]).
    jobs: std::sync::mpsc::Sender<writer::Job>,
    readers: Mutex<Vec<Connection>>,
    /// Async reads in progress at once: each holds a blocking thread and a connection with its
    /// own page cache, so two hundred devices syncing at once must not mean two hundred of
    /// each.
    read_slots: Arc<Semaphore>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StorageError> {
        let mut writer = open_connection(path, true)?;
        migrate(&mut writer, path)?;
        let jobs = writer::spawn(writer).map_err(|e| {
            StorageError::CommitFailed(format!("cannot start the database writer: {e}"))
        })?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                jobs,
                readers: Mutex::new(Vec::new()),
                read_slots: Arc::new(Semaphore::new(MAX_READERS)),
            }),
        })
    }

    /// Record the instance's region on first use, and refuse any other region afterwards: an
    /// organisation's data, keys and backups stay in the region it was created in.
    pub fn pin_region(&self, region: &str) -> Result<(), StorageError> {
        let path = self.inner.path.clone();
        let region = region.to_owned();
        self.write_blocking(move |tx| {
            let found: Option<String> = tx
                .query_row("SELECT value FROM meta WHERE key = 'region'", [], |r| {
                    r.get(0)
                })
                .optional()?;
            match found {
                None => {
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES ('region', ?1)",
                        [&region],
                    )?;
                    Ok(())
                }
                Some(r) if r == region => Ok(()),
                Some(r) => Err(StorageError::WrongRegion {
                    location: path.display().to_string(),
                    pinned: r,
                    requested: region.to_owned(),
                }),
            }
        })
    }

    /// Record the master key's check value on first use; what is recorded.
    pub fn pin_master_key(&self, check: Vec<u8>) -> Result<Vec<u8>, StorageError> {
        self.write_blocking(move |tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('master_key_check', ?1)
                 ON CONFLICT (key) DO NOTHING",
                [&hex(&check)],
            )?;
            let stored: String = tx.query_row(
                "SELECT value FROM meta WHERE key = 'master_key_check'",
                [],
                |r| r.get(0),
            )?;
            unhex(&stored)
        })
    }

    /// Copy the write-ahead log into the database and empty it (`wal_checkpoint(TRUNCATE)`),
    /// so that what was deleted (and zeroed, `secure_delete`) is not still in the log's older
    /// frames. Retried while readers or the writer hold the log; an error if it never gets
    /// through.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        let conn = Connection::open_with_flags(
            &self.inner.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        for _ in 0..50 {
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if busy == 0 {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(StorageError::Busy(
            "the write-ahead log could not be checkpointed: readers kept it busy".into(),
        ))
    }

    /// Run `f` as one atomic write on the writer thread; the answer comes only after the
    /// transaction holding it has committed durably, and `f`'s writes are kept only if it
    /// returns `Ok`.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = writer::job(f, move |r| {
            let _ = reply.send(r);
        });
        writer::submit(&self.inner.jobs, job).map_err(E::from)?;
        answer
            .await
            .map_err(|_| E::from(StorageError::TaskFailed))?
    }

    /// Run `f` on a reader connection on the blocking pool. `f` sees one consistent snapshot
    /// if it opens a transaction itself.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let inner = self.inner.clone();
        let slot = Arc::clone(&inner.read_slots)
            .acquire_owned()
            .await
            .map_err(|_| E::from(StorageError::TaskFailed))?;
        tokio::task::spawn_blocking(move || {
            let out = inner.read_blocking(f);
            drop(slot);
            out
        })
        .await
        .map_err(|_| E::from(StorageError::TaskFailed))?
    }

    /// Synchronous write, for command-line tools; the same guarantees as [`Store::write`].
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let job = writer::job(f, move |r| {
            let _ = reply.send(r);
        });
        writer::submit(&self.inner.jobs, job).map_err(E::from)?;
        answer
            .recv()
            .map_err(|_| E::from(StorageError::TaskFailed))?
    }
}

impl Inner {
    fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StorageError>,
        F: FnOnce(&mut Connection) -> Result<T, E>,
    {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => open_connection(&self.path, false)?,
        };
        let out = f(&mut conn);
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS && conn.is_autocommit() {
            idle.push(conn);
        }
        out
    }
}

fn open_connection(path: &Path, writer: bool) -> Result<Connection, StorageError> {
    let flags = if writer {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    if writer {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    // FULL: a commit is on disk before we acknowledge it, in WAL mode too.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // What is deleted is overwritten with zeros, not just unlinked: an erased response must
    // not survive in free pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // KiB of page cache, beyond SQLite's 2 MiB default: the writer keeps hot index pages;
    // each reader needs less. (No memory map: its pages would count as the server's own
    // memory once per connection.)
    conn.pragma_update(
        None,
        "cache_size",
        if writer { -32 * 1024 } else { -8 * 1024 },
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StorageError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let has_meta: bool = tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    let mut version: u32 = if has_meta {
        let found: String = tx.query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )?;
        match found.parse::<u32>() {
            Ok(v) if (1..=SCHEMA_VERSION).contains(&v) => v,
            _ => {
                return Err(StorageError::NewerSchema {
                    location: path.display().to_string(),
                    found,
                });
            }
        }
    } else {
        tx.execute_batch(SCHEMA_V1)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', '1')",
            [],
        )?;
        1
    };
    while version < SCHEMA_VERSION {
        tx.execute_batch(MIGRATIONS[version as usize - 1])?;
        version += 1;
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            [version.to_string()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Bytes as lowercase hex, the way `meta` holds binary values.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a `meta` hex value.
fn unhex(text: &str) -> Result<Vec<u8>, StorageError> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| StorageError::Corrupt("a meta value is not hex".into()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        {
            let store = Store::open(&path).expect("open");
            let mode: String = store
                .read(|c| {
                    c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
                        .map_err(StorageError::from)
                })
                .await
                .expect("read");
            assert_eq!(mode, "wal");
        }
        // Reopening an existing database keeps it and does not re-run the schema.
        Store::open(&path).expect("reopen");
    }

    /// A database written by the first release (schema 1) opens and is upgraded in place:
    /// what it relayed keeps its cursor positions, and documents it had found unreadable are
    /// queued to be checked again change by change.
    #[tokio::test]
    async fn a_schema_1_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(SCHEMA_V1).expect("schema 1");
            conn.execute_batch(
                "INSERT INTO meta (key, value) VALUES ('schema_version', '1');
                 INSERT INTO orgs VALUES ('o', 'Org', 'eu-central', 0, x'00', 1, 0);
                 INSERT INTO principals VALUES ('p', 'o', 'admin', 'A', 0, NULL, NULL);
                 INSERT INTO surveys VALUES ('s', 'o', 'f', 'T', 'open', 1, x'00', 0);
                 INSERT INTO docs VALUES ('good', 'o', 's', 1, 'p', x'00', 0);
                 INSERT INTO docs VALUES ('bad', 'o', 's', 1, 'p', x'00', 0);
                 INSERT INTO changes VALUES (1, 'o', 'good', x'01', 'sess', x'00');
                 INSERT INTO changes VALUES (2, 'o', 'bad', x'02', 'sess', x'00');
                 INSERT INTO changes VALUES (3, 'o', 'good', x'03', 'sess', x'00');
                 INSERT INTO response_index VALUES
                    ('bad', 'o', 's', 1, 'unknown', 0, 0, 1, 2, x'00', 0);",
            )
            .expect("schema 1 rows");
        }
        let store = Store::open(&path).expect("open and upgrade");
        type Upgraded = (String, Vec<(i64, i64, Option<i64>)>, i64, Vec<String>);
        let (version, rows, relay, queued): Upgraded = store
            .read(|c| {
                let version = c.query_row(
                    "SELECT value FROM meta WHERE key = 'schema_version'",
                    [],
                    |r| r.get(0),
                )?;
                let rows = c
                    .prepare("SELECT seq, state, relay FROM changes ORDER BY seq")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                let relay =
                    c.query_row("SELECT value FROM counters WHERE name = 'relay'", [], |r| {
                        r.get(0)
                    })?;
                let queued = c
                    .prepare("SELECT doc_id FROM materialize_queue ORDER BY doc_id")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok::<_, StorageError>((version, rows, relay, queued))
            })
            .await
            .expect("read");
        assert_eq!(version, SCHEMA_VERSION.to_string());
        assert_eq!(
            rows,
            vec![(1, 1, Some(1)), (2, 0, None), (3, 1, Some(3))],
            "relayed changes keep their positions; the unreadable document is checked again"
        );
        assert_eq!(relay, 3, "new relay numbers start above every old cursor");
        // Schema 2 queues the unreadable document; schema 4 queues every response once more, so
        // that the subject index holds them.
        assert_eq!(queued, vec!["bad".to_owned(), "good".to_owned()]);
        let seq: i64 = store
            .read(|c| {
                Ok::<_, StorageError>(c.query_row(
                    "SELECT value FROM counters WHERE name = 'seq'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .expect("read");
        assert_eq!(seq, 3, "storage numbers go on after the highest stored");
        drop(store);
        // Opening again changes nothing.
        Store::open(&path).expect("reopen");
    }

    /// Writes committed together in one group stay independent: a failing write is rolled
    /// back alone, and every successful one is kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grouped_writes_fail_and_succeed_independently() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite")).expect("open");
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200u32 {
            let store = store.clone();
            tasks.spawn(async move {
                store
                    .write(move |tx| {
                        tx.execute(
                            "INSERT INTO meta (key, value) VALUES (?1, 'v')",
                            [format!("k{i}")],
                        )?;
                        if i % 3 == 0 {
                            return Err(StorageError::Invalid(format!("write {i} fails")));
                        }
                        Ok(i)
                    })
                    .await
            });
        }
        let mut ok = 0;
        while let Some(r) = tasks.join_next().await {
            match r.expect("task") {
                Ok(i) => {
                    assert_ne!(i % 3, 0);
                    ok += 1;
                }
                Err(StorageError::Invalid(_)) => {}
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        let n: i64 = store
            .read(|c| {
                c.query_row("SELECT count(*) FROM meta WHERE key LIKE 'k%'", [], |r| {
                    r.get(0)
                })
                .map_err(StorageError::from)
            })
            .await
            .expect("read");
        assert_eq!(ok, 133);
        assert_eq!(n, 133, "exactly the successful writes are stored");
    }

    /// A failed write leaves nothing behind even when its savepoint cannot be rolled back (here
    /// a buggy write releases it itself): then the whole group is rolled back and every write
    /// in it is told it failed, so nothing is acknowledged that was not kept, and nothing that
    /// failed is kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_whose_savepoint_cannot_be_undone_takes_its_group_down_not_the_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite")).expect("open");
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..60u32 {
            let store = store.clone();
            tasks.spawn(async move {
                let r = store
                    .write(move |tx| {
                        tx.execute(
                            "INSERT INTO meta (key, value) VALUES (?1, 'v')",
                            [format!("k{i}")],
                        )?;
                        if i % 10 == 0 {
                            // Closes the writer's savepoint, so ROLLBACK TO it fails.
                            tx.execute_batch("RELEASE job")?;
                            return Err(StorageError::Invalid(format!("write {i} fails")));
                        }
                        Ok(())
                    })
                    .await;
                (i, r.is_ok())
            });
        }
        let mut outcomes = Vec::new();
        while let Some(r) = tasks.join_next().await {
            outcomes.push(r.expect("task"));
        }
        let stored: Vec<String> = store
            .read(|c| {
                c.prepare("SELECT key FROM meta WHERE key LIKE 'k%'")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()
                    .map_err(StorageError::from)
            })
            .await
            .expect("read");
        for (i, ok) in outcomes {
            let present = stored.contains(&format!("k{i}"));
            assert_eq!(
                ok, present,
                "write {i}: acknowledged {ok}, stored {present}"
            );
            if i % 10 == 0 {
                assert!(!ok, "write {i} failed");
            }
        }
        // The writer still works.
        store
            .write(|tx| {
                tx.execute("INSERT INTO meta (key, value) VALUES ('after', 'v')", [])?;
                Ok::<_, StorageError>(())
            })
            .await
            .expect("later write");
    }

    #[tokio::test]
    async fn failed_write_rolls_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite")).expect("open");
        let r: Result<(), StorageError> = store
            .write(|tx| {
                tx.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')", [])?;
                Err(StorageError::Invalid("stop".into()))
            })
            .await;
        assert!(r.is_err());
        let n: i64 = store
            .read(|c| {
                c.query_row("SELECT count(*) FROM meta WHERE key = 'x'", [], |r| {
                    r.get(0)
                })
                .map_err(StorageError::from)
            })
            .await
            .expect("read");
        assert_eq!(n, 0);
    }
}
