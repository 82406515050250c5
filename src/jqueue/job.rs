//! One job as 2.5.2 keeps it (`_QueuedJob`, `_QueuedOpCode`): the model,
//! the job-status and job-priority functions, the job file format (spec
//! 3.3) and the `QueryJobs` fields (spec 2.9).
//!
//! Loading is stricter than 2.5.2's `Restore` (which accepted anything with
//! the right keys): a file is corrupt unless every value has the type 2.5.2
//! writes, its `id` is the one in its name, it has at least one opcode and
//! every priority lies in [-20, 19]. Corrupt files are moved aside by the
//! queue (spec 3.15) instead of crashing a worker later.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::errors::GanetiError;
use crate::opcodes;
use crate::pyjson;
use crate::pytext::{self, Strings};

/// `OP_PRIO_HIGHEST` .. `OP_PRIO_LOWEST`: the internal priority range.
pub const PRIO_HIGHEST: i32 = opcodes::OP_PRIO_HIGHEST;
pub const PRIO_LOWEST: i32 = opcodes::OP_PRIO_LOWEST;
/// `OP_PRIO_DEFAULT`.
pub const PRIO_DEFAULT: i32 = opcodes::OP_PRIO_DEFAULT;
/// `OP_PRIO_SUBMIT_VALID`, in the order 2.5.2's frozenset iterates it (the
/// order its error message lists them).
pub const PRIO_SUBMIT_VALID: [i32; 3] = opcodes::OP_PRIO_SUBMIT_VALID;
/// The opcode parameter naming dependencies (`opcodes.DEPEND_ATTR`).
pub const DEPEND_ATTR: &str = "depends";

/// Result of opcodes cancelled while queued (and of those after a
/// cancelled one).
pub const CANCELED_RESULT: &str = "Job canceled by request";
/// Result of the opcodes after a failed one.
pub const PRECEDING_FAILED: &str = "Preceding opcode failed";
/// Result of unfinished opcodes of a job that was running when the master
/// stopped.
pub const UNCLEAN_SHUTDOWN: &str = "Unclean master daemon shutdown";

/// Most bytes of JSON one `QueryJobs` or `WaitForJobChange` answer may
/// carry in job fields: what a LUXI client reads at most
/// ([`crate::luxi::MAX_RESPONSE`]).
pub const MAX_ANSWER: usize = crate::luxi::MAX_RESPONSE;

/// The error for an answer over [`MAX_ANSWER`] (2.5.2 had no limit).
pub fn answer_too_large() -> GanetiError {
    GanetiError::msg(
        "JobQueueError",
        format!("The answer would be larger than {MAX_ANSWER} bytes; ask for fewer jobs or fields"),
    )
}

/// The length of a value's compact JSON, without building the text.
fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

/// `[seconds, microseconds]`, as `utils.SplitTime(time.time())`.
pub type Timestamp = (i64, i64);

/// Now, split like 2.5.2's `TimeStampNow`.
pub fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, i64::from(d.subsec_micros()))
}

/// Opcode and job statuses (the same seven strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Queued,
    Waiting,
    Canceling,
    Running,
    Canceled,
    Success,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Waiting => "waiting",
            Status::Canceling => "canceling",
            Status::Running => "running",
            Status::Canceled => "canceled",
            Status::Success => "success",
            Status::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "queued" => Status::Queued,
            "waiting" => Status::Waiting,
            "canceling" => Status::Canceling,
            "running" => Status::Running,
            "canceled" => Status::Canceled,
            "success" => Status::Success,
            "error" => Status::Error,
            _ => return None,
        })
    }

    /// `OPS_FINALIZED` / `JOBS_FINALIZED`.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Canceled | Status::Success | Status::Error)
    }
}

/// One log entry: `[serial, [sec, usec], log_type, message]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub serial: u64,
    pub time: Timestamp,
    pub log_type: String,
    pub message: Value,
}

impl LogEntry {
    pub fn to_value(&self) -> Value {
        json!([
            self.serial,
            [self.time.0, self.time.1],
            self.log_type,
            self.message
        ])
    }
}

