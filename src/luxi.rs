//! LUXI, the protocol between Ganeti's command-line tools and the master
//! daemon (2.5.2 `luxi.py`): framing, requests, responses, error encoding
//! and the client. The server is `masterd::luxi_server`.
//!
//! Wire format (spec masterd-luxi 1.2-1.5): over a Unix stream socket, each
//! message is a JSON text followed by one byte [`EOM`] (0x03); a request is
//! `{"args": ..., "method": ..., "version": 2050000}`, an answer
//! `{"result": ..., "success": bool}`. A failure's result is `[class,
//! [args...]]` for a Ganeti error ([`Failure::Ganeti`]) and the string
//! `"Caught exception: <message>"` for anything else ([`Failure::Other`]).
//! Both directions are written byte for byte as 2.5.2's Python wrote them
//! ([`encode_request`]: compact, sorted keys, `", "`/`": "` separators;
//! [`encode_response`]: two-space indentation, sorted keys; both end with
//! a newline before the terminator; non-ASCII escaped as `\uXXXX`; floats
//! as Python's `repr`). Readers accept any JSON layout.
//!
//! The client behaves as 2.5.2's `luxi.Client`: it connects at once (10 s,
//! retrying every second while the listen backlog is full; a missing socket
//! or nobody listening is [`LuxiError::NoMaster`] at once), each receive
//! waits at most 60 s and no receive starts 60 s after the first, any
//! transport error closes the connection and the next call reconnects, and
//! a failure answer is turned back into the Ganeti error it encodes
//! (`MaybeRaise`), else [`LuxiError::Request`].
//!
//! Differences from 2.5.2, for safety (2.5.2 had no limits):
//! * A request may be at most [`MAX_MESSAGE`] bytes and nest at most
//!   [`MAX_REQUEST_DEPTH`] levels; the client reads answers of at most
//!   [`MAX_RESPONSE`] bytes. Past a limit the connection is closed.
//! * JSON extensions Python accepted (`NaN`, `Infinity`) are refused as
//!   invalid JSON; Python's `str()` of a dictionary in a message
//!   ([`python_str`]) lists its keys sorted (Python 2: hash order).
//!
//! Ganeti 3.0.2 clients (spec 8.1-8.3, not served yet; 2.5.2 comes first):
//! they connect to `ganeti-query` instead of `ganeti-master`, send
//! `"version": 3000000` (a 2.5.2 server answers it with a LUXI version
//! mismatch; the server's lenient policy ignores it), wrap every `args` in
//! a list, use integer job ids, wait 30 s to connect and 180 s for an
//! answer (`WaitForJobChange` capped at 89 s), and re-send a request up to
//! 15 times when the connection breaks, so a lenient server must answer
//! every request it has read. The argument shapes are normalised by the
//! request handler, not here.
#![forbid(unsafe_code)]

use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::errors::GanetiError;
use crate::pyjson::{self, Options};
use crate::{pytext, sys};

/// The LUXI protocol version of 2.5.2 (`constants.LUXI_VERSION`).
pub const LUXI_VERSION: u64 = crate::constants::PROTOCOL_VERSION as u64;
/// The message terminator (`constants.LUXI_EOM`, ASCII ETX).
pub const EOM: u8 = 0x03;
/// Longest request the server reads, terminator excluded. A
/// `SubmitManyJobs` of 1000 instance creations (about 1 KiB per opcode as
/// 2.5.2's `gnt-instance batch-create` sends them) takes 1 MiB.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// Longest answer the client reads, terminator excluded (`QueryJobs` of a
/// whole queue with its logs can be large).
pub const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// Deepest nesting of arrays and objects in a request. 2.5.2's requests
/// nest under 12 levels; the bound keeps the parser within a worker's
/// small stack.
pub const MAX_REQUEST_DEPTH: usize = 32;
/// How long the client tries to connect (2.5.2 `luxi.DEF_CTMO`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read and write timeout of the client (2.5.2 `luxi.DEF_RWTO`).
pub const RW_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between connection attempts while the backlog is full.
pub const CONNECT_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Longest `WaitForJobChange` the client asks for, in seconds
/// (`(DEF_RWTO - 1) / 2`), so the answer comes within a receive timeout.
pub const WFJC_TIMEOUT: u64 = 29;
/// The result of a `WaitForJobChange` that saw no change (`JOB_NOTCHANGED`).
pub const JOB_NOTCHANGED: &str = "nochange";
/// Bytes the client reads from the socket at once (as 2.5.2).
const CLIENT_READ_CHUNK: usize = 4096;
/// An empty framer gives back a buffer larger than this.
const KEEP_BUFFER: usize = 64 * 1024;

