//! Storage units (2.5.2's `storage.py`): `file`, `lvm-pv`, `lvm-vg`, for
//! `storage_list`, `storage_modify` and `storage_execute`.
//!
//! Supported as in 2.5.2: listing all three types; `allocatable` changes of
//! PVs (`pvchange`); `fix-consistency` of VGs (`vgreduce --removemissing`).
//!
//! Differences, on the safe side: a `file` unit must be one of the two
//! storage directories named in ssconf or lie below one of them
//! ([`super::dirs`]; 2.5.2 listed any directory); a unit name must not be
//! something the LVM tools read as an option or a selection: a VG name must
//! be a valid LVM name, a PV name a device path (`/...`; 2.5.2 passed
//! `--all` or `@tag` on, and `pvchange --allocatable n @tag` changes every
//! PV with that tag); an operation 2.5.2 did not implement says which
//! (2.5.2 answered an empty message).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::dirs::{self, DirError};
use super::lvm::{self, LVM_TIMEOUT};
use super::{py_repr, py_str, run};
use crate::fsutil;
use crate::fsutil::os_error_text;
use crate::paths::Paths;

/// `constants.ST_*`.
pub const ST_FILE: &str = "file";
pub const ST_LVM_PV: &str = "lvm-pv";
pub const ST_LVM_VG: &str = "lvm-vg";
/// `constants.SO_FIX_CONSISTENCY`.
pub const SO_FIX_CONSISTENCY: &str = "fix-consistency";
/// Most fields one listing may ask for (there are five distinct ones).
pub const MAX_FIELDS: usize = 32;

/// Why a storage call failed. `Display` is the text after 2.5.2's
/// `Error while executing backend function: ` (all these were plain
/// exceptions there), except for [`UnitError::Refused`].
#[derive(Debug, Clone, PartialEq)]
pub enum UnitError {
    /// A hostile or malformed argument; nothing was run.
    Refused(String),
    /// 2.5.2's `StorageError`, `KeyError`, `ProgrammerError` texts.
    Failed(String),
}

impl std::fmt::Display for UnitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnitError::Refused(m) | UnitError::Failed(m) => write!(f, "{m}"),
        }
    }
}

/// A storage unit type with its constructor arguments.
#[derive(Debug)]
pub enum Unit {
    /// The storage directories the master named (`[[dir, shared_dir]]`).
    File(Vec<String>),
    Pv,
    Vg,
}

