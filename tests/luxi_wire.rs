//! LUXI on the wire: the master socket, framing, 2.5.2's exact message
//! layout, protocol errors, limits, many hostile clients at once, and the
//! client against the server. The server runs in this process with a small
//! test handler (the master daemon that will use it is not assembled yet).

mod common;

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::{wait_until, Root};
use ganeti::errors::{GanetiError, ECODE_NOENT};
use ganeti::luxi::{
    self, Client, Failure, JobChange, LogEntry, LuxiError, Timeouts, EOM, MAX_MESSAGE,
};
use ganeti::masterd::luxi_server::{
    invalid_operation, Handler, LuxiServer, Options, Running, VersionPolicy,
    CLIENT_REQUEST_WORKERS, MAX_CONNECTIONS, REQUEST_READ_TIMEOUT,
};
use ganeti::paths::Paths;
use serde_json::{json, Value};

/// Tests that open hundreds of sockets or move many MiB run one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The test handler: a few methods to exercise the server, plus canned
/// answers of the right shape for the client's typed helpers.
#[derive(Default)]
struct TestHandler {
    /// Every call: method, arguments, thread name.
    calls: Mutex<Vec<(String, Value, String)>>,
    running: AtomicUsize,
    most_running: AtomicUsize,
}

impl TestHandler {
    fn calls(&self) -> Vec<(String, Value, String)> {
        self.calls.lock().unwrap().clone()
    }
}

