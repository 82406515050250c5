//! Block devices and storage of the real node daemon, over real TLS.
//!
//! `file` disks are real files: created (sparse), found, sized, grown,
//! assembled, wiped, closed, removed, and checked on disk; the request
//! bodies of the 2.5.2 recordings 19-22, 29 and 30 are replayed and the
//! answers compared with 2.5.2's. Hostile disks (paths outside the storage
//! directories, `..`, symlinks leading out, option-like LVM names) must fail
//! and leave the disk exactly as it was.
//!
//! This machine has no device-mapper, so LVM volumes cannot be created
//! here. The LVM calls run against fake `lvs`, `vgs`, `pvs`, `lvcreate`, ...
//! put first in the daemon's `PATH` (the daemon runs tools from its `PATH`
//! like any program; nothing in it is there for tests). Each fake logs its
//! arguments and answers only the exact command line it was given an
//! answer for, with a RECORDING of real lvm2 output from
//! `tests/samples/lvm/` (see its README; the few `edited_*`/`answer_*`
//! outputs are written by hand and say so). So these tests check the exact
//! commands 2.5.2 runs, their order, and how the real outputs are parsed.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};

const SAMPLE_19: &str = r#"["/srv/ganeti/file-storage/inst1.lab25.test"]"#;
const SAMPLE_20: &str = r#"[{"children": [], "dev_type": "file", "iv_name": "disk/0", "logical_id": ["loop", "/srv/ganeti/file-storage/inst1.lab25.test/disk0"], "mode": "rw", "physical_id": ["loop", "/srv/ganeti/file-storage/inst1.lab25.test/disk0"], "size": 128}, 128, "inst1.lab25.test", true, "originstname+inst1.lab25.test"]"#;
const SAMPLE_21: &str = r#"[{"children": [], "dev_type": "file", "iv_name": "disk/0", "logical_id": ["loop", "/srv/ganeti/file-storage/inst1.lab25.test/disk0"], "mode": "rw", "physical_id": ["loop", "/srv/ganeti/file-storage/inst1.lab25.test/disk0"], "size": 128}]"#;
const SAMPLE_22: &str = r#"[[{"children": [], "dev_type": "file", "iv_name": "disk/0", "logical_id": ["loop", "/srv/ganeti/file-storage/inst1.lab25.test/disk0"], "mode": "rw", "physical_id": ["loop", "/srv/ganeti/file-storage/inst1.lab25.test/disk0"], "size": 128}]]"#;
const SAMPLE_29: &str = SAMPLE_21;
const SAMPLE_30: &str = SAMPLE_19;

const DISK0: &str = "/srv/ganeti/file-storage/inst1.lab25.test/disk0";
const INST: &str = "inst1.lab25.test";
const MIB: u64 = 1024 * 1024;

/// The LVM tools the daemon may run; each gets a fake.
const TOOLS: [&str; 11] = [
    "lvs", "vgs", "pvs", "lvcreate", "lvremove", "lvrename", "lvextend", "lvchange", "pvchange",
    "vgreduce", "blockdev",
];

fn recordings() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/samples/lvm")
}

/// A node daemon in its own root with the file storage ssconf keys, a
/// directory `outside` that no call may touch, and fake LVM tools.
struct Node {
    tls: TlsNode,
    fake: PathBuf,
}

impl std::ops::Deref for Node {
    type Target = TlsNode;
    fn deref(&self) -> &TlsNode {
        &self.tls
    }
}