impl Unit {
    /// 2.5.2's `GetStorage(su_name, *su_args)`.
    pub fn new(su_name: &str, su_args: &[Value]) -> Result<Unit, UnitError> {
        let wrong = || {
            UnitError::Refused(format!(
                "Invalid arguments for storage type {}: {}",
                py_str(su_name),
                py_repr(&Value::from(su_args.to_vec()))
            ))
        };
        match su_name {
            ST_FILE => match su_args {
                [Value::Array(dirs)] => dirs
                    .iter()
                    .map(|d| d.as_str().map(str::to_string).ok_or_else(wrong))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Unit::File),
                _ => Err(wrong()),
            },
            ST_LVM_PV | ST_LVM_VG if !su_args.is_empty() => Err(wrong()),
            ST_LVM_PV => Ok(Unit::Pv),
            ST_LVM_VG => Ok(Unit::Vg),
            other => Err(UnitError::Failed(format!(
                "Unknown storage type: {}",
                py_str(other)
            ))),
        }
    }

    /// `storage_list`: one row per unit, values in the order of `fields`.
    pub fn list(
        &self,
        paths: &Paths,
        name: Option<&str>,
        fields: &[String],
    ) -> Result<Vec<Value>, UnitError> {
        if fields.len() > MAX_FIELDS {
            return Err(UnitError::Refused(format!(
                "At most {MAX_FIELDS} fields can be listed"
            )));
        }
        match self {
            Unit::File(dirs) => {
                let wanted: Vec<&str> = match name {
                    Some(n) => vec![n],
                    None => dirs.iter().map(String::as_str).collect(),
                };
                let checked = wanted
                    .iter()
                    .map(|d| file_unit(paths, d))
                    .collect::<Result<Vec<_>, _>>()?;
                checked
                    .iter()
                    .map(|(wire, local)| list_file(wire, local, fields).map(Value::from))
                    .collect()
            }
            Unit::Pv | Unit::Vg => self.list_lvm(name, fields),
        }
    }

    /// The LVM columns a storage field needs (2.5.2's `LIST_FIELDS`).
    fn lvm_columns(&self, field: &str) -> Option<&'static [&'static str]> {
        match (self, field) {
            (Unit::Pv, "name") => Some(&["pv_name"]),
            (Unit::Pv, "size") => Some(&["pv_size"]),
            (Unit::Pv, "used") => Some(&["pv_used"]),
            (Unit::Pv, "free") => Some(&["pv_free"]),
            (Unit::Pv, "allocatable") => Some(&["pv_attr"]),
            (Unit::Vg, "name") => Some(&["vg_name"]),
            (Unit::Vg, "size") => Some(&["vg_size"]),
            (Unit::Vg, "free") => Some(&["vg_free"]),
            (Unit::Vg, "used") => Some(&["vg_size", "vg_free"]),
            (Unit::Vg, "allocatable") => Some(&[]),
            _ => None,
        }
    }

    fn list_lvm(&self, name: Option<&str>, fields: &[String]) -> Result<Vec<Value>, UnitError> {
        if let Some(n) = name {
            self.check_name(n)?;
        }
        let mut columns: Vec<&str> = Vec::new();
        for f in fields {
            // 2.5.2 raised a KeyError here: its text is the quoted name.
            let cols = self
                .lvm_columns(f)
                .ok_or_else(|| UnitError::Failed(py_str(f)))?;
            for c in cols {
                if !columns.contains(c) {
                    columns.push(c);
                }
            }
        }
        let cmd = if matches!(self, Unit::Pv) {
            "pvs"
        } else {
            "vgs"
        };
        let opts = columns.join(",");
        let mut argv = vec![
            cmd,
            "--noheadings",
            "--units=m",
            "--nosuffix",
            "--separator",
            "|",
            "--options",
            &opts,
        ];
        argv.extend(name);
        let r = run(&argv, LVM_TIMEOUT);
        if !r.ok() {
            return Err(UnitError::Failed(format!(
                "Failed to run {}, command output: {}",
                py_str(cmd),
                r.output()
            )));
        }
        self.build_rows(&r.stdout, &columns, fields)
    }

    /// Splits the LVM output and maps each row to the wanted fields.
    pub fn build_rows(
        &self,
        stdout: &str,
        columns: &[&str],
        fields: &[String],
    ) -> Result<Vec<Value>, UnitError> {
        let mut rows = Vec::new();
        for line in stdout.lines() {
            let values: Vec<&str> = line.trim().split('|').collect();
            if values.len() != columns.len() {
                log::warn!("Invalid line returned from lvm command: {line}");
                continue;
            }
            let col = |c: &str| {
                columns
                    .iter()
                    .position(|x| *x == c)
                    .map_or("", |i| values[i])
            };
            let mut row = Vec::with_capacity(fields.len());
            for f in fields {
                let v = match (self, f.as_str()) {
                    (_, "name") => Value::from(col(if matches!(self, Unit::Pv) {
                        "pv_name"
                    } else {
                        "vg_name"
                    })),
                    (Unit::Pv, "allocatable") => Value::from(col("pv_attr").starts_with('a')),
                    (Unit::Vg, "allocatable") => Value::from(true),
                    (Unit::Vg, "used") => Value::from(
                        parse_size(col("vg_size"))?.saturating_sub(parse_size(col("vg_free"))?),
                    ),
                    (Unit::Pv, f) => Value::from(parse_size(col(&format!("pv_{f}")))?),
                    (_, f) => Value::from(parse_size(col(&format!("vg_{f}")))?),
                };
                row.push(v);
            }
            rows.push(Value::from(row));
        }
        Ok(rows)
    }

    /// A PV or VG name given by the master: a valid LVM name for a VG, a
    /// device path for a PV.
    fn check_name(&self, name: &str) -> Result<(), UnitError> {
        match self {
            Unit::Vg => lvm::validate_name(name).map_err(|e| UnitError::Refused(e.to_string())),
            _ if !name.starts_with('/') || name.contains('\0') => Err(UnitError::Refused(format!(
                "Invalid storage unit name {}",
                py_str(name)
            ))),
            _ => Ok(()),
        }
    }

    /// `storage_modify`: only `allocatable` of a PV.
    pub fn modify(&self, name: &str, changes: &Map<String, Value>) -> Result<(), UnitError> {
        let mut rest: Vec<&String> = changes.keys().collect();
        if let Unit::Pv = self {
            if let Some(v) = changes.get("allocatable") {
                self.check_name(name)?;
                let flag = v.as_bool().ok_or_else(|| {
                    UnitError::Refused(format!("Invalid value for 'allocatable': {v}"))
                })?;
                let r = run(
                    &[
                        "pvchange",
                        "--allocatable",
                        if flag { "y" } else { "n" },
                        name,
                    ],
                    LVM_TIMEOUT,
                );
                if !r.ok() {
                    return Err(UnitError::Failed(format!(
                        "Failed to modify physical volume, pvchange output: {}",
                        r.output()
                    )));
                }
                rest.retain(|k| *k != "allocatable");
            }
        }
        if !rest.is_empty() {
            let keys: Vec<Value> = rest.iter().map(|k| Value::from(k.as_str())).collect();
            // 2.5.2's text, without a space between "following" and
            // "fields".
            return Err(UnitError::Failed(format!(
                "Unable to modify the followingfields: {}",
                py_repr(&Value::from(keys))
            )));
        }
        Ok(())
    }

    /// `storage_execute`: only `fix-consistency` of a VG.
    pub fn execute(&self, name: &str, op: &str) -> Result<(), UnitError> {
        match self {
            Unit::Vg if op == SO_FIX_CONSISTENCY => {
                self.check_name(name)?;
                remove_missing(name)
            }
            _ => Err(UnitError::Failed(format!(
                "operation {} is not implemented for storage type {}",
                py_str(op),
                py_str(match self {
                    Unit::File(_) => ST_FILE,
                    Unit::Pv => ST_LVM_PV,
                    Unit::Vg => ST_LVM_VG,
                })
            ))),
        }
    }
}

