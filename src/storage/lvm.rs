//! Logical volumes (2.5.2's `bdev.LogicalVolume`) and the LVM listings of
//! `backend.py` (`lv_list`, `vg_list`, `node_volumes`) and node_verify.
//!
//! The LVM tools are run as 2.5.2 runs them, with the same options (the
//! parsers are tested on recordings of real lvm2 output in
//! `tests/samples/lvm/`). They are looked up in the daemon's `PATH`.
//!
//! Names: 2.5.2's rules (`^[a-zA-Z0-9+_.-]*$`, not `.`, `..`, `snapshot`,
//! `pvmove`, no `_mlog` or `_mimage`), and, since the names become command
//! arguments, also not empty, not starting with `-` and at most
//! [`MAX_LVM_NAME`] characters (LVM's own limit).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{py_float, py_repr, run, shell_quote_args, BdevError, Status, LDS_FAULTY, LDS_OKAY};
use crate::cmd::CmdResult;

/// How long one LVM command may take (2.5.2: unbounded).
pub const LVM_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest VG or LV name (LVM's `NAME_LEN` less the NUL).
pub const MAX_LVM_NAME: usize = 127;
/// `constants.LVM_STRIPECOUNT` (the configure default).
pub const LVM_STRIPECOUNT: usize = 1;
/// The longest LV tag (`SetInfo`).
const MAX_TAG: usize = 128;

fn lvm(argv: &[&str]) -> CmdResult {
    run(argv, LVM_TIMEOUT)
}

/// 2.5.2's `_ValidateName`, plus the argument rules of the module
/// documentation.
pub fn validate_name(name: &str) -> Result<(), BdevError> {
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+_.-".contains(c));
    let bad = !chars_ok
        || name.is_empty()
        || name.starts_with('-')
        || name.len() > MAX_LVM_NAME
        || [".", "..", "snapshot", "pvmove"].contains(&name)
        || name.contains("_mlog")
        || name.contains("_mimage");
    if bad {
        return Err(BdevError::Refused(format!("Invalid LVM name '{name}'")));
    }
    Ok(())
}

/// What `lvs` says about an attached LV.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachInfo {
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Extent size in MiB.
    pub pe_size: u64,
    pub stripes: u64,
    /// A virtual volume (`v`): no backing storage any more.
    pub degraded: bool,
}

/// Parses `lvs --noheadings --separator=, --units=m --nosuffix
/// -olv_attr,lv_kernel_major,lv_kernel_minor,vg_extent_size,stripes`: the
/// last line counts (one line per segment).
pub fn parse_attach(stdout: &str) -> Option<AttachInfo> {
    let Some(last) = stdout.lines().last() else {
        log::error!("Can't parse LVS output, no lines? Got '{stdout}'");
        return None;
    };
    let fields: Vec<&str> = last.trim().trim_end_matches(',').split(',').collect();
    let [status, major, minor, pe_size, stripes] = fields[..] else {
        log::error!("Can't parse LVS output, len({fields:?}) != 5");
        return None;
    };
    if status.chars().count() < 6 {
        log::error!("lvs lv_attr is not at least 6 characters ({status})");
        return None;
    }
    let (major, minor) = match (major.parse::<i64>(), minor.parse::<i64>()) {
        (Ok(a), Ok(b)) => (Some(a), Some(b)),
        _ => {
            log::error!("lvs major/minor cannot be parsed: {major}, {minor}");
            (None, None)
        }
    };
    let Some(pe_size) = pe_size
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f >= 0.0)
    else {
        log::error!("Can't parse vg extent size: {pe_size}");
        return None;
    };
    let Ok(stripes) = stripes.parse::<u64>() else {
        log::error!("Can't parse the number of stripes: {stripes}");
        return None;
    };
    Some(AttachInfo {
        major,
        minor,
        pe_size: pe_size as u64,
        stripes,
        degraded: status.starts_with('v'),
    })
}

/// A checked logical volume.
#[derive(Debug, Clone)]
pub struct Lv {
    pub vg: String,
    pub lv: String,
    /// The disk's size in MiB, as the master sent it.
    pub size: Option<u64>,
    info: Option<AttachInfo>,
}

