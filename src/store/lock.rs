//! One writer per results directory: an exclusive advisory lock (`flock`) on `DIR/.nsbench.lock`, which
//! the kernel releases when the process ends however it ends (exit, panic, SIGKILL), so a crash never
//! leaves a stale lock behind. The holder writes its PID into the file so a refused run can name it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::StoreError;

pub const LOCK_FILE: &str = ".nsbench.lock";

/// Held for as long as it lives.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    pub path: PathBuf,
}

/// Opens (creating it and its folder) the lock file `file` in `dir`, without locking it.
fn open_lock_file(dir: &Path, file: &str) -> Result<(File, PathBuf), StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(file);
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
    Ok((opened, path))
}

/// Takes `dir`'s lock (creating `dir`), or says which process holds it.
pub fn lock_dir(dir: &Path, purpose: &str) -> Result<DirLock, StoreError> {
    let (mut file, path) = open_lock_file(dir, LOCK_FILE)?;
    let io = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another nsbench process".to_string()
            } else {
                format!("nsbench (PID {holder})")
            };
            return Err(StoreError::Busy {
                path: dir.to_path_buf(),
                message: format!(
                    "results directory {} is in use by {who}: wait for it to finish, or give another \
                     --out (not {purpose} here)",
                    dir.display()
                ),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(DirLock { _file: file, path })
}

/// Takes `dir`'s lock shared, as one of several shards writing there at once (each cell then by its own
/// `claim_cell`): shards exclude a plain `run`, `plot` or `merge` and are excluded by them, not by each
/// other.
pub fn lock_dir_shared(dir: &Path, purpose: &str) -> Result<DirLock, StoreError> {
    let (file, path) = open_lock_file(dir, LOCK_FILE)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(DirLock { _file: file, path }),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Busy {
            path: dir.to_path_buf(),
            message: format!(
                "results directory {} is in use by a non-sharded nsbench process: wait for it to finish \
                 (not {purpose} here)",
                dir.display()
            ),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Io { path, source }),
    }
}

/// The claims of cells being trained by shards.
pub const CLAIMS_DIR: &str = "claims";

/// A shard's hold on one cell while it trains it (released when dropped or when the process dies).
#[derive(Debug)]
pub struct CellClaim {
    _file: File,
}

/// Claims cell `id` in `dir` for this process, or `None` when another process holds it.
pub fn claim_cell(dir: &Path, id: &str) -> Result<Option<CellClaim>, StoreError> {
    let (file, path) = open_lock_file(&dir.join(CLAIMS_DIR), &format!("{id}.lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(CellClaim { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_dir(dir.path(), "running").unwrap();
        let err = lock_dir(dir.path(), "running").unwrap_err().to_string();
        assert!(
            err.contains(&format!("PID {}", std::process::id())) && err.contains("in use"),
            "{err}"
        );
        drop(held);
        lock_dir(dir.path(), "running").unwrap();
    }

    #[test]
    fn shards_share_the_directory_but_never_a_cell() {
        let dir = tempfile::tempdir().unwrap();
        let a = lock_dir_shared(dir.path(), "running a shard").unwrap();
        let b = lock_dir_shared(dir.path(), "running a shard").unwrap();
        assert!(
            lock_dir(dir.path(), "merging").is_err(),
            "shards exclude a plain writer"
        );
        let claim = claim_cell(dir.path(), "rec-x-uniform-r1-s0").unwrap();
        assert!(claim.is_some());
        assert!(claim_cell(dir.path(), "rec-x-uniform-r1-s0")
            .unwrap()
            .is_none());
        assert!(claim_cell(dir.path(), "rec-x-uniform-r1-s1")
            .unwrap()
            .is_some());
        drop(claim);
        assert!(claim_cell(dir.path(), "rec-x-uniform-r1-s0")
            .unwrap()
            .is_some());
        drop((a, b));
        let plain = lock_dir(dir.path(), "merging").unwrap();
        assert!(lock_dir_shared(dir.path(), "running a shard").is_err());
        drop(plain);
    }
}
