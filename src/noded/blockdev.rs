//! Block device procedures (spec 4.8) for `file` and `lvm` disks:
//! `blockdev_create`, `blockdev_remove`, `blockdev_rename`,
//! `blockdev_assemble`, `blockdev_shutdown`, `blockdev_find`,
//! `blockdev_getsize`, `blockdev_grow`, `blockdev_snapshot`,
//! `blockdev_wipe`, `blockdev_close`, `blockdev_pause_resume_sync`,
//! `blockdev_getmirrorstatus`, `blockdev_getmirrorstatus_multi`.
//!
//! Argument shapes, results and messages are 2.5.2's (`backend.py`,
//! `bdev.py`). Not provided: `blockdev_addchildren` and
//! `blockdev_removechildren` (DRBD only), `blockdev_export` (a dd-over-ssh
//! copy used only by `gnt-instance move`, gone in 3.0); DRBD and adopted
//! `blockdev` disks are refused (see `crate::storage`).
//!
//! Differences from 2.5.2, on the safe side: every disk of a call is checked
//! first (`storage::Device::from_disk`) and a refused one fails the whole
//! call with its own message before anything is touched (2.5.2 checked
//! nothing; where it turned a bad id into "not found", as in
//! `blockdev_remove`, the call now fails). Instance names used for the
//! `<instance>:<idx>` links must be plain names. `blockdev_grow` refuses a
//! negative amount. `blockdev_snapshot` of a non-LVM disk names its
//! `physical_id` (2.5.2 failed with an AttributeError there).
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::{backend, decode, os_error_text, Context, Procedure, RpcError, SMALL_BODY};
use crate::objects::Disk;
use crate::storage::{self, describe, py_tuple, BdevError, Device};

/// Body limit of `blockdev_getmirrorstatus_multi`: the master sends the
/// disks of every node of the cluster to each node.
pub const MULTI_BODY: usize = 4 * 1024 * 1024;
/// How long one wipe (`dd`, at most 1 GiB per call from a 2.5.2 master)
/// may take.
const WIPE_TIMEOUT: Duration = Duration::from_secs(3600);
/// `constants.WIPE_BLOCK_SIZE`.
const WIPE_BLOCK_SIZE: u64 = 1024 * 1024;

pub const PROCEDURES: &[Procedure] = &[
    Procedure {
        name: "blockdev_create",
        max_body: SMALL_BODY,
        handler: blockdev_create,
    },
    Procedure {
        name: "blockdev_remove",
        max_body: SMALL_BODY,
        handler: blockdev_remove,
    },
    Procedure {
        name: "blockdev_rename",
        max_body: SMALL_BODY,
        handler: blockdev_rename,
    },
    Procedure {
        name: "blockdev_assemble",
        max_body: SMALL_BODY,
        handler: blockdev_assemble,
    },
    Procedure {
        name: "blockdev_shutdown",
        max_body: SMALL_BODY,
        handler: blockdev_shutdown,
    },
    Procedure {
        name: "blockdev_find",
        max_body: SMALL_BODY,
        handler: blockdev_find,
    },
    Procedure {
        name: "blockdev_getsize",
        max_body: SMALL_BODY,
        handler: blockdev_getsize,
    },
    Procedure {
        name: "blockdev_grow",
        max_body: SMALL_BODY,
        handler: blockdev_grow,
    },
    Procedure {
        name: "blockdev_snapshot",
        max_body: SMALL_BODY,
        handler: blockdev_snapshot,
    },
    Procedure {
        name: "blockdev_wipe",
        max_body: SMALL_BODY,
        handler: blockdev_wipe,
    },
    Procedure {
        name: "blockdev_close",
        max_body: SMALL_BODY,
        handler: blockdev_close,
    },
    Procedure {
        name: "blockdev_pause_resume_sync",
        max_body: SMALL_BODY,
        handler: blockdev_pause_resume_sync,
    },
    Procedure {
        name: "blockdev_getmirrorstatus",
        max_body: SMALL_BODY,
        handler: blockdev_getmirrorstatus,
    },
    Procedure {
        name: "blockdev_getmirrorstatus_multi",
        max_body: MULTI_BODY,
        handler: blockdev_getmirrorstatus_multi,
    },
];

