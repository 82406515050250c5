//! Talking to the master daemon as 2.5.2's `cli.py` does: `GetClient`
//! (with its friendly errors when no master answers), `SubmitOpCode`,
//! `SubmitOrSend` (`--submit`), `SetGenericOpcodeOpts` (`-d`, `--dry-run`,
//! `--priority`) and `GenericPollJob`, which follows a job with
//! `WaitForJobChange`, prints its log (`<ctime> <message>`) and turns its
//! result into the opcode results or the job's error.

use serde_json::{Map, Value};

use super::args::{Invocation, DRY_RUN_OPT, PRIORITIES, PRIORITY_OPT};
use super::format::{ctime, format_log_message, py_str, to_stderr, to_stdout};
use super::CliError;
use crate::errors::GanetiError;
use crate::luxi::{Client, JobChange, LogEntry, LuxiError, WFJC_TIMEOUT};
use crate::paths::{self, Paths};
use crate::ssconf;

/// `GetClient`: a connection to the master socket. When nobody listens,
/// says why if ssconf can tell: not initialised, or another node is the
/// master.
pub fn get_client(paths: &Paths) -> Result<Client, CliError> {
    match Client::connect(&paths.master_socket()) {
        Ok(c) => Ok(c),
        Err(LuxiError::NoMaster(p)) => {
            let master = ssconf::read(paths, "master_node").map_err(|_| {
                CliError::prereq1(
                    "Cluster not initialized or this machine is not part of a cluster",
                )
            })?;
            let me = paths::node_name().map_err(|e| CliError::Other(e.to_string()))?;
            if master != me {
                return Err(CliError::prereq1(format!(
                    "This is not the master node, please connect to node '{master}' and \
                     rerun the command"
                )));
            }
            Err(CliError::Luxi(LuxiError::NoMaster(p)))
        }
        Err(e) => Err(e.into()),
    }
}

/// `SetGenericOpcodeOpts`: `debug_level` from `-d`, `dry_run` when the
/// command has `--dry-run`, `priority` when `--priority` was given.
pub fn set_generic_opts(op: &mut Map<String, Value>, inv: &Invocation) {
    op.insert("debug_level".into(), Value::from(inv.debug()));
    if inv.has(DRY_RUN_OPT.long) {
        op.insert("dry_run".into(), Value::Bool(inv.flag(DRY_RUN_OPT.long)));
    }
    if let Some(name) = inv.value(PRIORITY_OPT.long) {
        if let Some((_, p)) = PRIORITIES.iter().find(|(n, _)| *n == name) {
            op.insert("priority".into(), Value::from(*p));
        }
    }
}

/// An opcode object `{"OP_ID": id, ...params}`.
pub fn opcode(id: &str, params: Value) -> Map<String, Value> {
    let mut op = match params {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    op.insert("OP_ID".into(), Value::String(id.into()));
    op
}

/// What the job poller reports (`JobPollReportCbBase`).
pub trait Reporter {
    /// A new log entry of the job.
    fn log_message(&mut self, job_id: u64, entry: &LogEntry);
    /// `WaitForJobChange` timed out; `status` is the last one seen.
    fn not_changed(&mut self, job_id: u64, status: Option<&str>);
}

/// `StdioJobPollReportCb`: log lines to stdout, waiting notices (once
/// each) to stderr.
#[derive(Debug, Default)]
pub struct StdioReporter {
    notified_queued: bool,
    notified_waitlock: bool,
}

impl Reporter for StdioReporter {
    fn log_message(&mut self, _job_id: u64, e: &LogEntry) {
        to_stdout(&format!(
            "{} {}",
            ctime(e.timestamp.0),
            format_log_message(&e.log_type, &e.message)
        ));
    }

    fn not_changed(&mut self, job_id: u64, status: Option<&str>) {
        match status {
            Some("queued") if !self.notified_queued => {
                to_stderr(&format!("Job {job_id} is waiting in queue"));
                self.notified_queued = true;
            }
            Some("waiting") if !self.notified_waitlock => {
                to_stderr(&format!(
                    "Job {job_id} is trying to acquire all necessary locks"
                ));
                self.notified_waitlock = true;
            }
            _ => {}
        }
    }
}

fn job_lost(job_id: u64) -> CliError {
    CliError::Ganeti(GanetiError::msg(
        "JobLost",
        format!("Job with id {job_id} lost"),
    ))
}

fn bad_answer(what: &str, v: &Value) -> CliError {
    CliError::Luxi(LuxiError::Protocol(format!(
        "Invalid answer to {what}: {}",
        py_str(v)
    )))
}

/// `GenericPollJob`: waits for the job to finish, reporting its log, and
/// returns the opcode results; a failed or canceled job is its error.
pub fn poll_job(
    cl: &mut Client,
    job_id: u64,
    reporter: &mut dyn Reporter,
) -> Result<Vec<Value>, CliError> {
    let mut prev_info = Value::Null;
    let mut prev_serial: Option<u64> = None;
    let mut status: Option<String> = None;
    loop {
        match cl.wait_for_job_change(job_id, &["status"], &prev_info, prev_serial, WFJC_TIMEOUT)? {
            JobChange::Lost => return Err(job_lost(job_id)),
            JobChange::NoChange => reporter.not_changed(job_id, status.as_deref()),
            JobChange::Changed {
                job_info,
                log_entries,
            } => {
                let [Value::String(s)] = job_info.as_slice() else {
                    return Err(bad_answer("WaitForJobChange", &Value::Array(job_info)));
                };
                status = Some(s.clone());
                if !log_entries.is_empty() {
                    for e in &log_entries {
                        reporter.log_message(job_id, e);
                        prev_serial = Some(prev_serial.map_or(e.serial, |p| p.max(e.serial)));
                    }
                } else if matches!(s.as_str(), "success" | "error" | "canceling" | "canceled") {
                    break;
                }
                prev_info = Value::Array(job_info);
            }
        }
    }
    let rows = cl.query_jobs(&[job_id], &["status", "opstatus", "opresult"])?;
    let Some(Some(row)) = rows.into_iter().next() else {
        return Err(job_lost(job_id));
    };
    job_outcome(&row)
}

/// The end of `GenericPollJob`: from `[status, opstatus, opresult]`, the
/// results or the error.
pub fn job_outcome(row: &[Value]) -> Result<Vec<Value>, CliError> {
    let row_value = || Value::Array(row.to_vec());
    let [status, opstatus, result] = row else {
        return Err(bad_answer("QueryJobs", &row_value()));
    };
    let results = result.as_array().cloned().unwrap_or_default();
    match status.as_str() {
        Some("success") => return Ok(results),
        Some("canceling") | Some("canceled") => {
            return Err(CliError::exec("Job was canceled"));
        }
        _ => {}
    }
    let statuses = opstatus.as_array().cloned().unwrap_or_default();
    let mut has_ok = false;
    for (idx, (st, msg)) in statuses.iter().zip(&results).enumerate() {
        match st.as_str() {
            Some("success") => has_ok = true,
            Some("error") => {
                if let Some(e) = GanetiError::decode(msg) {
                    return Err(CliError::Ganeti(e));
                }
                if has_ok {
                    return Err(CliError::exec(format!(
                        "partial failure (opcode {idx}): {}",
                        py_str(msg)
                    )));
                }
                return Err(CliError::exec(py_str(msg)));
            }
            _ => {}
        }
    }
    Err(CliError::exec(py_str(result)))
}

/// A job id from the command line: decimal digits only.
pub fn parse_job_id(arg: &str) -> Result<u64, CliError> {
    if arg.is_empty() || arg.len() > 20 || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CliError::prereq1(format!("Invalid job ID '{arg}'")));
    }
    arg.parse()
        .map_err(|_| CliError::prereq1(format!("Invalid job ID '{arg}'")))
}

