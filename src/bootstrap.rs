//! Creating, destroying and moving a cluster without (or around) a
//! running master daemon: 2.5.2's `bootstrap.py` (`InitCluster`,
//! `FinalizeClusterDestroy`, `MasterFailover`, `GetMaster`,
//! `GenerateClusterCrypto`).
//!
//! `gnt-cluster init` here: checks as 2.5.2 (not initialised, hypervisors,
//! the node's name resolves to an address of this host that is not a
//! loopback one, the cluster address is not in use, secondary address,
//! volume group, DRBD helper, storage directories, MAC prefix, master
//! network device, parameters), then adds the node to `/etc/hosts`, writes
//! `config.data` (mode 0600), `known_hosts`, the ssconf files, the cluster
//! certificate `server.pem` (self-signed RSA-2048, key and certificate in
//! one file, mode 0400), `rapi.pem`, `hmac.key` and
//! `cluster-domain-secret` (40 hex digits and a newline, mode 0400), starts
//! `ganeti-noded` and waits (10 s) for its `version` answer, starts
//! `ganeti-masterd` and waits (10 s) for `QueryConfigValues`. The daemons
//! are the binaries next to the running program (or in
//! `$GANETI_SBINDIR`), given the arguments of `NODED_ARGS` and
//! `MASTERD_ARGS` in `/etc/default/ganeti` and of `EXTRA_NODED_ARGS` and
//! `EXTRA_MASTERD_ARGS` in the environment, as 2.5.2's `daemon-util`.
//!
//! Differences from 2.5.2:
//! * No SSH key pair is made for root (`--no-ssh-init` is recorded in the
//!   configuration either way; nothing uses SSH yet). The SSH host key is
//!   still read, as 2.5.2 does, for `rsahostkeypub`.
//! * Certificates are signed with SHA-256 (2.5.2: SHA-1, which current
//!   OpenSSL refuses at its default security level); old certificates and
//!   keys are replaced without a backup copy.
//! * Under `GANETI_ROOTDIR` (a test cluster on one machine) names are
//!   looked up in the root's `/etc/hosts` first, and loopback addresses
//!   are accepted for the node and the cluster; since every loopback
//!   address answers, "in use" then means that a node daemon answers on
//!   the node daemon port (init, and the wait in master failover).
//! * `--primary-ip` gives the node's address instead of resolving its
//!   name (Ganeti 2.5.2 has no such option for init).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::cli::CliError;
use crate::cmd;
use crate::config::{self, ConfigWriter, InitParams};
use crate::errors::{GanetiError, ECODE_ENVIRON, ECODE_INVAL, ECODE_NOTUNIQUE, ECODE_STATE};
use crate::fsutil::{self, FileMeta};
use crate::luxi;
use crate::masterd::voting;
use crate::noded;
use crate::paths::{self, Paths};
use crate::rpc::client::{self as rpc, Client, NodeResult};
use crate::ssconf;

/// How long to wait for a daemon to answer after starting it
/// (`_DAEMON_READY_TIMEOUT`).
pub const DAEMON_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two attempts while waiting for a daemon.
pub const DAEMON_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Longest time a daemon's starter may take.
pub const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long master failover waits for the master IP to go away.
pub const MASTER_IP_GONE_TIMEOUT: Duration = Duration::from_secs(30);
/// `TcpPing` timeout of init's "cluster IP in use" check.
pub const CLUSTER_IP_PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Common name of the cluster certificate (`X509_CERT_CN`).
pub const X509_CERT_CN: &str = "ganeti.example.com";
/// Validity of generated certificates, days (`X509_CERT_DEFAULT_VALIDITY`).
pub const X509_CERT_VALIDITY_DAYS: u32 = 365 * 5;
/// RSA key size (`RSA_KEY_BITS`).
pub const RSA_KEY_BITS: u32 = 2048;
/// Random bytes in `hmac.key` and `cluster-domain-secret`
/// (`GenerateSecret`).
pub const SECRET_BYTES: usize = 20;
/// Smallest volume group init accepts (`MIN_VG_SIZE`, MiB).
pub const MIN_VG_SIZE: u64 = 20480;
/// Default volume group (`DEFAULT_VG`).
pub const DEFAULT_VG: &str = "xenvg";
/// Largest `/etc/default/ganeti` or hosts file read.
pub const MAX_SMALL_FILE: u64 = 64 * 1024;
/// Longest network device name (`IFNAMSIZ` - 1).
pub const MAX_NETDEV_LEN: usize = 15;
/// Where the DRBD module shows its usermode helper.
const DRBD_HELPER_FILE: &str = "/sys/module/drbd/parameters/usermode_helper";
/// The SSH host key whose public half goes into the configuration.
const SSH_HOST_RSA_PUB: &str = "/etc/ssh/ssh_host_rsa_key.pub";
/// Directories searched for `--default-iallocator`.
const IALLOCATOR_SEARCH_PATH: [&str; 2] = [
    "/usr/local/lib/ganeti/iallocators",
    "/usr/lib/ganeti/iallocators",
];
/// Overrides the directory of the daemon binaries.
pub const SBINDIR_ENV: &str = "GANETI_SBINDIR";

