//! `admin backup`, `admin restore` and `admin verify`.
//!
//! A backup is a copy of the SQLite database taken with SQLite's online backup while the
//! server runs: one consistent snapshot, every payload in it still sealed with the
//! organisations' keys, which are sealed with the master key. The master key is not in it:
//! it is kept apart, and without it a backup reads as noise.
//!
//! A restored database gets a new incarnation. Devices whose cursor belongs to the old one
//! (they synced after the backup was taken) are told at their next pull, start it again
//! from the beginning and push again everything they hold, so what the backup lacks comes
//! back from the devices that still have it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use fieldsync_protocol::api::Role;
use fieldsync_server::auth::Caller;
use fieldsync_server::keys::KeyRing;
use fieldsync_server::settings::DataArgs;
use fieldsync_server::storage::{Database, Db, PullQuery, StorageError};
use rusqlite::{Connection, OpenFlags};

use super::offline;
use crate::UsageError;

/// Documents read back per organisation by `verify`.
const SAMPLE: u32 = 50;

#[derive(Args, Debug)]
pub(crate) struct BackupArgs {
    /// The backup file to write (it must not exist).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
pub(crate) struct RestoreArgs {
    /// A backup written by `admin backup`, to become the database of --data.
    #[arg(
        long,
        required_unless_present = "in_place",
        conflicts_with = "in_place"
    )]
    from: Option<PathBuf>,
    /// The database is already restored (PostgreSQL with pg_restore, or a file copied into
    /// place): only mark it restored, so devices push again what it lacks.
    #[arg(long)]
    in_place: bool,
    /// Replace the database --data already holds.
    #[arg(long)]
    replace: bool,
    /// The list `admin erasures` wrote after the backup: erase those responses again.
    #[arg(long)]
    erasures: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// Check this backup file instead of the database of --data (a copy of it is opened, the
    /// file itself is not changed).
    #[arg(long)]
    backup: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
}

fn sqlite_path(data: &DataArgs, what: &str) -> anyhow::Result<PathBuf> {
    match data.database().map_err(UsageError)? {
        Database::Sqlite(path) => Ok(path),
        Database::Postgres(_) => Err(UsageError(format!(
            "{what} works on the SQLite database; for PostgreSQL use pg_dump and pg_restore (README, \"Backups\"), then `fieldsync-server admin restore --in-place --database URL`"
        ))
        .into()),
    }
}

/// `PRAGMA integrity_check` of a database file, opened read-only.
fn integrity(path: &Path) -> anyhow::Result<()> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .with_context(|| format!("{} is not a readable SQLite database", path.display()))?;
    if verdict != "ok" {
        anyhow::bail!(
            "{} fails SQLite's integrity check: {verdict}",
            path.display()
        );
    }
    Ok(())
}

pub(crate) fn backup(args: BackupArgs) -> anyhow::Result<()> {
    args.data.validate().map_err(UsageError)?;
    let source = sqlite_path(&args.data, "admin backup")?;
    if !source.exists() {
        return Err(
            UsageError(format!("no database at {}; check --data", source.display())).into(),
        );
    }
    if args.out.exists() {
        return Err(UsageError(format!(
            "{} exists; give a new file name (a backup never overwrites one)",
            args.out.display()
        ))
        .into());
    }
    // Written beside the target and renamed when whole, so a file of that name is always a
    // complete backup.
    let partial = args.out.with_extension("partial");
    let result = copy_online(&source, &partial).and_then(|pages| {
        integrity(&partial)?;
        std::fs::rename(&partial, &args.out)
            .with_context(|| format!("cannot rename to {}", args.out.display()))?;
        Ok(pages)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    let pages = result?;
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "backed up {} to {} ({pages} pages, {size} bytes, integrity checked)",
        source.display(),
        args.out.display()
    );
    println!(
        "The master key ({}) is not in the backup: keep a copy of it apart from the backups; without it they cannot be read or restored.",
        args.data.master_key_path().display()
    );
    Ok(())
}

/// Copy `source` into a new file `dest` in one step of SQLite's online backup: one read
/// transaction, so the copy is one consistent snapshot while the server goes on writing.
fn copy_online(source: &Path, dest: &Path) -> anyhow::Result<i32> {
    let src = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", source.display()))?;
    src.busy_timeout(std::time::Duration::from_secs(30))?;
    let mut dst =
        Connection::open(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    {
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
        // -1: every page in one step, under one read lock (a writer in WAL mode is not held
        // up; a backup in several steps would start again after each commit of the server).
        backup.step(-1)?;
        let pages = backup.progress().pagecount;
        drop(backup);
        dst.pragma_update(None, "journal_mode", "DELETE")?;
        restrict(dest)?;
        Ok(pages)
    }
}

/// Owner-only permissions: a backup is as private as the database.
fn restrict(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))
}

