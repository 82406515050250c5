//! The opcode processor (2.5.2 `mcpu.Processor`, spec masterd-luxi 6.2):
//! runs one opcode under its locks, with hooks, for a job worker
//! ([`jqueue::OpExecutor`]) or for a query LUXI answers without a job.
//!
//! Sequence: the Big Ganeti Lock (exclusive when the opcode's logical unit
//! has `REQ_BGL`, else shared), validation of the opcode (defaults filled
//! in, kept in the job file), `check_arguments`, `expand_names`, then for
//! each level (instance, node group, node) the declared locks: added
//! already held, or acquired (sorted, all-or-nothing). The job's cancel
//! flag is checked before each acquisition and at `notify_start`; every
//! acquisition shares one lock timeout (the job's attempt timeout, spec
//! 3.8), after which the opcode goes back to waiting. With every lock held:
//! `notify_start` (the opcode runs), `check_prereq`, pre hooks (a failed
//! script aborts with `HooksAbort`), dry run or `exec`, post hooks
//! (failures are warnings), the `config-update` hook when the
//! configuration was written, then the locks are released in reverse
//! order, the job's reservations dropped and the result checked.
//!
//! Queries run by LUXI (`QueryClusterInfo`, `QueryConfigValues`,
//! `QueryTags`) go through [`Processor::run_query`]: no job, no feedback,
//! blocking lock acquisition, owner = the request worker's thread name.
//!
//! Difference from 2.5.2: a job cancelled while it waits for a lock stops
//! waiting at once (the lock manager asks the cancel flag while waiting).
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::cmdlib::{self, Context, Env, LogicalUnit, LuResult, LU_LEVELS};
use crate::errors::{GanetiError, ECODE_FAULT};
use crate::hooks::Phase;
use crate::jqueue::{OpContext, OpExecutor, OpOutcome};
use crate::locking::{Level, LockError, Names, BGL};
use crate::opcodes::{self, Validated};

/// Why an opcode did not produce a result.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecError {
    Failed(GanetiError),
    /// A lock could not be had within the attempt's timeout.
    LockTimeout,
    /// The job was cancelled.
    Canceled,
}

impl From<GanetiError> for ExecError {
    fn from(e: GanetiError) -> Self {
        ExecError::Failed(e)
    }
}

impl From<LockError> for ExecError {
    fn from(e: LockError) -> Self {
        match e {
            LockError::Timeout => ExecError::LockTimeout,
            LockError::Canceled => ExecError::Canceled,
            other => ExecError::Failed(other.to_ganeti()),
        }
    }
}

/// Builds the logical unit of a validated opcode.
pub type MakeLu<'a> = dyn FnMut(&Validated) -> Box<dyn LogicalUnit> + 'a;

/// Runs opcodes; shared by the job workers and the LUXI request workers.
pub struct Processor {
    ctx: Arc<Context>,
    /// Called after an opcode that wrote the configuration (the job
    /// queue's list of master candidates follows it).
    on_config_change: Box<dyn Fn() + Send + Sync>,
}

/// The remaining part of a lock timeout shared by all acquisitions
/// (2.5.2's `RunningTimeout(timeout).Remaining`).
struct Deadline(Option<Instant>);

impl Deadline {
    fn new(timeout: Option<Duration>) -> Deadline {
        Deadline(timeout.and_then(|t| Instant::now().checked_add(t)))
    }

    fn remaining(&self) -> Option<Duration> {
        self.0
            .map(|end| end.saturating_duration_since(Instant::now()))
    }
}

impl Processor {
    pub fn new(ctx: Arc<Context>, on_config_change: Box<dyn Fn() + Send + Sync>) -> Processor {
        Processor {
            ctx,
            on_config_change,
        }
    }

    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Runs a query opcode for LUXI, without a job (2.5.2 `_Query`).
    pub fn run_query(&self, input: Map<String, Value>) -> Result<Value, GanetiError> {
        self.run_with_lu(input, &mut |v| cmdlib::new_lu(v))
    }

    /// Runs an opcode without a job, with the logical unit `make_lu`
    /// builds (tests, and logical units not in the opcode table yet).
    pub fn run_with_lu(
        &self,
        mut input: Map<String, Value>,
        make_lu: &mut MakeLu<'_>,
    ) -> Result<Value, GanetiError> {
        let current = std::thread::current();
        let owner = match current.name() {
            Some(n) => n.to_string(),
            None => format!("{:?}", current.id()),
        };
        match self.exec(&mut input, None, &owner, None, 0, make_lu) {
            Ok(v) => Ok(v),
            Err(ExecError::Failed(e)) => Err(e),
            // Blocking acquisition without a job: neither can happen.
            Err(ExecError::LockTimeout) | Err(ExecError::Canceled) => Err(GanetiError::msg(
                "ProgrammerError",
                "A query without a job timed out or was cancelled",
            )),
        }
    }

