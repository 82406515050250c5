//! The master daemon with several nodes (real node daemons on 127.0.0.1-3,
//! real TLS): job queue replication to the master candidates, the
//! configuration and ssconf copied after a change, delays on nodes, a
//! node that is down.

mod common;

use std::time::{Duration, Instant};

use common::cluster::*;
use common::*;
use ganeti::luxi;
use serde_json::{json, Value};

fn wait_final(c: &mut luxi::Client, id: u64) -> String {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let row = c.query_jobs(&[id], &["status"]).unwrap();
        let status = row[0].as_ref().unwrap()[0].as_str().unwrap().to_string();
        if ["success", "error", "canceled"].contains(&status.as_str()) {
            return status;
        }
        assert!(Instant::now() < end, "job {id} did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn opresult(c: &mut luxi::Client, id: u64) -> Value {
    c.query_jobs(&[id], &["opresult"]).unwrap()[0]
        .as_ref()
        .unwrap()[0][0]
        .clone()
}

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

#[test]
fn queue_replication_to_master_candidates() {
    let cluster = Cluster::new("mc-repl", 3);
    cluster.start_master();
    let mut c = cluster.client();
    // Log messages make the job file larger than 512 bytes: it travels
    // compressed.
    let op = json!({"OP_ID": "OP_TEST_DELAY", "duration": 0, "repeat": 8});
    let id = c.submit_job(vec![op]).unwrap();
    assert_eq!(wait_final(&mut c, id), "success");
    let name = format!("job-{id}");
    let master_file = read(&cluster.master().queue_dir().join(&name));
    assert!(master_file.len() > 512, "{}", master_file.len());
    for k in [2, 3] {
        let q = cluster.node(k).queue_dir();
        assert!(
            wait_until(Duration::from_secs(5), || read(&q.join(&name))
                == master_file),
            "node {k} has no copy of {name}"
        );
        assert_eq!(
            read(&q.join("serial")),
            read(&cluster.master().queue_dir().join("serial"))
        );
    }
    // Archiving renames on the candidates too.
    assert!(c.archive_job(id).unwrap());
    for k in [2, 3] {
        let q = cluster.node(k).queue_dir();
        assert!(!q.join(&name).exists());
        assert_eq!(read(&q.join("archive/0").join(&name)), master_file);
    }
}

#[test]
fn configuration_and_ssconf_reach_the_other_nodes() {
    let cluster = Cluster::new("mc-config", 3);
    cluster.start_master();
    let mut c = cluster.client();
    let op = json!({"OP_ID": "OP_TAGS_SET", "kind": "cluster", "name": null,
                    "tags": ["replicated"]});
    let id = c.submit_job(vec![op]).unwrap();
    assert_eq!(wait_final(&mut c, id), "success");
    let master_cfg = cluster.config_text(1);
    assert!(master_cfg.contains("\"replicated\""));
    for k in [2, 3] {
        assert_eq!(
            cluster.config_text(k),
            master_cfg,
            "config.data on node {k}"
        );
        assert_eq!(
            std::fs::read_to_string(cluster.node(k).path("var/lib/ganeti/ssconf_cluster_tags"))
                .unwrap(),
            "replicated\n"
        );
    }
    // Redistribution copies the ancillary files that exist on the master.
    std::fs::write(
        cluster.master().path("var/lib/ganeti/hmac.key"),
        "secret-key\n",
    )
    .unwrap();
    let id = c
        .submit_job(vec![json!({"OP_ID": "OP_CLUSTER_REDIST_CONF"})])
        .unwrap();
    assert_eq!(wait_final(&mut c, id), "success");
    for k in [2, 3] {
        assert_eq!(
            std::fs::read_to_string(cluster.node(k).path("var/lib/ganeti/hmac.key")).unwrap(),
            "secret-key\n"
        );
        assert_eq!(cluster.config_text(k), cluster.config_text(1));
    }
}

#[test]
fn delays_on_nodes_and_a_node_that_is_down() {
    let cluster = Cluster::new("mc-delay", 3);
    cluster.start_master();
    let mut c = cluster.client();
    let op = json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.2, "on_master": false,
                    "on_nodes": ["node2", "node3.example.com"]});
    let t = Instant::now();
    let id = c.submit_job(vec![op.clone()]).unwrap();
    assert_eq!(wait_final(&mut c, id), "success");
    assert!(t.elapsed() >= Duration::from_millis(200));
    for k in [2, 3] {
        let log = std::fs::read_to_string(cluster.node(k).root.node_log()).unwrap();
        assert!(log.contains("POST /test_delay"), "node {k}: {log}");
    }
    cluster.stop_noded(3);
    let id = c.submit_job(vec![op]).unwrap();
    assert_eq!(wait_final(&mut c, id), "error");
    let r = opresult(&mut c, id);
    assert_eq!(r[0], json!("OpExecError"));
    let msg = r[1][0].as_str().unwrap();
    assert!(
        msg.starts_with("Failure during rpc call to node node3.example.com: "),
        "{msg}"
    );
    // Replication to the node that is down fails, is logged, and changes
    // nothing for the jobs.
    let id = c
        .submit_job(vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0})])
        .unwrap();
    assert_eq!(wait_final(&mut c, id), "success");
    let log = cluster.master_log();
    assert!(
        log.contains("RPC call jobqueue_update (/var/lib/ganeti/queue/")
            && log.contains("failed on node node3.example.com"),
        "{log}"
    );
    assert!(!read(&cluster.node(2).queue_dir().join(format!("job-{id}"))).is_empty());
}