/// The LUXI method names of 2.5.2 (`luxi.REQ_*`).
pub mod method {
    pub const SUBMIT_JOB: &str = "SubmitJob";
    pub const SUBMIT_MANY_JOBS: &str = "SubmitManyJobs";
    pub const WAIT_FOR_JOB_CHANGE: &str = "WaitForJobChange";
    pub const CANCEL_JOB: &str = "CancelJob";
    pub const ARCHIVE_JOB: &str = "ArchiveJob";
    pub const AUTOARCHIVE_JOBS: &str = "AutoArchiveJobs";
    pub const QUERY: &str = "Query";
    pub const QUERY_FIELDS: &str = "QueryFields";
    pub const QUERY_JOBS: &str = "QueryJobs";
    pub const QUERY_INSTANCES: &str = "QueryInstances";
    pub const QUERY_NODES: &str = "QueryNodes";
    pub const QUERY_GROUPS: &str = "QueryGroups";
    pub const QUERY_EXPORTS: &str = "QueryExports";
    pub const QUERY_CONFIG_VALUES: &str = "QueryConfigValues";
    pub const QUERY_CLUSTER_INFO: &str = "QueryClusterInfo";
    pub const QUERY_TAGS: &str = "QueryTags";
    pub const QUERY_LOCKS: &str = "QueryLocks";
    pub const SET_DRAIN_FLAG: &str = "SetDrainFlag";
    pub const SET_WATCHER_PAUSE: &str = "SetWatcherPause";
}

/// What went wrong talking LUXI.
#[derive(Debug)]
pub enum LuxiError {
    /// Nobody listens on the master socket (`NoMasterError`): the file is
    /// missing or no process accepts on it.
    NoMaster(PathBuf),
    /// The socket may not be used by this user (`PermissionError`).
    Permission(PathBuf),
    /// Connecting, sending or receiving took too long (`TimeoutError`).
    Timeout(String),
    /// The other side closed the connection before a whole message came.
    ConnectionClosed,
    /// A message longer than the limit (bytes) was being received.
    TooLarge(usize),
    /// A malformed message (`ProtocolError`).
    Protocol(String),
    /// The socket failed.
    Io(io::Error),
    /// The server refused the request with a result that is not a Ganeti
    /// error (`RequestError`), e.g. `"Caught exception: ..."`.
    Request(Value),
    /// The server answered with a Ganeti error (`MaybeRaise`).
    Ganeti(GanetiError),
}

impl fmt::Display for LuxiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LuxiError::NoMaster(p) => write!(
                f,
                "Cannot communicate with the master daemon at {}: \
                 is it running and listening for connections?",
                p.display()
            ),
            LuxiError::Permission(p) => write!(
                f,
                "Permission denied while connecting to the master daemon at {}",
                p.display()
            ),
            LuxiError::Timeout(msg) | LuxiError::Protocol(msg) => f.write_str(msg),
            LuxiError::ConnectionClosed => f.write_str("Connection closed while reading"),
            LuxiError::TooLarge(limit) => {
                write!(f, "LUXI message longer than the limit of {limit} bytes")
            }
            LuxiError::Io(e) => write!(f, "Error talking to the master daemon: {e}"),
            LuxiError::Request(v) => f.write_str(&python_str(v)),
            LuxiError::Ganeti(e) => write!(f, "{}: {e}", e.class),
        }
    }
}

impl std::error::Error for LuxiError {}

impl From<GanetiError> for LuxiError {
    fn from(e: GanetiError) -> Self {
        LuxiError::Ganeti(e)
    }
}

// ---------------------------------------------------------------------------
// Framing

/// Splits a byte stream into messages at [`EOM`], refusing a message longer
/// than its limit. Feed it what arrives with [`Framer::push`] and take
/// whole messages with [`Framer::next_message`].
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Bytes before this index belong to messages already taken.
    start: usize,
    /// Bytes from `start` up to this index hold no terminator.
    scanned: usize,
    limit: usize,
}

