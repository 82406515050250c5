//! The master daemon's jobs over real LUXI: a one-node cluster (real node
//! daemon over TLS, real master daemon in a temporary root), jobs
//! submitted, watched, queried, cancelled, archived; job files compared
//! with 2.5.2's; the drain flag; the query methods; tags; hooks.

mod common;

use std::time::{Duration, Instant};

use common::cluster::*;
use common::*;
use ganeti::luxi::{self, LuxiError};
use serde_json::{json, Value};

fn delay(duration: f64) -> Value {
    json!({"OP_ID": "OP_TEST_DELAY", "duration": duration})
}

fn is_final(status: &str) -> bool {
    ["success", "error", "canceled"].contains(&status)
}

/// Polls WaitForJobChange until the job is final; every log entry seen and
/// the final status.
fn watch(c: &mut luxi::Client, id: u64) -> (String, Vec<Value>) {
    let mut prev_info = Value::Null;
    let mut prev_serial: Option<u64> = None;
    let mut log = Vec::new();
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < end, "job {id} did not finish");
        let r = c
            .call(
                "WaitForJobChange",
                json!([id.to_string(), ["status"], prev_info, prev_serial, 5]),
            )
            .unwrap();
        if r == json!("nochange") {
            continue;
        }
        let (info, entries) = (r[0].clone(), r[1].as_array().unwrap().clone());
        for e in &entries {
            prev_serial = e[0].as_u64();
            log.push(e.clone());
        }
        let status = info[0].as_str().unwrap().to_string();
        if is_final(&status) {
            return (status, log);
        }
        prev_info = info;
    }
}

fn query(c: &mut luxi::Client, id: u64, fields: &[&str]) -> Value {
    let r = c
        .call("QueryJobs", json!([[id.to_string()], fields]))
        .unwrap();
    r[0].clone()
}

fn status(c: &mut luxi::Client, id: u64) -> String {
    query(c, id, &["status"])[0].as_str().unwrap().to_string()
}

fn wait_status(c: &mut luxi::Client, id: u64, want: &str) {
    assert!(
        wait_until(Duration::from_secs(30), || status(c, id) == want),
        "job {id} never became {want}: {}",
        status(c, id)
    );
}

fn ganeti_error(r: Result<Value, LuxiError>) -> (String, Vec<Value>) {
    match r {
        Err(LuxiError::Ganeti(e)) => (e.class.to_string(), e.args),
        other => panic!("expected a Ganeti error, got {other:?}"),
    }
}

