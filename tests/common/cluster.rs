//! A test cluster of N nodes on one machine: node `k` (1-based) is
//! `node<k>.example.com` with its own root (`GANETI_ROOTDIR`), a node
//! daemon on `127.0.0.<k>` and one free port shared by all
//! (`GANETI_NODED_PORT`), one cluster certificate, a configuration made by
//! `config::initial` and `ConfigWriter::create` in node 1's root (every
//! node a master candidate), every ssconf key written in every root, and
//! the master daemon of node 1 started on demand.
//!
//! The master IP is `127.0.0.254` (network device `gntnone0`, which does
//! not exist): on loopback it answers (refused connections count, as in
//! 2.5.2's `TcpPing`) and is local, so the node daemon's
//! `node_start_master` finds it already configured and never touches the
//! host's network.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use ganeti::config::{self, ConfigWriter, InitParams};
use ganeti::luxi;
use ganeti::objects::ConfigData;
use ganeti::paths::Paths;

use super::*;

pub const CLUSTER_NAME: &str = "cluster.example.com";
pub const MASTER_IP: &str = "127.0.0.254";
pub const MASTER_NETDEV: &str = "gntnone0";

/// One node of a test cluster.
pub struct TestNode {
    pub root: Root,
    pub name: String,
    pub ip: String,
}

impl TestNode {
    pub fn paths(&self) -> Paths {
        Paths::with_root(&self.root.dir)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path(rel)
    }

    pub fn queue_dir(&self) -> PathBuf {
        self.path("var/lib/ganeti/queue")
    }
}

/// A cluster of test nodes; dropping it kills its daemons and removes the
/// roots.
pub struct Cluster {
    pub nodes: Vec<TestNode>,
    pub port: u16,
    pub cert: Vec<u8>,
}

/// How a test cluster is made.
pub struct ClusterSpec {
    pub tag: String,
    pub nodes: usize,
    /// Start the node daemons of these nodes (1-based); `None`: all.
    pub start_noded: Option<Vec<usize>>,
}

impl ClusterSpec {
    pub fn new(tag: &str, nodes: usize) -> ClusterSpec {
        ClusterSpec {
            tag: tag.to_string(),
            nodes,
            start_noded: None,
        }
    }
}

pub fn node_name(k: usize) -> String {
    format!("node{k}.example.com")
}

/// The configuration of a cluster of `n` nodes, node 1 the master.
pub fn cluster_config(n: usize) -> ConfigData {
    let mut p = InitParams::new(
        CLUSTER_NAME,
        MASTER_IP,
        &node_name(1),
        "127.0.0.1",
        "AAAAB3NzaC1yc2EAAAADAQABAAABAQCtest",
    );
    p.master_netdev = MASTER_NETDEV.into();
    p.enabled_hypervisors = vec!["fake".into()];
    p.modify_etc_hosts = false;
    p.modify_ssh_setup = false;
    let mut cfg = config::initial(&p).expect("initial configuration");
    let master = cfg.nodes.values().next().expect("master node").clone();
    for k in 2..=n {
        let mut node = master.clone();
        node.name = node_name(k);
        node.primary_ip = format!("127.0.0.{k}");
        node.secondary_ip = node.primary_ip.clone();
        node.uuid = Some(config::new_uuid().expect("uuid"));
        cfg.nodes.insert(node.name.clone(), node);
    }
    cfg
}

