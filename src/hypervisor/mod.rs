//! Hypervisors: one [`Hypervisor`] trait, chosen by the name the master
//! sends, with `fake` ([`fake`]) and `kvm` ([`kvm`]) behind it, as Ganeti
//! 2.5.2's `hv_fake` and `hv_kvm`.
//!
//! Supported: listing instances and their memory/vcpus, starting, stopping
//! (soft, then forced), soft reboot, cleanup after a stop, the Linux `/proc`
//! node information, the hypervisor self-check and parameter validation.
//! Not supported: migration (`migration_info`, `accept_instance`,
//! `finalize_migration`, `instance_migrate`), consoles, node powercycle.
//! Xen, chroot and lxc are unknown here and give `Unknown hypervisor type
//! '<name>'`, as 2.5.2 does for names it does not know.
//!
//! As in 2.5.2, every use creates the hypervisor's run directories (mode
//! 0775) under `/var/run/ganeti`, which must exist. State lives under the
//! node's root (`GANETI_ROOTDIR`); `/proc`, `/dev/kvm` and the kvm binary
//! are the machine's own.
//!
//! Deliberate differences from 2.5.2, for safety: instance names that are
//! used in file names must be host-name-like ([`check_name`]: ASCII letters,
//! digits, `-`, `_` and `.`, not starting with `.`, at most
//! [`MAX_INSTANCE_NAME`] bytes); 2.5.2 only refused `/` and `..` through its
//! path join. Listings are sorted.

#![forbid(unsafe_code)]

pub mod fake;
pub mod kvm;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::objects::{Disk, Instance};
use crate::paths::Paths;

/// Hypervisor names (`HT_FAKE`, `HT_KVM`).
pub const HT_FAKE: &str = "fake";
pub const HT_KVM: &str = "kvm";

/// Mode of the hypervisors' run directories (`RUN_DIRS_MODE`).
pub(crate) const RUN_DIRS_MODE: u32 = 0o775;

/// Largest `/proc` file, pid file or fake state file read.
pub(crate) const MAX_STATE_FILE: u64 = 1024 * 1024;

/// Longest instance name accepted (a DNS name is at most 253 bytes).
pub const MAX_INSTANCE_NAME: usize = 255;

/// Why a hypervisor could not answer (2.5.2's `HypervisorError`).
#[derive(Debug)]
pub enum HvError {
    /// Not `fake` or `kvm`.
    Unknown(String),
    /// A run directory could not be created.
    Setup(PathBuf, io::Error),
    /// `/proc/meminfo` or `/proc/cpuinfo` could not be read.
    NodeInfo(io::Error),
    /// `/proc/meminfo` has a line that is not a number of kB.
    MemInfo(String),
    /// A state directory could not be listed.
    List(PathBuf, io::Error),
    /// An instance name that cannot be used in a file name.
    InvalidName(String, &'static str),
    /// Any other failure, as the sentence 2.5.2 gives.
    Failed(String),
}

impl std::fmt::Display for HvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HvError::Unknown(name) => write!(f, "Unknown hypervisor type '{name}'"),
            HvError::Setup(dir, e) => {
                write!(f, "Cannot create needed directory '{}': {e}", dir.display())
            }
            HvError::NodeInfo(e) => write!(f, "Failed to list node info: {e}"),
            HvError::MemInfo(line) => {
                write!(f, "Failed to compute memory usage: bad line '{line}'")
            }
            HvError::List(dir, e) => {
                write!(f, "Failed to list instances in {}: {e}", dir.display())
            }
            HvError::InvalidName(name, why) => {
                write!(f, "Invalid instance name '{}': {why}", name.escape_debug())
            }
            HvError::Failed(msg) => write!(f, "{msg}"),
        }
    }
}

/// The node information every hypervisor here reports (in MiB and CPUs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    pub memory_total: u64,
    pub memory_free: u64,
    pub memory_dom0: u64,
    pub cpu_total: u64,
    pub cpu_nodes: u64,
    pub cpu_sockets: u64,
}

/// 2.5.2's instance info tuple `(name, id, memory, vcpus, state, times)`.
/// `memory` and `vcpus` are numbers, or the raw text where the fake state
/// file does not hold one (2.5.2's `TryConvert`).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceInfo {
    pub name: String,
    pub id: Value,
    pub memory: Value,
    pub vcpus: Value,
    pub state: String,
    pub time: Value,
}

/// A block device handed to the hypervisor: the disk and the path of its
/// link under `/var/run/ganeti/instance-disks` (local).
pub type BlockDevice = (Disk, PathBuf);