/// What `gnt-cluster init` was asked for (after option parsing).
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub cluster_name: String,
    pub primary_ip: Option<String>,
    pub secondary_ip: Option<String>,
    pub vg_name: Option<String>,
    pub mac_prefix: String,
    pub master_netdev: String,
    pub file_storage_dir: String,
    pub shared_file_storage_dir: String,
    pub candidate_pool_size: u32,
    pub enabled_hypervisors: Vec<String>,
    /// Filled and typed per hypervisor.
    pub hvparams: BTreeMap<String, Map<String, Value>>,
    pub beparams: Map<String, Value>,
    pub nicparams: Map<String, Value>,
    pub ndparams: Map<String, Value>,
    pub modify_etc_hosts: bool,
    pub modify_ssh_setup: bool,
    pub maintain_node_health: bool,
    pub drbd_helper: Option<String>,
    pub uid_pool: Option<Vec<(u32, u32)>>,
    pub default_iallocator: Option<String>,
    /// 4 or 6.
    pub primary_ip_version: u32,
    pub prealloc_wipe_disks: bool,
}

fn prereq(msg: impl Into<String>, ecode: &str) -> CliError {
    CliError::prereq(msg, ecode)
}

fn exec(msg: impl Into<String>) -> CliError {
    CliError::exec(msg)
}

/// True when the program runs in a test root (`GANETI_ROOTDIR`).
fn rooted(paths: &Paths) -> bool {
    !paths.root().as_os_str().is_empty()
}

// ---------------------------------------------------------------- names

/// Reads a small text file (at most [`MAX_SMALL_FILE`] bytes).
pub fn read_small(path: &Path) -> std::io::Result<String> {
    let f = std::fs::File::open(path)?;
    let mut text = String::new();
    f.take(MAX_SMALL_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SMALL_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is larger than {MAX_SMALL_FILE} bytes", path.display()),
        ));
    }
    Ok(text)
}

/// Looks `name` up in a hosts file text: the canonical (first) name of the
/// first line listing it, and that line's address, of the wanted family.
pub fn lookup_hosts(text: &str, name: &str, v6: bool) -> Option<(String, IpAddr)> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(ip) = fields.next().and_then(|a| a.parse::<IpAddr>().ok()) else {
            continue;
        };
        if ip.is_ipv6() != v6 {
            continue;
        }
        let names: Vec<&str> = fields.collect();
        if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Some((names[0].to_string(), ip));
        }
    }
    None
}

/// `netutils.GetHostname`: the canonical name and first address of `name`
/// in the family (`ResolverError` when it does not resolve). Under a root,
/// the root's `/etc/hosts` is asked first.
pub fn resolve(paths: &Paths, name: &str, v6: bool) -> Result<(String, IpAddr), CliError> {
    if rooted(paths) {
        if let Ok(text) = read_small(&paths.etc_hosts()) {
            if let Some(found) = lookup_hosts(&text, name, v6) {
                return Ok(found);
            }
        }
    }
    let unresolved = |msg: String| {
        CliError::Ganeti(GanetiError::new(
            "ResolverError",
            vec![json!(name), json!(-2), json!(msg)],
        ))
    };
    if name.is_empty() || name.len() > 255 || name.contains(['/', '\0']) {
        return Err(unresolved("Name or service not known".into()));
    }
    let addrs = (name, 0u16)
        .to_socket_addrs()
        .map_err(|e| unresolved(e.to_string()))?;
    let ip = addrs
        .map(|a| a.ip())
        .find(|ip| ip.is_ipv6() == v6)
        .ok_or_else(|| unresolved("No address associated with hostname".into()))?;
    let canonical = crate::sys::canonical_name(name).unwrap_or_else(|| name.to_string());
    Ok((canonical, ip))
}

/// `TcpPing` as used to see whether an address is in use: under a root a
/// loopback address counts only when a node daemon answers on its port.
fn address_answers(paths: &Paths, ip: &IpAddr, timeout: Duration) -> bool {
    let (port, live) = if rooted(paths) && ip.is_loopback() {
        (rpc::noded_port(), true)
    } else {
        (crate::constants::DEFAULT_NODED_PORT, false)
    };
    noded::node::tcp_ping(&ip.to_string(), port, timeout, live, None)
}

// --------------------------------------------------------------- crypto

/// A self-signed certificate and its key as PEM (key first, PKCS#8),
/// as `GenerateSelfSignedX509Cert`: RSA-2048, serial 1, valid from now.
pub fn self_signed_cert(common_name: &str, days: u32) -> Result<Vec<u8>, String> {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let err = |e: openssl::error::ErrorStack| e.to_string();
    let key = PKey::from_rsa(Rsa::generate(RSA_KEY_BITS).map_err(err)?).map_err(err)?;
    let mut name = X509NameBuilder::new().map_err(err)?;
    name.append_entry_by_text("CN", common_name).map_err(err)?;
    let name = name.build();
    let mut b = X509Builder::new().map_err(err)?;
    b.set_version(2).map_err(err)?;
    let serial = BigNum::from_u32(1)
        .and_then(|n| n.to_asn1_integer())
        .map_err(err)?;
    b.set_serial_number(&serial).map_err(err)?;
    b.set_subject_name(&name).map_err(err)?;
    b.set_issuer_name(&name).map_err(err)?;
    b.set_pubkey(&key).map_err(err)?;
    let not_before = Asn1Time::days_from_now(0).map_err(err)?;
    let not_after = Asn1Time::days_from_now(days).map_err(err)?;
    b.set_not_before(&not_before).map_err(err)?;
    b.set_not_after(&not_after).map_err(err)?;
    b.sign(&key, MessageDigest::sha256()).map_err(err)?;
    let mut pem = key.private_key_to_pem_pkcs8().map_err(err)?;
    pem.extend_from_slice(&b.build().to_pem().map_err(err)?);
    Ok(pem)
}

