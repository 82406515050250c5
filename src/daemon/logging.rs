//! The daemons' logger: Ganeti's line format to the log file (reopened on
//! SIGHUP, for logrotate), optionally to syslog (`/dev/log`, facility daemon,
//! INFO and above), and with `-f` to stderr through env_logger.
//!
//! File line: `2026-11-27 20:38:47,686: ganeti-noded pid=123 INFO message`;
//! the master daemon adds the thread (`pid=123/jq-4`), `-d` adds
//! `module:line` before the level. Each line is one `write` on an `O_APPEND`
//! descriptor, so lines from different threads never interleave. When the
//! file cannot be written (a failing disk), the line goes to `/dev/console`
//! and the daemon carries on.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::sys;

/// Where syslog messages are sent.
const SYSLOG_SOCKET: &str = "/dev/log";
/// syslog facility `LOG_DAEMON`.
const LOG_DAEMON: u8 = 3 << 3;
/// Longest syslog message sent; longer ones are cut (as glibc's syslog does).
const MAX_SYSLOG_MESSAGE: usize = 2048;

/// How to set up the logger.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Program name in every line.
    pub program: &'static str,
    /// Log file; `None` with `--syslog=only`.
    pub file: Option<PathBuf>,
    pub syslog: bool,
    /// Also to stderr (foreground): errors only, everything with `debug`.
    pub stderr: bool,
    pub debug: bool,
    /// Add the thread name after the pid (the master daemon's format).
    pub thread_names: bool,
    /// Point stdout and stderr at the log file (daemonized), so that panics
    /// and stray prints land there too; redone on every reopen.
    pub redirect_stdio: bool,
}

struct DaemonLogger {
    cfg: LogConfig,
    file: Mutex<Option<File>>,
    syslog: Option<UnixDatagram>,
    stderr: Option<env_logger::Logger>,
    level: LevelFilter,
}

static LOGGER: OnceLock<DaemonLogger> = OnceLock::new();

/// Errors of the logger set-up.
#[derive(Debug)]
pub enum LogError {
    Open(PathBuf, io::Error),
    AlreadySet,
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::Open(p, e) => write!(f, "Cannot open log file {}: {e}", p.display()),
            LogError::AlreadySet => write!(f, "the logger was already set up"),
        }
    }
}

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

/// Installs the logger. Call once, after daemonizing.
pub fn init(cfg: LogConfig) -> Result<(), LogError> {
    let file = match &cfg.file {
        Some(p) => Some(open_log(p).map_err(|e| LogError::Open(p.clone(), e))?),
        None => None,
    };
    let level = if cfg.debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    };
    let stderr = cfg.stderr.then(|| {
        let mut b = env_logger::Builder::new();
        b.filter_level(if cfg.debug {
            LevelFilter::Debug
        } else {
            LevelFilter::Error
        });
        // RUST_LOG, when set, refines the foreground filter.
        if let Ok(spec) = std::env::var("RUST_LOG") {
            b.parse_filters(&spec);
        }
        b.build()
    });
    let syslog = if cfg.syslog {
        UnixDatagram::unbound().ok()
    } else {
        None
    };
    sys::tzset();
    let logger = DaemonLogger {
        cfg,
        file: Mutex::new(file),
        syslog,
        stderr,
        level,
    };
    if let Some(f) = logger.file.lock().ok().as_ref().and_then(|f| f.as_ref()) {
        if logger.cfg.redirect_stdio {
            let _ = sys::dup2(f.as_raw_fd(), 1);
            let _ = sys::dup2(f.as_raw_fd(), 2);
        }
    }
    if LOGGER.set(logger).is_err() {
        return Err(LogError::AlreadySet);
    }
    let logger = LOGGER.get().ok_or(LogError::AlreadySet)?;
    log::set_logger(logger).map_err(|_| LogError::AlreadySet)?;
    log::set_max_level(level);
    Ok(())
}

/// Reopens the log file by name (after logrotate moved it away).
pub fn reopen() -> io::Result<()> {
    let Some(logger) = LOGGER.get() else {
        return Ok(());
    };
    let Some(path) = &logger.cfg.file else {
        return Ok(());
    };
    let new = open_log(path)?;
    if logger.cfg.redirect_stdio {
        sys::dup2(new.as_raw_fd(), 1)?;
        sys::dup2(new.as_raw_fd(), 2)?;
    }
    if let Ok(mut slot) = logger.file.lock() {
        *slot = Some(new);
    }
    log::info!("Reopening log files after receiving SIGHUP");
    Ok(())
}

