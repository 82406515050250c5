//! The fake hypervisor (2.5.2's `hv_fake`): an instance is "running" while
//! `/var/run/ganeti/fake-hypervisor/<name>` exists; the file holds
//! `"0\n<memory>\n<vcpus>\n"`. No process, disk or network is touched, so a
//! whole cluster can be exercised without virtualisation.
//!
//! Differences from 2.5.2: the state file is written atomically (mode
//! 0644); names are checked with [`super::check_name`]; migration is not
//! offered.

#![forbid(unsafe_code)]

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::{
    check_name, dir_entries, ensure_dir, linux_node_info, read_small, BlockDevice, HvError,
    Hypervisor, InstanceInfo, NodeInfo,
};
use crate::fsutil::{self, FileMeta};
use crate::objects::Instance;
use crate::paths::{Paths, RUN_DIR};

/// The state directory (wire path).
pub fn root_dir() -> String {
    format!("{RUN_DIR}/fake-hypervisor")
}

/// The fake hypervisor of one node.
#[derive(Debug)]
pub struct Fake {
    dir: PathBuf,
}

impl Fake {
    /// Creates the state directory (mode 0775) when missing.
    pub fn open(paths: &Paths) -> Result<Fake, HvError> {
        let dir = paths.to_local(&root_dir());
        ensure_dir(&dir)?;
        Ok(Fake { dir })
    }

    fn file(&self, name: &str) -> Result<PathBuf, HvError> {
        check_name(name)?;
        Ok(self.dir.join(name))
    }

    fn alive(&self, name: &str) -> Result<bool, HvError> {
        Ok(self.file(name)?.exists())
    }

    fn mark_up(&self, inst: &Instance) -> Result<(), HvError> {
        let failed =
            |why: String| HvError::Failed(format!("Failed to start instance {}: {why}", inst.name));
        let (Some(memory), Some(vcpus)) = (inst.memory(), inst.vcpus()) else {
            return Err(failed(
                "beparams 'memory' and 'vcpus' must be numbers".into(),
            ));
        };
        let meta = FileMeta {
            mode: Some(0o644),
            ..FileMeta::default()
        };
        let text = format!("0\n{memory}\n{vcpus}\n");
        fsutil::write_atomic(&self.file(&inst.name)?, text.as_bytes(), &meta)
            .map_err(|e| failed(e.to_string()))
    }

    fn mark_down(&self, name: &str) -> Result<(), HvError> {
        match std::fs::remove_file(self.file(name)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(HvError::Failed(format!(
                "Failed to stop instance {name}: {e}"
            ))),
        }
    }

    /// The memory (MiB) of the running instances whose state file holds a
    /// number.
    fn used_memory(&self) -> Result<u64, HvError> {
        Ok(self
            .all_instances_info()?
            .iter()
            .filter_map(|i| i.memory.as_u64())
            .fold(0, u64::saturating_add))
    }

    /// Reads a state file: (id, memory, vcpus); short files give empty
    /// strings, as Python's `readline` at the end of a file.
    fn read_state(&self, name: &str) -> std::io::Result<(Value, Value, Value)> {
        let text = read_small(&self.dir.join(name))?;
        let mut lines = text.lines().map(str::trim);
        let id = Value::from(lines.next().unwrap_or(""));
        let memory = try_int(lines.next().unwrap_or(""));
        let vcpus = try_int(lines.next().unwrap_or(""));
        Ok((id, memory, vcpus))
    }
}

/// 2.5.2's `TryConvert(int, text)`: the number, or the text itself.
fn try_int(text: &str) -> Value {
    text.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(text))
}

fn info(name: &str, (id, memory, vcpus): (Value, Value, Value)) -> InstanceInfo {
    InstanceInfo {
        name: name.to_string(),
        id,
        memory,
        vcpus,
        state: "---b-".into(),
        time: Value::from("0"),
    }
}

impl Hypervisor for Fake {
    fn list_instances(&self) -> Result<Vec<String>, HvError> {
        dir_entries(&self.dir)
    }

    fn instance_info(&self, name: &str) -> Result<Option<InstanceInfo>, HvError> {
        if !self.alive(name)? {
            return Ok(None);
        }
        let state = self
            .read_state(name)
            .map_err(|e| HvError::Failed(format!("Failed to list instance {name}: {e}")))?;
        Ok(Some(info(name, state)))
    }

    fn all_instances_info(&self) -> Result<Vec<InstanceInfo>, HvError> {
        let mut out = Vec::new();
        for name in dir_entries(&self.dir)? {
            let state = self
                .read_state(&name)
                .map_err(|e| HvError::Failed(format!("Failed to list instances: {e}")))?;
            out.push(info(&name, state));
        }
        Ok(out)
    }

    fn start(&self, inst: &Instance, _disks: &[BlockDevice], _paused: bool) -> Result<(), HvError> {
        if self.alive(&inst.name)? {
            return Err(HvError::Failed(format!(
                "Failed to start instance {}: already running",
                inst.name
            )));
        }
        self.mark_up(inst)
    }

