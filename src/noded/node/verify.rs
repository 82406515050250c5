//! `node_verify [checks, cluster_name]`: the node's side of cluster verify.
//!
//! Handled checks: `version`, `time`, `filelist`, `nodesetup`, `nodelist`
//! (ssh), `node-net-test`, `master-ip`, `oob-paths`, and, on VM-capable
//! nodes (not named in `vmnodes`), `hypervisor`, `hvparms`, `instancelist`,
//! `hvinfo`, `oslist`, `bridges`, `lvlist`, `vglist`, `pvlist`. Not yet:
//! `drbd-list`, `drbd-helper` (logged and left out of the answer). Unknown
//! keys are ignored, as in 2.5.2.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{backend, missing_bridges, tcp_ping};
use crate::constants::{PROTOCOL_VERSION, RELEASE_VERSION};
use crate::fsutil;
use crate::hypervisor;
use crate::noded::{decode, Context, RpcError};
use crate::storage::lvm;

/// `TcpPing`'s default timeout, used by the network checks.
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `ssh <node> hostname --fqdn` may take (2.5.2: unbounded).
const SSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Checks 2.5.2 knows that this node daemon does not run yet.
const NOT_YET: [&str; 2] = ["drbd-list", "drbd-helper"];

/// The value of one check, decoded; `None` when the key is absent.
fn check<T: DeserializeOwned>(what: &Map<String, Value>, key: &str) -> Result<Option<T>, RpcError> {
    match what.get(key) {
        None => Ok(None),
        Some(v) => T::deserialize(v)
            .map(Some)
            .map_err(|e| RpcError::Arguments(format!("node_verify check '{key}': {e}"))),
    }
}

pub(super) fn node_verify(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (what, cluster_name): (Map<String, Value>, String) = decode(body)?;
    let my_name = ctx.node_name();
    let vmnodes: Vec<String> = check(&what, "vmnodes")?.unwrap_or_default();
    // In spite of its name, `vmnodes` lists the nodes that are NOT VM capable.
    let vm_capable = !vmnodes.iter().any(|n| n == my_name);
    let mut result = Map::new();
    let mut put = |key: &str, v: Value| {
        result.insert(key.to_string(), v);
    };

    if vm_capable {
        if let Some(hvs) = check::<Vec<String>>(&what, "hypervisor")? {
            let mut tmp = Map::new();
            for hv in hvs {
                let val = match hypervisor::verify(&ctx.paths, &hv) {
                    Ok(problem) => problem.map_or(Value::Null, Value::from),
                    Err(e) => Value::from(format!("Error while checking hypervisor: {e}")),
                };
                tmp.insert(hv, val);
            }
            put("hypervisor", Value::Object(tmp));
        }
        if let Some(sets) = check::<Vec<(String, String, Map<String, Value>)>>(&what, "hvparms")? {
            let mut tmp = Vec::new();
            for (source, hv, params) in sets {
                if let Err(e) = hypervisor::validate_params(&ctx.paths, &hv, &params) {
                    tmp.push(Value::from(vec![source, hv, e.to_string()]));
                }
            }
            put("hvparms", Value::Array(tmp));
        }
    }

    if let Some(files) = check::<Vec<String>>(&what, "filelist")? {
        put("filelist", Value::Object(fingerprint_files(ctx, &files)?));
    }

    if let Some((mut nodes, bynode)) =
        check::<(Vec<String>, HashMap<String, Vec<String>>)>(&what, "nodelist")?
    {
        if let Some(more) = bynode.get(my_name) {
            nodes.extend(more.iter().cloned());
        }
        shuffle(&mut nodes);
        let mut tmp = Map::new();
        for node in nodes {
            if let Some(problem) = verify_node_hostname(ctx, &cluster_name, &node) {
                tmp.insert(node, Value::from(problem));
            }
        }
        put("nodelist", Value::Object(tmp));
    }

    if let Some(list) = check::<Vec<(String, String, String)>>(&what, "node-net-test")? {
        put("node-net-test", Value::Object(net_test(ctx, &list)));
    }

    if let Some((master_name, master_ip)) = check::<(String, String)>(&what, "master-ip")? {
        let source = (master_name == my_name).then_some("127.0.0.1");
        let ok = tcp_ping(&master_ip, ctx.port, PING_TIMEOUT, false, source);
        put("master-ip", Value::Bool(ok));
    }

    if let Some(paths) = check::<Vec<String>>(&what, "oob-paths")? {
        let tmp = paths.iter().map(|p| oob_path_problem(ctx, p)).collect();
        put("oob-paths", Value::Array(tmp));
    }

    if vm_capable && what.contains_key("lvlist") {
        put("lvlist", lv_list_all());
    }

    if vm_capable {
        if let Some(hvs) = check::<Vec<String>>(&what, "instancelist")? {
            put("instancelist", instance_list(ctx, &hvs));
        }
    }

    if vm_capable && what.contains_key("vglist") {
        put("vglist", crate::noded::storage::vg_map());
    }

    if vm_capable && what.contains_key("pvlist") {
        let vgs: Option<Option<Vec<String>>> = check(&what, "pvlist")?;
        put("pvlist", pv_list(&vgs.flatten().unwrap_or_default()));
    }

    if what.contains_key("version") {
        put(
            "version",
            Value::from(vec![
                Value::from(PROTOCOL_VERSION),
                Value::from(RELEASE_VERSION),
            ]),
        );
    }

    if vm_capable {
        if let Some(hv) = check::<String>(&what, "hvinfo")? {
            let info = hypervisor::node_info(&ctx.paths, &hv).map_err(backend)?;
            put("hvinfo", serde_json::to_value(info).map_err(backend)?);
        }
    }

    if what.contains_key("nodesetup") {
        put("nodesetup", Value::from(node_setup_problems()));
    }

    if what.contains_key("time") {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        put(
            "time",
            Value::from(vec![now.as_secs(), u64::from(now.subsec_micros())]),
        );
    }

    if vm_capable && what.contains_key("oslist") {
        put("oslist", Value::Array(crate::osdef::diagnose(&ctx.paths)));
    }

    if vm_capable {
        if let Some(bridges) = check::<Vec<String>>(&what, "bridges")? {
            put("bridges", Value::from(missing_bridges(&bridges)));
        }
    }

    let skipped: Vec<&str> = NOT_YET
        .into_iter()
        .filter(|k| what.contains_key(*k))
        .collect();
    if !skipped.is_empty() {
        log::info!(
            "node_verify: checks not supported yet: {}",
            skipped.join(", ")
        );
    }
    Ok(Value::Object(result))
}

