//! ganeti-masterd: the Ganeti master daemon (2.5.2 `server/masterd.py`).
//!
//! Start-up, in 2.5.2's order (spec masterd-luxi 4.2): the user check, am
//! I the master according to ssconf (exit 12 without ssconf or own name,
//! exit 11 for another master), the masterd user and daemons group, the
//! configuration (exit 1 with 2.5.2's messages), the vote of the other
//! nodes (`master_info`, 6 rounds 10 s apart, 2.5.2's majority rule) or,
//! with `--no-voting`, the typed confirmation unless `--yes-do-it`, the
//! master IP through the local node daemon (`node_start_master [false,
//! false]`, a failure is only logged), then the daemon: detach, log file
//! with thread names, pid file, the LUXI socket, the context
//! (configuration, lock manager, node RPC client), the job queue with
//! [`JOBQUEUE_THREADS`] workers and its recovery, and the LUXI request
//! workers. SIGTERM or SIGINT stop it (spec 3.16): no new requests, long
//! sleeps of running opcodes interrupted, each job worker finishes its
//! opcode, the queue lock and the socket go.
//!
//! Differences from 2.5.2: the daemon reports ready (its starter exits 0)
//! only once it serves, so a failure to set up the queue or the socket
//! makes the starter exit 1; messages of the checks before detaching go to
//! standard error as plain lines; the socket `ganeti-query` (3.0 clients)
//! is a symbolic link to `ganeti-master`; the vote pause can be shortened
//! for tests ([`startup::VOTE_DELAY_ENV`]). The master daemon does not lock
//! its memory (2.5.2 does not either).

pub mod handler;
pub mod luxi_server;
pub mod processor;
pub mod replicator;
pub mod startup;
pub mod voting;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cmdlib::Context;
use crate::config::ConfigWriter;
use crate::constants::EXIT_FAILURE;
use crate::daemon::{self, Options, Service, Setup};
use crate::jqueue::{JobQueue, JOBQUEUE_THREADS};
use crate::paths::{Daemon, Paths};
use crate::rpc::client::{self, Client};

use handler::LuxiHandler;
use luxi_server::{LuxiServer, Running, VersionPolicy};
use processor::Processor;
use replicator::RpcReplicator;

/// The socket 3.0 clients connect to (`QUERY_SOCKET`), next to the master
/// socket.
pub const QUERY_SOCKET_NAME: &str = "ganeti-query";

/// The running master daemon.
struct Master {
    luxi: Running,
    queue: Arc<JobQueue>,
    ctx: Arc<Context>,
    query_link: Option<PathBuf>,
}

impl Service for Master {
    fn stop(&mut self, grace: Duration) {
        let start = Instant::now();
        // Long sleeps of running opcodes end now.
        self.ctx.stop.raise();
        // The queue stops in the background: it wakes the clients waiting
        // for job changes, and its workers finish their opcodes.
        let queue = Arc::clone(&self.queue);
        let stopper = daemon::spawn_named("queue-stop".into(), daemon::WORKER_STACK, move || {
            queue.shutdown()
        });
        self.luxi.stop(grace);
        if let Some(link) = self.query_link.take() {
            remove_query_link(&link);
        }
        match stopper {
            Ok(t) => {
                while !t.is_finished() && start.elapsed() < grace {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if t.is_finished() {
                    let _ = t.join();
                } else {
                    log::warn!("Job workers still busy after the shutdown grace time");
                }
            }
            Err(e) => {
                log::error!("Cannot start the queue shutdown thread: {e}");
                self.queue.shutdown();
            }
        }
    }
}

/// Creates `ganeti-query` as a symbolic link to the master socket (3.0
/// clients connect there). Failure is logged only.
fn make_query_link(master_socket: &Path) -> Option<PathBuf> {
    let dir = master_socket.parent()?;
    let target = master_socket.file_name()?;
    let link = dir.join(QUERY_SOCKET_NAME);
    let temp = dir.join(format!(".{QUERY_SOCKET_NAME}.{}.tmp", crate::sys::getpid()));
    let _ = std::fs::remove_file(&temp);
    let made =
        std::os::unix::fs::symlink(target, &temp).and_then(|()| std::fs::rename(&temp, &link));
    match made {
        Ok(()) => Some(link),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            log::warn!("Cannot create {}: {e}", link.display());
            None
        }
    }
}

