//! The master role: `master_info`, `node_start_master`, `node_stop_master`,
//! `node_leave_cluster` and `node_demote_from_mc`.
//!
//! Supported: 2.5.2's argument shapes, results and messages; the master IP
//! is added and removed with `ip` (found in /sbin, /bin, /usr/sbin or
//! /usr/bin) and announced with `arping`/`ndisc6`. Not like 2.5.2, because
//! we ship no `daemon-util`: the master daemon is started by running
//! `ganeti-masterd` from the directory of the running node daemon (or
//! `$GANETI_SBINDIR`), stopped by SIGTERM to the pid in its locked pid file,
//! and neither ganeti-rapi nor ganeti-confd is started or stopped. The
//! netdev and IP read from ssconf are checked before they reach a command
//! line.

use std::fs::File;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::de::IgnoredAny;
use serde_json::Value;

use super::{
    backend, clean_directory, decode, node, os_error_text, Context, Procedure, RpcError, SMALL_BODY,
};
use crate::cmd;
use crate::constants::DEFAULT_NODED_PORT;
use crate::fsutil::{self, FileMeta};
use crate::paths::{Daemon, Paths};
use crate::ssconf::{self, SsconfError};
use crate::sys;

/// The master IP is "up" when its node daemon port answers within this
/// time (2.5.2 pings port 1811, not the services entry).
pub const MASTER_IP_PING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `node_stop_master` waits for the master daemon to exit.
pub const MASTERD_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Where `ip` is looked for.
const IP_SEARCH_DIRS: [&str; 4] = ["/sbin", "/bin", "/usr/sbin", "/usr/bin"];
/// Overrides the directory of `ganeti-masterd` (as in init.d/ganeti).
pub const SBINDIR_ENV: &str = "GANETI_SBINDIR";
/// `AF_INET` and `AF_INET6` as ssconf writes them.
const FAMILY_INET: i64 = libc::AF_INET as i64;
const FAMILY_INET6: i64 = libc::AF_INET6 as i64;

pub const PROCEDURES: &[Procedure] = &[
    Procedure {
        name: "master_info",
        max_body: SMALL_BODY,
        handler: master_info,
    },
    Procedure {
        name: "node_start_master",
        max_body: SMALL_BODY,
        handler: node_start_master,
    },
    Procedure {
        name: "node_stop_master",
        max_body: SMALL_BODY,
        handler: node_stop_master,
    },
    Procedure {
        name: "node_leave_cluster",
        max_body: SMALL_BODY,
        handler: node_leave_cluster,
    },
    Procedure {
        name: "node_demote_from_mc",
        max_body: SMALL_BODY,
        handler: node_demote_from_mc,
    },
];

/// An I/O error as Python prints an `IOError`: `[Errno 2] No such file or
/// directory: '/var/lib/ganeti/ssconf_master_netdev'` (wire path).
pub(crate) fn python_io_error(paths: &Paths, path: &Path, e: &io::Error) -> String {
    os_error_text(e, Some(&paths.to_wire(path)))
}

/// 2.5.2's `ConfigurationError` text for an ssconf file that cannot be read.
fn ssconf_error(paths: &Paths, e: &SsconfError) -> String {
    match e {
        SsconfError::Io(p, err) => format!(
            "Can't read from the ssconf file: '{}'",
            python_io_error(paths, p, err)
        ),
        SsconfError::TooLarge(_) => e.to_string(),
    }
}

/// What ssconf says about the master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterInfo {
    pub netdev: String,
    pub ip: String,
    pub node: String,
    /// `AF_INET` (2) or `AF_INET6` (10); 2 when the file is missing.
    pub family: i64,
}

/// Reads the master's netdev, IP, name and the IP family from ssconf, as
/// 2.5.2's `GetMasterInfo` (failures: "Cluster configuration incomplete").
pub fn read_master_info(paths: &Paths) -> Result<MasterInfo, RpcError> {
    let incomplete = |m: String| RpcError::Failed(format!("Cluster configuration incomplete: {m}"));
    let read = |key| ssconf::read(paths, key).map_err(|e| incomplete(ssconf_error(paths, &e)));
    let netdev = read("master_netdev")?;
    let ip = read("master_ip")?;
    let node = read("master_node")?;
    let family = match ssconf::read(paths, "primary_ip_family") {
        Err(SsconfError::Io(_, e)) if e.kind() == io::ErrorKind::NotFound => FAMILY_INET,
        Err(e) => return Err(incomplete(ssconf_error(paths, &e))),
        Ok(text) => text.trim().parse().map_err(|_| {
            incomplete(format!(
                "Error while trying to parse primary ip family: \
                 invalid literal for int() with base 10: '{text}'"
            ))
        })?,
    };
    Ok(MasterInfo {
        netdev,
        ip,
        node,
        family,
    })
}

