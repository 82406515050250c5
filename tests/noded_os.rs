//! OS definitions over real TLS against the real node daemon: os_diagnose,
//! os_get, os_validate, instance_os_add and instance_run_rename, with the
//! example definition of tests/os/lab installing onto a sparse file disk.
//! The scripts' environments are compared variable by variable with 2.5.2's;
//! messages are 2.5.2's; recordings 31 and 32 of 2.5.2 are replayed; hostile
//! names are refused with nothing written.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use common::*;

/// The example OS definition.
const LAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/os/lab");
/// The instance's disk, as the master names it.
const DISK: &str = "/srv/ganeti/file-storage/inst1.example.com/disk0";
const DISK_SIZE: u64 = 64 * 1024 * 1024;
const SEARCH: &str = "/srv/ganeti/os";
const LOG_DIR: &str = "/var/log/ganeti/os";
/// The noded's body limits for these calls.
const INSTANCE_BODY: usize = 1024 * 1024;
const SMALL_BODY: usize = 64 * 1024;

/// Recordings 31 (os_diagnose) and 32 (os_get ["lab"]) of 2.5.2: the
/// answers, for the definitions `lab` (API 10 and 15) and `labvar`.
const SAMPLE_31_ANSWER: &str = r#"[true, [["labvar", "/srv/ganeti/os/labvar", true, "",
    ["default", "small"], [["color", "the color of the instance"], ["size", "the size"]], [20]],
    ["lab", "/srv/ganeti/os/lab", true, "", [], [], [10, 15]]]]"#;
const SAMPLE_32_ANSWER: &str = r#"[true, {"api_versions": [10, 15],
    "create_script": "/srv/ganeti/os/lab/create", "export_script": "/srv/ganeti/os/lab/export",
    "import_script": "/srv/ganeti/os/lab/import", "name": "lab", "path": "/srv/ganeti/os/lab",
    "rename_script": "/srv/ganeti/os/lab/rename", "supported_parameters": [],
    "supported_variants": []}]"#;

