//! Benchmark of a node daemon through the master's RPC client: the
//! `version` procedure, sequential and with concurrent clients, once with a
//! new connection per call (as a 2.5.2 master) and once over kept-alive
//! connections. Prints calls/s and latency percentiles, and with `--pid` the
//! server's locked and resident memory before and after `--mem-calls` calls
//! and the CPU time (ms per call) of the client and of the server.
//!
//!   cargo run --release --example noded-bench -- --url https://127.0.0.1:PORT \
//!       --cert /path/server.pem [--calls N] [--clients 4] [--pid PID]
//!
//! Works against any Ganeti node daemon (it sends POST, which 2.5.2 and
//! 3.x accept). Prints numbers; asserts nothing except that calls succeed.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ganeti::rpc::client::{Client, NodeResult};
use serde_json::{json, Value};

struct Options {
    scheme_tls: bool,
    ip: String,
    port: u16,
    cert: Option<String>,
    calls: usize,
    clients: usize,
    mem_calls: usize,
    pid: Option<u32>,
}

fn usage(opts: &getopts::Options) -> String {
    opts.usage(
        "Usage: noded-bench --url http[s]://IP:PORT [--cert PEM] [--calls N] \
         [--clients N] [--pid PID] [--mem-calls N]",
    )
}

fn parse_options() -> Result<Options, String> {
    let mut o = getopts::Options::new();
    o.optopt("", "url", "node daemon URL, by IP", "URL");
    o.optopt("", "cert", "cluster certificate and key (https)", "PEM");
    o.optopt("", "calls", "calls per measurement (default 1000)", "N");
    o.optopt("", "clients", "concurrent clients (default 4)", "N");
    o.optopt("", "pid", "server pid, for VmLck and VmRSS", "PID");
    o.optopt("", "mem-calls", "calls between the memory readings", "N");
    o.optflag("h", "help", "this help");
    let m = o
        .parse(std::env::args().skip(1))
        .map_err(|e| format!("{e}\n{}", usage(&o)))?;
    if m.opt_present("h") {
        return Err(usage(&o));
    }
    let url = m.opt_str("url").ok_or_else(|| usage(&o))?;
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("URL must start with http:// or https://: {url}"));
    };
    let addr: std::net::SocketAddr = rest
        .trim_end_matches('/')
        .parse()
        .map_err(|_| format!("URL must be scheme://IP:PORT: {url}"))?;
    let num = |name: &str, default: usize| -> Result<usize, String> {
        m.opt_str(name).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("--{name} needs a number"))
        })
    };
    let cert = m.opt_str("cert");
    if tls && cert.is_none() {
        return Err("https needs --cert".into());
    }
    let pid = match m.opt_str("pid") {
        Some(p) => Some(p.parse().map_err(|_| "--pid needs a number")?),
        None => None,
    };
    let calls = num("calls", 1000)?.max(1);
    Ok(Options {
        scheme_tls: tls,
        ip: addr.ip().to_string(),
        port: addr.port(),
        cert,
        calls,
        clients: num("clients", 4)?.max(1),
        mem_calls: num("mem-calls", 1000)?,
        pid,
    })
}

fn client(o: &Options, keep_alive: bool) -> Result<Client, String> {
    let c = match (&o.cert, o.scheme_tls) {
        (Some(cert), true) => Client::new(Path::new(cert)).map_err(|e| e.to_string())?,
        _ => Client::plain(),
    };
    Ok(c.port(o.port).keep_alive(keep_alive))
}