impl Node {
    fn start(tag: &str) -> Node {
        let root = Root::new(tag);
        for dir in [
            "srv/ganeti/file-storage",
            "srv/ganeti/shared-file-storage",
            "outside",
        ] {
            std::fs::create_dir_all(root.path(dir)).unwrap();
        }
        std::fs::write(root.path("outside/precious"), "keep me\n").unwrap();
        for (k, v) in [
            ("file_storage_dir", "/srv/ganeti/file-storage"),
            ("shared_file_storage_dir", "/srv/ganeti/shared-file-storage"),
        ] {
            std::fs::write(
                root.path(&format!("var/lib/ganeti/ssconf_{k}")),
                format!("{v}\n"),
            )
            .unwrap();
        }
        let fake = root.dir.join("fake-bin");
        std::fs::create_dir_all(&fake).unwrap();
        std::fs::write(fake.join("answers"), "").unwrap();
        std::fs::write(fake.join("log"), "").unwrap();
        for tool in TOOLS {
            let script = format!(
                "#!/bin/sh\n\
                 # Fake {tool}: logs its command line, answers with a recording.\n\
                 line=\"{tool}\"\n\
                 for a in \"$@\"; do line=\"$line $a\"; done\n\
                 printf '%s\\n' \"$line\" >> '{dir}/log'\n\
                 rec=$(awk -F '\\t' -v k=\"$line\" '$1 == k {{ print $2; exit }}' '{dir}/answers')\n\
                 if [ -z \"$rec\" ]; then echo \"fake {tool}: no answer for: $line\" >&2; exit 99; fi\n\
                 cat \"$rec.stdout\"\n\
                 if [ -f \"$rec.stderr\" ]; then cat \"$rec.stderr\" >&2; fi\n\
                 if [ -f \"$rec.rc\" ]; then exit \"$(cat \"$rec.rc\")\"; fi\n\
                 exit 0\n",
                dir = fake.display()
            );
            let p = fake.join(tool);
            std::fs::write(&p, script).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = format!(
            "{}:{}",
            fake.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let tls = TlsNode::start(root, &[("PATH", Path::new(&path))]);
        Node { tls, fake }
    }

    /// The fake answers `line` (the exact command line) with the recording
    /// `rec` (a name in tests/samples/lvm, or an absolute path prefix).
    fn answer(&self, line: &str, rec: &str) {
        let prefix = if rec.starts_with('/') {
            PathBuf::from(rec)
        } else {
            recordings().join(rec)
        };
        let mut a = std::fs::read_to_string(self.fake.join("answers")).unwrap();
        a.push_str(&format!("{line}\t{}\n", prefix.display()));
        std::fs::write(self.fake.join("answers"), a).unwrap();
    }

    /// A hand-written answer (not a recording): stdout and exit code.
    fn written_answer(&self, line: &str, name: &str, stdout: &str, rc: i32) {
        let prefix = self.fake.join(format!("answer_{name}"));
        std::fs::write(prefix.with_extension("stdout"), stdout).unwrap();
        std::fs::write(prefix.with_extension("rc"), format!("{rc}\n")).unwrap();
        self.answer(line, &prefix.display().to_string());
    }

    /// The command lines the fakes saw since the last call.
    fn commands(&self) -> Vec<String> {
        let log = self.fake.join("log");
        let text = std::fs::read_to_string(&log).unwrap();
        std::fs::write(&log, "").unwrap();
        text.lines().map(str::to_string).collect()
    }

    fn call(&self, procedure: &str, body: &str) -> (bool, Value) {
        let a = self.raw(procedure, body);
        assert_eq!(a.status, 200, "{procedure}: {}", a.text());
        let v: Value = serde_json::from_str(&a.text()).unwrap();
        (v[0].as_bool().unwrap(), v[1].clone())
    }

    fn ok(&self, procedure: &str, body: &Value) -> Value {
        let (ok, v) = self.call(procedure, &body.to_string());
        assert!(ok, "{procedure} {body} failed: {v}");
        v
    }

    fn fail(&self, procedure: &str, body: &Value) -> String {
        let (ok, v) = self.call(procedure, &body.to_string());
        assert!(!ok, "{procedure} {body} must fail: {v}");
        v.as_str().unwrap().to_string()
    }

    fn local(&self, wire: &str) -> PathBuf {
        self.root.path(wire)
    }

    /// Everything under the root but logs, the fakes and the pid file:
    /// path -> type, mode, size, blocks, and content of small files.
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        walk(&self.root.dir, &self.root.dir, &mut out);
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(root).unwrap().to_path_buf();
        if rel.starts_with("var/log")
            || rel.starts_with("fake-bin")
            || rel.ends_with("ganeti-noded.pid")
        {
            continue;
        }
        let m = path.symlink_metadata().unwrap();
        let what = if m.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(&path).unwrap().display())
        } else if m.is_dir() {
            walk(root, &path, out);
            "dir".to_string()
        } else if m.len() < MIB {
            format!("file {:?}", std::fs::read(&path).unwrap())
        } else {
            format!(
                "file of {} bytes, {} blocks, mtime {}",
                m.len(),
                m.blocks(),
                m.mtime_nsec()
            )
        };
        out.insert(rel, format!("{what} {:o}", m.mode()));
    }
}

fn file_disk(path: &str, size: u64) -> Value {
    json!({"dev_type": "file", "logical_id": ["loop", path], "physical_id": ["loop", path],
           "size": size, "iv_name": "disk/0", "mode": "rw", "children": []})
}

fn lv_disk(vg: &str, lv: &str, size: u64) -> Value {
    json!({"dev_type": "lvm", "logical_id": [vg, lv], "physical_id": [vg, lv],
           "size": size, "iv_name": "disk/0", "mode": "rw"})
}

fn attach_line(lv: &str) -> String {
    format!(
        "lvs --noheadings --separator=, --units=m --nosuffix \
         -olv_attr,lv_kernel_major,lv_kernel_minor,vg_extent_size,stripes /dev/xenvg/{lv}"
    )
}

fn stderr_of(rec: &str) -> String {
    std::fs::read_to_string(recordings().join(format!("{rec}.stderr"))).unwrap()
}