pub(crate) fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    args.data.validate().map_err(UsageError)?;
    let _lock = fieldsync_server::lockfile::lock(&args.data.data_dir).map_err(UsageError)?;
    if let Some(from) = &args.from {
        let target = sqlite_path(&args.data, "admin restore --from")?;
        integrity(from)?;
        check_master_key(from, &args.data.master_key_path())?;
        if target.exists() && !args.replace {
            return Err(UsageError(format!(
                "{} already holds a database; restore into a new --data directory, or pass --replace to replace it",
                target.display()
            ))
            .into());
        }
    }
    let fresh = uuid::Uuid::new_v4().simple().to_string();
    if let Some(from) = &args.from {
        let target = sqlite_path(&args.data, "admin restore --from")?;
        let incoming = target.with_extension("restoring");
        std::fs::copy(from, &incoming)
            .with_context(|| format!("cannot copy {} into place", from.display()))?;
        restrict(&incoming)?;
        // The new incarnation is in the file before it is the database: a restore cut short
        // never leaves the backup's incarnation in place, where devices would not notice it.
        Connection::open(&incoming)?.execute(
            "INSERT INTO meta (key, value) VALUES ('incarnation', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [&fresh],
        )?;
        std::fs::File::open(&incoming)?.sync_all()?;
        // The replaced database's write-ahead log must not be applied to the restored file;
        // it is moved aside (and back, if the swap fails) rather than deleted.
        let wal = target.with_extension("sqlite-wal");
        let aside = target.with_extension("sqlite-wal.replaced");
        let moved = wal.exists() && std::fs::rename(&wal, &aside).is_ok();
        let _ = std::fs::remove_file(target.with_extension("sqlite-shm"));
        if let Err(e) = std::fs::rename(&incoming, &target) {
            if moved {
                let _ = std::fs::rename(&aside, &wal);
            }
            return Err(e).with_context(|| {
                format!("cannot move the restored database to {}", target.display())
            });
        }
        if let Some(dir) = target.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
    }
    let (incarnation, orgs) = offline(&args.data, |db, _| async move {
        let incarnation = db.incarnation(&fresh, true).await?;
        Ok((incarnation, db.orgs().await?.len()))
    })?;
    println!("restored: {orgs} organisation(s); the database is now incarnation {incarnation}");
    if let Some(list) = args.erasures {
        super::reapply_erasures_from(&args.data, &list)?;
    } else {
        println!(
            "If responses were erased after this backup was taken, erase them again before serving: `fieldsync-server admin reapply-erasures --from LIST` with the list `admin erasures` wrote."
        );
    }
    println!(
        "Devices that synced after the backup was taken push again what it lacks at their next sync."
    );
    Ok(())
}