/// 2.5.2's `_ParseSize`: `int(round(float(value)))`, halves away from 0.
pub fn parse_size(value: &str) -> Result<i64, UnitError> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(|f| f.round() as i64)
        .ok_or_else(|| UnitError::Failed(format!("invalid literal for float(): {value}")))
}

/// 2.5.2's `LvmVgStorage._RemoveMissing`.
fn remove_missing(vg: &str) -> Result<(), UnitError> {
    let r = run(&["vgreduce", "--removemissing", vg], LVM_TIMEOUT);
    let mut output = r.output();
    if !output.contains("Wrote out consistent volume group")
        || output.contains("vgreduce --removemissing --force")
    {
        let r = run(&["vgreduce", "--removemissing", "--force", vg], LVM_TIMEOUT);
        output.push('\n');
        output.push_str(&r.output());
    }
    let r = run(&["vgs", "--noheadings", "--nosuffix", vg], LVM_TIMEOUT);
    if !r.ok() || r.output().contains("Couldn't find device with uuid") {
        return Err(UnitError::Failed(format!(
            "Volume group '{vg}' still not consistent, 'vgreduce' output: {}, 'vgs' output: {}",
            py_str(&output),
            py_str(&r.output())
        )));
    }
    Ok(())
}

/// A `file` unit: one of the two storage directories of ssconf, or below
/// one of them (the [`dirs`] check). Returns the path as given and the
/// local path. A missing ssconf file is an unexpected error, as in 2.5.2.
fn file_unit(paths: &Paths, dir: &str) -> Result<(String, PathBuf), UnitError> {
    let dir_error = |e: DirError| match e {
        DirError::Ssconf(m) => UnitError::Failed(m),
        DirError::Refused(m) => UnitError::Refused(m),
    };
    let refused = |e: String| UnitError::Refused(e);
    let normal = fsutil::normalize(dir);
    for key in ["file_storage_dir", "shared_file_storage_dir"] {
        let base = dirs::ssconf_value(paths, key).map_err(dir_error)?;
        if normal.is_some() && fsutil::normalize(&base) == normal {
            let n = normal.unwrap_or_default();
            dirs::check_base(&n).map_err(dir_error)?;
            return Ok((dir.to_string(), paths.to_local(&n.to_string_lossy())));
        }
    }
    let checked = dirs::storage_dir(paths, dir).map_err(dir_error)?;
    // The containment check covers the parents; a symlink at the unit
    // itself could still lead out.
    if checked
        .local
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return Err(refused(format!(
            "Storage directory '{}' is a symlink",
            checked.wire
        )));
    }
    Ok((dir.to_string(), checked.local))
}

