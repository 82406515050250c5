//! TEMP storage shim (helper "hv"): a minimal `disk_dev_path` so that the
//! instance procedures build before the storage helper's module is merged.
//! The lead drops this commit at merge.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use crate::fsutil;
use crate::objects::{Disk, LD_FILE, LD_LV};
use crate::paths::{Paths, FILE_STORAGE_DIR, SHARED_FILE_STORAGE_DIR};

/// The device path of a disk (see CONTRACTS.md "storage").
pub fn disk_dev_path(paths: &Paths, disk: &Disk) -> Result<PathBuf, String> {
    let not_set_up = || format!("Block device '{}' is not set up.", describe(disk));
    match disk.dev_type.as_str() {
        LD_FILE => {
            let wire = disk.logical_str(1).ok_or_else(not_set_up)?;
            let inside = [FILE_STORAGE_DIR, SHARED_FILE_STORAGE_DIR]
                .iter()
                .find_map(|base| fsutil::below_dir(base, wire));
            let Some(norm) = inside else {
                return Err(format!(
                    "File storage path '{wire}' is outside the file storage directories"
                ));
            };
            let local = paths.to_local(&norm.to_string_lossy());
            match std::fs::symlink_metadata(&local) {
                Ok(m) if m.is_file() => Ok(local),
                _ => Err(not_set_up()),
            }
        }
        LD_LV => {
            let (vg, lv) = (disk.logical_str(0), disk.logical_str(1));
            let ok =
                |s: &str| !s.is_empty() && !s.starts_with(['.', '-']) && !s.contains(['/', '\0']);
            match (vg, lv) {
                (Some(vg), Some(lv)) if ok(vg) && ok(lv) => {
                    let p = PathBuf::from(format!("/dev/{vg}/{lv}"));
                    if p.exists() {
                        Ok(p)
                    } else {
                        Err(not_set_up())
                    }
                }
                _ => Err(format!("Invalid logical volume id of {}", describe(disk))),
            }
        }
        other => Err(format!("Unsupported disk type '{other}'")),
    }
}

fn describe(disk: &Disk) -> String {
    format!(
        "{}:{}",
        disk.dev_type,
        serde_json::to_string(&disk.logical_id).unwrap_or_default()
    )
}