/// `GenerateSecret`: 20 random bytes as 40 hex digits.
pub fn generate_secret() -> Result<String, String> {
    let mut raw = [0u8; SECRET_BYTES];
    openssl::rand::rand_bytes(&mut raw).map_err(|e| e.to_string())?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), CliError> {
    if let Some(dir) = path.parent() {
        fsutil::create_dirs(dir, 0o755)
            .map_err(|e| exec(format!("Cannot create {}: {e}", dir.display())))?;
    }
    let meta = FileMeta {
        mode: Some(mode),
        owner: None,
        times: None,
    };
    fsutil::write_atomic(path, data, &meta)
        .map_err(|e| exec(format!("Cannot write {}: {e}", path.display())))
}

/// `GenerateClusterCrypto(True, False, False, False)` of init: a new
/// cluster certificate, and the RAPI certificate, HMAC key and cluster
/// domain secret when missing. All mode 0400.
pub fn generate_cluster_crypto(paths: &Paths) -> Result<(), CliError> {
    let data = paths.data_dir();
    let cert = |name: &str| -> Result<(), CliError> {
        let pem = self_signed_cert(X509_CERT_CN, X509_CERT_VALIDITY_DAYS)
            .map_err(|e| exec(format!("Cannot generate a certificate: {e}")))?;
        log::debug!("Generating new certificate at {name}");
        write_file(&data.join(name), &pem, 0o400)
    };
    let secret = |name: &str| -> Result<(), CliError> {
        let s = generate_secret().map_err(|e| exec(format!("Cannot generate a secret: {e}")))?;
        write_file(&data.join(name), format!("{s}\n").as_bytes(), 0o400)
    };
    cert("server.pem")?;
    if !data.join("hmac.key").exists() {
        secret("hmac.key")?;
    }
    if !data.join("rapi.pem").exists() {
        cert("rapi.pem")?;
    }
    if !data.join("cluster-domain-secret").exists() {
        secret("cluster-domain-secret")?;
    }
    Ok(())
}

// -------------------------------------------------------------- daemons

/// The directory of the daemon binaries: `$GANETI_SBINDIR`, else the
/// running program's.
pub fn sbin_dir() -> Result<PathBuf, CliError> {
    if let Some(d) = std::env::var_os(SBINDIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe()
        .map_err(|e| exec(format!("Cannot find the running program: {e}")))?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| exec("The running program has no directory"))
}

/// `VAR="a b"` assignments of a shell defaults file (no expansion).
pub fn parse_defaults(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            .unwrap_or(v);
        out.insert(k.to_string(), v.to_string());
    }
    out
}

/// The arguments `daemon-util` would give a daemon: `<NAME>_ARGS` from
/// `/etc/default/ganeti`, then `EXTRA_<NAME>_ARGS` from the environment.
pub fn daemon_args(paths: &Paths, name: &str) -> Vec<String> {
    let defaults = read_small(&paths.to_local("/etc/default/ganeti"))
        .map(|t| parse_defaults(&t))
        .unwrap_or_default();
    let mut args: Vec<String> = defaults
        .get(&format!("{name}_ARGS"))
        .map(|v| v.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    if let Ok(extra) = std::env::var(format!("EXTRA_{name}_ARGS")) {
        args.extend(extra.split_whitespace().map(String::from));
    }
    args
}

/// Runs a daemon's starter, which exits 0 once the daemon serves.
fn start_daemon(paths: &Paths, binary: &str, env_name: &str, what: &str) -> Result<(), CliError> {
    let path = sbin_dir()?.join(binary);
    let prog = path.to_string_lossy().into_owned();
    let args = daemon_args(paths, env_name);
    let mut argv: Vec<&str> = vec![&prog];
    argv.extend(args.iter().map(String::as_str));
    log::debug!("Starting {}", argv.join(" "));
    let r = cmd::run(&argv, DAEMON_START_TIMEOUT)
        .map_err(|e| exec(format!("Could not start {what}, cannot run {prog}: {e}")))?;
    if let Some(reason) = &r.fail_reason {
        return Err(exec(format!(
            "Could not start {what}, command {} {reason} and error {}",
            argv.join(" "),
            r.output().trim_end()
        )));
    }
    Ok(())
}

/// Repeats `f` until it is true or the timeout passes.
fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(DAEMON_POLL_INTERVAL);
    }
}

/// The node RPC client with the cluster certificate.
pub fn rpc_client(paths: &Paths) -> Result<Client, CliError> {
    Client::new(&paths.server_pem())
        .map(|c| c.port(rpc::noded_port()).keep_alive(false))
        .map_err(|e| exec(e.to_string()))
}

/// `_WaitForNodeDaemon`.
fn wait_for_node_daemon(paths: &Paths, node: &str, address: &str) -> Result<(), CliError> {
    let client = rpc_client(paths)?;
    let ok = wait_for(DAEMON_READY_TIMEOUT, || {
        matches!(
            client.call_node(address, "version", &json!([])),
            NodeResult::Ok(_)
        )
    });
    if !ok {
        return Err(exec(format!(
            "Node daemon on {node} didn't answer queries within {:.1} seconds",
            DAEMON_READY_TIMEOUT.as_secs_f64()
        )));
    }
    Ok(())
}