#[test]
fn file_disk_life_cycle_as_2_5_2() {
    let n = Node::start("bdev-file");
    // Recordings 19-22: the answers 2.5.2 gave.
    assert_eq!(
        n.call("file_storage_dir_create", SAMPLE_19),
        (true, Value::Null)
    );
    assert_eq!(
        n.call("blockdev_create", SAMPLE_20),
        (true, json!(["loop", DISK0]))
    );
    let local = n.local(DISK0);
    let m = std::fs::metadata(&local).unwrap();
    assert_eq!(m.len(), 128 * MIB);
    assert!(m.blocks() * 512 < MIB, "not sparse: {} blocks", m.blocks());
    assert_eq!(m.mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(n.local(
            "/var/run/ganeti/bdev-cache/bdev__srv_ganeti_file-storage_inst1.lab25.test_disk0"
        ))
        .unwrap(),
        "inst1.lab25.test primary disk/0\n"
    );
    let status = json!({"dev_path": DISK0, "is_degraded": false, "ldisk_status": 1});
    assert_eq!(n.call("blockdev_find", SAMPLE_21), (true, status.clone()));
    assert_eq!(
        n.call("blockdev_getsize", SAMPLE_22),
        (true, json!([134217728]))
    );

    let disk = file_disk(DISK0, 128);
    assert_eq!(
        n.fail("blockdev_create", &json!([disk, 128, INST, true, ""])),
        format!("Can't create block device: File already existing: {DISK0}")
    );

    // Grow: a dry run changes nothing, then 64 MiB more, still sparse.
    assert_eq!(n.ok("blockdev_grow", &json!([disk, 64, true])), Value::Null);
    assert_eq!(std::fs::metadata(&local).unwrap().len(), 128 * MIB);
    assert_eq!(
        n.ok("blockdev_grow", &json!([disk, 64, false])),
        Value::Null
    );
    let m = std::fs::metadata(&local).unwrap();
    assert_eq!(m.len(), 192 * MIB);
    assert!(m.blocks() * 512 < MIB);
    assert_eq!(
        n.ok("blockdev_getsize", &json!([[disk]])),
        json!([192 * MIB])
    );
    assert!(n
        .fail("blockdev_grow", &json!([disk, -1, false]))
        .ends_with("Cannot Grow with a negative amount"));

    // Assemble on the primary: the path and the instance link.
    assert_eq!(
        n.ok("blockdev_assemble", &json!([disk, INST, true, 0])),
        json!(DISK0)
    );
    let link = n.local("/var/run/ganeti/instance-disks/inst1.lab25.test:0");
    assert_eq!(std::fs::read_link(&link).unwrap(), local);
    assert_eq!(
        n.ok("blockdev_assemble", &json!([disk, INST, false, 0])),
        json!(true)
    );
    assert_eq!(
        n.ok("blockdev_getmirrorstatus", &json!([disk])),
        json!([status])
    );
    assert_eq!(
        n.ok(
            "blockdev_getmirrorstatus_multi",
            &json!([{"node1.example.com": [disk], "node2": [disk]}])
        ),
        json!([[true, status]])
    );
    assert_eq!(
        n.ok(
            "blockdev_getmirrorstatus_multi",
            &json!([{"node2": [disk]}])
        ),
        json!([])
    );
    assert_eq!(
        n.ok("blockdev_pause_resume_sync", &json!([[disk], true])),
        json!([[true, null]])
    );

    // 2.5.2 cannot rename or snapshot file disks; nothing changes.
    let before = n.snapshot();
    let disk1 = "/srv/ganeti/file-storage/inst1.lab25.test/disk1";
    assert_eq!(
        n.fail("blockdev_rename", &json!([[disk, ["loop", disk1]]])),
        format!(
            "Can't rename device '<FileStorage: {DISK0}>' to '['loop', '{disk1}']': \
             Rename is not supported for file-based storage"
        )
    );
    assert_eq!(
        n.fail("blockdev_snapshot", &json!([disk])),
        format!("Cannot snapshot non-lvm block device '('loop', '{DISK0}')' of type 'file'")
    );
    assert_eq!(n.snapshot(), before);

    // Wipe: zeroes the chunk in place, the rest and the size stay.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&local)
            .unwrap();
        f.write_all(&vec![0xaa; 3 * MIB as usize]).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
    }
    assert_eq!(n.ok("blockdev_wipe", &json!([disk, 1, 1])), Value::Null);
    assert_eq!(std::fs::metadata(&local).unwrap().len(), 192 * MIB);
    let mut data = vec![0u8; 3 * MIB as usize];
    {
        use std::io::Read;
        std::fs::File::open(&local)
            .unwrap()
            .read_exact(&mut data)
            .unwrap();
    }
    assert!(data[..MIB as usize].iter().all(|b| *b == 0xaa));
    assert!(data[MIB as usize..2 * MIB as usize].iter().all(|b| *b == 0));
    assert!(data[2 * MIB as usize..3 * MIB as usize]
        .iter()
        .all(|b| *b == 0xaa));
    drop(data);
    assert_eq!(
        n.fail("blockdev_wipe", &json!([disk, 129, 1])),
        "Offset is bigger than device size"
    );
    assert_eq!(
        n.fail("blockdev_wipe", &json!([disk, 100, 29])),
        "The provided offset and size to wipe is bigger than device size"
    );

    // Close removes the instance link; shutdown the cache entry.
    assert_eq!(n.ok("blockdev_close", &json!([INST, [disk]])), Value::Null);
    assert!(link.symlink_metadata().is_err());
    assert_eq!(n.ok("blockdev_shutdown", &json!([disk])), Value::Null);
    assert!(!n
        .local("/var/run/ganeti/bdev-cache/bdev__srv_ganeti_file-storage_inst1.lab25.test_disk0")
        .exists());

    // Recordings 29 and 30; a second removal is fine too.
    assert_eq!(n.call("blockdev_remove", SAMPLE_29), (true, Value::Null));
    assert!(!local.exists());
    assert_eq!(n.call("blockdev_remove", SAMPLE_29), (true, Value::Null));
    assert_eq!(n.ok("blockdev_find", &json!([disk])), Value::Null);
    assert_eq!(n.ok("blockdev_getsize", &json!([[disk]])), json!([null]));
    assert_eq!(
        n.fail("blockdev_grow", &json!([disk, 1, false])),
        format!(
            "Cannot find block device <Disk(type=file, logical_id=('loop', '{DISK0}'), \
             physical_id=('loop', '{DISK0}'), children=[], visible as /dev/disk/0, size=128m)>"
        )
    );
    assert!(n
        .fail("blockdev_close", &json!([INST, [disk]]))
        .starts_with("Can't find device <Disk("));
    assert_eq!(
        n.fail("blockdev_wipe", &json!([disk, 0, 1])),
        "Cannot execute wipe for device disk/0: device not found"
    );
    assert_eq!(
        n.call("file_storage_dir_remove", SAMPLE_30),
        (true, Value::Null)
    );

    // The directory must exist (file_storage_dir_create makes it).
    assert_eq!(
        n.fail("blockdev_create", &json!([disk, 128, INST, true, ""])),
        format!("Can't create block device: Error in file creation: [Errno 2] No such file or directory: '{DISK0}'")
    );
}

