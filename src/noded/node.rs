//! Node and cluster basics: `version`, `node_info`, `node_has_ip_address`,
//! `node_tcp_ping`, `bridges_exist`, `etc_hosts_modify`, `test_delay` and
//! `node_verify`, as Ganeti 2.5.2 answers them.
//!
//! Differences from 2.5.2, all on refused or broken input: `etc_hosts_modify`
//! fails on a missing or extra address, an unknown mode, an address that is
//! not an IP or a host name with blanks (2.5.2 wrote them or did nothing);
//! `node_info` answers null VG values when `vgs` is missing (2.5.2 failed);
//! external commands (`vgs`, `ssh`) have timeouts.

#![forbid(unsafe_code)]

mod hosts;
mod verify;

use std::io::Read;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use super::{backend, decode, Context, Procedure, RpcError, SMALL_BODY};
use crate::cmd;
use crate::constants::PROTOCOL_VERSION;
use crate::fsutil::{self, FileMeta};
use crate::hypervisor;

/// `node_verify` carries the file list, every node name (twice) and every
/// node's two addresses (about 300 bytes a node), and with `hvparms` a
/// filled hypervisor parameter dict (1-2 KiB) for every instance that has
/// its own parameters: 16 MiB covers thousands of instances; the server's
/// body budget bounds what all workers hold together.
const VERIFY_BODY: usize = 16 * 1024 * 1024;
/// Longest hosts file we rewrite.
const MAX_HOSTS_FILE: u64 = 16 * 1024 * 1024;
/// How long `vgs` may take.
const LVM_TIMEOUT: Duration = Duration::from_secs(60);
/// `/proc/sys/kernel/random/boot_id`, of which 128 bytes are read.
const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";
const BOOT_ID_MAX: u64 = 128;

pub const PROCEDURES: &[Procedure] = &[
    Procedure {
        name: "version",
        max_body: SMALL_BODY,
        handler: version,
    },
    Procedure {
        name: "node_info",
        max_body: SMALL_BODY,
        handler: node_info,
    },
    Procedure {
        name: "node_has_ip_address",
        max_body: SMALL_BODY,
        handler: node_has_ip_address,
    },
    Procedure {
        name: "node_tcp_ping",
        max_body: SMALL_BODY,
        handler: node_tcp_ping,
    },
    Procedure {
        name: "bridges_exist",
        max_body: SMALL_BODY,
        handler: bridges_exist,
    },
    Procedure {
        name: "etc_hosts_modify",
        max_body: SMALL_BODY,
        handler: etc_hosts_modify,
    },
    Procedure {
        name: "test_delay",
        max_body: SMALL_BODY,
        handler: test_delay,
    },
    Procedure {
        name: "node_verify",
        max_body: VERIFY_BODY,
        handler: verify::node_verify,
    },
];

/// `version`: the protocol version; arguments are ignored (2.5.2 accepts
/// any JSON there), but must be JSON.
fn version(_ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let _: IgnoredAny = decode(body)?;
    Ok(Value::from(PROTOCOL_VERSION))
}

/// `node_info [vg_name|null, hv_name|null]`: VG size and free space (null
/// when unknown), the hypervisor's node information, the boot id.
fn node_info(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (vg_name, hv_name): (Option<String>, Option<String>) = decode(body)?;
    let mut out = Map::new();
    if let Some(vg) = vg_name {
        let (free, size) = match vg_info(&vg) {
            Some((free, size)) => (Value::from(free), Value::from(size)),
            None => (Value::Null, Value::Null),
        };
        out.insert("vg_free".into(), free);
        out.insert("vg_size".into(), size);
    }
    if let Some(hv) = hv_name {
        let info = hypervisor::node_info(&ctx.paths, &hv).map_err(backend)?;
        if let Value::Object(fields) = serde_json::to_value(info).map_err(backend)? {
            out.extend(fields);
        }
    }
    out.insert("bootid".into(), Value::from(boot_id().map_err(backend)?));
    Ok(Value::Object(out))
}

fn boot_id() -> Result<String, String> {
    let mut text = String::new();
    std::fs::File::open(BOOT_ID_PATH)
        .and_then(|f| f.take(BOOT_ID_MAX).read_to_string(&mut text))
        .map_err(|e| format!("Can't read {BOOT_ID_PATH}: {e}"))?;
    Ok(text.trim_end_matches('\n').to_string())
}

