//! Running an external command as 2.5.2's `utils.RunCmd` does: no shell,
//! cwd `/`, stdin `/dev/null`, `LC_ALL=C`, stdout and stderr captured apart.
//! Unlike 2.5.2 every run has a timeout, after which the command's process
//! group gets SIGTERM, then SIGKILL (see [`crate::proc`], which runs it).

#![forbid(unsafe_code)]

use std::io;
use std::time::Duration;

use crate::{proc, sys};

/// Most output kept from each of stdout and stderr.
pub const MAX_OUTPUT: u64 = 64 * 1024;

/// What a finished command left.
#[derive(Debug)]
pub struct CmdResult {
    pub stdout: String,
    pub stderr: String,
    /// `None` when the command succeeded; else 2.5.2's `fail_reason`
    /// ("exited with exit code N", "terminated by signal N", and after a
    /// timeout "terminated after timeout of S seconds").
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
    let mut cmd = sys::command(program);
    cmd.args(args).env("LC_ALL", "C").current_dir("/");
    let cap = usize::try_from(MAX_OUTPUT).unwrap_or(usize::MAX);
    let output = proc::Output::Capture {
        stdout: cap,
        stderr: cap,
    };
    let run = proc::run(cmd, output, timeout).map_err(|e| match e {
        proc::Error::Start(e) | proc::Error::Wait(e) => e,
    })?;
    Ok(CmdResult {
        stdout: String::from_utf8_lossy(&run.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&run.stderr).into_owned(),
        fail_reason: run.fail_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

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
        assert_eq!(
            r.fail_reason.as_deref(),
            Some("terminated by signal 15, terminated after timeout of 0.20 seconds")
        );
        let e = run(&["/nonexistent/ganeti-rs-cmd"], SECS5).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_timeout_stops_the_children_too() {
        let file = std::env::temp_dir().join(format!("ganeti-cmd-child-{}", sys::getpid()));
        let script = format!("sleep 30 & echo $! > {}; sleep 30", file.display());
        let r = run(&["sh", "-c", &script], Duration::from_millis(300)).unwrap();
        assert!(r.fail_reason.is_some());
        let pid: i32 = std::fs::read_to_string(&file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::fs::remove_file(&file).unwrap();
        let gone = (0..250).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        });
        let _ = sys::kill(pid, libc::SIGKILL);
        assert!(gone, "the command's child survived its timeout");
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