/// `_WaitForMasterDaemon`: `QueryConfigValues(["cluster_name"])` answers.
fn wait_for_master_daemon(paths: &Paths) -> Result<(), CliError> {
    let socket = paths.master_socket();
    let ok = wait_for(DAEMON_READY_TIMEOUT, || {
        luxi::Client::connect(&socket)
            .and_then(|mut c| c.query_config_values(&["cluster_name"]))
            .map(|v| log::debug!("Received cluster name {v:?} from master"))
            .is_ok()
    });
    if !ok {
        return Err(exec(format!(
            "Master daemon didn't answer queries within {:.1} seconds",
            DAEMON_READY_TIMEOUT.as_secs_f64()
        )));
    }
    Ok(())
}

// ----------------------------------------------------------------- init

/// `_InitFileStorage`: the normalised directory, created (0750) if needed.
fn init_file_storage(paths: &Paths, dir: &str) -> Result<String, CliError> {
    let Some(norm) = fsutil::normalize(dir) else {
        return Err(prereq(
            format!("File storage directory '{dir}' is not an absolute path"),
            ECODE_INVAL,
        ));
    };
    let local = paths.to_local(&norm.to_string_lossy());
    let wire = norm.to_string_lossy().into_owned();
    if !local.exists() {
        fsutil::create_dirs(&local, 0o750).map_err(|e| {
            prereq(
                format!("Cannot create file storage directory '{wire}': {e}"),
                ECODE_ENVIRON,
            )
        })?;
    }
    if !local.is_dir() {
        return Err(prereq(
            format!("The file storage directory '{wire}' is not a directory."),
            ECODE_ENVIRON,
        ));
    }
    Ok(wire)
}

/// `utils.ListVolumeGroups` through `vgs`: name → size in MiB.
fn list_volume_groups() -> Result<BTreeMap<String, u64>, String> {
    let r = cmd::run(
        &[
            "vgs",
            "--noheadings",
            "--units=m",
            "--nosuffix",
            "-o",
            "name,size",
        ],
        Duration::from_secs(60),
    )
    .map_err(|e| format!("cannot run vgs: {e}"))?;
    let mut out = BTreeMap::new();
    if r.ok() {
        for line in r.stdout.lines() {
            let mut f = line.split_whitespace();
            if let (Some(name), Some(size)) = (f.next(), f.next()) {
                let size = size.parse::<f64>().unwrap_or(0.0);
                out.insert(name.to_string(), size as u64);
            }
        }
    }
    Ok(out)
}

/// `CheckVolumeGroupSize`.
pub fn check_vg_size(vgs: &BTreeMap<String, u64>, name: &str, min: u64) -> Option<String> {
    match vgs.get(name) {
        None => Some(format!("volume group '{name}' missing")),
        Some(&size) if size < min => Some(format!(
            "volume group '{name}' too small ({min} MiB required, {size} MiB found)"
        )),
        Some(_) => None,
    }
}

/// The mac prefix check of init: `^[0-9a-z]{2}:[0-9a-z]{2}:[0-9a-z]{2}$`.
pub fn valid_mac_prefix(p: &str) -> bool {
    let parts: Vec<&str> = p.split(':').collect();
    parts.len() == 3
        && parts.iter().all(|x| {
            x.len() == 2
                && x.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        })
}

