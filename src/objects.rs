//! The objects of Ganeti 2.5.2's `objects.py` that travel in RPCs and live in
//! `config.data`: disks, NICs, instances (this file), and the cluster, nodes and
//! node groups of the configuration.
//!
//! Serialisation follows 2.5.2: an attribute whose value is None is left
//! out, a missing attribute reads as None, tags are lists, times are float
//! seconds. Keys we do not declare are kept in `extra` and written back, so
//! a file or RPC argument from a newer or older Ganeti survives a round
//! trip (2.5.2 itself refused undeclared keys; being lenient here lets a
//! 3.0 master's extra disk keys through, spec noded-rpc 6.5).
//!
//! The configuration objects ([`Cluster`], [`Node`], [`NodeGroup`],
//! [`ConfigData`]) are read through `config::parse`, which first applies
//! 2.5.2's `UpgradeConfig` defaults: the attributes it always fills are
//! plain fields here, the others optional.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Disk types (`LD_*`), the `dev_type` of a [`Disk`].
pub const LD_LV: &str = "lvm";
pub const LD_DRBD8: &str = "drbd8";
pub const LD_FILE: &str = "file";
pub const LD_BLOCKDEV: &str = "blockdev";

/// One block device (2.5.2 `objects.Disk`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub dev_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical_id: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_id: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<Disk>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iv_name: Option<String>,
    /// MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Disk {
    /// The `logical_id` entry `i` as a string (`[vg, lv]`, `[driver, path]`).
    pub fn logical_str(&self, i: usize) -> Option<&str> {
        self.logical_id.as_ref()?.get(i)?.as_str()
    }
}

/// A network interface (2.5.2 `objects.NIC`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nic {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Overrides in the config; the filled `mode` and `link` in RPCs.
    #[serde(default)]
    pub nicparams: Map<String, Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An instance (2.5.2 `objects.Instance`). In RPCs the master sends the
/// parameter dicts filled (spec noded-rpc 5.2); in the config they hold
/// the instance's overrides only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypervisor: Option<String>,
    #[serde(default)]
    pub hvparams: Map<String, Value>,
    #[serde(default)]
    pub beparams: Map<String, Value>,
    #[serde(default)]
    pub osparams: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_up: Option<bool>,
    #[serde(default)]
    pub nics: Vec<Nic>,
    #[serde(default)]
    pub disks: Vec<Disk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_no: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctime: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Instance {
    /// `beparams["memory"]` (MiB), as the filled dict of an RPC carries it.
    pub fn memory(&self) -> Option<u64> {
        self.beparams.get("memory")?.as_u64()
    }

    /// `beparams["vcpus"]`.
    pub fn vcpus(&self) -> Option<u64> {
        self.beparams.get("vcpus")?.as_u64()
    }
}

/// The parameter-group key of the cluster's `beparams` and `nicparams`
/// (`constants.PP_DEFAULT`).
pub const PP_DEFAULT: &str = "default";

/// 2.5.2's `FillDict`: a copy of `defaults` overlaid with `custom`, without
/// the `skip` keys.
pub fn fill_dict(
    defaults: &Map<String, Value>,
    custom: &Map<String, Value>,
    skip: &[&str],
) -> Map<String, Value> {
    let mut out = defaults.clone();
    for (k, v) in custom {
        out.insert(k.clone(), v.clone());
    }
    for k in skip {
        out.remove(*k);
    }
    out
}

