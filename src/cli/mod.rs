//! The command-line tools `gnt-cluster`, `gnt-job` and `gnt-debug`, as
//! Ganeti 2.5.2's `cli.py` and `client/gnt_*.py` behave: the same commands,
//! options, argument checks, messages, output layouts and exit codes.
//!
//! Parts: [`args`] (the command tables and option parsing on getopts, with
//! optparse's messages; `GenericMain`), [`format`] (`FormatError`, tables
//! with `--no-headers`/`--separator`, timestamps, `SafeEncode`), [`params`]
//! (`key=val` options, type enforcement of parameter dictionaries, units,
//! user-id pools), [`jobs`] (`GetClient` with its friendly errors,
//! `SubmitOpCode`/`SubmitOrSend`/`PollJob` printing the job log), and one
//! module per tool: [`cluster`], [`job`], [`debug`]. Cluster creation,
//! destruction and master failover are in `crate::bootstrap`.
//!
//! Differences from 2.5.2, on purpose:
//! * Job ids given on the command line must be decimal numbers (2.5.2 sent
//!   any text to the master, which then failed to find a file for it).
//! * `gnt-debug delay` also takes `--submit` (added in later Ganeti
//!   versions); `gnt-cluster master-failover` takes `--yes-do-it` to skip
//!   the confirmation of `--no-voting` (as Ganeti 2.6 and later), since
//!   2.5.2 could only ask on a terminal.
//! * Python `str()` of values is approximated: dictionaries print their
//!   keys sorted (Python 2 used hash order) and floats as `repr()`.
//! * `SafeEncode` writes a carriage return as `\r` (2.5.2 wrote `\'r`).
//! * Logging to `/var/log/ganeti/commands.log` is skipped silently when
//!   the file cannot be opened (2.5.2 did the same unless debugging).
#![forbid(unsafe_code)]

pub mod args;
pub mod cluster;
pub mod debug;
pub mod format;
pub mod job;
pub mod jobs;
pub mod params;

use std::fmt;

use crate::errors::GanetiError;
use crate::luxi::LuxiError;

/// Why a command failed, as 2.5.2's `GenericMain` sorts exceptions before
/// `FormatError` turns them into a message and an exit code.
#[derive(Debug)]
pub enum CliError {
    /// A Ganeti error, raised here or decoded from the master's answer or
    /// from a job's result.
    Ganeti(GanetiError),
    /// Talking to the master daemon failed (`luxi.ProtocolError` and its
    /// subclasses, `NoMasterError`, `TimeoutError`, `PermissionError`).
    Luxi(LuxiError),
    /// `--submit`: the job was queued; not an error (prints `JobID: <id>`).
    JobSubmitted(u64),
    /// Anything else (2.5.2: "Unhandled exception").
    Other(String),
}

impl CliError {
    /// `OpPrereqError(msg)` with only a message.
    pub fn prereq1(msg: impl Into<String>) -> CliError {
        CliError::Ganeti(GanetiError::msg("OpPrereqError", msg))
    }

    /// `OpPrereqError(msg, ecode)`.
    pub fn prereq(msg: impl Into<String>, ecode: &str) -> CliError {
        CliError::Ganeti(GanetiError::prereq(msg, ecode))
    }

    /// `OpExecError(msg)`.
    pub fn exec(msg: impl Into<String>) -> CliError {
        CliError::Ganeti(GanetiError::exec(msg))
    }

    /// `ParameterError(msg)`.
    pub fn parameter(msg: impl Into<String>) -> CliError {
        CliError::Ganeti(GanetiError::msg("ParameterError", msg))
    }
}

impl From<GanetiError> for CliError {
    fn from(e: GanetiError) -> Self {
        CliError::Ganeti(e)
    }
}

impl From<LuxiError> for CliError {
    fn from(e: LuxiError) -> Self {
        match e {
            LuxiError::Ganeti(g) => CliError::Ganeti(g),
            other => CliError::Luxi(other),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format::format_error(self).1)
    }
}

impl std::error::Error for CliError {}
