//! Opcode definitions of ganeti-masterd (2.5.2 `opcodes.py` and the type
//! checks of `ht.py` they use).
//!
//! An opcode travels as a flat JSON object: `OP_ID` plus one key per
//! parameter that was set. This module knows, for the opcodes implemented so
//! far, every parameter with its type and default, the field shown in job
//! summaries and whether the logical unit takes the Big Ganeti Lock
//! exclusively ([`OpDef::req_bgl`]). It provides, as 2.5.2 does them:
//! * [`load`]: the check of `LoadOpCode` at submission (an object with a
//!   known `OP_ID`), with 2.5.2's `ValueError` texts;
//! * [`check_submit`]: the submission checks of the job queue (priority
//!   -10/0/10, absolute dependencies), with 2.5.2's `GenericError` texts;
//! * [`validate`]: what a logical unit does before running (`debug_level`
//!   forced to an integer, then `Validate(set_defaults=True)`): required
//!   parameters, defaults filled in place, type checks, with 2.5.2's
//!   `OpPrereqError` texts, opcode parameters first, then the common ones;
//! * [`parse`]: [`validate`] and a typed view ([`Validated`]);
//! * [`summary`] and [`tiny_summary`]: `OpCode.Summary()` (`gnt-job list`)
//!   and `TinySummary()` (worker thread names), with Python's `str()` of the
//!   summary field ([`py_str`], [`py_repr`]).
//!
//! Opcodes known: `OP_CLUSTER_POST_INIT`, `OP_CLUSTER_DESTROY`,
//! `OP_CLUSTER_QUERY`, `OP_CLUSTER_CONFIG_QUERY`, `OP_CLUSTER_REDIST_CONF`,
//! `OP_TAGS_GET`, `OP_TAGS_SET`, `OP_TAGS_DEL`, `OP_TEST_DELAY`. Others are
//! unknown (refused at submission, as 2.5.2 refuses an unknown `OP_ID`).
//!
//! Differences from 2.5.2, on purpose:
//! * keys that are not parameters of the opcode are kept and ignored (2.5.2
//!   fails `LoadOpCode` with an `AttributeError`); a 3.0 client's `reason`
//!   is therefore accepted (spec 8.4). [`unknown_params`] lists them;
//! * `priority` must be an integer: 2.5.2's set membership also lets
//!   `false`, `0.0`, `10.0` through (Python equality), which then end up in
//!   job files;
//! * a malformed `depends` entry (not a two-item list, unhashable statuses)
//!   simply fails the check; 2.5.2 raises a `TypeError` for some of them;
//!   a job id given as a string must be decimal digits only (Python's `$`
//!   also accepted a trailing newline) and fit in 64 bits;
//! * integers beyond 64 bits are floats to serde_json, so they fail integer
//!   checks that Python's `long` passes;
//! * dictionaries in summaries and messages print with sorted keys (Python 2
//!   printed them in hash order).
#![forbid(unsafe_code)]

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::errors::{GanetiError, ECODE_INVAL};
use crate::pytext::{self, Strings};

/// Opcode priorities (2.5.2 `OP_PRIO_*`): lower runs first.
pub const OP_PRIO_LOWEST: i32 = 19;
pub const OP_PRIO_HIGHEST: i32 = -20;
pub const OP_PRIO_LOW: i32 = 10;
pub const OP_PRIO_NORMAL: i32 = 0;
pub const OP_PRIO_HIGH: i32 = -10;
pub const OP_PRIO_DEFAULT: i32 = OP_PRIO_NORMAL;
/// The priorities a submitted opcode may have, in the order 2.5.2's
/// messages list them (its set's iteration order).
pub const OP_PRIO_SUBMIT_VALID: [i32; 3] = [OP_PRIO_NORMAL, OP_PRIO_LOW, OP_PRIO_HIGH];

/// Final job statuses a dependency may ask for, in 2.5.2's set order.
pub const JOBS_FINALIZED: [&str; 3] = ["canceled", "success", "error"];

/// Tag kinds (`kind` of the `OP_TAGS_*` opcodes), in 2.5.2's set order.
pub const TAG_KINDS: [&str; 4] = ["node", "cluster", "nodegroup", "instance"];

/// Python's description of the dependency check at submission, as
/// `Opcode <i> has invalid dependencies, must match ...` prints it.
pub const DEPENDS_DESC_ABSOLUTE: &str = "None or (List of ((Length 2) and (Item 0 is JobId, \
     item 1 is (List of (OneOf canceled, success, error)))))";

/// The same for the opcode parameter itself (relative ids allowed).
pub const DEPENDS_DESC_RELATIVE: &str = "None or (List of ((Length 2) and (Item 0 is (JobId or \
     RelativeJobId), item 1 is (List of (OneOf canceled, success, error)))))";

/// A parameter's type check (2.5.2 `ht.T*`, as the table of spec 6.6 names
/// them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `TBool`.
    Bool,
    /// `TMaybeBool`: bool or null.
    MaybeBool,
    /// `TPositiveInt`: an integer (not a bool) ≥ 0.
    PositiveInt,
    /// `TOr(TNone, TPositiveInt)`.
    MaybePositiveInt,
    /// `TNumber`: an integer or a float, not a bool.
    Number,
    /// `TMaybeString`: a non-empty string or null.
    MaybeString,
    /// `TListOf(TNonEmptyString)`.
    NonEmptyStringList,
    /// `TElemOf(...)` of strings.
    OneOf(&'static [&'static str]),
    /// `TElemOf(OP_PRIO_SUBMIT_VALID)`, integers only.
    Priority,
    /// The `depends` check with relative (negative) job ids allowed.
    Depends,
}

impl Check {
    fn accepts(self, v: &Value) -> bool {
        match self {
            Check::Bool => v.is_boolean(),
            Check::MaybeBool => v.is_null() || v.is_boolean(),
            Check::PositiveInt => is_positive_int(v),
            Check::MaybePositiveInt => v.is_null() || is_positive_int(v),
            Check::Number => v.is_number(),
            Check::MaybeString => v.is_null() || is_non_empty_string(v),
            Check::NonEmptyStringList => v
                .as_array()
                .is_some_and(|items| items.iter().all(is_non_empty_string)),
            Check::OneOf(allowed) => v.as_str().is_some_and(|s| allowed.contains(&s)),
            Check::Priority => submit_prio(v).is_some(),
            Check::Depends => parse_depends(v, true).is_some(),
        }
    }
}

fn is_positive_int(v: &Value) -> bool {
    v.is_u64()
}

fn is_non_empty_string(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

/// `v` as a priority a submitted opcode may have.
fn submit_prio(v: &Value) -> Option<i32> {
    v.as_i64().and_then(|p| {
        OP_PRIO_SUBMIT_VALID
            .into_iter()
            .find(|q| i64::from(*q) == p)
    })
}

/// A parameter's default: required, or the value set when it is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamDefault {
    /// `ht.NoDefault`: absent is an error (null is a value, and is checked).
    Required,
    Null,
    Bool(bool),
    Int(i64),
    /// `ht.EmptyList`: a fresh `[]`.
    EmptyList,
}

impl ParamDefault {
    fn value(self) -> Option<Value> {
        match self {
            ParamDefault::Required => None,
            ParamDefault::Null => Some(Value::Null),
            ParamDefault::Bool(b) => Some(Value::Bool(b)),
            ParamDefault::Int(i) => Some(Value::from(i)),
            ParamDefault::EmptyList => Some(Value::Array(Vec::new())),
        }
    }
}

/// One opcode parameter (an entry of 2.5.2's `OP_PARAMS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub default: ParamDefault,
    pub check: Check,
}

/// The hooks a logical unit runs (`HPATH`, `HTYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hooks {
    pub path: &'static str,
    pub htype: &'static str,
}

/// One opcode: its parameters and what the processor needs to know of its
/// logical unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpDef {
    pub id: &'static str,
    /// The opcode's own parameters, in 2.5.2's order (checked before the
    /// [`COMMON_PARAMS`]).
    pub params: &'static [Param],
    /// `OP_DSC_FIELD`: the parameter shown in the summary.
    pub dsc_field: Option<&'static str>,
    /// `REQ_BGL`: the logical unit takes the BGL exclusively (else shared).
    pub req_bgl: bool,
    pub hooks: Option<Hooks>,
}