/// `_QueuedOpCode`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedOp {
    /// The opcode object, `OP_ID` included.
    pub input: Map<String, Value>,
    pub status: Status,
    pub result: Value,
    pub log: Vec<LogEntry>,
    pub priority: i32,
    pub start_timestamp: Option<Timestamp>,
    pub exec_timestamp: Option<Timestamp>,
    pub end_timestamp: Option<Timestamp>,
}

impl QueuedOp {
    /// A fresh opcode: queued, with the priority its input asks for.
    pub fn new(input: Map<String, Value>) -> QueuedOp {
        let priority = input
            .get("priority")
            .and_then(Value::as_i64)
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or(PRIO_DEFAULT);
        QueuedOp {
            input,
            status: Status::Queued,
            result: Value::Null,
            log: Vec::new(),
            priority,
            start_timestamp: None,
            exec_timestamp: None,
            end_timestamp: None,
        }
    }

    pub fn op_id(&self) -> &str {
        self.input
            .get("OP_ID")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// `_QueuedJob` (its persistent part).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: u64,
    pub received_timestamp: Option<Timestamp>,
    pub start_timestamp: Option<Timestamp>,
    pub end_timestamp: Option<Timestamp>,
    pub ops: Vec<QueuedOp>,
    /// Highest log serial handed out (not stored; recomputed on load).
    pub log_serial: u64,
}

/// Why a job file could not be loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct Corrupt(pub String);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Job {
    /// A new job, received now. 2.5.2's `_QueuedJob.__init__`.
    pub fn new(id: u64, ops: Vec<Map<String, Value>>) -> Result<Job, GanetiError> {
        if ops.is_empty() {
            return Err(GanetiError::msg(
                "GenericError",
                "A job needs at least one opcode",
            ));
        }
        Ok(Job {
            id,
            received_timestamp: Some(now()),
            start_timestamp: None,
            end_timestamp: None,
            ops: ops.into_iter().map(QueuedOp::new).collect(),
            log_serial: 0,
        })
    }

    /// `CalcStatus` (spec 3.4).
    pub fn status(&self) -> Status {
        let mut status = Status::Queued;
        let mut all_success = true;
        for op in &self.ops {
            if op.status == Status::Success {
                continue;
            }
            all_success = false;
            match op.status {
                Status::Queued | Status::Success => {}
                Status::Waiting => status = Status::Waiting,
                Status::Running => status = Status::Running,
                Status::Canceling | Status::Error | Status::Canceled => {
                    status = op.status;
                    break;
                }
            }
        }
        if all_success {
            Status::Success
        } else {
            status
        }
    }

    /// `CalcPriority`: the lowest priority number of the unfinished
    /// opcodes, the default when all are finished.
    pub fn priority(&self) -> i32 {
        self.ops
            .iter()
            .filter(|op| !op.status.is_final())
            .map(|op| op.priority)
            .min()
            .unwrap_or(PRIO_DEFAULT)
    }

    /// `MarkUnfinishedOps`.
    pub fn mark_unfinished(&mut self, status: Status, result: Value) {
        for op in self.ops.iter_mut().filter(|op| !op.status.is_final()) {
            op.status = status;
            op.result = result.clone();
        }
    }

    /// `Finalize`.
    pub fn finalize(&mut self) {
        self.end_timestamp = Some(now());
    }

    /// `_QueuedJob.Cancel`: `(success, message)`.
    pub fn cancel(&mut self) -> (bool, String) {
        match self.status() {
            Status::Queued => {
                self.mark_unfinished(Status::Canceled, json!(CANCELED_RESULT));
                self.finalize();
                (true, format!("Job {} canceled", self.id))
            }
            Status::Waiting => {
                self.mark_unfinished(Status::Canceling, Value::Null);
                (true, format!("Job {} will be canceled", self.id))
            }
            _ => (
                false,
                format!("Job {} is no longer waiting in the queue", self.id),
            ),
        }
    }

    /// `GetLogEntries(newer_than)`, in opcode then log order.
    pub fn log_entries(&self, newer_than: Option<u64>) -> Vec<Value> {
        self.ops
            .iter()
            .flat_map(|op| op.log.iter())
            .filter(|e| newer_than.map_or(true, |n| e.serial > n))
            .map(LogEntry::to_value)
            .collect()
    }

