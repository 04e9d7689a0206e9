//! The device's encrypted local store: one SQLite database per client home.
//!
//! Every payload (survey documents, response documents, unacknowledged changes, the account
//! and its token) is sealed with the store key, which exists on disk only wrapped by a key
//! derived from the user's passphrase. The database runs in WAL mode with `synchronous=FULL`,
//! and every user-visible operation is one transaction, so a client killed at any moment keeps
//! everything it reported as saved.
//!
//! Responses are kept as saved Automerge documents (the current merged state) plus an outbox of
//! raw changes the server has not acknowledged; a sync pushes the outbox and merges what the
//! server sends back.

mod batch;
mod media;
mod responses;
mod restart;
mod surveys;
mod sync;

pub use batch::{Committed, CreateBatch, Prepared, import_id};
pub use media::{Attached, MediaBacklog, MediaUpload};
pub use responses::{Discarded, LocalResponse, ResponseFilter, ResponseRow};
pub use surveys::LocalSurvey;
pub use sync::{Acknowledged, OutboxDoc, PullApplied, StatusReport, SurveyArrival};

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fieldsync_protocol::api::Role;
use fieldsync_protocol::crypto::{
    Binding, Cipher, CryptoError, KeyId, PassphraseSlot, Purpose, Sealed, SecretKey,
};
use fieldsync_protocol::survey::Survey;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const SCHEMA: &str = include_str!("schema.sql");
/// Upgrades, in order: entry `i` takes a store from version `i + 1` to `i + 2`, in the same
/// transaction as the version bump.
const MIGRATIONS: &[&str] = &[
    // 2: responses restricted on the server (no edits until lifted).
    "ALTER TABLE docs ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;",
    // 3: attachments (see `media.rs`): one row per file, its chunks sealed with its own key.
    "CREATE TABLE media (
         name        TEXT PRIMARY KEY,
         doc_id      TEXT,
         question    TEXT NOT NULL,
         media_type  TEXT NOT NULL,
         size        INTEGER NOT NULL,
         chunks      INTEGER NOT NULL,
         wrapped_key BLOB NOT NULL,
         digest      BLOB NOT NULL,
         sent        INTEGER NOT NULL,
         uploaded    INTEGER NOT NULL DEFAULT 0,
         failed      TEXT,
         added_at    INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX media_doc ON media(doc_id);
     CREATE TABLE media_chunks (
         name TEXT NOT NULL,
         idx  INTEGER NOT NULL,
         data BLOB NOT NULL,
         PRIMARY KEY (name, idx)
     ) STRICT;",
];
const SCHEMA_VERSION: &str = "3";
const DB_FILE: &str = "fieldsync.sqlite";
const STORE_KEY_ID: KeyId = KeyId(1);

/// Errors of the local store. Messages say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no fieldsync store in {0}; run `fieldsync enroll` or `fieldsync login` first")]
    Missing(PathBuf),
    #[error("a fieldsync store already exists in {0}; use another --home or remove it first")]
    Exists(PathBuf),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("local database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create the client home {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "this client is not enrolled or logged in; run `fieldsync enroll` or `fieldsync login`"
    )]
    NotLoggedIn,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the local store is damaged: {0}; restore the client home from a backup")]
    Corrupt(String),
    #[error("the store was written by a newer fieldsync (schema {0}); upgrade this program")]
    NewerSchema(String),
}

/// Who this client is on which server. Sealed in the store, since it holds the bearer token;
/// `Debug` leaves the token out.
#[derive(Clone, Serialize, Deserialize)]
pub struct Account {
    pub server: String,
    pub token: String,
    pub org_id: Uuid,
    pub org_name: String,
    pub principal_id: Uuid,
    pub name: String,
    pub role: Role,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("server", &self.server)
            .field("token", &"***")
            .field("org_id", &self.org_id)
            .field("principal_id", &self.principal_id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Which server, organisation and member a home is bound to (kept across logouts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct HomeBinding {
    server: String,
    org_id: Uuid,
    principal_id: Uuid,
}

/// An open, unlocked store.
/// How a store is unlocked.
pub enum Unlock<'a> {
    /// The passphrase (the key is derived from it: about 0.3 s).
    Passphrase(&'a str),
    /// The key itself, from an unlock agent.
    Key(SecretKey),
}

impl std::fmt::Debug for Unlock<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unlock::Passphrase(_) => "Unlock::Passphrase(***)",
            Unlock::Key(_) => "Unlock::Key(***)",
        })
    }
}

pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) cipher: Cipher,
    /// The store key, for an unlock that lasts ([`Store::key`]).
    key: SecretKey,
    store_id: String,
    actor: Vec<u8>,
    pub(crate) account: Option<Account>,
    survey_cache: RefCell<HashMap<(String, u32), Arc<Survey>>>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("store_id", &self.store_id)
            .finish_non_exhaustive()
    }
}

/// The database file of a client home.
pub fn database_path(home: &Path) -> PathBuf {
    home.join(DB_FILE)
}

/// Whether a store exists in `home`.
pub fn exists(home: &Path) -> bool {
    database_path(home).exists()
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted content is overwritten with zeros: an erased response leaves nothing in free
    // pages (the write-ahead log is checkpointed after an erasure, see `store::sync`).
    conn.pragma_update(None, "secure_delete", "ON")?;
    // A larger page cache than SQLite's 2 MiB default: a sync touches many pages.
    conn.pragma_update(None, "cache_size", -16 * 1024)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Bring an older store's schema up to this build's, in place.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found = meta_get(conn, "schema_version")?
        .ok_or_else(|| StoreError::Corrupt("no schema version".into()))?;
    let found = String::from_utf8_lossy(&found).into_owned();
    let current: usize = SCHEMA_VERSION.parse().unwrap_or(1);
    let mut version = match found.parse::<usize>() {
        Ok(v) if (1..=current).contains(&v) => v,
        _ => return Err(StoreError::NewerSchema(found)),
    };
    if version == current {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    while version < current {
        tx.execute_batch(MIGRATIONS[version - 1])?;
        version += 1;
    }
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
        [version.to_string().into_bytes()],
    )?;
    tx.commit()?;
    Ok(())
}

fn slot_binding(store_id: &str) -> Binding<'_> {
    Binding::new(Purpose::StoreKey, store_id, store_id, 0, STORE_KEY_ID)
}

