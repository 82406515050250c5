//! The opcode processor on its own, against a real node daemon (TLS, real
//! hook scripts): the paths no opcode of this version reaches through a
//! job (pre hooks that abort, lock additions) with logical units written
//! here, and the job side (lock timeouts, cancellation, feedback) through
//! a job context written here.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::*;
use ganeti::cmdlib::{Context, Env, LogicalUnit, LuResult};
use ganeti::config::ConfigWriter;
use ganeti::errors::GanetiError;
use ganeti::jqueue::{Canceled, OpContext, OpExecutor, OpOutcome};
use ganeti::locking::{Level, Names, BGL};
use ganeti::masterd::processor::Processor;
use ganeti::rpc::client::Client;
use serde_json::{json, Map, Value};

fn processor(cluster: &Cluster) -> Processor {
    let paths = cluster.master().paths();
    let rpc = Arc::new(Client::new(&paths.server_pem()).unwrap().port(cluster.port));
    let cfg =
        ConfigWriter::open(paths.clone(), "node1.example.com", false, Some(rpc.clone())).unwrap();
    let ctx = Arc::new(Context::new(paths, Arc::new(cfg), rpc));
    Processor::new(ctx, Box::new(|| {}))
}

fn input(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn install_hook(cluster: &Cluster, dir: &str, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let d = cluster.master().path(&format!("etc/ganeti/hooks/{dir}"));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A logical unit with pre and post hooks on the master, that may write
/// the configuration, add locks and fail.
#[derive(Default)]
struct Probe {
    ran: Arc<AtomicBool>,
    write_config: bool,
    add_instance: Option<String>,
    keep_added: bool,
    also_acquire: bool,
    fail: bool,
}

impl LogicalUnit for Probe {
    fn expand_names(&mut self, env: &mut Env<'_>) -> Result<(), GanetiError> {
        if let Some(name) = &self.add_instance {
            env.locks.add.insert(Level::Instance, vec![name.clone()]);
            if self.also_acquire {
                env.locks.needed.insert(Level::Instance, Names::All);
            }
        }
        Ok(())
    }

    fn hooks_env(&self, _env: &Env<'_>) -> Map<String, Value> {
        input(json!({"OP_TARGET": "probe"}))
    }

    fn hooks_nodes(&self, _env: &Env<'_>) -> (Vec<String>, Vec<String>) {
        let me = vec!["node1.example.com".to_string()];
        (me.clone(), me)
    }

    fn exec(&mut self, env: &mut Env<'_>) -> Result<LuResult, GanetiError> {
        self.ran.store(true, Ordering::SeqCst);
        if self.write_config {
            env.update_config(|cfg| {
                cfg.touch_cluster(ganeti::config::now());
                Ok(())
            })?;
        }
        if self.keep_added {
            env.locks.remove.remove(&Level::Instance);
        }
        if self.fail {
            return Err(GanetiError::exec("probe failed"));
        }
        Ok(LuResult::Value(json!("probed")))
    }

    fn dry_run_result(&self) -> Value {
        json!("dry")
    }
}

fn run(p: &Processor, op: Value, probe: Probe) -> Result<Value, GanetiError> {
    let mut probe = Some(probe);
    p.run_with_lu(input(op), &mut |_| {
        Box::new(probe.take().unwrap_or_default())
    })
}

const POST_INIT: &str = "OP_CLUSTER_POST_INIT";

#[test]
fn a_failing_pre_hook_aborts_before_exec() {
    let cluster = Cluster::new("mp-hooks", 1);
    let p = processor(&cluster);
    install_hook(
        &cluster,
        "cluster-init-pre.d",
        "10-ok",
        "#!/bin/sh\nexit 0\n",
    );
    install_hook(
        &cluster,
        "cluster-init-pre.d",
        "20-no",
        "#!/bin/sh\necho not today\nexit 3\n",
    );
    let probe = Probe::default();
    let ran = probe.ran.clone();
    let e = run(&p, json!({"OP_ID": POST_INIT}), probe).unwrap_err();
    assert_eq!(
        e.encode(),
        json!([
            "HooksAbort",
            [[["node1.example.com", "cluster-init-pre.d/20-no", "not today"]]]
        ])
    );
    assert!(!ran.load(Ordering::SeqCst));
    // Nothing stays locked after the abort.
    assert!(p.context().glm.info().iter().all(|l| l.owners.is_empty()));
    // Without the failing script the logical unit runs.
    std::fs::remove_file(
        cluster
            .master()
            .path("etc/ganeti/hooks/cluster-init-pre.d/20-no"),
    )
    .unwrap();
    let probe = Probe::default();
    let ran = probe.ran.clone();
    assert_eq!(
        run(&p, json!({"OP_ID": POST_INIT}), probe).unwrap(),
        json!("probed")
    );
    assert!(ran.load(Ordering::SeqCst));
    // A dry run stops after the pre hooks.
    let probe = Probe::default();
    let ran = probe.ran.clone();
    let r = run(&p, json!({"OP_ID": POST_INIT, "dry_run": true}), probe).unwrap();
    assert_eq!(r, json!("dry"));
    assert!(!ran.load(Ordering::SeqCst));
    // A node that does not answer: a warning, not an abort.
    cluster.stop_noded(1);
    assert_eq!(
        run(&p, json!({"OP_ID": POST_INIT}), Probe::default()).unwrap(),
        json!("probed")
    );
}

#[test]
fn config_update_hook_runs_when_the_configuration_was_written() {
    let cluster = Cluster::new("mp-cfgupd", 1);
    let p = processor(&cluster);
    let out = cluster.master().path("cfg-hook");
    install_hook(
        &cluster,
        "config-update-post.d",
        "10-mark",
        &format!(
            "#!/bin/sh\necho \"$GANETI_HOOKS_PHASE $GANETI_OP_TARGET\" >> {}\n",
            out.display()
        ),
    );
    run(&p, json!({"OP_ID": POST_INIT}), Probe::default()).unwrap();
    assert!(!out.exists());
    let probe = Probe {
        write_config: true,
        ..Probe::default()
    };
    run(&p, json!({"OP_ID": POST_INIT}), probe).unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "post probe\n");
    // Also when the logical unit fails after writing.
    let probe = Probe {
        write_config: true,
        fail: true,
        ..Probe::default()
    };
    let e = run(&p, json!({"OP_ID": POST_INIT}), probe).unwrap_err();
    assert_eq!(e.encode(), json!(["OpExecError", ["probe failed"]]));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "post probe\npost probe\n"
    );
}