    /// `GetInfo(fields)`: one value per field; an unknown field is
    /// `OpExecError("Invalid self query field '<f>'")`. At most
    /// [`MAX_ANSWER`] bytes of JSON.
    pub fn info(&self, fields: &[String]) -> Result<Vec<Value>, GanetiError> {
        self.info_within(fields, &mut MAX_ANSWER.clone())
    }

    /// [`Job::info`] drawing the JSON size of every value from `budget`
    /// (shared by the rows of one answer); past it the answer is refused
    /// ([`answer_too_large`]), so a request naming a large field (or job)
    /// many times cannot make the master build gigabytes.
    pub fn info_within(
        &self,
        fields: &[String],
        budget: &mut usize,
    ) -> Result<Vec<Value>, GanetiError> {
        let mut row = Vec::with_capacity(fields.len().min(64));
        for field in fields {
            let value = self.field(field)?;
            // The value and a separator.
            let size = json_len(&value) + 1;
            *budget = budget.checked_sub(size).ok_or_else(answer_too_large)?;
            row.push(value);
        }
        Ok(row)
    }

    /// One `GetInfo` field.
    fn field(&self, field: &str) -> Result<Value, GanetiError> {
        let ts = |t: &Option<Timestamp>| t.map_or(Value::Null, |(s, u)| json!([s, u]));
        let per_op = |f: &dyn Fn(&QueuedOp) -> Value| -> Value {
            Value::Array(self.ops.iter().map(f).collect())
        };
        Ok(match field {
            "id" => json!(self.id.to_string()),
            "status" => json!(self.status().as_str()),
            "priority" => json!(self.priority()),
            "ops" => per_op(&|op| Value::Object(op.input.clone())),
            "opresult" => per_op(&|op| op.result.clone()),
            "opstatus" => per_op(&|op| json!(op.status.as_str())),
            "oplog" => per_op(&|op| Value::Array(op.log.iter().map(LogEntry::to_value).collect())),
            "opstart" => per_op(&|op| ts(&op.start_timestamp)),
            "opexec" => per_op(&|op| ts(&op.exec_timestamp)),
            "opend" => per_op(&|op| ts(&op.end_timestamp)),
            "oppriority" => per_op(&|op| json!(op.priority)),
            "received_ts" => ts(&self.received_timestamp),
            "start_ts" => ts(&self.start_timestamp),
            "end_ts" => ts(&self.end_timestamp),
            "summary" => per_op(&|op| json!(op_summary(&op.input))),
            other => {
                return Err(GanetiError::exec(format!(
                    "Invalid self query field '{other}'"
                )))
            }
        })
    }

    /// `Serialize()`: the object written to the job file (2.5.2 writes the
    /// id as a string).
    pub fn to_value(&self) -> Value {
        let ts = |t: &Option<Timestamp>| t.map_or(Value::Null, |(s, u)| json!([s, u]));
        let ops: Vec<Value> = self
            .ops
            .iter()
            .map(|op| {
                json!({
                    "input": Value::Object(op.input.clone()),
                    "status": op.status.as_str(),
                    "result": op.result,
                    "log": op.log.iter().map(LogEntry::to_value).collect::<Vec<_>>(),
                    "start_timestamp": ts(&op.start_timestamp),
                    "exec_timestamp": ts(&op.exec_timestamp),
                    "end_timestamp": ts(&op.end_timestamp),
                    "priority": op.priority,
                })
            })
            .collect();
        json!({
            "id": self.id.to_string(),
            "ops": ops,
            "start_timestamp": ts(&self.start_timestamp),
            "end_timestamp": ts(&self.end_timestamp),
            "received_timestamp": ts(&self.received_timestamp),
        })
    }

    /// The job file's bytes: `DumpJson(Serialize(), indent=False)`.
    pub fn to_file(&self) -> Vec<u8> {
        pyjson::dumps(&self.to_value(), pyjson::Options::COMPACT).into_bytes()
    }