/// The master IP and its prefix length, checked against the family, and
/// the netdev checked to be an interface name (not an option, no path):
/// both end up on command lines.
fn checked_address(info: &MasterInfo) -> Result<(IpAddr, u8), RpcError> {
    let nd = &info.netdev;
    let bad_dev = nd.is_empty()
        || nd.len() >= 16
        || nd.starts_with('-')
        || nd == "."
        || nd == ".."
        || nd
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if bad_dev {
        return Err(RpcError::Failed(format!(
            "Invalid master network device '{nd}'"
        )));
    }
    let addr: Option<IpAddr> = info.ip.parse().ok();
    match (info.family, addr) {
        (FAMILY_INET, Some(ip @ IpAddr::V4(_))) => Ok((ip, 32)),
        (FAMILY_INET6, Some(ip @ IpAddr::V6(_))) => Ok((ip, 128)),
        (FAMILY_INET | FAMILY_INET6, _) => Err(RpcError::Failed(format!(
            "Invalid master IP '{}' for IP family {}",
            info.ip, info.family
        ))),
        (f, _) => Err(backend(format!("{f} is not a valid IP address family"))),
    }
}

/// `master_info`: `[netdev, ip, master_node, family]` from ssconf.
fn master_info(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let _: IgnoredAny = decode(body)?;
    let i = read_master_info(&ctx.paths)?;
    Ok(serde_json::json!([i.netdev, i.ip, i.node, i.family]))
}

/// Longest wait for `ip`, `arping`, `ndisc6` and the master daemon's
/// starter (which returns once the daemon serves).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a command as 2.5.2's `RunCmd` does (see [`cmd::run`]). `Err` when
/// it could not be started.
fn run_cmd(program: &Path, args: &[&str]) -> io::Result<cmd::CmdResult> {
    let prog = program
        .to_str()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "program path is not UTF-8"))?;
    let mut argv = vec![prog];
    argv.extend_from_slice(args);
    cmd::run(&argv, COMMAND_TIMEOUT)
}

/// The `ip` binary.
fn ip_command() -> Option<PathBuf> {
    IP_SEARCH_DIRS
        .iter()
        .map(|d| Path::new(d).join("ip"))
        .find(|p| p.is_file())
}

/// Brings the master IP up unless it already answers somewhere.
fn activate_master_ip(info: &MasterInfo) -> Result<(), String> {
    let (ip, prefix) = checked_address(info).map_err(|e| e.to_string())?;
    // 2.5.2's TcpPing(ip, 1811, live_port_needed=False), then the bind test.
    let target = ip.to_string();
    if node::tcp_ping(
        &target,
        DEFAULT_NODED_PORT,
        MASTER_IP_PING_TIMEOUT,
        false,
        None,
    ) {
        if node::owns_ip(&target) {
            log::info!("Master IP already configured, doing nothing");
            return Ok(());
        }
        return Err("Someone else has the master ip, not activating".into());
    }
    let ip_cmd = ip_command().ok_or_else(|| {
        format!(
            "Can't activate master IP: 'ip' not found in {}",
            IP_SEARCH_DIRS.join(", ")
        )
    })?;
    let cidr = format!("{ip}/{prefix}");
    let label = format!("{}:0", info.netdev);
    let args = [
        "address",
        "add",
        &cidr,
        "dev",
        &info.netdev,
        "label",
        &label,
    ];
    match run_cmd(&ip_cmd, &args) {
        Ok(r) if r.ok() => {}
        Ok(r) => {
            return Err(format!(
                "Can't activate master IP: {}",
                r.output().trim_end()
            ))
        }
        Err(e) => return Err(format!("Can't activate master IP: {e}")),
    }
    log::info!("Master IP {cidr} added on {}", info.netdev);
    // Announce the address; the exit codes are ignored as in 2.5.2.
    let ip_s = target;
    let (program, args): (&str, Vec<&str>) = match ip {
        IpAddr::V4(_) => (
            "arping",
            vec![
                "-q",
                "-U",
                "-c",
                "3",
                "-I",
                &info.netdev,
                "-s",
                &ip_s,
                &ip_s,
            ],
        ),
        IpAddr::V6(_) => ("ndisc6", vec!["-q", "-r", "3", &ip_s, &info.netdev]),
    };
    match run_cmd(Path::new(program), &args) {
        Ok(r) if !r.ok() => log::info!(
            "{program} for the master IP {}",
            r.fail_reason.unwrap_or_default()
        ),
        Ok(_) => {}
        Err(e) => log::warn!("Can't execute {program}, please install if missing: {e}"),
    }
    Ok(())
}

