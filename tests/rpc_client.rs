//! The master's node RPC client against real node daemons: three
//! `ganeti-noded` binaries on 127.0.0.{1,2,3} sharing one port and one
//! cluster certificate, a node that is down, an offline node, a daemon with
//! another certificate; plus small fake servers for what a real daemon
//! cannot be made to do on demand (hold a call, drop a kept-alive
//! connection, never answer).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ganeti::rpc::client::{parse_envelope, Client, Node, NodeResult, MAX_PARALLEL};
use serde_json::json;

use common::*;

/// A node daemon in its own root, stopped on drop.
struct Daemon {
    root: Root,
}

impl Daemon {
    fn start(ip: &str, port: u16, pem: &[u8], extra: &[&str]) -> Daemon {
        let root = Root::new("rpcc");
        root.install_cert(pem);
        let p = port.to_string();
        let mut args = vec!["-b", ip, "-p", &p];
        args.extend_from_slice(extra);
        let out = root.start_noded(&args);
        assert!(
            out.status.success(),
            "noded on {ip}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Daemon { root }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(pid) = self.root.noded_pid() {
            signal(pid, libc::SIGTERM);
            wait_until(Duration::from_secs(5), || !alive(pid));
        }
    }
}

/// The cluster certificate, written to a file of its own.
struct Cert {
    _root: Root,
    path: PathBuf,
    pem: Vec<u8>,
}

fn cert(cn: &str) -> Cert {
    let root = Root::new("cert");
    let pem = self_signed_pem(cn);
    let path = root.install_cert(&pem);
    Cert {
        _root: root,
        path,
        pem,
    }
}

fn node(name: &str, address: &str, offline: bool) -> Node {
    Node {
        name: name.into(),
        address: address.into(),
        offline,
    }
}

fn result<'a>(results: &'a [(String, NodeResult)], name: &str) -> &'a NodeResult {
    &results.iter().find(|(n, _)| n == name).unwrap().1
}

