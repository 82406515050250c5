//! Block devices (2.5.2's `bdev.py`) and storage units (`storage.py`).
//!
//! Supported device types: `file` (`LD_FILE`, a sparse file below the file
//! storage directory or the shared file storage directory) and `lvm`
//! (`LD_LV`, a logical volume, the `plain` disk template). Not supported:
//! `drbd8` and `blockdev` (adopted devices); a disk of those types is refused
//! with a message that says so.
//!
//! Every disk is first turned into a [`Device`] by [`Device::from_disk`],
//! which only checks its identity and touches nothing: the `physical_id`
//! shape, LVM names (2.5.2's rules, plus: not empty, not starting with `-`,
//! at most [`lvm::MAX_LVM_NAME`] characters), and for files the path, which
//! must be normalised and lie strictly below one of the two storage
//! directories (the containment check of [`dirs`], so no
//! symlinked directory leads out) and must not be anything but a regular
//! file (a symlink is refused, never followed). A refused disk is a
//! [`BdevError::Refused`]; the procedures check all their disks before they
//! act.
//!
//! Differences from 2.5.2, on the safe side:
//! * 2.5.2 did not check file disk paths at all, and accepted LVM names that
//!   look like options (`-x`) or are empty.
//! * File disks are created with mode 0600 (2.5.2: 0777 under the daemon's
//!   umask 077, so 0700), and a file whose size cannot be set is removed
//!   again. Creation and removal fsync the directory.
//! * 2.5.2 formatted two file messages with a broken `%` (an exception text
//!   `incomplete format` instead); here they read `Error in file creation:
//!   <error>` and `Error in file growth: <error>`.
//! * Wiping a file disk adds `conv=notrunc` and `oflag=nofollow` to `dd`:
//!   2.5.2's `dd` cut the file at the end of the wiped chunk.
//! * Every external command has a timeout, and one whose standard output
//!   reaches `cmd::MAX_OUTPUT` counts as failed (a cut listing is never
//!   answered as complete).
//! * Storage directories that are, contain or lie below system or Ganeti
//!   directories are not used ([`dirs::FORBIDDEN_DIRS`]); PV names must be
//!   device paths.
//! * The device cache (`/var/run/ganeti/bdev-cache`) and the instance disk
//!   links directory are created when missing (2.5.2 left that to its
//!   ensure-dirs tool).
#![forbid(unsafe_code)]

pub mod dirs;
pub mod file;
pub mod lvm;
pub mod units;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::cmd::{self, CmdResult};
use crate::objects::{Disk, LD_BLOCKDEV, LD_DRBD8, LD_FILE, LD_LV};
use crate::paths::{Paths, RUN_DIR};
use crate::pytext::{self, Strings};

/// `ldisk_status` values (`LDS_*`).
pub const LDS_OKAY: u8 = 1;
pub const LDS_FAULTY: u8 = 3;

/// `constants.DISK_SEPARATOR`: `<instance>:<idx>` links.
pub const DISK_SEPARATOR: &str = ":";
/// Where the instance disk links live (wire path).
pub const DISK_LINKS_DIR: &str = "/var/run/ganeti/instance-disks";
/// Longest instance name accepted in a link or cache entry (a file name
/// must stay below 255 bytes with the `:<idx>` suffix).
pub const MAX_INSTANCE_NAME: usize = 200;

/// Why a block device operation did not happen.
#[derive(Debug, Clone, PartialEq)]
pub enum BdevError {
    /// The disk's identity or an argument is refused; nothing was touched.
    Refused(String),
    /// The operation failed (2.5.2's `BlockDeviceError` text).
    Failed(String),
    /// An error 2.5.2 raised outside its block device errors (it reaches the
    /// master as `Error while executing backend function: <text>`).
    Other(String),
}

impl std::fmt::Display for BdevError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BdevError::Refused(m) | BdevError::Failed(m) | BdevError::Other(m) => {
                write!(f, "{m}")
            }
        }
    }
}

/// A block device's state (2.5.2's `BlockDevStatus`; `sync_percent` and
/// `estimated_time` are always None for files and LVs).
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub dev_path: String,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub is_degraded: bool,
    pub ldisk_status: u8,
}