/// One hypervisor, as 2.5.2's `BaseHypervisor`.
pub trait Hypervisor {
    /// The running instances, sorted.
    fn list_instances(&self) -> Result<Vec<String>, HvError>;
    /// One instance's info; `None` when it is not running.
    fn instance_info(&self, name: &str) -> Result<Option<InstanceInfo>, HvError>;
    /// Every running instance's info.
    fn all_instances_info(&self) -> Result<Vec<InstanceInfo>, HvError>;
    /// Starts an instance (refused when it is running).
    fn start(
        &self,
        inst: &Instance,
        block_devices: &[BlockDevice],
        paused: bool,
    ) -> Result<(), HvError>;
    /// Asks an instance to stop (`force`: kill it). Returns at once.
    fn stop(&self, inst: &Instance, force: bool, retry: bool) -> Result<(), HvError>;
    /// Removes what a stopped instance left.
    fn cleanup(&self, name: &str) -> Result<(), HvError>;
    /// Soft reboot.
    fn reboot(&self, inst: &Instance) -> Result<(), HvError>;
    /// Memory and CPUs of the node.
    fn node_info(&self) -> Result<NodeInfo, HvError>;
    /// `None` when the hypervisor is usable, else the problem.
    fn verify(&self) -> Option<String>;
    /// The node-side parameter checks (2.5.2's `ValidateParameters`).
    fn validate_params(&self, params: &Map<String, Value>) -> Result<(), HvError>;
}

/// The hypervisor of that name, its run directories created, as 2.5.2's
/// `hypervisor.GetHypervisor` does on every call.
pub fn get(paths: &Paths, name: &str) -> Result<Box<dyn Hypervisor>, HvError> {
    match name {
        HT_FAKE => Ok(Box::new(fake::Fake::open(paths)?)),
        HT_KVM => Ok(Box::new(kvm::Kvm::open(paths)?)),
        other => Err(HvError::Unknown(other.to_string())),
    }
}

/// The hypervisor name of an instance; a missing one reads as Python's
/// `None`, as 2.5.2 would print it.
pub fn instance_hv(inst: &Instance) -> &str {
    inst.hypervisor.as_deref().unwrap_or("None")
}