fn error_text(r: &NodeResult) -> &str {
    match r {
        NodeResult::Error(m) => m,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn calls_three_nodes_a_down_one_an_offline_one_and_an_impostor() {
    let cluster = cert("ganeti.example.com");
    // Same subject, different key: only the certificate itself counts.
    let impostor = cert("ganeti.example.com");
    let port = free_port();
    let _d: Vec<Daemon> = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        .iter()
        .map(|ip| Daemon::start(ip, port, &cluster.pem, &[]))
        .collect();
    let _bad = Daemon::start("127.0.0.5", port, &impostor.pem, &[]);
    // Something listens at the offline node's address, to see it is left
    // alone.
    let offline_listener = TcpListener::bind(("127.0.0.6", port)).unwrap();
    offline_listener.set_nonblocking(true).unwrap();

    let nodes = [
        node("node1.example.com", "127.0.0.1", false),
        node("node2.example.com", "127.0.0.2", false),
        node("node3.example.com", "127.0.0.3", false),
        node("down.example.com", "127.0.0.4", false),
        node("impostor.example.com", "127.0.0.5", false),
        node("offline.example.com", "127.0.0.6", true),
    ];
    let client = Client::new(&cluster.path).unwrap().port(port);
    let t0 = Instant::now();
    let results = client.call(&nodes, "version", &json!([]));
    let took = t0.elapsed();
    let names: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, want, "one result per node, in order");
    for n in &nodes[..3] {
        assert_eq!(
            result(&results, &n.name),
            &NodeResult::Ok(json!(2050000)),
            "{}",
            n.name
        );
    }
    let down = error_text(result(&results, "down.example.com"));
    assert!(down.contains("Connection refused"), "{down}");
    assert!(down.contains("127.0.0.4"), "{down}");
    assert!(
        took < Duration::from_secs(3),
        "a down node is quick: {took:?}"
    );
    // The client refuses the impostor's certificate itself.
    let bad = error_text(result(&results, "impostor.example.com"));
    assert!(bad.contains("TLS handshake"), "{bad}");
    assert!(bad.contains("certificate verify failed"), "{bad}");
    assert_eq!(
        result(&results, "offline.example.com"),
        &NodeResult::Offline
    );
    assert!(
        offline_listener.accept().is_err(),
        "offline node was contacted"
    );

    // Unknown procedure: the 404 is a failed call naming status and body.
    let results = client.call(&nodes[..3], "no_such_procedure", &json!([]));
    for (name, r) in &results {
        let m = error_text(r);
        assert!(
            m.starts_with("Error 404 Not Found from 127.0.0."),
            "{name}: {m}"
        );
    }
    // Bad arguments: the node's `[false, msg]` comes back as Failed.
    let (_, resp) = client
        .request(
            "127.0.0.2",
            "version",
            b"[not json",
            Duration::from_secs(10),
        )
        .unwrap();
    let failed = parse_envelope(&resp.body).unwrap().unwrap_err();
    assert!(
        failed.starts_with("Error while executing backend function:"),
        "{failed}"
    );

    // A master holding another certificate is refused everywhere.
    let stranger = Client::new(&impostor.path).unwrap().port(port);
    for (name, r) in stranger.call(&nodes[..3], "version", &json!([])) {
        assert!(matches!(r, NodeResult::Error(_)), "{name}: {r:?}");
    }
}

#[test]
fn keep_alive_reuses_one_connection_per_node() {
    let cluster = cert("ganeti.example.com");
    let port = free_port();
    let _d = Daemon::start("127.0.0.1", port, &cluster.pem, &[]);

    let client = Client::new(&cluster.path).unwrap().port(port);
    for _ in 0..10 {
        assert_eq!(
            client.call_node("127.0.0.1", "version", &json!([])),
            NodeResult::Ok(json!(2050000))
        );
    }
    let s = client.stats();
    assert_eq!((s.opened, s.reused, s.retried), (1, 9, 0), "{s:?}");

    // A 2.5.2-style client: a new connection for every call.
    let client = Client::new(&cluster.path)
        .unwrap()
        .port(port)
        .keep_alive(false);
    for _ in 0..5 {
        assert_eq!(
            client.call_node("127.0.0.1", "version", &json!([])),
            NodeResult::Ok(json!(2050000))
        );
    }
    let s = client.stats();
    assert_eq!((s.opened, s.reused), (5, 0), "{s:?}");
}

#[test]
fn plain_http_for_no_ssl_daemons() {
    let cluster = cert("ganeti.example.com");
    let port = free_port();
    let _d = Daemon::start("127.0.0.1", port, &cluster.pem, &["--no-ssl"]);
    let client = Client::plain().port(port);
    assert_eq!(
        client.call_node("127.0.0.1", "version", &json!([])),
        NodeResult::Ok(json!(2050000))
    );
    // A TLS client gets no answer from a plain daemon (which may wait for
    // the rest of a request head until its own timeout: do not wait).
    let tls = Client::new(&cluster.path).unwrap().port(port);
    let r = tls.request("127.0.0.1", "version", b"[]", Duration::from_secs(2));
    assert!(r.is_err(), "{r:?}");
}

/// Reads one request (head and Content-Length body); false at EOF.
fn read_request(r: &mut impl BufRead) -> bool {
    let mut len = 0usize;
    let mut first = true;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        if first {
            assert!(line.starts_with("POST /"), "{line}");
            first = false;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).is_ok()
}

const FAKE_ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n[true, \"fake\"]\n";

/// Serves each connection of `listener` on its own thread with `serve`.
fn fake_server(
    listener: TcpListener,
    serve: impl Fn(usize, TcpStream) + Send + Sync + 'static,
) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(conn) = conn else { return };
            let serve = serve.clone();
            std::thread::spawn(move || serve(n, conn));
        }
    });
    addr
}

#[test]
fn at_most_max_parallel_nodes_are_called_at_once() {
    let port = free_port();
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let hold = Duration::from_millis(400);
    let count = MAX_PARALLEL + 8;
    let nodes: Vec<Node> = (0..count)
        .map(|i| {
            let ip = format!("127.0.1.{}", i + 10);
            let listener = TcpListener::bind((ip.as_str(), port)).unwrap();
            let (active, peak) = (active.clone(), peak.clone());
            fake_server(listener, move |_, conn| {
                let mut r = BufReader::new(conn);
                if read_request(&mut r) {
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(hold);
                    active.fetch_sub(1, Ordering::SeqCst);
                    let _ = r.get_mut().write_all(FAKE_ANSWER);
                }
            });
            node(&format!("n{i}"), &ip, false)
        })
        .collect();

    let client = Client::plain().port(port);
    let t0 = Instant::now();
    let results = client.call(&nodes, "version", &json!([]));
    let took = t0.elapsed();
    for (name, r) in &results {
        assert_eq!(r, &NodeResult::Ok(json!("fake")), "{name}");
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= MAX_PARALLEL, "{peak} calls at once");
    assert!(peak >= MAX_PARALLEL / 2, "calls are parallel: peak {peak}");
    // 24 calls of 400 ms with 16 at a time: two rounds, not one, not 24.
    assert!(took >= hold * 2, "{took:?}");
    assert!(took < hold * 6, "{took:?}");

    // A smaller bound is honoured too.
    let client = Client::plain().port(port).parallel(3);
    let t0 = Instant::now();
    let results = client.call(&nodes[..6], "version", &json!([]));
    assert!(results.iter().all(|(_, r)| r.fail_msg().is_none()));
    assert!(t0.elapsed() >= hold * 2, "{:?}", t0.elapsed());
}