impl Handler for TestHandler {
    fn handle(&self, method: &str, args: Value) -> Result<Value, Failure> {
        let thread = thread::current().name().unwrap_or("").to_string();
        self.calls
            .lock()
            .unwrap()
            .push((method.into(), args.clone(), thread));
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_running.fetch_max(now, Ordering::SeqCst);
        let result = self.run(method, args);
        self.running.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

impl TestHandler {
    fn run(&self, method: &str, args: Value) -> Result<Value, Failure> {
        Ok(match method {
            "Echo" => args,
            // The length of the string argument.
            "Len" => json!(args.as_str().map_or(0, str::len)),
            "Sleep" => {
                thread::sleep(Duration::from_secs_f64(args.as_f64().unwrap_or(0.0)));
                json!(true)
            }
            "Fail" => return Err(GanetiError::prereq("Node 'foo' not known", ECODE_NOENT).into()),
            "Boom" => return Err(Failure::other("Duration must be an integer or float")),
            "Panic" => panic!("handler blew up"),
            "SubmitJob" => json!("42"),
            "SubmitManyJobs" => json!([
                [true, "43"],
                [
                    false,
                    "Job queue is drained, refusing job; opcodes TEST_DELAY(0.0)"
                ]
            ]),
            "WaitForJobChange" => match (&args[0], &args[2]) {
                (Value::String(id), _) if id == "99" => Value::Null,
                (_, Value::Null) => {
                    json!([["running"], [[1, [1700000001, 123456], "message", "hi"]]])
                }
                _ => json!("nochange"),
            },
            "CancelJob" => json!([true, format!("Job {} canceled", luxi::python_str(&args))]),
            "ArchiveJob" => json!(true),
            "AutoArchiveJobs" => json!([3, 0]),
            "QueryJobs" => json!([["success", ["success"], [null]], null]),
            "QueryClusterInfo" => {
                json!({"name": "cluster.example.com", "protocol_version": 2050000})
            }
            "QueryConfigValues" => json!(["cluster.example.com", false]),
            "QueryTags" => json!(["a", "b"]),
            "SetDrainFlag" => json!(true),
            "SetWatcherPause" => args[0].clone(),
            "Query" => json!({
                "fields": [{"name": "name", "title": "Node", "kind": "text", "doc": "Node name"}],
                "data": [[[0, "node1.example.com"]], [[2, null]]]
            }),
            "QueryFields" => json!({
                "fields": [{"name": "name", "title": "Node", "kind": "text", "doc": "Node name"}]
            }),
            other => return Err(invalid_operation(other)),
        })
    }
}

struct Server {
    _root: Root,
    running: Running,
    handler: Arc<TestHandler>,
}

impl Server {
    fn start(tag: &str) -> Server {
        Server::with(tag, Options::default())
    }

    fn with(tag: &str, options: Options) -> Server {
        let root = Root::new(tag);
        let handler = Arc::new(TestHandler::default());
        let bound = LuxiServer::bind(&Paths::with_root(&root.dir)).unwrap();
        let running = bound
            .serve(Arc::clone(&handler) as Arc<dyn Handler>, options)
            .unwrap();
        Server {
            _root: root,
            running,
            handler,
        }
    }

    fn path(&self) -> PathBuf {
        self.running.path().to_path_buf()
    }

    fn raw(&self) -> UnixStream {
        let s = UnixStream::connect(self.path()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    fn client(&self) -> Client {
        Client::connect(&self.path()).unwrap()
    }
}

/// A request as 2.5.2's client writes it.
fn request(method: &str, args: Value) -> Vec<u8> {
    luxi::encode_request(method, &args, Some(luxi::LUXI_VERSION))
}

/// Reads one message (with its terminator); `None` when the server closed
/// the connection first.
fn recv(s: &mut UnixStream) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    // A byte at a time: what follows the terminator stays in the socket.
    let mut byte = [0u8; 1];
    loop {
        if got.last() == Some(&EOM) {
            return Some(got);
        }
        match s.read(&mut byte) {
            Ok(0) => return None,
            Ok(_) => got.push(byte[0]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
            Err(e) => panic!(
                "reading an answer: {e} (got {:?})",
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

fn call_raw(s: &mut UnixStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    recv(s).expect("an answer")
}

fn answer(bytes: &[u8]) -> luxi::Response {
    luxi::parse_response(&bytes[..bytes.len() - 1]).unwrap()
}

/// True when the server closed the connection without sending anything.
fn closed_without_answer(s: &mut UnixStream) -> bool {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Ok(n) => panic!("unexpected answer {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => panic!("connection neither answered nor closed: {e}"),
    }
}

// ---------------------------------------------------------------------------
// The socket

#[test]
fn socket_is_created_and_removed_as_2_5_2_does() {
    let root = Root::new("luxi-sock");
    let paths = Paths::with_root(&root.dir);
    let sock = paths.master_socket();
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    // A stale file in the way is replaced.
    std::fs::write(&sock, b"stale").unwrap();
    let bound = LuxiServer::bind(&paths).unwrap();
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o770);
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    let dir = std::fs::symlink_metadata(paths.socket_dir()).unwrap();
    assert_eq!(dir.permissions().mode() & 0o7777, 0o750);
    // Nothing but the socket in the directory: the temporary name is gone.
    let names: Vec<_> = std::fs::read_dir(paths.socket_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("ganeti-master")]);

    let handler = Arc::new(TestHandler::default());
    let mut running = bound.serve(handler, Options::default()).unwrap();
    let mut s = UnixStream::connect(&sock).unwrap();
    let got = call_raw(&mut s, &request("Echo", json!(1)));
    assert_eq!(answer(&got).result, json!(1));
    drop(s);
    running.shutdown();
    assert!(!sock.exists(), "the socket file is removed on shutdown");
    assert!(matches!(
        Client::connect(&sock),
        Err(LuxiError::NoMaster(_))
    ));
}

#[test]
fn a_socket_directory_that_is_a_symlink_is_refused() {
    let root = Root::new("luxi-symlink");
    let paths = Paths::with_root(&root.dir);
    let elsewhere = root.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(paths.run_dir()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, paths.socket_dir()).unwrap();
    let e = LuxiServer::bind(&paths).unwrap_err();
    assert!(e.to_string().contains("not a directory"), "{e}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn the_socket_file_of_another_server_is_left_alone_on_shutdown() {
    let mut server = Server::start("luxi-replaced");
    let path = server.path();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"someone else's").unwrap();
    server.running.shutdown();
    assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
}

// ---------------------------------------------------------------------------
// Framing and the message layout

#[test]
fn requests_split_across_reads_and_several_in_one_read_are_answered_in_order() {
    let server = Server::start("luxi-framing");
    let mut s = server.raw();
    // One byte at a time.
    for b in request("Echo", json!(["split"])) {
        s.write_all(&[b]).unwrap();
        thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(answer(&recv(&mut s).unwrap()).result, json!(["split"]));
    // Three in one write, answered one after the other.
    let mut three = Vec::new();
    for n in 1..=3 {
        three.extend(request("Echo", json!(n)));
    }
    s.write_all(&three).unwrap();
    for n in 1..=3 {
        assert_eq!(answer(&recv(&mut s).unwrap()).result, json!(n));
    }
    // A request and half of the next, then the rest.
    let mut a = request("Echo", json!("a"));
    let b = request("Echo", json!("b"));
    a.extend_from_slice(&b[..10]);
    s.write_all(&a).unwrap();
    assert_eq!(answer(&recv(&mut s).unwrap()).result, json!("a"));
    thread::sleep(Duration::from_millis(50));
    s.write_all(&b[10..]).unwrap();
    assert_eq!(answer(&recv(&mut s).unwrap()).result, json!("b"));
    // Any JSON layout is read.
    let got = call_raw(
        &mut s,
        b"\n { \"method\" :\"Echo\",\t\"args\":{\"k\" : [1,2]} }\x03",
    );
    assert_eq!(answer(&got).result, json!({"k": [1, 2]}));
}

#[test]
fn large_answers_to_a_slow_reader_come_whole_and_in_order() {
    let server = Server::start("luxi-slowreader");
    let mut s = server.raw();
    // Pipelined requests whose answers do not fit in the socket buffer (a
    // small one arrives with the end of the first); the client reads
    // nothing for a while.
    let big = |c: char| json!(c.to_string().repeat(2 * 1024 * 1024));
    let mut all = request("Echo", big('a'));
    all.extend(request("Echo", json!("small")));
    all.extend(request("Echo", big('c')));
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || w.write_all(&all).unwrap());
    thread::sleep(Duration::from_millis(300));
    assert_eq!(answer(&recv(&mut s).unwrap()).result, big('a'));
    assert_eq!(answer(&recv(&mut s).unwrap()).result, json!("small"));
    assert_eq!(answer(&recv(&mut s).unwrap()).result, big('c'));
    writer.join().unwrap();
    assert_eq!(server.handler.calls().len(), 3);
}

#[test]
fn answers_and_failures_have_2_5_2_layout() {
    let server = Server::start("luxi-layout");
    let mut s = server.raw();
    let cases: [(&str, Value, &str); 5] = [
        (
            "SubmitJob",
            json!([]),
            "{\n  \"result\": \"42\",\n  \"success\": true\n}\n\x03",
        ),
        (
            "Foo",
            json!([]),
            "{\n  \"result\": \"Caught exception: Invalid operation 'Foo'\",\n  \
             \"success\": false\n}\n\x03",
        ),
        (
            "Fail",
            json!([]),
            "{\n  \"result\": [\n    \"OpPrereqError\",\n    [\n      \"Node 'foo' not known\",\n      \
             \"unknown_entity\"\n    ]\n  ],\n  \"success\": false\n}\n\x03",
        ),
        (
            "Boom",
            json!([]),
            "{\n  \"result\": \"Caught exception: Duration must be an integer or float\",\n  \
             \"success\": false\n}\n\x03",
        ),
        (
            "Echo",
            json!({"b": [], "a": {}, "c": [1.5, "\u{e9}"]}),
            "{\n  \"result\": {\n    \"a\": {},\n    \"b\": [],\n    \"c\": [\n      1.5,\n      \
             \"\\u00e9\"\n    ]\n  },\n  \"success\": true\n}\n\x03",
        ),
    ];
    for (method, args, expected) in cases {
        let got = call_raw(&mut s, &request(method, args));
        assert_eq!(String::from_utf8(got).unwrap(), expected, "{method}");
    }
}

#[test]
fn a_request_of_another_version_is_answered_with_a_luxi_error() {
    let server = Server::start("luxi-version");
    let mut s = server.raw();
    let req = luxi::encode_request("Echo", &json!([]), Some(3_000_000));
    assert_eq!(
        String::from_utf8(call_raw(&mut s, &req)).unwrap(),
        "{\n  \"result\": [\n    \"LuxiError\",\n    [\n      \"LUXI version mismatch, server \
         2050000, request 3000000\"\n    ]\n  ],\n  \"success\": false\n}\n\x03"
    );
    // No version at all is fine, and the connection stays usable.
    let got = call_raw(&mut s, &luxi::encode_request("Echo", &json!(7), None));
    assert_eq!(answer(&got).result, json!(7));
    assert_eq!(
        server.handler.calls().len(),
        1,
        "the mismatch never reached the handler"
    );
}

#[test]
fn the_lenient_policy_accepts_3_0_versions_and_answers_malformed_requests() {
    let options = Options {
        version_policy: VersionPolicy::Lenient,
        ..Options::default()
    };
    let server = Server::with("luxi-lenient", options);
    let mut s = server.raw();
    let req = luxi::encode_request("Echo", &json!([1]), Some(3_000_000));
    assert_eq!(answer(&call_raw(&mut s, &req)).result, json!([1]));
    let got = answer(&call_raw(&mut s, b"{\"method\": \"Echo\"}\x03"));
    assert!(!got.success);
    assert!(
        got.result
            .as_str()
            .unwrap()
            .starts_with("Caught exception: Invalid LUXI request (no method or arguments"),
        "{}",
        got.result
    );
    // Still the same connection.
    assert_eq!(answer(&call_raw(&mut s, &req)).result, json!([1]));
}

// ---------------------------------------------------------------------------
// Protocol errors and limits

#[test]
fn protocol_errors_close_the_connection_without_an_answer() {
    let server = Server::start("luxi-protoerr");
    let nested = format!(
        "{{\"args\": {}{}, \"method\": \"Echo\"}}\x03",
        "[".repeat(40),
        "]".repeat(40)
    );
    let bad: [&[u8]; 8] = [
        b"this is not json\x03",
        b"[\"method\", \"args\"]\x03",
        b"{\"method\": \"Echo\"}\x03",
        b"{\"args\": [], \"method\": null}\x03",
        b"{\"args\": null, \"method\": \"Echo\"}\x03",
        b"\x03",
        b"{\"args\": \"\xff\xfe\", \"method\": \"Echo\"}\x03",
        nested.as_bytes(),
    ];
    for msg in bad {
        let mut s = server.raw();
        s.write_all(msg).unwrap();
        assert!(
            closed_without_answer(&mut s),
            "{:?}",
            String::from_utf8_lossy(msg)
        );
    }
    // A good request after a bad one in the same write is never handled.
    let mut s = server.raw();
    let mut both = b"garbage\x03".to_vec();
    both.extend(request("Echo", json!("after")));
    s.write_all(&both).unwrap();
    assert!(closed_without_answer(&mut s));
    assert!(
        server.handler.calls().is_empty(),
        "no bad request reached the handler"
    );
    // The server goes on serving.
    let mut client = server.client();
    assert_eq!(client.call("Echo", json!("ok")).unwrap(), json!("ok"));
}

#[test]
fn a_request_at_the_size_limit_is_served_and_one_byte_more_is_refused() {
    let _heavy = heavy();
    let server = Server::start("luxi-maxmsg");
    // {"args": "xxx...", "method": "Len"} of exactly MAX_MESSAGE bytes.
    let frame = |len: usize| {
        let overhead = "{\"args\": \"\", \"method\": \"Len\"}".len();
        let mut m = format!(
            "{{\"args\": \"{}\", \"method\": \"Len\"}}",
            "x".repeat(len - overhead)
        )
        .into_bytes();
        assert_eq!(m.len(), len);
        m.push(EOM);
        (m, len - overhead)
    };
    let (at_limit, xs) = frame(MAX_MESSAGE);
    let mut s = server.raw();
    let got = call_raw(&mut s, &at_limit);
    assert_eq!(answer(&got).result, json!(xs));

    let (over, _) = frame(MAX_MESSAGE + 1);
    let mut big = server.raw();
    let writer = {
        let mut w = big.try_clone().unwrap();
        thread::spawn(move || {
            // The server may close before all is written.
            let _ = w.write_all(&over);
        })
    };
    // Meanwhile, and after, others are served.
    let mut other = server.client();
    assert_eq!(other.call("Echo", json!(1)).unwrap(), json!(1));
    assert!(closed_without_answer(&mut big));
    writer.join().unwrap();
    assert_eq!(other.call("Echo", json!(2)).unwrap(), json!(2));
    assert_eq!(
        server.handler.calls().len(),
        3,
        "the oversized request never reached the handler"
    );
}

#[test]
fn a_submit_many_jobs_of_1000_jobs_fits() {
    let server = Server::start("luxi-many");
    // An instance creation as 2.5.2's gnt-instance batch-create sends it.
    let op = json!({"OP_ID": "OP_INSTANCE_CREATE", "beparams": {"memory": 128, "vcpus": 1},
        "debug_level": 0, "disk_template": "file", "disks": [{"mode": "rw", "size": 1024}],
        "dry_run": false, "file_driver": "loop", "file_storage_dir": null, "force_variant": false,
        "hvparams": {}, "hypervisor": "fake", "iallocator": null, "identify_defaults": false,
        "ip_check": true, "mode": "create", "name_check": true, "nics": [{"link": "br0"}],
        "no_install": false, "os_type": "debootstrap+default", "osparams": {}, "pnode":
        "node1.example.com", "snode": null, "source_handshake": null, "source_instance_name":
        null, "source_x509_ca": null, "src_node": null, "src_path": null, "start": true,
        "wait_for_sync": true, "instance_name": "instance-0000.example.com"});
    let jobs: Vec<Value> = (0..1000).map(|_| json!([op.clone()])).collect();
    let req = request("Echo", Value::Array(jobs));
    assert!(req.len() < MAX_MESSAGE / 2, "{} bytes", req.len());
    let mut s = server.raw();
    let got = answer(&call_raw(&mut s, &req));
    assert_eq!(got.result.as_array().unwrap().len(), 1000);
}

#[test]
fn a_request_that_does_not_arrive_in_time_is_closed_but_idle_connections_stay() {
    let options = Options {
        request_read_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    let server = Server::with("luxi-deadline", options);
    let mut idle = server.raw();
    let mut stalled = server.raw();
    stalled.write_all(b"{\"args\": [], \"met").unwrap();
    let started = Instant::now();
    assert!(closed_without_answer(&mut stalled));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "{took:?}"
    );
    thread::sleep(Duration::from_millis(200));
    let got = call_raw(&mut idle, &request("Echo", json!("still here")));
    assert_eq!(answer(&got).result, json!("still here"));
}

#[test]
fn a_stalled_request_is_closed_after_the_request_read_timeout() {
    let server = Server::start("luxi-readtimeout");
    let mut stalled = server.raw();
    let mut idle = server.raw();
    stalled
        .write_all(b"{\"args\": [], \"method\": \"Ec")
        .unwrap();
    let started = Instant::now();
    assert!(closed_without_answer(&mut stalled));
    let took = started.elapsed();
    assert!(
        took >= REQUEST_READ_TIMEOUT - Duration::from_millis(100)
            && took < REQUEST_READ_TIMEOUT + Duration::from_secs(3),
        "{took:?}"
    );
    // An idle connection has no such limit.
    let got = call_raw(&mut idle, &request("Echo", json!("idle")));
    assert_eq!(answer(&got).result, json!("idle"));
}

#[test]
fn an_answer_nobody_reads_holds_no_worker_and_is_dropped_after_the_write_timeout() {
    let _heavy = heavy();
    let options = Options {
        workers: 1,
        write_timeout: Duration::from_millis(500),
        ..Options::default()
    };
    let server = Server::with("luxi-writetimeout", options);
    // An answer far larger than the socket buffer, never read.
    let mut lazy = server.raw();
    lazy.write_all(&request("Echo", json!("z".repeat(3 * 1024 * 1024))))
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        server.handler.calls().len() == 1
    }));
    // The only worker is free for others meanwhile.
    let t = Instant::now();
    let mut other = server.client();
    assert_eq!(other.call("Echo", json!("next")).unwrap(), json!("next"));
    assert!(
        t.elapsed() < Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    // Past the write timeout the connection is closed: the client finds a
    // cut answer.
    thread::sleep(Duration::from_millis(1000));
    let mut got = Vec::new();
    let _ = lazy.read_to_end(&mut got);
    assert!(
        !got.is_empty() && got.last() != Some(&EOM),
        "{} bytes",
        got.len()
    );
}

#[test]
fn unread_answers_past_the_answer_budget_are_written_by_their_workers() {
    let _heavy = heavy();
    let budget = 8 * 1024 * 1024;
    let options = Options {
        workers: 2,
        answer_budget: budget,
        ..Options::default()
    };
    let server = Server::with("luxi-answerbudget", options);
    // Six clients ask for 3 MiB answers and do not read them yet.
    let big = "z".repeat(3 * 1024 * 1024);
    let mut lazy: Vec<UnixStream> = (0..6).map(|_| server.raw()).collect();
    for s in &mut lazy {
        s.write_all(&request("Echo", json!(big))).unwrap();
    }
    // Two answers fit in the budget and wait in the I/O thread; the next
    // two are being written by the two workers themselves, so the last two
    // requests wait for a worker: memory stays bounded.
    assert!(wait_until(Duration::from_secs(10), || {
        server.handler.calls().len() == 4
    }));
    thread::sleep(Duration::from_millis(300));
    assert_eq!(server.handler.calls().len(), 4);
    let unsent = server.running.unsent_answer_bytes();
    assert!(unsent > budget / 2 && unsent <= budget, "{unsent}");
    // Every answer arrives whole once the clients read.
    for s in &mut lazy {
        let mut got = Vec::new();
        let mut chunk = vec![0u8; 1 << 16];
        while got.last() != Some(&EOM) {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "closed after {} bytes", got.len());
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(answer(&got).result, json!(big));
    }
    assert!(wait_until(Duration::from_secs(5), || {
        server.running.unsent_answer_bytes() == 0
    }));
    assert_eq!(server.handler.calls().len(), 6);
}

#[test]
fn past_the_connection_cap_the_oldest_idle_connection_makes_room() {
    let _heavy = heavy();
    let server = Server::start("luxi-cap");
    let mut conns: Vec<UnixStream> = Vec::with_capacity(MAX_CONNECTIONS);
    for _ in 0..MAX_CONNECTIONS {
        conns.push(server.raw());
        // Let the server accept them in this order.
        while server.running.open_connections() < conns.len() {
            thread::sleep(Duration::from_millis(1));
        }
    }
    // The oldest one is busy sending a request: it is not the victim.
    conns[0].write_all(b"{\"args\": ").unwrap();
    thread::sleep(Duration::from_millis(50));
    let mut newest = server.raw();
    let got = call_raw(&mut newest, &request("Echo", json!("room")));
    assert_eq!(answer(&got).result, json!("room"));
    assert!(
        closed_without_answer(&mut conns[1]),
        "the oldest idle one was closed"
    );
    assert_eq!(server.running.open_connections(), MAX_CONNECTIONS);
    // The one that was sending a request finishes it.
    conns[0]
        .write_all(b"[1], \"method\": \"Echo\"}\x03")
        .unwrap();
    assert_eq!(answer(&recv(&mut conns[0]).unwrap()).result, json!([1]));
}

// ---------------------------------------------------------------------------
// Concurrency

#[test]
fn a_hundred_clients_with_hostile_ones_among_them_cannot_starve_good_requests() {
    let _heavy = heavy();
    let server = Arc::new(Server::start("luxi-hundred"));
    let started = Instant::now();
    let mut threads = Vec::new();
    // 20 idle connections.
    let idle: Vec<UnixStream> = (0..20).map(|_| server.raw()).collect();
    // 15 slow ones: half a request, then a byte every 50 ms.
    for i in 0..15 {
        let mut s = server.raw();
        threads.push(thread::spawn(move || {
            let req = request("Echo", json!(format!("slow {i}")));
            let _ = s.write_all(&req[..req.len() / 2]);
            for b in &req[req.len() / 2..req.len() - 1] {
                thread::sleep(Duration::from_millis(50));
                if s.write_all(&[*b]).is_err() {
                    return;
                }
            }
        }));
    }
    // 15 sending garbage, again and again on new connections.
    for _ in 0..15 {
        let path = server.path();
        threads.push(thread::spawn(move || {
            for _ in 0..10 {
                let mut s = UnixStream::connect(&path).unwrap();
                let _ = s.write_all(b"\x00\x01garbage{{{[[[\x03");
                let mut sink = [0u8; 16];
                let _ = s.read(&mut sink);
            }
        }));
    }
    // 10 sending more than a whole message allows.
    for _ in 0..10 {
        let mut s = server.raw();
        threads.push(thread::spawn(move || {
            let chunk = vec![b' '; 256 * 1024];
            for _ in 0..(MAX_MESSAGE / chunk.len() + 2) {
                if s.write_all(&chunk).is_err() {
                    return;
                }
            }
        }));
    }
    // 8 long requests holding a worker each (like WaitForJobChange).
    for _ in 0..8 {
        let mut c = server.client();
        threads.push(thread::spawn(move || {
            assert_eq!(c.call("Sleep", json!(2.0)).unwrap(), json!(true));
        }));
    }
    // 32 well-formed clients, 5 requests each.
    let good: Vec<_> = (0..32)
        .map(|i| {
            let path = server.path();
            thread::spawn(move || {
                let mut c = Client::connect(&path).unwrap();
                for n in 0..5 {
                    let t = Instant::now();
                    let v = json!([i, n]);
                    assert_eq!(c.call("Echo", v.clone()).unwrap(), v);
                    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
                }
            })
        })
        .collect();
    for g in good {
        g.join().unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    for t in threads {
        t.join().unwrap();
    }
    let echoes = server
        .handler
        .calls()
        .iter()
        .filter(|c| c.0 == "Echo")
        .count();
    assert_eq!(echoes, 32 * 5, "only the well-formed requests were handled");
    assert!(server.handler.most_running.load(Ordering::SeqCst) <= CLIENT_REQUEST_WORKERS);
    drop(idle);
}

#[test]
fn long_requests_hold_one_worker_each_and_the_seventeenth_waits() {
    let _heavy = heavy();
    let server = Arc::new(Server::start("luxi-pool"));
    let sleepers: Vec<_> = (0..CLIENT_REQUEST_WORKERS)
        .map(|_| {
            let mut c = server.client();
            thread::spawn(move || c.call("Sleep", json!(1.0)).unwrap())
        })
        .collect();
    assert!(wait_until(Duration::from_secs(5), || {
        server.handler.running.load(Ordering::SeqCst) == CLIENT_REQUEST_WORKERS
    }));
    let t = Instant::now();
    let mut c = server.client();
    assert_eq!(c.call("Echo", json!(17)).unwrap(), json!(17));
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    for s in sleepers {
        s.join().unwrap();
    }
    assert_eq!(
        server.handler.most_running.load(Ordering::SeqCst),
        CLIENT_REQUEST_WORKERS
    );
    let mut names: Vec<String> = server.handler.calls().into_iter().map(|c| c.2).collect();
    names.sort();
    names.dedup();
    assert!(
        names.iter().all(|n| n.starts_with("ClientReq")),
        "{names:?}"
    );
    assert_eq!(names.len(), CLIENT_REQUEST_WORKERS, "{names:?}");
}

#[test]
fn a_panicking_handler_is_answered_and_the_workers_live_on() {
    let server = Server::start("luxi-panic");
    let mut c = server.client();
    for _ in 0..CLIENT_REQUEST_WORKERS + 4 {
        match c.call("Panic", json!([])) {
            Err(LuxiError::Request(v)) => {
                assert_eq!(
                    v,
                    json!("Caught exception: internal error: handler blew up")
                )
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(c.call("Echo", json!(1)).unwrap(), json!(1));
}

#[test]
fn shutdown_finishes_requests_in_work_and_refuses_new_ones() {
    let mut server = Server::start("luxi-shutdown");
    let path = server.path();
    let mut c = server.client();
    let mut idle = server.raw();
    let inflight = thread::spawn(move || c.call("Sleep", json!(0.5)));
    assert!(wait_until(Duration::from_secs(5), || {
        server.handler.running.load(Ordering::SeqCst) == 1
    }));
    let t = Instant::now();
    server.running.shutdown();
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(inflight.join().unwrap().unwrap(), json!(true));
    assert!(closed_without_answer(&mut idle));
    assert!(!path.exists());
    assert!(matches!(
        Client::connect(&path),
        Err(LuxiError::NoMaster(_))
    ));
}

// ---------------------------------------------------------------------------
// The client

#[test]
fn typed_client_helpers_send_2_5_2_shapes_and_decode_the_answers() {
    let server = Server::start("luxi-client");
    let mut c = server.client();
    let op = json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.0});
    assert_eq!(c.submit_job(vec![op.clone()]).unwrap(), 42);
    assert_eq!(
        c.submit_many_jobs(vec![vec![op.clone()], vec![op.clone()]])
            .unwrap(),
        vec![
            Ok(43),
            Err("Job queue is drained, refusing job; opcodes TEST_DELAY(0.0)".into())
        ]
    );
    assert_eq!(
        c.wait_for_job_change(42, &["status"], &Value::Null, None, 60)
            .unwrap(),
        JobChange::Changed {
            job_info: vec![json!("running")],
            log_entries: vec![LogEntry {
                serial: 1,
                timestamp: (1700000001, 123456),
                log_type: "message".into(),
                message: json!("hi"),
            }],
        }
    );
    assert_eq!(
        c.wait_for_job_change(42, &["status"], &json!(["running"]), Some(1), 5)
            .unwrap(),
        JobChange::NoChange
    );
    assert_eq!(
        c.wait_for_job_change(99, &["status"], &Value::Null, None, 5)
            .unwrap(),
        JobChange::Lost
    );
    assert_eq!(c.cancel_job(42).unwrap(), (true, "Job 42 canceled".into()));
    assert!(c.archive_job(42).unwrap());
    assert_eq!(c.auto_archive_jobs(-1).unwrap(), (3, 0));
    assert_eq!(
        c.query_jobs(&[42, 7], &["status", "opstatus", "opresult"])
            .unwrap(),
        vec![
            Some(vec![json!("success"), json!(["success"]), json!([null])]),
            None
        ]
    );
    let info = c.query_cluster_info().unwrap();
    assert_eq!(info["name"], json!("cluster.example.com"));
    assert_eq!(
        c.query_config_values(&["cluster_name", "drain_flag"])
            .unwrap(),
        vec![json!("cluster.example.com"), json!(false)]
    );
    assert_eq!(c.query_tags("cluster", None).unwrap(), vec!["a", "b"]);
    c.set_drain_flag(true).unwrap();
    assert_eq!(
        c.set_watcher_pause(Some(1700000000.0)).unwrap(),
        Some(1700000000.0)
    );
    assert_eq!(c.set_watcher_pause(None).unwrap(), None);
    let q = c.query("node", &["name"], None).unwrap();
    assert_eq!(q.fields[0].kind, "text");
    assert_eq!(
        q.data,
        vec![
            vec![(0, json!("node1.example.com"))],
            vec![(2, Value::Null)]
        ]
    );
    let f = c.query_fields("node", Some(&["name"])).unwrap();
    assert_eq!(f[0].title, "Node");

    // What went over the wire: 2.5.2's argument shapes.
    let args: Vec<(String, Value)> = server
        .handler
        .calls()
        .into_iter()
        .map(|(m, a, _)| (m, a))
        .collect();
    let expected = [
        ("SubmitJob", json!([op.clone()])),
        ("SubmitManyJobs", json!([[op.clone()], [op]])),
        (
            "WaitForJobChange",
            json!(["42", ["status"], null, null, 29]),
        ),
        (
            "WaitForJobChange",
            json!(["42", ["status"], ["running"], 1, 5]),
        ),
        ("WaitForJobChange", json!(["99", ["status"], null, null, 5])),
        ("CancelJob", json!("42")),
        ("ArchiveJob", json!("42")),
        ("AutoArchiveJobs", json!([-1, 29])),
        (
            "QueryJobs",
            json!([["42", "7"], ["status", "opstatus", "opresult"]]),
        ),
        ("QueryClusterInfo", json!([])),
        ("QueryConfigValues", json!(["cluster_name", "drain_flag"])),
        ("QueryTags", json!(["cluster", null])),
        ("SetDrainFlag", json!(true)),
        ("SetWatcherPause", json!([1700000000.0])),
        ("SetWatcherPause", json!([null])),
        ("Query", json!({"fields": ["name"], "what": "node"})),
        ("QueryFields", json!({"fields": ["name"], "what": "node"})),
    ];
    assert_eq!(args.len(), expected.len());
    for ((m, a), (em, ea)) in args.iter().zip(expected.iter()) {
        assert_eq!((m.as_str(), a), (*em, ea));
    }
}

#[test]
fn failures_come_back_as_the_errors_they_encode() {
    let server = Server::start("luxi-maybe-raise");
    let mut c = server.client();
    match c.call("Fail", json!([])) {
        Err(LuxiError::Ganeti(e)) => {
            assert_eq!(e, GanetiError::prereq("Node 'foo' not known", ECODE_NOENT))
        }
        other => panic!("{other:?}"),
    }
    match c.call("NoSuchMethod", json!([])) {
        Err(LuxiError::Request(v)) => {
            assert_eq!(
                v,
                json!("Caught exception: Invalid operation 'NoSuchMethod'")
            )
        }
        other => panic!("{other:?}"),
    }
    // A failure does not break the connection.
    assert_eq!(c.call("Echo", json!("fine")).unwrap(), json!("fine"));
    assert_eq!(server.running.open_connections(), 1);
}

/// A fake server on `path`: per accepted connection, `serve` runs in a
/// thread. Returns the number of connections accepted so far.
fn fake_server(
    path: &Path,
    serve: impl Fn(UnixStream) + Send + Sync + 'static,
) -> Arc<AtomicUsize> {
    let listener = UnixListener::bind(path).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let serve = Arc::new(serve);
    thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { return };
            count.fetch_add(1, Ordering::SeqCst);
            let serve = Arc::clone(&serve);
            thread::spawn(move || serve(s));
        }
    });
    accepted
}

fn fast_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_millis(1500),
        rw: Duration::from_millis(300),
    }
}

#[test]
fn the_client_gives_up_on_a_server_that_never_answers_and_reconnects() {
    let root = Root::new("luxi-silent");
    let path = root.path("silent.sock");
    let accepted = fake_server(&path, |mut s| {
        // Reads everything, answers nothing.
        let mut buf = [0u8; 1024];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    });
    let mut c = Client::with_timeouts(&path, fast_timeouts()).unwrap();
    let t = Instant::now();
    match c.call("Echo", json!(1)) {
        Err(LuxiError::Timeout(msg)) => assert!(msg.starts_with("Receive timeout"), "{msg}"),
        other => panic!("{other:?}"),
    }
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // The next call reconnects.
    assert!(matches!(
        c.call("Echo", json!(1)),
        Err(LuxiError::Timeout(_))
    ));
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[test]
fn the_client_gives_up_on_an_answer_that_trickles_past_its_time() {
    let root = Root::new("luxi-trickle");
    let path = root.path("trickle.sock");
    fake_server(&path, |mut s| {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        // Something every 100 ms, never a whole answer.
        for _ in 0..50 {
            if s.write_all(b" ").is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    let mut c = Client::with_timeouts(&path, fast_timeouts()).unwrap();
    let t = Instant::now();
    match c.call("Echo", json!(1)) {
        Err(LuxiError::Timeout(msg)) => assert_eq!(msg, "Extended receive timeout"),
        other => panic!("{other:?}"),
    }
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn the_client_checks_the_answer_version_and_shape() {
    let root = Root::new("luxi-badanswer");
    let path = root.path("bad.sock");
    fake_server(&path, |mut s| {
        let mut f = luxi::Framer::new(1024);
        let answers: [&[u8]; 3] = [
            b"{\"result\": 1, \"success\": true, \"version\": 3000000}\x03",
            b"{\"result\": 1}\x03",
            b"{\"result\": 5, \"success\": true}\n\x03",
        ];
        for a in answers {
            if luxi::read_message(&mut s, &mut f).is_err() {
                return;
            }
            let _ = s.write_all(a);
        }
        // The server closes in the middle of the next exchange.
        let _ = luxi::read_message(&mut s, &mut f);
    });
    let mut c = Client::connect(&path).unwrap();
    match c.call("Echo", json!(1)) {
        Err(LuxiError::Ganeti(e)) => assert_eq!(
            e,
            GanetiError::msg(
                "LuxiError",
                "LUXI version mismatch, client 2050000, response 3000000"
            )
        ),
        other => panic!("{other:?}"),
    }
    match c.call("Echo", json!(1)) {
        Err(LuxiError::Protocol(msg)) => {
            assert_eq!(msg, "Invalid response from server: {'result': 1}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.call("Echo", json!(1)).unwrap(), json!(5));
    assert!(matches!(
        c.call("Echo", json!(1)),
        Err(LuxiError::ConnectionClosed)
    ));
}

#[test]
fn connecting_without_a_master_or_with_a_full_backlog() {
    let root = Root::new("luxi-connect");
    // No socket file.
    let missing = root.path("missing.sock");
    let t = Instant::now();
    assert!(matches!(
        Client::connect(&missing),
        Err(LuxiError::NoMaster(p)) if p == missing
    ));
    // A socket file nobody listens on.
    let stale = root.path("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    assert!(matches!(
        Client::connect(&stale),
        Err(LuxiError::NoMaster(_))
    ));
    assert!(t.elapsed() < Duration::from_secs(1), "refused at once");

    // A listener that never accepts: fill its backlog, then the client
    // retries every second until its connect timeout.
    let full = root.path("full.sock");
    let listener = UnixListener::bind(&full).unwrap();
    ganeti::sys::listen(&listener, 0).unwrap();
    let mut queued = Vec::new();
    loop {
        match ganeti::sys::unix_connect_nowait(&full) {
            Ok(s) => queued.push(s),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
        assert!(queued.len() < 64, "the backlog never filled");
    }
    let t = Instant::now();
    match Client::with_timeouts(&full, fast_timeouts()) {
        Err(LuxiError::Timeout(msg)) => assert_eq!(msg, "Connect timed out"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("connected to a full backlog"),
    }
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(4),
        "{took:?}"
    );
    drop(listener);
}

// ---------------------------------------------------------------------------
// Against real 2.5.2 traffic

/// One message of a transcript.
struct Chunk {
    conn: u32,
    to_server: bool,
    bytes: Vec<u8>,
}

fn parse_transcript(text: &[u8]) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let end = pos + text[pos..].iter().position(|&b| b == b'\n').unwrap();
        let header = std::str::from_utf8(&text[pos..end]).unwrap();
        pos = end + 1;
        let words: Vec<&str> = header.split_whitespace().collect();
        assert_eq!(&words[..2], &["---", "conn"], "{header}");
        let Some(len) = words.last().and_then(|w| w.strip_prefix("len=")) else {
            continue; // an EOF line
        };
        // The message runs to its terminator. (`len` is only a hint: the
        // cluster-info recording says 1357 for a message of 1355 bytes.)
        let recorded: usize = len.parse().unwrap();
        let len = 1 + text[pos..].iter().position(|&b| b == EOM).unwrap();
        assert!(len.abs_diff(recorded) <= 2, "{header}: {len} bytes");
        chunks.push(Chunk {
            conn: words[2].parse().unwrap(),
            to_server: words[3] == "client->server",
            bytes: text[pos..pos + len].to_vec(),
        });
        pos += len;
        assert_eq!(text[pos], b'\n', "{header}");
        pos += 1;
    }
    chunks
}

/// Answers each request with what 2.5.2 answered it in the transcript.
struct Replay {
    answers: Mutex<HashMap<Vec<u8>, Answers>>,
}

/// The recorded answers to one request, in order.
type Answers = VecDeque<Result<Value, Failure>>;

impl Replay {
    fn new(chunks: &[Chunk]) -> Replay {
        let mut answers: HashMap<Vec<u8>, Answers> = HashMap::new();
        let mut last_request: HashMap<u32, Vec<u8>> = HashMap::new();
        for c in chunks {
            if c.to_server {
                last_request.insert(c.conn, c.bytes.clone());
                continue;
            }
            let result = recorded_result(answer(&c.bytes));
            let req = last_request[&c.conn].clone();
            answers
                .entry(canonical(&req))
                .or_default()
                .push_back(result);
        }
        Replay {
            answers: Mutex::new(answers),
        }
    }
}

/// What the handler must return to get a recorded answer.
fn recorded_result(r: luxi::Response) -> Result<Value, Failure> {
    if r.success {
        Ok(r.result)
    } else if let Some(e) = GanetiError::decode(&r.result) {
        Err(Failure::Ganeti(e))
    } else {
        let text = r.result.as_str().unwrap();
        Err(Failure::other(
            text.strip_prefix("Caught exception: ").unwrap(),
        ))
    }
}

/// A request's method and arguments, as a key.
fn canonical(request: &[u8]) -> Vec<u8> {
    let r = luxi::parse_request(&request[..request.len() - 1]).unwrap();
    luxi::encode_request(&r.method, &r.args, None)
}

impl Handler for Replay {
    fn handle(&self, method: &str, args: Value) -> Result<Value, Failure> {
        let key = luxi::encode_request(method, &args, None);
        let mut answers = self.answers.lock().unwrap();
        answers
            .get_mut(&key)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| Err(Failure::other("not in the transcript")))
    }
}

/// Sends the transcript's requests to our server and compares every
/// answer byte for byte.
fn replay_against_server(name: &str, text: &[u8]) {
    let chunks = parse_transcript(text);
    assert!(!chunks.is_empty(), "{name}");
    let root = Root::new("luxi-replay");
    let bound = LuxiServer::bind(&Paths::with_root(&root.dir)).unwrap();
    let path = bound.path().to_path_buf();
    let _running = bound
        .serve(Arc::new(Replay::new(&chunks)), Options::default())
        .unwrap();
    let mut conns: HashMap<u32, UnixStream> = HashMap::new();
    for c in &chunks {
        let s = conns.entry(c.conn).or_insert_with(|| {
            let s = UnixStream::connect(&path).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        });
        if c.to_server {
            s.write_all(&c.bytes).unwrap();
        } else {
            let got = recv(s).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&c.bytes),
                "{name}: answer differs"
            );
        }
    }
}

#[test]
fn the_server_answers_byte_for_byte_as_2_5_2() {
    for (name, text) in samples::ALL {
        replay_against_server(name, text.as_bytes());
    }
}

/// Every transcript of the lab recordings, when they are at hand
/// (`GANETI_LUXI_SAMPLES=<dir of <name>/transcript.txt>`, else
/// tests/samples/ganeti-2.5.2/luxi); the embedded ones are a selection.
#[test]
fn the_server_answers_every_recorded_transcript_byte_for_byte() {
    let dir = std::env::var_os("GANETI_LUXI_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/samples/ganeti-2.5.2/luxi")
        });
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: no LUXI transcripts at {}", dir.display());
        return;
    };
    let mut n = 0;
    for e in entries {
        let t = e.unwrap().path().join("transcript.txt");
        if let Ok(text) = std::fs::read(&t) {
            replay_against_server(&t.display().to_string(), &text);
            n += 1;
        }
    }
    eprintln!("replayed {n} transcripts from {}", dir.display());
}

/// A fake master that checks each request of the client against the
/// transcript byte for byte and answers with the recorded answer.
fn replay_against_client(text: &str, root: &Root) -> PathBuf {
    let chunks = Arc::new(parse_transcript(text.as_bytes()));
    let path = root.path("replay.sock");
    let listener = UnixListener::bind(&path).unwrap();
    thread::spawn(move || {
        let mut conns: HashMap<u32, UnixStream> = HashMap::new();
        let mut listener = Some(listener);
        for c in chunks.iter() {
            let s = conns
                .entry(c.conn)
                .or_insert_with(|| listener.as_ref().unwrap().accept().unwrap().0);
            if c.to_server {
                let mut got = vec![0u8; c.bytes.len()];
                s.read_exact(&mut got).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&c.bytes),
                    "the client's request differs"
                );
            } else {
                s.write_all(&c.bytes).unwrap();
            }
        }
        listener.take();
    });
    path
}