/// A refusal is sent as is; a device error after `prefix` (2.5.2's
/// `_Fail("<prefix>%s", err)`); another error as an unexpected one.
fn failed(prefix: &str) -> impl Fn(BdevError) -> RpcError + '_ {
    move |e| match e {
        BdevError::Refused(m) => RpcError::Failed(m),
        BdevError::Failed(m) => RpcError::Failed(format!("{prefix}{m}")),
        BdevError::Other(m) => backend(m),
    }
}

/// An error 2.5.2 did not catch (it reached the master as an unexpected
/// one); refusals are sent as they are.
fn uncaught(e: BdevError) -> RpcError {
    match e {
        BdevError::Refused(m) => RpcError::Failed(m),
        BdevError::Failed(m) | BdevError::Other(m) => backend(m),
    }
}

/// Checks every disk before anything is done.
fn devices(ctx: &Context, disks: &[Disk]) -> Result<Vec<Device>, RpcError> {
    disks
        .iter()
        .map(|d| Device::from_disk(&ctx.paths, d).map_err(uncaught))
        .collect()
}

fn device(ctx: &Context, disk: &Disk) -> Result<Device, RpcError> {
    Device::from_disk(&ctx.paths, disk).map_err(uncaught)
}

/// `blockdev_create [disk, size, owner, on_primary, info]`: the unique id.
fn blockdev_create(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (disk, _size, owner, on_primary, info): (Disk, Value, String, bool, String) = decode(body)?;
    storage::check_instance_name(&owner).map_err(uncaught)?;
    let mut dev = device(ctx, &disk)?;
    dev.create()
        .map_err(failed("Can't create block device: "))?;
    dev.attach();
    let is_lv = matches!(dev, Device::Lv(_));
    if on_primary || is_lv {
        dev.assemble().map_err(failed(
            "Can't assemble device after creation, unusual event: ",
        ))?;
        storage::update_cache(
            &ctx.paths,
            &dev.dev_path(),
            &owner,
            on_primary,
            disk.iv_name.as_deref(),
        );
    }
    dev.set_info(&info).map_err(uncaught)?;
    Ok(Value::from(disk.physical_id.unwrap_or_default()))
}

/// `blockdev_remove [disk]`: a missing device is a success.
fn blockdev_remove(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (disk,): (Disk,) = decode(body)?;
    let mut dev = device(ctx, &disk)?;
    if dev.attach() {
        dev.remove().map_err(|e| RpcError::Failed(e.to_string()))?;
        storage::remove_cache(&ctx.paths, &dev.dev_path());
    } else {
        log::info!("Can't attach to device {} in remove", describe(&disk));
    }
    Ok(Value::Null)
}

/// `blockdev_rename [[disk, new_unique_id], ...]`.
fn blockdev_rename(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let pairs: Vec<(Disk, Value)> = decode(body)?;
    let mut devs = Vec::with_capacity(pairs.len());
    for (disk, new_id) in &pairs {
        let dev = device(ctx, disk)?;
        dev.check_new_id(new_id).map_err(uncaught)?;
        devs.push(dev);
    }
    let mut msgs = Vec::new();
    for ((disk, new_id), mut dev) in pairs.iter().zip(devs) {
        if !dev.attach() {
            msgs.push(format!("Can't find device {} in rename", describe(disk)));
            continue;
        }
        let old_path = dev.dev_path();
        let shown = dev.describe();
        match dev.rename(new_id) {
            Ok(()) => {
                if dev.dev_path() != old_path {
                    storage::remove_cache(&ctx.paths, &old_path);
                }
            }
            Err(e) => {
                let m = format!(
                    "Can't rename device '{shown}' to '{}': {e}",
                    storage::py_repr(new_id)
                );
                log::error!("{m}");
                msgs.push(m);
            }
        }
    }
    if msgs.is_empty() {
        Ok(Value::Null)
    } else {
        Err(RpcError::Failed(msgs.join("; ")))
    }
}