/// (free, size) of a volume group in MiB, rounded; `None` when `vgs` is
/// missing or fails (logged) or does not list it as writable.
fn vg_info(vg: &str) -> Option<(i64, i64)> {
    let argv = [
        "vgs",
        "--noheadings",
        "--nosuffix",
        "--units=m",
        "--unbuffered",
        "--separator=|",
        "-ovg_name,vg_free,vg_attr,vg_size",
    ];
    let result = match cmd::run(&argv, LVM_TIMEOUT) {
        Ok(r) => r,
        Err(e) => {
            log::error!("Can't get the VG information: can't run vgs: {e}");
            return None;
        }
    };
    if let Some(reason) = &result.fail_reason {
        log::error!(
            "Can't get the VG information: {reason} - {}",
            result.output()
        );
        return None;
    }
    parse_vgs(&result.stdout, vg)
}

/// The first writable row of `vg` in `vgs` output
/// (`name|free|attr|size`); rows of read-only VGs (`r...`) are skipped.
fn parse_vgs(stdout: &str, vg: &str) -> Option<(i64, i64)> {
    for line in stdout.lines() {
        let fields: Vec<&str> = line.trim().split('|').map(str::trim).collect();
        let [name, free, attr, size] = fields[..] else {
            log::error!("Can't parse VG information from line '{line}'");
            continue;
        };
        if name != vg || attr.starts_with('r') {
            continue;
        }
        match (free.parse::<f64>(), size.parse::<f64>()) {
            (Ok(free), Ok(size)) => return Some((free.round() as i64, size.round() as i64)),
            _ => log::error!("Can't parse VG information from line '{line}'"),
        }
    }
    None
}

/// `node_has_ip_address [ip]`: true when a UDP socket can be bound to the
/// address (the node owns it); false for anything that is not an IP.
fn node_has_ip_address(_ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (address,): (String,) = decode(body)?;
    Ok(Value::Bool(owns_ip(&address)))
}

/// 2.5.2's `IPAddress.Own`: can a UDP socket be bound to the address?
pub(crate) fn owns_ip(address: &str) -> bool {
    address
        .parse::<IpAddr>()
        .is_ok_and(|ip| UdpSocket::bind((ip, 0)).is_ok())
}

/// `node_tcp_ping [source|null, target, port, timeout, live_port_needed]`.
fn node_tcp_ping(_ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (source, target, port, timeout, live_port_needed): (
        Option<String>,
        String,
        u16,
        f64,
        bool,
    ) = decode(body)?;
    let timeout = Duration::try_from_secs_f64(timeout)
        .map_err(|_| backend(format!("Timeout value out of range: {timeout}")))?;
    Ok(Value::Bool(tcp_ping(
        &target,
        port,
        timeout,
        live_port_needed,
        source.as_deref(),
    )))
}

/// 2.5.2's `netutils.TcpPing`: can `target:port` be reached over TCP? A
/// refused connection counts too (the host answered) unless a live port is
/// needed. A `source` that cannot be bound is ignored, as in 2.5.2.
pub(crate) fn tcp_ping(
    target: &str,
    port: u16,
    timeout: Duration,
    live_port_needed: bool,
    source: Option<&str>,
) -> bool {
    let Ok(ip) = target.parse::<IpAddr>() else {
        return false;
    };
    let Ok(sock) = crate::sys::tcp_socket(&ip) else {
        return false;
    };
    if let Some(src) = source.and_then(|s| s.parse::<IpAddr>().ok()) {
        if let Err(e) = crate::sys::bind(&sock, &SocketAddr::new(src, 0)) {
            log::debug!("TCP ping: cannot bind to {src}: {e}");
        }
    }
    match crate::sys::connect_timeout(&sock, &SocketAddr::new(ip, port), timeout) {
        Ok(()) => true,
        Err(e) => !live_port_needed && e.raw_os_error() == Some(libc::ECONNREFUSED),
    }
}

/// `bridges_exist [[bridge, ...]]`: null, or fails naming the missing ones.
fn bridges_exist(_ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (bridges,): (Vec<String>,) = decode(body)?;
    let missing = missing_bridges(&bridges);
    if missing.is_empty() {
        Ok(Value::Null)
    } else {
        Err(RpcError::Failed(format!(
            "Missing bridges {}",
            missing.join(", ")
        )))
    }
}

