//! Cluster logical units (2.5.2 `LUClusterPostInit`, `LUClusterDestroy`,
//! `LUClusterQuery`, `LUClusterConfigQuery`, `LUClusterRedistConf`).
#![forbid(unsafe_code)]

use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::{raise, Env, LogicalUnit, LuResult};
use crate::constants::{PROTOCOL_VERSION, RELEASE_VERSION};
use crate::errors::{GanetiError, ECODE_INVAL};
use crate::hooks::Phase;
use crate::locking::{Level, Names};
use crate::opcodes;

/// `OS_API_VERSIONS` of 2.5.2, highest.
pub const OS_API_VERSION: u32 = 20;
/// `EXPORT_VERSION` of 2.5.2.
pub const EXPORT_VERSION: u32 = 0;
/// `CONFIG_VERSION` of 2.5.2.
pub const CONFIG_VERSION: u32 = PROTOCOL_VERSION;
/// A watcher pause file is removed this long after the time it names
/// (`ReadWatcherPauseFile(remove_after=3600)`).
pub const WATCHER_PAUSE_REMOVE_AFTER: i64 = 3600;
/// Longest watcher pause file read (it holds one number).
pub const MAX_WATCHER_PAUSE_FILE: u64 = 4096;
/// `AF_INET6`, as `primary_ip_family` holds it.
const AF_INET6: u32 = 10;

fn cluster_target(env: &Env<'_>) -> Map<String, Value> {
    let mut m = Map::new();
    let name = env.cfg().read().cluster.cluster_name.clone();
    m.insert("OP_TARGET".into(), Value::String(name));
    m
}

fn master_node(env: &Env<'_>) -> String {
    env.cfg().read().cluster.master_node.clone()
}

/// `OP_CLUSTER_POST_INIT`: only the `cluster-init` post hooks on the master;
/// returns true.
pub struct PostInit;

impl LogicalUnit for PostInit {
    fn expand_names(&mut self, _env: &mut Env<'_>) -> Result<(), GanetiError> {
        Ok(())
    }

    fn hooks_env(&self, env: &Env<'_>) -> Map<String, Value> {
        cluster_target(env)
    }

    fn hooks_nodes(&self, env: &Env<'_>) -> (Vec<String>, Vec<String>) {
        (Vec::new(), vec![master_node(env)])
    }

    fn exec(&mut self, _env: &mut Env<'_>) -> Result<LuResult, GanetiError> {
        Ok(LuResult::Value(Value::Bool(true)))
    }
}

/// `OP_CLUSTER_DESTROY`: refuses while other nodes or any instance
/// remain; runs the `cluster-destroy` post hooks on the master, removes
/// the master role (`node_stop_master [false]`) and returns the master's
/// name (the client then stops the daemons).
pub struct Destroy;

impl LogicalUnit for Destroy {
    fn expand_names(&mut self, _env: &mut Env<'_>) -> Result<(), GanetiError> {
        Ok(())
    }

    fn hooks_env(&self, env: &Env<'_>) -> Map<String, Value> {
        cluster_target(env)
    }

    fn check_prereq(&mut self, env: &mut Env<'_>) -> Result<(), GanetiError> {
        let cfg = env.cfg().read();
        let master = &cfg.cluster.master_node;
        let nodes: Vec<&String> = cfg.nodes.keys().collect();
        if nodes.len() != 1 || nodes[0] != master {
            return Err(GanetiError::prereq(
                format!(
                    "There are still {} node(s) in this cluster.",
                    nodes.len() as i64 - 1
                ),
                ECODE_INVAL,
            ));
        }
        if !cfg.instances.is_empty() {
            return Err(GanetiError::prereq(
                format!(
                    "There are still {} instance(s) in this cluster.",
                    cfg.instances.len()
                ),
                ECODE_INVAL,
            ));
        }
        Ok(())
    }

    fn exec(&mut self, env: &mut Env<'_>) -> Result<LuResult, GanetiError> {
        let master = master_node(env);
        // _RunPostHook: any failure is only a warning.
        let lu_env = self.hooks_env(env);
        let ran = env
            .hooks_master(&lu_env, (Vec::new(), Vec::new()))
            .and_then(|hm| {
                env.run_hooks(
                    &hm,
                    Phase::Post,
                    &lu_env,
                    Some(std::slice::from_ref(&master)),
                )
            });
        if ran.is_err() {
            env.log_warning(&format!("Errors occurred running hooks on {master}"), None);
        }
        let results = env.call_static(
            std::slice::from_ref(&master),
            "node_stop_master",
            &json!([false]),
        );
        for (_, r) in &results {
            raise(r, "Could not disable the master role")?;
        }
        Ok(LuResult::Value(Value::String(master)))
    }
}

/// `OP_CLUSTER_QUERY`: the cluster information of `gnt-cluster info`
/// (LUXI `QueryClusterInfo`), every key 2.5.2 returns.
pub struct Query;

/// `platform.architecture()[0]` and `platform.machine()`.
pub fn architecture() -> (String, String) {
    let bits = format!("{}bit", usize::BITS);
    (bits, std::env::consts::ARCH.to_string())
}

