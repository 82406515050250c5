//! The cluster configuration of the master daemon: `config.data` read,
//! upgraded and written exactly as Ganeti 2.5.2 does, the ssconf values
//! derived from it, the first configuration of `gnt-cluster init`, and the
//! [`ConfigWriter`] through which every change goes.
//!
//! Supported: 2.5.2's file format byte for byte (`serializer.DumpJson`:
//! sorted keys, two-space indent, ASCII-only strings, Python float repr, a
//! trailing newline), its object-level `UpgradeConfig` defaults and the
//! writer-level upgrade (missing UUIDs, the `default` node group), version
//! check and messages, the safe write with the file-identity check, the
//! distribution of `config.data` to master candidates (`upload_file`) and
//! of the ssconf values to online nodes (`write_ssconf_files`), name
//! expansion, parameter filling and the MAC/UUID/port generators.
//!
//! Differences from 2.5.2, all on the safe side:
//! * Keys 2.5.2 does not know are kept and written back instead of making
//!   the file unreadable; unknown hypervisors in `hvparams` are kept as
//!   they are (2.5.2 stopped with a `KeyError`).
//! * The version is checked before the objects are read, so a file of
//!   another version is reported as a version mismatch, not as whatever
//!   object error its layout would cause.
//! * The cluster's `rsahostkeypub`, names and addresses and each node's
//!   name and IPs must be present (2.5.2's presence check could not fire;
//!   a file without them is useless to it too).
//! * `config.data` is at most [`MAX_CONFIG_SIZE`] bytes (what a node
//!   daemon accepts through `upload_file`) and nested at most
//!   [`MAX_JSON_DEPTH`] levels; a symbolic link in its place is refused.
//! * An update whose write fails leaves the in-memory configuration as it
//!   was (2.5.2 kept the unsaved change in memory), and an owner that is not
//!   a Ganeti user becomes a distribution warning instead of an error after
//!   the file was already written.
//! * The consistency check run before each write covers names, nodes,
//!   groups, MACs, ports, master candidates and IPs, not parameter types or
//!   DRBD minors.
//! * MAC and UUID generation gives up after [`GENERATE_RETRIES`] attempts
//!   (2.5.2 meant to, but its loop never counted down).
//!
//! Not done: `config.data` keeps the writing daemon's group instead of
//! being given to the confd group (the same, root, in a default 2.5.2
//! build); tag lists keep their stored order (2.5.2 wrote its sets in hash
//! order). The JSON codec is in `json`, the writer in `writer`.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::constants::RELEASE_VERSION;
use crate::errors::{GanetiError, ECODE_NOENT};
use crate::objects::{fill_dict, Cluster, ConfigData, Instance, Node, NodeGroup, PP_DEFAULT};

mod json;
mod writer;

pub use json::{dump_json_indented, parse_json, py_float_repr, MAX_JSON_DEPTH};
pub use writer::{ConfigRead, ConfigWriter};

/// `CONFIG_VERSION` of 2.5.2 (`BuildVersion(2, 5, 0)`).
pub const CONFIG_VERSION: u64 = 2_050_000;
/// Largest `config.data` read or written: the largest file a node daemon
/// accepts through `upload_file` (`noded::files::MAX_UPLOAD_DATA`), so every
/// configuration we accept can also reach the master candidates.
pub const MAX_CONFIG_SIZE: usize = 16 * 1024 * 1024;
/// Mode of `config.data` as the master writes it.
pub const CONFIG_MODE: u32 = 0o640;
/// Mode of the first `config.data`, written by `gnt-cluster init`.
pub const INITIAL_CONFIG_MODE: u32 = 0o600;
/// Network ports are allocated from here up (`FIRST_DRBD_PORT`).
pub const FIRST_DRBD_PORT: u32 = 11000;
/// ... and must stay below this (`LAST_DRBD_PORT`).
pub const LAST_DRBD_PORT: u32 = 14999;
/// `DEFAULT_MAC_PREFIX`.
pub const DEFAULT_MAC_PREFIX: &str = "aa:00:00";
/// `DEFAULT_BRIDGE`: default NIC link and master network device.
pub const DEFAULT_BRIDGE: &str = "xen-br0";
/// `DEFAULT_DRBD_HELPER`.
pub const DEFAULT_DRBD_HELPER: &str = "/bin/true";
/// `MASTER_POOL_SIZE_DEFAULT`.
pub const MASTER_POOL_SIZE_DEFAULT: u32 = 10;
/// `INITIAL_NODE_GROUP_NAME`.
pub const INITIAL_NODE_GROUP_NAME: &str = "default";
/// `AF_INET`, the default `primary_ip_family`.
pub const AF_INET: u32 = 2;
/// Attempts at a fresh MAC or UUID before giving up (2.5.2's retry count).
pub const GENERATE_RETRIES: usize = 64;
/// The hypervisors of 2.5.2 (`HYPER_TYPES`).
pub const HYPER_TYPES: [&str; 6] = ["chroot", "fake", "kvm", "lxc", "xen-hvm", "xen-pvm"];
/// The kernel's UUID source (`utils.NewUUID`).
const UUID_SOURCE: &str = "/proc/sys/kernel/random/uuid";

fn config_error(msg: impl Into<String>) -> GanetiError {
    GanetiError::msg("ConfigurationError", msg)
}

/// Current time as 2.5.2's `time.time()` gives it (microsecond
/// resolution, so it prints with Python's short float repr).
pub fn now() -> f64 {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_secs() as f64 + f64::from(d.subsec_micros()) * 0.000001
}

