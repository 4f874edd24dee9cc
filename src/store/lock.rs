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

/// Takes `dir`'s lock (creating `dir`), or says which process holds it.
pub fn lock_dir(dir: &Path, purpose: &str) -> Result<DirLock, StoreError> {
    let path = dir.join(LOCK_FILE);
    let io = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
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
}