impl Framer {
    /// A framer for messages of at most `limit` bytes (terminator excluded).
    pub fn new(limit: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            limit,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// The next whole message, without its terminator; `Ok(None)` until
    /// one has arrived. A message longer than the limit (complete or not)
    /// is [`LuxiError::TooLarge`]; the framer is then of no further use.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, LuxiError> {
        let pending = &self.buf[self.scanned..];
        match pending.iter().position(|&b| b == EOM) {
            Some(i) => {
                let end = self.scanned + i;
                if end - self.start > self.limit {
                    return Err(LuxiError::TooLarge(self.limit));
                }
                let msg = self.buf[self.start..end].to_vec();
                self.start = end + 1;
                self.scanned = self.start;
                if self.start == self.buf.len() {
                    self.clear();
                }
                Ok(Some(msg))
            }
            None => {
                self.scanned = self.buf.len();
                if self.buffered() > self.limit {
                    Err(LuxiError::TooLarge(self.limit))
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Bytes received and not yet taken as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether a terminator is among the buffered bytes not yet looked at
    /// (so [`Framer::next_message`] has something to return or refuse).
    pub fn has_terminator(&self) -> bool {
        self.buf[self.scanned..].contains(&EOM)
    }

    /// How many more bytes may be read before the message being received
    /// is certainly too long (one past the limit, so that it shows).
    pub fn room(&self) -> usize {
        (self.limit + 1).saturating_sub(self.buffered())
    }

    fn clear(&mut self) {
        self.buf.clear();
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::new();
        }
        self.start = 0;
        self.scanned = 0;
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
    }
}

/// Reads from `r` until the framer holds a whole message (blocking reads).
/// End of stream first is [`LuxiError::ConnectionClosed`].
pub fn read_message(r: &mut impl Read, framer: &mut Framer) -> Result<Vec<u8>, LuxiError> {
    let mut chunk = [0u8; CLIENT_READ_CHUNK];
    loop {
        if let Some(m) = framer.next_message()? {
            return Ok(m);
        }
        match r.read(&mut chunk) {
            Ok(0) => return Err(LuxiError::ConnectionClosed),
            Ok(n) => framer.push(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LuxiError::Io(e)),
        }
    }
}

// ---------------------------------------------------------------------------
// Requests

/// A parsed request (2.5.2 `ParseRequest`).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method name; a non-string method is given as Python's `str()`
    /// of it (it then names no method).
    pub method: String,
    /// The arguments, never `null`.
    pub args: Value,
    /// The client's protocol version, when it sent one (not `null`).
    pub version: Option<Value>,
}

impl Request {
    /// 2.5.2's version check: a version other than [`LUXI_VERSION`] is
    /// answered with `LuxiError("LUXI version mismatch, server ..., request
    /// ...")`; no version is fine.
    pub fn check_version(&self) -> Result<(), GanetiError> {
        match &self.version {
            None => Ok(()),
            Some(v) if v.as_f64() == Some(LUXI_VERSION as f64) => Ok(()),
            Some(v) => Err(version_mismatch(v)),
        }
    }
}

/// The error 2.5.2 answers a request of another protocol version with.
pub fn version_mismatch(request_version: &Value) -> GanetiError {
    GanetiError::msg(
        "LuxiError",
        format!(
            "LUXI version mismatch, server {LUXI_VERSION}, request {}",
            python_str(request_version)
        ),
    )
}

/// Parses a request message. Every error is a protocol error, after which
/// 2.5.2 closes the connection without an answer.
pub fn parse_request(msg: &[u8]) -> Result<Request, LuxiError> {
    if let Some(depth) = too_deep(msg, MAX_REQUEST_DEPTH) {
        return Err(LuxiError::Protocol(format!(
            "Invalid LUXI request (parsing error): nested deeper than {depth} levels"
        )));
    }
    let value: Value = serde_json::from_slice(msg)
        .map_err(|e| LuxiError::Protocol(format!("Invalid LUXI request (parsing error): {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(LuxiError::Protocol(
            "Invalid LUXI request (not a dict)".into(),
        ));
    };
    let mut take = |key: &str| map.remove(key).filter(|v| !v.is_null());
    let (method, args, version) = (take("method"), take("args"), take("version"));
    let (Some(method), Some(args)) = (method, args) else {
        return Err(LuxiError::Protocol(format!(
            "Invalid LUXI request (no method or arguments in request): {}",
            excerpt(msg)
        )));
    };
    Ok(Request {
        method: python_str(&method),
        args,
        version,
    })
}

/// `Some(limit)` when `text` nests arrays/objects deeper than `limit`.
fn too_deep(text: &[u8], limit: usize) -> Option<usize> {
    crate::pyjson::nests_deeper_than(text, limit).then_some(limit)
}

/// The start of a message, quoted, for log lines.
fn excerpt(msg: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&msg[..msg.len().min(MAX)]);
    if msg.len() > MAX {
        format!("{text:?}...")
    } else {
        format!("{text:?}")
    }
}

/// A request as 2.5.2's client writes it: compact JSON, newline,
/// terminator.
pub fn encode_request(method: &str, args: &Value, version: Option<u64>) -> Vec<u8> {
    let mut out = String::with_capacity(64);
    out.push_str("{\"args\": ");
    pyjson::write_value(&mut out, args, Options::COMPACT, 0);
    out.push_str(", \"method\": ");
    pyjson::write_value(&mut out, &Value::from(method), Options::COMPACT, 0);
    if let Some(v) = version {
        out.push_str(", \"version\": ");
        out.push_str(&v.to_string());
    }
    out.push_str("}\n");
    let mut bytes = out.into_bytes();
    bytes.push(EOM);
    bytes
}

// ---------------------------------------------------------------------------
// Responses

/// Why a request failed, as it is sent back.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// A Ganeti error: the result is `[class, [args...]]`.
    Ganeti(GanetiError),
    /// Anything else: the result is `"Caught exception: <message>"`.
    Other(String),
}

impl Failure {
    /// A failure that is not a Ganeti error.
    pub fn other(msg: impl Into<String>) -> Failure {
        Failure::Other(msg.into())
    }

    /// The `result` of the failure answer.
    pub fn encode(&self) -> Value {
        match self {
            Failure::Ganeti(e) => e.encode(),
            Failure::Other(msg) => Value::String(format!("Caught exception: {msg}")),
        }
    }
}

impl From<GanetiError> for Failure {
    fn from(e: GanetiError) -> Self {
        Failure::Ganeti(e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Ganeti(e) => write!(f, "{}: {e}", e.class),
            Failure::Other(msg) => f.write_str(msg),
        }
    }
}