impl Lv {
    /// Checks both names; runs nothing.
    pub fn new(vg: &str, lv: &str, size: Option<u64>) -> Result<Lv, BdevError> {
        validate_name(vg)?;
        validate_name(lv)?;
        Ok(Lv {
            vg: vg.into(),
            lv: lv.into(),
            size,
            info: None,
        })
    }

    pub fn dev_path(&self) -> String {
        format!("/dev/{}/{}", self.vg, self.lv)
    }

    /// 2.5.2's `Attach`: `lvs` on the device path.
    pub fn attach(&mut self) -> bool {
        let dev = self.dev_path();
        let r = lvm(&[
            "lvs",
            "--noheadings",
            "--separator=,",
            "--units=m",
            "--nosuffix",
            "-olv_attr,lv_kernel_major,lv_kernel_minor,vg_extent_size,stripes",
            &dev,
        ]);
        if let Some(reason) = &r.fail_reason {
            log::error!("Can't find LV {dev}: {reason}, {}", r.output());
            self.info = None;
            return false;
        }
        self.info = parse_attach(&r.stdout);
        self.info.is_some()
    }

    /// 2.5.2's `GetSyncStatus`.
    pub fn status(&self) -> Status {
        // 2.5.2 starts from "degraded" until an attach says otherwise.
        let degraded = self.info.as_ref().map_or(true, |i| i.degraded);
        Status {
            dev_path: self.dev_path(),
            major: self.info.as_ref().and_then(|i| i.major),
            minor: self.info.as_ref().and_then(|i| i.minor),
            is_degraded: degraded,
            ldisk_status: if degraded { LDS_FAULTY } else { LDS_OKAY },
        }
    }

