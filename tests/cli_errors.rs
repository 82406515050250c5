//! The gnt-* tools without a running master: 2.5.2's messages and exit
//! codes when the node is not initialised, when no master daemon answers,
//! when another node is the master; option and argument errors; and every
//! refusal of `gnt-cluster init` that must come before anything is written.

#[path = "cli_util/mod.rs"]
mod cli_util;
mod common;

use std::net::TcpListener;

use cli_util::*;

const NOT_INITIALISED: &str = "Failure: prerequisites not met for this operation:\n\
     Cluster not initialized or this machine is not part of a cluster\n";
const NO_MASTER: &str =
    "Cannot communicate with the master daemon.\nIs it running and listening for connections?\n";

#[test]
fn commands_on_an_uninitialised_node() {
    let c = TestCluster::new("cli-uninit");
    for (bin, args) in [
        (GNT_JOB, vec!["list"]),
        (GNT_JOB, vec!["info", "1"]),
        (GNT_CLUSTER, vec!["info"]),
        (GNT_CLUSTER, vec!["queue", "drain"]),
        (GNT_DEBUG, vec!["delay", "1"]),
    ] {
        let (code, out, err) = result(&c.run(bin, &args));
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (1, "", NOT_INITIALISED),
            "{args:?}"
        );
    }
    // getmaster reads ssconf itself: 2.5.2's ConfigurationError, exit 2.
    let (code, out, err) = result(&c.run(GNT_CLUSTER, &["getmaster"]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(out, "");
    assert_eq!(
        err,
        "Corrupt configuration file: Can't read from the ssconf file: '[Errno 2] No such \
         file or directory: '/var/lib/ganeti/ssconf_master_node''\nAborting.\n"
    );
    // master-ping says it with its exit code only.
    let (code, out, err) = result(&c.run(GNT_CLUSTER, &["master-ping"]));
    assert_eq!((code, out.as_str(), err.as_str()), (1, "", ""));
}

#[test]
fn no_master_daemon_and_another_master() {
    let c = TestCluster::new("cli-nomaster");
    c.root.set_master(NODE);
    let (code, _, err) = result(&c.run(GNT_JOB, &["list"]));
    assert_eq!((code, err.as_str()), (1, NO_MASTER));
    let (code, _, err) = result(&c.run(GNT_DEBUG, &["delay", "0.1"]));
    assert_eq!((code, err.as_str()), (1, NO_MASTER));
    let (code, out, _) = result(&c.run(GNT_CLUSTER, &["getmaster"]));
    assert_eq!((code, out.as_str()), (0, "node1.example.com\n"));

    c.root.set_master("node2.example.com");
    let (code, _, err) = result(&c.run(GNT_CLUSTER, &["queue", "info"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Failure: prerequisites not met for this operation:\nThis is not the master node, \
         please connect to node 'node2.example.com' and rerun the command\n"
    );
    // master-failover on a node whose ssconf is incomplete.
    let (code, _, err) = result(&c.run(GNT_CLUSTER, &["master-failover"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("Corrupt configuration file: Can't read from the ssconf file"),
        "{err}"
    );
}

#[test]
fn usage_errors_as_optparse() {
    let c = TestCluster::new("cli-usage");
    let (code, out, err) = result(&c.run(GNT_JOB, &["list", "--bogus"]));
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.ends_with("gnt-job: error: no such option: --bogus\n"),
        "{err}"
    );
    let (code, _, err) = result(&c.run(GNT_JOB, &["watch"]));
    assert_eq!(
        (code, err.as_str()),
        (1, "Error: Command watch expects 1 argument(s)\n")
    );
    let (code, _, err) = result(&c.run(GNT_CLUSTER, &["getmaster", "x"]));
    assert_eq!(
        (code, err.as_str()),
        (1, "Error: Command getmaster expects no arguments\n")
    );
    let (code, out, _) = result(&c.run(GNT_CLUSTER, &[]));
    assert_eq!(code, 1);
    assert!(out.starts_with("Usage: gnt-cluster {command} [options...] [argument...]\n"));
    assert!(out.contains("\n master-failover "), "{out}");
    let (code, out, _) = result(&c.run(GNT_DEBUG, &["--version"]));
    assert_eq!(code, 0);
    assert!(
        out.starts_with("gnt-debug (ganeti v2.5.2) 2.5.2\n"),
        "{out}"
    );
    let (code, _, err) = result(&c.run(GNT_DEBUG, &["delay", "--priority=now", "1"]));
    assert_eq!(code, 2);
    assert!(err.ends_with("invalid choice: 'now' (choose from 'low', 'normal', 'high')\n"));
    let (code, _, err) = result(&c.run(GNT_JOB, &["info", "1; rm -rf /"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Failure: prerequisites not met for this operation:\nInvalid job ID '1; rm -rf /'\n"
    );
}

#[test]
fn destroy_needs_yes_do_it() {
    let c = TestCluster::new("cli-destroy-no");
    c.root.set_master(NODE);
    let before = files_below(&c.root.dir);
    let (code, out, err) = result(&c.run(GNT_CLUSTER, &["destroy"]));
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "Destroying a cluster is irreversible. If you really want destroy this cluster, \
         supply the --yes-do-it option.\n"
    );
    assert_eq!(files_below(&c.root.dir), before);
}

/// Runs an init that must be refused; returns stderr. Nothing may be
/// written under /var/lib/ganeti, and no daemon started.
fn refused(c: &TestCluster, args: &[&str]) -> String {
    let (code, out, err) = result(&c.init(args));
    assert_eq!(code, 1, "{args:?}: {out}{err}");
    assert_eq!(out, "");
    assert_eq!(
        files_below(&c.path("var/lib/ganeti")),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(c.pid("ganeti-noded").is_none());
    err
}

#[test]
fn init_refusals_write_nothing() {
    let c = TestCluster::new("cli-init-refused");
    let prereq = |ecode: &str, msg: &str| {
        format!(
            "Failure: prerequisites not met for this operation:\nerror type: {ecode}, error \
             details:\n{msg}\n"
        )
    };
    assert_eq!(
        refused(&c, &["--vg-name=xenvg"]),
        "Options --no-lvm-storage and --vg-name conflict.\n"
    );
    assert_eq!(
        refused(&c, &["--drbd-usermode-helper=/bin/true"]),
        "Options --no-drbd-storage and --drbd-usermode-helper conflict.\n"
    );
    assert_eq!(
        refused(&c, &["--enabled-hypervisors=fake,xen"]),
        prereq(
            "wrong_input",
            "Enabled hypervisors contains invalid entries: set(['xen'])"
        )
    );
    assert_eq!(
        refused(&c, &["--mac-prefix=AA:00:00"]),
        prereq("wrong_input", "Invalid mac prefix given 'AA:00:00'")
    );
    assert_eq!(
        refused(&c, &["--file-storage-dir=relative/dir"]),
        prereq(
            "wrong_input",
            "File storage directory 'relative/dir' is not an absolute path"
        )
    );
    assert!(refused(&c, &["--master-netdev=-bogus0"])
        .starts_with("Failure: prerequisites not met for this operation:\nerror type: wrong_input, error details:\nInvalid master netdev given (-bogus0): "));
    assert!(refused(&c, &["--master-netdev=nonexistent0"])
        .contains("Invalid master netdev given (nonexistent0): '"));
    assert_eq!(
        refused(&c, &["-B", "memory=lots"]),
        "Parameter Error: 'memory' (value lots) is not a valid size. error: Invalid format\n"
    );
    assert_eq!(
        refused(&c, &["-H", "fake:acpi=yes"]),
        "Parameter Error: Unknown parameter 'acpi'\n"
    );
    // 2.5.2 checks NIC parameters with a ConfigurationError: exit 2.
    let (code, _, err) = result(&c.init(&["-N", "mode=weird"]));
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "Corrupt configuration file: Invalid NIC mode 'weird'\nAborting.\n"
        )
    );
    assert!(files_below(&c.path("var/lib/ganeti")).is_empty());
    assert_eq!(
        refused(&c, &["--primary-ip-version=5"]),
        "Failure: prerequisites not met for this operation:\nInvalid primary ip version: 5.\n"
    );
    assert_eq!(
        refused(&c, &["--secondary-ip=192.0.2.99"]),
        prereq(
            "environment_error",
            "You gave 192.0.2.99 as secondary IP, but it does not belong to this host."
        )
    );
    // Not resolvable: the cluster name, or this node's name.
    let out = c.run(
        GNT_CLUSTER,
        &["init", "--no-lvm-storage", "nonexistent.invalid"],
    );
    assert_eq!(
        result(&out),
        (
            1,
            String::new(),
            "Failure: can't resolve hostname 'nonexistent.invalid'\n".into()
        )
    );
    let out = c
        .command(GNT_CLUSTER)
        .env("GANETI_HOSTNAME", "unknown-node.invalid")
        .args(["init", "--no-lvm-storage", CLUSTER])
        .output()
        .unwrap();
    assert_eq!(
        result(&out),
        (
            1,
            String::new(),
            "Failure: can't resolve my own hostname ('unknown-node.invalid')\n".into()
        )
    );
    // The cluster address answers on the node daemon port.
    let busy = TcpListener::bind(("127.0.0.2", c.port)).unwrap();
    assert_eq!(
        refused(&c, &[]),
        prereq("resource_not_unique", "Cluster IP already active")
    );
    drop(busy);
    // LVM by default: the volume group must exist.
    let err = {
        let (code, _, err) = result(&c.run(
            GNT_CLUSTER,
            &[
                "init",
                "--no-drbd-storage",
                "--enabled-hypervisors=fake",
                CLUSTER,
            ],
        ));
        assert_eq!(code, 1);
        err
    };
    assert!(
        err.ends_with("\nspecify --no-lvm-storage if you are not using lvm\n"),
        "{err}"
    );
    // Already initialised.
    std::fs::write(c.path("var/lib/ganeti/config.data"), "{}").unwrap();
    let (code, _, err) = result(&c.init(&[]));
    assert_eq!(code, 1);
    assert_eq!(err, prereq("wrong_state", "Cluster is already initialised"));
    assert_eq!(
        std::fs::read_to_string(c.path("var/lib/ganeti/config.data")).unwrap(),
        "{}"
    );
}
