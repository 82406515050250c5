//! Output of the `gnt-*` tools as 2.5.2 writes it: `FormatError` (the
//! message and exit code for every kind of failure), `GenerateTable`
//! (aligned columns or a separator, optional headers), time stamps
//! (`FormatTimestamp`, `FormatTime`, `time.ctime`), `SafeEncode`,
//! `ParseTimespec` and Python's `str()` of values.

use std::io::Write;

use serde_json::Value;

use super::CliError;
use crate::constants::{EXIT_FAILURE, EXIT_SUCCESS};
use crate::errors::GanetiError;
use crate::luxi::{python_str, LuxiError};
use crate::sys;

/// Exit code for a corrupt configuration (2.5.2's `FormatError`).
pub const EXIT_CONFIG_ERROR: i32 = 2;

/// Writes a line to a stream; a closed pipe ends the program with exit 1,
/// as 2.5.2's `_ToStream` does on `EPIPE`.
fn to_stream(mut w: impl Write, text: &str) {
    let r = w
        .write_all(text.as_bytes())
        .and_then(|()| w.write_all(b"\n"))
        .and_then(|()| w.flush());
    if let Err(e) = r {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(EXIT_FAILURE);
        }
    }
}

/// `ToStdout`: the text and a newline.
pub fn to_stdout(text: &str) {
    to_stream(std::io::stdout().lock(), text);
}

/// `ToStderr`: the text and a newline.
pub fn to_stderr(text: &str) {
    to_stream(std::io::stderr().lock(), text);
}

/// Python's `str()` of a value (strings bare, `None`, `True`, lists and
/// dictionaries as their `repr`).
pub fn py_str(v: &Value) -> String {
    python_str(v)
}

/// `utils.CommaJoin`: `", ".join(str(v) for v in values)`.
pub fn comma_join(values: &[Value]) -> String {
    values.iter().map(py_str).collect::<Vec<_>>().join(", ")
}

/// `FormatError`: the exit code and the message (without the final
/// newline) for a failure.
pub fn format_error(err: &CliError) -> (i32, String) {
    match err {
        CliError::Ganeti(e) => format_ganeti_error(e),
        CliError::Luxi(e) => (EXIT_FAILURE, format_luxi_error(e)),
        CliError::JobSubmitted(id) => (EXIT_SUCCESS, format!("JobID: {id}")),
        CliError::Other(msg) => (EXIT_FAILURE, format!("Unhandled exception: {msg}")),
    }
}

fn format_luxi_error(e: &LuxiError) -> String {
    match e {
        LuxiError::NoMaster(_) => "Cannot communicate with the master daemon.\n\
             Is it running and listening for connections?"
            .into(),
        LuxiError::Timeout(msg) => format!(
            "Timeout while talking to the master daemon. Jobs might have been submitted \
             and will continue to run even if the call timed out. Useful commands in this \
             situation are \"gnt-job list\", \"gnt-job cancel\" and \"gnt-job watch\". \
             Error:\n{msg}"
        ),
        LuxiError::Permission(_) => "It seems you don't have permissions to connect to the \
             master daemon.\nPlease retry as a different user."
            .into(),
        LuxiError::Ganeti(g) => format_ganeti_error(g).1,
        other => format!(
            "Unhandled protocol error while talking to the master daemon:\n{}",
            match other {
                LuxiError::Request(v) => py_str(v),
                o => o.to_string(),
            }
        ),
    }
}

fn format_ganeti_error(e: &GanetiError) -> (i32, String) {
    let msg = e.to_string();
    let arg0 = || e.args.first().map(py_str).unwrap_or_default();
    let text = match e.class {
        "ConfigurationError" | "ConfigVersionMismatch" => {
            return (
                EXIT_CONFIG_ERROR,
                format!("Corrupt configuration file: {msg}\nAborting."),
            )
        }
        "HooksAbort" => {
            let mut out = String::from("Failure: hooks execution failed:\n");
            for entry in e
                .args
                .first()
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let part = |i: usize| entry.get(i).map(py_str).unwrap_or_default();
                let (node, script, output) = (part(0), part(1), part(2));
                if output.is_empty() {
                    out.push_str(&format!("  node: {node}, script: {script} (no output)\n"));
                } else {
                    out.push_str(&format!(
                        "  node: {node}, script: {script}, output: {output}\n"
                    ));
                }
            }
            out
        }
        "HooksFailure" => format!("Failure: hooks general failure: {msg}"),
        "ResolverError" => {
            let host = arg0();
            let me = crate::paths::node_name().unwrap_or_default();
            if host == me {
                format!("Failure: can't resolve my own hostname ('{host}')")
            } else {
                format!("Failure: can't resolve hostname '{host}'")
            }
        }
        "OpPrereqError" if e.args.len() == 2 => format!(
            "Failure: prerequisites not met for this operation:\n\
             error type: {}, error details:\n{}",
            py_str(&e.args[1]),
            py_str(&e.args[0])
        ),
        "OpPrereqError" => format!("Failure: prerequisites not met for this operation:\n{msg}"),
        "OpExecError" => format!("Failure: command execution error:\n{msg}"),
        "TagError" => format!("Failure: invalid tag(s) given:\n{msg}"),
        "JobQueueDrainError" => {
            "Failure: the job queue is marked for drain and doesn't accept new requests".into()
        }
        "JobQueueFull" => "Failure: the job queue is full and doesn't accept new job \
                           submissions until old jobs are archived"
            .into(),
        "TypeEnforcementError" => format!("Parameter Error: {msg}"),
        "ParameterError" => format!("Failure: unknown/wrong parameter name '{msg}'"),
        "JobLost" => format!("Error checking job status: {msg}"),
        "QueryFilterParseError" => format!("Error while parsing query filter: {}", arg0()),
        "LuxiError" => {
            format!("Unhandled protocol error while talking to the master daemon:\n{msg}")
        }
        _ => format!("Unhandled Ganeti error: {msg}"),
    };
    (EXIT_FAILURE, text.trim_end_matches('\n').to_string())
}