impl Status {
    /// The dict sent on the wire: None fields left out.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("dev_path".into(), Value::from(self.dev_path.clone()));
        if let Some(major) = self.major {
            m.insert("major".into(), Value::from(major));
        }
        if let Some(minor) = self.minor {
            m.insert("minor".into(), Value::from(minor));
        }
        m.insert("is_degraded".into(), Value::from(self.is_degraded));
        m.insert("ldisk_status".into(), Value::from(self.ldisk_status));
        Value::Object(m)
    }
}

/// A checked block device.
#[derive(Debug, Clone)]
pub enum Device {
    File(file::FileDev),
    Lv(lvm::Lv),
}

impl Device {
    /// Checks a disk's identity (see the module documentation). Runs no
    /// command and touches nothing.
    pub fn from_disk(paths: &Paths, disk: &Disk) -> Result<Device, BdevError> {
        let id = disk.physical_id.as_deref().ok_or_else(|| {
            BdevError::Refused(format!(
                "Invalid configuration data None (disk {} has no physical_id)",
                describe(disk)
            ))
        })?;
        match disk.dev_type.as_str() {
            LD_FILE => {
                if disk.children.as_ref().is_some_and(|c| !c.is_empty()) {
                    return Err(BdevError::Refused("Invalid setup for file device".into()));
                }
                file::FileDev::new(paths, id, disk.size).map(Device::File)
            }
            LD_LV => {
                if disk.children.as_ref().is_some_and(|c| !c.is_empty()) {
                    return Err(BdevError::Refused(
                        "Invalid setup for LV device: logical volumes have no children".into(),
                    ));
                }
                let (vg, lv) = two_strings(id)?;
                lvm::Lv::new(vg, lv, disk.size).map(Device::Lv)
            }
            LD_DRBD8 | LD_BLOCKDEV => Err(BdevError::Refused(format!(
                "Block device type '{}' is not supported by this node daemon",
                disk.dev_type
            ))),
            other => Err(BdevError::Refused(format!(
                "Invalid block device type '{other}'"
            ))),
        }
    }

    /// 2.5.2's `Attach`: is the device there (and active, for an LV)? For
    /// an LV this runs `lvs` and records major, minor and extent size.
    pub fn attach(&mut self) -> bool {
        match self {
            Device::File(f) => f.exists(),
            Device::Lv(lv) => lv.attach(),
        }
    }

    /// The device path as 2.5.2 reports it (wire path for files).
    pub fn dev_path(&self) -> String {
        match self {
            Device::File(f) => f.wire.clone(),
            Device::Lv(lv) => lv.dev_path(),
        }
    }

    /// The path to open on this node (under `GANETI_ROOTDIR` for files).
    pub fn local_path(&self) -> PathBuf {
        match self {
            Device::File(f) => f.local.clone(),
            Device::Lv(lv) => PathBuf::from(lv.dev_path()),
        }
    }

    /// 2.5.2's `Create` (the size in MiB is the disk's own).
    pub fn create(&self) -> Result<(), BdevError> {
        match self {
            Device::File(f) => f.create(),
            Device::Lv(lv) => lv.create(),
        }
    }

    /// 2.5.2's `Assemble`: file: it must exist; LV: `lvchange -ay`.
    pub fn assemble(&self) -> Result<(), BdevError> {
        match self {
            Device::File(f) => f.assemble(),
            Device::Lv(lv) => lv.assemble(),
        }
    }

    /// 2.5.2's `Remove`.
    pub fn remove(&mut self) -> Result<(), BdevError> {
        match self {
            Device::File(f) => f.remove(),
            Device::Lv(lv) => lv.remove(),
        }
    }

    /// 2.5.2's `SetInfo` (LV tags; nothing for files).
    pub fn set_info(&self, text: &str) -> Result<(), BdevError> {
        match self {
            Device::File(_) => Ok(()),
            Device::Lv(lv) => lv.set_info(text),
        }
    }

    /// 2.5.2's `Grow` by `amount` MiB.
    pub fn grow(&mut self, amount: i64, dryrun: bool) -> Result<(), BdevError> {
        match self {
            Device::File(f) => f.grow(amount, dryrun),
            Device::Lv(lv) => lv.grow(amount, dryrun),
        }
    }

    /// 2.5.2's `GetActualSize`, in bytes.
    pub fn actual_size(&self) -> Result<u64, BdevError> {
        match self {
            Device::File(f) => f.actual_size(),
            Device::Lv(lv) => blockdev_size(&lv.dev_path()),
        }
    }

