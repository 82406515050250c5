//! `WaitForJobChange` (spec 2.3): 2.5.2 watched the job file with inotify;
//! here the job's condition variable is notified by every change (status,
//! log message, result), so the answer leaves as soon as the change is made.
//! Only a change that brought nothing but log messages waits
//! [`CHANGE_BATCH_DELAY`] for more of them (2.5.2 slept 0.1 s before every
//! re-check after the first, whatever had changed).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::job::{Job, Status};
use super::queue::{lock, Inner, Loaded};
use super::{CHANGE_BATCH_DELAY, JOB_NOTCHANGED, MAX_WAIT_TIMEOUT};
use crate::errors::GanetiError;

/// The wait actually granted for a client's `timeout`.
pub fn effective_timeout(timeout: Duration) -> Duration {
    timeout.min(MAX_WAIT_TIMEOUT)
}

/// `_JobChangesChecker`: `[job_info, log_entries]` when the client should
/// hear about the job now, `None` to keep waiting.
fn check(
    job: &Job,
    fields: &[String],
    prev_job_info: &Value,
    prev_log_serial: Option<u64>,
) -> Result<Option<Value>, GanetiError> {
    let status = job.status();
    let info = Value::Array(job.info(fields)?);
    let entries = job.log_entries(prev_log_serial);
    let waiting = matches!(status, Status::Queued | Status::Waiting | Status::Running);
    if !waiting || info != *prev_job_info || !entries.is_empty() {
        return Ok(Some(json!([info, entries])));
    }
    Ok(None)
}

/// Whether the news for the client are log messages alone: the job is
/// unfinished, its requested fields are what the client has, and there are
/// new log entries. Only then is it worth lingering [`CHANGE_BATCH_DELAY`]
/// for more; a status change or the end of the job is answered at once.
fn only_new_log_entries(
    job: &Job,
    fields: &[String],
    prev_job_info: &Value,
    prev_log_serial: Option<u64>,
) -> Result<bool, GanetiError> {
    if !matches!(
        job.status(),
        Status::Queued | Status::Waiting | Status::Running
    ) {
        return Ok(false);
    }
    Ok(Value::Array(job.info(fields)?) == *prev_job_info
        && !job.log_entries(prev_log_serial).is_empty())
}

impl Inner {
    pub fn wait_for_job_change(
        &self,
        id: u64,
        fields: &[String],
        prev_job_info: &Value,
        prev_log_serial: Option<u64>,
        timeout: Duration,
    ) -> Result<Value, GanetiError> {
        let deadline = Instant::now() + effective_timeout(timeout);
        let entry = lock(&self.state).active.get(&id).cloned();
        let Some(entry) = entry else {
            // Not running: only `queue/job-<id>` counts (archived jobs are
            // not looked at); a missing or unreadable file is null.
            let job = match self.load_from_disk(id, false) {
                Loaded::Job(job) => job,
                Loaded::Missing => return Ok(Value::Null),
                Loaded::Corrupt(e) => {
                    log::error!("Can't load/parse job {id}: {e}");
                    return Ok(Value::Null);
                }
            };
            if let Some(answer) = check(&job, fields, prev_job_info, prev_log_serial)? {
                return Ok(answer);
            }
            // An unfinished job file nobody runs never changes.
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            return Ok(json!(JOB_NOTCHANGED));
        };
        let mut slot = lock(&entry.slot);
        loop {
            if let Some(answer) = check(&slot.job, fields, prev_job_info, prev_log_serial)? {
                return Ok(answer);
            }
            let seen = slot.generation;
            while slot.generation == seen {
                let now = Instant::now();
                if now >= deadline || self.closed.load(std::sync::atomic::Ordering::SeqCst) {
                    return Ok(json!(JOB_NOTCHANGED));
                }
                slot = entry
                    .changed
                    .wait_timeout(slot, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if !only_new_log_entries(&slot.job, fields, prev_job_info, prev_log_serial)? {
                // A new status (or other field), the end of the job, or
                // nothing the client asked about: check at once.
                continue;
            }
            // Only log messages: let a burst of them settle into one answer.
            drop(slot);
            let pause = CHANGE_BATCH_DELAY.min(deadline.saturating_duration_since(Instant::now()));
            std::thread::sleep(pause);
            slot = lock(&entry.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jqueue::job::{self, LogEntry};

    #[test]
    fn only_log_messages_linger() {
        let mut input = serde_json::Map::new();
        input.insert("OP_ID".into(), json!("OP_TEST_DELAY"));
        let mut job = Job::new(1, vec![input]).unwrap();
        let fields = vec!["status".to_string()];
        let queued = json!(["queued"]);
        // Nothing new: no linger (the waiter just goes on waiting).
        assert!(!only_new_log_entries(&job, &fields, &queued, None).unwrap());
        // A new status: answered at once.
        job.ops[0].status = Status::Running;
        assert!(!only_new_log_entries(&job, &fields, &queued, None).unwrap());
        // Same status, a new log message: linger for more.
        let running = json!(["running"]);
        job.ops[0].log.push(LogEntry {
            serial: 1,
            time: job::now(),
            log_type: "message".into(),
            message: json!("m1"),
        });
        job.log_serial = 1;
        assert!(only_new_log_entries(&job, &fields, &running, None).unwrap());
        assert!(only_new_log_entries(&job, &fields, &running, Some(0)).unwrap());
        assert!(!only_new_log_entries(&job, &fields, &running, Some(1)).unwrap());
        // The end of the job: at once, log messages or not.
        job.ops[0].status = Status::Success;
        assert!(!only_new_log_entries(&job, &fields, &json!(["success"]), None).unwrap());
    }

    #[test]
    fn timeout_is_capped() {
        assert_eq!(
            effective_timeout(Duration::from_secs(29)),
            Duration::from_secs(29)
        );
        assert_eq!(effective_timeout(MAX_WAIT_TIMEOUT), MAX_WAIT_TIMEOUT);
        assert_eq!(
            effective_timeout(MAX_WAIT_TIMEOUT + Duration::from_secs(1)),
            MAX_WAIT_TIMEOUT
        );
    }
}