    fn stop(&self, inst: &Instance, _force: bool, _retry: bool) -> Result<(), HvError> {
        if !self.alive(&inst.name)? {
            return Err(HvError::Failed(format!(
                "Failed to stop instance {}: not running",
                inst.name
            )));
        }
        self.mark_down(&inst.name)
    }

    fn cleanup(&self, name: &str) -> Result<(), HvError> {
        check_name(name)
    }

    fn reboot(&self, inst: &Instance) -> Result<(), HvError> {
        check_name(&inst.name)
    }

    /// The Linux node information, less the memory of the running fake
    /// instances (never below 0).
    fn node_info(&self) -> Result<NodeInfo, HvError> {
        let mut node = linux_node_info()?;
        node.memory_free -= node.memory_free.min(self.used_memory()?);
        Ok(node)
    }

    fn verify(&self) -> Option<String> {
        (!self.dir.is_dir())
            .then(|| format!("The required directory '{}' does not exist.", root_dir()))
    }

    /// `fake` has no parameters.
    fn validate_params(&self, _params: &Map<String, Value>) -> Result<(), HvError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::scratch;
    use super::super::*;
    use super::Fake;
    use std::os::unix::fs::MetadataExt;

    fn inst(name: &str) -> Instance {
        serde_json::from_value(serde_json::json!({
            "name": name, "hypervisor": "fake",
            "beparams": {"memory": 128, "vcpus": 2}}))
        .unwrap()
    }

    #[test]
    fn creates_its_dir_and_subtracts_instance_memory() {
        let (root, paths) = scratch("fake");
        let dir = paths.to_local("/var/run/ganeti/fake-hypervisor");
        assert_eq!(verify(&paths, "fake").unwrap(), None);
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o775);
        assert!(list_instances(&paths, "fake").unwrap().is_empty());
        let fake = Fake::open(&paths).unwrap();
        assert_eq!(fake.used_memory().unwrap(), 0);
        std::fs::write(dir.join("inst2"), "0\n128\n1\n").unwrap();
        std::fs::write(dir.join("inst1"), "0\nnot a number\n1\n").unwrap();
        assert_eq!(list_instances(&paths, "fake").unwrap(), ["inst1", "inst2"]);
        // The machine's free memory changes under other processes, so the
        // subtraction is checked on the amount subtracted.
        assert_eq!(fake.used_memory().unwrap(), 128);
        let after = node_info(&paths, "fake").unwrap();
        assert!(after.memory_free <= after.memory_total);
        // Huge instances do not make it negative, nor overflow the sum.
        std::fs::write(dir.join("inst3"), "0\n99999999999\n1\n").unwrap();
        assert_eq!(node_info(&paths, "fake").unwrap().memory_free, 0);
        let largest = format!("0\n{}\n1\n", i64::MAX);
        std::fs::write(dir.join("inst4"), &largest).unwrap();
        std::fs::write(dir.join("inst5"), &largest).unwrap();
        assert_eq!(node_info(&paths, "fake").unwrap().memory_free, 0);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn dir_that_is_a_file_is_an_error() {
        let (root, paths) = scratch("fakefile");
        std::fs::write(paths.to_local("/var/run/ganeti/fake-hypervisor"), "").unwrap();
        let e = verify(&paths, "fake").unwrap_err().to_string();
        assert!(e.starts_with("Cannot create needed directory"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn start_stop_and_info_follow_2_5_2() {
        let (root, paths) = scratch("fakeops");
        let hv = get(&paths, "fake").unwrap();
        let i = inst("inst1");
        hv.start(&i, &[], false).unwrap();
        let file = paths.to_local("/var/run/ganeti/fake-hypervisor/inst1");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "0\n128\n2\n");
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o7777, 0o644);
        assert_eq!(
            hv.start(&i, &[], false).unwrap_err().to_string(),
            "Failed to start instance inst1: already running"
        );
        let got = hv.instance_info("inst1").unwrap().unwrap();
        assert_eq!(
            (got.id, got.memory, got.vcpus, got.state.as_str(), got.time),
            (
                Value::from("0"),
                Value::from(128),
                Value::from(2),
                "---b-",
                Value::from("0")
            )
        );
        // A short file gives the raw (empty) text, as 2.5.2's TryConvert.
        std::fs::write(paths.to_local("/var/run/ganeti/fake-hypervisor/x"), "7\n").unwrap();
        let all = hv.all_instances_info().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].memory, Value::from(""));
        hv.stop(&i, false, false).unwrap();
        assert!(!file.exists());
        assert_eq!(hv.instance_info("inst1").unwrap(), None);
        assert_eq!(
            hv.stop(&i, false, false).unwrap_err().to_string(),
            "Failed to stop instance inst1: not running"
        );
        // Hostile names touch nothing.
        for bad in ["../escape", "..", "a/b"] {
            assert!(hv.start(&inst(bad), &[], false).is_err());
            assert!(hv.instance_info(bad).is_err());
        }
        assert!(!paths.to_local("/var/run/ganeti/escape").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
