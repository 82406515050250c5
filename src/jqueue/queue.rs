//! The queue's state and its disk: opening and recovery, id allocation,
//! submission, cancel, archive, queries, the drain flag (2.5.2's
//! `JobQueue` class).
//!
//! Locking: `Inner::state` is 2.5.2's queue lock. Each active job has its
//! own mutex (`JobEntry::slot`). The order is always state, then job; a
//! thread holding one job's mutex never waits for the state or for another
//! job, except the dependency check, which holds the state (so no two
//! threads ever hold two job mutexes at once). `Inner::serial` comes last:
//! it is held while the serial file is written (with the first chunk of a
//! submission), never while waiting for another lock. New job files are
//! written without the state lock and registered under it once durable.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::job::{self, Corrupt, Job, Status};
use super::workers::{OpExecCtx, Pool};
use super::{
    OpExecutor, Replicator, JOBS_PER_ARCHIVE_DIRECTORY, JOB_QUEUE_SIZE_HARD_LIMIT,
    JOB_QUEUE_VERSION, MAX_JOB_FILE,
};
use crate::errors::GanetiError;
use crate::fsutil::{self, FileLock, FileMeta};
use crate::paths::Paths;

/// Mode of the queue and archive directories.
const DIR_MODE: u32 = 0o700;
/// New job files written per group commit of a submission: each chunk
/// costs one fsync per file and one of the directory, and its jobs start
/// while the next chunk is written.
pub const GROUP_COMMIT_CHUNK: usize = 64;
/// How long `SubmitJob` waits for the idle worker it handed a job to to
/// make the job durable with its first write (normally `running`, within
/// a fraction of a millisecond plus the write) before writing the job
/// itself: the job may be waiting for locks.
pub(super) const DIRECT_START_WAIT: Duration = Duration::from_millis(5);
/// Jobs archived per rename batch in `AutoArchiveJobs`.
const ARCHIVE_BATCH: usize = 10;
/// Progress of the start-up inspection is logged every this many jobs...
const INSPECT_LOG_EVERY: usize = 1000;
/// ...or this often.
const INSPECT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Locks a mutex; a panic elsewhere does not make the queue unusable.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `JobQueueError(msg)`.
fn queue_error(msg: String) -> GanetiError {
    GanetiError::msg("JobQueueError", msg)
}

pub(super) struct State {
    pub last_serial: u64,
    pub drained: bool,
    /// Job files in `queue/` (2.5.2's `_queue_size`).
    pub queue_size: usize,
    /// Jobs not finalised yet.
    pub active: HashMap<u64, Arc<JobEntry>>,
    /// Dependency waiters: job id -> jobs waiting for it to finish.
    pub waiters: BTreeMap<u64, BTreeSet<u64>>,
}

/// An unfinished job in memory.
pub(super) struct JobEntry {
    pub id: u64,
    pub slot: Mutex<Slot>,
    /// Notified on every change of the job (WaitForJobChange).
    pub changed: Condvar,
    /// Held by the worker processing the job, so one job never runs on two
    /// workers.
    pub processing: Mutex<()>,
}

pub(super) struct Slot {
    pub job: Job,
    /// Bumped on every change.
    pub generation: u64,
    /// The opcode kept for another round (2.5.2's `cur_opctx`).
    pub ctx: Option<OpExecCtx>,
    /// A dropped log message was already reported.
    pub log_drop_reported: bool,
    /// The job file is on disk. False only for a job started directly
    /// (`SubmitJob` with a worker idle) until its first write (see
    /// [`Inner::start_direct`]).
    pub written: bool,
    /// That first write failed: the job is refused, it never runs and is
    /// never written; its submitter answers with this error.
    pub refused: Option<GanetiError>,
    /// The job file was written before the serial reached the master
    /// candidates: the submitter sends them the file (as it is on disk
    /// then) after the serial, and the job's writes meanwhile are local.
    pub replicate_pending: bool,
    /// Files replaced by the job's writes, still open so that their space
    /// is freed (slow with online discard) only once the worker is done
    /// with the step, not while a client waits ([`Inner::save`]).
    pub replaced: Vec<std::fs::File>,
}

impl JobEntry {
    fn new(job: Job, written: bool) -> Arc<JobEntry> {
        Arc::new(JobEntry {
            id: job.id,
            slot: Mutex::new(Slot {
                job,
                generation: 0,
                ctx: None,
                log_drop_reported: false,
                written,
                refused: None,
                replicate_pending: false,
                replaced: Vec::new(),
            }),
            changed: Condvar::new(),
            processing: Mutex::new(()),
        })
    }
}

/// A job file read from disk.
pub(super) enum Loaded {
    Missing,
    Corrupt(String),
    Job(Job),
}

pub(super) struct Inner {
    pub paths: Paths,
    pub dir: PathBuf,
    pub replicator: Arc<dyn Replicator>,
    pub exec: Arc<dyn OpExecutor>,
    pub state: Mutex<State>,
    pub pool: Pool,
    pub closed: AtomicBool,
    /// Held shared by every submission from its first check to its last
    /// write (files are written outside the state lock); shutdown takes it
    /// exclusively before giving up the queue lock.
    pub submitting: std::sync::RwLock<()>,
    /// The serial durable on disk (and sent to the master candidates).
    /// Held while the serial is written, so the file only ever grows
    /// (submissions write outside `state`).
    serial: Mutex<u64>,
}

