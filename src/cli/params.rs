//! Parameter options of 2.5.2's command line: `key=val,...` dictionaries
//! (`-B`, `-N`, `--node-parameters`), `hv:key=val,...` (`-H`), yes/no
//! values, sizes with units, user-id pools, and `ForceDictType`, which
//! turns the strings of a parameter dictionary into the parameters' types.

use serde_json::{Map, Value};

use super::CliError;
use crate::errors::{GanetiError, ECODE_INVAL};

/// Most `key=val` entries in one option value.
pub const MAX_KEYVAL_ENTRIES: usize = 256;

/// The type of a parameter (`constants.VTYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VType {
    String,
    MaybeString,
    Bool,
    Size,
    Int,
}

/// `utils.UnescapeAndSplit(text, ",")`: splits at commas not preceded by
/// a backslash; `\,` becomes `,` and `\\` stays a backslash pair reduced
/// to one.
fn unescape_and_split(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(',') => {
                    chars.next();
                    if let Some(l) = out.last_mut() {
                        l.push(',');
                    }
                }
                Some('\\') => {
                    chars.next();
                    if let Some(l) = out.last_mut() {
                        l.push('\\');
                    }
                }
                _ => {
                    if let Some(l) = out.last_mut() {
                        l.push('\\');
                    }
                }
            },
            ',' => out.push(String::new()),
            c => {
                if let Some(l) = out.last_mut() {
                    l.push(c);
                }
            }
        }
    }
    out
}

/// `_SplitKeyVal`: `a=1,no_b,-c,d` → `{a: "1", b: false, c: null, d:
/// true}`; a duplicate key is a `ParameterError`.
pub fn split_key_val(opt: &str, data: &str) -> Result<Map<String, Value>, CliError> {
    let mut kv = Map::new();
    if data.is_empty() {
        return Ok(kv);
    }
    let elems = unescape_and_split(data);
    if elems.len() > MAX_KEYVAL_ENTRIES {
        return Err(CliError::parameter(format!(
            "Too many entries in option {opt} (at most {MAX_KEYVAL_ENTRIES})"
        )));
    }
    for elem in elems {
        let (key, val) = match elem.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
            None => match (elem.strip_prefix("no_"), elem.strip_prefix('-')) {
                (Some(k), _) => (k.to_string(), Value::Bool(false)),
                (None, Some(k)) => (k.to_string(), Value::Null),
                (None, None) => (elem.clone(), Value::Bool(true)),
            },
        };
        if kv.contains_key(&key) {
            return Err(CliError::parameter(format!(
                "Duplicate key '{key}' in option {opt}"
            )));
        }
        kv.insert(key, val);
    }
    Ok(kv)
}

/// `check_ident_key_val`: `kvm:acpi=no,...` → `("kvm", Some(dict))`;
/// `no_kvm` → `("kvm", None)` (removal, refused by init).
pub fn ident_key_val(
    opt: &str,
    value: &str,
) -> Result<(String, Option<Map<String, Value>>), CliError> {
    let (ident, rest) = value.split_once(':').unwrap_or((value, ""));
    for prefix in ["no_", "-"] {
        if let Some(id) = ident.strip_prefix(prefix) {
            if !rest.is_empty() {
                return Err(CliError::parameter(format!(
                    "Cannot pass options when removing parameter groups: {value}"
                )));
            }
            return Ok((id.to_string(), None));
        }
    }
    Ok((ident.to_string(), Some(split_key_val(opt, rest)?)))
}

/// `check_bool`: `yes`/`true` or `no`/`false`, any case.
pub fn parse_bool(value: &str) -> Result<bool, CliError> {
    match value.to_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        other => Err(CliError::parameter(format!(
            "Invalid boolean value '{other}'"
        ))),
    }
}

