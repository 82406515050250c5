//! The node daemon's RPC server.
//!
//! One dispatcher thread owns the listening socket and every connection that
//! is waiting for bytes: a TLS handshake under way, a request arriving, a
//! kept-alive connection between requests. It waits for all of them at once
//! with `poll`. A fixed pool of `max_clients` workers does the work: when a
//! connection has bytes, a worker takes it, advances the TLS handshake and
//! reads what has arrived without blocking, and hands the connection back
//! when it would have to wait. Once a whole request is in, the worker runs
//! the procedure and writes the answer.
//!
//! So an idle, slow or hostile client costs a socket and its buffers, never
//! a worker, and only until its deadline: [`REQUEST_READ_TIMEOUT`] from the
//! connection (or the first byte of a later request) to the last byte of the
//! request, [`IDLE_TIMEOUT`] between requests. Memory stays bounded:
//! at most [`MAX_CONNECTIONS`] connections (the oldest waiting one is closed
//! to make room), heads of at most [`http::MAX_HEAD`] bytes, bodies within
//! their procedure's limit and, all together, within [`BODY_BUDGET`].

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openssl::ssl::{ErrorCode, HandshakeError, MidHandshakeSslStream, SslAcceptor, SslStream};
use serde_json::Value;

use super::{Context, Procedure, RpcError};
use crate::daemon::{self, Service};
use crate::http::{self, Head, HttpError, Response};
use crate::rpc;
use crate::sys;