#[test]
fn added_locks_are_removed_unless_kept() {
    let cluster = Cluster::new("mp-addlocks", 1);
    let p = processor(&cluster);
    let glm = &p.context().glm;
    let probe = Probe {
        add_instance: Some("new1.example.com".into()),
        fail: true,
        ..Probe::default()
    };
    run(&p, json!({"OP_ID": POST_INIT}), probe).unwrap_err();
    assert!(!glm
        .names(Level::Instance)
        .contains(&"new1.example.com".to_string()));
    let probe = Probe {
        add_instance: Some("new1.example.com".into()),
        keep_added: true,
        ..Probe::default()
    };
    run(&p, json!({"OP_ID": POST_INIT}), probe).unwrap();
    assert!(glm
        .names(Level::Instance)
        .contains(&"new1.example.com".to_string()));
    // Adding it again: 2.5.2's race message.
    let probe = Probe {
        add_instance: Some("new1.example.com".into()),
        ..Probe::default()
    };
    let e = run(&p, json!({"OP_ID": POST_INIT}), probe).unwrap_err();
    assert_eq!(
        e.encode(),
        json!([
            "OpPrereqError",
            [
                "Couldn't add locks (['new1.example.com']), probably because of a race condition \
             with another job, who added them first",
                "internal_error"
            ]
        ])
    );
    // Adding and acquiring at one level is refused.
    let probe = Probe {
        add_instance: Some("new2.example.com".into()),
        also_acquire: true,
        ..Probe::default()
    };
    let e = run(&p, json!({"OP_ID": POST_INIT}), probe).unwrap_err();
    assert_eq!(e.class, "ProgrammerError");
    assert!(glm.info().iter().all(|l| l.owners.is_empty()));
}

