//! The job workers (2.5.2's `_JobQueueWorkerPool`, `_JobProcessor`,
//! `_OpExecCallbacks`, `LockAttemptTimeoutStrategy`): a pool of named
//! threads taking jobs by (priority, arrival), each task one step of a job
//! (one opcode, or one failed lock attempt, or one dependency check).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::job::{self, Dependency, LogEntry, Status};
use super::queue::{lock, Inner, JobEntry};
use super::{Canceled, OpContext, OpOutcome, JOB_WORKER_STACK, MAX_JOB_FILE};
use crate::errors::GanetiError;

/// `LOCK_ATTEMPTS_TIMEOUT`: lock attempts with timeouts add up to this
/// before a blocking acquire (spec 3.8).
const LOCK_ATTEMPTS_TIMEOUT: f64 = 10.0 * 3600.0 / 20.0;
/// `LOCK_ATTEMPTS_MAXWAIT`, `LOCK_ATTEMPTS_MINWAIT`.
const LOCK_ATTEMPTS_MAXWAIT: f64 = 15.0;
const LOCK_ATTEMPTS_MINWAIT: f64 = 1.0;

fn set_task_name(name: String) {
    crate::sys::set_thread_name(&name);
    crate::daemon::logging::set_task_name(Some(name));
}

/// The lock attempt timeouts of 2.5.2's `_CalculateLockAttemptTimeouts`,
/// in seconds, before jitter: 1.0, then `(t * 1.05) ** 1.25` clamped to
/// [1, 15], until they add up to 1800 s.
pub fn lock_attempt_timeouts() -> &'static [f64] {
    static SCHEDULE: OnceLock<Vec<f64>> = OnceLock::new();
    SCHEDULE.get_or_init(|| {
        let mut result = vec![LOCK_ATTEMPTS_MINWAIT];
        let mut sum = LOCK_ATTEMPTS_MINWAIT;
        while sum < LOCK_ATTEMPTS_TIMEOUT {
            let last = result[result.len() - 1];
            let t = (last * 1.05_f64)
                .powf(1.25)
                .clamp(LOCK_ATTEMPTS_MINWAIT, LOCK_ATTEMPTS_MAXWAIT);
            result.push(t);
            sum += t;
        }
        result
    })
}

