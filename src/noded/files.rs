//! Files the master pushes to nodes: `upload_file` (a fixed list of
//! cluster files) and `write_ssconf_files` (the `ssconf_<key>` files).
//!
//! Supported: 2.5.2's argument shapes, target list and messages, both data
//! encodings, owner names mapped through the Ganeti daemon users and groups
//! only. Differences from 2.5.2: a symbolic link at an upload target is
//! refused instead of followed; `write_ssconf_files` checks every key and
//! size before writing anything (2.5.2 had already written the files that
//! came before a bad key).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::master::python_io_error;
use super::{backend, decode, Context, Procedure, RpcError};
use crate::constants::{GANETI_GROUPS, GANETI_USERS};
use crate::fsutil::{self, FileLock, FileMeta};
use crate::rpc::blob;
use crate::ssconf::MAX_SSCONF_SIZE;
use crate::sys;

/// Largest `upload_file` body. The biggest file a 2.5.2 master uploads is
/// `config.data`, a few MiB even for thousands of instances, and it travels
/// zlib-compressed (JSON compresses 5-10x) in base64 (+33%): 8 MiB leaves
/// ample room while bounding what one worker holds in locked memory.
pub const MAX_UPLOAD_BODY: usize = 8 * 1024 * 1024;
/// Largest uploaded file after decompression: bounds a zlib bomb hidden in
/// a small body, and is still several times any real `config.data`.
pub const MAX_UPLOAD_DATA: usize = 16 * 1024 * 1024;
/// Largest `write_ssconf_files` body: 21 keys of at most 128 KiB each is
/// 2.7 MiB; JSON escaping of newline-separated lists adds about 10%.
pub const MAX_SSCONF_BODY: usize = 4 * 1024 * 1024;
/// How long `write_ssconf_files` waits for the ssconf lock (2.5.2's
/// `SSCONF_LOCK_TIMEOUT`).
pub const SSCONF_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Mode of the ssconf files (`SS_FILE_PERMS`).
const SSCONF_MODE: u32 = 0o444;

pub const PROCEDURES: &[Procedure] = &[
    Procedure {
        name: "upload_file",
        max_body: MAX_UPLOAD_BODY,
        handler: upload_file,
    },
    Procedure {
        name: "write_ssconf_files",
        max_body: MAX_SSCONF_BODY,
        handler: write_ssconf_files,
    },
];

/// The files a master may upload (2.5.2's `_ALLOWED_UPLOAD_FILES`: the
/// cluster files plus every hypervisor's ancillary files), compared as
/// strings with the path on the wire.
pub const UPLOAD_TARGETS: [&str; 11] = [
    "/var/lib/ganeti/config.data",
    "/etc/hosts",
    "/var/lib/ganeti/known_hosts",
    "/etc/ganeti/vnc-cluster-password",
    "/var/lib/ganeti/rapi.pem",
    "/var/lib/ganeti/rapi/users",
    "/var/lib/ganeti/hmac.key",
    "/var/lib/ganeti/cluster-domain-secret",
    "/etc/xen/xend-config.sxp",
    "/etc/xen/scripts/vif-bridge",
    "/etc/ganeti/kvm-vif-bridge",
];

/// The ssconf keys of 2.5.2 (`_VALID_KEYS`).
pub const SSCONF_KEYS: [&str; 21] = [
    "cluster_name",
    "cluster_tags",
    "file_storage_dir",
    "shared_file_storage_dir",
    "master_candidates",
    "master_candidates_ips",
    "master_ip",
    "master_netdev",
    "master_node",
    "node_list",
    "node_primary_ips",
    "node_secondary_ips",
    "offline_nodes",
    "online_nodes",
    "primary_ip_family",
    "instance_list",
    "release_version",
    "hypervisor_list",
    "maintain_node_health",
    "uid_pool",
    "nodegroups",
];

/// `upload_file`: `[file_name, [encoding, data], mode, user, group, atime,
/// mtime]`. Only the fixed targets; checks in 2.5.2's order; the file is
/// locked, then replaced atomically with the given mode, owner and times.
fn upload_file(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    type Args = (String, Value, u32, Value, Value, f64, f64);
    let (file_name, data, mode, user, group, atime, mtime): Args = decode(body)?;
    if !file_name.starts_with('/') {
        return Err(RpcError::Failed(format!(
            "Filename passed to UploadFile is not absolute: '{file_name}'"
        )));
    }
    if !UPLOAD_TARGETS.contains(&file_name.as_str()) {
        return Err(RpcError::Failed(format!(
            "Filename passed to UploadFile not in allowed upload targets: '{file_name}'"
        )));
    }
    let content = blob::decode(&data, MAX_UPLOAD_DATA).map_err(backend)?;
    let (Value::String(user), Value::String(group)) = (&user, &group) else {
        return Err(RpcError::Failed("Invalid username/groupname type".into()));
    };
    let uid = lookup_user(user)?;
    let gid = lookup_group(group)?;
    let times = (epoch(atime, "atime")?, epoch(mtime, "mtime")?);
    let meta = FileMeta {
        // 2.5.2 chmods only when the mode is non-zero; the type bits of the
        // master's st_mode are dropped.
        mode: (mode & 0o7777 != 0).then_some(mode & 0o7777),
        owner: Some((uid, gid)),
        times: Some(times),
    };
    let local = ctx.paths.to_local(&file_name);
    safe_write(&local, &file_name, &content, &meta).map_err(|e| match e.raw_os_error() {
        Some(_) => backend(python_io_error(&ctx.paths, &local, &e)),
        None => backend(e),
    })?;
    log::info!("Uploaded {file_name} ({} bytes)", content.len());
    Ok(Value::Null)
}