/// Python logging's level names.
fn level_name(l: Level) -> &'static str {
    match l {
        Level::Error => "ERROR",
        Level::Warn => "WARNING",
        Level::Info => "INFO",
        Level::Debug | Level::Trace => "DEBUG",
    }
}

fn syslog_severity(l: Level) -> u8 {
    match l {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// `YYYY-MM-DD HH:MM:SS,mmm` in local time, as Python's `asctime`.
pub fn asctime(now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, mo, day, h, mi, s) = sys::localtime(d.as_secs() as i64);
    format!(
        "{y:04}-{mo:02}-{day:02} {h:02}:{mi:02}:{s:02},{:03}",
        d.subsec_millis()
    )
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

thread_local! {
    static TASK_NAME: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Names what this thread is doing for log lines, as 2.5.2 renames its
/// job workers (`Jq3/Job42/TEST_DELAY`); `None` goes back to the thread's
/// own name.
pub fn set_task_name(name: Option<String>) {
    TASK_NAME.with(|n| *n.borrow_mut() = name);
}

/// The task name set on this thread, if any.
pub fn current_task_name() -> Option<String> {
    TASK_NAME.with(|n| n.borrow().clone())
}

/// The name shown for this thread in log lines.
fn thread_label() -> String {
    current_task_name()
        .unwrap_or_else(|| std::thread::current().name().unwrap_or("main").to_string())
}

impl DaemonLogger {
    fn who(&self) -> String {
        let pid = sys::getpid();
        if self.cfg.thread_names {
            format!("pid={pid}/{}", thread_label())
        } else {
            format!("pid={pid}")
        }
    }

    fn file_line(&self, record: &Record) -> String {
        let mut line = format!(
            "{}: {} {} ",
            asctime(SystemTime::now()),
            self.cfg.program,
            self.who()
        );
        if self.cfg.debug {
            let module = record.module_path().unwrap_or("?");
            let module = module.rsplit("::").next().unwrap_or(module);
            line.push_str(&format!("{module}:{} ", record.line().unwrap_or(0)));
        }
        line.push_str(level_name(record.level()));
        line.push(' ');
        line.push_str(&record.args().to_string());
        line.push('\n');
        line
    }

    fn send_syslog(&self, sock: &UnixDatagram, record: &Record) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let (_, mo, d, h, mi, s) = sys::localtime(now.as_secs() as i64);
        let thread = if self.cfg.thread_names {
            format!("({}) ", thread_label())
        } else {
            String::new()
        };
        let msg = format!(
            "<{}>{} {d:>2} {h:02}:{mi:02}:{s:02} {}[{}]: {thread}{} {}",
            LOG_DAEMON | syslog_severity(record.level()),
            MONTHS[(mo as usize).saturating_sub(1) % 12],
            self.cfg.program,
            sys::getpid(),
            level_name(record.level()),
            record.args()
        )
        .replace('\n', " ");
        let mut bytes = msg.into_bytes();
        bytes.truncate(MAX_SYSLOG_MESSAGE);
        // A missing or restarted syslogd must not stop the daemon.
        let _ = sock.send_to(&bytes, SYSLOG_SOCKET);
    }
}

impl Log for DaemonLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if let Ok(mut slot) = self.file.lock() {
            if let Some(f) = slot.as_mut() {
                let line = self.file_line(record);
                if f.write_all(line.as_bytes()).is_err() {
                    // Ganeti's console fallback; if even that fails there is
                    // nowhere left to report to.
                    if let Ok(mut c) = OpenOptions::new().write(true).open("/dev/console") {
                        let _ = write!(c, "Cannot log message:\n{line}\n");
                    }
                }
            }
        }
        if let Some(sock) = &self.syslog {
            if record.level() <= Level::Info {
                self.send_syslog(sock, record);
            }
        }
        if let Some(e) = &self.stderr {
            if e.matches(record) {
                e.log(record);
            }
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asctime_has_python_shape() {
        let s = asctime(SystemTime::now());
        assert_eq!(s.len(), 23, "{s}");
        assert_eq!(&s[4..5], "-");
        assert_eq!(&s[10..11], " ");
        assert_eq!(&s[19..20], ",");
    }

    #[test]
    fn level_names_are_pythons() {
        assert_eq!(level_name(Level::Warn), "WARNING");
        assert_eq!(level_name(Level::Trace), "DEBUG");
    }
}
