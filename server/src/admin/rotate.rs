//! `admin rotate-master-key`: a new master key for the data directory. Only wrappings change:
//! every organisation key, and the operator audit chain's seed, are rewrapped under the new
//! key in one transaction; nothing they protect is touched, so the rotation takes moments
//! whatever the amount of data.
//!
//! Crash safety: the new key is written to `master.key.next` first, then the database is
//! rewrapped, then the file replaces the old key. Interrupted between the last two, the next
//! run finds the database already on the new key and finishes the swap.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use fieldsync_server::keys::{KeyRing, create_master_key};
use fieldsync_server::settings::DataArgs;

use super::offline;
use crate::UsageError;

#[derive(Args, Debug)]
pub(crate) struct RotateArgs {
    #[command(flatten)]
    data: DataArgs,
}

/// Where the next key waits until the database is rewrapped.
fn next_path(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

pub(crate) fn rotate(args: RotateArgs) -> anyhow::Result<()> {
    args.data.validate().map_err(UsageError)?;
    let _lock = fieldsync_server::lockfile::lock(&args.data.data_dir).map_err(UsageError)?;
    let current = args.data.master_key_path();
    if !current.exists() {
        return Err(UsageError(format!(
            "no master key at {}; check --data and --master-key",
            current.display()
        ))
        .into());
    }
    let next = next_path(&current);
    if next.exists() {
        // An earlier run stopped after writing the next key. If the database took it, only
        // the swap is left; if not, that key was never used and goes.
        let on_next = DataArgs {
            master_key: Some(next.clone()),
            ..args.data.clone()
        };
        if offline(&on_next, |db, _| async move { db.orgs().await }).is_ok() {
            let kept = swap(&next, &current)?;
            println!(
                "finished an interrupted rotation: {} is the new master key; the old one is in {}",
                current.display(),
                kept.display()
            );
            return Ok(());
        }
        // The next key goes only when the current one still opens the database: a database
        // that did not answer (not one on another key) keeps both files.
        still_on_current(&args.data, &next)?;
        std::fs::remove_file(&next)
            .with_context(|| format!("cannot remove the unused {}", next.display()))?;
    }
    let new_key = create_master_key(&next)?;
    let rewrapped = offline(&args.data, |db, keys| async move {
        let mut orgs = Vec::new();
        for listing in db.orgs().await? {
            if let Some(org) = db.org(&listing.id).await? {
                orgs.push((org.id, org.wrapped_key));
            }
        }
        let rotation = keys
            .rotate(&new_key, &orgs)
            .map_err(|e| fieldsync_server::storage::StorageError::Corrupt(e.to_string()))?;
        db.rewrap(rotation).await?;
        Ok(orgs.len())
    });
    let rewrapped = match rewrapped {
        Ok(n) => n,
        Err(e) => {
            // Whether the rewrap committed is known only by opening the database: the next
            // key goes only if the current one still opens it.
            if still_on_current(&args.data, &next).is_ok() {
                let _ = std::fs::remove_file(&next);
            }
            return Err(e);
        }
    };
    let kept = swap(&next, &current)?;
    // The new key opens what it must, before anyone relies on it.
    KeyRing::load_or_create(&current)?;
    offline(&args.data, |db, _| async move { db.orgs().await })
        .context("the database does not open with the new master key")?;
    println!(
        "rotated the master key: {rewrapped} organisation key(s) and the operator audit chain rewrapped; {} holds the new key",
        current.display()
    );
    println!(
        "The old key is in {}: backups taken before now need it. Move it off this machine, with those backups (or take a new backup and destroy it). Instances sharing this database (PostgreSQL) need the new key file before they start.",
        kept.display()
    );
    Ok(())
}

/// Refuse unless the database still opens with the current key (so `next` is unused).
fn still_on_current(data: &DataArgs, next: &Path) -> anyhow::Result<()> {
    offline(data, |db, _| async move { db.orgs().await }).map(|_| ()).with_context(|| {
        format!(
            "the database does not open with the current master key, and may already be on {}: both key files are kept; check the database is reachable and run the rotation again",
            next.display()
        )
    })
}

/// Keep the current key beside it (`master.key.TIMESTAMP.old`, 0600: backups taken before
/// need it), then replace it with the next one, durably. Returns where the old key is.
fn swap(next: &Path, current: &Path) -> anyhow::Result<PathBuf> {
    let mut name = current.as_os_str().to_owned();
    name.push(format!(".{}.old", fieldsync_server::storage::now_ms()));
    let kept = PathBuf::from(name);
    std::fs::copy(current, &kept)
        .with_context(|| format!("cannot keep the old key in {}", kept.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o600))?;
    std::fs::File::open(&kept)?.sync_all()?;
    std::fs::rename(next, current)
        .with_context(|| format!("cannot move {} to {}", next.display(), current.display()))?;
    if let Some(dir) = current.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(kept)
}
