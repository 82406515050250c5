//! Helpers of the `tests/cli_*.rs` tests (included with `#[path]`): a test
//! cluster root prepared for `gnt-cluster init` (hosts file, SSH host key,
//! the node daemon's port), the gnt-* binaries run in it, and clean-up of
//! both daemons.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::{alive, free_port, signal, wait_until, Root};

pub const GNT_CLUSTER: &str = env!("CARGO_BIN_EXE_gnt-cluster");
pub const GNT_JOB: &str = env!("CARGO_BIN_EXE_gnt-job");
pub const GNT_DEBUG: &str = env!("CARGO_BIN_EXE_gnt-debug");
pub const NODE: &str = "node1.example.com";
pub const CLUSTER: &str = "cluster.example.com";
pub const SECS: Duration = Duration::from_secs(20);

/// Options of an init that works in a test root.
pub const INIT_OPTS: &[&str] = &[
    "--no-lvm-storage",
    "--no-drbd-storage",
    "--no-ssh-init",
    "--enabled-hypervisors=fake",
    "--master-netdev=lo",
];

/// A root ready for `gnt-cluster init`: the node 127.0.0.1 and the
/// cluster 127.0.0.2 in its hosts file, a host key, the node daemon on a
/// free port of 127.0.0.1.
pub struct TestCluster {
    pub root: Root,
    pub port: u16,
}

impl TestCluster {
    pub fn new(tag: &str) -> TestCluster {
        TestCluster::with_hosts(tag, "127.0.0.1", "127.0.0.2")
    }

    pub fn with_hosts(tag: &str, node_ip: &str, cluster_ip: &str) -> TestCluster {
        let root = Root::new(tag);
        let port = free_port();
        std::fs::create_dir_all(root.path("etc/ssh")).unwrap();
        std::fs::create_dir_all(root.path("etc/default")).unwrap();
        std::fs::write(
            root.path("etc/hosts"),
            format!(
                "127.0.0.1 localhost\n{node_ip} {NODE} node1\n{cluster_ip} {CLUSTER} cluster\n"
            ),
        )
        .unwrap();
        std::fs::write(
            root.path("etc/ssh/ssh_host_rsa_key.pub"),
            "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCtest root@node1\n",
        )
        .unwrap();
        std::fs::write(
            root.path("etc/default/ganeti"),
            format!("NODED_ARGS=\"-b {node_ip} -p {port}\"\n"),
        )
        .unwrap();
        TestCluster { root, port }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path(rel)
    }

    /// A gnt-* command in this root (node daemon port set).
    pub fn command(&self, bin: &str) -> Command {
        let mut c = self.root.command(bin);
        c.env("GANETI_NODED_PORT", self.port.to_string())
            .env_remove("GANETI_SBINDIR")
            .env_remove("EXTRA_NODED_ARGS")
            .env_remove("EXTRA_MASTERD_ARGS");
        c
    }

    pub fn run(&self, bin: &str, args: &[&str]) -> Output {
        self.command(bin).args(args).output().unwrap()
    }

    pub fn init(&self, extra: &[&str]) -> Output {
        let mut args = vec!["init"];
        args.extend_from_slice(INIT_OPTS);
        args.extend_from_slice(extra);
        args.push(CLUSTER);
        self.run(GNT_CLUSTER, &args)
    }

    /// Initialises the cluster; panics with the output on failure.
    pub fn init_ok(&self) {
        let out = self.init(&[]);
        assert!(
            out.status.success(),
            "init failed: {}{}\n{}",
            text(&out.stdout),
            text(&out.stderr),
            self.logs()
        );
    }

    pub fn pid(&self, daemon: &str) -> Option<i32> {
        std::fs::read_to_string(self.root.pid_file(daemon))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The daemons' logs, for failure messages.
    pub fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.path(f)).unwrap_or_default();
        format!(
            "--- node-daemon.log\n{}--- master-daemon.log\n{}",
            read("var/log/ganeti/node-daemon.log"),
            read("var/log/ganeti/master-daemon.log")
        )
    }

    /// Kills both daemons (test clean-up).
    pub fn kill(&self) {
        for d in ["ganeti-masterd", "ganeti-noded"] {
            if let Some(pid) = self.pid(d) {
                if alive(pid) {
                    signal(pid, libc::SIGKILL);
                    wait_until(SECS, || !alive(pid));
                }
            }
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit code, stdout, stderr.
pub fn result(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// Every file below `dir` (relative names), for "nothing written" checks.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.push(rel.to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