/// The directory holding `ganeti-masterd`: `$GANETI_SBINDIR`, else the
/// directory of the running node daemon.
fn sbin_dir() -> io::Result<PathBuf> {
    if let Some(d) = std::env::var_os(SBINDIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe()?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| io::Error::other("the running binary has no directory"))
}

/// Starts the master daemon; its starter exits 0 only once it serves.
fn start_masterd(no_voting: bool) -> Result<(), String> {
    let fail = |m: String| format!("Can't start Ganeti master: {m}");
    let binary = sbin_dir()
        .map(|d| d.join(Daemon::Masterd.name()))
        .map_err(|e| fail(format!("cannot locate {}: {e}", Daemon::Masterd.name())))?;
    let args: &[&str] = if no_voting {
        &["--no-voting", "--yes-do-it"]
    } else {
        &[]
    };
    match run_cmd(&binary, args) {
        Ok(r) if r.ok() => {
            log::info!("Started {}", binary.display());
            Ok(())
        }
        Ok(r) => {
            let out = r.output();
            let out = out.trim_end();
            Err(fail(if out.is_empty() {
                r.fail_reason.unwrap_or_default()
            } else {
                out.to_string()
            }))
        }
        Err(e) => Err(fail(format!("Can't execute '{}': {e}", binary.display()))),
    }
}

/// `node_start_master`: `[start_daemons, no_voting]`. Starts the master
/// daemon, or brings the master IP up; errors are joined with "; ".
fn node_start_master(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (start_daemons, no_voting): (bool, bool) = decode(body)?;
    let info = read_master_info(&ctx.paths)?;
    let result = if start_daemons {
        start_masterd(no_voting)
    } else {
        activate_master_ip(&info)
    };
    match result {
        Ok(()) => Ok(Value::Null),
        Err(msg) => {
            log::error!("{msg}");
            Err(RpcError::Failed(msg))
        }
    }
}

/// The pid of a running daemon: its pid file exists and someone holds its
/// lock. (Probing takes the lock for an instant when nobody holds it.)
fn running_pid(pid_file: &Path) -> io::Result<Option<i32>> {
    let mut f = match File::open(pid_file) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if sys::flock_exclusive_nb(&f)? {
        return Ok(None);
    }
    let mut text = String::new();
    (&mut f).take(64).read_to_string(&mut text)?;
    text.trim().parse().map(Some).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no pid in {}", pid_file.display()),
        )
    })
}