const fn param(name: &'static str, default: ParamDefault, check: Check) -> Param {
    Param {
        name,
        default,
        check,
    }
}

/// The parameters of every opcode (2.5.2 `OpCode.OP_PARAMS`), in order.
pub const COMMON_PARAMS: &[Param] = &[
    param("dry_run", ParamDefault::Null, Check::MaybeBool),
    param("debug_level", ParamDefault::Null, Check::MaybePositiveInt),
    param(
        "priority",
        ParamDefault::Int(OP_PRIO_DEFAULT as i64),
        Check::Priority,
    ),
    param("depends", ParamDefault::Null, Check::Depends),
    param("comment", ParamDefault::Null, Check::MaybeString),
];

const TAG_KIND: Param = param("kind", ParamDefault::Required, Check::OneOf(&TAG_KINDS));
const TAG_TAGS: Param = param("tags", ParamDefault::Required, Check::NonEmptyStringList);
const TAG_NAME: Param = param("name", ParamDefault::Required, Check::MaybeString);

/// The opcodes known so far.
pub const OPCODES: &[OpDef] = &[
    OpDef {
        id: "OP_CLUSTER_POST_INIT",
        params: &[],
        dsc_field: None,
        req_bgl: true,
        hooks: Some(Hooks {
            path: "cluster-init",
            htype: "CLUSTER",
        }),
    },
    OpDef {
        id: "OP_CLUSTER_DESTROY",
        params: &[],
        dsc_field: None,
        req_bgl: true,
        hooks: Some(Hooks {
            path: "cluster-destroy",
            htype: "CLUSTER",
        }),
    },
    OpDef {
        id: "OP_CLUSTER_QUERY",
        params: &[],
        dsc_field: None,
        req_bgl: false,
        hooks: None,
    },
    OpDef {
        id: "OP_CLUSTER_CONFIG_QUERY",
        params: &[param(
            "output_fields",
            ParamDefault::Required,
            Check::NonEmptyStringList,
        )],
        dsc_field: None,
        req_bgl: false,
        hooks: None,
    },
    OpDef {
        id: "OP_CLUSTER_REDIST_CONF",
        params: &[],
        dsc_field: None,
        req_bgl: false,
        hooks: None,
    },
    OpDef {
        id: "OP_TAGS_GET",
        params: &[TAG_KIND, TAG_NAME],
        dsc_field: Some("name"),
        req_bgl: false,
        hooks: None,
    },
    OpDef {
        id: "OP_TAGS_SET",
        params: &[TAG_KIND, TAG_TAGS, TAG_NAME],
        dsc_field: None,
        req_bgl: false,
        hooks: None,
    },
    OpDef {
        id: "OP_TAGS_DEL",
        params: &[TAG_KIND, TAG_TAGS, TAG_NAME],
        dsc_field: None,
        req_bgl: false,
        hooks: None,
    },
    OpDef {
        id: "OP_TEST_DELAY",
        params: &[
            param("duration", ParamDefault::Required, Check::Number),
            param("on_master", ParamDefault::Bool(true), Check::Bool),
            param(
                "on_nodes",
                ParamDefault::EmptyList,
                Check::NonEmptyStringList,
            ),
            param("repeat", ParamDefault::Int(0), Check::PositiveInt),
        ],
        dsc_field: Some("duration"),
        req_bgl: false,
        hooks: None,
    },
];

/// The definition of a known opcode.
pub fn definition(op_id: &str) -> Option<&'static OpDef> {
    OPCODES.iter().find(|d| d.id == op_id)
}

pub fn is_known(op_id: &str) -> bool {
    definition(op_id).is_some()
}

/// The `OP_ID` of an opcode object, when it is a string.
pub fn op_id(input: &Map<String, Value>) -> Option<&str> {
    input.get("OP_ID")?.as_str()
}

/// Why `LoadOpCode` refused a submitted opcode. 2.5.2 raises a `ValueError`,
/// which LUXI answers as the plain string `Caught exception: <text>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// Not a JSON object; carries Python's type name of what it was.
    NotAnObject(&'static str),
    MissingOpId,
    /// `OP_ID` is not a known opcode; carries Python's `str()` of it.
    Unsupported(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotAnObject(t) => write!(f, "Invalid data to LoadOpCode (<type '{t}'>)"),
            LoadError::MissingOpId => f.write_str("Invalid data to LoadOpcode, missing OP_ID"),
            LoadError::Unsupported(id) => {
                write!(f, "Invalid data to LoadOpCode: OP_ID {id} unsupported")
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// 2.5.2's `OpCode.LoadOpCode` check: an object with a known `OP_ID`. No
/// parameter is checked here (see [`check_submit`] and [`validate`]).
pub fn load(v: &Value) -> Result<&Map<String, Value>, LoadError> {
    let Value::Object(map) = v else {
        return Err(LoadError::NotAnObject(py_type(v)));
    };
    let id = map.get("OP_ID").ok_or(LoadError::MissingOpId)?;
    match id.as_str() {
        Some(s) if is_known(s) => Ok(map),
        _ => Err(LoadError::Unsupported(py_str(id))),
    }
}

/// The job queue's checks of opcode number `index` of a submitted job (2.5.2
/// `_SubmitJobUnlocked`): a priority in [`OP_PRIO_SUBMIT_VALID`] (absent =
/// default) and dependencies with absolute job ids only.
pub fn check_submit(index: usize, input: &Map<String, Value>) -> Result<(), GanetiError> {
    submit_priority(index, input)?;
    if let Some(deps) = input.get("depends") {
        if parse_depends(deps, false).is_none() {
            return Err(invalid_depends(index, deps));
        }
    }
    Ok(())
}

/// The priority of opcode number `index` at submission: one of
/// [`OP_PRIO_SUBMIT_VALID`] ([`OP_PRIO_DEFAULT`] when absent), else
/// 2.5.2's error ([`invalid_priority`]).
pub fn submit_priority(index: usize, input: &Map<String, Value>) -> Result<i32, GanetiError> {
    match input.get("priority") {
        None => Ok(OP_PRIO_DEFAULT),
        Some(prio) => submit_prio(prio).ok_or_else(|| invalid_priority(index, prio)),
    }
}

/// 2.5.2's error for opcode number `index` submitted with priority `prio`.
pub fn invalid_priority(index: usize, prio: &Value) -> GanetiError {
    let allowed: Vec<String> = OP_PRIO_SUBMIT_VALID.iter().map(i32::to_string).collect();
    GanetiError::msg(
        "GenericError",
        format!(
            "Opcode {index} has invalid priority {}, allowed are {}",
            py_str(prio),
            allowed.join(", ")
        ),
    )
}

/// 2.5.2's error for opcode number `index` submitted with dependencies
/// `deps` that fail the check (relative ids included).
pub fn invalid_depends(index: usize, deps: &Value) -> GanetiError {
    GanetiError::msg(
        "GenericError",
        format!(
            "Opcode {index} has invalid dependencies, must match \
             {DEPENDS_DESC_ABSOLUTE}: {}",
            py_str(deps)
        ),
    )
}

/// The job a dependency points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepJob {
    /// An absolute job id (given as a number or a string of digits).
    Id(u64),
    /// `-1` = the job submitted just before in the same `SubmitManyJobs`.
    Relative(i64),
}

/// One entry of `depends`: the job, and the final statuses it must end in
/// (empty: any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub job: DepJob,
    pub statuses: Vec<String>,
}

/// Reads a `depends` value: null (none) or a list of `[job id, [statuses]]`.
/// `None` when it does not have that shape, when a status is not final, or
/// when an id is relative (negative) and `allow_relative` is false.
pub fn parse_depends(v: &Value, allow_relative: bool) -> Option<Vec<Dependency>> {
    if v.is_null() {
        return Some(Vec::new());
    }
    v.as_array()?
        .iter()
        .map(|item| {
            let [id, statuses] = item.as_array()?.as_slice() else {
                return None;
            };
            let job = match id.as_i64().filter(|n| *n < 0 && allow_relative) {
                Some(n) => DepJob::Relative(n),
                None => DepJob::Id(job_id(id)?),
            };
            let statuses = statuses
                .as_array()?
                .iter()
                .map(|s| {
                    s.as_str()
                        .filter(|s| JOBS_FINALIZED.contains(s))
                        .map(str::to_string)
                })
                .collect::<Option<Vec<String>>>()?;
            Some(Dependency { job, statuses })
        })
        .collect()
}

/// A job id as 2.5.2's `ht.TJobId` accepts it: a non-negative integer or
/// a string of decimal digits ([`job_id_text`]). Ids beyond `u64` are
/// refused.
pub fn job_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => job_id_text(s),
        _ => None,
    }
}

