//! The node RPC client of the master daemon: calls one procedure on many
//! node daemons in parallel and types each node's answer.
//!
//! Supported: `POST /<procedure>` with a JSON body (2.5.2 node daemons
//! accept PUT and POST, 2.7 and later only POST) over HTTPS with the
//! cluster certificate as client identity and as the only trusted server
//! certificate (no host-name check: nodes are addressed by IP, as 2.5.2's
//! curl client with `SSL_VERIFYHOST=0`), or over plain HTTP for `--no-ssl`
//! daemons. HTTP/1.0 and 1.1 responses delimited by `Content-Length` (or by
//! the server closing), interim 1xx responses (skipped), persistent
//! connections reused per node when the server keeps them open.
//! Not supported: chunked transfer encoding, redirects, proxies, request
//! compression (argument blobs are encoded by the caller, see `blob`).
//!
//! Limits: connect timeout [`CONNECT_TIMEOUT`]; one deadline per call from
//! 2.5.2's per-procedure table ([`call_timeout`]) covering connect, send and
//! receive, like curl's `TIMEOUT`; response head [`MAX_RESPONSE_HEAD`] and
//! body [`MAX_RESPONSE_BODY`]; at most [`MAX_PARALLEL`] nodes called at once.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::constants::{DEFAULT_NODED_PORT, RELEASE_VERSION};
use crate::sys;

/// Time allowed to establish a TCP connection (2.5.2 `_RPC_CONNECT_TIMEOUT`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest response head (status line and header lines with their CRLFs).
pub const MAX_RESPONSE_HEAD: usize = 8192;
/// Most header fields in one response.
pub const MAX_RESPONSE_HEADERS: usize = 64;
/// Default largest response body. The biggest 2.5.2 answers (node_verify,
/// hooks and iallocator output, os_diagnose) stay far below this.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024 * 1024;
/// Interim (1xx) responses skipped before a final one.
const MAX_INTERIM_RESPONSES: usize = 4;
/// Default number of nodes called at the same time by [`Client::call`].
pub const MAX_PARALLEL: usize = 16;
/// Stack of the worker threads of [`Client::call`].
const WORKER_STACK: usize = 256 * 1024;
/// A pooled connection idle longer than this is closed rather than reused
/// (our node daemon drops idle connections after 10 s).
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept per node.
pub const MAX_IDLE_PER_NODE: usize = 8;
/// Longest procedure name accepted (the longest in 2.5.2 has 30 bytes).
const MAX_PROCEDURE_NAME: usize = 64;

/// 2.5.2's read-timeout classes (`rpc.py` `_TMO_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutClass {
    Urgent,
    Fast,
    Normal,
    Slow,
    FourHours,
    OneDay,
}

impl TimeoutClass {
    pub fn duration(self) -> Duration {
        Duration::from_secs(match self {
            TimeoutClass::Urgent => 60,
            TimeoutClass::Fast => 5 * 60,
            TimeoutClass::Normal => 15 * 60,
            TimeoutClass::Slow => 3600,
            TimeoutClass::FourHours => 4 * 3600,
            TimeoutClass::OneDay => 86400,
        })
    }
}

/// The timeout class of a 2.5.2 procedure; `None` for `test_delay` (its
/// timeout depends on its argument) and for names 2.5.2 does not have.
pub fn timeout_class(procedure: &str) -> Option<TimeoutClass> {
    use TimeoutClass::*;
    Some(match procedure {
        "bdev_sizes" | "lv_list" | "vg_list" | "bridges_exist" | "instance_info"
        | "all_instances_info" | "instance_list" | "node_info" | "master_info" | "version"
        | "drbd_helper" | "jobqueue_update" | "jobqueue_rename" => Urgent,
        "node_tcp_ping"
        | "node_has_ip_address"
        | "node_start_master"
        | "node_stop_master"
        | "os_diagnose"
        | "os_get"
        | "os_validate"
        | "export_info"
        | "export_list"
        | "export_remove"
        | "node_volumes"
        | "node_demote_from_mc"
        | "file_storage_dir_create"
        | "file_storage_dir_remove"
        | "file_storage_dir_rename"
        | "impexp_status" => Fast,
        "storage_list"
        | "storage_modify"
        | "storage_execute"
        | "instance_start"
        | "instance_shutdown"
        | "migration_info"
        | "accept_instance"
        | "finalize_migration"
        | "instance_reboot"
        | "instance_migratable"
        | "etc_hosts_modify"
        | "node_verify"
        | "blockdev_create"
        | "blockdev_remove"
        | "blockdev_rename"
        | "blockdev_pause_resume_sync"
        | "blockdev_assemble"
        | "blockdev_shutdown"
        | "blockdev_addchildren"
        | "blockdev_removechildren"
        | "blockdev_getmirrorstatus"
        | "blockdev_getmirrorstatus_multi"
        | "blockdev_find"
        | "blockdev_close"
        | "blockdev_getsize"
        | "blockdev_grow"
        | "blockdev_snapshot"
        | "drbd_disconnect_net"
        | "drbd_attach_net"
        | "upload_file"
        | "write_ssconf_files"
        | "run_oob"
        | "hooks_runner"
        | "iallocator_runner"
        | "finalize_export"
        | "node_leave_cluster"
        | "node_powercycle"
        | "jobqueue_purge"
        | "hypervisor_validate_params"
        | "x509_cert_create"
        | "x509_cert_remove"
        | "import_start"
        | "export_start"
        | "impexp_abort"
        | "impexp_cleanup" => Normal,
        "instance_migrate" | "instance_run_rename" | "blockdev_wipe" | "drbd_wait_sync" => Slow,
        "instance_os_add" | "blockdev_export" => OneDay,
        _ => return None,
    })
}

