//! Hooks on the master side (2.5.2 `mcpu.HooksMaster`, spec masterd-luxi
//! 6.4), and what the node side shares with it.
//!
//! Supported: building the environment of a hooks run from a logical
//! unit's `BuildHooksEnv()` map (`GANETI_` / `GANETI_POST_` prefixes, the
//! base variables, Python `str()` of every value), running a phase through
//! a caller-supplied `hooks_runner` call (so this module does no I/O of its
//! own), turning the per-node answers into 2.5.2's warnings,
//! `HooksFailure("Communication Failure")` or `HooksAbort([[node, script,
//! output], ...])`, and the `config-update` hook.
//!
//! Differences from 2.5.2, on the safe side:
//! * A node answer that is not a list of `[script, status, output]` made
//!   2.5.2 crash with a Python exception; here it aborts the pre phase with
//!   `HooksFailure("Invalid hooks result from node <n>: <why>")` and is a
//!   warning in the post phase.
//! * Python `str()` of lists and dictionaries (rare in hook environments)
//!   follows Python's layout for values as 2.5.2 decoded them from JSON
//!   (strings with a `u` prefix only when not ASCII), with the keys of a
//!   dictionary in sorted order.
//! * 2.5.2's `assert`s on the environment (a variable of the LU that already
//!   carries the prefix, a clash with a base variable) become
//!   `ProgrammerError`s.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::errors::GanetiError;
use crate::rpc::client::NodeResult;

/// `HOOKS_PATH`: the `PATH` of every hook script.
pub const HOOKS_PATH: &str = "/sbin:/bin:/usr/sbin:/usr/bin";
/// `HOOKS_VERSION`.
pub const HOOKS_VERSION: u32 = 2;
/// `HOOKS_NAME_CFGUPDATE`: run on the master after an opcode wrote the
/// configuration.
pub const HOOKS_NAME_CFGUPDATE: &str = "config-update";
/// `DATA_DIR` as the scripts see it (always the standard path).
pub const HOOKS_DATA_DIR: &str = crate::paths::DATA_DIR;

/// Script results (`HKR_*`).
pub const HKR_SKIP: u8 = 0;
pub const HKR_FAIL: u8 = 1;
pub const HKR_SUCCESS: u8 = 2;

/// A hooks environment: variable name to value.
pub type Env = BTreeMap<String, String>;

/// The answers of one `hooks_runner` call: node name and outcome, as
/// [`crate::rpc::client::Client::call`] returns them.
pub type NodeResults = Vec<(String, NodeResult)>;

/// The two phases of a hooks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pre,
    Post,
}

impl Phase {
    /// `HOOKS_PHASE_PRE` / `HOOKS_PHASE_POST`, as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pre => "pre",
            Phase::Post => "post",
        }
    }

    /// The phase named on the wire, if it is one.
    pub fn parse(s: &str) -> Option<Phase> {
        match s {
            "pre" => Some(Phase::Pre),
            "post" => Some(Phase::Post),
            _ => None,
        }
    }

    /// The prefix of the logical unit's own variables.
    pub fn prefix(self) -> &'static str {
        match self {
            Phase::Pre => "GANETI_",
            Phase::Post => "GANETI_POST_",
        }
    }
}

/// `HTYPE_*`: the kind of object an opcode works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookType {
    Cluster,
    Node,
    Group,
    Instance,
}

impl HookType {
    pub fn as_str(self) -> &'static str {
        match self {
            HookType::Cluster => "CLUSTER",
            HookType::Node => "NODE",
            HookType::Group => "GROUP",
            HookType::Instance => "INSTANCE",
        }
    }
}

/// `EXT_PLUGIN_MASK` (`^[a-zA-Z0-9_-]+$`): the names of hook scripts and
/// iallocators that may run. Unlike Python's `$`, a trailing newline does
/// not match.
pub fn is_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// 2.5.2's `utils.SafeEncode` of a byte string: printable ASCII stays, tab
/// and newline become `\t` and `\n`, carriage return becomes the 3
/// characters `\'r` (sic), every other byte `\xNN`.
pub fn safe_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\'r"),
            32..=126 => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Python 2's `str.strip()`: removes leading and trailing ASCII whitespace
