//! Instances on their hypervisor: `instance_start`, `instance_shutdown`,
//! `instance_reboot`, `instance_info`, `instance_list`,
//! `all_instances_info`, `instance_migratable` and
//! `hypervisor_validate_params`, with 2.5.2's argument shapes, results and
//! messages (2.5.2 `backend.py`).
//!
//! The instance dicts arrive filled by the master (hvparams, beparams,
//! nicparams); the node never reads config.data. Disks are found with
//! [`crate::storage::disk_dev_path`] and linked as
//! `/var/run/ganeti/instance-disks/<name>:<idx>` before the hypervisor
//! starts the instance.
//!
//! Differences from 2.5.2: instance names are checked before anything
//! touches the disk (`Invalid instance name ...`, see
//! [`crate::hypervisor::check_name`]); operations on one instance are
//! serialised inside the daemon (2.5.2's forked workers could race); a
//! shutdown checks every [`POLL_INTERVAL`] whether the instance is gone and
//! repeats the soft stop every [`RETRY_INTERVAL`] (2.5.2 only looked every
//! 5 s). A shutdown holds its worker for at most its timeout, plus the
//! soft stop under way then (kvm: 2 s to hand `system_powerdown` to the
//! monitor, or with `acpi` off a kill, as below), plus the forced stop
//! (kvm: up to 30 s after SIGTERM and 5 s after SIGKILL), plus 1 s to see
//! the instance gone; a hung kvm holds it no longer. As in 2.5.2, starting
//! an instance that is already running answers null without doing
//! anything (the hypervisor itself refuses a second start with `Failed to
//! start instance <name>: already running`).
//! Migration procedures are not served.

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::{backend, decode, Context, Procedure, RpcError, SMALL_BODY};
use crate::hypervisor::{self, check_name, instance_hv, BlockDevice, Hypervisor};
use crate::objects::Instance;
use crate::paths::RUN_DIR;

/// Body limit of the procedures that carry an instance: its parameter
/// dicts, disks, NICs and up to 2.5.2's 4096 tags of 128 characters.
pub const INSTANCE_BODY: usize = 1024 * 1024;
/// How often a shutdown repeats the soft stop (2.5.2's retry delay).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// How often a shutdown looks whether the instance is gone.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long a forced stop may take to show (2.5.2 slept 1 s).
const FORCE_GRACE: Duration = Duration::from_secs(1);
/// Where the disks of running instances are linked (`DISK_LINKS_DIR`).
pub fn disk_links_dir() -> String {
    format!("{RUN_DIR}/instance-disks")
}
/// `DISK_SEPARATOR`.
const DISK_SEPARATOR: char = ':';

pub const PROCEDURES: &[Procedure] = &[
    Procedure {
        name: "instance_list",
        max_body: SMALL_BODY,
        handler: instance_list,
    },
    Procedure {
        name: "instance_info",
        max_body: SMALL_BODY,
        handler: instance_info,
    },
    Procedure {
        name: "all_instances_info",
        max_body: SMALL_BODY,
        handler: all_instances_info,
    },
    Procedure {
        name: "instance_start",
        max_body: INSTANCE_BODY,
        handler: instance_start,
    },
    Procedure {
        name: "instance_shutdown",
        max_body: INSTANCE_BODY,
        handler: instance_shutdown,
    },
    Procedure {
        name: "instance_reboot",
        max_body: INSTANCE_BODY,
        handler: instance_reboot,
    },
    Procedure {
        name: "instance_migratable",
        max_body: INSTANCE_BODY,
        handler: instance_migratable,
    },
    Procedure {
        name: "hypervisor_validate_params",
        max_body: SMALL_BODY,
        handler: hypervisor_validate_params,
    },
];

/// The names of instances some request is working on.
static BUSY: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
static FREED: Condvar = Condvar::new();

/// Held while one request works on an instance.
struct InstanceLock(String);