/// A random number in [0, 1).
fn random_unit() -> f64 {
    let mut b = [0u8; 4];
    if openssl::rand::rand_bytes(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// One opcode's lock attempts (`LockAttemptTimeoutStrategy`).
#[derive(Debug, Clone, Default)]
pub struct TimeoutStrategy {
    next: usize,
}

impl TimeoutStrategy {
    /// The timeout of the next attempt, with ±5 % jitter; `None` (blocking)
    /// once the schedule is used up.
    pub fn next_timeout(&mut self) -> Option<Duration> {
        let t = *lock_attempt_timeouts().get(self.next)?;
        self.next += 1;
        let range = t * 0.1;
        let t = t + random_unit() * range - range * 0.5;
        Some(Duration::from_secs_f64(t))
    }

    fn exhausted(&self) -> bool {
        self.next >= lock_attempt_timeouts().len()
    }
}

/// The opcode a job is working on (2.5.2's `_OpExecContext`), kept between
/// rounds while it waits for locks or another job.
pub struct OpExecCtx {
    pub index: usize,
    /// Dependencies not yet satisfied, or the check's message when
    /// `depends` is malformed (a hand-made job file).
    jobdeps: Result<Vec<Dependency>, String>,
    strategy: TimeoutStrategy,
}

impl OpExecCtx {
    fn new(job: &job::Job, index: usize) -> OpExecCtx {
        let deps = job.ops[index].input.get(job::DEPEND_ATTR);
        let jobdeps = job::parse_dependencies(deps).ok_or_else(|| {
            job::invalid_dependencies(index, deps.unwrap_or(&Value::Null)).to_string()
        });
        OpExecCtx {
            index,
            jobdeps,
            strategy: TimeoutStrategy::default(),
        }
    }

    /// `CheckPriorityIncrease`: after the schedule is used up the opcode's
    /// priority number drops by one (towards -20) and the schedule starts
    /// again.
    fn check_priority_increase(&mut self, priority: &mut i32) -> bool {
        if self.strategy.exhausted() && *priority > job::PRIO_HIGHEST {
            *priority -= 1;
            self.strategy = TimeoutStrategy::default();
            return true;
        }
        false
    }
}

/// What became of a dependency check.
enum DepOutcome {
    Continue,
    Wait,
    Cancel,
    Fail(String),
}

impl Inner {
    /// `_CheckDependencies` with the dependency manager's
    /// `CheckAndRegister`, under the queue lock.
    fn check_dependencies(
        &self,
        st: &mut super::queue::State,
        job_id: u64,
        ctx: &mut OpExecCtx,
    ) -> DepOutcome {
        let deps = match &mut ctx.jobdeps {
            Ok(deps) => deps,
            Err(msg) => return DepOutcome::Fail(msg.clone()),
        };
        while let Some(dep) = deps.first() {
            let dep_id = dep.job;
            if dep_id == job_id {
                return DepOutcome::Fail("Job can't depend on itself".into());
            }
            let Some(status) = self.dependency_status(st, dep_id) else {
                return DepOutcome::Fail(format!("Dependency error: Job {dep_id} not found"));
            };
            let wanted: Vec<&str> = dep.statuses.iter().map(|s| s.as_str()).collect();
            if !status.is_final() {
                st.waiters.entry(dep_id).or_default().insert(job_id);
                log::info!(
                    "Job {job_id}: need to wait for job {dep_id}, wanted status '{wanted:?}'"
                );
                return DepOutcome::Wait;
            }
            if let Some(w) = st.waiters.get_mut(&dep_id) {
                w.remove(&job_id);
            }
            if status == Status::Canceled && !dep.statuses.contains(&Status::Canceled) {
                log::info!("Job {job_id}: dependency job {dep_id} was cancelled");
                return DepOutcome::Cancel;
            }
            if dep.statuses.is_empty() || dep.statuses.contains(&status) {
                log::info!(
                    "Job {job_id}: dependency job {dep_id} finished with status '{}'",
                    status.as_str()
                );
                deps.remove(0);
                continue;
            }
            return DepOutcome::Fail(format!(
                "Dependency job {dep_id} finished with status '{}', not one of '{}' as required",
                status.as_str(),
                wanted.join(", ")
            ));
        }
        DepOutcome::Continue
    }
}

/// The job pool's run queue, ordered by (priority, arrival).
pub struct Pool {
    state: Mutex<PoolState>,
    cond: Condvar,
}

struct PoolState {
    tasks: BinaryHeap<Reverse<(i32, u64, u64)>>,
    seq: u64,
    stopping: bool,
    /// Workers waiting for a task.
    idle: usize,
}

impl Pool {
    pub fn new() -> Pool {
        Pool {
            state: Mutex::new(PoolState {
                tasks: BinaryHeap::new(),
                seq: 0,
                stopping: false,
                idle: 0,
            }),
            cond: Condvar::new(),
        }
    }

    /// Queues a step of job `id` (dropped once the pool is stopping: the
    /// job stays on disk for the next start).
    pub fn add(&self, id: u64, priority: i32) {
        let mut st = lock(&self.state);
        if st.stopping {
            return;
        }
        let seq = st.seq;
        st.seq += 1;
        st.tasks.push(Reverse((priority, seq, id)));
        self.cond.notify_one();
    }

    /// The next job to work on; `None` when the pool stops.
    fn next(&self) -> Option<u64> {
        let mut st = lock(&self.state);
        loop {
            if st.stopping {
                return None;
            }
            if let Some(Reverse((_, _, id))) = st.tasks.pop() {
                return Some(id);
            }
            st.idle += 1;
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
            st.idle -= 1;
        }
    }

    /// Whether a task queued now is taken at once by a waiting worker.
    pub fn has_idle_worker(&self) -> bool {
        let st = lock(&self.state);
        !st.stopping && st.idle > st.tasks.len()
    }

    pub fn stop(&self) {
        let mut st = lock(&self.state);
        st.stopping = true;
        st.tasks.clear();
        self.cond.notify_all();
    }
}

/// Starts the workers `Jq1`..`Jq<count>`.
pub fn start(inner: &Arc<Inner>, count: usize) -> Result<Vec<JoinHandle<()>>, GanetiError> {
    let mut handles = Vec::with_capacity(count);
    for n in 1..=count {
        let shared = Arc::clone(inner);
        let name = format!("Jq{n}");
        let spawned = crate::daemon::spawn_named(name.clone(), JOB_WORKER_STACK, move || {
            set_task_name(name.clone());
            while let Some(id) = shared.pool.next() {
                run_task(&shared, &name, id);
                set_task_name(name.clone());
            }
        });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                inner.pool.stop();
                for h in handles {
                    let _ = h.join();
                }
                return Err(GanetiError::msg(
                    "JobQueueError",
                    format!("Can't start job worker {n}: {e}"),
                ));
            }
        }
    }
    Ok(handles)
}

