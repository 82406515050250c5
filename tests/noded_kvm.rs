//! The kvm hypervisor with real qemu (`/usr/bin/kvm`, from .ci/setup-debian)
//! driven over real TLS: an instance with a sparse file disk, a NIC on a
//! throw-away bridge, VNC and a serial console starts, is listed with its
//! memory and vcpus, is still known after the node daemon restarts, soft
//! reboots into a new process, and shuts down within its timeout (no guest
//! answers ACPI, so the kill path runs). Uses `/dev/kvm` when present
//! (else qemu's TCG). Every qemu started here is killed when a test ends,
//! passed or failed ([`QemuGuard`]).

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;

const NAME: &str = "kvm1";
const DISK: &str = "/srv/ganeti/file-storage/kvm1/disk0";

/// Kills, on drop, every process whose pid file is in the root's kvm pid
/// directory and whose command line names that instance, plus every pid
/// noted during the test.
struct QemuGuard {
    pid_dir: PathBuf,
    seen: std::cell::RefCell<Vec<i32>>,
}

impl QemuGuard {
    fn new(root: &Root) -> QemuGuard {
        QemuGuard {
            pid_dir: root.path("var/run/ganeti/kvm-hypervisor/pid"),
            seen: Default::default(),
        }
    }

    /// The pid of the instance's qemu (from its pid file), noted for drop.
    fn pid(&self, name: &str) -> Option<i32> {
        let pid = std::fs::read_to_string(self.pid_dir.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        self.seen.borrow_mut().push(pid);
        Some(pid)
    }
}

fn is_qemu_of(pid: i32, name: &str) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let needle = format!("\0-name\0{name}\0");
    alive(pid)
        && cmdline
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

impl Drop for QemuGuard {
    fn drop(&mut self) {
        let mut pids = self.seen.borrow().clone();
        if let Ok(dir) = std::fs::read_dir(&self.pid_dir) {
            for e in dir.flatten() {
                if let Ok(p) = std::fs::read_to_string(e.path()) {
                    if let Ok(pid) = p.trim().parse() {
                        pids.push(pid);
                    }
                }
            }
        }
        for pid in pids {
            if is_qemu_of(pid, NAME) {
                signal(pid, libc::SIGKILL);
            }
        }
    }
}

/// A bridge for the test's NIC, deleted on drop; `None` when this machine
/// cannot create one.
struct Bridge(String);

impl Bridge {
    fn create() -> Option<Bridge> {
        let name = format!("gnthv{}", std::process::id() % 100_000);
        let ok = Command::new("ip")
            .args(["link", "add", "name", &name, "type", "bridge"])
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Bridge(name))
    }

    fn ports(&self) -> Vec<String> {
        std::fs::read_dir(format!("/sys/class/net/{}/brif", self.0))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

fn kvm_path() -> &'static str {
    let path = ganeti::hypervisor::kvm::kvm_binary();
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install qemu-system-x86 (.ci/setup-debian)"
    );
    path
}

/// 2.5.2's kvm defaults, booting from disk (no kernel), with a serial
/// console and VNC on 127.0.0.1.
fn hvparams() -> Value {
    let kvm_flag = if Path::new("/dev/kvm").exists() {
        "enabled"
    } else {
        "disabled"
    };
    json!({
        "kernel_path": "", "initrd_path": "", "kernel_args": "ro",
        "root_path": "/dev/vda1", "acpi": true, "serial_console": true,
        "vnc_bind_address": "127.0.0.1", "vnc_tls": false, "vnc_x509_path": "",
        "vnc_x509_verify": false, "vnc_password_file": "", "spice_bind": "",
        "spice_ip_version": 0, "floppy_image_path": "", "cdrom_image_path": "",
        "cdrom2_image_path": "", "boot_order": "disk", "nic_type": "paravirtual",
        "disk_type": "paravirtual", "cdrom_disk_type": "", "usb_mouse": "",
        "keymap": "", "migration_port": 8102, "migration_bandwidth": 32,
        "migration_downtime": 30, "migration_mode": "live", "use_localtime": false,
        "disk_cache": "writeback", "security_model": "none", "security_domain": "",
        "kvm_flag": kvm_flag, "vhost_net": false, "use_chroot": false, "mem_path": "",
        "reboot_behavior": "reboot"})
}

