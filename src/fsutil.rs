//! File helpers shared by the daemons: atomic, fsynced writes; lexical path
//! containment with a symlink check; an exclusive `flock` with a timeout.
//!
//! Every file the daemons own is written with [`write_atomic`]: a hidden
//! temporary file in the same directory, fsynced, renamed over the target,
//! and the directory fsynced. A reader sees the old file or the new one,
//! never half of either, and a crash leaves at most a hidden `.…new` file.

use std::fs::{File, FileTimes, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::sys;

/// How a file written by [`write_atomic`] ends up.
#[derive(Debug, Clone, Default)]
pub struct FileMeta {
    /// Permission bits (masked with 0o7777); `None` keeps the 0600 of the
    /// temporary file.
    pub mode: Option<u32>,
    /// Owner and group; `None` keeps the daemon's.
    pub owner: Option<(u32, u32)>,
    /// Access and modification times; `None` keeps "now".
    pub times: Option<(SystemTime, SystemTime)>,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The temporary name used next to `path`: hidden, with the process ID, a
/// counter and random bytes, so a leftover of a crashed process (or of an
/// earlier process with the same ID) never collides.
fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut random = [0u8; 4];
    openssl::rand::rand_bytes(&mut random).map_err(io::Error::other)?;
    let random = u32::from_le_bytes(random);
    let temp = format!(
        ".{}.{}-{n}-{random:08x}.new",
        name.to_string_lossy(),
        sys::getpid()
    );
    Ok(dir.unwrap_or(Path::new(".")).join(temp))
}

/// Writes `data` to `path` atomically: temporary file in the same directory,
/// owner, mode and times set, fsync, rename, fsync of the directory. On an
/// error before the rename the temporary file is removed and `path` is
/// untouched; an error fsyncing the directory comes after the rename, so
/// `path` then already holds the new contents.
pub fn write_atomic(path: &Path, data: &[u8], meta: &FileMeta) -> io::Result<()> {
    let temp = temp_path(path)?;
    let result = write_temp(&temp, data, meta).and_then(|()| std::fs::rename(&temp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
        return result;
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Creates `dir` and its missing ancestors with `mode` (under the umask),
/// fsyncing the parent of each new directory, so the new entries survive a
/// crash. Returns the directories it created, outermost first.
pub fn create_dirs(dir: &Path, mode: u32) -> io::Result<Vec<PathBuf>> {
    use std::os::unix::fs::DirBuilderExt;
    let mut missing = Vec::new();
    let mut d = dir;
    while let Err(e) = d.symlink_metadata() {
        if e.kind() != io::ErrorKind::NotFound {
            return Err(e);
        }
        missing.push(d.to_path_buf());
        match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => d = p,
            _ => break,
        }
    }
    let mut created = Vec::with_capacity(missing.len());
    for d in missing.into_iter().rev() {
        match std::fs::DirBuilder::new().mode(mode).create(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        sync_dir(d.parent().unwrap_or(Path::new("/")))?;
        created.push(d);
    }
    Ok(created)
}

fn write_temp(temp: &Path, data: &[u8], meta: &FileMeta) -> io::Result<()> {
    write_temp_unsynced(temp, data, meta)?.sync_all()
}

/// Writes several files as [`write_atomic`] does, as one group commit:
/// every temporary file is written first, then each is fsynced, then each
/// is renamed over its target, then each directory concerned is fsynced
/// once. A crash before the last directory fsync may leave any subset of
/// the targets renamed, so a caller acknowledges nothing before this
/// returns. One result per file, in order: a file whose temporary write,
/// fsync or rename failed is untouched (its temporary file removed); a
/// failed directory fsync fails every file renamed into that directory
/// (those targets then already hold the new contents, as with
/// [`write_atomic`]).
pub fn write_atomic_many(files: &[(&Path, &[u8])], meta: &FileMeta) -> Vec<io::Result<()>> {
    write_atomic_many_keep(files, meta).0
}

/// [`write_atomic_many`], handing back the files it replaced, still open
/// (`O_PATH` handles): a replaced file's blocks are freed when its last
/// handle closes, and with online discard (`-o discard`) that free is a
/// synchronous device command (about 0.1 ms here). A caller in a hurry
/// drops the handles once it has answered.
pub fn write_atomic_many_keep(
    files: &[(&Path, &[u8])],
    meta: &FileMeta,
) -> (Vec<io::Result<()>>, Vec<File>) {
    let mut replaced = Vec::new();
    let mut results: Vec<io::Result<()>> = Vec::with_capacity(files.len());
    let mut temps: Vec<Option<(PathBuf, File)>> = Vec::with_capacity(files.len());
    for (path, data) in files {
        let created =
            temp_path(path).and_then(|temp| match write_temp_unsynced(&temp, data, meta) {
                Ok(f) => Ok((temp, f)),
                Err(e) => {
                    let _ = std::fs::remove_file(&temp);
                    Err(e)
                }
            });
        match created {
            Ok(t) => {
                temps.push(Some(t));
                results.push(Ok(()));
            }
            Err(e) => {
                temps.push(None);
                results.push(Err(e));
            }
        }
    }
    for (slot, result) in temps.iter_mut().zip(results.iter_mut()) {
        let Some((temp, f)) = slot else { continue };
        if let Err(e) = f.sync_all() {
            let _ = std::fs::remove_file(&*temp);
            *slot = None;
            *result = Err(e);
        }
    }
    let mut dirs: Vec<(PathBuf, Vec<usize>)> = Vec::new();
    for (idx, slot) in temps.into_iter().enumerate() {
        let Some((temp, f)) = slot else { continue };
        drop(f);
        let path = files[idx].0;
        if let Ok(old) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
            .open(path)
        {
            replaced.push(old);
        }
        if let Err(e) = std::fs::rename(&temp, path) {
            let _ = std::fs::remove_file(&temp);
            results[idx] = Err(e);
            continue;
        }
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        match dirs.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, members)) => members.push(idx),
            None => dirs.push((dir, vec![idx])),
        }
    }
    for (dir, members) in dirs {
        if let Err(e) = sync_dir(&dir) {
            for idx in members {
                results[idx] = Err(match e.raw_os_error() {
                    Some(code) => io::Error::from_raw_os_error(code),
                    None => io::Error::new(e.kind(), e.to_string()),
                });
            }
        }
    }
    (results, replaced)
}

/// Creates `temp` (never following a symlink) with `data`, owner, mode and
/// times, without the fsync: the open file, for [`write_temp`] and
/// [`write_atomic_many`] to fsync.
fn write_temp_unsynced(temp: &Path, data: &[u8], meta: &FileMeta) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(temp)?;
    if let Some((uid, gid)) = meta.owner {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
    }
    if let Some(mode) = meta.mode {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
    }
    f.write_all(data)?;
    if let Some((atime, mtime)) = meta.times {
        f.set_times(FileTimes::new().set_accessed(atime).set_modified(mtime))?;
    }
    Ok(f)
}