/// `SendJob`: submits one job of the given opcodes.
pub fn send_job(cl: &mut Client, ops: Vec<Map<String, Value>>) -> Result<u64, CliError> {
    Ok(cl.submit_job(ops.into_iter().map(Value::Object).collect())?)
}

/// `SubmitOpCode`: generic options applied, submitted, followed to the
/// end with the log printed; the first opcode's result.
pub fn submit_opcode(
    inv: &Invocation,
    cl: Option<Client>,
    mut op: Map<String, Value>,
) -> Result<Value, CliError> {
    let mut cl = match cl {
        Some(c) => c,
        None => get_client(&inv.paths)?,
    };
    set_generic_opts(&mut op, inv);
    let job_id = send_job(&mut cl, vec![op])?;
    let results = poll_job(&mut cl, job_id, &mut StdioReporter::default())?;
    Ok(results.into_iter().next().unwrap_or(Value::Null))
}

/// `SubmitOrSend`: with `--submit` only queue the job (the caller's error
/// path prints `JobID: <id>`), else [`submit_opcode`].
pub fn submit_or_send(inv: &Invocation, mut op: Map<String, Value>) -> Result<Value, CliError> {
    if inv.flag(super::args::SUBMIT_OPT.long) {
        let mut cl = get_client(&inv.paths)?;
        set_generic_opts(&mut op, inv);
        let id = send_job(&mut cl, vec![op])?;
        return Err(CliError::JobSubmitted(id));
    }
    submit_opcode(inv, None, op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::format::format_error;
    use serde_json::json;

    fn outcome(v: Value) -> Result<Vec<Value>, String> {
        let row = v.as_array().unwrap().clone();
        job_outcome(&row).map_err(|e| format_error(&e).1)
    }

    #[test]
    fn job_outcomes_as_2_5_2() {
        assert_eq!(
            outcome(json!(["success", ["success"], [null]])),
            Ok(vec![json!(null)])
        );
        assert_eq!(
            outcome(json!([
                "canceled",
                ["canceled"],
                ["Job canceled by request"]
            ])),
            Err("Failure: command execution error:\nJob was canceled".into())
        );
        assert_eq!(
            outcome(json!([
                "error",
                ["error"],
                [[
                    "OpPrereqError",
                    ["Duration must be positive", "wrong_input"]
                ]]
            ])),
            Err("Failure: prerequisites not met for this operation:\n\
                 error type: wrong_input, error details:\nDuration must be positive"
                .into())
        );
        assert_eq!(
            outcome(json!([
                "error",
                ["success", "error"],
                [null, "Unclean master daemon shutdown"]
            ])),
            Err("Failure: command execution error:\n\
                 partial failure (opcode 1): Unclean master daemon shutdown"
                .into())
        );
        assert_eq!(
            outcome(json!(["error", ["error"], ["boom"]])),
            Err("Failure: command execution error:\nboom".into())
        );
        assert!(outcome(json!(["success"])).is_err());
    }

    #[test]
    fn job_ids() {
        assert_eq!(parse_job_id("42").unwrap(), 42);
        for bad in ["", "4a", "-1", "1.0", "99999999999999999999999"] {
            let e = format_error(&parse_job_id(bad).unwrap_err()).1;
            assert!(e.ends_with(&format!("Invalid job ID '{bad}'")), "{e}");
        }
    }

    #[test]
    fn opcode_objects() {
        let op = opcode("OP_TEST_DELAY", json!({"duration": 1.0}));
        assert_eq!(
            Value::Object(op),
            json!({"OP_ID": "OP_TEST_DELAY", "duration": 1.0})
        );
    }
}