    /// `ExecOpCode`.
    fn exec<'a>(
        &'a self,
        input: &mut Map<String, Value>,
        job: Option<&'a mut (dyn OpContext + 'a)>,
        owner: &'a str,
        timeout: Option<Duration>,
        priority: i32,
        make_lu: &mut MakeLu<'_>,
    ) -> Result<Value, ExecError> {
        let op_id = opcodes::op_id(input).unwrap_or_default().to_string();
        let Some(def) = opcodes::definition(&op_id) else {
            return Err(GanetiError::msg("OpCodeUnknown", "Unknown opcode").into());
        };
        let deadline = Deadline::new(timeout);
        let ctx: &Context = &self.ctx;
        let mut env = Env::new(ctx, def, owner, job);
        if env.canceled() {
            return Err(ExecError::Canceled);
        }
        {
            let cancel = || env.canceled();
            ctx.glm.acquire(
                owner,
                Level::Cluster,
                &Names::List(vec![BGL.to_string()]),
                !def.req_bgl,
                deadline.remaining(),
                priority,
                &cancel,
            )?;
        }
        let write_count = ctx.cfg.write_count();
        let result = exec_with_bgl(input, &mut env, &deadline, priority, make_lu);
        if let Some(id) = env.ec_id {
            ctx.cfg.drop_reservations(&id.to_string());
        }
        if let Err(e) = ctx.glm.release(owner, Level::Cluster, None) {
            log::error!("Releasing the Big Ganeti Lock: {e}");
            ctx.glm.release_all(owner);
        }
        if write_count != ctx.cfg.write_count() {
            (self.on_config_change)();
        }
        result
    }
}

/// Validation, the logical unit, the result check.
fn exec_with_bgl(
    input: &mut Map<String, Value>,
    env: &mut Env<'_>,
    deadline: &Deadline,
    priority: i32,
    make_lu: &mut MakeLu<'_>,
) -> Result<Value, ExecError> {
    let validated = opcodes::parse(input)?;
    let mut lu = make_lu(&validated);
    let result = run_lu(
        lu.as_mut(),
        env,
        deadline,
        priority,
        validated.common.dry_run,
    );
    lu.store_input(input);
    let value = result?;
    if let Err(desc) = lu.check_result(&value) {
        log::error!("Expected opcode result matching {desc}, got {value}");
        return Err(GanetiError::msg(
            "OpResultError",
            format!("Opcode result does not match {desc}"),
        )
        .into());
    }
    Ok(value)
}

/// The LU's life cycle under the BGL: names, locks per level, execution,
/// release (2.5.2 `_LockAndExecLU` unrolled).
fn run_lu(
    lu: &mut dyn LogicalUnit,
    env: &mut Env<'_>,
    deadline: &Deadline,
    priority: i32,
    dry_run: bool,
) -> Result<Value, ExecError> {
    lu.check_arguments(env)?;
    lu.expand_names(env)?;
    let ctx: &Context = env.ctx;
    let glm = &ctx.glm;
    let owner: &str = env.owner;
    let mut reached: Vec<Level> = Vec::new();
    let mut outcome: Result<Value, ExecError> = Ok(Value::Null);
    let mut locked = true;
    for level in LU_LEVELS {
        let adding = env.locks.add.contains_key(&level);
        let acquiring = env.locks.needed.contains_key(&level);
        if !adding && !acquiring {
            continue;
        }
        if adding && acquiring {
            outcome = Err(GanetiError::msg(
                "ProgrammerError",
                "Can't declare locks to acquire when adding others",
            )
            .into());
            locked = false;
            break;
        }
        reached.push(level);
        if let Err(e) = lu.declare_locks(env, level) {
            outcome = Err(e.into());
            locked = false;
            break;
        }
        let shared = env.locks.is_shared(level);
        let step: Result<(), ExecError> = if acquiring {
            let names = env.locks.needed.get(&level).cloned().unwrap_or(Names::All);
            if env.canceled() {
                Err(ExecError::Canceled)
            } else {
                let cancel = || env.canceled();
                glm.acquire(
                    owner,
                    level,
                    &names,
                    shared,
                    deadline.remaining(),
                    priority,
                    &cancel,
                )
                .map(|_| ())
                .map_err(ExecError::from)
            }
        } else {
            let names = env.locks.add.get(&level).cloned().unwrap_or_default();
            env.locks.remove.insert(level, names.clone());
            glm.add(owner, level, &names, true, shared).map_err(|_| {
                GanetiError::prereq(
                    format!(
                        "Couldn't add locks ({}), probably because of a race condition with \
                         another job, who added them first",
                        py_list(&names)
                    ),
                    ECODE_FAULT,
                )
                .into()
            })
        };
        if let Err(e) = step {
            outcome = Err(e);
            locked = false;
            break;
        }
    }
    if locked {
        outcome = if env.notify_start() {
            exec_lu(lu, env, dry_run)
        } else {
            Err(ExecError::Canceled)
        };
    }
    for level in reached.into_iter().rev() {
        if let Some(names) = env.locks.remove.get(&level) {
            if let Err(e) = glm.remove(owner, level, names) {
                log::error!("Removing locks {names:?}: {e}");
            }
        }
        if glm.is_owned(owner, level) {
            if let Err(e) = glm.release(owner, level, None) {
                log::error!("Releasing the locks of level {}: {e}", level.name());
            }
        }
    }
    outcome
}

