//! kvm's hypervisor parameters: typed from the filled dict the master
//! sends, and checked as 2.5.2's `CheckParameterSyntax` and
//! `ValidateParameters` do, plus the refusals of what this node daemon
//! cannot honour safely.
//!
//! 2.5.2 checked the set memberships (`disk_type`, `boot_order`...) only on
//! the master; they are checked here too, because those values end up on
//! kvm's command line. Paths are checked to be absolute and normalised and
//! are looked up under the node's root. Refused with a message naming the
//! parameter: SPICE (`spice_bind`), the `user` and `pool` security models,
//! `use_chroot`, `keymap`, VNC TLS and X509 (`vnc_tls`, `vnc_x509_path`,
//! `vnc_x509_verify`) and `vnc_password_file`; and commas in paths that kvm
//! parses as option lists (cdrom, floppy and VNC socket paths).

#![forbid(unsafe_code)]

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::super::HvError;
use crate::fsutil;
use crate::paths::Paths;

pub const BOOT_ORDERS: &[&str] = &["cdrom", "disk", "floppy", "network"];
pub const NIC_TYPES: &[&str] = &[
    "e1000",
    "i82551",
    "i82557b",
    "i82559er",
    "ne2k_isa",
    "ne2k_pci",
    "paravirtual",
    "pcnet",
    "rtl8139",
];
pub const DISK_TYPES: &[&str] = &["ide", "mtd", "paravirtual", "pflash", "scsi", "sd"];
pub const MOUSE_TYPES: &[&str] = &["mouse", "tablet"];
pub const CACHE_TYPES: &[&str] = &["default", "none", "writeback", "writethrough"];
pub const SECURITY_MODELS: &[&str] = &["none", "pool", "user"];
pub const KVM_FLAGS: &[&str] = &["disabled", "enabled"];
pub const MIGRATION_MODES: &[&str] = &["live", "non-live"];
pub const REBOOT_BEHAVIORS: &[&str] = &["exit", "reboot"];

/// The 35 kvm parameters of 2.5.2, typed.
#[derive(Debug, Clone)]
pub struct KvmParams {
    pub kernel_path: String,
    pub initrd_path: String,
    pub root_path: Option<String>,
    pub kernel_args: String,
    pub acpi: bool,
    pub serial_console: bool,
    pub vnc_bind_address: String,
    pub vnc_tls: bool,
    pub vnc_x509_path: String,
    pub vnc_x509_verify: bool,
    pub vnc_password_file: String,
    pub spice_bind: String,
    pub spice_ip_version: i64,
    pub floppy_image_path: String,
    pub cdrom_image_path: String,
    pub cdrom2_image_path: String,
    pub boot_order: String,
    pub nic_type: String,
    pub disk_type: String,
    pub cdrom_disk_type: String,
    pub usb_mouse: String,
    pub keymap: String,
    pub migration_port: i64,
    pub migration_bandwidth: i64,
    pub migration_downtime: i64,
    pub migration_mode: String,
    pub use_localtime: bool,
    pub disk_cache: String,
    pub security_model: String,
    pub security_domain: String,
    pub kvm_flag: String,
    pub vhost_net: bool,
    pub use_chroot: bool,
    pub mem_path: String,
    pub reboot_behavior: String,
}

fn missing(key: &str) -> HvError {
    HvError::Failed(format!("Parameter '{key}' is missing"))
}

fn wrong(key: &str, what: &str) -> HvError {
    HvError::Failed(format!("Parameter '{key}' must be {what}"))
}