#[test]
fn hostile_disks_are_refused_and_change_nothing() {
    let n = Node::start("bdev-hostile");
    let base = n.local("/srv/ganeti/file-storage");
    std::fs::create_dir_all(base.join("inst1")).unwrap();
    std::os::unix::fs::symlink(n.local("/outside"), base.join("evil")).unwrap();
    std::os::unix::fs::symlink(n.local("/outside/precious"), base.join("inst1/link")).unwrap();
    std::fs::create_dir(base.join("inst1/adir")).unwrap();
    let before = n.snapshot();

    let not_under = "is not under base file storage directory '/srv/ganeti/file-storage' \
                     or shared storage directory '/srv/ganeti/shared-file-storage'";
    let cases: Vec<(Value, String)> = vec![
        (file_disk("/outside/precious", 1), not_under.into()),
        (file_disk("/outside/new", 1), not_under.into()),
        (file_disk("/srv/ganeti/file-storage", 1), not_under.into()),
        (
            file_disk("/srv/ganeti/file-storageX/disk0", 1),
            not_under.into(),
        ),
        (
            file_disk("/srv/ganeti/file-storage/evil/precious", 1),
            not_under.into(),
        ),
        (
            file_disk("/srv/ganeti/file-storage/evil/new", 1),
            not_under.into(),
        ),
        (
            file_disk("/srv/ganeti/file-storage/../../outside/precious", 1),
            "is not a normalised absolute path".into(),
        ),
        (
            file_disk("/srv/ganeti/file-storage/inst1/../../../outside/new", 1),
            "is not a normalised absolute path".into(),
        ),
        (
            file_disk("srv/ganeti/file-storage/inst1/disk0", 1),
            "is not a normalised absolute path".into(),
        ),
        (
            file_disk("/srv/ganeti/file-storage/inst1/link", 1),
            "is not a regular file".into(),
        ),
        (
            file_disk("/srv/ganeti/file-storage/inst1/adir", 1),
            "is not a regular file".into(),
        ),
        (
            json!({"dev_type": "file", "physical_id": ["nbd", "/srv/ganeti/file-storage/inst1/d"], "size": 1}),
            "Invalid file driver 'nbd'".into(),
        ),
        (
            json!({"dev_type": "file", "physical_id": [1, 2], "size": 1}),
            "Invalid configuration data".into(),
        ),
        (
            json!({"dev_type": "file", "size": 1}),
            "Invalid configuration data None".into(),
        ),
        (
            json!({"dev_type": "tape", "physical_id": ["a", "b"]}),
            "Invalid block device type 'tape'".into(),
        ),
        (
            lv_disk("xenvg", "--help", 1),
            "Invalid LVM name '--help'".into(),
        ),
        (lv_disk("-an", "x", 1), "Invalid LVM name '-an'".into()),
        (lv_disk("xenvg", "a/b", 1), "Invalid LVM name 'a/b'".into()),
        (lv_disk("..", "x", 1), "Invalid LVM name '..'".into()),
        (lv_disk("", "x", 1), "Invalid LVM name ''".into()),
        (
            lv_disk("xenvg", &"a".repeat(128), 1),
            "Invalid LVM name".into(),
        ),
    ];
    for (disk, expect) in &cases {
        let calls = [
            ("blockdev_create", json!([disk, 1, INST, true, ""])),
            ("blockdev_remove", json!([disk])),
            ("blockdev_find", json!([disk])),
            (
                "blockdev_getsize",
                json!([[file_disk("/srv/ganeti/file-storage/inst1/ok", 1), disk]]),
            ),
            ("blockdev_grow", json!([disk, 1, false])),
            ("blockdev_wipe", json!([disk, 0, 1])),
            ("blockdev_assemble", json!([disk, INST, true, 0])),
            ("blockdev_shutdown", json!([disk])),
            (
                "blockdev_rename",
                json!([[disk, ["loop", "/srv/ganeti/file-storage/inst1/x"]]]),
            ),
            ("blockdev_close", json!([INST, [disk]])),
            ("blockdev_snapshot", json!([disk])),
            ("blockdev_getmirrorstatus", json!([disk])),
            (
                "blockdev_getmirrorstatus_multi",
                json!([{"node1.example.com": [disk]}]),
            ),
            ("blockdev_pause_resume_sync", json!([[disk], false])),
        ];
        for (procedure, body) in calls {
            let msg = n.fail(procedure, &body);
            assert!(msg.contains(expect.as_str()), "{procedure} {disk}: {msg}");
        }
    }
    // Hostile instance names for the links, and an LV renamed out of its
    // VG or to an option.
    let ok_disk = file_disk("/srv/ganeti/file-storage/inst1/ok", 1);
    for owner in ["../../outside/x", ".", "a/b", ""] {
        let msg = n.fail("blockdev_assemble", &json!([ok_disk, owner, true, 0]));
        assert!(msg.starts_with("Invalid instance name"), "{msg}");
        let msg = n.fail("blockdev_create", &json!([ok_disk, 1, owner, true, ""]));
        assert!(msg.starts_with("Invalid instance name"), "{msg}");
    }
    assert!(n
        .fail("blockdev_close", &json!(["../x", [ok_disk]]))
        .starts_with("Invalid instance name"));
    let lv = lv_disk("xenvg", "a.disk0", 1);
    assert_eq!(
        n.fail("blockdev_rename", &json!([[lv, ["other", "b"]]])),
        "Can't move a logical volume across volume groups (from xenvg to to other)"
    );
    assert_eq!(
        n.fail("blockdev_rename", &json!([[lv, ["xenvg", "-f"]]])),
        "Invalid LVM name '-f'"
    );
    // LVM listings with option-like names.
    assert_eq!(
        n.fail("lv_list", &json!([["--all"]])),
        "Invalid LVM name '--all'"
    );
    assert!(n
        .fail("storage_list", &json!(["lvm-vg", [], "-a", ["name"]]))
        .starts_with("Invalid LVM name"));
    for pv in ["--all", "@ganeti"] {
        assert!(n
            .fail(
                "storage_modify",
                &json!(["lvm-pv", [], pv, {"allocatable": false}])
            )
            .starts_with("Invalid storage unit name"));
    }
    assert!(n
        .fail(
            "storage_execute",
            &json!(["lvm-vg", [], "--all", "fix-consistency"])
        )
        .starts_with("Invalid LVM name"));
    for (name, expect) in [
        ("/outside", not_under),
        ("/srv/ganeti/file-storageX", not_under),
        ("/srv/ganeti/file-storage/evil/x", not_under),
        (
            "/srv/ganeti/file-storage/evil",
            "Storage directory '/srv/ganeti/file-storage/evil' is a symlink",
        ),
    ] {
        let msg = n.fail(
            "storage_list",
            &json!([
                "file",
                [[
                    "/srv/ganeti/file-storage",
                    "/srv/ganeti/shared-file-storage"
                ]],
                name,
                ["name", "used"]
            ]),
        );
        assert!(msg.contains(expect), "{name}: {msg}");
    }
    assert!(n
        .fail(
            "storage_list",
            &json!(["file", [["/outside"]], null, ["used"]])
        )
        .contains(not_under));

    assert_eq!(n.snapshot(), before, "a refused call changed the disk");
    assert_eq!(
        n.commands(),
        Vec::<String>::new(),
        "a refused call ran an LVM tool"
    );

    // The master writes the ssconf values: storage directories that are,
    // contain or lie below system directories are not used.
    for (k, v) in [
        ("file_storage_dir", "/"),
        ("shared_file_storage_dir", "/etc"),
    ] {
        std::fs::write(
            n.local(&format!("/var/lib/ganeti/ssconf_{k}")),
            format!("{v}\n"),
        )
        .unwrap();
    }
    std::fs::create_dir_all(n.local("/etc")).unwrap();
    std::fs::write(n.local("/etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    let before = n.snapshot();
    let cannot = "cannot be used: it is, contains or lies below the system directory";
    let precious = file_disk("/outside/precious", 1);
    let passwd = file_disk("/etc/passwd", 1);
    for (procedure, body) in [
        ("blockdev_remove", json!([precious])),
        ("blockdev_remove", json!([passwd])),
        ("blockdev_wipe", json!([precious, 0, 1])),
        ("blockdev_grow", json!([passwd, 1, false])),
        (
            "blockdev_create",
            json!([file_disk("/etc/new", 1), 1, INST, true, ""]),
        ),
        ("file_storage_dir_create", json!(["/etc/newdir"])),
        ("file_storage_dir_remove", json!(["/outside"])),
        ("file_storage_dir_rename", json!(["/outside", "/outside2"])),
        (
            "storage_list",
            json!(["file", [["/", "/etc"]], null, ["used"]]),
        ),
    ] {
        let msg = n.fail(procedure, &body);
        assert!(msg.contains(cannot), "{procedure} {body}: {msg}");
    }
    assert_eq!(n.snapshot(), before, "a refused call changed the disk");
}

#[test]
fn lvm_listings_from_recordings() {
    let n = Node::start("bdev-lvm-list");
    let lvs_list =
        "lvs --noheadings --units=m --nosuffix --separator=| -ovg_name,lv_name,lv_size,lv_attr";
    n.answer(lvs_list, "lv_list");
    n.answer(&format!("{lvs_list} xenvg"), "edited_lv_list_active");
    let all = json!({
        "xenvg/0d8d2c6b-4b1c.disk0": ["128.00", false, false],
        "xenvg/7f3e9a10-22aa.disk1": ["64.00", false, false],
        "xenvg/striped.disk0": ["16.00", false, false],
    });
    assert_eq!(n.ok("lv_list", &json!([[]])), all);
    assert_eq!(n.ok("lv_list", &json!([null])), all);
    assert_eq!(
        n.ok("lv_list", &json!([["xenvg"]])),
        json!({"xenvg/0d8d2c6b-4b1c.disk0": ["128.00", false, true],
               "xenvg/7f3e9a10-22aa.disk1": ["64.00", true, false]})
    );
    assert_eq!(
        n.commands(),
        [
            lvs_list.to_string(),
            lvs_list.to_string(),
            format!("{lvs_list} xenvg")
        ]
    );
    // An unknown command line: the fake fails, as lvs would.
    let msg = n.fail("lv_list", &json!([["nosuchvg"]]));
    assert_eq!(
        msg,
        format!("Failed to list logical volumes, lvs output: fake lvs: no answer for: {lvs_list} nosuchvg\n")
    );
    n.commands();
    // A listing longer than the daemon keeps of a command's output fails
    // rather than being answered as if complete.
    let long: String = (0..2000)
        .map(|i| format!("  bigvg|lv{i:04}.disk0|128.00|-wi-a-----\n"))
        .collect();
    assert!(long.len() > 64 * 1024);
    n.written_answer(&format!("{lvs_list} bigvg"), "long", &long, 0);
    assert_eq!(
        n.fail("lv_list", &json!([["bigvg"]])),
        "Failed to list logical volumes, lvs output: \
         lvs: output of 65536 bytes or more, cut and not used\n"
    );
    n.commands();

    let vgs_list = "vgs --noheadings --units m --nosuffix -o name,size";
    n.answer(vgs_list, "vg_list");
    assert_eq!(
        n.ok("vg_list", &json!([])),
        json!({"datavg": 60, "xenvg": 292})
    );

    let node_volumes = "lvs --noheadings --units=m --nosuffix --separator=| --options=lv_name,lv_size,devices,vg_name";
    n.answer(node_volumes, "node_volumes");
    let vols = n.ok("node_volumes", &json!([]));
    assert_eq!(vols.as_array().unwrap().len(), 5);
    assert_eq!(
        vols[4],
        json!({"name": "striped.disk0", "size": "16.00", "dev": "/dev/loop1", "vg": "xenvg"})
    );
    assert_eq!(n.commands(), [vgs_list, node_volumes]);

    // storage_list for PVs and VGs: "--separator" and "|" apart.
    n.answer(
        "pvs --noheadings --units=m --nosuffix --separator | --options pv_name,pv_size,pv_used,pv_free,pv_attr",
        "storage_pv",
    );
    assert_eq!(
        n.ok(
            "storage_list",
            &json!([
                "lvm-pv",
                [],
                null,
                ["name", "size", "used", "free", "allocatable"]
            ])
        ),
        json!([
            ["/dev/loop0", 196, 176, 20, true],
            ["/dev/loop1", 96, 32, 64, true],
            ["/dev/loop2", 60, 0, 60, true]
        ])
    );
    n.answer("vgs --noheadings --units=m --nosuffix --separator | --options vg_name,vg_size,vg_free xenvg", "storage_vg_xenvg");
    assert_eq!(
        n.ok(
            "storage_list",
            &json!([
                "lvm-vg",
                [],
                "xenvg",
                ["name", "used", "allocatable", "free"]
            ])
        ),
        json!([["xenvg", 208, true, 84]])
    );
    assert_eq!(
        n.fail("storage_list", &json!(["lvm-vg", [], null, ["colour"]])),
        "Error while executing backend function: 'colour'"
    );
    assert_eq!(
        n.fail("storage_list", &json!(["nfs", [], null, ["name"]])),
        "Error while executing backend function: Unknown storage type: 'nfs'"
    );

    // node_verify: lvlist (VGs from vgs, then lvs for them), vglist, pvlist.
    n.answer(
        "vgs --noheadings --units m --nosuffix -o name,size",
        "vg_list",
    );
    n.answer(&format!("{lvs_list} datavg xenvg"), "lv_list_xenvg");
    n.answer(
        "pvs --noheadings --nosuffix --units=m --unbuffered --separator=| -opv_name,vg_name,pv_free,pv_attr",
        "pv_info",
    );
    n.commands();
    let v = n.ok(
        "node_verify",
        &json!([{"lvlist": "xenvg", "vglist": null, "pvlist": ["xenvg"]}, "cluster"]),
    );
    assert_eq!(v["vglist"], json!({"datavg": 60, "xenvg": 292}));
    assert_eq!(v["lvlist"], all);
    assert_eq!(
        v["pvlist"],
        json!([[20.0, "/dev/loop0", "xenvg"], [64.0, "/dev/loop1", "xenvg"]])
    );
    let v = n.ok(
        "node_verify",
        &json!([{"lvlist": null, "vglist": null, "pvlist": null}, "cluster"]),
    );
    assert_eq!(v["pvlist"].as_array().unwrap().len(), 3);
    // bdev_sizes: block devices below /dev only (any block device of this
    // machine will do; its size comes from the fake blockdev).
    let blockdev = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            use std::os::unix::fs::FileTypeExt;
            std::fs::metadata(p).is_ok_and(|m| m.file_type().is_block_device())
        });
    let mut paths = vec![
        "/dev/null".to_string(),
        "/etc/passwd".into(),
        "/dev/../etc/passwd".into(),
    ];
    match &blockdev {
        Some(dev) => {
            let dev = dev.display().to_string();
            n.written_answer(
                &format!("blockdev --getsize64 {dev}"),
                "size",
                "1073741824\n",
                0,
            );
            paths.push(dev.clone());
            assert_eq!(n.ok("bdev_sizes", &json!([paths])), json!({dev: 1024}));
        }
        None => {
            eprintln!("no block device under /dev: bdev_sizes checked on non-devices only");
            assert_eq!(n.ok("bdev_sizes", &json!([paths])), json!({}));
        }
    }
    // Not VM capable: none of them.
    let v = n.ok(
        "node_verify",
        &json!([{"lvlist": null, "vglist": null, "pvlist": [], "vmnodes": ["node1.example.com"]}, "c"]),
    );
    assert_eq!(v, json!({}));

    // Body limits: 64 KiB for one disk's calls, 4 MiB for the multi call.
    const SMALL: usize = 64 * 1024;
    const MULTI: usize = 4 * 1024 * 1024;
    let padded = |json: &str, len: usize| format!("{json}{}", " ".repeat(len - json.len()));
    let multi = r#"[{"other-node": []}]"#;
    let a = n.raw("blockdev_getmirrorstatus_multi", &padded(multi, MULTI));
    assert_eq!((a.status, a.text().as_str()), (200, "[true, []]\n"));
    assert_eq!(
        n.announced("blockdev_getmirrorstatus_multi", MULTI + 1),
        413
    );
    assert_eq!(n.raw("lv_list", &padded("[[]]", SMALL)).status, 200);
    for procedure in [
        "blockdev_create",
        "blockdev_getsize",
        "lv_list",
        "storage_list",
    ] {
        assert_eq!(n.announced(procedure, SMALL + 1), 413, "{procedure}");
    }
}