/// `GenerateTable` without unit fields: one string per line. `headers`
/// gives a title per field (`None`: no header line); `separator` `None`
/// aligns the columns (numeric fields to the right; the last column is not
/// padded unless numeric), otherwise joins the values with it. A `None`
/// row prints a dash in every column.
pub fn generate_table(
    headers: Option<&dyn Fn(&str) -> String>,
    fields: &[String],
    separator: Option<&str>,
    data: &[Option<Vec<String>>],
    numfields: &[&str],
) -> Vec<String> {
    let width = |s: &str| s.chars().count();
    let is_num = |f: &str| numfields.contains(&f);
    let mut mlens = vec![0usize; fields.len()];
    for row in data.iter().flatten() {
        for (i, v) in row.iter().enumerate().take(fields.len()) {
            mlens[i] = mlens[i].max(width(v));
        }
    }
    let line = |values: &[String], mlens: &[usize]| -> String {
        match separator {
            Some(sep) => values.join(sep),
            None => values
                .iter()
                .zip(fields)
                .zip(mlens)
                .map(|((v, f), &w)| {
                    let pad = " ".repeat(w.saturating_sub(width(v)));
                    if is_num(f) {
                        format!("{pad}{v}")
                    } else {
                        format!("{v}{pad}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    };
    let mut result = Vec::new();
    if let Some(title) = headers {
        let hdrs: Vec<String> = fields.iter().map(|f| title(f)).collect();
        for (i, h) in hdrs.iter().enumerate() {
            mlens[i] = mlens[i].max(width(h));
        }
        result.push(line(&hdrs, &mlens));
    }
    if let Some(last) = fields.last() {
        if !is_num(last) {
            if let Some(l) = mlens.last_mut() {
                *l = 0;
            }
        }
    }
    for row in data {
        let values: Vec<String> = match row {
            Some(r) => r.clone(),
            None => vec!["-".to_string(); fields.len()],
        };
        result.push(line(&values, &mlens));
    }
    result
}

/// Local `%Y-%m-%d %H:%M:%S` of a Unix time.
fn strftime_ft(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = sys::localtime(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// `FormatTimestamp`: `[sec, usec]` as `YYYY-MM-DD HH:MM:SS.uuuuuu`
/// (local time); anything else as `?`.
pub fn format_timestamp(ts: &Value) -> String {
    match ts.as_array().map(Vec::as_slice) {
        Some([sec, usec]) => match (sec.as_i64(), usec.as_i64()) {
            (Some(sec), Some(usec)) => format!("{}.{usec:06}", strftime_ft(sec)),
            _ => "?".into(),
        },
        _ => "?".into(),
    }
}

/// `utils.FormatTime`: a float Unix time as `YYYY-MM-DD HH:MM:SS`, or
/// `N/A`.
pub fn format_time(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.is_finite() => strftime_ft(f.floor() as i64),
        _ => "N/A".into(),
    }
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Day of the week (0 = Sunday) of a Gregorian date.
fn weekday(y: i32, m: u32, d: u32) -> usize {
    const T: [i32; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let y = if m < 3 { y - 1 } else { y };
    let idx = (m as usize).clamp(1, 12) - 1;
    (y + y / 4 - y / 100 + y / 400 + T[idx] + d as i32).rem_euclid(7) as usize
}

/// `time.ctime`: `Thu Nov 14 22:13:20 2023` (local time).
pub fn ctime(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = sys::localtime(secs);
    ctime_of(y, mo, d, h, mi, s)
}

fn ctime_of(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> String {
    let month = MONTHS[(mo as usize).clamp(1, 12) - 1];
    format!(
        "{} {month} {d:>2} {h:02}:{mi:02}:{s:02} {y}",
        WEEKDAYS[weekday(y, mo, d)]
    )
}

/// `utils.SafeEncode`: printable ASCII kept, tab/newline/carriage return
/// as `\t`/`\n`/`\r`, other characters escaped (`\xNN`, `\uNNNN`,
/// `\UNNNNNNNN` as Python's `backslashreplace`).
pub fn safe_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out
}

/// `FormatLogMessage`: a job log message for printing.
pub fn format_log_message(log_type: &str, msg: &Value) -> String {
    let text = match (log_type, msg) {
        ("message", Value::String(s)) => s.clone(),
        _ => py_str(msg),
    };
    safe_encode(&text)
}

/// `ParseTimespec`: seconds from `30`, `30s`, `5m`, `2h`, `1d`, `4w`.
pub fn parse_timespec(value: &str) -> Result<i64, CliError> {
    if value.is_empty() {
        return Err(CliError::prereq1("Empty time specification passed"));
    }
    let invalid = |v: &str| CliError::prereq1(format!("Invalid time specification '{v}'"));
    let mult = match value.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86400,
        Some('w') => 604800,
        _ => return super::args::parse_int(value).ok_or_else(|| invalid(value)),
    };
    let num = &value[..value.len() - 1];
    if num.is_empty() {
        return Err(CliError::prereq1(
            "Invalid time specification (only suffix passed)",
        ));
    }
    super::args::parse_int(num)
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| invalid(num))
}

/// Roman numerals for `--roman` (2.5.2's `compat.TryToRoman`): integers
/// from 1 to 3999; anything else unchanged.
pub fn try_to_roman(v: &Value, convert: bool) -> String {
    const TABLE: [(i64, &str); 13] = [
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ];
    match v.as_i64() {
        Some(mut n) if convert && v.is_i64() && (1..4000).contains(&n) => {
            let mut out = String::new();
            for (val, sym) in TABLE {
                while n >= val {
                    out.push_str(sym);
                    n -= val;
                }
            }
            out
        }
        _ => py_str(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::{ECODE_INVAL, ECODE_STATE};
    use serde_json::json;
    use std::path::PathBuf;

    fn text(e: CliError) -> (i32, String) {
        format_error(&e)
    }

    #[test]
    fn format_error_texts_of_2_5_2() {
        assert_eq!(
            text(CliError::Luxi(LuxiError::NoMaster(PathBuf::from("/x")))),
            (
                1,
                "Cannot communicate with the master daemon.\n\
                 Is it running and listening for connections?"
                    .into()
            )
        );
        assert_eq!(
            text(
                GanetiError::msg("JobQueueDrainError", "Job queue is drained, refusing job").into()
            ),
            (
                1,
                "Failure: the job queue is marked for drain and doesn't accept new requests".into()
            )
        );
        assert_eq!(
            text(CliError::prereq(
                "Cluster is already initialised",
                ECODE_STATE
            )),
            (
                1,
                "Failure: prerequisites not met for this operation:\n\
                 error type: wrong_state, error details:\nCluster is already initialised"
                    .into()
            )
        );
        assert_eq!(
            text(CliError::prereq1(
                "Cluster not initialized or this machine is not part of a cluster"
            ))
            .1,
            "Failure: prerequisites not met for this operation:\n\
             Cluster not initialized or this machine is not part of a cluster"
        );
        assert_eq!(
            text(CliError::exec("Job was canceled")).1,
            "Failure: command execution error:\nJob was canceled"
        );
        assert_eq!(
            text(CliError::Luxi(LuxiError::Request(json!(
                "Caught exception: [Errno 2] No such file or directory"
            ))))
            .1,
            "Unhandled protocol error while talking to the master daemon:\n\
             Caught exception: [Errno 2] No such file or directory"
        );
        assert_eq!(text(CliError::JobSubmitted(42)), (0, "JobID: 42".into()));
        assert_eq!(
            text(GanetiError::msg("ConfigurationError", "bad").into()),
            (2, "Corrupt configuration file: bad\nAborting.".into())
        );
        assert_eq!(
            text(GanetiError::new("JobQueueFull", vec![]).into()).1,
            "Failure: the job queue is full and doesn't accept new job submissions until \
             old jobs are archived"
        );
        assert_eq!(
            text(CliError::parameter("Invalid boolean value 'x'")).1,
            "Failure: unknown/wrong parameter name 'Invalid boolean value 'x''"
        );
        let hooks = GanetiError::new(
            "HooksAbort",
            vec![json!([["node1", "10-x", "out"], ["node1", "20-y", ""]])],
        );
        assert_eq!(
            text(hooks.into()).1,
            "Failure: hooks execution failed:\n  node: node1, script: 10-x, output: out\n  \
             node: node1, script: 20-y (no output)"
        );
        assert_eq!(
            text(GanetiError::prereq("x", ECODE_INVAL).into()).1,
            "Failure: prerequisites not met for this operation:\n\
             error type: wrong_input, error details:\nx"
        );
        assert_eq!(
            text(GanetiError::msg("LockError", "boom").into()).1,
            "Unhandled Ganeti error: boom"
        );
    }

    fn t(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn table_layout_of_gnt_job_list() {
        // The recorded `gnt-job list` of 2.5.2: the header is padded to the
        // widest value, the last column of the rows is not.
        let fields: Vec<String> = ["id", "status", "summary"].map(String::from).to_vec();
        let titles = |f: &str| match f {
            "id" => "ID".to_string(),
            "status" => "Status".into(),
            _ => "Summary".into(),
        };
        let data = vec![
            t(&["9", "success", "INSTANCE_QUERY_DATA"]),
            t(&["10", "success", "TEST_DELAY(0.1)"]),
        ];
        let lines = generate_table(Some(&titles), &fields, None, &data, &["priority"]);
        assert_eq!(
            lines,
            vec![
                "ID Status  Summary            ",
                "9  success INSTANCE_QUERY_DATA",
                "10 success TEST_DELAY(0.1)",
            ]
        );
        let lines = generate_table(None, &fields, Some(":"), &[data[0].clone(), None], &[]);
        assert_eq!(lines, vec!["9:success:INSTANCE_QUERY_DATA", "-:-:-"]);
        // Numeric last column: right-aligned and padded.
        let f2: Vec<String> = vec!["id".into(), "priority".into()];
        let lines = generate_table(
            Some(&|f: &str| f.to_uppercase()),
            &f2,
            None,
            &[t(&["1", "0"]), t(&["2", "-10"])],
            &["priority"],
        );
        assert_eq!(lines, vec!["ID PRIORITY", "1         0", "2       -10"]);
    }

    #[test]
    fn timestamps_and_ctime() {
        // Local time: compare with the broken-down time of the same second.
        let (y, mo, d, h, mi, s) = sys::localtime(1795814298);
        assert_eq!(
            format_timestamp(&json!([1795814298, 47177])),
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.047177")
        );
        assert_eq!(format_timestamp(&json!(null)), "?");
        assert_eq!(format_timestamp(&json!([1, 2, 3])), "?");
        assert_eq!(format_timestamp(&json!(["1", 2])), "?");
        assert_eq!(
            format_time(&json!(1795814298.9)),
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
        );
        assert_eq!(format_time(&json!(null)), "N/A");
        assert_eq!(
            ctime_of(2026, 11, 27, 21, 18, 18),
            "Fri Nov 27 21:18:18 2026"
        );
        assert_eq!(ctime_of(1970, 1, 1, 0, 0, 0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime_of(2000, 2, 29, 0, 0, 0), "Tue Feb 29 00:00:00 2000");
        assert_eq!(
            ctime_of(2023, 11, 14, 22, 13, 20),
            "Tue Nov 14 22:13:20 2023"
        );
    }

    #[test]
    fn safe_encode_and_log_messages() {
        assert_eq!(
            safe_encode("a\tb\nc\rd\u{1}é€😀"),
            "a\\tb\\nc\\rd\\x01\\xe9\\u20ac\\U0001f600"
        );
        assert_eq!(
            format_log_message("message", &json!(" - INFO: Test delay iteration 0/1")),
            " - INFO: Test delay iteration 0/1"
        );
        assert_eq!(format_log_message("progress", &json!({"a": 1})), "{'a': 1}");
    }

    #[test]
    fn timespecs() {
        assert_eq!(parse_timespec("30").unwrap(), 30);
        assert_eq!(parse_timespec("2h").unwrap(), 7200);
        assert_eq!(parse_timespec("1w").unwrap(), 604800);
        let msg = |v| format_error(&parse_timespec(v).unwrap_err()).1;
        assert!(msg("").ends_with("Empty time specification passed"));
        assert!(msg("d").ends_with("Invalid time specification (only suffix passed)"));
        assert!(msg("1x").ends_with("Invalid time specification '1x'"));
        assert!(msg("zd").ends_with("Invalid time specification 'z'"));
        assert!(
            msg("99999999999999999w").ends_with("Invalid time specification '99999999999999999'")
        );
    }

    #[test]
    fn roman() {
        assert_eq!(try_to_roman(&json!(10), true), "X");
        assert_eq!(try_to_roman(&json!(1994), true), "MCMXCIV");
        assert_eq!(try_to_roman(&json!(10), false), "10");
        assert_eq!(try_to_roman(&json!(0), true), "0");
    }
}