/// Checks that an instance name can be used in a file name and on a kvm
/// command line: 1 to [`MAX_INSTANCE_NAME`] bytes of ASCII letters, digits,
/// `-`, `_` and `.`, not starting with `.` (so never `.`, `..`, a hidden or
/// temporary file, a path or an option separator).
pub fn check_name(name: &str) -> Result<(), HvError> {
    let bad = |why| Err(HvError::InvalidName(name.to_string(), why));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_INSTANCE_NAME {
        return bad("it is longer than 255 bytes");
    }
    if name.starts_with('.') {
        return bad("it starts with '.'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return bad("only letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}

/// The hypervisor's node information.
pub fn node_info(paths: &Paths, name: &str) -> Result<NodeInfo, HvError> {
    get(paths, name)?.node_info()
}

/// The hypervisor's self-check: `None` when it is usable, else the problem.
pub fn verify(paths: &Paths, name: &str) -> Result<Option<String>, HvError> {
    Ok(get(paths, name)?.verify())
}

/// Checks a hypervisor's parameters against the node (2.5.2's
/// `ValidateParameters`).
pub fn validate_params(
    paths: &Paths,
    name: &str,
    params: &Map<String, Value>,
) -> Result<(), HvError> {
    get(paths, name)?.validate_params(params)
}

/// The names of the running instances, sorted.
pub fn list_instances(paths: &Paths, name: &str) -> Result<Vec<String>, HvError> {
    get(paths, name)?.list_instances()
}

/// mkdir (parents must exist), then chmod; an existing non-directory is an
/// error.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), HvError> {
    let setup = |e| HvError::Setup(dir.to_path_buf(), e);
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(setup(e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(setup)?;
    if !meta.is_dir() {
        return Err(setup(io::Error::other("not a directory")));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(RUN_DIRS_MODE)).map_err(setup)
}

/// Visible file names in a directory, sorted (non-UTF-8 names and names
/// starting with `.`, such as temporary files, are skipped).
pub(crate) fn dir_entries(dir: &Path) -> Result<Vec<String>, HvError> {
    let list = |e| HvError::List(dir.to_path_buf(), e);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list)? {
        if let Some(n) = entry.map_err(list)?.file_name().to_str() {
            if !n.starts_with('.') {
                names.push(n.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Reads at most [`MAX_STATE_FILE`] bytes of a text file.
pub(crate) fn read_small(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_STATE_FILE)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The Linux node information from `/proc/meminfo` and `/proc/cpuinfo`.
pub fn linux_node_info() -> Result<NodeInfo, HvError> {
    let meminfo = read_small(Path::new("/proc/meminfo")).map_err(HvError::NodeInfo)?;
    let cpuinfo = read_small(Path::new("/proc/cpuinfo")).map_err(HvError::NodeInfo)?;
    let (memory_total, memory_free, memory_dom0) = parse_meminfo(&meminfo)?;
    Ok(NodeInfo {
        memory_total,
        memory_free,
        memory_dom0,
        cpu_total: count_processors(&cpuinfo),
        // 2.5.2 hard-codes these.
        cpu_nodes: 1,
        cpu_sockets: 1,
    })
}

/// (total, free, dom0) in MiB: MemTotal; MemFree + Buffers + Cached, each
/// rounded down on its own; Active.
fn parse_meminfo(text: &str) -> Result<(u64, u64, u64), HvError> {
    let (mut total, mut free, mut dom0) = (0, 0, 0);
    for line in text.lines() {
        let Some((key, val)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        if !matches!(
            key,
            "MemTotal" | "MemFree" | "Buffers" | "Cached" | "Active"
        ) {
            continue;
        }
        let mib = val
            .split_whitespace()
            .next()
            .and_then(|kb| kb.parse::<u64>().ok())
            .ok_or_else(|| HvError::MemInfo(line.to_string()))?
            / 1024;
        match key {
            "MemTotal" => total = mib,
            "Active" => dom0 = mib,
            _ => free += mib,
        }
    }
    Ok((total, free, dom0))
}

/// Lines of the form `processor : <number>` (2.5.2's regular expression
/// `^processor\s*:\s*[0-9]+\s*$`).
fn count_processors(text: &str) -> u64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix("processor")
                .and_then(|rest| rest.trim_start().strip_prefix(':'))
                .map(str::trim)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count() as u64
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn scratch(tag: &str) -> (PathBuf, Paths) {
        let root = std::env::temp_dir().join(format!("ganeti-hv-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let paths = Paths::with_root(&root);
        std::fs::create_dir_all(paths.run_dir()).unwrap();
        (root, paths)
    }

    #[test]
    fn meminfo_rounds_each_field_down() {
        let text = "MemTotal:       24684096 kB\nMemFree:        24333556 kB\n\
                    MemAvailable:   24333408 kB\nBuffers:            1896 kB\n\
                    Cached:           181396 kB\nSwapCached:            0 kB\n\
                    Active:            82464 kB\nActive(anon):  1 kB\n";
        // 1896 kB of buffers count as 1 MiB; 24333556 + 1896 + 181396 kB
        // would be 24108 MiB if summed first.
        assert_eq!(parse_meminfo(text).unwrap(), (24105, 23763 + 1 + 177, 80));
        assert!(matches!(
            parse_meminfo("MemTotal: lots kB\n"),
            Err(HvError::MemInfo(_))
        ));
        assert_eq!(parse_meminfo("no colon\n").unwrap(), (0, 0, 0));
    }

    #[test]
    fn processors_follow_the_regular_expression() {
        let text = "processor\t: 0\nvendor_id\t: x\n\nprocessor\t: 1\n\
                    processor : 2 \nprocessors : 3\nprocessor: x\nprocessor:\n";
        assert_eq!(count_processors(text), 3);
    }

    #[test]
    fn real_proc_gives_sane_numbers() {
        let info = linux_node_info().unwrap();
        assert!(info.memory_total > 0 && info.memory_free <= info.memory_total);
        assert!(info.cpu_total >= 1);
    }

    #[test]
    fn unknown_hypervisor_is_named() {
        let (root, paths) = scratch("unknown");
        for call in [
            |p: &Paths| node_info(p, "xen-pvm").map(|_| ()),
            |p: &Paths| verify(p, "xen-pvm").map(|_| ()),
            |p: &Paths| list_instances(p, "xen-pvm").map(|_| ()),
            |p: &Paths| validate_params(p, "xen-pvm", &Map::new()),
        ] {
            let e = call(&paths).unwrap_err();
            assert_eq!(e.to_string(), "Unknown hypervisor type 'xen-pvm'");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn instance_names_are_host_names() {
        for good in ["inst1", "inst1.example.com", "a-b_c", "x..y"] {
            check_name(good).unwrap();
        }
        let longest = "a".repeat(MAX_INSTANCE_NAME);
        check_name(&longest).unwrap();
        let too_long = "a".repeat(MAX_INSTANCE_NAME + 1);
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "../x",
            "a/b",
            "a\0b",
            "a,b",
            "a b",
            "a:0",
            "ä",
            too_long.as_str(),
        ] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(e.starts_with("Invalid instance name"), "{bad:?}: {e}");
        }
        assert_eq!(
            check_name("a\0b").unwrap_err().to_string(),
            "Invalid instance name 'a\\0b': only letters, digits, '-', '_' and '.' are allowed"
        );
    }
}