/// A node daemon in its own root with the lab OS installed, the file
/// storage ssconf keys, a 64 MiB sparse disk for inst1.example.com and a
/// directory `outside` that no call may touch.
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
        copy_dir(Path::new(LAB), &root.path("srv/ganeti/os/lab"));
        root.set_file_storage();
        let disk = root.path(DISK);
        std::fs::create_dir_all(disk.parent().unwrap()).unwrap();
        std::fs::File::create(&disk)
            .unwrap()
            .set_len(DISK_SIZE)
            .unwrap();
        std::fs::create_dir_all(root.path("outside")).unwrap();
        std::fs::write(root.path("outside/precious"), "keep me\n").unwrap();
        Node(TlsNode::start(root, &[]))
    }

    fn path(&self, wire: &str) -> PathBuf {
        self.root.path(wire)
    }

    /// One call; the raw answer text (HTTP 200 expected).
    fn text(&self, procedure: &str, args: &Value) -> String {
        let a = self.raw(procedure, &args.to_string());
        assert_eq!(a.status, 200, "{procedure}: {}", a.text());
        a.text()
    }

    fn call(&self, procedure: &str, args: &Value) -> Value {
        serde_json::from_str(&self.text(procedure, args)).unwrap()
    }

    fn ok(&self, procedure: &str, args: &Value) -> Value {
        let v = self.call(procedure, args);
        assert_eq!(v[0], true, "{procedure} {args}: {v}");
        v[1].clone()
    }

    fn fail(&self, procedure: &str, args: &Value) -> String {
        let v = self.call(procedure, args);
        assert_eq!(v[0], false, "{procedure} {args}: {v}");
        v[1].as_str().unwrap().to_string()
    }

    /// The names in the OS log directory, sorted.
    fn logs(&self) -> Vec<String> {
        let mut names: Vec<String> = match std::fs::read_dir(self.path(LOG_DIR)) {
            Ok(d) => d
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    /// The one log file named `<prefix>-<timestamp>.log` with a timestamp
    /// between `since` and now; its text.
    fn log_of(&self, prefix: &str, since: SystemTime) -> (String, String) {
        let stamps = stamps_since(since);
        let names: Vec<String> = self
            .logs()
            .into_iter()
            .filter(|n| {
                n.strip_prefix(&format!("{prefix}-"))
                    .and_then(|rest| rest.strip_suffix(".log"))
                    .is_some_and(|ts| stamps.iter().any(|s| s == ts))
            })
            .collect();
        assert_eq!(names.len(), 1, "{prefix}: {:?}", self.logs());
        let text = std::fs::read_to_string(self.path(LOG_DIR).join(&names[0])).unwrap();
        (names[0].clone(), text)
    }

    /// The first sector of the disk, without the zero padding.
    fn disk_header(&self) -> String {
        let data = std::fs::read(self.path(DISK)).unwrap();
        assert_eq!(data.len() as u64, DISK_SIZE);
        String::from_utf8_lossy(&data[..512])
            .trim_end_matches('\0')
            .to_string()
    }

    /// An OS definition `name` in the search path: `api` and the files
    /// given as (name, text, mode).
    fn make_os(&self, name: &str, api: Option<&str>, files: &[(&str, &str, u32)]) -> PathBuf {
        let dir = self.path(SEARCH).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(api) = api {
            write(&dir.join("ganeti_api_version"), api, 0o644);
        }
        for (file, text, mode) in files {
            write(&dir.join(file), text, *mode);
        }
        dir
    }
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Copies a directory of plain files, keeping their modes.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The file-name timestamps (local time) of every second since `since`.
fn stamps_since(since: SystemTime) -> Vec<String> {
    let mut t = since - Duration::from_secs(1);
    let mut out = Vec::new();
    while t <= SystemTime::now() + Duration::from_secs(1) {
        out.push(ganeti::osdef::timestamp_for_filename(t));
        t += Duration::from_secs(1);
    }
    out
}

/// The five scripts of a definition, each `text`, executable.
fn scripts(text: &str) -> Vec<(&'static str, &str, u32)> {
    ["create", "import", "export", "rename", "verify"]
        .into_iter()
        .map(|s| (s, text, 0o755))
        .collect()
}

/// inst1 as a 2.5.2 master sends it (filled parameters, kvm, one file
/// disk, a bridged and a routed NIC).
fn instance(name: &str, os: &str) -> Value {
    json!({
        "name": name,
        "os": os,
        "hypervisor": "kvm",
        "primary_node": "node1.example.com",
        "uuid": "0d8d6e2a-3b2f-4d7c-9a51-5c1e2f3a4b1c",
        "ctime": 1326196800.123456,
        "mtime": 1326196900.5,
        "serial_no": 3,
        "admin_up": false,
        "disk_template": "file",
        "network_port": 11000,
        "tags": [],
        "hvparams": {"acpi": true, "disk_type": "paravirtual", "nic_type": "e1000",
                     "kernel_path": "/boot/vmlinuz-2.6-kvmU", "migration_port": 8102,
                     "vnc_bind_address": null},
        "beparams": {"memory": 128, "vcpus": 1, "auto_balance": true},
        "osparams": {"label": "lab1", "zero": "yes"},
        "nics": [
            {"mac": "aa:00:00:11:22:33", "ip": "192.0.2.10",
             "nicparams": {"mode": "bridged", "link": "br0"}},
            {"mac": "aa:00:00:44:55:66", "ip": null,
             "nicparams": {"mode": "routed", "link": "100"}}
        ],
        "disks": [{"dev_type": "file", "logical_id": ["loop", DISK],
                   "physical_id": ["loop", DISK], "size": 64, "iv_name": "disk/0",
                   "mode": "rw"}]
    })
}

/// The environment 2.5.2 gives the lab scripts for [`instance`].
fn expected_env(node: &Node, name: &str, os: &str, variant: &str) -> BTreeMap<String, String> {
    let disk = node.path(DISK).display().to_string();
    [
        ("OS_API_VERSION", "20"),
        ("OS_NAME", "lab"),
        ("OS_VARIANT", variant),
        ("DEBUG_LEVEL", "0"),
        ("OSP_LABEL", "lab1"),
        ("OSP_ZERO", "yes"),
        ("PATH", "/sbin:/bin:/usr/sbin:/usr/bin"),
        ("INSTANCE_NAME", name),
        ("INSTANCE_OS", os),
        ("INSTANCE_UUID", "0d8d6e2a-3b2f-4d7c-9a51-5c1e2f3a4b1c"),
        ("INSTANCE_CTIME", "1326196800.12"),
        ("INSTANCE_MTIME", "1326196900.5"),
        ("INSTANCE_PRIMARY_NODE", "node1.example.com"),
        ("INSTANCE_SECONDARY_NODES", ""),
        ("HYPERVISOR", "kvm"),
        ("DISK_COUNT", "1"),
        ("DISK_0_PATH", &disk),
        ("DISK_0_ACCESS", "rw"),
        ("DISK_0_FRONTEND_TYPE", "paravirtual"),
        ("DISK_0_BACKEND_TYPE", "file:loop"),
        ("NIC_COUNT", "2"),
        ("NIC_0_MAC", "aa:00:00:11:22:33"),
        ("NIC_0_IP", "192.0.2.10"),
        ("NIC_0_MODE", "bridged"),
        ("NIC_0_BRIDGE", "br0"),
        ("NIC_0_LINK", "br0"),
        ("NIC_0_FRONTEND_TYPE", "e1000"),
        ("NIC_1_MAC", "aa:00:00:44:55:66"),
        ("NIC_1_MODE", "routed"),
        ("NIC_1_LINK", "100"),
        ("NIC_1_FRONTEND_TYPE", "e1000"),
        ("INSTANCE_BE_memory", "128"),
        ("INSTANCE_BE_vcpus", "1"),
        ("INSTANCE_BE_auto_balance", "True"),
        ("INSTANCE_HV_acpi", "True"),
        ("INSTANCE_HV_disk_type", "paravirtual"),
        ("INSTANCE_HV_nic_type", "e1000"),
        ("INSTANCE_HV_kernel_path", "/boot/vmlinuz-2.6-kvmU"),
        ("INSTANCE_HV_migration_port", "8102"),
        ("INSTANCE_HV_vnc_bind_address", "None"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The last environment block a lab script logged (one `NAME=value` per
/// line).
fn logged_env(text: &str, script: &str) -> BTreeMap<String, String> {
    let start = format!("--- environment of {script} ---\n");
    let at = text.rfind(&start).expect("no environment in the log") + start.len();
    let block = &text[at..];
    let end = block.find("--- end of environment ---").unwrap();
    // With DEBUG_LEVEL 1 the scripts trace their commands ("+ ...").
    block[..end]
        .lines()
        .filter(|l| !l.starts_with("+ "))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Compares two environments variable by variable.
fn assert_env(actual: &BTreeMap<String, String>, expected: &BTreeMap<String, String>) {
    let mut problems = Vec::new();
    for (k, v) in expected {
        match actual.get(k) {
            None => problems.push(format!("{k} missing (want {v:?})")),
            Some(a) if a != v => problems.push(format!("{k}={a:?}, want {v:?}")),
            _ => {}
        }
    }
    for k in actual.keys().filter(|k| !expected.contains_key(*k)) {
        problems.push(format!("{k}={:?} not expected", actual[k]));
    }
    assert!(problems.is_empty(), "environment:\n{}", problems.join("\n"));
}

#[test]
fn create_installs_onto_a_file_disk_with_2_5_2s_environment() {
    let node = Node::start("os-add");
    std::fs::write(node.path(DISK), vec![0xaa; 2 * 1024 * 1024]).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(node.path(DISK))
        .unwrap()
        .set_len(DISK_SIZE)
        .unwrap();
    let since = SystemTime::now();
    let args = json!([instance("inst1.example.com", "lab+header"), false, 0]);
    assert_eq!(node.text("instance_os_add", &args), "[true, null]\n");

    let (name, log) = node.log_of("add-lab+header-inst1.example.com", since);
    let mode = std::fs::metadata(node.path(LOG_DIR).join(&name))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{name}");
    let expected = expected_env(&node, "inst1.example.com", "lab+header", "header");
    assert_env(&logged_env(&log, "create"), &expected);
    assert!(log.contains(
        "lab-os create: instance=inst1.example.com os=lab variant=header disks=1 api=20 \
         reinstall=0: done"
    ));
    // The header is on the disk; zero=yes cleared the rest of the first MiB.
    assert_eq!(
        node.disk_header(),
        "GANETI-RS-LAB-OS\ninstance=inst1.example.com\nlabel=lab1\nvariant=header\n"
    );
    let data = std::fs::read(node.path(DISK)).unwrap();
    assert!(data[512..1024 * 1024].iter().all(|&b| b == 0));
    assert!(data[1024 * 1024..2 * 1024 * 1024]
        .iter()
        .all(|&b| b == 0xaa));

    // A reinstall with debugging, and the default variant (the first one
    // declared) when the instance names none.
    let since = SystemTime::now();
    let args = json!([instance("inst1.example.com", "lab"), true, 1]);
    assert_eq!(node.text("instance_os_add", &args), "[true, null]\n");
    let (_, log) = node.log_of("add-lab-inst1.example.com", since);
    let mut expected = expected_env(&node, "inst1.example.com", "lab", "header");
    expected.insert("INSTANCE_REINSTALL".into(), "1".into());
    expected.insert("DEBUG_LEVEL".into(), "1".into());
    assert_env(&logged_env(&log, "create"), &expected);
    assert!(log.contains("+ write_header"), "{log}");
    assert!(log.contains("reinstall=1: done"));
    assert_eq!(
        std::fs::read_to_string(node.path("outside/precious")).unwrap(),
        "keep me\n"
    );
}

#[test]
fn create_with_the_ext4_variant_makes_a_file_system() {
    if !["/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4"]
        .iter()
        .any(|p| Path::new(p).exists())
    {
        eprintln!("skipped: mkfs.ext4 is not installed");
        return;
    }
    let node = Node::start("os-ext4");
    let args = json!([instance("inst1.example.com", "lab+ext4"), false, 0]);
    assert_eq!(node.text("instance_os_add", &args), "[true, null]\n");
    let data = std::fs::read(node.path(DISK)).unwrap();
    // The ext4 superblock at 1024: magic 0xEF53 at +56, label at +120.
    assert_eq!(&data[1024 + 56..1024 + 58], &[0x53, 0xef]);
    assert_eq!(&data[1024 + 120..1024 + 125], b"lab1\0");
}

#[test]
fn create_failures_report_the_log_tail() {
    let node = Node::start("os-fail");
    // 25 lines: a tab, a carriage return and UTF-8 among them; exit 3.
    let create = "#!/bin/sh\ni=1\nwhile [ $i -le 22 ]; do echo \"line $i\"; i=$((i+1)); done\n\
                  printf 'tab\\there\\n'\nprintf 'cr\\rinside\\n'\necho 'caf\u{e9}' >&2\nexit 3\n";
    let mut files = scripts(create);
    files.retain(|f| f.0 != "verify");
    node.make_os("broken", Some("15\n"), &files);
    let args = json!([instance("inst1.example.com", "broken"), false, 0]);
    let msg = node.fail("instance_os_add", &args);
    // splitlines turns "cr\rinside" into two lines: 26 lines, the last 20.
    let mut want: Vec<String> = (7..=22).map(|i| format!("line {i}")).collect();
    want.extend(["tab\\there", "cr", "inside", "caf\\xc3\\xa9"].map(String::from));
    assert_eq!(
        msg,
        format!(
            "OS create script failed (exited with exit code 3), last lines in the log \
             file:\n{}",
            want.join("\n")
        )
    );

    // A script without a #! line: 2.5.2's exec error (not run by /bin/sh).
    let mut files = scripts("touch ran\nexit 0\n");
    files.retain(|f| f.0 != "verify");
    node.make_os("noshebang", Some("10\n"), &files);
    let args = json!([instance("inst1.example.com", "noshebang"), false, 0]);
    assert_eq!(
        node.fail("instance_os_add", &args),
        "Error while executing backend function: [Errno 8] Exec format error"
    );
    assert!(!node.path(SEARCH).join("noshebang/ran").exists());

    // A missing OS, and a disk that is not there: nothing runs.
    let before = node.logs();
    let args = json!([instance("inst1.example.com", "nosuch+x"), false, 0]);
    assert_eq!(
        node.fail("instance_os_add", &args),
        "Directory for OS nosuch not found in search path"
    );
    std::fs::remove_file(node.path(DISK)).unwrap();
    let args = json!([instance("inst1.example.com", "lab"), false, 0]);
    node.fail("instance_os_add", &args);
    assert_eq!(node.logs(), before);
}

#[test]
fn rename_runs_the_rename_script() {
    let node = Node::start("os-rename");
    // Before create the disk has no header: the script fails, with its
    // message in the log tail.
    let args = json!([
        instance("inst2.example.com", "lab+header"),
        "inst1.example.com",
        0
    ]);
    let msg = node.fail("instance_run_rename", &args);
    let disk = node.path(DISK).display().to_string();
    assert!(
        msg.starts_with(
            "OS rename script failed (exited with exit code 1), last lines in the log file:\n"
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with(&format!(
            "lab-os rename: error: disk 0 ({disk}) holds no lab OS header"
        )),
        "{msg}"
    );

    // The failed rename's log may carry the same one-second timestamp as
    // the next one: remove it so that only the successful run's log is read.
    for name in node.logs() {
        if name.starts_with("rename-") {
            std::fs::remove_file(node.path(LOG_DIR).join(name)).unwrap();
        }
    }
    let args = json!([instance("inst1.example.com", "lab+header"), false, 0]);
    node.ok("instance_os_add", &args);
    let since = SystemTime::now();
    let args = json!([
        instance("inst2.example.com", "lab+header"),
        "inst1.example.com",
        0
    ]);
    assert_eq!(node.text("instance_run_rename", &args), "[true, null]\n");
    assert_eq!(
        node.disk_header(),
        "GANETI-RS-LAB-OS\ninstance=inst2.example.com\nlabel=lab1\nvariant=header\n"
    );
    let (_, log) = node.log_of(
        "rename-lab+header-inst1.example.com-inst2.example.com",
        since,
    );
    let mut expected = expected_env(&node, "inst2.example.com", "lab+header", "header");
    expected.insert("OLD_INSTANCE_NAME".into(), "inst1.example.com".into());
    assert_env(&logged_env(&log, "rename"), &expected);
    assert!(log.contains("lab-os rename: inst1.example.com -> inst2.example.com: done"));
}

/// The search path of the diagnose test: the lab OS and broken ones.
fn install_test_definitions(node: &Node) {
    let all = scripts("#!/bin/sh\nexit 0\n");
    let some = |skip: &[&str]| -> Vec<(&str, &str, u32)> {
        all.iter()
            .copied()
            .filter(|f| !skip.contains(&f.0))
            .collect()
    };
    node.make_os("a-noapi", None, &all);
    let d = node.make_os("apidir", None, &all);
    std::fs::create_dir(d.join("ganeti_api_version")).unwrap();
    node.make_os("badapi", Some("20\ntwenty\n"), &all);
    node.make_os("oldapi", Some("5\n"), &all);
    node.make_os("noverify", Some("20\n"), &some(&["verify"]));
    node.make_os("noparams", Some("20\n"), &all);
    let mut noexec = all.clone();
    noexec[0].2 = 0o644;
    node.make_os("noexec", Some("15\n"), &noexec);
    let d = node.make_os("scriptdir", Some("10\n"), &some(&["export"]));
    std::fs::create_dir(d.join("export")).unwrap();
    let mut old10 = some(&["verify"]);
    old10.push(("variants.list", "ignored\n", 0o644));
    node.make_os("old10", Some("10\n"), &old10);
    let mut dotted = all.clone();
    dotted.push(("parameters.list", "", 0o644));
    node.make_os("bad.name", Some("20\n"), &dotted);
    node.make_os(".hidden", Some("20\n"), &dotted);
    std::fs::write(node.path(SEARCH).join("README"), "not an OS\n").unwrap();
    symlink(
        node.path(SEARCH).join("lab"),
        node.path(SEARCH).join("link"),
    )
    .unwrap();
}

#[test]
fn os_diagnose_reports_valid_and_invalid_definitions() {
    let node = Node::start("os-diag");
    install_test_definitions(&node);
    let bad =
        |name: &str, msg: &str| json!([name, format!("{SEARCH}/{name}"), false, msg, [], [], []]);
    let lab_params = json!([
        [
            "label",
            "the text in the header, or the file system label (1 to 16 letters, digits, \
                   '-' or '_'; default: lab)"
        ],
        [
            "zero",
            "\"yes\" to zero the first MiB of disk 0 before installing (default: \"no\")"
        ]
    ]);
    let good = |name: &str| {
        json!([
            name,
            format!("{SEARCH}/{name}"),
            true,
            "",
            ["header", "ext4"],
            lab_params,
            [20]
        ])
    };
    let expected = json!([
        bad("README", "Directory for OS README not found in search path"),
        bad(
            "a-noapi",
            "Required file 'ganeti_api_version' not found under path /srv/ganeti/os/a-noapi: \
             ENOENT"
        ),
        bad(
            "apidir",
            "File 'ganeti_api_version' in /srv/ganeti/os/apidir is not a regular file"
        ),
        bad(
            "bad.name",
            "Directory for OS bad.name not found in search path"
        ),
        bad(
            "badapi",
            "API version(s) can't be converted to integer: invalid literal for int() with \
             base 10: 'twenty'"
        ),
        good("lab"),
        good("link"),
        bad(
            "noexec",
            "File 'create' under path '/srv/ganeti/os/noexec' is not executable"
        ),
        bad(
            "noparams",
            "File 'parameters.list' under path '/srv/ganeti/os/noparams' is missing (ENOENT)"
        ),
        bad(
            "noverify",
            "File 'verify' under path '/srv/ganeti/os/noverify' is missing (ENOENT)"
        ),
        ["old10", "/srv/ganeti/os/old10", true, "", [], [], [10]],
        bad(
            "oldapi",
            "API version mismatch for path '/srv/ganeti/os/oldapi': found [5], want \
             frozenset([10, 20, 15])."
        ),
        bad(
            "scriptdir",
            "File 'export' under path '/srv/ganeti/os/scriptdir' is not a regular file"
        ),
    ]);
    assert_eq!(node.ok("os_diagnose", &json!([])), expected);
    // node_verify's oslist is the same diagnosis.
    let what = json!([{"oslist": null, "vmnodes": []}, "cluster.example.com"]);
    assert_eq!(node.ok("node_verify", &what)["oslist"], expected);
    let what = json!([{"oslist": null, "vmnodes": ["node1.example.com"]}, "cluster"]);
    assert!(node.ok("node_verify", &what).get("oslist").is_none());
    // No search path at all: an empty list.
    std::fs::remove_dir_all(node.path(SEARCH)).unwrap();
    assert_eq!(node.text("os_diagnose", &json!([])), "[true, []]\n");
}

#[test]
fn recordings_31_and_32_are_replayed() {
    let node = Node::start("os-samples");
    std::fs::remove_dir_all(node.path(SEARCH)).unwrap();
    let all = scripts("#!/bin/sh\nexit 0\n");
    let mut labvar = all.clone();
    labvar.push(("variants.list", "default\nsmall\n", 0o644));
    labvar.push((
        "parameters.list",
        "color the color of the instance\nsize the size\n",
        0o644,
    ));
    node.make_os("labvar", Some("20\n"), &labvar);
    let mut lab = all.clone();
    lab.retain(|f| f.0 != "verify");
    node.make_os("lab", Some("10\n15\n"), &lab);

    // 2.5.2 listed the directory in its order; here sorted by name.
    let recorded: Value = serde_json::from_str(SAMPLE_31_ANSWER).unwrap();
    let mut rows = recorded[1].as_array().unwrap().clone();
    rows.sort_by(|a, b| a[0].as_str().cmp(&b[0].as_str()));
    assert_eq!(node.call("os_diagnose", &json!([])), json!([true, rows]));
    let recorded: Value = serde_json::from_str(SAMPLE_32_ANSWER).unwrap();
    assert_eq!(node.call("os_get", &json!(["lab"])), recorded);
}

#[test]
fn os_get_finds_definitions_and_reports_missing_ones() {
    let node = Node::start("os-get");
    let lab = node.ok("os_get", &json!(["lab"]));
    assert_eq!(
        lab,
        json!({
            "name": "lab", "path": "/srv/ganeti/os/lab", "api_versions": [20],
            "create_script": "/srv/ganeti/os/lab/create",
            "export_script": "/srv/ganeti/os/lab/export",
            "import_script": "/srv/ganeti/os/lab/import",
            "rename_script": "/srv/ganeti/os/lab/rename",
            "verify_script": "/srv/ganeti/os/lab/verify",
            "supported_variants": ["header", "ext4"],
            "supported_parameters": lab["supported_parameters"].clone(),
        })
    );
    assert_eq!(node.ok("os_get", &json!(["lab+ext4"])), lab);
    assert_eq!(
        node.text("os_get", &json!(["nosuch"])),
        "[false, \"Directory for OS nosuch not found in search path\"]\n"
    );
    // Names that would leave the search path never match.
    std::fs::create_dir_all(node.path("srv/ganeti/evil")).unwrap();
    copy_dir(Path::new(LAB), &node.path("srv/ganeti/evil"));
    for name in [
        "../evil",
        "lab/../../evil",
        "..",
        ".",
        "/srv/ganeti/os/lab",
        "",
    ] {
        assert_eq!(
            node.fail("os_get", &json!([name])),
            format!("Directory for OS {name} not found in search path"),
        );
    }
    assert!(node
        .fail("os_get", &json!([42]))
        .starts_with("Error while executing backend function: invalid arguments"));
}

#[test]
fn os_validate_checks_parameters_and_runs_verify() {
    let node = Node::start("os-validate");
    let validate = |required: bool, name: &str, checks: Value, params: Value| {
        node.call("os_validate", &json!([required, name, checks, params]))
    };
    assert_eq!(
        validate(
            true,
            "lab",
            json!(["parameters"]),
            json!({"label": "web", "zero": "no"})
        ),
        json!([true, true])
    );
    // Without checks the lab's verify complains (it wants at least one).
    assert_eq!(
        validate(false, "lab+ext4", json!([]), json!({})),
        json!([
            false,
            "OS validation script failed (exited with exit code 1), output: \
                       usage: verify CHECK... (checks: parameters)\n"
        ])
    );
    // A missing OS: an error only when required.
    assert_eq!(
        validate(true, "nosuch", json!([]), json!({})),
        json!([false, "Directory for OS nosuch not found in search path"])
    );
    assert_eq!(
        validate(false, "nosuch", json!([]), json!({})),
        json!([true, false])
    );
    assert_eq!(
        validate(true, "lab", json!(["parameters", "disks"]), json!({})),
        json!([false, "Unknown checks required for OS lab: set(['disks'])"])
    );
    assert_eq!(
        validate(
            true,
            "lab+header",
            json!(["parameters"]),
            json!({"size": "1", "color": "red", "label": "x"})
        ),
        json!([
            false,
            "The following parameters are not supported by the OS lab: color, size"
        ])
    );
    // The verify script refuses a bad value.
    assert_eq!(
        validate(
            true,
            "lab",
            json!(["parameters"]),
            json!({"label": "no spaces"})
        ),
        json!([
            false,
            "OS validation script failed (exited with exit code 1), output: \
                       Invalid value 'no spaces' for the label parameter: only letters, \
                       digits, '-' and '_'\n"
        ])
    );
    // Below API 20 there is nothing to run.
    let mut files = scripts("#!/bin/sh\nexit 1\n");
    files.retain(|f| f.0 != "verify");
    node.make_os("old", Some("15\n"), &files);
    assert_eq!(
        validate(true, "old", json!(["parameters"]), json!({"anything": "x"})),
        json!([true, true])
    );
    // verify gets the core environment only, its checks as arguments, and
    // runs in the OS directory.
    let verify = "#!/bin/sh\necho \"args=$*\"\necho \"cwd=$(pwd)\"\n\
                  tr '\\000' '\\n' < /proc/$$/environ | sort\nexit 2\n";
    let mut files = scripts(verify);
    files.push(("variants.list", "one\ntwo\n", 0o644));
    files.push(("parameters.list", "dhcp use dhcp\n", 0o644));
    let dir = node.make_os("envdump", Some("20\n15\n"), &files);
    let v = validate(
        true,
        "envdump+two",
        json!(["parameters"]),
        json!({"dhcp": "yes"}),
    );
    let msg = v[1].as_str().unwrap();
    let output = msg
        .strip_prefix("OS validation script failed (exited with exit code 2), output: ")
        .unwrap_or_else(|| panic!("{msg}"));
    let mut lines = output.lines();
    assert_eq!(lines.next(), Some("args=parameters"));
    assert_eq!(
        lines.next().map(String::from),
        Some(format!("cwd={}", dir.display()))
    );
    let env: BTreeMap<String, String> = lines
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("OS_API_VERSION", "20"),
        ("OS_NAME", "envdump"),
        ("OS_VARIANT", "two"),
        ("DEBUG_LEVEL", "0"),
        ("OSP_DHCP", "yes"),
        ("PATH", "/sbin:/bin:/usr/sbin:/usr/bin"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_env(&env, &expected);
}

#[test]
fn hostile_names_are_refused_and_nothing_is_written() {
    let node = Node::start("os-hostile");
    let add = |inst: Value| node.fail("instance_os_add", &json!([inst, false, 0]));
    let named = |name: &str, os: &str| instance(name, os);
    for (name, os, msg) in [
        (
            "../evil",
            "lab",
            "Invalid instance name '../evil': it contains '/'",
        ),
        ("a/b", "lab", "Invalid instance name 'a/b': it contains '/'"),
        ("..", "lab", "Invalid instance name '..': it contains '..'"),
        (
            "x\0y",
            "lab",
            "Invalid instance name 'x\\x00y': it contains a NUL byte",
        ),
        ("", "lab", "Invalid instance name '': it is empty"),
        (
            "inst1",
            "lab+../../../outside/x",
            "Invalid OS name 'lab+../../../outside/x': it contains '/'",
        ),
        (
            "inst1",
            "lab+..",
            "Invalid OS name 'lab+..': it contains '..'",
        ),
    ] {
        assert_eq!(add(named(name, os)), msg);
    }
    let mut no_os = instance("inst1", "lab");
    no_os.as_object_mut().unwrap().remove("os");
    assert_eq!(add(no_os), "Instance inst1 has no OS");
    let rename = |old: &str| {
        node.fail(
            "instance_run_rename",
            &json!([instance("inst2", "lab"), old, 0]),
        )
    };
    assert_eq!(
        rename("../../outside/x"),
        "Invalid old instance name '../../outside/x': it contains '/'"
    );
    assert_eq!(
        rename("a..b"),
        "Invalid old instance name 'a..b': it contains '..'"
    );
    // An OS parameter cannot smuggle another variable into the environment.
    let mut inst = instance("inst1.example.com", "lab");
    inst["osparams"] = json!({"x=y": "1"});
    assert_eq!(
        add(inst),
        "Invalid environment variable name 'OSP_X=Y' for the OS script"
    );
    // The log file name: one byte over NAME_MAX is refused. The name part
    // is the rest after "add-lab-", "-<19>" and ".log" (32 bytes).
    let over = "n".repeat(255 - 31);
    let msg = add(named(&over, "lab"));
    assert!(msg.ends_with("is longer than 255 bytes"), "{msg}");
    // A disk outside the file storage is refused by the storage layer.
    let mut inst = instance("inst1.example.com", "lab");
    inst["disks"][0]["logical_id"] =
        json!(["loop", "/srv/ganeti/file-storage/../../../outside/precious"]);
    inst["disks"][0]["physical_id"] = inst["disks"][0]["logical_id"].clone();
    add(inst);

    // Nothing was written: no log, the disk still blank, outside intact.
    assert_eq!(node.logs(), Vec::<String>::new());
    assert!(node.disk_header().is_empty());
    assert_eq!(
        std::fs::read_to_string(node.path("outside/precious")).unwrap(),
        "keep me\n"
    );
    let outside: Vec<_> = std::fs::read_dir(node.path("outside")).unwrap().collect();
    assert_eq!(outside.len(), 1);

    // At the limit the name is fine and the script runs.
    let fits = "n".repeat(255 - 32);
    let since = SystemTime::now();
    node.ok("instance_os_add", &json!([named(&fits, "lab"), false, 0]));
    let (log_name, _) = node.log_of(&format!("add-lab-{fits}"), since);
    assert_eq!(log_name.len(), 255);
}

#[test]
fn bodies_over_the_limits_are_refused() {
    let node = Node::start("os-limits");
    for procedure in ["instance_os_add", "instance_run_rename", "os_validate"] {
        assert_eq!(
            node.announced(procedure, INSTANCE_BODY + 1),
            413,
            "{procedure}"
        );
    }
    for procedure in ["os_get", "os_diagnose"] {
        assert_eq!(
            node.announced(procedure, SMALL_BODY + 1),
            413,
            "{procedure}"
        );
    }
    // Wrong argument shapes name the problem.
    for (procedure, args) in [
        ("instance_os_add", json!([instance("i", "lab"), "yes", 0])),
        ("instance_os_add", json!([{"os": "lab"}, false, 0])),
        ("instance_run_rename", json!([instance("i", "lab"), 5, 0])),
        ("os_validate", json!([true, "lab", "parameters", {}])),
    ] {
        let msg = node.fail(procedure, &args);
        assert!(
            msg.starts_with("Error while executing backend function: invalid arguments: "),
            "{procedure}: {msg}"
        );
    }
    assert_eq!(node.logs(), Vec::<String>::new());
}

#[test]
fn lab_export_and_import_round_trip() {
    // The lab's export and import scripts, run as the import-export daemon
    // would, with the environment osdef builds for the instance.
    let root = Root::new("os-impexp");
    copy_dir(Path::new(LAB), &root.path("srv/ganeti/os/lab"));
    root.set_file_storage();
    let paths = ganeti::paths::Paths::with_root(&root.dir);
    let disk = root.path(DISK);
    std::fs::create_dir_all(disk.parent().unwrap()).unwrap();
    let image: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    std::fs::write(&disk, &image).unwrap();
    let inst: ganeti::objects::Instance =
        serde_json::from_value(instance("inst1.example.com", "lab")).unwrap();
    let os = ganeti::osdef::find(&paths, "lab").unwrap();
    let env = ganeti::osdef::instance_env(&paths, &inst, &os, 0).unwrap();
    let disk_path = disk.display().to_string();

    let exported = root.path("exported");
    let size = root.path("size");
    let status = Command::new("/bin/sh")
        .args(["-c", "exec \"$0\" 3>\"$1\""])
        .arg(os.script("export"))
        .arg(&size)
        .env_clear()
        .envs(&env)
        .env("EXPORT_DEVICE", &disk_path)
        .env("EXPORT_INDEX", "0")
        .env("EXP_SIZE_FD", "3")
        .current_dir(&os.dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&exported).unwrap())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&exported).unwrap(), image);
    assert_eq!(
        std::fs::read_to_string(&size).unwrap(),
        format!("{}\n", image.len())
    );

    let target = root.path("srv/ganeti/file-storage/inst1.example.com/disk1");
    std::fs::write(&target, vec![0u8; image.len()]).unwrap();
    let status = Command::new(os.script("import"))
        .env_clear()
        .envs(&env)
        .env("IMPORT_DEVICE", &target)
        .env("IMPORT_INDEX", "1")
        .current_dir(&os.dir)
        .stdin(std::fs::File::open(&exported).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&target).unwrap(), image);
    // Usage: no arguments allowed.
    let status = Command::new(os.script("import"))
        .arg("extra")
        .env_clear()
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}
