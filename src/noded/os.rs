//! OS definitions and OS scripts (spec 4.11): `os_diagnose`, `os_get`,
//! `os_validate`, `instance_os_add`, `instance_run_rename`.
//!
//! Supported: 2.5.2's argument shapes, results and messages; the
//! definitions, environments, log files and script runs of
//! [`crate::osdef`] (whose first doc comment lists the differences from
//! 2.5.2). Every name that ends up in a log file name (the instance name,
//! the old name of a rename, the OS name with its variant) is checked
//! before anything runs or is written; the OS name itself can only name a
//! directory directly in the search path (`^[a-zA-Z0-9_-]+$`).
//!
//! A running script keeps one RPC worker busy (2.5.2 forked a process per
//! request); it is bounded by the timeouts of [`crate::osdef`].
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{backend, decode, os_error_text, Context, Procedure, RpcError, SMALL_BODY};
use crate::fsutil;
use crate::objects::Instance;
use crate::osdef::{self, Env, OsDef, Output, RunError};

/// Body limit of the calls that carry an instance or OS parameters (a
/// filled instance is a few KiB).
pub const INSTANCE_BODY: usize = 1024 * 1024;
/// Mode of the OS log directory when it has to be created (2.5.2's
/// `ensure-dirs` gives it 0750).
const LOG_DIR_MODE: u32 = 0o750;

pub const PROCEDURES: &[Procedure] = &[
    Procedure {
        name: "os_diagnose",
        max_body: SMALL_BODY,
        handler: os_diagnose,
    },
    Procedure {
        name: "os_get",
        max_body: SMALL_BODY,
        handler: os_get,
    },
    Procedure {
        name: "os_validate",
        max_body: INSTANCE_BODY,
        handler: os_validate,
    },
    Procedure {
        name: "instance_os_add",
        max_body: INSTANCE_BODY,
        handler: instance_os_add,
    },
    Procedure {
        name: "instance_run_rename",
        max_body: INSTANCE_BODY,
        handler: instance_run_rename,
    },
];

/// A debug level or flag: 2.5.2 masters send ints or booleans.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Level {
    Bool(bool),
    Int(i64),
}

impl Level {
    fn value(&self) -> i64 {
        match self {
            Level::Bool(b) => i64::from(*b),
            Level::Int(i) => *i,
        }
    }
}

fn failed(e: impl std::fmt::Display) -> RpcError {
    RpcError::Failed(e.to_string())
}

/// `os_diagnose []`: every entry of the search path.
fn os_diagnose(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let _: Value = decode(body)?;
    Ok(Value::Array(osdef::diagnose(&ctx.paths)))
}

/// `os_get [name]`: the OS dict, or the lookup error.
fn os_get(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (name,): (String,) = decode(body)?;
    let os = osdef::find(&ctx.paths, &name).map_err(failed)?;
    Ok(os.to_value())
}

/// `os_validate [required, name, checks, osparams]`: `true`, or `false`
/// when the OS is missing and not required.
fn os_validate(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (required, name, checks, osparams): (bool, String, Vec<String>, Map<String, Value>) =
        decode(body)?;
    let unknown: BTreeSet<&str> = checks
        .iter()
        .map(String::as_str)
        .filter(|c| *c != osdef::OS_VALIDATE_PARAMETERS)
        .collect();
    if !unknown.is_empty() {
        let shown: Vec<String> = unknown
            .iter()
            .map(|c| crate::hooks::py_repr_str(c))
            .collect();
        return Err(RpcError::Failed(format!(
            "Unknown checks required for OS {name}: set([{}])",
            shown.join(", ")
        )));
    }
    let os = match osdef::find(&ctx.paths, &name) {
        Ok(os) => os,
        Err(e) if required => return Err(failed(e)),
        Err(_) => return Ok(Value::Bool(false)),
    };
    if os.max_api() < osdef::OS_API_V20 {
        return Ok(Value::Bool(true));
    }
    if checks.iter().any(|c| c == osdef::OS_VALIDATE_PARAMETERS) {
        let supported: BTreeSet<&str> = os.parameter_names().collect();
        let delta: Vec<&str> = osparams
            .keys()
            .map(String::as_str)
            .filter(|p| !supported.contains(p))
            .collect();
        if !delta.is_empty() {
            return Err(RpcError::Failed(format!(
                "The following parameters are not supported by the OS {}: {}",
                os.name,
                delta.join(", ")
            )));
        }
    }
    let env = osdef::core_env(&name, &os, &osparams, 0);
    osdef::check_env(&env).map_err(RpcError::Failed)?;
    let args: Vec<&str> = checks.iter().map(String::as_str).collect();
    let verify = os.script(osdef::SCRIPT_VERIFY);
    let run = osdef::run_script(
        &verify,
        &args,
        &env,
        &os.dir,
        Output::Capture,
        osdef::VERIFY_TIMEOUT,
    )
    .map_err(|e| run_error(ctx, &os, osdef::SCRIPT_VERIFY, e))?;
    if let Some(reason) = run.fail_reason {
        log::error!(
            "os validate command '{}/{}' returned error: {reason} output: {}",
            os.wire_dir,
            osdef::SCRIPT_VERIFY,
            run.output
        );
        return Err(RpcError::Failed(format!(
            "OS validation script failed ({reason}), output: {}",
            run.output
        )));
    }
    Ok(Value::Bool(true))
}