// ---------------------------------------------------------------------------
// Defaults and UpgradeConfig
// ---------------------------------------------------------------------------

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// 2.5.2's default parameters of a hypervisor (`HVC_DEFAULTS[hv]`);
/// `None` for a hypervisor 2.5.2 does not have.
pub fn hv_defaults(hv: &str) -> Option<Map<String, Value>> {
    let v = match hv {
        "chroot" => json!({"init_script": "/ganeti-chroot"}),
        "fake" => json!({}),
        "kvm" => json!({
            "acpi": true,
            "boot_order": "disk",
            "cdrom2_image_path": "",
            "cdrom_disk_type": "",
            "cdrom_image_path": "",
            "disk_cache": "default",
            "disk_type": "paravirtual",
            "floppy_image_path": "",
            "initrd_path": "",
            "kernel_args": "ro",
            "kernel_path": "/boot/vmlinuz-2.6-kvmU",
            "keymap": "",
            "kvm_flag": "",
            "mem_path": "",
            "migration_bandwidth": 32,
            "migration_downtime": 30,
            "migration_mode": "live",
            "migration_port": 8102,
            "nic_type": "paravirtual",
            "reboot_behavior": "reboot",
            "root_path": "/dev/vda1",
            "security_domain": "",
            "security_model": "none",
            "serial_console": true,
            "spice_bind": "",
            "spice_ip_version": 0,
            "usb_mouse": "",
            "use_chroot": false,
            "use_localtime": false,
            "vhost_net": false,
            "vnc_bind_address": "",
            "vnc_password_file": "",
            "vnc_tls": false,
            "vnc_x509_path": "",
            "vnc_x509_verify": false
        }),
        "lxc" => json!({"cpu_mask": ""}),
        "xen-hvm" => json!({
            "acpi": true,
            "blockdev_prefix": "hd",
            "boot_order": "cd",
            "cdrom_image_path": "",
            "device_model": "/usr/lib/xen/bin/qemu-dm",
            "disk_type": "paravirtual",
            "kernel_path": "/usr/lib/xen/boot/hvmloader",
            "migration_mode": "non-live",
            "migration_port": 8002,
            "nic_type": "rtl8139",
            "pae": true,
            "reboot_behavior": "reboot",
            "use_localtime": false,
            "vnc_bind_address": "0.0.0.0",
            "vnc_password_file": "/etc/ganeti/vnc-cluster-password"
        }),
        "xen-pvm" => json!({
            "blockdev_prefix": "sd",
            "bootloader_args": "",
            "bootloader_path": "",
            "initrd_path": "",
            "kernel_args": "ro",
            "kernel_path": "/boot/vmlinuz-2.6-xenU",
            "migration_mode": "live",
            "migration_port": 8002,
            "reboot_behavior": "reboot",
            "root_path": "/dev/sda1",
            "use_bootloader": false
        }),
        _ => return None,
    };
    Some(object(v))
}

/// `BEC_DEFAULTS`.
pub fn be_defaults() -> Map<String, Value> {
    object(json!({"auto_balance": true, "memory": 128, "vcpus": 1}))
}

/// `NICC_DEFAULTS`.
pub fn nic_defaults() -> Map<String, Value> {
    object(json!({"link": DEFAULT_BRIDGE, "mode": "bridged"}))
}

/// `NDC_DEFAULTS`.
pub fn nd_defaults() -> Map<String, Value> {
    object(json!({"oob_program": null}))
}

/// The files of a hypervisor copied to every VM-capable node
/// (`GetAncillaryFiles`).
pub fn hv_ancillary_files(hv: &str) -> &'static [&'static str] {
    match hv {
        "kvm" => &["/etc/ganeti/kvm-vif-bridge"],
        "xen-pvm" | "xen-hvm" => &["/etc/xen/xend-config.sxp", "/etc/xen/scripts/vif-bridge"],
        _ => &[],
    }
}

/// Python's "attribute is None": missing or null.
fn is_none(m: &Map<String, Value>, key: &str) -> bool {
    matches!(m.get(key), None | Some(Value::Null))
}

fn set_default(m: &mut Map<String, Value>, key: &str, v: Value) {
    if is_none(m, key) {
        m.insert(key.to_string(), v);
    }
}

/// Attributes set to None are the same as absent ones to 2.5.2 and are
/// never written; dropping them lets the typed objects treat both alike.
fn drop_nulls(m: &mut Map<String, Value>) {
    m.retain(|_, v| !v.is_null());
}

fn as_object_mut<'a>(
    v: &'a mut Value,
    what: &dyn Fn() -> String,
) -> Result<&'a mut Map<String, Value>, GanetiError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(config_error(format!(
            "Invalid {} in the configuration: expected an object, got {}",
            what(),
            type_name(other)
        ))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `UpgradeGroupedParams`: every group filled with the defaults, or a
/// `default` group of the defaults when there is none.
fn upgrade_grouped(
    m: &mut Map<String, Value>,
    key: &str,
    defaults: &Map<String, Value>,
) -> Result<(), GanetiError> {
    match m.get_mut(key) {
        Some(Value::Object(groups)) => {
            for (name, group) in groups.iter_mut() {
                let g = as_object_mut(group, &|| format!("cluster {key} group '{name}'"))?;
                *g = fill_dict(defaults, g, &[]);
            }
        }
        None | Some(Value::Null) => {
            m.insert(key.to_string(), json!({ PP_DEFAULT: defaults }));
        }
        Some(other) => {
            return Err(config_error(format!(
                "Invalid cluster {key} in the configuration: expected an object, got {}",
                type_name(other)
            )))
        }
    }
    Ok(())
}

/// `Cluster.UpgradeConfig`.
fn upgrade_cluster(c: &mut Map<String, Value>) -> Result<(), GanetiError> {
    drop_nulls(c);
    match c.get_mut("hvparams") {
        None => {
            let all: Map<String, Value> = HYPER_TYPES
                .iter()
                .filter_map(|hv| Some((hv.to_string(), Value::Object(hv_defaults(hv)?))))
                .collect();
            c.insert("hvparams".into(), Value::Object(all));
        }
        Some(hvparams) => {
            let hvparams = as_object_mut(hvparams, &|| "cluster hvparams".into())?;
            for (hv, params) in hvparams.iter_mut() {
                let p = as_object_mut(params, &|| format!("cluster hvparams of '{hv}'"))?;
                if let Some(defaults) = hv_defaults(hv) {
                    *p = fill_dict(&defaults, p, &[]);
                }
            }
        }
    }
    set_default(c, "os_hvp", json!({}));
    set_default(c, "osparams", json!({}));
    set_default(c, "ndparams", Value::Object(nd_defaults()));
    upgrade_grouped(c, "beparams", &be_defaults())?;
    // Configurations older than nicparams had a default bridge instead;
    // it becomes the link of the new default group (even when unset).
    let migrate_bridge = match c.get("nicparams") {
        None => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(_) => false,
    };
    if migrate_bridge {
        c.remove("nicparams");
    }
    upgrade_grouped(c, "nicparams", &nic_defaults())?;
    if migrate_bridge {
        let bridge = c.get("default_bridge").cloned().unwrap_or(Value::Null);
        if let Some(Value::Object(d)) = c.get_mut("nicparams").and_then(|n| n.get_mut(PP_DEFAULT)) {
            d.insert("link".into(), bridge);
        }
    }
    set_default(c, "modify_etc_hosts", Value::Bool(true));
    set_default(c, "modify_ssh_setup", Value::Bool(true));
    c.remove("default_bridge");
    if let Some(default_hv) = c.remove("default_hypervisor") {
        let mut hvs = vec![default_hv.clone()];
        if let Some(Value::Array(enabled)) = c.get("enabled_hypervisors") {
            hvs.extend(enabled.iter().filter(|h| **h != default_hv).cloned());
        }
        c.insert("enabled_hypervisors".into(), Value::Array(hvs));
    }
    set_default(c, "maintain_node_health", Value::Bool(false));
    set_default(c, "uid_pool", json!([]));
    set_default(c, "default_iallocator", json!(""));
    set_default(c, "reserved_lvs", json!([]));
    set_default(c, "hidden_os", json!([]));
    set_default(c, "blacklisted_os", json!([]));
    set_default(c, "primary_ip_family", json!(AF_INET));
    set_default(c, "prealloc_wipe_disks", Value::Bool(false));
    set_default(c, "shared_file_storage_dir", json!(""));
    Ok(())
}

