//! `gnt-cluster` against the real daemons in temporary roots: init (files,
//! modes, contents, both daemons started, the post-init job), getmaster,
//! info, version, master-ping, queue, redist-conf, tags, destroy (the node
//! left clean, and init possible again), and master failover with
//! `--no-voting` on a two-node cluster in a private network namespace.

#[path = "cli_util/mod.rs"]
mod cli_util;
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use cli_util::*;
use common::{alive, wait_until};
use serde_json::Value;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn ok(out: &std::process::Output) -> String {
    let (code, stdout, stderr) = result(out);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    stdout
}

const SSCONF_KEYS: [&str; 21] = [
    "cluster_name",
    "cluster_tags",
    "file_storage_dir",
    "shared_file_storage_dir",
    "master_candidates",
    "master_candidates_ips",
    "master_ip",
    "master_netdev",
    "master_node",
    "node_list",
    "node_primary_ips",
    "node_secondary_ips",
    "offline_nodes",
    "online_nodes",
    "primary_ip_family",
    "instance_list",
    "release_version",
    "hypervisor_list",
    "maintain_node_health",
    "uid_pool",
    "nodegroups",
];

#[test]
fn init_info_destroy_and_init_again() {
    let c = TestCluster::new("cli-init");
    c.init_ok();
    let data = c.path("var/lib/ganeti");

    // Both daemons run.
    let noded = c.pid("ganeti-noded").expect("noded pid file");
    let masterd = c.pid("ganeti-masterd").expect("masterd pid file");
    assert!(alive(noded) && alive(masterd));

    // Files and modes (config.data is 0600 when created, 0640 once the
    // configuration writer has updated it, as in 2.5.2).
    assert_eq!(mode(&data.join("config.data")), 0o640);
    for secret in [
        "server.pem",
        "rapi.pem",
        "hmac.key",
        "cluster-domain-secret",
    ] {
        assert_eq!(mode(&data.join(secret)), 0o400, "{secret}");
    }
    for key in ["hmac.key", "cluster-domain-secret"] {
        let s = std::fs::read_to_string(data.join(key)).unwrap();
        assert_eq!(s.len(), 41, "{key}: {s:?}");
        assert!(s.ends_with('\n') && s[..40].bytes().all(|b| b.is_ascii_hexdigit()));
    }
    let pem = std::fs::read(data.join("server.pem")).unwrap();
    assert!(pem.starts_with(b"-----BEGIN PRIVATE KEY-----\n"));
    let cert = openssl::x509::X509::from_pem(&pem).unwrap();
    let key = openssl::pkey::PKey::private_key_from_pem(&pem).unwrap();
    assert_eq!(key.bits(), 2048);
    assert!(cert.verify(&key).unwrap());
    assert_ne!(
        std::fs::read(data.join("rapi.pem")).unwrap(),
        pem,
        "the RAPI certificate is another one"
    );
    assert_eq!(mode(&data.join("known_hosts")), 0o644);
    assert_eq!(
        std::fs::read_to_string(data.join("known_hosts")).unwrap(),
        "cluster.example.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCtest\n"
    );
    for key in SSCONF_KEYS {
        assert_eq!(mode(&data.join(format!("ssconf_{key}"))), 0o444, "{key}");
    }
    let ss = |k: &str| std::fs::read_to_string(data.join(format!("ssconf_{k}"))).unwrap();
    assert_eq!(ss("master_node"), "node1.example.com\n");
    assert_eq!(ss("master_ip"), "127.0.0.2\n");
    assert_eq!(ss("master_netdev"), "lo\n");
    assert_eq!(ss("node_primary_ips"), "node1.example.com 127.0.0.1\n");
    assert_eq!(ss("hypervisor_list"), "fake\n");
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("config.data")).unwrap()).unwrap();
    let cl = &cfg["cluster"];
    assert_eq!(cl["cluster_name"], "cluster.example.com");
    assert_eq!(cl["master_node"], "node1.example.com");
    assert_eq!(cl["master_ip"], "127.0.0.2");
    assert_eq!(cl["enabled_hypervisors"], serde_json::json!(["fake"]));
    assert_eq!(cl["rsahostkeypub"], "AAAAB3NzaC1yc2EAAAADAQABAAABAQCtest");
    assert_eq!(cl["modify_ssh_setup"], false);
    assert_eq!(cl["modify_etc_hosts"], true);
    assert!(cl.get("volume_group_name").is_none() && cl.get("drbd_usermode_helper").is_none());
    assert_eq!(cfg["nodes"][NODE]["primary_ip"], "127.0.0.1");
    assert_eq!(cfg["nodes"][NODE]["master_candidate"], true);
    // /etc/hosts (under the root) got the node.
    let hosts = std::fs::read_to_string(c.path("etc/hosts")).unwrap();
    assert!(
        hosts.contains("127.0.0.1\tnode1.example.com node1\n"),
        "{hosts}"
    );
    // The storage directories exist.
    assert!(c.path("srv/ganeti/file-storage").is_dir());
    assert!(c.path("srv/ganeti/shared-file-storage").is_dir());

    // The post-init job ran.
    let list = ok(&c.run(GNT_JOB, &["list"]));
    assert_eq!(
        list,
        "ID Status  Summary          \n1  success CLUSTER_POST_INIT\n"
    );

    assert_eq!(
        ok(&c.run(GNT_CLUSTER, &["getmaster"])),
        "node1.example.com\n"
    );
    assert_eq!(
        ok(&c.run(GNT_CLUSTER, &["version"])),
        "Software version: 2.5.2\nInternode protocol: 2050000\nConfiguration format: \
         2050000\nOS api version: 20\nExport interface: 0\n"
    );
    assert_eq!(result(&c.run(GNT_CLUSTER, &["master-ping"])).0, 0);
    let info = ok(&c.run(GNT_CLUSTER, &["info"]));
    for line in [
        "Cluster name: cluster.example.com\n",
        "Master node: node1.example.com\n",
        "Tags: (none)\n",
        "Default hypervisor: fake\n",
        "Enabled hypervisors: fake\n",
        "Hypervisor parameters:\n  - fake:\nOS-specific hypervisor parameters:\n",
        "  - candidate pool size: 10\n",
        "  - master netdev: lo\n",
        "  - lvm volume group: None\n",
        "  - drbd usermode helper: None\n",
        "  - file storage path: /srv/ganeti/file-storage\n",
        "  - primary ip version: 4\n",
        "Default node parameters:\n    oob_program: None\n",
        "Default instance parameters:\n  - default:\n      auto_balance: True\n      \
         memory: 128\n      vcpus: 1\n",
        "Default nic parameters:\n  - default:\n      link: xen-br0\n      mode: bridged\n",
    ] {
        assert!(info.contains(line), "{line:?} missing in:\n{info}");
    }

    // Tags and redist-conf go through jobs.
    ok(&c.run(GNT_CLUSTER, &["add-tags", "b-tag", "a-tag"]));
    assert_eq!(ok(&c.run(GNT_CLUSTER, &["list-tags"])), "a-tag\nb-tag\n");
    ok(&c.run(GNT_CLUSTER, &["remove-tags", "b-tag"]));
    assert_eq!(ok(&c.run(GNT_CLUSTER, &["list-tags"])), "a-tag\n");
    ok(&c.run(GNT_CLUSTER, &["redist-conf"]));
    let (code, out, err) = result(&c.run(GNT_CLUSTER, &["redist-conf", "--submit"]));
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(err.starts_with("JobID: ") && err.ends_with('\n'), "{err}");

    // Once is enough.
    let (code, _, err) = result(&c.init(&[]));
    assert_eq!(code, 1);
    assert!(err.ends_with("Cluster is already initialised\n"), "{err}");

    // Destroy: the daemons go, the node is clean.
    ok(&c.run(GNT_CLUSTER, &["destroy", "--yes-do-it"]));
    assert!(
        wait_until(SECS, || !alive(noded) && !alive(masterd)),
        "{}",
        c.logs()
    );
    let left: Vec<_> = files_below(&data)
        .into_iter()
        .filter(|p| p != Path::new("queue/lock"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!c.path("var/run/ganeti/socket/ganeti-master").exists());

    // And init works again.
    c.init_ok();
    assert_eq!(
        ok(&c.run(GNT_JOB, &["list", "--no-headers", "-o", "status,summary"])),
        "success CLUSTER_POST_INIT\n"
    );
    ok(&c.run(GNT_CLUSTER, &["destroy", "--yes-do-it"]));
}