    /// 2.5.2's `Create`: on the allocatable PVs of the VG, largest free
    /// space first, with as many stripes as allowed, then fewer.
    pub fn create(&self) -> Result<(), BdevError> {
        let size = self
            .size
            .ok_or_else(|| BdevError::Refused("Invalid disk size for a logical volume".into()))?;
        let mut pvs = match pv_info(std::slice::from_ref(&self.vg), true) {
            Some(p) if !p.is_empty() => p,
            _ => {
                return Err(BdevError::Failed(format!(
                    "Can't compute PV info for vg {}",
                    self.vg
                )))
            }
        };
        // Python sorts the (free, name, vg) tuples and reverses them.
        pvs.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| b.1.cmp(&a.1))
                .then_with(|| b.2.cmp(&a.2))
        });
        let names: Vec<&str> = pvs.iter().map(|p| p.1.as_str()).collect();
        if names.iter().any(|n| n.contains(':')) {
            return Err(BdevError::Failed(
                "Some of your PVs have the invalid character ':' in their name, this is not \
                 supported - please filter them out in lvm.conf using either 'filter' or \
                 'preferred_names'"
                    .into(),
            ));
        }
        if names.iter().any(|n| n.starts_with('-')) {
            return Err(BdevError::Failed(
                "Some of your PVs have a name starting with '-', this is not supported".into(),
            ));
        }
        let free: f64 = pvs.iter().map(|p| p.0).sum();
        if free < size as f64 {
            return Err(BdevError::Failed(format!(
                "Not enough free space: required {size}, available {}",
                py_float(free)
            )));
        }
        let stripes = names.len().min(LVM_STRIPECOUNT);
        let size_arg = format!("-L{size}m");
        let name_arg = format!("-n{}", self.lv);
        let mut last = None;
        for n in (1..=stripes).rev() {
            let stripe_arg = format!("-i{n}");
            let mut argv = vec!["lvcreate", &size_arg, &name_arg, &stripe_arg, &self.vg];
            argv.extend(names.iter().copied());
            let r = lvm(&argv);
            if r.ok() {
                return Ok(());
            }
            last = Some(r);
        }
        let (reason, output) = last.map_or_else(
            || ("no PVs".to_string(), String::new()),
            |r| (r.fail_reason.clone().unwrap_or_default(), r.output()),
        );
        Err(BdevError::Failed(format!(
            "LV create failed ({reason}): {output}"
        )))
    }

    /// 2.5.2's `Assemble`: `lvchange -ay`.
    pub fn assemble(&self) -> Result<(), BdevError> {
        let dev = self.dev_path();
        let r = lvm(&["lvchange", "-ay", &dev]);
        if !r.ok() {
            return Err(BdevError::Failed(format!(
                "Can't activate lv {dev}: {}",
                r.output()
            )));
        }
        Ok(())
    }

    /// 2.5.2's `Remove`: `lvremove -f vg/lv` when the LV is there.
    pub fn remove(&mut self) -> Result<(), BdevError> {
        // 2.5.2: `if not self.minor and not self.Attach()` (minor 0 counts
        // as unknown, and attaches again).
        let minor_known = self
            .info
            .as_ref()
            .and_then(|i| i.minor)
            .is_some_and(|m| m != 0);
        if !minor_known && !self.attach() {
            return Ok(());
        }
        let r = lvm(&["lvremove", "-f", &format!("{}/{}", self.vg, self.lv)]);
        if let Some(reason) = &r.fail_reason {
            return Err(BdevError::Failed(format!(
                "Can't lvremove: {reason} - {}",
                r.output()
            )));
        }
        Ok(())
    }

    /// Checks a rename target `[vg, lv]`: same VG, valid name.
    pub fn check_new_id(&self, new_id: &Value) -> Result<String, BdevError> {
        let (vg, lv) = match new_id.as_array().map(Vec::as_slice) {
            Some([Value::String(vg), Value::String(lv)]) => (vg, lv),
            _ => {
                return Err(BdevError::Refused(format!(
                    "Invalid new logical id '{}'",
                    py_repr(new_id)
                )))
            }
        };
        if *vg != self.vg {
            return Err(BdevError::Refused(format!(
                "Can't move a logical volume across volume groups (from {} to to {vg})",
                self.vg
            )));
        }
        validate_name(lv)?;
        Ok(lv.clone())
    }

    /// 2.5.2's `Rename`: `lvrename vg old new`.
    pub fn rename(&mut self, new_id: &Value) -> Result<(), BdevError> {
        let new = self.check_new_id(new_id)?;
        let r = lvm(&["lvrename", &self.vg, &self.lv, &new]);
        if !r.ok() {
            return Err(BdevError::Failed(format!(
                "Failed to rename the logical volume: {}",
                r.output()
            )));
        }
        self.lv = new;
        Ok(())
    }

    /// 2.5.2's `SetInfo`: the text as an LV tag. A failure is reported
    /// as 2.5.2 did (`Command: ... error: ... - ...`).
    pub fn set_info(&self, text: &str) -> Result<(), BdevError> {
        let tag = lv_tag(text);
        let dev = self.dev_path();
        let argv = ["lvchange", "--addtag", tag.as_str(), dev.as_str()];
        let r = lvm(&argv);
        if let Some(reason) = &r.fail_reason {
            return Err(BdevError::Other(format!(
                "Command: {} error: {reason} - {}",
                shell_quote_args(&argv),
                r.output()
            )));
        }
        Ok(())
    }

    /// 2.5.2's `Grow`: the amount rounded up to whole stripes of extents,
    /// `lvextend` with the allocation policies contiguous, cling, normal.
    pub fn grow(&mut self, amount: i64, dryrun: bool) -> Result<(), BdevError> {
        if self.info.is_none() && !self.attach() {
            return Err(BdevError::Failed("Can't attach to LV during Grow()".into()));
        }
        let full = self
            .info
            .as_ref()
            .map_or(0, |i| i.pe_size.saturating_mul(i.stripes));
        let full = i64::try_from(full).unwrap_or(0);
        if full <= 0 || amount < 0 {
            return Err(BdevError::Failed("Can't attach to LV during Grow()".into()));
        }
        let rest = amount % full;
        let amount = if rest != 0 {
            amount.saturating_add(full - rest)
        } else {
            amount
        };
        let size_arg = format!("+{amount}m");
        let dev = self.dev_path();
        let mut output = String::new();
        for policy in ["contiguous", "cling", "normal"] {
            let mut argv = vec!["lvextend", "-L", &size_arg];
            if dryrun {
                argv.push("--test");
            }
            argv.extend(["--alloc", policy, &dev]);
            let r = lvm(&argv);
            if r.ok() {
                return Ok(());
            }
            output = r.output();
        }
        Err(BdevError::Failed(format!("Can't grow LV {dev}: {output}")))
    }

    /// 2.5.2's `Snapshot`: a snapshot LV `<lv>.snap` of `size` MiB; its
    /// errors reach the master as unexpected ones, as in 2.5.2.
    pub fn snapshot(&self, size: u64) -> Result<(String, String), BdevError> {
        let snap_name = format!("{}.snap", self.lv);
        let mut snap = Lv::new(&self.vg, &snap_name, Some(size))?;
        if snap.attach() {
            if let Err(e) = snap.remove() {
                log::warn!("Caught BlockDeviceError but ignoring: {e}");
            }
        }
        let free = match vg_info(std::slice::from_ref(&self.vg), true) {
            Some(v) if !v.is_empty() => v[0].0,
            _ => {
                return Err(BdevError::Other(format!(
                    "Can't compute VG info for vg {}",
                    self.vg
                )))
            }
        };
        if free < size as f64 {
            return Err(BdevError::Other(format!(
                "Not enough free space: required {size}, available {}",
                py_float(free)
            )));
        }
        let size_arg = format!("-L{size}m");
        let name_arg = format!("-n{snap_name}");
        let dev = self.dev_path();
        let argv = [
            "lvcreate",
            size_arg.as_str(),
            "-s",
            name_arg.as_str(),
            dev.as_str(),
        ];
        let r = lvm(&argv);
        if let Some(reason) = &r.fail_reason {
            return Err(BdevError::Other(format!(
                "command: {} error: {reason} - {}",
                shell_quote_args(&argv),
                r.output()
            )));
        }
        Ok((self.vg.clone(), snap_name))
    }
}

