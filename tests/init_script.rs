//! init.d/ganeti drives the built daemons in a temporary root: start,
//! status, reload, stop, status, as an operator or the boot sequence would.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn init(root: &Root, action: &str) -> Output {
    let sbin = Path::new(NODED).parent().unwrap();
    Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("init.d/ganeti"))
        .arg(action)
        .env("GANETI_ROOTDIR", &root.dir)
        .env("GANETI_SBINDIR", sbin)
        .env("GANETI_HOSTNAME", "node1.example.com")
        .output()
        .unwrap()
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

#[test]
fn init_script_starts_reports_and_stops_the_node_daemon() {
    if !Path::new("/sbin/start-stop-daemon").exists()
        && !Path::new("/usr/sbin/start-stop-daemon").exists()
    {
        eprintln!("skipped: start-stop-daemon (package dpkg) is not installed");
        return;
    }
    let root = Root::new("init");
    let port = free_port();
    std::fs::create_dir_all(root.path("etc/default")).unwrap();
    std::fs::write(
        root.path("etc/default/ganeti"),
        format!("NODED_ARGS=\"--no-ssl -b 127.0.0.1 -p {port}\"\nMASTERD_ARGS=\"\"\n"),
    )
    .unwrap();
    // Another node is the master: only the node daemon runs here.
    root.set_master("node2.example.com");

    let out = init(&root, "start");
    assert_eq!(code(&out), Some(0), "{out:?}");
    let pid = root.noded_pid().expect("pid file");
    let a = raw_call(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        &request("version", "[]"),
    );
    assert_eq!(a.body, b"[true, 2050000]\n");
    assert!(!root.pid_file("ganeti-masterd").exists());

    // Starting again is fine and leaves the same daemon running.
    assert_eq!(code(&init(&root, "start")), Some(0));
    assert_eq!(root.noded_pid(), Some(pid));

    let st = init(&root, "status");
    assert_eq!(code(&st), Some(0), "{st:?}");

    let out = init(&root, "stop");
    assert_eq!(code(&out), Some(0), "{out:?}");
    assert!(wait_until(std::time::Duration::from_secs(5), || !alive(
        pid
    )));
    assert!(!root.pid_file("ganeti-noded").exists());
    assert_eq!(code(&init(&root, "status")), Some(3));
    // Stopping a stopped node is not an error.
    assert_eq!(code(&init(&root, "stop")), Some(0));
}

#[test]
fn init_script_reports_a_failed_start() {
    let root = Root::new("init-fail");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    std::fs::create_dir_all(root.path("etc/default")).unwrap();
    std::fs::write(
        root.path("etc/default/ganeti"),
        format!("NODED_ARGS=\"--no-ssl -b 127.0.0.1 -p {port}\"\n"),
    )
    .unwrap();
    let out = init(&root, "start");
    assert_eq!(code(&out), Some(1), "{out:?}");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("Cannot bind"), "{all}");
    assert_eq!(code(&init(&root, "nonsense")), Some(3));
}
