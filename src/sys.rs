//! Every libc call of the project, and the only `unsafe` code.
//!
//! Each `unsafe` block wraps exactly one libc call and says why it is sound.
//! Callers get `io::Result`s; `-1` becomes `io::Error::last_os_error()` in one
//! place ([`cvt`]).

use std::ffi::{CStr, CString};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;
use std::time::{Duration, Instant};

/// Turns a libc return value of -1 into the current `errno` as an error.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Limits glibc to one malloc arena and fixes the mmap threshold at
/// 128 KiB. Must run before any thread exists: every extra arena reserves
/// 64 MiB of address space, which `mlockall` would count; and a fixed
/// threshold keeps every large buffer (a request body, an uploaded file)
/// in its own mapping, given back to the kernel when freed, so locked
/// memory falls back after a large request.
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only changes allocator tunables; no pointers involved.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Locks all current and future pages of the process in RAM.
pub fn mlockall() -> io::Result<()> {
    // SAFETY: mlockall takes flags only and affects this process's mappings.
    cvt(unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) }).map(|_| ())
}

/// The result of [`fork`] as seen by each side.
#[derive(Debug)]
pub enum Fork {
    Parent(libc::pid_t),
    Child,
}

/// Forks the process. Only call this while the process has a single thread.
pub fn fork() -> io::Result<Fork> {
    // SAFETY: the callers fork before spawning any thread, so the child gets a
    // consistent copy of the whole address space.
    let pid = cvt(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Fork::Child
    } else {
        Fork::Parent(pid)
    })
}

/// A pipe whose ends are closed on `exec`: (read end, write end).
pub fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are fresh and owned by
    // nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Starts a new session, detaching from the controlling terminal.
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid has no arguments and only changes this process's session.
    cvt(unsafe { libc::setsid() }).map(|_| ())
}

/// Exits at once, without running destructors or flushing stdio buffers
/// (for the intermediate processes of a fork).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// Waits for a child process and returns its raw wait status.
pub fn waitpid(pid: libc::pid_t) -> io::Result<i32> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: status points to a live c_int on our stack.
        match cvt(unsafe { libc::waitpid(pid, &mut status, 0) }) {
            Ok(_) => return Ok(status),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Sets the file mode creation mask.
pub fn umask(mask: u32) {
    // SAFETY: umask cannot fail and takes a plain integer.
    unsafe {
        libc::umask(mask as libc::mode_t);
    }
}

/// Makes `dst` a copy of `src` (closing what `dst` was).
pub fn dup2(src: RawFd, dst: RawFd) -> io::Result<()> {
    // SAFETY: dup2 only operates on descriptor numbers; an invalid one is an
    // error, not undefined behaviour.
    cvt(unsafe { libc::dup2(src, dst) }).map(|_| ())
}

/// Closes every descriptor from `first` upwards except `keep`.
pub fn close_fds_from(first: RawFd, keep: RawFd) {
    // Listing /proc/self/fd avoids depending on close_range (Linux 5.9+).
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => (first..1024).collect(),
    };
    for fd in fds {
        if fd >= first && fd != keep {
            // SAFETY: the process is still single-threaded here, so no other
            // code owns these descriptors; closing a stale number is harmless.
            unsafe {
                libc::close(fd);
            }
        }
    }
}

/// Takes (`exclusive`) or drops an advisory `flock` without blocking.
/// Returns `Ok(false)` when another open file description holds the lock.
pub fn flock_exclusive_nb(fd: &impl AsRawFd) -> io::Result<bool> {
    // SAFETY: flock on a descriptor we borrow for the duration of the call.
    match cvt(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The effective user id.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// The process id.
pub fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// Sends `sig` to process `pid`.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    cvt(unsafe { libc::kill(pid, sig) }).map(|_| ())
}

/// The signals the daemons handle on their signal thread.
pub const HANDLED_SIGNALS: [libc::c_int; 3] = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM];

fn sigset_of(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it fully below.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid sigset_t owned by this frame.
    unsafe { libc::sigemptyset(&mut set) };
    for &sig in signals {
        // SAFETY: as above; sig is a valid signal number from libc.
        unsafe { libc::sigaddset(&mut set, sig) };
    }
    set
}

