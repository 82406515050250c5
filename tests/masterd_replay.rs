//! Conversations recorded with real Ganeti 2.5.2 (`gnt-cluster queue
//! drain|info|undrain`, a submission to a drained queue, `gnt-debug delay`,
//! `SubmitManyJobs`, `gnt-job info`) replayed against the real master
//! daemon: the same request bytes (job ids mapped to ours) get the same
//! answer bytes, or, where times and job states depend on the moment, the
//! same answer once times are blanked.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::cluster::*;
use common::*;
use serde_json::{json, Value};

const SAMPLES: &str = "tests/samples/ganeti-2.5.2/luxi";

/// The requests and answers of a transcript, in order.
fn exchanges(name: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let text = std::fs::read(format!("{SAMPLES}/{name}/transcript.txt")).unwrap();
    let mut out = Vec::new();
    let mut pending: Option<Vec<u8>> = None;
    let mut rest = &text[..];
    while let Some(start) = find(rest, b"--- conn ") {
        rest = &rest[start..];
        let head_end = find(rest, b"\n").unwrap();
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        rest = &rest[head_end + 1..];
        let Some(len) = head
            .split("len=")
            .nth(1)
            .and_then(|l| l.trim().parse::<usize>().ok())
        else {
            continue;
        };
        // The recorded message ends with its terminator; keep it apart.
        let mut body = rest[..len].to_vec();
        rest = &rest[len..];
        if body.last() == Some(&ganeti::luxi::EOM) {
            body.pop();
        }
        if head.contains("client->server") {
            pending = Some(body);
        } else if let Some(req) = pending.take() {
            out.push((req, body));
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One request and its answer over a raw connection (message, then 0x03).
fn exchange(s: &mut UnixStream, request: &[u8]) -> Vec<u8> {
    s.write_all(request).unwrap();
    s.write_all(&[ganeti::luxi::EOM]).unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        s.read_exact(&mut byte).unwrap();
        if byte[0] == ganeti::luxi::EOM {
            return answer;
        }
        answer.push(byte[0]);
    }
}

/// Replaces job ids in quoted form (`"23"`) through `map`.
fn map_ids(bytes: &[u8], map: &BTreeMap<String, String>) -> Vec<u8> {
    let mut text = String::from_utf8(bytes.to_vec()).unwrap();
    // Longest first, so "230" is not hit by "23"; via placeholders so a
    // mapping never applies twice.
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    for (i, k) in keys.iter().enumerate() {
        text = text.replace(&format!("\"{k}\""), &format!("\"\u{1}{i}\u{1}\""));
    }
    for (i, k) in keys.iter().enumerate() {
        text = text.replace(&format!("\"\u{1}{i}\u{1}\""), &format!("\"{}\"", map[*k]));
    }
    text.into_bytes()
}

/// Times (`[sec, usec]` pairs) blanked.
fn blank_times(v: &mut Value) {
    match v {
        Value::Array(a) => {
            let is_time = a.len() == 2
                && a[0].as_u64().is_some_and(|s| s > 1_000_000_000)
                && a[1].as_u64().is_some_and(|u| u < 1_000_000);
            if is_time {
                *v = json!("TIME");
            } else {
                a.iter_mut().for_each(blank_times);
            }
        }
        Value::Object(m) => m.values_mut().for_each(blank_times),
        _ => {}
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn connect(cluster: &Cluster) -> UnixStream {
    let s = UnixStream::connect(cluster.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

#[test]
fn queue_drain_info_refusal_undrain_byte_for_byte() {
    let cluster = Cluster::new("mreplay-q", 1);
    cluster.start_master();
    for name in [
        "queue-drain",
        "queue-info",
        "error-queue-drained",
        "queue-undrain",
    ] {
        let mut s = connect(&cluster);
        for (req, want) in exchanges(name) {
            let got = exchange(&mut s, &req);
            assert_eq!(text(&got), text(&want), "{name}: {}", text(&req));
        }
    }
    let mut s = connect(&cluster);
    let (req, want) = &exchanges("queue-info")[0];
    let got = exchange(&mut s, req);
    assert_eq!(text(&got), text(want).replace("    true", "    false"));
}

/// Replays a transcript whose jobs we submit ourselves: ids mapped, answers
/// equal byte for byte where the recorded job state was final, and equal
/// with times blanked for `QueryJobs`.
fn replay_jobs(cluster: &Cluster, name: &str) {
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut s = connect(cluster);
    for (req, want) in exchanges(name) {
        let request: Value = serde_json::from_slice(&req).unwrap();
        let method = request["method"].as_str().unwrap().to_string();
        let got = exchange(&mut s, &map_ids(&req, &ids));
        let got_v: Value = serde_json::from_slice(&got).unwrap();
        let want_v: Value = serde_json::from_slice(&want).unwrap();
        match method.as_str() {
            "SubmitJob" => {
                ids.insert(
                    want_v["result"].as_str().unwrap().to_string(),
                    got_v["result"].as_str().unwrap().to_string(),
                );
            }
            "SubmitManyJobs" => {
                for (w, g) in want_v["result"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(got_v["result"].as_array().unwrap())
                {
                    ids.insert(
                        w[1].as_str().unwrap().to_string(),
                        g[1].as_str().unwrap().to_string(),
                    );
                }
            }
            _ => {}
        }
        let back: BTreeMap<String, String> =
            ids.iter().map(|(a, b)| (b.clone(), a.clone())).collect();
        let got_theirs = map_ids(&got, &back);
        match method.as_str() {
            "WaitForJobChange" => {
                // Which intermediate state one sees depends on the moment;
                // a final state must come out exactly as recorded, and
                // waiting for it then gives it.
                let status = want_v["result"][0][0].as_str().unwrap_or("");
                if ["success", "error", "canceled"].contains(&status) {
                    let mut got_theirs = got_theirs;
                    let mut tries = 0;
                    while text(&got_theirs) != text(&want) && tries < 100 {
                        std::thread::sleep(Duration::from_millis(30));
                        let got = exchange(&mut s, &map_ids(&req, &ids));
                        got_theirs = map_ids(&got, &back);
                        tries += 1;
                    }
                    assert_eq!(text(&got_theirs), text(&want), "{name}");
                } else {
                    assert_eq!(got_v["success"], json!(true), "{name}: {}", text(&got));
                }
            }
            "QueryJobs" => {
                let mut g: Value = serde_json::from_slice(&got_theirs).unwrap();
                let mut w = want_v.clone();
                blank_times(&mut g);
                blank_times(&mut w);
                assert_eq!(g, w, "{name}");
            }
            _ => assert_eq!(text(&got_theirs), text(&want), "{name}"),
        }
    }
}

#[test]
fn delay_jobs_as_recorded() {
    let cluster = Cluster::new("mreplay-j", 1);
    cluster.start_master();
    replay_jobs(&cluster, "debug-delay");
    replay_jobs(&cluster, "submit-many-jobs");
    // gnt-job info of a delay with two iterations (recorded as job 22):
    // submitted here with the recorded opcode, then queried.
    let op = json!({"OP_ID": "OP_TEST_DELAY", "debug_level": 0, "dry_run": false,
                    "duration": 0.05, "on_master": true, "on_nodes": [], "repeat": 2});
    let mut c = cluster.client();
    let id = c.submit_job(vec![op]).unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        c.query_jobs(&[id], &["status"]).unwrap()[0] == Some(vec![json!("success")])
    }));
    let (req, want) = &exchanges("job-info")[0];
    let map: BTreeMap<String, String> = [("22".to_string(), id.to_string())].into();
    let back: BTreeMap<String, String> = [(id.to_string(), "22".to_string())].into();
    let mut s = connect(&cluster);
    let got = map_ids(&exchange(&mut s, &map_ids(req, &map)), &back);
    let mut g: Value = serde_json::from_slice(&got).unwrap();
    let mut w: Value = serde_json::from_slice(want).unwrap();
    blank_times(&mut g);
    blank_times(&mut w);
    assert_eq!(g, w);
}
