//! The start-up checks of ganeti-masterd (2.5.2 `CheckMasterd`, spec
//! masterd-luxi 4.2 steps 1-6), run before the daemon detaches, with
//! 2.5.2's messages and exit codes. Each returns the exit code once its
//! message is printed.
//!
//! No logger exists yet at this point, so messages 2.5.2 logged here
//! (voting, master IP) go to standard error as plain lines.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::time::Duration;

use serde_json::json;

use super::voting::{self, VoteError, VOTE_RETRY_DELAY};
use crate::config::{self, ConfigWriter};
use crate::constants::{
    EXIT_FAILURE, EXIT_NODESETUP_ERROR, EXIT_NOTMASTER, GANETI_GROUPS, GANETI_USERS,
};
use crate::daemon::{self, pidfile::PidFileError};
use crate::objects::ConfigData;
use crate::paths::{self, Daemon, Paths};
use crate::rpc::client::{self, Client};
use crate::ssconf;
use crate::sys;

/// Overrides the pause between voting rounds, in seconds, for tests only
/// (documented in ganeti-masterd(8)); 2.5.2 always waits 10 s.
pub const VOTE_DELAY_ENV: &str = "GANETI_MASTERD_VOTE_DELAY";
/// Longest confirmation line read for `--no-voting`.
pub const MAX_CONFIRMATION: u64 = 1024;

/// Step 1: the effective user must be the masterd user.
pub fn check_user() -> Result<(), i32> {
    let expected = match sys::getpwnam(GANETI_USERS[0]) {
        Ok(Some(u)) => u.uid,
        _ => {
            eprintln!(
                "User or group not existing on system: {}:{}",
                GANETI_USERS[0], GANETI_GROUPS[4]
            );
            return Err(EXIT_FAILURE);
        }
    };
    daemon::check_user(Daemon::Masterd, expected).map_err(|msg| {
        eprintln!("{msg}");
        EXIT_FAILURE
    })
}

/// Step 2 (`ssconf.CheckMaster`): ssconf must name this node master.
/// Returns this node's name.
pub fn check_master(paths: &Paths, debug: bool) -> Result<String, i32> {
    let master = match ssconf::read(paths, "master_node") {
        Ok(m) => m,
        Err(e) => {
            // 2.5.2 prints this on stdout.
            println!("Cluster configuration incomplete: '{e}'");
            return Err(EXIT_NODESETUP_ERROR);
        }
    };
    let me = match paths::node_name() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("Cannot resolve my own name ({e})");
            return Err(EXIT_NODESETUP_ERROR);
        }
    };
    if master.trim() != me {
        if debug {
            eprintln!("Not master, exiting.");
        }
        return Err(EXIT_NOTMASTER);
    }
    Ok(me)
}

/// Step 3: the masterd user and the daemons group must exist.
pub fn check_owner() -> Result<(), i32> {
    let (user, group) = (GANETI_USERS[0], GANETI_GROUPS[4]);
    let ok =
        matches!(sys::getpwnam(user), Ok(Some(_))) && matches!(sys::getgrnam(group), Ok(Some(_)));
    if ok {
        Ok(())
    } else {
        eprintln!("User or group not existing on system: {user}:{group}");
        Err(EXIT_FAILURE)
    }
}

/// Refuses early when another master daemon holds the pid file, before
/// anything (the configuration's upgrade on open, the vote) could disturb
/// it. Probing takes the lock for an instant when nobody holds it.
pub fn check_not_running(paths: &Paths) -> Result<(), i32> {
    use std::io::Read as _;
    let path = paths.pid_file(Daemon::Masterd);
    let Ok(mut file) = std::fs::File::open(&path) else {
        return Ok(());
    };
    match sys::flock_exclusive_nb(&file) {
        Ok(false) => {
            let mut text = String::new();
            let _ = (&mut file).take(64).read_to_string(&mut text);
            let pid = text.trim().parse().ok();
            eprintln!("{}", PidFileError::Locked(path, pid));
            Err(EXIT_FAILURE)
        }
        _ => Ok(()),
    }
}

/// Step 4: the configuration must open (version, syntax, this node as
/// master). Returns a copy of it for the vote.
pub fn check_config(paths: &Paths, me: &str) -> Result<ConfigData, i32> {
    match ConfigWriter::open(paths.clone(), me, false, None) {
        Ok(w) => Ok(w.read().clone()),
        Err(e) => {
            eprintln!("{}", config::open_error_message(&e));
            Err(EXIT_FAILURE)
        }
    }
}

