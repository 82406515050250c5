//! The RPC server under clients that are slow, idle, hostile or many: with
//! a pool of ONE worker (`--max-clients 1`), none of them may stall a
//! well-behaved client, and each is cut off at its deadline.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts a node daemon with one worker; with `tls`, returns the cluster
/// certificate too.
fn start(root: &Root, tls: bool) -> (u16, i32, Option<std::path::PathBuf>) {
    let cert = tls.then(|| root.install_cert(&self_signed_pem("ganeti.example.com")));
    let port = free_port();
    let p = port.to_string();
    let mut args = vec!["-b", "127.0.0.1", "-p", &p, "--max-clients", "1"];
    if !tls {
        args.push("--no-ssl");
    }
    let out = root.start_noded(&args);
    assert!(
        out.status.success(),
        "start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (port, root.noded_pid().unwrap(), cert)
}

fn stop(pid: i32) {
    signal(pid, libc::SIGTERM);
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
}

/// A `version` call that must be answered within one second.
fn prompt_call(port: u16, cert: Option<&std::path::Path>) {
    let started = Instant::now();
    let body = match cert {
        None => {
            let mut s = TcpStream::connect(addr(port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            s.write_all(&request("version", "[]")).unwrap();
            read_answer(&mut s).body
        }
        Some(c) => {
            let mut s = tls_connect(addr(port), c, Some(c)).unwrap();
            s.get_ref()
                .set_read_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            s.write_all(&request("version", "[]")).unwrap();
            read_answer(&mut s).body
        }
    };
    assert_eq!(body, b"[true, 2050000]\n");
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// True once the daemon has closed `s` (EOF or reset), waiting up to
/// `within`.
fn closed_by_daemon(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn idle_and_slow_clients_never_hold_the_only_worker() {
    let root = Root::new("slowloris");
    let (port, pid, _) = start(&root, false);
    // Idle connections that never send a byte.
    let _idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(addr(port)).unwrap())
        .collect();
    // Slow-loris clients: a head trickling in, and a body that stops short.
    let mut loris: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(addr(port)).unwrap())
        .collect();
    let mut short_body = TcpStream::connect(addr(port)).unwrap();
    let req = request("version", "[]");
    short_body.write_all(&req[..req.len() - 1]).unwrap();
    let trickle = b"PUT /version HTTP/1.1\r\nHost: x\r\n";
    let started = Instant::now();
    for (i, byte) in trickle.iter().enumerate().take(12) {
        for s in &mut loris {
            s.write_all(&[*byte]).unwrap();
        }
        if i % 3 == 0 {
            prompt_call(port, None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each request has 10 s from its connection; past that the daemon
    // closes the slow ones, and still serves.
    let left = Duration::from_secs(12).saturating_sub(started.elapsed());
    for s in loris.iter_mut().chain(std::iter::once(&mut short_body)) {
        assert!(closed_by_daemon(s, left), "a slow client was not cut off");
    }
    prompt_call(port, None);
    stop(pid);
}

#[test]
fn stalled_tls_handshakes_never_hold_the_only_worker() {
    let root = Root::new("tlsstall");
    let (port, pid, cert) = start(&root, true);
    let cert = cert.unwrap();
    // Connections that send nothing, half a ClientHello, or garbage.
    let _idle: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(addr(port)).unwrap())
        .collect();
    let mut half = TcpStream::connect(addr(port)).unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let mut junk = TcpStream::connect(addr(port)).unwrap();
    junk.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    for _ in 0..3 {
        prompt_call(port, Some(&cert));
    }
    assert!(
        closed_by_daemon(&mut junk, Duration::from_secs(2)),
        "a failed handshake closes the connection"
    );
    assert!(
        closed_by_daemon(&mut half, Duration::from_secs(12)),
        "a stalled handshake is cut off at the deadline"
    );
    prompt_call(port, Some(&cert));
    stop(pid);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let root = Root::new("pipeline");
    let (port, pid, _) = start(&root, false);
    let mut s = TcpStream::connect(addr(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Three requests in one write: three answers, in order.
    let mut three = request("version", "[]");
    three.extend(request("version", "[1]"));
    three.extend(request("no_such_procedure", "[]"));
    s.write_all(&three).unwrap();
    assert_eq!(read_answer(&mut s).body, b"[true, 2050000]\n");
    assert_eq!(read_answer(&mut s).body, b"[true, 2050000]\n");
    let last = read_answer(&mut s);
    assert_eq!(last.status, 404);
    assert!(last.head.contains("Connection: close"));
    assert!(closed_by_daemon(&mut s, Duration::from_secs(2)));
    stop(pid);
}

/// A connection to the daemon from the local address `source`.
fn connect_from(source: [u8; 4], port: u16) -> TcpStream {
    let ip = std::net::IpAddr::from(source);
    let fd = ganeti::sys::tcp_socket(&ip).unwrap();
    ganeti::sys::bind(&fd, &SocketAddr::new(ip, 0)).unwrap();
    ganeti::sys::connect_timeout(&fd, &addr(port), Duration::from_secs(5)).unwrap();
    let s = TcpStream::from(fd);
    s.set_nonblocking(false).unwrap();
    s
}

#[test]
fn past_the_connection_cap_unauthenticated_connections_make_room() {
    let root = Root::new("cap");
    let (port, pid, cert) = start(&root, true);
    let cert = cert.unwrap();
    // The master's kept-alive connection, authenticated by its handshake.
    let mut master = tls_connect(addr(port), &cert, Some(&cert)).unwrap();
    master.write_all(&request("version", "[]")).unwrap();
    assert_eq!(read_answer(&mut master).status, 200);
    // ganeti-noded keeps at most 256 connections open: 300 that never
    // start a handshake, from ten addresses (30 each, under the per-address
    // limit).
    let mut flood: Vec<TcpStream> = (0..300u16)
        .map(|i| connect_from([127, 0, 0, 10 + (i % 10) as u8], port))
        .collect();
    prompt_call(port, Some(&cert));
    // The oldest unauthenticated ones were closed to make room; the newest
    // are open, and so is the master's connection.
    assert!(closed_by_daemon(&mut flood[0], Duration::from_secs(2)));
    let last = flood.len() - 1;
    assert!(!closed_by_daemon(
        &mut flood[last],
        Duration::from_millis(200)
    ));
    master.write_all(&request("version", "[]")).unwrap();
    assert_eq!(read_answer(&mut master).body, b"[true, 2050000]\n");
    stop(pid);
}

#[test]
fn one_address_cannot_hold_more_than_32_unauthenticated_connections() {
    let root = Root::new("perpeer");
    let (port, pid, cert) = start(&root, true);
    let cert = cert.unwrap();
    let mut conns: Vec<TcpStream> = (0..40)
        .map(|_| connect_from([127, 0, 0, 30], port))
        .collect();
    // The first 32 wait for their handshake; the rest are closed at once.
    for (i, c) in conns.iter_mut().enumerate() {
        let closed = closed_by_daemon(c, Duration::from_millis(if i < 32 { 50 } else { 2000 }));
        assert_eq!(closed, i >= 32, "connection {i}");
    }
    // Other addresses are served meanwhile.
    prompt_call(port, Some(&cert));
    stop(pid);
}

#[test]
fn a_request_in_flight_survives_the_stop_and_idle_connections_close_at_once() {
    let root = Root::new("stopidle");
    let (port, pid, _) = start(&root, false);
    let mut idle = TcpStream::connect(addr(port)).unwrap();
    // A kept-alive connection after one answer.
    let mut kept = TcpStream::connect(addr(port)).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    kept.write_all(&request("version", "[]")).unwrap();
    assert_eq!(read_answer(&mut kept).status, 200);
    let mut busy = TcpStream::connect(addr(port)).unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = request("version", "[]");
    busy.write_all(&req[..req.len() - 1]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    signal(pid, libc::SIGTERM);
    assert!(closed_by_daemon(&mut idle, Duration::from_secs(1)));
    assert!(closed_by_daemon(&mut kept, Duration::from_secs(1)));
    busy.write_all(&req[req.len() - 1..]).unwrap();
    let a = read_answer(&mut busy);
    assert_eq!(a.body, b"[true, 2050000]\n");
    assert!(a.head.contains("Connection: close"));
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
}

#[test]
fn deeply_nested_json_is_refused_and_the_daemon_keeps_serving() {
    let root = Root::new("nesting");
    let (port, pid, _) = start(&root, false);
    let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let a = raw_call(addr(port), &request("version", &nest(10_000)));
    assert_eq!(a.status, 200);
    assert!(a.text().starts_with("[false, \""), "{}", a.text());
    assert!(a.text().contains("nested deeper than 32 levels"));
    let a = raw_call(addr(port), &request("version", &nest(32)));
    assert_eq!(a.body, b"[true, 2050000]\n");
    prompt_call(port, None);
    stop(pid);
}

#[test]
fn truncated_and_oversized_bodies_change_nothing_on_disk() {
    let root = Root::new("truncated");
    std::fs::create_dir_all(root.path("var/lib/ganeti/queue")).unwrap();
    std::fs::create_dir_all(root.path("etc")).unwrap();
    let (port, pid, _) = start(&root, false);
    let upload = r#"["/etc/hosts", [0, "127.0.0.1 evil\n"], 33188, "root", "root", 0, 0]"#;
    let update = r#"["/var/lib/ganeti/queue/job-1", [0, "{}"]]"#;
    for (procedure, body) in [("upload_file", upload), ("jobqueue_update", update)] {
        // The connection ends one byte short of the announced body.
        let req = request(procedure, body);
        let mut s = TcpStream::connect(addr(port)).unwrap();
        s.write_all(&req[..req.len() - 1]).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(closed_by_daemon(&mut s, Duration::from_secs(5)));
        // An announced length over the procedure's limit: 413, unread.
        let huge = format!(
            "PUT /{procedure} HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n{body}"
        );
        assert_eq!(raw_call(addr(port), huge.as_bytes()).status, 413);
    }
    assert!(!root.path("etc/hosts").exists());
    assert!(!root.path("var/lib/ganeti/queue/job-1").exists());
    // The same bodies, whole, do write: the refusals above were the
    // truncation and the size, not the requests.
    for (procedure, body) in [("upload_file", upload), ("jobqueue_update", update)] {
        let a = raw_call(addr(port), &request(procedure, body));
        assert_eq!(a.body, b"[true, null]\n", "{procedure}: {}", a.text());
    }
    assert_eq!(
        std::fs::read_to_string(root.path("etc/hosts")).unwrap(),
        "127.0.0.1 evil\n"
    );
    assert!(root.path("var/lib/ganeti/queue/job-1").exists());
    stop(pid);
}

#[test]
fn a_client_still_sending_its_body_after_a_refusal_can_finish_and_read_it() {
    let root = Root::new("linger");
    let (port, pid, _) = start(&root, false);
    // upload_file takes at most 8 MiB; the client announces 9 MiB, and (as
    // curl does) goes on sending while the refusal is already on its way.
    let mut s = TcpStream::connect(addr(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"PUT /upload_file HTTP/1.1\r\nHost: x\r\nContent-Length: 9437184\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // The daemon reads and drops the rest for a second instead of closing
    // at once, which would reset the connection under the client's writes.
    let chunk = vec![b' '; 64 * 1024];
    for i in 0..32 {
        if let Err(e) = s.write_all(&chunk) {
            panic!("write {i} after the refusal failed: {e}");
        }
    }
    let a = read_answer(&mut s);
    assert_eq!(a.status, 413);
    assert!(a.text().contains("over the limit"), "{}", a.text());
    assert!(closed_by_daemon(&mut s, Duration::from_secs(3)));
    prompt_call(port, None);
    stop(pid);
}

#[test]
fn request_bodies_share_a_64_mib_budget() {
    let root = Root::new("budget");
    let (port, pid, _) = start(&root, false);
    // Heads announcing bodies that are never sent: each reserves its
    // length. jobqueue_update takes 16 MiB of data base64-encoded plus
    // 64 KiB; upload_file 8 MiB.
    const UPDATE: usize = 16 * 1024 * 1024 / 3 * 4 + 64 * 1024;
    const UPLOAD: usize = 8 * 1024 * 1024;
    const BUDGET: usize = 64 * 1024 * 1024;
    let last = BUDGET - 2 * UPDATE - 2 * UPLOAD;
    assert!(last <= UPLOAD);
    let announce = |procedure: &str, len: usize| {
        let mut s = TcpStream::connect(addr(port)).unwrap();
        let head = format!("PUT /{procedure} HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s
    };
    let held: Vec<TcpStream> = [
        ("jobqueue_update", UPDATE),
        ("jobqueue_update", UPDATE),
        ("upload_file", UPLOAD),
        ("upload_file", UPLOAD),
        ("upload_file", last),
    ]
    .iter()
    .map(|(p, n)| announce(p, *n))
    .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The budget is used up exactly: an empty body still fits (and fails
    // as JSON), one more byte does not.
    let a = raw_call(
        addr(port),
        b"PUT /version HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let a = raw_call(addr(port), &request("version", "[]"));
    assert_eq!(a.status, 503, "{}", a.text());
    // Closing the held connections gives the budget back.
    drop(held);
    assert!(wait_until(Duration::from_secs(5), || {
        raw_call(addr(port), &request("version", "[]")).status == 200
    }));
    stop(pid);
}

#[test]
fn a_kept_alive_connection_is_closed_after_10_idle_seconds() {
    let root = Root::new("idletimeout");
    let (port, pid, _) = start(&root, false);
    let mut s = TcpStream::connect(addr(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&request("version", "[]")).unwrap();
    assert!(read_answer(&mut s).head.contains("Connection: keep-alive"));
    let answered = Instant::now();
    assert!(!closed_by_daemon(&mut s, Duration::from_secs(8)));
    assert!(closed_by_daemon(&mut s, Duration::from_secs(5)));
    let idle = answered.elapsed();
    assert!(idle >= Duration::from_secs(10), "closed after {idle:?}");
    stop(pid);
}
