//! The job queue calls (`jobqueue_update`, `jobqueue_rename`,
//! `jobqueue_purge`) and the file storage directory calls
//! (`file_storage_dir_create/remove/rename`) against the real node daemon
//! over real TLS, each checked on disk. Hostile input must leave the disk
//! exactly as it was. The request bodies of 2.5.2 recordings 13-16, 19 and
//! 30 are replayed and the answers compared byte for byte.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Recording 13's body: job 42, zlib and base64 as a 2.5.2 master sends it.
const SAMPLE_13: &str = r#"["/var/lib/ganeti/queue/job-42", [1, "eF59UU1LAzEQve+vCDmLbGtV8Ca0B0FQsBcRCXF3LMFsEidJsZT9706yu5LKag7DzLzMe/NxrBjjYFoRVAc+yM7xG2ai1mcJUC1Fq2X2rfMUvJDL2DHbfyoH8AuaWd6MKuNiIMaJi1IPj+JuTankbDdPW7He3N8+8yQ/6rXwFndCwx40/atLBA8Co6Hsu9QeSiSiDMomqD4vS6wRnfQBkJCAsawhyNgW8sSvBZdDZVGFwy9xBAcyDVOPrfZTDdd2d0LC5yg4go86EUyrzyuie2D4e4MEh5ha5J8RIrQ8i/dkc8ukZBvw3qLQtvko74rQgNrD6dWH0y6u6/ENIyyWF6vLqx/O+Zaqvqq+AXY7mVs="]]"#;
const SAMPLE_14: &str = r#"["/tmp/work/job-evil", [0, "x"]]"#;
const SAMPLE_15: &str =
    r#"[["/var/lib/ganeti/queue/job-42", "/var/lib/ganeti/queue/archive/0/job-42"]]"#;
const SAMPLE_16: &str = "[]";
const SAMPLE_19: &str = r#"["/srv/ganeti/file-storage/inst1.lab25.test"]"#;
const SAMPLE_30: &str = r#"["/srv/ganeti/file-storage/inst1.lab25.test"]"#;

/// 2.5.2's answers to the samples above, byte for byte.
const OK_NULL: &str = "[true, null]\n";
const SAMPLE_14_ANSWER: &str = "[false, \"Passed job queue file '/tmp/work/job-evil' does not \
    belong to the queue directory '/var/lib/ganeti/queue'\"]\n";
const SAMPLE_15_ANSWER: &str = "[true, [null]]\n";

const BACKEND: &str = "Error while executing backend function: ";
const NOT_UNDER: &str = "is not under base file storage directory '/srv/ganeti/file-storage' \
    or shared storage directory '/srv/ganeti/shared-file-storage'";

/// A node daemon with TLS in its own root, with the queue (ensure-dirs
/// modes), the file storage ssconf keys and a directory `outside` that no
/// call may ever touch.
struct Node(TlsNode);

impl std::ops::Deref for Node {
    type Target = TlsNode;
    fn deref(&self) -> &TlsNode {
        &self.0
    }
}

impl Node {
    fn start(tag: &str) -> Node {
        let root = Root::new(tag);
        for dir in ["var/lib/ganeti/queue", "var/lib/ganeti/queue/archive"] {
            std::fs::create_dir_all(root.path(dir)).unwrap();
            std::fs::set_permissions(root.path(dir), std::fs::Permissions::from_mode(0o700))
                .unwrap();
        }
        std::fs::create_dir_all(root.path("srv/ganeti/file-storage")).unwrap();
        std::fs::create_dir_all(root.path("outside")).unwrap();
        std::fs::write(root.path("outside/precious"), "keep me\n").unwrap();
        write_ssconf(&root, "file_storage_dir", "/srv/ganeti/file-storage");
        write_ssconf(
            &root,
            "shared_file_storage_dir",
            "/srv/ganeti/shared-file-storage",
        );
        Node(TlsNode::start(root, &[]))
    }

    /// Calls a procedure with a raw body; returns the HTTP body text.
    fn call(&self, procedure: &str, body: &str) -> String {
        let a = self.raw(procedure, body);
        assert_eq!(a.status, 200, "{procedure}: {}", a.text());
        a.text()
    }

    /// Calls a procedure and returns the decoded `[success, payload]`.
    fn call_json(&self, procedure: &str, body: &Value) -> (bool, Value) {
        let text = self.call(procedure, &body.to_string());
        let v: Value = serde_json::from_str(&text).unwrap();
        (v[0].as_bool().unwrap(), v[1].clone())
    }

