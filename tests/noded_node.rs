//! The node and cluster basics over real TLS against the real binary:
//! node_info, node_has_ip_address, node_tcp_ping, bridges_exist,
//! etc_hosts_modify, test_delay, node_verify. Expected answers follow the
//! recordings of Ganeti 2.5.2 (samples/ganeti-2.5.2/rpc/01, 05-09, 34-37),
//! with this machine's own numbers where those are the machine's.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;

/// A TLS node daemon in its own root, named node1.example.com
/// (tests/common's `TlsNode`).
struct Node(TlsNode);

impl std::ops::Deref for Node {
    type Target = TlsNode;
    fn deref(&self) -> &TlsNode {
        &self.0
    }
}

impl Node {
    fn start(tag: &str) -> Node {
        Node(TlsNode::start(Root::new(tag), &[]))
    }

    /// One call; the `[success, payload]` answer.
    fn call(&self, procedure: &str, body: &str) -> Value {
        let a = self.raw(procedure, body);
        assert_eq!(a.status, 200, "{}", a.text());
        serde_json::from_slice(&a.body).unwrap()
    }

    /// The payload of a successful call.
    fn ok(&self, procedure: &str, body: &str) -> Value {
        let v = self.call(procedure, body);
        assert_eq!(v[0], true, "{procedure} {body}: {v}");
        v[1].clone()
    }

    /// The message of a failed call.
    fn fail(&self, procedure: &str, body: &str) -> String {
        let v = self.call(procedure, body);
        assert_eq!(v[0], false, "{procedure} {body}: {v}");
        v[1].as_str().unwrap().to_string()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        signal(self.pid, libc::SIGTERM);
        wait_until(Duration::from_secs(5), || !alive(self.pid));
    }
}

/// (MemTotal, CPUs) of this machine, as node_info reports them.
fn machine_facts() -> (u64, u64) {
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = mem
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    let cpus = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            l.starts_with("processor")
                && l.split(':')
                    .nth(1)
                    .is_some_and(|n| n.trim().parse::<u32>().is_ok())
        })
        .count() as u64;
    (kb / 1024, cpus)
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim_end()
        .to_string()
}