impl Store {
    /// Create a new store in `home`, protected by `passphrase`.
    pub fn create(home: &Path, passphrase: &str) -> Result<Store, StoreError> {
        let path = database_path(home);
        if path.exists() {
            return Err(StoreError::Exists(home.to_owned()));
        }
        std::fs::create_dir_all(home).map_err(|source| StoreError::Io {
            path: home.to_owned(),
            source,
        })?;
        restrict_dir(home);
        let store_id = Uuid::new_v4().to_string();
        let key = SecretKey::generate()?;
        let slot = PassphraseSlot::create(passphrase, &key, &slot_binding(&store_id))?;
        let slot_json =
            serde_json::to_vec(&slot).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let actor = Uuid::new_v4().into_bytes().to_vec();
        let mut conn = open_connection(&path)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        for m in MIGRATIONS {
            tx.execute_batch(m)?;
        }
        for (k, v) in [
            ("schema_version", SCHEMA_VERSION.as_bytes().to_vec()),
            ("store_id", store_id.as_bytes().to_vec()),
            ("slot", slot_json),
            ("actor", actor.clone()),
            ("cursor", b"0".to_vec()),
        ] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![k, v],
            )?;
        }
        tx.commit()?;
        Ok(Store {
            conn,
            cipher: Cipher::new(&key)?,
            key,
            store_id,
            actor,
            account: None,
            survey_cache: RefCell::new(HashMap::new()),
            path,
        })
    }

    /// Open and unlock the store in `home`.
    pub fn open(home: &Path, passphrase: &str) -> Result<Store, StoreError> {
        Store::open_unlocked(home, Unlock::Passphrase(passphrase))
    }

    /// The store's id, read without unlocking it: what an unlock agent is bound to.
    pub fn id_of(home: &Path) -> Result<String, StoreError> {
        let path = database_path(home);
        if !path.exists() {
            return Err(StoreError::Missing(home.to_owned()));
        }
        let conn = open_connection(&path)?;
        String::from_utf8(
            meta_get(&conn, "store_id")?
                .ok_or_else(|| StoreError::Corrupt("no store id".into()))?,
        )
        .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// The store's id.
    pub fn id(&self) -> &str {
        &self.store_id
    }

    /// The store key, to hand to an unlock agent so that later commands skip the passphrase
    /// derivation.
    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    /// Open the store in `home` with its passphrase, or with its key as an unlock agent
    /// holds it.
    pub fn open_unlocked(home: &Path, unlock: Unlock<'_>) -> Result<Store, StoreError> {
        let path = database_path(home);
        if !path.exists() {
            return Err(StoreError::Missing(home.to_owned()));
        }
        let mut conn = open_connection(&path)?;
        migrate(&mut conn)?;
        let store_id = String::from_utf8(
            meta_get(&conn, "store_id")?
                .ok_or_else(|| StoreError::Corrupt("no store id".into()))?,
        )
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let slot: PassphraseSlot = serde_json::from_slice(
            &meta_get(&conn, "slot")?.ok_or_else(|| StoreError::Corrupt("no key slot".into()))?,
        )
        .map_err(|e| StoreError::Corrupt(format!("key slot: {e}")))?;
        let key = match unlock {
            Unlock::Passphrase(passphrase) => slot.open(passphrase, &slot_binding(&store_id))?,
            Unlock::Key(key) => key,
        };
        let actor =
            meta_get(&conn, "actor")?.ok_or_else(|| StoreError::Corrupt("no actor id".into()))?;
        let mut store = Store {
            conn,
            cipher: Cipher::new(&key)?,
            key,
            store_id,
            actor,
            account: None,
            survey_cache: RefCell::new(HashMap::new()),
            path,
        };
        store.account = store.load_account()?;
        if store.meta("wal_scrub_pending")?.is_some() {
            store.forget_deleted()?;
        }
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This install's Automerge actor id.
    pub fn actor(&self) -> &[u8] {
        &self.actor
    }

    /// The account this store is logged in with.
    pub fn account(&self) -> Option<&Account> {
        self.account.as_ref()
    }

    /// The account, or an error telling the user to log in.
    pub fn require_account(&self) -> Result<&Account, StoreError> {
        self.account.as_ref().ok_or(StoreError::NotLoggedIn)
    }

    /// Check before spending a one-time secret that a home holding data is not about to be
    /// pointed at another server (the organisation is only known after the login).
    pub fn may_bind_to(&self, server: &str) -> Result<(), StoreError> {
        let Some(sealed) = self.meta("binding")? else {
            return Ok(());
        };
        let plain = self.open_sealed(Purpose::Snapshot, "binding", 0, &sealed)?;
        let prev: HomeBinding = serde_json::from_slice(&plain)
            .map_err(|e| StoreError::Corrupt(format!("binding: {e}")))?;
        let held: i64 = self.conn.query_row(
            "SELECT (SELECT count(*) FROM docs) + (SELECT count(*) FROM surveys)",
            [],
            |r| r.get(0),
        )?;
        if prev.server != server.trim_end_matches('/') && held > 0 {
            return Err(StoreError::Invalid(format!(
                "this client home holds data from {}; use another --home for {server}",
                prev.server
            )));
        }
        Ok(())
    }

    /// Remember the account (after enroll or login).
    ///
    /// A home belongs to one organisation on one server for its whole life: the pull cursor and
    /// every stored response are that organisation's. Logging in elsewhere is refused while
    /// the home holds data; a different member of the same organisation starts pulling from
    /// the beginning, since what it may see differs.
    pub fn set_account(&mut self, account: Account) -> Result<(), StoreError> {
        let binding = HomeBinding {
            server: account.server.clone(),
            org_id: account.org_id,
            principal_id: account.principal_id,
        };
        let previous: Option<HomeBinding> = match self.meta("binding")? {
            Some(sealed) => {
                let plain = self.open_sealed(Purpose::Snapshot, "binding", 0, &sealed)?;
                Some(
                    serde_json::from_slice(&plain)
                        .map_err(|e| StoreError::Corrupt(format!("binding: {e}")))?,
                )
            }
            None => None,
        };
        let tx = self.immediate()?;
        if let Some(prev) = &previous {
            if prev.server != binding.server || prev.org_id != binding.org_id {
                let held: i64 = tx.query_row(
                    "SELECT (SELECT count(*) FROM docs) + (SELECT count(*) FROM surveys)",
                    [],
                    |r| r.get(0),
                )?;
                if held > 0 {
                    return Err(StoreError::Invalid(format!(
                        "this client home holds data of another organisation or server ({}); use another --home for {} on {}",
                        prev.server, account.org_name, account.server
                    )));
                }
            }
            if prev != &binding {
                // What the new member may see differs: pull it from the start. (`meta` holds
                // blobs; the cursor is its decimal digits, as `cursor` reads it.)
                tx.execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'cursor'",
                    [b"0".as_slice()],
                )?;
            }
        }
        let plain = serde_json::to_vec(&binding).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sealed_binding = self.seal(Purpose::Snapshot, "binding", 0, &plain)?;
        let plain = serde_json::to_vec(&account).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sealed = self.seal(Purpose::Snapshot, "account", 0, &plain)?;
        for (key, value) in [("account", sealed), ("binding", sealed_binding)] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                rusqlite::params![key, value],
            )?;
        }
        tx.execute("DELETE FROM meta WHERE key = 'redeem_attempt'", [])?;
        tx.commit()?;
        self.account = Some(account);
        Ok(())
    }

    /// The attempt id to send with the exchange of `secret` (an enrollment code or login
    /// token): the one kept from an earlier try of the same secret whose answer was lost, or a
    /// new one, kept (sealed) before the request leaves so that a retry sends it again and
    /// the server gives the same session. Forgotten once an account is stored.
    pub fn redeem_attempt(&self, secret: &str) -> Result<String, StoreError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, secret.trim().as_bytes());
        let tag: String = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if let Some(sealed) = self.meta("redeem_attempt")? {
            let plain = self.open_sealed(Purpose::Snapshot, "redeem_attempt", 0, &sealed)?;
            let kept = String::from_utf8_lossy(&plain).into_owned();
            if let Some((t, attempt)) = kept.split_once(':')
                && t == tag
            {
                return Ok(attempt.to_owned());
            }
        }
        let attempt = Uuid::new_v4().simple().to_string();
        let sealed = self.seal(
            Purpose::Snapshot,
            "redeem_attempt",
            0,
            format!("{tag}:{attempt}").as_bytes(),
        )?;
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('redeem_attempt', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [sealed],
        )?;
        Ok(attempt)
    }

    /// Forget the account (its token was revoked or the user logged out); local data stays.
    pub fn clear_account(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM meta WHERE key = 'account'", [])?;
        self.account = None;
        Ok(())
    }

    fn load_account(&self) -> Result<Option<Account>, StoreError> {
        let Some(sealed) = meta_get(&self.conn, "account")? else {
            return Ok(None);
        };
        let plain = self.open_sealed(Purpose::Snapshot, "account", 0, &sealed)?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("account: {e}")))
    }

    /// The label this writer records in the documents it edits.
    pub fn author_label(&self) -> String {
        match &self.account {
            Some(a) => format!("{}:{}", a.role, a.name),
            None => "local".to_owned(),
        }
    }

    /// Seal a payload bound to this store, `what` (a document id, or a row name) and `version`.
    pub(crate) fn seal(
        &self,
        purpose: Purpose,
        what: &str,
        version: u64,
        plain: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let binding = Binding::new(purpose, &self.store_id, what, version, STORE_KEY_ID);
        Ok(self.cipher.seal(&binding, plain)?.to_bytes())
    }

    /// Open a payload sealed by [`Store::seal`] with the same binding.
    pub(crate) fn open_sealed(
        &self,
        purpose: Purpose,
        what: &str,
        version: u64,
        sealed: &[u8],
    ) -> Result<zeroizing::Plain, StoreError> {
        let binding = Binding::new(purpose, &self.store_id, what, version, STORE_KEY_ID);
        let sealed = Sealed::from_bytes(sealed)?;
        Ok(zeroizing::Plain(self.cipher.open_owned(&binding, sealed)?))
    }

    /// Begin a write transaction that takes the database's write lock at once, so whatever it
    /// reads stays current until it commits: another process (a sync beside an interview)
    /// waits instead of writing in between and having its work overwritten.
    pub(crate) fn immediate(&self) -> Result<rusqlite::Transaction<'_>, StoreError> {
        Ok(rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?)
    }

    pub(crate) fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        meta_get(&self.conn, key)
    }

    /// A parsed survey version, cached.
    pub(crate) fn cached_survey(
        &self,
        survey_id: &str,
        version: u32,
    ) -> Result<Arc<Survey>, StoreError> {
        let key = (survey_id.to_owned(), version);
        if let Some(s) = self.survey_cache.borrow().get(&key) {
            return Ok(s.clone());
        }
        let json = self.survey_definition_json(survey_id, version)?;
        let survey = Survey::parse_json(&json)
            .map_err(|e| StoreError::Corrupt(format!("survey {survey_id} v{version}: {e}")))?;
        let survey = Arc::new(survey);
        self.survey_cache.borrow_mut().insert(key, survey.clone());
        Ok(survey)
    }
}