/// The whole-call timeout of one call: the procedure's class, `test_delay`'s
/// `int(duration + 5)` seconds, and [`TimeoutClass::Normal`] for names 2.5.2
/// does not know.
pub fn call_timeout(procedure: &str, args: &Value) -> Duration {
    if procedure == "test_delay" {
        let delay = args.get(0).and_then(Value::as_f64).unwrap_or(0.0);
        // int() truncates; cap at a day so a silly argument cannot overflow.
        let secs = (delay + 5.0).clamp(0.0, 86400.0).trunc();
        return Duration::from_secs(secs as u64);
    }
    timeout_class(procedure)
        .unwrap_or(TimeoutClass::Normal)
        .duration()
}

/// The node daemon port for clients: `GANETI_NODED_PORT`, else the services
/// entry `ganeti-noded/tcp`, else 1811. Call before spawning threads
/// (`getservbyname` is not thread-safe).
pub fn noded_port() -> u16 {
    if let Ok(v) = std::env::var("GANETI_NODED_PORT") {
        match v.trim().parse::<u16>() {
            Ok(p) if p != 0 => return p,
            _ => log::warn!("Ignoring invalid GANETI_NODED_PORT '{v}'"),
        }
    }
    sys::service_port("ganeti-noded").unwrap_or(DEFAULT_NODED_PORT)
}

/// Why a client could not be set up.
#[derive(Debug)]
pub enum ClientError {
    Read(PathBuf, io::Error),
    Certificate(PathBuf, String),
    Key(PathBuf, String),
    Tls(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Read(p, e) => write!(f, "Cannot read {}: {e}", p.display()),
            ClientError::Certificate(p, e) => {
                write!(f, "Cannot load the certificate from {}: {e}", p.display())
            }
            ClientError::Key(p, e) => write!(f, "Cannot load the key from {}: {e}", p.display()),
            ClientError::Tls(e) => write!(f, "Cannot set up the TLS client: {e}"),
        }
    }
}

/// Why a response could not be read.
#[derive(Debug)]
pub enum ResponseError {
    /// The connection ended (or failed) before the first byte of a response:
    /// the request may be retried on a fresh connection when the old one was
    /// an idle pooled one.
    NothingReceived(Option<io::Error>),
    Io(io::Error),
    Truncated,
    BadStatusLine(String),
    BadHeader(String),
    HeadTooLarge,
    BodyTooLarge {
        limit: usize,
        length: Option<usize>,
    },
    Unsupported(String),
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseError::NothingReceived(None) => {
                write!(f, "connection closed without a response")
            }
            ResponseError::NothingReceived(Some(e)) => {
                write!(f, "connection lost before a response: {e}")
            }
            ResponseError::Io(e) if is_timeout(e) => write!(f, "timed out reading the response"),
            ResponseError::Io(e) => write!(f, "error reading the response: {e}"),
            ResponseError::Truncated => write!(f, "connection closed in the middle of a response"),
            ResponseError::BadStatusLine(l) => write!(f, "bad HTTP status line '{l}'"),
            ResponseError::BadHeader(l) => write!(f, "bad HTTP header line '{l}'"),
            ResponseError::HeadTooLarge => write!(
                f,
                "response head longer than {MAX_RESPONSE_HEAD} bytes or \
                 {MAX_RESPONSE_HEADERS} fields"
            ),
            ResponseError::BodyTooLarge {
                limit,
                length: Some(n),
            } => write!(f, "response body of {n} bytes is over the limit of {limit}"),
            ResponseError::BodyTooLarge {
                limit,
                length: None,
            } => write!(f, "response body is over the limit of {limit} bytes"),
            ResponseError::Unsupported(m) => write!(f, "unsupported response: {m}"),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A final HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub body: Vec<u8>,
    /// The server lets the connection be used for another request.
    pub keep_alive: bool,
}

