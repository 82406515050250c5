//! The job queue's write paths that trade fewer fsyncs for the same
//! durability (jqueue module doc, "Writing jobs"), over real LUXI against a
//! real master daemon: `SubmitManyJobs` written as group commits in chunks
//! and killed with SIGKILL at many points; `SubmitJob` handing a job to an
//! idle worker whose first write makes it durable, or writing it itself
//! when the job waits for a lock; `waiting` kept in memory until the
//! opcode really waits; a job file that cannot be written refuses the job
//! and burns its id.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::*;
use common::*;
use ganeti::luxi::{self, LuxiError};
use serde_json::{json, Value};

/// Kills, each after a different time.
const ROUNDS: usize = 8;
/// Jobs per `SubmitManyJobs` call: several group-commit chunks.
const MANY: usize = 300;

fn quick() -> Vec<Value> {
    vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.0})]
}

/// Every job file in the queue directory and its archive: id -> JSON
/// (a file that is not JSON fails the test).
fn jobs_on_disk(queue: &Path) -> BTreeMap<u64, Value> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![queue.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(queue.join("archive")) {
        dirs.extend(rd.flatten().map(|e| e.path()));
    }
    for dir in dirs {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name
                .strip_prefix("job-")
                .and_then(|i| i.parse::<u64>().ok())
            else {
                continue;
            };
            let text = std::fs::read_to_string(e.path()).unwrap();
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("job file {name} is not JSON ({e}): {text:?}"));
            assert_eq!(v["id"], json!(id.to_string()), "{name}");
            out.insert(id, v);
        }
    }
    out
}

fn serial(queue: &Path) -> u64 {
    std::fs::read_to_string(queue.join("serial"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The job's status as its file says (the first opcode decides here).
fn file_status(queue: &Path, id: u64) -> Option<String> {
    let text = std::fs::read_to_string(queue.join(format!("job-{id}"))).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["ops"][0]["status"].as_str().map(str::to_string)
}

fn status(c: &mut luxi::Client, id: u64) -> String {
    let r = c.query_jobs(&[id], &["status"]).unwrap();
    r[0].as_ref().unwrap()[0].as_str().unwrap().to_string()
}

fn all_final(c: &mut luxi::Client, ids: &[u64]) -> bool {
    ids.chunks(500).all(|chunk| {
        c.query_jobs(chunk, &["status"]).unwrap().iter().all(|row| {
            row.as_ref()
                .is_some_and(|r| ["success", "error", "canceled"].contains(&r[0].as_str().unwrap()))
        })
    })
}

/// Submits `MANY` jobs at a time until the connection breaks.
fn many_submitter(socket: &Path, stop: &AtomicBool, acked: &Mutex<Vec<u64>>) {
    let Ok(mut c) = luxi::Client::connect(socket) else {
        return;
    };
    while !stop.load(Ordering::SeqCst) {
        match c.submit_many_jobs((0..MANY).map(|_| quick()).collect()) {
            Ok(results) => {
                let ids: Vec<u64> = results.into_iter().map(|r| r.unwrap()).collect();
                acked.lock().unwrap().extend(ids);
            }
            Err(_) => return,
        }
    }
}

/// Submits single jobs (the direct path while a worker is idle).
fn single_submitter(socket: &Path, stop: &AtomicBool, acked: &Mutex<Vec<u64>>) {
    let Ok(mut c) = luxi::Client::connect(socket) else {
        return;
    };
    while !stop.load(Ordering::SeqCst) {
        match c.submit_job(quick()) {
            Ok(id) => acked.lock().unwrap().push(id),
            Err(_) => return,
        }
    }
}

#[test]
fn kill_9_during_group_commits_loses_no_acknowledged_job() {
    let cluster = Cluster::new("mgroup", 1);
    let queue = cluster.master().queue_dir();
    let socket = cluster.socket();
    cluster.start_master();
    let mut highest_before = 0u64;
    let mut serial_before = 0u64;
    let mut total = 0;
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let threads = [
            {
                let (stop, acked, socket) = (stop.clone(), acked.clone(), socket.clone());
                std::thread::spawn(move || many_submitter(&socket, &stop, &acked))
            },
            {
                let (stop, acked, socket) = (stop.clone(), acked.clone(), socket.clone());
                std::thread::spawn(move || single_submitter(&socket, &stop, &acked))
            },
        ];
        // Each kill comes after some submission was answered, at a varied
        // point after it (on a loaded machine the first answer can take
        // longer than the shortest delays).
        assert!(
            wait_until(Duration::from_secs(30), || !acked
                .lock()
                .unwrap()
                .is_empty()),
            "round {round}: no submission was answered"
        );
        let delay = 30 + (round * 53) % 400;
        std::thread::sleep(Duration::from_millis(delay as u64));
        let pid = cluster.master_pid().unwrap();
        signal(pid, libc::SIGKILL);
        assert!(wait_until(Duration::from_secs(10), || !alive(pid)));
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join().unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        total += acked.len();
        // Every acknowledged job is on disk, whole, with its own id.
        let disk = jobs_on_disk(&queue);
        for id in &acked {
            assert!(disk.contains_key(id), "round {round}: job {id} missing");
            assert!(*id > highest_before, "round {round}: id {id} given again");
        }
        let mut sorted = acked.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            acked.len(),
            "round {round}: an id given twice"
        );
        // The serial file never goes back.
        let s = serial(&queue);
        assert!(
            s >= serial_before,
            "round {round}: serial {s} < {serial_before}"
        );
        highest_before = disk.keys().last().copied().unwrap_or(0).max(highest_before);

        // Restart: the serial covers every job file, the jobs run, and
        // the queue is emptied for the next round.
        cluster.start_master();
        let s = serial(&queue);
        assert!(
            s >= highest_before,
            "round {round}: serial {s} < job {highest_before}"
        );
        serial_before = s;
        let mut c = cluster.client();
        let pending: Vec<u64> = std::fs::read_dir(&queue)
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("job-")?.parse().ok())
            .collect();
        assert!(
            wait_until(Duration::from_secs(120), || all_final(&mut c, &pending)),
            "round {round}: jobs did not finish after the restart"
        );
        c.auto_archive_jobs(-1).unwrap();
    }
    assert!(total >= ROUNDS, "too few jobs: {total}");
    // A last job: above everything before.
    let mut c = cluster.client();
    let id = c.submit_job(quick()).unwrap();
    assert!(id > highest_before);
    assert_eq!(serial(&queue), id);
    eprintln!("{total} jobs acknowledged over {ROUNDS} kills");
}

