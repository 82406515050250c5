//! The master daemon's LUXI server: the master socket and the threads that
//! answer it (2.5.2 `server/masterd.py` `MasterServer`, `ClientRequestWorker`).
//!
//! The socket is created as 2.5.2 does ([`LuxiServer::bind`]): the socket
//! directory is made (mode 0750), a stale socket file is removed, a new
//! socket is bound and listening at a temporary unique name in that
//! directory, given mode 0770 and the masterd user and daemons group
//! (`root:root` in a default build), and renamed onto
//! `/var/run/ganeti/socket/ganeti-master`. On shutdown the file is removed
//! (only if it is still ours).
//!
//! One I/O thread (`luxi-poll`) accepts connections and reads them, all at
//! once with `poll`, without blocking; it splits the bytes into messages.
//! Each whole request goes, with its connection, to a FIFO served by a
//! fixed pool of [`CLIENT_REQUEST_WORKERS`] threads (`ClientReq1`..16). A
//! worker parses the request, checks its version, calls the [`Handler`]
//! and writes the answer; an answer the socket cannot take at once is
//! finished by the I/O thread. As in 2.5.2 a connection has at most one
//! request in work: it is not read while its request is handled, answers
//! come in request order, and a request (a long `WaitForJobChange`
//! included) holds one worker for as long as the handler takes.
//!
//! So an idle, slow or hostile client costs a socket and a small buffer,
//! never a worker: garbage is refused by a worker in microseconds (a
//! protocol error closes the connection without an answer, as 2.5.2), a
//! message over [`luxi::MAX_MESSAGE`] is refused by the I/O thread while it
//! arrives, and a request must arrive within [`REQUEST_READ_TIMEOUT`] of
//! its first byte.
//!
//! Differences from 2.5.2, for safety (2.5.2 had no limits):
//! * at most [`MAX_CONNECTIONS`] connections; past it the oldest idle one
//!   (else the oldest one still sending a request) is closed to make room,
//!   and when every connection has a request in work the new one is closed;
//! * all partly received requests together hold at most [`BUFFER_BUDGET`]
//!   bytes beyond [`FREE_ALLOWANCE`] each; a connection that would go past
//!   it is closed;
//! * a request must arrive within [`REQUEST_READ_TIMEOUT`] and its answer be
//!   read within [`WRITE_TIMEOUT`]; idle connections have no limit (2.5.2
//!   clients keep theirs open between calls);
//! * answers the clients have not read yet hold at most [`ANSWER_BUDGET`]
//!   bytes beyond [`FREE_ALLOWANCE`] each in the I/O thread; past it the
//!   worker that made an answer writes it itself (within the write
//!   timeout), so slow readers of large answers cost workers, not memory;
//! * the listen backlog is [`LISTEN_BACKLOG`] (2.5.2: 5, after which its
//!   clients wait a second and retry);
//! * a handler that panics is answered `"Caught exception: ..."` and the
//!   worker lives on.
//!
//! 2.5.2 listened on the temporary name before the rename, as this does;
//! the spec's step order (listen after rename) would refuse clients for an
//! instant after the rename.
//!
//! Ganeti 3.0 clients ([`VersionPolicy::Lenient`], not the default): the
//! request version is ignored, and a malformed but whole request is
//! answered `"Caught exception: Invalid LUXI request ..."` and the
//! connection kept, because 3.0 clients re-send a request whose
//! connection closed. Their socket (`ganeti-query`) and argument shapes are
//! not handled here.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::constants::{GANETI_GROUPS, GANETI_USERS};
use crate::daemon::{self, Service};
use crate::fsutil;
use crate::luxi::{self, Failure, Framer, Request};
use crate::paths::Paths;
use crate::sys;

/// Request worker threads (2.5.2 `CLIENT_REQUEST_WORKERS`).
pub const CLIENT_REQUEST_WORKERS: usize = 16;
/// Stack of a request worker: handlers run opcodes (node RPCs, config
/// updates) on it, and a submission compresses the job file it copies to
/// the master candidates (see `jqueue::JOB_WORKER_STACK`).
pub const WORKER_STACK: usize = 1024 * 1024;
/// Listen backlog of the master socket.
pub const LISTEN_BACKLOG: i32 = 128;
/// Most connections open at once.
pub const MAX_CONNECTIONS: usize = 256;
/// From the first byte of a request to its terminator (2.5.2 clients write
/// a request at once; a local socket takes megabytes in milliseconds).
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// For an answer the client does not take at once (2.5.2 clients wait 60 s
/// for one).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Request bytes each connection may hold without drawing on
/// [`BUFFER_BUDGET`].
pub const FREE_ALLOWANCE: usize = 64 * 1024;
/// Request bytes beyond [`FREE_ALLOWANCE`] that all connections together
/// may hold, from the first byte until the request is handled.
pub const BUFFER_BUDGET: usize = 32 * 1024 * 1024;
/// Unsent answer bytes beyond [`FREE_ALLOWANCE`] that all connections
/// together may leave to the I/O thread (the default of
/// [`Options::answer_budget`]).
pub const ANSWER_BUDGET: usize = 64 * 1024 * 1024;
/// Mode of the master socket (2.5.2: 0770).
pub const SOCKET_MODE: u32 = 0o770;
/// Mode of the socket directory (2.5.2 `SOCKET_DIR_MODE`).
pub const SOCKET_DIR_MODE: u32 = 0o750;
/// Most bytes taken from a socket in one read.
const READ_CHUNK: usize = 64 * 1024;
/// How often the same kind of warning about clients is logged.
const WARNING_INTERVAL: Duration = Duration::from_secs(60);
/// How long accepting pauses after an accept error (out of descriptors).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// How many temporary names are tried when binding.
const BIND_ATTEMPTS: usize = 5;