    /// 2.5.2's `GetSyncStatus` (and `CombinedSyncStatus`: no children).
    pub fn status(&self) -> Status {
        match self {
            Device::File(f) => Status {
                dev_path: f.wire.clone(),
                major: None,
                minor: None,
                is_degraded: false,
                ldisk_status: LDS_OKAY,
            },
            Device::Lv(lv) => lv.status(),
        }
    }

    /// The disk's size in MiB as the master sent it.
    pub fn size(&self) -> Option<u64> {
        match self {
            Device::File(f) => f.size,
            Device::Lv(lv) => lv.size,
        }
    }

    /// Checks a new unique id for `blockdev_rename` (before anything is
    /// renamed). Files cannot be renamed (2.5.2), so any id passes here.
    pub fn check_new_id(&self, new_id: &Value) -> Result<(), BdevError> {
        match self {
            Device::File(_) => Ok(()),
            Device::Lv(lv) => lv.check_new_id(new_id).map(|_| ()),
        }
    }

    /// 2.5.2's `Rename`.
    pub fn rename(&mut self, new_id: &Value) -> Result<(), BdevError> {
        match self {
            Device::File(_) => Err(BdevError::Failed(
                "Rename is not supported for file-based storage".into(),
            )),
            Device::Lv(lv) => lv.rename(new_id),
        }
    }

    /// How 2.5.2 printed the device (`repr(dev)`) in rename messages.
    pub fn describe(&self) -> String {
        match self {
            Device::File(f) => format!("<FileStorage: {}>", f.wire),
            Device::Lv(lv) => format!("<LogicalVolume: {}>", lv.dev_path()),
        }
    }
}

/// The device path of a disk as 2.5.2's `_RecursiveFindBD(disk).dev_path`
/// would give it, for the `file` type (the file itself, mapped under
/// `GANETI_ROOTDIR`) and `lvm` (`/dev/<vg>/<lv>`); `Err(message)` for
/// unknown types, hostile ids (paths outside the file storage dirs,
/// separators in vg/lv names) or a device that does not exist.
pub fn disk_dev_path(paths: &Paths, disk: &Disk) -> Result<PathBuf, String> {
    let mut dev = Device::from_disk(paths, disk).map_err(|e| e.to_string())?;
    if !dev.attach() {
        return Err(format!("Block device '{}' is not set up.", describe(disk)));
    }
    Ok(dev.local_path())
}

/// `(a, b)` from a two-element id of strings.
fn two_strings(id: &[Value]) -> Result<(&str, &str), BdevError> {
    match id {
        [Value::String(a), Value::String(b)] => Ok((a, b)),
        _ => Err(BdevError::Refused(format!(
            "Invalid configuration data {}",
            py_repr(&Value::from(id.to_vec()))
        ))),
    }
}

/// `str(disk)` as 2.5.2 printed it in messages (`objects.Disk.__str__`).
pub fn describe(disk: &Disk) -> String {
    let ids = |v: &Option<Vec<Value>>| match v {
        Some(v) => py_tuple(v),
        None => "None".to_string(),
    };
    let mut s = if disk.dev_type == LD_LV {
        format!(
            "<LogicalVolume(/dev/{}/{}",
            disk.logical_str(0).unwrap_or("None"),
            disk.logical_str(1).unwrap_or("None")
        )
    } else {
        let children = match &disk.children {
            Some(c) if c.is_empty() => "[]".to_string(),
            Some(c) => format!(
                "[{}]",
                c.iter().map(describe).collect::<Vec<_>>().join(", ")
            ),
            None => "None".to_string(),
        };
        format!(
            "<Disk(type={}, logical_id={}, physical_id={}, children={}",
            disk.dev_type,
            ids(&disk.logical_id),
            ids(&disk.physical_id),
            children
        )
    };
    match &disk.iv_name {
        Some(iv) => s.push_str(&format!(", visible as /dev/{iv}")),
        None => s.push_str(", not visible"),
    }
    match disk.size {
        Some(size) => s.push_str(&format!(", size={size}m)>")),
        None => s.push_str(", size='None')>"),
    }
    s
}

/// A JSON value as Python 2 `repr` showed the decoded value
/// ([`pytext::py_repr`]; ASCII strings are `str`).
pub fn py_repr(v: &Value) -> String {
    pytext::py_repr(v, Strings::AsciiAsStr)
}

