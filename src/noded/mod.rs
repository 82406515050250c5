//! ganeti-noded: start-up (options, port, bind address, certificates) and
//! the procedure tables of the RPC server.
//!
//! Each area module lists its procedures in one table; [`find_procedure`]
//! looks a path up in all of them, and the server turns every error into
//! `[false, "message"]` in one place.

pub mod blockdev;
pub mod files;
pub mod filestorage;
pub mod hooks;
pub mod instance;
pub mod jobqueue;
pub mod master;
pub mod node;
pub mod os;
pub mod server;
pub mod storage;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::constants::{DEFAULT_NODED_PORT, EXIT_FAILURE};
use crate::daemon::{self, Options, Setup};
use crate::paths::{Daemon, Paths};
use crate::sys;
use crate::tls;

/// What every procedure can see.
#[derive(Debug, Clone)]
pub struct Context {
    pub paths: Paths,
    /// The node's own name (`GANETI_HOSTNAME`, else the FQDN): resolved on
    /// first use, so a node whose resolver does not answer still starts at
    /// once. See [`Context::node_name`].
    node_name: Arc<OnceLock<String>>,
    /// The port the node daemons listen on (`-p`, services, 1811).
    pub port: u16,
}

impl Context {
    /// A context for unit tests and tools: paths under `root`.
    pub fn for_root(root: impl Into<PathBuf>, node_name: &str) -> Context {
        Context {
            paths: Paths::with_root(root),
            node_name: Arc::new(OnceLock::from(node_name.to_string())),
            port: DEFAULT_NODED_PORT,
        }
    }

    /// 2.5.2's `my_name`: `GANETI_HOSTNAME`, else the FQDN (resolved once,
    /// on first use); the kernel host name when resolving fails.
    pub fn node_name(&self) -> &str {
        self.node_name.get_or_init(|| {
            crate::paths::node_name().unwrap_or_else(|e| {
                log::error!("Cannot determine the node name: {e}");
                sys::gethostname().unwrap_or_else(|_| "localhost".into())
            })
        })
    }
}

/// Why a procedure failed; `Display` is the message sent in `[false, msg]`.
#[derive(Debug)]
pub enum RpcError {
    /// The body is not JSON or the arguments have the wrong shape.
    Arguments(String),
    /// The procedure ran and failed (2.5.2's `RPCFail`): sent as is.
    Failed(String),
    /// A bug (a panic in a handler).
    Internal(String),
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcError::Arguments(m) => write!(
                f,
                "Error while executing backend function: invalid arguments: {m}"
            ),
            RpcError::Failed(m) => write!(f, "{m}"),
            RpcError::Internal(m) => write!(
                f,
                "Error while executing backend function: internal error: {m}"
            ),
        }
    }
}

/// A failure that 2.5.2 reports as an unexpected Python exception:
/// `Error while executing backend function: <msg>`.
pub fn backend(msg: impl std::fmt::Display) -> RpcError {
    RpcError::Failed(format!("Error while executing backend function: {msg}"))
}

/// An OS error as Python 2 prints it (it lives in `sys`, below `storage`,
/// which uses it too).
pub use crate::fsutil::os_error_text;