impl Inner {
    /// Opens the queue directory and recovers it (spec 3.1, 3.15).
    pub fn open(
        paths: Paths,
        replicator: Arc<dyn Replicator>,
        exec: Arc<dyn OpExecutor>,
        lock_wait: Duration,
    ) -> Result<(Inner, FileLock), GanetiError> {
        let dir = paths.queue_dir();
        let io_err = |p: &Path, e: io::Error| {
            queue_error(format!(
                "Can't prepare the job queue at {}: {e}",
                paths.to_wire(p).display()
            ))
        };
        fsutil::create_dirs(&dir, DIR_MODE).map_err(|e| io_err(&dir, e))?;
        let archive = paths.queue_archive_dir();
        fsutil::create_dirs(&archive, DIR_MODE).map_err(|e| io_err(&archive, e))?;
        let lock_path = dir.join("lock");
        let file_lock = FileLock::exclusive(&lock_path, lock_wait)
            .map_err(|e| io_err(&lock_path, e))?
            .ok_or_else(|| {
                queue_error(format!(
                    "The job queue is locked by another process ({} held for {} s)",
                    paths.to_wire(&lock_path).display(),
                    lock_wait.as_secs()
                ))
            })?;
        let inner = Inner {
            paths,
            dir,
            replicator,
            exec,
            state: Mutex::new(State {
                last_serial: 0,
                drained: false,
                queue_size: 0,
                active: HashMap::new(),
                waiters: BTreeMap::new(),
            }),
            pool: Pool::new(),
            closed: AtomicBool::new(false),
            submitting: std::sync::RwLock::new(()),
            serial: Mutex::new(0),
        };
        inner.remove_stale_temp_files();
        inner.check_version()?;
        let serial = inner.read_serial()?;
        let drained = inner.dir.join("drain").exists();
        let mut st = lock(&inner.state);
        st.last_serial = serial;
        st.drained = drained;
        inner.inspect(&mut st)?;
        *lock(&inner.serial) = st.last_serial;
        drop(st);
        Ok((inner, file_lock))
    }