/// `lvlist`: the `lv_list` result for every VG `vgs` shows, or the error
/// text (2.5.2 passed the VG names on; names LVM itself would refuse are
/// left out here).
fn lv_list_all() -> Value {
    let vgs: Vec<String> = lvm::list_volume_groups()
        .into_keys()
        .filter(|vg| lvm::validate_name(vg).is_ok())
        .collect();
    match lvm::volume_list(&vgs) {
        Ok(lvs) => Value::Object(lvs),
        Err(e) => Value::from(e.to_string()),
    }
}

/// `pvlist`: `[free, pv, vg]` of every PV (allocatable or not) in `vgs`
/// (all when empty), or null when `pvs` fails.
fn pv_list(vgs: &[String]) -> Value {
    match lvm::pv_info(vgs, false) {
        Some(pvs) => pvs
            .into_iter()
            .map(|(free, pv, vg)| {
                Value::from(vec![Value::from(free), Value::from(pv), Value::from(vg)])
            })
            .collect(),
        None => Value::Null,
    }
}

/// `{wire path: sha1}` of the regular files among `files` (missing files
/// and other kinds are left out). Keys are the paths as sent.
fn fingerprint_files(ctx: &Context, files: &[String]) -> Result<Map<String, Value>, RpcError> {
    let mut out = Map::new();
    for wire in files {
        let Some(norm) = fsutil::normalize(wire) else {
            continue;
        };
        let local = ctx.paths.to_local(&norm.to_string_lossy());
        if !std::fs::metadata(&local).is_ok_and(|m| m.is_file()) {
            continue;
        }
        if let Some(digest) = sha1_file(&local).map_err(|e| backend(os_error(&e, wire)))? {
            out.insert(wire.clone(), Value::from(digest));
        }
    }
    Ok(out)
}

