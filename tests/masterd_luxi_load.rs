//! 100 LUXI clients at once against the real master daemon, some of them
//! sending malformed or oversized messages: every well-formed request is
//! answered correctly and the daemon is alive afterwards.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::cluster::*;
use common::*;
use ganeti::luxi;
use serde_json::{json, Value};

const CLIENTS: usize = 100;

/// Reads one answer (up to the terminator); `None` when the server closed
/// the connection first.
fn read_answer(s: &mut UnixStream) -> Option<Value> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(pos) = buf.iter().position(|b| *b == luxi::EOM) {
            return serde_json::from_slice(&buf[..pos]).ok();
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

enum Outcome {
    /// A well-formed client: how many requests it got right.
    Good(usize),
    /// A bad client: whether it got an answer (a failure) or a close.
    Bad,
}

fn good_client(socket: &std::path::Path, i: usize) -> Outcome {
    let mut c = luxi::Client::connect(socket).unwrap();
    let mut ok = 0;
    let info = c.query_cluster_info().unwrap();
    assert_eq!(info["name"], json!(CLUSTER_NAME));
    ok += 1;
    let vals = c
        .query_config_values(&["cluster_name", "master_node"])
        .unwrap();
    assert_eq!(vals, vec![json!(CLUSTER_NAME), json!("node1.example.com")]);
    ok += 1;
    if i % 3 == 0 {
        let id = c
            .submit_job(vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.01})])
            .unwrap();
        // Watch it to the end.
        let mut prev = Value::Null;
        loop {
            let r = c
                .call(
                    "WaitForJobChange",
                    json!([id.to_string(), ["status"], prev, null, 10]),
                )
                .unwrap();
            if r == json!("nochange") {
                continue;
            }
            let status = r[0][0].as_str().unwrap().to_string();
            if status == "success" {
                break;
            }
            assert!(status != "error" && status != "canceled", "{r}");
            prev = r[0].clone();
        }
        ok += 1;
    }
    let tags = c.query_tags("cluster", None).unwrap();
    assert!(tags.is_empty());
    ok += 1;
    Outcome::Good(ok)
}

fn bad_client(socket: &std::path::Path, i: usize) -> Outcome {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    match i % 4 {
        // Not JSON.
        0 => {
            s.write_all(b"{\"method\": \"QueryClusterInfo\", \x03")
                .unwrap();
        }
        // Not UTF-8 at all.
        1 => {
            s.write_all(&[0xff, 0xfe, 0x00, 0x80, luxi::EOM]).unwrap();
        }
        // JSON of the wrong shape.
        2 => {
            s.write_all(b"[1, 2, 3]\x03").unwrap();
        }
        // Larger than any request may be, without a terminator.
        _ => {
            let chunk = vec![b' '; 64 * 1024];
            for _ in 0..(luxi::MAX_MESSAGE / chunk.len() + 2) {
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
    }
    // An answer (a failure) or a closed connection; never a hang.
    if let Some(v) = read_answer(&mut s) {
        assert_eq!(v["success"], json!(false), "{v}");
    }
    Outcome::Bad
}

#[test]
fn a_hundred_clients_with_bad_ones_among_them() {
    let cluster = Cluster::new("mload", 1);
    cluster.start_master();
    let pid = cluster.master_pid().unwrap();
    let socket = cluster.socket();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (socket, barrier) = (socket.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                if i % 5 == 4 {
                    bad_client(&socket, i / 5)
                } else {
                    good_client(&socket, i)
                }
            })
        })
        .collect();
    let mut good = 0;
    let mut bad = 0;
    for t in threads {
        match t.join().expect("a client failed") {
            Outcome::Good(n) => {
                assert!(n >= 3);
                good += 1;
            }
            Outcome::Bad => bad += 1,
        }
    }
    assert_eq!((good, bad), (80, 20));
    assert!(alive(pid), "the master daemon died");
    // Still serving, and serving the same.
    let mut c = cluster.client();
    assert!(c.query_cluster_info().is_ok());
    let id = c
        .submit_job(vec![json!({"OP_ID": "OP_TEST_DELAY", "duration": 0})])
        .unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        c.query_jobs(&[id], &["status"]).unwrap()[0] == Some(vec![json!("success")])
    }));
    // Every job the clients submitted finished.
    let all = c.call("QueryJobs", json!([[], ["status"]])).unwrap();
    for row in all.as_array().unwrap() {
        assert_eq!(row, &json!(["success"]));
    }
    assert!(all.as_array().unwrap().len() >= 27);
}