    /// Removes the temporary files of atomic writes cut short by a crash
    /// (`.<name>.<pid>-<n>-<random>.new`, see `fsutil::write_atomic`):
    /// with the queue lock held nobody else writes here, and otherwise they
    /// would pile up with every crash.
    fn remove_stale_temp_files(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            if !(name.starts_with('.') && name.ends_with(".new")) {
                continue;
            }
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => log::info!("Removed the unfinished temporary file {name}"),
                Err(e) => log::warn!("Can't remove the temporary file {name}: {e}"),
            }
        }
    }

    fn check_version(&self) -> Result<(), GanetiError> {
        let path = self.dir.join("version");
        let text = match read_small(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let data = format!("{JOB_QUEUE_VERSION}\n");
                self.write_file(&path, data.as_bytes(), false)?;
                data
            }
            Err(e) => return Err(self.io_error("read", &path, e)),
        };
        let text = text.trim();
        if text.parse::<u64>().ok() != Some(JOB_QUEUE_VERSION) {
            return Err(queue_error(format!(
                "Found job queue version {text}, expected {JOB_QUEUE_VERSION}"
            )));
        }
        Ok(())
    }

    fn read_serial(&self) -> Result<u64, GanetiError> {
        let path = self.serial_path();
        let text = match read_small(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.write_file(&path, b"0\n", false)?;
                "0\n".into()
            }
            Err(e) => return Err(self.io_error("read", &path, e)),
        };
        text.trim()
            .parse::<u64>()
            .map_err(|_| queue_error("Can't read/parse the job queue serial file".into()))
    }

    /// `_InspectQueue`: resumes queued jobs, restarts waiting ones, fails
    /// the ones that were running, moves corrupt files aside.
    fn inspect(&self, st: &mut State) -> Result<(), GanetiError> {
        log::info!("Inspecting job queue");
        let ids = self
            .job_ids()
            .map_err(|e| self.io_error("list", &self.dir, e))?;
        let count = ids.len();
        let mut last_info = Instant::now();
        let mut restart = Vec::new();
        let mut max_id = 0;
        for (idx, &id) in ids.iter().enumerate() {
            if idx % INSPECT_LOG_EVERY == 0
                || last_info.elapsed() >= INSPECT_LOG_INTERVAL
                || idx + 1 == count
            {
                log::info!(
                    "Job queue inspection: {idx}/{} ({:.1} %)",
                    count.saturating_sub(1),
                    100.0 * (idx + 1) as f64 / count as f64
                );
                last_info = Instant::now();
            }
            max_id = max_id.max(id);
            let Some(mut job) = self.load_or_move_aside(st, id) else {
                continue;
            };
            match job.status() {
                Status::Queued => restart.push(job),
                status @ (Status::Waiting | Status::Running | Status::Canceling) => {
                    log::warn!("Unfinished job {id} found (status {})", status.as_str());
                    if status == Status::Waiting {
                        job.mark_unfinished(Status::Queued, Value::Null);
                        self.write_job(&job, true)?;
                        restart.push(job);
                    } else {
                        job.mark_unfinished(Status::Error, json!(job::UNCLEAN_SHUTDOWN));
                        job.finalize();
                        self.write_job(&job, true)?;
                    }
                }
                Status::Success | Status::Error | Status::Canceled => {}
            }
        }
        st.queue_size = self
            .job_ids()
            .map_err(|e| self.io_error("list", &self.dir, e))?
            .len();
        // Never hand out an id that a job file already has.
        let highest = max_id.max(self.highest_archived_id());
        if highest > st.last_serial {
            log::warn!(
                "The job queue serial file says {} but job {highest} exists; continuing after it",
                st.last_serial
            );
            self.write_file(&self.serial_path(), format!("{highest}\n").as_bytes(), true)?;
            st.last_serial = highest;
        }
        if !restart.is_empty() {
            log::info!("Restarting {} jobs", restart.len());
        }
        for job in restart {
            let (id, prio) = (job.id, job.priority());
            st.active.insert(id, JobEntry::new(job, true));
            self.pool.add(id, prio);
        }
        log::info!("Job queue inspection finished");
        Ok(())
    }

    /// The highest id in the newest archive sub-directory (0 if none).
    fn highest_archived_id(&self) -> u64 {
        let archive = self.paths.queue_archive_dir();
        let newest = std::fs::read_dir(&archive)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| job::parse_job_id(e.file_name().to_str()?))
            .max();
        let Some(newest) = newest else {
            return 0;
        };
        list_job_ids(&archive.join(newest.to_string()))
            .ok()
            .and_then(|ids| ids.into_iter().max())
            .unwrap_or(0)
    }

    // ---- paths and files ----

    pub fn job_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("job-{id}"))
    }

    pub fn archived_path(&self, id: u64) -> PathBuf {
        self.paths
            .queue_archive_dir()
            .join((id / JOBS_PER_ARCHIVE_DIRECTORY).to_string())
            .join(format!("job-{id}"))
    }

    fn serial_path(&self) -> PathBuf {
        self.dir.join("serial")
    }

    fn wire(&self, path: &Path) -> String {
        self.paths.to_wire(path).to_string_lossy().into_owned()
    }

    fn io_error(&self, what: &str, path: &Path, e: io::Error) -> GanetiError {
        queue_error(format!("Can't {what} {}: {e}", self.wire(path)))
    }

    /// Writes a queue file durably and, if asked, replicates it.
    pub fn write_file(&self, path: &Path, data: &[u8], replicate: bool) -> Result<(), GanetiError> {
        fsutil::write_atomic(path, data, &FileMeta::default())
            .map_err(|e| self.io_error("write", path, e))?;
        if replicate {
            self.replicate(path, data);
        }
        Ok(())
    }

    /// Sends a queue file just written to the master candidates; a
    /// failure is logged (2.5.2 does not retry either).
    fn replicate(&self, path: &Path, data: &[u8]) {
        let wire = self.wire(path);
        if let Err(e) = self.replicator.update(&wire, data) {
            log::error!("Updating {wire} on the master candidates failed: {e}");
        }
    }

    /// Writes a job's file (`UpdateJobUnlocked`).
    pub fn write_job(&self, job: &Job, replicate: bool) -> Result<(), GanetiError> {
        self.write_file(&self.job_path(job.id), &job.to_file(), replicate)
    }

    /// Writes an active job after a change and wakes its watchers. A write
    /// error is logged: the job goes on and the next write carries all.
    /// The first write of a job started directly is what makes it durable:
    /// if it fails the job is refused (`Slot::refused`) and never written
    /// again; its submitter sends it to the master candidates, after the
    /// serial. The files replaced are kept in `Slot::replaced`.
    pub fn save(&self, entry: &JobEntry, slot: &mut Slot, replicate: bool) {
        if slot.refused.is_none() {
            let path = self.job_path(entry.id);
            let data = slot.job.to_file();
            let (mut r, replaced) = fsutil::write_atomic_many_keep(
                &[(path.as_path(), data.as_slice())],
                &FileMeta::default(),
            );
            slot.replaced.extend(replaced);
            match r.pop().unwrap_or(Ok(())) {
                Ok(()) if !slot.written => {
                    slot.written = true;
                    slot.replicate_pending = true;
                }
                // Until its submitter sent the serial, it sends the file.
                Ok(()) if replicate && !slot.replicate_pending => self.replicate(&path, &data),
                Ok(()) => {}
                Err(e) if slot.written => {
                    log::error!("Job {}: {}", entry.id, self.io_error("write", &path, e))
                }
                Err(e) => {
                    // The rename may have happened before a directory
                    // fsync failed: no file for a job that was refused.
                    let _ = std::fs::remove_file(&path);
                    let e = self.io_error("write", &path, e);
                    log::error!("Job {}: {e}; refusing the job", entry.id);
                    slot.refused = Some(e);
                }
            }
        }
        self.touched(entry, slot);
    }

    /// Marks an in-memory change of a job (woken watchers re-check).
    pub fn touched(&self, entry: &JobEntry, slot: &mut Slot) {
        slot.generation = slot.generation.wrapping_add(1);
        entry.changed.notify_all();
    }

    /// The ids of the job files in `queue/`, in numeric order.
    pub fn job_ids(&self) -> io::Result<Vec<u64>> {
        list_job_ids(&self.dir)
    }

    /// Reads a job file: `queue/job-<id>`, then the archive if asked.
    pub fn load_from_disk(&self, id: u64, try_archived: bool) -> Loaded {
        let mut paths = vec![self.job_path(id)];
        if try_archived {
            paths.push(self.archived_path(id));
        }
        for path in paths {
            match read_job_file(&path) {
                Ok(None) => continue,
                Ok(Some(data)) => {
                    return match Job::parse(&data, id) {
                        Ok(job) => Loaded::Job(job),
                        Err(Corrupt(e)) => Loaded::Corrupt(e),
                    }
                }
                Err(e) => return Loaded::Corrupt(e.to_string()),
            }
        }
        Loaded::Missing
    }

    /// Loads `queue/job-<id>`; a corrupt file is moved into the archive
    /// (2.5.2's `_LoadJobUnlocked`) and no longer counts towards the
    /// queue size.
    fn load_or_move_aside(&self, st: &mut State, id: u64) -> Option<Job> {
        match self.load_from_disk(id, false) {
            Loaded::Job(job) => Some(job),
            Loaded::Missing => None,
            Loaded::Corrupt(e) => {
                log::error!("Can't parse job {id} ({e}), will archive");
                let pair = [(self.job_path(id), self.archived_path(id))];
                match self.rename_files(&pair) {
                    (1, _) => st.queue_size = st.queue_size.saturating_sub(1),
                    (_, Err(e)) => log::error!("Moving the corrupt job {id} aside failed: {e}"),
                    (_, Ok(())) => {}
                }
                None
            }
        }
    }

    /// Renames queue files locally (creating directories) and then on the
    /// master candidates (`_RenameFilesUnlocked`). Stops at the first local
    /// failure; what was renamed is replicated either way. Returns how many
    /// were renamed.
    fn rename_files(&self, pairs: &[(PathBuf, PathBuf)]) -> (usize, Result<(), GanetiError>) {
        let mut done = Vec::new();
        let mut result = Ok(());
        for (old, new) in pairs {
            if let Err(e) = rename_durably(old, new) {
                result = Err(self.io_error("archive", old, e));
                break;
            }
            done.push((self.wire(old), self.wire(new)));
        }
        if !done.is_empty() {
            if let Err(e) = self.replicator.rename(&done) {
                log::error!("Renaming files ({done:?}) on the master candidates failed: {e}");
            }
        }
        (done.len(), result)
    }

    // ---- ids and submission ----

    fn check_open(&self) -> Result<(), GanetiError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(queue_error("The job queue is shut down".into()));
        }
        Ok(())
    }

    pub fn submit_job(&self, ops: Vec<Value>) -> Result<u64, GanetiError> {
        let ops = load_ops(ops)?;
        let direct = self.pool.has_idle_worker();
        self.submit_group(vec![Ok(ops)], false, direct)
            .pop()
            .unwrap_or_else(|| Err(queue_error("No job was submitted".into())))
    }

    pub fn submit_many_values(&self, jobs: Vec<Vec<Value>>) -> Vec<Result<u64, GanetiError>> {
        let loaded = jobs.into_iter().map(load_ops).collect();
        self.submit_many(loaded)
    }

    /// `SubmitManyJobs` (also for jobs submitted by LUs). Jobs whose
    /// opcodes could not be loaded arrive as `Err` and keep their error.
    pub fn submit_many(
        &self,
        jobs: Vec<Result<Vec<Map<String, Value>>, GanetiError>>,
    ) -> Vec<Result<u64, GanetiError>> {
        if jobs.is_empty() {
            return Vec::new();
        }
        self.submit_group(jobs, true, false)
    }

    /// `_NewSerialsUnlocked` and `_SubmitJobUnlocked` for a group of jobs,
    /// as a group commit. Under the queue lock: one id per job (used up
    /// whatever happens next, as 2.5.2 allocates first), every job checked,
    /// room in the queue reserved. Then, outside the queue lock, the job
    /// files are written in chunks of [`GROUP_COMMIT_CHUNK`] with
    /// [`fsutil::write_atomic_many`] (one fsync per file, one of the
    /// directory), the serial file with the first chunk; each chunk is
    /// replicated (serial first), registered and queued as soon as it is
    /// durable, so the workers start while the next chunk is written. The
    /// caller hears of an id only once its file is durable. `many`
    /// resolves relative dependencies and adds 2.5.2's `"; opcodes ..."`
    /// to check errors. `direct` (one job, a worker idle): the job is
    /// queued before anything is written, so that the worker's first
    /// write (usually `running`) is also the one that makes it durable
    /// (see [`Inner::start_direct`]).
    fn submit_group(
        &self,
        jobs: Vec<Result<Vec<Map<String, Value>>, GanetiError>>,
        many: bool,
        direct: bool,
    ) -> Vec<Result<u64, GanetiError>> {
        let _in_flight = self.submitting.read().unwrap_or_else(|e| e.into_inner());
        let mut st = lock(&self.state);
        if let Err(e) = self.check_open() {
            return jobs.iter().map(|_| Err(e.clone())).collect();
        }
        // A serial file edited by hand (or a job file named so) may have
        // brought the serial near the end of the id range.
        let Some(last) = u64::try_from(jobs.len())
            .ok()
            .and_then(|n| st.last_serial.checked_add(n))
        else {
            let e = queue_error(format!(
                "Cannot allocate {} new job ids: the job queue serial is at {}",
                jobs.len(),
                st.last_serial
            ));
            return jobs.iter().map(|_| Err(e.clone())).collect();
        };
        let first = st.last_serial + 1;
        let ids: Vec<u64> = (first..=last).collect();
        st.last_serial = last;
        let mut checked: Vec<Result<Job, GanetiError>> = Vec::with_capacity(jobs.len());
        let mut accepted = 0;
        for (idx, (id, ops)) in ids.iter().zip(jobs).enumerate() {
            let result = ops.and_then(|mut ops| {
                if many {
                    resolve_relative_dependencies(&mut ops, &ids[..idx])?;
                }
                let summaries: Vec<String> = ops.iter().map(job::op_summary).collect();
                self.check_job(&st, accepted, *id, ops).map_err(|e| {
                    if many {
                        let text = format!("{e}; opcodes {}", summaries.join(", "));
                        GanetiError::msg(e.class, text)
                    } else {
                        e
                    }
                })
            });
            accepted += usize::from(result.is_ok());
            checked.push(result);
        }
        st.queue_size += accepted;
        drop(st);

        let count = checked.len();
        let mut results: Vec<Result<u64, GanetiError>> = Vec::with_capacity(count);
        let mut pending: Vec<(usize, Job)> = Vec::new();
        let mut serial = Some(last);
        let mut serial_failed: Option<GanetiError> = None;
        for (idx, job) in checked.into_iter().enumerate() {
            match job {
                Ok(job) => {
                    // Replaced if the chunk cannot be written.
                    results.push(Ok(job.id));
                    pending.push((idx, job));
                }
                Err(e) => results.push(Err(e)),
            }
            if pending.len() < GROUP_COMMIT_CHUNK && idx + 1 < count {
                continue;
            }
            let mut chunk = std::mem::take(&mut pending);
            if direct && count == 1 && chunk.len() == 1 {
                if let Some((idx, job)) = chunk.pop() {
                    if let Err(e) = self.start_direct(job) {
                        results[idx] = Err(e);
                    }
                }
                break;
            }
            // The serial goes with the first chunk (alone if no job passed
            // its checks); if it failed, so does every job of the group,
            // as in 2.5.2.
            let written = match &serial_failed {
                Some(e) => chunk.iter().map(|_| Err(e.clone())).collect(),
                None => {
                    let (serial_result, written) = self.commit_chunk(
                        serial.take(),
                        chunk.iter().map(|(_, j)| j),
                        &mut Vec::new(),
                    );
                    serial_failed = serial_result.err();
                    written
                }
            };
            let mut queued = Vec::with_capacity(chunk.len());
            let mut st = lock(&self.state);
            for ((idx, job), outcome) in chunk.into_iter().zip(written) {
                if let Err(e) = outcome {
                    st.queue_size = st.queue_size.saturating_sub(1);
                    results[idx] = Err(e);
                    continue;
                }
                log::info!("New job with id {}", job.id);
                queued.push((job.id, job.priority()));
                st.active.insert(job.id, JobEntry::new(job, true));
            }
            drop(st);
            for (id, prio) in queued {
                self.pool.add(id, prio);
            }
        }
        results
    }

    /// Queues a checked job that has no file yet, writes the serial while
    /// the worker gets going, and returns once the job's first write made
    /// it durable: the worker's, or after [`DIRECT_START_WAIT`] (the job
    /// waits for locks, or no worker came) the submitter's own. Then sends
    /// the job file to the master candidates, after the serial. `Err`: the
    /// job's first write (or the serial, before the job was durable)
    /// failed; the job is refused and forgotten.
    fn start_direct(&self, job: Job) -> Result<(), GanetiError> {
        let (id, prio) = (job.id, job.priority());
        let entry = JobEntry::new(job, false);
        lock(&self.state).active.insert(id, Arc::clone(&entry));
        self.pool.add(id, prio);
        let deadline = Instant::now() + DIRECT_START_WAIT;
        // While the worker gets to its first write.
        let serial = self.write_serial(id);
        let mut slot = lock(&entry.slot);
        if let Err(e) = serial {
            if slot.written {
                // The job file is durable: its id cannot be given again
                // (start-up raises the serial to the highest job file).
                log::error!("Job {id}: {e}");
            } else if slot.refused.is_none() {
                log::error!("Job {id}: {e}; refusing the job");
                slot.refused = Some(e);
                self.touched(&entry, &mut slot);
            }
        }
        while !slot.written && slot.refused.is_none() {
            let now = Instant::now();
            if now >= deadline {
                self.save(&entry, &mut slot, true);
                break;
            }
            slot = entry
                .changed
                .wait_timeout(slot, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if slot.replicate_pending {
            slot.replicate_pending = false;
            let path = self.job_path(id);
            match read_job_file(&path) {
                Ok(Some(data)) => self.replicate(&path, &data),
                Ok(None) => log::error!("Job {id}: its file is gone"),
                Err(e) => log::error!("Job {id}: {}", self.io_error("read", &path, e)),
            }
        }
        let refused = slot.refused.clone();
        let replaced = std::mem::take(&mut slot.replaced);
        drop(slot);
        drop(replaced);
        let Some(e) = refused else {
            log::info!("New job with id {id}");
            return Ok(());
        };
        let mut st = lock(&self.state);
        st.active.remove(&id);
        st.queue_size = st.queue_size.saturating_sub(1);
        self.notify_waiters(&mut st, id);
        Err(e)
    }

    /// Writes the serial file durably with `value` (unless it already
    /// holds as much) and sends it to the master candidates.
    fn write_serial(&self, value: u64) -> Result<(), GanetiError> {
        self.commit_chunk(Some(value), std::iter::empty(), &mut Vec::new())
            .0
    }

    /// Writes one chunk of new job files durably, with the serial file
    /// `serial` if given and not overtaken on disk by a later submission,
    /// and replicates what was written, serial first. Returns the serial's
    /// result and one result per job: a job whose file (or the serial)
    /// could not be written has no file left.
    fn commit_chunk<'a>(
        &self,
        serial: Option<u64>,
        jobs: impl Iterator<Item = &'a Job>,
        keep: &mut Vec<std::fs::File>,
    ) -> (Result<(), GanetiError>, Vec<Result<(), GanetiError>>) {
        let contents: Vec<(PathBuf, Vec<u8>)> = jobs
            .map(|job| (self.job_path(job.id), job.to_file()))
            .collect();
        let serial_path = self.serial_path();
        // Held while the serial is written, so that the file only grows.
        let mut on_disk = serial.map(|_| lock(&self.serial));
        let serial = serial.filter(|s| on_disk.as_ref().is_some_and(|d| *s > **d));
        if serial.is_none() {
            on_disk = None;
        }
        let serial_data = serial.map(|s| format!("{s}\n").into_bytes());
        let mut files: Vec<(&Path, &[u8])> = Vec::with_capacity(contents.len() + 1);
        if let Some(data) = &serial_data {
            files.push((&serial_path, data));
        }
        files.extend(contents.iter().map(|(p, d)| (p.as_path(), d.as_slice())));
        let (written, replaced) = fsutil::write_atomic_many_keep(&files, &FileMeta::default());
        keep.extend(replaced);
        let mut written = written.into_iter();
        let mut serial_result = Ok(());
        if let (Some(s), Some(data)) = (serial, &serial_data) {
            serial_result = written
                .next()
                .unwrap_or(Ok(()))
                .map_err(|e| self.io_error("write", &serial_path, e));
            if serial_result.is_ok() {
                if let Some(d) = on_disk.as_mut() {
                    **d = s;
                }
                self.replicate(&serial_path, data);
            }
        }
        drop(on_disk);
        let jobs = contents
            .iter()
            .map(|(path, data)| {
                let r = written
                    .next()
                    .unwrap_or(Ok(()))
                    .map_err(|e| self.io_error("write", path, e))
                    .and(serial_result.clone());
                match r {
                    Ok(()) => {
                        self.replicate(path, data);
                        Ok(())
                    }
                    Err(e) => {
                        // The rename may have happened before a directory
                        // fsync failed: no file for a job that was refused.
                        let _ = std::fs::remove_file(path);
                        Err(e)
                    }
                }
            })
            .collect();
        (serial_result, jobs)
    }

    /// `_SubmitJobUnlocked`'s checks (drain, queue size counting the
    /// `pending` jobs of the same group, priorities, dependencies): the new
    /// job, not written yet.
    fn check_job(
        &self,
        st: &State,
        pending: usize,
        id: u64,
        ops: Vec<Map<String, Value>>,
    ) -> Result<Job, GanetiError> {
        if st.drained {
            return Err(GanetiError::msg(
                "JobQueueDrainError",
                "Job queue is drained, refusing job",
            ));
        }
        if st.queue_size + pending >= JOB_QUEUE_SIZE_HARD_LIMIT {
            return Err(GanetiError::new("JobQueueFull", vec![]));
        }
        for (idx, op) in ops.iter().enumerate() {
            crate::opcodes::check_submit(idx, op)?;
        }
        Job::new(id, ops)
    }

    // ---- finishing, dependencies ----

    /// A job was finalised: forget it and wake the jobs waiting for it.
    pub fn job_finished(&self, id: u64) {
        let mut st = lock(&self.state);
        st.active.remove(&id);
        self.notify_waiters(&mut st, id);
    }

    fn notify_waiters(&self, st: &mut State, id: u64) {
        st.waiters.retain(|_, w| !w.is_empty());
        let Some(waiting) = st.waiters.remove(&id) else {
            return;
        };
        log::debug!(
            "Re-adding {} jobs which were waiting for job {id}",
            waiting.len()
        );
        for w in waiting {
            if let Some(entry) = st.active.get(&w) {
                let prio = lock(&entry.slot).job.priority();
                self.pool.add(w, prio);
            }
        }
    }

    /// The status of a job a dependency names: the active job's, else the
    /// file's (queue, then archive); `None` if it cannot be found or read.
    pub fn dependency_status(&self, st: &State, id: u64) -> Option<Status> {
        if let Some(entry) = st.active.get(&id) {
            return Some(lock(&entry.slot).job.status());
        }
        match self.load_from_disk(id, true) {
            Loaded::Job(job) => Some(job.status()),
            Loaded::Missing => None,
            Loaded::Corrupt(e) => {
                log::error!("Can't load/parse job {id}: {e}");
                None
            }
        }
    }

    // ---- cancel, archive ----

    pub fn cancel_job(&self, id: u64) -> Result<(bool, String), GanetiError> {
        log::info!("Cancelling job {id}");
        let mut st = lock(&self.state);
        self.check_open()?;
        let Some(entry) = st.active.get(&id).cloned() else {
            // Jobs on disk but not in memory are finished.
            return Ok(match self.load_or_move_aside(&mut st, id) {
                Some(_) => (false, format!("Job {id} is no longer waiting in the queue")),
                None => (false, format!("Job {id} not found")),
            });
        };
        let mut slot = lock(&entry.slot);
        let (ok, msg) = slot.job.cancel();
        if !ok {
            log::debug!("{msg}");
            return Ok((ok, msg));
        }
        self.save(&entry, &mut slot, true);
        let finished = slot.job.status().is_final();
        drop(slot);
        if finished {
            st.active.remove(&id);
            self.notify_waiters(&mut st, id);
        } else {
            // Waiting for another job: let a worker finish the cancel now
            // instead of when that job ends.
            let mut was_waiting = false;
            for w in st.waiters.values_mut() {
                was_waiting |= w.remove(&id);
            }
            if was_waiting {
                let prio = lock(&entry.slot).job.priority();
                self.pool.add(id, prio);
            }
        }
        Ok((ok, msg))
    }

    /// The finished job `id` if it is in `queue/` (moving a corrupt file
    /// aside, as `_LoadJobUnlocked`); `Err(())` for a job that exists but
    /// is not finished.
    fn finished_job(&self, st: &mut State, id: u64) -> Result<Option<Job>, ()> {
        if let Some(entry) = st.active.get(&id) {
            let slot = lock(&entry.slot);
            return if slot.job.status().is_final() {
                Ok(Some(slot.job.clone()))
            } else {
                Err(())
            };
        }
        match self.load_or_move_aside(st, id) {
            Some(job) if job.status().is_final() => Ok(Some(job)),
            Some(_) => Err(()),
            None => Ok(None),
        }
    }

    /// Moves finished jobs into the archive (`_ArchiveJobsUnlocked`); the
    /// number moved.
    fn archive_jobs(&self, st: &mut State, ids: &[u64]) -> Result<usize, GanetiError> {
        let pairs: Vec<(PathBuf, PathBuf)> = ids
            .iter()
            .map(|&id| (self.job_path(id), self.archived_path(id)))
            .collect();
        let (moved, result) = self.rename_files(&pairs);
        for id in &ids[..moved] {
            st.active.remove(id);
        }
        log::debug!("Archived jobs {:?}", &ids[..moved]);
        // As 2.5.2, recount from the directory after archiving.
        match self.job_ids() {
            Ok(all) => st.queue_size = all.len(),
            Err(e) => log::error!("Can't list the job queue: {e}"),
        }
        result.map(|()| moved)
    }

    pub fn archive_job(&self, id: u64) -> Result<bool, GanetiError> {
        log::info!("Archiving job {id}");
        let mut st = lock(&self.state);
        self.check_open()?;
        match self.finished_job(&mut st, id) {
            Ok(Some(_)) => Ok(self.archive_jobs(&mut st, &[id])? == 1),
            Ok(None) => {
                log::debug!("Job {id} not found");
                Ok(false)
            }
            Err(()) => {
                log::debug!("Job {id} is not yet done");
                Ok(false)
            }
        }
    }

    pub fn auto_archive_jobs(&self, age: i64, timeout: Duration) -> (usize, usize) {
        log::info!("Archiving jobs with age more than {age} seconds");
        let mut st = lock(&self.state);
        if self.check_open().is_err() {
            return (0, 0);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        // A timeout too large for the clock is no deadline.
        let deadline = Instant::now().checked_add(timeout);
        let ids = match self.job_ids() {
            Ok(ids) => ids,
            Err(e) => {
                log::error!("Can't list the job queue: {e}");
                return (0, 0);
            }
        };
        let mut archived = 0;
        let mut last_touched = 0;
        let mut pending = Vec::new();
        for (idx, &id) in ids.iter().enumerate() {
            last_touched = idx + 1;
            if deadline.is_some_and(|d| Instant::now() > d) {
                break;
            }
            let job = match self.finished_job(&mut st, id) {
                Ok(Some(job)) => job,
                Ok(None) | Err(()) => continue,
            };
            let reference = job
                .end_timestamp
                .or(job.start_timestamp)
                .or(job.received_timestamp)
                .map_or(0, |t| t.0);
            if age == -1 || now - reference as f64 > age as f64 {
                pending.push(id);
                if pending.len() >= ARCHIVE_BATCH {
                    archived += self.archive_counted(&mut st, &std::mem::take(&mut pending));
                }
            }
        }
        if !pending.is_empty() {
            archived += self.archive_counted(&mut st, &pending);
        }
        (archived, ids.len() - last_touched)
    }

    fn archive_counted(&self, st: &mut State, ids: &[u64]) -> usize {
        match self.archive_jobs(st, ids) {
            Ok(n) => n,
            Err(e) => {
                log::error!("Archiving jobs failed: {e}");
                0
            }
        }
    }

    // ---- queries, drain ----

    /// A job for reading: the active one's current state, else the file.
    pub fn read_job(&self, id: u64, try_archived: bool) -> Option<Job> {
        let entry = lock(&self.state).active.get(&id).cloned();
        if let Some(entry) = entry {
            return Some(lock(&entry.slot).job.clone());
        }
        match self.load_from_disk(id, try_archived) {
            Loaded::Job(job) => Some(job),
            Loaded::Missing => None,
            Loaded::Corrupt(e) => {
                log::error!("Can't load/parse job {id}: {e}");
                None
            }
        }
    }

    pub fn query_jobs(&self, ids: &[u64], fields: &[String]) -> Result<Vec<Value>, GanetiError> {
        let (ids, list_all) = if ids.is_empty() {
            let all = self
                .job_ids()
                .map_err(|e| self.io_error("list", &self.dir, e))?;
            (all, true)
        } else {
            (ids.to_vec(), false)
        };
        let mut rows = Vec::with_capacity(ids.len());
        let mut budget = job::MAX_ANSWER;
        for id in ids {
            match self.read_job(id, true) {
                Some(job) => rows.push(Value::Array(job.info_within(fields, &mut budget)?)),
                None if !list_all => rows.push(Value::Null),
                None => {}
            }
        }
        Ok(rows)
    }

    pub fn set_drain_flag(&self, on: bool) -> Result<(), GanetiError> {
        let mut st = lock(&self.state);
        self.check_open()?;
        let path = self.dir.join("drain");
        if on {
            self.write_file(&path, b"", false)?;
        } else {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    fsutil::sync_dir(&self.dir).map_err(|e| self.io_error("sync", &self.dir, e))?
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io_error("remove", &path, e)),
            }
        }
        st.drained = on;
        Ok(())
    }

    pub fn drained(&self) -> bool {
        lock(&self.state).drained
    }

    pub fn with_queue_files<T>(&self, f: impl FnOnce(Vec<(String, Vec<u8>)>) -> T) -> T {
        let st = lock(&self.state);
        let mut files = Vec::new();
        files.push((
            self.wire(&self.serial_path()),
            format!("{}\n", st.last_serial).into_bytes(),
        ));
        for id in self.job_ids().unwrap_or_default() {
            let path = self.job_path(id);
            // What is on disk, as 2.5.2's `AddNode` reads it: an active
            // job's state not written yet (`waiting`, see `workers`)
            // reaches the candidate with the job's next write.
            if let Some(data) = read_job_file(&path).ok().flatten() {
                files.push((self.wire(&path), data));
            }
        }
        f(files)
    }

    /// Wakes every `WaitForJobChange` (at shutdown).
    pub fn wake_all_waiters(&self) {
        let st = lock(&self.state);
        for entry in st.active.values() {
            let mut slot = lock(&entry.slot);
            self.touched(entry, &mut slot);
        }
    }
}

