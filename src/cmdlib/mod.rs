//! Logical units: what each opcode does once the processor holds its locks
//! (2.5.2 `cmdlib.py`), and the context they run in.
//!
//! A logical unit follows 2.5.2's life cycle (spec masterd-luxi 6.2 and
//! 6.5), driven by `masterd::processor`: it is built from its validated
//! opcode ([`new_lu`]), then `check_arguments`, `expand_names` (declares the
//! locks per level in [`Locks`]), `declare_locks` before each level,
//! `check_prereq` with every lock held, the hooks environment and node
//! lists, `exec`, and `hooks_callback` after each hooks phase. Feedback
//! goes through [`Env`]: `log_info`, `log_warning` and `log_step` write
//! 2.5.2's texts as job log entries.
//!
//! Logical units so far, one file per area: `cluster` (post-init, destroy,
//! query, config query, redistribute configuration), `tags` (get, set,
//! delete; the cluster, nodes, node groups and instances) and `test`
//! (`OP_TEST_DELAY`).
#![forbid(unsafe_code)]

pub mod cluster;
pub mod tags;
pub mod test;

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::config::ConfigWriter;
use crate::errors::GanetiError;
use crate::hooks::{self, HookType, HooksInfo, HooksMaster, NodeResults, Phase};
use crate::jqueue::OpContext;
use crate::locking::{Level, LockManager, Names};
use crate::objects::ConfigData;
use crate::opcodes::{OpCode, OpDef, Validated};
use crate::paths::Paths;
use crate::rpc::client::{self, Client, NodeResult};

/// What the logical units of one master daemon share (2.5.2's
/// `GanetiContext`): the configuration, the lock manager, the node RPC
/// client and the paths.
pub struct Context {
    pub paths: Paths,
    pub cfg: Arc<ConfigWriter>,
    pub glm: LockManager,
    pub rpc: Arc<Client>,
    /// Set when the daemon stops; long sleeps of logical units end early.
    pub stop: StopSignal,
}

impl Context {
    /// A context whose lock manager holds every instance, node group and
    /// node of the configuration.
    pub fn new(paths: Paths, cfg: Arc<ConfigWriter>, rpc: Arc<Client>) -> Context {
        let glm = {
            let data = cfg.read();
            LockManager::new(
                data.instances.keys().cloned().collect(),
                data.nodegroups.keys().cloned().collect(),
                data.nodes.keys().cloned().collect(),
            )
        };
        Context {
            paths,
            cfg,
            glm,
            rpc,
            stop: StopSignal::default(),
        }
    }
}

/// A flag raised once when the daemon stops, which sleepers wait on.
#[derive(Default)]
pub struct StopSignal {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl StopSignal {
    pub fn raise(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_all();
    }