/// The SHA-1 of a regular file in hex; `None` if it turned out not to be one.
/// Opened non-blocking, so that a FIFO swapped in cannot hang the worker.
fn sha1_file(path: &Path) -> std::io::Result<Option<String>> {
    let mut f = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Ok(None);
    }
    let mut hasher = openssl::sha::Sha1::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match f.read(&mut buf)? {
            0 => break,
            n => hasher.update(&buf[..n]),
        }
    }
    Ok(Some(
        hasher.finish().iter().map(|b| format!("{b:02x}")).collect(),
    ))
}

/// An OS error as Python 2 prints it: `[Errno 2] No such file or directory: 'path'`.
fn os_error(e: &std::io::Error, path: &str) -> String {
    crate::noded::os_error_text(e, Some(Path::new(path)))
}

/// Shuffles in place (2.5.2 contacts the nodes in random order).
fn shuffle(items: &mut [String]) {
    for i in (1..items.len()).rev() {
        let mut b = [0u8; 4];
        if openssl::rand::rand_bytes(&mut b).is_err() {
            return;
        }
        let j = (u32::from_le_bytes(b) as usize) % (i + 1);
        items.swap(i, j);
    }
}

/// A node or cluster name that is safe as an ssh argument.
fn valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Runs `hostname --fqdn` on `node` over ssh as 2.5.2's
/// `VerifyNodeHostname`; the problem, if any.
fn verify_node_hostname(ctx: &Context, cluster_name: &str, node: &str) -> Option<String> {
    if !valid_host_name(node) {
        return Some(format!("ssh problem: invalid node name {node:?}"));
    }
    if !valid_host_name(cluster_name) {
        return Some(format!(
            "ssh problem: invalid cluster name {cluster_name:?}"
        ));
    }
    let known_hosts = ctx.paths.data_dir().join("known_hosts");
    let known_hosts_opt = format!("-oGlobalKnownHostsFile={}", known_hosts.display());
    let alias_opt = format!("-oHostKeyAlias={cluster_name}");
    let target = format!("root@{node}");
    let argv = [
        "ssh",
        "-oEscapeChar=none",
        "-oHashKnownHosts=no",
        &known_hosts_opt,
        "-oUserKnownHostsFile=/dev/null",
        "-oCheckHostIp=no",
        &alias_opt,
        "-oBatchMode=yes",
        "-oStrictHostKeyChecking=yes",
        &target,
        "hostname --fqdn",
    ];
    let result = match crate::cmd::run(&argv, SSH_TIMEOUT) {
        Ok(r) => r,
        Err(e) => return Some(format!("ssh problem: Can't execute 'ssh': {e}")),
    };
    if let Some(reason) = &result.fail_reason {
        let output = result.output();
        let msg = if output.is_empty() {
            format!("ssh problem: {reason} (no output)")
        } else {
            format!("ssh problem: {output}")
        };
        log::error!("Command {} failed: {msg}", argv.join(" "));
        return Some(msg);
    }
    let remote = result.stdout.trim();
    if remote.is_empty() || remote != node {
        let kind = if node.starts_with(&format!("{remote}.")) {
            "hostname not FQDN"
        } else {
            "hostname mismatch"
        };
        return Some(format!("{kind}: expected {node} but got {remote}"));
    }
    None
}

/// `node-net-test`: TCP-ping every node's primary (and secondary, when it
/// differs) address from ours; `{node: problem}`.
fn net_test(ctx: &Context, list: &[(String, String, String)]) -> Map<String, Value> {
    let mut tmp = Map::new();
    let mine = list
        .iter()
        .find(|(name, _, _)| name == ctx.node_name())
        .filter(|(_, pip, _)| !pip.is_empty());
    let Some((_, my_pip, my_sip)) = mine else {
        tmp.insert(
            ctx.node_name().to_string(),
            Value::from("Can't find my own primary/secondary IP in the node list"),
        );
        return tmp;
    };
    for (name, pip, sip) in list {
        let mut fail = Vec::new();
        if !tcp_ping(pip, ctx.port, PING_TIMEOUT, false, Some(my_pip)) {
            fail.push("primary");
        }
        if sip != pip && !tcp_ping(sip, ctx.port, PING_TIMEOUT, false, Some(my_sip)) {
            fail.push("secondary");
        }
        if !fail.is_empty() {
            tmp.insert(
                name.clone(),
                Value::from(format!(
                    "failure using the {} interface(s)",
                    fail.join(" and ")
                )),
            );
        }
    }
    tmp
}