/// The names that are not bridges (`/sys/class/net/<name>/bridge` is not a
/// directory). A name that cannot be an interface (empty, `.`, `..`, with a
/// `/` or NUL) is missing without touching the disk.
pub(crate) fn missing_bridges(bridges: &[String]) -> Vec<&str> {
    bridges
        .iter()
        .map(String::as_str)
        .filter(|b| {
            let valid = !b.is_empty() && *b != "." && *b != ".." && !b.contains(['/', '\0']);
            !(valid && Path::new("/sys/class/net").join(b).join("bridge").is_dir())
        })
        .collect()
}

/// Serialises the rewrites of the hosts file within this daemon.
static HOSTS_LOCK: Mutex<()> = Mutex::new(());

/// `etc_hosts_modify [mode, name, ip|null]`: `add` sets the entry of `ip`
/// to the name and its short form; `remove` (no ip) takes both names out of
/// every entry. The file (`/etc/hosts` under the root) is rewritten
/// atomically, mode 0644, owner root.
fn etc_hosts_modify(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (mode, name, ip): (String, String, Option<String>) = decode(body)?;
    let ip = ip.filter(|ip| !ip.is_empty());
    let edit = match (mode.as_str(), ip) {
        ("add", None) => {
            return Err(RpcError::Failed(
                "Mode 'add' needs 'ip' parameter, but parameter not present".into(),
            ))
        }
        ("add", Some(ip)) => {
            check_host_name(&name)?;
            if ip.parse::<IpAddr>().is_err() {
                return Err(RpcError::Failed(format!("Invalid IP address '{ip}'")));
            }
            HostsEdit::Add { ip, name }
        }
        ("remove", Some(_)) => {
            return Err(RpcError::Failed(
                "Mode 'remove' does not allow 'ip' parameter, but parameter is present".into(),
            ))
        }
        ("remove", None) => {
            check_host_name(&name)?;
            HostsEdit::Remove { name }
        }
        (other, _) => {
            return Err(RpcError::Failed(format!(
                "Mode not supported: '{other}' (expected 'add' or 'remove')"
            )))
        }
    };
    let path = ctx.paths.etc_hosts();
    let _guard = HOSTS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let text = read_hosts(&path).map_err(backend)?;
    let meta = FileMeta {
        mode: Some(0o644),
        owner: Some((0, 0)),
        times: None,
    };
    fsutil::write_atomic(&path, &edit.apply(&text), &meta)
        .map_err(|e| backend(format!("Can't write /etc/hosts: {e}")))?;
    Ok(Value::Bool(true))
}

/// One checked change of the hosts file.
enum HostsEdit {
    /// The entry of `ip` becomes the name and its short form.
    Add { ip: String, name: String },
    /// The name and its short form go from every entry.
    Remove { name: String },
}

impl HostsEdit {
    fn apply(&self, text: &[u8]) -> Vec<u8> {
        match self {
            HostsEdit::Add { ip, name } => {
                hosts::set_entry(text, ip, &[name.as_str(), hosts::short_name(name)])
            }
            HostsEdit::Remove { name } => {
                let text = hosts::remove_name(text, name);
                hosts::remove_name(&text, hosts::short_name(name))
            }
        }
    }
}

/// A name that fits in a hosts line: not empty, at most 255 bytes, no
/// blanks or control characters, not starting a comment.
fn check_host_name(name: &str) -> Result<(), RpcError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('#')
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(RpcError::Failed(format!("Invalid host name {name:?}")))
    }
}

fn read_hosts(path: &Path) -> Result<Vec<u8>, String> {
    let err = |e: std::io::Error| format!("Can't read /etc/hosts: {e}");
    let file = std::fs::File::open(path).map_err(err)?;
    let mut text = Vec::new();
    file.take(MAX_HOSTS_FILE + 1)
        .read_to_end(&mut text)
        .map_err(err)?;
    if text.len() as u64 > MAX_HOSTS_FILE {
        return Err(format!(
            "/etc/hosts is larger than {MAX_HOSTS_FILE} bytes, not rewriting it"
        ));
    }
    Ok(text)
}