    /// Loads a job file; `id` is the id in the file's name.
    pub fn parse(data: &[u8], id: u64) -> Result<Job, Corrupt> {
        let bad = |what: &str| Corrupt(what.to_string());
        if data.is_empty() {
            return Err(bad("the file is empty"));
        }
        let value: Value =
            serde_json::from_slice(data).map_err(|e| Corrupt(format!("invalid JSON: {e}")))?;
        let obj = value.as_object().ok_or_else(|| bad("not a JSON object"))?;
        let file_id = obj
            .get("id")
            .and_then(job_id_from_value)
            .ok_or_else(|| bad("'id' is not a job id"))?;
        if file_id != id {
            return Err(Corrupt(format!("the file of job {id} holds job {file_id}")));
        }
        let ops = obj
            .get("ops")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("'ops' is not a list"))?;
        if ops.is_empty() {
            return Err(bad("the job has no opcodes"));
        }
        let mut job = Job {
            id,
            received_timestamp: parse_ts(obj.get("received_timestamp"), "received_timestamp")?,
            start_timestamp: parse_ts(obj.get("start_timestamp"), "start_timestamp")?,
            end_timestamp: parse_ts(obj.get("end_timestamp"), "end_timestamp")?,
            ops: Vec::with_capacity(ops.len()),
            log_serial: 0,
        };
        for (idx, op) in ops.iter().enumerate() {
            let op = parse_op(op).map_err(|Corrupt(e)| Corrupt(format!("opcode {idx}: {e}")))?;
            for entry in &op.log {
                job.log_serial = job.log_serial.max(entry.serial);
            }
            job.ops.push(op);
        }
        Ok(job)
    }
}

fn parse_ts(v: Option<&Value>, name: &str) -> Result<Option<Timestamp>, Corrupt> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => match a.as_slice() {
            [s, u] => match (s.as_i64(), u.as_i64()) {
                (Some(s), Some(u)) => Ok(Some((s, u))),
                _ => Err(Corrupt(format!("'{name}' is not [seconds, microseconds]"))),
            },
            _ => Err(Corrupt(format!("'{name}' is not [seconds, microseconds]"))),
        },
        Some(_) => Err(Corrupt(format!("'{name}' is not [seconds, microseconds]"))),
    }
}

fn parse_op(v: &Value) -> Result<QueuedOp, Corrupt> {
    let bad = |what: &str| Corrupt(what.to_string());
    let obj = v.as_object().ok_or_else(|| bad("not a JSON object"))?;
    let input = obj
        .get("input")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("'input' is not an opcode"))?;
    if !input.get("OP_ID").is_some_and(Value::is_string) {
        return Err(bad("'input' has no OP_ID"));
    }
    let status = obj
        .get("status")
        .and_then(Value::as_str)
        .and_then(Status::parse)
        .ok_or_else(|| bad("'status' is not an opcode status"))?;
    let result = obj
        .get("result")
        .cloned()
        .ok_or_else(|| bad("'result' is missing"))?;
    let log = obj
        .get("log")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("'log' is not a list"))?
        .iter()
        .map(parse_log_entry)
        .collect::<Result<Vec<_>, _>>()?;
    let priority = match obj.get("priority") {
        None => PRIO_DEFAULT,
        Some(p) => p
            .as_i64()
            .filter(|p| (i64::from(PRIO_HIGHEST)..=i64::from(PRIO_LOWEST)).contains(p))
            .map(|p| p as i32)
            .ok_or_else(|| bad("'priority' is not an integer in [-20, 19]"))?,
    };
    Ok(QueuedOp {
        input: input.clone(),
        status,
        result,
        log,
        priority,
        start_timestamp: parse_ts(obj.get("start_timestamp"), "start_timestamp")?,
        exec_timestamp: parse_ts(obj.get("exec_timestamp"), "exec_timestamp")?,
        end_timestamp: parse_ts(obj.get("end_timestamp"), "end_timestamp")?,
    })
}

