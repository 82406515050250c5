//! The pid file: `/var/run/ganeti/<daemon>.pid`, held with an exclusive
//! `flock` for the daemon's whole life, so a second copy refuses to start.
//!
//! Unlike 2.5.2, the file is truncated after locking (a shorter pid would
//! otherwise leave stale digits) and fsynced.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::sys;

/// A locked pid file; the lock lasts as long as this value.
#[derive(Debug)]
pub struct PidFile {
    file: File,
    path: PathBuf,
}

/// Why the pid file could not be taken.
#[derive(Debug)]
pub enum PidFileError {
    Io(PathBuf, io::Error),
    /// Another process holds the lock; its pid as written in the file.
    Locked(PathBuf, Option<i32>),
}

impl std::fmt::Display for PidFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PidFileError::Io(p, e) => {
                write!(f, "Error while locking PID file {}: {e}", p.display())
            }
            PidFileError::Locked(p, Some(pid)) => write!(
                f,
                "Error while locking PID file {}: already locked by another process \
                 (pid {pid}); is the daemon already running?",
                p.display()
            ),
            PidFileError::Locked(p, None) => write!(
                f,
                "Error while locking PID file {}: already locked by another process; \
                 is the daemon already running?",
                p.display()
            ),
        }
    }
}

impl PidFile {
    /// Opens, locks, truncates and writes the pid file.
    pub fn acquire(path: &Path) -> Result<PidFile, PidFileError> {
        let io_err = |e| PidFileError::Io(path.to_path_buf(), e);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(io_err)?;
        if !sys::flock_exclusive_nb(&file).map_err(io_err)? {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(PidFileError::Locked(
                path.to_path_buf(),
                text.trim().parse().ok(),
            ));
        }
        file.set_len(0).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        file.write_all(format!("{}\n", sys::getpid()).as_bytes())
            .map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        Ok(PidFile {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Removes the file (while still holding the lock) and releases it.
    pub fn remove(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            log::warn!("Cannot remove PID file {}: {e}", self.path.display());
        }
        drop(self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_is_refused_and_names_the_pid() {
        let dir = std::env::temp_dir().join(format!("ganeti-pid-{}", sys::getpid()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("d.pid");
        // A stale longer number must not survive.
        std::fs::write(&path, "99999999999\n").unwrap();
        let held = PidFile::acquire(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", sys::getpid()));
        match PidFile::acquire(&path) {
            Err(PidFileError::Locked(_, Some(pid))) => assert_eq!(pid, sys::getpid()),
            other => panic!("expected Locked, got {other:?}"),
        }
        held.remove();
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