/// An answer as 2.5.2's server writes it: `{"result": ..., "success": ...}`
/// indented by two spaces, keys sorted, newline, terminator.
pub fn encode_response(result: &Result<Value, Failure>) -> Vec<u8> {
    let encoded;
    let (success, value) = match result {
        Ok(v) => (true, v),
        Err(f) => {
            encoded = f.encode();
            (false, &encoded)
        }
    };
    let mut out = String::with_capacity(64);
    out.push_str("{\n  \"result\": ");
    pyjson::write_value(&mut out, value, Options::INDENTED, 1);
    out.push_str(",\n  \"success\": ");
    out.push_str(if success { "true" } else { "false" });
    out.push_str("\n}\n");
    let mut bytes = out.into_bytes();
    bytes.push(EOM);
    bytes
}

/// A parsed answer: success flag, result, version (when sent).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub success: bool,
    pub result: Value,
    pub version: Option<Value>,
}

/// Parses an answer (2.5.2 `ParseResponse`): an object with `success` and
/// `result`.
pub fn parse_response(msg: &[u8]) -> Result<Response, LuxiError> {
    let value: Value = serde_json::from_slice(msg)
        .map_err(|e| LuxiError::Protocol(format!("Error while deserializing response: {e}")))?;
    let invalid =
        |v: &Value| LuxiError::Protocol(format!("Invalid response from server: {}", python_str(v)));
    let Value::Object(map) = &value else {
        return Err(invalid(&value));
    };
    let (Some(success), Some(result)) = (map.get("success"), map.get("result")) else {
        return Err(invalid(&value));
    };
    Ok(Response {
        // Python's truth value of the flag.
        success: truthy(success),
        result: result.clone(),
        version: map.get("version").filter(|v| !v.is_null()).cloned(),
    })
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

// ---------------------------------------------------------------------------
// Python text (the implementations are crate::pyjson and crate::pytext)

/// Python's `repr()` of a float as simplejson writes it
/// ([`pyjson::float_repr`]).
pub fn python_float(f: f64) -> String {
    pyjson::float_repr(f)
}

/// Python 2's `str()` of a decoded JSON value, as 2.5.2 put values into
/// messages (`"%s" % value`): strings bare, `True`/`False`/`None`, floats
/// with 12 digits, containers as their `repr` (ASCII strings as `str`,
/// see [`pytext::Strings::AsciiAsStr`]).
pub fn python_str(v: &Value) -> String {
    pytext::py_str(v, pytext::Strings::AsciiAsStr)
}

// ---------------------------------------------------------------------------
// Client

/// The client's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long to keep trying to connect while the backlog is full.
    pub connect: Duration,
    /// Each send and receive; no new receive starts this long after the
    /// first of an answer.
    pub rw: Duration,
}

impl Default for Timeouts {
    /// 2.5.2's: 10 s and 60 s.
    fn default() -> Self {
        Timeouts {
            connect: CONNECT_TIMEOUT,
            rw: RW_TIMEOUT,
        }
    }
}

/// One connection to the master socket.
struct Transport {
    stream: UnixStream,
    framer: Framer,
    rw: Duration,
}

impl Transport {
    fn connect(path: &Path, timeouts: Timeouts) -> Result<Transport, LuxiError> {
        let deadline = Instant::now() + timeouts.connect;
        let stream = loop {
            match sys::unix_connect_nowait(path) {
                Ok(s) => break s,
                Err(e) => match e.raw_os_error() {
                    Some(libc::ENOENT) | Some(libc::ECONNREFUSED) => {
                        return Err(LuxiError::NoMaster(path.to_path_buf()))
                    }
                    Some(libc::EPERM) | Some(libc::EACCES) => {
                        return Err(LuxiError::Permission(path.to_path_buf()))
                    }
                    Some(libc::EINTR) => {}
                    Some(libc::EAGAIN) => {
                        // The listen backlog is full: try again shortly.
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(LuxiError::Timeout("Connect timed out".into()));
                        }
                        std::thread::sleep(left.min(CONNECT_RETRY_INTERVAL));
                    }
                    _ => return Err(LuxiError::Io(e)),
                },
            }
        };
        // A zero timeout would mean "none" to the socket.
        let rw = timeouts.rw.max(Duration::from_millis(1));
        stream
            .set_read_timeout(Some(rw))
            .and_then(|()| stream.set_write_timeout(Some(rw)))
            .map_err(LuxiError::Io)?;
        Ok(Transport {
            stream,
            framer: Framer::new(MAX_RESPONSE),
            rw,
        })
    }

    fn send(&mut self, msg: &[u8]) -> Result<(), LuxiError> {
        let body = msg.strip_suffix(&[EOM]).unwrap_or(msg);
        if body.contains(&EOM) {
            return Err(LuxiError::Protocol(
                "Message terminator found in payload".into(),
            ));
        }
        self.stream.write_all(msg).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                LuxiError::Timeout(format!("Sending timeout: {e}"))
            }
            _ => LuxiError::Io(e),
        })
    }

    fn recv(&mut self) -> Result<Vec<u8>, LuxiError> {
        let give_up = Instant::now() + self.rw;
        let mut chunk = [0u8; CLIENT_READ_CHUNK];
        loop {
            if let Some(m) = self.framer.next_message()? {
                return Ok(m);
            }
            if Instant::now() > give_up {
                return Err(LuxiError::Timeout("Extended receive timeout".into()));
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(LuxiError::ConnectionClosed),
                Ok(n) => self.framer.push(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(LuxiError::Timeout(format!("Receive timeout: {e}")))
                }
                Err(e) => return Err(LuxiError::Io(e)),
            }
        }
    }
}