    /// The failure message of a call that must fail.
    fn fail(&self, procedure: &str, body: &str) -> String {
        let text = self.call(procedure, body);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v[0], json!(false), "{procedure} {body} must fail: {text}");
        v[1].as_str().unwrap().to_string()
    }

    fn queue(&self, rel: &str) -> PathBuf {
        self.root.path(&format!("var/lib/ganeti/queue/{rel}"))
    }

    fn storage(&self, rel: &str) -> PathBuf {
        self.root.path(&format!("srv/ganeti/file-storage/{rel}"))
    }

    /// Everything on disk under the root except the daemon's own run and
    /// log files: path -> (type, mode, owner, content or link target).
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
        if rel.starts_with("var/log") || rel.starts_with("var/run") {
            continue;
        }
        let m = path.symlink_metadata().unwrap();
        let what = if m.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(&path).unwrap().display())
        } else if m.is_dir() {
            walk(root, &path, out);
            "dir".to_string()
        } else {
            format!("file {:?}", std::fs::read(&path).unwrap())
        };
        let line = format!("{what} {:o} {}:{}", m.mode(), m.uid(), m.gid());
        out.insert(rel, line);
    }
}

fn write_ssconf(root: &Root, key: &str, value: &str) {
    std::fs::write(
        root.path(&format!("var/lib/ganeti/ssconf_{key}")),
        format!("{value}\n"),
    )
    .unwrap();
}

fn mode(p: &Path) -> u32 {
    p.symlink_metadata().unwrap().mode() & 0o7777
}

fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

/// The job file recording 13 carries, decoded independently of the daemon.
fn sample_13_job() -> Vec<u8> {
    use std::io::Read;
    let body: Value = serde_json::from_str(SAMPLE_13).unwrap();
    let packed = openssl::base64::decode_block(body[1][1].as_str().unwrap()).unwrap();
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(packed.as_slice())
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn zlib_blob(data: &[u8]) -> Value {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(3));
    z.write_all(data).unwrap();
    json!([1, openssl::base64::encode_block(&z.finish().unwrap())])
}

// ---------------------------------------------------------------- job queue

