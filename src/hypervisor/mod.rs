//! Hypervisors: the node-level facts of `fake` and `kvm`.
//!
//! Supported so far: the Linux `/proc` node information (`node_info`), the
//! hypervisor's self-check (`verify`) and the list of running instances
//! (`list_instances`), as Ganeti 2.5.2's `hv_fake` and `hv_kvm` give them.
//! Not yet: starting, stopping, migrating instances, parameter validation
//! (kvm's parameters are accepted as they are for now). Xen, chroot and lxc
//! are unknown here and give `Unknown hypervisor type '<name>'`.
//!
//! As in 2.5.2, every use creates the hypervisor's run directories (mode
//! 0775) under `/var/run/ganeti`, which must exist. State lives under the
//! node's root (`GANETI_ROOTDIR`); `/proc`, `/usr/bin/kvm` and socat are the
//! machine's own.

#![forbid(unsafe_code)]

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::paths::{Paths, RUN_DIR};

/// Hypervisor names (`HT_FAKE`, `HT_KVM`).
pub const HT_FAKE: &str = "fake";
pub const HT_KVM: &str = "kvm";

/// The kvm binary (`KVM_PATH`) and socat (`SOCAT_PATH`, as configure finds it).
pub const KVM_PATH: &str = "/usr/bin/kvm";
pub const SOCAT_PATH: &str = "/usr/bin/socat";

/// Mode of the hypervisors' run directories (`RUN_DIRS_MODE`).
const RUN_DIRS_MODE: u32 = 0o775;

/// Largest `/proc` file or fake state file read.
const MAX_STATE_FILE: u64 = 1024 * 1024;

/// The kvm run subdirectories created with the hypervisor.
const KVM_SUBDIRS: [&str; 8] = [
    "pid",
    "uid",
    "ctrl",
    "conf",
    "nic",
    "keymap",
    "chroot",
    "chroot-quarantine",
];

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fake,
    Kvm,
}

impl Kind {
    fn from_name(name: &str) -> Result<Kind, HvError> {
        match name {
            HT_FAKE => Ok(Kind::Fake),
            HT_KVM => Ok(Kind::Kvm),
            other => Err(HvError::Unknown(other.to_string())),
        }
    }

    /// The state directory (wire path).
    fn root_dir(self) -> String {
        match self {
            Kind::Fake => format!("{RUN_DIR}/fake-hypervisor"),
            Kind::Kvm => format!("{RUN_DIR}/kvm-hypervisor"),
        }
    }
}

/// Looks the hypervisor up and creates its run directories, as 2.5.2's
/// `hypervisor.GetHypervisor` does on every call.
fn open(paths: &Paths, name: &str) -> Result<Kind, HvError> {
    let kind = Kind::from_name(name)?;
    let root = paths.to_local(&kind.root_dir());
    ensure_dir(&root)?;
    if kind == Kind::Kvm {
        for sub in KVM_SUBDIRS {
            ensure_dir(&root.join(sub))?;
        }
    }
    Ok(kind)
}

/// mkdir (parents must exist), then chmod; an existing non-directory is an
/// error.
fn ensure_dir(dir: &Path) -> Result<(), HvError> {
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

/// The hypervisor's node information: the Linux `/proc` facts; `fake` also
/// subtracts the memory of its running instances (never below 0).
pub fn node_info(paths: &Paths, name: &str) -> Result<NodeInfo, HvError> {
    let kind = open(paths, name)?;
    let mut info = linux_node_info()?;
    if kind == Kind::Fake {
        let used: u64 = fake_instances(paths)?
            .iter()
            .map(|(_, mem)| mem.unwrap_or(0))
            .sum();
        info.memory_free -= info.memory_free.min(used);
    }
    Ok(info)
}

/// The hypervisor's self-check: `None` when it is usable, else the problem.
pub fn verify(paths: &Paths, name: &str) -> Result<Option<String>, HvError> {
    let kind = open(paths, name)?;
    Ok(match kind {
        Kind::Fake => {
            let dir = kind.root_dir();
            (!paths.to_local(&dir).is_dir())
                .then(|| format!("The required directory '{dir}' does not exist."))
        }
        Kind::Kvm => {
            if !Path::new(KVM_PATH).exists() {
                Some(format!("The kvm binary ('{KVM_PATH}') does not exist."))
            } else if !Path::new(SOCAT_PATH).exists() {
                Some(format!("The socat binary ('{SOCAT_PATH}') does not exist."))
            } else {
                None
            }
        }
    })
}

/// Checks a hypervisor's parameters against the node (2.5.2's
/// `ValidateParameters`). `fake` has no parameters, so nothing fails; `kvm`'s
/// parameters (paths of kernels, initrds and the like) are not checked yet
/// and are accepted as they are.
pub fn validate_params(
    paths: &Paths,
    name: &str,
    _params: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), HvError> {
    open(paths, name).map(|_| ())
}

/// The names of the running instances, sorted.
pub fn list_instances(paths: &Paths, name: &str) -> Result<Vec<String>, HvError> {
    let kind = open(paths, name)?;
    let mut names: Vec<String> = match kind {
        Kind::Fake => fake_instances(paths)?.into_iter().map(|(n, _)| n).collect(),
        Kind::Kvm => {
            let dir = paths.to_local(&kind.root_dir()).join("pid");
            dir_entries(&dir)?
                .into_iter()
                .filter(|n| kvm_pid_alive(&dir, n))
                .collect()
        }
    };
    names.sort();
    Ok(names)
}

/// File names in a directory (non-UTF-8 names are skipped).
fn dir_entries(dir: &Path) -> Result<Vec<String>, HvError> {
    let list = |e| HvError::List(dir.to_path_buf(), e);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list)? {
        if let Some(n) = entry.map_err(list)?.file_name().to_str() {
            names.push(n.to_string());
        }
    }
    Ok(names)
}