/// Answers LUXI requests; shared by all request workers.
pub trait Handler: Send + Sync + 'static {
    /// Runs `method` with `args`. An unknown method is
    /// [`invalid_operation`].
    fn handle(&self, method: &str, args: Value) -> Result<Value, Failure>;

    /// Runs a whole request; the default passes method and arguments to
    /// [`Handler::handle`]. A handler that must tell client generations
    /// apart (3.0 sends `"version": 3000000`) overrides this.
    fn handle_request(&self, request: Request) -> Result<Value, Failure> {
        self.handle(&request.method, request.args)
    }
}

/// One method of a dispatch table.
pub struct Method<C: ?Sized> {
    pub name: &'static str,
    pub run: fn(&C, Value) -> Result<Value, Failure>,
}

/// Runs `method` from `table` (one place for the unknown-method answer).
pub fn dispatch<C: ?Sized>(
    table: &[Method<C>],
    ctx: &C,
    method: &str,
    args: Value,
) -> Result<Value, Failure> {
    match table.iter().find(|m| m.name == method) {
        Some(m) => (m.run)(ctx, args),
        None => Err(invalid_operation(method)),
    }
}

/// 2.5.2's answer to an unknown method:
/// `"Caught exception: Invalid operation '<name>'"`.
pub fn invalid_operation(method: &str) -> Failure {
    Failure::Other(format!("Invalid operation '{method}'"))
}

/// Decodes a method's arguments into their typed form; a wrong shape is a
/// failure naming the method and what was wrong.
pub fn decode_args<T: DeserializeOwned>(method: &str, args: Value) -> Result<T, Failure> {
    serde_json::from_value(args)
        .map_err(|e| Failure::Other(format!("Invalid arguments for {method}: {e}")))
}

/// How requests of other protocol versions are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionPolicy {
    /// As 2.5.2: another version is answered with a `LuxiError`, and a
    /// malformed request closes the connection without an answer.
    Exact,
    /// For 3.0 clients too: the version is ignored, and a malformed (but
    /// whole) request is answered with a failure.
    Lenient,
}

/// Tunables of the server; [`Options::default`] gives the named constants.
#[derive(Debug, Clone)]
pub struct Options {
    pub workers: usize,
    pub max_connections: usize,
    pub request_read_timeout: Duration,
    pub write_timeout: Duration,
    pub version_policy: VersionPolicy,
    /// See [`ANSWER_BUDGET`].
    pub answer_budget: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: CLIENT_REQUEST_WORKERS,
            max_connections: MAX_CONNECTIONS,
            request_read_timeout: REQUEST_READ_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            version_policy: VersionPolicy::Exact,
            answer_budget: ANSWER_BUDGET,
        }
    }
}

