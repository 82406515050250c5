//! Job queue replication to master candidates (spec 4.5): `jobqueue_update`,
//! `jobqueue_rename`, `jobqueue_purge`.
//!
//! Supported: 2.5.2's argument shapes, results and messages; both blob
//! encodings for the job file contents.
//!
//! Differences from 2.5.2, all on the safe side:
//! * A path must lie strictly below `/var/lib/ganeti/queue`, compared
//!   component-wise after lexical normalisation (2.7's `IsBelowDir`; 2.5.2
//!   compared strings, so `queue-x` and `queue/../..` passed), and the real
//!   location of its parent directory must stay inside the queue: a
//!   symlinked directory inside the queue cannot lead out. The queue lock
//!   file itself is never replaced or renamed.
//! * A symlink at the last component is never followed: an update renames a
//!   new file over it, a rename moves the link itself.
//! * `jobqueue_rename` checks every path of every pair before renaming
//!   anything, and again just before each rename.
//! * Calls are serialised inside the daemon too (2.5.2's forked children
//!   shared one lock fd, so nothing excluded them from each other): one
//!   process-wide gate, then the `flock` on `queue/lock`, both within the
//!   same 10 s.
#![forbid(unsafe_code)]

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::de::IgnoredAny;
use serde_json::Value;

use super::{
    backend, clean_directory, decode, os_error_text, Context, Procedure, RpcError, SMALL_BODY,
};
use crate::fsutil::{self, FileLock, FileMeta};
use crate::paths::Paths;
use crate::rpc::blob;

/// The queue directory as masters name it.
pub const QUEUE_DIR: &str = "/var/lib/ganeti/queue";
/// Name of the lock file inside the queue directory.
const LOCK_FILE: &str = "lock";
/// Name of the archive directory inside the queue directory.
const ARCHIVE_DIR: &str = "archive";
/// How long a call waits for its turn and the queue lock (2.5.2's
/// `QUEUE_LOCK_TIMEOUT`).
pub const QUEUE_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// `JOB_QUEUE_VERSION`.
const JOB_QUEUE_VERSION: u32 = 1;
/// Owner and group of the files and directories the queue calls create:
/// the masterd user and group, root in the default build.
pub const MASTERD_OWNER: (u32, u32) = (0, 0);
/// Mode of the job files (2.5.2: mkstemp's) and of the directories made by
/// `jobqueue_rename`.
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// Largest job file accepted after decoding. A 2.5.2 job file is a few KiB
/// (one JSON document with the opcodes, their log and result); even jobs
/// with long logs on big clusters stay far below 1 MiB. 16 MiB leaves wide
/// room while bounding what one request makes a worker hold in locked RAM.
pub const MAX_JOB_FILE: usize = 16 * 1024 * 1024;
/// Largest `jobqueue_update` body: a job file of [`MAX_JOB_FILE`] bytes that
/// does not compress, as base64 (4/3) plus the JSON around it.
const UPDATE_BODY: usize = MAX_JOB_FILE / 3 * 4 + 64 * 1024;
/// Largest `jobqueue_rename` body. A pair takes about 110 bytes, so 1 MiB
/// is some 9000 renames; the master archives in much smaller batches.
const RENAME_BODY: usize = 1024 * 1024;

pub const PROCEDURES: &[Procedure] = &[
    Procedure {
        name: "jobqueue_update",
        max_body: UPDATE_BODY,
        handler: jobqueue_update,
    },
    Procedure {
        name: "jobqueue_rename",
        max_body: RENAME_BODY,
        handler: jobqueue_rename,
    },
    Procedure {
        name: "jobqueue_purge",
        max_body: SMALL_BODY,
        handler: jobqueue_purge,
    },
];

/// Why the queue could not be prepared (2.5.2's `InitAndVerifyQueue`).
#[derive(Debug)]
pub enum PrepareError {
    /// Opening or writing a queue file failed.
    Io(PathBuf, io::Error),
    /// `queue/version` holds something else than 1.
    Version(String),
}

impl std::fmt::Display for PrepareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrepareError::Io(p, e) => write!(f, "{}", os_error_text(e, Some(p))),
            PrepareError::Version(v) => write!(
                f,
                "Found job queue version {v}, expected {JOB_QUEUE_VERSION}"
            ),
        }
    }
}