impl LogicalUnit for Query {
    fn expand_names(&mut self, _env: &mut Env<'_>) -> Result<(), GanetiError> {
        Ok(())
    }

    fn exec(&mut self, env: &mut Env<'_>) -> Result<LuResult, GanetiError> {
        let cfg = env.cfg().read();
        let c = &cfg.cluster;
        let enabled = &c.enabled_hypervisors;
        let mut os_hvp = Map::new();
        for (os, per_hv) in &c.os_hvp {
            let kept: Map<String, Value> = per_hv
                .iter()
                .filter(|(hv, _)| enabled.contains(hv))
                .map(|(hv, params)| (hv.clone(), Value::Object(params.clone())))
                .collect();
            os_hvp.insert(os.clone(), Value::Object(kept));
        }
        let hvparams: Map<String, Value> = enabled
            .iter()
            .map(|hv| {
                let params = c.hvparams.get(hv).cloned().unwrap_or_default();
                (hv.clone(), Value::Object(params))
            })
            .collect();
        let primary_ip_version = if c.primary_ip_family == AF_INET6 {
            6
        } else {
            4
        };
        let (bits, machine) = architecture();
        let result = json!({
            "software_version": RELEASE_VERSION,
            "protocol_version": PROTOCOL_VERSION,
            "config_version": CONFIG_VERSION,
            "os_api_version": OS_API_VERSION,
            "export_version": EXPORT_VERSION,
            "architecture": [bits, machine],
            "name": c.cluster_name,
            "master": c.master_node,
            "default_hypervisor": enabled.first(),
            "enabled_hypervisors": enabled,
            "hvparams": hvparams,
            "os_hvp": os_hvp,
            "beparams": c.beparams,
            "osparams": c.osparams,
            "nicparams": c.nicparams,
            "ndparams": c.ndparams,
            "candidate_pool_size": c.candidate_pool_size,
            "master_netdev": c.master_netdev,
            "volume_group_name": c.volume_group_name,
            "drbd_usermode_helper": c.drbd_usermode_helper,
            "file_storage_dir": c.file_storage_dir,
            "shared_file_storage_dir": c.shared_file_storage_dir,
            "maintain_node_health": c.maintain_node_health,
            "ctime": c.ctime,
            "mtime": c.mtime,
            "uuid": c.uuid,
            "tags": c.tags(),
            "uid_pool": c.uid_pool,
            "default_iallocator": c.default_iallocator,
            "reserved_lvs": c.reserved_lvs,
            "primary_ip_version": primary_ip_version,
            "prealloc_wipe_disks": c.prealloc_wipe_disks,
            "hidden_os": c.hidden_os,
            "blacklisted_os": c.blacklisted_os,
        });
        Ok(LuResult::Value(result))
    }
}

/// The fields `OP_CLUSTER_CONFIG_QUERY` knows.
pub const CONFIG_QUERY_FIELDS: [&str; 5] = [
    "cluster_name",
    "master_node",
    "drain_flag",
    "watcher_pause",
    "volume_group_name",
];

/// `OP_CLUSTER_CONFIG_QUERY` (LUXI `QueryConfigValues`).
pub struct ConfigQuery {
    fields: Vec<String>,
}

impl ConfigQuery {
    pub fn new(op: &opcodes::ConfigQuery) -> ConfigQuery {
        ConfigQuery {
            fields: op.output_fields.clone(),
        }
    }
}