/// Reads one line ending in LF of at most `limit` bytes, without the line
/// end; `Ok(None)` at EOF before any byte.
fn read_line(r: &mut impl BufRead, limit: usize) -> Result<Option<String>, ResponseError> {
    let mut line = Vec::new();
    let n = r
        .take(limit as u64)
        .read_until(b'\n', &mut line)
        .map_err(ResponseError::Io)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if n >= limit {
            ResponseError::HeadTooLarge
        } else {
            ResponseError::Truncated
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|e| ResponseError::BadHeader(String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Parses `HTTP/1.x NNN reason`; returns (is HTTP/1.1, status, reason).
fn parse_status_line(line: &str) -> Result<(bool, u16, String), ResponseError> {
    let bad = || ResponseError::BadStatusLine(line.chars().take(200).collect());
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().ok_or_else(bad)?;
    let code = parts.next().ok_or_else(bad)?;
    let reason = parts.next().unwrap_or("").to_string();
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(bad()),
    };
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let status: u16 = code.parse().map_err(|_| bad())?;
    if !(100..=599).contains(&status) {
        return Err(bad());
    }
    Ok((http11, status, reason))
}

/// Reads one final response with a body of at most `max_body` bytes.
pub fn read_response(r: &mut impl BufRead, max_body: usize) -> Result<Response, ResponseError> {
    // Anything before the first byte means the server never answered.
    match r.fill_buf() {
        Ok([]) => return Err(ResponseError::NothingReceived(None)),
        Ok(_) => {}
        Err(e) if is_timeout(&e) => return Err(ResponseError::Io(e)),
        Err(e) => return Err(ResponseError::NothingReceived(Some(e))),
    }
    for _ in 0..=MAX_INTERIM_RESPONSES {
        let line = read_line(r, MAX_RESPONSE_HEAD)?.ok_or(ResponseError::Truncated)?;
        let (http11, status, reason) = parse_status_line(&line)?;
        // Head bytes so far, line ends counted as CRLF.
        let mut used = line.len() + 2;
        let mut content_length: Option<usize> = None;
        let mut close = !http11;
        let mut fields = 0;
        loop {
            if used >= MAX_RESPONSE_HEAD {
                return Err(ResponseError::HeadTooLarge);
            }
            let line = read_line(r, MAX_RESPONSE_HEAD - used)?.ok_or(ResponseError::Truncated)?;
            used += line.len() + 2;
            if line.is_empty() {
                break;
            }
            fields += 1;
            if fields > MAX_RESPONSE_HEADERS {
                return Err(ResponseError::HeadTooLarge);
            }
            let (name, value) = line
                .split_once(':')
                .filter(|(n, _)| !n.is_empty() && !n.contains([' ', '\t']))
                .ok_or_else(|| ResponseError::BadHeader(line.chars().take(200).collect()))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ResponseError::BadHeader(line.clone()));
                }
                let n = value.parse().unwrap_or(usize::MAX);
                if content_length.is_some_and(|old| old != n) {
                    return Err(ResponseError::BadHeader(format!(
                        "conflicting Content-Length headers ({line})"
                    )));
                }
                content_length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(ResponseError::Unsupported(format!(
                    "Transfer-Encoding {value}"
                )));
            } else if name.eq_ignore_ascii_case("connection") {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") && !http11 {
                        close = false;
                    }
                }
            }
        }
        if (100..200).contains(&status) {
            continue;
        }
        let body = match content_length {
            // 204 and 304 never have a body.
            _ if status == 204 || status == 304 => Vec::new(),
            Some(n) if n > max_body => {
                return Err(ResponseError::BodyTooLarge {
                    limit: max_body,
                    length: Some(n),
                })
            }
            Some(n) => {
                let mut body = Vec::with_capacity(n.min(64 * 1024));
                let got = r
                    .take(n as u64)
                    .read_to_end(&mut body)
                    .map_err(ResponseError::Io)?;
                if got < n {
                    return Err(ResponseError::Truncated);
                }
                body
            }
            None => {
                // Delimited by the server closing the connection.
                close = true;
                let mut body = Vec::new();
                r.take(max_body as u64 + 1)
                    .read_to_end(&mut body)
                    .map_err(ResponseError::Io)?;
                if body.len() > max_body {
                    return Err(ResponseError::BodyTooLarge {
                        limit: max_body,
                        length: None,
                    });
                }
                body
            }
        };
        return Ok(Response {
            status,
            reason,
            body,
            keep_alive: !close,
        });
    }
    Err(ResponseError::Unsupported(format!(
        "more than {MAX_INTERIM_RESPONSES} interim responses"
    )))
}

/// Splits an answer body `[success, payload]` into the payload or the
/// node's failure message; `Err` for a body that is not such a pair.
pub fn parse_envelope(body: &[u8]) -> Result<Result<Value, String>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("answer is not valid JSON: {e}"))?;
    let mut pair = match v {
        Value::Array(a) if a.len() == 2 => a,
        _ => return Err("answer is not a [success, payload] pair".into()),
    };
    let payload = pair.pop().unwrap_or(Value::Null);
    match pair.pop() {
        Some(Value::Bool(true)) => Ok(Ok(payload)),
        Some(Value::Bool(false)) => Ok(Err(match payload {
            Value::String(s) => s,
            other => other.to_string(),
        })),
        _ => Err("answer's success flag is not a boolean".into()),
    }
}

/// A node as the master knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// The node's primary IP address (never its name).
    pub address: String,
    /// Offline nodes are not contacted.
    pub offline: bool,
}

/// One node's outcome of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeResult {
    /// `[true, payload]`.
    Ok(Value),
    /// `[false, message]`: the procedure failed on the node.
    Failed(String),
    /// The node is marked offline and was not contacted.
    Offline,
    /// No answer: connection, TLS, HTTP status, timeout or a malformed body.
    Error(String),
}

