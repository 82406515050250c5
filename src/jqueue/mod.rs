//! The job queue of the master daemon (Ganeti 2.5.2's `jqueue.py`, spec
//! masterd-luxi sections 2.1-2.6, 2.9, 2.17 and 3).
//!
//! Supported: the on-disk queue exactly as 2.5.2 lays it out (`lock` held
//! with `flock` for the queue's life, `version`, `serial`, `drain`,
//! `job-<id>` files in 2.5.2's byte format, `archive/<id div 10000>/`);
//! id allocation; submission with 2.5.2's checks and messages (drain,
//! the 5000-job limit, priorities, dependencies, relative ids in
//! `SubmitManyJobs`); 25 job workers ordered by (priority, arrival); the
//! opcode life cycle of spec 3.5 driven through the [`OpExecutor`] trait;
//! the lock-timeout schedule of 3.8 (handed to the executor through
//! [`OpContext::lock_timeout`]); dependencies (3.10); cancel, archive,
//! auto-archive, `QueryJobs`, `WaitForJobChange` woken by the change itself;
//! replication through the [`Replicator`] trait; start-up recovery (3.15)
//! and shutdown (3.16).
//!
//! Not here: the LUXI wire (the caller parses job ids and timeouts), the
//! opcode processor (stage B implements [`OpExecutor`]), the RPCs behind
//! [`Replicator`].
//!
//! Writing jobs (2.5.2 fsynced nothing; these rules are ours, see the
//! differences below for what a client can see of them):
//! * A job id is answered only once the job file is durable: written to a
//!   temporary file, fsynced, renamed, the directory fsynced. The serial
//!   file is durable before the answer too, and only ever grows. A job is
//!   durable `running` before its opcode executes, and its final state is
//!   durable before anyone (`WaitForJobChange`, `QueryJobs`) hears of it.
//! * Group commit: a submission writes the serial and its job files with
//!   `fsutil::write_atomic_many` (all temporary files, one fsync each, the
//!   renames, one directory fsync) in chunks of 64, outside the queue lock;
//!   each chunk is registered and queued as soon as it is durable.
//! * Direct start: `SubmitJob` with a job worker idle queues the job before
//!   writing anything and writes the serial while the worker runs up to
//!   its first write (normally `running`, else the end of the job or a
//!   lock wait), which is what makes the job durable; after 5 ms without
//!   it the submitter writes the job as it is. The submitter then sends the
//!   master candidates the serial and the job file, in 2.5.2's order. One
//!   durable write per job saved on the way from submission to result.
//! * `waiting` (locks being acquired) is kept in memory and written only
//!   if the opcode really waits (its lock attempt timed out, it waits for
//!   another job) or with the next write (`running`, the end). On disk the
//!   job stays `queued` meanwhile; recovery requeues both alike.
//! * Replaced job files are kept open (`O_PATH`) until the worker's step
//!   is over: freeing their blocks with online discard costs about 0.1 ms,
//!   which no client should wait for.
//!
//! Differences from 2.5.2, deliberate:
//! * Every queue file write is fsynced and so is its directory
//!   (`fsutil::write_atomic`, `write_atomic_many`); a job id is returned
//!   only after the job file is durable (see "Writing jobs"). Renames into
//!   the archive fsync both directories.
//! * A job submitted with `SubmitJob` while a worker is idle may start, and
//!   even finish, before its id is answered, and its file is first written
//!   `running` (or final), never `queued`. `SubmitManyJobs` jobs start as
//!   soon as their chunk is on disk, before the call is answered. (2.5.2
//!   also started jobs before answering, but wrote each job `queued`
//!   first.)
//! * A job waiting for locks is `waiting` in `WaitForJobChange` and
//!   `QueryJobs` at once, but a file written `queued` (and the master
//!   candidates' copy) keeps saying so until the job's first lock attempt
//!   times out or it starts;
//!   after a crash in that window the requeued job has no start timestamp
//!   from the lost attempt. 2.5.2 wrote `waiting` at once.
//! * A job whose file cannot be written is refused with `Can't write
//!   <path>: <error>` and its id is not given again; in `SubmitManyJobs`
//!   only that job is refused (2.5.2 failed the whole call on a write
//!   error).
//! * Loading a job file is strict (see [`job`]): wrong types, an `id` that
//!   is not the one in the file name, no opcodes, an empty file, a symlink
//!   or a file over [`MAX_JOB_FILE`] make it corrupt, and at start-up (and in
//!   `CancelJob`/`ArchiveJob`/`AutoArchiveJobs`) it is moved into the archive
//!   like 2.5.2's unparseable files. 2.5.2 left empty files in place.
//!   Names that match `job-<digits>` but are not canonical (`job-007`, ids
//!   over 2^64) are ignored and logged.
//! * At start-up (queue lock held) the temporary files of atomic writes cut
//!   short by a crash (`.<name>.<pid>-<n>-<random>.new`) are removed.
//! * At start-up the serial is raised to the highest job id found in the
//!   queue and in the newest archive directory, so a stale `serial` file can
//!   never make an id be reused (2.5.2 would overwrite the job files).
//! * Dependencies: ids are normalised (`5` and `"5"` are the same job); a
//!   missing job fails the opcode with `Dependency error: Job <id> not found`
//!   (2.5.2 asserted and left the job waiting forever). A job cancelled
//!   while it waits for another job is cancelled at once (2.5.2 noticed only
//!   when the other job finished).
//! * `WaitForJobChange` is woken by the change itself (a condition variable
//!   per job). A new status or the end of the job is answered at once; only
//!   a change that brought log messages alone lingers
//!   [`CHANGE_BATCH_DELAY`] to return a burst of them together (2.5.2 slept
//!   0.1 s before every re-check after the first, whatever had changed, so
//!   its clients often missed short-lived statuses such as `waiting`; ours
//!   see each one). It waits at most [`MAX_WAIT_TIMEOUT`] whatever the
//!   client asks.
//! * A log message that would make the job file exceed [`MAX_JOB_FILE`] is
//!   dropped (and the drop logged once per job), so replicas (whose
//!   `jobqueue_update` accepts that much) and the next start-up can still
//!   read the file.
//! * A panic in the executor fails the opcode with `OpExecError` instead of
//!   killing the worker; a panic elsewhere while a worker processes a job
//!   (a job file write, the replicator) fails the whole job the same way
//!   and the worker lives on; a job file write that fails while a job runs
//!   is logged and the job goes on (the next write carries the whole
//!   state).
//! * A `QueryJobs` or `WaitForJobChange` answer carries at most
//!   [`job::MAX_ANSWER`] bytes of job fields (what a LUXI client reads at
//!   most); past it the call fails with `JobQueueError`, so naming a large
//!   field or job many times cannot make the master build gigabytes.
//! * Opening waits at most [`Options::lock_wait`] for the queue lock
//!   (2.5.2 blocked forever).
//! * The version check message is formatted ("Found job queue version 2,
//!   expected 1"); 2.5.2 passed the format and its arguments separately.
//! * While an opcode executes, its file shows the input as submitted; the
//!   input as the executor left it (defaults filled in) is stored when the
//!   attempt returns. 2.5.2's live opcode object showed the validated input
//!   from the `running` write on. Final files are the same.
//! * `SubmitManyJobs`: a job whose opcodes fail `LoadOpCode` gets its own
//!   error and still uses an id; 2.5.2 refused the whole call before
//!   allocating ids (a LUXI server wanting that calls [`job::load_opcode`]
//!   on every opcode first). An empty call writes no serial file.
//!
//! Opcode summaries, the known opcodes and the submission checks (priority,
//! dependencies) come from [`crate::opcodes`].
#![forbid(unsafe_code)]

