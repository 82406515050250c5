//! `gnt-job`: list, info, watch, cancel, archive and autoarchive, with
//! 2.5.2's output (`client/gnt_job.py`).

use serde_json::Value;

use super::args::{generic_main, Arity, Command, Invocation, Tool, FIELDS_OPT, NOHDR_OPT, SEP_OPT};
use super::format::{
    format_error, format_log_message, format_timestamp, generate_table, parse_timespec, py_str,
    to_stderr, to_stdout,
};
use super::jobs::{get_client, parse_job_id, poll_job, StdioReporter};
use super::CliError;
use crate::constants::{EXIT_FAILURE, EXIT_SUCCESS};
use crate::luxi::{self, method};

/// `_LIST_DEF_FIELDS`.
pub const DEFAULT_FIELDS: [&str; 3] = ["id", "status", "summary"];
/// The job statuses 2.5.2 knows.
pub const JOB_STATUSES: [&str; 7] = [
    "queued",
    "waiting",
    "canceling",
    "running",
    "canceled",
    "success",
    "error",
];

/// The column title of a job field in `gnt-job list`.
pub fn field_title(field: &str) -> String {
    match field {
        "id" => "ID",
        "status" => "Status",
        "priority" => "Prio",
        "ops" => "OpCodes",
        "opresult" => "OpCode_result",
        "opstatus" => "OpCode_status",
        "oplog" => "OpCode_log",
        "summary" => "Summary",
        "opstart" => "OpCode_start",
        "opexec" => "OpCode_exec",
        "opend" => "OpCode_end",
        "oppriority" => "OpCode_prio",
        "start_ts" => "Start",
        "end_ts" => "End",
        "received_ts" => "Received",
        other => other,
    }
    .to_string()
}

/// `ParseFields`: the default list, `+extra` appended to it, or the list.
pub fn parse_fields(selected: Option<&str>, default: &[&str]) -> Vec<String> {
    match selected {
        None => default.iter().map(|s| s.to_string()).collect(),
        Some(s) => match s.strip_prefix('+') {
            Some(extra) => default
                .iter()
                .map(|s| s.to_string())
                .chain(extra.split(',').map(String::from))
                .collect(),
            None => s.split(',').map(String::from).collect(),
        },
    }
}

/// `QueryJobs` with the ids as given (strings, as 2.5.2 sends them).
fn query_jobs(
    cl: &mut luxi::Client,
    ids: &[u64],
    fields: &[String],
) -> Result<Vec<Option<Vec<Value>>>, CliError> {
    let ids: Vec<Value> = ids.iter().map(|i| Value::String(i.to_string())).collect();
    let answer = cl.call(method::QUERY_JOBS, serde_json::json!([ids, fields]))?;
    serde_json::from_value(answer.clone()).map_err(|_| {
        CliError::Luxi(luxi::LuxiError::Protocol(format!(
            "Invalid answer to QueryJobs: {}",
            py_str(&answer)
        )))
    })
}

fn job_ids(args: &[String]) -> Result<Vec<u64>, CliError> {
    args.iter().map(|a| parse_job_id(a)).collect()
}

/// One value of `gnt-job list`, as 2.5.2 turns it into text.
fn list_value(field: &str, val: &Value) -> Result<String, CliError> {
    Ok(match field {
        "status" => {
            let s = val.as_str().unwrap_or_default();
            if !JOB_STATUSES.contains(&s) {
                return Err(CliError::Ganeti(crate::errors::GanetiError::msg(
                    "ProgrammerError",
                    format!("Unknown job status code '{}'", py_str(val)),
                )));
            }
            s.to_string()
        }
        "summary" => val
            .as_array()
            .map(|a| a.iter().map(py_str).collect::<Vec<_>>().join(","))
            .unwrap_or_else(|| py_str(val)),
        "start_ts" | "end_ts" | "received_ts" => format_timestamp(val),
        "opstart" | "opexec" | "opend" => {
            let items: Vec<Value> = val
                .as_array()
                .into_iter()
                .flatten()
                .map(|ts| Value::String(format_timestamp(ts)))
                .collect();
            py_str(&Value::Array(items))
        }
        _ => py_str(val),
    })
}