/// SIGTERM to the master daemon, then wait for its pid file lock to go.
/// Errors are only logged, as 2.5.2's `daemon-util stop-master`.
fn stop_masterd(paths: &Paths) {
    let pid_file = paths.pid_file(Daemon::Masterd);
    let pid = match running_pid(&pid_file) {
        Ok(Some(pid)) if pid > 1 && pid != sys::getpid() => pid,
        Ok(Some(pid)) => {
            log::error!("Refusing to signal pid {pid} from {}", pid_file.display());
            return;
        }
        Ok(None) => {
            log::info!("ganeti-masterd is not running");
            return;
        }
        Err(e) => {
            log::error!("Cannot check ganeti-masterd: {e}");
            return;
        }
    };
    if let Err(e) = sys::kill(pid, libc::SIGTERM) {
        log::error!("Cannot stop ganeti-masterd (pid {pid}): {e}");
        return;
    }
    let end = Instant::now() + MASTERD_STOP_TIMEOUT;
    while Instant::now() < end {
        if matches!(running_pid(&pid_file), Ok(None)) {
            log::info!("Stopped ganeti-masterd (pid {pid})");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    log::error!(
        "ganeti-masterd (pid {pid}) did not stop within {} s",
        MASTERD_STOP_TIMEOUT.as_secs()
    );
}

/// `node_stop_master`: `[stop_daemons]`. Removes the master IP and stops
/// the master daemon; failures after reading ssconf are only logged.
fn node_stop_master(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (stop_daemons,): (bool,) = decode(body)?;
    let info = read_master_info(&ctx.paths)?;
    match (checked_address(&info), ip_command()) {
        (Err(e), _) => log::error!("Can't remove the master IP, error: {e}"),
        (_, None) => log::error!("Can't remove the master IP, error: 'ip' not found"),
        (Ok((ip, prefix)), Some(ip_cmd)) => {
            let cidr = format!("{ip}/{prefix}");
            let args = ["address", "del", &cidr, "dev", &info.netdev];
            match run_cmd(&ip_cmd, &args) {
                Ok(r) if r.ok() => log::info!("Master IP {cidr} removed from {}", info.netdev),
                Ok(r) => log::error!(
                    "Can't remove the master IP, error: {}",
                    r.output().trim_end()
                ),
                Err(e) => log::error!("Can't remove the master IP, error: {e}"),
            }
        }
    }
    if stop_daemons {
        stop_masterd(&ctx.paths);
    }
    Ok(Value::Null)
}

/// Removes root's cluster key: its line in `authorized_keys`, then
/// `id_dsa` and `id_dsa.pub`. Errors are only logged.
fn remove_ssh_key(paths: &Paths) {
    let home = match sys::getpwnam("root") {
        Ok(Some(u)) => u.home,
        Ok(None) => {
            log::error!("Error while processing user ssh files: no user root");
            return;
        }
        Err(e) => {
            log::error!("Error while processing user ssh files: {e}");
            return;
        }
    };
    let ssh_dir = paths.to_local(&home.join(".ssh").to_string_lossy());
    if !ssh_dir.is_dir() {
        log::error!(
            "Error while processing user ssh files: {} is not a directory",
            paths.to_wire(&ssh_dir).display()
        );
        return;
    }
    let pub_key = ssh_dir.join("id_dsa.pub");
    let auth = ssh_dir.join("authorized_keys");
    match std::fs::read_to_string(&pub_key) {
        Ok(key) => {
            if let Err(e) = remove_authorized_key(&auth, &key) {
                log::error!(
                    "Error while processing user ssh files: {}: {e}",
                    paths.to_wire(&auth).display()
                );
            }
        }
        Err(e) => log::error!(
            "Error while processing user ssh files: {}",
            python_io_error(paths, &pub_key, &e)
        ),
    }
    for f in [ssh_dir.join("id_dsa"), pub_key] {
        remove_logged(paths, &f);
    }
}

/// Drops the lines of `auth` equal to `key` up to whitespace; the file is
/// rewritten atomically with its mode and owner.
fn remove_authorized_key(auth: &Path, key: &str) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let fields: Vec<&str> = key.split_whitespace().collect();
    let text = std::fs::read_to_string(auth)?;
    let kept: String = text
        .split_inclusive('\n')
        .filter(|line| line.split_whitespace().collect::<Vec<_>>() != fields)
        .collect();
    if kept.len() == text.len() {
        return Ok(());
    }
    let m = std::fs::metadata(auth)?;
    let meta = FileMeta {
        mode: Some(m.mode() & 0o7777),
        owner: Some((m.uid(), m.gid())),
        times: None,
    };
    fsutil::write_atomic(auth, kept.as_bytes(), &meta)
}

/// Removes a file; a missing one is fine, other errors are logged.
fn remove_logged(paths: &Paths, f: &Path) {
    match std::fs::remove_file(f) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => log::error!("Cannot remove {}", python_io_error(paths, f, &e)),
    }
}

/// Everything `node_leave_cluster` removes (spec 4.3, steps 1-5).
pub fn leave_cluster_files(paths: &Paths, modify_ssh_setup: bool) -> Result<(), RpcError> {
    clean_directory(paths, &paths.data_dir(), None)?;
    clean_directory(paths, &paths.run_dir().join("crypto"), None)?;
    clean_directory(paths, &paths.queue_dir(), Some("lock"))?;
    clean_directory(paths, &paths.queue_archive_dir(), None)?;
    if modify_ssh_setup {
        remove_ssh_key(paths);
    }
    for name in ["hmac.key", "rapi.pem", "server.pem"] {
        remove_logged(paths, &paths.data_dir().join(name));
    }
    Ok(())
}

