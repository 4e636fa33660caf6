//! Writing a run's files so that nothing is lost: every file march
//! rewrites goes to a temporary file beside it and is renamed over the old
//! one (a kill leaves the old file or the new one, never a torn one), and a
//! run directory is held by one process at a time through an OS file lock
//! (released by the OS when the process ends, however it ends).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Write `bytes` to `path` atomically: a temporary file in the same
/// directory, flushed to disk, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let written = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(e)).with_context(|| format!("writing {}", path.display()));
    }
    std::fs::rename(&tmp, path)
        .map_err(io_error)
        .with_context(|| format!("replacing {}", path.display()))
}

/// `dir/.name.PID-N.tmp` for `dir/name` (see [`unique`]).
pub fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", unique()))
}

/// `PID-N`, N counting this process's temporary files: two writers of one
/// file, in two processes or in two threads of one (tests; a shared
/// cache), never write or rename each other's temporary.
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An I/O error as a person reads it (not Rust's Debug form).
pub fn io_error(e: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// The lock file of a run or sweep directory.
pub const LOCK: &str = "march.lock";

/// An exclusive lock on a directory, held until dropped (or the process
/// ends). The lock file records the holder's process id.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    pub path: PathBuf,
}

impl DirLock {
    /// Lock `dir` (created if missing) or say who holds it.
    pub fn acquire(dir: &Path, what: &str) -> Result<DirLock> {
        std::fs::create_dir_all(dir)
            .map_err(io_error)
            .with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(LOCK);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                bail!(
                    "{} is in use by another march process{}: wait for it to finish, or choose another directory for this {what}",
                    dir.display(),
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" ({holder})")
                    }
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io_error(e)).with_context(|| format!("locking {}", path.display()))
            }
        }
        file.set_len(0).ok();
        let _ = writeln!(file, "pid {}", std::process::id());
        Ok(DirLock { _file: file, path })
    }
}

/// Remove everything in `dir` but its lock file.
pub fn clear_except_lock(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("clearing {}", dir.display()))? {
        let p = e?.path();
        if p.file_name().is_some_and(|n| n == LOCK) {
            continue;
        }
        if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        }
        .with_context(|| format!("clearing {}", p.display()))?;
    }
    Ok(())
}
