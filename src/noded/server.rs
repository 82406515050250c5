//! The node daemon's RPC server: a fixed pool of worker threads that each
//! accept a connection, read requests with deadlines and limits, dispatch
//! them through the procedure tables and answer `[success, payload]`.
//!
//! A worker serves one connection at a time, so at most `max_clients`
//! requests run at once and locked memory stays bounded by the pool size.
//! An idle, slow or hostile client holds one worker for at most
//! [`REQUEST_READ_TIMEOUT`] per request.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openssl::ssl::{SslAcceptor, SslStream};
use serde_json::Value;

use super::{Context, Procedure, RpcError};
use crate::daemon::{self, Service};
use crate::http::{self, Connection, Head, HttpError, Response};
use crate::rpc;
use crate::sys;

/// Default size of the worker pool (Ganeti's `--max-clients` default).
pub const DEFAULT_MAX_CLIENTS: usize = 20;
/// Whole-request read budget: from waiting for the first byte of a request
/// (also on a kept-alive connection) to the last byte of its body.
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Budget for writing one response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Listen backlog, as 2.5.2.
pub const LISTEN_BACKLOG: i32 = 1024;

/// A TCP stream whose reads share one deadline (set per request), so a
/// client trickling a byte at a time cannot hold a worker forever.
#[derive(Debug)]
pub struct DeadlineStream {
    tcp: TcpStream,
    deadline: Instant,
}

impl DeadlineStream {
    fn new(tcp: TcpStream) -> io::Result<Self> {
        tcp.set_write_timeout(Some(WRITE_TIMEOUT))?;
        Ok(DeadlineStream {
            tcp,
            deadline: Instant::now() + REQUEST_READ_TIMEOUT,
        })
    }
}

/// A stream whose read deadline can be restarted for the next request.
pub trait Deadline: Read + Write {
    fn restart_deadline(&mut self);
}

impl Deadline for DeadlineStream {
    fn restart_deadline(&mut self) {
        self.deadline = Instant::now() + REQUEST_READ_TIMEOUT;
    }
}

impl Deadline for SslStream<DeadlineStream> {
    fn restart_deadline(&mut self) {
        self.get_mut().restart_deadline()
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request not received in time",
            ));
        }
        self.tcp.set_read_timeout(Some(left))?;
        self.tcp.read(buf)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// A connection a worker is serving.
struct Active {
    tcp: TcpStream,
    /// A request head has been read and its answer is not written yet.
    busy: bool,
}

/// State shared by the workers and the stopper.
struct Shared {
    listener: TcpListener,
    stopping: AtomicBool,
    /// Per worker: a clone of the socket it is serving, to abort on stop.
    active: Vec<Mutex<Option<Active>>>,
    ctx: Context,
    /// `None` with `--no-ssl`.
    tls: Option<SslAcceptor>,
}