/// One row of a `file` unit.
fn list_file(wire: &str, local: &Path, fields: &[String]) -> Result<Vec<Value>, UnitError> {
    let want = |f: &str| fields.iter().any(|x| x == f);
    let used = want("used").then(|| mib(dir_size(local)));
    let stats = if want("free") || want("size") {
        let (total, avail) = crate::sys::statvfs(local)
            .map_err(|e| UnitError::Failed(os_error_text(&e, Some(Path::new(wire)))))?;
        Some((mib(total), mib(avail)))
    } else {
        None
    };
    fields
        .iter()
        .map(|f| match f.as_str() {
            "name" => Ok(Value::from(wire)),
            "used" => Ok(Value::from(used.unwrap_or(0))),
            "free" => Ok(Value::from(stats.map_or(0, |s| s.1))),
            "size" => Ok(Value::from(stats.map_or(0, |s| s.0))),
            "allocatable" => Ok(Value::from(true)),
            other => Err(UnitError::Failed(format!(
                "Unknown field: {}",
                py_str(other)
            ))),
        })
        .collect()
}

/// Bytes to MiB, rounded half up (2.5.2's `BytesToMebibyte`), without
/// overflowing near `u64::MAX` (sparse files can add up to that).
fn mib(bytes: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    bytes / MIB + u64::from(bytes % MIB >= MIB / 2)
}