/// A Ganeti daemon user name to its uid (2.5.2's `LookupUser`).
fn lookup_user(name: &str) -> Result<u32, RpcError> {
    let unknown = || backend(format!("Unknown Ganeti user '{name}'"));
    if !GANETI_USERS.contains(&name) {
        return Err(unknown());
    }
    match sys::getpwnam(name) {
        Ok(Some(u)) => Ok(u.uid),
        Ok(None) => Err(unknown()),
        Err(e) => Err(backend(format!("Cannot look up user '{name}': {e}"))),
    }
}

/// A Ganeti group name to its gid (2.5.2's `LookupGroup`).
fn lookup_group(name: &str) -> Result<u32, RpcError> {
    let unknown = || backend(format!("Unknown Ganeti group '{name}'"));
    if !GANETI_GROUPS.contains(&name) {
        return Err(unknown());
    }
    match sys::getgrnam(name) {
        Ok(Some(gid)) => Ok(gid),
        Ok(None) => Err(unknown()),
        Err(e) => Err(backend(format!("Cannot look up group '{name}': {e}"))),
    }
}

/// Float epoch seconds (as Python's `os.utime` takes them) to a time.
fn epoch(secs: f64, what: &str) -> Result<SystemTime, RpcError> {
    let invalid = || backend(format!("Invalid {what} {secs}"));
    let d = Duration::try_from_secs_f64(secs.abs()).map_err(|_| invalid())?;
    if secs >= 0.0 {
        SystemTime::UNIX_EPOCH.checked_add(d)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(d)
    }
    .ok_or_else(invalid)
}

/// 2.5.2's `SafeWriteFile`: open (creating it empty) and lock the target
/// without waiting, then replace it atomically. A symbolic link at the
/// target is refused (`O_NOFOLLOW`) rather than followed. A target this
/// call created is removed again if the write fails.
fn safe_write(path: &Path, wire: &str, data: &[u8], meta: &FileMeta) -> std::io::Result<()> {
    let existed = path.symlink_metadata().is_ok();
    let file = OpenOptions::new()
        .read(true)
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other(format!("Refusing to write {wire}: it is a symbolic link"))
            } else {
                e
            }
        })?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other(format!(
            "Refusing to write {wire}: not a regular file"
        )));
    }
    if !sys::flock_exclusive_nb(&file)? {
        return Err(std::io::Error::other("File already locked"));
    }
    let result = fsutil::write_atomic(path, data, meta);
    // Remove the empty file this call created for the lock, but only while
    // it is still there: after the rename (a failed directory fsync) the
    // path holds the new contents.
    if result.is_err() && !existed {
        use std::os::unix::fs::MetadataExt;
        let ours = file.metadata().map(|m| (m.dev(), m.ino())).ok();
        let now = path.symlink_metadata().map(|m| (m.dev(), m.ino())).ok();
        if ours.is_some() && ours == now {
            let _ = std::fs::remove_file(path);
        }
    }
    drop(file);
    result
}

