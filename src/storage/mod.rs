//! TEMP storage shim (helper "os"): a minimal `disk_dev_path` until the
//! storage helper's module is merged. The lead drops this commit.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use crate::objects::{Disk, LD_FILE, LD_LV};
use crate::paths::{Paths, FILE_STORAGE_DIR, SHARED_FILE_STORAGE_DIR};

/// The device path of a disk (`file`: the file, under the root; `lvm`:
/// `/dev/<vg>/<lv>`); Err for other types, hostile ids, missing devices.
pub fn disk_dev_path(paths: &Paths, disk: &Disk) -> Result<PathBuf, String> {
    let not_set_up = || format!("Block device '{}' is not set up", disk.dev_type);
    let path = match disk.dev_type.as_str() {
        LD_FILE => {
            let file = disk.logical_str(1).ok_or_else(not_set_up)?;
            let wire = [FILE_STORAGE_DIR, SHARED_FILE_STORAGE_DIR]
                .iter()
                .find_map(|base| crate::fsutil::below_dir(base, file))
                .ok_or_else(|| format!("File disk '{file}' is outside the file storage"))?;
            paths.to_local(&wire.to_string_lossy())
        }
        LD_LV => {
            let (vg, lv) = (disk.logical_str(0), disk.logical_str(1));
            let (Some(vg), Some(lv)) = (vg, lv) else {
                return Err(not_set_up());
            };
            if [vg, lv]
                .iter()
                .any(|n| n.is_empty() || n.contains('/') || n.contains('\0') || n.starts_with('.'))
            {
                return Err(format!("Invalid logical volume '{vg}/{lv}'"));
            }
            PathBuf::from(format!("/dev/{vg}/{lv}"))
        }
        _ => return Err(not_set_up()),
    };
    match path.symlink_metadata() {
        Ok(m) if m.is_file() || disk.dev_type == LD_LV => Ok(path),
        _ => Err(not_set_up()),
    }
}