/// The cluster object (2.5.2 `objects.Cluster`). Fields that 2.5.2's
/// `UpgradeConfig` always fills are plain values; the others stay optional
/// and are left out of the file when unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    #[serde(default)]
    pub serial_no: u64,
    pub rsahostkeypub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest_used_port: Option<u32>,
    /// Freed network ports, used before `highest_used_port` grows.
    #[serde(default)]
    pub tcpudp_port_pool: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_group_name: Option<String>,
    pub reserved_lvs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drbd_usermode_helper: Option<String>,
    pub master_node: String,
    pub master_ip: String,
    pub master_netdev: String,
    pub cluster_name: String,
    pub file_storage_dir: String,
    pub shared_file_storage_dir: String,
    /// The first one is the default hypervisor.
    pub enabled_hypervisors: Vec<String>,
    /// Hypervisor name -> its cluster-wide parameters.
    pub hvparams: BTreeMap<String, Map<String, Value>>,
    /// OS name -> hypervisor name -> parameter overrides.
    pub os_hvp: BTreeMap<String, BTreeMap<String, Map<String, Value>>>,
    /// `{"default": {...}}`.
    pub beparams: BTreeMap<String, Map<String, Value>>,
    /// OS name (with or without variant) -> parameters.
    pub osparams: BTreeMap<String, Map<String, Value>>,
    /// `{"default": {"mode": ..., "link": ...}}`.
    pub nicparams: BTreeMap<String, Map<String, Value>>,
    pub ndparams: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_pool_size: Option<u32>,
    pub modify_etc_hosts: bool,
    pub modify_ssh_setup: bool,
    pub maintain_node_health: bool,
    /// Inclusive uid ranges `[lo, hi]`.
    pub uid_pool: Vec<(u32, u32)>,
    /// `""` when there is none.
    pub default_iallocator: String,
    pub hidden_os: Vec<String>,
    pub blacklisted_os: Vec<String>,
    /// 2 (`AF_INET`) or 10 (`AF_INET6`).
    pub primary_ip_family: u32,
    pub prealloc_wipe_disks: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctime: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Cluster {
    /// The default hypervisor (the first enabled one).
    pub fn default_hypervisor(&self) -> Option<&str> {
        self.enabled_hypervisors.first().map(String::as_str)
    }

    /// The cluster tags, in their stored order.
    pub fn tags(&self) -> &[String] {
        self.tags.as_deref().unwrap_or(&[])
    }

    /// 2.5.2's `SimpleFillHV`: the cluster parameters of `hv`, overlaid
    /// with the per-OS overrides for `os` (the full `name+variant`), then
    /// with `params`. `skip_globals` leaves out the cluster-global keys
    /// (migration port, bandwidth and mode).
    pub fn fill_hv(
        &self,
        hv: &str,
        os: Option<&str>,
        params: &Map<String, Value>,
        skip_globals: bool,
    ) -> Map<String, Value> {
        let skip: &[&str] = if skip_globals { &HV_GLOBALS } else { &[] };
        let empty = Map::new();
        let mut out = fill_dict(&Map::new(), self.hvparams.get(hv).unwrap_or(&empty), skip);
        if let Some(os) = os {
            let os_hvp = self.os_hvp.get(os).and_then(|m| m.get(hv));
            out = fill_dict(&out, os_hvp.unwrap_or(&empty), skip);
        }
        fill_dict(&out, params, skip)
    }

    /// 2.5.2's `SimpleFillBE`: `beparams["default"]` overlaid with `params`.
    pub fn fill_be(&self, params: &Map<String, Value>) -> Map<String, Value> {
        let empty = Map::new();
        fill_dict(self.beparams.get(PP_DEFAULT).unwrap_or(&empty), params, &[])
    }

    /// 2.5.2's `SimpleFillNIC`: `nicparams["default"]` overlaid with `params`.
    pub fn fill_nic(&self, params: &Map<String, Value>) -> Map<String, Value> {
        let empty = Map::new();
        fill_dict(
            self.nicparams.get(PP_DEFAULT).unwrap_or(&empty),
            params,
            &[],
        )
    }

    /// 2.5.2's `SimpleFillOS`: the parameters of the base OS name, then of
    /// the full `name+variant`, then `params`.
    pub fn fill_os(&self, os: &str, params: &Map<String, Value>) -> Map<String, Value> {
        let empty = Map::new();
        let base = os.split('+').next().unwrap_or(os);
        let out = fill_dict(&Map::new(), self.osparams.get(base).unwrap_or(&empty), &[]);
        let out = fill_dict(&out, self.osparams.get(os).unwrap_or(&empty), &[]);
        fill_dict(&out, params, &[])
    }

    /// 2.5.2's `FillND`: cluster ndparams, then the group's, then the node's.
    pub fn fill_nd(&self, node: &Node, group: Option<&NodeGroup>) -> Map<String, Value> {
        let empty = Map::new();
        let from_group = fill_dict(
            group.map(|g| &g.ndparams).unwrap_or(&empty),
            &node.ndparams,
            &[],
        );
        fill_dict(&self.ndparams, &from_group, &[])
    }
}

