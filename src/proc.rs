//! Running a child program as 2.5.2's `utils.RunCmd` does, but bounded:
//! the one runner behind hook scripts, iallocators, OS scripts and the
//! node's helper commands ([`crate::cmd`]).
//!
//! Supported: a [`Command`] (built with [`crate::sys::command`], so the
//! child starts with an empty signal mask) run in a process group of its
//! own with stdin `/dev/null`, its stdout and stderr either captured apart
//! (each up to a cap; the rest is read and dropped, so a full pipe never
//! blocks the program) or both appended to one file (2.5.2's
//! `RunCmd(output=...)`); the exit reported with 2.5.2's `fail_reason`
//! texts (`exited with exit code 3`, `terminated by signal 9`).
//!
//! Differences from 2.5.2, on the safe side:
//! * Every run has a timeout. At the deadline the whole process group gets
//!   SIGTERM; when the program has exited, or [`CHILD_LINGER_TIMEOUT`]
//!   later, the group gets SIGKILL, so that children that ignore SIGTERM
//!   die too (2.5.2 signalled the program only; a child that moved to a
//!   session or group of its own still escapes). The reason then carries
//!   2.5.2's `terminated after timeout of 1.00 seconds` or `force
//!   termination after timeout of ... and linger for another 5.00
//!   seconds`. A program that timed out has failed even if it then exited
//!   0 (2.5.2 called that a success).
//! * The program is waited for without being reaped (`waitid(WNOWAIT)`)
//!   until no signal is left to send: while the zombie stays, its pid, and
//!   so its process group id, cannot be given to another process.
//! * A program that exits while children it left behind still hold its
//!   output pipes is finished at once with what they hold now (2.5.2 waited
//!   for the pipes to close, for ever if a child lived on). Those children
//!   are left alone, as 2.5.2 did.
//! * Each look at a pipe reads a bounded amount, so a program that writes
//!   without pause cannot keep the caller from its deadline.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::sys;

/// Between SIGTERM and SIGKILL of a program that timed out (2.5.2's
/// `CHILD_LINGER_TIMEOUT`).
pub const CHILD_LINGER_TIMEOUT: Duration = Duration::from_secs(5);
/// Reads of one pipe per look (8 KiB each): a program writing without
/// pause cannot keep the runner away from its deadline.
const MAX_READS_PER_LOOK: usize = 64;
/// Looks at the pipes after the program ended: with
/// [`MAX_READS_PER_LOOK`], 2 MiB, more than the largest default pipe holds.
const FINAL_LOOKS: usize = 4;
/// Longest pause between two looks at a running program.
const MAX_POLL_PAUSE: Duration = Duration::from_millis(50);

/// Where the program's stdout and stderr go.
#[derive(Debug)]
pub enum Output {
    /// Captured apart; at most this many bytes of each are kept.
    Capture { stdout: usize, stderr: usize },
    /// Both written to this file (open it for appending).
    File(File),
}

/// What a finished (or killed) program left.
#[derive(Debug)]
pub struct Finished {
    /// The kept part of stdout and stderr (empty with [`Output::File`]).
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The stream was longer than its cap.
    pub stdout_overflow: bool,
    pub stderr_overflow: bool,
    /// `None` when the program exited 0 in time; else 2.5.2's
    /// `fail_reason`.
    pub fail_reason: Option<String>,
    /// The program was still running at its deadline.
    pub timed_out: bool,
}

impl Finished {
    /// stdout followed by stderr (2.5.2's `RunResult.output`).
    pub fn output(&self) -> Vec<u8> {
        let mut out = self.stdout.clone();
        out.extend_from_slice(&self.stderr);
        out
    }
}

/// Why a program could not be run to its end.
#[derive(Debug)]
pub enum Error {
    /// It could not be started (missing, not executable...).
    Start(io::Error),
    /// It was started but could not be waited for; its group was killed.
    Wait(io::Error),
}

impl Error {
    pub fn io(&self) -> &io::Error {
        match self {
            Error::Start(e) | Error::Wait(e) => e,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Start(e) => write!(f, "cannot start the program: {e}"),
            Error::Wait(e) => write!(f, "cannot wait for the program: {e}"),
        }
    }
}