#[test]
fn queue_drain_refuses_jobs() {
    let c = TestCluster::new("cli-drain");
    c.init_ok();
    assert_eq!(
        ok(&c.run(GNT_CLUSTER, &["queue", "info"])),
        "The drain flag is unset\n"
    );
    assert_eq!(ok(&c.run(GNT_CLUSTER, &["queue", "drain"])), "");
    assert!(c.path("var/lib/ganeti/queue/drain").exists());
    assert_eq!(
        ok(&c.run(GNT_CLUSTER, &["queue", "info"])),
        "The drain flag is set\n"
    );
    let (code, out, err) = result(&c.run(GNT_DEBUG, &["delay", "0.1"]));
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            1,
            "",
            "Failure: the job queue is marked for drain and doesn't accept new requests\n"
        )
    );
    assert_eq!(ok(&c.run(GNT_CLUSTER, &["queue", "undrain"])), "");
    assert_eq!(
        ok(&c.run(GNT_CLUSTER, &["queue", "info"])),
        "The drain flag is unset\n"
    );
    ok(&c.run(GNT_DEBUG, &["delay", "0.01"]));
    let (code, _, err) = result(&c.run(GNT_CLUSTER, &["queue", "flush"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Failure: prerequisites not met for this operation:\nerror type: wrong_input, error \
         details:\nCommand 'flush' is not valid.\n"
    );
    assert_eq!(
        ok(&c.run(GNT_CLUSTER, &["watcher", "info"])),
        "The watcher is not paused.\n"
    );
    let paused = ok(&c.run(GNT_CLUSTER, &["watcher", "pause", "1h"]));
    assert!(
        paused.starts_with("The watcher is paused until "),
        "{paused}"
    );
    assert_eq!(
        ok(&c.run(GNT_CLUSTER, &["watcher", "continue"])),
        "The watcher is no longer paused.\n"
    );
}

// --------------------------------------------------- master failover

fn ip_cmd() -> &'static str {
    ["/sbin/ip", "/bin/ip", "/usr/sbin/ip", "/usr/bin/ip"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("ip")
}

/// Moves this test's thread into a new network namespace with `lo` up;
/// the daemons started from it inherit it.
fn private_netns() -> bool {
    // SAFETY: unshare(CLONE_NEWNET) affects only the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        eprintln!(
            "skipped: cannot create a network namespace: {}",
            std::io::Error::last_os_error()
        );
        return false;
    }
    Command::new(ip_cmd())
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap()
        .success()
}

