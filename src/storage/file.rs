//! `file` disks (2.5.2's `bdev.FileStorage`): a sparse file below the file
//! storage directory or the shared file storage directory.
//!
//! `physical_id` is `[driver, path]` with driver `loop` or `blktap` (2.5.2
//! did not check it). The path travels as a standard (wire) path and is
//! mapped under `GANETI_ROOTDIR`. It must be normalised (no `.`, `..`,
//! `//`, trailing `/`) and lie strictly below one of the two storage
//! directories named in ssconf, checked by [`super::dirs`] (so no
//! symlinked directory below them leads out); the file itself must be a
//! regular file or missing: a symlink there is refused, never followed.
#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::dirs::{self, DirError};
use super::{py_repr, BdevError};
use crate::fsutil;
use crate::fsutil::os_error_text;
use crate::paths::Paths;

/// One MiB, the unit of disk sizes.
pub const MIB: u64 = 1024 * 1024;
/// File drivers 2.5.2 knows (`FD_LOOP`, `FD_BLKTAP`).
pub const FILE_DRIVERS: [&str; 2] = ["loop", "blktap"];
/// Mode of a new disk file (under the daemon's umask).
const FILE_MODE: u32 = 0o600;

/// A checked file disk.
#[derive(Debug, Clone)]
pub struct FileDev {
    /// The normalised standard path (what 2.5.2 reports as `dev_path`).
    pub wire: String,
    /// The path on this node.
    pub local: PathBuf,
    /// The disk's size in MiB, as the master sent it.
    pub size: Option<u64>,
}

impl FileDev {
    /// Checks `[driver, path]`; see the module documentation.
    pub fn new(paths: &Paths, id: &[Value], size: Option<u64>) -> Result<FileDev, BdevError> {
        let (driver, path) = match id {
            [Value::String(d), Value::String(p)] => (d.as_str(), p.as_str()),
            _ => {
                return Err(BdevError::Refused(format!(
                    "Invalid configuration data {}",
                    py_repr(&Value::from(id.to_vec()))
                )))
            }
        };
        if !FILE_DRIVERS.contains(&driver) {
            return Err(BdevError::Refused(format!(
                "Invalid file driver {}",
                super::py_str(driver)
            )));
        }
        if !matches!(fsutil::normalize(path), Some(n) if n.as_os_str() == path) {
            return Err(BdevError::Refused(format!(
                "File device path {} is not a normalised absolute path",
                super::py_str(path)
            )));
        }
        let dir = dirs::storage_dir(paths, path).map_err(|e| match e {
            DirError::Ssconf(m) => BdevError::Other(m),
            DirError::Refused(m) => BdevError::Refused(m),
        })?;
        let dev = FileDev {
            wire: dir.wire,
            local: dir.local,
            size,
        };
        match dev.local.symlink_metadata() {
            Ok(m) if !m.file_type().is_file() => Err(BdevError::Refused(format!(
                "File device '{}' is not a regular file",
                dev.wire
            ))),
            _ => Ok(dev),
        }
    }

    /// An OS error as Python printed it, with the wire path.
    fn os_error(&self, e: &io::Error) -> String {
        os_error_text(e, Some(Path::new(&self.wire)))
    }