/// Refuses, as the kernel's `execve` does (`ENOEXEC`), a script that
/// starts with neither `#!` nor the ELF magic. `Command` execs with the C
/// library's `execvp`, which would hand such a file to `/bin/sh`; 2.5.2
/// (Python's `execve`) failed with `[Errno 8] Exec format error`. Formats
/// the kernel may know through binfmt_misc are refused too.
pub fn check_script_format(path: &Path) -> io::Result<()> {
    let mut head = Vec::with_capacity(4);
    File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?
        .take(4)
        .read_to_end(&mut head)?;
    if head.starts_with(b"#!") || head.starts_with(b"\x7fELF") {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::ENOEXEC))
    }
}

/// Runs `cmd` in a process group of its own, stdin `/dev/null`, output as
/// `output` says, for at most `timeout` (see the module's documentation).
pub fn run(mut cmd: Command, output: Output, timeout: Duration) -> Result<Finished, Error> {
    cmd.process_group(0).stdin(Stdio::null());
    let caps = match output {
        Output::Capture { stdout, stderr } => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            (stdout, stderr)
        }
        Output::File(file) => {
            let copy = file.try_clone().map_err(Error::Start)?;
            cmd.stdout(file).stderr(copy);
            (0, 0)
        }
    };
    let mut child = cmd.spawn().map_err(Error::Start)?;
    // The daemon keeps no copy of the output file.
    drop(cmd);
    let Ok(pid) = i32::try_from(child.id()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::Wait(io::Error::other("process id out of range")));
    };
    let watched = watch(&mut child, pid, caps, timeout);
    let (mut out, mut err, linger) = match watched {
        Ok(w) => w,
        Err(e) => {
            signal_group(pid, libc::SIGKILL);
            let _ = child.wait();
            return Err(Error::Wait(e));
        }
    };
    let status = child.wait().map_err(Error::Wait)?;
    // Only what is there now: children left behind may hold the pipes.
    for _ in 0..FINAL_LOOKS {
        out.drain();
        err.drain();
    }
    Ok(Finished {
        stdout: out.data,
        stderr: err.data,
        stdout_overflow: out.overflow,
        stderr_overflow: err.overflow,
        fail_reason: fail_reason(status, linger, timeout),
        timed_out: linger.is_some(),
    })
}

/// How a run that reached its deadline ended: `Some(true)` when the
/// program exited within the linger time after SIGTERM, `Some(false)` when
/// it needed SIGKILL; `None` when it ended in time.
type Linger = Option<bool>;

/// Reads the pipes until the program exits (not reaped) or its deadline;
/// then SIGTERM, the linger time and SIGKILL, to the group.
fn watch(
    child: &mut Child,
    pid: i32,
    caps: (usize, usize),
    timeout: Duration,
) -> io::Result<(Capture<ChildStdout>, Capture<ChildStderr>, Linger)> {
    let mut out = Capture::new(child.stdout.take(), caps.0)?;
    let mut err = Capture::new(child.stderr.take(), caps.1)?;
    if pump(pid, &mut out, &mut err, deadline(timeout))? {
        return Ok((out, err, None));
    }
    signal_group(pid, libc::SIGTERM);
    let exited = pump(pid, &mut out, &mut err, deadline(CHILD_LINGER_TIMEOUT))?;
    // Also when the program itself is gone: its children may not be. Its
    // zombie keeps the group id from being reused until the wait.
    signal_group(pid, libc::SIGKILL);
    Ok((out, err, Some(exited)))
}

/// `timeout` from now; `None` (no deadline) beyond what `Instant` holds.
fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// 2.5.2's `RunResult.fail_reason`; a run that reached its deadline has
/// failed whatever its exit.
fn fail_reason(status: ExitStatus, linger: Linger, timeout: Duration) -> Option<String> {
    let mut reasons = Vec::new();
    let failed = match (status.signal(), status.code()) {
        (Some(sig), _) => {
            reasons.push(format!("terminated by signal {sig}"));
            true
        }
        (None, Some(code)) => {
            reasons.push(format!("exited with exit code {code}"));
            code != 0
        }
        (None, None) => {
            reasons.push("unable to determine termination reason".into());
            true
        }
    };
    let secs = timeout.as_secs_f64();
    match linger {
        None => {}
        Some(true) => reasons.push(format!("terminated after timeout of {secs:.2} seconds")),
        Some(false) => reasons.push(format!(
            "force termination after timeout of {secs:.2} seconds and linger for another \
             {:.2} seconds",
            CHILD_LINGER_TIMEOUT.as_secs_f64()
        )),
    }
    (failed || linger.is_some()).then(|| reasons.join(", "))
}

/// One non-blocking output pipe and the first `cap` bytes read from it.
struct Capture<R> {
    pipe: Option<R>,
    data: Vec<u8>,
    cap: usize,
    overflow: bool,
}