/// A string of decimal digits as a job id (Python's `$` in 2.5.2's
/// pattern also let a trailing newline through; refused here).
pub fn job_id_text(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Keys of `input` that are neither `OP_ID` nor a parameter of its opcode
/// (kept, ignored for execution).
pub fn unknown_params(input: &Map<String, Value>) -> Vec<String> {
    let own = op_id(input)
        .and_then(definition)
        .map_or(&[][..], |d| d.params);
    input
        .keys()
        .filter(|k| {
            k.as_str() != "OP_ID"
                && !own
                    .iter()
                    .chain(COMMON_PARAMS)
                    .any(|p| p.name == k.as_str())
        })
        .cloned()
        .collect()
}

fn definition_of(input: &Map<String, Value>) -> Result<&'static OpDef, GanetiError> {
    op_id(input)
        .and_then(definition)
        .ok_or_else(|| GanetiError::msg("OpCodeUnknown", "Unknown opcode"))
}

/// 2.5.2's `Validate(set_defaults=True)` alone: for each parameter, the
/// opcode's own first, then the common ones: absent and required →
/// `Required parameter '<OP_ID>.<name>' missing`; absent → its default is
/// set; then the type check → `Parameter '<OP_ID>.<name>' fails
/// validation` (both `OpPrereqError`, `wrong_input`). Stops at the first
/// failure, with the defaults set so far left in place, as 2.5.2.
pub fn validate_params(input: &mut Map<String, Value>) -> Result<(), GanetiError> {
    let def = definition_of(input)?;
    for p in def.params.iter().chain(COMMON_PARAMS) {
        if !input.contains_key(p.name) {
            let Some(default) = p.default.value() else {
                return Err(GanetiError::prereq(
                    format!("Required parameter '{}.{}' missing", def.id, p.name),
                    ECODE_INVAL,
                ));
            };
            input.insert(p.name.to_string(), default);
        }
        let value = &input[p.name];
        if !p.check.accepts(value) {
            log::error!(
                "OpCode {}, parameter {}, has invalid type <type '{}'>/value {}",
                def.id,
                p.name,
                py_type(value),
                py_str(value)
            );
            return Err(GanetiError::prereq(
                format!("Parameter '{}.{}' fails validation", def.id, p.name),
                ECODE_INVAL,
            ));
        }
    }
    Ok(())
}

/// What 2.5.2's logical unit constructor does with its opcode before
/// anything else: `debug_level` becomes 0 unless it is a Python `int` (a
/// bool is one, and then fails the check), then [`validate_params`]. An
/// unknown `OP_ID` is `OpCodeUnknown("Unknown opcode")`, the processor's
/// error for an opcode without a logical unit.
pub fn validate(input: &mut Map<String, Value>) -> Result<(), GanetiError> {
    definition_of(input)?;
    let is_py_int = |v: &Value| v.is_boolean() || v.is_i64();
    if !input.get("debug_level").is_some_and(is_py_int) {
        input.insert("debug_level".into(), Value::from(0));
    }
    validate_params(input)
}

/// The tag kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagKind {
    Cluster,
    Node,
    NodeGroup,
    Instance,
}

/// `OP_TEST_DELAY`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TestDelay {
    /// Seconds; negative is an execution error ("failure generator").
    pub duration: f64,
    pub on_master: bool,
    pub on_nodes: Vec<String>,
    pub repeat: u64,
}

/// `OP_CLUSTER_CONFIG_QUERY`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConfigQuery {
    pub output_fields: Vec<String>,
}

/// `OP_TAGS_GET`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TagsGet {
    pub kind: TagKind,
    /// Null for the cluster.
    pub name: Option<String>,
}

/// `OP_TAGS_SET` and `OP_TAGS_DEL`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TagsChange {
    pub kind: TagKind,
    pub tags: Vec<String>,
    pub name: Option<String>,
}

/// A validated opcode's own parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum OpCode {
    ClusterPostInit,
    ClusterDestroy,
    ClusterQuery,
    ClusterConfigQuery(ConfigQuery),
    ClusterRedistConf,
    TagsGet(TagsGet),
    TagsSet(TagsChange),
    TagsDel(TagsChange),
    TestDelay(TestDelay),
}

/// The parameters every opcode has, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    /// Null counts as false (2.5.2 `getattr(op, "dry_run", False)`).
    pub dry_run: bool,
    pub debug_level: u64,
    pub priority: i32,
    pub depends: Vec<Dependency>,
    pub comment: Option<String>,
}

/// An opcode after [`parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    pub def: &'static OpDef,
    pub op: OpCode,
    pub common: Common,
}

