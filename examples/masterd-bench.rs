//! Benchmark of a master daemon through LUXI: `OP_TEST_DELAY` jobs
//! (duration 0.001 s, on the master).
//!
//! * many: `--jobs` jobs submitted at once with `SubmitManyJobs`, then
//!   `QueryJobs` polled until every job has finished; jobs/s is
//!   jobs / (time from the submission to the last job finished).
//! * sequential: `--rounds` times submit one job (`SubmitJob`) and follow it
//!   with `WaitForJobChange` until it has finished, as `gnt-debug delay`
//!   does; the submit-to-done latency percentiles.
//! * durable: with `--queue-dir`, every job id acknowledged must have its
//!   file `job-<id>` in that directory when the answer arrives (checked
//!   right after each submission, before the job ran).
//!
//! ```text
//! cargo run --release --example masterd-bench -- --socket PATH \
//!     [--jobs 1000] [--rounds 100] [--queue-dir DIR] [--pid PID] [--luxi3]
//! ```
//!
//! `--luxi3` speaks to Ganeti 3.0's luxid instead (socket
//! /var/run/ganeti/socket/ganeti-query): requests carry version 3000000,
//! arguments are wrapped as 3.0 sends them, job ids are integers, and every
//! opcode carries all of 3.0's `OP_TEST_DELAY` parameters and a `reason`.
//! Prints numbers, and a last line `RESULT key=value ...` for scripts.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ganeti::luxi::{self, Framer, LuxiError};
use serde_json::{json, Value};

const LUXI3_VERSION: u64 = 3_000_000;
const LUXI3_SOCKET: &str = "/var/run/ganeti/socket/ganeti-query";
/// Pause between two `QueryJobs` polls of the many-jobs run.
const POLL_PAUSE: Duration = Duration::from_millis(5);
/// Ids asked per `QueryJobs` call while polling.
const POLL_BATCH: usize = 1000;
/// Give up on a run after this long.
const RUN_TIMEOUT: Duration = Duration::from_secs(3600);

struct Options {
    socket: PathBuf,
    luxi3: bool,
    jobs: usize,
    rounds: usize,
    duration: f64,
    queue_dir: Option<PathBuf>,
    pid: Option<u32>,
}

fn parse_options() -> Result<Options, String> {
    let mut o = getopts::Options::new();
    o.optopt("", "socket", "the master's LUXI socket", "PATH");
    o.optflag("", "luxi3", "speak Ganeti 3.0's LUXI (luxid)");
    o.optopt("", "jobs", "jobs submitted at once (default 1000)", "N");
    o.optopt(
        "",
        "rounds",
        "sequential submit-and-wait rounds (default 100)",
        "N",
    );
    o.optopt(
        "",
        "duration",
        "delay of each job in seconds (default 0.001)",
        "S",
    );
    o.optopt(
        "",
        "queue-dir",
        "job queue directory, to check durability",
        "DIR",
    );
    o.optopt("", "pid", "master daemon pid, for its memory", "PID");
    o.optflag("h", "help", "this help");
    let usage = || o.usage("Usage: masterd-bench --socket PATH [options]");
    let m = o
        .parse(std::env::args().skip(1))
        .map_err(|e| format!("{e}\n{}", usage()))?;
    if m.opt_present("h") {
        return Err(usage());
    }
    let num = |name: &str, default: usize| -> Result<usize, String> {
        m.opt_str(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("--{name}: not a number: {v}"))
            })
            .unwrap_or(Ok(default))
    };
    let luxi3 = m.opt_present("luxi3");
    let socket = m
        .opt_str("socket")
        .map(PathBuf::from)
        .or_else(|| luxi3.then(|| PathBuf::from(LUXI3_SOCKET)))
        .ok_or_else(usage)?;
    Ok(Options {
        socket,
        luxi3,
        jobs: num("jobs", 1000)?,
        rounds: num("rounds", 100)?,
        duration: m
            .opt_str("duration")
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("--duration: not a number: {v}"))
            })
            .unwrap_or(Ok(0.001))?,
        queue_dir: m.opt_str("queue-dir").map(PathBuf::from),
        pid: m
            .opt_str("pid")
            .map(|v| v.parse().map_err(|_| format!("--pid: not a number: {v}")))
            .transpose()?,
    })
}

/// A LUXI connection speaking 2.5's or 3.0's dialect.
struct Conn {
    stream: UnixStream,
    framer: Framer,
    luxi3: bool,
}