impl<R: Read + AsRawFd> Capture<R> {
    fn new(pipe: Option<R>, cap: usize) -> io::Result<Self> {
        if let Some(p) = &pipe {
            sys::set_nonblocking(p)?;
        }
        Ok(Capture {
            pipe,
            data: Vec::new(),
            cap,
            overflow: false,
        })
    }

    /// Reads what is there now (at most [`MAX_READS_PER_LOOK`] reads);
    /// closes the pipe at its end.
    fn drain(&mut self) {
        let Some(pipe) = self.pipe.as_mut() else {
            return;
        };
        let mut buf = [0u8; 8192];
        for _ in 0..MAX_READS_PER_LOOK {
            match pipe.read(&mut buf) {
                Ok(0) => {
                    self.pipe = None;
                    return;
                }
                Ok(n) => {
                    let room = self.cap.saturating_sub(self.data.len());
                    if n > room {
                        self.overflow = true;
                    }
                    self.data.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.pipe = None;
                    return;
                }
            }
        }
    }
}

/// Reads both pipes until `pid` exits or `until` passes; true when it
/// exited (it is not reaped).
fn pump<A, B>(
    pid: i32,
    out: &mut Capture<A>,
    err: &mut Capture<B>,
    until: Option<Instant>,
) -> io::Result<bool>
where
    A: Read + AsRawFd,
    B: Read + AsRawFd,
{
    let mut pause = Duration::from_millis(1);
    loop {
        out.drain();
        err.drain();
        if sys::child_exited(pid)? {
            return Ok(true);
        }
        let now = Instant::now();
        let wait = match until {
            Some(until) if now >= until => return Ok(false),
            Some(until) => (until - now).min(pause),
            None => pause,
        };
        let mut fds: Vec<sys::PollFd> = [
            out.pipe.as_ref().map(|p| p.as_raw_fd()),
            err.pipe.as_ref().map(|p| p.as_raw_fd()),
        ]
        .into_iter()
        .flatten()
        .map(|fd| sys::poll_fd(fd, sys::POLL_IN))
        .collect();
        if fds.is_empty() {
            std::thread::sleep(wait);
        } else if sys::poll(&mut fds, Some(wait))? > 0 {
            pause = Duration::from_millis(1);
            continue;
        }
        pause = (pause * 2).min(MAX_POLL_PAUSE);
    }
}