/// Removes the visible regular files directly in `dir` (never symlinks,
/// directories, names starting with `.`, or `keep`), then fsyncs it; a
/// missing directory is skipped (2.5.2's `_CleanDirectory`, used by
/// `jobqueue_purge` and `node_leave_cluster`).
pub fn clean_directory(
    paths: &Paths,
    dir: &std::path::Path,
    keep: Option<&str>,
) -> Result<(), RpcError> {
    let failed = |e: std::io::Error, p: &std::path::Path| {
        backend(os_error_text(&e, Some(&paths.to_wire(p))))
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(failed(e, dir)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| failed(e, dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || Some(name.as_ref()) == keep {
            continue;
        }
        let path = entry.path();
        if entry.file_type().map_err(|e| failed(e, &path))?.is_file() {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(failed(e, &path)),
            }
        }
    }
    crate::fsutil::sync_dir(dir).map_err(|e| failed(e, dir))
}

/// Body limit of the procedures whose arguments are a few names and
/// numbers.
pub const SMALL_BODY: usize = 64 * 1024;

/// One RPC procedure: its name (the URL path without `/`), the largest body
/// it accepts and its handler.
#[derive(Debug)]
pub struct Procedure {
    pub name: &'static str,
    pub max_body: usize,
    pub handler: fn(&Context, &[u8]) -> Result<Value, RpcError>,
}

/// Every procedure table.
const AREAS: &[&[Procedure]] = &[
    node::PROCEDURES,
    master::PROCEDURES,
    files::PROCEDURES,
    jobqueue::PROCEDURES,
    filestorage::PROCEDURES,
    instance::PROCEDURES,
    blockdev::PROCEDURES,
    storage::PROCEDURES,
    os::PROCEDURES,
    hooks::PROCEDURES,
];

/// The procedure for a request path (`/version`); no query strings, no
/// extra slashes, as 2.5.2.
pub fn find_procedure(path: &str) -> Option<&'static Procedure> {
    let name = path.strip_prefix('/')?;
    AREAS.iter().flat_map(|a| a.iter()).find(|p| p.name == name)
}

/// Deepest nesting of arrays and objects accepted in a request body. The
/// deepest 2.5.2 arguments (instances with disks with children) nest about
/// eight levels; the limit keeps a hostile body from using up a worker's
/// small stack in the parser.
pub const MAX_JSON_DEPTH: usize = 32;