#[test]
fn submit_watch_query_a_delay_job() {
    let cluster = Cluster::new("mj-submit", 1);
    cluster.start_master();
    let mut c = cluster.client();
    let op = json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.1, "repeat": 2});
    let id = c.submit_job(vec![op]).unwrap();
    let (status, log) = watch(&mut c, id);
    assert_eq!(status, "success");
    let texts: Vec<&str> = log.iter().map(|e| e[3].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        [
            " - INFO: Test delay iteration 0/1",
            " - INFO: Test delay iteration 1/1"
        ]
    );
    assert_eq!((log[0][0].clone(), log[1][0].clone()), (json!(1), json!(2)));
    assert_eq!(log[0][2], json!("message"));
    assert_eq!(log[0][1].as_array().unwrap().len(), 2);
    let row = query(
        &mut c,
        id,
        &[
            "id", "status", "opstatus", "opresult", "summary", "priority",
        ],
    );
    assert_eq!(
        row,
        json!([
            id.to_string(),
            "success",
            ["success"],
            [null],
            ["TEST_DELAY(0.1)"],
            0
        ])
    );
    // The stored opcode has the defaults filled in by validation.
    let ops = query(&mut c, id, &["ops"]);
    assert_eq!(
        ops[0][0],
        json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.1, "repeat": 2, "on_master": true,
               "on_nodes": [], "dry_run": null, "debug_level": 0, "priority": 0,
               "depends": null, "comment": null})
    );
    // A second WaitForJobChange with what the client saw: the job is
    // final, so the answer comes at once with no new log entries.
    let t = Instant::now();
    let r = c
        .call(
            "WaitForJobChange",
            json!([id.to_string(), ["status"], ["success"], 2, 10]),
        )
        .unwrap();
    assert_eq!(r, json!([["success"], []]));
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn failed_opcodes_and_unknown_fields() {
    let cluster = Cluster::new("mj-fail", 1);
    cluster.start_master();
    let mut c = cluster.client();
    // A negative delay fails the opcode; the next one of the job fails too.
    let id = c.submit_job(vec![delay(-1.0), delay(0.0)]).unwrap();
    assert_eq!(watch(&mut c, id).0, "error");
    assert_eq!(
        query(&mut c, id, &["opstatus", "opresult"]),
        json!([
            ["error", "error"],
            [
                ["OpExecError", ["Error during master delay test"]],
                ["OpExecError", ["Preceding opcode failed"]]
            ]
        ])
    );
    // A parameter of the wrong type is refused at execution, as 2.5.2.
    let id = c
        .submit_job(vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": "x"})])
        .unwrap();
    assert_eq!(watch(&mut c, id).0, "error");
    assert_eq!(
        query(&mut c, id, &["opresult"]),
        json!([[[
            "OpPrereqError",
            [
                "Parameter 'OP_TEST_DELAY.duration' fails validation",
                "wrong_input"
            ]
        ]]])
    );
    // on_nodes with an unknown node.
    let op = json!({"OP_ID": "OP_TEST_DELAY", "duration": 0, "on_nodes": ["nosuch"]});
    let id = c.submit_job(vec![op]).unwrap();
    assert_eq!(watch(&mut c, id).0, "error");
    assert_eq!(
        query(&mut c, id, &["opresult"]),
        json!([[[
            "OpPrereqError",
            ["Node 'nosuch' not known", "unknown_entity"]
        ]]])
    );
    // An unknown OP_ID is refused at submission (LoadOpCode).
    let r = c.call("SubmitJob", json!([{"OP_ID": "OP_NO_SUCH"}]));
    match r {
        Err(LuxiError::Request(v)) => {
            assert!(v.as_str().unwrap().starts_with("Caught exception: "), "{v}")
        }
        other => panic!("{other:?}"),
    }
    // Unknown job fields.
    let (class, args) = ganeti_error(c.call("QueryJobs", json!([[], ["nosuchfield"]])));
    assert_eq!(class, "OpExecError");
    assert_eq!(args, vec![json!("Invalid self query field 'nosuchfield'")]);
    // Unknown method.
    match c.call("Frobnicate", json!([])) {
        Err(LuxiError::Request(v)) => {
            assert_eq!(v, json!("Caught exception: Invalid operation 'Frobnicate'"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn delay_on_nodes_takes_node_locks_and_canonical_names() {
    let cluster = Cluster::new("mj-nodes", 1);
    cluster.start_master();
    let mut c = cluster.client();
    let op = json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.05, "on_master": false,
                    "on_nodes": ["node1"]});
    let id = c.submit_job(vec![op]).unwrap();
    assert_eq!(watch(&mut c, id).0, "success");
    // The short name was expanded, and the opcode stored that way.
    let ops = query(&mut c, id, &["ops"]);
    assert_eq!(ops[0][0]["on_nodes"], json!(["node1.example.com"]));
    // A job holding the node lock makes another wait for it; cancelling the
    // waiting one cancels it at once.
    let long = json!({"OP_ID": "OP_TEST_DELAY", "duration": 3, "on_master": true,
                      "on_nodes": ["node1.example.com"], "repeat": 1});
    let short = json!({"OP_ID": "OP_TEST_DELAY", "duration": 0, "on_master": true,
                       "on_nodes": ["node1.example.com"]});
    let a = c.submit_job(vec![long]).unwrap();
    wait_status(&mut c, a, "running");
    let b = c.submit_job(vec![short]).unwrap();
    wait_status(&mut c, b, "waiting");
    assert_eq!(
        c.cancel_job(b).unwrap(),
        (true, format!("Job {b} will be canceled"))
    );
    wait_status(&mut c, b, "canceled");
    assert_eq!(
        query(&mut c, b, &["opstatus", "opresult"]),
        json!([["canceled"], ["Job canceled by request"]])
    );
    assert_eq!(
        c.cancel_job(a).unwrap(),
        (false, format!("Job {a} is no longer waiting in the queue"))
    );
    assert_eq!(watch(&mut c, a).0, "success");
}

#[test]
fn cancel_a_queued_job_behind_busy_workers() {
    let cluster = Cluster::new("mj-cancel", 1);
    cluster.start_master();
    let mut c = cluster.client();
    // 25 workers, 25 long jobs: the 26th stays queued.
    let jobs: Vec<Vec<Value>> = (0..25).map(|_| vec![delay(2.0)]).collect();
    let ids: Vec<u64> = c
        .submit_many_jobs(jobs)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(ids.len(), 25);
    for id in &ids {
        wait_status(&mut c, *id, "running");
    }
    let queued = c.submit_job(vec![delay(0.0)]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(status(&mut c, queued), "queued");
    assert_eq!(
        c.cancel_job(queued).unwrap(),
        (true, format!("Job {queued} canceled"))
    );
    assert_eq!(status(&mut c, queued), "canceled");
    assert_eq!(
        c.call("CancelJob", json!(queued.to_string())).unwrap(),
        json!([
            false,
            format!("Job {queued} is no longer waiting in the queue")
        ])
    );
    assert_eq!(
        c.call("CancelJob", json!("999999")).unwrap(),
        json!([false, "Job 999999 not found"])
    );
    // Hostile ids find nothing and touch nothing.
    assert_eq!(
        c.call("CancelJob", json!("../../config.data")).unwrap(),
        json!([false, "Job ../../config.data not found"])
    );
    for id in ids {
        assert_eq!(watch(&mut c, id).0, "success");
    }
}

#[test]
fn archive_and_auto_archive() {
    let cluster = Cluster::new("mj-archive", 1);
    cluster.start_master();
    let mut c = cluster.client();
    let queue = cluster.master().queue_dir();
    let done: Vec<u64> = (0..3)
        .map(|_| {
            let id = c.submit_job(vec![delay(0.0)]).unwrap();
            assert_eq!(watch(&mut c, id).0, "success");
            id
        })
        .collect();
    let running = c.submit_job(vec![delay(2.0)]).unwrap();
    wait_status(&mut c, running, "running");
    // A running job is not archived; a finished one is moved.
    assert_eq!(
        c.call("ArchiveJob", json!(running.to_string())).unwrap(),
        json!(false)
    );
    assert!(c.archive_job(done[0]).unwrap());
    assert!(!queue.join(format!("job-{}", done[0])).exists());
    assert!(queue.join(format!("archive/0/job-{}", done[0])).exists());
    assert!(!c.archive_job(done[0]).unwrap(), "already archived");
    assert_eq!(c.call("ArchiveJob", json!("123456")).unwrap(), json!(false));
    // Archived jobs are still found by explicit id, not in the list of all.
    assert_eq!(query(&mut c, done[0], &["status"]), json!(["success"]));
    let all = c.call("QueryJobs", json!([[], ["id"]])).unwrap();
    assert!(!all
        .as_array()
        .unwrap()
        .contains(&json!([done[0].to_string()])));
    // Auto-archive everything finished: the two others, not the running one.
    assert_eq!(
        c.call("AutoArchiveJobs", json!([-1, 29])).unwrap(),
        json!([2, 0])
    );
    for id in &done[1..] {
        assert!(queue.join(format!("archive/0/job-{id}")).exists());
    }
    assert!(queue.join(format!("job-{running}")).exists());
    assert_eq!(watch(&mut c, running).0, "success");
    // An age of an hour keeps a job that just finished.
    assert_eq!(
        c.call("AutoArchiveJobs", json!([3600, 29])).unwrap(),
        json!([0, 0])
    );
    assert!(queue.join(format!("job-{running}")).exists());
}

/// A job file with its times and id blanked.
fn normalized(text: &str) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k.ends_with("_timestamp") && !x.is_null() {
                        *x = json!([0, 0]);
                    } else if k == "id" {
                        *x = json!("ID");
                    } else {
                        walk(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_str(text).unwrap();
    walk(&mut v);
    v
}

/// The JSON type of every value, keys kept (the schema of a file).
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), shape(x))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::String(_) => json!("string"),
        Value::Number(n) if n.is_f64() => json!("float"),
        Value::Number(_) => json!("int"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

#[test]
fn job_files_are_2_5_2_job_files() {
    let cluster = Cluster::new("mj-schema", 1);
    cluster.start_master();
    let mut c = cluster.client();
    let id = c.submit_job(vec![delay(0.0)]).unwrap();
    assert_eq!(watch(&mut c, id).0, "success");
    let ours =
        std::fs::read_to_string(cluster.master().queue_dir().join(format!("job-{id}"))).unwrap();
    let theirs = std::fs::read_to_string("tests/samples/ganeti-2.5.2/queue/job-23").unwrap();
    // Same keys, same types, same values but for the times and the id.
    assert_eq!(normalized(&ours), normalized(&theirs));
    // Same layout: one line, sorted keys, Python's separators.
    let layout = |t: &str| {
        let v = normalized(t);
        (t.ends_with("}\n"), t.lines().count(), shape(&v))
    };
    assert_eq!(layout(&ours), layout(&theirs));
    assert!(ours.contains("\"ops\": [{\"end_timestamp\": ["), "{ours}");
    // Log entries: [serial, [sec, usec], "message", text], as 2.5.2's job 28.
    let op = json!({"OP_ID": "OP_TEST_DELAY", "duration": 0, "repeat": 2});
    let id = c.submit_job(vec![op]).unwrap();
    assert_eq!(watch(&mut c, id).0, "success");
    let ours: Value = serde_json::from_str(
        &std::fs::read_to_string(cluster.master().queue_dir().join(format!("job-{id}"))).unwrap(),
    )
    .unwrap();
    let theirs: Value = serde_json::from_str(
        &std::fs::read_to_string("tests/samples/ganeti-2.5.2/queue/job-28").unwrap(),
    )
    .unwrap();
    assert_eq!(
        shape(&ours["ops"][0]["log"][0]),
        shape(&theirs["ops"][0]["log"][0])
    );
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&ours), keys(&theirs));
    assert_eq!(keys(&ours["ops"][0]), keys(&theirs["ops"][0]));
}

#[test]
fn drain_flag_refuses_new_jobs() {
    let cluster = Cluster::new("mj-drain", 1);
    cluster.start_master();
    let mut c = cluster.client();
    assert_eq!(
        c.query_config_values(&["drain_flag"]).unwrap(),
        vec![json!(false)]
    );
    assert_eq!(c.call("SetDrainFlag", json!(true)).unwrap(), json!(true));
    assert!(cluster.master().queue_dir().join("drain").exists());
    assert_eq!(
        c.query_config_values(&["drain_flag"]).unwrap(),
        vec![json!(true)]
    );
    let (class, args) = ganeti_error(c.call("SubmitJob", json!([delay(0.0)])));
    assert_eq!(class, "JobQueueDrainError");
    assert_eq!(args, vec![json!("Job queue is drained, refusing job")]);
    let many = c
        .call("SubmitManyJobs", json!([[delay(0.0)], [delay(0.0)]]))
        .unwrap();
    assert_eq!(
        many,
        json!([
            [
                false,
                "Job queue is drained, refusing job; opcodes TEST_DELAY(0.0)"
            ],
            [
                false,
                "Job queue is drained, refusing job; opcodes TEST_DELAY(0.0)"
            ]
        ])
    );
    // Queries still work while drained.
    assert!(c.query_cluster_info().is_ok());
    assert_eq!(c.call("SetDrainFlag", json!(false)).unwrap(), json!(true));
    assert!(!cluster.master().queue_dir().join("drain").exists());
    let id = c.submit_job(vec![delay(0.0)]).unwrap();
    assert_eq!(watch(&mut c, id).0, "success");
}

#[test]
fn cluster_queries_and_watcher_pause() {
    let cluster = Cluster::new("mj-query", 1);
    cluster.start_master();
    let mut c = cluster.client();
    let info = c.query_cluster_info().unwrap();
    let mut keys: Vec<&str> = info.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = vec![
        "software_version",
        "protocol_version",
        "config_version",
        "os_api_version",
        "export_version",
        "architecture",
        "name",
        "master",
        "default_hypervisor",
        "enabled_hypervisors",
        "hvparams",
        "os_hvp",
        "beparams",
        "osparams",
        "nicparams",
        "ndparams",
        "candidate_pool_size",
        "master_netdev",
        "volume_group_name",
        "drbd_usermode_helper",
        "file_storage_dir",
        "shared_file_storage_dir",
        "maintain_node_health",
        "ctime",
        "mtime",
        "uuid",
        "tags",
        "uid_pool",
        "default_iallocator",
        "reserved_lvs",
        "primary_ip_version",
        "prealloc_wipe_disks",
        "hidden_os",
        "blacklisted_os",
    ];
    want.sort_unstable();
    assert_eq!(keys, want);
    assert_eq!(info["software_version"], json!("2.5.2"));
    assert_eq!(info["protocol_version"], json!(2050000));
    assert_eq!(info["config_version"], json!(2050000));
    assert_eq!(info["os_api_version"], json!(20));
    assert_eq!(info["export_version"], json!(0));
    assert_eq!(info["name"], json!(CLUSTER_NAME));
    assert_eq!(info["master"], json!("node1.example.com"));
    assert_eq!(info["default_hypervisor"], json!("fake"));
    assert_eq!(info["hvparams"], json!({"fake": {}}));
    assert_eq!(info["master_netdev"], json!(MASTER_NETDEV));
    assert_eq!(info["primary_ip_version"], json!(4));
    assert_eq!(info["architecture"][0], json!("64bit"));
    assert_eq!(
        info["beparams"],
        json!({"default": {"auto_balance": true, "memory": 128, "vcpus": 1}})
    );
    // QueryConfigValues, in the order asked.
    assert_eq!(
        c.call(
            "QueryConfigValues",
            json!([
                "master_node",
                "cluster_name",
                "volume_group_name",
                "watcher_pause"
            ])
        )
        .unwrap(),
        json!(["node1.example.com", CLUSTER_NAME, null, null])
    );
    let (class, args) =
        ganeti_error(c.call("QueryConfigValues", json!(["x", "cluster_name", "y"])));
    assert_eq!(class, "OpPrereqError");
    assert_eq!(
        args,
        vec![
            json!("Unknown output fields selected: x,y"),
            json!("wrong_input")
        ]
    );
    // SetWatcherPause.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    assert_eq!(
        c.call("SetWatcherPause", json!([until as f64 + 0.7]))
            .unwrap(),
        json!(until as f64 + 0.7)
    );
    let file = cluster.master().path("var/lib/ganeti/watcher.pause");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{until}\n")
    );
    assert_eq!(
        c.query_config_values(&["watcher_pause"]).unwrap(),
        vec![json!(until)]
    );
    let (class, args) = ganeti_error(c.call("SetWatcherPause", json!([1000])));
    assert_eq!(class, "GenericError");
    assert_eq!(
        args,
        vec![json!("Unable to set pause end time in the past")]
    );
    match c.call("SetWatcherPause", json!(["soon"])) {
        Err(LuxiError::Request(v)) => assert_eq!(
            v,
            json!("Caught exception: Duration must be an integer or float")
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.call("SetWatcherPause", json!([null])).unwrap(),
        json!(null)
    );
    assert!(!file.exists());
}

fn run_job(c: &mut luxi::Client, op: Value) -> (String, Value, Vec<Value>) {
    let id = c.submit_job(vec![op]).unwrap();
    let (status, log) = watch(c, id);
    let result = query(c, id, &["opresult"])[0][0].clone();
    (status, result, log)
}

#[test]
fn cluster_tags() {
    let cluster = Cluster::new("mj-tags", 1);
    cluster.start_master();
    let mut c = cluster.client();
    assert_eq!(c.query_tags("cluster", None).unwrap(), Vec::<String>::new());
    let set = |tags: Value| json!({"OP_ID": "OP_TAGS_SET", "kind": "cluster", "name": null, "tags": tags});
    let del = |tags: Value| json!({"OP_ID": "OP_TAGS_DEL", "kind": "cluster", "name": null, "tags": tags});
    let serial_before: Value = serde_json::from_str(&cluster.config_text(1)).unwrap();
    let (st, res, _) = run_job(&mut c, set(json!(["web", "db:1"])));
    assert_eq!((st.as_str(), res), ("success", json!(null)));
    assert_eq!(c.query_tags("cluster", None).unwrap(), vec!["web", "db:1"]);
    // Written to config.data (serials bumped) and to ssconf_cluster_tags.
    let cfg: Value = serde_json::from_str(&cluster.config_text(1)).unwrap();
    assert_eq!(cfg["cluster"]["tags"], json!(["web", "db:1"]));
    assert!(cfg["serial_no"].as_u64() > serial_before["serial_no"].as_u64());
    assert!(cfg["cluster"]["serial_no"].as_u64() > serial_before["cluster"]["serial_no"].as_u64());
    assert_eq!(
        std::fs::read_to_string(cluster.master().path("var/lib/ganeti/ssconf_cluster_tags"))
            .unwrap(),
        "web\ndb:1\n"
    );
    // Invalid tags: TagError from the prerequisites.
    let (st, res, _) = run_job(&mut c, set(json!(["bad tag"])));
    assert_eq!(st, "error");
    assert_eq!(
        res,
        json!(["TagError", ["Tag contains invalid characters"]])
    );
    let long = "x".repeat(129);
    let (_, res, _) = run_job(&mut c, set(json!([long])));
    assert_eq!(res, json!(["TagError", ["Tag too long (>128 characters)"]]));
    // Deleting tags that are not there.
    let (st, res, _) = run_job(&mut c, del(json!(["web", "zz", "aa"])));
    assert_eq!(st, "error");
    assert_eq!(
        res,
        json!([
            "OpPrereqError",
            ["Tag(s) 'aa', 'zz' not found", "unknown_entity"]
        ])
    );
    assert_eq!(c.query_tags("cluster", None).unwrap(), vec!["web", "db:1"]);
    let (st, _, _) = run_job(&mut c, del(json!(["web"])));
    assert_eq!(st, "success");
    assert_eq!(c.query_tags("cluster", None).unwrap(), vec!["db:1"]);
    // Node tags: the short name is expanded; unknown nodes are refused.
    let op = json!({"OP_ID": "OP_TAGS_SET", "kind": "node", "name": "node1", "tags": ["n"]});
    assert_eq!(run_job(&mut c, op).0, "success");
    assert_eq!(
        c.query_tags("node", Some("node1.example.com")).unwrap(),
        vec!["n"]
    );
    let (class, args) = ganeti_error(c.call("QueryTags", json!(["node", "nosuch"])));
    assert_eq!(class, "OpPrereqError");
    assert_eq!(
        args,
        vec![json!("Node 'nosuch' not known"), json!("unknown_entity")]
    );
    // Node groups by name.
    let op = json!({"OP_ID": "OP_TAGS_SET", "kind": "nodegroup", "name": "default", "tags": ["g"]});
    assert_eq!(run_job(&mut c, op).0, "success");
    assert_eq!(
        c.query_tags("nodegroup", Some("default")).unwrap(),
        vec!["g"]
    );
    let (class, args) = ganeti_error(c.call("QueryTags", json!(["nodegroup", "nosuch"])));
    assert_eq!(class, "OpPrereqError");
    assert_eq!(
        args,
        vec![
            json!("Node group 'nosuch' not found"),
            json!("unknown_entity")
        ]
    );
}

fn install_hook(node: &TestNode, dir: &str, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let d = node.path(&format!("etc/ganeti/hooks/{dir}"));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn hooks_of_post_init_and_config_update() {
    let cluster = Cluster::new("mj-hooks", 1);
    let node = cluster.master();
    let out = node.path("hook-env");
    install_hook(
        node,
        "cluster-init-post.d",
        "10-env",
        &format!("#!/bin/sh\nenv | sort > {}\n", out.display()),
    );
    install_hook(
        node,
        "cluster-init-post.d",
        "20-fail",
        "#!/bin/sh\necho broken\nexit 1\n",
    );
    let cfg_out = node.path("cfgupdate-env");
    install_hook(
        node,
        "config-update-post.d",
        "10-env",
        &format!("#!/bin/sh\nenv | sort > {}\n", cfg_out.display()),
    );
    cluster.start_master();
    let mut c = cluster.client();
    let (st, res, log) = run_job(&mut c, json!({"OP_ID": "OP_CLUSTER_POST_INIT"}));
    // A failed post hook is only a warning.
    assert_eq!((st.as_str(), res), ("success", json!(true)));
    let texts: Vec<&str> = log.iter().map(|e| e[3].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        [" - WARNING: On node1.example.com script cluster-init-post.d/20-fail failed, output: broken"]
    );
    let env = std::fs::read_to_string(&out).unwrap();
    for line in [
        "GANETI_CLUSTER=cluster.example.com",
        "GANETI_MASTER=node1.example.com",
        "GANETI_HOOKS_PATH=cluster-init",
        "GANETI_HOOKS_PHASE=post",
        "GANETI_HOOKS_VERSION=2",
        "GANETI_OBJECT_TYPE=CLUSTER",
        "GANETI_OP_CODE=OP_CLUSTER_POST_INIT",
        "GANETI_OP_TARGET=cluster.example.com",
        "GANETI_POST_OP_TARGET=cluster.example.com",
        "GANETI_DATA_DIR=/var/lib/ganeti",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} missing in\n{env}");
    }
    // Post-init writes no configuration: no config-update hook.
    assert!(!cfg_out.exists());
    // A tag change writes it: the config-update hook runs on the master.
    let op = json!({"OP_ID": "OP_TAGS_SET", "kind": "cluster", "name": null, "tags": ["t"]});
    assert_eq!(run_job(&mut c, op).0, "success");
    let env = std::fs::read_to_string(&cfg_out).unwrap();
    assert!(
        env.lines().any(|l| l == "GANETI_HOOKS_PATH=config-update"),
        "{env}"
    );
    assert!(
        env.lines().any(|l| l == "GANETI_OP_CODE=OP_TAGS_SET"),
        "{env}"
    );
    // Dry run: prerequisites only, nothing written.
    std::fs::remove_file(&cfg_out).unwrap();
    let op = json!({"OP_ID": "OP_TAGS_SET", "kind": "cluster", "name": null, "tags": ["u"],
                    "dry_run": true});
    let (st, res, log) = run_job(&mut c, op);
    assert_eq!((st.as_str(), res), ("success", json!(null)));
    assert_eq!(
        log.last().unwrap()[3],
        json!(" - INFO: dry-run mode requested, not actually executing the operation")
    );
    assert_eq!(c.query_tags("cluster", None).unwrap(), vec!["t"]);
    assert!(!cfg_out.exists());
}

#[test]
fn redistribute_and_destroy() {
    let cluster = Cluster::new("mj-redist", 1);
    cluster.start_master();
    let mut c = cluster.client();
    let before: Value = serde_json::from_str(&cluster.config_text(1)).unwrap();
    let (st, res, _) = run_job(&mut c, json!({"OP_ID": "OP_CLUSTER_REDIST_CONF"}));
    assert_eq!((st.as_str(), res), ("success", json!(null)));
    let after: Value = serde_json::from_str(&cluster.config_text(1)).unwrap();
    assert!(after["serial_no"].as_u64() > before["serial_no"].as_u64());
    assert!(after["cluster"]["serial_no"].as_u64() > before["cluster"]["serial_no"].as_u64());
    // Destroy: a one-node cluster without instances can go; the result is
    // the master's name.
    let (st, res, _) = run_job(&mut c, json!({"OP_ID": "OP_CLUSTER_DESTROY"}));
    assert_eq!((st.as_str(), res), ("success", json!("node1.example.com")));
}

#[test]
fn destroy_refuses_with_other_nodes() {
    let cluster = Cluster::new("mj-destroy2", 2);
    cluster.start_master();
    let mut c = cluster.client();
    let (st, res, _) = run_job(&mut c, json!({"OP_ID": "OP_CLUSTER_DESTROY"}));
    assert_eq!(st, "error");
    assert_eq!(
        res,
        json!([
            "OpPrereqError",
            ["There are still 1 node(s) in this cluster.", "wrong_input"]
        ])
    );
}