pub mod job;
mod queue;
mod wait;
mod workers;

/// Job files as 2.5.2 wrote them (`DumpJson(data, indent=False)`): the
/// writer is [`crate::pyjson`]; these names stay for existing callers.
pub mod pyjson {
    pub use crate::pyjson::float_repr;
    use serde_json::Value;

    /// `DumpJson(value, indent=False)`: the compact text plus `"\n"`.
    pub fn dumps(value: &Value) -> String {
        crate::pyjson::dumps(value, crate::pyjson::Options::COMPACT)
    }
}

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::errors::GanetiError;
use crate::fsutil::FileLock;
use crate::paths::Paths;

pub use crate::daemon::logging::current_task_name;
pub use job::{Job, Status};
pub use queue::GROUP_COMMIT_CHUNK;
pub use workers::lock_attempt_timeouts;

/// `JOBQUEUE_THREADS`.
pub const JOBQUEUE_THREADS: usize = 25;
/// Most job workers a queue accepts.
pub const MAX_WORKERS: usize = 256;
/// `JOB_QUEUE_SIZE_HARD_LIMIT`: submissions fail with `JobQueueFull` once
/// this many job files are in `queue/`.
pub const JOB_QUEUE_SIZE_HARD_LIMIT: usize = 5000;
/// `JOBS_PER_ARCHIVE_DIRECTORY`.
pub const JOBS_PER_ARCHIVE_DIRECTORY: u64 = 10000;
/// `JOB_QUEUE_VERSION`.
pub const JOB_QUEUE_VERSION: u64 = 1;
/// Largest job file read or grown by log messages: the node daemon's
/// `jobqueue_update` limit (`noded::jobqueue::MAX_JOB_FILE`), so a file the
/// master writes is one every master candidate accepts.
pub const MAX_JOB_FILE: usize = 16 * 1024 * 1024;
/// Pause after a job got new log messages (and nothing else the client
/// asked about changed) before `WaitForJobChange` answers, so that a burst
/// of them goes out in one answer. Status changes are answered at once.
pub const CHANGE_BATCH_DELAY: Duration = Duration::from_millis(10);
/// Longest `WaitForJobChange` wait (3.0 clients ask for 89 s, 2.5 for 29 s).
pub const MAX_WAIT_TIMEOUT: Duration = Duration::from_secs(90);
/// `JOB_NOTCHANGED`.
pub const JOB_NOTCHANGED: &str = "nochange";
/// Stack of a job worker thread: it runs the opcode processor and the
/// logical units, and compresses the files it copies to the master
/// candidates (zlib's compressor state passes through the stack, about
/// 300 KiB in a debug build). The master daemon does not lock its memory,
/// so only the pages a thread touches count.
pub const JOB_WORKER_STACK: usize = 1024 * 1024;

