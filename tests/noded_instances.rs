//! The instance procedures with the fake hypervisor, over real TLS against
//! the real binary: the recorded 2.5.2 exchanges (samples/ganeti-2.5.2/rpc
//! 17, 18, 23-28: list, start, info, all_instances_info, shutdown, info)
//! replayed with their exact bodies, then reboot, migratable, parameter
//! validation, unknown hypervisors, hostile names and the body limit.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;

/// rpc/23-instance_start.body and rpc/27-instance_shutdown.body, verbatim.
const START_23: &str = r#"[{"admin_up": true, "beparams": {"auto_balance": true, "memory": 128, "vcpus": 1}, "ctime": 1700000000.0, "disk_template": "file", "disks": [{"children": [], "dev_type": "file", "iv_name": "disk/0", "logical_id": ["loop", "/srv/ganeti/file-storage/inst1.lab25.test/disk0"], "mode": "rw", "physical_id": ["loop", "/srv/ganeti/file-storage/inst1.lab25.test/disk0"], "size": 128}], "hvparams": {}, "hypervisor": "fake", "mtime": 1700000000.0, "name": "inst1.lab25.test", "nics": [{"mac": "aa:00:00:35:d4:01", "nicparams": {"link": "g25br0", "mode": "bridged"}}], "os": "lab", "osparams": {}, "primary_node": "localhost", "serial_no": 1, "tags": [], "uuid": "5e0f8e61-6b9d-4a3c-9c0b-1a2b3c4d5e6f"}, false]"#;
const SHUTDOWN_27: &str = r#"[{"admin_up": true, "beparams": {"auto_balance": true, "memory": 128, "vcpus": 1}, "ctime": 1700000000.0, "disk_template": "file", "disks": [{"children": [], "dev_type": "file", "iv_name": "disk/0", "logical_id": ["loop", "/srv/ganeti/file-storage/inst1.lab25.test/disk0"], "mode": "rw", "physical_id": ["loop", "/srv/ganeti/file-storage/inst1.lab25.test/disk0"], "size": 128}], "hvparams": {}, "hypervisor": "fake", "mtime": 1700000000.0, "name": "inst1.lab25.test", "nics": [{"mac": "aa:00:00:35:d4:01", "nicparams": {"link": "g25br0", "mode": "bridged"}}], "os": "lab", "osparams": {}, "primary_node": "localhost", "serial_no": 1, "tags": [], "uuid": "5e0f8e61-6b9d-4a3c-9c0b-1a2b3c4d5e6f"}, 120]"#;
const NAME: &str = "inst1.lab25.test";
const DISK: &str = "/srv/ganeti/file-storage/inst1.lab25.test/disk0";

struct Node(TlsNode);

impl std::ops::Deref for Node {
    type Target = TlsNode;
    fn deref(&self) -> &TlsNode {
        &self.0
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        signal(self.pid, libc::SIGTERM);
        wait_until(Duration::from_secs(5), || !alive(self.pid));
    }
}

impl Node {
    fn start(tag: &str) -> Node {
        let root = Root::new(tag);
        std::fs::create_dir_all(root.path("var/run/ganeti")).unwrap();
        root.set_file_storage();
        Node(TlsNode::start(root, &[]))
    }

    fn call(&self, procedure: &str, body: &str) -> Value {
        let a = self.raw(procedure, body);
        assert_eq!(a.status, 200, "{}", a.text());
        serde_json::from_slice(&a.body).unwrap()
    }

    fn ok(&self, procedure: &str, body: &str) -> Value {
        let v = self.call(procedure, body);
        assert_eq!(v[0], true, "{procedure} {body}: {v}");
        v[1].clone()
    }

    fn fail(&self, procedure: &str, body: &str) -> String {
        let v = self.call(procedure, body);
        assert_eq!(v[0], false, "{procedure} {body}: {v}");
        v[1].as_str().unwrap().to_string()
    }

    fn state_file(&self, name: &str) -> PathBuf {
        self.root
            .path(&format!("var/run/ganeti/fake-hypervisor/{name}"))
    }

    fn link(&self, name: &str, idx: usize) -> PathBuf {
        self.root
            .path(&format!("var/run/ganeti/instance-disks/{name}:{idx}"))
    }

    /// Creates the sample's disk file under the node's file storage.
    fn create_disk(&self) -> PathBuf {
        let disk = self.root.path(DISK);
        std::fs::create_dir_all(disk.parent().unwrap()).unwrap();
        std::fs::File::create(&disk)
            .unwrap()
            .set_len(128 << 20)
            .unwrap();
        disk
    }
}

/// A body with the sample instance changed by `f`.
fn start_body(f: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(START_23).unwrap();
    f(&mut v[0]);
    v.to_string()
}