/// `oob-paths`: null for an executable regular file, else the problem.
fn oob_path_problem(ctx: &Context, wire: &str) -> Value {
    let Some(norm) = fsutil::normalize(wire) else {
        return Value::from(format!(
            "error stating out of band helper: not an absolute path: '{wire}'"
        ));
    };
    match std::fs::metadata(ctx.paths.to_local(&norm.to_string_lossy())) {
        Err(e) => Value::from(format!(
            "error stating out of band helper: {}",
            os_error(&e, wire)
        )),
        Ok(m) if !m.is_file() => Value::from(format!("out of band helper {wire} is not a file")),
        Ok(m) if m.permissions().mode() & 0o100 == 0 => {
            Value::from(format!("out of band helper {wire} is not executable"))
        }
        Ok(_) => Value::Null,
    }
}

/// `instancelist`: the running instances of these hypervisors, or the
/// error as a string.
fn instance_list(ctx: &Context, hvs: &[String]) -> Value {
    let mut names = Vec::new();
    for hv in hvs {
        match hypervisor::list_instances(&ctx.paths, hv) {
            Ok(list) => names.extend(list),
            Err(e) => {
                return Value::from(format!(
                    "Error enumerating instances (hypervisor {hv}): {e}"
                ))
            }
        }
    }
    Value::from(names)
}

/// `nodesetup`: /sys and /proc as the node daemon needs them (the machine's
/// own, not under the root).
fn node_setup_problems() -> Vec<&'static str> {
    let mut problems = Vec::new();
    if !Path::new("/sys/block").is_dir() || !Path::new("/sys/class/net").is_dir() {
        problems.push(
            "The sysfs filesytem doesn't seem to be mounted under /sys, missing required \
             directories /sys/block and /sys/class/net",
        );
    }
    if !Path::new("/proc/sys").is_dir() || !Path::new("/proc/sysrq-trigger").is_file() {
        problems.push(
            "The procfs filesystem doesn't seem to be mounted under /proc, missing required \
             directory /proc/sys and the file /proc/sysrq-trigger",
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> (std::path::PathBuf, Context) {
        let root = std::env::temp_dir().join(format!("ganeti-verify-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("var/run/ganeti")).unwrap();
        std::fs::create_dir_all(root.join("var/lib/ganeti")).unwrap();
        (root.clone(), Context::for_root(&root, "node1.example.com"))
    }

    #[test]
    fn python_style_os_errors() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            os_error(&e, "/x"),
            "[Errno 2] No such file or directory: '/x'"
        );
    }

    #[test]
    fn host_names_for_ssh() {
        assert!(valid_host_name("node1.example.com"));
        for bad in ["", "-oProxyCommand=x", "a b", "a\nb", "a;b", "a/b"] {
            assert!(!valid_host_name(bad), "{bad}");
        }
    }

    #[test]
    fn filelist_hashes_regular_files_under_the_root() {
        let (root, ctx) = scratch("files");
        std::fs::write(root.join("var/lib/ganeti/known_hosts"), "abc").unwrap();
        let files: Vec<String> = [
            "/var/lib/ganeti/known_hosts",
            "/var/lib/ganeti/../ganeti/known_hosts",
            "/var/lib/ganeti/missing",
            "/var/lib/ganeti",
            "relative/path",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = fingerprint_files(&ctx, &files).unwrap();
        let sha1_abc = "a9993e364706816aba3e25717850c26c9cd0d89d";
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out["/var/lib/ganeti/known_hosts"], sha1_abc);
        assert_eq!(out["/var/lib/ganeti/../ganeti/known_hosts"], sha1_abc);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn wrong_shapes_name_the_check() {
        let (root, ctx) = scratch("shapes");
        let e = node_verify(&ctx, br#"[{"filelist": "x"}, "c"]"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("node_verify check 'filelist'"), "{e}");
        let e = node_verify(&ctx, br#"[{"master-ip": ["a"]}, "c"]"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'master-ip'"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