/// `utils.ParseUnit`: a size in MiB from `512`, `1.5G`, `2 t`; rounded
/// up to a multiple of 4.
pub fn parse_unit(input: &str) -> Result<i64, String> {
    let t = input.trim_end();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim_start();
    if num.is_empty()
        || num.matches('.').count() > 1
        || !unit.chars().all(|c| c.is_ascii_alphabetic())
        || num == "."
    {
        return Err("Invalid format".into());
    }
    let mut value: f64 = num.parse().map_err(|_| "Invalid format".to_string())?;
    match unit.to_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => {}
        "g" | "gb" | "gib" => value *= 1024.0,
        "t" | "tb" | "tib" => value *= 1024.0 * 1024.0,
        _ => return Err(format!("Unknown unit: {unit}")),
    }
    if !value.is_finite() || value > (i64::MAX / 2) as f64 {
        return Err("Invalid format".into());
    }
    let mut v = value.ceil() as i64;
    if v % 4 != 0 {
        v += 4 - v % 4;
    }
    Ok(v)
}

fn type_error(msg: String) -> CliError {
    CliError::Ganeti(GanetiError::msg("TypeEnforcementError", msg))
}

/// `utils.ForceDictType`: every key must be known; strings become the
/// parameter's type (`"yes"`-less booleans: only `true`/`false`, as
/// 2.5.2).
pub fn force_dict_type(
    target: &mut Map<String, Value>,
    types: &dyn Fn(&str) -> Option<VType>,
) -> Result<(), CliError> {
    for (key, val) in target.iter_mut() {
        let Some(t) = types(key) else {
            return Err(type_error(format!("Unknown parameter '{key}'")));
        };
        let shown = super::format::py_str(val);
        match t {
            VType::String | VType::MaybeString => match val {
                Value::String(_) => {}
                Value::Null if t == VType::MaybeString => {}
                Value::Bool(false) => *val = Value::String(String::new()),
                _ => {
                    return Err(type_error(format!(
                        "'{key}' (value {shown}) is not a valid string"
                    )))
                }
            },
            VType::Bool => {
                *val = match &*val {
                    Value::String(s) if !s.is_empty() => match s.to_lowercase().as_str() {
                        "false" => Value::Bool(false),
                        "true" => Value::Bool(true),
                        _ => {
                            return Err(type_error(format!(
                                "'{key}' (value {shown}) is not a valid boolean"
                            )))
                        }
                    },
                    Value::Bool(b) => Value::Bool(*b),
                    Value::String(_) | Value::Null => Value::Bool(false),
                    _ => Value::Bool(true),
                }
            }
            VType::Size => {
                let text = match &*val {
                    Value::String(s) => s.clone(),
                    _ => shown.clone(),
                };
                let size = parse_unit(&text).map_err(|e| {
                    type_error(format!(
                        "'{key}' (value {shown}) is not a valid size. error: {e}"
                    ))
                })?;
                *val = Value::from(size);
            }
            VType::Int => {
                let n = match &*val {
                    Value::String(s) => super::args::parse_int(s),
                    Value::Number(n) => n.as_i64(),
                    Value::Bool(b) => Some(i64::from(*b)),
                    _ => None,
                };
                match n {
                    Some(n) => *val = Value::from(n),
                    None => {
                        return Err(type_error(format!(
                            "'{key}' (value {shown}) is not a valid integer"
                        )))
                    }
                }
            }
        }
    }
    Ok(())
}

/// Backend parameter types (`BES_PARAMETER_TYPES`).
pub fn be_type(key: &str) -> Option<VType> {
    match key {
        "memory" => Some(VType::Size),
        "vcpus" => Some(VType::Int),
        "auto_balance" => Some(VType::Bool),
        _ => None,
    }
}

/// NIC parameter types (`NICS_PARAMETER_TYPES`).
pub fn nic_type(key: &str) -> Option<VType> {
    matches!(key, "mode" | "link").then_some(VType::String)
}

/// Node parameter types (`NDS_PARAMETER_TYPES`).
pub fn nd_type(key: &str) -> Option<VType> {
    (key == "oob_program").then_some(VType::MaybeString)
}