/// Prepares the queue as 2.5.2's node daemon does at start-up: opens (or
/// creates) the lock file and, if nobody holds the lock, writes `version`
/// (`1`) and `serial` (`0`) when they are missing and checks the version.
/// The calls of this module run it themselves until it succeeds once.
pub fn prepare(paths: &Paths) -> Result<(), PrepareError> {
    let queue = paths.queue_dir();
    let lock_path = queue.join(LOCK_FILE);
    let io_err = |p: &Path, e| PrepareError::Io(paths.to_wire(p), e);
    let Some(_lock) =
        FileLock::exclusive(&lock_path, Duration::ZERO).map_err(|e| io_err(&lock_path, e))?
    else {
        // Held elsewhere (a master daemon on this node): skip the checks.
        return Ok(());
    };
    let meta = FileMeta {
        mode: Some(FILE_MODE),
        owner: Some(MASTERD_OWNER),
        times: None,
    };
    let version = queue.join("version");
    match std::fs::read_to_string(&version) {
        Ok(text) => {
            let text = text.trim();
            if text.parse::<u32>().ok() != Some(JOB_QUEUE_VERSION) {
                return Err(PrepareError::Version(text.to_string()));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let data = format!("{JOB_QUEUE_VERSION}\n");
            fsutil::write_atomic(&version, data.as_bytes(), &meta)
                .map_err(|e| io_err(&version, e))?;
        }
        Err(e) => return Err(io_err(&version, e)),
    }
    let serial = queue.join("serial");
    match serial.symlink_metadata() {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fsutil::write_atomic(&serial, b"0\n", &meta).map_err(|e| io_err(&serial, e))
        }
        Err(e) => Err(io_err(&serial, e)),
    }
}

/// The process-wide turn: one queue call at a time, waited for with a
/// deadline (a plain `Mutex` would queue callers without a bound).
struct Gate {
    state: Mutex<GateState>,
    free: Condvar,
}

struct GateState {
    busy: bool,
    /// The queue directory [`prepare`] succeeded for.
    prepared: Option<PathBuf>,
}

static GATE: Gate = Gate {
    state: Mutex::new(GateState {
        busy: false,
        prepared: None,
    }),
    free: Condvar::new(),
};

/// Holding the turn; dropping it lets the next caller in.
struct Turn;