fn parse_log_entry(v: &Value) -> Result<LogEntry, Corrupt> {
    let bad = || Corrupt("a log entry is not [serial, [sec, usec], type, message]".into());
    let [serial, time, log_type, message] = v.as_array().ok_or_else(bad)?.as_slice() else {
        return Err(bad());
    };
    Ok(LogEntry {
        serial: serial.as_u64().ok_or_else(bad)?,
        time: parse_ts(Some(time), "log time")?.ok_or_else(bad)?,
        log_type: log_type.as_str().ok_or_else(bad)?.to_string(),
        message: message.clone(),
    })
}

/// A job id as 2.5.2 accepts it ([`opcodes::job_id`]).
pub fn job_id_from_value(v: &Value) -> Option<u64> {
    opcodes::job_id(v)
}

/// A string of ASCII digits as a job id ([`opcodes::job_id_text`]).
pub fn parse_job_id(s: &str) -> Option<u64> {
    opcodes::job_id_text(s)
}

/// The opcode summary shown by `gnt-job list` (`OpCode.Summary()`).
pub fn op_summary(input: &Map<String, Value>) -> String {
    crate::opcodes::summary(input)
}

/// `OpCode.TinySummary()`, for worker names (spec 3.9).
pub fn op_tiny_summary(input: &Map<String, Value>) -> String {
    crate::opcodes::tiny_summary(input)
}

/// 2.5.2's `OpCode.LoadOpCode` shape checks, with its `ValueError` texts
/// (a LUXI server answers them as `"Caught exception: <text>"`).
pub fn load_opcode(v: Value) -> Result<Map<String, Value>, String> {
    crate::opcodes::load(&v).map_err(|e| e.to_string())?;
    match v {
        Value::Object(map) => Ok(map),
        _ => Err("Invalid data to LoadOpCode".into()),
    }
}

/// Python's `str()` of a JSON-loaded value ([`pytext::py_str`]; ASCII
/// strings load as `str`).
pub fn python_str(v: &Value) -> String {
    pytext::py_str(v, Strings::AsciiAsStr)
}

/// Python 2's `repr()` of a JSON-loaded value ([`pytext::py_repr`]; ASCII
/// strings load as `str`).
pub fn python_repr(v: &Value) -> String {
    pytext::py_repr(v, Strings::AsciiAsStr)
}

/// One dependency of an opcode: the job id and the wanted final statuses
/// (empty: any).
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    pub job: u64,
    pub statuses: Vec<Status>,
}

/// Checks an opcode's `depends` as 2.5.2's `TNoRelativeJobDependencies`
/// ([`opcodes::parse_depends`]) and returns it with normalised ids.
pub fn parse_dependencies(v: Option<&Value>) -> Option<Vec<Dependency>> {
    let Some(v) = v else {
        return Some(Vec::new());
    };
    opcodes::parse_depends(v, false)?
        .into_iter()
        .map(|dep| {
            let opcodes::DepJob::Id(job) = dep.job else {
                return None;
            };
            let statuses = dep
                .statuses
                .iter()
                .map(|s| Status::parse(s))
                .collect::<Option<Vec<_>>>()?;
            Some(Dependency { job, statuses })
        })
        .collect()
}

/// 2.5.2's message for dependencies that fail the check
/// ([`opcodes::invalid_depends`]).
pub fn invalid_dependencies(idx: usize, deps: &Value) -> GanetiError {
    opcodes::invalid_depends(idx, deps)
}

/// 2.5.2's message for a priority outside -10/0/10
/// ([`opcodes::invalid_priority`]).
pub fn invalid_priority(idx: usize, prio: &Value) -> GanetiError {
    opcodes::invalid_priority(idx, prio)
}