/// Refuse a backup sealed under another master key than the one given.
fn check_master_key(backup: &Path, master_key: &Path) -> anyhow::Result<()> {
    let conn = Connection::open_with_flags(backup, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let stored: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'master_key_check'",
            [],
            |r| r.get(0),
        )
        .ok();
    let Some(stored) = stored else {
        anyhow::bail!("{} is not a fieldsync database backup", backup.display());
    };
    let bytes: Vec<u8> = (0..stored.len())
        .step_by(2)
        .filter_map(|i| {
            stored
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    if !master_key.exists() {
        return Err(UsageError(format!(
            "no master key at {}: put the master key of the server that made the backup there, or name it with --master-key",
            master_key.display()
        ))
        .into());
    }
    let keys = KeyRing::load_or_create(master_key)?;
    if !keys.verify_check_value(&bytes) {
        return Err(UsageError(format!(
            "{} was sealed with another master key than {}; give the master key of the server that made it (--master-key)",
            backup.display(),
            master_key.display()
        ))
        .into());
    }
    Ok(())
}

pub(crate) fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    args.data.validate().map_err(UsageError)?;
    let scratch = tempfile_dir()?;
    let data = match &args.backup {
        Some(file) => {
            integrity(file)?;
            check_master_key(file, &args.data.master_key_path())?;
            let copy = scratch.join("fieldsync.sqlite");
            std::fs::copy(file, &copy)
                .with_context(|| format!("cannot copy {}", file.display()))?;
            DataArgs {
                data_dir: scratch.clone(),
                master_key: Some(args.data.master_key_path()),
                database: None,
                region: args.data.region.clone(),
            }
        }
        None => {
            if let Database::Sqlite(path) = args.data.database().map_err(UsageError)? {
                integrity(&path)?;
            }
            args.data
        }
    };
    println!("ok: the database passes its integrity check and opens with this master key");
    let problems = offline(
        &data,
        |db, keys| async move { check_orgs(&db, &keys).await },
    )?;
    let _ = std::fs::remove_dir_all(&scratch);
    if problems == 0 {
        println!(
            "verified: every organisation's key unwraps, its documents read and its audit chain is intact"
        );
        Ok(())
    } else {
        anyhow::bail!("{problems} problem(s) found (above)")
    }
}

/// Check each organisation: its key unwraps, a sample of its documents decrypts, its audit
/// chain is intact. Prints one line per organisation; returns the number of problems.
async fn check_orgs(db: &Db, keys: &Arc<KeyRing>) -> Result<usize, StorageError> {
    let mut problems = 0;
    for listing in db.orgs().await? {
        let Some(org) = db.org(&listing.id).await? else {
            continue;
        };
        if let Err(e) = keys.org_cipher(&org.id, &org.wrapped_key) {
            println!(
                "PROBLEM: organisation {}: its key does not unwrap: {e}",
                org.id
            );
            problems += 1;
            continue;
        }
        // A pull as the organisation's admin opens what a device would receive: sealed
        // changes under their document keys, under the organisation key.
        let page = db
            .pull(PullQuery {
                caller: Caller {
                    principal_id: "admin-verify".into(),
                    session: "admin-verify".into(),
                    name: "admin verify".into(),
                    role: Role::Admin,
                    org_id: org.id.clone(),
                },
                cursor: 0,
                limit: SAMPLE,
                max_bytes: 8 * 1024 * 1024,
                known_surveys: Vec::new(),
            })
            .await;
        let read = match page {
            Ok(page) => {
                let changes: usize = page.docs.iter().map(|d| d.changes.len()).sum();
                format!(
                    "{changes} change(s) of {} document(s) and {} survey(s) decrypt",
                    page.docs.len(),
                    page.surveys.len()
                )
            }
            Err(e) => {
                println!(
                    "PROBLEM: organisation {}: its documents do not read: {e}",
                    org.id
                );
                problems += 1;
                continue;
            }
        };
        let chain = fieldsync_server::service::rights::verify_chain(
            db,
            keys,
            Some((&org.id, &org.wrapped_key)),
        )
        .await?;
        match &chain.problem {
            None => println!(
                "ok: organisation {} ({}): key unwraps, {read}, audit chain of {} entries intact",
                org.id, org.name, chain.verified
            ),
            Some(p) => {
                println!("PROBLEM: organisation {}: audit chain: {p}", org.id);
                problems += 1;
            }
        }
    }
    let operator = fieldsync_server::service::rights::verify_chain(db, keys, None).await?;
    match &operator.problem {
        None => println!(
            "ok: the operator audit chain of {} entries is intact",
            operator.verified
        ),
        Some(p) => {
            println!("PROBLEM: the operator audit chain: {p}");
            problems += 1;
        }
    }
    Ok(problems)
}

/// A private scratch directory for opening a copy of a backup.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "fieldsync-verify-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}