/// 2.5.2's tag rule: a bad first character and every other bad character
/// become `_`; at most 128 characters.
pub fn lv_tag(text: &str) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            let ok = c.is_ascii_alphanumeric() || "_+.".contains(c) || (i > 0 && c == '-');
            if ok {
                c
            } else {
                '_'
            }
        })
        .take(MAX_TAG)
        .collect()
}

/// 2.5.2's `_GetVolumeInfo`: `<cmd> --noheadings --nosuffix --units=m
/// --unbuffered --separator=| -o<fields>`, split into rows.
fn volume_info(cmd: &str, fields: &[&str]) -> Result<Vec<Vec<String>>, String> {
    let opts = format!("-o{}", fields.join(","));
    let r = lvm(&[
        cmd,
        "--noheadings",
        "--nosuffix",
        "--units=m",
        "--unbuffered",
        "--separator=|",
        &opts,
    ]);
    if let Some(reason) = &r.fail_reason {
        return Err(format!(
            "Can't get the volume information: {reason} - {}",
            r.output()
        ));
    }
    parse_info(cmd, &r.stdout, fields.len())
}

/// Splits `|`-separated rows; every row must have `n` fields.
pub fn parse_info(cmd: &str, stdout: &str, n: usize) -> Result<Vec<Vec<String>>, String> {
    stdout
        .lines()
        .map(|line| {
            let row: Vec<String> = line.trim().split('|').map(str::to_string).collect();
            if row.len() == n {
                Ok(row)
            } else {
                Err(format!("Can't parse {cmd} output: line '{line}'"))
            }
        })
        .collect()
}

fn float(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("invalid literal for float(): {s}"))
}

/// 2.5.2's `GetPVInfo`: `(free MiB, pv, vg)` of the PVs in `vgs` (all when
/// empty), only the allocatable ones if asked; `None` when `pvs` fails.
pub fn pv_info(vgs: &[String], filter_allocatable: bool) -> Option<Vec<(f64, String, String)>> {
    let rows = volume_info("pvs", &["pv_name", "vg_name", "pv_free", "pv_attr"])
        .map_err(|e| log::error!("Can't get PV information: {e}"))
        .ok()?;
    filter_pvs(rows, vgs, filter_allocatable)
        .map_err(|e| log::error!("Can't get PV information: {e}"))
        .ok()
}

/// The row filter of `GetPVInfo`.
pub fn filter_pvs(
    rows: Vec<Vec<String>>,
    vgs: &[String],
    filter_allocatable: bool,
) -> Result<Vec<(f64, String, String)>, String> {
    let mut out = Vec::new();
    for row in rows {
        let [pv, vg, free, attr] = &row[..] else {
            continue;
        };
        if filter_allocatable && !attr.starts_with('a') {
            continue;
        }
        if !vgs.is_empty() && !vgs.contains(vg) {
            continue;
        }
        out.push((float(free)?, pv.clone(), vg.clone()));
    }
    Ok(out)
}