/// `Node.UpgradeConfig`.
fn upgrade_node(n: &mut Map<String, Value>) {
    drop_nulls(n);
    set_default(n, "master_capable", Value::Bool(true));
    set_default(n, "vm_capable", Value::Bool(true));
    set_default(n, "ndparams", json!({}));
    set_default(n, "powered", Value::Bool(true));
}

/// `NodeGroup.FromDict` + `UpgradeConfig`.
fn upgrade_group(g: &mut Map<String, Value>, now: f64) {
    drop_nulls(g);
    // The member list is rebuilt from the nodes, never stored.
    g.remove("members");
    set_default(g, "ndparams", json!({}));
    set_default(g, "serial_no", json!(1));
    set_default(g, "alloc_policy", json!("preferred"));
    set_default(g, "mtime", json!(now));
}

fn upgrade_disk(d: &mut Value, what: &dyn Fn() -> String) -> Result<bool, GanetiError> {
    let d = as_object_mut(d, what)?;
    drop_nulls(d);
    let mut drbd = d.get("dev_type").and_then(Value::as_str) == Some(crate::objects::LD_DRBD8);
    if let Some(Value::Array(children)) = d.get_mut("children") {
        for (i, child) in children.iter_mut().enumerate() {
            drbd |= upgrade_disk(child, &|| format!("{} child {i}", what()))?;
        }
    }
    Ok(drbd)
}

/// `Instance.UpgradeConfig`; true when the instance has a DRBD disk.
fn upgrade_instance(name: &str, i: &mut Map<String, Value>) -> Result<bool, GanetiError> {
    drop_nulls(i);
    if let Some(Value::Array(nics)) = i.get_mut("nics") {
        for (idx, nic) in nics.iter_mut().enumerate() {
            drop_nulls(as_object_mut(nic, &|| {
                format!("NIC {idx} of instance '{name}'")
            })?);
        }
    }
    let mut drbd = false;
    if let Some(Value::Array(disks)) = i.get_mut("disks") {
        for (idx, disk) in disks.iter_mut().enumerate() {
            drbd |= upgrade_disk(disk, &|| format!("disk {idx} of instance '{name}'"))?;
        }
    }
    if let Some(Value::Object(hv)) = i.get_mut("hvparams") {
        for key in crate::objects::HV_GLOBALS {
            hv.remove(key);
        }
    }
    set_default(i, "osparams", json!({}));
    Ok(drbd)
}