/// Why the master socket could not be set up.
#[derive(Debug)]
pub enum ServerError {
    /// The masterd user or the daemons group does not exist.
    UnknownOwner { user: String, group: String },
    /// A step of the socket creation failed.
    Io {
        what: &'static str,
        path: PathBuf,
        error: io::Error,
    },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::UnknownOwner { user, group } => {
                write!(f, "User or group not existing on system: {user}:{group}")
            }
            ServerError::Io { what, path, error } => {
                write!(f, "Cannot {what} {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for ServerError {}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ServerError {
    let path = path.to_path_buf();
    move |error| ServerError::Io { what, path, error }
}

/// The bound master socket, not yet served.
#[derive(Debug)]
pub struct LuxiServer {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file, to remove only our own.
    ident: (u64, u64),
}

impl LuxiServer {
    /// Creates the master socket at `paths.master_socket()`, owned by the
    /// masterd user and the daemons group.
    pub fn bind(paths: &Paths) -> Result<LuxiServer, ServerError> {
        let (user, group) = (GANETI_USERS[0], GANETI_GROUPS[4]);
        let unknown = || ServerError::UnknownOwner {
            user: user.into(),
            group: group.into(),
        };
        let uid = sys::getpwnam(user).ok().flatten().ok_or_else(unknown)?.uid;
        let gid = sys::getgrnam(group).ok().flatten().ok_or_else(unknown)?;
        LuxiServer::bind_at(&paths.master_socket(), uid, gid)
    }

    /// Creates a LUXI socket at `path` owned by `uid`:`gid`.
    pub fn bind_at(path: &Path, uid: u32, gid: u32) -> Result<LuxiServer, ServerError> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .ok_or_else(|| ServerError::Io {
                what: "create the socket in",
                path: path.to_path_buf(),
                error: io::Error::new(io::ErrorKind::InvalidInput, "no directory"),
            })?;
        ensure_socket_dir(dir, uid, gid)?;
        match std::fs::remove_file(path) {
            Ok(()) => log::info!("Removed the stale socket {}", path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove the stale socket", path)(e)),
        }
        let (listener, temp) = bind_temporary(path, dir)?;
        let placed = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(SOCKET_MODE))
            .map_err(io_err("set the mode of", &temp))
            .and_then(|()| {
                std::os::unix::fs::chown(&temp, Some(uid), Some(gid))
                    .map_err(io_err("set the owner of", &temp))
            })
            .and_then(|()| std::fs::rename(&temp, path).map_err(io_err("rename onto", path)));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        let setup = sys::listen(&listener, LISTEN_BACKLOG)
            .and_then(|()| listener.set_nonblocking(true))
            .and_then(|()| std::fs::symlink_metadata(path));
        match setup {
            Ok(meta) => Ok(LuxiServer {
                listener,
                path: path.to_path_buf(),
                ident: (meta.dev(), meta.ino()),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(path);
                Err(io_err("listen on", path)(e))
            }
        }
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the I/O thread and the request workers.
    pub fn serve(self, handler: Arc<dyn Handler>, options: Options) -> io::Result<Running> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let workers_wanted = options.workers.max(1);
        let shared = Arc::new(Shared {
            handler,
            options,
            counters: Arc::default(),
            queue: Mutex::new(VecDeque::new()),
            queue_cv: Condvar::new(),
            returned: Mutex::new(Vec::new()),
            wake_tx,
            stopping: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            warnings: Throttle::new(log::Level::Warn),
            protocol_errors: Throttle::new(log::Level::Error),
            next_id: AtomicU64::new(1),
        });
        let mut running = Running {
            shared: Arc::clone(&shared),
            path: self.path,
            ident: self.ident,
            io: None,
            workers: Vec::with_capacity(workers_wanted),
            stopped: false,
        };
        for n in 1..=workers_wanted {
            let s = Arc::clone(&shared);
            match daemon::spawn_named(format!("ClientReq{n}"), WORKER_STACK, move || worker(&s)) {
                Ok(w) => running.workers.push(w),
                Err(e) => {
                    running.stop(Duration::from_secs(1));
                    return Err(e);
                }
            }
        }
        let s = Arc::clone(&shared);
        let listener = self.listener;
        match daemon::spawn_named("luxi-poll".into(), daemon::WORKER_STACK, move || {
            io_loop(&s, listener, wake_rx)
        }) {
            Ok(t) => running.io = Some(t),
            Err(e) => {
                running.stop(Duration::from_secs(1));
                return Err(e);
            }
        }
        Ok(running)
    }
}

/// Creates the socket directory if needed; it must be a directory, not a
/// symbolic link.
fn ensure_socket_dir(dir: &Path, uid: u32, gid: u32) -> Result<(), ServerError> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fsutil::create_dirs(parent, 0o755).map_err(io_err("create", parent))?;
    }
    match std::fs::DirBuilder::new().mode(SOCKET_DIR_MODE).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err("create", dir)(e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io_err("examine", dir))?;
    if !meta.file_type().is_dir() {
        return Err(ServerError::Io {
            what: "use as the socket directory",
            path: dir.to_path_buf(),
            error: io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a directory (a symbolic link or a file is refused)",
            ),
        });
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(SOCKET_DIR_MODE))
        .map_err(io_err("set the mode of", dir))?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(io_err("set the owner of", dir))
}

/// Binds (and listens) at a fresh temporary name next to `path`, no longer
/// than `ganeti-master` (a socket path has at most 107 bytes), like 2.5.2's
/// `tempfile.mktemp` names.
fn bind_temporary(path: &Path, dir: &Path) -> Result<(UnixListener, PathBuf), ServerError> {
    let mut last = None;
    for _ in 0..BIND_ATTEMPTS {
        let mut random = [0u8; 4];
        openssl::rand::rand_bytes(&mut random).map_err(|e| ServerError::Io {
            what: "choose a temporary name for",
            path: path.to_path_buf(),
            error: io::Error::other(e),
        })?;
        let temp = dir.join(format!(".tmp{:08x}", u32::from_le_bytes(random)));
        match UnixListener::bind(&temp) {
            Ok(l) => return Ok((l, temp)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(io_err("bind a socket at", &temp)(e)),
        }
    }
    let error = last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse));
    Err(io_err("bind a socket next to", path)(error))
}