/// `test_delay [seconds]`: sleeps, then null. Not capped: the master gives
/// the call `duration + 5` seconds, and a long delay holds one worker.
fn test_delay(_ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (duration,): (f64,) = decode(body)?;
    let invalid = || RpcError::Failed("Invalid sleep duration".into());
    if duration < 0.0 {
        return Err(invalid());
    }
    std::thread::sleep(Duration::try_from_secs_f64(duration).map_err(|_| invalid())?);
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::fs::MetadataExt;

    fn call(ctx: &Context, name: &str, body: &str) -> Result<Value, String> {
        let p = super::super::find_procedure(&format!("/{name}")).unwrap();
        (p.handler)(ctx, body.as_bytes()).map_err(|e| e.to_string())
    }

    fn scratch(tag: &str) -> (std::path::PathBuf, Context) {
        let root = std::env::temp_dir().join(format!("ganeti-node-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("var/run/ganeti")).unwrap();
        let ctx = Context::for_root(&root, "node1.example.com");
        (root, ctx)
    }

    #[test]
    fn vgs_rows() {
        let out = "  ro|10.00|r--n-|20.00\n  xenvg|10239.50|wz--n-|20476.49\n  bad line\n";
        assert_eq!(parse_vgs(out, "xenvg"), Some((10240, 20476)));
        assert_eq!(parse_vgs(out, "ro"), None);
        assert_eq!(parse_vgs(out, "other"), None);
        assert_eq!(parse_vgs("  x|a|wz|1\n", "x"), None);
    }

    #[test]
    fn node_info_without_lvm_has_null_vg_values() {
        // This machine has no LVM: vgs is missing (or finds nothing).
        let (root, ctx) = scratch("info");
        let v = call(&ctx, "node_info", r#"["xenvg", "fake"]"#).unwrap();
        assert_eq!(v["vg_size"], Value::Null);
        assert_eq!(v["vg_free"], Value::Null);
        assert_eq!(v["cpu_nodes"], 1);
        assert!(v["memory_total"].as_u64().unwrap() > 0);
        assert_eq!(v["bootid"].as_str().unwrap().len(), 36);
        let v = call(&ctx, "node_info", "[null, null]").unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        let e = call(&ctx, "node_info", r#"[null, "xen-pvm"]"#).unwrap_err();
        assert_eq!(
            e,
            "Error while executing backend function: Unknown hypervisor type 'xen-pvm'"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn ip_ownership_and_tcp_ping() {
        assert!(owns_ip("127.0.0.1"));
        assert!(!owns_ip("192.0.2.254"));
        assert!(!owns_ip("not an ip"));
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = Duration::from_secs(2);
        assert!(tcp_ping("127.0.0.1", port, t, true, Some("127.0.0.1")));
        // A source that cannot be bound is ignored.
        assert!(tcp_ping("127.0.0.1", port, t, true, Some("192.0.2.254")));
        assert!(tcp_ping("127.0.0.1", port, t, true, Some("junk")));
        drop(l);
        assert!(!tcp_ping("127.0.0.1", port, t, true, None));
        assert!(tcp_ping("127.0.0.1", port, t, false, None));
        assert!(!tcp_ping("localhost", port, t, false, None));
    }

    #[test]
    fn bridge_names_cannot_escape_sys() {
        let names: Vec<String> = ["lo", "../../../../tmp", ".", "", "a/b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(missing_bridges(&names).len(), names.len());
    }

    #[test]
    fn hosts_file_size_is_bounded() {
        let (root, ctx) = scratch("hostsize");
        let path = ctx.paths.etc_hosts();
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(MAX_HOSTS_FILE).unwrap();
        drop(f);
        assert_eq!(read_hosts(&path).unwrap().len() as u64, MAX_HOSTS_FILE);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(MAX_HOSTS_FILE + 1)
            .unwrap();
        let e = call(&ctx, "etc_hosts_modify", r#"["remove", "x", null]"#).unwrap_err();
        assert!(e.contains("larger than"), "{e}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), MAX_HOSTS_FILE + 1);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn hosts_edit_keeps_mode_0644() {
        let (root, ctx) = scratch("hosts");
        let path = ctx.paths.etc_hosts();
        std::fs::write(&path, "127.0.0.1 localhost\n").unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let v = call(
            &ctx,
            "etc_hosts_modify",
            r#"["add", "n.example.com", "192.0.2.5"]"#,
        );
        assert_eq!(v.unwrap(), Value::Bool(true));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "127.0.0.1 localhost\n192.0.2.5\tn.example.com n\n"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o644);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn delay_checks_its_argument() {
        let (root, ctx) = scratch("delay");
        assert_eq!(call(&ctx, "test_delay", "[0]").unwrap(), Value::Null);
        for bad in ["[-1]", "[-0.5]", "[1e300]"] {
            assert_eq!(
                call(&ctx, "test_delay", bad).unwrap_err(),
                "Invalid sleep duration"
            );
        }
        let e = call(&ctx, "test_delay", r#"["1"]"#).unwrap_err();
        assert!(e.contains("invalid arguments"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