/// Python's repr of a list of names (for the lock-add message).
fn py_list(names: &[String]) -> String {
    let items: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    format!("[{}]", items.join(", "))
}

/// `_ExecLU`: prerequisites, hooks, execution.
fn exec_lu(lu: &mut dyn LogicalUnit, env: &mut Env<'_>, dry_run: bool) -> Result<Value, ExecError> {
    let write_count = env.cfg().write_count();
    lu.check_prereq(env)?;
    let has_hooks = env.def.hooks.is_some();
    let (lu_env, nodes) = if has_hooks {
        (lu.hooks_env(env), lu.hooks_nodes(env))
    } else {
        (Map::new(), (Vec::new(), Vec::new()))
    };
    let hm = env.hooks_master(&lu_env, nodes)?;
    let pre = env.run_hooks(&hm, Phase::Pre, &lu_env, None)?;
    lu.hooks_callback(Phase::Pre, pre.as_ref(), env, Value::Null)?;
    if dry_run {
        env.log_info("dry-run mode requested, not actually executing the operation");
        return Ok(lu.dry_run_result());
    }
    let result = (|| -> Result<Value, GanetiError> {
        let value = match lu.exec(env)? {
            LuResult::Value(v) => v,
            LuResult::Jobs { jobs, mut other } => {
                let Some(submitted) = env.submit_jobs(jobs) else {
                    return Err(GanetiError::msg(
                        "ProgrammerError",
                        "Submitting jobs is only possible from a job",
                    ));
                };
                let pairs: Vec<Value> = submitted
                    .into_iter()
                    .map(|r| match r {
                        Ok(id) => json!([true, id.to_string()]),
                        Err(e) => json!([false, e.to_string()]),
                    })
                    .collect();
                other.insert(JOB_IDS_KEY.into(), Value::Array(pairs));
                Value::Object(other)
            }
        };
        let post_env = if has_hooks {
            lu.hooks_env(env)
        } else {
            Map::new()
        };
        let post = env.run_hooks(&hm, Phase::Post, &post_env, None)?;
        lu.hooks_callback(Phase::Post, post.as_ref(), env, value)
    })();
    if write_count != env.cfg().write_count() {
        env.run_config_update(&hm);
    }
    Ok(result?)
}

/// `JOB_IDS_KEY`: where the ids of jobs submitted by a logical unit go.
pub const JOB_IDS_KEY: &str = "jobs";

impl OpExecutor for Processor {
    fn exec_opcode(&self, input: &mut Map<String, Value>, ctx: &mut dyn OpContext) -> OpOutcome {
        let owner = ctx.worker_name();
        let timeout = ctx.lock_timeout();
        let priority = ctx.priority();
        match self.exec(input, Some(ctx), &owner, timeout, priority, &mut |v| {
            cmdlib::new_lu(v)
        }) {
            Ok(v) => OpOutcome::Success(v),
            Err(ExecError::Failed(e)) => OpOutcome::Error(e),
            Err(ExecError::LockTimeout) => OpOutcome::LockTimeout,
            Err(ExecError::Canceled) => OpOutcome::Canceled,
        }
    }
}