/// The type of a hypervisor parameter, from its default value in 2.5.2's
/// defaults (`root_path` may be null); `None` for a parameter the
/// hypervisor does not have.
pub fn hv_type(defaults: &Map<String, Value>, key: &str) -> Option<VType> {
    if key == "root_path" && defaults.contains_key(key) {
        return Some(VType::MaybeString);
    }
    Some(match defaults.get(key)? {
        Value::Bool(_) => VType::Bool,
        Value::Number(_) => VType::Int,
        _ => VType::String,
    })
}

/// `uidpool.ParseUidPool`: `1000-2000,3000` → `[(1000, 2000), (3000,
/// 3000)]`, sorted.
pub fn parse_uid_pool(value: &str) -> Result<Vec<(u32, u32)>, CliError> {
    let mut ranges = Vec::new();
    for def in value.split(',').filter(|d| !d.is_empty()) {
        let bounds: Vec<&str> = def.split('-').collect();
        if bounds.len() > 2 {
            let list: Vec<String> = bounds.iter().map(|b| format!("'{b}'")).collect();
            return Err(CliError::prereq1(format!(
                "Invalid user-id range definition. Only one hyphen allowed: [{}]",
                list.join(", ")
            )));
        }
        let num = |s: &str, which: &str| {
            super::args::parse_int(s)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    CliError::prereq(
                        format!(
                            "Invalid user-id value for {which} boundary of user-id range: \
                             invalid literal for int() with base 10: '{s}'"
                        ),
                        ECODE_INVAL,
                    )
                })
        };
        let lower = num(bounds[0], "lower")?;
        let higher = num(bounds[bounds.len() - 1], "higher")?;
        ranges.push((lower, higher));
    }
    ranges.sort_unstable();
    Ok(ranges)
}