#[test]
fn submit_job_is_durable_whether_the_job_starts_or_waits_for_locks() {
    let cluster = Cluster::new("mdirect", 1);
    let queue = cluster.master().queue_dir();
    cluster.start_master();
    let mut c = cluster.client();
    // Idle workers: the worker's first write (`running`, or the end of
    // the job) is what makes the job durable before the answer.
    let mut started = 0;
    for _ in 0..50 {
        let id = c.submit_job(quick()).unwrap();
        let st = file_status(&queue, id).expect("the job file exists when acknowledged");
        assert!(
            ["queued", "running", "success"].contains(&st.as_str()),
            "{st}"
        );
        assert_eq!(serial(&queue), id);
        if st != "queued" {
            started += 1;
        }
        if started >= 3 {
            break;
        }
    }
    assert!(started >= 3, "no job was written first by its worker");

    // A job that waits for a node lock. SubmitJob: its worker never gets
    // to a first write, so after DIRECT_START_WAIT the submitter writes
    // the job as it is then (`waiting` in memory, or still `queued`).
    let node = node_name(1);
    let long = c
        .submit_job(vec![
            json!({"OP_ID": "OP_TEST_DELAY", "duration": 4.0, "on_nodes": [node]}),
        ])
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || status(&mut c, long)
        == "running"));
    let on_node = || vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.0, "on_nodes": [node]})];
    let blocked = c.submit_job(on_node()).unwrap();
    let st = file_status(&queue, blocked).expect("the job file exists when acknowledged");
    assert!(["queued", "waiting"].contains(&st.as_str()), "{st}");
    assert!(wait_until(Duration::from_secs(5), || status(
        &mut c, blocked
    ) == "waiting"));
    // SubmitManyJobs writes it `queued`; memory says `waiting` at once,
    // the file only once the first lock attempt (1 s) has timed out.
    let grouped = c.submit_many_jobs(vec![on_node()]).unwrap()[0]
        .clone()
        .unwrap();
    assert_eq!(file_status(&queue, grouped).as_deref(), Some("queued"));
    assert!(wait_until(Duration::from_secs(5), || status(
        &mut c, grouped
    ) == "waiting"));
    assert_eq!(file_status(&queue, grouped).as_deref(), Some("queued"));
    assert!(
        wait_until(Duration::from_secs(3), || file_status(&queue, grouped)
            .as_deref()
            == Some("waiting")),
        "the waiting job was never written as waiting"
    );
    assert_eq!(status(&mut c, long), "running");
    assert!(wait_until(Duration::from_secs(30), || all_final(
        &mut c,
        &[long, blocked, grouped]
    )));
    for id in [blocked, grouped] {
        assert_eq!(status(&mut c, id), "success");
        assert_eq!(file_status(&queue, id).as_deref(), Some("success"));
    }
}

#[test]
fn a_job_file_that_cannot_be_written_refuses_the_job_and_burns_its_id() {
    let cluster = Cluster::new("mrefuse", 1);
    let queue = cluster.master().queue_dir();
    cluster.start_master();
    let mut c = cluster.client();
    let first = c.submit_job(quick()).unwrap();
    assert!(wait_until(Duration::from_secs(10), || all_final(
        &mut c,
        &[first]
    )));
    // A non-empty directory where the next job file goes: its rename fails.
    let obstacle = |id: u64| {
        let d = queue.join(format!("job-{id}"));
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("x"), b"").unwrap();
        d
    };
    let next = serial(&queue) + 1;
    let d = obstacle(next);
    match c.submit_job(quick()) {
        Err(LuxiError::Ganeti(e)) => {
            assert_eq!(e.class, "JobQueueError");
            let text = e.to_string();
            assert!(
                text.contains(&format!("Can't write /var/lib/ganeti/queue/job-{next}")),
                "{text}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(c.query_jobs(&[next], &["status"]).unwrap(), vec![None]);
    std::fs::remove_dir_all(&d).unwrap();
    // The id is never given again.
    let after = c.submit_job(quick()).unwrap();
    assert_eq!(after, next + 1);
    assert!(!queue.join(format!("job-{next}")).exists());

    // SubmitManyJobs: only the job whose file fails is refused.
    let base = serial(&queue);
    let d = obstacle(base + 2);
    let r = c.submit_many_jobs(vec![quick(), quick(), quick()]).unwrap();
    assert_eq!(r[0], Ok(base + 1));
    let e = r[1].clone().unwrap_err();
    assert!(
        e.contains(&format!(
            "Can't write /var/lib/ganeti/queue/job-{}",
            base + 2
        )),
        "{e}"
    );
    assert_eq!(r[2], Ok(base + 3));
    std::fs::remove_dir_all(&d).unwrap();
    assert!(wait_until(Duration::from_secs(10), || all_final(
        &mut c,
        &[base + 1, base + 3]
    )));
    assert_eq!(status(&mut c, base + 3), "success");
    assert_eq!(serial(&queue), base + 3);
}