/// `ConfigData.UpgradeConfig`, on the parsed JSON before it is typed.
fn upgrade_data(top: &mut Map<String, Value>, now: f64) -> Result<(), GanetiError> {
    drop_nulls(top);
    let cluster = top
        .get_mut("cluster")
        .ok_or_else(|| config_error("Incomplete configuration (missing cluster)"))?;
    upgrade_cluster(as_object_mut(cluster, &|| "cluster".into())?)?;
    for key in ["nodes", "instances", "nodegroups"] {
        set_default(top, key, json!({}));
        if let Some(v) = top.get_mut(key) {
            as_object_mut(v, &|| key.into())?;
        }
    }
    if let Some(Value::Object(nodes)) = top.get_mut("nodes") {
        for (name, node) in nodes.iter_mut() {
            upgrade_node(as_object_mut(node, &|| format!("node '{name}'"))?);
        }
    }
    let mut any_drbd = false;
    if let Some(Value::Object(instances)) = top.get_mut("instances") {
        for (name, inst) in instances.iter_mut() {
            let inst = as_object_mut(inst, &|| format!("instance '{name}'"))?;
            any_drbd |= upgrade_instance(name, inst)?;
        }
    }
    if let Some(Value::Object(groups)) = top.get_mut("nodegroups") {
        for (uuid, group) in groups.iter_mut() {
            upgrade_group(
                as_object_mut(group, &|| format!("node group '{uuid}'"))?,
                now,
            );
        }
    }
    if any_drbd {
        if let Some(Value::Object(c)) = top.get_mut("cluster") {
            set_default(c, "drbd_usermode_helper", json!(DEFAULT_DRBD_HELPER));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Reading and writing config.data
// ---------------------------------------------------------------------------

/// The text of the version of a ConfigVersionMismatch argument:
/// `"2.5.0"` for 2050000 (2.5.2's `SplitVersion`).
pub fn version_text(v: &Value) -> String {
    match v.as_u64() {
        Some(v) => format!(
            "{}.{}.{}",
            v / 1_000_000,
            (v % 1_000_000) / 10_000,
            v % 10_000
        ),
        None => v.to_string(),
    }
}

/// What 2.5.2's master daemon prints when the configuration cannot be
/// opened: the version-mismatch advice, or the generic configuration error.
pub fn open_error_message(err: &GanetiError) -> String {
    if err.class == "ConfigVersionMismatch" {
        let expected = version_text(err.args.first().unwrap_or(&Value::Null));
        let found = version_text(err.args.get(1).unwrap_or(&Value::Null));
        return format!(
            "Configuration version mismatch. The current Ganeti software expects version \
             {expected}, but the on-disk configuration file has version {found}. This is \
             likely the result of upgrading the software without running the upgrade \
             procedure. Please contact your cluster administrator or complete the upgrade \
             using the cfgupgrade utility, after reading the upgrade notes."
        );
    }
    format!(
        "Configuration error while opening the configuration file: {err}\nThis might be \
         caused by an incomplete software upgrade or by a corrupted configuration file. \
         Until the problem is fixed the master daemon cannot start."
    )
}

fn typed<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, GanetiError> {
    serde_json::from_value(v)
        .map_err(|e| config_error(format!("Invalid {what} in the configuration: {e}")))
}

/// Reads `config.data` text: JSON as 2.5.2 writes it, version check (a
/// ConfigVersionMismatch with 2.5.2's arguments `[expected, found]`), the
/// objects' `UpgradeConfig` defaults. Any other problem is a
/// ConfigurationError naming the object at fault.
pub fn parse(text: &str) -> Result<ConfigData, GanetiError> {
    if text.len() > MAX_CONFIG_SIZE {
        return Err(config_error(format!(
            "The configuration is larger than {MAX_CONFIG_SIZE} bytes"
        )));
    }
    let mut top = match parse_json(text).map_err(config_error)? {
        Value::Object(m) => m,
        other => {
            return Err(config_error(format!(
                "Invalid configuration: expected an object, got {}",
                type_name(&other)
            )))
        }
    };
    let version = top.get("version").cloned().unwrap_or(Value::Null);
    if version.as_u64() != Some(CONFIG_VERSION) {
        return Err(GanetiError::new(
            "ConfigVersionMismatch",
            vec![json!(CONFIG_VERSION), version],
        ));
    }
    match top.get("cluster").and_then(|c| c.get("rsahostkeypub")) {
        Some(Value::String(_)) => {}
        _ => {
            return Err(config_error(
                "Incomplete configuration (missing cluster.rsahostkeypub)",
            ))
        }
    }
    upgrade_data(&mut top, now())?;

    let cluster: Cluster = typed(top.remove("cluster").unwrap_or_default(), "cluster")?;
    let mut nodes = BTreeMap::new();
    for (name, v) in object(top.remove("nodes").unwrap_or_default()) {
        let node: Node = typed(v, &format!("node '{name}'"))?;
        nodes.insert(name, node);
    }
    let mut nodegroups = BTreeMap::new();
    for (uuid, v) in object(top.remove("nodegroups").unwrap_or_default()) {
        let group: NodeGroup = typed(v, &format!("node group '{uuid}'"))?;
        nodegroups.insert(uuid, group);
    }
    let mut instances = BTreeMap::new();
    for (name, v) in object(top.remove("instances").unwrap_or_default()) {
        let inst: Instance = typed(v, &format!("instance '{name}'"))?;
        instances.insert(name, inst);
    }
    let mut field = |key: &str| top.remove(key).unwrap_or(Value::Null);
    let serial_no = match field("serial_no") {
        Value::Null => 0,
        v => typed(v, "serial_no")?,
    };
    let ctime = match field("ctime") {
        Value::Null => 0.0,
        v => typed(v, "ctime")?,
    };
    let mtime = match field("mtime") {
        Value::Null => 0.0,
        v => typed(v, "mtime")?,
    };
    top.remove("version");
    Ok(ConfigData {
        version: CONFIG_VERSION,
        cluster,
        nodes,
        nodegroups,
        instances,
        serial_no,
        ctime,
        mtime,
        extra: top,
    })
}

/// The configuration as 2.5.2 writes `config.data` (`serializer.Dump` of
/// `ConfigData.ToDict()`).
pub fn serialize(cfg: &ConfigData) -> String {
    // Only maps with non-string keys fail to convert, and ConfigData has
    // none; the writer still uses the checked form.
    try_serialize(cfg).unwrap_or_default()
}

fn try_serialize(cfg: &ConfigData) -> Result<String, GanetiError> {
    serde_json::to_value(cfg)
        .map(|v| dump_json_indented(&v))
        .map_err(|e| config_error(format!("Cannot serialise the configuration: {e}")))
}

// ---------------------------------------------------------------------------
// Names, sorting, ssconf
// ---------------------------------------------------------------------------

/// One part of a [`nice_sort_key`]: Python 2 orders None before numbers
/// before strings, which the variant order reproduces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortPart<'a> {
    Missing,
    /// A run of digits as a number: (digit count without leading zeros,
    /// those digits), so any length compares numerically.
    Int(usize, &'a str),
    Str(&'a str),
}

/// How many digit/non-digit runs [`nice_sort_key`] looks at (2.5.2's
/// `_SORTER_GROUPS`); the rest of the name is one more part.
pub const SORTER_GROUPS: usize = 8;

fn sort_part(s: &str) -> SortPart<'_> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let digits = s.trim_start_matches('0');
        SortPart::Int(digits.len(), digits)
    } else {
        SortPart::Str(s)
    }
}

/// 2.5.2's `NiceSortKey`: the first eight runs of digits or non-digits
/// (digits compared as numbers), then the rest of the string.
pub fn nice_sort_key(s: &str) -> Vec<SortPart<'_>> {
    let mut key = Vec::with_capacity(SORTER_GROUPS + 1);
    let mut rest = s;
    for _ in 0..SORTER_GROUPS {
        let Some(first) = rest.bytes().next() else {
            key.push(SortPart::Missing);
            continue;
        };
        let digit = first.is_ascii_digit();
        let end = rest
            .bytes()
            .position(|b| b.is_ascii_digit() != digit)
            .unwrap_or(rest.len());
        key.push(sort_part(&rest[..end]));
        rest = &rest[end..];
    }
    key.push(sort_part(rest));
    key
}

/// 2.5.2's `NiceSort`: `a1, a2, a10` rather than `a1, a10, a2`.
pub fn nice_sort<S: AsRef<str>>(names: &mut [S]) {
    names.sort_by(|a, b| nice_sort_key(a.as_ref()).cmp(&nice_sort_key(b.as_ref())));
}

/// 2.5.2's `MatchNameComponent(key, names, case_sensitive=False)`: `key`
/// itself, else the one name equal to it ignoring case, else the one name
/// that is `key` followed by `.` and anything (`node1` ->
/// `node1.example.com`); `None` when nothing or several match.
pub fn match_name<'a>(key: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut filtered = Vec::new();
    let mut exact_but_case = Vec::new();
    for name in names {
        if name == key {
            return Some(name);
        }
        let Some(head) = name.get(..key.len()) else {
            continue;
        };
        let tail = &name[key.len()..];
        if head.eq_ignore_ascii_case(key) && (tail.is_empty() || tail.starts_with('.')) {
            filtered.push(name);
            if tail.is_empty() {
                exact_but_case.push(name);
            }
        }
    }
    match (exact_but_case.as_slice(), filtered.as_slice()) {
        ([one], _) | (_, [one]) => Some(one),
        _ => None,
    }
}

fn expand_name<'a>(
    kind: &str,
    name: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<String, GanetiError> {
    match_name(name, names)
        .map(str::to_string)
        .ok_or_else(|| GanetiError::prereq(format!("{kind} '{name}' not known"), ECODE_NOENT))
}

/// The full name of a node (`_ExpandNodeName`): OpPrereqError
/// `Node '<name>' not known` (`unknown_entity`) when none or several match.
pub fn expand_node_name(cfg: &ConfigData, name: &str) -> Result<String, GanetiError> {
    expand_name("Node", name, cfg.nodes.keys().map(String::as_str))
}

/// The full name of an instance (`_ExpandInstanceName`).
pub fn expand_instance_name(cfg: &ConfigData, name: &str) -> Result<String, GanetiError> {
    expand_name("Instance", name, cfg.instances.keys().map(String::as_str))
}