/// [`validate`] in place, then the typed view of the result.
pub fn parse(input: &mut Map<String, Value>) -> Result<Validated, GanetiError> {
    validate(input)?;
    let def = definition_of(input)?;
    let op = match def.id {
        "OP_CLUSTER_POST_INIT" => OpCode::ClusterPostInit,
        "OP_CLUSTER_DESTROY" => OpCode::ClusterDestroy,
        "OP_CLUSTER_QUERY" => OpCode::ClusterQuery,
        "OP_CLUSTER_CONFIG_QUERY" => OpCode::ClusterConfigQuery(typed(input)?),
        "OP_CLUSTER_REDIST_CONF" => OpCode::ClusterRedistConf,
        "OP_TAGS_GET" => OpCode::TagsGet(typed(input)?),
        "OP_TAGS_SET" => OpCode::TagsSet(typed(input)?),
        "OP_TAGS_DEL" => OpCode::TagsDel(typed(input)?),
        "OP_TEST_DELAY" => OpCode::TestDelay(typed(input)?),
        other => {
            return Err(GanetiError::msg(
                "ProgrammerError",
                format!("Opcode {other} has no typed form"),
            ))
        }
    };
    let int = |name: &str| input.get(name).and_then(Value::as_i64).unwrap_or(0);
    let common = Common {
        dry_run: input
            .get("dry_run")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        debug_level: u64::try_from(int("debug_level")).unwrap_or(0),
        priority: i32::try_from(int("priority")).unwrap_or(OP_PRIO_DEFAULT),
        depends: input
            .get("depends")
            .and_then(|d| parse_depends(d, true))
            .unwrap_or_default(),
        comment: input
            .get("comment")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    Ok(Validated { def, op, common })
}

/// Deserializes the validated parameters (unknown keys are ignored).
fn typed<T: DeserializeOwned>(input: &Map<String, Value>) -> Result<T, GanetiError> {
    serde_json::from_value(Value::Object(input.clone())).map_err(|e| {
        GanetiError::msg(
            "ProgrammerError",
            format!("Validated opcode does not match its type: {e}"),
        )
    })
}

/// 2.5.2's `OpCode.Summary()`: the `OP_ID` without `OP_`, and the summary
/// field's value in parentheses (`TEST_DELAY(10)`, `TAGS_GET(None)`; a list
/// is comma-joined), as `gnt-job list` shows it.
pub fn summary(input: &Map<String, Value>) -> String {
    let id = input.get("OP_ID").map(py_str).unwrap_or_default();
    let text = id.get(3..).unwrap_or("");
    let field = op_id(input).and_then(definition).and_then(|d| d.dsc_field);
    match field {
        None => text.to_string(),
        Some(field) => {
            let shown = match input.get(field) {
                None => "None".to_string(),
                Some(Value::Array(items)) => items.iter().map(py_str).collect::<Vec<_>>().join(","),
                Some(v) => py_str(v),
            };
            format!("{text}({shown})")
        }
    }
}

/// 2.5.2's `OpCode.TinySummary()`: the `OP_ID` without `OP_`, with
/// `CLUSTER_`, `GROUP_`, `NODE_`, `INSTANCE_` shortened to `C_`, `G_`, `N_`,
/// `I_` (worker thread names, spec 3.9).
pub fn tiny_summary(input: &Map<String, Value>) -> String {
    const PREFIXES: [(&str, &str); 4] = [
        ("CLUSTER_", "C_"),
        ("GROUP_", "G_"),
        ("NODE_", "N_"),
        ("INSTANCE_", "I_"),
    ];
    let id = input.get("OP_ID").map(py_str).unwrap_or_default();
    let text = id.get(3..).unwrap_or("");
    for (long, short) in PREFIXES {
        if let Some(rest) = text.strip_prefix(long) {
            return format!("{short}{rest}");
        }
    }
    text.to_string()
}

/// Python 2's type name of a JSON value as `json.loads` gives it.
pub fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(n) if n.is_i64() => "int",
        Value::Number(_) => "long",
        Value::String(_) => "unicode",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python 2's `str()` of a JSON value ([`pytext::py_str`]); strings are
/// `unicode`, as in 2.5.2's opcode checks run on `json.loads` input.
pub fn py_str(v: &Value) -> String {
    pytext::py_str(v, Strings::Unicode)
}

/// Python 2's `repr()` of a JSON value ([`pytext::py_repr`]): `u'...'`
/// strings, `None`, `True`, shortest round-trip floats, an `L` after
/// integers beyond 63 bits.
pub fn py_repr(v: &Value) -> String {
    pytext::py_repr(v, Strings::Unicode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    fn missing(id: &str, name: &str) -> GanetiError {
        GanetiError::prereq(
            format!("Required parameter '{id}.{name}' missing"),
            ECODE_INVAL,
        )
    }

    fn invalid(id: &str, name: &str) -> GanetiError {
        GanetiError::prereq(
            format!("Parameter '{id}.{name}' fails validation"),
            ECODE_INVAL,
        )
    }

    fn expect_result(expected: &str) -> Result<Value, GanetiError> {
        match expected.strip_prefix("ERR:") {
            Some(msg) => Err(GanetiError::prereq(msg, ECODE_INVAL)),
            None => Ok(serde_json::from_str(expected).unwrap()),
        }
    }

    #[test]
    fn matches_2_5_2_on_every_oracle_case() {
        for (input, summ, tiny, submit, valid, lu) in ORACLE {
            let value: Value = serde_json::from_str(input).unwrap();
            let map = load(&value).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(summary(map), *summ, "summary of {input}");
            assert_eq!(tiny_summary(map), *tiny, "tiny summary of {input}");
            let checked = check_submit(0, map);
            if *submit == "ok" {
                assert_eq!(checked, Ok(()), "submission of {input}");
            } else {
                assert_eq!(
                    checked,
                    Err(GanetiError::msg("GenericError", *submit)),
                    "submission of {input}"
                );
            }
            let mut pure = map.clone();
            let got = validate_params(&mut pure).map(|()| Value::Object(pure));
            assert_eq!(got, expect_result(valid), "Validate(True) of {input}");
            let mut full = map.clone();
            let got = validate(&mut full).map(|()| Value::Object(full));
            assert_eq!(got, expect_result(lu), "LU validation of {input}");
        }
    }

    #[test]
    fn load_refuses_as_2_5_2() {
        for (input, message) in ORACLE_LOAD {
            let value: Value = serde_json::from_str(input).unwrap();
            assert_eq!(load(&value).unwrap_err().to_string(), *message, "{input}");
        }
        let cases = [
            (json!(true), "bool"),
            (json!(1.5), "float"),
            (json!(u64::MAX), "long"),
        ];
        for (v, t) in cases {
            assert_eq!(load(&v), Err(LoadError::NotAnObject(t)));
        }
        assert_eq!(
            load(&json!({"OP_ID": ["OP_TEST_DELAY"]}))
                .unwrap_err()
                .to_string(),
            "Invalid data to LoadOpCode: OP_ID [u'OP_TEST_DELAY'] unsupported"
        );
    }

    #[test]
    fn unknown_keys_are_kept_and_ignored() {
        let reason = json!([["gnt:client:gnt-debug", "delay", 1795811926521259264u64]]);
        let v = json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.1, "reason": reason,
                       "interruptible": false});
        let map = load(&v).unwrap();
        assert_eq!(unknown_params(map), ["interruptible", "reason"]);
        let mut m = map.clone();
        let parsed = parse(&mut m).unwrap();
        assert_eq!(m["reason"], reason);
        assert_eq!(m["interruptible"], json!(false));
        assert_eq!(
            parsed.op,
            OpCode::TestDelay(TestDelay {
                duration: 0.1,
                on_master: true,
                on_nodes: vec![],
                repeat: 0
            })
        );
        assert!(
            unknown_params(&obj(json!({"OP_ID": "OP_TAGS_GET", "kind": "cluster",
                                           "name": null, "priority": 0})))
            .is_empty()
        );
    }

    #[test]
    fn an_unknown_opcode_is_op_code_unknown_and_untouched() {
        for v in [
            json!({"OP_ID": "OP_INSTANCE_CREATE"}),
            json!({"OP_ID": 3}),
            json!({"duration": 1}),
        ] {
            let mut m = obj(v.clone());
            let err = validate(&mut m).unwrap_err();
            assert_eq!(err, GanetiError::msg("OpCodeUnknown", "Unknown opcode"));
            assert_eq!(Value::Object(m.clone()), v);
            assert_eq!(validate_params(&mut m), Err(err.clone()));
            assert_eq!(parse(&mut m).unwrap_err(), err);
            assert_eq!(Value::Object(m), v);
        }
        assert!(!is_known("OP_TEST_DUMMY"));
        assert_eq!(
            summary(&obj(json!({"OP_ID": "OP_NODE_ADD", "node_name": "x"}))),
            "NODE_ADD"
        );
        assert_eq!(
            tiny_summary(&obj(json!({"OP_ID": "OP_GROUP_ADD"}))),
            "G_ADD"
        );
        assert_eq!(
            tiny_summary(&obj(json!({"OP_ID": "OP_INSTANCE_CREATE"}))),
            "I_CREATE"
        );
        assert_eq!(
            tiny_summary(&obj(json!({"OP_ID": "OP_NODE_REMOVE"}))),
            "N_REMOVE"
        );
        assert_eq!(summary(&obj(json!({}))), "");
    }

    #[test]
    fn priorities_are_the_three_submit_values_and_integers_only() {
        for (prio, ok) in [
            (json!(OP_PRIO_HIGH), true),
            (json!(OP_PRIO_NORMAL), true),
            (json!(OP_PRIO_LOW), true),
            // One past each end of the submit-valid range.
            (json!(OP_PRIO_LOW + 1), false),
            (json!(OP_PRIO_HIGH - 1), false),
            (json!(OP_PRIO_HIGHEST), false),
            (json!(OP_PRIO_LOWEST), false),
            // 2.5.2's set membership lets these through (documented).
            (json!(false), false),
            (json!(0.0), false),
            (json!(10.0), false),
            (json!([0]), false),
        ] {
            let m = obj(json!({"OP_ID": "OP_CLUSTER_QUERY", "priority": prio}));
            let mut v = m.clone();
            assert_eq!(validate(&mut v).is_ok(), ok, "{prio}");
            if ok {
                assert_eq!(check_submit(2, &m), Ok(()));
            } else {
                assert_eq!(
                    check_submit(2, &m).unwrap_err().to_string(),
                    format!(
                        "Opcode 2 has invalid priority {}, allowed are 0, 10, -10",
                        py_str(&prio)
                    )
                );
                assert_eq!(
                    validate(&mut v).unwrap_err(),
                    invalid("OP_CLUSTER_QUERY", "priority")
                );
            }
        }
    }

    #[test]
    fn required_and_null_are_different() {
        // name is required but may be null (cluster tags).
        let mut m = obj(json!({"OP_ID": "OP_TAGS_SET", "kind": "cluster", "tags": ["a"]}));
        assert_eq!(validate(&mut m), Err(missing("OP_TAGS_SET", "name")));
        let mut m = obj(
            json!({"OP_ID": "OP_TAGS_SET", "kind": "cluster", "tags": ["a"],
                              "name": null}),
        );
        validate(&mut m).unwrap();
        // duration is required and may not be null.
        let mut m = obj(json!({"OP_ID": "OP_TEST_DELAY", "duration": null}));
        assert_eq!(validate(&mut m), Err(invalid("OP_TEST_DELAY", "duration")));
        // Checks go in parameter order and stop at the first failure, with the
        // defaults set so far left in place.
        let mut m = obj(
            json!({"OP_ID": "OP_TEST_DELAY", "duration": 1, "repeat": -1,
                              "priority": 7}),
        );
        assert_eq!(validate(&mut m), Err(invalid("OP_TEST_DELAY", "repeat")));
        assert_eq!(m["on_master"], json!(true));
        assert_eq!(m["on_nodes"], json!([]));
        assert!(!m.contains_key("dry_run"));
        // Defaults never replace a value that is present.
        let mut m = obj(
            json!({"OP_ID": "OP_TEST_DELAY", "duration": 2, "on_master": false,
                              "repeat": 3, "dry_run": true, "comment": "c"}),
        );
        validate(&mut m).unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"OP_ID": "OP_TEST_DELAY", "duration": 2, "on_master": false,
                   "on_nodes": [], "repeat": 3, "dry_run": true, "debug_level": 0,
                   "priority": 0, "depends": null, "comment": "c"})
        );
    }

    #[test]
    fn parse_gives_the_typed_opcode() {
        let mut m = obj(
            json!({"OP_ID": "OP_TEST_DELAY", "duration": -3, "on_nodes": ["n1"],
                              "repeat": 2, "priority": -10, "debug_level": 1.5,
                              "depends": [[5, ["success"]], ["7", []],
                                          [-1, ["error", "canceled"]]]}),
        );
        let v = parse(&mut m).unwrap();
        assert_eq!(v.def.id, "OP_TEST_DELAY");
        assert!(!v.def.req_bgl);
        assert_eq!(
            v.op,
            OpCode::TestDelay(TestDelay {
                duration: -3.0,
                on_master: true,
                on_nodes: vec!["n1".into()],
                repeat: 2
            })
        );
        assert_eq!(
            v.common,
            Common {
                dry_run: false,
                debug_level: 0,
                priority: -10,
                depends: vec![
                    Dependency {
                        job: DepJob::Id(5),
                        statuses: vec!["success".into()]
                    },
                    Dependency {
                        job: DepJob::Id(7),
                        statuses: vec![]
                    },
                    Dependency {
                        job: DepJob::Relative(-1),
                        statuses: vec!["error".into(), "canceled".into()]
                    },
                ],
                comment: None,
            }
        );
        let kinds = [
            ("cluster", TagKind::Cluster),
            ("node", TagKind::Node),
            ("nodegroup", TagKind::NodeGroup),
            ("instance", TagKind::Instance),
        ];
        for (text, kind) in kinds {
            let name = if kind == TagKind::Cluster {
                Value::Null
            } else {
                json!("x1")
            };
            let mut m = obj(json!({"OP_ID": "OP_TAGS_GET", "kind": text, "name": name}));
            let expected_name = name.as_str().map(str::to_string);
            assert_eq!(
                parse(&mut m).unwrap().op,
                OpCode::TagsGet(TagsGet {
                    kind,
                    name: expected_name.clone()
                })
            );
            for id in ["OP_TAGS_SET", "OP_TAGS_DEL"] {
                let mut m = obj(json!({"OP_ID": id, "kind": text, "name": name,
                                      "tags": ["a", "b"]}));
                let change = TagsChange {
                    kind,
                    tags: vec!["a".into(), "b".into()],
                    name: expected_name.clone(),
                };
                let expected = if id == "OP_TAGS_SET" {
                    OpCode::TagsSet(change)
                } else {
                    OpCode::TagsDel(change)
                };
                assert_eq!(parse(&mut m).unwrap().op, expected);
            }
        }
        let mut m = obj(json!({"OP_ID": "OP_CLUSTER_CONFIG_QUERY",
                              "output_fields": ["cluster_name"], "dry_run": true,
                              "comment": "why"}));
        let v = parse(&mut m).unwrap();
        assert_eq!(
            v.op,
            OpCode::ClusterConfigQuery(ConfigQuery {
                output_fields: vec!["cluster_name".into()]
            })
        );
        assert!(v.common.dry_run);
        assert_eq!(v.common.comment.as_deref(), Some("why"));
        for (id, op) in [
            ("OP_CLUSTER_POST_INIT", OpCode::ClusterPostInit),
            ("OP_CLUSTER_DESTROY", OpCode::ClusterDestroy),
            ("OP_CLUSTER_QUERY", OpCode::ClusterQuery),
            ("OP_CLUSTER_REDIST_CONF", OpCode::ClusterRedistConf),
        ] {
            assert_eq!(parse(&mut obj(json!({"OP_ID": id}))).unwrap().op, op);
        }
    }

    #[test]
    fn dependencies_absolute_relative_and_malformed() {
        let deps = json!([[5, ["success"]], [-2, []]]);
        assert!(parse_depends(&deps, false).is_none());
        assert_eq!(
            parse_depends(&deps, true).unwrap()[1].job,
            DepJob::Relative(-2)
        );
        assert_eq!(parse_depends(&Value::Null, false), Some(vec![]));
        for bad in [
            json!("5"),
            json!([5]),
            json!([["12\n", []]]),
            json!([["", []]]),
            json!([["99999999999999999999999", []]]),
            json!([[5, ["success", 1]]]),
            json!([[5, ["queued"]]]),
            json!([{"a": 5, "b": []}]),
            json!([[-0.5, []]]),
        ] {
            assert!(parse_depends(&bad, true).is_none(), "{bad}");
        }
        let m = obj(json!({"OP_ID": "OP_CLUSTER_QUERY", "depends": [[-1, []]]}));
        assert_eq!(
            check_submit(0, &m).unwrap_err().to_string(),
            format!(
                "Opcode 0 has invalid dependencies, must match {DEPENDS_DESC_ABSOLUTE}: [[-1, []]]"
            )
        );
        assert_eq!(validate(&mut m.clone()), Ok(()));
    }

    #[test]
    fn the_table_is_consistent() {
        for def in OPCODES {
            assert!(def.id.starts_with("OP_"));
            if let Some(field) = def.dsc_field {
                assert!(def.params.iter().any(|p| p.name == field), "{}", def.id);
            }
            for p in def.params {
                assert!(COMMON_PARAMS.iter().all(|c| c.name != p.name));
            }
        }
        let exclusive: Vec<&str> = OPCODES.iter().filter(|d| d.req_bgl).map(|d| d.id).collect();
        assert_eq!(exclusive, ["OP_CLUSTER_POST_INIT", "OP_CLUSTER_DESTROY"]);
        assert_eq!(
            definition("OP_CLUSTER_DESTROY").unwrap().hooks,
            Some(Hooks {
                path: "cluster-destroy",
                htype: "CLUSTER"
            })
        );
        assert_eq!(OPCODES.len(), 9);
    }

    #[test]
    fn python_text_of_unicode_values() {
        // The formatting itself is tested in pytext; opcodes print strings
        // as `unicode`, as 2.5.2's opcodes.py did on the oracle's input.
        assert_eq!(
            py_repr(&json!([1, "x", null, 1.5, {"a": ["\u{e9}"]}])),
            "[1, u'x', None, 1.5, {u'a': [u'\\xe9']}]"
        );
        assert_eq!(py_str(&json!(12345678901234567.0)), "1.23456789012e+16");
        assert_eq!(
            py_repr(&json!(12345678901234567.0)),
            "1.2345678901234568e+16"
        );
        assert_eq!(py_str(&json!("x")), "x");
    }

    /// Generated by running 2.5.2's own opcodes.py (python2) on each input:
    /// (input, Summary(), TinySummary(), submission check, Validate(True),
    /// LU constructor: debug_level forced then Validate(True)); "ERR:" = OpPrereqError.
    const ORACLE: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 10}",
        "TEST_DELAY(10)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 10, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 10, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 0.1}",
        "TEST_DELAY(0.1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 0.1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 0.1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 10.0}",
        "TEST_DELAY(10.0)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 10.0, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 10.0, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": -1}",
        "TEST_DELAY(-1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": -1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": -1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1e16}",
        "TEST_DELAY(1e+16)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 1e+16, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1e+16, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 123456789012345.0}",
        "TEST_DELAY(1.23456789012e+14)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 123456789012345.0, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 123456789012345.0, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 0.333333333333333333}",
        "TEST_DELAY(0.333333333333)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 0.3333333333333333, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 0.3333333333333333, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1e-5}",
        "TEST_DELAY(1e-05)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 1e-05, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1e-05, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 0.0001}",
        "TEST_DELAY(0.0001)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 0.0001, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 0.0001, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 100000000000.5}",
        "TEST_DELAY(1e+11)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 100000000000.5, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 100000000000.5, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1e22}",
        "TEST_DELAY(1e+22)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 1e+22, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1e+22, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 2.5e-300}",
        "TEST_DELAY(2.5e-300)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 2.5e-300, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 2.5e-300, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": \"10\"}",
        "TEST_DELAY(10)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.duration' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.duration' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": true}",
        "TEST_DELAY(True)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.duration' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.duration' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": null}",
        "TEST_DELAY(None)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.duration' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.duration' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\"}",
        "TEST_DELAY(None)",
        "TEST_DELAY",
        "ok",
        "ERR:Required parameter 'OP_TEST_DELAY.duration' missing",
        "ERR:Required parameter 'OP_TEST_DELAY.duration' missing",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"repeat\": -1}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.repeat' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.repeat' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"repeat\": 1.0}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.repeat' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.repeat' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"repeat\": null}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.repeat' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.repeat' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"repeat\": false}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.repeat' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.repeat' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"repeat\": 3}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 3}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 3}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"on_master\": null}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.on_master' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.on_master' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"on_master\": 1}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.on_master' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.on_master' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"on_nodes\": [\"a\", \"\"]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.on_nodes' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.on_nodes' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"on_nodes\": \"node1\"}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.on_nodes' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.on_nodes' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"on_nodes\": [\"n1\", \"n2\"], \"repeat\": 2, \"on_master\": false}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": false, \"on_nodes\": [\"n1\", \"n2\"], \"priority\": 0, \"repeat\": 2}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": false, \"on_nodes\": [\"n1\", \"n2\"], \"priority\": 0, \"repeat\": 2}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"on_nodes\": null}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.on_nodes' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.on_nodes' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": \"x\", \"priority\": 5}",
        "TEST_DELAY(x)",
        "TEST_DELAY",
        "Opcode 0 has invalid priority 5, allowed are 0, 10, -10",
        "ERR:Parameter 'OP_TEST_DELAY.duration' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.duration' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"priority\": 5}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid priority 5, allowed are 0, 10, -10",
        "ERR:Parameter 'OP_TEST_DELAY.priority' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.priority' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"priority\": -10}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": -10, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": -10, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"priority\": 10}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 10, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 10, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"priority\": -20}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid priority -20, allowed are 0, 10, -10",
        "ERR:Parameter 'OP_TEST_DELAY.priority' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.priority' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"priority\": null}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid priority None, allowed are 0, 10, -10",
        "ERR:Parameter 'OP_TEST_DELAY.priority' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.priority' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"priority\": \"0\"}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid priority 0, allowed are 0, 10, -10",
        "ERR:Parameter 'OP_TEST_DELAY.priority' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.priority' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"dry_run\": true}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": true, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": true, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"dry_run\": \"yes\"}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.dry_run' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.dry_run' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"dry_run\": 0}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.dry_run' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.dry_run' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"debug_level\": 2}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 2, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 2, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"debug_level\": -1}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.debug_level' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.debug_level' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"debug_level\": true}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.debug_level' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.debug_level' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"debug_level\": 1.5}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.debug_level' fails validation",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"comment\": \"hello\"}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": \"hello\", \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": \"hello\", \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"comment\": \"\"}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.comment' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.comment' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"comment\": 5}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.comment' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.comment' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": []}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": [], \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": [], \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[5, [\"success\"]]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": [[5, [\"success\"]]], \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": [[5, [\"success\"]]], \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[\"5\", [\"success\", \"error\", \"canceled\"]]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": [[\"5\", [\"success\", \"error\", \"canceled\"]]], \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": [[\"5\", [\"success\", \"error\", \"canceled\"]]], \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[-1, []]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid dependencies, must match None or (List of ((Length 2) and (Item 0 is JobId, item 1 is (List of (OneOf canceled, success, error))))): [[-1, []]]",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": [[-1, []]], \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": [[-1, []]], \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[0, []]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": [[0, []]], \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": [[0, []]], \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[\"x5\", []]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid dependencies, must match None or (List of ((Length 2) and (Item 0 is JobId, item 1 is (List of (OneOf canceled, success, error))))): [[u'x5', []]]",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[\"-1\", []]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid dependencies, must match None or (List of ((Length 2) and (Item 0 is JobId, item 1 is (List of (OneOf canceled, success, error))))): [[u'-1', []]]",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[5, [\"running\"]]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid dependencies, must match None or (List of ((Length 2) and (Item 0 is JobId, item 1 is (List of (OneOf canceled, success, error))))): [[5, [u'running']]]",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[5]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid dependencies, must match None or (List of ((Length 2) and (Item 0 is JobId, item 1 is (List of (OneOf canceled, success, error))))): [[5]]",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[5, [], 1]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid dependencies, must match None or (List of ((Length 2) and (Item 0 is JobId, item 1 is (List of (OneOf canceled, success, error))))): [[5, [], 1]]",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[5, \"success\"]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid dependencies, must match None or (List of ((Length 2) and (Item 0 is JobId, item 1 is (List of (OneOf canceled, success, error))))): [[5, u'success']]",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[1.5, []]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid dependencies, must match None or (List of ((Length 2) and (Item 0 is JobId, item 1 is (List of (OneOf canceled, success, error))))): [[1.5, []]]",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[true, []]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid dependencies, must match None or (List of ((Length 2) and (Item 0 is JobId, item 1 is (List of (OneOf canceled, success, error))))): [[True, []]]",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": {\"a\": 1}}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid dependencies, must match None or (List of ((Length 2) and (Item 0 is JobId, item 1 is (List of (OneOf canceled, success, error))))): {u'a': 1}",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[5, null]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid dependencies, must match None or (List of ((Length 2) and (Item 0 is JobId, item 1 is (List of (OneOf canceled, success, error))))): [[5, None]]",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[null, []]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid dependencies, must match None or (List of ((Length 2) and (Item 0 is JobId, item 1 is (List of (OneOf canceled, success, error))))): [[None, []]]",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.depends' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_CLUSTER_POST_INIT\"}",
        "CLUSTER_POST_INIT",
        "C_POST_INIT",
        "ok",
        "{\"OP_ID\": \"OP_CLUSTER_POST_INIT\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"priority\": 0}",
        "{\"OP_ID\": \"OP_CLUSTER_POST_INIT\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"priority\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_CLUSTER_DESTROY\"}",
        "CLUSTER_DESTROY",
        "C_DESTROY",
        "ok",
        "{\"OP_ID\": \"OP_CLUSTER_DESTROY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"priority\": 0}",
        "{\"OP_ID\": \"OP_CLUSTER_DESTROY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"priority\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_CLUSTER_QUERY\"}",
        "CLUSTER_QUERY",
        "C_QUERY",
        "ok",
        "{\"OP_ID\": \"OP_CLUSTER_QUERY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"priority\": 0}",
        "{\"OP_ID\": \"OP_CLUSTER_QUERY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"priority\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_CLUSTER_REDIST_CONF\"}",
        "CLUSTER_REDIST_CONF",
        "C_REDIST_CONF",
        "ok",
        "{\"OP_ID\": \"OP_CLUSTER_REDIST_CONF\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"priority\": 0}",
        "{\"OP_ID\": \"OP_CLUSTER_REDIST_CONF\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"priority\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_CLUSTER_CONFIG_QUERY\", \"output_fields\": [\"cluster_name\", \"drain_flag\"]}",
        "CLUSTER_CONFIG_QUERY",
        "C_CONFIG_QUERY",
        "ok",
        "{\"OP_ID\": \"OP_CLUSTER_CONFIG_QUERY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"output_fields\": [\"cluster_name\", \"drain_flag\"], \"priority\": 0}",
        "{\"OP_ID\": \"OP_CLUSTER_CONFIG_QUERY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"output_fields\": [\"cluster_name\", \"drain_flag\"], \"priority\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_CLUSTER_CONFIG_QUERY\", \"output_fields\": []}",
        "CLUSTER_CONFIG_QUERY",
        "C_CONFIG_QUERY",
        "ok",
        "{\"OP_ID\": \"OP_CLUSTER_CONFIG_QUERY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"output_fields\": [], \"priority\": 0}",
        "{\"OP_ID\": \"OP_CLUSTER_CONFIG_QUERY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"output_fields\": [], \"priority\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_CLUSTER_CONFIG_QUERY\"}",
        "CLUSTER_CONFIG_QUERY",
        "C_CONFIG_QUERY",
        "ok",
        "ERR:Required parameter 'OP_CLUSTER_CONFIG_QUERY.output_fields' missing",
        "ERR:Required parameter 'OP_CLUSTER_CONFIG_QUERY.output_fields' missing",
    ),
    (
        "{\"OP_ID\": \"OP_CLUSTER_CONFIG_QUERY\", \"output_fields\": [\"\"]}",
        "CLUSTER_CONFIG_QUERY",
        "C_CONFIG_QUERY",
        "ok",
        "ERR:Parameter 'OP_CLUSTER_CONFIG_QUERY.output_fields' fails validation",
        "ERR:Parameter 'OP_CLUSTER_CONFIG_QUERY.output_fields' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_CLUSTER_CONFIG_QUERY\", \"output_fields\": \"cluster_name\"}",
        "CLUSTER_CONFIG_QUERY",
        "C_CONFIG_QUERY",
        "ok",
        "ERR:Parameter 'OP_CLUSTER_CONFIG_QUERY.output_fields' fails validation",
        "ERR:Parameter 'OP_CLUSTER_CONFIG_QUERY.output_fields' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_CLUSTER_CONFIG_QUERY\", \"output_fields\": [1]}",
        "CLUSTER_CONFIG_QUERY",
        "C_CONFIG_QUERY",
        "ok",
        "ERR:Parameter 'OP_CLUSTER_CONFIG_QUERY.output_fields' fails validation",
        "ERR:Parameter 'OP_CLUSTER_CONFIG_QUERY.output_fields' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_GET\", \"kind\": \"cluster\", \"name\": null}",
        "TAGS_GET(None)",
        "TAGS_GET",
        "ok",
        "{\"OP_ID\": \"OP_TAGS_GET\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"kind\": \"cluster\", \"name\": null, \"priority\": 0}",
        "{\"OP_ID\": \"OP_TAGS_GET\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"kind\": \"cluster\", \"name\": null, \"priority\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_GET\", \"kind\": \"cluster\"}",
        "TAGS_GET(None)",
        "TAGS_GET",
        "ok",
        "ERR:Required parameter 'OP_TAGS_GET.name' missing",
        "ERR:Required parameter 'OP_TAGS_GET.name' missing",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_GET\", \"kind\": \"node\", \"name\": \"node1.example.com\"}",
        "TAGS_GET(node1.example.com)",
        "TAGS_GET",
        "ok",
        "{\"OP_ID\": \"OP_TAGS_GET\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"kind\": \"node\", \"name\": \"node1.example.com\", \"priority\": 0}",
        "{\"OP_ID\": \"OP_TAGS_GET\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"kind\": \"node\", \"name\": \"node1.example.com\", \"priority\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_GET\", \"kind\": \"instance\", \"name\": \"inst1\"}",
        "TAGS_GET(inst1)",
        "TAGS_GET",
        "ok",
        "{\"OP_ID\": \"OP_TAGS_GET\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"kind\": \"instance\", \"name\": \"inst1\", \"priority\": 0}",
        "{\"OP_ID\": \"OP_TAGS_GET\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"kind\": \"instance\", \"name\": \"inst1\", \"priority\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_GET\", \"kind\": \"nodegroup\", \"name\": \"default\"}",
        "TAGS_GET(default)",
        "TAGS_GET",
        "ok",
        "{\"OP_ID\": \"OP_TAGS_GET\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"kind\": \"nodegroup\", \"name\": \"default\", \"priority\": 0}",
        "{\"OP_ID\": \"OP_TAGS_GET\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"kind\": \"nodegroup\", \"name\": \"default\", \"priority\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_GET\", \"kind\": \"other\", \"name\": null}",
        "TAGS_GET(None)",
        "TAGS_GET",
        "ok",
        "ERR:Parameter 'OP_TAGS_GET.kind' fails validation",
        "ERR:Parameter 'OP_TAGS_GET.kind' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_GET\", \"kind\": \"Cluster\", \"name\": null}",
        "TAGS_GET(None)",
        "TAGS_GET",
        "ok",
        "ERR:Parameter 'OP_TAGS_GET.kind' fails validation",
        "ERR:Parameter 'OP_TAGS_GET.kind' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_GET\", \"name\": null}",
        "TAGS_GET(None)",
        "TAGS_GET",
        "ok",
        "ERR:Required parameter 'OP_TAGS_GET.kind' missing",
        "ERR:Required parameter 'OP_TAGS_GET.kind' missing",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_GET\", \"kind\": null, \"name\": null}",
        "TAGS_GET(None)",
        "TAGS_GET",
        "ok",
        "ERR:Parameter 'OP_TAGS_GET.kind' fails validation",
        "ERR:Parameter 'OP_TAGS_GET.kind' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_GET\", \"kind\": \"node\", \"name\": \"\"}",
        "TAGS_GET()",
        "TAGS_GET",
        "ok",
        "ERR:Parameter 'OP_TAGS_GET.name' fails validation",
        "ERR:Parameter 'OP_TAGS_GET.name' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_GET\", \"kind\": \"node\", \"name\": 5}",
        "TAGS_GET(5)",
        "TAGS_GET",
        "ok",
        "ERR:Parameter 'OP_TAGS_GET.name' fails validation",
        "ERR:Parameter 'OP_TAGS_GET.name' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_SET\", \"kind\": \"cluster\", \"name\": null, \"tags\": [\"a\", \"b\"]}",
        "TAGS_SET",
        "TAGS_SET",
        "ok",
        "{\"OP_ID\": \"OP_TAGS_SET\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"kind\": \"cluster\", \"name\": null, \"priority\": 0, \"tags\": [\"a\", \"b\"]}",
        "{\"OP_ID\": \"OP_TAGS_SET\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"kind\": \"cluster\", \"name\": null, \"priority\": 0, \"tags\": [\"a\", \"b\"]}",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_SET\", \"kind\": \"cluster\", \"name\": null}",
        "TAGS_SET",
        "TAGS_SET",
        "ok",
        "ERR:Required parameter 'OP_TAGS_SET.tags' missing",
        "ERR:Required parameter 'OP_TAGS_SET.tags' missing",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_SET\", \"kind\": \"cluster\", \"tags\": [\"a\"]}",
        "TAGS_SET",
        "TAGS_SET",
        "ok",
        "ERR:Required parameter 'OP_TAGS_SET.name' missing",
        "ERR:Required parameter 'OP_TAGS_SET.name' missing",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_SET\", \"kind\": \"cluster\", \"name\": null, \"tags\": []}",
        "TAGS_SET",
        "TAGS_SET",
        "ok",
        "{\"OP_ID\": \"OP_TAGS_SET\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"kind\": \"cluster\", \"name\": null, \"priority\": 0, \"tags\": []}",
        "{\"OP_ID\": \"OP_TAGS_SET\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"kind\": \"cluster\", \"name\": null, \"priority\": 0, \"tags\": []}",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_SET\", \"kind\": \"cluster\", \"name\": null, \"tags\": [\"\"]}",
        "TAGS_SET",
        "TAGS_SET",
        "ok",
        "ERR:Parameter 'OP_TAGS_SET.tags' fails validation",
        "ERR:Parameter 'OP_TAGS_SET.tags' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_SET\", \"kind\": \"cluster\", \"name\": null, \"tags\": \"a\"}",
        "TAGS_SET",
        "TAGS_SET",
        "ok",
        "ERR:Parameter 'OP_TAGS_SET.tags' fails validation",
        "ERR:Parameter 'OP_TAGS_SET.tags' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_SET\", \"kind\": \"cluster\", \"name\": null, \"tags\": null}",
        "TAGS_SET",
        "TAGS_SET",
        "ok",
        "ERR:Parameter 'OP_TAGS_SET.tags' fails validation",
        "ERR:Parameter 'OP_TAGS_SET.tags' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_SET\", \"kind\": \"node\", \"name\": \"n1\", \"tags\": [\"a\", 1]}",
        "TAGS_SET",
        "TAGS_SET",
        "ok",
        "ERR:Parameter 'OP_TAGS_SET.tags' fails validation",
        "ERR:Parameter 'OP_TAGS_SET.tags' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_DEL\", \"kind\": \"instance\", \"name\": \"i1\", \"tags\": [\"a\"]}",
        "TAGS_DEL",
        "TAGS_DEL",
        "ok",
        "{\"OP_ID\": \"OP_TAGS_DEL\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"kind\": \"instance\", \"name\": \"i1\", \"priority\": 0, \"tags\": [\"a\"]}",
        "{\"OP_ID\": \"OP_TAGS_DEL\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"kind\": \"instance\", \"name\": \"i1\", \"priority\": 0, \"tags\": [\"a\"]}",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_DEL\", \"kind\": \"nodegroup\", \"name\": \"g1\", \"tags\": [\"a\"]}",
        "TAGS_DEL",
        "TAGS_DEL",
        "ok",
        "{\"OP_ID\": \"OP_TAGS_DEL\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"kind\": \"nodegroup\", \"name\": \"g1\", \"priority\": 0, \"tags\": [\"a\"]}",
        "{\"OP_ID\": \"OP_TAGS_DEL\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"kind\": \"nodegroup\", \"name\": \"g1\", \"priority\": 0, \"tags\": [\"a\"]}",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_DEL\", \"kind\": \"cluster\", \"name\": null, \"tags\": [\"x\"], \"priority\": 10}",
        "TAGS_DEL",
        "TAGS_DEL",
        "ok",
        "{\"OP_ID\": \"OP_TAGS_DEL\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"kind\": \"cluster\", \"name\": null, \"priority\": 10, \"tags\": [\"x\"]}",
        "{\"OP_ID\": \"OP_TAGS_DEL\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"kind\": \"cluster\", \"name\": null, \"priority\": 10, \"tags\": [\"x\"]}",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_DEL\", \"kind\": \"cluster\", \"name\": null}",
        "TAGS_DEL",
        "TAGS_DEL",
        "ok",
        "ERR:Required parameter 'OP_TAGS_DEL.tags' missing",
        "ERR:Required parameter 'OP_TAGS_DEL.tags' missing",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_DEL\", \"kind\": \"bogus\", \"tags\": [\"x\"]}",
        "TAGS_DEL",
        "TAGS_DEL",
        "ok",
        "ERR:Parameter 'OP_TAGS_DEL.kind' fails validation",
        "ERR:Parameter 'OP_TAGS_DEL.kind' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TAGS_GET\", \"kind\": \"node\", \"name\": [\"a\", \"b\"]}",
        "TAGS_GET(a,b)",
        "TAGS_GET",
        "ok",
        "ERR:Parameter 'OP_TAGS_GET.name' fails validation",
        "ERR:Parameter 'OP_TAGS_GET.name' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": [1, 2.5, \"x\", [1, \"y\"], null, true, 0.1]}",
        "TEST_DELAY(1,2.5,x,[1, u'y'],None,True,0.1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.duration' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.duration' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": {\"a\": [1.5, \"\\u00e9'\"]}}",
        "TEST_DELAY({u'a': [1.5, u\"\\xe9'\"]})",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.duration' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.duration' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 18446744073709551615}",
        "TEST_DELAY(18446744073709551615)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 18446744073709551615, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 18446744073709551615, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 9223372036854775807, \"debug_level\": 9223372036854775808}",
        "TEST_DELAY(9223372036854775807)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 9223372036854775808, \"depends\": null, \"dry_run\": null, \"duration\": 9223372036854775807, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 9223372036854775807, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"debug_level\": \"2\"}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.debug_level' fails validation",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"debug_level\": null}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"debug_level\": 0}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"priority\": 0}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"priority\": 1}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid priority 1, allowed are 0, 10, -10",
        "ERR:Parameter 'OP_TEST_DELAY.priority' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.priority' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": null}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1, \"depends\": [[5, [\"success\"]], [-2, [\"error\"]]]}",
        "TEST_DELAY(1)",
        "TEST_DELAY",
        "Opcode 0 has invalid dependencies, must match None or (List of ((Length 2) and (Item 0 is JobId, item 1 is (List of (OneOf canceled, success, error))))): [[5, [u'success']], [-2, [u'error']]]",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": [[5, [\"success\"]], [-2, [\"error\"]]], \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": [[5, [\"success\"]], [-2, [\"error\"]]], \"dry_run\": null, \"duration\": 1, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": -0.5, \"on_master\": false, \"on_nodes\": [\"node1.example.com\"], \"repeat\": 0}",
        "TEST_DELAY(-0.5)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": -0.5, \"on_master\": false, \"on_nodes\": [\"node1.example.com\"], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": -0.5, \"on_master\": false, \"on_nodes\": [\"node1.example.com\"], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 0}",
        "TEST_DELAY(0)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 0, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 0, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 0.0}",
        "TEST_DELAY(0.0)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 0.0, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 0.0, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": -0.0}",
        "TEST_DELAY(-0.0)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": -0.0, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": -0.0, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 1e-4}",
        "TEST_DELAY(0.0001)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 0.0001, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 0.0001, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 12345678901.5}",
        "TEST_DELAY(12345678901.5)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 12345678901.5, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 12345678901.5, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 99999999999.95}",
        "TEST_DELAY(99999999999.9)",
        "TEST_DELAY",
        "ok",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"duration\": 99999999999.95, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"duration\": 99999999999.95, \"on_master\": true, \"on_nodes\": [], \"priority\": 0, \"repeat\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": \"n\\u00e9\\n'\"}",
        "TEST_DELAY(n\u{e9}\n')",
        "TEST_DELAY",
        "ok",
        "ERR:Parameter 'OP_TEST_DELAY.duration' fails validation",
        "ERR:Parameter 'OP_TEST_DELAY.duration' fails validation",
    ),
    (
        "{\"OP_ID\": \"OP_CLUSTER_DESTROY\", \"dry_run\": false, \"comment\": \"bye\", \"priority\": -10}",
        "CLUSTER_DESTROY",
        "C_DESTROY",
        "ok",
        "{\"OP_ID\": \"OP_CLUSTER_DESTROY\", \"comment\": \"bye\", \"debug_level\": null, \"depends\": null, \"dry_run\": false, \"priority\": -10}",
        "{\"OP_ID\": \"OP_CLUSTER_DESTROY\", \"comment\": \"bye\", \"debug_level\": 0, \"depends\": null, \"dry_run\": false, \"priority\": -10}",
    ),
    (
        "{\"OP_ID\": \"OP_CLUSTER_QUERY\", \"depends\": [[\"12\", []]]}",
        "CLUSTER_QUERY",
        "C_QUERY",
        "ok",
        "{\"OP_ID\": \"OP_CLUSTER_QUERY\", \"comment\": null, \"debug_level\": null, \"depends\": [[\"12\", []]], \"dry_run\": null, \"priority\": 0}",
        "{\"OP_ID\": \"OP_CLUSTER_QUERY\", \"comment\": null, \"debug_level\": 0, \"depends\": [[\"12\", []]], \"dry_run\": null, \"priority\": 0}",
    ),
    (
        "{\"OP_ID\": \"OP_CLUSTER_POST_INIT\", \"dry_run\": null}",
        "CLUSTER_POST_INIT",
        "C_POST_INIT",
        "ok",
        "{\"OP_ID\": \"OP_CLUSTER_POST_INIT\", \"comment\": null, \"debug_level\": null, \"depends\": null, \"dry_run\": null, \"priority\": 0}",
        "{\"OP_ID\": \"OP_CLUSTER_POST_INIT\", \"comment\": null, \"debug_level\": 0, \"depends\": null, \"dry_run\": null, \"priority\": 0}",
    ),
    ];

    /// LoadOpCode's ValueError texts of 2.5.2 for the same kind of run.
    const ORACLE_LOAD: &[(&str, &str)] = &[
        (
            "{\"OP_ID\": \"OP_FOO\"}",
            "Invalid data to LoadOpCode: OP_ID OP_FOO unsupported",
        ),
        (
            "{\"OP_ID\": null}",
            "Invalid data to LoadOpCode: OP_ID None unsupported",
        ),
        (
            "{\"OP_ID\": 5}",
            "Invalid data to LoadOpCode: OP_ID 5 unsupported",
        ),
        (
            "{\"duration\": 1}",
            "Invalid data to LoadOpcode, missing OP_ID",
        ),
        ("[1]", "Invalid data to LoadOpCode (<type 'list'>)"),
        ("\"x\"", "Invalid data to LoadOpCode (<type 'unicode'>)"),
        ("5", "Invalid data to LoadOpCode (<type 'int'>)"),
        ("null", "Invalid data to LoadOpCode (<type 'NoneType'>)"),
    ];
}
