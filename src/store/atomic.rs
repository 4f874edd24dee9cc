//! Durable, atomic file replacement: write a temporary file beside the target, fsync it, rename it over
//! the target, fsync the directory. A reader (or a crash, or SIGKILL) sees the old file or the new one,
//! never half of one, and a finished rename survives a power cut.
//!
//! Temporary names carry the process id and a per-process counter (`.NAME.tmp.PID.N`), so two writers
//! never share one; only a process holding the results directory's lock removes leftovers (`clean`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const TMP_MARK: &str = ".tmp.";

/// A fresh temporary path beside `path`, unique within this process and across processes.
pub fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{TMP_MARK}{}.{n}", std::process::id()))
}

/// `temp_path` ending in the target's extension too, for writers that choose the format by it.
pub fn temp_path_keeping_extension(path: &Path) -> PathBuf {
    let tmp = temp_path(path);
    match path.extension() {
        Some(ext) => {
            let mut name = tmp.into_os_string();
            name.push(".");
            name.push(ext);
            PathBuf::from(name)
        }
        None => tmp,
    }
}

/// Whether a file name is one of `temp_path`'s.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(TMP_MARK)
}

/// Writes through a temporary file with `fill`, then renames it over `path` and syncs the directory.
/// On error the temporary file is removed and `path` is untouched.
pub fn replace_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        fill(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir.unwrap_or(Path::new(".")))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `replace_with` for bytes already in memory.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_with(path, |f| f.write_all(bytes))
}

/// Removes a file and syncs its directory; a file already gone is fine.
pub fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(path.parent().unwrap_or(Path::new("."))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes a directory's entries (a rename, a removal) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes the temporary files killed writers left in `dirs`. Only call it while holding the results
/// directory's lock: every writer holds it, so no temporary file can be in flight.
pub fn clean(dirs: &[PathBuf]) -> usize {
    let mut removed = 0;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if is_temp_name(&entry.file_name().to_string_lossy())
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

/// Bytes free for this user on the file system holding `dir` (statvfs), if it can be asked.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid NUL-terminated string and `stat` a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    (rc == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Whether a write into `dir` failed because its disk is full: the error says ENOSPC, or (some
/// writers lose the cause) less than 1 MiB is left.
pub fn disk_full(dir: &Path, error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.raw_os_error() == Some(libc::ENOSPC) {
                return true;
            }
        }
        if e.to_string().contains("No space left on device") {
            return true;
        }
        cause = e.source();
    }
    free_bytes(dir).is_some_and(|free| free < 1 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_unique_and_recognised_and_replacement_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.parquet");
        let (x, y) = (temp_path(&target), temp_path(&target));
        assert_ne!(x, y);
        assert!(is_temp_name(&x.file_name().unwrap().to_string_lossy()));
        assert!(!is_temp_name("a.parquet"));
        write_bytes(&target, b"one").unwrap();
        let failed = replace_with(&target, |f| {
            f.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"one",
            "untouched on error"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        std::fs::write(&x, b"left by a killed writer").unwrap();
        assert_eq!(clean(&[dir.path().to_path_buf()]), 1);
        assert!(target.is_file());
    }
}
