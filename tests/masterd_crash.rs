//! kill -9 of the master daemon while jobs run and while they are being
//! submitted, at many points; after each restart every acknowledged job is
//! on disk and well-formed, jobs that were running failed with "Unclean
//! master daemon shutdown", queued and waiting ones ran again to the end,
//! and job ids kept increasing, never reused.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::*;
use common::*;
use ganeti::luxi;
use serde_json::{json, Value};

/// Kills, each after a different time.
const ROUNDS: usize = 14;

/// The jobs submitted: long ones (running when killed), ones that wait for
/// the node lock, quick ones.
fn op(n: usize) -> Vec<Value> {
    match n % 4 {
        0 => vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.4, "repeat": 2})],
        1 => vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.05,
                         "on_nodes": ["node1.example.com"]})],
        2 => vec![
            json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.0}),
            json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.2}),
        ],
        _ => vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.0})],
    }
}

/// Submits jobs until the connection breaks; every acknowledged id.
fn submitter(socket: &Path, stop: &AtomicBool, acked: &Mutex<Vec<u64>>, seed: usize) {
    let Ok(mut c) = luxi::Client::connect(socket) else {
        return;
    };
    let mut n = seed;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let result = if n % 7 == 0 {
            c.submit_many_jobs(vec![op(n), op(n + 1), op(n + 2)])
                .map(|r| r.into_iter().filter_map(Result::ok).collect::<Vec<_>>())
        } else {
            c.submit_job(op(n)).map(|id| vec![id])
        };
        match result {
            Ok(ids) => acked.lock().unwrap().extend(ids),
            Err(_) => return,
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every job file in the queue directory and its archive: id -> JSON.
fn jobs_on_disk(queue: &Path) -> BTreeMap<u64, Value> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![queue.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(queue.join("archive")) {
        dirs.extend(rd.flatten().map(|e| e.path()));
    }
    for dir in dirs {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_prefix("job-").and_then(|i| i.parse().ok()) else {
                continue;
            };
            let text = std::fs::read_to_string(e.path()).unwrap();
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("job file {name} is not JSON ({e}): {text:?}"));
            out.insert(id, v);
        }
    }
    out
}

/// 2.5.2's job status function over the opcode statuses.
fn job_status(job: &Value) -> String {
    let ops = job["ops"].as_array().unwrap();
    let mut status = "queued";
    let mut all_success = true;
    for op in ops {
        let s = op["status"].as_str().unwrap();
        if s != "success" {
            all_success = false;
        }
        match s {
            "success" | "queued" => {}
            "waiting" => status = "waiting",
            "running" => status = "running",
            "canceling" | "error" | "canceled" => return s.to_string(),
            other => panic!("unknown opcode status {other}"),
        }
    }
    if all_success {
        "success".into()
    } else {
        status.into()
    }
}

/// The job file has 2.5.2's shape.
fn check_well_formed(id: u64, job: &Value) {
    let keys: BTreeSet<&str> = job
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let want: BTreeSet<&str> = [
        "end_timestamp",
        "id",
        "ops",
        "received_timestamp",
        "start_timestamp",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, want, "job {id}");
    assert_eq!(job["id"], json!(id.to_string()));
    for op in job["ops"].as_array().unwrap() {
        let keys: BTreeSet<&str> = op.as_object().unwrap().keys().map(String::as_str).collect();
        let want: BTreeSet<&str> = [
            "end_timestamp",
            "exec_timestamp",
            "input",
            "log",
            "priority",
            "result",
            "start_timestamp",
            "status",
        ]
        .into_iter()
        .collect();
        assert_eq!(keys, want, "job {id}");
        assert!(op["input"]["OP_ID"].is_string());
    }
}

fn all_final(queue: &Path, ids: &[u64]) -> bool {
    let disk = jobs_on_disk(queue);
    ids.iter().all(|id| {
        disk.get(id)
            .is_some_and(|j| ["success", "error", "canceled"].contains(&job_status(j).as_str()))
    })
}