fn instance(vnc_port: u16, bridge: Option<&Bridge>) -> Value {
    let nics = match bridge {
        Some(b) => json!([{"mac": "aa:00:00:35:d4:01",
                           "nicparams": {"mode": "bridged", "link": b.0}}]),
        None => json!([]),
    };
    json!({
        "name": NAME, "hypervisor": "kvm", "hvparams": hvparams(),
        "beparams": {"auto_balance": true, "memory": 128, "vcpus": 2},
        "disk_template": "file", "network_port": vnc_port, "admin_up": true,
        "os": "lab", "osparams": {}, "primary_node": "node1.example.com", "tags": [],
        "disks": [{"dev_type": "file", "iv_name": "disk/0", "mode": "rw", "size": 64,
                   "logical_id": ["loop", DISK], "physical_id": ["loop", DISK]}],
        "nics": nics
    })
}

fn call(node: &TlsNode, procedure: &str, body: &Value) -> Value {
    let a = node.raw(procedure, &body.to_string());
    assert_eq!(a.status, 200, "{}", a.text());
    serde_json::from_slice(&a.body).unwrap()
}

fn ok(node: &TlsNode, procedure: &str, body: &Value) -> Value {
    let v = call(node, procedure, body);
    assert_eq!(v[0], true, "{procedure}: {v}");
    v[1].clone()
}

fn fail(node: &TlsNode, procedure: &str, body: &Value) -> String {
    let v = call(node, procedure, body);
    assert_eq!(v[0], false, "{procedure}: {v}");
    v[1].as_str().unwrap().to_string()
}

fn stop_noded(node: TlsNode) -> Root {
    signal(node.pid, libc::SIGTERM);
    assert!(wait_until(Duration::from_secs(10), || !alive(node.pid)));
    let TlsNode { root, .. } = node;
    root
}

/// A free TCP port above VNC's base port 5900.
fn vnc_port() -> u16 {
    loop {
        let p = free_port();
        if p > 5900 {
            return p;
        }
    }
}