/// Pushes queue changes to the master candidates (2.5.2's
/// `jobqueue_update`/`jobqueue_rename` RPCs; stage B implements it with
/// `rpc::client` and the config). Paths are wire paths
/// (`/var/lib/ganeti/queue/job-42`). Called synchronously with the job (or
/// the queue) locked, so a file's updates arrive in order. An `Err` is a
/// summary of the failed nodes; the queue logs it and goes on (2.5.2 does
/// not retry either).
///
/// Lock order: the queue's state lock, then a job's lock, then whatever
/// the replicator takes. So an implementation must not wait for the
/// config writer's lock (a config update distributing config.data over
/// RPC would stall the whole queue meanwhile, and one whose closure or
/// feedback called into the queue would deadlock with it): keep its own
/// copy of the master candidates' addresses, updated when nodes change, as
/// 2.5.2's queue keeps its own node map.
pub trait Replicator: Send + Sync {
    fn update(&self, wire_path: &str, content: &[u8]) -> Result<(), String>;
    fn rename(&self, pairs: &[(String, String)]) -> Result<(), String>;
}

/// A single-node cluster: nothing to replicate.
pub struct NoReplication;

impl Replicator for NoReplication {
    fn update(&self, _: &str, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
    fn rename(&self, _: &[(String, String)]) -> Result<(), String> {
        Ok(())
    }
}

/// Runs one opcode (stage B: the processor, spec 6.2).
pub trait OpExecutor: Send + Sync {
    /// `input` is the stored opcode; changes to it (defaults filled in by
    /// validation, canonical names) are kept in the job file.
    fn exec_opcode(&self, input: &mut Map<String, Value>, ctx: &mut dyn OpContext) -> OpOutcome;
}

/// How an opcode attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum OpOutcome {
    Success(Value),
    Error(GanetiError),
    /// The locks could not be had within [`OpContext::lock_timeout`]: the
    /// opcode stays `waiting` and is retried later.
    LockTimeout,
    /// [`OpContext::check_cancel`] or [`OpContext::notify_start`] said the
    /// job was cancelled.
    Canceled,
}