/// `node_leave_cluster`: `[modify_ssh_setup]`. Removes the cluster files,
/// answers `"Shutdown scheduled"` and stops the daemon: the SIGTERM sent
/// here makes the main thread stop the server once in-flight requests
/// (this one included) are answered.
fn node_leave_cluster(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (modify_ssh_setup,): (bool,) = decode(body)?;
    leave_cluster_files(&ctx.paths, modify_ssh_setup)?;
    log::info!("Left the cluster; shutting down");
    if let Err(e) = sys::kill(sys::getpid(), libc::SIGTERM) {
        log::error!("Cannot schedule the shutdown: {e}");
    }
    Ok(Value::from("Shutdown scheduled"))
}

/// Six characters of `[a-z0-9_]`, as `mkstemp`'s suffix.
fn random_suffix() -> Result<String, RpcError> {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
    let mut raw = [0u8; 6];
    openssl::rand::rand_bytes(&mut raw).map_err(backend)?;
    Ok(raw
        .iter()
        .map(|b| CHARS[*b as usize % CHARS.len()] as char)
        .collect())
}

/// Copies `config.data` to `config.data.backup-<local time>.<random>`.
fn backup_config(paths: &Paths) -> Result<PathBuf, String> {
    let config = paths.config_data();
    let data = std::fs::read(&config).map_err(|e| python_io_error(paths, &config, &e))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, mo, d, h, mi, s) = sys::localtime(now);
    let stamp = format!("{y:04}-{mo:02}-{d:02}_{h:02}_{mi:02}_{s:02}");
    for _ in 0..10 {
        let suffix = random_suffix().map_err(|e| e.to_string())?;
        let backup = paths
            .data_dir()
            .join(format!("config.data.backup-{stamp}.{suffix}"));
        if backup.symlink_metadata().is_ok() {
            continue;
        }
        let meta = FileMeta {
            mode: Some(0o600),
            owner: None,
            times: None,
        };
        fsutil::write_atomic(&backup, &data, &meta)
            .map_err(|e| python_io_error(paths, &backup, &e))?;
        return Ok(backup);
    }
    Err("no free backup file name".into())
}