/// The 21 ssconf keys and values of a configuration (2.5.2's
/// `_UnlockedGetSsconfValues`). Lists are newline-joined; node, instance
/// and group lists in natural order. The node daemon adds the final newline.
pub fn ssconf_values(cfg: &ConfigData) -> BTreeMap<String, String> {
    let c = &cfg.cluster;
    let mut node_names: Vec<&str> = cfg.nodes.keys().map(String::as_str).collect();
    nice_sort(&mut node_names);
    let nodes: Vec<&Node> = node_names
        .iter()
        .filter_map(|n| cfg.nodes.get(*n))
        .collect();
    let mut instance_names: Vec<&str> = cfg.instances.keys().map(String::as_str).collect();
    nice_sort(&mut instance_names);
    let join = |items: Vec<String>| items.join("\n");
    let names_where = |f: &dyn Fn(&Node) -> bool| {
        join(
            nodes
                .iter()
                .filter(|n| f(n))
                .map(|n| n.name.clone())
                .collect(),
        )
    };
    let mut groups: Vec<String> = cfg
        .nodegroups
        .values()
        .map(|g| format!("{} {}", g.uuid.as_deref().unwrap_or("None"), g.name))
        .collect();
    nice_sort(&mut groups);
    let uid_pool: Vec<String> = c
        .uid_pool
        .iter()
        .map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect();
    let python_bool = |b: bool| if b { "True" } else { "False" }.to_string();
    let values = [
        ("cluster_name", c.cluster_name.clone()),
        ("cluster_tags", c.tags().join("\n")),
        ("file_storage_dir", c.file_storage_dir.clone()),
        ("shared_file_storage_dir", c.shared_file_storage_dir.clone()),
        ("master_candidates", names_where(&|n| n.master_candidate)),
        (
            "master_candidates_ips",
            join(
                nodes
                    .iter()
                    .filter(|n| n.master_candidate)
                    .map(|n| n.primary_ip.clone())
                    .collect(),
            ),
        ),
        ("master_ip", c.master_ip.clone()),
        ("master_netdev", c.master_netdev.clone()),
        ("master_node", c.master_node.clone()),
        (
            "node_list",
            join(node_names.iter().map(|n| n.to_string()).collect()),
        ),
        (
            "node_primary_ips",
            join(
                nodes
                    .iter()
                    .map(|n| format!("{} {}", n.name, n.primary_ip))
                    .collect(),
            ),
        ),
        (
            "node_secondary_ips",
            join(
                nodes
                    .iter()
                    .map(|n| format!("{} {}", n.name, n.secondary_ip))
                    .collect(),
            ),
        ),
        ("offline_nodes", names_where(&|n| n.offline)),
        ("online_nodes", names_where(&|n| !n.offline)),
        ("primary_ip_family", c.primary_ip_family.to_string()),
        (
            "instance_list",
            join(instance_names.iter().map(|n| n.to_string()).collect()),
        ),
        ("release_version", RELEASE_VERSION.to_string()),
        ("hypervisor_list", c.enabled_hypervisors.join("\n")),
        ("maintain_node_health", python_bool(c.maintain_node_health)),
        ("uid_pool", join(uid_pool)),
        ("nodegroups", join(groups)),
    ];
    values
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

// ---------------------------------------------------------------------------
// Generators and the initial configuration
// ---------------------------------------------------------------------------

/// A fresh UUID from the kernel (`utils.NewUUID`).
pub fn new_uuid() -> Result<String, GanetiError> {
    let text = std::fs::read_to_string(UUID_SOURCE)
        .map_err(|e| config_error(format!("Cannot read {UUID_SOURCE}: {e}")))?;
    let uuid = text.trim().to_string();
    if uuid.len() != 36 || !uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(config_error(format!(
            "Unexpected UUID '{uuid}' from {UUID_SOURCE}"
        )));
    }
    Ok(uuid)
}

