//! The file storage directories: which paths `file` disks, `file` storage
//! units and the `file_storage_dir_*` procedures may touch (2.5.2's
//! `_TransformFileStorageDir`, made stricter).
//!
//! A path is accepted when it lies strictly below the file storage
//! directory or the shared file storage directory named in ssconf
//! (`file_storage_dir`, `shared_file_storage_dir`; both files must exist,
//! as in 2.5.2):
//! * the test is component-wise after lexical normalisation (2.5.2 compared
//!   strings, so `/srv/ganeti/file-storageX` passed, and an empty ssconf
//!   value allowed everything; here it allows nothing), and the base
//!   directory itself is refused;
//! * the real location of the path's parent must stay inside the real base
//!   directory: a symlinked directory below the base cannot lead out;
//! * a storage directory that is, contains or lies below one of the system
//!   or Ganeti directories of [`FORBIDDEN_DIRS`] (`/`, `/etc`, `/usr`,
//!   `/var/lib/ganeti`, ...) is not used: the ssconf values come from the
//!   master (`write_ssconf_files`), and with `file_storage_dir` set to `/`
//!   or `/etc` a buggy or hostile master could otherwise remove, zero or
//!   create files anywhere through `file` disks (2.5.2 had no such check;
//!   later Ganeti versions refuse file storage below the same system
//!   directories).
//!
//! The check happens before the caller acts on the path, by path name: a
//! directory below a base that someone swaps for a symlink between the
//! check and the use is not caught. Only a party that can already write in
//! the storage directories on this node could do that; no RPC procedure
//! creates symlinks there.
#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil;
use crate::fsutil::os_error_text;
use crate::paths::Paths;
use crate::ssconf::{self, SsconfError};

/// Directories a storage directory must not be, contain or lie below
/// (wire paths).
pub const FORBIDDEN_DIRS: [&str; 26] = [
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr/bin",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/lib",
    "/usr/local/lib32",
    "/usr/local/lib64",
    "/usr/local/sbin",
    crate::paths::DATA_DIR,
    crate::paths::LOG_DIR,
    "/var/run",
];

/// Refuses a storage directory (normalised wire path) that is, contains or
/// lies below one of [`FORBIDDEN_DIRS`].
pub fn check_base(base: &Path) -> Result<(), DirError> {
    let hit = FORBIDDEN_DIRS.iter().find(|f| {
        let f = Path::new(f);
        base.starts_with(f) || f.starts_with(base)
    });
    match hit {
        Some(f) => Err(DirError::Refused(format!(
            "File storage directory '{}' cannot be used: it is, contains or lies below \
             the system directory '{f}'",
            base.display()
        ))),
        None => Ok(()),
    }
}

/// A checked path below a storage directory: the normalised wire path
/// (used in messages) and the local path.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageDir {
    pub wire: String,
    pub local: PathBuf,
}

/// Why a storage directory path is not accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum DirError {
    /// An ssconf file could not be read: 2.5.2's ConfigurationError, which
    /// reached the master as an unexpected error.
    Ssconf(String),
    /// The path is not below a storage directory (2.5.2's message).
    Refused(String),
}

impl std::fmt::Display for DirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirError::Ssconf(m) | DirError::Refused(m) => write!(f, "{m}"),
        }
    }
}

/// One ssconf value; a missing file is 2.5.2's ConfigurationError.
pub fn ssconf_value(paths: &Paths, key: &str) -> Result<String, DirError> {
    ssconf::read(paths, key).map_err(|e| match e {
        SsconfError::Io(p, e) => DirError::Ssconf(format!(
            "Can't read from the ssconf file: '{}'",
            os_error_text(&e, Some(&paths.to_wire(&p)))
        )),
        other => DirError::Ssconf(other.to_string()),
    })
}

/// 2.5.2's `_TransformFileStorageDir`, with the component-wise and symlink
/// checks of the module documentation.
pub fn storage_dir(paths: &Paths, dir: &str) -> Result<StorageDir, DirError> {
    let base = ssconf_value(paths, "file_storage_dir")?;
    let shared = ssconf_value(paths, "shared_file_storage_dir")?;
    let shown = fsutil::normalize(dir)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.to_string());
    let refused = || {
        DirError::Refused(format!(
            "File storage directory '{shown}' is not under base file storage \
             directory '{base}' or shared storage directory '{shared}'"
        ))
    };
    let (base_wire, wire) = [&base, &shared]
        .into_iter()
        .find_map(|b| Some((fsutil::normalize(b)?, fsutil::below_dir(b, dir)?)))
        .ok_or_else(refused)?;
    check_base(&base_wire)?;
    let wire = wire.to_string_lossy().into_owned();
    let local = paths.to_local(&wire);
    let base_local = paths.to_local(&base_wire.to_string_lossy());
    if !stays_inside(&base_local, &local) {
        return Err(refused());
    }
    Ok(StorageDir { wire, local })
}