fn list(inv: &Invocation) -> Result<i32, CliError> {
    let fields = parse_fields(inv.value(FIELDS_OPT.long).as_deref(), &DEFAULT_FIELDS);
    let ids = job_ids(&inv.args)?;
    let mut cl = get_client(&inv.paths)?;
    let output = query_jobs(&mut cl, &ids, &fields)?;
    let mut data = Vec::with_capacity(output.len());
    for (i, row) in output.into_iter().enumerate() {
        match row {
            None => {
                let id = inv.args.get(i).cloned().unwrap_or_default();
                to_stderr(&format!("No such job: {id}"));
                data.push(None);
            }
            Some(row) => {
                let mut texts = Vec::with_capacity(fields.len());
                for (f, v) in fields.iter().zip(row.iter()) {
                    texts.push(list_value(f, v)?);
                }
                data.push(Some(texts));
            }
        }
    }
    let title = |f: &str| field_title(f);
    let headers: Option<&dyn Fn(&str) -> String> = if inv.flag(NOHDR_OPT.long) {
        None
    } else {
        Some(&title)
    };
    let sep = inv.value(SEP_OPT.long);
    for line in generate_table(headers, &fields, sep.as_deref(), &data, &["priority"]) {
        to_stdout(&line);
    }
    Ok(EXIT_SUCCESS)
}

fn archive(inv: &Invocation) -> Result<i32, CliError> {
    let ids = job_ids(&inv.args)?;
    let mut cl = get_client(&inv.paths)?;
    let mut rcode = EXIT_SUCCESS;
    for (id, arg) in ids.iter().zip(&inv.args) {
        if !cl.archive_job(*id)? {
            to_stderr(&format!("Failed to archive job with ID '{arg}'"));
            rcode = EXIT_FAILURE;
        }
    }
    Ok(rcode)
}

fn autoarchive(inv: &Invocation) -> Result<i32, CliError> {
    let mut cl = get_client(&inv.paths)?;
    let age = match inv.args[0].as_str() {
        "all" => -1,
        other => parse_timespec(other)?,
    };
    let (archived, left) = cl.auto_archive_jobs(age)?;
    to_stdout(&format!("Archived {archived} jobs, {left} unchecked left"));
    Ok(EXIT_SUCCESS)
}

fn cancel(inv: &Invocation) -> Result<i32, CliError> {
    let ids = job_ids(&inv.args)?;
    let mut cl = get_client(&inv.paths)?;
    let mut result = EXIT_SUCCESS;
    for id in ids {
        let (ok, msg) = cl.cancel_job(id)?;
        if !ok {
            result = EXIT_FAILURE;
        }
        to_stdout(&msg);
    }
    Ok(result)
}

/// Seconds between two `[sec, usec]` stamps.
fn delta(later: &Value, earlier: &Value) -> Option<f64> {
    let part = |v: &Value, i: usize| v.get(i).and_then(Value::as_f64);
    Some(part(later, 0)? - part(earlier, 0)? + (part(later, 1)? - part(earlier, 1)?) / 1_000_000.0)
}

/// `result_helper` of `ShowJobs`.
fn result_helper(v: &Value) -> String {
    match v {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_str).collect::<Vec<_>>().join(", ")
        ),
        other => py_str(other),
    }
}