/// `blockdev_assemble [disk, owner, on_primary, idx]`: the device path, or
/// `true` when nothing was assembled (a file disk on a secondary node).
fn blockdev_assemble(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (disk, owner, on_primary, idx): (Disk, String, bool, u64) = decode(body)?;
    storage::check_instance_name(&owner).map_err(uncaught)?;
    let mut dev = device(ctx, &disk)?;
    if !(on_primary || matches!(dev, Device::Lv(_))) {
        return Ok(Value::Bool(true));
    }
    dev.attach();
    dev.assemble()
        .map_err(failed("Error while assembling disk: "))?;
    storage::update_cache(
        &ctx.paths,
        &dev.dev_path(),
        &owner,
        on_primary,
        disk.iv_name.as_deref(),
    );
    if on_primary {
        storage::symlink_disk(&ctx.paths, &owner, idx, &dev.local_path()).map_err(|e| {
            RpcError::Failed(format!(
                "Error while symlinking disk: {}",
                os_error_text(&e, None)
            ))
        })?;
    }
    Ok(Value::from(dev.dev_path()))
}

/// `blockdev_shutdown [disk]`: nothing to do for files and LVs but the
/// cache entry.
fn blockdev_shutdown(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (disk,): (Disk,) = decode(body)?;
    let mut dev = device(ctx, &disk)?;
    if dev.attach() {
        storage::remove_cache(&ctx.paths, &dev.dev_path());
    }
    Ok(Value::Null)
}

/// `blockdev_find [disk]`: a BlockDevStatus dict, or null.
fn blockdev_find(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (disk,): (Disk,) = decode(body)?;
    let mut dev = device(ctx, &disk)?;
    if !dev.attach() {
        return Ok(Value::Null);
    }
    Ok(dev.status().to_value())
}

/// `blockdev_getsize [[disk, ...]]`: bytes, or null for a missing disk.
fn blockdev_getsize(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (disks,): (Vec<Disk>,) = decode(body)?;
    let mut out = Vec::with_capacity(disks.len());
    for mut dev in devices(ctx, &disks)? {
        if dev.attach() {
            out.push(Value::from(dev.actual_size().map_err(uncaught)?));
        } else {
            out.push(Value::Null);
        }
    }
    Ok(Value::from(out))
}

/// `blockdev_grow [disk, amount_mib, dryrun]`.
fn blockdev_grow(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (disk, amount, dryrun): (Disk, i64, bool) = decode(body)?;
    let mut dev = device(ctx, &disk)?;
    if amount < 0 {
        return Err(backend("Cannot Grow with a negative amount"));
    }
    if !dev.attach() {
        return Err(RpcError::Failed(format!(
            "Cannot find block device {}",
            describe(&disk)
        )));
    }
    dev.grow(amount, dryrun)
        .map_err(failed("Failed to grow block device: "))?;
    Ok(Value::Null)
}

/// `blockdev_snapshot [disk]`: `[vg, "<lv>.snap"]` (LVs only).
fn blockdev_snapshot(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (disk,): (Disk,) = decode(body)?;
    let mut dev = device(ctx, &disk)?;
    let Device::Lv(lv) = &mut dev else {
        return Err(RpcError::Failed(format!(
            "Cannot snapshot non-lvm block device '{}' of type '{}'",
            py_tuple(disk.physical_id.as_deref().unwrap_or_default()),
            disk.dev_type
        )));
    };
    let size = disk
        .size
        .ok_or_else(|| RpcError::Failed("Invalid disk size for a snapshot".into()))?;
    if !lv.attach() {
        return Err(RpcError::Failed(format!(
            "Cannot find block device {}",
            describe(&disk)
        )));
    }
    let (vg, snap) = lv.snapshot(size).map_err(uncaught)?;
    Ok(Value::from(vec![vg, snap]))
}

