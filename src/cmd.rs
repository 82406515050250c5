//! Running an external command as 2.5.2's `utils.RunCmd` does: no shell,
//! cwd `/`, stdin `/dev/null`, `LC_ALL=C`, stdout and stderr captured apart.
//! Unlike 2.5.2 every run has a timeout, after which the command is killed.

#![forbid(unsafe_code)]

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::sys;

/// Most output kept from each of stdout and stderr.
pub const MAX_OUTPUT: u64 = 64 * 1024;

/// What a finished command left.
#[derive(Debug)]
pub struct CmdResult {
    pub stdout: String,
    pub stderr: String,
    /// `None` when the command succeeded; else 2.5.2's `fail_reason`
    /// ("exited with exit code N", "terminated by signal N"), or our timeout.
    pub fail_reason: Option<String>,
}

impl CmdResult {
    /// Did the command exit 0?
    pub fn ok(&self) -> bool {
        self.fail_reason.is_none()
    }

    /// stdout followed by stderr (2.5.2's `output`).
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `argv` (looked up in `PATH`), waiting at most `timeout`. An error
/// means the command could not be started (for example, it is missing).
pub fn run(argv: &[&str], timeout: Duration) -> io::Result<CmdResult> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let mut child = sys::command(program)
        .args(args)
        .env("LC_ALL", "C")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let result = wait(&mut child, timeout);
    if result.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

/// Drains both pipes while waiting (a full pipe would block the command),
/// and kills the command at the deadline.
fn wait(child: &mut Child, timeout: Duration) -> io::Result<CmdResult> {
    let mut out = Capture::new(child.stdout.take())?;
    let mut err = Capture::new(child.stderr.take())?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let (status, timed_out) = loop {
        let progressed = out.drain() | err.drain();
        if let Some(status) = child.try_wait()? {
            break (status, false);
        }
        if Instant::now() >= deadline {
            child.kill()?;
            break (child.wait()?, true);
        }
        if progressed {
            pause = Duration::from_millis(1);
        } else {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    };
    // What is left after the exit (grandchildren may keep a pipe open:
    // take only what is there now).
    out.drain();
    err.drain();
    let fail_reason = if timed_out {
        Some(format!(
            "killed after the timeout of {}s",
            timeout.as_secs()
        ))
    } else if let Some(sig) = status.signal() {
        Some(format!("terminated by signal {sig}"))
    } else {
        match status.code() {
            Some(0) => None,
            Some(code) => Some(format!("exited with exit code {code}")),
            None => Some("terminated for an unknown reason".into()),
        }
    };
    Ok(CmdResult {
        stdout: out.text(),
        stderr: err.text(),
        fail_reason,
    })
}

/// One non-blocking output pipe and what was read from it (the first
/// [`MAX_OUTPUT`] bytes; the rest is read and dropped).
struct Capture<R> {
    pipe: Option<R>,
    data: Vec<u8>,
}

impl<R: Read + AsRawFd> Capture<R> {
    fn new(pipe: Option<R>) -> io::Result<Self> {
        if let Some(p) = &pipe {
            sys::set_nonblocking(p)?;
        }
        Ok(Capture {
            pipe,
            data: Vec::new(),
        })
    }

    /// Reads what is available; true when something was read.
    fn drain(&mut self) -> bool {
        let Some(pipe) = self.pipe.as_mut() else {
            return false;
        };
        let mut buf = [0u8; 4096];
        let mut progressed = false;
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => {
                    self.pipe = None;
                    return progressed;
                }
                Ok(n) => {
                    progressed = true;
                    let room = (MAX_OUTPUT as usize).saturating_sub(self.data.len());
                    self.data.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return progressed,
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECS5: Duration = Duration::from_secs(5);

    #[test]
    fn captures_both_streams_and_the_exit_code() {
        let r = run(&["sh", "-c", "echo out; echo err >&2; exit 3"], SECS5).unwrap();
        assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("out\n", "err\n"));
        assert_eq!(r.output(), "out\nerr\n");
        assert_eq!(r.fail_reason.as_deref(), Some("exited with exit code 3"));
        let ok = run(&["sh", "-c", "pwd; echo $LC_ALL"], SECS5).unwrap();
        assert_eq!(ok.fail_reason, None);
        assert_eq!(ok.stdout, "/\nC\n");
    }

    #[test]
    fn signals_timeouts_and_missing_programs() {
        let r = run(&["sh", "-c", "kill -9 $$"], SECS5).unwrap();
        assert_eq!(r.fail_reason.as_deref(), Some("terminated by signal 9"));
        let start = Instant::now();
        let r = run(&["sleep", "10"], Duration::from_millis(200)).unwrap();
        assert!(start.elapsed() < SECS5);
        assert!(r
            .fail_reason
            .unwrap()
            .starts_with("killed after the timeout"));
        let e = run(&["/nonexistent/ganeti-rs-cmd"], SECS5).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn output_is_bounded_and_a_full_pipe_does_not_block() {
        // Far more than a pipe holds: the command must finish on its own.
        let r = run(&["head", "-c", "1000000", "/dev/zero"], SECS5).unwrap();
        assert_eq!(r.fail_reason, None);
        assert_eq!(r.stdout.len() as u64, MAX_OUTPUT);
        let r = run(&["head", "-c", "65537", "/dev/zero"], SECS5).unwrap();
        assert_eq!(r.stdout.len() as u64, MAX_OUTPUT);
    }
}