/// Step 5 with `--no-voting` and without `--yes-do-it`: the typed
/// confirmation. True only for `YES` (surrounding white space ignored).
pub fn confirm_no_voting(input: &mut impl Read, out: &mut impl Write) -> bool {
    let _ = write!(
        out,
        "The 'no voting' option has been selected.\n\
         This is dangerous, please confirm by typing uppercase 'yes': "
    );
    let _ = out.flush();
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(input.take(MAX_CONFIRMATION));
    if reader.read_line(&mut line).is_err() {
        return false;
    }
    line.trim() == "YES"
}

/// `ssconf_node_primary_ips`: node name -> primary IP.
fn ssconf_primary_ips(paths: &Paths) -> BTreeMap<String, String> {
    let Ok(text) = ssconf::read(paths, "node_primary_ips") else {
        return BTreeMap::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}

/// The address of a node for the "static" calls of start-up: ssconf, else
/// the configuration.
fn address(ssconf: &BTreeMap<String, String>, cfg: &ConfigData, name: &str) -> String {
    ssconf
        .get(name)
        .or_else(|| cfg.nodes.get(name).map(|n| &n.primary_ip))
        .cloned()
        .unwrap_or_else(|| name.to_string())
}

/// The pause between voting rounds: [`VOTE_RETRY_DELAY`], or the test
/// override.
pub fn vote_delay() -> Duration {
    match std::env::var(VOTE_DELAY_ENV) {
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && (0.0..=3600.0).contains(&s) => Duration::from_secs_f64(s),
            _ => {
                eprintln!("Ignoring invalid {VOTE_DELAY_ENV} '{v}'");
                VOTE_RETRY_DELAY
            }
        },
        Err(_) => VOTE_RETRY_DELAY,
    }
}

/// Step 5 without `--no-voting` (`CheckAgreement`): every other node of the
/// configuration is asked whom it takes for the master.
pub fn vote(paths: &Paths, cfg: &ConfigData, me: &str, rpc: &Client) -> Result<(), i32> {
    let ips = ssconf_primary_ips(paths);
    let others: Vec<client::Node> = cfg
        .nodes
        .keys()
        .filter(|n| n.as_str() != me)
        .map(|n| client::Node {
            name: n.clone(),
            address: address(&ips, cfg, n),
            offline: false,
        })
        .collect();
    let delay = vote_delay();
    let result = voting::check_agreement(rpc, me, &others, || {
        eprintln!("Majority of nodes didn't answer, retrying in a few seconds");
        std::thread::sleep(delay);
    });
    match result {
        Ok(()) => Ok(()),
        Err(e @ VoteError::Inconsistent) => {
            eprintln!("{e}");
            eprintln!(
                "Use the --no-voting option if you understand what effects it has on the \
                 cluster state"
            );
            Err(EXIT_FAILURE)
        }
        Err(e) => {
            eprintln!("{e}");
            Err(EXIT_FAILURE)
        }
    }
}

/// Step 6 (`ActivateMasterIP`): `node_start_master [false, false]` to the
/// local node daemon. A failure is returned as the message to log, not
/// fatal.
pub fn activate_master_ip(
    paths: &Paths,
    cfg: &ConfigData,
    me: &str,
    rpc: &Client,
) -> Option<String> {
    let ips = ssconf_primary_ips(paths);
    let addr = address(&ips, cfg, me);
    let r = rpc.call_node(&addr, "node_start_master", &json!([false, false]));
    r.fail_msg()
        .map(|m| format!("Can't activate master IP address: {m}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_wants_uppercase_yes() {
        let cases = [
            ("YES\n", true),
            ("  YES  \n", true),
            ("YES", true),
            ("yes\n", false),
            ("Yes\n", false),
            ("", false),
            ("YES please\n", false),
            ("\nYES\n", false),
        ];
        for (input, want) in cases {
            let mut out = Vec::new();
            assert_eq!(
                confirm_no_voting(&mut input.as_bytes(), &mut out),
                want,
                "{input:?}"
            );
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "The 'no voting' option has been selected.\n\
                 This is dangerous, please confirm by typing uppercase 'yes': "
            );
        }
    }

    #[test]
    fn confirmation_line_is_bounded() {
        let mut long = "YES".to_string();
        long.push_str(&" ".repeat(MAX_CONFIRMATION as usize));
        long.push('\n');
        // The line is cut at the limit: still YES once stripped.
        assert!(confirm_no_voting(&mut long.as_bytes(), &mut Vec::new()));
        let mut junk = " ".repeat(MAX_CONFIRMATION as usize);
        junk.push_str("YES\n");
        assert!(!confirm_no_voting(&mut junk.as_bytes(), &mut Vec::new()));
    }
}
