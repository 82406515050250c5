//! The LUXI methods of the master daemon (2.5.2 `server/masterd.py`
//! `ClientOps`, spec masterd-luxi 2): `SubmitJob`, `SubmitManyJobs`,
//! `WaitForJobChange`, `CancelJob`, `ArchiveJob`, `AutoArchiveJobs`,
//! `QueryJobs`, `QueryClusterInfo`, `QueryConfigValues`, `QueryTags`,
//! `SetDrainFlag`, `SetWatcherPause`. The three queries run as opcodes
//! through the processor, without a job, as 2.5.2 does.
//!
//! Arguments are taken in 2.5.2's shapes and answered with 2.5.2's results
//! and errors. Ganeti 3.0 clients (spec 8.3, 8.9) are served too where it
//! costs little: a request carrying `"version": 3000000` (or higher) may use
//! 3.0's argument shapes (the opcode list of `SubmitJob` and the job list of
//! `SubmitManyJobs` wrapped in one more list, `[id]` / `[id, kill]` for
//! `CancelJob`/`ArchiveJob`, `[flag]` for `SetDrainFlag`, `[[fields]]`
//! for `QueryConfigValues`), gets job ids as integers, the extra
//! `QueryClusterInfo` keys 3.0's `gnt-cluster info` reads, and `null` for a
//! config value it does not know (plus `modify_ssh_setup`, `ssh_key_type`,
//! `ssh_key_bits`). Job ids are accepted as strings or integers from
//! everyone; opcode keys an opcode does not know (3.0's `reason`) are kept
//! in the job and ignored.
//!
//! Differences from 2.5.2: a job id that is not a decimal number (2.5.2
//! built a file name from whatever it got) is a job that does not exist;
//! arguments of the wrong shape are answered `"Caught exception: Invalid
//! arguments for <method>: <why>"` instead of Python's unpacking errors;
//! `SetWatcherPause` refuses a time beyond the year 9999.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::luxi_server::{invalid_operation, Handler};
use super::processor::Processor;
use crate::errors::GanetiError;
use crate::fsutil::{self, FileMeta};
use crate::jqueue::JobQueue;
use crate::luxi::{python_str, Failure, Request};
use crate::opcodes;
use crate::paths::Paths;

/// The first LUXI version of Ganeti 3.0.
pub const LUXI_VERSION_3_0: u64 = 3_000_000;
/// The latest watcher pause accepted: the end of the year 9999.
pub const MAX_WATCHER_PAUSE: f64 = 253_402_300_799.0;

/// Which client generation sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// 2.5.2 (version 2050000, or none).
    V25,
    /// 3.0 or later (version 3000000 and up).
    V30,
}

impl Generation {
    pub fn of(version: Option<&Value>) -> Generation {
        match version.and_then(Value::as_f64) {
            Some(v) if v >= LUXI_VERSION_3_0 as f64 => Generation::V30,
            _ => Generation::V25,
        }
    }

    /// A job id as this generation expects it.
    fn job_id(self, id: u64) -> Value {
        match self {
            Generation::V25 => Value::String(id.to_string()),
            Generation::V30 => Value::from(id),
        }
    }
}

/// Answers the LUXI methods.
pub struct LuxiHandler {
    queue: Arc<JobQueue>,
    processor: Arc<Processor>,
    paths: Paths,
}

fn bad_args(method: &str, why: impl std::fmt::Display) -> Failure {
    Failure::Other(format!("Invalid arguments for {method}: {why}"))
}

/// A job id from a request: decimal digits (2.5.2) or a non-negative
/// integer (3.0).
pub fn job_id(v: &Value) -> Option<u64> {
    match v {
        Value::String(s)
            if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().ok()
        }
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn list_of_strings(method: &str, what: &str, v: &Value) -> Result<Vec<String>, Failure> {
    let Some(items) = v.as_array() else {
        return Err(bad_args(method, format!("{what} must be a list")));
    };
    items
        .iter()
        .map(|i| {
            i.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad_args(method, format!("{what} must be a list of strings")))
        })
        .collect()
}

/// Loads submitted opcodes as 2.5.2's `LoadOpCode` (plain-string failures).
fn load_ops(ops: &[Value]) -> Result<(), Failure> {
    for op in ops {
        opcodes::load(op).map_err(|e| Failure::Other(e.to_string()))?;
    }
    Ok(())
}