impl InstanceLock {
    fn take(name: &str) -> InstanceLock {
        let mut busy = BUSY.lock().unwrap_or_else(|e| e.into_inner());
        while busy.contains(name) {
            busy = FREED.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        busy.insert(name.to_string());
        InstanceLock(name.to_string())
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let mut busy = BUSY.lock().unwrap_or_else(|e| e.into_inner());
        busy.remove(&self.0);
        FREED.notify_all();
    }
}

/// 2.5.2's `GetInstanceList`: the running instances of these hypervisors.
fn running(ctx: &Context, hvs: &[&str]) -> Result<Vec<String>, RpcError> {
    let mut names = Vec::new();
    for hv in hvs {
        match hypervisor::list_instances(&ctx.paths, hv) {
            Ok(list) => names.extend(list),
            Err(e) => {
                return Err(RpcError::Failed(format!(
                    "Error enumerating instances (hypervisor {hv}): {e}"
                )))
            }
        }
    }
    Ok(names)
}

/// `instance_list [[hv_name, ...]]`.
fn instance_list(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (hvs,): (Vec<String>,) = decode(body)?;
    let hvs: Vec<&str> = hvs.iter().map(String::as_str).collect();
    Ok(Value::from(running(ctx, &hvs)?))
}

/// `instance_info [name, hv_name]`: `{}` when not running, else memory,
/// state and time.
fn instance_info(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (name, hv): (String, String) = decode(body)?;
    check_name(&name).map_err(backend)?;
    let hv = hypervisor::get(&ctx.paths, &hv).map_err(backend)?;
    let mut out = Map::new();
    if let Some(info) = hv.instance_info(&name).map_err(backend)? {
        out.insert("memory".into(), info.memory);
        out.insert("state".into(), Value::from(info.state));
        out.insert("time".into(), info.time);
    }
    Ok(Value::Object(out))
}

/// `all_instances_info [[hv_name, ...]]`: `{name: {memory, vcpus, state,
/// time}}`.
fn all_instances_info(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (hvs,): (Vec<String>,) = decode(body)?;
    let mut out = Map::new();
    for hv in hvs {
        let hv = hypervisor::get(&ctx.paths, &hv).map_err(backend)?;
        for info in hv.all_instances_info().map_err(backend)? {
            if let Some(Value::Object(old)) = out.get(&info.name) {
                if old.get("memory") != Some(&info.memory) || old.get("vcpus") != Some(&info.vcpus)
                {
                    return Err(RpcError::Failed(format!(
                        "Instance {} is running twice with different parameters",
                        info.name
                    )));
                }
            }
            let mut v = Map::new();
            v.insert("memory".into(), info.memory);
            v.insert("vcpus".into(), info.vcpus);
            v.insert("state".into(), Value::from(info.state));
            v.insert("time".into(), info.time);
            out.insert(info.name, Value::Object(v));
        }
    }
    Ok(Value::Object(out))
}

/// `instance_start [instance, startup_paused]`.
fn instance_start(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (inst, paused): (Instance, bool) = decode(body)?;
    check_name(&inst.name).map_err(backend)?;
    let _lock = InstanceLock::take(&inst.name);
    start(ctx, &inst, paused)?;
    Ok(Value::Null)
}

/// 2.5.2's `StartInstance`.
fn start(ctx: &Context, inst: &Instance, paused: bool) -> Result<(), RpcError> {
    if running(ctx, &[instance_hv(inst)])?.contains(&inst.name) {
        log::info!("Instance {} already running, not starting", inst.name);
        return Ok(());
    }
    let devices = gather_and_link(ctx, inst)
        .map_err(|msg| RpcError::Failed(format!("Block device error: {msg}")))?;
    let started = hypervisor::get(&ctx.paths, instance_hv(inst))
        .and_then(|hv| hv.start(inst, &devices, paused));
    started.map_err(|e| {
        remove_links(ctx, inst);
        RpcError::Failed(format!("Hypervisor error: {e}"))
    })
}

fn link_path(ctx: &Context, name: &str, idx: usize) -> PathBuf {
    ctx.paths
        .to_local(&disk_links_dir())
        .join(format!("{name}{DISK_SEPARATOR}{idx}"))
}

/// 2.5.2's `_GatherAndLinkBlockDevs`: each disk's device, linked under
/// the disk links directory.
fn gather_and_link(ctx: &Context, inst: &Instance) -> Result<Vec<BlockDevice>, String> {
    let dir = ctx.paths.to_local(&disk_links_dir());
    if !inst.disks.is_empty() {
        hypervisor::ensure_dir(&dir).map_err(|e| e.to_string())?;
    }
    let mut out = Vec::new();
    for (idx, disk) in inst.disks.iter().enumerate() {
        let device = crate::storage::disk_dev_path(&ctx.paths, disk)?;
        let link = link_path(ctx, &inst.name, idx);
        symlink_replacing(&device, &link)
            .map_err(|e| format!("Cannot create block device symlink: {e}"))?;
        out.push((disk.clone(), link));
    }
    Ok(out)
}

/// `symlink(target, link)`; an existing link to elsewhere (or another
/// file) is replaced, as 2.5.2's `_SymlinkBlockDev`.
fn symlink_replacing(target: &std::path::Path, link: &std::path::Path) -> std::io::Result<()> {
    match std::os::unix::fs::symlink(target, link) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if std::fs::read_link(link).ok().as_deref() != Some(target) {
                std::fs::remove_file(link)?;
                std::os::unix::fs::symlink(target, link)?;
            }
            Ok(())
        }
        other => other,
    }
}