/// Budget for receiving one request: from the connection (the TLS
/// handshake included), or from the first byte of a later request on a
/// kept-alive connection, to the last byte of its body.
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may wait for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Budget for writing one answer, in all (a client that does not read its
/// answer holds a worker this long at most).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Listen backlog, as 2.5.2.
pub const LISTEN_BACKLOG: i32 = 1024;
/// Most connections open at once; past it, the oldest waiting connection
/// is closed to make room for the new one.
pub const MAX_CONNECTIONS: usize = 256;
/// Most request-body bytes held by all connections together. A request
/// whose body would go past it is answered 503 before it is read.
pub const BODY_BUDGET: usize = 64 * 1024 * 1024;
/// Most connections one address may have open before its TLS handshake
/// (or, without TLS, its first request) is done: a client without the
/// cluster certificate cannot take all the room.
pub const MAX_UNAUTHENTICATED_PER_PEER: usize = 32;
/// After refusing a request, how long the rest of what the client sends is
/// read and thrown away, so that closing does not reset the connection
/// before the client has read the refusal (2.5.2's `CLOSE_TIMEOUT`).
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(1);
/// Most requests answered on one connection before it goes to the back of
/// the queue, so a client pipelining without end cannot keep a worker.
const MAX_REQUESTS_PER_TURN: usize = 8;
/// How often the same kind of warning about clients is logged: failed
/// handshakes and refused connections are counted in between, so a flood
/// cannot fill the log.
const WARNING_INTERVAL: Duration = Duration::from_secs(60);
/// Most bytes taken from a socket in one read.
const READ_CHUNK: usize = 16 * 1024;
/// A buffer bigger than this is given back once its request is done.
const KEEP_BUFFER: usize = 64 * 1024;

/// Counters shared by the server and every connection.
#[derive(Debug, Default)]
struct Counters {
    /// Connections alive anywhere (parked, queued or in a worker).
    open: AtomicUsize,
    /// Body bytes reserved by requests being received or served.
    body_bytes: AtomicUsize,
}

/// The socket of a connection at each stage.
enum Stream {
    /// Accepted; no TLS byte seen yet (or plain HTTP not started).
    Fresh(TcpStream),
    Handshake(MidHandshakeSslStream<TcpStream>),
    Plain(TcpStream),
    Tls(SslStream<TcpStream>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Fresh(t) | Stream::Plain(t) => t,
            Stream::Handshake(m) => m.get_ref(),
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

/// A request whose head has been read and accepted.
struct Pending {
    head: Head,
    head_len: usize,
    body_len: usize,
    procedure: &'static Procedure,
    continue_sent: bool,
}

/// One client connection.
struct Conn {
    /// `None` only while a worker moves the stream between stages.
    stream: Option<Stream>,
    peer: SocketAddr,
    buf: Vec<u8>,
    pending: Option<Pending>,
    /// Body bytes this connection holds in [`Counters::body_bytes`].
    reserved: usize,
    deadline: Instant,
    opened: Instant,
    /// Waiting for the socket to take bytes (a TLS step wants to write).
    want_write: bool,
    /// Answered at least one request and waiting for the next.
    between_requests: bool,
    /// The TLS handshake (client certificate included) succeeded; without
    /// TLS, a request was answered.
    authenticated: bool,
    /// A request was refused: what the client still sends is read and
    /// dropped until it closes or [`LINGER_TIMEOUT`] passes.
    closing: bool,
    counters: Arc<Counters>,
}

impl Conn {
    fn new(tcp: TcpStream, peer: SocketAddr, counters: &Arc<Counters>) -> Conn {
        counters.open.fetch_add(1, Ordering::SeqCst);
        let now = Instant::now();
        Conn {
            stream: Some(Stream::Fresh(tcp)),
            peer,
            buf: Vec::new(),
            pending: None,
            reserved: 0,
            deadline: now + REQUEST_READ_TIMEOUT,
            opened: now,
            want_write: false,
            between_requests: false,
            authenticated: false,
            closing: false,
            counters: Arc::clone(counters),
        }
    }

    fn fd(&self) -> RawFd {
        self.stream.as_ref().map_or(-1, |s| s.tcp().as_raw_fd())
    }

    /// Idle: nothing of a request has arrived.
    fn idle(&self) -> bool {
        self.buf.is_empty() && self.pending.is_none()
    }

    fn release_body(&mut self) {
        self.counters
            .body_bytes
            .fetch_sub(self.reserved, Ordering::SeqCst);
        self.reserved = 0;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.release_body();
        self.counters.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// State shared by the dispatcher, the workers and the stopper.
struct Shared {
    ctx: Context,
    /// `None` with `--no-ssl`.
    tls: Option<SslAcceptor>,
    counters: Arc<Counters>,
    /// Connections with bytes to read, for the workers.
    ready: Mutex<VecDeque<Conn>>,
    ready_cv: Condvar,
    /// Connections the workers hand back to the dispatcher.
    returned: Mutex<Vec<Conn>>,
    /// Writing a byte here wakes the dispatcher.
    wake_tx: UnixStream,
    /// Stop accepting; close connections as soon as they are idle.
    stopping: AtomicBool,
    /// The grace time is over: close everything.
    abort: AtomicBool,
    /// The dispatcher has ended; workers end when the queue is empty.
    finished: AtomicBool,
    /// Per worker: the socket of the request it is answering, to abort it.
    busy: Vec<Mutex<Option<TcpStream>>>,
    /// Warnings about failed handshakes and refused connections.
    client_warnings: Throttle,
}

/// Logs a kind of warning at most once per [`WARNING_INTERVAL`], with the
/// number of occurrences in between.
#[derive(Debug, Default)]
struct Throttle {
    /// When the last warning was logged, and how many were not logged since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    fn warn(&self, msg: std::fmt::Arguments<'_>) {
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
            log::warn!("{msg} ({} more such events in the last minute)", st.1);
        } else {
            log::warn!("{msg}");
        }
        *st = (Some(now), 0);
    }
}

impl Shared {
    fn wake(&self) {
        // A full pipe means a wake-up is already pending.
        let _ = (&self.wake_tx).write(&[1]);
    }
}

/// Locks a mutex, ignoring poisoning: the data stays consistent because no
/// code panics while holding these locks.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running server.
pub struct Server {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    dispatcher: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts the dispatcher and `max_clients` workers on a bound listener;
    /// with `tls`, every connection must complete the handshake (client
    /// certificate included) within the request read timeout.
    pub fn start(
        listener: TcpListener,
        max_clients: usize,
        tls: Option<SslAcceptor>,
        ctx: Context,
    ) -> io::Result<Server> {
        sys::listen(&listener, LISTEN_BACKLOG)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            ctx,
            tls,
            counters: Arc::default(),
            ready: Mutex::new(VecDeque::new()),
            ready_cv: Condvar::new(),
            returned: Mutex::new(Vec::new()),
            wake_tx,
            stopping: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            busy: (0..max_clients).map(|_| Mutex::new(None)).collect(),
            client_warnings: Throttle::default(),
        });
        let mut workers = Vec::with_capacity(max_clients);
        for id in 0..max_clients {
            let s = Arc::clone(&shared);
            workers.push(daemon::spawn_named(
                format!("rpc-{id}"),
                daemon::WORKER_STACK,
                move || worker(&s, id),
            )?);
        }
        let s = Arc::clone(&shared);
        let dispatcher = daemon::spawn_named("rpc-poll".into(), daemon::WORKER_STACK, move || {
            dispatch(&s, listener, wake_rx)
        })?;
        Ok(Server {
            shared,
            local_addr,
            dispatcher: Some(dispatcher),
            workers,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Service for Server {
    fn stop(&mut self, grace: Duration) {
        let shared = &self.shared;
        shared.stopping.store(true, Ordering::SeqCst);
        shared.wake();
        let until = Instant::now() + grace;
        let all_done = |s: &Server| {
            s.dispatcher.as_ref().map_or(true, |d| d.is_finished())
                && s.workers.iter().all(|w| w.is_finished())
        };
        while !all_done(self) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !all_done(self) {
            log::warn!("Aborting requests still running after the shutdown grace time");
            shared.abort.store(true, Ordering::SeqCst);
            shared.wake();
            for slot in &shared.busy {
                if let Some(tcp) = lock(slot).as_ref() {
                    let _ = tcp.shutdown(Shutdown::Both);
                }
            }
            // The dispatcher ends at once now; a procedure that keeps
            // running is left behind, the process exits anyway.
            let end = Instant::now() + Duration::from_secs(1);
            while !all_done(self) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if let Some(d) = self.dispatcher.take().filter(|d| d.is_finished()) {
            let _ = d.join();
        }
        for w in self.workers.drain(..).filter(|w| w.is_finished()) {
            let _ = w.join();
        }
    }
}

/// The dispatcher: accepts, parks waiting connections, passes ready ones
/// to the workers, closes those past their deadline.
fn dispatch(shared: &Shared, listener: TcpListener, wake_rx: UnixStream) {
    let mut listener = Some(listener);
    let mut parked: Vec<Conn> = Vec::new();
    let mut fds: Vec<sys::PollFd> = Vec::new();
    let mut accept_pause: Option<Instant> = None;
    loop {
        parked.append(&mut lock(&shared.returned));
        let stopping = shared.stopping.load(Ordering::SeqCst);
        if stopping {
            // New connections are refused; waiting ones close once idle.
            listener = None;
            parked.retain(|c| !c.idle());
        }
        if shared.abort.load(Ordering::SeqCst) {
            parked.clear();
            break;
        }
        let now = Instant::now();
        parked.retain(|c| {
            if c.deadline > now {
                return true;
            }
            if !c.closing && (!c.idle() || !c.between_requests) {
                log::info!(
                    "Closing the connection from {}: request not received in time",
                    c.peer
                );
            }
            false
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
            let events = if c.want_write {
                sys::POLL_OUT
            } else {
                sys::POLL_IN
            };
            fds.push(sys::poll_fd(c.fd(), events));
        }
        let mut timeout = parked.iter().map(|c| c.deadline).min();
        if let Some(p) = accept_pause {
            timeout = Some(timeout.map_or(p, |t| t.min(p)));
        }
        let mut timeout = timeout.map(|t| t.saturating_duration_since(now));
        if stopping {
            // Workers finishing their last request do not wake us.
            timeout = Some(timeout.map_or(Duration::from_millis(20), |t| {
                t.min(Duration::from_millis(20))
            }));
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
        // Ready connections go to the workers (highest index first, so
        // swap_remove only moves entries already looked at).
        let mut handed = 0;
        for i in (0..parked.len()).rev() {
            if fds[first_conn + i].revents != 0 {
                let c = parked.swap_remove(i);
                lock(&shared.ready).push_back(c);
                handed += 1;
            }
        }
        for _ in 0..handed {
            shared.ready_cv.notify_one();
        }
        if accepting && fds[1].revents != 0 {
            if let Some(l) = &listener {
                if !accept_all(shared, l, &mut parked) {
                    accept_pause = Some(Instant::now() + Duration::from_millis(100));
                }
            }
        }
    }
    drop(parked);
    shared.finished.store(true, Ordering::SeqCst);
    let _guard = lock(&shared.ready);
    shared.ready_cv.notify_all();
}

/// Accepts every pending connection. Returns false after an accept error
/// (out of descriptors, say), so the caller pauses instead of spinning.
fn accept_all(shared: &Shared, listener: &TcpListener, parked: &mut Vec<Conn>) -> bool {
    loop {
        let (tcp, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::error!("Error accepting a connection: {e}");
                return false;
            }
        };
        if let Err(e) = tcp
            .set_nonblocking(true)
            .and_then(|()| tcp.set_nodelay(true))
        {
            log::warn!("Cannot set up the connection from {peer}: {e}");
            continue;
        }
        let unauthenticated = parked
            .iter()
            .filter(|c| !c.authenticated && c.peer.ip() == peer.ip())
            .count();
        if unauthenticated >= MAX_UNAUTHENTICATED_PER_PEER {
            shared.client_warnings.warn(format_args!(
                "Refusing a connection from {}: {MAX_UNAUTHENTICATED_PER_PEER} of its \
                 connections have not completed a handshake",
                peer.ip()
            ));
            continue;
        }
        if shared.counters.open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            // Make room: the oldest connection that has not authenticated,
            // else the oldest authenticated one waiting for a request.
            let victim = parked
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.authenticated || c.idle())
                .min_by_key(|(_, c)| (c.authenticated, c.opened))
                .map(|(i, _)| i);
            match victim {
                Some(i) => {
                    let c = parked.swap_remove(i);
                    shared.client_warnings.warn(format_args!(
                        "Too many connections: closing the one from {}",
                        c.peer
                    ));
                }
                None => {
                    shared
                        .client_warnings
                        .warn(format_args!("Too many connections: refusing {peer}"));
                    continue;
                }
            }
        }
        parked.push(Conn::new(tcp, peer, &shared.counters));
    }
}

fn worker(shared: &Shared, id: usize) {
    loop {
        let conn = {
            let mut q = lock(&shared.ready);
            loop {
                if let Some(c) = q.pop_front() {
                    break Some(c);
                }
                if shared.finished.load(Ordering::SeqCst) {
                    break None;
                }
                q = shared.ready_cv.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let Some(conn) = conn else { return };
        if shared.abort.load(Ordering::SeqCst)
            || (shared.stopping.load(Ordering::SeqCst) && conn.between_requests && conn.idle())
        {
            continue;
        }
        match advance(shared, id, conn) {
            Next::Park(conn) => {
                lock(&shared.returned).push(conn);
                shared.wake();
            }
            Next::Requeue(conn) => {
                lock(&shared.ready).push_back(conn);
                shared.ready_cv.notify_one();
            }
            Next::Done => {}
        }
    }
}

/// What a read without blocking found.
enum Got {
    Bytes,
    /// Nothing now; wait for the socket to be readable (or, for a TLS
    /// step, writable).
    Wait {
        write: bool,
    },
    Closed,
    Failed(String),
}

/// Works on a connection until it would block. Returns it when it must
/// wait for its socket, `None` when it is done with.
fn advance(shared: &Shared, id: usize, mut conn: Conn) -> Next {
    let mut answered = 0;
    loop {
        if conn.closing {
            return drain(conn);
        }
        let Some(stream) = conn.stream.take() else {
            return Next::Done;
        };
        let stream = match stream {
            Stream::Fresh(tcp) => match &shared.tls {
                None => Some(Stream::Plain(tcp)),
                Some(acceptor) => handshake_step(shared, acceptor.accept(tcp), &mut conn),
            },
            Stream::Handshake(mid) => handshake_step(shared, mid.handshake(), &mut conn),
            established => Some(established),
        };
        match stream {
            None => return Next::Done,
            Some(s @ Stream::Handshake(_)) => {
                conn.stream = Some(s);
                return Next::Park(conn);
            }
            Some(s) => {
                if let Stream::Tls(_) = s {
                    conn.authenticated = true;
                }
                conn.stream = Some(s);
            }
        }

        match serve_buffered(shared, id, &mut conn) {
            Step::NeedBytes => {}
            Step::Again => {
                conn.authenticated = true;
                answered += 1;
                if answered >= MAX_REQUESTS_PER_TURN && !conn.buf.is_empty() {
                    // More pipelined requests: let others have a turn.
                    return Next::Requeue(conn);
                }
                continue;
            }
            Step::Close => return Next::Done,
            Step::Linger => return linger(conn),
        }
        let was_idle = conn.idle();
        match read_some(&mut conn) {
            Got::Bytes => {
                if was_idle && conn.between_requests {
                    conn.between_requests = false;
                    conn.deadline = Instant::now() + REQUEST_READ_TIMEOUT;
                }
            }
            Got::Wait { write } => {
                conn.want_write = write;
                return Next::Park(conn);
            }
            Got::Closed => {
                if !conn.idle() {
                    log::info!(
                        "{} closed the connection in the middle of a request",
                        conn.peer
                    );
                }
                return Next::Done;
            }
            Got::Failed(e) => {
                log::info!("Connection from {} failed: {e}", conn.peer);
                return Next::Done;
            }
        }
    }
}

/// Where a connection goes after a worker's turn.
enum Next {
    /// Wait in the dispatcher for its socket.
    Park(Conn),
    /// Complete requests are buffered: back of the workers' queue.
    Requeue(Conn),
    Done,
}

/// Starts the lingering close after a refusal: no more answers, the write
/// side shut (TLS close_notify first), and what the client still sends read
/// and dropped for up to [`LINGER_TIMEOUT`].
fn linger(mut conn: Conn) -> Next {
    if let Some(Stream::Tls(tls)) = conn.stream.as_mut() {
        let _ = tls.shutdown();
    }
    if let Some(s) = conn.stream.as_ref() {
        let _ = s.tcp().shutdown(Shutdown::Write);
    }
    conn.closing = true;
    conn.pending = None;
    conn.buf = Vec::new();
    conn.release_body();
    conn.want_write = false;
    conn.deadline = Instant::now() + LINGER_TIMEOUT;
    drain(conn)
}

/// Reads and drops what a closing connection's client sends; done at the
/// end of its data.
fn drain(conn: Conn) -> Next {
    let Some(tcp) = conn.stream.as_ref().map(Stream::tcp) else {
        return Next::Done;
    };
    let mut sink = [0u8; 4096];
    loop {
        match (&mut &*tcp).read(&mut sink) {
            Ok(0) => return Next::Done,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Park(conn),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Next::Done,
        }
    }
}

/// One step of a TLS handshake: the established stream, or the connection
/// parked mid-handshake (`Some(Stream::Handshake)`), or `None` when it
/// failed (logged).
fn handshake_step(
    shared: &Shared,
    r: Result<SslStream<TcpStream>, HandshakeError<TcpStream>>,
    conn: &mut Conn,
) -> Option<Stream> {
    match r {
        Ok(tls) => Some(Stream::Tls(tls)),
        Err(HandshakeError::WouldBlock(mid)) => {
            conn.want_write = mid.error().code() == ErrorCode::WANT_WRITE;
            Some(Stream::Handshake(mid))
        }
        Err(HandshakeError::Failure(mid)) => {
            shared.client_warnings.warn(format_args!(
                "TLS handshake with {} failed: {}",
                conn.peer,
                mid.error()
            ));
            None
        }
        Err(HandshakeError::SetupFailure(e)) => {
            log::error!("Cannot set up TLS for {}: {e}", conn.peer);
            None
        }
    }
}

/// Reads what has arrived, without blocking, never past what the request
/// being received can still need.
fn read_some(conn: &mut Conn) -> Got {
    let cap = match &conn.pending {
        Some(p) => p.head_len + p.body_len,
        // One byte over the largest head, so that parse_head sees it.
        None => http::MAX_HEAD + 1,
    };
    let want = cap.saturating_sub(conn.buf.len()).clamp(1, READ_CHUNK);
    let start = conn.buf.len();
    conn.buf.resize(start + want, 0);
    let r = match conn.stream.as_mut() {
        Some(Stream::Plain(tcp)) => match tcp.read(&mut conn.buf[start..]) {
            Ok(0) => Got::Closed,
            Ok(n) => {
                conn.buf.truncate(start + n);
                Got::Bytes
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Got::Wait { write: false },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Got::Wait { write: false },
            Err(e) => Got::Failed(e.to_string()),
        },
        Some(Stream::Tls(tls)) => match tls.ssl_read(&mut conn.buf[start..]) {
            Ok(0) => Got::Closed,
            Ok(n) => {
                conn.buf.truncate(start + n);
                Got::Bytes
            }
            Err(e) => match e.code() {
                ErrorCode::WANT_READ => Got::Wait { write: false },
                ErrorCode::WANT_WRITE => Got::Wait { write: true },
                ErrorCode::ZERO_RETURN => Got::Closed,
                ErrorCode::SYSCALL if e.io_error().is_none() => Got::Closed,
                _ => Got::Failed(e.to_string()),
            },
        },
        _ => Got::Failed("connection not established".into()),
    };
    if !matches!(r, Got::Bytes) {
        conn.buf.truncate(start);
    }
    r
}

/// What to do after looking at the buffered bytes.
enum Step {
    /// The request is not complete: read more.
    NeedBytes,
    /// A request was answered and the connection stays open: look again.
    Again,
    Close,
    /// A request was refused: close after a lingering read.
    Linger,
}

/// Answers the request in the buffer if it is complete; refuses a bad one.
fn serve_buffered(shared: &Shared, id: usize, conn: &mut Conn) -> Step {
    if conn.pending.is_none() {
        if conn.buf.is_empty() {
            return Step::NeedBytes;
        }
        let (head, head_len) = match http::parse_head(&conn.buf) {
            Ok(Some(h)) => h,
            Ok(None) => return Step::NeedBytes,
            Err(e) => return refuse(conn, None, &e),
        };
        match accept_head(shared, conn, head, head_len) {
            Ok(p) => conn.pending = Some(p),
            Err(step) => return step,
        }
    }
    let Some(p) = conn.pending.as_mut() else {
        return Step::Close;
    };
    let total = p.head_len + p.body_len;
    if conn.buf.len() < total {
        let send_continue = p.head.expect_continue && !p.continue_sent;
        p.continue_sent = true;
        if send_continue {
            if let Err(e) = write_blocking(conn, b"HTTP/1.1 100 Continue\r\n\r\n") {
                log::info!("Cannot write to {}: {e}", conn.peer);
                return Step::Close;
            }
        }
        return Step::NeedBytes;
    }
    let Some(p) = conn.pending.take() else {
        return Step::Close;
    };
    if let Some(Ok(tcp)) = conn.stream.as_ref().map(|s| s.tcp().try_clone()) {
        *lock(&shared.busy[id]) = Some(tcp);
    }
    let result = call(p.procedure, &shared.ctx, &conn.buf[p.head_len..total]);
    if let Err(msg) = &result {
        log::info!("RPC {} failed: {msg}", p.procedure.name);
    }
    let keep_alive = p.head.keep_alive && !shared.stopping.load(Ordering::SeqCst);
    log_request(conn.peer, &p.head, 200);
    let written = respond(
        conn,
        200,
        "OK",
        "application/json",
        &rpc::envelope(&result),
        keep_alive,
    );
    *lock(&shared.busy[id]) = None;
    conn.release_body();
    conn.buf.drain(..total);
    if conn.buf.is_empty() && conn.buf.capacity() > KEEP_BUFFER {
        conn.buf = Vec::new();
    }
    if let Err(e) = written {
        log::info!("Cannot write the answer to {}: {e}", conn.peer);
        return Step::Close;
    }
    if !keep_alive {
        return Step::Close;
    }
    conn.between_requests = true;
    conn.deadline = Instant::now()
        + if conn.buf.is_empty() {
            IDLE_TIMEOUT
        } else {
            REQUEST_READ_TIMEOUT
        };
    Step::Again
}

/// Checks a complete head: method, procedure, body length, budget.
fn accept_head(
    shared: &Shared,
    conn: &mut Conn,
    head: Head,
    head_len: usize,
) -> Result<Pending, Step> {
    if head.method != "PUT" && head.method != "POST" {
        let e = HttpError::BadRequest("Only PUT and POST methods are supported.".into());
        return Err(refuse(conn, Some(&head), &e));
    }
    let Some(procedure) = super::find_procedure(&head.path) else {
        log_request(conn.peer, &head, 404);
        let page = http::error_page(404, "Not Found", "Not Found.");
        let _ = respond(conn, 404, "Not Found", "text/html", &page, false);
        return Err(Step::Linger);
    };
    let body_len = match head.content_length {
        None => return Err(refuse(conn, Some(&head), &HttpError::LengthRequired)),
        Some(n) if n > procedure.max_body => {
            let e = HttpError::BodyTooLarge {
                limit: procedure.max_body,
                length: n,
            };
            return Err(refuse(conn, Some(&head), &e));
        }
        Some(n) => n,
    };
    let budget = &shared.counters.body_bytes;
    let reserved = budget.fetch_add(body_len, Ordering::SeqCst);
    if reserved + body_len > BODY_BUDGET {
        budget.fetch_sub(body_len, Ordering::SeqCst);
        log_request(conn.peer, &head, 503);
        let page = http::error_page(
            503,
            "Service Unavailable",
            "Too many request bodies being received; try again.",
        );
        let _ = respond(conn, 503, "Service Unavailable", "text/html", &page, false);
        return Err(Step::Linger);
    }
    conn.reserved = body_len;
    Ok(Pending {
        head,
        head_len,
        body_len,
        procedure,
        continue_sent: false,
    })
}

/// Answers an HTTP error (when it has a status) and ends the connection.
fn refuse(conn: &mut Conn, head: Option<&Head>, e: &HttpError) -> Step {
    let Some((status, reason)) = e.status() else {
        log::info!("Connection from {} ended: {e}", conn.peer);
        return Step::Close;
    };
    match head {
        Some(h) => log_request(conn.peer, h, status),
        None => log::info!("{} bad request: {e}", conn.peer),
    }
    let page = http::error_page(status, reason, &e.to_string());
    let _ = respond(conn, status, reason, "text/html", &page, false);
    Step::Linger
}

/// Runs one procedure; panics become an error answer, not a dead worker.
fn call(p: &Procedure, ctx: &Context, body: &[u8]) -> Result<Value, String> {
    super::check_depth(body).map_err(|e| e.to_string())?;
    match catch_unwind(AssertUnwindSafe(|| (p.handler)(ctx, body))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            log::error!("Procedure {} panicked: {what}", p.name);
            Err(RpcError::Internal(what).to_string())
        }
    }
}

fn log_request(peer: SocketAddr, head: &Head, status: u16) {
    log::info!("{peer} {} {} HTTP/1.1 {status}", head.method, head.path);
}

fn respond(
    conn: &mut Conn,
    status: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(body.len() + 256);
    http::write_response(
        &mut out,
        &Response {
            status,
            reason,
            content_type,
            body,
            keep_alive,
        },
    )?;
    write_blocking(conn, &out)
}

/// Writes all of `data` within [`WRITE_TIMEOUT`] in all, on the
/// non-blocking socket: a client that reads its answer a byte at a time
/// cannot keep the worker longer.
fn write_blocking(conn: &mut Conn, data: &[u8]) -> io::Result<()> {
    let stream = conn
        .stream
        .as_mut()
        .ok_or_else(|| io::Error::other("connection not established"))?;
    write_all_until(stream, data, Instant::now() + WRITE_TIMEOUT)
}

fn write_all_until(stream: &mut Stream, data: &[u8], deadline: Instant) -> io::Result<()> {
    let mut done = 0;
    while done < data.len() {
        let wait_for = match stream {
            Stream::Plain(t) => match t.write(&data[done..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    done += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => sys::POLL_OUT,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            },
            Stream::Tls(t) => match t.ssl_write(&data[done..]) {
                Ok(n) => {
                    done += n;
                    continue;
                }
                Err(e) if e.code() == ErrorCode::WANT_WRITE => sys::POLL_OUT,
                Err(e) if e.code() == ErrorCode::WANT_READ => sys::POLL_IN,
                Err(e) => return Err(io::Error::other(e.to_string())),
            },
            _ => return Err(io::Error::other("connection not established")),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not take the answer in time",
            ));
        }
        let mut fds = [sys::poll_fd(stream.tcp().as_raw_fd(), wait_for)];
        sys::poll(&mut fds, Some(left))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_client_that_does_not_read_cannot_hold_a_write_past_its_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let mut stream = Stream::Plain(server);
        // Far more than the socket buffers hold; the client never reads.
        let data = vec![b'x'; 64 * 1024 * 1024];
        let started = Instant::now();
        let e =
            write_all_until(&mut stream, &data, started + Duration::from_millis(300)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(5));
        drop(client);
    }

    #[test]
    fn a_reading_client_gets_everything() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            client.read_to_end(&mut got).unwrap();
            got.len()
        });
        let mut stream = Stream::Plain(server);
        let data = vec![b'y'; 8 * 1024 * 1024];
        write_all_until(&mut stream, &data, Instant::now() + Duration::from_secs(30)).unwrap();
        drop(stream);
        assert_eq!(reader.join().unwrap(), data.len());
    }
}
