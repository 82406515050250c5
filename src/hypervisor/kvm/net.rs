//! kvm's network interfaces: one tap device per NIC, configured as 2.5.2's
//! `kvm-ifup` does before kvm starts.
//!
//! When `/etc/ganeti/kvm-vif-bridge` (under the node's root) is executable
//! it is run with 2.5.2's environment (`INSTANCE`, `MAC`, `MODE`,
//! `INTERFACE`, `INTERFACE_INDEX`, `TAGS`, and `IP`, `LINK`, `BRIDGE` when
//! set), as 2.5.2's `kvm-ifup` does. Otherwise the built-in steps of
//! `kvm-ifup` run here with `ip`: the tap goes up; bridged, it takes the
//! bridge's MTU and joins it (`ip link set master` instead of `brctl addif`);
//! routed, the IP is routed to it (in table `LINK` when set) and proxy ARP
//! / NDP and forwarding are turned on.
//!
//! Every value is checked before use: MAC addresses, modes, bridge and
//! table names (interface-name characters), IP addresses.

#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use super::super::HvError;
use crate::cmd;
use crate::objects::{Instance, Nic};
use crate::paths::Paths;

/// How long one `ip` command or the user's script may take.
const IFUP_TIMEOUT: Duration = Duration::from_secs(60);
/// The user-supplied network script (2.5.2's `_KVM_NETWORK_SCRIPT`).
pub const KVM_NETWORK_SCRIPT: &str = "/etc/ganeti/kvm-vif-bridge";
/// Most `ip rule del` rounds when clearing a tap's old rules.
const MAX_RULE_DELETES: usize = 64;
/// Longest interface name (`IFNAMSIZ` - 1).
const MAX_IFNAME: usize = 15;

/// A NIC as checked for use: mode, link, MAC, IP.
#[derive(Debug, Clone)]
pub struct NicSpec {
    pub mac: String,
    pub mode: String,
    pub link: String,
    pub ip: Option<String>,
}

fn bad(seq: usize, what: &str) -> HvError {
    HvError::Failed(format!("Invalid NIC {seq}: {what}"))
}

/// Checks one NIC of the instance.
pub fn check_nic(seq: usize, nic: &Nic) -> Result<NicSpec, HvError> {
    let mac = nic.mac.clone().unwrap_or_default();
    if !is_mac(&mac) {
        return Err(bad(
            seq,
            &format!("'{}' is not a MAC address", mac.escape_debug()),
        ));
    }
    let param = |key: &str| match nic.nicparams.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Null) | None => Ok(String::new()),
        Some(_) => Err(bad(seq, &format!("nicparams '{key}' must be a string"))),
    };
    let mode = param("mode")?;
    let link = param("link")?;
    match mode.as_str() {
        "bridged" => {
            if !is_ifname(&link) {
                return Err(bad(
                    seq,
                    &format!("'{}' is not a bridge name", link.escape_debug()),
                ));
            }
        }
        "routed" => {
            if !link.is_empty() && !is_ifname(&link) {
                return Err(bad(
                    seq,
                    &format!("'{}' is not a routing table", link.escape_debug()),
                ));
            }
        }
        other => {
            return Err(bad(
                seq,
                &format!("unknown mode '{}'", other.escape_debug()),
            ));
        }
    }
    let ip = nic.ip.clone().filter(|ip| !ip.is_empty());
    if let Some(ip) = &ip {
        if ip.parse::<IpAddr>().is_err() {
            return Err(bad(
                seq,
                &format!("'{}' is not an IP address", ip.escape_debug()),
            ));
        }
    }
    Ok(NicSpec {
        mac,
        mode,
        link,
        ip,
    })
}