/// A list shown as a Python tuple (the node turned ids into tuples).
pub fn py_tuple(items: &[Value]) -> String {
    let parts: Vec<String> = items.iter().map(py_repr).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// Python 2 `repr` of a string ([`pytext::py_repr_str`]; ASCII text is a
/// `str`, other text `unicode`).
pub fn py_str(s: &str) -> String {
    pytext::py_repr_str(s, Strings::AsciiAsStr)
}

/// Python's `str(float)` ([`pytext::float_str`]): `84.0`, `20.5`.
pub use crate::pytext::float_str as py_float;

/// 2.5.2's `utils.ShellQuoteArgs`: the command as its messages show it.
pub use crate::pytext::shell_quote_args;

/// Runs a command; a command that cannot be started counts as failed
/// (2.5.2 raised an error there), with the reason in `fail_reason`. So does
/// a command whose standard output reached [`cmd::MAX_OUTPUT`]: `cmd` keeps
/// only that much, and a listing cut there (`lvs` on a node with many
/// volumes) would otherwise be answered as if it were complete. Its output
/// is then dropped and `stderr` says why.
pub(crate) fn run(argv: &[&str], timeout: Duration) -> CmdResult {
    let program = argv.first().copied().unwrap_or("");
    match cmd::run(argv, timeout) {
        Ok(r) if r.stdout.len() as u64 >= cmd::MAX_OUTPUT => CmdResult {
            stdout: String::new(),
            stderr: format!(
                "{program}: output of {} bytes or more, cut and not used\n{}",
                cmd::MAX_OUTPUT,
                r.stderr
            ),
            fail_reason: Some(format!("output longer than {} bytes", cmd::MAX_OUTPUT)),
        },
        Ok(r) => r,
        Err(e) => CmdResult {
            stdout: String::new(),
            stderr: String::new(),
            fail_reason: Some(format!("can't execute '{program}': {e}")),
        },
    }
}

/// How long `blockdev --getsize64` may take.
const BLOCKDEV_TIMEOUT: Duration = Duration::from_secs(60);

/// `blockdev --getsize64 <dev>`: bytes.
pub fn blockdev_size(dev: &str) -> Result<u64, BdevError> {
    let r = run(&["blockdev", "--getsize64", dev], BLOCKDEV_TIMEOUT);
    if let Some(reason) = &r.fail_reason {
        return Err(BdevError::Failed(format!(
            "blockdev failed ({reason}): {}",
            r.output()
        )));
    }
    r.stdout
        .trim()
        .parse()
        .map_err(|e| BdevError::Failed(format!("Failed to parse blockdev output: {e}")))
}

/// The device cache file of a device path (2.5.2's
/// `DevCacheManager._ConvertPath`): `/dev/` dropped, `/` replaced by `_`.
pub fn cache_file(paths: &Paths, dev_path: &str) -> PathBuf {
    let name = dev_path.strip_prefix("/dev/").unwrap_or(dev_path);
    paths
        .to_local(&format!("{RUN_DIR}/bdev-cache"))
        .join(format!("bdev_{}", name.replace('/', "_")))
}

/// Records who uses a device (`<owner> <primary|secondary> <iv_name>`);
/// errors are only logged, as in 2.5.2.
pub fn update_cache(
    paths: &Paths,
    dev_path: &str,
    owner: &str,
    primary: bool,
    iv_name: Option<&str>,
) {
    let path = cache_file(paths, dev_path);
    let state = if primary { "primary" } else { "secondary" };
    let data = format!("{owner} {state} {}\n", iv_name.unwrap_or("not_visible"));
    let written = path
        .parent()
        .map_or(Ok(Vec::new()), |d| crate::fsutil::create_dirs(d, 0o755))
        .and_then(|_| {
            crate::fsutil::write_atomic(
                &path,
                data.as_bytes(),
                &crate::fsutil::FileMeta {
                    mode: Some(0o644),
                    ..Default::default()
                },
            )
        });
    if let Err(e) = written {
        log::error!("Can't update bdev cache for {dev_path}: {e}");
    }
}

/// Drops a device's cache file; errors are only logged.
pub fn remove_cache(paths: &Paths, dev_path: &str) {
    let path = cache_file(paths, dev_path);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => log::error!("Can't update bdev cache for {dev_path}: {e}"),
    }
}