/// What a step left the job in.
enum Step {
    Finished,
    Defer(i32),
    WaitDep,
}

/// `_JobQueueWorker.RunTask`. A panic outside the executor (in a job file
/// write, the replicator, a dependency check) fails the job instead of
/// ending the worker thread and leaving the job unfinished forever.
fn run_task(inner: &Arc<Inner>, worker: &str, id: u64) {
    let entry = lock(&inner.state).active.get(&id).cloned();
    let Some(entry) = entry else {
        // Cancelled while queued, or archived.
        return;
    };
    set_task_name(format!("{worker}/Job{id}"));
    let step = catch_unwind(AssertUnwindSafe(|| process(inner, worker, &entry)));
    // The files the step replaced are freed now that whoever waited for
    // the job has been woken.
    let replaced = std::mem::take(&mut lock(&entry.slot).replaced);
    match step {
        Ok(Step::Finished) => inner.job_finished(id),
        Ok(Step::Defer(prio)) => inner.pool.add(id, prio),
        Ok(Step::WaitDep) => {}
        Err(panic) => {
            let what = panic_text(panic.as_ref());
            log::error!("Job {id}: processing panicked: {what}; failing the job");
            fail_after_panic(inner, &entry, &what);
            inner.job_finished(id);
        }
    }
    drop(replaced);
}

/// The message of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Finalises a job whose processing panicked: its unfinished opcodes fail
/// with `OpExecError("Internal error: ...")` and the file is written (the
/// locks the panic poisoned are taken over; a second panic while writing
/// is only logged).
fn fail_after_panic(inner: &Arc<Inner>, entry: &Arc<JobEntry>, what: &str) {
    let written = catch_unwind(AssertUnwindSafe(|| {
        let mut slot = lock(&entry.slot);
        slot.ctx = None;
        if slot.job.status().is_final() {
            // The panic may have come before the watchers were woken.
            inner.touched(entry, &mut slot);
            return;
        }
        let result = GanetiError::exec(format!("Internal error: {what}")).encode();
        slot.job.mark_unfinished(Status::Error, result);
        slot.job.finalize();
        inner.save(entry, &mut slot, true);
    }));
    if written.is_err() {
        log::error!("Job {}: writing the failed job panicked too", entry.id);
    }
}

/// Finds the opcode to work on: the first unfinished one.
fn next_opcode(job: &job::Job) -> Option<usize> {
    job.ops.iter().position(|op| !op.status.is_final())
}