/// The serving threads; stop them with [`Running::shutdown`] (or
/// [`Service::stop`]). Dropping it stops them too.
pub struct Running {
    shared: Arc<Shared>,
    path: PathBuf,
    ident: (u64, u64),
    io: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    stopped: bool,
}

impl Running {
    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, removes the socket file, lets requests in work
    /// finish within [`daemon::SHUTDOWN_GRACE`] and joins the threads.
    pub fn shutdown(&mut self) {
        self.stop(daemon::SHUTDOWN_GRACE);
    }

    /// Connections open now (in work or waiting).
    pub fn open_connections(&self) -> usize {
        self.shared.counters.open.load(Ordering::SeqCst)
    }

    /// Unsent answer bytes (beyond each connection's free allowance) left
    /// to the I/O thread now; at most [`Options::answer_budget`].
    pub fn unsent_answer_bytes(&self) -> usize {
        self.shared.counters.answering.load(Ordering::SeqCst)
    }

    fn remove_socket_file(&self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.ident => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    log::error!("Cannot remove {}: {e}", self.path.display());
                }
            }
            Ok(_) => log::warn!(
                "{} was replaced by another file; leaving it",
                self.path.display()
            ),
            Err(_) => {}
        }
    }

    fn all_done(&self) -> bool {
        self.io.as_ref().map_or(true, |t| t.is_finished())
            && self.workers.iter().all(|w| w.is_finished())
    }
}