/// The instance's full OS name (with variant), checked for use in a file
/// name, and the instance name checked likewise.
fn checked_names(inst: &Instance) -> Result<&str, RpcError> {
    osdef::check_file_name_part("instance name", &inst.name).map_err(RpcError::Failed)?;
    let os = inst
        .os
        .as_deref()
        .ok_or_else(|| RpcError::Failed(format!("Instance {} has no OS", inst.name)))?;
    osdef::check_file_name_part("OS name", os).map_err(RpcError::Failed)?;
    Ok(os)
}

/// `instance_os_add [instance, reinstall, debug]`: runs `create`.
fn instance_os_add(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (inst, reinstall, debug): (Instance, Level, Level) = decode(body)?;
    let full_os = checked_names(&inst)?;
    let log = osdef::log_file(&ctx.paths, "add", full_os, &inst.name, SystemTime::now())
        .map_err(RpcError::Failed)?;
    let os = osdef::find(&ctx.paths, full_os).map_err(failed)?;
    let mut env =
        osdef::instance_env(&ctx.paths, &inst, &os, debug.value()).map_err(RpcError::Failed)?;
    if reinstall.value() != 0 {
        env.insert("INSTANCE_REINSTALL".into(), "1".into());
    }
    run_logged(
        ctx,
        &os,
        osdef::SCRIPT_CREATE,
        &env,
        &log,
        osdef::CREATE_TIMEOUT,
    )
}

/// `instance_run_rename [instance, old_name, debug]`: runs `rename` with
/// `OLD_INSTANCE_NAME`.
fn instance_run_rename(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (inst, old_name, debug): (Instance, String, Level) = decode(body)?;
    let full_os = checked_names(&inst)?;
    osdef::check_file_name_part("old instance name", &old_name).map_err(RpcError::Failed)?;
    let both = format!("{old_name}-{}", inst.name);
    let log = osdef::log_file(&ctx.paths, "rename", full_os, &both, SystemTime::now())
        .map_err(RpcError::Failed)?;
    let os = osdef::find(&ctx.paths, full_os).map_err(failed)?;
    let mut env =
        osdef::instance_env(&ctx.paths, &inst, &os, debug.value()).map_err(RpcError::Failed)?;
    env.insert("OLD_INSTANCE_NAME".into(), old_name);
    run_logged(
        ctx,
        &os,
        osdef::SCRIPT_RENAME,
        &env,
        &log,
        osdef::RENAME_TIMEOUT,
    )
}

/// Runs an instance script with its output appended to `log`; on failure
/// 2.5.2's message with the log's last lines.
fn run_logged(
    ctx: &Context,
    os: &OsDef,
    script: &str,
    env: &Env,
    log: &Path,
    timeout: std::time::Duration,
) -> Result<Value, RpcError> {
    osdef::check_env(env).map_err(RpcError::Failed)?;
    let log_dir = ctx.paths.os_log_dir();
    fsutil::create_dirs(&log_dir, LOG_DIR_MODE)
        .map_err(|e| backend(os_error_text(&e, Some(&ctx.paths.to_wire(&log_dir)))))?;
    let run = osdef::run_script(
        &os.script(script),
        &[],
        env,
        &os.dir,
        Output::Append(log),
        timeout,
    )
    .map_err(|e| run_error(ctx, os, script, e))?;
    let Some(reason) = run.fail_reason else {
        return Ok(Value::Null);
    };
    let wire_log = ctx.paths.to_wire(log);
    log::error!(
        "os {script} command '{}/{script}' returned error: {reason}, logfile: {}",
        os.wire_dir,
        wire_log.display()
    );
    let lines = osdef::tail_lines(log).map_err(|e| backend(os_error_text(&e, Some(&wire_log))))?;
    Err(RpcError::Failed(format!(
        "OS {script} script failed ({reason}), last lines in the log file:\n{}",
        lines.join("\n")
    )))
}

/// A script that could not be started or waited for: 2.5.2's `RunCmd`
/// errors, as unexpected backend errors.
fn run_error(ctx: &Context, os: &OsDef, script: &str, e: RunError) -> RpcError {
    let wire_script = format!("{}/{script}", os.wire_dir);
    match e {
        RunError::Spawn(_, e) if e.kind() == io::ErrorKind::NotFound => backend(format!(
            "Can't execute '{wire_script}': not found ({})",
            os_error_text(&e, None)
        )),
        RunError::Spawn(_, e) | RunError::Wait(e) => backend(os_error_text(&e, None)),
        RunError::LogFile(p, e) => backend(os_error_text(&e, Some(&ctx.paths.to_wire(&p)))),
    }
}