/// A LUXI client (2.5.2 `luxi.Client`). Not shared between threads.
pub struct Client {
    path: PathBuf,
    timeouts: Timeouts,
    transport: Option<Transport>,
}

/// What one `WaitForJobChange` call found.
#[derive(Debug, Clone, PartialEq)]
pub enum JobChange {
    /// The job's requested fields and its log entries after the serial
    /// given.
    Changed {
        job_info: Vec<Value>,
        log_entries: Vec<LogEntry>,
    },
    /// Nothing changed within the timeout (`"nochange"`).
    NoChange,
    /// The job could not be found or read (`null`; 2.5.2's CLI raises
    /// `JobLost`).
    Lost,
}

/// A job log entry: `[serial, [seconds, microseconds], type, message]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LogEntry {
    pub serial: u64,
    pub timestamp: (i64, i64),
    pub log_type: String,
    pub message: Value,
}

/// A field definition of `Query`/`QueryFields`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FieldDefinition {
    pub name: String,
    pub title: String,
    pub kind: String,
    #[serde(default)]
    pub doc: String,
}

/// The answer to `Query`: field definitions and rows of
/// `[status, value]` cells.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QueryResponse {
    pub fields: Vec<FieldDefinition>,
    pub data: Vec<Vec<(i64, Value)>>,
}

#[derive(Deserialize)]
struct QueryFieldsResponse {
    fields: Vec<FieldDefinition>,
}

/// A job id as 2.5.2 clients send it: the decimal string.
fn job_id_arg(id: u64) -> Value {
    Value::String(id.to_string())
}