impl Service for Running {
    fn stop(&mut self, grace: Duration) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.remove_socket_file();
        let shared = &self.shared;
        shared.stopping.store(true, Ordering::SeqCst);
        shared.wake();
        let until = Instant::now() + grace;
        while !self.all_done() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !self.all_done() {
            log::warn!("Aborting LUXI requests still running after the shutdown grace time");
            shared.abort.store(true, Ordering::SeqCst);
            shared.wake();
            shared.notify_workers();
            let end = Instant::now() + Duration::from_secs(1);
            while !self.all_done() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // A handler that keeps running is left behind; the process exits.
        if let Some(t) = self.io.take().filter(|t| t.is_finished()) {
            let _ = t.join();
        }
        for w in std::mem::take(&mut self.workers) {
            if w.is_finished() {
                let _ = w.join();
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

/// Counters shared by the server and every connection.
#[derive(Debug, Default)]
struct Counters {
    /// Connections alive anywhere (parked, queued, in work).
    open: AtomicUsize,
    /// Bytes drawn from [`BUFFER_BUDGET`].
    charged: AtomicUsize,
    /// Unsent answer bytes drawn from [`Options::answer_budget`].
    answering: AtomicUsize,
}

/// One client connection.
struct Conn {
    stream: UnixStream,
    /// `pid=.., uid=.., gid=..` of the client, for log lines.
    peer: String,
    framer: Framer,
    /// Bytes this connection holds in [`Counters::charged`].
    charged: usize,
    /// An answer not yet fully written, and how much of it was.
    out: Vec<u8>,
    written: usize,
    /// Bytes this connection holds in [`Counters::answering`].
    answer_charged: usize,
    /// When a request being received, or an answer being written, is late.
    deadline: Option<Instant>,
    opened: Instant,
    counters: Arc<Counters>,
}

impl Conn {
    fn new(stream: UnixStream, peer: String, counters: &Arc<Counters>) -> Conn {
        counters.open.fetch_add(1, Ordering::SeqCst);
        Conn {
            stream,
            peer,
            framer: Framer::new(luxi::MAX_MESSAGE),
            charged: 0,
            out: Vec::new(),
            written: 0,
            answer_charged: 0,
            deadline: None,
            opened: Instant::now(),
            counters: Arc::clone(counters),
        }
    }

    fn writing(&self) -> bool {
        self.written < self.out.len()
    }

    /// Nothing of a request received, nothing to write.
    fn idle(&self) -> bool {
        !self.writing() && self.framer.buffered() == 0
    }

    /// Brings this connection's draw on the budget to `held` bytes (less
    /// the free allowance). False, with nothing changed, when the budget
    /// cannot cover it.
    fn charge(&mut self, held: usize) -> bool {
        let want = held.saturating_sub(FREE_ALLOWANCE);
        let total = &self.counters.charged;
        if want > self.charged {
            let extra = want - self.charged;
            let before = total.fetch_add(extra, Ordering::SeqCst);
            if before + extra > BUFFER_BUDGET {
                total.fetch_sub(extra, Ordering::SeqCst);
                return false;
            }
        } else {
            total.fetch_sub(self.charged - want, Ordering::SeqCst);
        }
        self.charged = want;
        true
    }
}

impl Conn {
    /// Draws the unsent part of the answer (less the free allowance) from
    /// the answer budget. False, with nothing changed, when it does not
    /// fit.
    fn charge_answer(&mut self, unsent: usize, budget: usize) -> bool {
        let want = unsent.saturating_sub(FREE_ALLOWANCE);
        let total = &self.counters.answering;
        total.fetch_sub(self.answer_charged, Ordering::SeqCst);
        self.answer_charged = 0;
        let before = total.fetch_add(want, Ordering::SeqCst);
        if before + want > budget {
            total.fetch_sub(want, Ordering::SeqCst);
            return false;
        }
        self.answer_charged = want;
        true
    }

    fn release_answer(&mut self) {
        self.counters
            .answering
            .fetch_sub(self.answer_charged, Ordering::SeqCst);
        self.answer_charged = 0;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.release_answer();
        self.counters
            .charged
            .fetch_sub(self.charged, Ordering::SeqCst);
        self.counters.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A whole request and its connection, for a worker.
struct Task {
    conn: Conn,
    message: Vec<u8>,
}

/// State shared by the I/O thread, the workers and the stopper.
struct Shared {
    handler: Arc<dyn Handler>,
    options: Options,
    counters: Arc<Counters>,
    queue: Mutex<VecDeque<Task>>,
    queue_cv: Condvar,
    /// Connections the workers hand back to the I/O thread.
    returned: Mutex<Vec<Conn>>,
    /// Writing a byte here wakes the I/O thread.
    wake_tx: UnixStream,
    /// Stop accepting; close connections once they have no request in work.
    stopping: AtomicBool,
    /// The grace time is over: drop everything.
    abort: AtomicBool,
    /// The I/O thread has ended; workers end when the queue is empty.
    finished: AtomicBool,
    warnings: Throttle,
    /// Malformed requests (2.5.2 logs each as an error).
    protocol_errors: Throttle,
    next_id: AtomicU64,
}

impl Shared {
    fn wake(&self) {
        // A full pipe means a wake-up is already pending.
        let _ = (&self.wake_tx).write(&[1]);
    }

    fn notify_workers(&self) {
        let _guard = lock(&self.queue);
        self.queue_cv.notify_all();
    }

    fn enqueue(&self, task: Task) {
        lock(&self.queue).push_back(task);
        self.queue_cv.notify_one();
    }
}

/// Logs a kind of message at most once per [`WARNING_INTERVAL`], with the
/// number of occurrences in between, so a flood of bad clients cannot fill
/// the log.
#[derive(Debug)]
struct Throttle {
    level: log::Level,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    fn new(level: log::Level) -> Throttle {
        Throttle {
            level,
            state: Mutex::new((None, 0)),
        }
    }

    fn warn(&self, msg: fmt::Arguments<'_>) {
        let mut st = lock(&self.state);
        let now = Instant::now();
        if st
            .0
            .is_some_and(|t| now.duration_since(t) < WARNING_INTERVAL)
        {
            st.1 += 1;
            log::debug!("{msg}");
            return;
        }
        if st.1 > 0 {
            log::log!(
                self.level,
                "{msg} ({} more such events in the last minute)",
                st.1
            );
        } else {
            log::log!(self.level, "{msg}");
        }
        *st = (Some(now), 0);
    }
}

/// Locks a mutex, ignoring poisoning: no code panics while holding these
/// locks (handlers run outside them).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a connection goes next.
enum Next {
    /// A whole request is buffered: to the workers.
    Work(Task),
    /// Wait in the I/O thread for its socket.
    Park(Conn),
    Close,
}

/// After an answer was written: the next buffered request, or back to
/// reading (closing once idle when stopping).
fn after_answer(shared: &Shared, mut conn: Conn) -> Next {
    if conn.framer.has_terminator() {
        return take_request(shared, conn);
    }
    if shared.stopping.load(Ordering::SeqCst) {
        return Next::Close;
    }
    conn.deadline =
        (conn.framer.buffered() > 0).then(|| Instant::now() + shared.options.request_read_timeout);
    Next::Park(conn)
}

/// Takes the next whole request out of the connection's buffer.
fn take_request(shared: &Shared, mut conn: Conn) -> Next {
    match conn.framer.next_message() {
        Ok(Some(message)) => {
            conn.deadline = None;
            Next::Work(Task { conn, message })
        }
        Ok(None) => Next::Park(conn),
        Err(e) => {
            shared
                .warnings
                .warn(format_args!("Closing connection from {}: {e}", conn.peer));
            Next::Close
        }
    }
}

/// The I/O thread: accepts, reads requests, finishes answers, enforces
/// deadlines.
fn io_loop(shared: &Shared, listener: UnixListener, wake_rx: UnixStream) {
    let mut listener = Some(listener);
    let mut parked: Vec<Conn> = Vec::new();
    let mut fds: Vec<sys::PollFd> = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut accept_pause: Option<Instant> = None;
    loop {
        // From the workers: waiting for their next request (a buffered one
        // went to the queue already), or for the socket to take the rest
        // of an answer (a pipelined request waits for that).
        parked.append(&mut lock(&shared.returned));
        let stopping = shared.stopping.load(Ordering::SeqCst);
        if shared.abort.load(Ordering::SeqCst) {
            break;
        }
        if stopping {
            listener = None;
            // Nothing in work on these: only answers still being written
            // are finished.
            parked.retain(Conn::writing);
        }
        let now = Instant::now();
        parked.retain(|c| match c.deadline {
            Some(d) if d <= now => {
                let what = if c.writing() {
                    "the answer was not read in time"
                } else {
                    "the request did not arrive in time"
                };
                log::info!("Closing connection from {}: {what}", c.peer);
                false
            }
            _ => true,
        });
        if stopping && shared.counters.open.load(Ordering::SeqCst) == 0 {
            break;
        }

        fds.clear();
        fds.push(sys::poll_fd(wake_rx.as_raw_fd(), sys::POLL_IN));
        let accepting = listener.is_some() && accept_pause.map_or(true, |p| p <= now);
        if accepting {
            accept_pause = None;
            if let Some(l) = &listener {
                fds.push(sys::poll_fd(l.as_raw_fd(), sys::POLL_IN));
            }
        }
        let first_conn = fds.len();
        for c in &parked {
            let events = if c.writing() {
                sys::POLL_OUT
            } else {
                sys::POLL_IN
            };
            fds.push(sys::poll_fd(c.stream.as_raw_fd(), events));
        }
        let mut timeout = parked.iter().filter_map(|c| c.deadline).min();
        if let Some(p) = accept_pause {
            timeout = Some(timeout.map_or(p, |t| t.min(p)));
        }
        let mut timeout = timeout.map(|t| t.saturating_duration_since(now));
        if stopping {
            // Workers finishing their last request do not always wake us.
            let tick = Duration::from_millis(20);
            timeout = Some(timeout.map_or(tick, |t| t.min(tick)));
        }
        if let Err(e) = sys::poll(&mut fds, timeout) {
            log::error!("poll failed: {e}");
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        if fds[0].revents != 0 {
            let mut sink = [0u8; 64];
            while matches!((&wake_rx).read(&mut sink), Ok(n) if n > 0) {}
        }
        // Highest index first, so swap_remove only moves entries already
        // looked at; conns that stay parked are put back afterwards.
        let mut keep = Vec::new();
        for i in (0..parked.len()).rev() {
            if fds[first_conn + i].revents == 0 {
                continue;
            }
            let conn = parked.swap_remove(i);
            let next = if conn.writing() {
                finish_answer(shared, conn)
            } else {
                read_request(shared, conn, &mut chunk)
            };
            park_or_dispatch(shared, next, &mut keep);
        }
        parked.append(&mut keep);
        if accepting && fds[1].revents != 0 {
            if let Some(l) = &listener {
                if !accept_all(shared, l, &mut parked) {
                    accept_pause = Some(Instant::now() + ACCEPT_PAUSE);
                }
            }
        }
    }
    drop(parked);
    shared.finished.store(true, Ordering::SeqCst);
    shared.notify_workers();
}

fn park_or_dispatch(shared: &Shared, next: Next, parked: &mut Vec<Conn>) {
    match next {
        Next::Work(task) => shared.enqueue(task),
        Next::Park(conn) => parked.push(conn),
        Next::Close => {}
    }
}

/// Reads what a parked connection has sent.
fn read_request(shared: &Shared, mut conn: Conn, chunk: &mut [u8]) -> Next {
    let want = conn.framer.room().clamp(1, chunk.len());
    match conn.stream.read(&mut chunk[..want]) {
        Ok(0) => {
            if conn.framer.buffered() > 0 {
                log::info!(
                    "Closing connection from {}: closed by the client in the middle \
                     of a request",
                    conn.peer
                );
            } else {
                log::debug!("Connection from {} closed by the client", conn.peer);
            }
            Next::Close
        }
        Ok(n) => {
            if conn.framer.buffered() == 0 {
                conn.deadline = Some(Instant::now() + shared.options.request_read_timeout);
            }
            conn.framer.push(&chunk[..n]);
            if !conn.charge(conn.framer.buffered()) {
                shared.warnings.warn(format_args!(
                    "Closing connection from {}: too many large requests are being \
                     received at once (over {BUFFER_BUDGET} bytes)",
                    conn.peer
                ));
                return Next::Close;
            }
            take_request(shared, conn)
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Next::Park(conn)
        }
        Err(e) => {
            log::info!("Closing connection from {}: {e}", conn.peer);
            Next::Close
        }
    }
}

/// Writes more of a pending answer.
fn finish_answer(shared: &Shared, mut conn: Conn) -> Next {
    match write_some(&mut conn) {
        Ok(true) => after_answer(shared, conn),
        Ok(false) => Next::Park(conn),
        Err(e) => {
            log::info!("Closing connection from {}: {e}", conn.peer);
            Next::Close
        }
    }
}

/// Writes what the socket takes now; true once the whole answer is out.
fn write_some(conn: &mut Conn) -> io::Result<bool> {
    while conn.written < conn.out.len() {
        match conn.stream.write(&conn.out[conn.written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => conn.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    conn.out = Vec::new();
    conn.written = 0;
    conn.release_answer();
    Ok(true)
}

/// Writes the rest of the answer from a worker, blocking until `deadline`
/// (the answer budget is spent: the worker waits for the client instead
/// of leaving the bytes to the I/O thread).
fn write_blocking(conn: &mut Conn, deadline: Instant) -> io::Result<()> {
    conn.stream.set_nonblocking(false)?;
    let mut result = Ok(());
    while conn.written < conn.out.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            result = Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the answer was not read in time",
            ));
            break;
        }
        if let Err(e) = conn.stream.set_write_timeout(Some(left)) {
            result = Err(e);
            break;
        }
        match conn.stream.write(&conn.out[conn.written..]) {
            Ok(0) => {
                result = Err(io::ErrorKind::WriteZero.into());
                break;
            }
            Ok(n) => conn.written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let restored = conn
        .stream
        .set_write_timeout(None)
        .and_then(|()| conn.stream.set_nonblocking(true));
    result?;
    restored?;
    conn.out = Vec::new();
    conn.written = 0;
    conn.release_answer();
    Ok(())
}

/// Accepts every pending connection. False after an accept error (out of
/// descriptors, say), so the caller pauses instead of spinning.
fn accept_all(shared: &Shared, listener: &UnixListener, parked: &mut Vec<Conn>) -> bool {
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::error!("Error accepting a LUXI connection: {e}");
                return false;
            }
        };
        let n = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let peer = match sys::peer_credentials(&stream) {
            Ok((pid, uid, gid)) => format!("pid={pid}, uid={uid}, gid={gid}"),
            Err(_) => format!("connection {n}"),
        };
        if let Err(e) = stream.set_nonblocking(true) {
            log::warn!("Cannot set up the connection from {peer}: {e}");
            continue;
        }
        if shared.counters.open.load(Ordering::SeqCst) >= shared.options.max_connections {
            // Make room: the oldest idle connection, else the oldest one
            // still sending a request.
            let victim = parked
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.writing())
                .min_by_key(|(_, c)| (!c.idle(), c.opened))
                .map(|(i, _)| i);
            match victim {
                Some(i) => {
                    let old = parked.swap_remove(i);
                    shared.warnings.warn(format_args!(
                        "Too many LUXI connections: closing the one from {}",
                        old.peer
                    ));
                }
                None => {
                    shared.warnings.warn(format_args!(
                        "Too many LUXI connections, all busy: refusing the one from {peer}"
                    ));
                    continue;
                }
            }
        }
        log::info!("Accepted connection from {peer}");
        parked.push(Conn::new(stream, peer, &shared.counters));
    }
}

fn worker(shared: &Shared) {
    loop {
        let task = {
            let mut q = lock(&shared.queue);
            loop {
                if let Some(t) = q.pop_front() {
                    break Some(t);
                }
                if shared.finished.load(Ordering::SeqCst) || shared.abort.load(Ordering::SeqCst) {
                    break None;
                }
                q = shared.queue_cv.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let Some(task) = task else { return };
        if shared.abort.load(Ordering::SeqCst) {
            continue;
        }
        match serve(shared, task) {
            Next::Work(task) => shared.enqueue(task),
            Next::Park(conn) => {
                lock(&shared.returned).push(conn);
                shared.wake();
            }
            Next::Close => {}
        }
    }
}

/// Answers one request and writes what the socket takes of the answer.
fn serve(shared: &Shared, task: Task) -> Next {
    let Task { mut conn, message } = task;
    let lenient = shared.options.version_policy == VersionPolicy::Lenient;
    let result = match luxi::parse_request(&message) {
        Err(e) if lenient => {
            let peer = &conn.peer;
            shared
                .protocol_errors
                .warn(format_args!("Protocol Error from {peer}: {e}"));
            Err(Failure::Other(e.to_string()))
        }
        Err(e) => {
            let peer = &conn.peer;
            shared.protocol_errors.warn(format_args!(
                "Protocol Error: {e}; closing connection from {peer}"
            ));
            return Next::Close;
        }
        Ok(request) => {
            drop(message);
            answer(shared, request)
        }
    };
    // The request is gone; only what follows it stays charged.
    let held = conn.framer.buffered();
    conn.charge(held);
    conn.out = luxi::encode_response(&result);
    conn.written = 0;
    match write_some(&mut conn) {
        Ok(true) => after_answer(shared, conn),
        Ok(false) => {
            let deadline = Instant::now() + shared.options.write_timeout;
            let unsent = conn.out.len() - conn.written;
            if conn.charge_answer(unsent, shared.options.answer_budget) {
                conn.deadline = Some(deadline);
                return Next::Park(conn);
            }
            shared.warnings.warn(format_args!(
                "Unread LUXI answers fill the answer budget ({} bytes): writing the one \
                 for {} from its worker",
                shared.options.answer_budget, conn.peer
            ));
            match write_blocking(&mut conn, deadline) {
                Ok(()) => after_answer(shared, conn),
                Err(e) => {
                    log::info!("Closing connection from {}: {e}", conn.peer);
                    Next::Close
                }
            }
        }
        Err(e) => {
            log::info!("Closing connection from {}: {e}", conn.peer);
            Next::Close
        }
    }
}

/// Checks the version and runs the handler; a panic becomes a failure.
fn answer(shared: &Shared, request: Request) -> Result<Value, Failure> {
    if shared.options.version_policy == VersionPolicy::Exact {
        request.check_version()?;
    } else if let Some(v) = &request.version {
        log::debug!("LUXI request of version {v}");
    }
    let method = request.method.clone();
    let handler = &shared.handler;
    let result = match catch_unwind(AssertUnwindSafe(|| handler.handle_request(request))) {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            log::error!("LUXI method {method} panicked: {what}");
            Err(Failure::Other(format!("internal error: {what}")))
        }
    };
    if let Err(f) = &result {
        log::info!("LUXI request {method} failed: {f}");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Table;
    fn echo(_: &Table, args: Value) -> Result<Value, Failure> {
        Ok(args)
    }
    const METHODS: &[Method<Table>] = &[Method {
        name: "Echo",
        run: echo,
    }];

    #[test]
    fn dispatch_answers_unknown_methods_as_2_5_2() {
        assert_eq!(
            dispatch(METHODS, &Table, "Echo", json!([1])),
            Ok(json!([1]))
        );
        let e = dispatch(METHODS, &Table, "echo", json!([])).unwrap_err();
        assert_eq!(
            e.encode(),
            json!("Caught exception: Invalid operation 'echo'")
        );
    }

    #[test]
    fn arguments_of_the_wrong_shape_name_the_method() {
        let ok: (String, u64) = decode_args("X", json!(["a", 1])).unwrap();
        assert_eq!(ok, ("a".into(), 1));
        let e = decode_args::<(String, u64)>("WaitForJobChange", json!([1, "a"])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Invalid arguments for WaitForJobChange: "),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_owner_is_reported_as_2_5_2_does() {
        let e = ServerError::UnknownOwner {
            user: "gnt-masterd".into(),
            group: "gnt-daemons".into(),
        };
        assert_eq!(
            e.to_string(),
            "User or group not existing on system: gnt-masterd:gnt-daemons"
        );
    }

    #[test]
    fn the_budget_is_all_or_nothing_and_refuses_one_byte_over() {
        let counters: Arc<Counters> = Arc::default();
        let (a, _b) = UnixStream::pair().unwrap();
        let (c, _d) = UnixStream::pair().unwrap();
        let mut one = Conn::new(a, "one".into(), &counters);
        let mut two = Conn::new(c, "two".into(), &counters);
        assert!(one.charge(FREE_ALLOWANCE));
        assert_eq!(counters.charged.load(Ordering::SeqCst), 0);
        assert!(one.charge(FREE_ALLOWANCE + BUFFER_BUDGET));
        assert_eq!(counters.charged.load(Ordering::SeqCst), BUFFER_BUDGET);
        assert!(!two.charge(FREE_ALLOWANCE + 1));
        assert_eq!(counters.charged.load(Ordering::SeqCst), BUFFER_BUDGET);
        assert!(one.charge(FREE_ALLOWANCE + BUFFER_BUDGET - 1));
        assert!(two.charge(FREE_ALLOWANCE + 1));
        drop(one);
        assert_eq!(counters.charged.load(Ordering::SeqCst), 1);
        drop(two);
        assert_eq!(counters.charged.load(Ordering::SeqCst), 0);
        assert_eq!(counters.open.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_answer_budget_takes_the_limit_and_refuses_one_byte_over() {
        let counters: Arc<Counters> = Arc::default();
        let (a, _b) = UnixStream::pair().unwrap();
        let (c, _d) = UnixStream::pair().unwrap();
        let mut one = Conn::new(a, "one".into(), &counters);
        let mut two = Conn::new(c, "two".into(), &counters);
        let budget = 1000;
        assert!(one.charge_answer(FREE_ALLOWANCE + budget, budget));
        assert_eq!(counters.answering.load(Ordering::SeqCst), budget);
        assert!(!two.charge_answer(FREE_ALLOWANCE + 1, budget));
        assert!(two.charge_answer(FREE_ALLOWANCE, budget), "free allowance");
        // A new charge replaces the old one.
        assert!(one.charge_answer(FREE_ALLOWANCE + budget - 1, budget));
        assert!(two.charge_answer(FREE_ALLOWANCE + 1, budget));
        assert!(!two.charge_answer(FREE_ALLOWANCE + 2, budget));
        assert_eq!(counters.answering.load(Ordering::SeqCst), budget - 1);
        one.release_answer();
        assert_eq!(counters.answering.load(Ordering::SeqCst), 0);
        assert!(two.charge_answer(FREE_ALLOWANCE + 7, budget));
        drop(two);
        assert_eq!(counters.answering.load(Ordering::SeqCst), 0);
    }
}