#[test]
fn recorded_fake_exchanges() {
    let node = Node::start("fake-samples");
    let disk = node.create_disk();
    // 17, 18: nothing runs yet.
    assert_eq!(node.ok("instance_list", r#"[["fake"]]"#), json!([]));
    assert_eq!(node.ok("all_instances_info", r#"[["fake"]]"#), json!({}));
    // 23: start.
    assert_eq!(node.ok("instance_start", START_23), Value::Null);
    assert_eq!(
        std::fs::read_to_string(node.state_file(NAME)).unwrap(),
        "0\n128\n1\n"
    );
    assert_eq!(std::fs::read_link(node.link(NAME, 0)).unwrap(), disk);
    // 24, 25, 26.
    assert_eq!(
        node.ok("instance_info", &json!([NAME, "fake"]).to_string()),
        json!({"memory": 128, "state": "---b-", "time": "0"})
    );
    assert_eq!(node.ok("instance_list", r#"[["fake"]]"#), json!([NAME]));
    assert_eq!(
        node.ok("all_instances_info", r#"[["fake"]]"#),
        json!({NAME: {"memory": 128, "state": "---b-", "time": "0", "vcpus": 1}})
    );
    // A second start of a running instance does nothing (2.5.2 answers
    // null), even with other parameters.
    let bigger = start_body(|i| i["beparams"]["memory"] = json!(512));
    assert_eq!(node.ok("instance_start", &bigger), Value::Null);
    assert_eq!(
        std::fs::read_to_string(node.state_file(NAME)).unwrap(),
        "0\n128\n1\n"
    );
    // node_info subtracts the running fake instance's memory; the migration
    // check passes with the disk link in place.
    let info = node.ok("node_info", r#"[null, "fake"]"#);
    assert!(info["memory_free"].as_u64().unwrap() < info["memory_total"].as_u64().unwrap());
    let inst = serde_json::to_string(&serde_json::from_str::<Value>(START_23).unwrap()[0]).unwrap();
    assert_eq!(
        node.ok("instance_migratable", &format!("[{inst}]")),
        Value::Null
    );
    // 27: shutdown (the first stop removes the state file: no 5 s wait).
    let t = Instant::now();
    assert_eq!(node.ok("instance_shutdown", SHUTDOWN_27), Value::Null);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(!node.state_file(NAME).exists());
    assert!(!node.link(NAME, 0).is_symlink());
    // 28: gone.
    assert_eq!(
        node.ok("instance_info", &json!([NAME, "fake"]).to_string()),
        json!({})
    );
    // Shutting down again is a no-op; migratable is not.
    assert_eq!(node.ok("instance_shutdown", SHUTDOWN_27), Value::Null);
    assert_eq!(
        node.fail("instance_migratable", &format!("[{inst}]")),
        format!("Instance {NAME} is not running")
    );
    assert!(disk.exists());
}

#[test]
fn reboot_types() {
    let node = Node::start("fake-reboot");
    node.create_disk();
    let body = |kind: &str| {
        let inst = &serde_json::from_str::<Value>(START_23).unwrap()[0];
        json!([inst, kind, 5]).to_string()
    };
    assert_eq!(
        node.fail("instance_reboot", &body("soft")),
        format!("Cannot reboot instance {NAME} that is not running")
    );
    node.ok("instance_start", START_23);
    assert_eq!(node.ok("instance_reboot", &body("soft")), Value::Null);
    assert!(node.state_file(NAME).exists());
    // Hard: shutdown then start; the instance runs again with its link.
    assert_eq!(node.ok("instance_reboot", &body("hard")), Value::Null);
    assert!(node.state_file(NAME).exists());
    assert!(node.link(NAME, 0).is_symlink());
    assert_eq!(
        node.fail("instance_reboot", &body("full")),
        "Invalid reboot_type received: full"
    );
    assert_eq!(node.ok("instance_list", r#"[["fake"]]"#), json!([NAME]));
    node.ok("instance_shutdown", SHUTDOWN_27);
    assert_eq!(node.ok("instance_list", r#"[["fake", "kvm"]]"#), json!([]));
}

#[test]
fn errors_follow_2_5_2() {
    let node = Node::start("fake-errors");
    // No disk file: the block device is not set up, nothing starts.
    let e = node.fail("instance_start", START_23);
    assert!(
        e.starts_with("Block device error: Block device '") && e.ends_with("' is not set up."),
        "{e}"
    );
    assert!(!node.state_file(NAME).exists());
    // A disk outside the file storage directories is refused.
    let outside = start_body(|i| {
        i["disks"][0]["logical_id"] = json!(["loop", "/etc/passwd"]);
    });
    assert!(node
        .fail("instance_start", &outside)
        .starts_with("Block device error: "));
    // Unknown hypervisors, per procedure.
    let xen = start_body(|i| i["hypervisor"] = json!("xen-pvm"));
    assert_eq!(
        node.fail("instance_start", &xen),
        "Error enumerating instances (hypervisor xen-pvm): Unknown hypervisor type 'xen-pvm'"
    );
    assert_eq!(
        node.fail("instance_list", r#"[["fake", "chroot"]]"#),
        "Error enumerating instances (hypervisor chroot): Unknown hypervisor type 'chroot'"
    );
    assert_eq!(
        node.fail("instance_info", r#"["i1", "lxc"]"#),
        "Error while executing backend function: Unknown hypervisor type 'lxc'"
    );
    assert_eq!(
        node.fail("all_instances_info", r#"[["fake", "xen-hvm"]]"#),
        "Error while executing backend function: Unknown hypervisor type 'xen-hvm'"
    );
    assert_eq!(
        node.fail("hypervisor_validate_params", r#"["xen-pvm", {}]"#),
        "Unknown hypervisor type 'xen-pvm'"
    );
    assert_eq!(
        node.ok("hypervisor_validate_params", r#"["fake", {}]"#),
        Value::Null
    );
    // kvm's checks, without a prefix.
    assert_eq!(
        node.fail(
            "hypervisor_validate_params",
            r#"["kvm", {"kernel_path": ""}]"#
        ),
        "Parameter 'initrd_path' is missing"
    );
    // Wrong shapes name the problem.
    let e = node.fail("instance_start", r#"[{"name": 5}, false]"#);
    assert!(e.contains("invalid arguments"), "{e}");
    let e = node.fail("instance_reboot", r#"[{"name": "x"}, "soft"]"#);
    assert!(e.contains("invalid arguments"), "{e}");
}

#[test]
fn hostile_names_change_nothing() {
    let node = Node::start("fake-hostile");
    node.create_disk();
    let run = node.root.path("var/run/ganeti");
    // Four levels up from the state and link directories is the node's
    // root, many more is the machine's; an escape would land in either.
    std::fs::create_dir_all(node.root.path("tmp")).unwrap();
    let deep = format!("{}tmp/evil", "../".repeat(40));
    for bad in [
        "../../../../tmp/evil",
        deep.as_str(),
        "..",
        "a/b",
        "a\u{0}b",
        ".hidden",
        "a:0",
    ] {
        let body = start_body(|i| i["name"] = json!(bad));
        let e = node.fail("instance_start", &body);
        assert!(
            e.starts_with("Error while executing backend function: Invalid instance name"),
            "{bad:?}: {e}"
        );
        let shutdown = json!([serde_json::from_str::<Value>(&body).unwrap()[0], 1]);
        assert!(node
            .fail("instance_shutdown", &shutdown.to_string())
            .contains("Invalid instance name"));
        assert!(node
            .fail("instance_info", &json!([bad, "fake"]).to_string())
            .contains("Invalid instance name"));
    }
    // Nothing was created: no state files, no links.
    let listing: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "ganeti-noded.pid")
        .collect();
    assert!(
        listing.is_empty() || listing == ["fake-hypervisor"] || listing == ["kvm-hypervisor"],
        "{listing:?}"
    );
    assert_eq!(node.ok("instance_list", r#"[["fake"]]"#), json!([]));
    for escaped in [node.root.path("tmp"), PathBuf::from("/tmp")] {
        for name in ["evil", "evil:0"] {
            assert!(!escaped.join(name).exists(), "{}", escaped.display());
        }
    }
}

#[test]
fn instance_body_limit() {
    let node = Node::start("fake-limit");
    const INSTANCE_BODY: usize = 1024 * 1024;
    const SMALL: usize = 64 * 1024;
    let padded = |json: &str, len: usize| format!("{json}{}", " ".repeat(len - json.len()));
    node.create_disk();
    let a = node.raw("instance_start", &padded(START_23, INSTANCE_BODY));
    assert_eq!(a.status, 200, "{}", a.text());
    for p in [
        "instance_start",
        "instance_shutdown",
        "instance_reboot",
        "instance_migratable",
    ] {
        assert_eq!(node.announced(p, INSTANCE_BODY + 1), 413, "{p}");
    }
    for p in [
        "instance_list",
        "instance_info",
        "all_instances_info",
        "hypervisor_validate_params",
    ] {
        assert_eq!(node.announced(p, SMALL + 1), 413, "{p}");
    }
    node.ok("instance_shutdown", SHUTDOWN_27);
}