/// The running server.
pub struct Server {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts `max_clients` workers on a bound listener; with `tls`, every
    /// connection must complete the handshake (client certificate
    /// included) within the request read timeout.
    pub fn start(
        listener: TcpListener,
        max_clients: usize,
        tls: Option<SslAcceptor>,
        ctx: Context,
    ) -> io::Result<Server> {
        sys::listen(&listener, LISTEN_BACKLOG)?;
        let shared = Arc::new(Shared {
            listener,
            stopping: AtomicBool::new(false),
            active: (0..max_clients).map(|_| Mutex::new(None)).collect(),
            ctx,
            tls,
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
        Ok(Server { shared, workers })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.listener.local_addr()
    }
}

impl Service for Server {
    fn stop(&mut self, grace: Duration) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wakes every worker blocked in accept().
        sys::shutdown_socket(&self.shared.listener);
        let until = Instant::now() + grace;
        loop {
            // Connections waiting for their next request are closed at once;
            // requests in flight get until the grace time is up.
            let abort = Instant::now() >= until;
            for slot in &self.shared.active {
                if let Ok(s) = slot.lock() {
                    if let Some(a) = s.as_ref().filter(|a| abort || !a.busy) {
                        if a.busy {
                            log::warn!(
                                "Aborting a request still running after the shutdown grace time"
                            );
                        }
                        let _ = a.tcp.shutdown(Shutdown::Both);
                    }
                }
            }
            if abort || self.workers.iter().all(|w| w.is_finished()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(shared: &Shared, id: usize) {
    while !shared.stopping.load(Ordering::SeqCst) {
        let (tcp, peer) = match shared.listener.accept() {
            Ok(x) => x,
            Err(e) => {
                if shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
                // EMFILE and friends: back off instead of spinning.
                log::error!("Error accepting a connection: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if let (Ok(mut slot), Ok(clone)) = (shared.active[id].lock(), tcp.try_clone()) {
            *slot = Some(Active {
                tcp: clone,
                busy: false,
            });
        }
        if let Err(e) = accept_and_serve(shared, id, tcp, peer) {
            log::info!("Connection from {peer} ended: {e}");
        }
        if let Ok(mut slot) = shared.active[id].lock() {
            *slot = None;
        }
    }
}

fn accept_and_serve(
    shared: &Shared,
    id: usize,
    tcp: TcpStream,
    peer: SocketAddr,
) -> io::Result<()> {
    let stream = DeadlineStream::new(tcp)?;
    match &shared.tls {
        None => serve_connection(shared, id, stream, peer),
        Some(acceptor) => match acceptor.accept(stream) {
            Ok(tls) => serve_connection(shared, id, tls, peer),
            Err(e) => {
                log::warn!("TLS handshake with {peer} failed: {e}");
                Ok(())
            }
        },
    }
}

/// Marks worker `id` as between requests (`false`) or answering one.
fn set_busy(shared: &Shared, id: usize, busy: bool) {
    if let Ok(mut slot) = shared.active[id].lock() {
        if let Some(a) = slot.as_mut() {
            a.busy = busy;
        }
    }
}

fn serve_connection<S: Deadline>(
    shared: &Shared,
    id: usize,
    stream: S,
    peer: SocketAddr,
) -> io::Result<()> {
    let mut conn = Connection::new(stream);
    loop {
        set_busy(shared, id, false);
        if shared.stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        conn.get_mut().restart_deadline();
        let head = match http::read_head(&mut conn) {
            Ok(h) => h,
            Err(HttpError::Closed) => return Ok(()),
            Err(e) => return answer_http_error(&mut conn, peer, None, &e),
        };
        set_busy(shared, id, true);
        if head.method != "PUT" && head.method != "POST" {
            let e = HttpError::BadRequest("Only PUT and POST methods are supported.".into());
            return answer_http_error(&mut conn, peer, Some(&head), &e);
        }
        let Some(proc_) = super::find_procedure(&head.path) else {
            let page = http::error_page(404, "Not Found", "Not Found.");
            log_request(peer, &head, 404);
            return write(&mut conn, 404, "Not Found", "text/html", &page, false);
        };
        let body = match http::read_body(&mut conn, &head, proc_.max_body) {
            Ok(b) => b,
            Err(e) => return answer_http_error(&mut conn, peer, Some(&head), &e),
        };
        let result = call(proc_, &shared.ctx, &body);
        if let Err(msg) = &result {
            log::info!("RPC {} failed: {msg}", proc_.name);
        }
        let keep_alive = head.keep_alive && !shared.stopping.load(Ordering::SeqCst);
        log_request(peer, &head, 200);
        write(
            &mut conn,
            200,
            "OK",
            "application/json",
            &rpc::envelope(&result),
            keep_alive,
        )?;
        if !keep_alive {
            return Ok(());
        }
    }
}

/// Runs one procedure; panics become an error answer, not a dead worker.
fn call(p: &Procedure, ctx: &Context, body: &[u8]) -> Result<Value, String> {
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

fn answer_http_error(
    conn: &mut Connection<impl Deadline>,
    peer: SocketAddr,
    head: Option<&Head>,
    e: &HttpError,
) -> io::Result<()> {
    let Some((status, reason)) = e.status() else {
        return Err(io::Error::other(e.to_string()));
    };
    match head {
        Some(h) => log_request(peer, h, status),
        None => log::info!("{peer} bad request: {e}"),
    }
    let page = http::error_page(status, reason, &e.to_string());
    write(conn, status, reason, "text/html", &page, false)
}

fn write(
    conn: &mut Connection<impl Deadline>,
    status: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    http::write_response(
        conn,
        &Response {
            status,
            reason,
            content_type,
            body,
            keep_alive,
        },
    )
}