/// `write_ssconf_files`: `[{key: value}]`. Every key must be one of the 21
/// ssconf keys and every value fit in 128 KiB (with its newline) before
/// anything is written; then, under the ssconf lock, each file is replaced
/// atomically with mode 0444.
fn write_ssconf_files(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (values,): (BTreeMap<String, String>,) = decode(body)?;
    let mut files = Vec::with_capacity(values.len());
    for (key, mut value) in values {
        if !SSCONF_KEYS.contains(&key.as_str()) {
            return Err(backend(format!(
                "Invalid key requested from SSConf: '{key}'"
            )));
        }
        if !value.is_empty() && !value.ends_with('\n') {
            value.push('\n');
        }
        if value.len() as u64 > MAX_SSCONF_SIZE {
            return Err(backend(format!("ssconf file {key} above maximum size")));
        }
        files.push((key, value));
    }
    let lock_path = ctx.paths.ssconf_lock();
    if let Some(dir) = lock_path.parent() {
        // /var/lock always exists on a real system; under GANETI_ROOTDIR
        // it may not yet.
        std::fs::create_dir_all(dir)
            .map_err(|e| backend(format!("Cannot create {}: {e}", dir.display())))?;
    }
    let _lock = match FileLock::exclusive(&lock_path, SSCONF_LOCK_TIMEOUT) {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Err(backend(format!(
                "Failed to lock {} in exclusive mode",
                ctx.paths.to_wire(&lock_path).display()
            )))
        }
        Err(e) => {
            return Err(backend(format!(
                "Cannot open {}: {e}",
                ctx.paths.to_wire(&lock_path).display()
            )))
        }
    };
    let meta = FileMeta {
        mode: Some(SSCONF_MODE),
        owner: None,
        times: None,
    };
    for (key, value) in &files {
        let path = ctx.paths.ssconf_file(key);
        fsutil::write_atomic(&path, value.as_bytes(), &meta).map_err(|e| {
            backend(format!(
                "Cannot write {}: {e}",
                ctx.paths.to_wire(&path).display()
            ))
        })?;
    }
    log::info!("Wrote {} ssconf files", files.len());
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::{CONF_DIR, DATA_DIR};
    use std::os::unix::fs::MetadataExt;

    fn ctx(tag: &str) -> (Context, std::path::PathBuf) {
        let root = std::env::temp_dir().join(format!("ganeti-files-{tag}-{}", sys::getpid()));
        let _ = std::fs::remove_dir_all(&root);
        let ctx = Context::for_root(&root, "node1.example.com");
        std::fs::create_dir_all(ctx.paths.data_dir()).unwrap();
        (ctx, root)
    }

    #[test]
    fn targets_are_standard_paths() {
        for t in UPLOAD_TARGETS {
            assert_eq!(fsutil::normalize(t).unwrap(), Path::new(t), "{t}");
            assert!(
                t.starts_with(DATA_DIR) || t.starts_with(CONF_DIR) || t.starts_with("/etc/"),
                "{t}"
            );
            assert!(!t.ends_with("server.pem") && !t.contains("ssconf"), "{t}");
        }
    }

    #[test]
    fn epoch_handles_fractions_and_nonsense() {
        let t = epoch(1.5, "atime").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap(),
            Duration::from_millis(1500)
        );
        assert!(epoch(-1.0, "atime").unwrap() < SystemTime::UNIX_EPOCH);
        assert!(epoch(f64::NAN, "atime").is_err());
        assert!(epoch(1e300, "atime").is_err());
    }

    #[test]
    fn owner_names_only_from_the_ganeti_table() {
        assert_eq!(lookup_user("root").unwrap(), 0);
        assert_eq!(lookup_group("root").unwrap(), 0);
        // "daemon" exists in the password database but is no Ganeti user.
        let e = lookup_user("daemon").unwrap_err().to_string();
        assert_eq!(
            e,
            "Error while executing backend function: Unknown Ganeti user 'daemon'"
        );
        let e = lookup_group("bin").unwrap_err().to_string();
        assert!(e.ends_with("Unknown Ganeti group 'bin'"), "{e}");
    }

    #[test]
    fn ssconf_value_at_limit_and_above() {
        let (ctx, root) = ctx("limit");
        // Exactly the limit, newline included, is written.
        let fits = "a".repeat(MAX_SSCONF_SIZE as usize - 1);
        let body = serde_json::to_vec(&serde_json::json!([{ "node_list": fits }])).unwrap();
        write_ssconf_files(&ctx, &body).unwrap();
        let written = std::fs::read(ctx.paths.ssconf_file("node_list")).unwrap();
        assert_eq!(written.len() as u64, MAX_SSCONF_SIZE);
        let m = std::fs::metadata(ctx.paths.ssconf_file("node_list")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o444);
        // One byte more is refused, and nothing else is written either.
        let big = "a".repeat(MAX_SSCONF_SIZE as usize);
        let body =
            serde_json::to_vec(&serde_json::json!([{ "cluster_name": "c", "node_list": big }]))
                .unwrap();
        let e = write_ssconf_files(&ctx, &body).unwrap_err().to_string();
        assert!(
            e.ends_with("ssconf file node_list above maximum size"),
            "{e}"
        );
        assert!(!ctx.paths.ssconf_file("cluster_name").exists());
        assert_eq!(
            std::fs::read(ctx.paths.ssconf_file("node_list")).unwrap(),
            written
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn upload_data_limit() {
        let (ctx, root) = ctx("upload");
        let call = |len: usize| {
            let data = blob::encode(&vec![b'x'; len]);
            let body = serde_json::to_vec(&serde_json::json!([
                "/var/lib/ganeti/known_hosts",
                data,
                0o100644,
                "root",
                "root",
                1.0,
                2.0
            ]))
            .unwrap();
            upload_file(&ctx, &body)
        };
        call(MAX_UPLOAD_DATA).unwrap();
        let target = ctx.paths.to_local("/var/lib/ganeti/known_hosts");
        assert_eq!(
            std::fs::metadata(&target).unwrap().len(),
            MAX_UPLOAD_DATA as u64
        );
        let e = call(MAX_UPLOAD_DATA + 1).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
        assert_eq!(
            std::fs::metadata(&target).unwrap().len(),
            MAX_UPLOAD_DATA as u64
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