/// Blocks [`HANDLED_SIGNALS`] in the calling thread. Called before any thread is
/// spawned, so that every thread inherits the mask and only [`wait_signal`]
/// receives them.
pub fn block_handled_signals() -> io::Result<()> {
    let set = sigset_of(&HANDLED_SIGNALS);
    // SAFETY: set is initialised; the old mask is not requested (null).
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}

/// Waits for one of [`HANDLED_SIGNALS`] and returns its number.
pub fn wait_signal() -> io::Result<libc::c_int> {
    let set = sigset_of(&HANDLED_SIGNALS);
    let mut sig: libc::c_int = 0;
    // SAFETY: set is initialised and sig points to a live c_int.
    let ret = unsafe { libc::sigwait(&set, &mut sig) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(sig)
}

/// A `Command` whose child starts with an empty signal mask (the daemons block
/// SIGTERM and friends in every thread, and `exec` would keep that mask).
pub fn command(program: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    // SAFETY: the closure runs between fork and exec and only calls
    // pthread_sigmask, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let empty = sigset_of(&[]);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            Ok(())
        });
    }
    cmd
}

/// Shuts a socket down in both directions; wakes threads blocked in
/// `accept` or `read` on it.
pub fn shutdown_socket(fd: &impl AsRawFd) {
    // SAFETY: shutdown on a borrowed descriptor; errors (e.g. ENOTCONN) are
    // irrelevant because the goal is only to wake blocked callers.
    unsafe {
        libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR);
    }
}

/// Raises the listen backlog of an already listening socket (std uses 128;
/// Ganeti listens with 1024).
pub fn listen(fd: &impl AsRawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: listen on a borrowed socket descriptor.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) }).map(|_| ())
}

/// Readiness a descriptor is waited for, or was found in, by [`poll`].
pub const POLL_IN: i16 = libc::POLLIN;
pub const POLL_OUT: i16 = libc::POLLOUT;

/// One entry of a [`poll`] set.
pub type PollFd = libc::pollfd;

/// A [`poll`] entry for `fd`, waiting for `events`.
pub fn poll_fd(fd: RawFd, events: i16) -> PollFd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Waits until one of `fds` is ready or `timeout` passes (`None`: no
/// limit). Returns how many entries have `revents` set; an interrupted
/// wait returns 0.
pub fn poll(fds: &mut [PollFd], timeout: Option<std::time::Duration>) -> io::Result<usize> {
    let ms = timeout.map_or(-1, |t| {
        // Round up, so a deadline 0.4 ms away does not spin.
        libc::c_int::try_from(t.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX)
    });
    // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd whose
    // length is passed along; poll only writes the revents fields.
    match cvt(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) }) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// Looks up a TCP port in the services database (`getservbyname`). Not
/// thread-safe in glibc: call it before spawning threads.
pub fn service_port(name: &str) -> Option<u16> {
    let name = CString::new(name).ok()?;
    // SAFETY: both arguments are NUL-terminated strings that outlive the call.
    let ent = unsafe { libc::getservbyname(name.as_ptr(), c"tcp".as_ptr()) };
    if ent.is_null() {
        return None;
    }
    // SAFETY: ent is non-null and points to glibc's static servent.
    let port = unsafe { (*ent).s_port };
    // s_port is in network byte order in the low 16 bits.
    Some(u16::from_be(port as u16))
}

/// The host name as the kernel knows it.
pub fn gethostname() -> io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its full length, which is passed.
    cvt(unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) })?;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The canonical name of `host` from the resolver (`AI_CANONNAME`), as
/// Python's `socket.getfqdn` finds it; `None` when the resolver knows nothing.
pub fn canonical_name(host: &str) -> Option<String> {
    let c_host = CString::new(host).ok()?;
    // SAFETY: addrinfo is plain data; all-zero is the documented "no hints".
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C strings and hints; res receives a list we free below.
    let ret = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if ret != 0 || res.is_null() {
        return None;
    }
    // SAFETY: res is a valid list returned by getaddrinfo; ai_canonname, when
    // non-null, is a NUL-terminated string owned by that list.
    let name = unsafe {
        let cn = (*res).ai_canonname;
        (!cn.is_null()).then(|| CStr::from_ptr(cn).to_string_lossy().into_owned())
    };
    // SAFETY: res came from getaddrinfo and is freed exactly once.
    unsafe { libc::freeaddrinfo(res) };
    name
}

