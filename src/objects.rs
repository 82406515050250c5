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
#![forbid(unsafe_code)]

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
}