/// Checks the opcodes of a submitted job (2.5.2's `LoadOpCode`).
fn load_ops(ops: Vec<Value>) -> Result<Vec<Map<String, Value>>, GanetiError> {
    ops.into_iter()
        .map(|op| job::load_opcode(op).map_err(|e| GanetiError::msg("GenericError", e)))
        .collect()
}

/// Replaces relative dependencies (negative ids) by the ids of the jobs
/// submitted before in the same call (`_ResolveJobDependencies`).
fn resolve_relative_dependencies(
    ops: &mut [Map<String, Value>],
    earlier: &[u64],
) -> Result<(), GanetiError> {
    for op in ops.iter_mut() {
        let Some(Value::Array(deps)) = op.get_mut(job::DEPEND_ATTR) else {
            continue;
        };
        for dep in deps.iter_mut() {
            let Some(pair) = dep.as_array_mut() else {
                continue;
            };
            let Some(rel) = pair.first().and_then(Value::as_i64).filter(|r| *r < 0) else {
                continue;
            };
            let index = i64::try_from(earlier.len()).unwrap_or(i64::MAX) + rel;
            let Some(id) = usize::try_from(index).ok().and_then(|i| earlier.get(i)) else {
                return Err(GanetiError::msg(
                    "GenericError",
                    format!("Unable to resolve relative job ID {rel}"),
                ));
            };
            pair[0] = Value::String(id.to_string());
        }
    }
    Ok(())
}

