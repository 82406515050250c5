//! The master daemon's start-up checks of ganeti-masterd(8), on the real
//! binary in temporary roots.

mod common;

use common::*;

#[test]
fn missing_ssconf_exits_12_with_2_5_2_message() {
    let root = Root::new("m-nossconf");
    let out = root.command(MASTERD).arg("-f").output().unwrap();
    assert_eq!(out.status.code(), Some(12));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("Cluster configuration incomplete: 'Can't read from the ssconf file "),
        "{stdout}"
    );
    assert!(stdout.contains("ssconf_master_node"), "{stdout}");
}

#[test]
fn another_master_exits_11_silently_unless_debugging() {
    let root = Root::new("m-other");
    root.set_master("node2.example.com");
    for extra in [&[][..], &["--no-voting", "--yes-do-it"]] {
        let out = root
            .command(MASTERD)
            .arg("-f")
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(11));
        assert!(out.stdout.is_empty() && out.stderr.is_empty());
    }
    let out = root.command(MASTERD).args(["-f", "-d"]).output().unwrap();
    assert_eq!(out.status.code(), Some(11));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Not master, exiting."
    );
}

#[test]
fn master_without_configuration_is_refused() {
    let root = Root::new("m-noconfig");
    root.set_master("node1.example.com");
    let out = root.command(MASTERD).arg("-f").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("Configuration error while opening the configuration file:"),
        "{err}"
    );
    assert!(!root.pid_file("ganeti-masterd").exists());
}

#[test]
fn options() {
    let root = Root::new("m-opts");
    let out = root.command(MASTERD).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ganeti-masterd (ganeti) 2.5.2\n"));
    let out = root.command(MASTERD).arg("-p").arg("1").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "masterd has no -p");
    let out = root.command(MASTERD).arg("stray").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Usage: ganeti-masterd [-f] [-d]"
    );
}

// ---------------------------------------------------------------- clusters