/// The lines of `gnt-job info` for one job (`entry` has the 12 fields of
/// `ShowJobs`).
pub fn info_lines(entry: &[Value]) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    let mut msg = |level: usize, text: String| out.push(format!("{}{text}", "  ".repeat(level)));
    let [job_id, status, ops, opresult, opstatus, oplog, opstart, opexec, opend, recv_ts, start_ts, end_ts] =
        entry
    else {
        return Err(CliError::Luxi(luxi::LuxiError::Protocol(
            "Invalid answer to QueryJobs".into(),
        )));
    };
    msg(0, format!("Job ID: {}", py_str(job_id)));
    let status = list_value("status", status)?;
    msg(1, format!("Status: {status}"));
    if recv_ts.is_null() {
        msg(1, "Missing received timestamp (None)".into());
    } else {
        msg(
            1,
            format!("Received:         {}", format_timestamp(recv_ts)),
        );
    }
    if start_ts.is_null() {
        msg(1, "Processing start: unknown (None)".into());
    } else {
        let d = match delta(start_ts, recv_ts) {
            Some(d) if !recv_ts.is_null() => format!(" (delta {d:.6}s)"),
            _ => String::new(),
        };
        msg(
            1,
            format!("Processing start: {}{d}", format_timestamp(start_ts)),
        );
    }
    if end_ts.is_null() {
        msg(1, "Processing end:   unknown (None)".into());
    } else {
        let d = match delta(end_ts, start_ts) {
            Some(d) if !start_ts.is_null() => format!(" (delta {d:.6}s)"),
            _ => String::new(),
        };
        msg(
            1,
            format!("Processing end:   {}{d}", format_timestamp(end_ts)),
        );
    }
    match delta(end_ts, recv_ts) {
        Some(d) if !end_ts.is_null() && !recv_ts.is_null() => {
            msg(1, format!("Total processing time: {d:.6} seconds"))
        }
        _ => msg(1, "Total processing time: N/A".into()),
    }
    msg(1, "Opcodes:".into());
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let (ops, opresult, opstatus, oplog) = (list(ops), list(opresult), list(opstatus), list(oplog));
    let (opstart, opexec, opend) = (list(opstart), list(opexec), list(opend));
    let n = [
        ops.len(),
        opresult.len(),
        opstatus.len(),
        oplog.len(),
        opstart.len(),
        opexec.len(),
        opend.len(),
    ]
    .into_iter()
    .min()
    .unwrap_or(0);
    for i in 0..n {
        let op = &ops[i];
        msg(2, op.get("OP_ID").map(py_str).unwrap_or_default());
        msg(3, format!("Status: {}", py_str(&opstatus[i])));
        let stamp = |ts: &Value, label: &str, none: &str| {
            if ts.is_array() {
                format!("{label}{}", format_timestamp(ts))
            } else {
                none.to_string()
            }
        };
        msg(
            3,
            stamp(
                &opstart[i],
                "Processing start: ",
                "No processing start time",
            ),
        );
        msg(
            3,
            stamp(&opexec[i], "Execution start:  ", "No execution start time"),
        );
        msg(
            3,
            stamp(&opend[i], "Processing end:   ", "No processing end time"),
        );
        msg(3, "Input fields:".into());
        if let Some(map) = op.as_object() {
            let mut keys: Vec<&String> = map.keys().filter(|k| *k != "OP_ID").collect();
            crate::config::nice_sort(&mut keys);
            for key in keys {
                let val = &map[key.as_str()];
                let text = match val {
                    Value::Array(items) => items.iter().map(py_str).collect::<Vec<_>>().join(","),
                    other => py_str(other),
                };
                msg(4, format!("{key}: {text}"));
            }
        }
        match &opresult[i] {
            Value::Null => msg(3, "No output data".into()),
            Value::Array(items) if items.is_empty() => msg(3, "Result: empty sequence".into()),
            Value::Array(items) => {
                msg(3, "Result:".into());
                for e in items {
                    msg(4, result_helper(e));
                }
            }
            Value::Object(m) if m.is_empty() => msg(3, "Result: empty dictionary".into()),
            Value::Object(m) => {
                msg(3, "Result:".into());
                for (k, v) in m {
                    msg(4, format!("{k}: {}", result_helper(v)));
                }
            }
            other => msg(3, format!("Result: {}", py_str(other))),
        }
        msg(3, "Execution log:".into());
        for entry in oplog[i].as_array().into_iter().flatten() {
            if let Some([serial, ts, log_type, log_msg]) = entry.as_array().map(Vec::as_slice) {
                let kind = log_type.as_str().unwrap_or_default();
                msg(
                    4,
                    format!(
                        "{}:{}:{kind} {}",
                        py_str(serial),
                        format_timestamp(ts),
                        format_log_message(kind, log_msg)
                    ),
                );
            }
        }
    }
    Ok(out)
}

