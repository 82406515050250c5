//! File storage directories (spec 4.7): `file_storage_dir_create`,
//! `file_storage_dir_remove`, `file_storage_dir_rename`.
//!
//! Supported: 2.5.2's argument shapes, results and messages. A directory
//! must lie strictly below the file storage directory or the shared file
//! storage directory named in ssconf (`file_storage_dir`,
//! `shared_file_storage_dir`; both files must exist, as in 2.5.2).
//!
//! Differences from 2.5.2, all on the safe side:
//! * The containment test is component-wise after lexical normalisation
//!   (2.5.2 compared strings, so `/srv/ganeti/file-storageX` passed, and an
//!   empty ssconf value allowed everything; here it allows nothing), and the
//!   base directory itself is refused.
//! * The real location of the directory's parent must stay inside the real
//!   base directory: a symlinked directory below the base cannot lead out.
//! * A symlink at the last component is never followed: it counts as "not a
//!   directory" (2.5.2 followed it).
//!
//! File storage is always enabled (2.5.2's configure default), so `File
//! storage disabled at configure time` never happens.
#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{backend, decode, os_error_text, Context, Procedure, RpcError, SMALL_BODY};
use crate::fsutil;
use crate::paths::Paths;
use crate::ssconf::{self, SsconfError};

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

/// A checked storage directory: the normalised wire path (used in
/// messages) and the local path.
pub(crate) struct StorageDir {
    pub(crate) wire: String,
    pub(crate) local: PathBuf,
}

/// One ssconf value; a missing file is 2.5.2's ConfigurationError.
pub(crate) fn ssconf_value(paths: &Paths, key: &str) -> Result<String, RpcError> {
    ssconf::read(paths, key).map_err(|e| match e {
        SsconfError::Io(p, e) => backend(format!(
            "Can't read from the ssconf file: '{}'",
            os_error_text(&e, Some(&paths.to_wire(&p)))
        )),
        other => backend(other),
    })
}

/// 2.5.2's `_TransformFileStorageDir`, with the component-wise and symlink
/// checks. Also used by `crate::storage` for the paths of `file` disks.
pub(crate) fn storage_dir(paths: &Paths, dir: &str) -> Result<StorageDir, RpcError> {
    let base = ssconf_value(paths, "file_storage_dir")?;
    let shared = ssconf_value(paths, "shared_file_storage_dir")?;
    let shown = fsutil::normalize(dir)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.to_string());
    let refused = || {
        RpcError::Failed(format!(
            "File storage directory '{shown}' is not under base file storage \
             directory '{base}' or shared storage directory '{shared}'"
        ))
    };
    let (base_wire, wire) = [&base, &shared]
        .into_iter()
        .find_map(|b| Some((fsutil::normalize(b)?, fsutil::below_dir(b, dir)?)))
        .ok_or_else(refused)?;
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