/// Checks an instance name used in `<instance>:<idx>` links and cache
/// entries: no separators, no control characters, not `.`/`..`, bounded.
pub fn check_instance_name(name: &str) -> Result<(), BdevError> {
    let bad = name.is_empty()
        || name.len() > MAX_INSTANCE_NAME
        || name == "."
        || name == ".."
        || name.starts_with('.')
        || name.chars().any(|c| c == '/' || c.is_control());
    if bad {
        return Err(BdevError::Refused(format!(
            "Invalid instance name {}",
            py_str(name)
        )));
    }
    Ok(())
}

/// The local path of the link `<instance>:<idx>`.
pub fn disk_link(paths: &Paths, instance: &str, idx: u64) -> PathBuf {
    paths
        .to_local(DISK_LINKS_DIR)
        .join(format!("{instance}{DISK_SEPARATOR}{idx}"))
}

/// 2.5.2's `_SymlinkBlockDev`: `<instance>:<idx>` -> `target`, replacing
/// a different link or file. The instance name must have passed
/// [`check_instance_name`].
pub fn symlink_disk(paths: &Paths, instance: &str, idx: u64, target: &Path) -> io::Result<PathBuf> {
    let link = disk_link(paths, instance, idx);
    if let Some(dir) = link.parent() {
        crate::fsutil::create_dirs(dir, 0o755)?;
    }
    match std::os::unix::fs::symlink(target, &link) {
        Ok(()) => Ok(link),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if std::fs::read_link(&link).ok().as_deref() != Some(target) {
                std::fs::remove_file(&link)?;
                std::os::unix::fs::symlink(target, &link)?;
            }
            Ok(link)
        }
        Err(e) => Err(e),
    }
}