#[test]
fn kill_9_at_many_points_loses_no_acknowledged_job() {
    let cluster = Cluster::new("mcrash", 1);
    let queue = cluster.master().queue_dir();
    let socket = cluster.socket();
    cluster.start_master();
    let mut all_acked: Vec<u64> = Vec::new();
    let mut unclean_seen = 0;
    let mut requeued_seen = 0;
    let mut highest_before = 0u64;
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let (stop, acked, socket) = (stop.clone(), acked.clone(), socket.clone());
                std::thread::spawn(move || submitter(&socket, &stop, &acked, round * 31 + t))
            })
            .collect();
        // Varied points: during submission bursts, while jobs run.
        let delay = 40 + (round * 97) % 600;
        std::thread::sleep(Duration::from_millis(delay as u64));
        let pid = cluster.master_pid().unwrap();
        signal(pid, libc::SIGKILL);
        assert!(wait_until(Duration::from_secs(10), || !alive(pid)));
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join().unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        // What the killed daemon left: every acknowledged job is there,
        // whole.
        let disk = jobs_on_disk(&queue);
        for id in &acked {
            let job = disk
                .get(id)
                .unwrap_or_else(|| panic!("round {round}: acknowledged job {id} is missing"));
            check_well_formed(*id, job);
        }
        for (id, job) in &disk {
            check_well_formed(*id, job);
        }
        // Ids only grow, across restarts too.
        let mut sorted = acked.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            acked.len(),
            "round {round}: an id was given twice"
        );
        if let Some(first) = sorted.first() {
            assert!(
                *first > highest_before,
                "round {round}: id {first} not above {highest_before}"
            );
        }
        let left: BTreeMap<u64, String> = disk.iter().map(|(id, j)| (*id, job_status(j))).collect();
        highest_before = disk.keys().last().copied().unwrap_or(0).max(highest_before);
        // Restart; recovery.
        cluster.start_master();
        let disk_after = jobs_on_disk(&queue);
        for (id, before) in &left {
            let job = &disk_after[id];
            match before.as_str() {
                "running" | "canceling" => {
                    unclean_seen += 1;
                    assert_eq!(job_status(job), "error", "job {id}");
                    let results: Vec<&Value> = job["ops"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|o| o["status"] != json!("success"))
                        .map(|o| &o["result"])
                        .collect();
                    assert!(
                        results
                            .iter()
                            .all(|r| **r == json!("Unclean master daemon shutdown")),
                        "job {id}: {results:?}"
                    );
                    assert!(job["end_timestamp"].is_array());
                }
                "queued" | "waiting" => requeued_seen += 1,
                _ => {}
            }
        }
        all_acked.extend(acked);
        // The requeued jobs run to their end (waiting ones start again
        // from their first unfinished opcode).
        let pending: Vec<u64> = left
            .iter()
            .filter(|(_, s)| s.as_str() == "queued" || s.as_str() == "waiting")
            .map(|(id, _)| *id)
            .collect();
        assert!(
            wait_until(Duration::from_secs(60), || all_final(&queue, &pending)),
            "round {round}: requeued jobs did not finish"
        );
        let disk = jobs_on_disk(&queue);
        for id in &pending {
            assert_eq!(job_status(&disk[id]), "success", "requeued job {id}");
        }
    }
    assert!(
        all_acked.len() > ROUNDS,
        "too few jobs: {}",
        all_acked.len()
    );
    assert!(unclean_seen > 0, "no kill hit a running job");
    assert!(requeued_seen > 0, "no kill left a queued or waiting job");
    // A last job: its id is above everything before.
    let mut c = cluster.client();
    let id = c
        .submit_job(vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0})])
        .unwrap();
    assert!(id > highest_before);
    let serial: u64 = std::fs::read_to_string(queue.join("serial"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(serial, id);
    eprintln!(
        "{} jobs acknowledged over {ROUNDS} kills; {unclean_seen} failed as unclean, \
         {requeued_seen} requeued",
        all_acked.len()
    );
}