#[test]
fn lvm_storage_changes_from_recordings() {
    let n = Node::start("bdev-lvm-storage");
    n.answer("pvchange --allocatable n /dev/loop1", "pvchange");
    assert_eq!(
        n.ok(
            "storage_modify",
            &json!(["lvm-pv", [], "/dev/loop1", {"allocatable": false}])
        ),
        Value::Null
    );
    assert_eq!(n.commands(), ["pvchange --allocatable n /dev/loop1"]);
    assert_eq!(
        n.fail("storage_modify", &json!(["lvm-pv", [], "/dev/loop1", {"allocatable": true}])),
        "Error while executing backend function: Failed to modify physical volume, pvchange output: \
         fake pvchange: no answer for: pvchange --allocatable y /dev/loop1\n"
    );
    assert_eq!(
        n.fail(
            "storage_modify",
            &json!(["lvm-vg", [], "xenvg", {"size": 3}])
        ),
        "Error while executing backend function: Unable to modify the followingfields: ['size']"
    );
    assert_eq!(
        n.ok("storage_modify", &json!(["lvm-vg", [], "xenvg", {}])),
        Value::Null
    );

    // fix-consistency: "already consistent" is not "Wrote out consistent
    // volume group", so 2.5.2 runs vgreduce again with --force, then vgs.
    n.answer("vgreduce --removemissing xenvg", "vgreduce");
    n.answer("vgreduce --removemissing --force xenvg", "vgreduce");
    n.answer("vgs --noheadings --nosuffix xenvg", "vgs_check");
    n.commands();
    assert_eq!(
        n.ok(
            "storage_execute",
            &json!(["lvm-vg", [], "xenvg", "fix-consistency"])
        ),
        Value::Null
    );
    assert_eq!(
        n.commands(),
        [
            "vgreduce --removemissing xenvg",
            "vgreduce --removemissing --force xenvg",
            "vgs --noheadings --nosuffix xenvg"
        ]
    );
    let msg = n.fail(
        "storage_execute",
        &json!(["lvm-vg", [], "datavg", "fix-consistency"]),
    );
    assert!(
        msg.starts_with("Error while executing backend function: Volume group 'datavg' still not consistent, 'vgreduce' output: 'fake vgreduce: no answer"),
        "{msg}"
    );
    assert_eq!(
        n.commands(),
        [
            "vgreduce --removemissing datavg",
            "vgreduce --removemissing --force datavg",
            "vgs --noheadings --nosuffix datavg"
        ]
    );
    assert_eq!(
        n.fail("storage_execute", &json!(["file", [["/srv/ganeti/file-storage"]], "x", "fix-consistency"])),
        "Error while executing backend function: operation 'fix-consistency' is not implemented for storage type 'file'"
    );

    // File storage: sizes of the two directories.
    let base = n.local("/srv/ganeti/file-storage");
    std::fs::create_dir_all(base.join("i1")).unwrap();
    std::fs::write(base.join("i1/disk0"), vec![1u8; 3 * MIB as usize]).unwrap();
    std::fs::File::create(base.join("i1/disk1"))
        .unwrap()
        .set_len(2 * MIB)
        .unwrap();
    let rows = n.ok(
        "storage_list",
        &json!([
            "file",
            [[
                "/srv/ganeti/file-storage",
                "/srv/ganeti/shared-file-storage"
            ]],
            null,
            ["name", "used", "allocatable", "size", "free"]
        ]),
    );
    assert_eq!(rows[0][0], json!("/srv/ganeti/file-storage"));
    assert_eq!(rows[0][1], json!(5));
    assert_eq!(rows[0][2], json!(true));
    assert!(rows[0][3].as_u64().unwrap() >= rows[0][4].as_u64().unwrap());
    assert_eq!(rows[1][0], json!("/srv/ganeti/shared-file-storage"));
    assert_eq!(rows[1][1], json!(0));
    let one = n.ok(
        "storage_list",
        &json!([
            "file",
            [["/srv/ganeti/file-storage"]],
            "/srv/ganeti/file-storage/i1",
            ["used"]
        ]),
    );
    assert_eq!(one, json!([[5]]));
    assert_eq!(
        n.fail(
            "storage_list",
            &json!(["file", [["/srv/ganeti/file-storage"]], null, ["colour"]])
        ),
        "Error while executing backend function: Unknown field: 'colour'"
    );
    assert_eq!(n.commands(), Vec::<String>::new());
}