fn meta_get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

/// Keep the client home private to its owner (best effort: the data is encrypted anyway).
fn restrict_dir(home: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700));
}

/// Decrypted bytes that are wiped from memory when dropped.
pub(crate) mod zeroizing {
    use fieldsync_protocol::crypto::Opened;

    #[derive(Debug)]
    pub struct Plain(pub Opened);

    impl std::ops::Deref for Plain {
        type Target = [u8];
        fn deref(&self) -> &[u8] {
            self.0.as_bytes()
        }
    }
}

#[cfg(test)]
mod tests;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Now, in whole seconds (UTC), for `now()` in expressions and the `start`/`end` metadata.
pub fn now_utc() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

static LOCAL_OFFSET: std::sync::OnceLock<time::UtcOffset> = std::sync::OnceLock::new();

/// Read the device's UTC offset (from `TZ` or the system's zone), once, before any thread
/// starts: the time crate declines to read it in a process with several threads, since the C
/// library's reading is not thread-safe. Without it, times are UTC.
pub fn init_local_offset() {
    let offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    let _ = LOCAL_OFFSET.set(offset);
}

/// Now on the device's clock, in its UTC offset (whole seconds): what `now` typed in an
/// interview means.
pub fn now_local() -> time::OffsetDateTime {
    now_utc().to_offset(local_offset())
}

/// The device's UTC offset as [`init_local_offset`] read it (UTC if it was not).
pub fn local_offset() -> time::UtcOffset {
    LOCAL_OFFSET.get().copied().unwrap_or(time::UtcOffset::UTC)
}

/// Today's date (UTC), for `today()` in constraints.
pub fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

/// `f` of every item, on every core, in order. A panic in `f` is an error, not a crash.
pub(crate) fn par_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Result<Vec<R>, StoreError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(workers).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            out.extend(
                h.join()
                    .map_err(|_| StoreError::Invalid("a worker thread panicked".to_owned()))?,
            );
        }
        Ok(out)
    })
}