/// 2.5.2's `GetVGInfo`: `(free, size, vg)` in MiB of the VGs in `vgs` (all
/// when empty), read-only ones left out if asked; `None` when `vgs` fails.
pub fn vg_info(vgs: &[String], filter_readonly: bool) -> Option<Vec<(f64, f64, String)>> {
    let rows = volume_info("vgs", &["vg_name", "vg_free", "vg_attr", "vg_size"])
        .map_err(|e| log::error!("Can't get VG information: {e}"))
        .ok()?;
    filter_vgs(rows, vgs, filter_readonly)
        .map_err(|e| log::error!("Can't get VG information: {e}"))
        .ok()
}

/// The row filter of `GetVGInfo`.
pub fn filter_vgs(
    rows: Vec<Vec<String>>,
    vgs: &[String],
    filter_readonly: bool,
) -> Result<Vec<(f64, f64, String)>, String> {
    let mut out = Vec::new();
    for row in rows {
        let [vg, free, attr, size] = &row[..] else {
            continue;
        };
        if filter_readonly && attr.starts_with('r') {
            continue;
        }
        if !vgs.is_empty() && !vgs.contains(vg) {
            continue;
        }
        out.push((float(free)?, float(size)?, vg.clone()));
    }
    Ok(out)
}

/// `lv_list`: `lvs ... -ovg_name,lv_name,lv_size,lv_attr <vg>...`; the VG
/// names must be valid. `Err` is the message of the failed call.
pub fn volume_list(vgs: &[String]) -> Result<Map<String, Value>, BdevError> {
    for vg in vgs {
        validate_name(vg)?;
    }
    let mut argv = vec![
        "lvs",
        "--noheadings",
        "--units=m",
        "--nosuffix",
        "--separator=|",
        "-ovg_name,lv_name,lv_size,lv_attr",
    ];
    argv.extend(vgs.iter().map(String::as_str));
    let r = lvm(&argv);
    if !r.ok() {
        return Err(BdevError::Failed(format!(
            "Failed to list logical volumes, lvs output: {}",
            r.output()
        )));
    }
    Ok(parse_lv_list(&r.stdout))
}

/// Parses `lv_list`'s `lvs` output (2.5.2's `_LVSLINE_REGEX`); virtual
/// volumes are left out.
pub fn parse_lv_list(stdout: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for line in stdout.lines() {
        let line = line.trim();
        let body = line.strip_suffix('|').unwrap_or(line);
        let fields: Vec<&str> = body.split('|').collect();
        let ok = match fields[..] {
            [vg, lv, size, attr] => {
                !vg.is_empty()
                    && !lv.is_empty()
                    && !size.is_empty()
                    && size.chars().all(|c| c.is_ascii_digit() || c == '.')
                    && attr.chars().count() >= 6
            }
            _ => false,
        };
        if !ok {
            log::error!("Invalid line returned from lvs output: '{line}'");
            continue;
        }
        let (vg, lv, size, attr) = (fields[0], fields[1], fields[2], fields[3]);
        let attr: Vec<char> = attr.chars().collect();
        if attr[0] == 'v' {
            continue;
        }
        out.insert(
            format!("{vg}/{lv}"),
            Value::from(vec![
                Value::from(size),
                Value::from(attr[4] == '-'),
                Value::from(attr[5] == 'o'),
            ]),
        );
    }
    out
}

/// `vg_list` (2.5.2's `utils.ListVolumeGroups`): `{vg: MiB}`; `{}` when
/// `vgs` fails. 2.5.2 ran the same words through `/bin/sh -c`.
pub fn list_volume_groups() -> BTreeMap<String, i64> {
    let r = lvm(&[
        "vgs",
        "--noheadings",
        "--units",
        "m",
        "--nosuffix",
        "-o",
        "name,size",
    ]);
    if !r.ok() {
        return BTreeMap::new();
    }
    parse_vg_list(&r.stdout)
}

/// Parses `vgs --noheadings --units m --nosuffix -o name,size`: sizes
/// truncated to whole MiB.
pub fn parse_vg_list(stdout: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let parsed = match words[..] {
            [name, size] => size
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| (name, f.trunc() as i64)),
            _ => None,
        };
        match parsed {
            Some((name, size)) => {
                out.insert(name.to_string(), size);
            }
            None => log::error!("Invalid output from vgs: {line}"),
        }
    }
    out
}