fn is_list_of_lists(v: &Value) -> bool {
    v.as_array()
        .is_some_and(|items| !items.is_empty() && items.iter().all(Value::is_array))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The end of a watcher pause as written to the file (Python's `%d`
/// truncates); refused in the past and after [`MAX_WATCHER_PAUSE`].
pub fn pause_until(t: f64, now: f64) -> Result<i64, GanetiError> {
    if t.is_nan() || t < now {
        return Err(GanetiError::msg(
            "GenericError",
            "Unable to set pause end time in the past",
        ));
    }
    if t > MAX_WATCHER_PAUSE {
        return Err(GanetiError::msg(
            "GenericError",
            "Unable to set pause end time after the year 9999",
        ));
    }
    Ok(t.trunc() as i64)
}

impl LuxiHandler {
    pub fn new(queue: Arc<JobQueue>, processor: Arc<Processor>, paths: Paths) -> LuxiHandler {
        LuxiHandler {
            queue,
            processor,
            paths,
        }
    }

    fn dispatch(&self, method: &str, args: Value, gen: Generation) -> Result<Value, Failure> {
        match method {
            "SubmitJob" => self.submit_job(args, gen),
            "SubmitManyJobs" => self.submit_many_jobs(args, gen),
            "WaitForJobChange" => self.wait_for_job_change(args),
            "CancelJob" => self.cancel_job(args),
            "ArchiveJob" => self.archive_job(args),
            "AutoArchiveJobs" => self.auto_archive_jobs(args),
            "QueryJobs" => self.query_jobs(args),
            "QueryClusterInfo" => self.query_cluster_info(gen),
            "QueryConfigValues" => self.query_config_values(args, gen),
            "QueryTags" => self.query_tags(args),
            "SetDrainFlag" => self.set_drain_flag(args),
            "SetWatcherPause" => self.set_watcher_pause(args),
            other => {
                log::info!("Received invalid request '{other}'");
                Err(invalid_operation(other))
            }
        }
    }

    fn submit_job(&self, args: Value, gen: Generation) -> Result<Value, Failure> {
        log::info!("Received new job");
        let Value::Array(mut ops) = args else {
            return Err(bad_args("SubmitJob", "not a list of opcodes"));
        };
        // 3.0: [[op, ...]].
        if gen == Generation::V30 && ops.len() == 1 && ops[0].is_array() {
            if let Some(Value::Array(inner)) = ops.pop() {
                ops = inner;
            }
        }
        load_ops(&ops)?;
        let id = self.queue.submit_job(ops)?;
        Ok(gen.job_id(id))
    }

    fn submit_many_jobs(&self, args: Value, gen: Generation) -> Result<Value, Failure> {
        log::info!("Received multiple jobs");
        let Value::Array(mut jobs) = args else {
            return Err(bad_args("SubmitManyJobs", "not a list of jobs"));
        };
        // 3.0: [[[op, ...], [op, ...]]].
        if gen == Generation::V30 && jobs.len() == 1 && is_list_of_lists(&jobs[0]) {
            if let Some(Value::Array(inner)) = jobs.pop() {
                jobs = inner;
            }
        }
        let mut loaded = Vec::with_capacity(jobs.len());
        for job in jobs {
            let Value::Array(ops) = job else {
                return Err(bad_args("SubmitManyJobs", "a job is not a list of opcodes"));
            };
            load_ops(&ops)?;
            loaded.push(ops);
        }
        let results = self.queue.submit_many_jobs(loaded);
        Ok(Value::Array(
            results
                .into_iter()
                .map(|r| match r {
                    Ok(id) => json!([true, gen.job_id(id)]),
                    Err(e) => json!([false, e.to_string()]),
                })
                .collect(),
        ))
    }

    fn wait_for_job_change(&self, args: Value) -> Result<Value, Failure> {
        const M: &str = "WaitForJobChange";
        let Some([id, fields, prev_info, prev_serial, timeout]) =
            args.as_array().map(Vec::as_slice)
        else {
            return Err(bad_args(
                M,
                "expected [job_id, fields, prev_job_info, prev_log_serial, timeout]",
            ));
        };
        log::info!("Received job poll request for {}", python_str(id));
        let fields = list_of_strings(M, "fields", fields)?;
        let prev_serial = match prev_serial {
            Value::Null => None,
            v => Some(
                v.as_u64()
                    .ok_or_else(|| bad_args(M, "prev_log_serial must be null or an integer"))?,
            ),
        };
        let timeout = timeout
            .as_f64()
            .filter(|t| t.is_finite())
            .ok_or_else(|| bad_args(M, "timeout must be a number"))?;
        let timeout = Duration::from_secs_f64(timeout.clamp(0.0, 86400.0));
        let Some(id) = job_id(id) else {
            return Ok(Value::Null);
        };
        Ok(self
            .queue
            .wait_for_job_change(id, &fields, prev_info.clone(), prev_serial, timeout)?)
    }

    /// The job id of `CancelJob`/`ArchiveJob`: bare (2.5.2) or the first
    /// element of a list (3.0).
    fn bare_job_id(args: &Value) -> &Value {
        match args {
            Value::Array(items) => items.first().unwrap_or(&Value::Null),
            other => other,
        }
    }

    fn cancel_job(&self, args: Value) -> Result<Value, Failure> {
        let raw = Self::bare_job_id(&args);
        log::info!("Received job cancel request for {}", python_str(raw));
        let Some(id) = job_id(raw) else {
            return Ok(json!([false, format!("Job {} not found", python_str(raw))]));
        };
        let (ok, msg) = self.queue.cancel_job(id)?;
        Ok(json!([ok, msg]))
    }

    fn archive_job(&self, args: Value) -> Result<Value, Failure> {
        let raw = Self::bare_job_id(&args);
        log::info!("Received job archive request for {}", python_str(raw));
        let Some(id) = job_id(raw) else {
            return Ok(Value::Bool(false));
        };
        Ok(Value::Bool(self.queue.archive_job(id)?))
    }

    fn auto_archive_jobs(&self, args: Value) -> Result<Value, Failure> {
        const M: &str = "AutoArchiveJobs";
        let Some([age, timeout]) = args.as_array().map(Vec::as_slice) else {
            return Err(bad_args(M, "expected [age, timeout]"));
        };
        log::info!(
            "Received job autoarchive request for age {}, timeout {}",
            python_str(age),
            python_str(timeout)
        );
        let age = age
            .as_f64()
            .filter(|a| a.is_finite())
            .ok_or_else(|| bad_args(M, "age must be a number"))?;
        let timeout = timeout
            .as_f64()
            .filter(|t| t.is_finite())
            .ok_or_else(|| bad_args(M, "timeout must be a number"))?;
        let timeout = Duration::from_secs_f64(timeout.clamp(0.0, 86400.0));
        let (archived, left) = self.queue.auto_archive_jobs(age as i64, timeout);
        Ok(json!([archived, left]))
    }

    fn query_jobs(&self, args: Value) -> Result<Value, Failure> {
        const M: &str = "QueryJobs";
        let Some([ids, fields]) = args.as_array().map(Vec::as_slice) else {
            return Err(bad_args(M, "expected [job_ids, fields]"));
        };
        let fields = list_of_strings(M, "fields", fields)?;
        let wanted: Vec<Value> = match ids {
            Value::Null => Vec::new(),
            Value::Array(items) => items.clone(),
            _ => return Err(bad_args(M, "job_ids must be a list or null")),
        };
        if wanted.is_empty() {
            log::info!("Received job query request for all jobs");
            return Ok(Value::Array(self.queue.query_jobs(&[], &fields)?));
        }
        let shown: Vec<String> = wanted.iter().map(python_str).collect();
        log::info!("Received job query request for {}", shown.join(", "));
        let parsed: Vec<Option<u64>> = wanted.iter().map(job_id).collect();
        let known: Vec<u64> = parsed.iter().flatten().copied().collect();
        let mut rows = if known.is_empty() {
            // Still check the fields, as for any query.
            self.queue.query_jobs(&[0], &fields)?;
            Vec::new()
        } else {
            self.queue.query_jobs(&known, &fields)?
        }
        .into_iter();
        Ok(Value::Array(
            parsed
                .iter()
                .map(|p| match p {
                    Some(_) => rows.next().unwrap_or(Value::Null),
                    None => Value::Null,
                })
                .collect(),
        ))
    }

    fn run_query(&self, op: Value) -> Result<Value, Failure> {
        let Value::Object(input) = op else {
            return Err(Failure::Other(
                "internal error: query opcode is not an object".into(),
            ));
        };
        Ok(self.processor.run_query(input)?)
    }

    fn query_cluster_info(&self, gen: Generation) -> Result<Value, Failure> {
        log::info!("Received cluster info query request");
        let mut info = self.run_query(json!({"OP_ID": "OP_CLUSTER_QUERY"}))?;
        if gen == Generation::V30 {
            if let Value::Object(map) = &mut info {
                self.add_3_0_cluster_keys(map);
            }
        }
        Ok(info)
    }

    /// The keys 3.0's `gnt-cluster info` reads that 2.5.2 does not return
    /// (spec 8.6), with the values a 2.5-style cluster has.
    fn add_3_0_cluster_keys(&self, map: &mut Map<String, Value>) {
        let (mac_prefix, modify_ssh_setup, ipv6) = {
            let cfg = self.processor.context().cfg.read();
            (
                cfg.cluster
                    .mac_prefix
                    .clone()
                    .unwrap_or_else(|| crate::config::DEFAULT_MAC_PREFIX.to_string()),
                cfg.cluster.modify_ssh_setup,
                cfg.cluster.primary_ip_family == 10,
            )
        };
        let spec = |mem: u64, cpu: u64, disks: u64, size: u64, nics: u64, spindles: u64| {
            json!({"memory-size": mem, "cpu-count": cpu, "disk-count": disks,
                   "disk-size": size, "nic-count": nics, "spindle-use": spindles})
        };
        let templates = json!(["file", "plain", "diskless"]);
        let extra = json!({
            "vcs_version": format!("v{}", crate::constants::RELEASE_VERSION),
            "mac_prefix": mac_prefix,
            "modify_ssh_setup": modify_ssh_setup,
            "ssh_key_type": "rsa",
            "ssh_key_bits": 2048,
            "master_netmask": if ipv6 { 128 } else { 32 },
            "use_external_mip_script": false,
            "max_running_jobs": crate::jqueue::JOBQUEUE_THREADS,
            "max_tracked_jobs": 25,
            "enabled_disk_templates": templates,
            "diskparams": {},
            "ipolicy": {
                "minmax": [{"min": spec(128, 1, 1, 1024, 1, 1),
                            "max": spec(32768, 8, 16, 1_048_576, 8, 12)}],
                "std": spec(128, 1, 1, 1024, 1, 1),
                "disk-templates": templates,
                "vcpu-ratio": 4.0,
                "spindle-ratio": 32.0,
            },
            "default_iallocator_params": {},
            "gluster_storage_dir": "",
            "install_image": "",
            "instance_communication_network": "",
            "zeroing_image": "",
            "compression_tools": ["gzip", "gzip-fast", "gzip-slow"],
            "enabled_user_shutdown": false,
            "enabled_data_collectors": {},
        });
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                map.entry(k).or_insert(v);
            }
        }
    }

    fn query_config_values(&self, args: Value, gen: Generation) -> Result<Value, Failure> {
        const M: &str = "QueryConfigValues";
        // 3.0: [[f1, f2]].
        let fields = match (&args, gen) {
            (Value::Array(items), Generation::V30) if items.len() == 1 && items[0].is_array() => {
                list_of_strings(M, "fields", &items[0])?
            }
            _ => list_of_strings(M, "fields", &args)?,
        };
        log::info!("Received config values query request for {fields:?}");
        if gen == Generation::V25 {
            return self
                .run_query(json!({"OP_ID": "OP_CLUSTER_CONFIG_QUERY", "output_fields": fields}));
        }
        // 3.0: unknown names are null; three more names are known.
        let known: Vec<String> = fields
            .iter()
            .filter(|f| crate::cmdlib::cluster::CONFIG_QUERY_FIELDS.contains(&f.as_str()))
            .cloned()
            .collect();
        let mut values = if known.is_empty() {
            Vec::new()
        } else {
            match self
                .run_query(json!({"OP_ID": "OP_CLUSTER_CONFIG_QUERY", "output_fields": known}))?
            {
                Value::Array(v) => v,
                _ => Vec::new(),
            }
        }
        .into_iter();
        let modify_ssh_setup = self.processor.context().cfg.read().cluster.modify_ssh_setup;
        Ok(Value::Array(
            fields
                .iter()
                .map(|f| match f.as_str() {
                    "modify_ssh_setup" => json!(modify_ssh_setup),
                    "ssh_key_type" => json!("rsa"),
                    "ssh_key_bits" => json!(2048),
                    k if crate::cmdlib::cluster::CONFIG_QUERY_FIELDS.contains(&k) => {
                        values.next().unwrap_or(Value::Null)
                    }
                    _ => Value::Null,
                })
                .collect(),
        ))
    }

    fn query_tags(&self, args: Value) -> Result<Value, Failure> {
        let Some([kind, name]) = args.as_array().map(Vec::as_slice) else {
            return Err(bad_args("QueryTags", "expected [kind, name]"));
        };
        log::info!("Received tags query request");
        self.run_query(json!({"OP_ID": "OP_TAGS_GET", "kind": kind, "name": name}))
    }

    fn set_drain_flag(&self, args: Value) -> Result<Value, Failure> {
        let flag = match &args {
            Value::Bool(b) => *b,
            Value::Array(items) if items.len() == 1 && items[0].is_boolean() => {
                items[0].as_bool().unwrap_or(false)
            }
            _ => return Err(bad_args("SetDrainFlag", "expected a boolean")),
        };
        log::info!(
            "Received queue drain flag change request to {}",
            python_str(&Value::Bool(flag))
        );
        self.queue.set_drain_flag(flag)?;
        Ok(Value::Bool(true))
    }

    fn set_watcher_pause(&self, args: Value) -> Result<Value, Failure> {
        let Some([until]) = args.as_array().map(Vec::as_slice) else {
            return Err(bad_args("SetWatcherPause", "expected [until]"));
        };
        let file = self.paths.watcher_pause_file();
        match until {
            Value::Null => {
                log::info!("Received request to no longer pause the watcher");
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Failure::Other(format!(
                            "Cannot remove {}: {e}",
                            file.display()
                        )))
                    }
                }
            }
            Value::Number(n) => {
                let t = pause_until(n.as_f64().unwrap_or(f64::NAN), unix_now())?;
                log::info!(
                    "Received request to pause the watcher until {}",
                    python_str(until)
                );
                // "%d" of Python truncates a float.
                let text = format!("{t}\n");
                let meta = FileMeta {
                    mode: Some(0o644),
                    owner: None,
                    times: None,
                };
                fsutil::write_atomic(&file, text.as_bytes(), &meta)
                    .map_err(|e| Failure::Other(format!("Cannot write {}: {e}", file.display())))?;
            }
            _ => {
                return Err(Failure::Other(
                    "Duration must be an integer or float".into(),
                ))
            }
        }
        Ok(until.clone())
    }
}