/// One step of a job (`_JobProcessor.__call__`).
fn process(inner: &Arc<Inner>, worker: &str, entry: &Arc<JobEntry>) -> Step {
    let _processing = lock(&entry.processing);
    let mut slot = lock(&entry.slot);
    if slot.job.status().is_final() || slot.refused.is_some() {
        return Step::Finished;
    }
    let mut ctx = match slot.ctx.take() {
        Some(ctx) => ctx,
        None => match next_opcode(&slot.job) {
            Some(index) => OpExecCtx::new(&slot.job, index),
            None => return Step::Finished,
        },
    };
    let idx = ctx.index;
    let count = slot.job.ops.len();
    if slot.job.ops[idx].status == Status::Running {
        log::error!(
            "Job {}: opcode {} is already marked running",
            entry.id,
            idx + 1
        );
        return Step::Finished;
    }
    let mut waitjob = false;
    // `waiting` is shown (memory, WaitForJobChange) at once but written
    // only if the opcode really waits: the `running` write, or the final
    // one, usually comes first and carries it.
    let mut waiting_unwritten = false;
    if slot.job.ops[idx].status != Status::Canceling {
        if mark_waitlock(&mut slot.job, idx) {
            inner.touched(entry, &mut slot);
            waiting_unwritten = true;
        }
        drop(slot);

        let mut st = lock(&inner.state);
        slot = lock(&entry.slot);
        if slot.job.ops[idx].status == Status::Waiting {
            match inner.check_dependencies(&mut st, entry.id, &mut ctx) {
                DepOutcome::Continue => {}
                DepOutcome::Wait => waitjob = true,
                DepOutcome::Cancel => {
                    slot.job.cancel();
                }
                DepOutcome::Fail(msg) => {
                    let op = &mut slot.job.ops[idx];
                    op.status = Status::Error;
                    op.result = GanetiError::exec(msg).encode();
                }
            }
        }
        drop(st);

        if !waitjob && slot.job.ops[idx].status == Status::Waiting {
            let summary = job::op_summary(&slot.job.ops[idx].input);
            log::info!("Op {}/{count}: opcode {summary} waiting for locks", idx + 1);
            let mut input = slot.job.ops[idx].input.clone();
            let mut ectx = ExecCtx {
                inner,
                entry,
                index: idx,
                priority: slot.job.ops[idx].priority,
                lock_timeout: ctx.strategy.next_timeout(),
                name: format!("{worker}/Job{}/{}", entry.id, job::op_tiny_summary(&input)),
            };
            drop(slot);
            set_task_name(ectx.name.clone());
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                inner.exec.exec_opcode(&mut input, &mut ectx)
            }));
            set_task_name(format!("{worker}/Job{}", entry.id));
            slot = lock(&entry.slot);
            let op = &mut slot.job.ops[idx];
            op.input = input;
            let (status, result) = match outcome {
                Ok(OpOutcome::LockTimeout) => {
                    log::debug!("Couldn't acquire locks in {:?}", ectx.lock_timeout);
                    if op.status == Status::Canceling {
                        (Status::Canceling, Value::Null)
                    } else {
                        (Status::Waiting, Value::Null)
                    }
                }
                Ok(OpOutcome::Canceled) => {
                    log::info!("Op {}/{count}: canceling job", idx + 1);
                    (Status::Canceling, Value::Null)
                }
                Ok(OpOutcome::Error(e)) => {
                    log::info!("Op {}/{count}: caught exception in {summary}: {e}", idx + 1);
                    (Status::Error, e.encode())
                }
                Ok(OpOutcome::Success(v)) => {
                    log::debug!("Op {}/{count}: {summary} successful", idx + 1);
                    (Status::Success, v)
                }
                Err(panic) => {
                    let what = panic_text(panic.as_ref());
                    log::error!("Op {}/{count}: {summary} panicked: {what}", idx + 1);
                    let e = GanetiError::exec(format!("Internal error: {what}"));
                    (Status::Error, e.encode())
                }
            };
            op.status = status;
            op.result = result;
        }
        let op = &mut slot.job.ops[idx];
        if op.status != Status::Waiting {
            op.end_timestamp = Some(job::now());
        }
    }

    let op_status = slot.job.ops[idx].status;
    if op_status == Status::Waiting || waitjob {
        let raised = !waitjob && ctx.check_priority_increase(&mut slot.job.ops[idx].priority);
        if raised {
            log::debug!("Job {}: increasing priority", entry.id);
        }
        if raised || waiting_unwritten {
            inner.save(entry, &mut slot, true);
        }
        slot.ctx = Some(ctx);
        return if waitjob {
            Step::WaitDep
        } else {
            Step::Defer(slot.job.priority())
        };
    }
    let mut finalize = false;
    match op_status {
        Status::Success => {}
        Status::Error => {
            let result = GanetiError::exec(job::PRECEDING_FAILED).encode();
            slot.job.mark_unfinished(Status::Error, result);
            finalize = true;
        }
        Status::Canceling => {
            slot.job
                .mark_unfinished(Status::Canceled, json!(job::CANCELED_RESULT));
            finalize = true;
        }
        other => {
            log::error!(
                "Job {}: opcode {} ended in status '{}'",
                entry.id,
                idx + 1,
                other.as_str()
            );
            let result = GanetiError::exec(format!("Unknown status '{}'", other.as_str())).encode();
            slot.job.mark_unfinished(Status::Error, result);
            finalize = true;
        }
    }
    if idx + 1 == count {
        finalize = true;
    }
    if finalize {
        slot.job.finalize();
    }
    // If the job is final this is its last write; it can be archived from
    // now on.
    inner.save(entry, &mut slot, true);
    if finalize {
        log::info!(
            "Finished job {}, status = {}",
            entry.id,
            slot.job.status().as_str()
        );
        Step::Finished
    } else {
        Step::Defer(slot.job.priority())
    }
}