impl Conn {
    fn open(path: &Path, luxi3: bool) -> Result<Conn, String> {
        let stream =
            UnixStream::connect(path).map_err(|e| format!("connect {}: {e}", path.display()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(180)))
            .map_err(|e| e.to_string())?;
        Ok(Conn {
            stream,
            framer: Framer::new(luxi::MAX_RESPONSE),
            luxi3,
        })
    }

    fn call(&mut self, method: &str, args: Value) -> Result<Value, String> {
        let version = if self.luxi3 {
            LUXI3_VERSION
        } else {
            luxi::LUXI_VERSION
        };
        let msg = luxi::encode_request(method, &args, Some(version));
        self.stream
            .write_all(&msg)
            .map_err(|e| format!("{method}: {e}"))?;
        let answer = luxi::read_message(&mut self.stream, &mut self.framer)
            .map_err(|e: LuxiError| format!("{method}: {e}"))?;
        let r = luxi::parse_response(&answer).map_err(|e| format!("{method}: {e}"))?;
        if r.success {
            Ok(r.result)
        } else {
            Err(format!("{method} failed: {}", r.result))
        }
    }

    /// A job id as this dialect sends it.
    fn id_arg(&self, id: u64) -> Value {
        if self.luxi3 {
            json!(id)
        } else {
            json!(id.to_string())
        }
    }

    fn op(&self, duration: f64) -> Value {
        if self.luxi3 {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            json!({"OP_ID": "OP_TEST_DELAY", "duration": duration, "on_master": true,
                   "on_nodes": [], "on_node_uuids": null, "repeat": 0,
                   "interruptible": false, "no_locks": false, "dry_run": false,
                   "debug_level": 0, "priority": 0, "depends": null, "comment": null,
                   "reason": [["gnt:client:masterd-bench", "delay", now]]})
        } else {
            json!({"OP_ID": "OP_TEST_DELAY", "duration": duration, "on_master": true,
                   "on_nodes": [], "repeat": 0, "debug_level": 0, "dry_run": false})
        }
    }

    fn submit_many(&mut self, jobs: Vec<Vec<Value>>) -> Result<Vec<u64>, String> {
        let jobs = Value::Array(jobs.into_iter().map(Value::Array).collect());
        let args = if self.luxi3 { json!([jobs]) } else { jobs };
        let result = self.call("SubmitManyJobs", args)?;
        let pairs = result.as_array().ok_or("SubmitManyJobs: not a list")?;
        pairs
            .iter()
            .map(|p| match (p.get(0), p.get(1)) {
                (Some(Value::Bool(true)), Some(id)) => {
                    luxi::parse_job_id(id).ok_or_else(|| format!("bad job id {id}"))
                }
                _ => Err(format!("submission refused: {p}")),
            })
            .collect()
    }

    fn submit(&mut self, op: Value) -> Result<u64, String> {
        let args = if self.luxi3 {
            json!([[op]])
        } else {
            json!([op])
        };
        let r = self.call("SubmitJob", args)?;
        luxi::parse_job_id(&r).ok_or_else(|| format!("bad job id {r}"))
    }

    fn statuses(&mut self, ids: &[u64]) -> Result<Vec<String>, String> {
        let ids: Vec<Value> = ids.iter().map(|i| self.id_arg(*i)).collect();
        let r = self.call("QueryJobs", json!([ids, ["status"]]))?;
        Ok(r.as_array()
            .ok_or("QueryJobs: not a list")?
            .iter()
            .map(|row| {
                row.get(0)
                    .and_then(Value::as_str)
                    .unwrap_or("lost")
                    .to_string()
            })
            .collect())
    }

    /// Follows a job as `GenericPollJob` does until it has finished.
    fn wait(&mut self, id: u64) -> Result<String, String> {
        let timeout = if self.luxi3 { 60 } else { luxi::WFJC_TIMEOUT };
        let mut prev = Value::Null;
        let mut serial = Value::Null;
        loop {
            let args = json!([self.id_arg(id), ["status"], prev, serial, timeout]);
            let r = self.call("WaitForJobChange", args)?;
            if r.is_null() {
                return Err(format!("job {id} lost"));
            }
            if r == json!(luxi::JOB_NOTCHANGED) {
                continue;
            }
            let info = r.get(0).cloned().unwrap_or(Value::Null);
            let logs = r
                .get(1)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let status = info
                .get(0)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(last) = logs.last().and_then(|l| l.get(0)) {
                serial = last.clone();
            } else if matches!(
                status.as_str(),
                "success" | "error" | "canceled" | "canceling"
            ) {
                return Ok(status);
            }
            prev = info;
        }
    }
}