fn addresses() -> String {
    let out = Command::new(ip_cmd())
        .args(["-o", "addr", "show", "dev", "lo"])
        .output()
        .unwrap();
    text(&out.stdout)
}

/// A two-node cluster: node1 (127.0.0.1) initialised as master with the
/// cluster address 192.0.2.50 on `lo`, node2 (127.0.0.2) a second master
/// candidate with its own root, node daemon and the same files; then
/// `master-failover --no-voting --yes-do-it` on node2.
#[test]
fn master_failover_without_voting_on_two_nodes() {
    if !private_netns() {
        return;
    }
    let n1 = TestCluster::with_hosts("cli-fo1", "127.0.0.1", "192.0.2.50");
    n1.init_ok();
    assert!(
        addresses().contains("inet 192.0.2.50/32"),
        "{}",
        addresses()
    );

    // node2: same port, another root and address, in both hosts files.
    let n2 = TestCluster::with_hosts("cli-fo2", "127.0.0.2", "192.0.2.50");
    let hosts = "127.0.0.1 node1.example.com node1\n127.0.0.2 node2.example.com node2\n\
                 192.0.2.50 cluster.example.com cluster\n";
    for c in [&n1, &n2] {
        std::fs::write(c.path("etc/hosts"), hosts).unwrap();
    }
    std::fs::write(
        n2.path("etc/default/ganeti"),
        format!("NODED_ARGS=\"-b 127.0.0.2 -p {}\"\n", n1.port),
    )
    .unwrap();
    // node2 gets the cluster's certificate and configuration with itself
    // added as a master candidate (as node add would have done), and the
    // master writes the configuration (and ssconf) to both nodes.
    let d1 = n1.path("var/lib/ganeti");
    let d2 = n2.path("var/lib/ganeti");
    for f in [
        "server.pem",
        "rapi.pem",
        "hmac.key",
        "cluster-domain-secret",
        "known_hosts",
    ] {
        std::fs::copy(d1.join(f), d2.join(f)).unwrap();
    }
    let node2_cmd = |bin: &str| {
        let mut cmd = n2.command(bin);
        cmd.env("GANETI_HOSTNAME", "node2.example.com")
            .env("GANETI_NODED_PORT", n1.port.to_string());
        cmd
    };
    let out = node2_cmd(common::NODED)
        .args(["-b", "127.0.0.2", "-p", &n1.port.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Add node2 to the configuration through the master's own writer is
    // not possible from outside; stop the master, edit, start it again.
    let masterd = n1.pid("ganeti-masterd").unwrap();
    common::signal(masterd, libc::SIGTERM);
    assert!(wait_until(SECS, || !alive(masterd)));
    let cfg_path = d1.join("config.data");
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    let mut node2 = cfg["nodes"][NODE].clone();
    node2["name"] = "node2.example.com".into();
    node2["primary_ip"] = "127.0.0.2".into();
    node2["secondary_ip"] = "127.0.0.2".into();
    node2["uuid"] = "c0ffee00-0000-4000-8000-000000000022".into();
    cfg["nodes"]["node2.example.com"] = node2;
    cfg["cluster"]["serial_no"] = (cfg["cluster"]["serial_no"].as_u64().unwrap() + 1).into();
    std::fs::write(&cfg_path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    // node2 has no ssconf yet, so it could not vote: start without voting.
    let out = n1
        .command(common::MASTERD)
        .args(["--no-voting", "--yes-do-it"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", text(&out.stderr), n1.logs());
    // redist-conf pushes config.data and ssconf to node2.
    ok(&n1.run(GNT_CLUSTER, &["redist-conf"]));
    assert!(d2.join("config.data").exists(), "{}", n1.logs());
    assert_eq!(
        std::fs::read_to_string(d2.join("ssconf_master_candidates")).unwrap(),
        "node1.example.com\nnode2.example.com\n"
    );
    let old_masterd = n1.pid("ganeti-masterd").unwrap();

    // Not a master candidate / already master refusals come first.
    let (code, _, err) = result(&n1.run(
        GNT_CLUSTER,
        &["master-failover", "--no-voting", "--yes-do-it"],
    ));
    assert_eq!(code, 1);
    assert!(
        err.ends_with("node1.example.com is already the master\n"),
        "{err}"
    );
    // Without a terminal, --no-voting alone is not confirmed.
    // (setsid: no controlling terminal, so no /dev/tty to ask on.)
    let out = node2_cmd("setsid")
        .args([GNT_CLUSTER, "master-failover", "--no-voting"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(result(&out).0, 1);
    assert_eq!(
        std::fs::read_to_string(d2.join("ssconf_master_node")).unwrap(),
        "node1.example.com\n"
    );

    let out = node2_cmd(GNT_CLUSTER)
        .args(["master-failover", "--no-voting", "--yes-do-it"])
        .output()
        .unwrap();
    assert_eq!(
        result(&out).0,
        0,
        "{}{}\n{}",
        text(&out.stderr),
        n1.logs(),
        n2.logs()
    );
    // The old master daemon is gone, the new one runs, both nodes agree.
    assert!(wait_until(SECS, || !alive(old_masterd)));
    let new_masterd = n2.pid("ganeti-masterd").expect("new master pid");
    assert!(alive(new_masterd));
    for d in [&d1, &d2] {
        assert_eq!(
            std::fs::read_to_string(d.join("ssconf_master_node")).unwrap(),
            "node2.example.com\n"
        );
        let cfg: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("config.data")).unwrap()).unwrap();
        assert_eq!(cfg["cluster"]["master_node"], "node2.example.com");
    }
    assert!(
        addresses().contains("inet 192.0.2.50/32"),
        "{}",
        addresses()
    );
    // The tools follow: node2 answers, node1 points to node2.
    let out = node2_cmd(GNT_CLUSTER).args(["getmaster"]).output().unwrap();
    assert_eq!(ok(&out), "node2.example.com\n");
    let out = node2_cmd(GNT_DEBUG)
        .args(["delay", "0.01"])
        .output()
        .unwrap();
    ok(&out);
    let (code, _, err) = result(&n1.run(GNT_JOB, &["list"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("This is not the master node, please connect to node 'node2.example.com'"),
        "{err}"
    );
    // Clean up the second node's daemons (the first's go with n1).
    n2.kill();
    let _ = Command::new(ip_cmd())
        .args(["addr", "del", "192.0.2.50/32", "dev", "lo"])
        .status();
}