/// 2.5.2's `CalculateDirectorySize` in bytes: the `lstat` sizes of all
/// non-directories below `dir`, without following symlinks; unreadable
/// parts count as empty (as `os.walk` skipped them).
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(m) = entry.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                pending.push(entry.path());
            } else {
                total = total.saturating_add(m.len());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/samples/lvm/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn fields(f: &[&str]) -> Vec<String> {
        f.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn storage_types_and_arguments() {
        assert!(matches!(Unit::new("lvm-pv", &[]), Ok(Unit::Pv)));
        assert!(matches!(Unit::new("lvm-vg", &[]), Ok(Unit::Vg)));
        assert!(matches!(
            Unit::new("file", &[json!(["/srv/ganeti/file-storage", ""])]),
            Ok(Unit::File(_))
        ));
        assert_eq!(
            Unit::new("nfs", &[]).unwrap_err().to_string(),
            "Unknown storage type: 'nfs'"
        );
        assert!(matches!(
            Unit::new("lvm-vg", &[json!(1)]),
            Err(UnitError::Refused(_))
        ));
        assert!(matches!(Unit::new("file", &[]), Err(UnitError::Refused(_))));
        assert!(matches!(
            Unit::new("file", &[json!([1])]),
            Err(UnitError::Refused(_))
        ));
    }

    #[test]
    fn pv_rows_from_a_recording() {
        let cols = ["pv_name", "pv_size", "pv_used", "pv_free", "pv_attr"];
        let f = fields(&["name", "size", "used", "free", "allocatable"]);
        let rows = Unit::Pv
            .build_rows(&sample("storage_pv.stdout"), &cols, &f)
            .unwrap();
        assert_eq!(
            Value::from(rows),
            json!([
                ["/dev/loop0", 196, 176, 20, true],
                ["/dev/loop1", 96, 32, 64, true],
                ["/dev/loop2", 60, 0, 60, true],
            ])
        );
        let rows = Unit::Pv
            .build_rows(&sample("pvs_after.stdout"), &cols, &f)
            .unwrap();
        assert_eq!(rows[1], json!(["/dev/loop1", 96, 24, 72, false]));
    }

    #[test]
    fn vg_rows_from_a_recording() {
        let cols = ["vg_name", "vg_size", "vg_free"];
        let f = fields(&["allocatable", "used", "name", "free", "size"]);
        let rows = Unit::Vg
            .build_rows(&sample("storage_vg.stdout"), &cols, &f)
            .unwrap();
        assert_eq!(
            Value::from(rows),
            json!([[true, 0, "datavg", 60, 60], [true, 208, "xenvg", 84, 292]])
        );
        assert!(Unit::Vg
            .build_rows("  a|b\n", &cols, &f)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn unknown_fields_and_limits() {
        assert_eq!(
            Unit::Vg
                .list_lvm(None, &fields(&["name", "colour"]))
                .unwrap_err(),
            UnitError::Failed("'colour'".into())
        );
        let p = Paths::with_root("");
        let many = vec!["name".to_string(); MAX_FIELDS + 1];
        assert!(matches!(
            Unit::Vg.list(&p, None, &many),
            Err(UnitError::Refused(_))
        ));
        assert!(matches!(
            Unit::Vg.list_lvm(Some("--all"), &fields(&["name"])),
            Err(UnitError::Refused(_))
        ));
        for bad in ["-a", "@tag", "", "sda", "/dev/a\0b"] {
            assert!(
                matches!(
                    Unit::Pv.list_lvm(Some(bad), &fields(&["name"])),
                    Err(UnitError::Refused(_))
                ),
                "{bad}"
            );
            let mut allocatable = Map::new();
            allocatable.insert("allocatable".into(), json!(false));
            assert!(
                matches!(
                    Unit::Pv.modify(bad, &allocatable),
                    Err(UnitError::Refused(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn modify_and_execute_refusals() {
        let mut changes = Map::new();
        assert!(Unit::Vg.modify("xenvg", &changes).is_ok());
        changes.insert("size".into(), json!(1));
        assert_eq!(
            Unit::Vg.modify("xenvg", &changes).unwrap_err().to_string(),
            "Unable to modify the followingfields: ['size']"
        );
        assert_eq!(
            Unit::Pv
                .execute("/dev/sda", "fix-consistency")
                .unwrap_err()
                .to_string(),
            "operation 'fix-consistency' is not implemented for storage type 'lvm-pv'"
        );
        assert!(matches!(
            Unit::Vg.execute("-x", "fix-consistency"),
            Err(UnitError::Refused(_))
        ));
    }

    #[test]
    fn sizes_round_half_away_from_zero() {
        assert_eq!(parse_size("2.5").unwrap(), 3);
        assert_eq!(parse_size("2.49").unwrap(), 2);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert!(parse_size("x").is_err());
        assert_eq!(mib(512 * 1024), 1);
        assert_eq!(mib(512 * 1024 - 1), 0);
        assert_eq!(mib(3 * 1024 * 1024 + 512 * 1024), 4);
        assert_eq!(mib(u64::MAX), u64::MAX / (1024 * 1024) + 1);
        // Sizes lvm2 would never print must not overflow either.
        let cols = ["vg_name", "vg_size", "vg_free"];
        let rows = Unit::Vg
            .build_rows("  v|1e300|-1e300\n", &cols, &fields(&["used"]))
            .unwrap();
        assert_eq!(rows, vec![json!([i64::MAX])]);
    }
}