/// Reads at most [`MAX_STATE_FILE`] bytes of a text file.
fn read_small(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_STATE_FILE)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The fake instances: (name, memory in MiB when the state file says).
/// A state file is `"<id>\n<memory>\n<vcpus>\n"`.
fn fake_instances(paths: &Paths) -> Result<Vec<(String, Option<u64>)>, HvError> {
    let dir = paths.to_local(&Kind::Fake.root_dir());
    let mut out = Vec::new();
    for name in dir_entries(&dir)? {
        let text = read_small(&dir.join(&name)).map_err(|e| HvError::List(dir.clone(), e))?;
        let memory = text.lines().nth(1).and_then(|l| l.trim().parse().ok());
        out.push((name, memory));
    }
    Ok(out)
}

/// True when `pid/<name>` names a live process whose command line carries
/// `-name <name>` (a kvm started by Ganeti for that instance).
fn kvm_pid_alive(pid_dir: &Path, name: &str) -> bool {
    let pid: u32 = match read_small(&pid_dir.join(name)) {
        Ok(text) => text.trim().parse().unwrap_or(0),
        Err(_) => 0,
    };
    if pid == 0 || !Path::new(&format!("/proc/{pid}/status")).exists() {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => cmdline_instance(&cmdline).as_deref() == Some(name),
        Err(_) => false,
    }
}

/// The value of the last `-name` argument of a NUL-separated command line.
fn cmdline_instance(cmdline: &[u8]) -> Option<String> {
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    args.windows(2)
        .rfind(|w| w[0] == b"-name")
        .map(|w| String::from_utf8_lossy(w[1]).into_owned())
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
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn scratch(tag: &str) -> (PathBuf, Paths) {
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
        ] {
            let e = call(&paths).unwrap_err();
            assert_eq!(e.to_string(), "Unknown hypervisor type 'xen-pvm'");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn fake_creates_its_dir_and_subtracts_instance_memory() {
        let (root, paths) = scratch("fake");
        let dir = paths.to_local("/var/run/ganeti/fake-hypervisor");
        assert_eq!(verify(&paths, "fake").unwrap(), None);
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o775);
        assert!(list_instances(&paths, "fake").unwrap().is_empty());
        let before = node_info(&paths, "fake").unwrap();
        std::fs::write(dir.join("inst2"), "0\n128\n1\n").unwrap();
        std::fs::write(dir.join("inst1"), "0\nnot a number\n1\n").unwrap();
        assert_eq!(list_instances(&paths, "fake").unwrap(), ["inst1", "inst2"]);
        let after = node_info(&paths, "fake").unwrap();
        assert_eq!(after.memory_total, before.memory_total);
        // Other processes may change the free memory a little meanwhile.
        let diff = before.memory_free as i64 - after.memory_free as i64;
        assert!((100..=156).contains(&diff), "{before:?} {after:?}");
        // Huge instances do not make it negative.
        std::fs::write(dir.join("inst3"), "0\n99999999999\n1\n").unwrap();
        assert_eq!(node_info(&paths, "fake").unwrap().memory_free, 0);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn fake_dir_that_is_a_file_is_an_error() {
        let (root, paths) = scratch("fakefile");
        std::fs::write(paths.to_local("/var/run/ganeti/fake-hypervisor"), "").unwrap();
        let e = verify(&paths, "fake").unwrap_err().to_string();
        assert!(e.starts_with("Cannot create needed directory"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn kvm_lists_live_processes_named_like_their_pid_file() {
        let (root, paths) = scratch("kvm");
        assert!(list_instances(&paths, "kvm").unwrap().is_empty());
        let base = paths.to_local("/var/run/ganeti/kvm-hypervisor");
        for sub in KVM_SUBDIRS {
            assert!(base.join(sub).is_dir(), "{sub}");
        }
        // A process whose command line carries "-name inst1", as kvm's does.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30", "-name", "inst1"])
            .spawn()
            .unwrap();
        let pid = child.id().to_string();
        // Until the exec is done, /proc shows the test binary's command line.
        let cmdline = format!("/proc/{pid}/cmdline");
        let exec_done = || std::fs::read(&cmdline).is_ok_and(|c| c.ends_with(b"inst1\0"));
        let started = std::time::Instant::now();
        while !exec_done() && started.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let pids = base.join("pid");
        std::fs::write(pids.join("inst1"), &pid).unwrap();
        std::fs::write(pids.join("other"), &pid).unwrap(); // name mismatch
        std::fs::write(pids.join("garbage"), "x").unwrap();
        std::fs::write(pids.join("dead"), "999999999").unwrap();
        assert_eq!(list_instances(&paths, "kvm").unwrap(), ["inst1"]);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(list_instances(&paths, "kvm").unwrap().is_empty());
        // This machine has no kvm binary; where it has one, socat is next.
        let v = verify(&paths, "kvm").unwrap();
        if !Path::new(KVM_PATH).exists() {
            assert_eq!(
                v.as_deref(),
                Some("The kvm binary ('/usr/bin/kvm') does not exist.")
            );
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn cmdline_takes_the_last_name() {
        assert_eq!(
            cmdline_instance(b"/usr/bin/kvm\0-name\0a\0-m\x00128\0-name\0b\0").as_deref(),
            Some("b")
        );
        assert_eq!(cmdline_instance(b"/usr/bin/kvm\0-name"), None);
    }
}