fn finished(s: &str) -> bool {
    matches!(s, "success" | "error" | "canceled")
}

/// Counts the acknowledged ids whose job file is in the queue directory.
fn durable(dir: Option<&Path>, ids: &[u64]) -> Option<usize> {
    let dir = dir?;
    Some(
        ids.iter()
            .filter(|id| dir.join(format!("job-{id}")).is_file())
            .count(),
    )
}

fn memory(pid: Option<u32>) -> String {
    let Some(pid) = pid else {
        return String::new();
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM") || l.starts_with("Threads"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn run(o: &Options) -> Result<(), String> {
    let mut conn = Conn::open(&o.socket, o.luxi3)?;
    let dialect = if o.luxi3 { "3.0 luxid" } else { "2.5 masterd" };
    println!("target: {} ({dialect})", o.socket.display());
    let mem_before = memory(o.pid);
    let mut result: BTreeMap<&str, String> = BTreeMap::new();

    // Many jobs at once.
    if o.jobs > 0 {
        let jobs: Vec<Vec<Value>> = (0..o.jobs).map(|_| vec![conn.op(o.duration)]).collect();
        let t0 = Instant::now();
        let ids = conn.submit_many(jobs)?;
        let submitted = t0.elapsed();
        let on_disk = durable(o.queue_dir.as_deref(), &ids);
        let mut pending = ids.clone();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        while !pending.is_empty() {
            if t0.elapsed() > RUN_TIMEOUT {
                return Err(format!(
                    "{} jobs not finished after {RUN_TIMEOUT:?}",
                    pending.len()
                ));
            }
            let mut still = Vec::new();
            for chunk in pending.chunks(POLL_BATCH) {
                for (id, s) in chunk.iter().zip(conn.statuses(chunk)?) {
                    if finished(&s) {
                        *counts.entry(s).or_default() += 1;
                    } else {
                        still.push(*id);
                    }
                }
            }
            pending = still;
            if !pending.is_empty() {
                std::thread::sleep(POLL_PAUSE);
            }
        }
        let all = t0.elapsed().as_secs_f64();
        let rate = o.jobs as f64 / all;
        println!(
            "many: {} jobs (SubmitManyJobs) submitted in {:.3} s, all finished after {all:.3} s: \
             {rate:.1} jobs/s; statuses {counts:?}",
            o.jobs,
            submitted.as_secs_f64()
        );
        if let Some(n) = on_disk {
            println!(
                "many: {n}/{} job files on disk when the submission was answered",
                ids.len()
            );
            result.insert("many_durable", format!("{n}/{}", ids.len()));
        }
        result.insert("jobs_per_s", format!("{rate:.2}"));
        result.insert("many_s", format!("{all:.4}"));
        result.insert(
            "many_success",
            counts.get("success").copied().unwrap_or(0).to_string(),
        );
    }

    // Sequential submit-and-wait.
    if o.rounds > 0 {
        let mut lat = Vec::with_capacity(o.rounds);
        let mut durable_count = 0;
        let mut ok = 0;
        for _ in 0..o.rounds {
            let t = Instant::now();
            let id = conn.submit(conn.op(o.duration))?;
            if durable(o.queue_dir.as_deref(), &[id]) == Some(1) {
                durable_count += 1;
            }
            if conn.wait(id)? == "success" {
                ok += 1;
            }
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        let (p50, p90) = (percentile(&lat, 0.5), percentile(&lat, 0.9));
        let mean = lat.iter().sum::<f64>() / lat.len() as f64;
        println!(
            "sequential: {} submit-and-wait rounds ({ok} success): p50 {p50:.2} ms, p90 {p90:.2} ms, \
             mean {mean:.2} ms, max {:.2} ms",
            o.rounds,
            lat.last().copied().unwrap_or(f64::NAN)
        );
        if o.queue_dir.is_some() {
            println!(
                "sequential: {durable_count}/{} job files on disk when the submission was answered",
                o.rounds
            );
            result.insert("seq_durable", format!("{durable_count}/{}", o.rounds));
        }
        result.insert("p50_ms", format!("{p50:.3}"));
        result.insert("p90_ms", format!("{p90:.3}"));
        result.insert("seq_success", ok.to_string());
    }
    if o.pid.is_some() {
        println!("master memory before: {mem_before}");
        println!("master memory after:  {}", memory(o.pid));
    }
    let line: Vec<String> = result.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("RESULT {}", line.join(" "));
    Ok(())
}

fn main() {
    let code = match parse_options().and_then(|o| run(&o)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    };
    std::process::exit(code);
}