/// `node_demote_from_mc`: `[]`. Refuses on the master or while the master
/// daemon runs; otherwise backs `config.data` up and removes it.
fn node_demote_from_mc(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let _: IgnoredAny = decode(body)?;
    let paths = &ctx.paths;
    let master =
        ssconf::read(paths, "master_node").map_err(|e| backend(ssconf_error(paths, &e)))?;
    if master == ctx.node_name() {
        return Err(RpcError::Failed(
            "ssconf status shows I'm the master node, will not demote".into(),
        ));
    }
    match running_pid(&paths.pid_file(Daemon::Masterd)) {
        Ok(None) => {}
        Ok(Some(_)) | Err(_) => {
            return Err(RpcError::Failed(
                "The master daemon is running, will not demote".into(),
            ))
        }
    }
    let config = paths.config_data();
    // Only a regular file is backed up (a symlink is not followed).
    if config.symlink_metadata().is_ok_and(|m| m.is_file()) {
        let backup = backup_config(paths)
            .map_err(|e| RpcError::Failed(format!("Error while backing up cluster file: {e}")))?;
        log::info!("Backed up the configuration as {}", backup.display());
    }
    match std::fs::remove_file(&config) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(backend(python_io_error(paths, &config, &e))),
    }
    log::info!("Demoted from master candidate");
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(tag: &str) -> (Context, PathBuf) {
        let root = std::env::temp_dir().join(format!("ganeti-master-{tag}-{}", sys::getpid()));
        let _ = std::fs::remove_dir_all(&root);
        let ctx = Context::for_root(&root, "node1.example.com");
        std::fs::create_dir_all(ctx.paths.data_dir()).unwrap();
        (ctx, root)
    }

    fn info(netdev: &str, ip: &str, family: i64) -> MasterInfo {
        MasterInfo {
            netdev: netdev.into(),
            ip: ip.into(),
            node: "n".into(),
            family,
        }
    }

    #[test]
    fn missing_ssconf_reads_like_252() {
        let (ctx, root) = root("missing");
        let e = master_info(&ctx, b"[]").unwrap_err().to_string();
        assert_eq!(
            e,
            "Cluster configuration incomplete: Can't read from the ssconf file: \
             '[Errno 2] No such file or directory: '/var/lib/ganeti/ssconf_master_netdev''"
        );
        for (k, v) in [
            ("master_netdev", "lo\n"),
            ("master_ip", "127.0.0.5\n"),
            ("master_node", "localhost\n"),
        ] {
            std::fs::write(ctx.paths.ssconf_file(k), v).unwrap();
        }
        let v = master_info(&ctx, b"[]").unwrap();
        assert_eq!(v, serde_json::json!(["lo", "127.0.0.5", "localhost", 2]));
        std::fs::write(ctx.paths.ssconf_file("primary_ip_family"), "10\n").unwrap();
        assert_eq!(master_info(&ctx, b"[]").unwrap()[3], 10);
        std::fs::write(ctx.paths.ssconf_file("primary_ip_family"), "inet\n").unwrap();
        let e = master_info(&ctx, b"[]").unwrap_err().to_string();
        assert_eq!(
            e,
            "Cluster configuration incomplete: Error while trying to parse primary ip \
             family: invalid literal for int() with base 10: 'inet'"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn addresses_and_devices_are_checked() {
        assert_eq!(
            checked_address(&info("eth0", "192.0.2.1", 2)).unwrap(),
            ("192.0.2.1".parse().unwrap(), 32)
        );
        assert_eq!(
            checked_address(&info("br-0.5", "2001:db8::1", 10))
                .unwrap()
                .1,
            128
        );
        for bad in [
            info("eth0", "2001:db8::1", 2),
            info("eth0", "192.0.2.1", 10),
            info("eth0", "192.0.2.1/24", 2),
            info("eth0", "", 2),
            info("-h", "192.0.2.1", 2),
            info("eth0:0", "192.0.2.1", 2),
            info("a b", "192.0.2.1", 2),
            info("../x", "192.0.2.1", 2),
            info("", "192.0.2.1", 2),
            info("abcdefghijklmnop", "192.0.2.1", 2),
            info("eth0", "192.0.2.1", 7),
        ] {
            assert!(checked_address(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clean_directory_keeps_hidden_links_dirs_and_keep() {
        let (ctx, root) = root("clean");
        let d = ctx.paths.queue_dir();
        std::fs::create_dir_all(d.join("archive")).unwrap();
        for f in ["job-1", "serial", "lock", ".hidden"] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let outside = root.join("outside");
        std::fs::write(&outside, b"keep me").unwrap();
        std::os::unix::fs::symlink(&outside, d.join("link")).unwrap();
        clean_directory(&ctx.paths, &d, Some("lock")).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".hidden", "archive", "link", "lock"]);
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep me");
        // A missing directory is fine.
        clean_directory(&ctx.paths, &root.join("nope"), None).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn authorized_key_line_is_removed_up_to_whitespace() {
        let (_ctx, root) = root("authkeys");
        let auth = root.join("authorized_keys");
        std::fs::write(
            &auth,
            "ssh-dss AAAAother other@x\nssh-dss   AAAAkey  root@node1\nssh-rsa AAAAthird z\n",
        )
        .unwrap();
        remove_authorized_key(&auth, "ssh-dss AAAAkey root@node1\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&auth).unwrap(),
            "ssh-dss AAAAother other@x\nssh-rsa AAAAthird z\n"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn demote_backs_up_and_removes_config() {
        let (ctx, root) = root("demote");
        let config = ctx.paths.config_data();
        std::fs::write(&config, b"{\"cluster\": 1}").unwrap();
        std::fs::write(ctx.paths.ssconf_file("master_node"), "node1.example.com\n").unwrap();
        let e = node_demote_from_mc(&ctx, b"[]").unwrap_err().to_string();
        assert_eq!(
            e,
            "ssconf status shows I'm the master node, will not demote"
        );
        assert!(config.exists());
        std::fs::write(ctx.paths.ssconf_file("master_node"), "node2.example.com\n").unwrap();
        assert_eq!(node_demote_from_mc(&ctx, b"[]").unwrap(), Value::Null);
        assert!(!config.exists());
        let backups: Vec<PathBuf> = std::fs::read_dir(ctx.paths.data_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("config.data.backup-"))
            .collect();
        assert_eq!(backups.len(), 1);
        assert_eq!(std::fs::read(&backups[0]).unwrap(), b"{\"cluster\": 1}");
        // Nothing to back up the second time: still fine.
        assert_eq!(node_demote_from_mc(&ctx, b"[]").unwrap(), Value::Null);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