/// `uidpool.FormatUidPool`: `1000-2000, 3000`.
pub fn format_uid_pool(pool: &Value, roman: bool) -> String {
    let fmt = |v: &Value| super::format::try_to_roman(v, roman);
    pool.as_array()
        .into_iter()
        .flatten()
        .map(|r| match r.as_array().map(Vec::as_slice) {
            Some([lo, hi]) if lo == hi => fmt(lo),
            Some([lo, hi]) => format!("{}-{}", fmt(lo), fmt(hi)),
            _ => super::format::py_str(r),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::format::format_error;
    use serde_json::json;

    fn msg(e: CliError) -> String {
        format_error(&e).1
    }

    #[test]
    fn key_val_as_2_5_2() {
        let kv = split_key_val("-B", "memory=512M,no_auto_balance,-vcpus,x").unwrap();
        assert_eq!(
            Value::Object(kv),
            json!({"memory": "512M", "auto_balance": false, "vcpus": null, "x": true})
        );
        let kv = split_key_val("-N", r"link=a\,b,mode=routed").unwrap();
        assert_eq!(kv["link"], json!("a,b"));
        assert_eq!(
            msg(split_key_val("-N", "link=a,link=b").unwrap_err()),
            "Failure: unknown/wrong parameter name 'Duplicate key 'link' in option -N'"
        );
        assert!(split_key_val("-N", "").unwrap().is_empty());
        let distinct: Vec<String> = (0..=MAX_KEYVAL_ENTRIES).map(|i| format!("k{i}")).collect();
        let e = split_key_val("-B", &distinct.join(",")).unwrap_err();
        assert!(msg(e).contains("Too many entries"));
        let fits: Vec<String> = (0..MAX_KEYVAL_ENTRIES).map(|i| format!("k{i}")).collect();
        assert_eq!(
            split_key_val("-B", &fits.join(",")).unwrap().len(),
            MAX_KEYVAL_ENTRIES
        );
    }

    #[test]
    fn ident_key_val_forms() {
        let (id, kv) = ident_key_val("-H", "kvm:acpi=false,kernel_path=").unwrap();
        assert_eq!(id, "kvm");
        assert_eq!(
            Value::Object(kv.unwrap()),
            json!({"acpi": "false", "kernel_path": ""})
        );
        assert_eq!(
            ident_key_val("-H", "fake").unwrap(),
            ("fake".into(), Some(Map::new()))
        );
        assert_eq!(ident_key_val("-H", "no_kvm").unwrap(), ("kvm".into(), None));
        assert!(ident_key_val("-H", "no_kvm:acpi=1").is_err());
    }

    #[test]
    fn units() {
        assert_eq!(parse_unit("512"), Ok(512));
        assert_eq!(parse_unit("513"), Ok(516));
        assert_eq!(parse_unit("1.5G"), Ok(1536));
        assert_eq!(parse_unit("1 t"), Ok(1048576));
        assert_eq!(parse_unit("0.1"), Ok(4));
        assert_eq!(parse_unit("12x"), Err("Unknown unit: x".into()));
        assert_eq!(parse_unit("abc"), Err("Invalid format".into()));
        assert_eq!(parse_unit("1.2.3"), Err("Invalid format".into()));
        assert_eq!(parse_unit(""), Err("Invalid format".into()));
    }

    #[test]
    fn force_dict_type_converts_and_refuses() {
        let mut be = split_key_val("-B", "memory=1G,vcpus=2,auto_balance=False").unwrap();
        force_dict_type(&mut be, &be_type).unwrap();
        assert_eq!(
            Value::Object(be),
            json!({"memory": 1024, "vcpus": 2, "auto_balance": false})
        );
        let mut bad = split_key_val("-B", "memory=lots").unwrap();
        assert_eq!(
            msg(force_dict_type(&mut bad, &be_type).unwrap_err()),
            "Parameter Error: 'memory' (value lots) is not a valid size. error: Invalid format"
        );
        let mut bad = split_key_val("-B", "vcpus=two").unwrap();
        assert!(msg(force_dict_type(&mut bad, &be_type).unwrap_err())
            .ends_with("'vcpus' (value two) is not a valid integer"));
        let mut bad = split_key_val("-B", "auto_balance=yes").unwrap();
        assert!(msg(force_dict_type(&mut bad, &be_type).unwrap_err())
            .ends_with("is not a valid boolean"));
        let mut bad = split_key_val("-B", "colour=red").unwrap();
        assert_eq!(
            msg(force_dict_type(&mut bad, &be_type).unwrap_err()),
            "Parameter Error: Unknown parameter 'colour'"
        );
        let mut nic = split_key_val("-N", "no_link").unwrap();
        force_dict_type(&mut nic, &nic_type).unwrap();
        assert_eq!(nic["link"], json!(""));
        let mut nd = split_key_val("--node-parameters", "-oob_program").unwrap();
        force_dict_type(&mut nd, &nd_type).unwrap();
        assert_eq!(nd["oob_program"], json!(null));
    }

    #[test]
    fn hypervisor_types_from_defaults() {
        let d = crate::config::hv_defaults("kvm").unwrap();
        assert_eq!(hv_type(&d, "acpi"), Some(VType::Bool));
        assert_eq!(hv_type(&d, "migration_port"), Some(VType::Int));
        assert_eq!(hv_type(&d, "kernel_path"), Some(VType::String));
        assert_eq!(hv_type(&d, "root_path"), Some(VType::MaybeString));
        assert_eq!(hv_type(&d, "nonsense"), None);
    }

    #[test]
    fn uid_pools() {
        assert_eq!(
            parse_uid_pool("3000,1000-2000,,").unwrap(),
            vec![(1000, 2000), (3000, 3000)]
        );
        assert!(msg(parse_uid_pool("1-2-3").unwrap_err())
            .ends_with("Only one hyphen allowed: ['1', '2', '3']"));
        assert!(msg(parse_uid_pool("a-5").unwrap_err()).contains("lower boundary"));
        assert_eq!(
            format_uid_pool(&json!([[1000, 2000], [3000, 3000]]), false),
            "1000-2000, 3000"
        );
        assert_eq!(format_uid_pool(&json!([]), false), "");
    }
}