/// (space, `\t`, `\n`, `\r`, `\x0b`, `\x0c`).
pub fn py_strip(bytes: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = bytes.iter().position(|b| !ws(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Python 2's `str()` of a JSON value as 2.5.2 decoded it: strings as they
/// are, `True`, `False`, `None`, integers in decimal, floats with 12
/// significant digits; lists and dictionaries as Python prints them (the
/// `repr()` of each item, dictionary keys sorted).
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => py_number(n, false),
        other => py_repr(other),
    }
}

/// Python 2's `repr()` of a JSON value as 2.5.2 decoded it (simplejson:
/// `str` for ASCII text, `unicode` otherwise; an `L` after integers
/// beyond 63 bits; floats with the shortest digits that read back).
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => py_number(n, true),
        Value::String(s) => py_repr_str(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}: {}", py_repr_str(k), py_repr(&map[k])))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

fn py_number(n: &serde_json::Number, repr: bool) -> String {
    match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i.to_string(),
        (_, Some(u), _) if repr => format!("{u}L"),
        (_, Some(u), _) => u.to_string(),
        (_, _, Some(f)) if repr => py_float_repr(f),
        (_, _, Some(f)) => py_float(f),
        _ => n.to_string(),
    }
}

/// Python 2's `repr()` of a string as simplejson decoded it: plain for
/// ASCII text, with a `u` prefix otherwise; single quotes unless the text
/// has a single quote and no double quote.
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 3);
    if !s.is_ascii() {
        out.push('u');
    }
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push(quote);
    out
}

/// Python 2's `str(float)`: 12 significant digits (`%.12g`), `.0` added
/// to what looks like an integer; as Python adds that `.0`, it switches to
/// the exponent form one digit earlier than C (from 1e11 on, not 1e12).
pub fn py_float(f: f64) -> String {
    py_float_style(f, Some(12))
}

/// Python 2.7's `repr(float)`: the shortest digits that read back, the
/// exponent form from 1e16 on and below 1e-4.
pub fn py_float_repr(f: f64) -> String {
    py_float_style(f, None)
}

