//! The master-role and file procedures of the node daemon, called over real
//! TLS on the real binary in temporary roots: master_info,
//! node_start_master, node_stop_master, node_leave_cluster,
//! node_demote_from_mc, upload_file, write_ssconf_files. Recorded 2.5.2
//! requests (tests/samples/ganeti-2.5.2) are replayed and their answers
//! compared; every effect is checked on disk.
//!
//! The master IP tests run in a private network namespace created for the
//! test's own thread (all of 127.0.0.0/8 is local on Linux, so a 127.x
//! address on the host's `lo` always "answers" and is never added); the
//! host's interfaces are never touched.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/samples/ganeti-2.5.2");
const SECS: Duration = Duration::from_secs(15);

/// A node daemon serving TLS in its own root (tests/common's `TlsNode`).
struct Node(TlsNode);

impl std::ops::Deref for Node {
    type Target = TlsNode;
    fn deref(&self) -> &TlsNode {
        &self.0
    }
}

impl Node {
    fn start(tag: &str) -> Node {
        Node::start_with(tag, &[])
    }

    fn start_with(tag: &str, env: &[(&str, &Path)]) -> Node {
        Node(TlsNode::start(Root::new(tag), env))
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path(rel)
    }

    /// Calls a procedure; the answer must be HTTP 200 with a JSON body.
    fn call(&self, procedure: &str, body: &str) -> Value {
        let a = self.send(&request(procedure, body));
        assert_eq!(a.status, 200, "{}", a.text());
        serde_json::from_slice(&a.body).unwrap()
    }

    fn ssconf(&self, key: &str, value: &str) {
        std::fs::write(
            self.path(&format!("var/lib/ganeti/ssconf_{key}")),
            format!("{value}\n"),
        )
        .unwrap();
    }
}

fn ok(v: Value) {
    assert_eq!(v, json!([true, null]));
}

fn fail(v: Value) -> String {
    assert_eq!(v[0], json!(false), "{v}");
    v[1].as_str().expect("message").to_string()
}

fn sample(name: &str) -> (String, Value) {
    let body = std::fs::read_to_string(format!("{SAMPLES}/{name}.body")).unwrap();
    let norm: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{SAMPLES}/{name}.norm.json")).unwrap(),
    )
    .unwrap();
    (body, norm["body"].clone())
}

/// Every file under the root (but the log directory) with its content and
/// metadata, to show that a refused call changed nothing.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32, i64)> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, u32, i64)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.ends_with("var/log") {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                walk(&p, out);
                Vec::new()
            };
            out.insert(p, (content, m.mode(), m.mtime()));
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &mut out);
    out
}

/// Holds an exclusive flock on `path` while alive.
fn hold_lock(path: &Path) -> std::fs::File {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    // SAFETY: flock on a descriptor owned by `f`.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(r, 0);
    f
}

fn which(dirs: &[&str], name: &str) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn ip_cmd() -> PathBuf {
    which(&["/sbin", "/bin", "/usr/sbin", "/usr/bin"], "ip").expect("ip")
}

// ---------------------------------------------------------------- ssconf