/// 2.5.2's `_RemoveBlockDevLinks`: removes the links `<instance>:0` to
/// `<instance>:<count-1>` that are symlinks; errors are only logged.
pub fn remove_disk_links(paths: &Paths, instance: &str, count: usize) {
    for idx in 0..count as u64 {
        let link = disk_link(paths, instance, idx);
        if link
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            if let Err(e) = std::fs::remove_file(&link) {
                log::error!("Can't remove symlink '{}': {e}", link.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn output_cut_by_cmd_fails_the_command() {
        let limit = cmd::MAX_OUTPUT;
        let print = |n: u64| {
            run(
                &["sh", "-c", &format!("head -c {n} /dev/zero | tr '\\0' x")],
                Duration::from_secs(60),
            )
        };
        let under = print(limit - 1);
        assert!(under.ok(), "{:?}", under.fail_reason);
        assert_eq!(under.stdout.len() as u64, limit - 1);
        let over = print(limit + 1);
        assert_eq!(
            over.fail_reason,
            Some(format!("output longer than {limit} bytes"))
        );
        assert_eq!(over.stdout, "");
        assert_eq!(
            over.stderr,
            format!("sh: output of {limit} bytes or more, cut and not used\n")
        );
        let missing = run(&["/nonexistent/lvs"], Duration::from_secs(60));
        assert!(missing
            .fail_reason
            .is_some_and(|r| r.starts_with("can't execute '/nonexistent/lvs': ")));
    }

    #[test]
    fn python_reprs() {
        assert_eq!(py_str("abc"), "'abc'");
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(py_str("a'\"b\n"), "'a\\'\"b\\n'");
        assert_eq!(py_float(84.0), "84.0");
        assert_eq!(py_float(20.5), "20.5");
        // As 2.5.2 showed what simplejson decoded: text outside ASCII is a
        // `unicode`; str() of a float has 12 digits.
        assert_eq!(py_str("v\u{e9}"), "u'v\\xe9'");
        assert_eq!(py_float(1034.0 - 1e-12), "1034.0");
        assert_eq!(
            py_repr(&json!(["x", 1, null, true, 2.0])),
            "['x', 1, None, True, 2.0]"
        );
        assert_eq!(
            shell_quote_args(&["lvchange", "--addtag", "a b", "/dev/x/y", "it's"]),
            "lvchange --addtag 'a b' /dev/x/y 'it'\\''s'"
        );
    }

    #[test]
    fn disks_are_described_as_2_5_2_did() {
        let lv: Disk = serde_json::from_value(json!({"dev_type": "lvm",
            "logical_id": ["xenvg", "u.disk0"], "size": 128, "iv_name": "disk/0"}))
        .unwrap();
        assert_eq!(
            describe(&lv),
            "<LogicalVolume(/dev/xenvg/u.disk0, visible as /dev/disk/0, size=128m)>"
        );
        let f: Disk = serde_json::from_value(json!({"dev_type": "file", "children": [],
            "logical_id": ["loop", "/srv/ganeti/file-storage/i/disk0"]}))
        .unwrap();
        assert_eq!(
            describe(&f),
            "<Disk(type=file, logical_id=('loop', '/srv/ganeti/file-storage/i/disk0'), \
             physical_id=None, children=[], not visible, size='None')>"
        );
    }

    #[test]
    fn cache_file_names() {
        let p = Paths::with_root("");
        assert_eq!(
            cache_file(&p, "/dev/xenvg/abc.disk0"),
            Path::new("/var/run/ganeti/bdev-cache/bdev_xenvg_abc.disk0")
        );
        assert_eq!(
            cache_file(&p, "/srv/ganeti/file-storage/i/disk0"),
            Path::new("/var/run/ganeti/bdev-cache/bdev__srv_ganeti_file-storage_i_disk0")
        );
    }

    #[test]
    fn instance_names_for_links() {
        assert!(check_instance_name("inst1.example.com").is_ok());
        let longest = "a".repeat(MAX_INSTANCE_NAME);
        assert!(check_instance_name(&longest).is_ok());
        let over = "a".repeat(MAX_INSTANCE_NAME + 1);
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "../x",
            "a\nb",
            over.as_str(),
        ] {
            assert!(check_instance_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dev_paths_of_disks() {
        let root =
            std::env::temp_dir().join(format!("ganeti-bdev-devpath-{}", crate::sys::getpid()));
        let _ = std::fs::remove_dir_all(&root);
        let p = Paths::with_root(&root);
        std::fs::create_dir_all(p.data_dir()).unwrap();
        std::fs::create_dir_all(root.join("srv/ganeti/file-storage/i1")).unwrap();
        std::fs::write(
            p.ssconf_file("file_storage_dir"),
            "/srv/ganeti/file-storage\n",
        )
        .unwrap();
        std::fs::write(p.ssconf_file("shared_file_storage_dir"), "\n").unwrap();
        let disk = |id: Value| -> Disk {
            serde_json::from_value(json!({"dev_type": "file", "physical_id": id, "size": 1}))
                .unwrap()
        };
        let d0 = disk(json!(["loop", "/srv/ganeti/file-storage/i1/disk0"]));
        let e = disk_dev_path(&p, &d0).unwrap_err();
        assert!(e.starts_with("Block device '<Disk(type=file"), "{e}");
        std::fs::write(root.join("srv/ganeti/file-storage/i1/disk0"), "").unwrap();
        assert_eq!(
            disk_dev_path(&p, &d0).unwrap(),
            root.join("srv/ganeti/file-storage/i1/disk0")
        );
        for bad in [
            "/etc/passwd",
            "/srv/ganeti/file-storage/i1/../../../etc/passwd",
        ] {
            assert!(
                disk_dev_path(&p, &disk(json!(["loop", bad]))).is_err(),
                "{bad}"
            );
        }
        let lv: Disk = serde_json::from_value(json!({"dev_type": "lvm",
            "physical_id": ["xenvg", "a/../../etc"]}))
        .unwrap();
        assert_eq!(
            disk_dev_path(&p, &lv).unwrap_err(),
            "Invalid LVM name 'a/../../etc'"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn unknown_and_unsupported_types_are_refused() {
        let p = Paths::with_root("");
        for (t, msg) in [
            ("floppy", "Invalid block device type 'floppy'"),
            (
                "drbd8",
                "Block device type 'drbd8' is not supported by this node daemon",
            ),
        ] {
            let d: Disk = serde_json::from_value(json!({"dev_type": t,
                "physical_id": ["a", "b"]}))
            .unwrap();
            assert_eq!(
                Device::from_disk(&p, &d).unwrap_err(),
                BdevError::Refused(msg.into())
            );
        }
        let d: Disk =
            serde_json::from_value(json!({"dev_type": "lvm", "physical_id": ["a"]})).unwrap();
        assert_eq!(
            Device::from_disk(&p, &d).unwrap_err().to_string(),
            "Invalid configuration data ['a']"
        );
    }
}