/// A network device name that can be handed to `ip`.
pub fn valid_netdev(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NETDEV_LEN
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

/// `objects.NIC.CheckParameterSyntax`.
fn check_nic_params(nic: &Map<String, Value>) -> Result<(), CliError> {
    let mode = nic.get("mode").and_then(Value::as_str).unwrap_or("");
    if mode != "bridged" && mode != "routed" {
        return Err(CliError::Ganeti(GanetiError::msg(
            "ConfigurationError",
            format!("Invalid NIC mode '{mode}'"),
        )));
    }
    let link = nic.get("link").and_then(Value::as_str).unwrap_or("");
    if mode == "bridged" && link.is_empty() {
        return Err(CliError::Ganeti(GanetiError::msg(
            "ConfigurationError",
            "Missing bridged nic link",
        )));
    }
    Ok(())
}

/// Runs one of the node daemon's procedures in this process, on the
/// local files (the node daemon is not running yet during init).
fn local_procedure(paths: &Paths, me: &str, name: &str, args: &Value) -> Result<Value, String> {
    let p =
        noded::find_procedure(&format!("/{name}")).ok_or_else(|| format!("no procedure {name}"))?;
    let ctx = noded::Context::for_root(paths.root(), me);
    let body = serde_json::to_vec(args).map_err(|e| e.to_string())?;
    (p.handler)(&ctx, &body).map_err(|e| e.to_string())
}

/// Writes ssconf files locally (`backend.WriteSsconfFiles`).
pub fn write_ssconf_locally(
    paths: &Paths,
    me: &str,
    cfg: &config::ConfigRead<'_>,
) -> Result<(), CliError> {
    let values = config::ssconf_values(cfg);
    local_procedure(paths, me, "write_ssconf_files", &json!([values]))
        .map(|_| ())
        .map_err(|e| exec(format!("Cannot write the ssconf files: {e}")))
}

/// `bootstrap.InitCluster`: everything of `gnt-cluster init` up to the
/// answering master daemon (the post-init job is the caller's).
pub fn init_cluster(paths: &Paths, o: &InitOptions) -> Result<(), CliError> {
    if paths.config_data().symlink_metadata().is_ok() {
        return Err(prereq("Cluster is already initialised", ECODE_STATE));
    }
    if o.enabled_hypervisors.is_empty() {
        return Err(prereq(
            "Enabled hypervisors list must contain at least one member",
            ECODE_INVAL,
        ));
    }
    let invalid: Vec<&String> = o
        .enabled_hypervisors
        .iter()
        .filter(|h| !config::HYPER_TYPES.contains(&h.as_str()))
        .collect();
    if !invalid.is_empty() {
        let list: Vec<String> = invalid.iter().map(|h| format!("'{h}'")).collect();
        return Err(prereq(
            format!(
                "Enabled hypervisors contains invalid entries: set([{}])",
                list.join(", ")
            ),
            ECODE_INVAL,
        ));
    }
    let v6 = match o.primary_ip_version {
        4 => false,
        6 => true,
        v => {
            return Err(CliError::prereq1(format!(
                "Invalid primary ip version: {v}."
            )))
        }
    };
    // This node: its name and address.
    let me = paths::node_name().map_err(|e| CliError::Other(e.to_string()))?;
    let my_ip: IpAddr = match &o.primary_ip {
        Some(ip) => ip
            .parse()
            .map_err(|_| prereq(format!("Invalid primary IP address '{ip}'"), ECODE_INVAL))?,
        None => resolve(paths, &me, v6)?.1,
    };
    if my_ip.is_ipv6() != v6 {
        return Err(CliError::prereq1(format!(
            "This host's IP ({my_ip}) is not a valid IPv{} address.",
            o.primary_ip_version
        )));
    }
    if my_ip.is_loopback() && !rooted(paths) {
        return Err(prereq(
            format!(
                "This host's IP ({my_ip}) resolves to a loopback address. Please fix DNS \
                 or /etc/hosts."
            ),
            ECODE_ENVIRON,
        ));
    }
    if !noded::node::owns_ip(&my_ip.to_string()) {
        return Err(prereq(
            format!(
                "Inconsistency: this host's name resolves to {my_ip},\nbut this ip address \
                 does not belong to this host"
            ),
            ECODE_ENVIRON,
        ));
    }
    // The cluster: its name and address, not in use yet.
    let (cluster_name, cluster_ip) = resolve(paths, &o.cluster_name, v6)?;
    if cluster_ip.is_loopback() && !rooted(paths) {
        return Err(prereq(
            format!("The cluster IP ({cluster_ip}) is a loopback address"),
            ECODE_ENVIRON,
        ));
    }
    if address_answers(paths, &cluster_ip, CLUSTER_IP_PING_TIMEOUT) {
        return Err(prereq("Cluster IP already active", ECODE_NOTUNIQUE));
    }
    let secondary_ip = match &o.secondary_ip {
        Some(s) if !s.is_empty() => s.clone(),
        _ if v6 => {
            return Err(prereq(
                "When using a IPv6 primary address, a valid IPv4 address must be given as \
                 secondary",
                ECODE_INVAL,
            ))
        }
        _ => my_ip.to_string(),
    };
    match secondary_ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => {}
        _ => {
            return Err(prereq(
                format!("Secondary IP address ({secondary_ip}) has to be a valid IPv4 address."),
                ECODE_INVAL,
            ))
        }
    }
    if !noded::node::owns_ip(&secondary_ip) {
        return Err(prereq(
            format!(
                "You gave {secondary_ip} as secondary IP, but it does not belong to this host."
            ),
            ECODE_ENVIRON,
        ));
    }
    if let Some(vg) = &o.vg_name {
        let problem = match list_volume_groups() {
            Ok(vgs) => check_vg_size(&vgs, vg, MIN_VG_SIZE),
            Err(e) => Some(e),
        };
        if let Some(p) = problem {
            return Err(prereq(
                format!("Error: {p}\nspecify --no-lvm-storage if you are not using lvm"),
                ECODE_INVAL,
            ));
        }
    }
    if let Some(helper) = &o.drbd_helper {
        let current = read_small(Path::new(DRBD_HELPER_FILE))
            .map(|t| t.trim().to_string())
            .map_err(|e| {
                prereq(
                    format!(
                        "Error while checking drbd helper (specify --no-drbd-storage if you \
                         are not using drbd): Can't read the DRBD usermode helper: {e}"
                    ),
                    ECODE_ENVIRON,
                )
            })?;
        if *helper != current {
            return Err(prereq(
                format!(
                    "Error: requiring {helper} as drbd helper but {current} is the current helper"
                ),
                ECODE_INVAL,
            ));
        }
    }
    let file_storage_dir = init_file_storage(paths, &o.file_storage_dir)?;
    let shared_file_storage_dir = init_file_storage(paths, &o.shared_file_storage_dir)?;
    if !valid_mac_prefix(&o.mac_prefix) {
        return Err(prereq(
            format!("Invalid mac prefix given '{}'", o.mac_prefix),
            ECODE_INVAL,
        ));
    }
    let netdev_error = |out: &str| {
        prereq(
            format!("Invalid master netdev given ({}): '{out}'", o.master_netdev),
            ECODE_INVAL,
        )
    };
    if !valid_netdev(&o.master_netdev) {
        return Err(netdev_error("not a network device name"));
    }
    let r = cmd::run(
        &["ip", "link", "show", "dev", &o.master_netdev],
        Duration::from_secs(60),
    )
    .map_err(|e| netdev_error(&e.to_string()))?;
    if !r.ok() {
        return Err(netdev_error(r.output().trim()));
    }
    fsutil::create_dirs(&paths.run_dir(), 0o775)
        .map_err(|e| exec(format!("Cannot create {}: {e}", paths.run_dir().display())))?;
    check_nic_params(&o.nicparams)?;
    let key_path = paths.to_local(SSH_HOST_RSA_PUB);
    let sshline = read_small(&key_path).map_err(|e| {
        exec(format!(
            "Cannot read the SSH host key {SSH_HOST_RSA_PUB}: {e}"
        ))
    })?;
    let sshkey = sshline
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string();
    let default_iallocator = match &o.default_iallocator {
        Some(name) => {
            let found = !name.contains('/')
                && IALLOCATOR_SEARCH_PATH
                    .iter()
                    .any(|d| paths.to_local(d).join(name).is_file());
            if !found {
                return Err(prereq(
                    format!("Invalid default iallocator script '{name}' specified"),
                    ECODE_INVAL,
                ));
            }
            Some(name.clone())
        }
        None => None,
    };
    if o.modify_etc_hosts {
        local_procedure(
            paths,
            &me,
            "etc_hosts_modify",
            &json!(["add", me, my_ip.to_string()]),
        )
        .map_err(|e| exec(format!("Cannot add this node to /etc/hosts: {e}")))?;
    }
    if o.modify_ssh_setup {
        log::info!("Not setting up SSH keys: ganeti-rs does not use SSH");
    }

    // The configuration, as InitConfig writes it.
    let mut p = InitParams::new(
        &cluster_name,
        &cluster_ip.to_string(),
        &me,
        &my_ip.to_string(),
        &sshkey,
    );
    p.master_netdev = o.master_netdev.clone();
    p.secondary_ip = Some(secondary_ip);
    p.mac_prefix = o.mac_prefix.clone();
    p.vg_name = o.vg_name.clone();
    p.drbd_helper = o.drbd_helper.clone();
    p.file_storage_dir = file_storage_dir;
    p.shared_file_storage_dir = shared_file_storage_dir;
    p.enabled_hypervisors = o.enabled_hypervisors.clone();
    p.hvparams = o.hvparams.clone();
    p.beparams = o.beparams.clone();
    p.nicparams = o.nicparams.clone();
    p.ndparams = Some(o.ndparams.clone());
    p.candidate_pool_size = o.candidate_pool_size;
    p.modify_etc_hosts = o.modify_etc_hosts;
    p.modify_ssh_setup = o.modify_ssh_setup;
    p.maintain_node_health = o.maintain_node_health;
    p.uid_pool = o.uid_pool.clone();
    p.default_iallocator = default_iallocator;
    p.primary_ip_family = if v6 { 10 } else { config::AF_INET };
    p.prealloc_wipe_disks = o.prealloc_wipe_disks;
    let data = config::initial(&p)?;
    fsutil::create_dirs(&paths.data_dir(), 0o755)
        .map_err(|e| exec(format!("Cannot create {}: {e}", paths.data_dir().display())))?;
    ConfigWriter::create(paths.clone(), data)?;
    write_file(
        &paths.data_dir().join("known_hosts"),
        format!("{cluster_name} ssh-rsa {sshkey}\n").as_bytes(),
        0o644,
    )?;
    let writer = ConfigWriter::open(paths.clone(), &me, false, None)?;
    writer.update(|cfg| {
        cfg.touch_cluster(config::now());
        Ok(())
    })?;
    write_ssconf_locally(paths, &me, &writer.read())?;
    drop(writer);

    generate_cluster_crypto(paths)?;
    start_daemon(paths, "ganeti-noded", "NODED", "the node daemon")?;
    wait_for_node_daemon(paths, &me, &my_ip.to_string())?;
    log::debug!("Starting daemons");
    start_daemon(paths, "ganeti-masterd", "MASTERD", "daemons")?;
    wait_for_master_daemon(paths)
}