/// The job was cancelled (returned by [`OpContext::notify_start`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canceled;

/// What an executing opcode may ask of its job (2.5.2's `_OpExecCallbacks`).
pub trait OpContext {
    fn job_id(&self) -> u64;
    /// The opcode's current priority (it may have been raised, spec 3.8).
    fn priority(&self) -> i32;
    /// Timeout for this lock attempt; `None` means a blocking acquire.
    fn lock_timeout(&self) -> Option<Duration>;
    /// All locks are held: the opcode becomes `running` (exec timestamp,
    /// job file written and replicated), unless it was cancelled.
    fn notify_start(&mut self) -> Result<(), Canceled>;
    /// Whether the job was asked to cancel (check before each lock level).
    fn check_cancel(&self) -> bool;
    /// Appends a log entry (written locally, not replicated).
    fn feedback(&mut self, log_type: &str, msg: Value);
    /// Submits jobs for the LU (`SubmitManyJobs` semantics, relative
    /// dependencies allowed).
    fn submit_jobs(&mut self, jobs: Vec<Vec<Map<String, Value>>>) -> Vec<Result<u64, GanetiError>>;
    /// The worker's name while the opcode runs, `Jq<N>/Job<id>/<tiny
    /// summary>` (2.5.2's lock owner names).
    fn worker_name(&self) -> String;
}

/// How a queue is opened.
#[derive(Debug, Clone)]
pub struct Options {
    /// Job worker threads (at most [`MAX_WORKERS`]; 0 runs nothing).
    pub workers: usize,
    /// How long to wait for another process to release `queue/lock`.
    pub lock_wait: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            workers: JOBQUEUE_THREADS,
            lock_wait: Duration::from_secs(10),
        }
    }
}

/// The job queue. Shared as `Arc<JobQueue>`; dropping the last reference
/// shuts it down.
pub struct JobQueue {
    inner: Arc<queue::Inner>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    lock: Mutex<Option<FileLock>>,
}

impl JobQueue {
    /// Opens the queue under `paths` with `workers` job workers: takes the
    /// queue lock, checks `version`, reads `serial` and the drain flag,
    /// recovers the jobs left by the previous master (spec 3.15) and starts
    /// the workers `Jq1`..`JqN`.
    pub fn open(
        paths: Paths,
        replicator: Arc<dyn Replicator>,
        exec: Arc<dyn OpExecutor>,
        workers: usize,
    ) -> Result<Arc<JobQueue>, GanetiError> {
        let opts = Options {
            workers,
            ..Options::default()
        };
        JobQueue::open_with(paths, replicator, exec, opts)
    }

    /// [`JobQueue::open`] with all options.
    pub fn open_with(
        paths: Paths,
        replicator: Arc<dyn Replicator>,
        exec: Arc<dyn OpExecutor>,
        opts: Options,
    ) -> Result<Arc<JobQueue>, GanetiError> {
        if opts.workers > MAX_WORKERS {
            return Err(GanetiError::msg(
                "JobQueueError",
                format!(
                    "Too many job workers ({}), at most {MAX_WORKERS} are allowed",
                    opts.workers
                ),
            ));
        }
        let (inner, lock) = queue::Inner::open(paths, replicator, exec, opts.lock_wait)?;
        let inner = Arc::new(inner);
        let workers = workers::start(&inner, opts.workers)?;
        Ok(Arc::new(JobQueue {
            inner,
            workers: Mutex::new(workers),
            lock: Mutex::new(Some(lock)),
        }))
    }