/// A job id from an answer: a decimal string (2.5.2) or a number (3.0).
pub fn parse_job_id(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

impl Client {
    /// Connects to the master socket with 2.5.2's timeouts.
    pub fn connect(path: &Path) -> Result<Client, LuxiError> {
        Client::with_timeouts(path, Timeouts::default())
    }

    /// Connects with other timeouts.
    pub fn with_timeouts(path: &Path, timeouts: Timeouts) -> Result<Client, LuxiError> {
        let transport = Transport::connect(path, timeouts)?;
        Ok(Client {
            path: path.to_path_buf(),
            timeouts,
            transport: Some(transport),
        })
    }

    /// Closes the connection; the next call opens a new one.
    pub fn close(&mut self) {
        self.transport = None;
    }

    /// Sends a request and waits for the answer. A failure answer becomes
    /// the Ganeti error it encodes ([`LuxiError::Ganeti`]) or
    /// [`LuxiError::Request`]. Transport errors close the connection.
    pub fn call(&mut self, method: &str, args: Value) -> Result<Value, LuxiError> {
        let request = encode_request(method, &args, Some(LUXI_VERSION));
        let answer = self.exchange(&request)?;
        let response = parse_response(&answer)?;
        if let Some(v) = &response.version {
            if v.as_f64() != Some(LUXI_VERSION as f64) {
                return Err(LuxiError::Ganeti(GanetiError::msg(
                    "LuxiError",
                    format!(
                        "LUXI version mismatch, client {LUXI_VERSION}, response {}",
                        python_str(v)
                    ),
                )));
            }
        }
        if response.success {
            return Ok(response.result);
        }
        Err(match GanetiError::decode(&response.result) {
            Some(e) => LuxiError::Ganeti(e),
            None => LuxiError::Request(response.result),
        })
    }

    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, LuxiError> {
        let transport = match self.transport.as_mut() {
            Some(t) => t,
            None => self
                .transport
                .insert(Transport::connect(&self.path, self.timeouts)?),
        };
        let result = transport.send(request).and_then(|()| transport.recv());
        if result.is_err() {
            self.transport = None;
        }
        result
    }

    /// Calls a method and decodes its result.
    fn call_typed<T: DeserializeOwned>(
        &mut self,
        method: &str,
        args: Value,
    ) -> Result<T, LuxiError> {
        let result = self.call(method, args)?;
        serde_json::from_value(result)
            .map_err(|e| LuxiError::Protocol(format!("Invalid answer to {method}: {e}")))
    }

    /// `SubmitJob`: queues a job of the given opcodes; its id.
    pub fn submit_job(&mut self, ops: Vec<Value>) -> Result<u64, LuxiError> {
        let result = self.call(method::SUBMIT_JOB, Value::Array(ops))?;
        parse_job_id(&result).ok_or_else(|| {
            LuxiError::Protocol(format!(
                "Invalid answer to SubmitJob: {}",
                python_str(&result)
            ))
        })
    }

    /// `SubmitManyJobs`: per job, its id or the reason it was refused.
    pub fn submit_many_jobs(
        &mut self,
        jobs: Vec<Vec<Value>>,
    ) -> Result<Vec<Result<u64, String>>, LuxiError> {
        let args = Value::Array(jobs.into_iter().map(Value::Array).collect());
        let pairs: Vec<(bool, Value)> = self.call_typed(method::SUBMIT_MANY_JOBS, args)?;
        pairs
            .into_iter()
            .map(|(ok, v)| match (ok, parse_job_id(&v)) {
                (true, Some(id)) => Ok(Ok(id)),
                (true, None) => Err(LuxiError::Protocol(format!(
                    "Invalid answer to SubmitManyJobs: job id {}",
                    python_str(&v)
                ))),
                (false, _) => Ok(Err(python_str(&v))),
            })
            .collect()
    }

    /// One `WaitForJobChange` call; `timeout` is capped at
    /// [`WFJC_TIMEOUT`] seconds as 2.5.2's client does.
    pub fn wait_for_job_change(
        &mut self,
        job_id: u64,
        fields: &[&str],
        prev_job_info: &Value,
        prev_log_serial: Option<u64>,
        timeout: u64,
    ) -> Result<JobChange, LuxiError> {
        let args = serde_json::json!([
            job_id_arg(job_id),
            fields,
            prev_job_info,
            prev_log_serial,
            timeout.min(WFJC_TIMEOUT)
        ]);
        let result = self.call(method::WAIT_FOR_JOB_CHANGE, args)?;
        match result {
            Value::Null => Ok(JobChange::Lost),
            Value::String(s) if s == JOB_NOTCHANGED => Ok(JobChange::NoChange),
            other => {
                let (job_info, log_entries): (Vec<Value>, Vec<LogEntry>) =
                    serde_json::from_value(other).map_err(|e| {
                        LuxiError::Protocol(format!("Invalid answer to WaitForJobChange: {e}"))
                    })?;
                Ok(JobChange::Changed {
                    job_info,
                    log_entries,
                })
            }
        }
    }

    /// `CancelJob`: whether it worked, and the message.
    pub fn cancel_job(&mut self, job_id: u64) -> Result<(bool, String), LuxiError> {
        self.call_typed(method::CANCEL_JOB, job_id_arg(job_id))
    }

    /// `ArchiveJob`: whether the job was archived.
    pub fn archive_job(&mut self, job_id: u64) -> Result<bool, LuxiError> {
        self.call_typed(method::ARCHIVE_JOB, job_id_arg(job_id))
    }

    /// `AutoArchiveJobs` of jobs older than `age` seconds (-1: all
    /// finished jobs): archived count and jobs left unchecked.
    pub fn auto_archive_jobs(&mut self, age: i64) -> Result<(u64, u64), LuxiError> {
        let args = serde_json::json!([age, WFJC_TIMEOUT]);
        self.call_typed(method::AUTOARCHIVE_JOBS, args)
    }

    /// `QueryJobs`: per job (all of the queue when `job_ids` is empty),
    /// the requested fields, or `None` for a job that was not found.
    pub fn query_jobs(
        &mut self,
        job_ids: &[u64],
        fields: &[&str],
    ) -> Result<Vec<Option<Vec<Value>>>, LuxiError> {
        let ids: Vec<Value> = job_ids.iter().map(|&id| job_id_arg(id)).collect();
        self.call_typed(method::QUERY_JOBS, serde_json::json!([ids, fields]))
    }

    /// `QueryClusterInfo`.
    pub fn query_cluster_info(&mut self) -> Result<Map<String, Value>, LuxiError> {
        self.call_typed(method::QUERY_CLUSTER_INFO, Value::Array(vec![]))
    }

    /// `QueryConfigValues`: the values in the order asked.
    pub fn query_config_values(&mut self, fields: &[&str]) -> Result<Vec<Value>, LuxiError> {
        self.call_typed(method::QUERY_CONFIG_VALUES, serde_json::json!(fields))
    }

    /// `QueryTags` of an object (`name` is `None` for the cluster).
    pub fn query_tags(&mut self, kind: &str, name: Option<&str>) -> Result<Vec<String>, LuxiError> {
        self.call_typed(method::QUERY_TAGS, serde_json::json!([kind, name]))
    }

    /// `SetDrainFlag`.
    pub fn set_drain_flag(&mut self, drain: bool) -> Result<(), LuxiError> {
        self.call(method::SET_DRAIN_FLAG, Value::Bool(drain))
            .map(|_| ())
    }

    /// `SetWatcherPause` until a time (`None`: no pause); the time echoed.
    pub fn set_watcher_pause(&mut self, until: Option<f64>) -> Result<Option<f64>, LuxiError> {
        self.call_typed(method::SET_WATCHER_PAUSE, serde_json::json!([until]))
    }

    /// `Query`: the 2.5.2 argument object, `filter` left out when `None`.
    pub fn query(
        &mut self,
        what: &str,
        fields: &[&str],
        filter: Option<Value>,
    ) -> Result<QueryResponse, LuxiError> {
        let mut args = Map::new();
        args.insert("what".into(), Value::String(what.into()));
        args.insert("fields".into(), serde_json::json!(fields));
        if let Some(f) = filter {
            args.insert("filter".into(), f);
        }
        self.call_typed(method::QUERY, Value::Object(args))
    }

    /// `QueryFields`: definitions of the fields asked, or of all fields.
    pub fn query_fields(
        &mut self,
        what: &str,
        fields: Option<&[&str]>,
    ) -> Result<Vec<FieldDefinition>, LuxiError> {
        let mut args = Map::new();
        args.insert("what".into(), Value::String(what.into()));
        if let Some(f) = fields {
            args.insert("fields".into(), serde_json::json!(f));
        }
        let r: QueryFieldsResponse = self.call_typed(method::QUERY_FIELDS, Value::Object(args))?;
        Ok(r.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(framer: &mut Framer) -> Option<Vec<u8>> {
        framer.next_message().unwrap()
    }

    #[test]
    fn framer_splits_reads_and_joins_pieces() {
        let mut f = Framer::new(100);
        f.push(b"{\"a\"");
        assert_eq!(message(&mut f), None);
        f.push(b": 1}\n\x03{\"b\": 2}\x03{\"c\"");
        assert_eq!(message(&mut f).unwrap(), b"{\"a\": 1}\n");
        assert_eq!(message(&mut f).unwrap(), b"{\"b\": 2}");
        assert_eq!(message(&mut f), None);
        assert_eq!(f.buffered(), 4);
        f.push(b"}\x03");
        assert_eq!(message(&mut f).unwrap(), b"{\"c\"}");
        assert_eq!(f.buffered(), 0);
        // An empty message is a message (the parser refuses it).
        f.push(b"\x03");
        assert_eq!(message(&mut f).unwrap(), b"");
    }

    #[test]
    fn framer_refuses_one_byte_over_the_limit() {
        let mut f = Framer::new(MAX_MESSAGE);
        let exact = vec![b' '; MAX_MESSAGE];
        f.push(&exact);
        assert_eq!(message(&mut f), None);
        assert_eq!(f.room(), 1);
        f.push(&[EOM]);
        assert_eq!(message(&mut f).unwrap().len(), MAX_MESSAGE);

        // Over the limit without a terminator yet, and with one.
        let mut f = Framer::new(MAX_MESSAGE);
        f.push(&exact);
        f.push(b" ");
        assert!(matches!(
            f.next_message(),
            Err(LuxiError::TooLarge(MAX_MESSAGE))
        ));
        let mut f = Framer::new(MAX_MESSAGE);
        f.push(&exact);
        f.push(b" \x03");
        assert!(matches!(f.next_message(), Err(LuxiError::TooLarge(_))));
    }

    #[test]
    fn client_framer_refuses_an_answer_one_byte_over_its_limit() {
        let mut f = Framer::new(MAX_RESPONSE);
        let chunk = vec![b' '; 1024 * 1024];
        for _ in 0..MAX_RESPONSE / chunk.len() {
            f.push(&chunk);
            assert_eq!(message(&mut f), None);
        }
        f.push(b" ");
        assert!(matches!(
            f.next_message(),
            Err(LuxiError::TooLarge(MAX_RESPONSE))
        ));
    }

    #[test]
    fn read_message_reads_until_a_terminator() {
        let data = b"{\"x\": 1}\x03rest".to_vec();
        let mut r = io::Cursor::new(data);
        let mut f = Framer::new(100);
        assert_eq!(read_message(&mut r, &mut f).unwrap(), b"{\"x\": 1}");
        assert!(matches!(
            read_message(&mut r, &mut f),
            Err(LuxiError::ConnectionClosed)
        ));
    }

    #[test]
    fn requests_parse_as_2_5_2() {
        let r = parse_request(
            b"{\"args\": [\"42\"], \"method\": \"CancelJob\", \"version\": 2050000}\n",
        )
        .unwrap();
        assert_eq!(r.method, "CancelJob");
        assert_eq!(r.args, json!(["42"]));
        assert!(r.check_version().is_ok());
        let r = parse_request(b"{\"args\": false, \"method\": \"SetDrainFlag\"}").unwrap();
        assert_eq!(r.version, None);
        assert!(r.check_version().is_ok());

        let e = parse_request(b"{\"args\": [], \"method\": \"X\", \"version\": 3000000}")
            .unwrap()
            .check_version()
            .unwrap_err();
        assert_eq!(
            e.encode(),
            json!([
                "LuxiError",
                ["LUXI version mismatch, server 2050000, request 3000000"]
            ])
        );

        for bad in [
            &b"not json"[..],
            b"[1, 2]",
            b"{\"method\": \"X\"}",
            b"{\"args\": null, \"method\": \"X\"}",
            b"{\"args\": [], \"method\": null}",
            b"",
            b"{\"args\": [\xff], \"method\": \"X\"}",
        ] {
            assert!(
                matches!(parse_request(bad), Err(LuxiError::Protocol(_))),
                "{bad:?}"
            );
        }
        // A method that is not a string names no method.
        assert_eq!(
            parse_request(b"{\"args\": 1, \"method\": 5}")
                .unwrap()
                .method,
            "5"
        );
    }

    #[test]
    fn requests_nested_one_level_too_deep_are_refused() {
        let nest = |n: usize| {
            let inner = format!("{}{}", "[".repeat(n - 1), "]".repeat(n - 1));
            format!("{{\"args\": {inner}, \"method\": \"X\"}}")
        };
        assert!(parse_request(nest(MAX_REQUEST_DEPTH).as_bytes()).is_ok());
        let e = parse_request(nest(MAX_REQUEST_DEPTH + 1).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("nested deeper than 32"), "{e}");
        // Brackets in strings do not count.
        let quoted = format!("{{\"args\": \"{}\", \"method\": \"X\"}}", "[".repeat(100));
        assert!(parse_request(quoted.as_bytes()).is_ok());
    }

    #[test]
    fn responses_are_written_as_2_5_2_wrote_them() {
        let ok = encode_response(&Ok(json!("21")));
        assert_eq!(
            ok,
            b"{\n  \"result\": \"21\",\n  \"success\": true\n}\n\x03"
        );
        let nested = encode_response(&Ok(json!([["waiting"], []])));
        assert_eq!(
            String::from_utf8(nested).unwrap(),
            "{\n  \"result\": [\n    [\n      \"waiting\"\n    ],\n    []\n  ],\n  \
             \"success\": true\n}\n\x03"
        );
        let err = encode_response(&Err(Failure::other("Invalid operation 'Foo'")));
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "{\n  \"result\": \"Caught exception: Invalid operation 'Foo'\",\n  \
             \"success\": false\n}\n\x03"
        );
        let full = encode_response(&Err(GanetiError::new("JobQueueFull", vec![]).into()));
        assert_eq!(
            String::from_utf8(full).unwrap(),
            "{\n  \"result\": [\n    \"JobQueueFull\",\n    []\n  ],\n  \
             \"success\": false\n}\n\x03"
        );
    }

    #[test]
    fn requests_are_written_as_2_5_2_wrote_them() {
        let args = json!([{"OP_ID": "OP_TEST_DELAY", "duration": 0.1, "on_nodes": [],
                           "on_master": true, "repeat": 0}]);
        assert_eq!(
            String::from_utf8(encode_request("SubmitJob", &args, Some(LUXI_VERSION))).unwrap(),
            "{\"args\": [{\"OP_ID\": \"OP_TEST_DELAY\", \"duration\": 0.1, \"on_master\": true, \
             \"on_nodes\": [], \"repeat\": 0}], \"method\": \"SubmitJob\", \
             \"version\": 2050000}\n\x03"
        );
    }

    #[test]
    fn strings_are_escaped_as_python_does() {
        let req = encode_request(
            "X\u{e9}",
            &json!(["a\"b\\c\n\t\u{3}\u{7f}é😀/\u{8}\u{c}\r"]),
            None,
        );
        assert_eq!(
            String::from_utf8(req.clone()).unwrap(),
            "{\"args\": [\"a\\\"b\\\\c\\n\\t\\u0003\\u007f\\u00e9\\ud83d\\ude00/\\b\\f\\r\"], \
             \"method\": \"X\\u00e9\"}\n\x03"
        );
        // A request never carries a raw terminator.
        assert_eq!(req.iter().filter(|&&b| b == EOM).count(), 1);
    }

    #[test]
    fn floats_are_written_as_python_repr() {
        // The digits are tested in pytext and pyjson.
        for (f, text) in [(0.1, "0.1"), (1e16, "1e+16"), (0.00001, "1e-05")] {
            assert_eq!(python_float(f), text, "{f}");
        }
        assert_eq!(
            String::from_utf8(encode_request("X", &json!([1795814247.593712, 3.0]), None)).unwrap(),
            "{\"args\": [1795814247.593712, 3.0], \"method\": \"X\"}\n\x03"
        );
    }

    #[test]
    fn python_str_of_values() {
        assert_eq!(python_str(&json!("abc")), "abc");
        assert_eq!(python_str(&json!(3000000)), "3000000");
        assert_eq!(python_str(&json!(null)), "None");
        assert_eq!(python_str(&json!([true, "a", 1.5])), "[True, 'a', 1.5]");
        // str() of a float has 12 digits, repr() (inside a list) all.
        assert_eq!(python_str(&json!(1795814247.593712)), "1795814247.59");
        assert_eq!(
            python_str(&json!([1795814247.593712, "it's"])),
            "[1795814247.593712, \"it's\"]"
        );
        assert_eq!(
            python_str(&json!({"k": ["é€"]})),
            "{'k': [u'\\xe9\\u20ac']}"
        );
    }

    #[test]
    fn responses_parse_and_are_checked() {
        let r = parse_response(b"{\"result\": 1, \"success\": true}").unwrap();
        assert!(r.success && r.result == json!(1) && r.version.is_none());
        for bad in [&b"{\"result\": 1}"[..], b"[]", b"{\"success\": true}"] {
            let e = parse_response(bad).unwrap_err();
            assert!(
                e.to_string().starts_with("Invalid response from server: "),
                "{e}"
            );
        }
        let e = parse_response(b"nonsense").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("Error while deserializing response: "));
    }

    #[test]
    fn job_ids_in_answers() {
        assert_eq!(parse_job_id(&json!("42")), Some(42));
        assert_eq!(parse_job_id(&json!(42)), Some(42));
        for bad in [json!("-1"), json!(""), json!("4 2"), json!(-1), json!(1.5)] {
            assert_eq!(parse_job_id(&bad), None, "{bad}");
        }
    }

    #[test]
    fn log_entries_decode_from_lists() {
        let e: LogEntry =
            serde_json::from_value(json!([3, [1700000001, 123456], "message", "hi"])).unwrap();
        assert_eq!(e.serial, 3);
        assert_eq!(e.timestamp, (1700000001, 123456));
        assert_eq!(e.log_type, "message");
    }
}
