//! The node daemon as a real process: detaching, readiness, pid file, log
//! reopening, signals, memory locking, TLS and the version procedure.
//! Every test runs the built binary in its own temporary root.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::time::Duration;

use common::*;

const SECS5: Duration = Duration::from_secs(5);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts a plain-HTTP node daemon on a free port; returns (port, pid).
fn start_plain(root: &Root, extra: &[&str]) -> (u16, i32) {
    let port = free_port();
    let p = port.to_string();
    let mut args = vec!["--no-ssl", "-b", "127.0.0.1", "-p", &p];
    args.extend_from_slice(extra);
    let out = root.start_noded(&args);
    assert!(
        out.status.success(),
        "start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (port, root.noded_pid().expect("pid file written"))
}

fn stop(root: &Root, pid: i32) {
    signal(pid, libc::SIGTERM);
    assert!(wait_until(SECS5, || !alive(pid)), "daemon did not stop");
    assert!(
        !root.pid_file("ganeti-noded").exists(),
        "pid file left behind"
    );
}

#[test]
fn starter_returns_only_when_serving_and_pid_file_is_locked() {
    let root = Root::new("start");
    let (port, pid) = start_plain(&root, &[]);
    // No waiting: the starter's exit 0 promises the port accepts.
    TcpStream::connect(addr(port)).expect("port accepts as soon as the starter exits");
    let a = raw_call(addr(port), &request("version", "[]"));
    assert_eq!(a.status, 200);
    assert_eq!(a.body, b"[true, 2050000]\n");

    // The pid file names the daemon and is locked by it.
    let pid_path = root.pid_file("ganeti-noded");
    let f = std::fs::File::open(&pid_path).unwrap();
    // SAFETY: flock on a descriptor owned by `f`.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(r, -1, "pid file must be locked by the daemon");
    assert!(alive(pid));

    // A second copy refuses with a message.
    let p = port.to_string();
    let out = root.start_noded(&["--no-ssl", "-b", "127.0.0.1", "-p", &p]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Error when starting daemon process"), "{err}");
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    assert_eq!(root.noded_pid(), Some(pid), "pid file untouched");

    // The daemon detached: new session, cwd /, not our child.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let (pgid, sid) = (fields[2], fields[3]);
    assert_ne!(sid, std::process::id().to_string());
    assert_eq!(sid, pgid);
    // Not a session leader, so it can never regain a terminal.
    assert_ne!(sid, pid.to_string());
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        std::path::Path::new("/")
    );
    stop(&root, pid);
}

#[test]
fn bind_failure_is_reported_by_the_starter() {
    let root = Root::new("bind");
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = root.start_noded(&["--no-ssl", "-b", "127.0.0.1", "-p", &port]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Cannot bind to 127.0.0.1:"), "{err}");
    assert!(err.contains("in use"), "{err}");
    assert!(!root.pid_file("ganeti-noded").exists());
}

#[test]
fn unreadable_certificate_is_reported_by_the_starter() {
    let root = Root::new("cert");
    // Missing file: refused before detaching.
    let port = free_port().to_string();
    let out = root.start_noded(&["-b", "127.0.0.1", "-p", &port]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.pem does not exist"), "{err}");
    // Present but not a certificate: refused by the daemon, reported by the
    // starter.
    root.install_cert(b"not a certificate\n");
    let out = root.start_noded(&["-b", "127.0.0.1", "-p", &port]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error when starting daemon process: Cannot load the SSL certificate"),
        "{err}"
    );
    assert!(!root.pid_file("ganeti-noded").exists());
}

#[test]
fn sighup_reopens_the_log_file() {
    let root = Root::new("hup");
    let (port, pid) = start_plain(&root, &[]);
    let log = root.node_log();
    let moved = root.path("var/log/ganeti/node-daemon.log.1");
    std::fs::rename(&log, &moved).unwrap();
    signal(pid, libc::SIGHUP);
    assert!(
        wait_until(SECS5, || std::fs::read_to_string(&log).is_ok_and(
            |t| t.contains("Reopening log files after receiving SIGHUP")
        )),
        "no new log file after SIGHUP"
    );
    let before = std::fs::read_to_string(&moved).unwrap();
    raw_call(addr(port), &request("version", "[]"));
    assert!(wait_until(SECS5, || std::fs::read_to_string(&log)
        .is_ok_and(|t| t.contains("PUT /version HTTP/1.1 200"))));
    assert_eq!(std::fs::read_to_string(&moved).unwrap(), before);
    // Ganeti's line format.
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().next().unwrap();
    let (stamp, rest) = line.split_once(": ").unwrap();
    assert_eq!(stamp.len(), 23, "{line}");
    assert!(
        rest.starts_with(&format!("ganeti-noded pid={pid} INFO ")),
        "{line}"
    );
    stop(&root, pid);
}

#[test]
fn sigterm_in_the_foreground_exits_0_and_removes_the_pid_file() {
    let root = Root::new("term");
    let port = free_port();
    let p = port.to_string();
    let mut child = root
        .command(NODED)
        .args(["-f", "--no-ssl", "-b", "127.0.0.1", "-p", &p])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(SECS5, || TcpStream::connect(addr(port)).is_ok()));
    assert_eq!(root.noded_pid(), Some(child.id() as i32));
    // An idle connection must not hold the shutdown up.
    let _idle = TcpStream::connect(addr(port)).unwrap();
    signal(child.id() as i32, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!root.pid_file("ganeti-noded").exists());
    let log = std::fs::read_to_string(root.node_log()).unwrap();
    assert!(log.contains("ganeti-noded daemon stopped"), "{log}");
}

#[test]
fn sigterm_finishes_the_request_in_flight() {
    let root = Root::new("inflight");
    let (port, pid) = start_plain(&root, &[]);
    // Half a request: the body is still to come when SIGTERM arrives.
    let body = "[]";
    let req = request("version", body);
    let mut s = TcpStream::connect(addr(port)).unwrap();
    s.set_read_timeout(Some(SECS5)).unwrap();
    s.write_all(&req[..req.len() - 1]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    signal(pid, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(&req[req.len() - 1..]).unwrap();
    let a = read_answer(&mut s);
    assert_eq!(a.body, b"[true, 2050000]\n");
    assert!(a.head.contains("Connection: close"), "{}", a.head);
    assert!(wait_until(SECS5, || !alive(pid)));
    assert!(!root.pid_file("ganeti-noded").exists());
}

#[test]
fn mlock_locks_memory_unless_disabled() {
    if unsafe_euid() != 0 {
        eprintln!("skipped: needs root for mlockall without limits");
        return;
    }
    let root = Root::new("mlock");
    let (_, pid) = start_plain(&root, &[]);
    let locked = status_kb(pid, "VmLck");
    assert!(locked > 0, "VmLck is {locked} kB with mlock");
    stop(&root, pid);

    let (_, pid) = start_plain(&root, &["--no-mlock"]);
    assert_eq!(status_kb(pid, "VmLck"), 0);
    stop(&root, pid);
}

fn unsafe_euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

#[test]
fn tls_accepts_only_the_cluster_certificate() {
    let root = Root::new("tls");
    let cluster = root.install_cert(&self_signed_pem("ganeti.example.com"));
    let other = root.path("other.pem");
    std::fs::write(&other, self_signed_pem("ganeti.example.com")).unwrap();
    let port = free_port();
    let p = port.to_string();
    let out = root.start_noded(&["-b", "127.0.0.1", "-p", &p]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = root.noded_pid().unwrap();

    let mut s = tls_connect(addr(port), &cluster, Some(&cluster)).unwrap();
    s.write_all(&request("version", "[]")).unwrap();
    assert_eq!(read_answer(&mut s).body, b"[true, 2050000]\n");

    // No client certificate, and another certificate with the same subject:
    // refused (with TLS 1.3 the refusal may only show on the first read).
    for client in [None, Some(other.as_path())] {
        let refused = match tls_connect(addr(port), &cluster, client) {
            Err(_) => true,
            Ok(mut s) => {
                let _ = s.write_all(&request("version", "[]"));
                let mut buf = [0u8; 64];
                !matches!(s.ssl_read(&mut buf), Ok(n) if n > 0)
            }
        };
        assert!(refused, "client {client:?} must be refused");
    }
    // Plain HTTP to the TLS port gets no RPC answer.
    let mut plain = TcpStream::connect(addr(port)).unwrap();
    plain.set_read_timeout(Some(SECS5)).unwrap();
    plain.write_all(&request("version", "[]")).unwrap();
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("2050000"));
    stop(&root, pid);
}

#[test]
fn http_errors_and_keep_alive() {
    let root = Root::new("http");
    let (port, pid) = start_plain(&root, &[]);
    let a = addr(port);
    let get = raw_call(a, b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(get.status, 400);
    assert!(get
        .text()
        .contains("Only PUT and POST methods are supported."));
    assert_eq!(raw_call(a, &request("no_such_rpc", "[]")).status, 404);
    assert_eq!(raw_call(a, &request("version?x=1", "[]")).status, 404);
    let post = raw_call(a, b"post /version HTTP/1.0\r\nContent-Length: 2\r\n\r\n[]");
    assert_eq!(
        (post.status, post.body.as_slice()),
        (200, &b"[true, 2050000]\n"[..])
    );
    let huge = raw_call(
        a,
        b"PUT /version HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n",
    );
    assert_eq!(huge.status, 413);
    assert_eq!(
        raw_call(a, b"PUT /version HTTP/2.0\r\nHost: x\r\n\r\n").status,
        505
    );
    let bad = raw_call(a, &request("version", "[bad json"));
    assert_eq!(bad.status, 200);
    assert!(bad
        .text()
        .starts_with("[false, \"Error while executing backend function:"));

    // Two requests on one kept-alive connection.
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(SECS5)).unwrap();
    for _ in 0..2 {
        s.write_all(&request("version", "[]")).unwrap();
        let ans = read_answer(&mut s);
        assert_eq!(ans.body, b"[true, 2050000]\n");
        assert!(ans.head.contains("Connection: keep-alive"));
    }
    stop(&root, pid);
}

#[test]
fn an_idle_client_does_not_block_others() {
    let root = Root::new("idle");
    let (port, pid) = start_plain(&root, &[]);
    // Each idle connection holds one worker until its read deadline; the
    // rest of the pool keeps serving.
    let idle: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(addr(port)).unwrap())
        .collect();
    // Answered well before an idle connection's 10 s deadline frees a
    // worker: a pool of one would fail here.
    let mut s = TcpStream::connect(addr(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(&request("version", "[]")).unwrap();
    assert_eq!(read_answer(&mut s).status, 200);
    drop(idle);
    stop(&root, pid);
}

#[test]
fn command_line_errors() {
    let root = Root::new("opts");
    let out = root.command(NODED).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("Usage: ganeti-noded"));
    let out = root.command(NODED).args(["-f", "extra"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Usage: ganeti-noded [-f] [-d] [-p port] [-b ADDRESS]"
    );
    let out = root.command(NODED).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ganeti-noded (ganeti) 2.5.2\n"));
    let out = root.command(NODED).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--no-mlock"));
}

#[test]
fn foreground_errors_go_to_stderr_and_syslog_only_writes_no_file() {
    let root = Root::new("fg");
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = root
        .command(NODED)
        .args(["-f", "--no-ssl", "-b", "127.0.0.1", "-p", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("Cannot bind to 127.0.0.1:").count(), 1, "{err}");
    let log = std::fs::read_to_string(root.node_log()).unwrap();
    assert!(log.contains("ERROR Cannot bind to 127.0.0.1:"), "{log}");

    let root = Root::new("syslog-only");
    let (_, pid) = start_plain(&root, &["--syslog=only"]);
    assert!(
        !root.node_log().exists(),
        "--syslog=only must not write a log file"
    );
    stop(&root, pid);
}

#[test]
fn debug_lines_name_module_and_line() {
    let root = Root::new("debug");
    let (port, pid) = start_plain(&root, &["-d"]);
    raw_call(addr(port), &request("version", "[]"));
    let log = std::fs::read_to_string(root.node_log()).unwrap();
    let startup = log
        .lines()
        .find(|l| l.ends_with("ganeti-noded daemon startup"))
        .unwrap();
    // "<time>: ganeti-noded pid=N mod:line INFO ganeti-noded daemon startup"
    let fields: Vec<&str> = startup.split(' ').collect();
    assert_eq!(fields[3], format!("pid={pid}"));
    assert!(fields[4].contains(':'), "{startup}");
    assert_eq!(fields[5], "INFO");
    stop(&root, pid);
}

#[test]
fn syslog_messages_reach_dev_log() {
    use std::os::unix::net::UnixDatagram;
    let dev_log = std::path::Path::new("/dev/log");
    if dev_log.exists() || unsafe_euid() != 0 {
        eprintln!("skipped: /dev/log belongs to a running system logger (or not root)");
        return;
    }
    // Stand in for syslogd for the length of this test.
    let sock = UnixDatagram::bind(dev_log).unwrap();
    struct Unlink;
    impl Drop for Unlink {
        fn drop(&mut self) {
            let _ = std::fs::remove_file("/dev/log");
        }
    }
    let _unlink = Unlink;
    sock.set_read_timeout(Some(SECS5)).unwrap();
    let root = Root::new("syslog");
    let (_, pid) = start_plain(&root, &["--syslog=yes"]);
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while let Ok(n) = sock.recv(&mut buf) {
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = msg.contains("daemon startup");
        got.push(msg);
        if done {
            break;
        }
    }
    let startup = got
        .iter()
        .find(|m| m.contains("daemon startup"))
        .unwrap_or_else(|| panic!("no startup message in {got:?}"));
    // <daemon.info>Mon DD HH:MM:SS ganeti-noded[pid]: INFO ...
    assert!(startup.starts_with("<30>"), "{startup}");
    assert!(
        startup.ends_with(&format!(
            "ganeti-noded[{pid}]: INFO ganeti-noded daemon startup"
        )),
        "{startup}"
    );
    // --syslog=yes keeps the log file too.
    assert!(root.node_log().exists());
    stop(&root, pid);
}

#[test]
fn run_and_log_directories_get_ganetis_modes() {
    use std::os::unix::fs::PermissionsExt;
    let root = Root::new("dirs");
    let (_, pid) = start_plain(&root, &[]);
    let mode = |p: &str| {
        std::fs::metadata(root.path(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("var/run/ganeti"), 0o775);
    assert_eq!(mode("var/log/ganeti"), 0o770);
    assert_eq!(mode("var/log/ganeti/node-daemon.log"), 0o600);
    assert_eq!(mode("var/run/ganeti/ganeti-noded.pid"), 0o600);
    stop(&root, pid);
}