/// `_CheckOutputFields`: every selected field must be known.
pub fn check_output_fields(known: &[&str], selected: &[String]) -> Result<(), GanetiError> {
    let unknown: Vec<&str> = selected
        .iter()
        .map(String::as_str)
        .filter(|f| !known.contains(f))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(GanetiError::prereq(
        format!("Unknown output fields selected: {}", unknown.join(",")),
        ECODE_INVAL,
    ))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `ReadWatcherPauseFile`: the pause end time if it is still ahead; a file
/// that does not hold an integer, or whose time passed more than
/// [`WATCHER_PAUSE_REMOVE_AFTER`] ago, is removed.
pub fn read_watcher_pause(path: &Path, now: i64) -> io::Result<Option<i64>> {
    use std::io::Read;
    let text = match std::fs::File::open(path) {
        Ok(f) => {
            let mut s = String::new();
            f.take(MAX_WATCHER_PAUSE_FILE + 1).read_to_string(&mut s)?;
            s
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let remove = || match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            log::error!("Cannot remove {}: {e}", path.display())
        }
        _ => {}
    };
    let parsed = if text.len() as u64 > MAX_WATCHER_PAUSE_FILE {
        None
    } else {
        text.trim().parse::<i64>().ok()
    };
    let Some(value) = parsed else {
        log::warn!(
            "Watcher pause file ({}) contains invalid value, removing it",
            path.display()
        );
        remove();
        return Ok(None);
    };
    if now > value.saturating_add(WATCHER_PAUSE_REMOVE_AFTER) {
        remove();
        return Ok(None);
    }
    Ok((now <= value).then_some(value))
}

impl LogicalUnit for ConfigQuery {
    fn check_arguments(&mut self, _env: &mut Env<'_>) -> Result<(), GanetiError> {
        check_output_fields(&CONFIG_QUERY_FIELDS, &self.fields)
    }

    fn expand_names(&mut self, _env: &mut Env<'_>) -> Result<(), GanetiError> {
        Ok(())
    }

    fn exec(&mut self, env: &mut Env<'_>) -> Result<LuResult, GanetiError> {
        let paths = &env.ctx.paths;
        let mut values = Vec::with_capacity(self.fields.len());
        for field in &self.fields {
            let v = match field.as_str() {
                "cluster_name" => json!(env.cfg().read().cluster.cluster_name),
                "master_node" => json!(env.cfg().read().cluster.master_node),
                "drain_flag" => json!(paths.queue_dir().join("drain").exists()),
                "watcher_pause" => {
                    let file = paths.watcher_pause_file();
                    let v = read_watcher_pause(&file, unix_now()).map_err(|e| {
                        GanetiError::exec(format!("Cannot read {}: {e}", file.display()))
                    })?;
                    json!(v)
                }
                "volume_group_name" => json!(env.cfg().read().cluster.volume_group_name),
                other => return Err(GanetiError::msg("ParameterError", other)),
            };
            values.push(v);
        }
        Ok(LuResult::Value(Value::Array(values)))
    }
}

/// `OP_CLUSTER_REDIST_CONF`: writes the configuration again (so it goes to
/// the master candidates and ssconf to every node) and copies the
/// ancillary cluster files to the other nodes. All node locks, shared.
pub struct RedistConf;

/// Prefixes of the configuration writer's own messages, which 2.5.2 passes
/// through raw; the ancillary file copies are `LogWarning`s.
const CONFIG_COPY_PREFIXES: [&str; 3] = [
    "Copy of file /var/lib/ganeti/config.data ",
    "Error while uploading ssconf files ",
    "Configuration data is not consistent",
];

impl LogicalUnit for RedistConf {
    fn expand_names(&mut self, env: &mut Env<'_>) -> Result<(), GanetiError> {
        env.locks.needed.insert(Level::Node, Names::All);
        env.locks.shared.push(Level::Node);
        Ok(())
    }

    fn exec(&mut self, env: &mut Env<'_>) -> Result<LuResult, GanetiError> {
        let warnings = env.cfg().redistribute()?;
        for w in warnings {
            if CONFIG_COPY_PREFIXES.iter().any(|p| w.starts_with(p)) {
                env.log(&w);
            } else {
                env.log_warning(&w, None);
            }
        }
        Ok(LuResult::Value(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_output_fields_are_listed_in_order() {
        let known = CONFIG_QUERY_FIELDS;
        assert!(check_output_fields(&known, &["cluster_name".into()]).is_ok());
        let e = check_output_fields(&known, &["x".into(), "master_node".into(), "a".into()])
            .unwrap_err();
        assert_eq!(
            e.encode(),
            json!([
                "OpPrereqError",
                ["Unknown output fields selected: x,a", "wrong_input"]
            ])
        );
    }

    #[test]
    fn watcher_pause_file_as_2_5_2() {
        let dir = std::env::temp_dir().join(format!("gnt-wpause-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("watcher.pause");
        assert_eq!(read_watcher_pause(&f, 1000).unwrap(), None);
        std::fs::write(&f, "2000\n").unwrap();
        assert_eq!(read_watcher_pause(&f, 1000).unwrap(), Some(2000));
        assert_eq!(read_watcher_pause(&f, 2000).unwrap(), Some(2000));
        // Past, but within the hour: kept, not reported.
        assert_eq!(read_watcher_pause(&f, 2001).unwrap(), None);
        assert!(f.exists());
        assert_eq!(
            read_watcher_pause(&f, 2000 + WATCHER_PAUSE_REMOVE_AFTER).unwrap(),
            None
        );
        assert!(f.exists());
        // One second past the hour: removed.
        assert_eq!(
            read_watcher_pause(&f, 2001 + WATCHER_PAUSE_REMOVE_AFTER).unwrap(),
            None
        );
        assert!(!f.exists());
        std::fs::write(&f, "soon").unwrap();
        assert_eq!(read_watcher_pause(&f, 1000).unwrap(), None);
        assert!(!f.exists());
        // The size limit: padded to the limit still reads, one byte more
        // is invalid and removed.
        let padded = format!(
            "{:<width$}",
            "2000",
            width = MAX_WATCHER_PAUSE_FILE as usize
        );
        std::fs::write(&f, &padded).unwrap();
        assert_eq!(read_watcher_pause(&f, 1000).unwrap(), Some(2000));
        std::fs::write(&f, format!("{padded} ")).unwrap();
        assert_eq!(read_watcher_pause(&f, 1000).unwrap(), None);
        assert!(!f.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn architecture_is_pythons() {
        let (bits, machine) = architecture();
        assert!(bits == "64bit" || bits == "32bit");
        assert!(!machine.is_empty());
    }
}