/// Checks the nesting depth of a JSON text without parsing it (brackets
/// inside strings do not count). Invalid JSON passes; the parser reports it.
pub fn check_depth(body: &[u8]) -> Result<(), RpcError> {
    if crate::pyjson::nests_deeper_than(body, MAX_JSON_DEPTH) {
        return Err(RpcError::Arguments(format!(
            "JSON nested deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    Ok(())
}

/// Decodes a request body into the procedure's argument type.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, RpcError> {
    serde_json::from_slice(body).map_err(|e| RpcError::Arguments(e.to_string()))
}

/// The port: `-p`, else the services database entry `ganeti-noded/tcp`,
/// else 1811.
pub fn resolve_port(opt: Option<u16>) -> u16 {
    opt.or_else(|| sys::service_port("ganeti-noded"))
        .unwrap_or(DEFAULT_NODED_PORT)
}

/// The bind address: `-b`, else `::` when ssconf says the cluster is IPv6
/// (`primary_ip_family` = 10), else `0.0.0.0`.
pub fn resolve_bind(opt: Option<&str>, paths: &Paths) -> Result<IpAddr, String> {
    if let Some(b) = opt {
        return b.parse().map_err(|_| format!("Invalid bind address '{b}'"));
    }
    let family =
        std::fs::read_to_string(paths.ssconf_file("primary_ip_family")).unwrap_or_default();
    Ok(if family.trim() == libc::AF_INET6.to_string() {
        IpAddr::from([0u16; 8])
    } else {
        IpAddr::from([0u8; 4])
    })
}

/// Certificate and key paths, checked to be regular files (2.5.2 checks
/// this before detaching).
fn ssl_files(options: &Options, paths: &Paths) -> Result<(PathBuf, PathBuf), String> {
    let key = options
        .ssl_key
        .clone()
        .unwrap_or_else(|| paths.server_pem());
    let cert = options
        .ssl_cert
        .clone()
        .unwrap_or_else(|| paths.server_pem());
    for (what, p) in [("SSL key", &key), ("SSL certificate", &cert)] {
        if !p.is_file() {
            return Err(format!(
                "{what} file {} does not exist or is not a regular file",
                p.display()
            ));
        }
    }
    Ok((key, cert))
}

/// Runs the node daemon with parsed options; returns the exit code.
pub fn run(options: &Options) -> i32 {
    let paths = Paths::from_env();
    if let Err(msg) = daemon::check_user(Daemon::Noded, 0) {
        eprintln!("{msg}");
        return EXIT_FAILURE;
    }
    let ssl = if options.ssl {
        match ssl_files(options, &paths) {
            Ok(files) => Some(files),
            Err(msg) => {
                eprintln!("{msg}");
                return EXIT_FAILURE;
            }
        }
    } else {
        None
    };
    let port = resolve_port(options.port);
    let bind = match resolve_bind(options.bind.as_deref(), &paths) {
        Ok(b) => b,
        Err(msg) => {
            eprintln!("{msg}");
            return EXIT_FAILURE;
        }
    };
    let ctx = Context {
        paths: paths.clone(),
        node_name: Arc::default(),
        port,
    };
    let setup = Setup {
        daemon: Daemon::Noded,
        options,
        paths: &paths,
        thread_names: false,
    };
    daemon::run(setup, move || {
        // As 2.5.2: a queue that cannot be prepared is only logged here;
        // the job-queue procedures try again and report it.
        if let Err(e) = jobqueue::prepare(&ctx.paths) {
            log::warn!("Cannot prepare the job queue: {e}");
        }
        let tls = match &ssl {
            Some((key, cert)) => Some(tls::server_acceptor(key, cert).map_err(|e| e.to_string())?),
            None => None,
        };
        let addr = SocketAddr::new(bind, port);
        let listener =
            TcpListener::bind(addr).map_err(|e| format!("Cannot bind to {addr}: {e}"))?;
        let server = server::Server::start(listener, options.max_clients, tls, ctx)
            .map_err(|e| format!("Cannot start the RPC server: {e}"))?;
        log::info!("Listening on {addr}");
        Ok(server)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procedure_lookup_is_exact() {
        assert!(find_procedure("/version").is_some());
        for bad in ["version", "//version", "/version?x=1", "/", "/no_such_rpc"] {
            assert!(find_procedure(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn version_needs_json_but_ignores_it() {
        let ctx = Context::for_root("", "node1.example.com");
        let p = find_procedure("/version").unwrap();
        assert_eq!((p.handler)(&ctx, b"[]").unwrap(), Value::from(2050000));
        assert_eq!((p.handler)(&ctx, b"{}").unwrap(), Value::from(2050000));
        let e = (p.handler)(&ctx, b"[bad json").unwrap_err().to_string();
        assert!(
            e.starts_with("Error while executing backend function:"),
            "{e}"
        );
    }

    #[test]
    fn nesting_depth_limit() {
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(check_depth(nest(MAX_JSON_DEPTH).as_bytes()).is_ok());
        assert!(check_depth(nest(MAX_JSON_DEPTH + 1).as_bytes()).is_err());
        let quoted = format!("[\"{}\\\"[\"]", "[".repeat(100));
        assert!(check_depth(quoted.as_bytes()).is_ok(), "{quoted}");
        let mixed = format!(
            "{}{}",
            r#"{"a": "#.repeat(MAX_JSON_DEPTH + 1),
            "}".repeat(40)
        );
        assert!(check_depth(mixed.as_bytes()).is_err());
    }

    #[test]
    fn bind_follows_ip_family() {
        let root = std::env::temp_dir().join(format!("ganeti-bind-{}", sys::getpid()));
        let paths = Paths::with_root(&root);
        assert_eq!(resolve_bind(None, &paths).unwrap().to_string(), "0.0.0.0");
        std::fs::create_dir_all(paths.data_dir()).unwrap();
        std::fs::write(paths.ssconf_file("primary_ip_family"), "10\n").unwrap();
        assert_eq!(resolve_bind(None, &paths).unwrap().to_string(), "::");
        assert_eq!(
            resolve_bind(Some("127.0.0.3"), &paths).unwrap().to_string(),
            "127.0.0.3"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