/// `PyOS_double_to_string` with `Py_DTSF_ADD_DOT_0`: `precision`
/// significant digits (`None`: the shortest that read back, Python's
/// 'r' mode, which switches to the exponent form after 16 digits).
fn py_float_style(f: f64, precision: Option<usize>) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust rounds correctly, as Python's dtoa does: "d.ddde<exp>".
    let (sci, exp_from) = match precision {
        Some(p) => (
            format!("{:.*e}", p.saturating_sub(1), f.abs()),
            p.saturating_sub(1),
        ),
        None => (format!("{:e}", f.abs()), 16),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let exp_from = i64::try_from(exp_from).unwrap_or(i64::MAX);
    let body = if exp < -4 || exp >= exp_from {
        let (first, rest) = digits.split_at(1);
        let esign = if exp < 0 { '-' } else { '+' };
        let dot = if rest.is_empty() { "" } else { "." };
        format!("{first}{dot}{rest}e{esign}{:02}", exp.unsigned_abs())
    } else if exp < 0 {
        let zeros = "0".repeat(usize::try_from(-exp - 1).unwrap_or(0));
        format!("0.{zeros}{digits}")
    } else {
        let point = usize::try_from(exp + 1).unwrap_or(0);
        if point >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    format!("{sign}{body}")
}

/// What the master knows about the opcode whose hooks run.
#[derive(Debug, Clone, PartialEq)]
pub struct HooksInfo {
    /// The opcode's `OP_ID`.
    pub op_id: String,
    /// The LU's `HPATH`; `None`: the LU has no hooks (only `config-update`
    /// can still run).
    pub hpath: Option<String>,
    /// The LU's `HTYPE`.
    pub htype: Option<HookType>,
    /// `(cluster name, master node)` when a configuration is loaded.
    pub cluster: Option<(String, String)>,
}

/// The `hooks_runner` call the master makes: nodes, hpath, phase and
/// environment in; the per-node answers out. The processor implements it
/// with `rpc::client::Client::call` and [`rpc_args`].
pub type CallFn<'a> = dyn FnMut(&[String], &str, Phase, &Env) -> NodeResults + 'a;

/// The arguments of `hooks_runner`: `[hpath, phase, env]`.
pub fn rpc_args(hpath: &str, phase: Phase, env: &Env) -> Value {
    json!([hpath, phase.as_str(), env])
}

/// 2.5.2's `HooksMaster`: built after `CheckPrereq`, with the pre-phase
/// environment and both node lists computed once.
#[derive(Debug, Clone)]
pub struct HooksMaster {
    info: HooksInfo,
    pre_env: Env,
    pre_nodes: Vec<String>,
    post_nodes: Vec<String>,
}

impl HooksMaster {
    /// `lu_env` is the LU's `BuildHooksEnv()` and `nodes` its
    /// `BuildHooksNodes()`; both are ignored when the LU has no `HPATH`.
    pub fn new(
        info: HooksInfo,
        lu_env: &Map<String, Value>,
        nodes: (Vec<String>, Vec<String>),
    ) -> Result<HooksMaster, GanetiError> {
        let has_hooks = info.hpath.is_some();
        let pre_env = if has_hooks {
            phase_env(Phase::Pre, lu_env, None)?
        } else {
            Env::new()
        };
        let (pre_nodes, post_nodes) = if has_hooks {
            (unique(nodes.0), unique(nodes.1))
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(HooksMaster {
            info,
            pre_env,
            pre_nodes,
            post_nodes,
        })
    }

    /// The pre-phase variables of the LU (`GANETI_*`), without the base
    /// variables.
    pub fn pre_env(&self) -> &Env {
        &self.pre_env
    }

    pub fn pre_nodes(&self) -> &[String] {
        &self.pre_nodes
    }

    pub fn post_nodes(&self) -> &[String] {
        &self.post_nodes
    }

    /// The whole environment sent for one run (`_RunWrapper`): the base
    /// variables plus `phase_env`, every value a string.
    pub fn run_env(&self, hpath: &str, phase: Phase, phase_env: &Env) -> Result<Env, GanetiError> {
        let mut env = Env::new();
        env.insert("PATH".into(), HOOKS_PATH.into());
        env.insert("GANETI_HOOKS_VERSION".into(), HOOKS_VERSION.to_string());
        env.insert("GANETI_OP_CODE".into(), self.info.op_id.clone());
        env.insert("GANETI_DATA_DIR".into(), HOOKS_DATA_DIR.into());
        env.insert("GANETI_HOOKS_PHASE".into(), phase.as_str().into());
        env.insert("GANETI_HOOKS_PATH".into(), hpath.into());
        if let Some(t) = self.info.htype {
            env.insert("GANETI_OBJECT_TYPE".into(), t.as_str().into());
        }
        if let Some((cluster, master)) = &self.info.cluster {
            env.insert("GANETI_CLUSTER".into(), cluster.clone());
            env.insert("GANETI_MASTER".into(), master.clone());
        }
        for (k, v) in phase_env {
            if env.insert(k.clone(), v.clone()).is_some() {
                return Err(GanetiError::msg(
                    "ProgrammerError",
                    format!("Environment variables conflict: {k}"),
                ));
            }
        }
        Ok(env)
    }

    /// `RunPhase`: runs `phase` on its nodes (or `nodes` when given) and
    /// checks the answers. `post_lu_env` is the LU's `BuildHooksEnv()` as
    /// it is after `Exec` (2.5.2 calls it again for the post phase; ignored
    /// in the pre phase, whose environment was computed in [`Self::new`]). `None` when the
    /// phase has no nodes (nothing was called); else the answers, for the
    /// LU's `HooksCallBack`. Warnings go to `warnings` (each is logged as
    /// `LogWarning`), also when an error is returned.
    pub fn run_phase(
        &self,
        phase: Phase,
        post_lu_env: &Map<String, Value>,
        nodes: Option<&[String]>,
        call: &mut CallFn<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<NodeResults>, GanetiError> {
        let env = match phase {
            Phase::Pre => self.pre_env.clone(),
            Phase::Post if self.info.hpath.is_some() => {
                phase_env(Phase::Post, post_lu_env, Some(&self.pre_env))?
            }
            Phase::Post => self.pre_env.clone(),
        };
        let nodes = nodes.unwrap_or(match phase {
            Phase::Pre => &self.pre_nodes,
            Phase::Post => &self.post_nodes,
        });
        let Some(hpath) = self.info.hpath.as_deref() else {
            return Ok(None);
        };
        if nodes.is_empty() {
            return Ok(None);
        }
        let env = self.run_env(hpath, phase, &env)?;
        let results = call(nodes, hpath, phase, &env);
        process_results(phase, &results, warnings)?;
        Ok(Some(results))
    }

    /// `RunConfigUpdate`: the `config-update` hook, post phase, on the
    /// master only, with the pre-phase environment; its answers are not
    /// looked at (as 2.5.2).
    pub fn run_config_update(&self, call: &mut CallFn<'_>) -> Result<(), GanetiError> {
        let Some((_, master)) = &self.info.cluster else {
            return Ok(());
        };
        let env = self.run_env(HOOKS_NAME_CFGUPDATE, Phase::Post, &self.pre_env)?;
        call(
            std::slice::from_ref(master),
            HOOKS_NAME_CFGUPDATE,
            Phase::Post,
            &env,
        );
        Ok(())
    }
}

/// Sorted and without duplicates (2.5.2 keeps the node lists as
/// frozensets).
fn unique(mut nodes: Vec<String>) -> Vec<String> {
    nodes.sort();
    nodes.dedup();
    nodes
}

/// `_BuildEnv`: the LU's variables with the phase's prefix, every value
/// through Python `str()`; the post phase also has all pre variables.
pub fn phase_env(
    phase: Phase,
    lu_env: &Map<String, Value>,
    pre_env: Option<&Env>,
) -> Result<Env, GanetiError> {
    let prefix = phase.prefix();
    let mut env = Env::new();
    for (key, value) in lu_env {
        if key.to_ascii_uppercase().starts_with(prefix) {
            return Err(GanetiError::msg(
                "ProgrammerError",
                format!("Hooks variable '{key}' already carries the prefix '{prefix}'"),
            ));
        }
        env.insert(format!("{prefix}{key}"), py_str(value));
    }
    if let (Phase::Post, Some(pre)) = (phase, pre_env) {
        for (k, v) in pre {
            env.insert(k.clone(), v.clone());
        }
    }
    Ok(env)
}

/// One entry of a node's answer: `[script, status, output]`.
fn script_entry(entry: &Value) -> Result<(&str, i64, &str), String> {
    match entry.as_array().map(Vec::as_slice) {
        Some([Value::String(script), status, Value::String(output)]) => {
            let status = status
                .as_i64()
                .ok_or_else(|| format!("status of script '{script}' is not an integer"))?;
            Ok((script, status, output))
        }
        _ => Err(format!("entry {entry} is not [script, status, output]")),
    }
}

/// The per-node processing of `RunPhase`: offline nodes are ignored, a node
/// that failed is a warning, a failed script aborts the pre phase
/// (`HooksAbort([[node, script, output], ...])`) and is a warning in the
/// post phase. No answer at all: `HooksFailure("Communication Failure")`
/// in the pre phase, a warning in the post phase.
pub fn process_results(
    phase: Phase,
    results: &[(String, NodeResult)],
    warnings: &mut Vec<String>,
) -> Result<(), GanetiError> {
    const NO_ANSWER: &str = "Communication Failure";
    if results.is_empty() {
        return match phase {
            Phase::Pre => Err(GanetiError::msg("HooksFailure", NO_ANSWER)),
            Phase::Post => {
                warnings.push(NO_ANSWER.into());
                Ok(())
            }
        };
    }
    let mut errors = Vec::new();
    for (node, result) in results {
        let payload = match result {
            NodeResult::Offline => continue,
            NodeResult::Ok(payload) => payload,
            other => {
                let msg = other.fail_msg().unwrap_or_default();
                warnings.push(format!("Communication failure to node {node}: {msg}"));
                continue;
            }
        };
        let entries = payload
            .as_array()
            .ok_or_else(|| "the answer is not a list".to_string())
            .and_then(|list| list.iter().map(script_entry).collect::<Result<Vec<_>, _>>());
        let entries = match entries {
            Ok(e) => e,
            Err(why) => {
                let msg = format!("Invalid hooks result from node {node}: {why}");
                match phase {
                    Phase::Pre => return Err(GanetiError::msg("HooksFailure", msg)),
                    Phase::Post => {
                        warnings.push(msg);
                        continue;
                    }
                }
            }
        };
        for (script, status, output) in entries {
            if status != i64::from(HKR_FAIL) {
                continue;
            }
            match phase {
                Phase::Pre => errors.push(json!([node, script, output])),
                Phase::Post => {
                    let output = if output.is_empty() {
                        "(no output)"
                    } else {
                        output
                    };
                    warnings.push(format!(
                        "On {node} script {script} failed, output: {output}"
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(GanetiError::new("HooksAbort", vec![Value::Array(errors)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn info(hpath: Option<&str>) -> HooksInfo {
        HooksInfo {
            op_id: "OP_TEST_DELAY".into(),
            hpath: hpath.map(String::from),
            htype: Some(HookType::Cluster),
            cluster: Some(("cluster.example.com".into(), "node1.example.com".into())),
        }
    }

    #[test]
    fn python_str_of_values() {
        let cases = [
            (json!("text"), "text"),
            (json!(true), "True"),
            (json!(false), "False"),
            (Value::Null, "None"),
            (json!(128), "128"),
            (json!(-3), "-3"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!(1.0), "1.0"),
            (json!(0.1), "0.1"),
            (json!(2.5), "2.5"),
            (json!(-0.5), "-0.5"),
            (json!(1e20), "1e+20"),
            (json!(123456789012.25), "1.23456789012e+11"),
            (json!(999999999999.9), "1e+12"),
            (json!(99999999999.5), "99999999999.5"),
            (json!(99999999999.0), "99999999999.0"),
            (json!(1e10), "10000000000.0"),
            (json!(1326196800.123456), "1326196800.12"),
            (json!(9.99999999999995), "10.0"),
            (json!(1.5e300), "1.5e+300"),
            (json!(5e-324), "4.94065645841e-324"),
            (json!(100000000000.0), "1e+11"),
            (json!(0.0001), "0.0001"),
            (json!(0.00001), "1e-05"),
            (json!(1.0 / 3.0), "0.333333333333"),
            (json!(["a", 1, null]), "['a', 1, None]"),
            (
                json!({"b": true, "a": "it's"}),
                "{'a': \"it's\", 'b': True}",
            ),
        ];
        for (v, want) in cases {
            assert_eq!(py_str(&v), want, "{v}");
        }
        assert_eq!(py_float(0.0), "0.0");
        assert_eq!(py_float(f64::INFINITY), "inf");
        // repr() of items in containers, checked against python2.7.
        for (f, want) in [
            (0.1, "0.1"),
            (1326196800.123456, "1326196800.123456"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (2.5e-5, "2.5e-05"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (-0.0, "-0.0"),
            (1.0 / 3.0, "0.3333333333333333"),
            (100.0, "100.0"),
        ] {
            assert_eq!(py_float_repr(f), want, "{f}");
        }
        assert_eq!(py_float(1e15), "1e+15");
        assert_eq!(py_float(1.7976931348623157e308), "1.79769313486e+308");
        assert_eq!(
            py_str(&json!([
                1326196800.123456,
                u64::MAX,
                -1,
                "\u{e9}",
                "it's \u{e9}"
            ])),
            "[1326196800.123456, 18446744073709551615L, -1, u'\\xe9', u\"it's \\xe9\"]"
        );
        assert_eq!(
            py_repr_str("\u{7f}\u{101}\u{1f600}"),
            "u'\\x7f\\u0101\\U0001f600'"
        );
    }

    #[test]
    fn safe_encode_and_strip_as_2_5_2() {
        assert_eq!(
            safe_encode(b"a\tb\nc\rd\x01\xff~ "),
            "a\\tb\\nc\\'rd\\x01\\xff~ "
        );
        assert_eq!(py_strip(b" \t\x0b\x0cx y\r\n"), b"x y");
        assert_eq!(py_strip(b" \n "), b"");
        assert_eq!(py_strip(b""), b"");
    }

    #[test]
    fn plugin_names() {
        for ok in ["hail", "00-lab-ok", "A_b-9"] {
            assert!(is_plugin_name(ok), "{ok}");
        }
        for bad in ["", "a.b", "a b", "../x", "x/y", "x\n", "é", ".", ".."] {
            assert!(!is_plugin_name(bad), "{bad}");
        }
    }

    #[test]
    fn environment_of_both_phases() {
        let lu_env = map(json!({"OP_TARGET": "cluster.example.com", "FORCE": false, "COUNT": 3}));
        let hm = HooksMaster::new(
            info(Some("cluster-modify")),
            &lu_env,
            (vec!["b".into(), "a".into(), "b".into()], vec![]),
        )
        .unwrap();
        assert_eq!(hm.pre_nodes(), ["a", "b"]);
        let pre = hm
            .run_env("cluster-modify", Phase::Pre, hm.pre_env())
            .unwrap();
        let want: Env = [
            ("PATH", HOOKS_PATH),
            ("GANETI_HOOKS_VERSION", "2"),
            ("GANETI_OP_CODE", "OP_TEST_DELAY"),
            ("GANETI_DATA_DIR", "/var/lib/ganeti"),
            ("GANETI_HOOKS_PHASE", "pre"),
            ("GANETI_HOOKS_PATH", "cluster-modify"),
            ("GANETI_OBJECT_TYPE", "CLUSTER"),
            ("GANETI_CLUSTER", "cluster.example.com"),
            ("GANETI_MASTER", "node1.example.com"),
            ("GANETI_OP_TARGET", "cluster.example.com"),
            ("GANETI_FORCE", "False"),
            ("GANETI_COUNT", "3"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(pre, want);

        let post_lu = map(json!({"OP_TARGET": "cluster.example.com", "NEW": null}));
        let post = phase_env(Phase::Post, &post_lu, Some(hm.pre_env())).unwrap();
        assert_eq!(post["GANETI_POST_NEW"], "None");
        assert_eq!(post["GANETI_POST_OP_TARGET"], "cluster.example.com");
        assert_eq!(post["GANETI_FORCE"], "False");
        assert_eq!(post.len(), 5);

        // 2.5.2's assertions.
        let e = phase_env(Phase::Pre, &map(json!({"ganeti_x": 1})), None).unwrap_err();
        assert_eq!(e.class, "ProgrammerError");
        let clash: Env = [("GANETI_CLUSTER".to_string(), "x".to_string())].into();
        let e = hm.run_env("h", Phase::Pre, &clash).unwrap_err();
        assert_eq!(e.class, "ProgrammerError");
    }

    fn ok(entries: Value) -> NodeResult {
        NodeResult::Ok(entries)
    }

    #[test]
    fn pre_phase_aborts_on_failed_scripts() {
        let results = vec![
            (
                "n1".to_string(),
                ok(json!([["h-pre.d/a", 2, "fine"], ["h-pre.d/b", 1, "bad"]])),
            ),
            ("n2".to_string(), NodeResult::Offline),
            (
                "n3".to_string(),
                NodeResult::Error("Timeout connecting".into()),
            ),
            (
                "n4".to_string(),
                ok(json!([["h-pre.d/c", 1, ""], ["h-pre.d/d", 0, ""]])),
            ),
        ];
        let mut warnings = Vec::new();
        let e = process_results(Phase::Pre, &results, &mut warnings).unwrap_err();
        assert_eq!(
            e.encode(),
            json!([
                "HooksAbort",
                [[["n1", "h-pre.d/b", "bad"], ["n4", "h-pre.d/c", ""]]]
            ])
        );
        assert_eq!(
            warnings,
            ["Communication failure to node n3: Timeout connecting"]
        );

        let mut warnings = Vec::new();
        let good = vec![("n1".to_string(), ok(json!([["h-pre.d/a", 2, "x"]])))];
        process_results(Phase::Pre, &good, &mut warnings).unwrap();
        assert!(warnings.is_empty());

        let e = process_results(Phase::Pre, &[], &mut warnings).unwrap_err();
        assert_eq!(
            e.encode(),
            json!(["HooksFailure", ["Communication Failure"]])
        );

        let bad = vec![("n1".to_string(), ok(json!([["h-pre.d/a", "2", "x"]])))];
        let e = process_results(Phase::Pre, &bad, &mut warnings).unwrap_err();
        assert_eq!(e.class, "HooksFailure");
        assert!(
            e.to_string()
                .starts_with("Invalid hooks result from node n1"),
            "{e}"
        );
    }

    #[test]
    fn post_phase_only_warns() {
        let results = vec![
            (
                "n1".to_string(),
                ok(json!([["h-post.d/b", 1, "bad"], ["h-post.d/c", 1, ""]])),
            ),
            (
                "n2".to_string(),
                NodeResult::Failed("Unknown hooks phase 'x'".into()),
            ),
            ("n3".to_string(), ok(json!({"not": "a list"}))),
        ];
        let mut warnings = Vec::new();
        process_results(Phase::Post, &results, &mut warnings).unwrap();
        assert_eq!(
            warnings,
            [
                "On n1 script h-post.d/b failed, output: bad",
                "On n1 script h-post.d/c failed, output: (no output)",
                "Communication failure to node n2: Unknown hooks phase 'x'",
                "Invalid hooks result from node n3: the answer is not a list",
            ]
        );
        let mut warnings = Vec::new();
        process_results(Phase::Post, &[], &mut warnings).unwrap();
        assert_eq!(warnings, ["Communication Failure"]);
    }

    #[test]
    fn run_phase_calls_with_the_full_environment() {
        let lu_env = map(json!({"OP_TARGET": "c"}));
        let hm = HooksMaster::new(
            info(Some("cluster-modify")),
            &lu_env,
            (vec!["n1".into()], vec!["n1".into(), "n2".into()]),
        )
        .unwrap();
        let mut calls = Vec::new();
        let mut call = |nodes: &[String], hpath: &str, phase: Phase, env: &Env| {
            calls.push((nodes.to_vec(), hpath.to_string(), phase, env.clone()));
            nodes
                .iter()
                .map(|n| (n.clone(), NodeResult::Ok(json!([]))))
                .collect()
        };
        let mut warnings = Vec::new();
        let r = hm
            .run_phase(Phase::Pre, &Map::new(), None, &mut call, &mut warnings)
            .unwrap();
        assert_eq!(r.unwrap().len(), 1);
        let post_env = map(json!({"OP_TARGET": "c", "DONE": true}));
        hm.run_phase(Phase::Post, &post_env, None, &mut call, &mut warnings)
            .unwrap();
        hm.run_config_update(&mut call).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].0, ["n1"]);
        assert_eq!(calls[0].3["GANETI_OP_TARGET"], "c");
        assert_eq!(calls[1].0, ["n1", "n2"]);
        assert_eq!(calls[1].3["GANETI_HOOKS_PHASE"], "post");
        assert_eq!(calls[1].3["GANETI_POST_DONE"], "True");
        assert_eq!(calls[1].3["GANETI_OP_TARGET"], "c");
        // config-update: master only, post, with the pre environment.
        assert_eq!(calls[2].0, ["node1.example.com"]);
        assert_eq!(calls[2].1, "config-update");
        assert_eq!(calls[2].3["GANETI_HOOKS_PATH"], "config-update");
        assert_eq!(calls[2].3["GANETI_HOOKS_PHASE"], "post");
        assert!(!calls[2].3.contains_key("GANETI_POST_DONE"));
        assert_eq!(rpc_args("x", Phase::Pre, &calls[0].3)[1], json!("pre"));

        // No HPATH: no phase runs, config-update still does (empty LU env).
        let none = HooksMaster::new(info(None), &lu_env, (vec!["n1".into()], vec![])).unwrap();
        calls.clear();
        let mut call = |nodes: &[String], hpath: &str, phase: Phase, env: &Env| {
            calls.push((nodes.to_vec(), hpath.to_string(), phase, env.clone()));
            Vec::new()
        };
        assert_eq!(
            none.run_phase(Phase::Pre, &Map::new(), None, &mut call, &mut warnings)
                .unwrap(),
            None
        );
        none.run_config_update(&mut call).unwrap();
        assert_eq!(calls.len(), 1);
        assert!(!calls[0].3.contains_key("GANETI_OP_TARGET"));

        // An empty node list skips the phase without a call.
        let hm = HooksMaster::new(info(Some("h")), &lu_env, (vec![], vec![])).unwrap();
        let mut n = 0;
        let mut call = |_: &[String], _: &str, _: Phase, _: &Env| {
            n += 1;
            Vec::new()
        };
        assert_eq!(
            hm.run_phase(Phase::Pre, &Map::new(), None, &mut call, &mut warnings)
                .unwrap(),
            None
        );
        assert_eq!(n, 0);
    }
}