/// One MAC address: the cluster prefix and three random bytes
/// (`_GenerateOneMAC`).
pub fn random_mac(prefix: &str) -> Result<String, GanetiError> {
    let mut b = [0u8; 3];
    openssl::rand::rand_bytes(&mut b)
        .map_err(|e| config_error(format!("Cannot get random bytes: {e}")))?;
    Ok(format!("{prefix}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]))
}

/// Tries `generate` up to [`GENERATE_RETRIES`] times for a value not in
/// `taken` (`TemporaryReservationManager.Generate`).
fn generate_unique(
    taken: &HashSet<String>,
    mut generate: impl FnMut() -> Result<String, GanetiError>,
) -> Result<String, GanetiError> {
    let mut last = String::new();
    for _ in 0..GENERATE_RETRIES {
        last = generate()?;
        if !taken.contains(&last) {
            return Ok(last);
        }
    }
    Err(config_error(format!(
        "Not able generate new resource (last tried: {last})"
    )))
}

/// Everything a UUID must differ from (`_AllIDs`): instance and node
/// names, LV names, object UUIDs.
fn all_ids(cfg: &ConfigData) -> HashSet<String> {
    fn lvs(disk: &crate::objects::Disk, out: &mut HashSet<String>) {
        if disk.dev_type == crate::objects::LD_LV {
            if let Some(lv) = disk.logical_str(1) {
                out.insert(lv.to_string());
            }
        }
        for child in disk.children.iter().flatten() {
            lvs(child, out);
        }
    }
    let mut ids = HashSet::new();
    for (name, inst) in &cfg.instances {
        ids.insert(name.clone());
        ids.extend(inst.uuid.clone());
        for d in &inst.disks {
            lvs(d, &mut ids);
        }
    }
    for (name, node) in &cfg.nodes {
        ids.insert(name.clone());
        ids.extend(node.uuid.clone());
    }
    ids.extend(cfg.nodegroups.values().filter_map(|g| g.uuid.clone()));
    ids.extend(cfg.cluster.uuid.clone());
    ids
}

/// The settings of `gnt-cluster init` that end up in the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct InitParams {
    pub cluster_name: String,
    /// The cluster's (master) IP address.
    pub master_ip: String,
    pub master_netdev: String,
    /// This node's name and addresses.
    pub master_node: String,
    pub primary_ip: String,
    /// `None`: the primary IP.
    pub secondary_ip: Option<String>,
    /// The host's RSA public key (second field of `ssh_host_rsa_key.pub`).
    pub rsahostkeypub: String,
    pub mac_prefix: String,
    pub vg_name: Option<String>,
    pub drbd_helper: Option<String>,
    pub file_storage_dir: String,
    pub shared_file_storage_dir: String,
    /// In order; the first is the default.
    pub enabled_hypervisors: Vec<String>,
    /// Per-hypervisor overrides of the defaults (`-H`).
    pub hvparams: BTreeMap<String, Map<String, Value>>,
    /// Overrides of the backend defaults (`-B`).
    pub beparams: Map<String, Value>,
    /// Overrides of the NIC defaults (`-N`).
    pub nicparams: Map<String, Value>,
    /// `None`: the node defaults.
    pub ndparams: Option<Map<String, Value>>,
    pub candidate_pool_size: u32,
    pub modify_etc_hosts: bool,
    pub modify_ssh_setup: bool,
    pub maintain_node_health: bool,
    pub uid_pool: Option<Vec<(u32, u32)>>,
    pub default_iallocator: Option<String>,
    pub primary_ip_family: u32,
    pub prealloc_wipe_disks: bool,
}

impl InitParams {
    /// The given names and addresses with `gnt-cluster init`'s defaults
    /// for everything else (no LVM, no DRBD, the fake hypervisor aside,
    /// 2.5.2's default storage directories).
    pub fn new(
        cluster_name: &str,
        master_ip: &str,
        master_node: &str,
        primary_ip: &str,
        rsahostkeypub: &str,
    ) -> InitParams {
        InitParams {
            cluster_name: cluster_name.into(),
            master_ip: master_ip.into(),
            master_netdev: DEFAULT_BRIDGE.into(),
            master_node: master_node.into(),
            primary_ip: primary_ip.into(),
            secondary_ip: None,
            rsahostkeypub: rsahostkeypub.into(),
            mac_prefix: DEFAULT_MAC_PREFIX.into(),
            vg_name: None,
            drbd_helper: None,
            file_storage_dir: crate::paths::FILE_STORAGE_DIR.into(),
            shared_file_storage_dir: crate::paths::SHARED_FILE_STORAGE_DIR.into(),
            enabled_hypervisors: vec!["xen-pvm".into()],
            hvparams: BTreeMap::new(),
            beparams: Map::new(),
            nicparams: Map::new(),
            ndparams: None,
            candidate_pool_size: MASTER_POOL_SIZE_DEFAULT,
            modify_etc_hosts: true,
            modify_ssh_setup: true,
            maintain_node_health: false,
            uid_pool: None,
            default_iallocator: None,
            primary_ip_family: AF_INET,
            prealloc_wipe_disks: false,
        }
    }
}

/// The first configuration, as 2.5.2's `InitCluster` + `InitConfig` build
/// it: serial 1, the cluster (hypervisor parameters filled with the
/// defaults for every hypervisor, backend/NIC defaults under `default`),
/// the master node as the only, master-candidate node and an empty
/// `default` group, fresh UUIDs from the kernel. The master's group is
/// assigned when the writer first opens it, as in 2.5.2.
pub fn initial(p: &InitParams) -> Result<ConfigData, GanetiError> {
    let now = now();
    let mut taken = HashSet::new();
    let mut uuid = || -> Result<String, GanetiError> {
        let u = generate_unique(&taken, new_uuid)?;
        taken.insert(u.clone());
        Ok(u)
    };
    let (cluster_uuid, node_uuid, group_uuid) = (uuid()?, uuid()?, uuid()?);
    let hvparams = HYPER_TYPES
        .iter()
        .filter_map(|hv| {
            let defaults = hv_defaults(hv)?;
            let custom = p.hvparams.get(*hv).cloned().unwrap_or_default();
            Some((hv.to_string(), fill_dict(&defaults, &custom, &[])))
        })
        .collect();
    let ndparams = match &p.ndparams {
        Some(nd) => fill_dict(&nd_defaults(), nd, &[]),
        None => nd_defaults(),
    };
    let cluster = Cluster {
        serial_no: 1,
        rsahostkeypub: p.rsahostkeypub.clone(),
        highest_used_port: Some(FIRST_DRBD_PORT - 1),
        tcpudp_port_pool: Vec::new(),
        mac_prefix: Some(p.mac_prefix.clone()),
        volume_group_name: p.vg_name.clone(),
        reserved_lvs: Vec::new(),
        drbd_usermode_helper: p.drbd_helper.clone(),
        master_node: p.master_node.clone(),
        master_ip: p.master_ip.clone(),
        master_netdev: p.master_netdev.clone(),
        cluster_name: p.cluster_name.clone(),
        file_storage_dir: p.file_storage_dir.clone(),
        shared_file_storage_dir: p.shared_file_storage_dir.clone(),
        enabled_hypervisors: p.enabled_hypervisors.clone(),
        hvparams,
        os_hvp: BTreeMap::new(),
        beparams: BTreeMap::from([(
            PP_DEFAULT.to_string(),
            fill_dict(&be_defaults(), &p.beparams, &[]),
        )]),
        osparams: BTreeMap::new(),
        nicparams: BTreeMap::from([(
            PP_DEFAULT.to_string(),
            fill_dict(&nic_defaults(), &p.nicparams, &[]),
        )]),
        ndparams,
        candidate_pool_size: Some(p.candidate_pool_size),
        modify_etc_hosts: p.modify_etc_hosts,
        modify_ssh_setup: p.modify_ssh_setup,
        maintain_node_health: p.maintain_node_health,
        uid_pool: p.uid_pool.clone().unwrap_or_default(),
        default_iallocator: p.default_iallocator.clone().unwrap_or_default(),
        hidden_os: Vec::new(),
        blacklisted_os: Vec::new(),
        primary_ip_family: p.primary_ip_family,
        prealloc_wipe_disks: p.prealloc_wipe_disks,
        tags: None,
        ctime: Some(now),
        mtime: Some(now),
        uuid: Some(cluster_uuid),
        extra: Map::new(),
    };
    let node = Node {
        name: p.master_node.clone(),
        primary_ip: p.primary_ip.clone(),
        secondary_ip: p
            .secondary_ip
            .clone()
            .unwrap_or_else(|| p.primary_ip.clone()),
        serial_no: 1,
        master_candidate: true,
        offline: false,
        drained: false,
        group: None,
        master_capable: true,
        vm_capable: true,
        ndparams: Map::new(),
        powered: true,
        tags: None,
        ctime: Some(now),
        mtime: Some(now),
        uuid: Some(node_uuid),
        extra: Map::new(),
    };
    let group = NodeGroup {
        name: INITIAL_NODE_GROUP_NAME.into(),
        ndparams: Map::new(),
        serial_no: 1,
        alloc_policy: "preferred".into(),
        tags: None,
        ctime: None,
        mtime: now,
        uuid: Some(group_uuid.clone()),
        extra: Map::new(),
    };
    Ok(ConfigData {
        version: CONFIG_VERSION,
        cluster,
        nodes: BTreeMap::from([(node.name.clone(), node)]),
        nodegroups: BTreeMap::from([(group_uuid, group)]),
        instances: BTreeMap::new(),
        serial_no: 1,
        ctime: now,
        mtime: now,
        extra: Map::new(),
    })
}

/// The writer-level upgrade of 2.5.2's `ConfigWriter._UpgradeConfig`:
/// objects without a UUID get one, a configuration without node groups
/// gets the `default` group, nodes without a group are put in the only
/// group. True when something changed (the file must then be rewritten).
pub fn upgrade_config(cfg: &mut ConfigData) -> Result<bool, GanetiError> {
    let mut modified = false;
    let mut taken = all_ids(cfg);
    let mut fresh = || -> Result<String, GanetiError> {
        let u = generate_unique(&taken, new_uuid)?;
        taken.insert(u.clone());
        Ok(u)
    };
    let now = now();
    for inst in cfg.instances.values_mut().filter(|i| i.uuid.is_none()) {
        inst.uuid = Some(fresh()?);
        modified = true;
    }
    for node in cfg.nodes.values_mut().filter(|n| n.uuid.is_none()) {
        node.uuid = Some(fresh()?);
        modified = true;
    }
    for group in cfg.nodegroups.values_mut().filter(|g| g.uuid.is_none()) {
        group.uuid = Some(fresh()?);
        modified = true;
    }
    if cfg.cluster.uuid.is_none() {
        cfg.cluster.uuid = Some(fresh()?);
        modified = true;
    }
    if cfg.nodegroups.is_empty() {
        let uuid = fresh()?;
        log::info!("Adding node group {INITIAL_NODE_GROUP_NAME} to configuration");
        cfg.nodegroups.insert(
            uuid.clone(),
            NodeGroup {
                name: INITIAL_NODE_GROUP_NAME.into(),
                ndparams: Map::new(),
                serial_no: 1,
                alloc_policy: "preferred".into(),
                tags: None,
                ctime: Some(now),
                mtime: now,
                uuid: Some(uuid),
                extra: Map::new(),
            },
        );
        cfg.cluster.serial_no += 1;
        modified = true;
    }
    let only_group = match cfg.nodegroups.keys().collect::<Vec<_>>().as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    };
    for node in cfg.nodes.values_mut().filter(|n| n.group.is_none()) {
        let Some(group) = &only_group else {
            return Err(GanetiError::msg(
                "OpPrereqError",
                "More than one node group exists. Target group must be specified explicitely.",
            ));
        };
        node.group = Some(group.clone());
        modified = true;
    }
    Ok(modified)
}