/// The submitted priority when it is one of -10/0/10 (absent: 0), else
/// 2.5.2's error for opcode `idx` ([`opcodes::submit_priority`]).
pub fn submit_priority(idx: usize, input: &Map<String, Value>) -> Result<i32, GanetiError> {
    opcodes::submit_priority(idx, input)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(status: Status, prio: i32) -> QueuedOp {
        let mut input = Map::new();
        input.insert("OP_ID".into(), json!("OP_TEST_DELAY"));
        let mut op = QueuedOp::new(input);
        op.status = status;
        op.priority = prio;
        op
    }

    fn job(statuses: &[Status]) -> Job {
        Job {
            id: 1,
            received_timestamp: Some((1, 2)),
            start_timestamp: None,
            end_timestamp: None,
            ops: statuses.iter().map(|s| op(*s, 0)).collect(),
            log_serial: 0,
        }
    }

    #[test]
    fn status_function_as_2_5_2() {
        use Status::*;
        for (ops, want) in [
            (vec![Queued, Queued], Queued),
            (vec![Success, Queued], Queued),
            (vec![Success, Success], Success),
            (vec![Success, Waiting, Queued], Waiting),
            (vec![Success, Running, Queued], Running),
            (vec![Canceling, Canceling], Canceling),
            (vec![Success, Error, Error], Error),
            (vec![Canceled, Canceled], Canceled),
            // The first final non-success opcode wins.
            (vec![Waiting, Error], Error),
            (vec![Error, Canceled], Error),
        ] {
            assert_eq!(job(&ops).status(), want, "{ops:?}");
        }
    }

    #[test]
    fn priority_is_lowest_unfinished() {
        let mut j = job(&[Status::Success, Status::Queued, Status::Queued]);
        j.ops[0].priority = -20;
        j.ops[1].priority = 10;
        j.ops[2].priority = 3;
        assert_eq!(j.priority(), 3);
        for op in &mut j.ops {
            op.status = Status::Success;
        }
        assert_eq!(j.priority(), PRIO_DEFAULT);
    }

    #[test]
    fn cancel_messages() {
        let mut j = job(&[Status::Queued, Status::Queued]);
        assert_eq!(j.cancel(), (true, "Job 1 canceled".into()));
        assert_eq!(j.status(), Status::Canceled);
        assert_eq!(j.ops[1].result, json!(CANCELED_RESULT));
        assert!(j.end_timestamp.is_some());
        let mut j = job(&[Status::Success, Status::Waiting, Status::Queued]);
        assert_eq!(j.cancel(), (true, "Job 1 will be canceled".into()));
        assert_eq!(j.ops[0].status, Status::Success);
        assert_eq!(j.ops[2].status, Status::Canceling);
        assert_eq!(j.status(), Status::Canceling);
        let mut j = job(&[Status::Running]);
        assert_eq!(
            j.cancel(),
            (false, "Job 1 is no longer waiting in the queue".into())
        );
    }

    #[test]
    fn parse_round_trips_and_refuses_wrong_types() {
        let mut j = job(&[Status::Success]);
        j.ops[0].log.push(LogEntry {
            serial: 4,
            time: (5, 6),
            log_type: "message".into(),
            message: json!("hi"),
        });
        let parsed = Job::parse(&j.to_file(), 1).unwrap();
        assert_eq!(parsed.log_serial, 4);
        assert_eq!(parsed.to_file(), j.to_file());
        assert!(Job::parse(&j.to_file(), 2).is_err());
        for bad in [
            "",
            "[]",
            "{\"id\": \"1\", \"ops\": []}",
            "{\"id\": \"x\", \"ops\": [{}]}",
            "{\"id\": 1, \"ops\": [{\"input\": {}, \"status\": \"queued\", \"result\": null, \"log\": []}]}",
            "{\"id\": 1, \"ops\": [{\"input\": {\"OP_ID\": \"OP_X\"}, \"status\": \"done\", \"result\": null, \"log\": []}]}",
            "{\"id\": 1, \"ops\": [{\"input\": {\"OP_ID\": \"OP_X\"}, \"status\": \"queued\", \"log\": []}]}",
            "{\"id\": 1, \"ops\": [{\"input\": {\"OP_ID\": \"OP_X\"}, \"status\": \"queued\", \"result\": null, \"log\": [[1]]}]}",
            "{\"id\": 1, \"ops\": [{\"input\": {\"OP_ID\": \"OP_X\"}, \"status\": \"queued\", \"result\": null, \"log\": [], \"priority\": 20}]}",
            "{\"id\": 1, \"received_timestamp\": 5, \"ops\": [{\"input\": {\"OP_ID\": \"OP_X\"}, \"status\": \"queued\", \"result\": null, \"log\": []}]}",
        ] {
            assert!(Job::parse(bad.as_bytes(), 1).is_err(), "{bad}");
        }
        // Missing timestamps and priority are tolerated, as in 2.5.2.
        let ok = "{\"id\": 1, \"ops\": [{\"input\": {\"OP_ID\": \"OP_X\"}, \"status\": \"queued\", \"result\": null, \"log\": []}]}";
        let j = Job::parse(ok.as_bytes(), 1).unwrap();
        assert_eq!(j.ops[0].priority, 0);
        assert_eq!(j.received_timestamp, None);
    }

    #[test]
    fn load_opcode_messages() {
        assert_eq!(
            load_opcode(json!([1])).unwrap_err(),
            "Invalid data to LoadOpCode (<type 'list'>)"
        );
        assert_eq!(
            load_opcode(json!({"x": 1})).unwrap_err(),
            "Invalid data to LoadOpcode, missing OP_ID"
        );
        assert_eq!(
            load_opcode(json!({"OP_ID": 5})).unwrap_err(),
            "Invalid data to LoadOpCode: OP_ID 5 unsupported"
        );
        assert!(load_opcode(json!({"OP_ID": "OP_TEST_DELAY"})).is_ok());
    }

    #[test]
    fn dependency_check_as_tnorelativejobdependencies() {
        // Compared with 2.5.2's ht check run under Python 2.7.
        assert_eq!(parse_dependencies(None), Some(vec![]));
        assert_eq!(parse_dependencies(Some(&json!(null))), Some(vec![]));
        assert_eq!(
            parse_dependencies(Some(&json!([["5", []], [7, ["success", "error"]]]))),
            Some(vec![
                Dependency {
                    job: 5,
                    statuses: vec![]
                },
                Dependency {
                    job: 7,
                    statuses: vec![Status::Success, Status::Error]
                },
            ])
        );
        for bad in [
            json!([[-1, []]]),
            json!([["5"]]),
            json!([["x", []]]),
            json!([[true, []]]),
            json!([[5, ["running"]]]),
            json!("5"),
            json!([["05x", []]]),
        ] {
            assert_eq!(parse_dependencies(Some(&bad)), None, "{bad}");
        }
        assert_eq!(
            invalid_dependencies(0, &json!([[-1, []]])).to_string(),
            "Opcode 0 has invalid dependencies, must match None or (List of ((Length 2) and \
             (Item 0 is JobId, item 1 is (List of (OneOf canceled, success, error))))): [[-1, []]]"
        );
        assert_eq!(
            invalid_priority(1, &json!(5)).to_string(),
            "Opcode 1 has invalid priority 5, allowed are 0, 10, -10"
        );
    }

    #[test]
    fn job_info_stops_at_its_byte_budget_and_one_byte_over() {
        let mut j = job(&[Status::Success]);
        j.ops[0].log.push(LogEntry {
            serial: 1,
            time: (5, 6),
            log_type: "message".into(),
            message: json!("x".repeat(1000)),
        });
        let oplog = vec!["oplog".to_string()];
        let one = json_len(&j.info(&oplog).unwrap()[0]) + 1;
        let three = vec!["oplog".to_string(); 3];
        let mut budget = 3 * one;
        assert_eq!(j.info_within(&three, &mut budget).unwrap().len(), 3);
        assert_eq!(budget, 0);
        let mut budget = 3 * one - 1;
        let e = j.info_within(&three, &mut budget).unwrap_err();
        assert_eq!(e, answer_too_large());
        assert_eq!(e.class, "JobQueueError");
        // Many small fields are fine.
        let many = vec!["status".to_string(); 10000];
        assert_eq!(j.info(&many).unwrap().len(), 10000);
        assert_eq!(json_len(&json!(["a", 1, null])), 12);
    }

    #[test]
    fn python_repr_of_values() {
        assert_eq!(
            python_repr(&json!([["a'b", null, true, 1.5, {"k": "v"}]])),
            "[[\"a'b\", None, True, 1.5, {'k': 'v'}]]"
        );
    }
}