// -------------------------------------------------------------- destroy

/// A node's primary address from `ssconf_node_primary_ips`, else from
/// the resolver (2.5.2's static RPC resolver).
pub fn node_address(paths: &Paths, node: &str) -> Result<String, CliError> {
    if let Ok(text) = ssconf::read(paths, "node_primary_ips") {
        for line in text.lines() {
            if let Some((name, ip)) = line.split_once(' ') {
                if name == node {
                    return Ok(ip.trim().to_string());
                }
            }
        }
    }
    let v6 = ssconf::read(paths, "primary_ip_family").is_ok_and(|f| f.trim() == "10");
    Ok(resolve(paths, node, v6)?.1.to_string())
}

/// One RPC to one node by name; the failure text, if any.
fn call_node(
    paths: &Paths,
    client: &Client,
    node: &str,
    procedure: &str,
    args: Value,
) -> Option<String> {
    match node_address(paths, node) {
        Ok(addr) => client
            .call_node(&addr, procedure, &args)
            .fail_msg()
            .map(str::to_string),
        Err(e) => Some(e.to_string()),
    }
}

/// `FinalizeClusterDestroy`: stop the master role (and daemon) and make the
/// node leave the cluster; failures are only logged.
pub fn finalize_cluster_destroy(paths: &Paths, master: &str) -> Result<(), CliError> {
    let text = std::fs::read_to_string(paths.config_data()).map_err(|e| {
        CliError::Ganeti(GanetiError::msg(
            "ConfigurationError",
            format!("Cannot read the configuration: {e}"),
        ))
    })?;
    let modify_ssh_setup = config::parse(&text)?.cluster.modify_ssh_setup;
    let client = rpc_client(paths)?;
    if let Some(msg) = call_node(paths, &client, master, "node_stop_master", json!([true])) {
        log::warn!("Could not disable the master role: {msg}");
    }
    if let Some(msg) = call_node(
        paths,
        &client,
        master,
        "node_leave_cluster",
        json!([modify_ssh_setup]),
    ) {
        log::warn!("Could not shutdown the node daemon and cleanup the node: {msg}");
    }
    Ok(())
}