impl Gate {
    fn state(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enter(&self, deadline: Instant) -> Option<Turn> {
        let mut s = self.state();
        while s.busy {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            s = self
                .free
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        s.busy = true;
        Some(Turn)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        GATE.state().busy = false;
        GATE.free.notify_one();
    }
}

/// Runs `f` with the queue locked (2.5.2's `_RequireJobQueueLock`).
fn with_queue_lock<T>(
    ctx: &Context,
    f: impl FnOnce() -> Result<T, RpcError>,
) -> Result<T, RpcError> {
    let deadline = Instant::now() + QUEUE_LOCK_TIMEOUT;
    let timed_out = || {
        backend(format!(
            "Failed to lock {QUEUE_DIR}/{LOCK_FILE} in exclusive mode"
        ))
    };
    let not_ready = || backend("Job queue failed initialization, cannot update jobs");
    let _turn = GATE.enter(deadline).ok_or_else(timed_out)?;
    let queue = ctx.paths.queue_dir();
    if GATE.state().prepared.as_ref() != Some(&queue) {
        match prepare(&ctx.paths) {
            Ok(()) => GATE.state().prepared = Some(queue.clone()),
            Err(PrepareError::Io(p, e)) => {
                log::error!(
                    "Can't init/verify the queue: {}",
                    os_error_text(&e, Some(&p))
                );
                return Err(not_ready());
            }
            Err(e) => return Err(backend(e)),
        }
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let _lock = match FileLock::exclusive(&queue.join(LOCK_FILE), left) {
        Ok(Some(lock)) => lock,
        Ok(None) => return Err(timed_out()),
        Err(e) => {
            log::error!("Can't open the queue lock: {e}");
            GATE.state().prepared = None;
            return Err(not_ready());
        }
    };
    f()
}

/// A queue file named by the master, checked lexically: its normalised
/// wire path, strictly below the queue directory and not the lock file.
fn queue_wire_path(name: &str) -> Result<PathBuf, RpcError> {
    let path = fsutil::below_dir(QUEUE_DIR, name).ok_or_else(|| {
        RpcError::Failed(format!(
            "Passed job queue file '{name}' does not belong to the queue directory '{QUEUE_DIR}'"
        ))
    })?;
    if path == Path::new(QUEUE_DIR).join(LOCK_FILE) {
        return Err(RpcError::Failed(format!(
            "Passed job queue file '{name}' is the queue lock file"
        )));
    }
    Ok(path)
}

/// A checked queue file: what the master called it, the normalised wire
/// path and the local path.
struct QueueFile {
    name: String,
    wire: PathBuf,
    local: PathBuf,
}

impl QueueFile {
    fn new(ctx: &Context, name: String) -> Result<QueueFile, RpcError> {
        let wire = queue_wire_path(&name)?;
        let local = ctx.paths.to_local(&wire.to_string_lossy());
        Ok(QueueFile { name, wire, local })
    }

    /// The symlink check: the real parent directory is inside the queue.
    /// Done with the queue locked, right before the file is touched.
    fn check_real_location(&self, ctx: &Context) -> Result<(), RpcError> {
        if fsutil::parent_stays_inside(&ctx.paths.queue_dir(), &self.local) {
            Ok(())
        } else {
            Err(RpcError::Failed(format!(
                "Passed job queue file '{}' does not belong to the queue directory '{QUEUE_DIR}'",
                self.name
            )))
        }
    }
}

/// `jobqueue_update [file_name, [encoding, content]]`: writes a job file.
fn jobqueue_update(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (name, content): (String, Value) = decode(body)?;
    let file = QueueFile::new(ctx, name)?;
    let data = blob::decode(&content, MAX_JOB_FILE).map_err(backend)?;
    with_queue_lock(ctx, || {
        file.check_real_location(ctx)?;
        let meta = FileMeta {
            mode: Some(FILE_MODE),
            owner: Some(MASTERD_OWNER),
            times: None,
        };
        fsutil::write_atomic(&file.local, &data, &meta)
            .map_err(|e| backend(os_error_text(&e, Some(&file.wire))))?;
        Ok(Value::Null)
    })
}

/// `jobqueue_rename [[old, new], ...]`: moves job files (into the archive).
fn jobqueue_rename(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let pairs: Vec<(String, String)> = decode(body)?;
    let pairs = pairs
        .into_iter()
        .map(|(old, new)| Ok((QueueFile::new(ctx, old)?, QueueFile::new(ctx, new)?)))
        .collect::<Result<Vec<_>, RpcError>>()?;
    with_queue_lock(ctx, || {
        for (old, new) in &pairs {
            old.check_real_location(ctx)?;
            new.check_real_location(ctx)?;
        }
        let mut done = Vec::with_capacity(pairs.len());
        for (old, new) in &pairs {
            // Again: an earlier pair may have moved a symlink into place.
            old.check_real_location(ctx)?;
            new.check_real_location(ctx)?;
            rename_job_file(ctx, old, new)?;
            done.push(Value::Null);
        }
        Ok(Value::Array(done))
    })
}

/// Renames one queue file; when the target directory is missing (and the
/// source exists), creates it and tries once more.
fn rename_job_file(ctx: &Context, old: &QueueFile, new: &QueueFile) -> Result<(), RpcError> {
    let failed = |e: io::Error| backend(os_error_text(&e, Some(&old.wire)));
    match std::fs::rename(&old.local, &new.local) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound && old.local.symlink_metadata().is_ok() => {
            let parent = new.local.parent().unwrap_or(Path::new("/"));
            make_queue_dirs(&ctx.paths, parent)?;
            std::fs::rename(&old.local, &new.local).map_err(failed)?;
        }
        Err(e) => return Err(failed(e)),
    }
    for dir in [old.local.parent(), new.local.parent()]
        .into_iter()
        .flatten()
    {
        fsutil::sync_dir(dir).map_err(|e| backend(os_error_text(&e, None)))?;
    }
    Ok(())
}

/// Creates the missing directories down to `dir`, each mode 0700 and owned
/// by the masterd user (2.5.2: `makedirs`). The caller checked that the
/// nearest existing one is inside the queue.
fn make_queue_dirs(paths: &Paths, dir: &Path) -> Result<(), RpcError> {
    let failed = |d: &Path, e: io::Error| backend(os_error_text(&e, Some(&paths.to_wire(d))));
    // Each new directory's parent is fsynced, so a job renamed into a new
    // archive directory cannot vanish in a crash.
    let created = fsutil::create_dirs(dir, DIR_MODE).map_err(|e| failed(dir, e))?;
    for d in &created {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(DIR_MODE))
            .map_err(|e| failed(d, e))?;
        std::os::unix::fs::chown(d, Some(MASTERD_OWNER.0), Some(MASTERD_OWNER.1))
            .map_err(|e| failed(d, e))?;
    }
    Ok(())
}

/// `jobqueue_purge []`: removes the visible regular files of the queue
/// (except the lock) and of the archive, without recursing.
fn jobqueue_purge(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let _: IgnoredAny = decode(body)?;
    with_queue_lock(ctx, || {
        let queue = ctx.paths.queue_dir();
        clean_directory(&ctx.paths, &queue, Some(LOCK_FILE))?;
        clean_directory(&ctx.paths, &queue.join(ARCHIVE_DIR), None)?;
        Ok(Value::Null)
    })
}

/// Removes the regular files in `dir` whose names do not start with a dot;
#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn scratch(tag: &str) -> (Context, PathBuf) {
        let root =
            std::env::temp_dir().join(format!("ganeti-jobqueue-{tag}-{}", crate::sys::getpid()));
        let _ = std::fs::remove_dir_all(&root);
        let ctx = Context::for_root(&root, "node1.example.com");
        std::fs::create_dir_all(ctx.paths.queue_archive_dir()).unwrap();
        (ctx, root)
    }

    #[test]
    fn os_errors_read_like_python() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            os_error_text(&e, Some(Path::new("/x"))),
            "[Errno 2] No such file or directory: '/x'"
        );
        assert_eq!(
            os_error_text(&e, None),
            "[Errno 2] No such file or directory"
        );
    }

    #[test]
    fn wire_paths_must_be_strictly_inside_the_queue() {
        assert!(queue_wire_path("/var/lib/ganeti/queue/job-1").is_ok());
        assert_eq!(
            queue_wire_path("/var/lib/ganeti/queue/./archive//0/job-1").unwrap(),
            Path::new("/var/lib/ganeti/queue/archive/0/job-1")
        );
        for bad in [
            "/var/lib/ganeti/queue",
            "/var/lib/ganeti/queue-x",
            "/var/lib/ganeti/queue/../../../etc/shadow",
            "/var/lib/ganeti/queue/lock",
            "/var/lib/ganeti/queue/archive/../lock",
            "job-1",
            "",
        ] {
            assert!(queue_wire_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prepare_writes_version_and_serial_once_and_checks_the_version() {
        let (ctx, root) = scratch("prepare");
        let q = ctx.paths.queue_dir();
        prepare(&ctx.paths).unwrap();
        assert_eq!(std::fs::read_to_string(q.join("version")).unwrap(), "1\n");
        assert_eq!(std::fs::read_to_string(q.join("serial")).unwrap(), "0\n");
        assert_eq!(q.join("version").metadata().unwrap().mode() & 0o7777, 0o600);
        std::fs::write(q.join("serial"), "17\n").unwrap();
        prepare(&ctx.paths).unwrap();
        assert_eq!(std::fs::read_to_string(q.join("serial")).unwrap(), "17\n");
        std::fs::write(q.join("version"), "2\n").unwrap();
        assert_eq!(
            prepare(&ctx.paths).unwrap_err().to_string(),
            "Found job queue version 2, expected 1"
        );
        std::fs::remove_dir_all(&root).unwrap();
        assert!(matches!(prepare(&ctx.paths), Err(PrepareError::Io(..))));
    }

    #[test]
    fn largest_job_file_fits_the_body_limit() {
        // Incompressible data grows a little in zlib, then 4/3 in base64.
        let mut random = vec![0u8; MAX_JOB_FILE];
        openssl::rand::rand_bytes(&mut random).unwrap();
        let body =
            serde_json::to_vec(&(format!("{QUEUE_DIR}/job-1"), blob::encode(&random))).unwrap();
        assert!(body.len() <= UPDATE_BODY, "{} > {UPDATE_BODY}", body.len());
    }
}