#[test]
fn kvm_instance_lifecycle() {
    kvm_path();
    let root = Root::new("kvm");
    std::fs::create_dir_all(root.path("var/run/ganeti")).unwrap();
    root.set_file_storage();
    let disk = root.path(DISK);
    std::fs::create_dir_all(disk.parent().unwrap()).unwrap();
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let guard = QemuGuard::new(&root);
    let bridge = Bridge::create();
    if bridge.is_none() {
        eprintln!("cannot create a bridge here: testing kvm without a NIC");
    }
    let port = vnc_port();
    let inst = instance(port, bridge.as_ref());
    let mut node = TlsNode::start(root, &[]);

    assert_eq!(
        ok(&node, "instance_start", &json!([inst, false])),
        Value::Null
    );
    let pid = guard.pid(NAME).expect("pid file");
    assert!(is_qemu_of(pid, NAME));
    let cmdline = String::from_utf8(std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
        .unwrap()
        .replace('\0', " ");
    let link = node.root.path("var/run/ganeti/instance-disks/kvm1:0");
    assert_eq!(std::fs::read_link(&link).unwrap(), disk);
    assert!(
        cmdline.contains(&format!(
            "-drive file={},format=raw,if=virtio,cache=writeback",
            link.display()
        )),
        "{cmdline}"
    );
    assert!(cmdline.contains(" -m 128 -smp 2 "), "{cmdline}");
    let base = node.root.path("var/run/ganeti/kvm-hypervisor");
    assert!(base.join("ctrl/kvm1.monitor").exists());
    assert!(base.join("ctrl/kvm1.serial").exists());
    let runtime: Value =
        serde_json::from_slice(&std::fs::read(base.join("conf/kvm1.runtime")).unwrap()).unwrap();
    assert_eq!(runtime[0][0], kvm_path());
    assert_eq!(runtime[2]["disk_cache"], "writeback");

    // Listed with its memory and vcpus.
    assert_eq!(ok(&node, "instance_list", &json!([["kvm"]])), json!([NAME]));
    assert_eq!(
        ok(&node, "instance_info", &json!([NAME, "kvm"])),
        json!({"memory": 128, "state": "---b-", "time": "0"})
    );
    assert_eq!(
        ok(&node, "all_instances_info", &json!([["kvm", "fake"]])),
        json!({NAME: {"memory": 128, "vcpus": 2, "state": "---b-", "time": "0"}})
    );
    // VNC answers on the instance's network port.
    let mut vnc = TcpStream::connect(("127.0.0.1", port)).unwrap();
    vnc.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hello = [0u8; 4];
    vnc.read_exact(&mut hello).unwrap();
    assert_eq!(&hello, b"RFB ");
    drop(vnc);
    if let Some(b) = &bridge {
        let tap = std::fs::read_to_string(base.join("nic/kvm1/0")).expect("tap name file");
        assert_eq!(b.ports(), [tap]);
        assert!(cmdline.contains("-device virtio-net-pci,mac=aa:00:00:35:d4:01,netdev=netdev0"));
    }

    // A second start: 2.5.2's backend answers null and starts nothing...
    assert_eq!(
        ok(&node, "instance_start", &json!([inst, false])),
        Value::Null
    );
    assert_eq!(guard.pid(NAME), Some(pid));
    // ...because the hypervisor refuses it with 2.5.2's message.
    let paths = ganeti::paths::Paths::with_root(&node.root.dir);
    let hv = ganeti::hypervisor::get(&paths, "kvm").unwrap();
    let parsed: ganeti::objects::Instance = serde_json::from_value(inst.clone()).unwrap();
    assert_eq!(
        hv.start(&parsed, &[], false).unwrap_err().to_string(),
        "Failed to start instance kvm1: already running"
    );

    // The node daemon restarts; the instance is still known.
    let root = stop_noded(node);
    assert!(is_qemu_of(pid, NAME));
    node = TlsNode::start(root, &[]);
    assert_eq!(ok(&node, "instance_list", &json!([["kvm"]])), json!([NAME]));
    assert_eq!(
        ok(&node, "instance_info", &json!([NAME, "kvm"]))["memory"],
        128
    );

    // Soft reboot: a new qemu from the saved runtime.
    assert_eq!(
        ok(&node, "instance_reboot", &json!([inst, "soft", 10])),
        Value::Null
    );
    let new_pid = guard.pid(NAME).unwrap();
    assert_ne!(new_pid, pid);
    assert!(!is_qemu_of(pid, NAME));
    assert!(is_qemu_of(new_pid, NAME));
    assert_eq!(ok(&node, "instance_list", &json!([["kvm"]])), json!([NAME]));

    // Shutdown: no guest answers the ACPI request, so after the 2 s timeout
    // the node kills qemu; all within a few seconds.
    let t = Instant::now();
    assert_eq!(
        ok(&node, "instance_shutdown", &json!([inst, 2])),
        Value::Null
    );
    let took = t.elapsed();
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(12), "{took:?}");
    assert!(!is_qemu_of(new_pid, NAME));
    assert_eq!(ok(&node, "instance_list", &json!([["kvm"]])), json!([]));
    assert_eq!(ok(&node, "instance_info", &json!([NAME, "kvm"])), json!({}));
    for gone in [
        "pid/kvm1",
        "ctrl/kvm1.monitor",
        "ctrl/kvm1.serial",
        "conf/kvm1.runtime",
        "nic/kvm1",
    ] {
        assert!(!base.join(gone).exists(), "{gone}");
    }
    assert!(!link.is_symlink());
    assert!(disk.exists());
    if let Some(b) = &bridge {
        assert!(b.ports().is_empty());
    }
    let root = stop_noded(node);
    drop(guard);
    drop(root);
}

/// A hung kvm (stopped with SIGSTOP: neither its monitor nor its signal
/// handlers run) is still shut down: the unanswered soft stop is no error,
/// and the forced one at the timeout ends it.
#[test]
fn kvm_hung_instance_is_forced_down() {
    kvm_path();
    let root = Root::new("kvm-hung");
    std::fs::create_dir_all(root.path("var/run/ganeti")).unwrap();
    root.set_file_storage();
    let disk = root.path(DISK);
    std::fs::create_dir_all(disk.parent().unwrap()).unwrap();
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let guard = QemuGuard::new(&root);
    let node = TlsNode::start(root, &[]);
    let inst = instance(vnc_port(), None);
    assert_eq!(
        ok(&node, "instance_start", &json!([inst, false])),
        Value::Null
    );
    let pid = guard.pid(NAME).expect("pid file");
    signal(pid, libc::SIGSTOP);
    let t = Instant::now();
    assert_eq!(
        ok(&node, "instance_shutdown", &json!([inst, 2])),
        Value::Null
    );
    // 2 s of soft stops, each waiting at most 2 s for the monitor, then
    // SIGTERM (and SIGCONT, or it would wait 30 s more): about 4 s.
    let took = t.elapsed();
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(!is_qemu_of(pid, NAME));
    assert_eq!(ok(&node, "instance_list", &json!([["kvm"]])), json!([]));
    let root = stop_noded(node);
    drop(guard);
    drop(root);
}