#[test]
fn update_replays_sample_13_and_writes_a_0600_root_file() {
    let node = Node::start("qupdate");
    let answer = node.call("jobqueue_update", SAMPLE_13);
    assert_eq!(answer, OK_NULL);
    let job = node.queue("job-42");
    let written = std::fs::read(&job).unwrap();
    assert_eq!(written, sample_13_job());
    assert!(written.starts_with(b"{\n  \"end_timestamp\": null,\n  \"id\": 42,"));
    let m = job.metadata().unwrap();
    assert_eq!(m.mode() & 0o7777, 0o600);
    assert_eq!((m.uid(), m.gid()), (0, 0), "masterd uid/gid (root)");

    // The first call prepared the queue as 2.5.2's node daemon does.
    assert_eq!(
        std::fs::read_to_string(node.queue("version")).unwrap(),
        "1\n"
    );
    assert_eq!(
        std::fs::read_to_string(node.queue("serial")).unwrap(),
        "0\n"
    );

    // Raw encoding, overwriting; no temporary file is left behind.
    let (ok, _) = node.call_json(
        "jobqueue_update",
        &json!(["/var/lib/ganeti/queue/job-42", [0, "short"]]),
    );
    assert!(ok);
    assert_eq!(std::fs::read(&job).unwrap(), b"short");
    let (ok, _) = node.call_json(
        "jobqueue_update",
        &json!(["/var/lib/ganeti/queue/serial", [0, "43\n"]]),
    );
    assert!(ok);
    assert_eq!(std::fs::read(node.queue("serial")).unwrap(), b"43\n");
    let names: Vec<String> = std::fs::read_dir(node.queue(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");

    // A file in an existing subdirectory; a missing directory is an error.
    let (ok, _) = node.call_json(
        "jobqueue_update",
        &json!(["/var/lib/ganeti/queue/archive/job-1", [0, "a"]]),
    );
    assert!(ok);
    assert_eq!(std::fs::read(node.queue("archive/job-1")).unwrap(), b"a");
    let before = node.snapshot();
    let msg = node.fail(
        "jobqueue_update",
        r#"["/var/lib/ganeti/queue/nodir/job-1", [0, "a"]]"#,
    );
    assert_eq!(
        msg,
        format!(
            "{BACKEND}[Errno 2] No such file or directory: '/var/lib/ganeti/queue/nodir/job-1'"
        )
    );
    assert_eq!(node.snapshot(), before);
}

#[test]
fn update_replaces_a_symlink_at_the_last_component_not_its_target() {
    let node = Node::start("qlink");
    let target = node.root.path("outside/precious");
    std::os::unix::fs::symlink(&target, node.queue("job-7")).unwrap();
    let (ok, _) = node.call_json(
        "jobqueue_update",
        &json!(["/var/lib/ganeti/queue/job-7", [0, "job seven"]]),
    );
    assert!(ok);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    let m = node.queue("job-7").symlink_metadata().unwrap();
    assert!(m.file_type().is_file(), "the link was replaced by a file");
    assert_eq!(std::fs::read(node.queue("job-7")).unwrap(), b"job seven");
}

#[test]
fn update_refuses_hostile_paths_and_bad_input_without_touching_the_disk() {
    let node = Node::start("qhostile");
    // Prepare the queue first, so that the snapshot is final.
    assert_eq!(node.call("jobqueue_purge", "[]"), OK_NULL);
    std::os::unix::fs::symlink(node.root.path("outside"), node.queue("evil")).unwrap();
    std::os::unix::fs::symlink(node.root.path("outside"), node.queue("archive/evil")).unwrap();
    let before = node.snapshot();

    // Recording 14, byte for byte.
    let answer = node.call("jobqueue_update", SAMPLE_14);
    assert_eq!(answer, SAMPLE_14_ANSWER);
    // (The recording's Content-Length, 131, counts the lab's longer path,
    // which the normalised recording shows as /tmp/work.)

    let outside = |p: &str| {
        format!("Passed job queue file '{p}' does not belong to the queue directory '/var/lib/ganeti/queue'")
    };
    for path in [
        "/var/lib/ganeti/queue-x",
        "/var/lib/ganeti/queue-x/job-1",
        "/var/lib/ganeti/queue",
        "/var/lib/ganeti/queue/",
        "/var/lib/ganeti/queue/.",
        "/var/lib/ganeti/queue/..",
        "/var/lib/ganeti/queue/../../../etc/shadow",
        "/var/lib/ganeti/queue/../queue-x",
        "/var/lib/ganeti/ssconf_master_node",
        "/etc/shadow",
        "/outside/precious",
        "var/lib/ganeti/queue/job-1",
        "job-1",
        "",
        "/var/lib/ganeti/queue/evil/precious",
        "/var/lib/ganeti/queue/evil/new-file",
        "/var/lib/ganeti/queue/archive/evil/new-file",
        "/var/lib/ganeti/queue/job-1\u{0}x",
    ] {
        let body = json!([path, [0, "owned"]]).to_string();
        assert_eq!(
            node.fail("jobqueue_update", &body),
            outside(path),
            "{path:?}"
        );
    }
    assert_eq!(
        node.fail(
            "jobqueue_update",
            r#"["/var/lib/ganeti/queue/lock", [0, ""]]"#
        ),
        "Passed job queue file '/var/lib/ganeti/queue/lock' is the queue lock file"
    );

    // Broken blobs and wrong shapes.
    let truncated = {
        let blob = zlib_blob(&[b'j'; 5000]);
        let text = blob[1].as_str().unwrap();
        let bytes = openssl::base64::decode_block(text).unwrap();
        openssl::base64::encode_block(&bytes[..bytes.len() / 2])
    };
    let job = "/var/lib/ganeti/queue/job-1";
    for (body, expect) in [
        (
            json!([job, [2, "x"]]).to_string(),
            format!("{BACKEND}Unknown data encoding"),
        ),
        (
            json!([job, [1, "!!!not base64"]]).to_string(),
            BACKEND.into(),
        ),
        (json!([job, [1, truncated]]).to_string(), BACKEND.into()),
        (json!([job, [1, "aGVsbG8="]]).to_string(), BACKEND.into()),
        (json!([job, [0, 5]]).to_string(), BACKEND.into()),
        (json!([job, [0]]).to_string(), BACKEND.into()),
        (json!([job, "raw"]).to_string(), BACKEND.into()),
        (json!([job]).to_string(), BACKEND.into()),
        (json!([job, [0, "x"], 3]).to_string(), BACKEND.into()),
        (json!([5, [0, "x"]]).to_string(), BACKEND.into()),
        (json!({"file_name": job}).to_string(), BACKEND.into()),
        (
            "[\"/var/lib/ganeti/queue/job-1\", [0, \"x\"".into(),
            BACKEND.into(),
        ),
        ("null".into(), BACKEND.into()),
    ] {
        let msg = node.fail("jobqueue_update", &body);
        assert!(msg.starts_with(&expect), "{body}: {msg}");
    }
    assert_eq!(node.snapshot(), before, "hostile input changed the disk");
}

#[test]
fn update_limits_the_decoded_size_and_the_body() {
    const MAX_JOB_FILE: usize = 16 * 1024 * 1024;
    let node = Node::start("qlimit");
    let job = "/var/lib/ganeti/queue/job-big";
    let (ok, _) = node.call_json(
        "jobqueue_update",
        &json!([job, zlib_blob(&vec![b'x'; MAX_JOB_FILE])]),
    );
    assert!(ok);
    assert_eq!(
        node.queue("job-big").metadata().unwrap().len(),
        MAX_JOB_FILE as u64
    );
    // One byte more inflates past the limit (a small body, a "zip bomb").
    let before = node.snapshot();
    let body = json!([job, zlib_blob(&vec![b'y'; MAX_JOB_FILE + 1])]).to_string();
    assert!(body.len() < 64 * 1024);
    let msg = node.fail("jobqueue_update", &body);
    assert_eq!(
        msg,
        format!("{BACKEND}Data larger than {MAX_JOB_FILE} bytes")
    );
    assert_eq!(node.snapshot(), before);

    // Body limits: update holds a job file of the largest size that does
    // not compress; rename a long list; purge is small.
    let update_body = MAX_JOB_FILE / 3 * 4 + 64 * 1024;
    assert_eq!(node.announced("jobqueue_update", update_body + 1), 413);
    assert_eq!(node.announced("jobqueue_rename", 1024 * 1024 + 1), 413);
    assert_eq!(node.announced("jobqueue_purge", 64 * 1024 + 1), 413);
}

#[test]
fn rename_replays_sample_15_and_creates_archive_directories() {
    let node = Node::start("qrename");
    assert_eq!(node.call("jobqueue_update", SAMPLE_13), OK_NULL);
    assert_eq!(node.call("jobqueue_rename", SAMPLE_15), SAMPLE_15_ANSWER);
    assert!(!exists(&node.queue("job-42")));
    let archived = node.queue("archive/0/job-42");
    assert_eq!(std::fs::read(&archived).unwrap(), sample_13_job());
    assert_eq!(mode(&archived), 0o600);
    let dir = node.queue("archive/0");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(dir.metadata().unwrap().uid(), 0);

    // Several pairs, nested missing directories, one null per pair.
    for n in [10000, 10001, 20000] {
        std::fs::write(node.queue(&format!("job-{n}")), format!("{n}")).unwrap();
    }
    let pairs: Vec<Value> = [10000, 10001, 20000]
        .iter()
        .map(|n| {
            json!([
                format!("/var/lib/ganeti/queue/job-{n}"),
                format!("/var/lib/ganeti/queue/archive/{}/job-{n}", n / 10000)
            ])
        })
        .collect();
    let (ok, result) = node.call_json("jobqueue_rename", &Value::Array(pairs));
    assert!(ok);
    assert_eq!(result, json!([null, null, null]));
    assert_eq!(
        std::fs::read_to_string(node.queue("archive/2/job-20000")).unwrap(),
        "20000"
    );
    assert_eq!(mode(&node.queue("archive/1")), 0o700);
    let (ok, _) = node.call_json(
        "jobqueue_rename",
        &json!([[
            "/var/lib/ganeti/queue/archive/1/job-10001",
            "/var/lib/ganeti/queue/deep/a/b/job-10001"
        ]]),
    );
    assert!(ok);
    for d in ["deep", "deep/a", "deep/a/b"] {
        assert_eq!(mode(&node.queue(d)), 0o700, "{d}");
    }
    // An empty list renames nothing.
    assert_eq!(node.call("jobqueue_rename", "[]"), "[true, []]\n");

    // A symlink at the last component is moved, not followed.
    std::os::unix::fs::symlink(node.root.path("outside/precious"), node.queue("job-l")).unwrap();
    let (ok, _) = node.call_json(
        "jobqueue_rename",
        &json!([[
            "/var/lib/ganeti/queue/job-l",
            "/var/lib/ganeti/queue/archive/0/job-l"
        ]]),
    );
    assert!(ok);
    assert!(node
        .queue("archive/0/job-l")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(node.root.path("outside/precious")).unwrap(),
        "keep me\n"
    );
}

#[test]
fn rename_stops_at_the_first_failure() {
    let node = Node::start("qrenfail");
    for n in [1, 3] {
        std::fs::write(node.queue(&format!("job-{n}")), "x").unwrap();
    }
    let body = json!([
        [
            "/var/lib/ganeti/queue/job-1",
            "/var/lib/ganeti/queue/archive/0/job-1"
        ],
        [
            "/var/lib/ganeti/queue/job-2",
            "/var/lib/ganeti/queue/archive/9/job-2"
        ],
        [
            "/var/lib/ganeti/queue/job-3",
            "/var/lib/ganeti/queue/archive/0/job-3"
        ],
    ]);
    let msg = node.fail("jobqueue_rename", &body.to_string());
    assert_eq!(
        msg,
        format!("{BACKEND}[Errno 2] No such file or directory: '/var/lib/ganeti/queue/job-2'")
    );
    assert!(
        exists(&node.queue("archive/0/job-1")),
        "done before the failure"
    );
    assert!(exists(&node.queue("job-3")), "not done after the failure");
    assert!(
        !exists(&node.queue("archive/9")),
        "a missing source creates no directory"
    );
}

#[test]
fn rename_refuses_hostile_pairs_before_renaming_anything() {
    let node = Node::start("qrenhostile");
    assert_eq!(node.call("jobqueue_purge", "[]"), OK_NULL);
    std::fs::write(node.queue("job-1"), "one").unwrap();
    std::os::unix::fs::symlink(node.root.path("outside"), node.queue("evil")).unwrap();
    let before = node.snapshot();
    let good = json!([
        "/var/lib/ganeti/queue/job-1",
        "/var/lib/ganeti/queue/archive/0/job-1"
    ]);
    let outside = |p: &str| {
        format!("Passed job queue file '{p}' does not belong to the queue directory '/var/lib/ganeti/queue'")
    };
    for (old, new, named) in [
        (
            "/var/lib/ganeti/queue/job-1",
            "/outside/job-1",
            "/outside/job-1",
        ),
        (
            "/outside/precious",
            "/var/lib/ganeti/queue/job-9",
            "/outside/precious",
        ),
        (
            "/var/lib/ganeti/queue/job-1",
            "/var/lib/ganeti/queue-x",
            "/var/lib/ganeti/queue-x",
        ),
        (
            "/var/lib/ganeti/queue/job-1",
            "/var/lib/ganeti/queue",
            "/var/lib/ganeti/queue",
        ),
        (
            "/var/lib/ganeti/queue/job-1",
            "/var/lib/ganeti/queue/../../../../outside/x",
            "/var/lib/ganeti/queue/../../../../outside/x",
        ),
        (
            "/var/lib/ganeti/queue/job-1",
            "/var/lib/ganeti/queue/evil/x",
            "/var/lib/ganeti/queue/evil/x",
        ),
        (
            "/var/lib/ganeti/queue/evil/precious",
            "/var/lib/ganeti/queue/job-9",
            "/var/lib/ganeti/queue/evil/precious",
        ),
        (
            "/var/lib/ganeti/queue/job-1",
            "/var/lib/ganeti/queue/evil/sub/dir/x",
            "/var/lib/ganeti/queue/evil/sub/dir/x",
        ),
        (
            "/var/lib/ganeti/queue",
            "/var/lib/ganeti/queue/x",
            "/var/lib/ganeti/queue",
        ),
    ] {
        // The good pair comes first: it must not be renamed either.
        let body = json!([good, [old, new]]).to_string();
        assert_eq!(
            node.fail("jobqueue_rename", &body),
            outside(named),
            "{body}"
        );
    }
    for (old, new) in [
        ("/var/lib/ganeti/queue/lock", "/var/lib/ganeti/queue/job-9"),
        ("/var/lib/ganeti/queue/job-1", "/var/lib/ganeti/queue/lock"),
    ] {
        let msg = node.fail("jobqueue_rename", &json!([good, [old, new]]).to_string());
        assert!(msg.ends_with("is the queue lock file"), "{msg}");
    }
    for body in [
        r#"["/var/lib/ganeti/queue/job-1", "/var/lib/ganeti/queue/job-2"]"#,
        r#"[["/var/lib/ganeti/queue/job-1"]]"#,
        r#"[["/var/lib/ganeti/queue/job-1", "/var/lib/ganeti/queue/job-2", "x"]]"#,
        r#"[[1, 2]]"#,
        r#"[["/var/lib/ganeti/queue/job-1", null]]"#,
        r#"{"old": "new"}"#,
        r#"[["/var/lib/ganeti/queue/job-1", "/var/lib/ganeti/queue/job-2"]"#,
    ] {
        let msg = node.fail("jobqueue_rename", body);
        assert!(msg.starts_with(BACKEND), "{body}: {msg}");
    }
    assert_eq!(node.snapshot(), before, "hostile input changed the disk");
}

#[test]
fn rename_rechecks_each_pair_after_the_previous_one() {
    // The first pair moves a symlink to the outside into the archive (which
    // is harmless by itself); the second pair would then lead through it.
    let node = Node::start("qrenrecheck");
    std::fs::write(node.queue("job-1"), "one").unwrap();
    std::os::unix::fs::symlink(node.root.path("outside"), node.queue("link")).unwrap();
    let body = json!([
        [
            "/var/lib/ganeti/queue/link",
            "/var/lib/ganeti/queue/archive/5"
        ],
        [
            "/var/lib/ganeti/queue/job-1",
            "/var/lib/ganeti/queue/archive/5/job-1"
        ],
    ]);
    let msg = node.fail("jobqueue_rename", &body.to_string());
    assert_eq!(
        msg,
        "Passed job queue file '/var/lib/ganeti/queue/archive/5/job-1' does not belong to the \
         queue directory '/var/lib/ganeti/queue'"
    );
    assert!(exists(&node.queue("job-1")));
    let outside: Vec<_> = std::fs::read_dir(node.root.path("outside"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("precious")]);
}

#[test]
fn purge_replays_sample_16_and_keeps_lock_dot_files_links_and_directories() {
    let node = Node::start("qpurge");
    assert_eq!(node.call("jobqueue_update", SAMPLE_13), OK_NULL);
    let q = |r: &str| node.queue(r);
    std::fs::write(q(".hidden"), "h").unwrap();
    std::fs::create_dir(q("subdir")).unwrap();
    std::fs::write(q("subdir/job-5"), "5").unwrap();
    std::os::unix::fs::symlink(node.root.path("outside/precious"), q("link")).unwrap();
    std::fs::write(q("archive/job-1"), "1").unwrap();
    std::fs::write(q("archive/.dot"), "d").unwrap();
    std::fs::create_dir(q("archive/0")).unwrap();
    std::fs::write(q("archive/0/job-3"), "3").unwrap();
    assert!(exists(&q("lock")) && exists(&q("serial")) && exists(&q("version")));

    assert_eq!(node.call("jobqueue_purge", SAMPLE_16), OK_NULL);
    for gone in ["job-42", "serial", "version", "archive/job-1"] {
        assert!(!exists(&q(gone)), "{gone} must be removed");
    }
    for kept in [
        "lock",
        ".hidden",
        "subdir",
        "subdir/job-5",
        "link",
        "archive",
        "archive/.dot",
        "archive/0/job-3",
    ] {
        assert!(exists(&q(kept)), "{kept} must stay");
    }
    assert_eq!(
        std::fs::read_to_string(node.root.path("outside/precious")).unwrap(),
        "keep me\n"
    );
    // version and serial are not written again after a purge.
    assert_eq!(node.call("jobqueue_purge", "[]"), OK_NULL);
    assert!(!exists(&q("version")) && !exists(&q("serial")));
}

#[test]
fn calls_wait_for_the_queue_lock_at_most_10_seconds() {
    let node = Node::start("qlock");
    assert_eq!(node.call("jobqueue_purge", "[]"), OK_NULL);
    let lock = std::fs::File::open(node.queue("lock")).unwrap();
    // SAFETY: flock on a descriptor owned by `lock`.
    let r = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    assert_eq!(r, 0);
    let before = node.snapshot();

    // While the lock is held, a call fails after the timeout.
    let start = Instant::now();
    let msg = node.fail(
        "jobqueue_update",
        r#"["/var/lib/ganeti/queue/job-1", [0, "x"]]"#,
    );
    let waited = start.elapsed();
    assert_eq!(
        msg,
        format!("{BACKEND}Failed to lock /var/lib/ganeti/queue/lock in exclusive mode")
    );
    assert!(waited >= Duration::from_millis(9500), "{waited:?}");
    assert!(waited < Duration::from_secs(15), "{waited:?}");
    assert_eq!(node.snapshot(), before);

    // A call that starts while the lock is held goes through once it is
    // released.
    let addr = node.addr();
    let cert = node.cert.clone();
    let waiter = std::thread::spawn(move || {
        let mut s = tls_connect(addr, &cert, Some(&cert)).unwrap();
        s.write_all(&request(
            "jobqueue_update",
            r#"["/var/lib/ganeti/queue/job-2", [0, "two"]]"#,
        ))
        .unwrap();
        read_answer(&mut s).text()
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!exists(&node.queue("job-2")));
    drop(lock);
    assert_eq!(waiter.join().unwrap(), OK_NULL);
    assert_eq!(std::fs::read(node.queue("job-2")).unwrap(), b"two");
}

#[test]
fn concurrent_updates_are_serialised_and_all_land() {
    let node = Node::start("qconc");
    let addr = node.addr();
    let threads: Vec<_> = (0..12)
        .map(|i| {
            let cert = node.cert.clone();
            std::thread::spawn(move || {
                let mut s = tls_connect(addr, &cert, Some(&cert)).unwrap();
                let body = json!([
                    format!("/var/lib/ganeti/queue/job-{i}"),
                    zlib_blob(format!("job {i}\n").repeat(200).as_bytes())
                ]);
                s.write_all(&request("jobqueue_update", &body.to_string()))
                    .unwrap();
                read_answer(&mut s).text()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), OK_NULL);
    }
    for i in 0..12 {
        let text = std::fs::read_to_string(node.queue(&format!("job-{i}"))).unwrap();
        assert_eq!(text, format!("job {i}\n").repeat(200));
    }
}

#[test]
fn queue_errors_without_a_queue_directory_or_with_a_wrong_version() {
    let node = Node::start("qinit");
    std::fs::remove_dir_all(node.queue("")).unwrap();
    for (procedure, body) in [
        (
            "jobqueue_update",
            r#"["/var/lib/ganeti/queue/job-1", [0, "x"]]"#,
        ),
        (
            "jobqueue_rename",
            r#"[["/var/lib/ganeti/queue/job-1", "/var/lib/ganeti/queue/job-2"]]"#,
        ),
        ("jobqueue_purge", "[]"),
    ] {
        assert_eq!(
            node.fail(procedure, body),
            format!("{BACKEND}Job queue failed initialization, cannot update jobs")
        );
    }
    assert!(!exists(&node.queue("")), "nothing created");

    // Once the directory is there, the next call prepares the queue; a
    // wrong version stops every call until it is fixed.
    std::fs::create_dir_all(node.queue("archive")).unwrap();
    std::fs::write(node.queue("version"), "2\n").unwrap();
    assert_eq!(
        node.fail("jobqueue_purge", "[]"),
        format!("{BACKEND}Found job queue version 2, expected 1")
    );
    assert!(exists(&node.queue("version")));
    std::fs::write(node.queue("version"), "1\n").unwrap();
    assert_eq!(node.call("jobqueue_purge", "[]"), OK_NULL);
}

// ------------------------------------------------------------- file storage

#[test]
fn storage_create_and_remove_replay_samples_19_and_30() {
    let node = Node::start("fscreate");
    let inst = node.storage("inst1.lab25.test");
    assert_eq!(node.call("file_storage_dir_create", SAMPLE_19), OK_NULL);
    let m = inst.symlink_metadata().unwrap();
    assert!(m.is_dir());
    // makedirs(dir, 0750) under the daemon's umask 077, as 2.5.2.
    assert_eq!(m.mode() & 0o7777, 0o700);
    // Again: already there.
    assert_eq!(node.call("file_storage_dir_create", SAMPLE_19), OK_NULL);
    assert_eq!(node.call("file_storage_dir_remove", SAMPLE_30), OK_NULL);
    assert!(!exists(&inst));
    // Removing a missing directory is fine.
    assert_eq!(node.call("file_storage_dir_remove", SAMPLE_30), OK_NULL);

    // makedirs: intermediate directories, also below the shared base, which
    // does not exist yet.
    let (ok, _) = node.call_json(
        "file_storage_dir_create",
        &json!(["/srv/ganeti/file-storage/a/b/c"]),
    );
    assert!(ok);
    assert!(node.storage("a/b/c").is_dir());
    let (ok, _) = node.call_json(
        "file_storage_dir_create",
        &json!(["/srv/ganeti/shared-file-storage/inst2"]),
    );
    assert!(ok);
    assert!(node
        .root
        .path("srv/ganeti/shared-file-storage/inst2")
        .is_dir());

    // Failures of 2.5.2.
    std::fs::write(node.storage("plain-file"), "").unwrap();
    let before = node.snapshot();
    assert_eq!(
        node.fail(
            "file_storage_dir_create",
            r#"["/srv/ganeti/file-storage/plain-file"]"#
        ),
        "Specified storage dir '/srv/ganeti/file-storage/plain-file' is not a directory"
    );
    assert_eq!(
        node.fail(
            "file_storage_dir_remove",
            r#"["/srv/ganeti/file-storage/plain-file"]"#
        ),
        "Specified Storage directory '/srv/ganeti/file-storage/plain-file' is not a directory"
    );
    let msg = node.fail(
        "file_storage_dir_create",
        r#"["/srv/ganeti/file-storage/plain-file/sub"]"#,
    );
    assert!(
        msg.starts_with(
            "Cannot create file storage directory '/srv/ganeti/file-storage/plain-file/sub': \
             [Errno 20] Not a directory"
        ),
        "{msg}"
    );
    assert_eq!(
        node.fail(
            "file_storage_dir_remove",
            r#"["/srv/ganeti/file-storage/a"]"#
        ),
        "Cannot remove file storage directory '/srv/ganeti/file-storage/a': [Errno 39] \
         Directory not empty: '/srv/ganeti/file-storage/a'"
    );
    assert_eq!(node.snapshot(), before);
}

#[test]
fn storage_rename_cases() {
    let node = Node::start("fsrename");
    std::fs::create_dir(node.storage("old")).unwrap();
    std::fs::write(node.storage("old/disk0"), "data").unwrap();
    let rename = |old: &str, new: &str| {
        json!([
            format!("/srv/ganeti/file-storage/{old}"),
            format!("/srv/ganeti/file-storage/{new}")
        ])
        .to_string()
    };
    assert_eq!(
        node.call("file_storage_dir_rename", &rename("old", "new")),
        OK_NULL
    );
    assert_eq!(std::fs::read(node.storage("new/disk0")).unwrap(), b"data");
    assert!(!exists(&node.storage("old")));
    // Done already: only the new one exists.
    assert_eq!(
        node.call("file_storage_dir_rename", &rename("old", "new")),
        OK_NULL
    );

    std::fs::create_dir(node.storage("other")).unwrap();
    std::fs::write(node.storage("file"), "").unwrap();
    let before = node.snapshot();
    assert_eq!(
        node.fail("file_storage_dir_rename", &rename("other", "new")),
        "Cannot rename '/srv/ganeti/file-storage/other' to '/srv/ganeti/file-storage/new': \
         both locations exist"
    );
    assert_eq!(
        node.fail("file_storage_dir_rename", &rename("file", "x")),
        "Specified storage dir '/srv/ganeti/file-storage/file' is not a directory"
    );
    assert_eq!(
        node.fail("file_storage_dir_rename", &rename("missing", "x")),
        "Specified storage dir '/srv/ganeti/file-storage/missing' is not a directory"
    );
    assert_eq!(
        node.fail("file_storage_dir_rename", &rename("other", "nodir/x")),
        "Cannot rename '/srv/ganeti/file-storage/other' to \
         '/srv/ganeti/file-storage/nodir/x': [Errno 2] No such file or directory"
    );
    assert_eq!(node.snapshot(), before);
    // Between the base and the shared base.
    let (ok, _) = node.call_json(
        "file_storage_dir_rename",
        &json!([
            "/srv/ganeti/file-storage/other",
            "/srv/ganeti/shared-file-storage"
        ]),
    );
    assert!(!ok, "the shared base itself is refused");
}

#[test]
fn storage_refuses_hostile_paths_without_touching_the_disk() {
    let node = Node::start("fshostile");
    std::fs::create_dir(node.storage("inst")).unwrap();
    std::os::unix::fs::symlink(node.root.path("outside"), node.storage("evil")).unwrap();
    std::os::unix::fs::symlink(node.root.path("outside"), node.storage("inst/evil")).unwrap();
    std::fs::create_dir(node.root.path("srv/ganeti/file-storageX")).unwrap();
    std::fs::create_dir(node.root.path("outside/victim")).unwrap();
    let before = node.snapshot();
    let refused = |p: &str| format!("File storage directory '{p}' {NOT_UNDER}");
    for (path, shown) in [
        ("/srv/ganeti/file-storage", "/srv/ganeti/file-storage"),
        ("/srv/ganeti/file-storage/", "/srv/ganeti/file-storage"),
        ("/srv/ganeti/file-storage/.", "/srv/ganeti/file-storage"),
        (
            "/srv/ganeti/shared-file-storage",
            "/srv/ganeti/shared-file-storage",
        ),
        ("/srv/ganeti/file-storageX", "/srv/ganeti/file-storageX"),
        ("/srv/ganeti/file-storageX/a", "/srv/ganeti/file-storageX/a"),
        (
            "/srv/ganeti/file-storage/../file-storageX/a",
            "/srv/ganeti/file-storageX/a",
        ),
        (
            "/srv/ganeti/file-storage/../../../outside/victim",
            "/outside/victim",
        ),
        ("/outside/victim", "/outside/victim"),
        ("/", "/"),
        ("srv/ganeti/file-storage/a", "srv/ganeti/file-storage/a"),
        ("", ""),
        (
            "/srv/ganeti/file-storage/evil/victim",
            "/srv/ganeti/file-storage/evil/victim",
        ),
        (
            "/srv/ganeti/file-storage/evil/new",
            "/srv/ganeti/file-storage/evil/new",
        ),
        (
            "/srv/ganeti/file-storage/evil/a/b/c",
            "/srv/ganeti/file-storage/evil/a/b/c",
        ),
        (
            "/srv/ganeti/file-storage/inst/evil/x",
            "/srv/ganeti/file-storage/inst/evil/x",
        ),
    ] {
        let body = json!([path]).to_string();
        for procedure in ["file_storage_dir_create", "file_storage_dir_remove"] {
            assert_eq!(
                node.fail(procedure, &body),
                refused(shown),
                "{procedure} {path:?}"
            );
        }
        for pair in [
            json!([path, "/srv/ganeti/file-storage/x"]),
            json!(["/srv/ganeti/file-storage/inst", path]),
        ] {
            assert_eq!(
                node.fail("file_storage_dir_rename", &pair.to_string()),
                refused(shown),
                "{pair}"
            );
        }
    }
    // A symlink as the directory itself is not a directory; it is never
    // followed.
    assert_eq!(
        node.fail(
            "file_storage_dir_create",
            r#"["/srv/ganeti/file-storage/evil"]"#
        ),
        "Specified storage dir '/srv/ganeti/file-storage/evil' is not a directory"
    );
    assert_eq!(
        node.fail(
            "file_storage_dir_remove",
            r#"["/srv/ganeti/file-storage/evil"]"#
        ),
        "Specified Storage directory '/srv/ganeti/file-storage/evil' is not a directory"
    );
    // Wrong shapes.
    for (procedure, body) in [
        ("file_storage_dir_create", "[]"),
        ("file_storage_dir_create", "[5]"),
        (
            "file_storage_dir_create",
            r#"["/srv/ganeti/file-storage/a", "b"]"#,
        ),
        ("file_storage_dir_create", r#""/srv/ganeti/file-storage/a""#),
        (
            "file_storage_dir_remove",
            r#"[["/srv/ganeti/file-storage/inst"]]"#,
        ),
        ("file_storage_dir_remove", "{}"),
        (
            "file_storage_dir_rename",
            r#"["/srv/ganeti/file-storage/inst"]"#,
        ),
        (
            "file_storage_dir_rename",
            r#"["/srv/ganeti/file-storage/inst", null]"#,
        ),
        (
            "file_storage_dir_rename",
            r#"["/srv/ganeti/file-storage/inst", "#,
        ),
    ] {
        let msg = node.fail(procedure, body);
        assert!(msg.starts_with(BACKEND), "{procedure} {body}: {msg}");
    }
    assert_eq!(node.snapshot(), before, "hostile input changed the disk");
    assert_eq!(
        node.announced("file_storage_dir_create", 64 * 1024 + 1),
        413
    );
}

#[test]
fn storage_needs_both_ssconf_keys_and_an_empty_one_allows_nothing() {
    let node = Node::start("fsssconf");
    let ssconf = node
        .root
        .path("var/lib/ganeti/ssconf_shared_file_storage_dir");
    std::fs::remove_file(&ssconf).unwrap();
    let before = node.snapshot();
    for procedure in ["file_storage_dir_create", "file_storage_dir_remove"] {
        assert_eq!(
            node.fail(procedure, SAMPLE_19),
            format!(
                "{BACKEND}Can't read from the ssconf file: '[Errno 2] No such file or \
                 directory: '/var/lib/ganeti/ssconf_shared_file_storage_dir''"
            )
        );
    }
    assert_eq!(node.snapshot(), before);
    // An empty value (file storage not set up) does not match everything,
    // as 2.5.2's string prefix test did.
    write_ssconf(&node.root, "shared_file_storage_dir", "");
    write_ssconf(&node.root, "file_storage_dir", "");
    let before = node.snapshot();
    assert_eq!(
        node.fail("file_storage_dir_create", r#"["/outside/new"]"#),
        "File storage directory '/outside/new' is not under base file storage directory '' \
         or shared storage directory ''"
    );
    assert_eq!(node.snapshot(), before);
}