/// Broken-down local time for log lines: (year, month, day, hour, min, sec).
pub fn localtime(secs: i64) -> (i32, u32, u32, u32, u32, u32) {
    // SAFETY: tm is plain data, fully written by localtime_r on success.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t: libc::time_t = secs as libc::time_t;
    // SAFETY: both pointers refer to live locals; localtime_r is thread-safe.
    let ok = !unsafe { libc::localtime_r(&t, &mut tm) }.is_null();
    if !ok {
        return (1970, 1, 1, 0, 0, 0);
    }
    (
        tm.tm_year + 1900,
        (tm.tm_mon + 1) as u32,
        tm.tm_mday as u32,
        tm.tm_hour as u32,
        tm.tm_min as u32,
        tm.tm_sec as u32,
    )
}

/// Makes glibc read the time zone once, before threads start logging.
pub fn tzset() {
    extern "C" {
        fn tzset();
    }
    // SAFETY: tzset takes no arguments; called while single-threaded.
    unsafe { tzset() }
}

/// A user from the password database: uid, primary gid, home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub home: std::path::PathBuf,
}

/// Size of the string buffer given to `getpwnam_r`/`getgrnam_r`; on
/// `ERANGE` it is doubled up to [`MAX_NSS_BUFFER`].
const NSS_BUFFER: usize = 4096;
const MAX_NSS_BUFFER: usize = 1024 * 1024;

/// Looks a user up by name (`getpwnam_r`); `Ok(None)` when unknown.
pub fn getpwnam(name: &str) -> io::Result<Option<User>> {
    use std::os::unix::ffi::OsStrExt;
    let c_name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in user name"))?;
    let mut size = NSS_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: passwd is plain data, filled in by getpwnam_r on success.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to a live local; buf's length is passed.
        let ret = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if ret == libc::ERANGE && size < MAX_NSS_BUFFER {
            size *= 2;
            continue;
        }
        if ret != 0 {
            return Err(io::Error::from_raw_os_error(ret));
        }
        if result.is_null() {
            return Ok(None);
        }
        let home = if pw.pw_dir.is_null() {
            std::path::PathBuf::new()
        } else {
            // SAFETY: pw_dir points into buf, NUL-terminated, alive here.
            let dir = unsafe { CStr::from_ptr(pw.pw_dir) };
            std::path::PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes()))
        };
        return Ok(Some(User {
            uid: pw.pw_uid,
            gid: pw.pw_gid,
            home,
        }));
    }
}