impl NodeResult {
    /// The failure text, as 2.5.2's `RpcResult.fail_msg`; `None` on success.
    pub fn fail_msg(&self) -> Option<&str> {
        match self {
            NodeResult::Ok(_) => None,
            NodeResult::Failed(m) | NodeResult::Error(m) => Some(m),
            NodeResult::Offline => Some("Node is marked offline"),
        }
    }
}

/// Why a call to one node got no usable answer.
#[derive(Debug)]
pub enum CallError {
    BadAddress(String),
    BadProcedure(String),
    Connect(SocketAddr, io::Error),
    Tls(SocketAddr, String),
    Send(SocketAddr, io::Error),
    Receive(SocketAddr, ResponseError),
    Status {
        addr: SocketAddr,
        status: u16,
        reason: String,
        body: String,
    },
    Answer(SocketAddr, String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::BadAddress(a) => write!(f, "Invalid node address '{a}'"),
            CallError::BadProcedure(p) => write!(f, "Invalid procedure name '{p}'"),
            CallError::Connect(a, e) if is_timeout(e) => {
                write!(f, "Timeout connecting to {a}")
            }
            CallError::Connect(a, e) => write!(f, "Error connecting to {a}: {e}"),
            CallError::Tls(a, e) => write!(f, "TLS handshake with {a} failed: {e}"),
            CallError::Send(a, e) if is_timeout(e) => write!(f, "Timeout sending to {a}"),
            CallError::Send(a, e) => write!(f, "Error sending to {a}: {e}"),
            CallError::Receive(a, e) => write!(f, "Error in the answer from {a}: {e}"),
            CallError::Status {
                addr,
                status,
                reason,
                body,
            } => write!(f, "Error {status} {reason} from {addr}: {body}"),
            CallError::Answer(a, e) => write!(f, "Invalid answer from {a}: {e}"),
        }
    }
}

/// How far past the deadline a blocking read or write may wait: socket
/// timeouts are relative, so they are set again only once they have drifted
/// this much (saving two system calls per TLS record).
const TIMEOUT_SLACK: Duration = Duration::from_millis(50);

/// A TCP stream whose reads and writes share one deadline.
#[derive(Debug)]
struct Tcp {
    stream: TcpStream,
    deadline: Instant,
    /// When the read and write timeouts were last set to the time left.
    read_set: Option<Instant>,
    write_set: Option<Instant>,
}

impl Tcp {
    fn new(stream: TcpStream, deadline: Instant) -> Tcp {
        Tcp {
            stream,
            deadline,
            read_set: None,
            write_set: None,
        }
    }

    fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.read_set = None;
        self.write_set = None;
    }

    /// The time left, after bringing the socket timeout in line with it
    /// when it has drifted by more than [`TIMEOUT_SLACK`].
    fn arm(&mut self, write: bool) -> io::Result<()> {
        let now = Instant::now();
        let left = self.deadline.saturating_duration_since(now);
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "call timed out"));
        }
        let set = if write {
            &mut self.write_set
        } else {
            &mut self.read_set
        };
        if set.map_or(true, |t| now.duration_since(t) > TIMEOUT_SLACK) {
            if write {
                self.stream.set_write_timeout(Some(left))?;
            } else {
                self.stream.set_read_timeout(Some(left))?;
            }
            *set = Some(now);
        }
        Ok(())
    }
}

impl Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm(false)?;
        self.stream.read(buf)
    }
}

impl Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm(true)?;
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

enum Stream {
    Plain(Tcp),
    Tls(Box<native_tls::TlsStream<Tcp>>),
}