// ------------------------------------------------------------- failover

/// The ssconf values read as a whole: `CheckMaster` style errors.
fn ssconf_value(paths: &Paths, key: &str) -> Result<String, CliError> {
    ssconf::read(paths, key).map_err(|e| {
        let text = match &e {
            ssconf::SsconfError::Io(p, err) => format!(
                "Can't read from the ssconf file: '{}'",
                noded::os_error_text(err, Some(&paths.to_wire(p)))
            ),
            other => other.to_string(),
        };
        CliError::Ganeti(GanetiError::msg("ConfigurationError", text))
    })
}

/// `GetMaster`: the master's name from ssconf.
pub fn get_master(paths: &Paths) -> Result<String, CliError> {
    ssconf_value(paths, "master_node")
}

/// `AskUser(text)` with the yes/no choices, on `/dev/tty`; false when
/// there is no terminal.
pub fn ask_user(text: &str) -> bool {
    let Ok(mut tty) = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open("/dev/tty")
    else {
        return false;
    };
    let mut wrapped = Vec::new();
    for line in text.lines() {
        let mut cur = String::new();
        for word in line.split(' ') {
            if !cur.is_empty() && cur.len() + 1 + word.len() > 70 {
                wrapped.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
        wrapped.push(cur);
    }
    let Ok(reader) = tty.try_clone() else {
        return false;
    };
    let mut reader = std::io::BufReader::new(reader.take(1024));
    loop {
        if write!(tty, "{}\ny/[n]/?: ", wrapped.join("\n")).is_err() {
            return false;
        }
        let _ = tty.flush();
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        match line.trim().to_lowercase().as_str() {
            "y" => return true,
            "n" => return false,
            "?" => {
                let _ = write!(
                    tty,
                    " y - Perform the operation\n n - Do not perform the operation\n\n"
                );
            }
            _ => {}
        }
    }
}

/// `GatherMasterVotes`: who the other nodes say is master.
fn gather_master_votes(
    paths: &Paths,
    client: &Client,
    me: &str,
    node_list: &[String],
) -> Vec<(Option<String>, usize)> {
    let others: Vec<rpc::Node> = node_list
        .iter()
        .filter(|n| n.as_str() != me)
        .map(|n| rpc::Node {
            name: n.clone(),
            address: node_address(paths, n).unwrap_or_else(|_| n.clone()),
            offline: false,
        })
        .collect();
    if others.is_empty() {
        return Vec::new();
    }
    let answers = client.call(&others, "master_info", &json!([]));
    for (node, r) in &answers {
        if let Some(msg) = r.fail_msg() {
            log::warn!("Error contacting node {node}: {msg}");
        }
    }
    voting::count_votes(&answers)
}

/// `bootstrap.MasterFailover`: makes this node the master. The exit code
/// (1 when the new master daemon could not be started).
pub fn master_failover(paths: &Paths, no_voting: bool) -> Result<i32, CliError> {
    let old_master = ssconf_value(paths, "master_node")?;
    let me = paths::node_name().map_err(|e| CliError::Other(e.to_string()))?;
    let lines = |k| -> Result<Vec<String>, CliError> {
        Ok(ssconf_value(paths, k)?
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect())
    };
    let node_list = lines("node_list")?;
    let mc_list = lines("master_candidates")?;
    if old_master == me {
        return Err(prereq(
            format!(
                "This commands must be run on the node where you want the new master to \
                 be. {old_master} is already the master"
            ),
            ECODE_INVAL,
        ));
    }
    if !mc_list.contains(&me) {
        let others: Vec<&str> = mc_list
            .iter()
            .filter(|n| **n != old_master)
            .map(String::as_str)
            .collect();
        return Err(prereq(
            format!(
                "This node is not among the nodes marked as master candidates. Only these \
                 nodes can become masters. Current list of master candidates is:\n{}",
                others.join("\n")
            ),
            ECODE_STATE,
        ));
    }
    let client = Arc::new(rpc_client(paths)?);
    if !no_voting {
        let votes = gather_master_votes(paths, &client, &me, &node_list);
        if let Some((top, _)) = votes.first() {
            match top {
                None => {
                    return Err(prereq(
                        "Cluster is inconsistent, most nodes did not respond.",
                        ECODE_ENVIRON,
                    ))
                }
                Some(t) if *t != old_master => {
                    return Err(prereq(
                        format!(
                            "I have a wrong configuration, I believe the master is \
                             {old_master} but the other nodes voted {t}. Please resync the \
                             configuration of this node."
                        ),
                        ECODE_STATE,
                    ))
                }
                Some(_) => {}
            }
        }
    }
    log::info!("Setting master to {me}, old master: {old_master}");
    let updated =
        ConfigWriter::open(paths.clone(), &me, true, Some(client.clone())).and_then(|w| {
            w.update_with_feedback(&mut |m| log::error!("{m}"), |cfg| {
                cfg.cluster.master_node = me.clone();
                cfg.touch_cluster(config::now());
                Ok(())
            })
        });
    if let Err(e) = updated {
        log::error!("Error while trying to set the new master: {e}");
        return Ok(crate::constants::EXIT_FAILURE);
    }
    log::info!("Stopping the master daemon on node {old_master}");
    if let Some(msg) = call_node(
        paths,
        &client,
        &old_master,
        "node_stop_master",
        json!([true]),
    ) {
        log::error!(
            "Could not disable the master role on the old master {old_master}, please \
             disable manually: {msg}"
        );
    }
    log::info!("Checking master IP non-reachability...");
    if let Ok(ip) = ssconf_value(paths, "master_ip").and_then(|ip| {
        ip.trim()
            .parse::<IpAddr>()
            .map_err(|_| CliError::Other(format!("Invalid master IP '{ip}'")))
    }) {
        let mut pause = Duration::from_secs(1);
        let end = Instant::now() + MASTER_IP_GONE_TIMEOUT;
        loop {
            if !address_answers(paths, &ip, Duration::from_secs(10)) {
                break;
            }
            if Instant::now() >= end {
                log::warn!(
                    "The master IP is still reachable after {} seconds, continuing but \
                     activating the master on the current node will probably fail",
                    MASTER_IP_GONE_TIMEOUT.as_secs()
                );
                break;
            }
            std::thread::sleep(pause.min(end.saturating_duration_since(Instant::now())));
            pause = pause.mul_f64(1.5).min(Duration::from_secs(5));
        }
    }
    let drain = paths.queue_dir().join("drain");
    if drain.exists() {
        log::info!("Undraining job queue");
        if let Err(e) = std::fs::remove_file(&drain) {
            log::error!("Cannot remove {}: {e}", drain.display());
        }
    }
    log::info!("Starting the master daemons on the new master");
    let mut rcode = crate::constants::EXIT_SUCCESS;
    if let Some(msg) = call_node(
        paths,
        &client,
        &me,
        "node_start_master",
        json!([true, no_voting]),
    ) {
        log::error!("Could not start the master role on the new master {me}, please check: {msg}");
        rcode = crate::constants::EXIT_FAILURE;
    }
    log::info!("Master failed over from {old_master} to {me}");
    Ok(rcode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lookup() {
        let text = "127.0.0.1 localhost\n# comment\n127.0.0.2 node1.example.com node1 # x\n\
                    ::1 ip6-localhost\nfd00::2 node1.example.com\nbad line\n";
        assert_eq!(
            lookup_hosts(text, "node1", false),
            Some(("node1.example.com".into(), "127.0.0.2".parse().unwrap()))
        );
        assert_eq!(
            lookup_hosts(text, "NODE1.example.com", true),
            Some(("node1.example.com".into(), "fd00::2".parse().unwrap()))
        );
        assert_eq!(lookup_hosts(text, "x", false), None);
        assert_eq!(lookup_hosts(text, "comment", false), None);
    }

    #[test]
    fn certificate_as_server_pem() {
        let pem = self_signed_cert(X509_CERT_CN, 1).unwrap();
        let text = String::from_utf8(pem.clone()).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let cert = openssl::x509::X509::from_pem(&pem).unwrap();
        let key = openssl::pkey::PKey::private_key_from_pem(&pem).unwrap();
        assert_eq!(key.bits(), RSA_KEY_BITS);
        assert!(cert.verify(&key).unwrap());
        assert_eq!(cert.serial_number().to_bn().unwrap().to_string(), "1");
        let cn = cert.subject_name().entries().next().unwrap();
        assert_eq!(cn.data().as_slice(), X509_CERT_CN.as_bytes());
        // The RPC client accepts it as identity and root.
        assert!(Client::from_pem(Path::new("server.pem"), &pem).is_ok());
    }

    #[test]
    fn secrets() {
        let s = generate_secret().unwrap();
        assert_eq!(s.len(), 2 * SECRET_BYTES);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(s, generate_secret().unwrap());
    }

    #[test]
    fn defaults_file() {
        let d = parse_defaults(
            "# x\nNODED_ARGS=\"-b 127.0.0.1 -p 1234\"\nMASTERD_ARGS='-d'\nRAPI_ARGS=\nBAD KEY=1\n",
        );
        assert_eq!(d["NODED_ARGS"], "-b 127.0.0.1 -p 1234");
        assert_eq!(d["MASTERD_ARGS"], "-d");
        assert_eq!(d["RAPI_ARGS"], "");
        assert!(!d.contains_key("BAD KEY"));
    }

    #[test]
    fn small_files_are_bounded() {
        let dir = std::env::temp_dir().join(format!("ganeti-bootstrap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("hosts");
        std::fs::write(&f, vec![b'#'; MAX_SMALL_FILE as usize]).unwrap();
        assert!(read_small(&f).is_ok());
        std::fs::write(&f, vec![b'#'; MAX_SMALL_FILE as usize + 1]).unwrap();
        assert!(read_small(&f).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn checks() {
        assert!(valid_mac_prefix("aa:00:00"));
        assert!(!valid_mac_prefix("AA:00:00"));
        assert!(!valid_mac_prefix("aa:00"));
        assert!(!valid_mac_prefix("aa:00:000"));
        assert!(valid_netdev("eth0"));
        assert!(valid_netdev(&"e".repeat(MAX_NETDEV_LEN)));
        assert!(!valid_netdev(&"e".repeat(MAX_NETDEV_LEN + 1)));
        for bad in ["", "-x", "a/b", "a b", "lo:0"] {
            assert!(!valid_netdev(bad), "{bad}");
        }
        let vgs = BTreeMap::from([("xenvg".to_string(), 10240u64)]);
        assert_eq!(
            check_vg_size(&vgs, "xenvg", MIN_VG_SIZE),
            Some("volume group 'xenvg' too small (20480 MiB required, 10240 MiB found)".into())
        );
        assert_eq!(
            check_vg_size(&vgs, "other", MIN_VG_SIZE),
            Some("volume group 'other' missing".into())
        );
        assert_eq!(check_vg_size(&vgs, "xenvg", 10240), None);
    }
}