/// Sends `sig` to the process group `pgid`; a group already gone is fine.
fn signal_group(pgid: i32, sig: i32) {
    match sys::kill(-pgid, sig) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
        Err(e) => log::warn!("Cannot send signal {sig} to process group {pgid}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const SECS5: Duration = Duration::from_secs(5);

    fn sh(text: &str) -> Command {
        let mut c = sys::command("/bin/sh");
        c.args(["-c", text]);
        c
    }

    fn capture(cap: usize) -> Output {
        Output::Capture {
            stdout: cap,
            stderr: cap,
        }
    }

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ganeti-proc-{tag}-{}", sys::getpid()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `run` on a thread; `None` when it has not returned within `limit`.
    fn run_within(cmd: Command, output: Output, timeout: Duration) -> Option<Finished> {
        let limit = timeout + CHILD_LINGER_TIMEOUT + Duration::from_secs(15);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(run(cmd, output, timeout).unwrap());
        });
        rx.recv_timeout(limit).ok()
    }

    fn dead_or_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
    }

    #[test]
    fn output_caps_at_their_value_and_one_byte_over() {
        let cap = 1000;
        let exact = run(sh("head -c 1000 /dev/zero"), capture(cap), SECS5).unwrap();
        assert_eq!((exact.stdout.len(), exact.stdout_overflow), (cap, false));
        let over = run(sh("head -c 1001 /dev/zero >&2"), capture(cap), SECS5).unwrap();
        assert_eq!((over.stderr.len(), over.stderr_overflow), (cap, true));
        assert!(!over.stdout_overflow);
        // Far more than a pipe holds, on both streams: no dead lock.
        let big = run(
            sh("head -c 1000000 /dev/zero; head -c 1000000 /dev/zero >&2"),
            Output::Capture {
                stdout: 65536,
                stderr: 65537,
            },
            SECS5,
        )
        .unwrap();
        assert_eq!(big.fail_reason, None);
        assert_eq!((big.stdout.len(), big.stderr.len()), (65536, 65537));
    }

    #[test]
    fn reasons_as_2_5_2_run_cmd() {
        let r = run(sh("echo out; echo err >&2; exit 3"), capture(99), SECS5).unwrap();
        assert_eq!(
            (r.stdout.as_slice(), r.stderr.as_slice()),
            (&b"out\n"[..], &b"err\n"[..])
        );
        assert_eq!(r.output(), b"out\nerr\n");
        assert_eq!(r.fail_reason.as_deref(), Some("exited with exit code 3"));
        let r = run(sh("kill -9 $$"), capture(99), SECS5).unwrap();
        assert_eq!(r.fail_reason.as_deref(), Some("terminated by signal 9"));
        let start = Instant::now();
        let r = run(
            sh("echo partial; sleep 30"),
            capture(99),
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(start.elapsed() < Duration::from_secs(20));
        assert!(r.timed_out);
        assert_eq!(r.stdout, b"partial\n");
        assert_eq!(
            r.fail_reason.as_deref(),
            Some("terminated by signal 15, terminated after timeout of 0.30 seconds")
        );
        // Exiting 0 on SIGTERM does not make a timed-out run a success.
        let r = run(
            sh("trap 'exit 0' TERM; while :; do sleep 0.05; done"),
            capture(99),
            Duration::from_millis(200),
        )
        .unwrap();
        assert_eq!(
            r.fail_reason.as_deref(),
            Some("exited with exit code 0, terminated after timeout of 0.20 seconds")
        );
        let e = run(sys::command("/nonexistent/ganeti-proc"), capture(9), SECS5).unwrap_err();
        assert!(matches!(e, Error::Start(_)), "{e}");
        assert_eq!(e.io().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_program_ignoring_sigterm_and_its_children_get_sigkill() {
        let dir = scratch("linger");
        let pid_file = dir.join("pid");
        let script = format!(
            "trap '' TERM; sleep 30 & echo $! > {}; while :; do sleep 0.05; done",
            pid_file.display()
        );
        let start = Instant::now();
        let r = run(sh(&script), capture(99), Duration::from_millis(100)).unwrap();
        assert!(start.elapsed() < CHILD_LINGER_TIMEOUT + Duration::from_secs(15));
        assert_eq!(
            r.fail_reason.as_deref(),
            Some(
                "terminated by signal 9, force termination after timeout of 0.10 seconds \
                 and linger for another 5.00 seconds"
            )
        );
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gone = (0..250).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            dead_or_zombie(pid)
        });
        let _ = sys::kill(pid, libc::SIGKILL);
        assert!(gone, "the child survived");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_child_holding_the_pipes_does_not_delay_the_answer() {
        let start = Instant::now();
        // The child sleeps far longer than the bound, so that a loaded
        // machine cannot make the test fail, nor a wait for it pass.
        let r = run(sh("sleep 60 & echo done"), capture(99), SECS5 * 12).unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(r.fail_reason, None);
        assert_eq!(r.stdout, b"done\n");
    }

    #[test]
    fn writers_without_pause_do_not_hold_the_runner() {
        let r = run_within(
            sh("exec cat /dev/zero"),
            capture(1000),
            Duration::from_millis(300),
        )
        .expect("the timeout of a program writing without pause was not enforced");
        assert!(r.timed_out && r.stdout_overflow);
        assert_eq!(r.stdout.len(), 1000);
        let r = run_within(sh("cat /dev/zero & exit 0"), capture(1000), SECS5)
            .expect("a child writing without pause held the answer");
        assert_eq!(r.fail_reason, None);
    }

    #[test]
    fn output_to_a_file() {
        let dir = scratch("file");
        let log = dir.join("log");
        std::fs::write(&log, "before\n").unwrap();
        let file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        let r = run(
            sh("echo out; echo err >&2; exit 2"),
            Output::File(file),
            SECS5,
        )
        .unwrap();
        assert_eq!(r.fail_reason.as_deref(), Some("exited with exit code 2"));
        assert!(r.stdout.is_empty() && r.stderr.is_empty());
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "before\nout\nerr\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_scripts_with_a_known_format_pass() {
        let dir = scratch("format");
        let cases: [(&[u8], bool); 5] = [
            (b"#!/bin/sh\n", true),
            (b"\x7fELF\x02\x01", true),
            (b"echo hi\n", false),
            (b"#", false),
            (b"", false),
        ];
        for (i, (head, ok)) in cases.iter().enumerate() {
            let p = dir.join(format!("s{i}"));
            std::fs::write(&p, head).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            let r = check_script_format(&p);
            assert_eq!(r.is_ok(), *ok, "{head:?}");
            if let Err(e) = r {
                assert_eq!(e.raw_os_error(), Some(libc::ENOEXEC));
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
