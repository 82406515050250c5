//! Every filesystem location of Ganeti 2.5.2, in one place.
//!
//! The locations are Ganeti's standard ones (`./configure --localstatedir=/var
//! --sysconfdir=/etc`, `--prefix=/usr`). When `GANETI_ROOTDIR` is set, every
//! local path is prefixed with it, so several nodes can share one machine.
//! Paths on the wire stay the standard ones: [`Paths::to_local`] maps a wire
//! path under the root, [`Paths::to_wire`] strips the root again.
//!
//! The node's own name is `GANETI_HOSTNAME` when set, else the FQDN.

use std::path::{Path, PathBuf};

use crate::sys;

/// Standard (wire) locations.
pub const DATA_DIR: &str = "/var/lib/ganeti";
pub const RUN_DIR: &str = "/var/run/ganeti";
pub const LOG_DIR: &str = "/var/log/ganeti";
pub const LOCK_DIR: &str = "/var/lock";
pub const CONF_DIR: &str = "/etc/ganeti";
pub const PKGLIB_DIR: &str = "/usr/lib/ganeti";
pub const OS_SEARCH_PATH: &str = "/srv/ganeti/os";
pub const EXPORT_DIR: &str = "/srv/ganeti/export";
pub const FILE_STORAGE_DIR: &str = "/srv/ganeti/file-storage";
pub const SHARED_FILE_STORAGE_DIR: &str = "/srv/ganeti/shared-file-storage";

/// Environment variable naming the root prefix.
pub const ROOTDIR_ENV: &str = "GANETI_ROOTDIR";
/// Environment variable naming the node itself.
pub const HOSTNAME_ENV: &str = "GANETI_HOSTNAME";

/// The daemons whose files live under the run and log directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    Noded,
    Masterd,
}

impl Daemon {
    /// The program name, as in pid files and log lines.
    pub fn name(self) -> &'static str {
        match self {
            Daemon::Noded => "ganeti-noded",
            Daemon::Masterd => "ganeti-masterd",
        }
    }

    fn log_file(self) -> &'static str {
        match self {
            Daemon::Noded => "node-daemon.log",
            Daemon::Masterd => "master-daemon.log",
        }
    }
}

/// The locations for one node, resolved once from the environment.
#[derive(Debug, Clone)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    /// Reads `GANETI_ROOTDIR` (empty or unset: no prefix).
    pub fn from_env() -> Paths {
        let root = std::env::var_os(ROOTDIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_default();
        Paths { root }
    }

    /// Paths under an explicit root (`""` for none).
    pub fn with_root(root: impl Into<PathBuf>) -> Paths {
        Paths { root: root.into() }
    }

    /// The root prefix (empty when unset).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Maps a standard absolute path under the root prefix.
    pub fn to_local(&self, wire: &str) -> PathBuf {
        if self.root.as_os_str().is_empty() {
            PathBuf::from(wire)
        } else {
            self.root.join(wire.trim_start_matches('/'))
        }
    }

    /// Strips the root prefix from a local path, giving the standard path.
    /// Paths outside the root are returned unchanged.
    pub fn to_wire(&self, local: &Path) -> PathBuf {
        if self.root.as_os_str().is_empty() {
            return local.to_path_buf();
        }
        match local.strip_prefix(&self.root) {
            Ok(rest) => Path::new("/").join(rest),
            Err(_) => local.to_path_buf(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.to_local(DATA_DIR)
    }
    pub fn run_dir(&self) -> PathBuf {
        self.to_local(RUN_DIR)
    }
    pub fn log_dir(&self) -> PathBuf {
        self.to_local(LOG_DIR)
    }
    pub fn conf_dir(&self) -> PathBuf {
        self.to_local(CONF_DIR)
    }
    pub fn lock_dir(&self) -> PathBuf {
        self.to_local(LOCK_DIR)
    }
    pub fn pid_file(&self, d: Daemon) -> PathBuf {
        self.run_dir().join(format!("{}.pid", d.name()))
    }
    pub fn log_file(&self, d: Daemon) -> PathBuf {
        self.log_dir().join(d.log_file())
    }
    pub fn os_log_dir(&self) -> PathBuf {
        self.log_dir().join("os")
    }
    pub fn socket_dir(&self) -> PathBuf {
        self.run_dir().join("socket")
    }
    pub fn master_socket(&self) -> PathBuf {
        self.socket_dir().join("ganeti-master")
    }
    pub fn server_pem(&self) -> PathBuf {
        self.data_dir().join("server.pem")
    }
    pub fn config_data(&self) -> PathBuf {
        self.data_dir().join("config.data")
    }
    pub fn queue_dir(&self) -> PathBuf {
        self.data_dir().join("queue")
    }
    pub fn queue_archive_dir(&self) -> PathBuf {
        self.queue_dir().join("archive")
    }
    pub fn watcher_pause_file(&self) -> PathBuf {
        self.data_dir().join("watcher.pause")
    }
    pub fn ssconf_lock(&self) -> PathBuf {
        self.lock_dir().join("ganeti-ssconf.lock")
    }
    /// `/var/lib/ganeti/ssconf_<key>`.
    pub fn ssconf_file(&self, key: &str) -> PathBuf {
        self.data_dir().join(format!("ssconf_{key}"))
    }
    pub fn hooks_dir(&self) -> PathBuf {
        self.conf_dir().join("hooks")
    }
    pub fn os_search_path(&self) -> PathBuf {
        self.to_local(OS_SEARCH_PATH)
    }
    pub fn file_storage_dir(&self) -> PathBuf {
        self.to_local(FILE_STORAGE_DIR)
    }
    pub fn pkglib_dir(&self) -> PathBuf {
        self.to_local(PKGLIB_DIR)
    }
    /// `/etc/hosts`, under the root: test clusters resolve node names there.
    pub fn etc_hosts(&self) -> PathBuf {
        self.to_local("/etc/hosts")
    }
}

/// The node's own name: `GANETI_HOSTNAME` when set, else the FQDN (the
/// resolver's canonical name for the kernel host name, or that name itself).
pub fn node_name() -> std::io::Result<String> {
    if let Some(name) = std::env::var(HOSTNAME_ENV).ok().filter(|n| !n.is_empty()) {
        return Ok(name);
    }
    let short = sys::gethostname()?;
    Ok(sys::canonical_name(&short).unwrap_or(short))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrooted_paths_are_standard() {
        let p = Paths::with_root("");
        assert_eq!(
            p.pid_file(Daemon::Noded),
            Path::new("/var/run/ganeti/ganeti-noded.pid")
        );
        assert_eq!(
            p.log_file(Daemon::Masterd),
            Path::new("/var/log/ganeti/master-daemon.log")
        );
        assert_eq!(
            p.ssconf_file("master_node"),
            Path::new("/var/lib/ganeti/ssconf_master_node")
        );
        assert_eq!(
            p.master_socket(),
            Path::new("/var/run/ganeti/socket/ganeti-master")
        );
    }

    #[test]
    fn rooted_paths_map_both_ways() {
        let p = Paths::with_root("/tmp/node2");
        let local = p.to_local("/var/lib/ganeti/queue/job-7");
        assert_eq!(local, Path::new("/tmp/node2/var/lib/ganeti/queue/job-7"));
        assert_eq!(p.to_wire(&local), Path::new("/var/lib/ganeti/queue/job-7"));
        assert_eq!(p.to_wire(Path::new("/etc/x")), Path::new("/etc/x"));
        assert_eq!(
            p.server_pem(),
            Path::new("/tmp/node2/var/lib/ganeti/server.pem")
        );
    }
}