/// Writes every ssconf key of `cfg` under `root` (as `write_ssconf_files`).
pub fn write_ssconf(root: &Path, cfg: &ConfigData) {
    let paths = Paths::with_root(root);
    for (key, value) in config::ssconf_values(cfg) {
        let mut text = value;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        let p = paths.ssconf_file(&key);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
}

impl Cluster {
    /// A cluster of `n` nodes, every node daemon running.
    pub fn new(tag: &str, n: usize) -> Cluster {
        Cluster::build(ClusterSpec::new(tag, n))
    }

    pub fn build(spec: ClusterSpec) -> Cluster {
        let cfg = cluster_config(spec.nodes);
        let cert = self_signed_pem("ganeti.example.com");
        let port = free_port();
        let mut nodes = Vec::new();
        for k in 1..=spec.nodes {
            let root = Root::new(&format!("{}-n{k}", spec.tag));
            root.install_cert(&cert);
            write_ssconf(&root.dir, &cfg);
            // What ensure-dirs makes: the queue and its archive.
            let queue = root.path("var/lib/ganeti/queue");
            std::fs::create_dir_all(queue.join("archive")).unwrap();
            std::fs::set_permissions(&queue, std::fs::Permissions::from_mode(0o700)).unwrap();
            nodes.push(TestNode {
                root,
                name: node_name(k),
                ip: format!("127.0.0.{k}"),
            });
        }
        ConfigWriter::create(nodes[0].paths(), cfg).expect("config.data written");
        let cluster = Cluster { nodes, port, cert };
        for k in 1..=spec.nodes {
            let start = spec.start_noded.as_ref().map_or(true, |s| s.contains(&k));
            if start {
                cluster.start_noded(k);
            }
        }
        cluster
    }

    pub fn node(&self, k: usize) -> &TestNode {
        &self.nodes[k - 1]
    }

    pub fn master(&self) -> &TestNode {
        self.node(1)
    }

    /// A command for a binary run as node `k`.
    pub fn command(&self, k: usize, bin: &str) -> Command {
        let node = self.node(k);
        let mut c = node.root.command(bin);
        c.env("GANETI_HOSTNAME", &node.name)
            .env("GANETI_NODED_PORT", self.port.to_string())
            .env_remove("GANETI_SBINDIR")
            .env_remove("GANETI_MASTERD_VOTE_DELAY");
        c
    }

    /// Starts node `k`'s node daemon and waits until it answers.
    pub fn start_noded(&self, k: usize) {
        let node = self.node(k);
        let out = self
            .command(k, NODED)
            .args(["-b", &node.ip, "-p", &self.port.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "noded {k} did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let addr: std::net::SocketAddr = format!("{}:{}", node.ip, self.port).parse().unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(
                addr
            )
            .is_ok()),
            "noded {k} does not listen"
        );
    }

    /// Kills node `k`'s node daemon.
    pub fn stop_noded(&self, k: usize) {
        if let Some(pid) = self.node(k).root.noded_pid() {
            signal(pid, libc::SIGKILL);
            wait_until(Duration::from_secs(5), || !alive(pid));
        }
    }

    /// The master daemon command (node 1), not started.
    pub fn masterd(&self) -> Command {
        self.command(1, MASTERD)
    }

    /// Starts the master daemon (detaching) with `args`; its starter's
    /// output.
    pub fn start_masterd(&self, args: &[&str]) -> Output {
        self.masterd().args(args).output().unwrap()
    }

    /// Starts the master daemon without voting and asserts it serves.
    pub fn start_master(&self) {
        let out = self.start_masterd(&["--no-voting", "--yes-do-it"]);
        assert!(
            out.status.success(),
            "masterd did not start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(self.socket().exists());
    }

    pub fn socket(&self) -> PathBuf {
        self.master().paths().master_socket()
    }

    pub fn master_log(&self) -> String {
        std::fs::read_to_string(self.master().path("var/log/ganeti/master-daemon.log"))
            .unwrap_or_default()
    }

    /// The master daemon's pid, from its pid file.
    pub fn master_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.master().root.pid_file("ganeti-masterd"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Sends `sig` to the master daemon and waits until it is gone.
    pub fn kill_master(&self, sig: i32) {
        if let Some(pid) = self.master_pid() {
            signal(pid, sig);
            assert!(
                wait_until(Duration::from_secs(30), || !alive(pid)),
                "masterd {pid} still alive after signal {sig}"
            );
        }
    }

    /// A LUXI client of the master daemon.
    pub fn client(&self) -> luxi::Client {
        luxi::Client::connect(&self.socket()).expect("connect to the master socket")
    }

    /// The configuration as node `k` has it on disk.
    pub fn config_text(&self, k: usize) -> String {
        std::fs::read_to_string(self.node(k).path("var/lib/ganeti/config.data")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(pid) = self.master_pid() {
            if alive(pid) {
                signal(pid, libc::SIGKILL);
                wait_until(Duration::from_secs(5), || !alive(pid));
            }
        }
        // The roots kill their node daemons.
    }
}