impl Stream {
    fn tcp(&self) -> &Tcp {
        match self {
            Stream::Plain(t) => t,
            Stream::Tls(s) => s.get_ref(),
        }
    }
    fn tcp_mut(&mut self) -> &mut Tcp {
        match self {
            Stream::Plain(t) => t,
            Stream::Tls(s) => s.get_mut(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(t) => t.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(t) => t.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(t) => t.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// An open connection to one node.
struct Conn {
    reader: BufReader<Stream>,
    idle_since: Instant,
}

impl Conn {
    /// Whether an idle connection still looks usable: nothing buffered and
    /// the peer has neither closed it nor sent anything (e.g. close_notify).
    fn looks_alive(&self) -> bool {
        if !self.reader.buffer().is_empty() || self.idle_since.elapsed() > POOL_IDLE_TIMEOUT {
            return false;
        }
        if let Stream::Tls(s) = self.reader.get_ref() {
            if s.buffered_read_size().map_or(true, |n| n > 0) {
                return false;
            }
        }
        let tcp = &self.reader.get_ref().tcp().stream;
        if tcp.set_nonblocking(true).is_err() {
            return false;
        }
        let mut b = [0u8; 1];
        let alive = matches!(tcp.peek(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        alive && tcp.set_nonblocking(false).is_ok()
    }

    /// Closes politely: a TLS close_notify, bounded by a short deadline.
    fn close(mut self) {
        let stream = self.reader.get_mut();
        stream
            .tcp_mut()
            .set_deadline(Instant::now() + Duration::from_millis(100));
        if let Stream::Tls(s) = stream {
            let _ = s.shutdown();
        }
    }
}

/// Counters, for tests and the benchmark.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Connections established (TCP, and TLS when used).
    pub opened: u64,
    /// Calls sent on a pooled connection.
    pub reused: u64,
    /// Calls retried on a fresh connection after a pooled one was found
    /// closed by the server.
    pub retried: u64,
}

#[derive(Default)]
struct Counters {
    opened: AtomicU64,
    reused: AtomicU64,
    retried: AtomicU64,
}

/// The node RPC client. Shareable between threads.
pub struct Client {
    tls: Option<native_tls::TlsConnector>,
    port: u16,
    keep_alive: bool,
    max_body: usize,
    parallel: usize,
    pool: Mutex<HashMap<SocketAddr, Vec<Conn>>>,
    counters: Counters,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("tls", &self.tls.is_some())
            .field("port", &self.port)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

/// Splits a PEM holding a key and a certificate (Ganeti's `server.pem`) into
/// the certificate PEM and the key as PKCS#8 PEM (which native-tls needs;
/// 2.5.2 writes a traditional RSA key).
fn split_identity(path: &Path, pem: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ClientError> {
    let cert = openssl::x509::X509::from_pem(pem)
        .and_then(|c| c.to_pem())
        .map_err(|e| ClientError::Certificate(path.into(), e.to_string()))?;
    let key = openssl::pkey::PKey::private_key_from_pem(pem)
        .and_then(|k| k.private_key_to_pem_pkcs8())
        .map_err(|e| ClientError::Key(path.into(), e.to_string()))?;
    Ok((cert, key))
}

impl Client {
    fn with_tls(tls: Option<native_tls::TlsConnector>) -> Client {
        Client {
            tls,
            port: DEFAULT_NODED_PORT,
            keep_alive: true,
            max_body: MAX_RESPONSE_BODY,
            parallel: MAX_PARALLEL,
            pool: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        }
    }

    /// An HTTPS client from the cluster certificate file (key and
    /// certificate in one PEM, usually `server.pem`): it presents that
    /// identity and accepts only servers presenting a certificate issued by
    /// it (in practice, the same certificate), whatever their address.
    pub fn new(cert_path: &Path) -> Result<Client, ClientError> {
        let pem = std::fs::read(cert_path).map_err(|e| ClientError::Read(cert_path.into(), e))?;
        Client::from_pem(cert_path, &pem)
    }

    /// As [`Client::new`], from the file's contents (`path` names it in
    /// messages).
    pub fn from_pem(path: &Path, pem: &[u8]) -> Result<Client, ClientError> {
        let (cert_pem, key_pem) = split_identity(path, pem)?;
        let tls_err = |e: native_tls::Error| ClientError::Tls(e.to_string());
        let identity = native_tls::Identity::from_pkcs8(&cert_pem, &key_pem).map_err(tls_err)?;
        let root = native_tls::Certificate::from_pem(&cert_pem).map_err(tls_err)?;
        let connector = native_tls::TlsConnector::builder()
            .identity(identity)
            .disable_built_in_roots(true)
            .add_root_certificate(root)
            .danger_accept_invalid_hostnames(true)
            .use_sni(false)
            .min_protocol_version(Some(native_tls::Protocol::Tlsv12))
            .build()
            .map_err(tls_err)?;
        Ok(Client::with_tls(Some(connector)))
    }

    /// A plain-HTTP client, for node daemons run with `--no-ssl`.
    pub fn plain() -> Client {
        Client::with_tls(None)
    }

    /// Sets the node daemon port (default 1811; see [`noded_port`]).
    pub fn port(mut self, port: u16) -> Client {
        self.port = port;
        self
    }

    /// Keeps connections open between calls to the same node (default on).
    /// Off, every call uses a new connection, closed after the answer, as a
    /// 2.5.2 master does.
    pub fn keep_alive(mut self, on: bool) -> Client {
        self.keep_alive = on;
        self
    }

    /// Sets the largest accepted response body.
    pub fn max_body(mut self, limit: usize) -> Client {
        self.max_body = limit;
        self
    }

    /// Sets how many nodes [`Client::call`] contacts at once (at least 1).
    pub fn parallel(mut self, n: usize) -> Client {
        self.parallel = n.max(1);
        self
    }

    pub fn stats(&self) -> Stats {
        Stats {
            opened: self.counters.opened.load(Ordering::Relaxed),
            reused: self.counters.reused.load(Ordering::Relaxed),
            retried: self.counters.retried.load(Ordering::Relaxed),
        }
    }

    /// Calls `procedure` on every node, at most [`Client::parallel`] at a
    /// time, and returns each node's result in the order of `nodes`.
    /// Offline nodes are not contacted.
    pub fn call(&self, nodes: &[Node], procedure: &str, args: &Value) -> Vec<(String, NodeResult)> {
        let body = super::dump_json(args);
        let timeout = call_timeout(procedure, args);
        let todo: Vec<usize> = (0..nodes.len()).filter(|&i| !nodes[i].offline).collect();
        let slots: Vec<Mutex<Option<NodeResult>>> =
            nodes.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let work = || loop {
            let k = next.fetch_add(1, Ordering::SeqCst);
            let Some(&i) = todo.get(k) else { break };
            let r = self.call_body(&nodes[i].address, procedure, &body, timeout);
            *slots[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
        };
        let workers = todo.len().min(self.parallel);
        std::thread::scope(|s| {
            // The calling thread is one of the workers; should a spawn fail,
            // the others (or it alone) do the remaining work.
            for n in 1..workers {
                let spawned = std::thread::Builder::new()
                    .name(format!("rpc-{n}"))
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(s, work);
                if let Err(e) = spawned {
                    log::warn!("Cannot start an RPC worker thread: {e}");
                    break;
                }
            }
            work();
        });
        nodes
            .iter()
            .zip(slots)
            .map(|(node, slot)| {
                let r = slot.into_inner().unwrap_or_else(PoisonError::into_inner);
                (node.name.clone(), r.unwrap_or(NodeResult::Offline))
            })
            .collect()
    }

    /// Calls `procedure` on one node (by IP address).
    pub fn call_node(&self, address: &str, procedure: &str, args: &Value) -> NodeResult {
        let body = super::dump_json(args);
        self.call_body(address, procedure, &body, call_timeout(procedure, args))
    }

    fn call_body(
        &self,
        address: &str,
        procedure: &str,
        body: &[u8],
        timeout: Duration,
    ) -> NodeResult {
        let r = self
            .request(address, procedure, body, timeout)
            .and_then(|(addr, resp)| {
                parse_envelope(&resp.body).map_err(|e| CallError::Answer(addr, e))
            });
        match r {
            Ok(Ok(v)) => NodeResult::Ok(v),
            Ok(Err(m)) => NodeResult::Failed(m),
            Err(e) => {
                log::debug!("RPC {procedure} to {address}: {e}");
                NodeResult::Error(e.to_string())
            }
        }
    }

    /// Sends one request and returns the 200 response.
    pub fn request(
        &self,
        address: &str,
        procedure: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<(SocketAddr, Response), CallError> {
        let ip: IpAddr = address
            .parse()
            .map_err(|_| CallError::BadAddress(address.chars().take(100).collect()))?;
        if procedure.is_empty()
            || procedure.len() > MAX_PROCEDURE_NAME
            || !procedure
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(CallError::BadProcedure(
                procedure.chars().take(100).collect(),
            ));
        }
        let addr = SocketAddr::new(ip, self.port);
        let deadline = Instant::now() + timeout;
        let request = Client::request_bytes(addr, procedure, body);
        let mut retried = false;
        loop {
            let pooled = if self.keep_alive {
                self.take_idle(addr)
            } else {
                None
            };
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(c) => {
                    self.counters.reused.fetch_add(1, Ordering::Relaxed);
                    c
                }
                None => self.connect(addr, deadline)?,
            };
            conn.reader.get_mut().tcp_mut().set_deadline(deadline);
            let sent = {
                let s = conn.reader.get_mut();
                s.write_all(&request).and_then(|()| s.flush())
            };
            let result = match sent {
                Ok(()) => read_response(&mut conn.reader, self.max_body),
                Err(e) if reused && !retried && !is_timeout(&e) => {
                    Err(ResponseError::NothingReceived(Some(e)))
                }
                Err(e) => return Err(CallError::Send(addr, e)),
            };
            match result {
                Ok(resp) => {
                    if resp.status != 200 {
                        conn.close();
                        let text = String::from_utf8_lossy(&resp.body);
                        return Err(CallError::Status {
                            addr,
                            status: resp.status,
                            reason: resp.reason,
                            body: text.trim().chars().take(500).collect(),
                        });
                    }
                    if resp.keep_alive && self.keep_alive {
                        self.put_idle(addr, conn);
                    } else {
                        conn.close();
                    }
                    return Ok((addr, resp));
                }
                Err(ResponseError::NothingReceived(_)) if reused && !retried => {
                    // The server closed the idle connection: the request was
                    // not processed, so it is safe to send it again, once.
                    retried = true;
                    self.counters.retried.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(CallError::Receive(addr, e)),
            }
        }
    }

    /// The request as libcurl sends it for a 2.5.2 master. No `Connection`
    /// header: without keep-alive we close after the answer, as 2.5.2's
    /// master does (and Ganeti 3.0's noded is twice as slow when asked to
    /// close).
    fn request_bytes(addr: SocketAddr, procedure: &str, body: &[u8]) -> Vec<u8> {
        let mut req = format!(
            "POST /{procedure} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: Ganeti {RELEASE_VERSION}\r\n\
             Accept: */*\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len(),
        )
        .into_bytes();
        req.extend_from_slice(body);
        req
    }

    fn connect(&self, addr: SocketAddr, deadline: Instant) -> Result<Conn, CallError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let limit = left.min(CONNECT_TIMEOUT);
        if limit.is_zero() {
            return Err(CallError::Connect(
                addr,
                io::Error::new(io::ErrorKind::TimedOut, "no time left"),
            ));
        }
        let stream =
            TcpStream::connect_timeout(&addr, limit).map_err(|e| CallError::Connect(addr, e))?;
        let _ = stream.set_nodelay(true);
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
        let tcp = Tcp::new(stream, deadline);
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some(connector) => {
                let host = addr.ip().to_string();
                let tls = connector.connect(&host, tcp).map_err(|e| match e {
                    native_tls::HandshakeError::Failure(e) => CallError::Tls(addr, e.to_string()),
                    native_tls::HandshakeError::WouldBlock(_) => {
                        CallError::Tls(addr, "timed out".into())
                    }
                })?;
                Stream::Tls(Box::new(tls))
            }
        };
        Ok(Conn {
            reader: BufReader::new(stream),
            idle_since: Instant::now(),
        })
    }

    fn take_idle(&self, addr: SocketAddr) -> Option<Conn> {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        let conns = pool.get_mut(&addr)?;
        while let Some(c) = conns.pop() {
            if c.looks_alive() {
                return Some(c);
            }
        }
        None
    }

    fn put_idle(&self, addr: SocketAddr, mut conn: Conn) {
        conn.idle_since = Instant::now();
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        // Also forget expired connections to other nodes (e.g. removed ones).
        pool.retain(|_, conns| {
            conns.retain(|c| c.idle_since.elapsed() <= POOL_IDLE_TIMEOUT);
            !conns.is_empty()
        });
        let conns = pool.entry(addr).or_default();
        if conns.len() < MAX_IDLE_PER_NODE {
            conns.push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(raw: &[u8], max: usize) -> Result<Response, ResponseError> {
        read_response(&mut &raw[..], max)
    }

    #[test]
    fn timeouts_follow_2_5_2() {
        let none = json!([]);
        assert_eq!(call_timeout("version", &none), Duration::from_secs(60));
        assert_eq!(call_timeout("node_verify", &none), Duration::from_secs(900));
        assert_eq!(call_timeout("os_get", &none), Duration::from_secs(300));
        assert_eq!(
            call_timeout("blockdev_wipe", &none),
            Duration::from_secs(3600)
        );
        assert_eq!(
            call_timeout("instance_os_add", &none),
            Duration::from_secs(86400)
        );
        assert_eq!(call_timeout("no_such", &none), Duration::from_secs(900));
        assert_eq!(timeout_class("no_such"), None);
        assert_eq!(
            call_timeout("test_delay", &json!([10.7])),
            Duration::from_secs(15)
        );
        assert_eq!(
            call_timeout("test_delay", &json!([-100])),
            Duration::from_secs(0)
        );
        assert_eq!(
            call_timeout("test_delay", &json!([1e300])),
            Duration::from_secs(86400)
        );
        assert_eq!(
            call_timeout("test_delay", &json!("x")),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn reads_a_2_5_2_answer() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\nConnection: close\r\n\
                    Date: Tue, 10 Jan 2012 12:00:00 GMT\r\nServer: Ganeti 2.5.2\r\n\r\n\
                    [true, 2050000]\n";
        let r = parse(raw, 100).unwrap();
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        assert!(!r.keep_alive);
        assert_eq!(parse_envelope(&r.body).unwrap(), Ok(json!(2050000)));
    }

    #[test]
    fn keep_alive_rules() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 10).unwrap();
        assert!(r.keep_alive);
        let r = parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 10).unwrap();
        assert!(!r.keep_alive);
        let r = parse(
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
            10,
        )
        .unwrap();
        assert!(r.keep_alive);
        // Without Content-Length the body runs to the end of the connection.
        let r = parse(b"HTTP/1.1 200 OK\r\n\r\n[true, 1]\n", 100).unwrap();
        assert!(!r.keep_alive);
        assert_eq!(r.body, b"[true, 1]\n");
    }

    #[test]
    fn body_limit_and_limit_plus_one() {
        let at = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
        assert_eq!(parse(at, 10).unwrap().body, b"0123456789");
        let over = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n0123456789A";
        assert!(matches!(
            parse(over, 10),
            Err(ResponseError::BodyTooLarge {
                limit: 10,
                length: Some(11)
            })
        ));
        // A huge announced length is refused before reading anything.
        let huge = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert!(matches!(
            parse(huge, 10),
            Err(ResponseError::BodyTooLarge { .. })
        ));
        let eof = b"HTTP/1.1 200 OK\r\n\r\n0123456789A";
        assert!(matches!(
            parse(eof, 10),
            Err(ResponseError::BodyTooLarge { length: None, .. })
        ));
        assert_eq!(
            parse(&eof[..eof.len() - 1], 10).unwrap().body,
            b"0123456789"
        );
    }

    #[test]
    fn head_limit_and_limit_plus_one() {
        let build = |n: usize| {
            let filler = "a".repeat(n);
            format!("HTTP/1.1 200 OK\r\nX: {filler}\r\nContent-Length: 0\r\n\r\n").into_bytes()
        };
        // The head is 43 bytes plus the filler, CRLFs included.
        let fits = MAX_RESPONSE_HEAD - 43;
        assert_eq!(build(fits).len(), MAX_RESPONSE_HEAD);
        assert!(parse(&build(fits), 10).is_ok());
        assert!(matches!(
            parse(&build(fits + 1), 10),
            Err(ResponseError::HeadTooLarge)
        ));
        let many: String = (0..=MAX_RESPONSE_HEADERS)
            .map(|i| format!("X{i}: y\r\n"))
            .collect();
        let raw = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert!(matches!(
            parse(raw.as_bytes(), 10),
            Err(ResponseError::HeadTooLarge)
        ));
    }

    #[test]
    fn bad_status_lines() {
        for line in [
            "HTTP/1.1 2000 OK",
            "HTTP/1.1 20x OK",
            "HTTP/1.1 099 Low",
            "HTTP/1.1 600 High",
            "HTTP/2 200 OK",
            "HTTP/1.2 200 OK",
            "http/1.1 200 OK",
            "FOO",
            "HTTP/1.1",
            "HTTP/1.1 +20 OK",
            "",
        ] {
            let raw = format!("{line}\r\nContent-Length: 0\r\n\r\n");
            assert!(
                matches!(
                    parse(raw.as_bytes(), 10),
                    Err(ResponseError::BadStatusLine(_))
                ),
                "{line:?} accepted"
            );
        }
        assert_eq!(
            parse(b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", 1)
                .unwrap()
                .status,
            404
        );
    }

    #[test]
    fn bad_headers_and_framing() {
        let cases: [&[u8]; 6] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n: x\r\n\r\n",
        ];
        for raw in cases {
            assert!(
                matches!(parse(raw, 10), Err(ResponseError::BadHeader(_))),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(matches!(
            parse(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
                10
            ),
            Err(ResponseError::Unsupported(_))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 10),
            Err(ResponseError::Truncated)
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Le", 10),
            Err(ResponseError::Truncated)
        ));
        assert!(matches!(
            parse(b"", 10),
            Err(ResponseError::NothingReceived(None))
        ));
        // Interim responses are skipped.
        let r = parse(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            10,
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        let endless = "HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INTERIM_RESPONSES + 2);
        assert!(matches!(
            parse(endless.as_bytes(), 10),
            Err(ResponseError::Unsupported(_))
        ));
    }

    #[test]
    fn envelopes() {
        assert_eq!(parse_envelope(b"[true, null]\n").unwrap(), Ok(Value::Null));
        assert_eq!(
            parse_envelope(b"[false, \"Invalid sleep duration\"]").unwrap(),
            Err("Invalid sleep duration".into())
        );
        assert_eq!(
            parse_envelope(b"[false, [1, 2]]").unwrap(),
            Err("[1,2]".into())
        );
        for bad in [
            &b"[true, 1"[..],
            b"",
            b"{\"a\": 1}",
            b"[true]",
            b"[true, 1, 2]",
            b"[1, 2]",
            b"[\"true\", 2]",
            b"\xff",
        ] {
            assert!(
                parse_envelope(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn requests_are_well_formed() {
        let addr: SocketAddr = "192.0.2.10:1811".parse().unwrap();
        let req = Client::request_bytes(addr, "version", b"[]\n");
        assert_eq!(
            req,
            b"POST /version HTTP/1.1\r\nHost: 192.0.2.10:1811\r\nUser-Agent: Ganeti 2.5.2\r\n\
              Accept: */*\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n[]\n"
        );
        let v6: SocketAddr = "[2001:db8::1]:1811".parse().unwrap();
        let req = String::from_utf8(Client::request_bytes(v6, "version", b"[]\n")).unwrap();
        assert!(req.contains("Host: [2001:db8::1]:1811\r\n"), "{req}");
    }

    #[test]
    fn hostile_names_are_refused_before_connecting() {
        let c = Client::plain();
        for p in ["", "a b", "x\r\nHost: evil", "../x", "a/b", &"x".repeat(65)] {
            assert!(
                matches!(
                    c.request("127.0.0.1", p, b"[]", Duration::from_secs(1)),
                    Err(CallError::BadProcedure(_))
                ),
                "{p:?}"
            );
        }
        assert!(matches!(
            c.request(
                "node1.example.com",
                "version",
                b"[]",
                Duration::from_secs(1)
            ),
            Err(CallError::BadAddress(_))
        ));
        assert_eq!(c.stats().opened, 0);
    }

    #[test]
    fn offline_nodes_are_skipped() {
        let c = Client::plain();
        let nodes = [Node {
            name: "n1".into(),
            address: "192.0.2.1".into(),
            offline: true,
        }];
        let r = c.call(&nodes, "version", &json!([]));
        assert_eq!(r, vec![("n1".to_string(), NodeResult::Offline)]);
        assert_eq!(r[0].1.fail_msg(), Some("Node is marked offline"));
        assert_eq!(c.stats().opened, 0);
    }

    #[test]
    fn identity_needs_key_and_certificate() {
        let p = Path::new("/x/server.pem");
        assert!(matches!(
            Client::from_pem(p, b"junk"),
            Err(ClientError::Certificate(..))
        ));
    }
}