/// 2.5.2's `RpcRunner._InstDict`: the instance with its hypervisor,
/// backend and OS parameters filled from the cluster defaults (then
/// `hvp`/`bep`/`osp` on top) and each NIC's parameters filled, as every
/// instance RPC carries it.
pub fn instance_rpc_dict(
    cluster: &Cluster,
    inst: &Instance,
    hvp: Option<&Map<String, Value>>,
    bep: Option<&Map<String, Value>>,
    osp: Option<&Map<String, Value>>,
) -> Value {
    let mut out = inst.clone();
    let hv = inst.hypervisor.as_deref().unwrap_or("");
    out.hvparams = cluster.fill_hv(hv, inst.os.as_deref(), &inst.hvparams, false);
    out.beparams = cluster.fill_be(&inst.beparams);
    out.osparams = cluster.fill_os(inst.os.as_deref().unwrap_or(""), &inst.osparams);
    for (target, extra) in [
        (&mut out.hvparams, hvp),
        (&mut out.beparams, bep),
        (&mut out.osparams, osp),
    ] {
        for (k, v) in extra.into_iter().flatten() {
            target.insert(k.clone(), v.clone());
        }
    }
    for nic in &mut out.nics {
        nic.nicparams = cluster.fill_nic(&nic.nicparams);
    }
    serde_json::to_value(out).unwrap_or(Value::Null)
}

