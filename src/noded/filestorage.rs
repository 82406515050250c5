//! File storage directories (spec 4.7): `file_storage_dir_create`,
//! `file_storage_dir_remove`, `file_storage_dir_rename`.
//!
//! Supported: 2.5.2's argument shapes, results and messages. A directory
//! must lie strictly below the file storage directory or the shared file
//! storage directory named in ssconf; the check and its differences from
//! 2.5.2 are those of `crate::storage::dirs`.
//!
//! Difference from 2.5.2, on the safe side: a symlink at the last component
//! is never followed: it counts as "not a directory" (2.5.2 followed it).
//!
//! File storage is always enabled (2.5.2's configure default), so `File
//! storage disabled at configure time` never happens.
#![forbid(unsafe_code)]

use std::io;
use std::path::Path;

use serde_json::Value;

use super::{backend, decode, os_error_text, Context, Procedure, RpcError, SMALL_BODY};
use crate::fsutil;
use crate::paths::Paths;
use crate::storage::dirs::{self, DirError, StorageDir};

/// Mode given to `makedirs` (the daemon's umask applies, as in 2.5.2).
const DIR_MODE: u32 = 0o750;

pub const PROCEDURES: &[Procedure] = &[
    Procedure {
        name: "file_storage_dir_create",
        max_body: SMALL_BODY,
        handler: file_storage_dir_create,
    },
    Procedure {
        name: "file_storage_dir_remove",
        max_body: SMALL_BODY,
        handler: file_storage_dir_remove,
    },
    Procedure {
        name: "file_storage_dir_rename",
        max_body: SMALL_BODY,
        handler: file_storage_dir_rename,
    },
];

/// 2.5.2's `_TransformFileStorageDir` (see `crate::storage::dirs`): a
/// missing ssconf file is an unexpected error, as in 2.5.2.
fn storage_dir(paths: &Paths, dir: &str) -> Result<StorageDir, RpcError> {
    dirs::storage_dir(paths, dir).map_err(|e| match e {
        DirError::Ssconf(m) => backend(m),
        DirError::Refused(m) => RpcError::Failed(m),
    })
}

/// What is at a path, without following a symlink there.
enum Found {
    Directory,
    Other,
    Nothing,
}

fn look(path: &Path) -> io::Result<Found> {
    match path.symlink_metadata() {
        Ok(m) if m.is_dir() => Ok(Found::Directory),
        Ok(_) => Ok(Found::Other),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
            Ok(Found::Nothing)
        }
        Err(e) => Err(e),
    }
}

/// Fsyncs the directory holding `path`, so a removal or rename in it is
/// durable.
fn sync_parent(path: &Path) -> io::Result<()> {
    fsutil::sync_dir(path.parent().unwrap_or(Path::new("/")))
}

/// `file_storage_dir_create [dir]`: `makedirs(dir, 0750)` unless it is
/// there.
fn file_storage_dir_create(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (dir,): (String,) = decode(body)?;
    let dir = storage_dir(&ctx.paths, &dir)?;
    let cannot = |e: io::Error| {
        RpcError::Failed(format!(
            "Cannot create file storage directory '{}': {}",
            dir.wire,
            os_error_text(&e, Some(Path::new(&dir.wire)))
        ))
    };
    match look(&dir.local).map_err(cannot)? {
        Found::Directory => Ok(Value::Null),
        Found::Other => Err(RpcError::Failed(format!(
            "Specified storage dir '{}' is not a directory",
            dir.wire
        ))),
        Found::Nothing => {
            fsutil::create_dirs(&dir.local, DIR_MODE).map_err(cannot)?;
            Ok(Value::Null)
        }
    }
}

/// `file_storage_dir_remove [dir]`: `rmdir`; a missing directory is fine.
fn file_storage_dir_remove(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (dir,): (String,) = decode(body)?;
    let dir = storage_dir(&ctx.paths, &dir)?;
    let cannot = |e: io::Error| {
        RpcError::Failed(format!(
            "Cannot remove file storage directory '{}': {}",
            dir.wire,
            os_error_text(&e, Some(Path::new(&dir.wire)))
        ))
    };
    match look(&dir.local).map_err(cannot)? {
        Found::Nothing => Ok(Value::Null),
        Found::Other => Err(RpcError::Failed(format!(
            "Specified Storage directory '{}' is not a directory",
            dir.wire
        ))),
        Found::Directory => {
            std::fs::remove_dir(&dir.local).map_err(cannot)?;
            sync_parent(&dir.local).map_err(cannot)?;
            Ok(Value::Null)
        }
    }
}

/// `file_storage_dir_rename [old, new]`: `rename`; done already when only
/// `new` exists.
fn file_storage_dir_rename(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (old, new): (String, String) = decode(body)?;
    let old = storage_dir(&ctx.paths, &old)?;
    let new = storage_dir(&ctx.paths, &new)?;
    let cannot = |e: String| {
        RpcError::Failed(format!(
            "Cannot rename '{}' to '{}': {e}",
            old.wire, new.wire
        ))
    };
    let io_cannot = |e: io::Error| cannot(os_error_text(&e, None));
    let new_found = look(&new.local).map_err(io_cannot)?;
    let old_found = look(&old.local).map_err(io_cannot)?;
    match (new_found, old_found) {
        (Found::Nothing, Found::Directory) => {
            std::fs::rename(&old.local, &new.local).map_err(io_cannot)?;
            sync_parent(&old.local).map_err(io_cannot)?;
            sync_parent(&new.local).map_err(io_cannot)?;
            Ok(Value::Null)
        }
        (Found::Nothing, _) => Err(RpcError::Failed(format!(
            "Specified storage dir '{}' is not a directory",
            old.wire
        ))),
        (_, Found::Nothing) => Ok(Value::Null),
        (_, _) => Err(cannot("both locations exist".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(tag: &str) -> (Context, PathBuf) {
        let root =
            std::env::temp_dir().join(format!("ganeti-filestorage-{tag}-{}", crate::sys::getpid()));
        let _ = std::fs::remove_dir_all(&root);
        let ctx = Context::for_root(&root, "node1.example.com");
        std::fs::create_dir_all(ctx.paths.data_dir()).unwrap();
        (ctx, root)
    }

    fn set(ctx: &Context, key: &str, value: &str) {
        std::fs::write(ctx.paths.ssconf_file(key), format!("{value}\n")).unwrap();
    }

    #[test]
    fn paths_must_be_strictly_below_a_base() {
        let (ctx, root) = scratch("check");
        let e = storage_dir(&ctx.paths, "/srv/ganeti/file-storage/a")
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "Error while executing backend function: Can't read from the ssconf file: \
             '[Errno 2] No such file or directory: '/var/lib/ganeti/ssconf_file_storage_dir''"
        );
        set(&ctx, "file_storage_dir", "/srv/ganeti/file-storage");
        set(&ctx, "shared_file_storage_dir", "");
        let ok = storage_dir(&ctx.paths, "/srv/ganeti/file-storage//a/./b").unwrap();
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
            let e = storage_dir(&ctx.paths, bad).err().unwrap().to_string();
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
}
