//! One process at a time may own a data directory's database: the server while it runs, or
//! an administration command that replaces what the server would be reading (`admin
//! restore`). Each takes an exclusive lock on `fieldsync.lock` in the directory; the lock goes
//! when the process ends, however it ends.

use std::fs::File;
use std::path::Path;

/// The held lock; dropping it releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Take the lock of `dir`, or say who holds it.
pub fn lock(dir: &Path) -> Result<DataDirLock, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("fieldsync.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |_| {
            format!(
                "{} is in use: a fieldsync-server is running on it (or an administration command is); stop it first",
                dir.display()
            )
        },
    )?;
    Ok(DataDirLock { _file: file })
}