/// True when no symlinked directory below `base` leads `path` out of it. A
/// base that does not exist yet has nothing below it.
fn stays_inside(base: &Path, path: &Path) -> bool {
    match base.symlink_metadata() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        _ => fsutil::parent_stays_inside(base, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> (Paths, PathBuf) {
        let root = std::env::temp_dir().join(format!(
            "ganeti-storage-dirs-{tag}-{}",
            crate::sys::getpid()
        ));
        let _ = std::fs::remove_dir_all(&root);
        let paths = Paths::with_root(&root);
        std::fs::create_dir_all(paths.data_dir()).unwrap();
        (paths, root)
    }

    fn set(paths: &Paths, key: &str, value: &str) {
        std::fs::write(paths.ssconf_file(key), format!("{value}\n")).unwrap();
    }

    #[test]
    fn paths_must_be_strictly_below_a_base() {
        let (paths, root) = scratch("check");
        assert_eq!(
            storage_dir(&paths, "/srv/ganeti/file-storage/a").unwrap_err(),
            DirError::Ssconf(
                "Can't read from the ssconf file: '[Errno 2] No such file or directory: \
                 '/var/lib/ganeti/ssconf_file_storage_dir''"
                    .into()
            )
        );
        set(&paths, "file_storage_dir", "/srv/ganeti/file-storage");
        set(&paths, "shared_file_storage_dir", "");
        let ok = storage_dir(&paths, "/srv/ganeti/file-storage//a/./b").unwrap();
        assert_eq!(ok.wire, "/srv/ganeti/file-storage/a/b");
        assert_eq!(ok.local, root.join("srv/ganeti/file-storage/a/b"));
        for bad in [
            "/srv/ganeti/file-storage",
            "/srv/ganeti/file-storageX/a",
            "/srv/ganeti/file-storage/../x",
            "/",
            "",
            "a/b",
        ] {
            let e = storage_dir(&paths, bad).unwrap_err();
            let DirError::Refused(e) = e else {
                panic!("{bad}: {e:?}")
            };
            assert!(e.starts_with("File storage directory '"), "{bad}: {e}");
            assert!(
                e.ends_with(
                    "is not under base file storage directory '/srv/ganeti/file-storage' \
                     or shared storage directory ''"
                ),
                "{e}"
            );
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn system_directories_are_no_storage_directories() {
        let (paths, root) = scratch("system");
        set(
            &paths,
            "shared_file_storage_dir",
            "/srv/ganeti/shared-file-storage",
        );
        for (base, path, hit) in [
            ("/", "/etc/shadow", "/bin"),
            ("/etc", "/etc/passwd", "/etc"),
            ("/etc/ssh", "/etc/ssh/sshd_config", "/etc"),
            ("/usr", "/usr/bin/ls", "/usr/bin"),
            ("/usr/local", "/usr/local/x", "/usr/local/bin"),
            ("/var", "/var/x", "/var/lib/ganeti"),
            ("/var/lib", "/var/lib/dpkg/status", "/var/lib/ganeti"),
            (
                "/var/lib/ganeti",
                "/var/lib/ganeti/config.data",
                "/var/lib/ganeti",
            ),
            ("/var/run/ganeti/x", "/var/run/ganeti/x/y", "/var/run"),
            ("/srv/../etc", "/etc/passwd", "/etc"),
        ] {
            set(&paths, "file_storage_dir", base);
            let shown = fsutil::normalize(base).unwrap();
            assert_eq!(
                storage_dir(&paths, path).unwrap_err(),
                DirError::Refused(format!(
                    "File storage directory '{}' cannot be used: it is, contains or lies \
                     below the system directory '{hit}'",
                    shown.display()
                )),
                "{base}"
            );
        }
        // The other storage directory still works, and so do ordinary ones.
        assert!(storage_dir(&paths, "/srv/ganeti/shared-file-storage/i/d").is_ok());
        for base in [
            "/srv/ganeti/file-storage",
            "/usr/share/vm",
            "/var/lib/ganeti-disks",
        ] {
            set(&paths, "file_storage_dir", base);
            assert!(
                storage_dir(&paths, &format!("{base}/i/disk0")).is_ok(),
                "{base}"
            );
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn symlinked_directories_below_a_base_do_not_lead_out() {
        let (paths, root) = scratch("links");
        set(&paths, "file_storage_dir", "/srv/ganeti/file-storage");
        set(&paths, "shared_file_storage_dir", "");
        let base = root.join("srv/ganeti/file-storage");
        std::fs::create_dir_all(base.join("inst1")).unwrap();
        std::fs::create_dir_all(root.join("outside")).unwrap();
        std::os::unix::fs::symlink(root.join("outside"), base.join("evil")).unwrap();
        std::os::unix::fs::symlink(base.join("inst1"), base.join("alias")).unwrap();
        for bad in [
            "/srv/ganeti/file-storage/evil/x",
            "/srv/ganeti/file-storage/evil/new/y",
        ] {
            assert!(
                matches!(storage_dir(&paths, bad), Err(DirError::Refused(_))),
                "{bad}"
            );
        }
        // A link that stays inside is fine; so is the link itself (the
        // callers never follow a symlink at the last component).
        assert!(storage_dir(&paths, "/srv/ganeti/file-storage/alias/x").is_ok());
        assert!(storage_dir(&paths, "/srv/ganeti/file-storage/evil").is_ok());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