/// `blockdev_wipe [disk, offset_mib, size_mib]`: zeroes with `dd`.
fn blockdev_wipe(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (disk, offset, size): (Disk, u64, u64) = decode(body)?;
    let mut dev = device(ctx, &disk)?;
    if !dev.attach() {
        return Err(RpcError::Failed(format!(
            "Cannot execute wipe for device {}: device not found",
            disk.iv_name.as_deref().unwrap_or("None")
        )));
    }
    let disk_size = dev.size();
    if disk_size.map_or(true, |s| offset > s) {
        return Err(RpcError::Failed("Offset is bigger than device size".into()));
    }
    if disk_size.map_or(true, |s| offset.saturating_add(size) > s) {
        return Err(RpcError::Failed(
            "The provided offset and size to wipe is bigger than device size".into(),
        ));
    }
    let is_file = matches!(dev, Device::File(_));
    let seek = format!("seek={offset}");
    let bs = format!("bs={WIPE_BLOCK_SIZE}");
    let of = format!("of={}", dev.local_path().display());
    let count = format!("count={size}");
    let mut argv = vec!["dd", "if=/dev/zero", seek.as_str(), bs.as_str()];
    if is_file {
        // Never follow a symlink, never cut the file at the chunk's end.
        argv.extend([
            "oflag=direct,nofollow",
            of.as_str(),
            count.as_str(),
            "conv=notrunc",
        ]);
    } else {
        argv.extend(["oflag=direct", of.as_str(), count.as_str()]);
    }
    let r = storage::run(&argv, WIPE_TIMEOUT);
    if let Some(reason) = &r.fail_reason {
        return Err(RpcError::Failed(format!(
            "Wipe command '{}' exited with error: {reason}; output: {}",
            storage::shell_quote_args(&argv),
            r.output()
        )));
    }
    Ok(Value::Null)
}

/// `blockdev_close [instance_name, [disk, ...]]`: nothing to close for
/// files and LVs; the `<instance>:<idx>` links go.
fn blockdev_close(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (instance, disks): (String, Vec<Disk>) = decode(body)?;
    if !instance.is_empty() {
        storage::check_instance_name(&instance).map_err(uncaught)?;
    }
    for (disk, mut dev) in disks.iter().zip(devices(ctx, &disks)?) {
        if !dev.attach() {
            return Err(RpcError::Failed(format!(
                "Can't find device {}",
                describe(disk)
            )));
        }
    }
    if !instance.is_empty() {
        storage::remove_disk_links(&ctx.paths, &instance, disks.len());
    }
    Ok(Value::Null)
}

/// `blockdev_pause_resume_sync [[disk, ...], pause]`: files and LVs do not
/// sync, so every found disk succeeds.
fn blockdev_pause_resume_sync(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (disks, _pause): (Vec<Disk>, bool) = decode(body)?;
    let mut out = Vec::with_capacity(disks.len());
    for (disk, mut dev) in disks.iter().zip(devices(ctx, &disks)?) {
        if dev.attach() {
            out.push(Value::from(vec![Value::Bool(true), Value::Null]));
        } else {
            out.push(Value::from(vec![
                Value::Bool(false),
                Value::from(format!(
                    "Cannot change sync for device {}: device not found",
                    disk.iv_name.as_deref().unwrap_or("None")
                )),
            ]));
        }
    }
    Ok(Value::from(out))
}

/// `blockdev_getmirrorstatus [disk, disk, ...]` (a flat list).
fn blockdev_getmirrorstatus(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let disks: Vec<Disk> = decode(body)?;
    let mut out = Vec::with_capacity(disks.len());
    for (disk, mut dev) in disks.iter().zip(devices(ctx, &disks)?) {
        if !dev.attach() {
            return Err(RpcError::Failed(format!(
                "Can't find device {}",
                describe(disk)
            )));
        }
        out.push(dev.status().to_value());
    }
    Ok(Value::from(out))
}

/// `blockdev_getmirrorstatus_multi [{node: [disk, ...]}]`: this node's
/// disks, each `[true, status]` or `[false, message]`.
fn blockdev_getmirrorstatus_multi(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (mut by_node,): (HashMap<String, Vec<Disk>>,) = decode(body)?;
    let disks = by_node.remove(ctx.node_name()).unwrap_or_default();
    let mut out = Vec::with_capacity(disks.len());
    for (disk, mut dev) in disks.iter().zip(devices(ctx, &disks)?) {
        let item = if dev.attach() {
            vec![Value::Bool(true), dev.status().to_value()]
        } else {
            vec![
                Value::Bool(false),
                Value::from(format!("Can't find device {}", describe(disk))),
            ]
        };
        out.push(Value::from(item));
    }
    Ok(Value::from(out))
}