use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::cluster::*;
use serde_json::Value;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Rewrites node `k`'s configuration file through `f` (as JSON).
fn edit_config(cluster: &Cluster, f: impl FnOnce(&mut Value)) {
    let path = cluster.master().path("var/lib/ganeti/config.data");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn configuration_refusals_exit_1_with_2_5_2_messages() {
    let cluster = Cluster::new("ms-cfg", 1);
    edit_config(&cluster, |v| v["version"] = serde_json::json!(2040000));
    let out = cluster.start_masterd(&["-f", "--no-voting", "--yes-do-it"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim_end(),
        "Configuration version mismatch. The current Ganeti software expects version 2.5.0, \
         but the on-disk configuration file has version 2.4.0. This is likely the result of \
         upgrading the software without running the upgrade procedure. Please contact your \
         cluster administrator or complete the upgrade using the cfgupgrade utility, after \
         reading the upgrade notes."
    );
    edit_config(&cluster, |v| {
        v["version"] = serde_json::json!(2050000);
        v["cluster"]["master_node"] = serde_json::json!("node2.example.com");
    });
    let out = cluster.start_masterd(&["-f", "--no-voting", "--yes-do-it"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(
            "Configuration error while opening the configuration file: The configuration \
             denotes node node2.example.com as master, while my hostname is node1.example.com"
        ),
        "{err}"
    );
    assert!(err.contains("the master daemon cannot start."), "{err}");
    std::fs::write(cluster.master().path("var/lib/ganeti/config.data"), "{").unwrap();
    let out = cluster.start_masterd(&["-f", "--no-voting", "--yes-do-it"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("Configuration error while opening the configuration file: ")
    );
    assert!(!cluster.master().root.pid_file("ganeti-masterd").exists());
    assert!(!cluster.socket().exists());
}

/// Runs the master daemon with `input` on its standard input.
fn start_with_input(cluster: &Cluster, args: &[&str], input: &str) -> std::process::Output {
    let mut child = cluster
        .masterd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

const PROMPT: &str = "The 'no voting' option has been selected.\n\
                      This is dangerous, please confirm by typing uppercase 'yes': ";

#[test]
fn no_voting_asks_for_a_typed_yes() {
    let cluster = Cluster::new("ms-prompt", 1);
    for answer in ["yes\n", "", "Yes\n", "y\n", "YES!\n"] {
        let out = start_with_input(&cluster, &["--no-voting"], answer);
        assert_eq!(out.status.code(), Some(1), "{answer:?}");
        assert_eq!(text(&out.stdout), PROMPT);
        assert_eq!(text(&out.stderr).trim_end(), "Aborting.");
        assert!(!cluster.socket().exists());
    }
    let out = start_with_input(&cluster, &["--no-voting"], " YES \n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), PROMPT);
    assert!(cluster.socket().exists());
    let mut c = cluster.client();
    assert!(c.query_cluster_info().is_ok());
    // A second master daemon is refused while this one runs.
    let out = cluster.start_masterd(&["--no-voting", "--yes-do-it"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already locked by another process"),
        "{}",
        text(&out.stderr)
    );
    assert!(c.query_cluster_info().is_ok(), "the first one still serves");
    cluster.kill_master(libc::SIGTERM);
    assert!(!cluster.socket().exists());
    assert!(!cluster.master().root.pid_file("ganeti-masterd").exists());
    // --yes-do-it: no prompt at all.
    let out = start_with_input(&cluster, &["--no-voting", "--yes-do-it"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert!(cluster.socket().exists());
}

#[test]
fn single_node_needs_no_votes_and_starts() {
    let cluster = Cluster::new("ms-single", 1);
    let t = Instant::now();
    let out = cluster.start_masterd(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(t.elapsed() < Duration::from_secs(10));
    // The master IP (on loopback) answers and is local: nothing to do.
    assert_eq!(text(&out.stderr), "");
    let log = cluster.master_log();
    assert!(log.contains("ganeti-masterd daemon startup"), "{log}");
    assert!(!log.contains("master IP"), "{log}");
    let node_log = std::fs::read_to_string(cluster.master().root.node_log()).unwrap();
    assert!(node_log.contains("POST /node_start_master"), "{node_log}");
    assert!(cluster.client().query_cluster_info().is_ok());
    // 3.0 clients find the socket under its 3.0 name.
    let query = cluster.socket().with_file_name("ganeti-query");
    assert_eq!(
        std::fs::read_link(&query).unwrap(),
        std::path::Path::new("ganeti-master")
    );
    cluster.kill_master(libc::SIGTERM);
    assert!(!query.exists());
    assert!(!cluster.socket().exists());
    let log = cluster.master_log();
    assert!(log.contains("Received signal 15, shutting down"), "{log}");
}

#[test]
fn master_ip_failure_is_only_logged() {
    let cluster = Cluster::new("ms-mip", 1);
    // The node daemon refuses a network device that is no interface name.
    let p = cluster.master().path("var/lib/ganeti/ssconf_master_netdev");
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, "bad/dev\n").unwrap();
    let out = cluster.start_masterd(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let want = "Can't activate master IP address: Invalid master network device 'bad/dev'";
    assert_eq!(text(&out.stderr).trim_end(), want);
    let log = cluster.master_log();
    assert!(log.contains(&format!("ERROR {want}")), "{log}");
    assert!(cluster.client().query_cluster_info().is_ok());
}

#[test]
fn voting_with_every_node_up_and_with_a_tie() {
    let cluster = Cluster::new("ms-vote3", 3);
    let out = cluster.start_masterd(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    cluster.kill_master(libc::SIGTERM);
    // One of the two others down: one vote for us, one for nobody; a tie
    // passes, as in 2.5.2.
    cluster.stop_noded(3);
    let out = cluster.start_masterd(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(cluster.client().query_cluster_info().is_ok());
}

#[test]
fn voting_with_most_nodes_down_gives_up_after_six_rounds() {
    let mut spec = ClusterSpec::new("ms-votedown", 3);
    spec.start_noded = Some(vec![1]);
    let cluster = Cluster::build(spec);
    let t = Instant::now();
    let out = cluster
        .masterd()
        .env("GANETI_MASTERD_VOTE_DELAY", "0.2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let retries = err
        .lines()
        .filter(|l| *l == "Majority of nodes didn't answer, retrying in a few seconds")
        .count();
    assert_eq!(retries, 5, "{err}");
    assert!(err.contains(
        "Cluster inconsistent, most of the nodes didn't answer after multiple retries. \
         Aborting startup\nUse the --no-voting option if you understand what effects it has \
         on the cluster state\n"
    ));
    // 5 pauses of 0.2 s.
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert!(!cluster.socket().exists());
    // --no-voting starts anyway.
    let out = cluster.start_masterd(&["--no-voting", "--yes-do-it"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn voting_for_another_master_refuses() {
    let cluster = Cluster::new("ms-voteother", 3);
    // Nodes 2 and 3 believe node 2 is the master.
    for k in [2, 3] {
        let p = cluster.node(k).path("var/lib/ganeti/ssconf_master_node");
        let _ = std::fs::remove_file(&p);
        std::fs::write(&p, "node2.example.com\n").unwrap();
    }
    let out = cluster.start_masterd(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim_end(),
        "It seems we are not the master (top-voted node node2.example.com with 2 out of 2 \
         votes)"
    );
    // One for node 2, one for us: equal counts sort by name, descending,
    // so node 2 is still on top (2.5.2's order) and we refuse.
    let p = cluster.node(3).path("var/lib/ganeti/ssconf_master_node");
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, "node1.example.com\n").unwrap();
    let out = cluster.start_masterd(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim_end(),
        "It seems we are not the master (top-voted node node2.example.com with 1 out of 2 \
         votes)"
    );
    // Both for us.
    let p = cluster.node(2).path("var/lib/ganeti/ssconf_master_node");
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, "node1.example.com\n").unwrap();
    let out = cluster.start_masterd(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn real_2_5_2_configuration_loads_and_round_trips() {
    use serde_json::json;
    let cluster = Cluster::new("ms-cfg252", 1);
    let node = cluster.master();
    // Real 2.5.2's file, with the master's addresses moved to this test
    // cluster's loopback ones.
    let text252 = std::fs::read_to_string("tests/samples/ganeti-2.5.2/config.data").unwrap();
    let mut v: Value = serde_json::from_str(&text252).unwrap();
    let master = v["cluster"]["master_node"].as_str().unwrap().to_string();
    v["cluster"]["master_ip"] = json!(MASTER_IP);
    v["cluster"]["master_netdev"] = json!(MASTER_NETDEV);
    v["nodes"][&master]["primary_ip"] = json!("127.0.0.1");
    v["nodes"][&master]["secondary_ip"] = json!("127.0.0.1");
    let cfg: ganeti::objects::ConfigData = ganeti::config::parse(&v.to_string()).unwrap();
    let text_in = ganeti::config::serialize(&cfg);
    std::fs::write(node.path("var/lib/ganeti/config.data"), &text_in).unwrap();
    write_ssconf(&node.root.dir, &cfg);
    let out = cluster
        .masterd()
        .env("GANETI_HOSTNAME", &master)
        .args(["--no-voting", "--yes-do-it"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut c = cluster.client();
    let info = c.query_cluster_info().unwrap();
    assert_eq!(info["name"], v["cluster"]["cluster_name"]);
    assert_eq!(info["uuid"], v["cluster"]["uuid"]);
    assert_eq!(info["master"], json!(master));
    // A job that rewrites the configuration.
    let id = c
        .submit_job(vec![json!({"OP_ID": "OP_CLUSTER_REDIST_CONF"})])
        .unwrap();
    assert!(common::wait_until(Duration::from_secs(30), || {
        c.query_jobs(&[id], &["status"]).unwrap()[0] == Some(vec![json!("success")])
    }));
    let text_out = std::fs::read_to_string(node.path("var/lib/ganeti/config.data")).unwrap();
    // Everything but the serials and modification times is as it was, in
    // 2.5.2's text format.
    let strip = |t: &str| {
        let mut v: Value = serde_json::from_str(t).unwrap();
        for k in ["serial_no", "mtime"] {
            v.as_object_mut().unwrap().remove(k);
            v["cluster"].as_object_mut().unwrap().remove(k);
        }
        v
    };
    assert_eq!(strip(&text_out), strip(&text_in));
    let out_cfg = ganeti::config::parse(&text_out).unwrap();
    assert_eq!(ganeti::config::serialize(&out_cfg), text_out);
    assert!(text_out.starts_with("{\n  \"cluster\": {\n"), "{text_out}");
}