impl Handler for LuxiHandler {
    fn handle(&self, method: &str, args: Value) -> Result<Value, Failure> {
        self.dispatch(method, args, Generation::V25)
    }

    fn handle_request(&self, request: Request) -> Result<Value, Failure> {
        let gen = Generation::of(request.version.as_ref());
        match (&request.version, gen) {
            // 2.5.2's check, for everything older than 3.0.
            (_, Generation::V25) => request.check_version()?,
            (Some(v), Generation::V30) => {
                log::debug!("Request of LUXI version {} served leniently", python_str(v));
            }
            (None, Generation::V30) => {}
        }
        self.dispatch(&request.method, request.args, gen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_from_both_generations() {
        assert_eq!(job_id(&json!("42")), Some(42));
        assert_eq!(job_id(&json!(42)), Some(42));
        assert_eq!(job_id(&json!("../job-1")), None);
        assert_eq!(job_id(&json!("")), None);
        assert_eq!(job_id(&json!(-1)), None);
        assert_eq!(job_id(&json!(1.5)), None);
        assert_eq!(job_id(&json!("+1")), None);
        assert_eq!(job_id(&json!("99999999999999999999999")), None);
    }

    #[test]
    fn watcher_pause_limits() {
        assert_eq!(pause_until(1000.9, 1000.0).unwrap(), 1000);
        assert_eq!(pause_until(1000.0, 1000.0).unwrap(), 1000);
        assert_eq!(
            pause_until(999.9, 1000.0).unwrap_err().to_string(),
            "Unable to set pause end time in the past"
        );
        assert!(pause_until(f64::NAN, 1000.0).is_err());
        assert_eq!(
            pause_until(MAX_WATCHER_PAUSE, 0.0).unwrap(),
            MAX_WATCHER_PAUSE as i64
        );
        assert_eq!(
            pause_until(MAX_WATCHER_PAUSE + 1.0, 0.0)
                .unwrap_err()
                .to_string(),
            "Unable to set pause end time after the year 9999"
        );
    }

    #[test]
    fn generations() {
        assert_eq!(Generation::of(None), Generation::V25);
        assert_eq!(Generation::of(Some(&json!(2050000))), Generation::V25);
        assert_eq!(Generation::of(Some(&json!(3000000))), Generation::V30);
        assert_eq!(Generation::of(Some(&json!("3000000"))), Generation::V25);
        assert_eq!(Generation::V25.job_id(7), json!("7"));
        assert_eq!(Generation::V30.job_id(7), json!(7));
    }
}