/// Removes our `ganeti-query` link, only if it still is one to the master
/// socket.
fn remove_query_link(link: &Path) {
    let ours = std::fs::read_link(link)
        .map(|t| t.as_os_str() == "ganeti-master")
        .unwrap_or(false);
    if ours {
        if let Err(e) = std::fs::remove_file(link) {
            log::error!("Cannot remove {}: {e}", link.display());
        }
    }
}

/// Builds and starts everything the daemon serves with.
fn prepare(paths: &Paths, me: &str, port: u16, notes: &[String]) -> Result<Master, String> {
    for note in notes {
        log::error!("{note}");
    }
    let rpc = Client::new(&paths.server_pem())
        .map_err(|e| format!("Cannot set up the node RPC client: {e}"))?
        .port(port);
    let rpc = Arc::new(rpc);
    let server = LuxiServer::bind(paths).map_err(|e| e.to_string())?;
    let socket = server.path().to_path_buf();
    let built = build(paths, me, &rpc);
    let (ctx, queue, processor) = match built {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            return Err(e);
        }
    };
    let handler = Arc::new(LuxiHandler::new(
        Arc::clone(&queue),
        processor,
        paths.clone(),
    ));
    let options = luxi_server::Options {
        version_policy: VersionPolicy::Lenient,
        ..luxi_server::Options::default()
    };
    let luxi = server.serve(handler, options).map_err(|e| {
        queue.shutdown();
        format!("Cannot start the LUXI server: {e}")
    })?;
    let query_link = make_query_link(&socket);
    log::info!("Master daemon ready on {}", socket.display());
    Ok(Master {
        luxi,
        queue,
        ctx,
        query_link,
    })
}

type Built = (Arc<Context>, Arc<JobQueue>, Arc<Processor>);

/// The context, the processor and the job queue (its recovery included).
fn build(paths: &Paths, me: &str, rpc: &Arc<Client>) -> Result<Built, String> {
    let cfg = ConfigWriter::open(paths.clone(), me, false, Some(Arc::clone(rpc)))
        .map_err(|e| crate::config::open_error_message(&e))?;
    let cfg = Arc::new(cfg);
    let ctx = Arc::new(Context::new(
        paths.clone(),
        Arc::clone(&cfg),
        Arc::clone(rpc),
    ));
    let replicator = Arc::new(RpcReplicator::new(Arc::clone(rpc), cfg));
    let follow = Arc::clone(&replicator);
    let processor = Arc::new(Processor::new(
        Arc::clone(&ctx),
        Box::new(move || follow.refresh()),
    ));
    let queue = JobQueue::open(
        paths.clone(),
        replicator,
        Arc::clone(&processor) as Arc<dyn crate::jqueue::OpExecutor>,
        JOBQUEUE_THREADS,
    )
    .map_err(|e| format!("Cannot open the job queue: {e}"))?;
    Ok((ctx, queue, processor))
}

/// Runs the master daemon; returns the exit code.
pub fn run(options: &Options) -> i32 {
    let paths = Paths::from_env();
    // Before any thread exists (getservbyname is not thread-safe).
    let port = client::noded_port();
    let checked = (|| -> Result<(String, Vec<String>), i32> {
        startup::check_user()?;
        let me = startup::check_master(&paths, options.debug)?;
        startup::check_owner()?;
        startup::check_not_running(&paths)?;
        let cfg = startup::check_config(&paths, &me)?;
        let rpc = Client::new(&paths.server_pem())
            .map_err(|e| {
                eprintln!("Cannot set up the node RPC client: {e}");
                EXIT_FAILURE
            })?
            .port(port)
            // The connections of these calls must not outlive the fork.
            .keep_alive(false);
        if options.no_voting {
            if !options.yes_do_it {
                let stdin = std::io::stdin();
                let mut input = stdin.lock();
                if !startup::confirm_no_voting(&mut input, &mut std::io::stdout()) {
                    eprintln!("Aborting.");
                    return Err(EXIT_FAILURE);
                }
            }
        } else {
            startup::vote(&paths, &cfg, &me, &rpc)?;
        }
        let mut notes = Vec::new();
        if let Some(msg) = startup::activate_master_ip(&paths, &cfg, &me, &rpc) {
            eprintln!("{msg}");
            notes.push(msg);
        }
        Ok((me, notes))
    })();
    let (me, notes) = match checked {
        Ok(c) => c,
        Err(code) => return code,
    };
    let setup = Setup {
        daemon: Daemon::Masterd,
        options,
        paths: &paths,
        thread_names: true,
    };
    daemon::run(setup, || prepare(&paths, &me, port, &notes))
}