/// Looks a group's id up by name (`getgrnam_r`); `Ok(None)` when unknown.
pub fn getgrnam(name: &str) -> io::Result<Option<u32>> {
    let c_name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in group name"))?;
    let mut size = NSS_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: group is plain data, filled in by getgrnam_r on success.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer refers to a live local; buf's length is passed.
        let ret = unsafe {
            libc::getgrnam_r(
                c_name.as_ptr(),
                &mut gr,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if ret == libc::ERANGE && size < MAX_NSS_BUFFER {
            size *= 2;
            continue;
        }
        if ret != 0 {
            return Err(io::Error::from_raw_os_error(ret));
        }
        return Ok((!result.is_null()).then_some(gr.gr_gid));
    }
}

/// A socket address in the C layout, for `bind` and `connect`.
enum CSockAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl CSockAddr {
    fn new(addr: &SocketAddr) -> CSockAddr {
        match addr {
            SocketAddr::V4(a) => CSockAddr::V4(libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                // The octets are already in network order in memory.
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(a) => CSockAddr::V6(libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            }),
        }
    }

    fn as_ptr(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        match self {
            CSockAddr::V4(a) => (
                (a as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ),
            CSockAddr::V6(a) => (
                (a as *const libc::sockaddr_in6).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            ),
        }
    }
}

/// Puts a descriptor (socket, pipe) in non-blocking mode.
pub fn set_nonblocking(fd: &impl AsRawFd) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on a borrowed descriptor with integer arguments.
    let flags = cvt(unsafe { libc::fcntl(raw, libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(|_| ())
}

/// A new TCP socket of `ip`'s family (close-on-exec, not yet bound).
pub fn tcp_socket(ip: &IpAddr) -> io::Result<OwnedFd> {
    let family = match ip {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket takes plain integers and returns a new descriptor.
    let fd = cvt(unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: socket succeeded, so fd is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds a socket to a local address (before `connect`, to choose the
/// source address).
pub fn bind(fd: &OwnedFd, addr: &SocketAddr) -> io::Result<()> {
    let c = CSockAddr::new(addr);
    let (ptr, len) = c.as_ptr();
    // SAFETY: ptr/len describe the sockaddr held by `c`, alive during the call.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), ptr, len) }).map(|_| ())
}

/// Connects a socket to `addr`, giving up after `timeout`
/// (`io::ErrorKind::TimedOut`). Other failures are the socket's own errno
/// (for example `ECONNREFUSED`). The socket is left non-blocking.
pub fn connect_timeout(fd: &OwnedFd, addr: &SocketAddr, timeout: Duration) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    set_nonblocking(fd)?;
    let c = CSockAddr::new(addr);
    let (ptr, len) = c.as_ptr();
    // SAFETY: ptr/len describe the sockaddr held by `c`, alive during the call.
    match cvt(unsafe { libc::connect(raw, ptr, len) }) {
        Ok(_) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    // A timeout too large for the clock means no limit in practice.
    let deadline = Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86400 * 365 * 100));
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // Round up, so that a sub-millisecond rest does not spin.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        let mut pfd = libc::pollfd {
            fd: raw,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: pfd is one live pollfd, and 1 is the array length.
        match cvt(unsafe { libc::poll(&mut pfd, 1, ms) }) {
            Ok(0) if ms == 0 => return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
            Ok(0) => continue,
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err and len are live locals of the sizes getsockopt expects.
    cvt(unsafe {
        libc::getsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    if err == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(err))
    }
}

// ---- helper "hooks": hook scripts and iallocators (src/noded/hooks.rs) ----

/// `access(path, X_OK)`: may this process execute the file? (As root:
/// some execute bit is set and the file system is not mounted `noexec`.)
pub fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: c is a NUL-terminated string that lives across the call.
    unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
}

/// Has child `pid` exited? Unlike `try_wait` it does not reap the child
/// (`waitid(WNOWAIT)`): while the zombie stays, its pid (and so its
/// process group id) cannot be given to another process, so the group can
/// still be signalled safely.
pub fn child_exited(pid: i32) -> io::Result<bool> {
    let id = libc::id_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid pid"))?;
    // SAFETY: siginfo_t is plain data; all zeroes is a valid value, and
    // waitid leaves si_pid 0 when no child has changed state.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: info is a live, exclusively borrowed siginfo_t.
    cvt(unsafe {
        libc::waitid(
            libc::P_PID,
            id,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    })?;
    // SAFETY: waitid filled info for a child event (or left it zeroed);
    // si_pid is valid for SIGCHLD information.
    Ok(unsafe { info.si_pid() } != 0)
}

// ---- end of helper "hooks" ----

// ---- helper "bdev": file system statistics for storage_list (file), OS error texts ----

/// Sizes of the file system holding `path`, in bytes: (total, available to
/// unprivileged users), as 2.5.2's `GetFilesystemStats` computes them
/// (`f_blocks * f_frsize`, `f_bavail * f_frsize`).
#[allow(clippy::unnecessary_cast)] // the field types differ between targets
pub fn statvfs(path: &std::path::Path) -> io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: an all-zero statvfs is a valid value for this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a NUL-terminated string and st a writable statvfs, both
    // alive during the call.
    cvt(unsafe { libc::statvfs(c.as_ptr(), &mut st) })?;
    let frsize = st.f_frsize as u64;
    Ok((
        (st.f_blocks as u64).saturating_mul(frsize),
        (st.f_bavail as u64).saturating_mul(frsize),
    ))
}

// ---- end of helper "bdev" ----

// ---- helper "luxi": Unix stream sockets of the LUXI client and server ----

/// Connects to the Unix stream socket at `path` without waiting: a full
/// listen backlog gives `io::ErrorKind::WouldBlock` (`EAGAIN`) at once
/// instead of blocking, as 2.5.2's client sees it. Other failures are the
/// socket's errno (`ENOENT`, `ECONNREFUSED`, `EACCES`...). The returned
/// stream is in blocking mode.
pub fn unix_connect_nowait(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixStream> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long or containing a NUL byte",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: socket takes plain integers and returns a new descriptor.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    // SAFETY: socket succeeded, so fd is a fresh descriptor owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    // SAFETY: addr is a live sockaddr_un and len does not exceed its size
    // (checked against sun_path above).
    cvt(unsafe {
        libc::connect(
            owned.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len as libc::socklen_t,
        )
    })?;
    let stream = std::os::unix::net::UnixStream::from(owned);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// The credentials of the process at the other end of a Unix socket
/// (`SO_PEERCRED`): pid, uid, gid.
pub fn peer_credentials(fd: &impl AsRawFd) -> io::Result<(i32, u32, u32)> {
    // SAFETY: ucred is plain data; all-zero is a valid value.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are live locals of the sizes getsockopt expects.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok((cred.pid, cred.uid, cred.gid))
}

// ---- end of helper "luxi" ----

// ---- helper "hv": tap devices and descriptors handed to kvm ------------------

/// `TUNSETIFF`, `TUNGETFEATURES` and the flags of `<linux/if_tun.h>`.
const TUNSETIFF: libc::Ioctl = 0x4004_54ca;
const TUNGETFEATURES: libc::Ioctl = 0x8004_54cf;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
/// `sizeof(struct ifreq)` on Linux, and where its name ends.
const IFREQ_SIZE: usize = 40;
const IFNAMSIZ: usize = 16;

/// Opens a new tap device on `/dev/net/tun` (close-on-exec), with
/// `IFF_VNET_HDR` when asked for and the kernel offers it. Returns the
/// interface name the kernel chose and the descriptor; the device goes away
/// when the last descriptor is closed.
pub fn open_tap(vnet_hdr: bool) -> io::Result<(String, OwnedFd)> {
    let path = CString::new("/dev/net/tun").map_err(io::Error::other)?;
    // SAFETY: `path` is a valid NUL-terminated string; the returned
    // descriptor is checked and then owned below.
    let fd = cvt(unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) })?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut flags = IFF_TAP | IFF_NO_PI;
    if vnet_hdr {
        let mut features: libc::c_uint = 0;
        // SAFETY: TUNGETFEATURES writes one unsigned int to the pointer,
        // which points to a live local of that type.
        let ret = unsafe { libc::ioctl(fd.as_raw_fd(), TUNGETFEATURES, &mut features) };
        if ret == 0 && features & (IFF_VNET_HDR as libc::c_uint) != 0 {
            flags |= IFF_VNET_HDR;
        }
    }
    let mut ifr = [0u8; IFREQ_SIZE];
    ifr[IFNAMSIZ..IFNAMSIZ + 2].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq` (40 bytes on
    // Linux: the name, then the flags); `ifr` is a live buffer of that size.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) })?;
    let name = &ifr[..IFNAMSIZ];
    let end = name.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
    Ok((String::from_utf8_lossy(&name[..end]).into_owned(), fd))
}

/// Makes the child of `cmd` inherit `fd` (clears its close-on-exec flag
/// between fork and exec only; the parent's descriptor keeps the flag).
pub fn keep_fd_on_exec(cmd: &mut Command, fd: RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls fcntl,
    // which is async-signal-safe; a bad descriptor is an error, not UB.
    unsafe {
        cmd.pre_exec(move || {
            let flags = cvt(libc::fcntl(fd, libc::F_GETFD))?;
            cvt(libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC)).map(|_| ())
        });
    }
}

/// Connects a unix stream socket to `path`, waiting at most `timeout` (at
/// least 1 ms) for a place in the listener's queue. A plain connect waits
/// for ever while the queue is full, as it is when the listener (a hung
/// kvm's monitor) stopped accepting.
pub fn unix_connect_timeout(
    path: &std::path::Path,
    timeout: Duration,
) -> io::Result<std::os::unix::net::UnixStream> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: `sockaddr_un` is plain old data, for which all zeroes is a
    // valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the socket path is too long or contains a NUL byte",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    // SAFETY: plain socket(2); the descriptor is checked and owned below.
    let fd =
        cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just created and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // A zero SO_SNDTIMEO would mean no limit.
    let timeout = timeout.max(Duration::from_millis(1));
    let tv = libc::timeval {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: SO_SNDTIMEO reads one `timeval` from the pointer, which
    // points to a live local of that type whose size is passed along. It
    // also bounds connect(2) on a unix socket whose peer's queue is full.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    })?;
    // SAFETY: `addr` is a live, initialised `sockaddr_un` and `len` (the
    // path, its NUL and the family) is within its size.
    let ret = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len as libc::socklen_t,
        )
    };
    match cvt(ret) {
        Ok(_) => Ok(std::os::unix::net::UnixStream::from(fd)),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the listener's queue stayed full",
        )),
        Err(e) => Err(e),
    }
}

/// Opens a pidfd (close-on-exec) for process `pid` (`pidfd_open(2)`, Linux
/// 5.3): unlike the pid, it names that one process for as long as it is
/// held, even once the process has exited and its pid was given to another.
/// It polls readable once the process has exited (a zombie included).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags (none) and returns a new
    // descriptor or -1; the arguments are passed as the longs the syscall
    // interface reads.
    let ret =
        unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_long, 0 as libc::c_long) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(ret).map_err(io::Error::other)?;
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends `sig` to the process of a pidfd (`pidfd_send_signal(2)`). Once
/// that process has exited this fails with `ESRCH` and signals nobody,
/// whoever has its pid by then.
pub fn pidfd_send_signal(pidfd: &impl AsRawFd, sig: i32) -> io::Result<()> {
    // SAFETY: the descriptor is borrowed for the call; a NULL info pointer
    // makes the kernel fill in the signal information as kill(2) does;
    // the flags are 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd() as libc::c_long,
            sig as libc::c_long,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_long,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
// ---- end of helper "hv" ---------------------------------------------------------

// ---- jqueue (helper "jqueue"): job worker thread names ----

/// Most bytes of a thread name the kernel keeps (16 with the NUL).
const THREAD_NAME_MAX: usize = 15;

/// Renames the calling thread as `ps -L`/`top -H` show it (`prctl
/// PR_SET_NAME`), cut to the kernel's 15 bytes on a character boundary.
/// Best effort: a name with a NUL byte or a failing call changes nothing.
pub fn set_thread_name(name: &str) {
    let mut end = name.len().min(THREAD_NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let Ok(c) = CString::new(&name[..end]) else {
        return;
    };
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes
    // from the pointer; `c` is such a string and outlives the call.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}

// ---- end jqueue ----

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_is_not_empty() {
        assert!(!gethostname().unwrap().is_empty());
    }

    #[test]
    fn unknown_service_has_no_port() {
        assert_eq!(service_port("no-such-service-ganeti-rs"), None);
    }

    #[test]
    fn localtime_is_sane() {
        let (y, mo, d, h, mi, s) = localtime(86400 * 365 * 50);
        assert!((2019..=2021).contains(&y));
        assert!((1..=12).contains(&mo) && (1..=31).contains(&d));
        assert!(h < 24 && mi < 60 && s < 61);
    }

    #[test]
    fn root_is_known_and_nonsense_is_not() {
        let root = getpwnam("root").unwrap().unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.home.is_absolute());
        assert_eq!(getgrnam("root").unwrap(), Some(0));
        assert_eq!(getpwnam("no-such-user-ganeti-rs").unwrap(), None);
        assert_eq!(getgrnam("no-such-group-ganeti-rs").unwrap(), None);
    }

    #[test]
    fn second_flock_on_new_description_fails() {
        let dir = std::env::temp_dir().join(format!("ganeti-sys-{}", getpid()));
        std::fs::write(&dir, b"").unwrap();
        let a = std::fs::File::open(&dir).unwrap();
        let b = std::fs::File::open(&dir).unwrap();
        assert!(flock_exclusive_nb(&a).unwrap());
        assert!(!flock_exclusive_nb(&b).unwrap());
        std::fs::remove_file(&dir).unwrap();
    }
}
