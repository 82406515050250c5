//! ganeti-masterd: the start-up checks of ganeti-masterd(8) that need no
//! cluster. The master services themselves (LUXI, job queue, voting) are
//! not in this version; the daemon says so and exits 1 instead of
//! pretending to serve.

pub mod luxi_server;
pub mod voting;

use crate::constants::{EXIT_FAILURE, EXIT_NODESETUP_ERROR, EXIT_NOTMASTER};
use crate::daemon::{self, Options};
use crate::paths::{self, Daemon, Paths};
use crate::ssconf;

/// Am I the master, according to ssconf? `Err(code)` is the exit code after
/// the message was printed, as 2.5.2's `CheckMaster`.
fn check_master(paths: &Paths, debug: bool) -> Result<(), i32> {
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
    Ok(())
}

/// Runs the master daemon's start-up checks; returns the exit code.
pub fn run(options: &Options) -> i32 {
    let paths = Paths::from_env();
    if let Err(msg) = daemon::check_user(Daemon::Masterd, 0) {
        eprintln!("{msg}");
        return EXIT_FAILURE;
    }
    if let Err(code) = check_master(&paths, options.debug) {
        return code;
    }
    let config = paths.config_data();
    if let Err(e) = std::fs::metadata(&config) {
        eprintln!(
            "Configuration error while opening the configuration file: cannot read {}: {e}\n\
             This is most likely a broken or incomplete cluster configuration; \
             check it before starting the master daemon again.",
            config.display()
        );
        return EXIT_FAILURE;
    }
    eprintln!(
        "ganeti-masterd: this version performs only the start-up checks; \
         the master services (LUXI, job queue, voting) are not implemented yet"
    );
    EXIT_FAILURE
}