    /// `SubmitJob`: the new job's id, once its file is on disk.
    pub fn submit_job(&self, ops: Vec<Value>) -> Result<u64, GanetiError> {
        self.inner.submit_job(ops)
    }

    /// `SubmitManyJobs`: one result per job, in order. An `Err` displays
    /// as 2.5.2's message (`"<error>; opcodes <summaries>"`).
    pub fn submit_many_jobs(&self, jobs: Vec<Vec<Value>>) -> Vec<Result<u64, GanetiError>> {
        self.inner.submit_many_values(jobs)
    }

    /// `WaitForJobChange`: `[job_info, log_entries]`, the string
    /// `"nochange"` after `timeout`, or null for a job not in the queue.
    pub fn wait_for_job_change(
        &self,
        id: u64,
        fields: &[String],
        prev_job_info: Value,
        prev_log_serial: Option<u64>,
        timeout: Duration,
    ) -> Result<Value, GanetiError> {
        self.inner
            .wait_for_job_change(id, fields, &prev_job_info, prev_log_serial, timeout)
    }

    /// `CancelJob`: `(success, message)`.
    pub fn cancel_job(&self, id: u64) -> Result<(bool, String), GanetiError> {
        self.inner.cancel_job(id)
    }

    /// `ArchiveJob`: whether a finished job was moved into the archive.
    pub fn archive_job(&self, id: u64) -> Result<bool, GanetiError> {
        self.inner.archive_job(id)
    }

    /// `AutoArchiveJobs`: `(archived, left unchecked)`; `age` -1 archives
    /// every finished job.
    pub fn auto_archive_jobs(&self, age: i64, timeout: Duration) -> (usize, usize) {
        self.inner.auto_archive_jobs(age, timeout)
    }

    /// `QueryJobs`: one row (or null) per id; all jobs in `queue/` when
    /// `ids` is empty.
    pub fn query_jobs(&self, ids: &[u64], fields: &[String]) -> Result<Vec<Value>, GanetiError> {
        self.inner.query_jobs(ids, fields)
    }

    /// `SetDrainFlag`.
    pub fn set_drain_flag(&self, on: bool) -> Result<(), GanetiError> {
        self.inner.set_drain_flag(on)
    }

    /// Whether new jobs are refused.
    pub fn drained(&self) -> bool {
        self.inner.drained()
    }

    /// Runs `f` with the serial file and every job file in `queue/`
    /// (wire path, contents), the queue locked meanwhile: what a new master
    /// candidate receives after `jobqueue_purge` (2.5.2's `AddNode`).
    pub fn with_queue_files<T>(&self, f: impl FnOnce(Vec<(String, Vec<u8>)>) -> T) -> T {
        self.inner.with_queue_files(f)
    }

    /// Stops the queue (spec 3.16): no new work is accepted, each worker
    /// finishes the opcode it runs, queued work stays on disk for the next
    /// start, then the queue lock is released. Idempotent.
    pub fn shutdown(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.inner.pool.stop();
        // Takes the queue state lock: a submission, cancel or archive in
        // progress ends before the queue lock is released below.
        self.inner.wake_all_waiters();
        let handles = std::mem::take(&mut *queue::lock(&self.workers));
        let me = std::thread::current().id();
        for h in handles {
            if h.thread().id() == me {
                // Called from a job (e.g. cluster destroy): do not wait for
                // ourselves.
                continue;
            }
            if h.join().is_err() {
                log::error!("A job worker panicked during shutdown");
            }
        }
        // Submissions write their files outside the state lock: let those
        // in progress finish before the queue lock goes.
        drop(
            self.inner
                .submitting
                .write()
                .unwrap_or_else(|e| e.into_inner()),
        );
        queue::lock(&self.lock).take();
        log::info!("Job queue shut down");
    }
}

impl Drop for JobQueue {
    fn drop(&mut self) {
        self.shutdown();
    }
}