#[test]
fn a_pooled_connection_the_server_dropped_is_retried_once() {
    // The first connection answers one request, then reads the next and
    // closes without answering (a server dropping an idle connection just
    // as the request arrives). Later connections answer everything.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake_server(listener, |n, conn| {
        let mut r = BufReader::new(conn);
        let mut served = 0;
        while read_request(&mut r) {
            if n == 0 && served == 1 {
                return;
            }
            r.get_mut().write_all(FAKE_ANSWER).unwrap();
            served += 1;
        }
    });
    let client = Client::plain().port(addr.port());
    let call = || client.call_node("127.0.0.1", "version", &json!([]));
    assert_eq!(call(), NodeResult::Ok(json!("fake")));
    assert_eq!(call(), NodeResult::Ok(json!("fake")));
    let s = client.stats();
    assert_eq!((s.opened, s.reused, s.retried), (2, 1, 1), "{s:?}");
}

#[test]
fn a_fresh_connection_closed_without_answer_is_not_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake_server(listener, |_, conn| {
        let mut r = BufReader::new(conn);
        read_request(&mut r);
    });
    let client = Client::plain().port(addr.port());
    let r = client.call_node("127.0.0.1", "version", &json!([]));
    let m = error_text(&r);
    assert!(m.contains("without a response"), "{m}");
    assert_eq!(client.stats().opened, 1);
}

#[test]
fn connection_close_answers_are_not_pooled() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake_server(listener, |_, conn| {
        let mut r = BufReader::new(conn);
        if read_request(&mut r) {
            let _ = r.get_mut().write_all(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 15\r\n\r\n\
                  [true, 3000000]\n",
            );
        }
    });
    let client = Client::plain().port(addr.port());
    for _ in 0..3 {
        assert_eq!(
            client.call_node("127.0.0.1", "version", &json!([])),
            NodeResult::Ok(json!(3000000))
        );
    }
    let s = client.stats();
    assert_eq!((s.opened, s.reused, s.retried), (3, 0, 0), "{s:?}");
}

#[test]
fn a_silent_server_times_out_and_big_answers_are_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake_server(listener, |n, conn| {
        let mut r = BufReader::new(conn);
        if read_request(&mut r) {
            if n == 0 {
                std::thread::sleep(Duration::from_secs(5));
            } else {
                let _ = r
                    .get_mut()
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n");
                let _ = r.get_mut().write_all(&[b' '; 1001]);
            }
        }
    });
    let client = Client::plain().port(addr.port()).max_body(1000);
    let t0 = Instant::now();
    let e = client
        .request("127.0.0.1", "version", b"[]", Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    assert!(e.contains("timed out"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let r = client.call_node("127.0.0.1", "version", &json!([]));
    let m = error_text(&r);
    assert!(m.contains("1001 bytes is over the limit of 1000"), "{m}");
}

#[test]
fn port_from_environment() {
    std::env::set_var("GANETI_NODED_PORT", "18111");
    assert_eq!(ganeti::rpc::client::noded_port(), 18111);
    std::env::set_var("GANETI_NODED_PORT", "junk");
    let fallback = ganeti::rpc::client::noded_port();
    std::env::remove_var("GANETI_NODED_PORT");
    let services = ganeti::sys::service_port("ganeti-noded").unwrap_or(1811);
    assert_eq!(fallback, services);
    assert_eq!(ganeti::rpc::client::noded_port(), services);
}

#[test]
fn an_idle_connection_the_server_closed_is_not_reused() {
    // Each connection answers one request without `Connection: close`, then
    // the server closes it while idle: the client notices before sending.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake_server(listener, |_, conn| {
        let mut r = BufReader::new(conn);
        if read_request(&mut r) {
            let _ = r.get_mut().write_all(FAKE_ANSWER);
        }
    });
    let client = Client::plain().port(addr.port());
    for _ in 0..3 {
        assert_eq!(
            client.call_node("127.0.0.1", "version", &json!([])),
            NodeResult::Ok(json!("fake"))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = client.stats();
    assert_eq!((s.opened, s.reused, s.retried), (3, 0, 0), "{s:?}");
}