/// `node_volumes`: one entry per LV and PV.
pub fn node_volumes() -> Result<Vec<Value>, BdevError> {
    let r = lvm(&[
        "lvs",
        "--noheadings",
        "--units=m",
        "--nosuffix",
        "--separator=|",
        "--options=lv_name,lv_size,devices,vg_name",
    ]);
    if !r.ok() {
        return Err(BdevError::Failed(format!(
            "Failed to list logical volumes, lvs output: {}",
            r.output()
        )));
    }
    Ok(parse_node_volumes(&r.stdout))
}

/// Parses `node_volumes`' `lvs` output: the devices column is split on `,`
/// and `(<extent>)` dropped.
pub fn parse_node_volumes(stdout: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for line in stdout.lines() {
        if line.matches('|').count() < 3 {
            log::warn!("Strange line in the output from lvs: '{line}'");
            continue;
        }
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        for dev in f[2].split(',') {
            let dev = dev.split('(').next().unwrap_or(dev);
            let mut m = Map::new();
            m.insert("name".into(), Value::from(f[0]));
            m.insert("size".into(), Value::from(f[1]));
            m.insert("dev".into(), Value::from(dev));
            m.insert("vg".into(), Value::from(f[3]));
            out.push(Value::Object(m));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! The parsers on recordings of real lvm2 2.03.16 output (see
    //! tests/samples/lvm/README.md; the `edited_*` files are edited).
    use super::*;
    use serde_json::json;

    fn sample(name: &str) -> String {
        let p = format!("{}/tests/samples/lvm/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn names() {
        for ok in ["xenvg", "0d8d2c6b-4b1c.disk0", "a+b_c.d-e", "x.snap"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        assert!(validate_name(&"a".repeat(MAX_LVM_NAME)).is_ok());
        let over = "a".repeat(MAX_LVM_NAME + 1);
        for bad in [
            "",
            ".",
            "..",
            "snapshot",
            "pvmove",
            "a_mlog",
            "x_mimageY",
            "-ay",
            "--test",
            "a/b",
            "../x",
            "a b",
            "a\nb",
            "é",
            over.as_str(),
        ] {
            assert_eq!(
                validate_name(bad),
                Err(BdevError::Refused(format!("Invalid LVM name '{bad}'"))),
                "{bad}"
            );
        }
    }

    #[test]
    fn attach_output() {
        // Two segments: two lines, the last counts. Without device-mapper
        // the kernel numbers are -1.
        let info = parse_attach(&sample("lv_attach.stdout")).unwrap();
        assert_eq!(
            info,
            AttachInfo {
                major: Some(-1),
                minor: Some(-1),
                pe_size: 4,
                stripes: 1,
                degraded: false
            }
        );
        let active = parse_attach(&sample("edited_lv_attach_active.stdout")).unwrap();
        assert_eq!((active.major, active.minor), (Some(253), Some(0)));
        assert_eq!(parse_attach(&sample("lv_attach_missing.stdout")), None);
        assert_eq!(parse_attach("  -wi-a,253,0,4.00,1\n"), None);
        assert_eq!(parse_attach("  -wi-a-----,253,0,4.00\n"), None);
        assert_eq!(parse_attach("  -wi-a-----,253,0,x,1\n"), None);
        let v = parse_attach("  vwi-a-v---,253,3,4.00,1,\n").unwrap();
        assert!(v.degraded);
    }

    #[test]
    fn lv_list_output() {
        let all = parse_lv_list(&sample("lv_list.stdout"));
        assert_eq!(
            Value::Object(all),
            json!({
                "xenvg/0d8d2c6b-4b1c.disk0": ["128.00", false, false],
                "xenvg/7f3e9a10-22aa.disk1": ["64.00", false, false],
                "xenvg/striped.disk0": ["16.00", false, false],
            })
        );
        let active = parse_lv_list(&sample("edited_lv_list_active.stdout"));
        assert_eq!(
            Value::Object(active),
            json!({
                "xenvg/0d8d2c6b-4b1c.disk0": ["128.00", false, true],
                "xenvg/7f3e9a10-22aa.disk1": ["64.00", true, false],
            })
        );
        let odd = parse_lv_list(
            "  a|b|1.0|-wi-a\n  a|b|x|-wi-a-----\n  a||1|-wi-a-----\n  a|c|2.00|-wi-a-----|\n",
        );
        assert_eq!(Value::Object(odd), json!({"a/c": ["2.00", false, false]}));
    }

    #[test]
    fn node_volumes_output() {
        let v = parse_node_volumes(&sample("node_volumes.stdout"));
        assert_eq!(
            Value::from(v),
            json!([
                {"name": "0d8d2c6b-4b1c.disk0", "size": "128.00", "dev": "/dev/loop0", "vg": "xenvg"},
                {"name": "7f3e9a10-22aa.disk1", "size": "64.00", "dev": "/dev/loop0", "vg": "xenvg"},
                {"name": "7f3e9a10-22aa.disk1", "size": "64.00", "dev": "/dev/loop1", "vg": "xenvg"},
                {"name": "striped.disk0", "size": "16.00", "dev": "/dev/loop0", "vg": "xenvg"},
                {"name": "striped.disk0", "size": "16.00", "dev": "/dev/loop1", "vg": "xenvg"},
            ])
        );
        assert!(parse_node_volumes("  a|b|c\n").is_empty());
    }

    #[test]
    fn vg_list_output() {
        let v = parse_vg_list(&sample("vg_list.stdout"));
        assert_eq!(
            v,
            BTreeMap::from([("datavg".into(), 60), ("xenvg".into(), 292)])
        );
        assert_eq!(
            parse_vg_list("  a 1.9\n  b\n  c x\n  d 1 2\n"),
            BTreeMap::from([("a".into(), 1)])
        );
    }

    #[test]
    fn pv_and_vg_info_output() {
        let rows = parse_info("pvs", &sample("pv_info.stdout"), 4).unwrap();
        let all = filter_pvs(rows.clone(), &[], false).unwrap();
        assert_eq!(
            all,
            vec![
                (60.0, "/dev/loop2".into(), "datavg".into()),
                (20.0, "/dev/loop0".into(), "xenvg".into()),
                (64.0, "/dev/loop1".into(), "xenvg".into()),
            ]
        );
        let xen = filter_pvs(rows, &["xenvg".into()], true).unwrap();
        assert_eq!(xen.len(), 2);
        // After `pvchange --allocatable n /dev/loop1` (attr `u--`).
        let after = parse_info("pvs", &sample("pvs_after.stdout"), 5).unwrap();
        let rows: Vec<Vec<String>> = after
            .into_iter()
            .map(|r| vec![r[0].clone(), "xenvg".into(), r[3].clone(), r[4].clone()])
            .collect();
        assert_eq!(filter_pvs(rows, &[], true).unwrap().len(), 2);
        let vgs = parse_info("vgs", &sample("vg_info.stdout"), 4).unwrap();
        assert_eq!(
            filter_vgs(vgs, &["xenvg".into()], true).unwrap(),
            vec![(84.0, 292.0, "xenvg".into())]
        );
        assert_eq!(
            parse_info("pvs", "  a|b|c\n", 4).unwrap_err(),
            "Can't parse pvs output: line '  a|b|c'"
        );
    }

    #[test]
    fn tags() {
        assert_eq!(
            lv_tag("originstname+inst1.example.com"),
            "originstname+inst1.example.com"
        );
        assert_eq!(lv_tag("-a b/c-d"), "_a_b_c-d");
        assert_eq!(lv_tag(&"x".repeat(200)).len(), MAX_TAG);
    }

    #[test]
    fn rename_targets() {
        let lv = Lv::new("xenvg", "a.disk0", Some(1)).unwrap();
        assert_eq!(
            lv.check_new_id(&json!(["xenvg", "b.disk0"])).unwrap(),
            "b.disk0"
        );
        assert_eq!(
            lv.check_new_id(&json!(["other", "b"]))
                .unwrap_err()
                .to_string(),
            "Can't move a logical volume across volume groups (from xenvg to to other)"
        );
        assert!(lv.check_new_id(&json!(["xenvg", "--force"])).is_err());
        assert!(lv.check_new_id(&json!(["xenvg"])).is_err());
        assert!(lv.check_new_id(&json!("xenvg/b")).is_err());
    }
}
