//! Storage and LVM listing procedures (spec 4.6 and `node_volumes`,
//! `bdev_sizes` of 4.2): `lv_list`, `vg_list`, `node_volumes`,
//! `bdev_sizes`, `storage_list`, `storage_modify`, `storage_execute`.
//!
//! Argument shapes, results and messages are 2.5.2's. The LVM tools come
//! from the daemon's `PATH`. Differences, on the safe side: VG names given
//! to `lv_list` must be valid LVM names (2.5.2 passed anything to `lvs`,
//! options included); `bdev_sizes` takes only paths that are below `/dev`
//! after normalisation (2.5.2: a string prefix test); the storage unit
//! rules of `crate::storage::units`.
#![forbid(unsafe_code)]

use std::os::unix::fs::FileTypeExt;

use serde_json::{Map, Value};

use super::{backend, decode, Context, Procedure, RpcError, SMALL_BODY};
use crate::fsutil;
use crate::storage::units::{Unit, UnitError};
use crate::storage::{self, lvm, BdevError};

pub const PROCEDURES: &[Procedure] = &[
    Procedure {
        name: "lv_list",
        max_body: SMALL_BODY,
        handler: lv_list,
    },
    Procedure {
        name: "vg_list",
        max_body: SMALL_BODY,
        handler: vg_list,
    },
    Procedure {
        name: "node_volumes",
        max_body: SMALL_BODY,
        handler: node_volumes,
    },
    Procedure {
        name: "bdev_sizes",
        max_body: SMALL_BODY,
        handler: bdev_sizes,
    },
    Procedure {
        name: "storage_list",
        max_body: SMALL_BODY,
        handler: storage_list,
    },
    Procedure {
        name: "storage_modify",
        max_body: SMALL_BODY,
        handler: storage_modify,
    },
    Procedure {
        name: "storage_execute",
        max_body: SMALL_BODY,
        handler: storage_execute,
    },
];

/// `_Fail` texts are sent as they are (refusals too).
fn bdev_failed(e: BdevError) -> RpcError {
    match e {
        BdevError::Refused(m) | BdevError::Failed(m) => RpcError::Failed(m),
        BdevError::Other(m) => backend(m),
    }
}

/// Storage errors were plain exceptions in 2.5.2.
fn unit_failed(e: UnitError) -> RpcError {
    match e {
        UnitError::Refused(m) => RpcError::Failed(m),
        UnitError::Failed(m) => backend(m),
    }
}

/// `lv_list [[vg, ...]]` (`[]` or null: all VGs):
/// `{"vg/lv": [size, inactive, online]}`.
fn lv_list(_ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (vgs,): (Option<Vec<String>>,) = decode(body)?;
    lvm::volume_list(&vgs.unwrap_or_default())
        .map(Value::Object)
        .map_err(bdev_failed)
}

/// `vg_list []`: `{vg: MiB}` (`{}` when `vgs` fails).
fn vg_list(_ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let _: Value = decode(body)?;
    Ok(vg_map())
}

/// `{vg: MiB}` as JSON (also node_verify's `vglist`).
pub(crate) fn vg_map() -> Value {
    Value::Object(
        lvm::list_volume_groups()
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect(),
    )
}

/// `node_volumes []`: one `{name, size, dev, vg}` per LV and PV.
fn node_volumes(_ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let _: Value = decode(body)?;
    lvm::node_volumes().map(Value::from).map_err(bdev_failed)
}

/// `bdev_sizes [[path, ...]]`: `{path: MiB}` of the block devices among
/// the paths below `/dev`; others are skipped.
fn bdev_sizes(_ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (paths,): (Vec<String>,) = decode(body)?;
    let mut out = Map::new();
    for path in paths {
        let Some(norm) = fsutil::below_dir("/dev", &path) else {
            continue;
        };
        let meta = match std::fs::metadata(&norm) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("Error stat()'ing device {path}: {e}");
                continue;
            }
        };
        if !meta.file_type().is_block_device() {
            continue;
        }
        match storage::blockdev_size(&norm.to_string_lossy()) {
            Ok(bytes) => {
                out.insert(path, Value::from(bytes / (1024 * 1024)));
            }
            Err(e) => log::warn!("Cannot get size for block device {path}: {e}"),
        }
    }
    Ok(Value::Object(out))
}

/// `storage_list [su_name, su_args, name|null, fields]`: rows of values.
fn storage_list(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (su_name, su_args, name, fields): (String, Vec<Value>, Option<String>, Vec<String>) =
        decode(body)?;
    let unit = Unit::new(&su_name, &su_args).map_err(unit_failed)?;
    unit.list(&ctx.paths, name.as_deref(), &fields)
        .map(Value::from)
        .map_err(unit_failed)
}

/// `storage_modify [su_name, su_args, name, changes]`.
fn storage_modify(_ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (su_name, su_args, name, changes): (String, Vec<Value>, String, Map<String, Value>) =
        decode(body)?;
    let unit = Unit::new(&su_name, &su_args).map_err(unit_failed)?;
    unit.modify(&name, &changes).map_err(unit_failed)?;
    Ok(Value::Null)
}

/// `storage_execute [su_name, su_args, name, op]`.
fn storage_execute(_ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (su_name, su_args, name, op): (String, Vec<Value>, String, String) = decode(body)?;
    let unit = Unit::new(&su_name, &su_args).map_err(unit_failed)?;
    unit.execute(&name, &op).map_err(unit_failed)?;
    Ok(Value::Null)
}