/// The consistency checks 2.5.2 runs before every write
/// (`_UnlockedVerifyConfig`), without the parameter type checks and DRBD
/// minors: each problem as 2.5.2 words it.
pub fn verify(cfg: &ConfigData) -> Vec<String> {
    let mut out = Vec::new();
    let c = &cfg.cluster;
    if c.enabled_hypervisors.is_empty() {
        out.push("enabled hypervisors list doesn't have any entries".into());
    }
    let invalid: Vec<&str> = c
        .enabled_hypervisors
        .iter()
        .map(String::as_str)
        .filter(|h| !HYPER_TYPES.contains(h))
        .collect();
    if !invalid.is_empty() {
        out.push(format!(
            "enabled hypervisors contains invalid entries: {}",
            invalid.join(", ")
        ));
    }
    let missing: Vec<&str> = c
        .enabled_hypervisors
        .iter()
        .map(String::as_str)
        .filter(|h| !c.hvparams.contains_key(*h))
        .collect();
    if !missing.is_empty() {
        out.push(format!(
            "hypervisor parameters missing for the enabled hypervisor(s) {}",
            missing.join(", ")
        ));
    }
    if !cfg.nodes.contains_key(&c.master_node) {
        out.push(format!(
            "cluster has invalid primary node '{}'",
            c.master_node
        ));
    }
    let mut seen_macs = HashSet::new();
    let mut ports: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for (name, inst) in &cfg.instances {
        if &inst.name != name {
            out.push(format!(
                "instance '{}' is indexed by wrong name '{name}'",
                inst.name
            ));
        }
        let pnode = inst.primary_node.as_deref().unwrap_or("None");
        if !cfg.nodes.contains_key(pnode) {
            out.push(format!(
                "instance '{name}' has invalid primary node '{pnode}'"
            ));
        }
        for (idx, nic) in inst.nics.iter().enumerate() {
            let mac = nic.mac.as_deref().unwrap_or("None");
            if !seen_macs.insert(mac) {
                out.push(format!(
                    "instance '{name}' has NIC {idx} mac {mac} duplicate"
                ));
            }
        }
        for d in &inst.disks {
            if d.dev_type == crate::objects::LD_DRBD8 {
                if let Some(port) = d.logical_id.as_ref().and_then(|l| l.get(2)?.as_u64()) {
                    let iv = d.iv_name.as_deref().unwrap_or("None");
                    ports
                        .entry(port)
                        .or_default()
                        .push(format!("{}/drbd disk {iv}", inst.name));
                }
            }
        }
        if let Some(port) = inst.network_port {
            ports
                .entry(u64::from(port))
                .or_default()
                .push(format!("{}/network port", inst.name));
        }
    }
    for port in &c.tcpudp_port_pool {
        ports
            .entry(u64::from(*port))
            .or_default()
            .push("cluster/port marked as free".into());
    }
    for (port, owners) in &ports {
        if owners.len() > 1 {
            out.push(format!(
                "tcp/udp port {port} has duplicates: {}",
                owners.join(", ")
            ));
        }
    }
    if let Some((&highest, _)) = ports.iter().next_back() {
        let saved = c.highest_used_port.map(u64::from);
        if saved.map_or(true, |s| highest > s) {
            let saved = saved.map_or("None".to_string(), |s| s.to_string());
            out.push(format!(
                "Highest used port mismatch, saved {saved}, computed {highest}"
            ));
        }
    }
    if cfg
        .nodes
        .get(&c.master_node)
        .is_some_and(|n| !n.master_candidate)
    {
        out.push("Master node is not a master candidate".into());
    }
    let mc_now = cfg.nodes.values().filter(|n| n.master_candidate).count();
    let mc_max = cfg
        .nodes
        .values()
        .filter(|n| !(n.offline || n.drained) && n.master_capable)
        .count();
    let mc_should = mc_max.min(c.candidate_pool_size.unwrap_or(0) as usize);
    if mc_now < mc_should {
        out.push(format!(
            "Not enough master candidates: actual {mc_now}, target {mc_should}"
        ));
    }
    for (name, node) in &cfg.nodes {
        if &node.name != name {
            out.push(format!(
                "Node '{}' is indexed by wrong name '{name}'",
                node.name
            ));
        }
        if [node.master_candidate, node.drained, node.offline]
            .iter()
            .filter(|b| **b)
            .count()
            > 1
        {
            let py = |b: bool| if b { "True" } else { "False" };
            out.push(format!(
                "Node {} state is invalid: master_candidate={}, drain={}, offline={}",
                node.name,
                py(node.master_candidate),
                py(node.drained),
                py(node.offline)
            ));
        }
        let group = node.group.as_deref().unwrap_or("None");
        if !cfg.nodegroups.contains_key(group) {
            out.push(format!("Node '{}' has invalid group '{group}'", node.name));
        }
    }
    let mut group_names = HashSet::new();
    for (uuid, g) in &cfg.nodegroups {
        let own = g.uuid.as_deref().unwrap_or("None");
        if own != uuid {
            out.push(format!(
                "node group '{}' (uuid: '{own}') indexed by wrong uuid '{uuid}'",
                g.name
            ));
        }
        if !group_names.insert(g.name.as_str()) {
            out.push(format!("duplicate node group name '{}'", g.name));
        }
    }
    let mut ips: BTreeMap<String, Vec<String>> = BTreeMap::new();
    ips.entry(c.master_ip.clone())
        .or_default()
        .push("cluster_ip".into());
    for node in cfg.nodes.values() {
        ips.entry(node.primary_ip.clone())
            .or_default()
            .push(format!("node:{}/primary", node.name));
        if node.secondary_ip != node.primary_ip {
            ips.entry(node.secondary_ip.clone())
                .or_default()
                .push(format!("node:{}/secondary", node.name));
        }
    }
    for inst in cfg.instances.values() {
        for (idx, nic) in inst.nics.iter().enumerate() {
            let Some(ip) = &nic.ip else { continue };
            let p = c.fill_nic(&nic.nicparams);
            let link = p.get("link").and_then(Value::as_str).unwrap_or("None");
            let kind = match p.get("mode").and_then(Value::as_str) {
                Some("routed") => "route",
                _ => "bridge",
            };
            ips.entry(format!("{kind}:{link}/{ip}"))
                .or_default()
                .push(format!("instance:{}/nic:{idx}", inst.name));
        }
    }
    for (ip, owners) in ips {
        if owners.len() > 1 {
            out.push(format!(
                "IP address {ip} is used by multiple owners: {}",
                owners.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_sort_orders_numbers_numerically() {
        let mut v = vec![
            "a10",
            "a2",
            "a1",
            "b",
            "a",
            "a01",
            "10",
            "9",
            "",
            "a1b2c3d4e5f6g7h8",
            "a1b2c3d4e5f6g7h10",
        ];
        nice_sort(&mut v);
        assert_eq!(
            v,
            // Past eight runs the rest compares as text: h10 before h8.
            [
                "",
                "9",
                "10",
                "a",
                "a1",
                "a01",
                "a1b2c3d4e5f6g7h10",
                "a1b2c3d4e5f6g7h8",
                "a2",
                "a10",
                "b"
            ]
        );
        let mut n = vec![
            "node10.example.com",
            "node9.example.com",
            "node1.example.com",
        ];
        nice_sort(&mut n);
        assert_eq!(
            n,
            [
                "node1.example.com",
                "node9.example.com",
                "node10.example.com"
            ]
        );
    }

    #[test]
    fn names_match_by_unique_prefix() {
        let names = [
            "node1.example.com",
            "node10.example.com",
            "node2.example.org",
            "node2.example.com",
        ];
        let m = |k| match_name(k, names.iter().copied());
        assert_eq!(m("node1"), Some("node1.example.com"));
        assert_eq!(m("NODE1"), Some("node1.example.com"));
        assert_eq!(m("node1.example"), Some("node1.example.com"));
        assert_eq!(m("node1.ex"), None);
        assert_eq!(m("node"), None);
        assert_eq!(m("node2"), None);
        assert_eq!(m("node2.example.org"), Some("node2.example.org"));
        assert_eq!(m("node3"), None);
        // A full match beats a prefix match.
        let names = ["test1", "test1.example.com"];
        assert_eq!(match_name("test1", names.iter().copied()), Some("test1"));
        assert_eq!(match_name("TEST1", names.iter().copied()), Some("test1"));
        assert_eq!(match_name("é", ["a"].iter().copied()), None);
    }

    #[test]
    fn versions_print_as_2_5_2() {
        assert_eq!(version_text(&json!(2050000)), "2.5.0");
        assert_eq!(version_text(&json!(3000000)), "3.0.0");
        assert_eq!(version_text(&Value::Null), "null");
    }

    #[test]
    fn uuids_come_from_the_kernel() {
        let a = new_uuid().unwrap();
        let b = new_uuid().unwrap();
        assert_eq!(a.len(), 36);
        assert_ne!(a, b);
        let mac = random_mac("aa:00:00").unwrap();
        assert!(mac.starts_with("aa:00:00:") && mac.len() == 17, "{mac}");
    }

    #[test]
    fn generation_gives_up_after_the_retry_limit() {
        let taken: HashSet<String> = ["used".to_string()].into();
        let run = |failures: usize| {
            let mut calls = 0;
            generate_unique(&taken, || {
                calls += 1;
                Ok(if calls <= failures { "used" } else { "fresh" }.to_string())
            })
        };
        assert_eq!(run(GENERATE_RETRIES - 1).unwrap(), "fresh");
        assert_eq!(
            run(GENERATE_RETRIES).unwrap_err().to_string(),
            "Not able generate new resource (last tried: used)"
        );
    }
}