    pub fn is_raised(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps `d`; false when the signal was raised first.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now().checked_add(d);
        let mut stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if *stopped {
                return false;
            }
            let left = match end {
                Some(end) => end.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if end.is_some() && left.is_zero() {
                return true;
            }
            stopped = self
                .cv
                .wait_timeout(stopped, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The lock levels below the BGL, in acquisition order.
pub const LU_LEVELS: [Level; 3] = [Level::Instance, Level::NodeGroup, Level::Node];

/// The locks a logical unit declares (2.5.2's `needed_locks`,
/// `share_locks`, `add_locks`, `remove_locks`), per level.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Locks {
    pub needed: BTreeMap<Level, Names>,
    /// Levels acquired in shared mode (default exclusive).
    pub shared: Vec<Level>,
    /// New locks created already held.
    pub add: BTreeMap<Level, Vec<String>>,
    /// Locks removed once the logical unit is done (the added ones, unless
    /// the logical unit succeeds and clears the entry).
    pub remove: BTreeMap<Level, Vec<String>>,
}

impl Locks {
    /// 2.5.2's `_ShareAll()`: every level shared.
    pub fn share_all(&mut self) {
        self.shared = LU_LEVELS.to_vec();
    }

    pub fn is_shared(&self, level: Level) -> bool {
        self.shared.contains(&level)
    }
}

/// What `exec` returns: a value, or jobs to submit (2.5.2's
/// `ResultWithJobs`), whose ids end up under `jobs` in the other values.
#[derive(Debug, Clone, PartialEq)]
pub enum LuResult {
    Value(Value),
    Jobs {
        jobs: Vec<Vec<Map<String, Value>>>,
        other: Map<String, Value>,
    },
}

/// A logical unit (spec 6.5). Every method but `exec` has 2.5.2's default.
pub trait LogicalUnit {
    /// Syntax checks of the parameters only.
    fn check_arguments(&mut self, _env: &mut Env<'_>) -> Result<(), GanetiError> {
        Ok(())
    }

    /// Canonical names, and the locks to take in `env.locks`.
    fn expand_names(&mut self, env: &mut Env<'_>) -> Result<(), GanetiError>;

    /// Called before the locks of `level` are taken (only for a level with
    /// declared locks).
    fn declare_locks(&mut self, _env: &mut Env<'_>, _level: Level) -> Result<(), GanetiError> {
        Ok(())
    }

    /// With every lock held: may call nodes, changes nothing.
    fn check_prereq(&mut self, _env: &mut Env<'_>) -> Result<(), GanetiError> {
        Ok(())
    }

    /// `BuildHooksEnv` (only called for logical units with hooks).
    fn hooks_env(&self, _env: &Env<'_>) -> Map<String, Value> {
        Map::new()
    }

    /// `BuildHooksNodes`: pre and post nodes.
    fn hooks_nodes(&self, _env: &Env<'_>) -> (Vec<String>, Vec<String>) {
        (Vec::new(), Vec::new())
    }

    /// `HooksCallBack`: may change the result after a phase.
    fn hooks_callback(
        &mut self,
        _phase: Phase,
        _results: Option<&NodeResults>,
        _env: &mut Env<'_>,
        result: Value,
    ) -> Result<Value, GanetiError> {
        Ok(result)
    }

    fn exec(&mut self, env: &mut Env<'_>) -> Result<LuResult, GanetiError>;

    /// What a dry run returns.
    fn dry_run_result(&self) -> Value {
        Value::Null
    }

    /// Writes the canonical parameters back into the stored opcode (2.5.2
    /// keeps the live opcode object in the job file).
    fn store_input(&self, _input: &mut Map<String, Value>) {}

    /// `OP_RESULT`: `Err(description)` when the result has the wrong shape.
    fn check_result(&self, _result: &Value) -> Result<(), String> {
        Ok(())
    }
}

/// The logical unit of a validated opcode.
pub fn new_lu(op: &Validated) -> Box<dyn LogicalUnit> {
    match &op.op {
        OpCode::ClusterPostInit => Box::new(cluster::PostInit),
        OpCode::ClusterDestroy => Box::new(cluster::Destroy),
        OpCode::ClusterQuery => Box::new(cluster::Query),
        OpCode::ClusterConfigQuery(q) => Box::new(cluster::ConfigQuery::new(q)),
        OpCode::ClusterRedistConf => Box::new(cluster::RedistConf),
        OpCode::TagsGet(t) => Box::new(tags::TagsLu::get(t)),
        OpCode::TagsSet(t) => Box::new(tags::TagsLu::set(t)),
        OpCode::TagsDel(t) => Box::new(tags::TagsLu::del(t)),
        OpCode::TestDelay(t) => Box::new(test::TestDelay::new(t)),
    }
}

/// What a logical unit sees while it runs (2.5.2's processor and context
/// as the LU reaches them).
pub struct Env<'a> {
    pub ctx: &'a Context,
    pub def: &'static OpDef,
    /// The lock owner (the worker's thread name).
    pub owner: &'a str,
    /// The job id: the execution context of reservations. `None` for
    /// queries LUXI runs without a job.
    pub ec_id: Option<u64>,
    pub locks: Locks,
    /// The job running the opcode (feedback, cancel flag, start, jobs);
    /// `None` for queries.
    job: Option<&'a mut dyn OpContext>,
}

impl<'a> Env<'a> {
    pub fn new(
        ctx: &'a Context,
        def: &'static OpDef,
        owner: &'a str,
        job: Option<&'a mut dyn OpContext>,
    ) -> Env<'a> {
        let ec_id = job.as_deref().map(|j| j.job_id());
        Env {
            ctx,
            def,
            owner,
            ec_id,
            locks: Locks::default(),
            job,
        }
    }

    /// Whether the job was asked to cancel (never for a query).
    pub fn canceled(&self) -> bool {
        self.job.as_deref().is_some_and(|j| j.check_cancel())
    }

    /// `NotifyStart`: every lock is held, the opcode runs now; false when
    /// the job was cancelled.
    pub fn notify_start(&mut self) -> bool {
        match self.job.as_deref_mut() {
            Some(j) => j.notify_start().is_ok(),
            None => true,
        }
    }

    /// `SubmitManyJobs` for a logical unit's jobs; `None` without a job.
    pub fn submit_jobs(
        &mut self,
        jobs: Vec<Vec<Map<String, Value>>>,
    ) -> Option<Vec<Result<u64, GanetiError>>> {
        self.job.as_deref_mut().map(|j| j.submit_jobs(jobs))
    }

    /// Raw feedback `(type, message)`: a job log entry; logged at debug
    /// level for a query.
    pub fn feedback(&mut self, log_type: &str, msg: Value) {
        match self.job.as_deref_mut() {
            Some(j) => j.feedback(log_type, msg),
            None => log::debug!("Feedback ({log_type}): {msg}"),
        }
    }

    pub fn cfg(&self) -> &ConfigWriter {
        &self.ctx.cfg
    }

    /// `Log(msg)`: one log entry of type `message`.
    pub fn log(&mut self, msg: &str) {
        self.feedback("message", Value::String(msg.to_string()));
    }

    /// `LogInfo`: `" - INFO: <msg>"`.
    pub fn log_info(&mut self, msg: &str) {
        log::info!("{msg}");
        self.log(&format!(" - INFO: {msg}"));
    }

    /// `LogWarning`: `" - WARNING: <msg>"` (unless empty) and
    /// `"      Hint: <hint>"`.
    pub fn log_warning(&mut self, msg: &str, hint: Option<&str>) {
        if !msg.is_empty() {
            log::warn!("{msg}");
            self.log(&format!(" - WARNING: {msg}"));
        }
        if let Some(hint) = hint {
            self.log(&format!("      Hint: {hint}"));
        }
    }

    /// `LogStep`: `"STEP <cur>/<total> <msg>"`.
    pub fn log_step(&mut self, current: usize, total: usize, msg: &str) {
        log::debug!("Step {current}/{total} {msg}");
        self.log(&format!("STEP {current}/{total} {msg}"));
    }

    /// RPC targets for node names: the configured primary IP (offline
    /// nodes flagged), else the name resolved by the system resolver; a
    /// name that does not resolve keeps itself as address and fails.
    pub fn rpc_nodes(&self, names: &[String]) -> Vec<client::Node> {
        let cfg = self.cfg().read();
        rpc_nodes(&cfg, names, true)
    }

    /// Calls `procedure` on nodes by name (2.5.2's config-based calls:
    /// offline nodes are not contacted).
    pub fn call(&self, names: &[String], procedure: &str, args: &Value) -> NodeResults {
        let nodes = self.rpc_nodes(names);
        self.ctx.rpc.call(&nodes, procedure, args)
    }

    /// A "static" call (2.5.2 `_StaticMultiNodeCall`): offline flags are
    /// not looked at.
    pub fn call_static(&self, names: &[String], procedure: &str, args: &Value) -> NodeResults {
        let nodes = {
            let cfg = self.cfg().read();
            rpc_nodes(&cfg, names, false)
        };
        self.ctx.rpc.call(&nodes, procedure, args)
    }

    /// The hooks master of this opcode, for the logical unit's
    /// environment and node lists (2.5.2 `HooksMaster(rpc, lu)`).
    pub fn hooks_master(
        &self,
        lu_env: &Map<String, Value>,
        nodes: (Vec<String>, Vec<String>),
    ) -> Result<HooksMaster, GanetiError> {
        let cluster = {
            let cfg = self.cfg().read();
            Some((
                cfg.cluster.cluster_name.clone(),
                cfg.cluster.master_node.clone(),
            ))
        };
        let info = HooksInfo {
            op_id: self.def.id.to_string(),
            hpath: self.def.hooks.map(|h| h.path.to_string()),
            htype: self.def.hooks.and_then(|h| hook_type(h.htype)),
            cluster,
        };
        HooksMaster::new(info, lu_env, nodes)
    }

    /// `RunPhase`: warnings become `LogWarning`s.
    pub fn run_hooks(
        &mut self,
        hm: &HooksMaster,
        phase: Phase,
        post_lu_env: &Map<String, Value>,
        nodes: Option<&[String]>,
    ) -> Result<Option<NodeResults>, GanetiError> {
        let mut warnings = Vec::new();
        let result = {
            let mut call = |names: &[String], hpath: &str, phase: Phase, env: &hooks::Env| {
                self.call(names, "hooks_runner", &hooks::rpc_args(hpath, phase, env))
            };
            hm.run_phase(phase, post_lu_env, nodes, &mut call, &mut warnings)
        };
        for w in warnings {
            self.log_warning(&w, None);
        }
        result
    }

    /// `RunConfigUpdate`: the `config-update` hook on the master.
    pub fn run_config_update(&mut self, hm: &HooksMaster) {
        let mut call = |names: &[String], hpath: &str, phase: Phase, env: &hooks::Env| {
            self.call(names, "hooks_runner", &hooks::rpc_args(hpath, phase, env))
        };
        if let Err(e) = hm.run_config_update(&mut call) {
            log::error!("Cannot run the config-update hook: {e}");
        }
    }

    /// `cfg.Update(...)`: runs `f` through the config writer; warnings of
    /// the distribution become log messages once the configuration lock is
    /// released (so the job is never locked under it).
    pub fn update_config<T>(
        &mut self,
        f: impl FnOnce(&mut ConfigData) -> Result<T, GanetiError>,
    ) -> Result<T, GanetiError> {
        let mut warnings = Vec::new();
        let result = self
            .ctx
            .cfg
            .update_with_feedback(&mut |w| warnings.push(w.to_string()), f);
        for w in warnings {
            self.log(&w);
        }
        result
    }
}

fn hook_type(s: &str) -> Option<HookType> {
    match s {
        "CLUSTER" => Some(HookType::Cluster),
        "NODE" => Some(HookType::Node),
        "GROUP" => Some(HookType::Group),
        "INSTANCE" => Some(HookType::Instance),
        _ => None,
    }
}

/// RPC targets for node names (see [`Env::rpc_nodes`]).
pub fn rpc_nodes(cfg: &ConfigData, names: &[String], respect_offline: bool) -> Vec<client::Node> {
    names
        .iter()
        .map(|name| match cfg.nodes.get(name) {
            Some(n) => client::Node {
                name: n.name.clone(),
                address: n.primary_ip.clone(),
                offline: respect_offline && n.offline,
            },
            None => client::Node {
                name: name.clone(),
                address: resolve(name).unwrap_or_else(|| name.clone()),
                offline: false,
            },
        })
        .collect()
}

/// The first address the system resolver gives for a host name.
fn resolve(name: &str) -> Option<String> {
    (name, 0u16)
        .to_socket_addrs()
        .ok()?
        .next()
        .map(|a| a.ip().to_string())
}

/// 2.5.2's `RpcResult.Raise(msg)`: `OpExecError("<msg>: <fail_msg>")`.
pub fn raise(result: &NodeResult, msg: &str) -> Result<(), GanetiError> {
    match result.fail_msg() {
        None => Ok(()),
        Some(fail) => Err(GanetiError::exec(format!("{msg}: {fail}"))),
    }
}
