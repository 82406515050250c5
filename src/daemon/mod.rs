//! The runtime both daemons share: detaching with a readiness pipe, the pid
//! file, logging, memory locking, signals and named thread pools.
//!
//! Order of [`run`] (it matters): directories, detach (double fork; the
//! process that was started waits on a pipe and exits 0 only once the daemon
//! serves, or 1 with the daemon's error), logging, pid file, `mlockall`,
//! signal mask, then the service's own preparation (bind sockets, spawn
//! pools), readiness, and a `sigwait` loop on the main thread: SIGHUP reopens
//! the log file, SIGTERM/SIGINT stop the service within a bound, remove the
//! pid file and exit 0. No thread exists before the forks and `mlockall`.

pub mod logging;
pub mod options;
pub mod pidfile;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::Duration;

use crate::constants::{EXIT_FAILURE, EXIT_SUCCESS};
use crate::paths::{Daemon, Paths};
use crate::sys;

pub use options::{Options, OptionsError, Parsed, SyslogUsage};

/// How long in-flight work may take after SIGTERM before it is aborted.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Stack of every pooled worker thread (Rust's default is 2 MiB, all of it
/// locked under `mlockall`). The deepest user of stack is the JSON parser,
/// bounded by `noded::MAX_JSON_DEPTH` (32 levels need under 64 KiB even in
/// a debug build); the whole test suite passes with this size.
pub const WORKER_STACK: usize = 128 * 1024;
/// Largest start-up error message passed up the readiness pipe (Ganeti reads
/// up to 100 KiB).
const MAX_READY_MESSAGE: u64 = 100 * 1024;

/// A running service, as built by the daemon's preparation step.
pub trait Service {
    /// Stops accepting work, lets in-flight work finish for at most `grace`,
    /// aborts the rest and joins every thread.
    fn stop(&mut self, grace: Duration);
}

/// Spawns a named thread with an explicit stack (the only way the daemons
/// start threads).
pub fn spawn_named<F>(name: String, stack: usize, f: F) -> io::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    std::thread::Builder::new()
        .name(name)
        .stack_size(stack)
        .spawn(f)
}

/// The daemon's end of the readiness pipe (absent in the foreground).
///
/// Protocol: one byte `O` = serving; `E` followed by a message = failed; EOF
/// with nothing = the daemon died before it could say.
#[derive(Debug)]
pub struct Ready {
    pipe: Option<File>,
}

impl Ready {
    fn foreground() -> Ready {
        Ready { pipe: None }
    }

    /// Tells the starter that the daemon serves.
    pub fn ok(mut self) {
        if let Some(mut p) = self.pipe.take() {
            let _ = p.write_all(b"O");
        }
    }

    /// Reports a start-up failure: to the starter, or to stderr in the
    /// foreground.
    pub fn fail(mut self, msg: &str) {
        let logging = log::max_level() != log::LevelFilter::Off;
        if logging {
            log::error!("{msg}");
        }
        match self.pipe.take() {
            Some(mut p) => {
                let _ = p.write_all(format!("E{msg}").as_bytes());
            }
            // In the foreground the logger already wrote errors to stderr.
            None if logging => {}
            None => eprintln!("{msg}"),
        }
    }
}