/// Checks a hypervisor node-info dict (sample 01 without bootid).
fn check_hv_info(v: &Value) {
    let (mem, cpus) = machine_facts();
    assert_eq!(v["memory_total"], mem);
    assert_eq!(v["cpu_total"], cpus);
    assert_eq!(
        (v["cpu_nodes"].clone(), v["cpu_sockets"].clone()),
        (json!(1), json!(1))
    );
    assert!(v["memory_dom0"].is_u64());
    assert!(v["memory_free"].as_u64().unwrap() <= mem);
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[test]
fn node_info_fake_matches_the_recording() {
    let node = Node::start("ninfo");
    // Sample 01: [null, "fake"] -> no vg keys.
    let v = node.ok("node_info", r#"[null, "fake"]"#);
    assert_eq!(
        keys(&v),
        [
            "bootid",
            "cpu_nodes",
            "cpu_sockets",
            "cpu_total",
            "memory_dom0",
            "memory_free",
            "memory_total"
        ]
    );
    assert_eq!(v["bootid"], boot_id());
    check_hv_info(&v);
    // The fake hypervisor made its state directory, 0775.
    let dir = node.root.path("var/run/ganeti/fake-hypervisor");
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o775);

    // A running fake instance of 2 TiB takes all the free memory.
    std::fs::write(dir.join("big"), "0\n2097152\n1\n").unwrap();
    assert_eq!(node.ok("node_info", r#"[null, "fake"]"#)["memory_free"], 0);
    // kvm reports the plain Linux numbers.
    let kvm = node.ok("node_info", r#"[null, "kvm"]"#);
    check_hv_info(&kvm);
    assert!(kvm["memory_free"].as_u64().unwrap() > 0);

    // No LVM on this machine: vgs is missing or knows no "xenvg", so the
    // VG values are null (only logged), and the rest is answered.
    let v = node.ok("node_info", r#"["xenvg", null]"#);
    assert_eq!(keys(&v), ["bootid", "vg_free", "vg_size"]);
    assert_eq!(
        (v["vg_free"].clone(), v["vg_size"].clone()),
        (Value::Null, Value::Null)
    );

    assert_eq!(
        node.fail("node_info", r#"[null, "xen-pvm"]"#),
        "Error while executing backend function: Unknown hypervisor type 'xen-pvm'"
    );
    for bad in ["[null]", r#"[1, "fake"]"#, "{}", "[null, null, null]"] {
        let m = node.fail("node_info", bad);
        assert!(m.contains("invalid arguments"), "{bad}: {m}");
    }
}

#[test]
fn ip_address_ownership_and_tcp_ping() {
    let node = Node::start("net");
    // Samples 05/06.
    assert_eq!(node.ok("node_has_ip_address", r#"["127.0.0.1"]"#), true);
    assert_eq!(node.ok("node_has_ip_address", r#"["::1"]"#), true);
    assert_eq!(node.ok("node_has_ip_address", r#"["198.51.100.1"]"#), false);
    assert_eq!(node.ok("node_has_ip_address", r#"["not-an-ip"]"#), false);
    assert!(node
        .fail("node_has_ip_address", "[1]")
        .contains("invalid arguments"));

    // Samples 07/08: the node daemon's own port is live; a closed port is
    // not, unless a refused connection is enough.
    let live = format!(r#"["127.0.0.1", "127.0.0.1", {}, 5, true]"#, node.port);
    assert_eq!(node.ok("node_tcp_ping", &live), true);
    let closed_port = free_port();
    let closed = format!(r#"["127.0.0.1", "127.0.0.1", {closed_port}, 2, true]"#);
    assert_eq!(node.ok("node_tcp_ping", &closed), false);
    let refused_ok = format!(r#"[null, "127.0.0.1", {closed_port}, 2, false]"#);
    assert_eq!(node.ok("node_tcp_ping", &refused_ok), true);
    // A source the node does not own is ignored, as in 2.5.2.
    let other_src = format!(r#"["198.51.100.1", "127.0.0.1", {}, 2, true]"#, node.port);
    assert_eq!(node.ok("node_tcp_ping", &other_src), true);
    assert_eq!(
        node.ok(
            "node_tcp_ping",
            r#"[null, "node1.example.com", 1811, 1, false]"#
        ),
        false
    );
    // A listener whose accept queue is full drops new SYNs: the ping waits
    // for its timeout and answers false.
    let full = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen(2) on a socket owned by `full`; backlog 0 keeps one
    // pending connection.
    assert_eq!(
        unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&full), 0) },
        0
    );
    let full_port = full.local_addr().unwrap().port();
    let _queued: Vec<std::net::TcpStream> = (0..2)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], full_port)),
                Duration::from_millis(200),
            )
            .ok()
        })
        .collect();
    let start = Instant::now();
    let ping = format!(r#"[null, "127.0.0.1", {full_port}, 0.5, false]"#);
    assert_eq!(node.ok("node_tcp_ping", &ping), false);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(node
        .fail("node_tcp_ping", r#"[null, "127.0.0.1", 1811, -1, true]"#)
        .contains("Timeout value out of range"));
    assert!(node
        .fail("node_tcp_ping", r#"[null, "127.0.0.1", 70000, 1, true]"#)
        .contains("invalid arguments"));
}

/// A bridge made for the test, removed on drop.
struct Bridge(String);

impl Bridge {
    fn create(name: &str) -> Option<Bridge> {
        let ok = std::process::Command::new("ip")
            .args(["link", "add", "name", name, "type", "bridge"])
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Bridge(name.to_string()))
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .status();
    }
}

#[test]
fn bridges_exist_names_the_missing_ones() {
    let node = Node::start("bridges");
    // Sample 35.
    assert_eq!(
        node.fail("bridges_exist", r#"[["g25br0"]]"#),
        "Missing bridges g25br0"
    );
    // lo is an interface but not a bridge; odd names are just missing.
    assert_eq!(
        node.fail("bridges_exist", r#"[["lo", "../../../../tmp", "g25br0"]]"#),
        "Missing bridges lo, ../../../../tmp, g25br0"
    );
    assert_eq!(node.ok("bridges_exist", "[[]]"), Value::Null);
    let name = format!("gntb{}", std::process::id() % 100_000);
    match Bridge::create(&name) {
        Some(_bridge) => {
            assert_eq!(
                node.ok("bridges_exist", &format!(r#"[["{name}"]]"#)),
                Value::Null
            );
        }
        None => eprintln!("cannot create a bridge here (no CAP_NET_ADMIN?); skipped"),
    }
}

#[test]
fn etc_hosts_modify_edits_the_hosts_file_under_the_root() {
    let node = Node::start("hosts");
    std::fs::create_dir_all(node.root.path("etc")).unwrap();
    let hosts = node.root.path("etc/hosts");
    let original =
        "127.0.0.1\tlocalhost\n# 192.0.2.55 kept comment\n192.0.2.55 old.example.com old\n";
    std::fs::write(&hosts, original).unwrap();
    std::fs::set_permissions(&hosts, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;

    // Sample 36.
    let add = r#"["add", "lab25-added.example.com", "192.0.2.55"]"#;
    assert_eq!(node.ok("etc_hosts_modify", add), true);
    let added = "127.0.0.1\tlocalhost\n# 192.0.2.55 kept comment\n\
                 192.0.2.55\tlab25-added.example.com lab25-added\n";
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), added);
    assert_eq!(mode(&hosts), 0o644);
    // A second address is appended.
    let add2 = r#"["add", "other.example.com", "2001:db8::1"]"#;
    assert_eq!(node.ok("etc_hosts_modify", add2), true);
    let both = format!("{added}2001:db8::1\tother.example.com other\n");
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), both);

    // Sample 37: both the name and its short form go.
    let remove = r#"["remove", "lab25-added.example.com", null]"#;
    assert_eq!(node.ok("etc_hosts_modify", remove), true);
    let removed = "127.0.0.1\tlocalhost\n# 192.0.2.55 kept comment\n\
                   2001:db8::1\tother.example.com other\n";
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), removed);
    assert_eq!(mode(&hosts), 0o644);
    // Nothing but the hosts file in etc/ (no temporary files left).
    assert_eq!(std::fs::read_dir(node.root.path("etc")).unwrap().count(), 1);

    // Refused: nothing changes (2.5.2 built these errors but did not raise
    // them, and wrote "None\t..." for a missing address).
    std::fs::set_permissions(&hosts, std::fs::Permissions::from_mode(0o640)).unwrap();
    let refused = [
        (
            r#"["add", "x.example.com", null]"#,
            "Mode 'add' needs 'ip' parameter, but parameter not present",
        ),
        (
            r#"["add", "x.example.com", ""]"#,
            "Mode 'add' needs 'ip' parameter, but parameter not present",
        ),
        (
            r#"["remove", "x.example.com", "192.0.2.1"]"#,
            "Mode 'remove' does not allow 'ip' parameter, but parameter is present",
        ),
        (
            r#"["replace", "x.example.com", "192.0.2.1"]"#,
            "Mode not supported: 'replace' (expected 'add' or 'remove')",
        ),
        (
            r#"["add", "x.example.com", "192.0.2.1\n10.0.0.1"]"#,
            "Invalid IP address '192.0.2.1\n10.0.0.1'",
        ),
        (
            r#"["add", "x\n10.0.0.1 evil", "192.0.2.1"]"#,
            r#"Invalid host name "x\n10.0.0.1 evil""#,
        ),
        (r#"["remove", "", null]"#, r#"Invalid host name """#),
        (r#"["remove", "a b", null]"#, r#"Invalid host name "a b""#),
    ];
    for (body, msg) in refused {
        assert_eq!(node.fail("etc_hosts_modify", body), msg, "{body}");
    }
    for bad in [r#"["add", "x"]"#, r#"["add", 1, null]"#] {
        assert!(node
            .fail("etc_hosts_modify", bad)
            .contains("invalid arguments"));
    }
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), removed);
    assert_eq!(mode(&hosts), 0o640);

    // A missing hosts file is an error, and is not created.
    std::fs::remove_file(&hosts).unwrap();
    let m = node.fail("etc_hosts_modify", add);
    assert!(
        m.starts_with("Error while executing backend function: Can't read /etc/hosts"),
        "{m}"
    );
    assert!(!hosts.exists());
    assert_eq!(std::fs::read_dir(node.root.path("etc")).unwrap().count(), 0);
}

#[test]
fn test_delay_sleeps_and_refuses_negative_durations() {
    let node = Node::start("delay");
    // Sample 09.
    let start = Instant::now();
    assert_eq!(node.ok("test_delay", "[0.1]"), Value::Null);
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(node.ok("test_delay", "[0]"), Value::Null);
    assert_eq!(node.fail("test_delay", "[-1]"), "Invalid sleep duration");
    assert_eq!(
        node.fail("test_delay", "[-0.001]"),
        "Invalid sleep duration"
    );
    assert!(node.fail("test_delay", "[]").contains("invalid arguments"));
}

fn sha1_hex(data: &[u8]) -> String {
    openssl::sha::sha1(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn node_verify_answers_the_cluster_verify_checks() {
    let node = Node::start("verify");
    let root = &node.root;
    std::fs::write(
        root.path("var/lib/ganeti/known_hosts"),
        "cluster ssh-rsa AAAA\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.path("var/lib/ganeti/rapi")).unwrap();
    std::fs::write(root.path("var/lib/ganeti/rapi/users"), "user pw\n").unwrap();
    // One running fake instance (created after the first use makes the dir).
    node.ok("node_info", r#"[null, "fake"]"#);
    std::fs::write(
        root.path("var/run/ganeti/fake-hypervisor/inst1"),
        "0\n128\n1\n",
    )
    .unwrap();
    // Out-of-band helpers: executable, not executable, a directory, missing.
    let oob = root.path("usr/lib/ganeti");
    std::fs::create_dir_all(&oob).unwrap();
    std::fs::write(oob.join("oob-ok"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(oob.join("oob-ok"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(oob.join("oob-noexec"), "").unwrap();
    std::fs::set_permissions(
        oob.join("oob-noexec"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    // The recorded request (sample 34) with this node's name and address,
    // plus kvm, an unknown hypervisor, a check not supported yet and
    // lvlist (its value depends on this machine's LVM).
    let what = json!({
        "bridges": ["g25br0", "lo"],
        "filelist": ["/var/lib/ganeti/config.data", "/var/lib/ganeti/known_hosts",
                     "/var/lib/ganeti/rapi/users", "/var/lib/ganeti/rapi"],
        "hvinfo": "fake",
        "hvparms": [["cluster", "fake", {}], ["cluster", "kvm", {"kernel_path": "/x"}],
                    ["os lab", "xen-pvm", {}]],
        "hypervisor": ["fake", "kvm", "xen-pvm"],
        "instancelist": ["fake"],
        "master-ip": ["node1.example.com", "127.0.0.1"],
        "node-net-test": [["node1.example.com", "127.0.0.1", "127.0.0.1"],
                          ["node2.example.com", "127.0.0.1", "127.0.0.2"]],
        "nodelist": [[], {}],
        "nodesetup": null,
        "oob-paths": ["/usr/lib/ganeti/oob-ok", "/usr/lib/ganeti/oob-noexec",
                      "/usr/lib/ganeti", "/usr/lib/ganeti/missing"],
        "oslist": null,
        "lvlist": "xenvg",
        "time": null,
        "version": null,
        "vmnodes": [],
        "no-such-check": 1
    });
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = serde_json::to_string(&json!([what, "cluster.example.com"])).unwrap();
    let v = node.ok("node_verify", &body);
    assert_eq!(
        keys(&v),
        [
            "bridges",
            "filelist",
            "hvinfo",
            "hvparms",
            "hypervisor",
            "instancelist",
            "lvlist",
            "master-ip",
            "node-net-test",
            "nodelist",
            "nodesetup",
            "oob-paths",
            "oslist",
            "time",
            "version"
        ]
    );
    // No OS search path in this root: an empty diagnosis.
    assert_eq!(v["oslist"], json!([]));
    assert_eq!(v["bridges"], json!(["g25br0", "lo"]));
    assert_eq!(
        v["filelist"],
        json!({
            "/var/lib/ganeti/known_hosts": sha1_hex(b"cluster ssh-rsa AAAA\n"),
            "/var/lib/ganeti/rapi/users": sha1_hex(b"user pw\n"),
        })
    );
    check_hv_info(&v["hvinfo"]);
    // kvm's parameters are checked now: a partial dict names what is missing.
    assert_eq!(
        v["hvparms"],
        json!([
            ["cluster", "kvm", "Parameter 'initrd_path' is missing"],
            ["os lab", "xen-pvm", "Unknown hypervisor type 'xen-pvm'"]
        ])
    );
    assert_eq!(v["hypervisor"]["fake"], Value::Null);
    assert_eq!(
        v["hypervisor"]["xen-pvm"],
        "Error while checking hypervisor: Unknown hypervisor type 'xen-pvm'"
    );
    if !Path::new("/usr/bin/kvm").exists() {
        assert_eq!(
            v["hypervisor"]["kvm"],
            "The kvm binary ('/usr/bin/kvm') does not exist."
        );
    }
    assert_eq!(v["instancelist"], json!(["inst1"]));
    // {} without volume groups; an error text where lvs is missing.
    assert!(
        v["lvlist"].is_object() || v["lvlist"].is_string(),
        "{}",
        v["lvlist"]
    );
    assert_eq!(v["master-ip"], true);
    // node2's secondary 127.0.0.2 is pinged from my secondary 127.0.0.1:
    // nobody listens there on this port, but a refused connection counts.
    assert_eq!(v["node-net-test"], json!({}));
    assert_eq!(v["nodelist"], json!({}));
    let mut setup = Vec::new();
    if !Path::new("/proc/sysrq-trigger").is_file() {
        setup.push(
            "The procfs filesystem doesn't seem to be mounted under /proc, missing required \
             directory /proc/sys and the file /proc/sysrq-trigger",
        );
    }
    assert_eq!(v["nodesetup"], json!(setup));
    assert_eq!(
        v["oob-paths"],
        json!([
            null,
            "out of band helper /usr/lib/ganeti/oob-noexec is not executable",
            "out of band helper /usr/lib/ganeti is not a file",
            "error stating out of band helper: [Errno 2] No such file or directory: \
             '/usr/lib/ganeti/missing'"
        ])
    );
    let secs = v["time"][0].as_u64().unwrap();
    assert!(secs >= before && secs <= before + 5, "{}", v["time"]);
    assert!(v["time"][1].as_u64().unwrap() < 1_000_000);
    assert_eq!(v["version"], json!([2050000, "2.5.2"]));
}

#[test]
fn node_verify_net_checks_and_ssh_failures() {
    let node = Node::start("verify2");
    // Not in the node list; the master is elsewhere and unreachable.
    let body = json!([{
        "node-net-test": [["node2.example.com", "127.0.0.1", "127.0.0.1"]],
        "master-ip": ["node2.example.com", "127.0.0.1"],
    }, "cluster.example.com"]);
    let v = node.ok("node_verify", &body.to_string());
    assert_eq!(
        v["node-net-test"],
        json!({"node1.example.com": "Can't find my own primary/secondary IP in the node list"})
    );
    // 127.0.0.1 listens on the node daemon port (no source needed).
    assert_eq!(v["master-ip"], true);

    // ssh cannot reach other nodes here (names under .invalid never
    // resolve): every node gets an "ssh problem"; the extra nodes of my
    // group are added. As node-add sends it: {"nodelist": [[node], {}]}.
    let body = json!([{
        "nodelist": [["node2.invalid"], {"node1.example.com": ["node3.invalid"],
                                         "other": ["node4.invalid"]}],
    }, "cluster.example.com"]);
    let v = node.ok("node_verify", &body.to_string());
    let list = v["nodelist"].as_object().unwrap();
    assert_eq!(keys(&v["nodelist"]), ["node2.invalid", "node3.invalid"]);
    for (name, msg) in list {
        let msg = msg.as_str().unwrap();
        assert!(msg.starts_with("ssh problem: "), "{name}: {msg}");
        assert!(
            msg.contains(name.as_str()) || msg.contains("exit code"),
            "{msg}"
        );
    }
    // Names that would be ssh options are refused before ssh runs.
    let body = json!([{"nodelist": [["-oProxyCommand=touch /tmp/x"], {}]}, "c.example.com"]);
    let v = node.ok("node_verify", &body.to_string());
    assert_eq!(
        v["nodelist"]["-oProxyCommand=touch /tmp/x"],
        "ssh problem: invalid node name \"-oProxyCommand=touch /tmp/x\""
    );

    // A node named in vmnodes is not VM capable: the VM checks are skipped.
    let body = json!([{
        "vmnodes": ["node1.example.com"],
        "hypervisor": ["fake"], "hvinfo": "fake", "instancelist": ["fake"],
        "bridges": ["x"], "hvparms": [], "version": null,
    }, "cluster.example.com"]);
    assert_eq!(
        keys(&node.ok("node_verify", &body.to_string())),
        ["version"]
    );

    // Wrong shapes name the check; an unknown hypervisor in hvinfo fails
    // the call (as in 2.5.2).
    let m = node.fail("node_verify", r#"[{"filelist": "/etc/passwd"}, "c"]"#);
    assert!(m.contains("node_verify check 'filelist'"), "{m}");
    assert!(node
        .fail("node_verify", "[{}]")
        .contains("invalid arguments"));
    assert_eq!(
        node.fail("node_verify", r#"[{"hvinfo": "xen-hvm"}, "c"]"#),
        "Error while executing backend function: Unknown hypervisor type 'xen-hvm'"
    );
    let v = node.ok("node_verify", r#"[{"instancelist": ["fake", "lxc"]}, "c"]"#);
    assert_eq!(
        v["instancelist"],
        "Error enumerating instances (hypervisor lxc): Unknown hypervisor type 'lxc'"
    );
}

#[test]
fn body_limits() {
    let node = Node::start("limits");
    const SMALL: usize = 64 * 1024;
    const VERIFY: usize = 16 * 1024 * 1024;
    let padded = |json: &str, len: usize| format!("{json}{}", " ".repeat(len - json.len()));
    assert_eq!(
        node.raw("node_info", &padded("[null, null]", SMALL)).status,
        200
    );
    assert_eq!(node.announced("node_info", SMALL + 1), 413);
    assert_eq!(node.announced("etc_hosts_modify", SMALL + 1), 413);
    assert_eq!(node.announced("node_tcp_ping", SMALL + 1), 413);
    let verify = r#"[{"version": null}, "c"]"#;
    let a = node.raw("node_verify", &padded(verify, VERIFY));
    assert_eq!(a.status, 200);
    assert!(a
        .text()
        .starts_with("[true, {\"version\": [2050000, \"2.5.2\"]}]"));
    assert_eq!(node.announced("node_verify", VERIFY + 1), 413);
}