/// A client for a replaying fake master: a mismatch fails fast.
fn replay_client(path: &Path) -> Client {
    let t = Timeouts {
        connect: Duration::from_secs(5),
        rw: Duration::from_secs(5),
    };
    Client::with_timeouts(path, t).unwrap()
}

fn sample(name: &str) -> &'static str {
    samples::ALL.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn the_client_sends_byte_for_byte_what_2_5_2_clients_sent() {
    let root = Root::new("luxi-client-replay");

    // gnt-debug delay 0.1: submit, poll twice, query the result.
    let mut c = replay_client(&replay_against_client(sample("debug-delay"), &root));
    let op = json!({"OP_ID": "OP_TEST_DELAY", "debug_level": 0, "dry_run": false,
                    "duration": 0.1, "on_master": true, "on_nodes": [], "repeat": 0});
    let id = c.submit_job(vec![op]).unwrap();
    assert_eq!(id, 21);
    let first = c.wait_for_job_change(id, &["status"], &Value::Null, None, 29);
    let JobChange::Changed { job_info, .. } = first.unwrap() else {
        panic!("no change")
    };
    assert_eq!(job_info, vec![json!("waiting")]);
    let second = c.wait_for_job_change(id, &["status"], &json!(job_info), None, 29);
    assert!(
        matches!(second.unwrap(), JobChange::Changed { job_info, .. } if job_info == vec![json!("success")])
    );
    let rows = c
        .query_jobs(&[id], &["status", "opstatus", "opresult"])
        .unwrap();
    assert_eq!(
        rows,
        vec![Some(vec![
            json!("success"),
            json!(["success"]),
            json!([null])
        ])]
    );
    std::fs::remove_file(root.path("replay.sock")).unwrap();

    // gnt-cluster queue drain.
    let mut c = replay_client(&replay_against_client(sample("queue-drain"), &root));
    c.set_drain_flag(true).unwrap();
    std::fs::remove_file(root.path("replay.sock")).unwrap();

    // gnt-job autoarchive all.
    let mut c = replay_client(&replay_against_client(sample("job-autoarchive"), &root));
    c.auto_archive_jobs(-1).unwrap();
    std::fs::remove_file(root.path("replay.sock")).unwrap();

    // gnt-job list.
    let mut c = replay_client(&replay_against_client(sample("job-list"), &root));
    let all = c.query_jobs(&[], &["id", "status", "summary"]).unwrap();
    assert!(!all.is_empty());
    std::fs::remove_file(root.path("replay.sock")).unwrap();

    // gnt-node list.
    let mut c = replay_client(&replay_against_client(sample("node-list"), &root));
    let fields = [
        "name",
        "dtotal",
        "dfree",
        "mtotal",
        "mnode",
        "mfree",
        "pinst_cnt",
        "sinst_cnt",
    ];
    let q = c.query("node", &fields, None).unwrap();
    assert_eq!(q.fields.len(), fields.len());
    std::fs::remove_file(root.path("replay.sock")).unwrap();

    // gnt-cluster info.
    let mut c = replay_client(&replay_against_client(sample("cluster-info"), &root));
    let info = c.query_cluster_info().unwrap();
    assert_eq!(info["software_version"], json!("2.5.2"));
    std::fs::remove_file(root.path("replay.sock")).unwrap();

    // A drained queue refuses a job: MaybeRaise gives the Ganeti error.
    let mut c = replay_client(&replay_against_client(sample("error-queue-drained"), &root));
    let op = json!({"OP_ID": "OP_TEST_DELAY", "debug_level": 0, "dry_run": false,
                    "duration": 0.0, "on_master": true, "on_nodes": [], "repeat": 0});
    match c.submit_job(vec![op]) {
        Err(LuxiError::Ganeti(e)) => {
            assert_eq!(e.class, "JobQueueDrainError");
            assert_eq!(e.message(), Some("Job queue is drained, refusing job"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_recorded_message_is_written_back_identically() {
    for (name, text) in samples::ALL {
        for c in parse_transcript(text.as_bytes()) {
            let body = &c.bytes[..c.bytes.len() - 1];
            let again = if c.to_server {
                let r = luxi::parse_request(body).unwrap();
                let version = r.version.as_ref().and_then(Value::as_u64);
                luxi::encode_request(&r.method, &r.args, version)
            } else {
                luxi::encode_response(&recorded_result(luxi::parse_response(body).unwrap()))
            };
            assert_eq!(
                String::from_utf8_lossy(&again),
                String::from_utf8_lossy(&c.bytes),
                "{name}"
            );
        }
    }
}

/// Transcripts of real Ganeti 2.5.2 LUXI traffic (`samples/ganeti-2.5.2/luxi/<name>/
/// transcript.txt`), byte for byte: a header line per message, the message with
/// its terminator, a newline.
mod samples {
    pub const ALL: &[(&str, &str)] = &[
        (
            "debug-delay",
            "--- conn 1 client->server 1795814298.047177 len=184
{\"args\": [{\"OP_ID\": \"OP_TEST_DELAY\", \"debug_level\": 0, \"dry_run\": false, \"duration\": 0.1, \"on_master\": true, \"on_nodes\": [], \"repeat\": 0}], \"method\": \"SubmitJob\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814298.051761 len=41
{
  \"result\": \"21\",
  \"success\": true
}
\x03
--- conn 1 client->server 1795814298.052207 len=96
{\"args\": [\"21\", [\"status\"], null, null, 29], \"method\": \"WaitForJobChange\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814298.053418 len=78
{
  \"result\": [
    [
      \"waiting\"
    ],
    []
  ],
  \"success\": true
}
\x03
--- conn 1 client->server 1795814298.054395 len=103
{\"args\": [\"21\", [\"status\"], [\"waiting\"], null, 29], \"method\": \"WaitForJobChange\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814298.168099 len=78
{
  \"result\": [
    [
      \"success\"
    ],
    []
  ],
  \"success\": true
}
\x03
--- conn 1 client->server 1795814298.168432 len=99
{\"args\": [[\"21\"], [\"status\", \"opstatus\", \"opresult\"]], \"method\": \"QueryJobs\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814298.169555 len=135
{
  \"result\": [
    [
      \"success\",
      [
        \"success\"
      ],
      [
        null
      ]
    ]
  ],
  \"success\": true
}
\x03
--- conn 1 client EOF 1795814298.169709
--- conn 1 server EOF 1795814298.174751
",
        ),
        (
            "cluster-info",
            "--- conn 1 client->server 1795814295.500488 len=64
{\"args\": [], \"method\": \"QueryClusterInfo\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814295.515951 len=1357
{
  \"result\": {
    \"architecture\": [
      \"64bit\",
      \"x86_64\"
    ],
    \"beparams\": {
      \"default\": {
        \"auto_balance\": true,
        \"memory\": 128,
        \"vcpus\": 1
      }
    },
    \"blacklisted_os\": [],
    \"candidate_pool_size\": 10,
    \"config_version\": 2050000,
    \"ctime\": 1795814247.593712,
    \"default_hypervisor\": \"fake\",
    \"default_iallocator\": \"\",
    \"drbd_usermode_helper\": null,
    \"enabled_hypervisors\": [
      \"fake\"
    ],
    \"export_version\": 0,
    \"file_storage_dir\": \"/srv/ganeti/file-storage\",
    \"hidden_os\": [],
    \"hvparams\": {
      \"fake\": {}
    },
    \"maintain_node_health\": false,
    \"master\": \"node1.g25lab.test\",
    \"master_netdev\": \"g25v0\",
    \"mtime\": 1795814247.59974,
    \"name\": \"cluster.g25lab.test\",
    \"ndparams\": {
      \"oob_program\": null
    },
    \"nicparams\": {
      \"default\": {
        \"link\": \"g25br0\",
        \"mode\": \"bridged\"
      }
    },
    \"os_api_version\": 20,
    \"os_hvp\": {},
    \"osparams\": {},
    \"prealloc_wipe_disks\": false,
    \"primary_ip_version\": 4,
    \"protocol_version\": 2050000,
    \"reserved_lvs\": [],
    \"shared_file_storage_dir\": \"/srv/ganeti/shared-file-storage\",
    \"software_version\": \"2.5.2\",
    \"tags\": [],
    \"uid_pool\": [],
    \"uuid\": \"f471ce58-a5af-48bc-a56f-4bbd3ef09c4e\",
    \"volume_group_name\": null
  },
  \"success\": true
}
\x03
--- conn 1 client EOF 1795814295.519460
--- conn 1 server EOF 1795814295.519508
",
        ),
        (
            "error-queue-drained",
            "--- conn 1 client->server 1795814346.137123 len=184
{\"args\": [{\"OP_ID\": \"OP_TEST_DELAY\", \"debug_level\": 0, \"dry_run\": false, \"duration\": 0.0, \"on_master\": true, \"on_nodes\": [], \"repeat\": 0}], \"method\": \"SubmitJob\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814346.139926 len=124
{
  \"result\": [
    \"JobQueueDrainError\",
    [
      \"Job queue is drained, refusing job\"
    ]
  ],
  \"success\": false
}
\x03
--- conn 1 client EOF 1795814346.141793
--- conn 1 server EOF 1795814346.142105
",
        ),
        (
            "job-info",
            "--- conn 1 client->server 1795814299.691283 len=188
{\"args\": [[\"22\"], [\"id\", \"status\", \"ops\", \"opresult\", \"opstatus\", \"oplog\", \"opstart\", \"opexec\", \"opend\", \"received_ts\", \"start_ts\", \"end_ts\"]], \"method\": \"QueryJobs\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814299.692689 len=1254
{
  \"result\": [
    [
      \"22\",
      \"success\",
      [
        {
          \"OP_ID\": \"OP_TEST_DELAY\",
          \"comment\": null,
          \"debug_level\": 0,
          \"depends\": null,
          \"dry_run\": false,
          \"duration\": 0.05,
          \"on_master\": true,
          \"on_nodes\": [],
          \"priority\": 0,
          \"repeat\": 2
        }
      ],
      [
        null
      ],
      [
        \"success\"
      ],
      [
        [
          [
            1,
            [
              1795814298,
              679293
            ],
            \"message\",
            \" - INFO: Test delay iteration 0/1\"
          ],
          [
            2,
            [
              1795814298,
              735945
            ],
            \"message\",
            \" - INFO: Test delay iteration 1/1\"
          ]
        ]
      ],
      [
        [
          1795814298,
          674497
        ]
      ],
      [
        [
          1795814298,
          677487
        ]
      ],
      [
        [
          1795814298,
          788090
        ]
      ],
      [
        1795814298,
        671870
      ],
      [
        1795814298,
        674497
      ],
      [
        1795814298,
        788108
      ]
    ]
  ],
  \"success\": true
}
\x03
--- conn 1 client EOF 1795814299.692929
--- conn 1 server EOF 1795814299.693028
",
        ),
        (
            "job-list",
            "--- conn 1 client->server 1795814298.979005 len=88
{\"args\": [[], [\"id\", \"status\", \"summary\"]], \"method\": \"QueryJobs\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814298.981566 len=1551
{
  \"result\": [
    [
      \"7\",
      \"success\",
      [
        \"INSTANCE_CREATE(inst1.g25lab.test)\"
      ]
    ],
    [
      \"8\",
      \"success\",
      [
        \"INSTANCE_CREATE(inst2.g25lab.test)\"
      ]
    ],
    [
      \"9\",
      \"success\",
      [
        \"INSTANCE_QUERY_DATA\"
      ]
    ],
    [
      \"10\",
      \"success\",
      [
        \"INSTANCE_QUERY_DATA\"
      ]
    ],
    [
      \"11\",
      \"success\",
      [
        \"INSTANCE_SHUTDOWN(inst1.g25lab.test)\"
      ]
    ],
    [
      \"12\",
      \"success\",
      [
        \"INSTANCE_STARTUP(inst1.g25lab.test)\"
      ]
    ],
    [
      \"13\",
      \"success\",
      [
        \"CLUSTER_VERIFY\"
      ]
    ],
    [
      \"14\",
      \"success\",
      [
        \"CLUSTER_VERIFY_CONFIG\"
      ]
    ],
    [
      \"15\",
      \"success\",
      [
        \"CLUSTER_VERIFY_GROUP(738a7d11-f338-4cdc-8833-56f3fb7ba540)\"
      ]
    ],
    [
      \"16\",
      \"success\",
      [
        \"NODE_QUERY_STORAGE\"
      ]
    ],
    [
      \"17\",
      \"success\",
      [
        \"INSTANCE_REMOVE(inst1.g25lab.test)\"
      ]
    ],
    [
      \"18\",
      \"success\",
      [
        \"INSTANCE_REMOVE(inst2.g25lab.test)\"
      ]
    ],
    [
      \"19\",
      \"success\",
      [
        \"OS_DIAGNOSE\"
      ]
    ],
    [
      \"20\",
      \"success\",
      [
        \"OS_DIAGNOSE\"
      ]
    ],
    [
      \"21\",
      \"success\",
      [
        \"TEST_DELAY(0.1)\"
      ]
    ],
    [
      \"22\",
      \"success\",
      [
        \"TEST_DELAY(0.05)\"
      ]
    ]
  ],
  \"success\": true
}
\x03
--- conn 1 client EOF 1795814298.981805
--- conn 1 server EOF 1795814298.981984
",
        ),
        (
            "node-list",
            "--- conn 1 client->server 1795814296.365845 len=160
{\"args\": {\"fields\": [\"name\", \"dtotal\", \"dfree\", \"mtotal\", \"mnode\", \"mfree\", \"pinst_cnt\", \"sinst_cnt\"], \"what\": \"node\"}, \"method\": \"Query\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814296.388707 len=1725
{
  \"result\": {
    \"data\": [
      [
        [
          0,
          \"node1.g25lab.test\"
        ],
        [
          3,
          null
        ],
        [
          3,
          null
        ],
        [
          0,
          24105
        ],
        [
          0,
          197
        ],
        [
          0,
          23655
        ],
        [
          0,
          0
        ],
        [
          0,
          0
        ]
      ]
    ],
    \"fields\": [
      {
        \"doc\": \"Node name\",
        \"kind\": \"text\",
        \"name\": \"name\",
        \"title\": \"Node\"
      },
      {
        \"doc\": \"Total disk space in volume group used for instance disk allocation\",
        \"kind\": \"unit\",
        \"name\": \"dtotal\",
        \"title\": \"DTotal\"
      },
      {
        \"doc\": \"Available disk space in volume group\",
        \"kind\": \"unit\",
        \"name\": \"dfree\",
        \"title\": \"DFree\"
      },
      {
        \"doc\": \"Total amount of memory of physical machine\",
        \"kind\": \"unit\",
        \"name\": \"mtotal\",
        \"title\": \"MTotal\"
      },
      {
        \"doc\": \"Amount of memory used by node (dom0 for Xen)\",
        \"kind\": \"unit\",
        \"name\": \"mnode\",
        \"title\": \"MNode\"
      },
      {
        \"doc\": \"Memory available for instance allocations\",
        \"kind\": \"unit\",
        \"name\": \"mfree\",
        \"title\": \"MFree\"
      },
      {
        \"doc\": \"Number of instances with this node as primary\",
        \"kind\": \"number\",
        \"name\": \"pinst_cnt\",
        \"title\": \"Pinst\"
      },
      {
        \"doc\": \"Number of instances with this node as secondary\",
        \"kind\": \"number\",
        \"name\": \"sinst_cnt\",
        \"title\": \"Sinst\"
      }
    ]
  },
  \"success\": true
}
\x03
--- conn 1 client EOF 1795814296.389452
--- conn 1 server EOF 1795814296.389508
",
        ),
        (
            "node-add",
            "--- conn 1 client->server 1795814751.607677 len=113
{\"args\": [[\"node2.g25lab.test\"], [\"name\", \"sip\", \"master\"], false], \"method\": \"QueryNodes\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814751.612680 len=143
{
  \"result\": [
    \"OpPrereqError\",
    [
      \"Node 'node2.g25lab.test' not known\",
      \"unknown_entity\"
    ]
  ],
  \"success\": false
}
\x03
--- conn 1 client->server 1795814751.613042 len=79
{\"args\": [\"cluster_name\"], \"method\": \"QueryConfigValues\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814751.613950 len=68
{
  \"result\": [
    \"cluster.g25lab.test\"
  ],
  \"success\": true
}
\x03
--- conn 2 client->server 1795814752.847521 len=248
{\"args\": [{\"OP_ID\": \"OP_NODE_ADD\", \"debug_level\": 0, \"group\": null, \"master_capable\": null, \"ndparams\": null, \"node_name\": \"node2.g25lab.test\", \"readd\": false, \"secondary_ip\": null, \"vm_capable\": null}], \"method\": \"SubmitJob\", \"version\": 2050000}
\x03
--- conn 2 server->client 1795814752.852780 len=42
{
  \"result\": \"248\",
  \"success\": true
}
\x03
--- conn 2 client->server 1795814752.853962 len=97
{\"args\": [\"248\", [\"status\"], null, null, 29], \"method\": \"WaitForJobChange\", \"version\": 2050000}
\x03
--- conn 2 server->client 1795814752.860246 len=78
{
  \"result\": [
    [
      \"running\"
    ],
    []
  ],
  \"success\": true
}
\x03
--- conn 2 client->server 1795814752.860534 len=104
{\"args\": [\"248\", [\"status\"], [\"running\"], null, 29], \"method\": \"WaitForJobChange\", \"version\": 2050000}
\x03
--- conn 2 server->client 1795814752.969540 len=240
{
  \"result\": [
    [
      \"running\"
    ],
    [
      [
        1,
        [
          1795814752,
          897597
        ],
        \"message\",
        \" - INFO: Node will be a master candidate\"
      ]
    ]
  ],
  \"success\": true
}
\x03
--- conn 2 client->server 1795814752.969906 len=101
{\"args\": [\"248\", [\"status\"], [\"running\"], 1, 29], \"method\": \"WaitForJobChange\", \"version\": 2050000}
\x03
--- conn 2 server->client 1795814753.499821 len=78
{
  \"result\": [
    [
      \"success\"
    ],
    []
  ],
  \"success\": true
}
\x03
--- conn 2 client->server 1795814753.500128 len=100
{\"args\": [[\"248\"], [\"status\", \"opstatus\", \"opresult\"]], \"method\": \"QueryJobs\", \"version\": 2050000}
\x03
--- conn 2 server->client 1795814753.500780 len=135
{
  \"result\": [
    [
      \"success\",
      [
        \"success\"
      ],
      [
        null
      ]
    ]
  ],
  \"success\": true
}
\x03
--- conn 2 client EOF 1795814753.500915
--- conn 1 client EOF 1795814753.501007
--- conn 1 server EOF 1795814753.503360
--- conn 2 server EOF 1795814753.503556
",
        ),
        (
            "submit-many-jobs",
            "--- conn 1 client->server 1795814301.492672 len=345
{\"args\": [[{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 0.0, \"on_master\": true, \"on_nodes\": [], \"repeat\": 0}], [{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 0.0, \"on_master\": true, \"on_nodes\": [], \"repeat\": 0}], [{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 0.0, \"on_master\": true, \"on_nodes\": [], \"repeat\": 0}]], \"method\": \"SubmitManyJobs\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814301.498597 len=149
{
  \"result\": [
    [
      true,
      \"23\"
    ],
    [
      true,
      \"24\"
    ],
    [
      true,
      \"25\"
    ]
  ],
  \"success\": true
}
\x03
--- conn 1 client->server 1795814301.499473 len=96
{\"args\": [\"23\", [\"status\"], null, null, 29], \"method\": \"WaitForJobChange\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814301.506011 len=77
{
  \"result\": [
    [
      \"queued\"
    ],
    []
  ],
  \"success\": true
}
\x03
--- conn 1 client->server 1795814301.506482 len=102
{\"args\": [\"23\", [\"status\"], [\"queued\"], null, 29], \"method\": \"WaitForJobChange\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814301.514091 len=78
{
  \"result\": [
    [
      \"running\"
    ],
    []
  ],
  \"success\": true
}
\x03
--- conn 1 client->server 1795814301.514445 len=103
{\"args\": [\"23\", [\"status\"], [\"running\"], null, 29], \"method\": \"WaitForJobChange\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814301.515543 len=78
{
  \"result\": [
    [
      \"success\"
    ],
    []
  ],
  \"success\": true
}
\x03
--- conn 1 client->server 1795814301.515761 len=96
{\"args\": [\"24\", [\"status\"], null, null, 29], \"method\": \"WaitForJobChange\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814301.516658 len=78
{
  \"result\": [
    [
      \"success\"
    ],
    []
  ],
  \"success\": true
}
\x03
--- conn 1 client->server 1795814301.516814 len=96
{\"args\": [\"25\", [\"status\"], null, null, 29], \"method\": \"WaitForJobChange\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814301.517496 len=78
{
  \"result\": [
    [
      \"success\"
    ],
    []
  ],
  \"success\": true
}
\x03
--- conn 1 client EOF 1795814301.519258
--- conn 1 server EOF 1795814301.519334
",
        ),
        (
            "queue-drain",
            "--- conn 1 client->server 1795814302.050525 len=62
{\"args\": true, \"method\": \"SetDrainFlag\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814302.052501 len=41
{
  \"result\": true,
  \"success\": true
}
\x03
--- conn 1 client EOF 1795814302.052774
--- conn 1 server EOF 1795814302.052896
",
        ),
        (
            "job-autoarchive",
            "--- conn 1 client->server 1795814300.891663 len=69
{\"args\": [-1, 29], \"method\": \"AutoArchiveJobs\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814300.895457 len=56
{
  \"result\": [
    16,
    0
  ],
  \"success\": true
}
\x03
--- conn 1 client EOF 1795814300.895806
--- conn 1 server EOF 1795814300.895937
",
        ),
        (
            "error-unknown-instance",
            "--- conn 1 client->server 1795814346.882453 len=185
{\"args\": [{\"OP_ID\": \"OP_INSTANCE_QUERY_DATA\", \"debug_level\": 0, \"instances\": [\"nosuch.g25lab.test\"], \"static\": false, \"use_locking\": true}], \"method\": \"SubmitJob\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814346.887800 len=41
{
  \"result\": \"40\",
  \"success\": true
}
\x03
--- conn 1 client->server 1795814346.888637 len=96
{\"args\": [\"40\", [\"status\"], null, null, 29], \"method\": \"WaitForJobChange\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814346.890499 len=77
{
  \"result\": [
    [
      \"queued\"
    ],
    []
  ],
  \"success\": true
}
\x03
--- conn 1 client->server 1795814346.891406 len=102
{\"args\": [\"40\", [\"status\"], [\"queued\"], null, 29], \"method\": \"WaitForJobChange\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814346.900891 len=78
{
  \"result\": [
    [
      \"waiting\"
    ],
    []
  ],
  \"success\": true
}
\x03
--- conn 1 client->server 1795814346.901428 len=103
{\"args\": [\"40\", [\"status\"], [\"waiting\"], null, 29], \"method\": \"WaitForJobChange\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814347.032625 len=76
{
  \"result\": [
    [
      \"error\"
    ],
    []
  ],
  \"success\": true
}
\x03
--- conn 1 client->server 1795814347.032944 len=99
{\"args\": [[\"40\"], [\"status\", \"opstatus\", \"opresult\"]], \"method\": \"QueryJobs\", \"version\": 2050000}
\x03
--- conn 1 server->client 1795814347.034565 len=273
{
  \"result\": [
    [
      \"error\",
      [
        \"error\"
      ],
      [
        [
          \"OpPrereqError\",
          [
            \"Instance 'nosuch.g25lab.test' not known\",
            \"unknown_entity\"
          ]
        ]
      ]
    ]
  ],
  \"success\": true
}
\x03
--- conn 1 client EOF 1795814347.039344
--- conn 1 server EOF 1795814347.039717
",
        ),
    ];
}