#[test]
fn exclusive_bgl_waits_for_shared_holders() {
    let cluster = Cluster::new("mp-bgl", 1);
    let p = Arc::new(processor(&cluster));
    let glm = &p.context().glm;
    let bgl = Names::List(vec![BGL.to_string()]);
    glm.acquire("holder", Level::Cluster, &bgl, true, None, 0, &|| false)
        .unwrap();
    // A query (shared BGL) runs meanwhile.
    let info = p
        .run_query(input(json!({"OP_ID": "OP_CLUSTER_QUERY"})))
        .unwrap();
    assert_eq!(info["name"], json!(CLUSTER_NAME));
    // Post-init wants the BGL exclusively: it waits for the holder.
    let p2 = p.clone();
    let t = Instant::now();
    let waiter = std::thread::spawn(move || {
        p2.run_with_lu(input(json!({"OP_ID": POST_INIT})), &mut |_| {
            Box::new(Probe::default())
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiter.is_finished());
    glm.release("holder", Level::Cluster, None).unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), json!("probed"));
    assert!(t.elapsed() >= Duration::from_millis(300));
}

/// The job side of an opcode, as the job queue gives it.
struct TestJob {
    id: u64,
    timeout: Option<Duration>,
    cancel: Arc<AtomicBool>,
    started: AtomicUsize,
    log: Mutex<Vec<(String, Value)>>,
}

impl TestJob {
    fn new(id: u64, timeout: Option<Duration>) -> TestJob {
        TestJob {
            id,
            timeout,
            cancel: Arc::new(AtomicBool::new(false)),
            started: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
        }
    }
}

impl OpContext for TestJob {
    fn job_id(&self) -> u64 {
        self.id
    }
    fn priority(&self) -> i32 {
        0
    }
    fn lock_timeout(&self) -> Option<Duration> {
        self.timeout
    }
    fn notify_start(&mut self) -> Result<(), Canceled> {
        if self.cancel.load(Ordering::SeqCst) {
            return Err(Canceled);
        }
        self.started.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn check_cancel(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
    fn feedback(&mut self, log_type: &str, msg: Value) {
        self.log.lock().unwrap().push((log_type.to_string(), msg));
    }
    fn submit_jobs(
        &mut self,
        _jobs: Vec<Vec<Map<String, Value>>>,
    ) -> Vec<Result<u64, GanetiError>> {
        Vec::new()
    }
    fn worker_name(&self) -> String {
        format!("Jq1/Job{}/TEST_DELAY", self.id)
    }
}

#[test]
fn lock_timeouts_cancels_and_feedback_for_jobs() {
    let cluster = Cluster::new("mp-jobs", 1);
    let p = processor(&cluster);
    let glm = &p.context().glm;
    let delay = json!({"OP_ID": "OP_TEST_DELAY", "duration": 0, "repeat": 2,
                       "on_nodes": ["node1"]});
    // Free locks: runs, logs, starts once, stores the expanded node name.
    let mut job = TestJob::new(7, Some(Duration::from_millis(100)));
    let mut op = input(delay.clone());
    assert_eq!(
        p.exec_opcode(&mut op, &mut job),
        OpOutcome::Success(Value::Null)
    );
    assert_eq!(job.started.load(Ordering::SeqCst), 1);
    assert_eq!(op["on_nodes"], json!(["node1.example.com"]));
    assert_eq!(
        *job.log.lock().unwrap(),
        vec![
            (
                "message".to_string(),
                json!(" - INFO: Test delay iteration 0/1")
            ),
            (
                "message".to_string(),
                json!(" - INFO: Test delay iteration 1/1")
            ),
        ]
    );
    // The node lock held elsewhere: the attempt times out, nothing held.
    let bgl = Names::List(vec![BGL.to_string()]);
    glm.acquire("other", Level::Cluster, &bgl, true, None, 0, &|| false)
        .unwrap();
    let node = Names::List(vec!["node1.example.com".to_string()]);
    glm.acquire("other", Level::Node, &node, false, None, 0, &|| false)
        .unwrap();
    let mut job = TestJob::new(8, Some(Duration::from_millis(200)));
    let t = Instant::now();
    assert_eq!(
        p.exec_opcode(&mut input(delay.clone()), &mut job),
        OpOutcome::LockTimeout
    );
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert_eq!(job.started.load(Ordering::SeqCst), 0);
    assert!(glm.owned("Jq1/Job8/TEST_DELAY", Level::Cluster).is_empty());
    // Cancelled while it waits (blocking attempt): it stops waiting.
    let mut job = TestJob::new(9, None);
    let cancel = job.cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        cancel.store(true, Ordering::SeqCst);
    });
    assert_eq!(
        p.exec_opcode(&mut input(delay.clone()), &mut job),
        OpOutcome::Canceled
    );
    canceller.join().unwrap();
    glm.release_all("other");
    // Cancelled before it starts.
    let mut job = TestJob::new(10, None);
    job.cancel.store(true, Ordering::SeqCst);
    assert_eq!(
        p.exec_opcode(&mut input(delay), &mut job),
        OpOutcome::Canceled
    );
    // An opcode this version does not know.
    let mut job = TestJob::new(11, None);
    assert_eq!(
        p.exec_opcode(&mut input(json!({"OP_ID": "OP_NODE_ADD"})), &mut job),
        OpOutcome::Error(GanetiError::msg("OpCodeUnknown", "Unknown opcode"))
    );
    assert!(glm.info().iter().all(|l| l.owners.is_empty()));
}