/// Hypervisor parameters that are cluster-wide only (`HVC_GLOBALS`): never
/// kept per instance.
pub const HV_GLOBALS: [&str; 3] = ["migration_port", "migration_bandwidth", "migration_mode"];

/// A node (2.5.2 `objects.Node`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub primary_ip: String,
    pub secondary_ip: String,
    #[serde(default)]
    pub serial_no: u64,
    #[serde(default)]
    pub master_candidate: bool,
    #[serde(default)]
    pub offline: bool,
    #[serde(default)]
    pub drained: bool,
    /// The node group's UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub master_capable: bool,
    pub vm_capable: bool,
    pub ndparams: Map<String, Value>,
    pub powered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctime: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A node group (2.5.2 `objects.NodeGroup`). Its members are not stored:
/// they are the nodes whose `group` is this group's UUID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeGroup {
    pub name: String,
    pub ndparams: Map<String, Value>,
    pub serial_no: u64,
    /// `preferred`, `last_resort` or `unallocable`.
    pub alloc_policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctime: Option<f64>,
    pub mtime: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The whole `config.data` (2.5.2 `objects.ConfigData`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigData {
    pub version: u64,
    pub cluster: Cluster,
    /// Node name -> node.
    #[serde(default)]
    pub nodes: BTreeMap<String, Node>,
    /// Group UUID -> group.
    #[serde(default)]
    pub nodegroups: BTreeMap<String, NodeGroup>,
    /// Instance name -> instance.
    #[serde(default)]
    pub instances: BTreeMap<String, Instance>,
    #[serde(default)]
    pub serial_no: u64,
    #[serde(default)]
    pub ctime: f64,
    #[serde(default)]
    pub mtime: f64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ConfigData {
    /// The node group a node belongs to, if it exists.
    pub fn node_group(&self, node: &Node) -> Option<&NodeGroup> {
        self.nodegroups.get(node.group.as_deref()?)
    }

    /// The group UUID for a group name or UUID (2.5.2's
    /// `LookupNodeGroup` with a target).
    pub fn lookup_group(&self, target: &str) -> Option<&str> {
        if let Some((uuid, _)) = self.nodegroups.get_key_value(target) {
            return Some(uuid);
        }
        self.nodegroups
            .iter()
            .find(|(_, g)| g.name == target)
            .map(|(uuid, _)| uuid.as_str())
    }

    /// The names of the nodes in a group.
    pub fn group_members(&self, uuid: &str) -> Vec<&str> {
        self.nodes
            .values()
            .filter(|n| n.group.as_deref() == Some(uuid))
            .map(|n| n.name.as_str())
            .collect()
    }

    /// Every MAC address of every instance NIC.
    pub fn all_macs(&self) -> Vec<&str> {
        self.instances
            .values()
            .flat_map(|i| i.nics.iter())
            .filter_map(|n| n.mac.as_deref())
            .collect()
    }

    /// `Update(cluster)`: serial number and modification time of the
    /// cluster object.
    pub fn touch_cluster(&mut self, now: f64) {
        self.cluster.serial_no += 1;
        self.cluster.mtime = Some(now);
    }

    /// `Update(node)`: the node's serial and mtime, and (as 2.5.2 does for
    /// every node update) the cluster's, so ssconf is pushed. False when
    /// the node does not exist.
    pub fn touch_node(&mut self, name: &str, now: f64) -> bool {
        let Some(node) = self.nodes.get_mut(name) else {
            return false;
        };
        node.serial_no += 1;
        node.mtime = Some(now);
        self.touch_cluster(now);
        true
    }

    /// `Update(instance)`: the instance's serial and mtime (the cluster
    /// serial is left alone). False when the instance does not exist.
    pub fn touch_instance(&mut self, name: &str, now: f64) -> bool {
        let Some(inst) = self.instances.get_mut(name) else {
            return false;
        };
        inst.serial_no = Some(inst.serial_no.unwrap_or(0) + 1);
        inst.mtime = Some(now);
        true
    }

    /// `Update(group)`: the group's serial and mtime. False when the group
    /// does not exist.
    pub fn touch_group(&mut self, uuid: &str, now: f64) -> bool {
        let Some(group) = self.nodegroups.get_mut(uuid) else {
            return false;
        };
        group.serial_no += 1;
        group.mtime = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_instance_round_trips() {
        let text = r#"{"admin_up": true, "beparams": {"memory": 128, "vcpus": 1},
            "disk_template": "file", "disks": [{"dev_type": "file",
            "logical_id": ["loop", "/srv/ganeti/file-storage/i1/disk0"],
            "physical_id": ["loop", "/srv/ganeti/file-storage/i1/disk0"],
            "size": 1024, "iv_name": "disk/0", "mode": "rw"}],
            "hvparams": {}, "hypervisor": "fake", "name": "i1",
            "nics": [{"mac": "aa:00:00:5e:fe:42", "nicparams": {}}],
            "os": "lab", "osparams": {}, "primary_node": "n1", "serial_no": 4,
            "uuid": "u", "future_key": [1]}"#;
        let inst: Instance = serde_json::from_str(text).unwrap();
        assert_eq!(inst.memory(), Some(128));
        assert_eq!(
            inst.disks[0].logical_str(1),
            Some("/srv/ganeti/file-storage/i1/disk0")
        );
        assert!(inst.disks[0].children.is_none());
        let back = serde_json::to_value(&inst).unwrap();
        let orig: Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, orig);
    }

    fn node(group: Option<&str>) -> Node {
        serde_json::from_value(serde_json::json!({
            "name": "n1", "primary_ip": "192.0.2.1", "secondary_ip": "192.0.2.1",
            "group": group, "master_capable": true, "vm_capable": true,
            "ndparams": {"b": 3}, "powered": true, "serial_no": 1
        }))
        .unwrap()
    }

    #[test]
    fn fill_dict_overlays_and_skips() {
        let d = serde_json::json!({"a": 1, "b": 2, "migration_port": 3});
        let c = serde_json::json!({"b": 20, "c": 30});
        let out = fill_dict(d.as_object().unwrap(), c.as_object().unwrap(), &HV_GLOBALS);
        assert_eq!(
            Value::Object(out),
            serde_json::json!({"a": 1, "b": 20, "c": 30})
        );
    }

    #[test]
    fn node_parameters_come_from_cluster_group_node() {
        let sample = include_str!("../tests/samples/ganeti-2.5.2/config.data");
        let mut cfg = crate::config::parse(sample).unwrap();
        let uuid = cfg.nodegroups.keys().next().unwrap().clone();
        let group = cfg.nodegroups.get_mut(&uuid).unwrap();
        group.ndparams.insert("a".into(), Value::from(2));
        group.ndparams.insert("b".into(), Value::from(2));
        let mut n = node(Some(&uuid));
        n.ndparams
            .insert("oob_program".into(), Value::from("/bin/oob"));
        let filled = cfg.cluster.fill_nd(&n, cfg.node_group(&n));
        assert_eq!(
            Value::Object(filled),
            serde_json::json!({"a": 2, "b": 3, "oob_program": "/bin/oob"})
        );
        assert!(cfg.touch_node("node1.g25lab.test", 5.0));
        assert_eq!(cfg.cluster.serial_no, 9);
        assert_eq!(cfg.nodes["node1.g25lab.test"].serial_no, 2);
        assert!(!cfg.touch_node("nosuch", 5.0));
        assert_eq!(cfg.lookup_group("default"), Some(uuid.as_str()));
        assert_eq!(cfg.group_members(&uuid), ["node1.g25lab.test"]);
    }
}