const SSCONF_KEYS: [&str; 21] = [
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

#[test]
fn master_info_and_write_ssconf_files_replay_252() {
    let node = Node::start("ssconf");
    // 02: no ssconf yet.
    let (body, want) = sample("02-master_info");
    assert_eq!(node.call("master_info", &body), want);

    // 03: the 21 files as a 2.5.2 master writes them.
    let (body, want) = sample("03-write_ssconf_files");
    assert_eq!(node.call("write_ssconf_files", &body), want);
    let values: Value = serde_json::from_str::<Value>(&body).unwrap()[0].clone();
    let values = values.as_object().unwrap();
    assert_eq!(values.len(), 21);
    for key in SSCONF_KEYS {
        let p = node.path(&format!("var/lib/ganeti/ssconf_{key}"));
        let v = values[key].as_str().unwrap();
        let expected = if v.is_empty() {
            String::new()
        } else {
            format!("{v}\n")
        };
        assert_eq!(std::fs::read_to_string(&p).unwrap(), expected, "{key}");
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o444, "{key}");
        assert_eq!((m.uid(), m.gid()), (0, 0));
    }
    // No temporary files left behind.
    let stray: Vec<_> = std::fs::read_dir(node.path("var/lib/ganeti"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");

    // 04: master_info now answers from those files.
    let (body, want) = sample("04-master_info");
    assert_eq!(node.call("master_info", &body), want);

    // A value that already ends in a newline gets no second one; an
    // overwrite replaces the 0444 file.
    ok(node.call("write_ssconf_files", r#"[{"master_node": "node9\n"}]"#));
    assert_eq!(
        std::fs::read_to_string(node.path("var/lib/ganeti/ssconf_master_node")).unwrap(),
        "node9\n"
    );
    // The family is parsed.
    ok(node.call("write_ssconf_files", r#"[{"primary_ip_family": "ten"}]"#));
    assert_eq!(
        fail(node.call("master_info", "[]")),
        "Cluster configuration incomplete: Error while trying to parse primary ip family: \
         invalid literal for int() with base 10: 'ten'"
    );
}

#[test]
fn write_ssconf_files_refuses_before_writing_anything() {
    let node = Node::start("ssconf-bad");
    let before = snapshot(&node.root.dir);
    // Unknown keys, also ones that look like paths: nothing is written,
    // not even the valid key that sorts first (2.5.2 wrote it).
    for key in ["no_such_key", "../../../etc/passwd", "master_node/../x", ""] {
        let body = json!([{ "cluster_name": "c", key: "v" }]).to_string();
        let msg = fail(node.call("write_ssconf_files", &body));
        assert_eq!(
            msg,
            format!("Error while executing backend function: Invalid key requested from SSConf: '{key}'")
        );
    }
    // Over 128 KiB with the newline.
    let big = "x".repeat(128 * 1024);
    let body = json!([{ "cluster_name": "c", "node_list": big }]).to_string();
    assert_eq!(
        fail(node.call("write_ssconf_files", &body)),
        "Error while executing backend function: ssconf file node_list above maximum size"
    );
    // Wrong shapes.
    for body in [
        r#"[{"cluster_name": 5}]"#,
        r#"[["cluster_name", "c"]]"#,
        r#"[]"#,
        r#"[{"cluster_name": "c"}, 1]"#,
        r#"{"cluster_name": "c"}"#,
        "[{",
    ] {
        let msg = fail(node.call("write_ssconf_files", body));
        assert!(
            msg.starts_with("Error while executing backend function:"),
            "{body}: {msg}"
        );
    }
    assert_eq!(snapshot(&node.root.dir), before);
    assert!(!Path::new("/etc/passwd.new").exists());
}

#[test]
fn write_ssconf_files_waits_10s_for_the_lock() {
    let node = Node::start("ssconf-lock");
    std::fs::create_dir_all(node.path("var/lock")).unwrap();
    let held = hold_lock(&node.path("var/lock/ganeti-ssconf.lock"));
    let t = Instant::now();
    let msg = fail(node.call("write_ssconf_files", r#"[{"cluster_name": "c"}]"#));
    let took = t.elapsed();
    assert_eq!(
        msg,
        "Error while executing backend function: Failed to lock \
         /var/lock/ganeti-ssconf.lock in exclusive mode"
    );
    assert!(took >= Duration::from_secs(9), "{took:?}");
    assert!(!node.path("var/lib/ganeti/ssconf_cluster_name").exists());
    drop(held);
    ok(node.call("write_ssconf_files", r#"[{"cluster_name": "c"}]"#));
    assert_eq!(
        std::fs::read_to_string(node.path("var/lib/ganeti/ssconf_cluster_name")).unwrap(),
        "c\n"
    );
}

// ----------------------------------------------------------- upload_file

fn upload(path: &str, blob: Value, mode: u32, user: Value, group: Value) -> String {
    json!([
        path,
        blob,
        mode,
        user,
        group,
        1_000_000_000.25,
        1_200_000_000.5
    ])
    .to_string()
}

/// Python's `zlib.compress` then base64, independent of the daemon's code.
fn zlib_b64(data: &[u8]) -> String {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(3));
    z.write_all(data).unwrap();
    openssl::base64::encode_block(&z.finish().unwrap())
}

#[test]
fn upload_file_replays_252_raw_and_zlib() {
    let node = Node::start("upload");
    // 10: raw encoding.
    let (body, want) = sample("10-upload_file_allowed");
    assert_eq!(node.call("upload_file", &body), want);
    let args: Value = serde_json::from_str(&body).unwrap();
    let p = node.path("var/lib/ganeti/known_hosts");
    let m = std::fs::metadata(&p).unwrap();
    assert_eq!(m.mode(), 0o100644);
    assert_eq!((m.uid(), m.gid()), (0, 0));
    let mtime = args[6].as_f64().unwrap();
    let atime = args[5].as_f64().unwrap();
    assert_eq!(m.mtime(), mtime as i64);
    assert!((m.mtime_nsec() - ((mtime.fract() * 1e9) as i64)).abs() < 10_000);
    assert_eq!(m.atime(), atime as i64);
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        args[1][1].as_str().unwrap()
    );

    // 11: zlib + base64, to a subdirectory (ensure-dirs creates it).
    std::fs::create_dir_all(node.path("var/lib/ganeti/rapi")).unwrap();
    let (body, want) = sample("11-upload_file_allowed_zlib");
    assert_eq!(node.call("upload_file", &body), want);
    let args: Value = serde_json::from_str(&body).unwrap();
    let packed = openssl::base64::decode_block(args[1][1].as_str().unwrap()).unwrap();
    let mut expected = Vec::new();
    flate2::read::ZlibDecoder::new(packed.as_slice())
        .read_to_end(&mut expected)
        .unwrap();
    let p = node.path("var/lib/ganeti/rapi/users");
    let m = std::fs::metadata(&p).unwrap();
    assert_eq!(m.mode(), 0o100640);
    assert_eq!(m.mtime(), args[6].as_f64().unwrap() as i64);
    assert_eq!(std::fs::read(&p).unwrap(), expected);

    // 12: not an upload target, on the host or under the root.
    let (body, want) = sample("12-upload_file_disallowed");
    assert_eq!(node.call("upload_file", &body), want);
    assert!(!Path::new("/tmp/work/not-allowed.txt").exists());
    assert!(!node.path("tmp/work/not-allowed.txt").exists());
}

#[test]
fn upload_file_writes_every_target_with_both_encodings() {
    let node = Node::start("upload-all");
    for d in ["var/lib/ganeti/rapi", "etc/ganeti", "etc/xen/scripts"] {
        std::fs::create_dir_all(node.path(d)).unwrap();
    }
    let targets = [
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
    for (i, t) in targets.iter().enumerate() {
        // Binary content, compressed; then small text, raw.
        let data: Vec<u8> = (0..2000u32).map(|n| (n * 7 + i as u32) as u8).collect();
        let body = upload(
            t,
            json!([1, zlib_b64(&data)]),
            0o100600,
            json!("root"),
            json!("root"),
        );
        ok(node.call("upload_file", &body));
        let p = node.path(t);
        assert_eq!(std::fs::read(&p).unwrap(), data, "{t}");
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o600, "{t}");
        assert_eq!(m.mtime(), 1_200_000_000);
        assert_eq!(m.mtime_nsec(), 500_000_000);
        let body = upload(
            t,
            json!([0, format!("line {i}\n")]),
            0o100644,
            json!("root"),
            json!("root"),
        );
        ok(node.call("upload_file", &body));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), format!("line {i}\n"));
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o644);
    }
    // Mode 0 keeps the private 0600 of the new file (2.5.2 skips chmod).
    let body = upload(
        "/etc/hosts",
        json!([0, "x\n"]),
        0,
        json!("root"),
        json!("root"),
    );
    ok(node.call("upload_file", &body));
    assert_eq!(
        std::fs::metadata(node.path("/etc/hosts")).unwrap().mode() & 0o7777,
        0o600
    );
}

#[test]
fn upload_file_refuses_hostile_input_and_changes_nothing() {
    let node = Node::start("upload-bad");
    let outside = node.root.dir.join("outside");
    std::fs::write(&outside, "precious\n").unwrap();
    std::os::unix::fs::symlink(&outside, node.path("var/lib/ganeti/hmac.key")).unwrap();
    std::fs::write(node.path("var/lib/ganeti/config.data"), "old config\n").unwrap();
    let before = snapshot(&node.root.dir);
    let good = json!([0, "evil\n"]);
    let root = || json!("root");

    let refused = [
        // Relative, and paths that only normalise to a target.
        (
            "var/lib/ganeti/config.data",
            "is not absolute: 'var/lib/ganeti/config.data'",
        ),
        ("", "is not absolute: ''"),
        (
            "/var/lib/ganeti/../ganeti/config.data",
            "not in allowed upload targets",
        ),
        (
            "/var/lib/ganeti//config.data",
            "not in allowed upload targets",
        ),
        (
            "/var/lib/ganeti/./config.data",
            "not in allowed upload targets",
        ),
        (
            "/var/lib/ganeti/config.data/",
            "not in allowed upload targets",
        ),
        ("/etc/hosts/../passwd", "not in allowed upload targets"),
        // Files that are deliberately not uploadable.
        (
            "/var/lib/ganeti/server.pem",
            "not in allowed upload targets",
        ),
        (
            "/var/lib/ganeti/ssconf_master_node",
            "not in allowed upload targets",
        ),
        ("/etc/passwd", "not in allowed upload targets"),
        (
            "/root/.ssh/authorized_keys",
            "not in allowed upload targets",
        ),
    ];
    for (path, want) in refused {
        let msg = fail(node.call(
            "upload_file",
            &upload(path, good.clone(), 0o644, root(), root()),
        ));
        assert!(msg.contains(want), "{path}: {msg}");
        if want.contains("allowed") {
            assert_eq!(
                msg,
                format!("Filename passed to UploadFile not in allowed upload targets: '{path}'")
            );
        } else {
            assert_eq!(
                msg,
                format!("Filename passed to UploadFile is not absolute: '{path}'")
            );
        }
    }

    let cfg = "/var/lib/ganeti/config.data";
    // Broken blobs.
    let truncated = {
        let full = openssl::base64::decode_block(&zlib_b64(&[b'a'; 5000])).unwrap();
        openssl::base64::encode_block(&full[..full.len() / 2])
    };
    // 17 MiB of zeros: a 17 KiB body that would inflate past the limit.
    let bomb = zlib_b64(&vec![0u8; 17 * 1024 * 1024]);
    for (blob, want) in [
        (
            json!([2, "x"]),
            "Error while executing backend function: Unknown data encoding",
        ),
        (json!([1, "!!!not base64"]), "Invalid base64 data"),
        (json!([1, truncated]), "Invalid zlib data"),
        (
            json!([1, openssl::base64::encode_block(b"plain, not zlib")]),
            "Invalid zlib data",
        ),
        (json!([1, bomb]), "larger than"),
        (json!([0]), "Invalid data encoding"),
        (json!([0, 5]), "Invalid data encoding"),
        (json!("raw"), "Invalid data encoding"),
    ] {
        let msg = fail(node.call("upload_file", &upload(cfg, blob, 0o644, root(), root())));
        assert!(
            msg.starts_with("Error while executing backend function: "),
            "{msg}"
        );
        assert!(msg.contains(want), "{want}: {msg}");
    }
    // Owners: names of Ganeti users and groups only.
    for (user, group, want) in [
        (
            json!(0),
            root(),
            "Invalid username/groupname type".to_string(),
        ),
        (
            root(),
            json!(null),
            "Invalid username/groupname type".to_string(),
        ),
        (
            json!("nobody"),
            root(),
            "Error while executing backend function: Unknown Ganeti user 'nobody'".to_string(),
        ),
        (
            root(),
            json!("daemon"),
            "Error while executing backend function: Unknown Ganeti group 'daemon'".to_string(),
        ),
    ] {
        let msg = fail(node.call(
            "upload_file",
            &upload(cfg, good.clone(), 0o644, user, group),
        ));
        assert_eq!(msg, want);
    }
    // Wrong argument shapes.
    for body in [
        json!([cfg, good, 0o644, "root", "root", 1.0]).to_string(),
        json!([cfg, good, "0644", "root", "root", 1.0, 2.0]).to_string(),
        json!([cfg, good, -1, "root", "root", 1.0, 2.0]).to_string(),
        json!([5, good, 0o644, "root", "root", 1.0, 2.0]).to_string(),
        "[".to_string(),
    ] {
        let msg = fail(node.call("upload_file", &body));
        assert!(
            msg.starts_with("Error while executing backend function:"),
            "{msg}"
        );
    }
    // A symlink at a target is not followed.
    let msg = fail(node.call(
        "upload_file",
        &upload(
            "/var/lib/ganeti/hmac.key",
            good.clone(),
            0o600,
            root(),
            root(),
        ),
    ));
    assert_eq!(
        msg,
        "Error while executing backend function: Refusing to write \
         /var/lib/ganeti/hmac.key: it is a symbolic link"
    );
    // A missing parent directory is an error, and nothing is created.
    let msg = fail(node.call(
        "upload_file",
        &upload(
            "/etc/xen/scripts/vif-bridge",
            good.clone(),
            0o755,
            root(),
            root(),
        ),
    ));
    assert_eq!(
        msg,
        "Error while executing backend function: [Errno 2] No such file or directory: \
         '/etc/xen/scripts/vif-bridge'"
    );
    // A target locked by someone else.
    let lock = hold_lock(&node.path(cfg));
    let msg = fail(node.call(
        "upload_file",
        &upload(cfg, good.clone(), 0o644, root(), root()),
    ));
    assert_eq!(
        msg,
        "Error while executing backend function: File already locked"
    );
    drop(lock);

    assert_eq!(snapshot(&node.root.dir), before);
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious\n");
}

#[test]
fn body_limits() {
    let node = Node::start("limits");
    for (procedure, limit) in [
        ("upload_file", 8 * 1024 * 1024),
        ("write_ssconf_files", 4 * 1024 * 1024),
        ("master_info", 64 * 1024),
        ("node_start_master", 64 * 1024),
        ("node_stop_master", 64 * 1024),
        ("node_leave_cluster", 64 * 1024),
        ("node_demote_from_mc", 64 * 1024),
    ] {
        let head = |len: usize| {
            format!("PUT /{procedure} HTTP/1.1\r\nHost: node\r\nContent-Length: {len}\r\n\r\n")
        };
        let a = node.send(head(limit + 1).as_bytes());
        assert_eq!(a.status, 413, "{procedure}");
    }
    // Exactly at the limit the body is read (and then judged on content).
    let limit = 64 * 1024;
    let body = format!("[{}]", " ".repeat(limit - 2));
    assert_eq!(node.call("master_info", &body)[0], json!(false));
    assert!(alive(node.pid));
}

// ------------------------------------------------------- master IP (netns)

/// Moves this test's thread into a new network namespace with `lo` up.
/// Processes started from this thread (the node daemon) inherit it.
fn private_netns() -> bool {
    // SAFETY: unshare(CLONE_NEWNET) affects only the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        eprintln!(
            "skipped: cannot create a network namespace: {}",
            std::io::Error::last_os_error()
        );
        return false;
    }
    ip(&["link", "set", "lo", "up"]);
    true
}

fn ip(args: &[&str]) -> String {
    let out = Command::new(ip_cmd()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes an address again, even when the test fails.
struct AddrGuard(&'static str, &'static str);

impl Drop for AddrGuard {
    fn drop(&mut self) {
        let _ = Command::new(ip_cmd())
            .args(["address", "del", self.0, "dev", self.1])
            .stderr(Stdio::null())
            .status();
    }
}

fn set_master_ssconf(node: &Node, netdev: &str, ip: &str, family: &str) {
    node.ssconf("master_netdev", netdev);
    node.ssconf("master_ip", ip);
    node.ssconf("master_node", "node1.example.com");
    node.ssconf("primary_ip_family", family);
}

#[test]
fn master_ip_is_added_and_removed_on_lo() {
    if !private_netns() {
        return;
    }
    let node = Node::start("master-ip");
    let _guard = AddrGuard("198.51.100.83/32", "lo");
    set_master_ssconf(&node, "lo", "198.51.100.83", "2");
    assert!(!ip(&["-o", "addr", "show", "dev", "lo"]).contains("198.51.100.83"));

    // Not reachable: added with the label; arping (absent or failing on
    // lo) does not matter.
    ok(node.call("node_start_master", "[false, false]"));
    let addrs = ip(&["-o", "addr", "show", "dev", "lo"]);
    let line = addrs
        .lines()
        .find(|l| l.contains("inet 198.51.100.83/32"))
        .unwrap_or_else(|| panic!("address not added: {addrs}"));
    assert!(line.contains("lo:0"), "{line}");

    // Now it answers and is ours: nothing to do.
    ok(node.call("node_start_master", "[false, false]"));
    let addrs = ip(&["-o", "addr", "show", "dev", "lo"]);
    assert_eq!(addrs.matches("198.51.100.83").count(), 1, "{addrs}");
    let log = std::fs::read_to_string(node.root.node_log()).unwrap();
    assert!(log.contains("Master IP already configured, doing nothing"));

    // master_info agrees.
    assert_eq!(
        node.call("master_info", "[]"),
        json!([true, ["lo", "198.51.100.83", "node1.example.com", 2]])
    );

    ok(node.call("node_stop_master", "[false]"));
    assert!(!ip(&["-o", "addr", "show", "dev", "lo"]).contains("198.51.100.83"));
    // Removing an absent address is only logged.
    ok(node.call("node_stop_master", "[false]"));
    let log = std::fs::read_to_string(node.root.node_log()).unwrap();
    assert!(log.contains("Can't remove the master IP, error:"), "{log}");
}

#[test]
fn master_ipv6_is_added_and_removed() {
    if !private_netns() {
        return;
    }
    let node = Node::start("master-ip6");
    let _guard = AddrGuard("fd83::83/128", "lo");
    set_master_ssconf(&node, "lo", "fd83::83", "10");
    ok(node.call("node_start_master", "[false, false]"));
    let addrs = ip(&["-o", "-6", "addr", "show", "dev", "lo"]);
    assert!(addrs.contains("inet6 fd83::83/128"), "{addrs}");
    ok(node.call("node_stop_master", "[false]"));
    let addrs = ip(&["-o", "-6", "addr", "show", "dev", "lo"]);
    assert!(!addrs.contains("fd83::83"), "{addrs}");
}

#[test]
fn someone_else_has_the_master_ip() {
    let (Some(unshare), Some(nsenter)) = (
        which(&["/usr/bin", "/bin"], "unshare"),
        which(&["/usr/bin", "/bin"], "nsenter"),
    ) else {
        eprintln!("skipped: unshare/nsenter not installed");
        return;
    };
    if !private_netns() {
        return;
    }
    // A second namespace, linked by a veth pair, owns the master IP.
    let mut other = Command::new(unshare)
        .args(["-n", "sleep", "60"])
        .spawn()
        .unwrap();
    let pid = other.id().to_string();
    assert!(wait_until(SECS, || std::fs::read_to_string(format!(
        "/proc/{pid}/comm"
    ))
    .is_ok_and(|c| c.trim() == "sleep")));
    let setup = || -> Result<(), String> {
        let run = |c: &mut Command| {
            let out = c.output().map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        };
        run(Command::new(ip_cmd()).args([
            "link", "add", "gva", "type", "veth", "peer", "name", "gvb", "netns", &pid,
        ]))?;
        run(Command::new(ip_cmd()).args(["addr", "add", "198.51.100.1/24", "dev", "gva"]))?;
        run(Command::new(ip_cmd()).args(["link", "set", "gva", "up"]))?;
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["addr", "add", "198.51.100.84/24", "dev", "gvb"],
            vec!["link", "set", "gvb", "up"],
        ] {
            run(Command::new(&nsenter)
                .args(["-t", &pid, "-n"])
                .arg(ip_cmd())
                .args(&args))?;
        }
        Ok(())
    };
    if let Err(e) = setup() {
        let _ = other.kill();
        let _ = other.wait();
        eprintln!("skipped: cannot link two network namespaces: {e}");
        return;
    }
    let node = Node::start("master-ip-taken");
    set_master_ssconf(&node, "gva", "198.51.100.84", "2");
    let msg = fail(node.call("node_start_master", "[false, false]"));
    assert_eq!(msg, "Someone else has the master ip, not activating");
    assert!(!ip(&["-o", "addr", "show", "dev", "gva"]).contains("198.51.100.84"));
    let _ = other.kill();
    let _ = other.wait();
}

#[test]
fn master_ip_refuses_bad_ssconf_values() {
    let node = Node::start("master-bad");
    // Incomplete configuration: 2.5.2's message.
    let msg = fail(node.call("node_start_master", "[false, false]"));
    assert!(
        msg.starts_with("Cluster configuration incomplete: Can't read from the ssconf file:"),
        "{msg}"
    );
    stop_fails_without_ssconf(&node);
    for (netdev, ipaddr, family, want) in [
        (
            "-help",
            "198.51.100.83",
            "2",
            "Invalid master network device '-help'",
        ),
        (
            "lo:0",
            "198.51.100.83",
            "2",
            "Invalid master network device 'lo:0'",
        ),
        (
            "../lo",
            "198.51.100.83",
            "2",
            "Invalid master network device '../lo'",
        ),
        (
            "lo",
            "198.51.100.83/0",
            "2",
            "Invalid master IP '198.51.100.83/0' for IP family 2",
        ),
        (
            "lo",
            "fd83::1",
            "2",
            "Invalid master IP 'fd83::1' for IP family 2",
        ),
        ("lo", "-s", "2", "Invalid master IP '-s' for IP family 2"),
    ] {
        set_master_ssconf(&node, netdev, ipaddr, family);
        assert_eq!(fail(node.call("node_start_master", "[false, false]")), want);
        // Stopping never fails once ssconf is readable.
        ok(node.call("node_stop_master", "[false]"));
    }
    for body in ["[]", "[1, 0]", "[true]", r#"["yes", false]"#] {
        let msg = fail(node.call("node_start_master", body));
        assert!(
            msg.starts_with("Error while executing backend function:"),
            "{msg}"
        );
    }
}

/// node_stop_master with unreadable ssconf fails like master_info.
fn stop_fails_without_ssconf(node: &Node) {
    let msg = fail(node.call("node_stop_master", "[false]"));
    assert!(
        msg.starts_with("Cluster configuration incomplete:"),
        "{msg}"
    );
}

// ------------------------------------------------------- master daemon

/// A stand-in for ganeti-masterd in `dir`: records its arguments, and
/// fails with a message when `<root>/fail` exists.
fn fake_masterd(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("ganeti-masterd");
    std::fs::write(
        &p,
        "#!/bin/sh\n\
         if [ -e \"$GANETI_ROOTDIR/fail\" ]; then echo 'masterd: cannot start' >&2; exit 1; fi\n\
         printf '%s\\n' \"$*\" > \"$GANETI_ROOTDIR/masterd-args\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn start_master_runs_masterd_from_sbindir() {
    let sbin = std::env::temp_dir().join(format!("ganeti-rs-sbin-{}", std::process::id()));
    fake_masterd(&sbin);
    let node = Node::start_with("start-fake", &[("GANETI_SBINDIR", &sbin)]);
    set_master_ssconf(&node, "lo", "198.51.100.83", "2");
    ok(node.call("node_start_master", "[true, true]"));
    assert_eq!(
        std::fs::read_to_string(node.path("masterd-args")).unwrap(),
        "--no-voting --yes-do-it\n"
    );
    ok(node.call("node_start_master", "[true, false]"));
    assert_eq!(
        std::fs::read_to_string(node.path("masterd-args")).unwrap(),
        "\n"
    );
    std::fs::write(node.path("fail"), "").unwrap();
    assert_eq!(
        fail(node.call("node_start_master", "[true, false]")),
        "Can't start Ganeti master: masterd: cannot start"
    );
    let _ = std::fs::remove_dir_all(&sbin);
}

#[test]
fn start_master_reports_the_real_masterds_error() {
    let node = Node::start("start-real");
    set_master_ssconf(&node, "lo", "198.51.100.83", "2");
    // Not the master in ssconf: masterd exits 11 without a word.
    node.ssconf("master_node", "node2.example.com");
    assert_eq!(
        fail(node.call("node_start_master", "[true, false]")),
        "Can't start Ganeti master: exited with exit code 11"
    );
    // The master, with a broken configuration: masterd says so.
    node.ssconf("master_node", "node1.example.com");
    std::fs::write(node.path("var/lib/ganeti/config.data"), "{").unwrap();
    let msg = fail(node.call("node_start_master", "[true, true]"));
    assert!(msg.starts_with("Can't start Ganeti master: "), "{msg}");
    assert!(
        msg.contains("Configuration error while opening the configuration file: "),
        "{msg}"
    );
    // Without the configuration file.
    std::fs::remove_file(node.path("var/lib/ganeti/config.data")).unwrap();
    let msg = fail(node.call("node_start_master", "[true, false]"));
    assert!(msg.contains("config.data"), "{msg}");
    assert!(!node.root.pid_file("ganeti-masterd").exists());
}

/// A process that holds masterd's pid file as a running masterd does.
fn running_masterd(node: &Node) -> Option<Child> {
    which(&["/usr/bin", "/bin"], "flock")?;
    let pid_file = node.root.pid_file("ganeti-masterd");
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg("exec 9>>\"$1\"; flock -n 9 || exit 1; echo $$ > \"$1\"; exec sleep 60")
        .arg("sh")
        .arg(&pid_file)
        .spawn()
        .unwrap();
    let want = format!("{}\n", child.id());
    assert!(wait_until(SECS, || std::fs::read_to_string(&pid_file)
        .is_ok_and(|t| t == want)));
    // Let the shell exec sleep, keeping the lock.
    let comm = format!("/proc/{}/comm", child.id());
    assert!(wait_until(SECS, || std::fs::read_to_string(&comm)
        .is_ok_and(|c| c.trim() == "sleep")));
    Some(child)
}

#[test]
fn stop_master_terminates_a_running_masterd_only() {
    let node = Node::start("stop-masterd");
    set_master_ssconf(&node, "lo", "198.51.100.83", "2");
    let Some(mut masterd) = running_masterd(&node) else {
        eprintln!("skipped: flock(1) not installed");
        return;
    };
    // stop_daemons false leaves it alone.
    ok(node.call("node_stop_master", "[false]"));
    assert!(alive(masterd.id() as i32));
    let t = Instant::now();
    ok(node.call("node_stop_master", "[true]"));
    let status = masterd.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(t.elapsed() < Duration::from_secs(10));

    // A stale pid file (nobody holds its lock) naming a live process: that
    // process is not signalled.
    let mut bystander = Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::write(
        node.root.pid_file("ganeti-masterd"),
        format!("{}\n", bystander.id()),
    )
    .unwrap();
    ok(node.call("node_stop_master", "[true]"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(bystander.id() as i32));
    let _ = bystander.kill();
    let _ = bystander.wait();
    let log = std::fs::read_to_string(node.root.node_log()).unwrap();
    assert!(log.contains("ganeti-masterd is not running"), "{log}");
}

// --------------------------------------------------- demote and leave

#[test]
fn demote_from_master_candidate() {
    let node = Node::start("demote");
    let config = node.path("var/lib/ganeti/config.data");
    std::fs::write(&config, "{\"serial_no\": 7}\n").unwrap();

    let msg = fail(node.call("node_demote_from_mc", "[]"));
    assert!(
        msg.starts_with("Error while executing backend function: Can't read from the ssconf file:"),
        "{msg}"
    );
    node.ssconf("master_node", "node1.example.com");
    assert_eq!(
        fail(node.call("node_demote_from_mc", "[]")),
        "ssconf status shows I'm the master node, will not demote"
    );
    node.ssconf("master_node", "node2.example.com");
    if let Some(mut masterd) = running_masterd(&node) {
        assert_eq!(
            fail(node.call("node_demote_from_mc", "[]")),
            "The master daemon is running, will not demote"
        );
        let _ = masterd.kill();
        let _ = masterd.wait();
    } else {
        eprintln!("skipped the running-masterd case: flock(1) not installed");
    }
    assert!(config.exists());

    ok(node.call("node_demote_from_mc", "[]"));
    assert!(!config.exists());
    let backups: Vec<(String, PathBuf)> = std::fs::read_dir(node.path("var/lib/ganeti"))
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(n, _)| n.starts_with("config.data.backup-"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let (name, path) = &backups[0];
    // config.data.backup-YYYY-MM-DD_HH_MM_SS.xxxxxx
    let rest = name.strip_prefix("config.data.backup-").unwrap();
    let (stamp, suffix) = rest.split_once('.').unwrap();
    assert_eq!(stamp.len(), 19, "{name}");
    assert_eq!(&stamp[4..5], "-");
    assert_eq!(&stamp[10..11], "_");
    assert_eq!(suffix.len(), 6, "{name}");
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        "{\"serial_no\": 7}\n"
    );
    assert_eq!(std::fs::metadata(path).unwrap().mode() & 0o777, 0o600);
    // Nothing left to demote: still fine.
    ok(node.call("node_demote_from_mc", "[]"));
}

fn write(p: &Path, content: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// Files of a cluster node; returns the path of a file outside the
/// cleaned directories that a symlink points to.
fn populate(node: &Node) -> PathBuf {
    let data = node.path("var/lib/ganeti");
    for f in [
        "config.data",
        "known_hosts",
        "hmac.key",
        "rapi.pem",
        "ssconf_master_node",
        ".keepme",
    ] {
        write(&data.join(f), "x\n");
    }
    write(&data.join("rapi/users"), "u\n");
    let outside = node.root.dir.join("outside");
    write(&outside, "not cluster data\n");
    std::os::unix::fs::symlink(&outside, data.join("link")).unwrap();
    let crypto = node.path("var/run/ganeti/crypto");
    write(&crypto.join("x509-1/key"), "k\n");
    write(&crypto.join("stray"), "s\n");
    let queue = node.path("var/lib/ganeti/queue");
    for f in ["job-1", "serial", "version", "lock"] {
        write(&queue.join(f), "1\n");
    }
    write(&queue.join("archive/job-0"), "0\n");
    write(&queue.join("archive/0/job-5"), "5\n");
    outside
}

fn ssh_dir(node: &Node) -> PathBuf {
    // Root's home from the password file, under the node's root.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let home = passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"root")).then(|| f[5].to_string())
        })
        .unwrap_or_else(|| "/root".into());
    node.path(&format!("{home}/.ssh"))
}

fn populate_ssh(node: &Node) {
    let ssh = ssh_dir(node);
    write(&ssh.join("id_dsa"), "PRIVATE\n");
    write(&ssh.join("id_dsa.pub"), "ssh-dss AAAAcluster root@node1\n");
    write(
        &ssh.join("authorized_keys"),
        "ssh-rsa AAAAadmin admin@desk\nssh-dss  AAAAcluster   root@node1\n",
    );
}

#[test]
fn leave_cluster_cleans_up_answers_and_exits() {
    let node = Node::start("leave");
    let outside = populate(&node);
    populate_ssh(&node);
    let a = node.send(&request("node_leave_cluster", "[true]"));
    assert_eq!(a.status, 200);
    assert_eq!(a.body, b"[true, \"Shutdown scheduled\"]\n");
    assert!(wait_until(SECS, || !alive(node.pid)), "daemon did not exit");
    assert!(!node.root.pid_file("ganeti-noded").exists());

    let data = node.path("var/lib/ganeti");
    for gone in [
        "config.data",
        "known_hosts",
        "hmac.key",
        "rapi.pem",
        "server.pem",
        "ssconf_master_node",
        "queue/job-1",
        "queue/serial",
        "queue/version",
        "queue/archive/job-0",
    ] {
        assert!(!data.join(gone).exists(), "{gone} left");
    }
    for kept in [
        ".keepme",
        "rapi/users",
        "link",
        "queue/lock",
        "queue/archive/0/job-5",
    ] {
        assert!(data.join(kept).symlink_metadata().is_ok(), "{kept} removed");
    }
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "not cluster data\n"
    );
    let crypto = node.path("var/run/ganeti/crypto");
    assert!(!crypto.join("stray").exists());
    assert!(crypto.join("x509-1/key").exists());
    let ssh = ssh_dir(&node);
    assert!(!ssh.join("id_dsa").exists());
    assert!(!ssh.join("id_dsa.pub").exists());
    assert_eq!(
        std::fs::read_to_string(ssh.join("authorized_keys")).unwrap(),
        "ssh-rsa AAAAadmin admin@desk\n"
    );
    let log = std::fs::read_to_string(node.root.node_log()).unwrap();
    assert!(log.contains("ganeti-noded daemon stopped"), "{log}");
}

#[test]
fn leave_cluster_keeps_ssh_keys_without_the_flag() {
    let node = Node::start("leave-nossh");
    populate(&node);
    populate_ssh(&node);
    let v = node.call("node_leave_cluster", "[false]");
    assert_eq!(v, json!([true, "Shutdown scheduled"]));
    assert!(wait_until(SECS, || !alive(node.pid)));
    let ssh = ssh_dir(&node);
    assert!(ssh.join("id_dsa").exists());
    assert!(ssh.join("id_dsa.pub").exists());
    assert_eq!(
        std::fs::read_to_string(ssh.join("authorized_keys")).unwrap(),
        "ssh-rsa AAAAadmin admin@desk\nssh-dss  AAAAcluster   root@node1\n"
    );
    assert!(!node.path("var/lib/ganeti/config.data").exists());
}

#[test]
fn leave_cluster_with_bad_arguments_stays_up() {
    let node = Node::start("leave-bad");
    populate(&node);
    for body in ["[]", "[\"yes\"]", "[true, 1]"] {
        let msg = fail(node.call("node_leave_cluster", body));
        assert!(
            msg.starts_with("Error while executing backend function:"),
            "{msg}"
        );
    }
    assert!(node.path("var/lib/ganeti/config.data").exists());
    assert!(alive(node.pid));
    assert_eq!(node.call("version", "[]"), json!([true, 2050000]));
}
