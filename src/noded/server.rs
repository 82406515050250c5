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
/// Budget for each write of an answer (a client that does not read its
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
            if !c.idle() || !c.between_requests {
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
        if shared.counters.open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            // Make room by closing the oldest waiting connection, an idle
            // one if there is one.
            let victim = parked
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| (!c.idle(), c.opened))
                .map(|(i, _)| i);
            match victim {
                Some(i) => {
                    let c = parked.swap_remove(i);
                    log::warn!("Too many connections: closing the one from {}", c.peer);
                }
                None => {
                    log::warn!("Too many connections: refusing {peer}");
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
        if let Some(conn) = advance(shared, id, conn) {
            lock(&shared.returned).push(conn);
            shared.wake();
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
fn advance(shared: &Shared, id: usize, mut conn: Conn) -> Option<Conn> {
    loop {
        let stream = conn.stream.take()?;
        let stream = match stream {
            Stream::Fresh(tcp) => match &shared.tls {
                None => Stream::Plain(tcp),
                Some(acceptor) => handshake_step(acceptor.accept(tcp), &mut conn)?,
            },
            Stream::Handshake(mid) => handshake_step(mid.handshake(), &mut conn)?,
            established => established,
        };
        if let Stream::Handshake(_) = stream {
            conn.stream = Some(stream);
            return Some(conn);
        }
        conn.stream = Some(stream);

        match serve_buffered(shared, id, &mut conn) {
            Step::NeedBytes => {}
            Step::Again => continue,
            Step::Close => return None,
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
                return Some(conn);
            }
            Got::Closed => {
                if !conn.idle() {
                    log::info!(
                        "{} closed the connection in the middle of a request",
                        conn.peer
                    );
                }
                return None;
            }
            Got::Failed(e) => {
                log::info!("Connection from {} failed: {e}", conn.peer);
                return None;
            }
        }
    }
}

/// One step of a TLS handshake: the established stream, or the connection
/// parked mid-handshake (`Some(Stream::Handshake)`), or `None` when it
/// failed (logged).
fn handshake_step(
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
            log::warn!("TLS handshake with {} failed: {}", conn.peer, mid.error());
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
        return Err(Step::Close);
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
        return Err(Step::Close);
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
    Step::Close
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

/// Writes all of `data`, waiting up to [`WRITE_TIMEOUT`] for each write.
fn write_blocking(conn: &mut Conn, data: &[u8]) -> io::Result<()> {
    let stream = conn
        .stream
        .as_mut()
        .ok_or_else(|| io::Error::other("connection not established"))?;
    let tcp = stream.tcp();
    tcp.set_nonblocking(false)?;
    tcp.set_write_timeout(Some(WRITE_TIMEOUT))?;
    tcp.set_read_timeout(Some(WRITE_TIMEOUT))?;
    let r = match stream {
        Stream::Plain(t) => t.write_all(data).and_then(|()| t.flush()),
        Stream::Tls(t) => t.write_all(data).and_then(|()| t.flush()),
        _ => Err(io::Error::other("connection not established")),
    };
    stream.tcp().set_nonblocking(true)?;
    r
}