/// `_MarkWaitlock`: whether the job changed.
fn mark_waitlock(job: &mut job::Job, idx: usize) -> bool {
    let mut changed = false;
    let op = &mut job.ops[idx];
    op.result = Value::Null;
    if op.status == Status::Queued {
        op.status = Status::Waiting;
        changed = true;
    }
    if op.start_timestamp.is_none() {
        op.start_timestamp = Some(job::now());
        changed = true;
    }
    if job.start_timestamp.is_none() {
        job.start_timestamp = job.ops[idx].start_timestamp;
        changed = true;
    }
    changed
}

/// The executing opcode's view of its job (`_OpExecCallbacks`).
struct ExecCtx<'a> {
    inner: &'a Arc<Inner>,
    entry: &'a Arc<JobEntry>,
    index: usize,
    priority: i32,
    lock_timeout: Option<Duration>,
    name: String,
}

impl OpContext for ExecCtx<'_> {
    fn job_id(&self) -> u64 {
        self.entry.id
    }

    fn priority(&self) -> i32 {
        self.priority
    }

    fn lock_timeout(&self) -> Option<Duration> {
        self.lock_timeout
    }

    fn notify_start(&mut self) -> Result<(), Canceled> {
        let mut slot = lock(&self.entry.slot);
        let op = &mut slot.job.ops[self.index];
        match op.status {
            Status::Canceling => {
                log::debug!("Canceling opcode");
                Err(Canceled)
            }
            Status::Waiting => {
                log::debug!("Opcode is now running");
                op.status = Status::Running;
                op.exec_timestamp = Some(job::now());
                self.inner.save(self.entry, &mut slot, true);
                if slot.refused.is_some() {
                    // Its first write failed: the job never existed.
                    return Err(Canceled);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn check_cancel(&self) -> bool {
        lock(&self.entry.slot).job.ops[self.index].status == Status::Canceling
    }

    fn feedback(&mut self, log_type: &str, msg: Value) {
        let mut slot = lock(&self.entry.slot);
        let serial = slot.job.log_serial + 1;
        slot.job.ops[self.index].log.push(LogEntry {
            serial,
            time: job::now(),
            log_type: log_type.to_string(),
            message: msg,
        });
        let data = slot.job.to_file();
        if data.len() > MAX_JOB_FILE {
            slot.job.ops[self.index].log.pop();
            if !slot.log_drop_reported {
                slot.log_drop_reported = true;
                log::warn!(
                    "Job {}: dropping log messages, the job file would exceed {MAX_JOB_FILE} bytes",
                    self.entry.id
                );
            }
            return;
        }
        slot.job.log_serial = serial;
        let path = self.inner.job_path(self.entry.id);
        if let Err(e) = self.inner.write_file(&path, &data, false) {
            log::error!("Job {}: {e}", self.entry.id);
        }
        self.inner.touched(self.entry, &mut slot);
    }

    fn submit_jobs(&mut self, jobs: Vec<Vec<Map<String, Value>>>) -> Vec<Result<u64, GanetiError>> {
        self.inner.submit_many(jobs.into_iter().map(Ok).collect())
    }

    fn worker_name(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_timeout_schedule_as_2_5_2() {
        let s = lock_attempt_timeouts();
        // Python 2.7 on 2.5.2's _CalculateLockAttemptTimeouts: 130 values.
        assert_eq!(s.len(), 130);
        assert_eq!(s[0], 1.0);
        assert!(s.iter().all(|t| (1.0..=15.0).contains(t)));
        assert_eq!(s[s.len() - 1], 15.0);
        let sum: f64 = s.iter().sum();
        assert!((1800.0..1815.0).contains(&sum), "{sum}");
        // Second value: (1.0 * 1.05) ** 1.25.
        assert!((s[1] - 1.05_f64.powf(1.25)).abs() < 1e-12);
    }

    #[test]
    fn jitter_stays_within_five_percent_and_schedule_ends_blocking() {
        let mut st = TimeoutStrategy::default();
        let sched = lock_attempt_timeouts();
        for want in sched {
            let got = st.next_timeout().unwrap().as_secs_f64();
            assert!((got - want).abs() <= want * 0.05 + 1e-9, "{got} vs {want}");
        }
        assert_eq!(st.next_timeout(), None);
    }

    #[test]
    fn priority_rises_after_the_schedule_until_highest() {
        let mut input = Map::new();
        input.insert("OP_ID".into(), json!("OP_TEST_DELAY"));
        let job = job::Job::new(1, vec![input]).unwrap();
        let mut ctx = OpExecCtx::new(&job, 0);
        let mut prio = -19;
        assert!(!ctx.check_priority_increase(&mut prio));
        while ctx.strategy.next_timeout().is_some() {}
        assert!(ctx.check_priority_increase(&mut prio));
        assert_eq!(prio, -20);
        // Fresh schedule again.
        assert!(ctx.strategy.next_timeout().is_some());
        while ctx.strategy.next_timeout().is_some() {}
        assert!(!ctx.check_priority_increase(&mut prio));
        assert_eq!(prio, -20);
        // At -20 the next attempt blocks.
        assert_eq!(ctx.strategy.next_timeout(), None);
    }

    #[test]
    fn worker_names_reach_the_kernel_cut_to_15_bytes() {
        std::thread::spawn(|| {
            set_task_name("Jq9/Job42/TEST_DELAY".into());
            assert_eq!(
                crate::daemon::logging::current_task_name().as_deref(),
                Some("Jq9/Job42/TEST_DELAY")
            );
            let comm = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
            assert_eq!(comm, "Jq9/Job42/TEST_\n");
            // Never cut inside a character.
            set_task_name("Jq1/Job1/ÄÄÄÄ".into());
            let comm = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
            assert_eq!(comm, "Jq1/Job1/ÄÄÄ\n");
        })
        .join()
        .unwrap();
        assert_eq!(crate::daemon::logging::current_task_name(), None);
    }

    #[test]
    fn pool_knows_when_a_worker_is_idle() {
        let pool = Arc::new(Pool::new());
        assert!(!pool.has_idle_worker());
        let p = Arc::clone(&pool);
        let worker = std::thread::spawn(move || p.next());
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while !pool.has_idle_worker() {
            assert!(std::time::Instant::now() < end, "the worker never waited");
            std::thread::sleep(Duration::from_millis(1));
        }
        // The task queued now is the idle worker's: no other is idle.
        pool.add(7, 0);
        assert!(!pool.has_idle_worker());
        assert_eq!(worker.join().unwrap(), Some(7));
        assert!(!pool.has_idle_worker());
        pool.stop();
        assert!(!pool.has_idle_worker());
    }

    #[test]
    fn pool_orders_by_priority_then_arrival() {
        let pool = Pool::new();
        pool.add(1, 10);
        pool.add(2, 0);
        pool.add(3, -10);
        pool.add(4, 0);
        let order: Vec<u64> = (0..4).filter_map(|_| pool.next()).collect();
        assert_eq!(order, [3, 2, 4, 1]);
        pool.stop();
        pool.add(5, 0);
        assert_eq!(pool.next(), None);
    }
}