    /// 2.5.2's `Attach`: the file exists (and, here, is a regular file).
    pub fn exists(&self) -> bool {
        self.local
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_file())
    }

    /// 2.5.2's `Assemble`: the file must exist.
    pub fn assemble(&self) -> Result<(), BdevError> {
        if self.exists() {
            Ok(())
        } else {
            Err(BdevError::Failed(format!(
                "File device '{}' does not exist",
                self.wire
            )))
        }
    }

    /// 2.5.2's `Create`: a new sparse file of the disk's size (exclusive
    /// create; the directory must exist).
    pub fn create(&self) -> Result<(), BdevError> {
        let bytes = self
            .size
            .and_then(|s| s.checked_mul(MIB))
            .ok_or_else(|| BdevError::Refused("Invalid disk size for a file device".into()))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.local);
        let file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(BdevError::Failed(format!(
                    "File already existing: {}",
                    self.wire
                )))
            }
            Err(e) => {
                return Err(BdevError::Failed(format!(
                    "Error in file creation: {}",
                    self.os_error(&e)
                )))
            }
        };
        let sized = file.set_len(bytes).and_then(|()| file.sync_all());
        drop(file);
        if let Err(e) = sized {
            let _ = std::fs::remove_file(&self.local);
            return Err(BdevError::Failed(format!(
                "Error in file creation: {}",
                self.os_error(&e)
            )));
        }
        self.sync_dir().map_err(|e| {
            BdevError::Failed(format!("Error in file creation: {}", self.os_error(&e)))
        })
    }

    fn sync_dir(&self) -> io::Result<()> {
        fsutil::sync_dir(self.local.parent().unwrap_or(Path::new("/")))
    }

    /// 2.5.2's `Remove`: unlink; a missing file is fine.
    pub fn remove(&self) -> Result<(), BdevError> {
        match std::fs::remove_file(&self.local) {
            Ok(()) => self.sync_dir().map_err(|e| {
                BdevError::Failed(format!(
                    "Can't remove file '{}': {}",
                    self.wire,
                    self.os_error(&e)
                ))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BdevError::Failed(format!(
                "Can't remove file '{}': {}",
                self.wire,
                self.os_error(&e)
            ))),
        }
    }

    /// 2.5.2's `GetActualSize`: `st_size` (of the file itself, never of a
    /// symlink's target).
    pub fn actual_size(&self) -> Result<u64, BdevError> {
        self.local.symlink_metadata().map(|m| m.len()).map_err(|e| {
            BdevError::Failed(format!("Can't stat {}: {}", self.wire, self.os_error(&e)))
        })
    }

    /// 2.5.2's `Grow`: the file must exist; it is extended by `amount` MiB
    /// (nothing happens with `dryrun`).
    pub fn grow(&self, amount: i64, dryrun: bool) -> Result<(), BdevError> {
        self.assemble()?;
        let current = self.actual_size()?;
        if amount <= 0 {
            // 2.5.2's assertion (an unexpected error there).
            return Err(BdevError::Other(
                "Cannot Grow with a negative amount".into(),
            ));
        }
        let new_size = u64::try_from(amount)
            .ok()
            .and_then(|a| a.checked_mul(MIB))
            .and_then(|a| a.checked_add(current))
            .filter(|s| i64::try_from(*s).is_ok())
            .ok_or_else(|| {
                BdevError::Failed(format!(
                    "Cannot grow {} by {amount} MiB: the new size is too large",
                    self.wire
                ))
            })?;
        if dryrun {
            return Ok(());
        }
        let grown = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.local)
            .and_then(|f| {
                f.set_len(new_size)?;
                f.sync_all()
            });
        grown.map_err(|e| BdevError::Failed(format!("Error in file growth: {}", self.os_error(&e))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::MetadataExt;

    fn scratch(tag: &str) -> (Paths, PathBuf) {
        let root =
            std::env::temp_dir().join(format!("ganeti-bdev-file-{tag}-{}", crate::sys::getpid()));
        let _ = std::fs::remove_dir_all(&root);
        let paths = Paths::with_root(&root);
        std::fs::create_dir_all(paths.data_dir()).unwrap();
        std::fs::create_dir_all(root.join("srv/ganeti/file-storage/inst1")).unwrap();
        std::fs::write(
            paths.ssconf_file("file_storage_dir"),
            "/srv/ganeti/file-storage\n",
        )
        .unwrap();
        std::fs::write(
            paths.ssconf_file("shared_file_storage_dir"),
            "/srv/ganeti/shared-file-storage\n",
        )
        .unwrap();
        (paths, root)
    }

    fn dev(paths: &Paths, path: &str, size: u64) -> Result<FileDev, BdevError> {
        FileDev::new(paths, &[json!("loop"), json!(path)], Some(size))
    }

    #[test]
    fn create_is_sparse_grow_extends_remove_unlinks() {
        let (paths, root) = scratch("life");
        let d = dev(&paths, "/srv/ganeti/file-storage/inst1/disk0", 64).unwrap();
        assert!(!d.exists());
        d.create().unwrap();
        let m = std::fs::metadata(&d.local).unwrap();
        assert_eq!(m.len(), 64 * MIB);
        assert!(m.blocks() * 512 < MIB, "not sparse: {} blocks", m.blocks());
        assert_eq!(m.mode() & 0o777, 0o600);
        assert_eq!(
            d.create().unwrap_err().to_string(),
            "File already existing: /srv/ganeti/file-storage/inst1/disk0"
        );
        d.grow(16, true).unwrap();
        assert_eq!(d.actual_size().unwrap(), 64 * MIB);
        d.grow(16, false).unwrap();
        assert_eq!(d.actual_size().unwrap(), 80 * MIB);
        let negative = BdevError::Other("Cannot Grow with a negative amount".into());
        assert_eq!(d.grow(0, false).unwrap_err(), negative);
        assert_eq!(d.grow(-1, false).unwrap_err(), negative);
        let too_large = BdevError::Failed(
            "Cannot grow /srv/ganeti/file-storage/inst1/disk0 by 9223372036854775807 MiB: \
             the new size is too large"
                .into(),
        );
        assert_eq!(d.grow(i64::MAX, false).unwrap_err(), too_large);
        // 2^43 MiB = 2^63 bytes: one byte more than a file can have.
        assert!(matches!(d.grow(1 << 43, true), Err(BdevError::Failed(_))));
        assert_eq!(d.actual_size().unwrap(), 80 * MIB);
        d.remove().unwrap();
        assert!(!d.local.exists());
        d.remove().unwrap();
        assert_eq!(
            d.assemble().unwrap_err().to_string(),
            "File device '/srv/ganeti/file-storage/inst1/disk0' does not exist"
        );
        // Sizes whose bytes overflow, or that no file can have: refused or
        // failed, and no file is left behind.
        let huge = dev(&paths, "/srv/ganeti/file-storage/inst1/disk0", u64::MAX).unwrap();
        assert!(matches!(huge.create(), Err(BdevError::Refused(_))));
        let big = dev(&paths, "/srv/ganeti/file-storage/inst1/disk0", 1 << 43).unwrap();
        let e = big.create().unwrap_err().to_string();
        assert!(e.starts_with("Error in file creation: "), "{e}");
        assert!(!d.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn hostile_paths_are_refused() {
        let (paths, root) = scratch("hostile");
        std::os::unix::fs::symlink("/etc", root.join("srv/ganeti/file-storage/evil")).unwrap();
        std::os::unix::fs::symlink(
            "/etc/passwd",
            root.join("srv/ganeti/file-storage/inst1/link"),
        )
        .unwrap();
        for bad in [
            "/etc/passwd",
            "/srv/ganeti/file-storage",
            "/srv/ganeti/file-storage/../x",
            "/srv/ganeti/file-storage/inst1/../../../etc/passwd",
            "/srv/ganeti/file-storage//inst1/disk0",
            "/srv/ganeti/file-storage/inst1/",
            "/srv/ganeti/file-storage/inst1",
            "/srv/ganeti/file-storage/evil/passwd",
            "/srv/ganeti/file-storage/inst1/link",
            "srv/ganeti/file-storage/inst1/disk0",
            "",
        ] {
            let e = dev(&paths, bad, 1).unwrap_err();
            assert!(matches!(e, BdevError::Refused(_)), "{bad}: {e:?}");
        }
        for id in [
            json!(["nbd", "/srv/ganeti/file-storage/inst1/d"]),
            json!(["loop"]),
            json!([1, 2]),
        ] {
            let id = id.as_array().unwrap().clone();
            assert!(FileDev::new(&paths, &id, Some(1)).is_err(), "{id:?}");
        }
        assert!(dev(&paths, "/srv/ganeti/shared-file-storage/i/disk0", 1).is_ok());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