fn string(p: &Map<String, Value>, key: &str) -> Result<String, HvError> {
    match p.get(key) {
        None => Err(missing(key)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(wrong(key, "a string")),
    }
}

fn maybe_string(p: &Map<String, Value>, key: &str) -> Result<Option<String>, HvError> {
    match p.get(key) {
        None => Err(missing(key)),
        Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(wrong(key, "a string or null")),
    }
}

fn boolean(p: &Map<String, Value>, key: &str) -> Result<bool, HvError> {
    match p.get(key) {
        None => Err(missing(key)),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(wrong(key, "a boolean")),
    }
}

fn int(p: &Map<String, Value>, key: &str) -> Result<i64, HvError> {
    match p.get(key) {
        None => Err(missing(key)),
        Some(v) => v.as_i64().ok_or_else(|| wrong(key, "an integer")),
    }
}

impl KvmParams {
    /// Reads every parameter from a filled dict (2.5.2 raised KeyError on
    /// a missing one; the message here names it).
    pub fn from_map(p: &Map<String, Value>) -> Result<KvmParams, HvError> {
        Ok(KvmParams {
            kernel_path: string(p, "kernel_path")?,
            initrd_path: string(p, "initrd_path")?,
            root_path: maybe_string(p, "root_path")?,
            kernel_args: string(p, "kernel_args")?,
            acpi: boolean(p, "acpi")?,
            serial_console: boolean(p, "serial_console")?,
            vnc_bind_address: string(p, "vnc_bind_address")?,
            vnc_tls: boolean(p, "vnc_tls")?,
            vnc_x509_path: string(p, "vnc_x509_path")?,
            vnc_x509_verify: boolean(p, "vnc_x509_verify")?,
            vnc_password_file: string(p, "vnc_password_file")?,
            spice_bind: string(p, "spice_bind")?,
            spice_ip_version: int(p, "spice_ip_version")?,
            floppy_image_path: string(p, "floppy_image_path")?,
            cdrom_image_path: string(p, "cdrom_image_path")?,
            cdrom2_image_path: string(p, "cdrom2_image_path")?,
            boot_order: string(p, "boot_order")?,
            nic_type: string(p, "nic_type")?,
            disk_type: string(p, "disk_type")?,
            cdrom_disk_type: string(p, "cdrom_disk_type")?,
            usb_mouse: string(p, "usb_mouse")?,
            keymap: string(p, "keymap")?,
            migration_port: int(p, "migration_port")?,
            migration_bandwidth: int(p, "migration_bandwidth")?,
            migration_downtime: int(p, "migration_downtime")?,
            migration_mode: string(p, "migration_mode")?,
            use_localtime: boolean(p, "use_localtime")?,
            disk_cache: string(p, "disk_cache")?,
            security_model: string(p, "security_model")?,
            security_domain: string(p, "security_domain")?,
            kvm_flag: string(p, "kvm_flag")?,
            vhost_net: boolean(p, "vhost_net")?,
            use_chroot: boolean(p, "use_chroot")?,
            mem_path: string(p, "mem_path")?,
            reboot_behavior: string(p, "reboot_behavior")?,
        })
    }

    /// Every check, in a fixed order; the first failure is returned.
    pub fn validate(&self, paths: &Paths) -> Result<(), HvError> {
        self.check_syntax()?;
        self.check_node(paths)?;
        self.check_supported()
    }

    /// 2.5.2's `CheckParameterSyntax` (the master-side checks).
    fn check_syntax(&self) -> Result<(), HvError> {
        let sets: [(&str, &str, &[&str], bool); 9] = [
            ("boot_order", &self.boot_order, BOOT_ORDERS, true),
            ("nic_type", &self.nic_type, NIC_TYPES, true),
            ("disk_type", &self.disk_type, DISK_TYPES, true),
            ("cdrom_disk_type", &self.cdrom_disk_type, DISK_TYPES, false),
            ("usb_mouse", &self.usb_mouse, MOUSE_TYPES, false),
            ("disk_cache", &self.disk_cache, CACHE_TYPES, true),
            (
                "security_model",
                &self.security_model,
                SECURITY_MODELS,
                true,
            ),
            ("kvm_flag", &self.kvm_flag, KVM_FLAGS, false),
            (
                "reboot_behavior",
                &self.reboot_behavior,
                REBOOT_BEHAVIORS,
                true,
            ),
        ];
        for (key, value, allowed, required) in sets {
            if value.is_empty() {
                if required {
                    return Err(required_missing(key));
                }
                continue;
            }
            if !allowed.contains(&value) {
                let why = format!("The value must be one of: {}", allowed.join(", "));
                return Err(syntax(key, &why, value));
            }
        }
        if self.migration_mode.is_empty() {
            return Err(required_missing("migration_mode"));
        }
        if !MIGRATION_MODES.contains(&self.migration_mode.as_str()) {
            return Err(syntax(
                "migration_mode",
                "invalid migration mode",
                &self.migration_mode,
            ));
        }
        if self.migration_port == 0 {
            return Err(required_missing("migration_port"));
        }
        if !(1..65535).contains(&self.migration_port) {
            let port = self.migration_port.to_string();
            return Err(syntax("migration_port", "invalid port number", &port));
        }
        if self.spice_ip_version != 0 && ![4, 6].contains(&self.spice_ip_version) {
            let v = self.spice_ip_version.to_string();
            return Err(syntax(
                "spice_ip_version",
                "the SPICE IP version should be 4 or 6",
                &v,
            ));
        }
        let vnc = &self.vnc_bind_address;
        if !vnc.is_empty() && vnc.parse::<Ipv4Addr>().is_err() && !is_norm_abs(vnc) {
            return Err(syntax(
                "vnc_bind_address",
                "the VNC bind address must be either a valid IP address or an absolute pathname",
                vnc,
            ));
        }
        for (key, value) in self.path_params() {
            if !value.is_empty() && !is_norm_abs(value) {
                return Err(syntax(key, "must be an absolute normalized path", value));
            }
        }
        if !self.kernel_path.is_empty() && self.root_path.as_deref().unwrap_or("").is_empty() {
            return Err(HvError::Failed(
                "Need a root partition for the instance, if a kernel is defined".into(),
            ));
        }
        if self.vnc_x509_verify && self.vnc_x509_path.is_empty() {
            return Err(HvError::Failed(
                "vnc_x509_path must be defined, if vnc_x509_verify is".into(),
            ));
        }
        if self.boot_order == "cdrom" && self.cdrom_image_path.is_empty() {
            return Err(HvError::Failed(
                "Cannot boot from cdrom without an ISO path".into(),
            ));
        }
        match self.security_model.as_str() {
            "user" if self.security_domain.is_empty() => Err(HvError::Failed(
                "A security domain (user to run kvm as) must be specified".into(),
            )),
            "none" | "pool" if !self.security_domain.is_empty() => Err(HvError::Failed(
                "Cannot have a security domain when the security model is 'none' or 'pool'".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The path parameters: (name, value).
    fn path_params(&self) -> [(&'static str, &str); 8] {
        [
            ("kernel_path", &self.kernel_path),
            ("initrd_path", &self.initrd_path),
            ("vnc_password_file", &self.vnc_password_file),
            ("floppy_image_path", &self.floppy_image_path),
            ("cdrom_image_path", &self.cdrom_image_path),
            ("cdrom2_image_path", &self.cdrom2_image_path),
            ("vnc_x509_path", &self.vnc_x509_path),
            ("mem_path", &self.mem_path),
        ]
    }

    /// 2.5.2's `ValidateParameters`: the files and directories exist on
    /// this node (under its root).
    fn check_node(&self, paths: &Paths) -> Result<(), HvError> {
        for (key, value) in self.path_params() {
            if value.is_empty() {
                continue;
            }
            let local = paths.to_local(value);
            let dir = matches!(key, "vnc_x509_path" | "mem_path");
            let (ok, why) = if dir {
                (local.is_dir(), "not found or not a directory")
            } else {
                (local.is_file(), "not found or not a file")
            };
            if !ok {
                return Err(HvError::Failed(format!(
                    "Parameter '{key}' fails validation: {why} (current value: '{value}')"
                )));
            }
        }
        Ok(())
    }

    /// What this node daemon does not do.
    fn check_supported(&self) -> Result<(), HvError> {
        let refuse = |key: &str, why: &str| {
            Err(HvError::Failed(format!(
                "Parameter '{key}' is not supported by this node daemon: {why}"
            )))
        };
        if !self.spice_bind.is_empty() {
            return refuse("spice_bind", "SPICE consoles are not implemented");
        }
        if self.security_model != "none" {
            return refuse(
                "security_model",
                "kvm runs as root (only the model 'none' is implemented)",
            );
        }
        if self.use_chroot {
            return refuse("use_chroot", "chroots are not implemented");
        }
        if !self.keymap.is_empty() {
            return refuse("keymap", "keymaps are not implemented");
        }
        if self.vnc_tls || self.vnc_x509_verify || !self.vnc_x509_path.is_empty() {
            return refuse("vnc_tls", "VNC over TLS is not implemented");
        }
        if !self.vnc_password_file.is_empty() {
            return refuse("vnc_password_file", "VNC passwords are not implemented");
        }
        for (key, value) in [
            ("cdrom_image_path", self.cdrom_image_path.as_str()),
            ("cdrom2_image_path", &self.cdrom2_image_path),
            ("floppy_image_path", &self.floppy_image_path),
            ("vnc_bind_address", &self.vnc_bind_address),
        ] {
            if value.contains(',') {
                return refuse(key, "kvm would read a comma in this path as an option");
            }
        }
        for (key, value) in [
            ("kernel_args", self.kernel_args.as_str()),
            ("root_path", self.root_path.as_deref().unwrap_or("")),
        ] {
            if value.contains('\0') {
                return refuse(key, "it contains a NUL byte");
            }
        }
        Ok(())
    }

    /// A path parameter mapped under the node's root (`None` when empty).
    pub fn local(paths: &Paths, value: &str) -> Option<PathBuf> {
        (!value.is_empty()).then(|| paths.to_local(value))
    }
}

fn required_missing(key: &str) -> HvError {
    HvError::Failed(format!(
        "Parameter '{key}' is required but is currently not defined"
    ))
}

fn syntax(key: &str, why: &str, value: &str) -> HvError {
    HvError::Failed(format!(
        "Parameter '{key}' fails syntax check: {why} (current value: '{value}')"
    ))
}

/// 2.5.2's `IsNormAbsPath`: absolute, and equal to its normalised form.
fn is_norm_abs(path: &str) -> bool {
    fsutil::normalize(path).is_some_and(|n| n.as_os_str() == path)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// 2.5.2's kvm defaults (`HVC_DEFAULTS`), without a kernel.
    pub(crate) fn defaults() -> Map<String, Value> {
        let v = json!({
            "kernel_path": "", "initrd_path": "", "kernel_args": "ro",
            "root_path": "/dev/vda1", "acpi": true, "serial_console": true,
            "vnc_bind_address": "", "vnc_tls": false, "vnc_x509_path": "",
            "vnc_x509_verify": false, "vnc_password_file": "", "spice_bind": "",
            "spice_ip_version": 0, "floppy_image_path": "", "cdrom_image_path": "",
            "cdrom2_image_path": "", "boot_order": "disk", "nic_type": "paravirtual",
            "disk_type": "paravirtual", "cdrom_disk_type": "", "usb_mouse": "",
            "keymap": "", "migration_port": 8102, "migration_bandwidth": 32,
            "migration_downtime": 30, "migration_mode": "live", "use_localtime": false,
            "disk_cache": "default", "security_model": "none", "security_domain": "",
            "kvm_flag": "", "vhost_net": false, "use_chroot": false, "mem_path": "",
            "reboot_behavior": "reboot"});
        v.as_object().unwrap().clone()
    }

    fn check(changes: Value) -> Result<(), String> {
        let mut p = defaults();
        for (k, v) in changes.as_object().unwrap() {
            if v == "<remove>" {
                p.remove(k);
            } else {
                p.insert(k.clone(), v.clone());
            }
        }
        let paths = Paths::with_root("");
        KvmParams::from_map(&p)
            .and_then(|k| k.validate(&paths))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_pass() {
        assert_eq!(check(json!({})), Ok(()));
        assert_eq!(check(json!({"root_path": null})), Ok(()));
        assert_eq!(check(json!({"vnc_bind_address": "127.0.0.1"})), Ok(()));
    }

    #[test]
    fn messages_follow_2_5_2() {
        let cases = [
            (json!({"kernel_path": "/nonexistent/vmlinuz"}),
             "Parameter 'kernel_path' fails validation: not found or not a file (current value: '/nonexistent/vmlinuz')"),
            (json!({"mem_path": "/etc/passwd"}),
             "Parameter 'mem_path' fails validation: not found or not a directory (current value: '/etc/passwd')"),
            (json!({"disk_type": "virtio,file=/etc/shadow"}),
             "Parameter 'disk_type' fails syntax check: The value must be one of: ide, mtd, paravirtual, pflash, scsi, sd (current value: 'virtio,file=/etc/shadow')"),
            (json!({"boot_order": ""}),
             "Parameter 'boot_order' is required but is currently not defined"),
            (json!({"migration_port": 65535}),
             "Parameter 'migration_port' fails syntax check: invalid port number (current value: '65535')"),
            (json!({"initrd_path": "/boot/../etc/x"}),
             "Parameter 'initrd_path' fails syntax check: must be an absolute normalized path (current value: '/boot/../etc/x')"),
            (json!({"vnc_bind_address": "somewhere"}),
             "Parameter 'vnc_bind_address' fails syntax check: the VNC bind address must be either a valid IP address or an absolute pathname (current value: 'somewhere')"),
            (json!({"kernel_path": "/etc/hostname", "root_path": ""}),
             "Need a root partition for the instance, if a kernel is defined"),
            (json!({"boot_order": "cdrom"}), "Cannot boot from cdrom without an ISO path"),
            (json!({"security_model": "user"}),
             "A security domain (user to run kvm as) must be specified"),
            (json!({"acpi": "yes"}), "Parameter 'acpi' must be a boolean"),
            (json!({"acpi": "<remove>"}), "Parameter 'acpi' is missing"),
        ];
        for (change, msg) in cases {
            assert_eq!(check(change.clone()), Err(msg.to_string()), "{change}");
        }
    }

    #[test]
    fn unsupported_features_are_refused() {
        for (change, key) in [
            (json!({"spice_bind": "127.0.0.1"}), "spice_bind"),
            (json!({"security_model": "pool"}), "security_model"),
            (json!({"use_chroot": true}), "use_chroot"),
            (json!({"keymap": "de"}), "keymap"),
            (json!({"vnc_tls": true}), "vnc_tls"),
            (
                json!({"vnc_password_file": "/etc/hostname"}),
                "vnc_password_file",
            ),
            (json!({"vnc_bind_address": "/tmp/a,b"}), "vnc_bind_address"),
            (json!({"kernel_args": "a\u{0}b"}), "kernel_args"),
        ] {
            let e = check(change).unwrap_err();
            assert!(
                e.starts_with(&format!("Parameter '{key}' is not supported")),
                "{e}"
            );
        }
    }
}