/// `aa:00:00:35:d4:01`.
fn is_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An interface (or routing table) name: 1 to 15 letters, digits, `-`,
/// `_`, `.`, not `.` or `..`.
pub fn is_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Configures the tap of NIC `seq` (2.5.2's `_ConfigureNIC`).
pub fn configure_nic(
    paths: &Paths,
    inst: &Instance,
    seq: usize,
    nic: &NicSpec,
    tap: &str,
) -> Result<(), HvError> {
    let script = paths.to_local(KVM_NETWORK_SCRIPT);
    let executable = std::fs::metadata(&script)
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    let result = if executable {
        run_script(paths, &script, inst, seq, nic, tap)
    } else {
        builtin_ifup(nic, tap)
    };
    result.map_err(|(reason, output)| {
        HvError::Failed(format!(
            "Failed to configure interface {tap}: {reason}. Network configuration script output: {output}"
        ))
    })
}

type IfupError = (String, String);

fn run_script(
    paths: &Paths,
    script: &Path,
    inst: &Instance,
    seq: usize,
    nic: &NicSpec,
    tap: &str,
) -> Result<(), IfupError> {
    let path = std::env::var("PATH").unwrap_or_default();
    let tags = inst.tags.clone().unwrap_or_default().join(" ");
    let mut env = vec![
        ("PATH", format!("{path}:/sbin:/usr/sbin")),
        ("INSTANCE", inst.name.clone()),
        ("MAC", nic.mac.clone()),
        ("MODE", nic.mode.clone()),
        ("INTERFACE", tap.to_string()),
        ("INTERFACE_INDEX", seq.to_string()),
        ("TAGS", tags),
    ];
    if let Some(ip) = &nic.ip {
        env.push(("IP", ip.clone()));
    }
    if !nic.link.is_empty() {
        env.push(("LINK", nic.link.clone()));
    }
    if nic.mode == "bridged" {
        env.push(("BRIDGE", nic.link.clone()));
    }
    let mut command = crate::sys::command(&script.to_string_lossy());
    command
        .arg(tap)
        .envs(env)
        .env("LC_ALL", "C")
        .current_dir("/")
        .stdin(std::process::Stdio::null());
    let run_dir = paths.to_local(&super::root_dir());
    let out =
        super::run_bounded(command, IFUP_TIMEOUT, &run_dir).map_err(|e| (e, String::new()))?;
    match out.0 {
        None => Ok(()),
        Some(reason) => Err((reason, out.1)),
    }
}

/// Runs `ip <args>`; a failure gives (reason, output).
fn ip(args: &[&str]) -> Result<(), IfupError> {
    let mut argv = vec!["ip"];
    argv.extend_from_slice(args);
    let r = cmd::run(&argv, IFUP_TIMEOUT)
        .map_err(|e| (format!("cannot run ip: {e}"), String::new()))?;
    match r.fail_reason.clone() {
        None => Ok(()),
        Some(reason) => Err((format!("'{}' {reason}", argv.join(" ")), r.output())),
    }
}

/// The steps of 2.5.2's `kvm-ifup` without a user script.
fn builtin_ifup(nic: &NicSpec, tap: &str) -> Result<(), IfupError> {
    ip(&["link", "set", tap, "up"])?;
    if nic.mode == "bridged" {
        let mtu_file = Path::new("/sys/class/net").join(&nic.link).join("mtu");
        let mtu = std::fs::read_to_string(&mtu_file)
            .map_err(|e| (format!("bridge {} not found: {e}", nic.link), String::new()))?;
        let mtu = mtu.trim();
        ip(&["link", "set", tap, "mtu", mtu])?;
        return ip(&["link", "set", tap, "master", &nic.link]);
    }
    let Some(addr) = &nic.ip else {
        return Err((
            "exited with exit code 1".into(),
            "Routed NIC but no IP address specified\n".into(),
        ));
    };
    if nic.link.is_empty() {
        ip(&["route", "replace", addr, "proto", "static", "dev", tap])?;
    } else {
        for _ in 0..MAX_RULE_DELETES {
            if ip(&["rule", "del", "dev", tap]).is_err() {
                break;
            }
        }
        ip(&["rule", "add", "dev", tap, "table", &nic.link])?;
        ip(&[
            "route", "replace", addr, "table", &nic.link, "proto", "static", "dev", tap,
        ])?;
    }
    for (family, keys) in [
        ("ipv4", ["proxy_arp", "forwarding"]),
        ("ipv6", ["proxy_ndp", "forwarding"]),
    ] {
        let dir = Path::new("/proc/sys/net")
            .join(family)
            .join("conf")
            .join(tap);
        if dir.is_dir() {
            for key in keys {
                std::fs::write(dir.join(key), "1\n")
                    .map_err(|e| (format!("cannot set {family} {key}: {e}"), String::new()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nic(v: serde_json::Value) -> Nic {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn nics_are_checked() {
        let ok = nic(
            json!({"mac": "aa:00:00:35:d4:01", "nicparams": {"mode": "bridged", "link": "br0"}}),
        );
        assert_eq!(check_nic(0, &ok).unwrap().link, "br0");
        let routed = nic(json!({"mac": "aa:00:00:35:d4:01", "ip": "192.0.2.1",
            "nicparams": {"mode": "routed", "link": ""}}));
        assert_eq!(
            check_nic(1, &routed).unwrap().ip.as_deref(),
            Some("192.0.2.1")
        );
        for bad in [
            json!({"mac": "aa:00:00:35:d4", "nicparams": {"mode": "bridged", "link": "br0"}}),
            json!({"mac": "aa:00:00:35:d4:01,x", "nicparams": {"mode": "bridged", "link": "br0"}}),
            json!({"mac": "aa:00:00:35:d4:01", "nicparams": {"mode": "bridged", "link": "../x"}}),
            json!({"mac": "aa:00:00:35:d4:01", "nicparams": {"mode": "bridged", "link": ""}}),
            json!({"mac": "aa:00:00:35:d4:01", "nicparams": {"mode": "openvswitch", "link": "b"}}),
            json!({"mac": "aa:00:00:35:d4:01", "ip": "1.2.3.4; reboot",
                   "nicparams": {"mode": "routed", "link": ""}}),
        ] {
            let e = check_nic(0, &nic(bad.clone())).unwrap_err().to_string();
            assert!(e.starts_with("Invalid NIC 0: "), "{bad}: {e}");
        }
    }

    #[test]
    fn interface_names_at_the_limit() {
        assert!(is_ifname(&"b".repeat(MAX_IFNAME)));
        assert!(!is_ifname(&"b".repeat(MAX_IFNAME + 1)));
    }
}