/// The fields `gnt-job info` asks for.
pub const INFO_FIELDS: [&str; 12] = [
    "id",
    "status",
    "ops",
    "opresult",
    "opstatus",
    "oplog",
    "opstart",
    "opexec",
    "opend",
    "received_ts",
    "start_ts",
    "end_ts",
];

fn info(inv: &Invocation) -> Result<i32, CliError> {
    let ids = job_ids(&inv.args)?;
    let mut cl = get_client(&inv.paths)?;
    let fields: Vec<String> = INFO_FIELDS.iter().map(|s| s.to_string()).collect();
    let result = query_jobs(&mut cl, &ids, &fields)?;
    for (idx, entry) in result.iter().enumerate() {
        if idx > 0 {
            to_stdout("");
        }
        match entry {
            None => match inv.args.get(idx) {
                Some(arg) => to_stdout(&format!("Job ID {arg} not found")),
                None => to_stdout(&format!(
                    "Job ID requested as argument {} not found",
                    idx + 1
                )),
            },
            Some(entry) => {
                for line in info_lines(entry)? {
                    to_stdout(&line);
                }
            }
        }
    }
    Ok(EXIT_SUCCESS)
}

fn watch(inv: &Invocation) -> Result<i32, CliError> {
    let id = parse_job_id(&inv.args[0])?;
    let msg = format!("Output from job {id} follows");
    to_stdout(&msg);
    to_stdout(&"-".repeat(msg.len()));
    let mut cl = get_client(&inv.paths)?;
    match poll_job(&mut cl, id, &mut StdioReporter::default()) {
        Ok(_) => Ok(EXIT_SUCCESS),
        // 2.5.2 catches only Ganeti errors here; transport errors go up.
        Err(e @ CliError::Ganeti(_)) => {
            let (code, text) = format_error(&e);
            to_stderr(&format!("Job {id} failed: {text}"));
            Ok(code)
        }
        Err(e) => Err(e),
    }
}

static COMMANDS: [Command; 6] = [
    Command {
        name: "list",
        run: list,
        arity: Arity { min: 0, max: None },
        options: &[NOHDR_OPT, SEP_OPT, FIELDS_OPT],
        usage: "[job_id ...]",
        description: "List the jobs and their status. The available fields are (see the man \
                      page for details): id, status, op_list, op_status, op_result. The \
                      default field list is (in order): id, status, summary.",
    },
    Command {
        name: "archive",
        run: archive,
        arity: Arity { min: 1, max: None },
        options: &[],
        usage: "<job-id> [<job-id> ...]",
        description: "Archive specified jobs",
    },
    Command {
        name: "autoarchive",
        run: autoarchive,
        arity: Arity {
            min: 1,
            max: Some(1),
        },
        options: &[],
        usage: "<age>",
        description: "Auto archive jobs older than the given age",
    },
    Command {
        name: "cancel",
        run: cancel,
        arity: Arity { min: 1, max: None },
        options: &[],
        usage: "<job-id> [<job-id> ...]",
        description: "Cancel specified jobs",
    },
    Command {
        name: "info",
        run: info,
        arity: Arity { min: 1, max: None },
        options: &[],
        usage: "<job-id> [<job-id> ...]",
        description: "Show detailed information about the specified jobs",
    },
    Command {
        name: "watch",
        run: watch,
        arity: Arity {
            min: 1,
            max: Some(1),
        },
        options: &[],
        usage: "<job-id>",
        description: "Follows a job and prints its output as it arrives",
    },
];

/// The `gnt-job` tool.
pub static TOOL: Tool = Tool {
    binary: "gnt-job",
    commands: &COMMANDS,
    aliases: &[("show", "info")],
};