#[test]
fn lvm_disks_from_recordings() {
    let n = Node::start("bdev-lvm-disks");
    let pvs = "pvs --noheadings --nosuffix --units=m --unbuffered --separator=| -opv_name,vg_name,pv_free,pv_attr";
    let vgs = "vgs --noheadings --nosuffix --units=m --unbuffered --separator=| -ovg_name,vg_free,vg_attr,vg_size";
    n.answer(pvs, "pv_info");
    n.answer(vgs, "vg_info");

    // Create: the xenvg PVs with the most free space first, one stripe.
    // On this machine lvcreate fails for want of device-mapper (recorded).
    n.answer(
        "lvcreate -L32m -nnew.disk0 -i1 xenvg /dev/loop1 /dev/loop0",
        "lvcreate_fail",
    );
    let disk = lv_disk("xenvg", "new.disk0", 32);
    assert_eq!(
        n.fail(
            "blockdev_create",
            &json!([disk, 32, INST, true, "originstname+inst1"])
        ),
        format!(
            "Can't create block device: LV create failed (exited with exit code 3): {}",
            stderr_of("lvcreate_fail")
        )
    );
    assert_eq!(
        n.commands(),
        [
            pvs,
            "lvcreate -L32m -nnew.disk0 -i1 xenvg /dev/loop1 /dev/loop0"
        ]
    );
    assert_eq!(
        n.fail(
            "blockdev_create",
            &json!([lv_disk("xenvg", "big.disk0", 100000), 1, INST, true, ""])
        ),
        "Can't create block device: Not enough free space: required 100000, available 84.0"
    );
    n.commands();

    // A node with device-mapper: lvcreate succeeds (hand-written answers),
    // then attach, activate and tag as 2.5.2 does.
    n.written_answer(
        "lvcreate -L16m -nok.disk0 -i1 xenvg /dev/loop1 /dev/loop0",
        "lvcreate_ok",
        "  Logical volume \"ok.disk0\" created.\n",
        0,
    );
    n.answer(&attach_line("ok.disk0"), "edited_lv_attach_active");
    n.written_answer("lvchange -ay /dev/xenvg/ok.disk0", "lvchange_ok", "", 0);
    n.answer(
        "lvchange --addtag originstname+inst1.lab25.test /dev/xenvg/ok.disk0",
        "lvchange_addtag",
    );
    let ok = lv_disk("xenvg", "ok.disk0", 16);
    assert_eq!(
        n.ok(
            "blockdev_create",
            &json!([ok, 16, INST, false, "originstname+inst1.lab25.test"])
        ),
        json!(["xenvg", "ok.disk0"])
    );
    assert_eq!(
        n.commands(),
        [
            pvs.to_string(),
            "lvcreate -L16m -nok.disk0 -i1 xenvg /dev/loop1 /dev/loop0".into(),
            attach_line("ok.disk0"),
            "lvchange -ay /dev/xenvg/ok.disk0".into(),
            "lvchange --addtag originstname+inst1.lab25.test /dev/xenvg/ok.disk0".into(),
        ]
    );
    // An LV is assembled and cached on a secondary node too.
    assert_eq!(
        std::fs::read_to_string(n.local("/var/run/ganeti/bdev-cache/bdev_xenvg_ok.disk0")).unwrap(),
        "inst1.lab25.test secondary disk/0\n"
    );
    assert_eq!(
        n.ok("blockdev_assemble", &json!([ok, INST, false, 0])),
        json!("/dev/xenvg/ok.disk0")
    );
    n.commands();

    // Find: the recorded attach output of a real (inactive) LV, and of an
    // active one; a missing LV is null.
    n.answer(&attach_line("7f3e9a10-22aa.disk1"), "lv_attach");
    n.answer(&attach_line("nosuch.disk0"), "lv_attach_missing");
    let disk1 = lv_disk("xenvg", "7f3e9a10-22aa.disk1", 64);
    assert_eq!(
        n.ok("blockdev_find", &json!([disk1])),
        json!({"dev_path": "/dev/xenvg/7f3e9a10-22aa.disk1", "major": -1, "minor": -1,
               "is_degraded": false, "ldisk_status": 1})
    );
    assert_eq!(
        n.ok("blockdev_find", &json!([ok])),
        json!({"dev_path": "/dev/xenvg/ok.disk0", "major": 253, "minor": 0,
               "is_degraded": false, "ldisk_status": 1})
    );
    let missing = lv_disk("xenvg", "nosuch.disk0", 1);
    assert_eq!(n.ok("blockdev_find", &json!([missing])), Value::Null);
    assert_eq!(n.ok("blockdev_remove", &json!([missing])), Value::Null);

    // Size through blockdev --getsize64 (hand-written answer).
    n.written_answer(
        "blockdev --getsize64 /dev/xenvg/ok.disk0",
        "getsize",
        "16777216\n",
        0,
    );
    assert_eq!(
        n.ok("blockdev_getsize", &json!([[ok, missing]])),
        json!([16777216, null])
    );
    n.commands();

    // Grow: 6 MiB rounded up to the 4 MiB extents; three policies tried.
    for policy in ["contiguous", "cling", "normal"] {
        n.answer(
            &format!("lvextend -L +8m --test --alloc {policy} /dev/xenvg/7f3e9a10-22aa.disk1"),
            "lvextend_test",
        );
    }
    assert_eq!(
        n.fail("blockdev_grow", &json!([disk1, 6, true])),
        format!(
            "Failed to grow block device: Can't grow LV /dev/xenvg/7f3e9a10-22aa.disk1: {}",
            stderr_of("lvextend_test")
        )
    );
    assert_eq!(n.commands().len(), 4);

    // Rename: the recorded lvrename failure.
    n.answer(
        "lvrename xenvg 7f3e9a10-22aa.disk1 7f3e9a10-22aa.disk1_renamed",
        "lvrename",
    );
    assert_eq!(
        n.fail(
            "blockdev_rename",
            &json!([[disk1, ["xenvg", "7f3e9a10-22aa.disk1_renamed"]]])
        ),
        format!(
            "Can't rename device '<LogicalVolume: /dev/xenvg/7f3e9a10-22aa.disk1>' to \
             '['xenvg', '7f3e9a10-22aa.disk1_renamed']': Failed to rename the logical volume: {}",
            stderr_of("lvrename")
        )
    );
    n.commands();

    // Snapshot: old snapshot looked for, VG space checked, lvcreate -s
    // (recorded failure).
    n.answer(
        &attach_line("0d8d2c6b-4b1c.disk0"),
        "edited_lv_attach_active",
    );
    n.answer(
        &attach_line("0d8d2c6b-4b1c.disk0.snap"),
        "lv_attach_missing",
    );
    n.answer(
        "lvcreate -L64m -s -n0d8d2c6b-4b1c.disk0.snap /dev/xenvg/0d8d2c6b-4b1c.disk0",
        "lvcreate_snap",
    );
    let disk0 = lv_disk("xenvg", "0d8d2c6b-4b1c.disk0", 64);
    assert_eq!(
        n.fail("blockdev_snapshot", &json!([disk0])),
        format!(
            "Error while executing backend function: command: lvcreate -L64m -s \
             -n0d8d2c6b-4b1c.disk0.snap /dev/xenvg/0d8d2c6b-4b1c.disk0 error: exited with exit code 3 - {}",
            stderr_of("lvcreate_snap")
        )
    );
    assert_eq!(
        n.commands(),
        [
            attach_line("0d8d2c6b-4b1c.disk0"),
            attach_line("0d8d2c6b-4b1c.disk0.snap"),
            vgs.to_string(),
            "lvcreate -L64m -s -n0d8d2c6b-4b1c.disk0.snap /dev/xenvg/0d8d2c6b-4b1c.disk0".into(),
        ]
    );

    // Remove: attach, then lvremove -f vg/lv (recorded success).
    n.answer("lvremove -f xenvg/7f3e9a10-22aa.disk1", "lvremove");
    assert_eq!(n.ok("blockdev_remove", &json!([disk1])), Value::Null);
    assert_eq!(
        n.commands(),
        [
            attach_line("7f3e9a10-22aa.disk1"),
            "lvremove -f xenvg/7f3e9a10-22aa.disk1".into()
        ]
    );
}