/// 2.5.2's `_RemoveBlockDevLinks` (errors are only logged).
fn remove_links(ctx: &Context, inst: &Instance) {
    for idx in 0..inst.disks.len() {
        let link = link_path(ctx, &inst.name, idx);
        if link.is_symlink() {
            if let Err(e) = std::fs::remove_file(&link) {
                log::error!("Can't remove symlink '{}': {e}", link.display());
            }
        }
    }
}

/// A timeout in seconds from the master; negative counts as 0.
fn seconds(value: f64, what: &str) -> Result<Duration, RpcError> {
    Duration::try_from_secs_f64(value.max(0.0))
        .map_err(|_| RpcError::Failed(format!("Invalid {what}: {value:?}")))
}

/// `instance_shutdown [instance, timeout]`.
fn instance_shutdown(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (inst, timeout): (Instance, f64) = decode(body)?;
    check_name(&inst.name).map_err(backend)?;
    let timeout = seconds(timeout, "timeout")?;
    let _lock = InstanceLock::take(&inst.name);
    shutdown(ctx, &inst, timeout)?;
    Ok(Value::Null)
}

/// 2.5.2's `InstanceShutdown`: soft stops until `timeout`, then a forced
/// one; then the hypervisor's cleanup and the disk links go.
fn shutdown(ctx: &Context, inst: &Instance, timeout: Duration) -> Result<(), RpcError> {
    let name = &inst.name;
    let hv = hypervisor::get(&ctx.paths, instance_hv(inst)).map_err(backend)?;
    let listed = |hv: &dyn Hypervisor| -> Result<bool, RpcError> {
        Ok(hv.list_instances().map_err(backend)?.contains(name))
    };
    if !listed(hv.as_ref())? {
        log::info!("Instance {name} not running, doing nothing");
        return Ok(());
    }
    let started = Instant::now();
    let mut last_try: Option<Instant> = None;
    let mut stopped = false;
    loop {
        if !listed(hv.as_ref())? {
            stopped = true;
            break;
        }
        if last_try.map_or(true, |t| t.elapsed() >= RETRY_INTERVAL) {
            if let Err(e) = hv.stop(inst, false, last_try.is_some()) {
                if !listed(hv.as_ref())? {
                    stopped = true;
                    break;
                }
                return Err(RpcError::Failed(format!(
                    "Failed to stop instance {name}: {e}"
                )));
            }
            last_try = Some(Instant::now());
        }
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            break;
        }
        std::thread::sleep(POLL_INTERVAL.min(timeout - elapsed));
    }
    if !stopped {
        log::error!("Shutdown of '{name}' unsuccessful, forcing");
        if let Err(e) = hv.stop(inst, true, false) {
            if listed(hv.as_ref())? {
                return Err(RpcError::Failed(format!(
                    "Failed to force stop instance {name}: {e}"
                )));
            }
        }
        let deadline = Instant::now() + FORCE_GRACE;
        while listed(hv.as_ref())? {
            if Instant::now() >= deadline {
                return Err(RpcError::Failed(format!(
                    "Could not shutdown instance {name} even by destroy"
                )));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
    if let Err(e) = hv.cleanup(name) {
        log::warn!("Failed to execute post-shutdown cleanup step: {e}");
    }
    remove_links(ctx, inst);
    Ok(())
}

/// `instance_reboot [instance, reboot_type, shutdown_timeout]`.
fn instance_reboot(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (inst, reboot_type, timeout): (Instance, String, f64) = decode(body)?;
    check_name(&inst.name).map_err(backend)?;
    let timeout = seconds(timeout, "shutdown timeout")?;
    let _lock = InstanceLock::take(&inst.name);
    let name = &inst.name;
    if !running(ctx, &[instance_hv(&inst)])?.contains(name) {
        return Err(RpcError::Failed(format!(
            "Cannot reboot instance {name} that is not running"
        )));
    }
    let hv = hypervisor::get(&ctx.paths, instance_hv(&inst)).map_err(backend)?;
    match reboot_type.as_str() {
        "soft" => hv
            .reboot(&inst)
            .map_err(|e| RpcError::Failed(format!("Failed to soft reboot instance {name}: {e}")))?,
        "hard" => {
            shutdown(ctx, &inst, timeout)?;
            start(ctx, &inst, false)?;
        }
        other => {
            return Err(RpcError::Failed(format!(
                "Invalid reboot_type received: {other}"
            )))
        }
    }
    Ok(Value::Null)
}

/// `instance_migratable [instance]`: fails when it is not running; missing
/// disk links are only logged.
fn instance_migratable(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (inst,): (Instance,) = decode(body)?;
    let name = &inst.name;
    check_name(name).map_err(backend)?;
    let hv = hypervisor::get(&ctx.paths, instance_hv(&inst)).map_err(backend)?;
    if !hv.list_instances().map_err(backend)?.contains(name) {
        return Err(RpcError::Failed(format!("Instance {name} is not running")));
    }
    for idx in 0..inst.disks.len() {
        let link = link_path(ctx, name, idx);
        if !link.is_symlink() {
            log::warn!(
                "Instance {name} is missing symlink {} for disk {idx}",
                ctx.paths.to_wire(&link).display()
            );
        }
    }
    Ok(Value::Null)
}

/// `hypervisor_validate_params [hv_name, hvparams]`: the hypervisor's
/// error is the message, without a prefix.
fn hypervisor_validate_params(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (hv, params): (String, Map<String, Value>) = decode(body)?;
    hypervisor::validate_params(&ctx.paths, &hv, &params)
        .map_err(|e| RpcError::Failed(e.to_string()))?;
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scratch(tag: &str) -> (PathBuf, Context) {
        let root = std::env::temp_dir().join(format!("ganeti-inst-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("var/run/ganeti")).unwrap();
        (root.clone(), Context::for_root(&root, "node1.example.com"))
    }

    fn call(ctx: &Context, name: &str, body: &Value) -> Result<Value, String> {
        let p = super::super::find_procedure(&format!("/{name}")).unwrap();
        let body = serde_json::to_vec(body).unwrap();
        assert!(body.len() <= p.max_body);
        (p.handler)(ctx, &body).map_err(|e| e.to_string())
    }

    #[test]
    fn concurrent_requests_on_one_instance_take_turns() {
        use std::sync::atomic::{AtomicBool, Ordering};
        static RELEASED: AtomicBool = AtomicBool::new(false);
        let first = InstanceLock::take("inst-lock-test");
        // Whenever the waiter gets to run (a loaded machine may start it
        // late), it must not get the lock before the first holder let go.
        let waiter = std::thread::spawn(|| {
            let _second = InstanceLock::take("inst-lock-test");
            RELEASED.load(Ordering::SeqCst)
        });
        // Another instance is not held up meanwhile.
        drop(InstanceLock::take("inst-lock-other"));
        std::thread::sleep(Duration::from_millis(200));
        RELEASED.store(true, Ordering::SeqCst);
        drop(first);
        assert!(waiter.join().unwrap(), "the lock was taken twice");
        assert!(!BUSY.lock().unwrap().contains("inst-lock-test"));
    }

    #[test]
    fn fake_shutdown_is_quick_and_timeouts_are_checked() {
        let (root, ctx) = scratch("shutdown");
        let inst = json!({"name": "i1", "hypervisor": "fake",
            "beparams": {"memory": 64, "vcpus": 1}, "disks": [], "nics": []});
        assert_eq!(
            call(&ctx, "instance_start", &json!([inst, false])),
            Ok(Value::Null)
        );
        let t = Instant::now();
        assert_eq!(
            call(&ctx, "instance_shutdown", &json!([inst, 120])),
            Ok(Value::Null)
        );
        assert!(t.elapsed() < Duration::from_secs(2));
        let e = call(&ctx, "instance_shutdown", &json!([inst, 1e300])).unwrap_err();
        assert_eq!(e, "Invalid timeout: 1e300");
        let e = call(&ctx, "instance_shutdown", &json!([inst, "soon"])).unwrap_err();
        assert!(e.contains("invalid arguments"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn instance_body_limit() {
        let p = super::super::find_procedure("/instance_start").unwrap();
        assert_eq!(p.max_body, INSTANCE_BODY);
        // 4096 tags of 128 characters fit, with room for the rest.
        let tags: Vec<String> = (0..4096).map(|i| format!("{i:0128}")).collect();
        let inst = json!({"name": "i1", "hypervisor": "fake", "tags": tags});
        let body = serde_json::to_vec(&json!([inst, false])).unwrap();
        assert!(body.len() < INSTANCE_BODY, "{}", body.len());
    }
}