/// Runs `calls` calls spread over `clients` threads; returns the latencies
/// and the wall time.
fn run(
    c: &Client,
    ip: &str,
    calls: usize,
    clients: usize,
) -> Result<(Vec<Duration>, Duration), String> {
    let next = AtomicUsize::new(0);
    let args = json!([]);
    let t0 = Instant::now();
    let per_thread: Vec<Result<Vec<Duration>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let mut lat = Vec::new();
                    while next.fetch_add(1, Ordering::Relaxed) < calls {
                        let t = Instant::now();
                        match c.call_node(ip, "version", &args) {
                            NodeResult::Ok(Value::Number(_)) => lat.push(t.elapsed()),
                            other => return Err(format!("call failed: {other:?}")),
                        }
                    }
                    Ok(lat)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect()
    });
    let wall = t0.elapsed();
    let mut all = Vec::with_capacity(calls);
    for r in per_thread {
        all.extend(r?);
    }
    all.sort();
    Ok((all, wall))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[i - 1]
}

/// VmLck and VmRSS of a process in kB.
fn memory(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmLck:")?, field("VmRSS:")?))
}

/// CPU time in ms of a process (`self` or a pid), with its reaped children
/// (Debian's noded works in forked children). /proc counts in 1/100 s.
fn cpu_ms(pid: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<u64> = s
        .rsplit(')')
        .next()?
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|v| v.parse().ok())
        .collect();
    (f.len() == 4).then(|| f.iter().sum::<u64>() as f64 * 10.0)
}

fn main_inner() -> Result<(), String> {
    let o = parse_options()?;
    let scheme = if o.scheme_tls { "https" } else { "http" };
    println!(
        "target {scheme}://{}:{}  procedure version  calls {} per run  clients {}",
        o.ip, o.port, o.calls, o.clients
    );
    // Warm up and check the target answers at all.
    let probe = client(&o, false)?.call_node(&o.ip, "version", &json!([]));
    match probe {
        NodeResult::Ok(v) => println!("version {v}"),
        other => return Err(format!("the node daemon does not answer: {other:?}")),
    }

    let mem_before = o.pid.and_then(memory);
    if o.mem_calls > 0 {
        if let Some(pid) = o.pid {
            run(&client(&o, false)?, &o.ip, o.mem_calls, o.clients)?;
            let after = memory(pid);
            if let (Some((l0, r0)), Some((l1, r1))) = (mem_before, after) {
                println!(
                    "memory pid {pid}: before VmLck {l0} kB VmRSS {r0} kB; after {} calls \
                     VmLck {l1} kB VmRSS {r1} kB",
                    o.mem_calls
                );
            }
        }
    }

    println!(
        "{:<10} {:>7} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8}",
        "mode",
        "clients",
        "calls",
        "calls/s",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
        "conns",
        "cli_cpu",
        "srv_cpu"
    );
    let server = o.pid.map(|p| p.to_string());
    let per_call = |a: Option<f64>, b: Option<f64>, n: usize| match (a, b) {
        (Some(a), Some(b)) => format!("{:.3}", (b - a) / n as f64),
        _ => "-".into(),
    };
    for keep_alive in [false, true] {
        for clients in [1, o.clients] {
            let c = client(&o, keep_alive)?;
            let cli0 = cpu_ms("self");
            let srv0 = server.as_deref().and_then(cpu_ms);
            let (lat, wall) = run(&c, &o.ip, o.calls, clients)?;
            let cli = per_call(cli0, cpu_ms("self"), lat.len());
            let srv = per_call(srv0, server.as_deref().and_then(cpu_ms), lat.len());
            println!(
                "{:<10} {:>7} {:>6} {:>9.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>6} {:>8} {:>8}",
                if keep_alive { "keep-alive" } else { "new-conn" },
                clients,
                lat.len(),
                lat.len() as f64 / wall.as_secs_f64(),
                ms(pct(&lat, 0.50)),
                ms(pct(&lat, 0.90)),
                ms(pct(&lat, 0.99)),
                ms(pct(&lat, 1.0)),
                c.stats().opened,
                cli,
                srv
            );
        }
    }
    if let Some((l, r)) = o.pid.and_then(memory) {
        println!("memory at the end: VmLck {l} kB VmRSS {r} kB");
    }
    Ok(())
}

fn main() {
    if let Err(e) = main_inner() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