/// The ids of `job-<id>` files in `dir` (no hidden files, canonical names
/// only), in numeric order.
fn list_job_ids(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(digits) = name.to_str().and_then(|n| n.strip_prefix("job-")) else {
            continue;
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        match job::parse_job_id(digits) {
            Some(id) if id.to_string() == digits => ids.push(id),
            _ => log::warn!(
                "Ignoring {}: not a job file name this queue writes",
                dir.join(&name).display()
            ),
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Reads a job file without following a symlink, refusing anything but a
/// regular file of at most [`MAX_JOB_FILE`] bytes. `Ok(None)`: no file.
fn read_job_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the job file is a symbolic link",
            ))
        }
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the job file is not a regular file",
        ));
    }
    let mut data = Vec::new();
    file.take(MAX_JOB_FILE as u64 + 1).read_to_end(&mut data)?;
    if data.len() > MAX_JOB_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the job file is larger than {MAX_JOB_FILE} bytes"),
        ));
    }
    Ok(Some(data))
}

/// Reads a small text file (`version`, `serial`).
fn read_small(path: &Path) -> io::Result<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut text = String::new();
    file.take(64).read_to_string(&mut text)?;
    Ok(text)
}

/// Renames `old` to `new`, creating `new`'s directory, and fsyncs both
/// directories. An error means the file was not renamed: once the rename
/// is done, a failed directory fsync is only logged, since the file has
/// moved for every reader (and the master candidates must follow).
fn rename_durably(old: &Path, new: &Path) -> io::Result<()> {
    let new_dir = new.parent().unwrap_or(Path::new("/"));
    fsutil::create_dirs(new_dir, DIR_MODE)?;
    std::fs::rename(old, new)?;
    for dir in [old.parent().unwrap_or(Path::new("/")), new_dir] {
        if let Err(e) = fsutil::sync_dir(dir) {
            log::error!(
                "Moved {} to {} but could not fsync {}: {e}; the move may not survive a crash",
                old.display(),
                new.display(),
                dir.display()
            );
        }
    }
    Ok(())
}