/// `gnt-job`'s main: the exit code.
pub fn main(argv: &[String]) -> i32 {
    generic_main(&TOOL, argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields() {
        assert_eq!(parse_fields(None, &DEFAULT_FIELDS), DEFAULT_FIELDS);
        assert_eq!(
            parse_fields(Some("+priority,end_ts"), &DEFAULT_FIELDS),
            vec!["id", "status", "summary", "priority", "end_ts"]
        );
        assert_eq!(parse_fields(Some("id"), &DEFAULT_FIELDS), vec!["id"]);
        assert_eq!(field_title("oppriority"), "OpCode_prio");
        assert_eq!(field_title("nonsense"), "nonsense");
    }

    #[test]
    fn list_values() {
        assert_eq!(
            list_value("summary", &json!(["TEST_DELAY(0.1)", "X"])).unwrap(),
            "TEST_DELAY(0.1),X"
        );
        assert_eq!(list_value("id", &json!("22")).unwrap(), "22");
        assert_eq!(list_value("priority", &json!(-10)).unwrap(), "-10");
        assert_eq!(list_value("opstart", &json!([null])).unwrap(), "['?']");
        assert!(list_value("status", &json!("weird")).is_err());
    }

    #[test]
    fn info_layout_of_the_2_5_2_recording() {
        // Times are local: build the expected stamps the same way.
        let ts = |s: i64, u: i64| format_timestamp(&json!([s, u]));
        let entry = json!([
            "22",
            "success",
            [{"OP_ID": "OP_TEST_DELAY", "comment": null, "debug_level": 0, "depends": null,
              "dry_run": false, "duration": 0.05, "on_master": true, "on_nodes": [],
              "priority": 0, "repeat": 2}],
            [null],
            ["success"],
            [[[1, [1795814298, 679293], "message", " - INFO: Test delay iteration 0/1"],
              [2, [1795814298, 735945], "message", " - INFO: Test delay iteration 1/1"]]],
            [[1795814298, 674497]],
            [[1795814298, 677487]],
            [[1795814298, 788090]],
            [1795814298, 671870],
            [1795814298, 674497],
            [1795814298, 788108]
        ]);
        let lines = info_lines(entry.as_array().unwrap()).unwrap();
        let expected = format!(
            "Job ID: 22\n  Status: success\n  Received:         {}\n  \
             Processing start: {} (delta 0.002627s)\n  Processing end:   {} (delta 0.113611s)\n  \
             Total processing time: 0.116238 seconds\n  Opcodes:\n    OP_TEST_DELAY\n      \
             Status: success\n      Processing start: {}\n      Execution start:  {}\n      \
             Processing end:   {}\n      Input fields:\n        comment: None\n        \
             debug_level: 0\n        depends: None\n        dry_run: False\n        \
             duration: 0.05\n        on_master: True\n        on_nodes: \n        priority: 0\n        \
             repeat: 2\n      No output data\n      Execution log:\n        \
             1:{}:message  - INFO: Test delay iteration 0/1\n        \
             2:{}:message  - INFO: Test delay iteration 1/1",
            ts(1795814298, 671870),
            ts(1795814298, 674497),
            ts(1795814298, 788108),
            ts(1795814298, 674497),
            ts(1795814298, 677487),
            ts(1795814298, 788090),
            ts(1795814298, 679293),
            ts(1795814298, 735945),
        );
        assert_eq!(lines.join("\n"), expected);
    }

    #[test]
    fn info_of_an_unfinished_job_and_results() {
        let entry = json!([
            "5", "queued", [{"OP_ID": "OP_X", "list": [1, "a"]}], [{"a": [1, 2]}], ["queued"],
            [[]], [null], [null], [null], [1, 0], null, null
        ]);
        let text = info_lines(entry.as_array().unwrap()).unwrap().join("\n");
        assert!(
            text.contains("  Processing start: unknown (None)\n"),
            "{text}"
        );
        assert!(
            text.contains("  Processing end:   unknown (None)\n"),
            "{text}"
        );
        assert!(text.contains("  Total processing time: N/A\n"), "{text}");
        assert!(text.contains("      No processing start time\n"), "{text}");
        assert!(text.contains("        list: 1,a\n"), "{text}");
        assert!(
            text.contains("      Result:\n        a: [1, 2]\n"),
            "{text}"
        );
    }
}