#[test]
fn kvm_refusals_start_nothing() {
    kvm_path();
    let root = Root::new("kvm-refuse");
    std::fs::create_dir_all(root.path("var/run/ganeti")).unwrap();
    root.set_file_storage();
    let disk = root.path(DISK);
    std::fs::create_dir_all(disk.parent().unwrap()).unwrap();
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let guard = QemuGuard::new(&root);
    let node = TlsNode::start(root, &[]);
    let base = node.root.path("var/run/ganeti/kvm-hypervisor");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut i = instance(vnc_port(), None);
        f(&mut i);
        json!([i, false])
    };
    // Hostile names.
    for bad in ["../kvm1", "kvm1,process=x", "a/b", "..", "kvm 1"] {
        let e = fail(&node, "instance_start", &with(&|i| i["name"] = json!(bad)));
        assert!(e.contains("Invalid instance name"), "{bad}: {e}");
    }
    // A parameter smuggling options onto kvm's command line.
    let e = fail(
        &node,
        "instance_start",
        &with(&|i| i["hvparams"]["disk_type"] = json!("virtio,file=/etc/shadow")),
    );
    assert!(
        e.starts_with("Hypervisor error: Parameter 'disk_type' fails syntax check"),
        "{e}"
    );
    // A MAC that is not one.
    let e = fail(
        &node,
        "instance_start",
        &with(&|i| {
            i["nics"] = json!([{"mac": "aa:00:00:35:d4:01,model=x",
                                "nicparams": {"mode": "bridged", "link": "br0"}}])
        }),
    );
    assert!(e.starts_with("Hypervisor error: Invalid NIC 0:"), "{e}");
    // More NICs than kvm takes: refused before any tap is opened (the
    // bridge does not exist, so configuring one would fail differently).
    for (count, refused) in [(32, false), (33, true)] {
        let e = fail(
            &node,
            "instance_start",
            &with(&|i| {
                let nic = json!({"mac": "aa:00:00:35:d4:01",
                                 "nicparams": {"mode": "bridged", "link": "gntnobr0"}});
                i["nics"] = Value::Array(vec![nic; count]);
            }),
        );
        assert_eq!(
            e == "Hypervisor error: Failed to start instance kvm1: it has 33 NICs, kvm takes at most 32",
            refused,
            "{count}: {e}"
        );
    }
    // Read-only disks, as 2.5.2.
    let e = fail(
        &node,
        "instance_start",
        &with(&|i| i["disks"][0]["mode"] = json!("ro")),
    );
    assert_eq!(
        e,
        "Hypervisor error: Instance has read-only disks which are not supported by KVM"
    );
    // Unsupported features.
    let e = fail(
        &node,
        "instance_start",
        &with(&|i| i["hvparams"]["security_model"] = json!("pool")),
    );
    assert!(
        e.contains("Parameter 'security_model' is not supported"),
        "{e}"
    );
    assert_eq!(
        fail(
            &node,
            "hypervisor_validate_params",
            &json!(["kvm", hvparams().as_object().unwrap().clone().into_iter()
                .chain([("kernel_path".to_string(), json!("/boot/none"))])
                .collect::<serde_json::Map<String, Value>>()])
        ),
        "Parameter 'kernel_path' fails validation: not found or not a file (current value: '/boot/none')"
    );
    assert_eq!(
        ok(
            &node,
            "hypervisor_validate_params",
            &json!(["kvm", hvparams()])
        ),
        Value::Null
    );
    // Nothing runs, no runtime was left, no link either.
    assert_eq!(ok(&node, "instance_list", &json!([["kvm"]])), json!([]));
    assert!(guard.pid(NAME).is_none());
    assert_eq!(std::fs::read_dir(base.join("conf")).unwrap().count(), 0);
    assert!(!node
        .root
        .path("var/run/ganeti/instance-disks/kvm1:0")
        .is_symlink());
    assert!(!node.root.path("var/run/ganeti/kvm1").exists());
    let root = stop_noded(node);
    drop(guard);
    drop(root);
}