/// Creates `path` (and its parents) when missing; the directory itself gets
/// exactly `mode`, whatever the umask of whoever started the daemon.
fn make_dir(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Creates the run and log directories with Ganeti's modes when missing
/// (2.5.2 leaves that to `ensure-dirs`; a daemon started by hand on a fresh
/// or rescued node should not fail for it).
fn ensure_dirs(paths: &Paths) -> Result<(), String> {
    for (dir, mode) in [(paths.run_dir(), 0o775), (paths.log_dir(), 0o770)] {
        make_dir(&dir, mode).map_err(|e| format!("Cannot create {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// The original process: waits for the daemon's verdict and exits.
fn starter_wait(pipe: File, child: libc::pid_t) -> ! {
    // The intermediate child exits right after the second fork.
    let _ = sys::waitpid(child);
    let mut buf = Vec::new();
    let _ = pipe.take(MAX_READY_MESSAGE).read_to_end(&mut buf);
    match buf.split_first() {
        Some((b'O', _)) => sys::exit_now(EXIT_SUCCESS),
        Some((b'E', msg)) => {
            eprintln!(
                "Error when starting daemon process: {}",
                String::from_utf8_lossy(msg)
            );
        }
        _ => eprintln!(
            "Error when starting daemon process: the daemon exited during start-up \
             without a message; see its log file"
        ),
    }
    sys::exit_now(EXIT_FAILURE)
}

/// Detaches: double fork, new session, `/`, umask 077, standard streams away
/// from the terminal. Returns in the daemon only.
fn detach() -> io::Result<Ready> {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    let (read_end, write_end) = pipe()?;
    match sys::fork()? {
        sys::Fork::Parent(pid) => {
            drop(write_end);
            starter_wait(read_end, pid)
        }
        sys::Fork::Child => {}
    }
    drop(read_end);
    sys::setsid()?;
    match sys::fork()? {
        sys::Fork::Parent(_) => sys::exit_now(EXIT_SUCCESS),
        sys::Fork::Child => {}
    }
    std::env::set_current_dir("/")?;
    sys::umask(0o077);
    sys::close_fds_from(3, write_end.as_raw_fd());
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in 0..=2 {
        sys::dup2(null.as_raw_fd(), fd)?;
    }
    Ok(Ready {
        pipe: Some(write_end),
    })
}

fn pipe() -> io::Result<(File, File)> {
    let (r, w) = sys::pipe_cloexec()?;
    Ok((File::from(r), File::from(w)))
}

/// What a daemon's `main` hands to [`run`].
pub struct Setup<'a> {
    pub daemon: Daemon,
    pub options: &'a Options,
    pub paths: &'a Paths,
    /// Add thread names to log lines (the master daemon).
    pub thread_names: bool,
}

/// Runs a daemon to completion and returns its exit code. `prepare` runs in
/// the final process after logging, the pid file and `mlockall`; it binds
/// sockets and starts pools, or returns the error message for the starter.
pub fn run<S, F>(setup: Setup<'_>, prepare: F) -> i32
where
    S: Service,
    F: FnOnce() -> Result<S, String>,
{
    let Setup {
        daemon,
        options,
        paths,
        thread_names,
    } = setup;
    if let Err(msg) = ensure_dirs(paths) {
        eprintln!("{msg}");
        return EXIT_FAILURE;
    }
    let ready = if options.foreground {
        Ready::foreground()
    } else {
        match detach() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("Error when starting daemon process: cannot detach: {e}");
                return EXIT_FAILURE;
            }
        }
    };
    let log_cfg = logging::LogConfig {
        program: daemon.name(),
        file: (options.syslog != SyslogUsage::Only).then(|| paths.log_file(daemon)),
        syslog: options.syslog != SyslogUsage::No,
        stderr: options.foreground,
        debug: options.debug,
        thread_names,
        redirect_stdio: !options.foreground,
    };
    if let Err(e) = logging::init(log_cfg) {
        ready.fail(&e.to_string());
        return EXIT_FAILURE;
    }
    let pid_path = paths.pid_file(daemon);
    let pidfile = match pidfile::PidFile::acquire(&pid_path) {
        Ok(p) => p,
        Err(e) => {
            ready.fail(&e.to_string());
            return EXIT_FAILURE;
        }
    };
    log::info!("{} daemon startup", daemon.name());
    if options.mlock {
        match sys::mlockall() {
            Ok(()) => log::debug!("Memory locked with mlockall"),
            Err(e) => log::error!("Cannot set memory lock: {e}"),
        }
    }
    if let Err(e) = sys::block_handled_signals() {
        pidfile.remove();
        ready.fail(&format!("Cannot block signals: {e}"));
        return EXIT_FAILURE;
    }
    let mut service = match prepare() {
        Ok(s) => s,
        Err(msg) => {
            pidfile.remove();
            ready.fail(&msg);
            return EXIT_FAILURE;
        }
    };
    ready.ok();
    loop {
        match sys::wait_signal() {
            Ok(libc::SIGHUP) => {
                if let Err(e) = logging::reopen() {
                    log::error!("Cannot reopen log file: {e}");
                }
            }
            Ok(sig) => {
                log::info!("Received signal {sig}, shutting down");
                break;
            }
            Err(e) => {
                log::error!("Waiting for signals failed: {e}; shutting down");
                break;
            }
        }
    }
    service.stop(SHUTDOWN_GRACE);
    pidfile.remove();
    log::info!("{} daemon stopped", daemon.name());
    EXIT_SUCCESS
}

/// Prints a parse result for `--help`/`--version`/errors, or hands back the
/// options to run with. `Err(code)` is the exit code to return.
pub fn parse_or_exit(daemon: Daemon, args: &[String]) -> Result<Options, i32> {
    match options::parse(daemon, args) {
        Ok(Parsed::Run(o)) => Ok(o),
        Ok(Parsed::Help(t)) | Ok(Parsed::Version(t)) => {
            println!("{t}");
            Err(EXIT_SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Err(e.exit_code())
        }
    }
}

/// Refuses to run as anyone but `expected_uid`, as 2.5.2 does.
pub fn check_user(daemon: Daemon, expected_uid: u32) -> Result<(), String> {
    let uid = sys::geteuid();
    if uid != expected_uid {
        return Err(format!(
            "{} started using wrong user ID ({uid}), expected {expected_uid}",
            daemon.name()
        ));
    }
    Ok(())
}