/// Fsyncs a directory, so that a rename or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Normalises an absolute path lexically: repeated slashes and `.` go, `..`
/// removes the previous component (never above `/`). `None` for a relative
/// path or one with a NUL byte.
pub fn normalize(path: &str) -> Option<PathBuf> {
    if !path.starts_with('/') || path.contains('\0') {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(path).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

/// `path` normalised, when it lies strictly below `dir` (2.7's
/// `utils.IsBelowDir`, component-wise: `/a/bc` is not below `/a/b`, and
/// `dir` itself is not below `dir`). Both are wire (standard) paths.
pub fn below_dir(dir: &str, path: &str) -> Option<PathBuf> {
    let dir = normalize(dir)?;
    let path = normalize(path)?;
    (path != dir && path.starts_with(&dir)).then_some(path)
}

/// True when the real location of `path`'s parent directory is inside the
/// real location of `dir` (or is it): no symlinked directory on the way
/// leads out. A parent that does not exist yet is checked through its
/// nearest existing ancestor. Both are local paths.
pub fn parent_stays_inside(dir: &Path, path: &Path) -> bool {
    let Ok(real_dir) = dir.canonicalize() else {
        return false;
    };
    let mut ancestor = path.parent();
    while let Some(a) = ancestor {
        match a.canonicalize() {
            Ok(real) => return real.starts_with(&real_dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => ancestor = a.parent(),
            Err(_) => return false,
        }
    }
    false
}

/// An exclusive `flock` on an open file, released when dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl FileLock {
    /// Opens (creating it, mode 0600) and locks `path`, retrying with a
    /// backoff from 0.1 s up to 1 s until `timeout` has passed, as 2.5.2's
    /// `utils.LockFile` with a timeout. `Ok(None)` when it timed out.
    pub fn exclusive(path: &Path, timeout: Duration) -> io::Result<Option<FileLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        let end = Instant::now() + timeout;
        let mut pause = Duration::from_millis(100);
        loop {
            if sys::flock_exclusive_nb(&file)? {
                return Ok(Some(FileLock { file }));
            }
            let now = Instant::now();
            if now >= end {
                return Ok(None);
            }
            std::thread::sleep(pause.min(end - now));
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// The locked file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// An OS error as Python 2 prints an `EnvironmentError`: `[Errno 2] No
/// such file or directory: '/path'` (give the wire path). Errors without
/// an errno are shown as Rust prints them. (Used by `noded` and
/// `storage`.)
pub fn os_error_text(e: &std::io::Error, path: Option<&std::path::Path>) -> String {
    let Some(code) = e.raw_os_error() else {
        return match path {
            Some(p) => format!("{e}: '{}'", p.display()),
            None => e.to_string(),
        };
    };
    let text = e.to_string();
    let strerror = text
        .strip_suffix(&format!(" (os error {code})"))
        .unwrap_or(&text);
    match path {
        Some(p) => format!("[Errno {code}] {strerror}: '{}'", p.display()),
        None => format!("[Errno {code}] {strerror}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ganeti-fsutil-{name}-{}", sys::getpid()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn normalize_resolves_dots() {
        assert_eq!(normalize("/a//b/./c/../d").unwrap(), Path::new("/a/b/d"));
        assert_eq!(normalize("/../../etc").unwrap(), Path::new("/etc"));
        assert!(normalize("a/b").is_none());
        assert!(normalize("").is_none());
        assert!(normalize("/a\0b").is_none());
    }

    #[test]
    fn below_dir_is_component_wise() {
        let q = "/var/lib/ganeti/queue";
        assert_eq!(
            below_dir(q, "/var/lib/ganeti/queue/job-1").unwrap(),
            Path::new("/var/lib/ganeti/queue/job-1")
        );
        assert!(below_dir(q, "/var/lib/ganeti/queue/archive/0/job-1").is_some());
        // 2.5.2's string-prefix check let all of these through.
        for bad in [
            "/var/lib/ganeti/queue",
            "/var/lib/ganeti/queue/",
            "/var/lib/ganeti/queue-x",
            "/var/lib/ganeti/queue/../../../etc/shadow",
            "/var/lib/ganeti/queue/..",
            "var/lib/ganeti/queue/job-1",
            "/tmp/job-1",
        ] {
            assert!(below_dir(q, bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn atomic_write_sets_metadata_and_leaves_no_temp() {
        let d = scratch("write");
        let f = d.join("target");
        std::fs::write(&f, b"old").unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let meta = FileMeta {
            mode: Some(0o100644),
            owner: Some((0, 0)),
            times: Some((t, t)),
        };
        write_atomic(&f, b"new contents", &meta).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"new contents");
        let m = std::fs::metadata(&f).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o644);
        assert_eq!(m.mtime(), 1_000_000_000);
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn failed_atomic_write_keeps_the_old_file() {
        let d = scratch("fail");
        let f = d.join("target");
        std::fs::write(&f, b"old").unwrap();
        // Renaming a file over a non-empty directory fails after the
        // temporary file was written.
        let sub = d.join("dir");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("x"), b"").unwrap();
        assert!(write_atomic(&sub, b"data", &FileMeta::default()).is_err());
        assert_eq!(std::fs::read(&f).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 2);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn atomic_write_many_writes_all_and_fails_each_on_its_own() {
        let d = scratch("many");
        let a = d.join("a");
        let b = d.join("b");
        std::fs::write(&a, b"old a").unwrap();
        // A rename over a non-empty directory fails after the temporary
        // file was written and fsynced; the others still go through.
        let sub = d.join("dir");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("x"), b"").unwrap();
        // A file in another directory: that directory is fsynced too.
        let c = sub.join("c");
        let files: [(&Path, &[u8]); 4] = [
            (&a, b"new a"),
            (&sub, b"never"),
            (&b, b"new b"),
            (&c, b"new c"),
        ];
        let meta = FileMeta {
            mode: Some(0o640),
            ..FileMeta::default()
        };
        let r = write_atomic_many(&files, &meta);
        assert_eq!(r.len(), 4);
        assert!(r[0].is_ok() && r[2].is_ok() && r[3].is_ok(), "{r:?}");
        assert!(r[1].is_err());
        assert_eq!(std::fs::read(&a).unwrap(), b"new a");
        assert_eq!(std::fs::read(&b).unwrap(), b"new b");
        assert_eq!(std::fs::read(&c).unwrap(), b"new c");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&b).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o640);
        // No temporary file is left anywhere.
        let mut names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .chain(std::fs::read_dir(&sub).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c", "dir", "x"]);
        assert!(write_atomic_many(&[], &FileMeta::default()).is_empty());
        // The replaced file stays readable through the handle kept.
        let files: [(&Path, &[u8]); 1] = [(&b, b"newer b")];
        let (r, kept) = write_atomic_many_keep(&files, &FileMeta::default());
        assert!(r[0].is_ok());
        assert_eq!(kept.len(), 1);
        let m = kept[0].metadata().unwrap();
        assert_eq!((m.len(), m.nlink()), (5, 0));
        drop(kept);
        assert_eq!(std::fs::read(&b).unwrap(), b"newer b");
        // A target in a missing directory fails before anything is written.
        let gone = d.join("missing/f");
        let files: [(&Path, &[u8]); 2] = [(&gone, b"x"), (&a, b"again")];
        let r = write_atomic_many(&files, &FileMeta::default());
        assert_eq!(r[0].as_ref().unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(r[1].is_ok());
        assert_eq!(std::fs::read(&a).unwrap(), b"again");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn create_dirs_makes_only_the_missing_ones() {
        use std::os::unix::fs::PermissionsExt;
        let d = scratch("mkdirs");
        let deep = d.join("a/b/c");
        let made = create_dirs(&deep, 0o700).unwrap();
        assert_eq!(made, [d.join("a"), d.join("a/b"), deep.clone()]);
        let mode = std::fs::metadata(&deep).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
        assert!(create_dirs(&deep, 0o700).unwrap().is_empty());
        std::fs::write(d.join("file"), b"").unwrap();
        assert!(create_dirs(&d.join("file/x"), 0o700).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symlinked_parent_is_outside() {
        let d = scratch("link");
        let inside = d.join("queue");
        std::fs::create_dir(&inside).unwrap();
        std::os::unix::fs::symlink("/etc", inside.join("evil")).unwrap();
        assert!(parent_stays_inside(&inside, &inside.join("job-1")));
        assert!(parent_stays_inside(&inside, &inside.join("new/sub/job-1")));
        assert!(!parent_stays_inside(&inside, &inside.join("evil/passwd")));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lock_times_out_while_held() {
        let d = scratch("lock");
        let p = d.join("lock");
        let held = FileLock::exclusive(&p, Duration::ZERO).unwrap().unwrap();
        assert!(FileLock::exclusive(&p, Duration::from_millis(150))
            .unwrap()
            .is_none());
        drop(held);
        assert!(FileLock::exclusive(&p, Duration::ZERO).unwrap().is_some());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn os_errors_read_as_python_printed_them() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            os_error_text(&e, Some(std::path::Path::new("/srv/x"))),
            "[Errno 2] No such file or directory: '/srv/x'"
        );
        assert_eq!(
            os_error_text(&e, None),
            "[Errno 2] No such file or directory"
        );
        let other = io::Error::new(io::ErrorKind::InvalidInput, "bad length");
        assert_eq!(
            os_error_text(&other, Some(std::path::Path::new("/a"))),
            "bad length: '/a'"
        );
    }
}
