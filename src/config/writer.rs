//! The config writer: one process-wide reader/writer lock around the
//! configuration; every change checked, written safely to `config.data`
//! (2.5.2's file-identity check, atomic fsynced replace, mode 0640), copied
//! to the other master candidates and, when the cluster serial grew, the
//! ssconf values pushed to every online node.
//!
//! Unlike 2.5.2 the directory is fsynced after the rename. Should that
//! fsync fail, the new file is already the configuration every reader sees,
//! so the write counts as done (and is distributed); the error is logged.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashSet};
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

use serde_json::{json, Value};

use super::*;
use crate::constants::{GANETI_GROUPS, GANETI_USERS};
use crate::errors::GanetiError;
use crate::fsutil::{self, FileMeta};
use crate::objects::{ConfigData, Node};
use crate::paths::Paths;
use crate::rpc::blob;
use crate::rpc::client::{self, Client};
use crate::sys;

/// `(st_dev, st_ino, st_mtime)` of `config.data` as last read or written
/// (2.5.2's `GetFileID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
}

impl FileId {
    fn of(m: &std::fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }
}

const MODIFIED_UNDERNEATH: &str =
    "The configuration file has been modified since the last write, cannot update";

/// 2.5.2's `SafeWriteFile`: lock the current file without waiting, check
/// it is the one last read or written (same device and inode, not newer),
/// then replace it atomically with `mode`. Returns the new file's id.
/// A file that vanished is not recreated: that too is a change underneath.
fn safe_write(
    path: &Path,
    wire: &str,
    ours: FileId,
    data: &[u8],
    mode: u32,
) -> Result<FileId, GanetiError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => config_error(MODIFIED_UNDERNEATH),
            Some(libc::ELOOP) => {
                config_error(format!("Refusing to write {wire}: it is a symbolic link"))
            }
            _ => config_error(format!("Cannot open {wire}: {e}")),
        })?;
    match sys::flock_exclusive_nb(&file) {
        Ok(true) => {}
        Ok(false) => return Err(config_error(MODIFIED_UNDERNEATH)),
        Err(e) => return Err(config_error(format!("Cannot lock {wire}: {e}"))),
    }
    let disk = file
        .metadata()
        .map(|m| FileId::of(&m))
        .map_err(|e| config_error(format!("Cannot stat {wire}: {e}")))?;
    if (disk.dev, disk.ino) != (ours.dev, ours.ino) || disk.mtime > ours.mtime {
        return Err(config_error(MODIFIED_UNDERNEATH));
    }
    let meta = FileMeta {
        mode: Some(mode),
        owner: None,
        times: None,
    };
    if let Err(e) = fsutil::write_atomic(path, data, &meta) {
        // Only the directory fsync fails after the rename. The new file is
        // then what every reader sees: refusing now would leave the writer
        // holding the old data and the old file id, so that every later
        // update failed as "modified since the last write".
        return match replaced_by(path, ours, data) {
            Some(id) => {
                log::error!(
                    "Writing {wire}: {e}; the new configuration is in place but may not \
                     survive a crash of this node"
                );
                Ok(id)
            }
            None => Err(config_error(format!("Cannot write {wire}: {e}"))),
        };
    }
    let id = std::fs::symlink_metadata(path)
        .map(|m| FileId::of(&m))
        .map_err(|e| config_error(format!("Cannot stat {wire}: {e}")))?;
    drop(file);
    Ok(id)
}

/// After a failed atomic write: the id of the file now at `path` when it
/// is no longer the one last read or written (`ours`) and holds exactly
/// `data`, i.e. the rename happened; `None` when the old file is still
/// there (or anything else is).
fn replaced_by(path: &Path, ours: FileId, data: &[u8]) -> Option<FileId> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let id = FileId::of(&file.metadata().ok()?);
    if (id.dev, id.ino) == (ours.dev, ours.ino) {
        return None;
    }
    let mut found = Vec::with_capacity(data.len());
    file.take(data.len() as u64 + 1)
        .read_to_end(&mut found)
        .ok()?;
    (found == data).then_some(id)
}

/// Reads `config.data`: no symbolic link, at most [`MAX_CONFIG_SIZE`]
/// bytes; the id is that of the file actually read.
fn read_config_file(path: &Path, wire: &str) -> Result<(String, FileId), GanetiError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                config_error(format!("Refusing to read {wire}: it is a symbolic link"))
            }
            _ => config_error(format!("Cannot read {wire}: {e}")),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| config_error(format!("Cannot stat {wire}: {e}")))?;
    if !meta.is_file() {
        return Err(config_error(format!("{wire} is not a regular file")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_SIZE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| config_error(format!("Cannot read {wire}: {e}")))?;
    if bytes.len() > MAX_CONFIG_SIZE {
        return Err(config_error(format!(
            "{wire} is larger than {MAX_CONFIG_SIZE} bytes"
        )));
    }
    let text =
        String::from_utf8(bytes).map_err(|_| config_error(format!("{wire} is not valid UTF-8")))?;
    Ok((text, FileId::of(&meta)))
}

/// The name of a Ganeti daemon user with this uid (`LookupUid`).
fn ganeti_user_name(uid: u32) -> Result<String, String> {
    for name in GANETI_USERS {
        if let Ok(Some(u)) = sys::getpwnam(name) {
            if u.uid == uid {
                return Ok(name.to_string());
            }
        }
    }
    Err(format!("Unknown Ganeti uid '{uid}'"))
}

/// The name of a Ganeti group with this gid (`LookupGid`).
fn ganeti_group_name(gid: u32) -> Result<String, String> {
    for name in GANETI_GROUPS {
        if let Ok(Some(g)) = sys::getgrnam(name) {
            if g == gid {
                return Ok(name.to_string());
            }
        }
    }
    Err(format!("Unknown Ganeti gid '{gid}'"))
}

fn float_secs(secs: i64, nsec: i64) -> f64 {
    secs as f64 + nsec as f64 * 1e-9
}

/// The `upload_file` arguments for a local file (2.5.2's
/// `call_upload_file`): wire path, encoded contents, and mode, owner,
/// group and times from `stat()`.
fn upload_args(path: &Path, wire: &str, data: &[u8]) -> Result<Value, String> {
    let m = std::fs::symlink_metadata(path).map_err(|e| format!("Cannot stat {wire}: {e}"))?;
    Ok(json!([
        wire,
        blob::encode(data),
        m.mode(),
        ganeti_user_name(m.uid())?,
        ganeti_group_name(m.gid())?,
        float_secs(m.atime(), m.atime_nsec()),
        float_secs(m.mtime(), m.mtime_nsec()),
    ]))
}

fn rpc_node(n: &Node, respect_offline: bool) -> client::Node {
    client::Node {
        name: n.name.clone(),
        address: n.primary_ip.clone(),
        offline: respect_offline && n.offline,
    }
}

fn sorted_nodes(cfg: &ConfigData, keep: impl Fn(&Node) -> bool) -> Vec<&Node> {
    let mut names: Vec<&str> = cfg
        .nodes
        .values()
        .filter(|n| keep(n))
        .map(|n| n.name.as_str())
        .collect();
    nice_sort(&mut names);
    names.iter().filter_map(|n| cfg.nodes.get(*n)).collect()
}

struct WriterState {
    data: ConfigData,
    /// The file as last read or written.
    file_id: FileId,
    /// `cluster.serial_no` at the last ssconf push; `None` (2.5.2's -1)
    /// until the first write, which therefore always pushes.
    last_cluster_serial: Option<u64>,
}

/// Per-job reservations of generated MACs and UUIDs, released when the
/// job's opcode ends (`TemporaryReservationManager`).
#[derive(Default)]
struct Reservations {
    macs: BTreeMap<String, HashSet<String>>,
    ids: BTreeMap<String, HashSet<String>>,
}

fn all_reserved(by_ec: &BTreeMap<String, HashSet<String>>) -> HashSet<String> {
    by_ec.values().flatten().cloned().collect()
}

/// Read access to the configuration; holds the shared lock.
pub struct ConfigRead<'a>(RwLockReadGuard<'a, WriterState>);

impl std::ops::Deref for ConfigRead<'_> {
    type Target = ConfigData;
    fn deref(&self) -> &ConfigData {
        &self.0.data
    }
}

/// The master's configuration: one process-wide reader/writer lock around
/// the data, every change written safely to `config.data` and pushed to
/// the master candidates (and ssconf to all online nodes).
pub struct ConfigWriter {
    paths: Paths,
    local_node: String,
    rpc: Option<Arc<Client>>,
    state: RwLock<WriterState>,
    write_count: AtomicU64,
    reservations: Mutex<Reservations>,
}

impl std::fmt::Debug for ConfigWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigWriter")
            .field("local_node", &self.local_node)
            .field("online", &self.rpc.is_some())
            .field("write_count", &self.write_count())
            .finish()
    }
}

impl ConfigWriter {
    fn wire_path(&self) -> String {
        self.paths
            .to_wire(&self.paths.config_data())
            .to_string_lossy()
            .into_owned()
    }

    /// Opens `config.data` (2.5.2's `ConfigWriter()`): read, version check,
    /// `cluster.master_node` must be `local_node` unless `accept_foreign`,
    /// object defaults, then the writer-level upgrade, written back (and
    /// distributed) when it changed anything. `rpc` `None` is 2.5.2's
    /// offline mode: nothing is sent to other nodes.
    pub fn open(
        paths: Paths,
        local_node: &str,
        accept_foreign: bool,
        rpc: Option<Arc<Client>>,
    ) -> Result<ConfigWriter, GanetiError> {
        let path = paths.config_data();
        let wire = paths.to_wire(&path).to_string_lossy().into_owned();
        let (text, file_id) = read_config_file(&path, &wire)?;
        let mut data = parse(&text)?;
        if data.cluster.master_node != local_node && !accept_foreign {
            return Err(config_error(format!(
                "The configuration denotes node {} as master, while my hostname is \
                 {local_node}; opening a foreign configuration is only possible in \
                 accept_foreign mode",
                data.cluster.master_node
            )));
        }
        let modified = upgrade_config(&mut data)?;
        let writer = ConfigWriter {
            paths,
            local_node: local_node.to_string(),
            rpc,
            state: RwLock::new(WriterState {
                data,
                file_id,
                last_cluster_serial: None,
            }),
            write_count: AtomicU64::new(0),
            reservations: Mutex::new(Reservations::default()),
        };
        if modified {
            writer.update(|_| Ok(()))?;
        }
        Ok(writer)
    }

    /// Writes the first `config.data` (`InitConfig`): mode 0600, refused
    /// when one exists already.
    pub fn create(paths: Paths, cfg: ConfigData) -> Result<(), GanetiError> {
        let path = paths.config_data();
        let wire = paths.to_wire(&path).to_string_lossy().into_owned();
        if path.symlink_metadata().is_ok() {
            return Err(GanetiError::prereq(
                "Cluster is already initialised",
                crate::errors::ECODE_STATE,
            ));
        }
        let text = try_serialize(&cfg)?;
        let meta = FileMeta {
            mode: Some(INITIAL_CONFIG_MODE),
            owner: None,
            times: None,
        };
        fsutil::write_atomic(&path, text.as_bytes(), &meta)
            .map_err(|e| config_error(format!("Cannot write {wire}: {e}")))
    }

    /// Shared access to the configuration. The lock is not reentrant and
    /// a waiting writer holds back new readers: drop the guard before
    /// calling any other method of the writer on the same thread (`update`
    /// would deadlock at once, `master_candidates`, `expand_*_name` and the
    /// like as soon as an update is waiting).
    pub fn read(&self) -> ConfigRead<'_> {
        ConfigRead(self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The node this writer runs on (never sent its own copy).
    pub fn local_node(&self) -> &str {
        &self.local_node
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// How many times the configuration was written by this writer.
    pub fn write_count(&self) -> u64 {
        self.write_count.load(Ordering::SeqCst)
    }

    /// Changes the configuration: `f` runs on a copy under the exclusive
    /// lock; then the consistency check (problems logged, not fatal),
    /// `serial_no` + 1 and `mtime`, the safe write (refused when the file
    /// changed underneath), `write_count` + 1, `upload_file` to the other
    /// master candidates and, when `cluster.serial_no` grew since the last
    /// push, `write_ssconf_files` to all online nodes. Distribution
    /// failures are logged, not returned. When `f` or the write fails,
    /// nothing changes, in memory or on disk. `f` must not call back into
    /// the writer (the lock is not reentrant).
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut ConfigData) -> Result<T, GanetiError>,
    ) -> Result<T, GanetiError> {
        self.update_with_feedback(&mut |_| {}, f)
    }

    /// [`ConfigWriter::update`], also handing every warning (inconsistency,
    /// failed copy) to `feedback`, as 2.5.2's `feedback_fn`. `feedback`
    /// runs under the exclusive lock and must not call the writer either.
    pub fn update_with_feedback<T>(
        &self,
        feedback: &mut dyn FnMut(&str),
        f: impl FnOnce(&mut ConfigData) -> Result<T, GanetiError>,
    ) -> Result<T, GanetiError> {
        let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let mut data = st.data.clone();
        let value = f(&mut data)?;
        let problems = verify(&data);
        if !problems.is_empty() {
            let msg = format!(
                "Configuration data is not consistent: {}",
                problems.join(", ")
            );
            log::error!("{msg}");
            feedback(&msg);
        }
        data.serial_no += 1;
        data.mtime = now();
        let text = try_serialize(&data)?;
        if text.len() > MAX_CONFIG_SIZE {
            return Err(config_error(format!(
                "The configuration would be larger than {MAX_CONFIG_SIZE} bytes"
            )));
        }
        let wire = self.wire_path();
        let id = safe_write(
            &self.paths.config_data(),
            &wire,
            st.file_id,
            text.as_bytes(),
            CONFIG_MODE,
        )?;
        st.data = data;
        st.file_id = id;
        self.write_count.fetch_add(1, Ordering::SeqCst);
        if let Some(rpc) = &self.rpc {
            for w in self.distribute_config(rpc, &st.data, text.as_bytes()) {
                feedback(&w);
            }
        }
        let serial = st.data.cluster.serial_no;
        if st.last_cluster_serial.map_or(true, |last| last < serial) {
            if let Some(rpc) = &self.rpc {
                for w in ssconf_push(rpc, &st.data) {
                    feedback(&w);
                }
            }
            st.last_cluster_serial = Some(serial);
        }
        Ok(value)
    }

    /// `_DistributeConfig`: `upload_file` of `config.data` to every master
    /// candidate but this node, by primary IP.
    fn distribute_config(&self, rpc: &Client, cfg: &ConfigData, data: &[u8]) -> Vec<String> {
        let targets: Vec<client::Node> =
            sorted_nodes(cfg, |n| n.master_candidate && n.name != self.local_node)
                .into_iter()
                .map(|n| rpc_node(n, false))
                .collect();
        if targets.is_empty() {
            return Vec::new();
        }
        let wire = self.wire_path();
        upload(rpc, &targets, &self.paths.config_data(), &wire, data)
    }

    /// Pushes the current ssconf values to all online nodes now.
    pub fn push_ssconf(&self) -> Vec<String> {
        let st = self.read();
        match &self.rpc {
            Some(rpc) => ssconf_push(rpc, &st),
            None => Vec::new(),
        }
    }

    /// `OP_CLUSTER_REDIST_CONF`: an update of the cluster object (so
    /// `config.data` goes to the master candidates and ssconf to every
    /// online node), then the ancillary cluster files that exist here to
    /// the other online nodes (hypervisor files to the VM-capable ones).
    /// Returns the warnings.
    pub fn redistribute(&self) -> Result<Vec<String>, GanetiError> {
        let mut warnings = Vec::new();
        self.update_with_feedback(&mut |w| warnings.push(w.to_string()), |cfg| {
            cfg.touch_cluster(now());
            Ok(())
        })?;
        let Some(rpc) = &self.rpc else {
            return Ok(warnings);
        };
        let (all, vm, files_all, files_vm) = {
            let cfg = self.read();
            let master = cfg.cluster.master_node.clone();
            let online: Vec<client::Node> = sorted_nodes(&cfg, |n| !n.offline && n.name != master)
                .into_iter()
                .map(|n| rpc_node(n, false))
                .collect();
            let vm: Vec<client::Node> = sorted_nodes(&cfg, |n| n.vm_capable && n.name != master)
                .into_iter()
                .map(|n| rpc_node(n, false))
                .collect();
            let mut files_all = vec![
                "/var/lib/ganeti/known_hosts",
                "/var/lib/ganeti/hmac.key",
                "/var/lib/ganeti/cluster-domain-secret",
                "/var/lib/ganeti/rapi.pem",
                "/var/lib/ganeti/rapi/users",
            ];
            if cfg.cluster.modify_etc_hosts {
                files_all.push("/etc/hosts");
            }
            let mut files_vm: Vec<&str> = Vec::new();
            for hv in &cfg.cluster.enabled_hypervisors {
                for f in hv_ancillary_files(hv) {
                    if !files_vm.contains(f) {
                        files_vm.push(f);
                    }
                }
            }
            (online, vm, files_all, files_vm)
        };
        for (nodes, files) in [(&all, files_all), (&vm, files_vm)] {
            for wire in files {
                let local = self.paths.to_local(wire);
                let Ok(data) = read_limited(&local) else {
                    continue;
                };
                if !nodes.is_empty() {
                    warnings.extend(upload(rpc, nodes, &local, wire, &data));
                }
            }
        }
        Ok(warnings)
    }

    /// The full name of a node ([`expand_node_name`]).
    pub fn expand_node_name(&self, name: &str) -> Result<String, GanetiError> {
        expand_node_name(&self.read(), name)
    }

    /// The full name of an instance ([`expand_instance_name`]).
    pub fn expand_instance_name(&self, name: &str) -> Result<String, GanetiError> {
        expand_instance_name(&self.read(), name)
    }

    /// All master candidates (this node included), in natural order, as
    /// RPC targets (address = primary IP, offline as configured).
    pub fn master_candidates(&self) -> Vec<client::Node> {
        let cfg = self.read();
        sorted_nodes(&cfg, |n| n.master_candidate)
            .into_iter()
            .map(|n| rpc_node(n, true))
            .collect()
    }

    /// The master candidates other than this node (job queue replication).
    pub fn other_master_candidates(&self) -> Vec<client::Node> {
        let cfg = self.read();
        sorted_nodes(&cfg, |n| n.master_candidate && n.name != self.local_node)
            .into_iter()
            .map(|n| rpc_node(n, true))
            .collect()
    }

    /// The nodes not marked offline, in natural order, as RPC targets.
    pub fn online_nodes(&self) -> Vec<client::Node> {
        let cfg = self.read();
        sorted_nodes(&cfg, |n| !n.offline)
            .into_iter()
            .map(|n| rpc_node(n, false))
            .collect()
    }

    /// A MAC address unused by any instance and not reserved by another
    /// job, reserved for `ec_id` (`GenerateMAC`).
    pub fn generate_mac(&self, ec_id: &str) -> Result<String, GanetiError> {
        let cfg = self.read();
        let prefix = cfg
            .cluster
            .mac_prefix
            .clone()
            .unwrap_or_else(|| DEFAULT_MAC_PREFIX.to_string());
        let mut res = self
            .reservations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut taken = all_reserved(&res.macs);
        taken.extend(cfg.all_macs().into_iter().map(str::to_string));
        let mac = generate_unique(&taken, || random_mac(&prefix))?;
        res.macs
            .entry(ec_id.to_string())
            .or_default()
            .insert(mac.clone());
        Ok(mac)
    }

    /// Reserves a given MAC for `ec_id` (`ReserveMAC`).
    pub fn reserve_mac(&self, mac: &str, ec_id: &str) -> Result<(), GanetiError> {
        let cfg = self.read();
        if cfg.all_macs().contains(&mac) {
            return Err(GanetiError::msg("ReservationError", "mac already in use"));
        }
        let mut res = self
            .reservations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if all_reserved(&res.macs).contains(mac) {
            return Err(GanetiError::msg(
                "ReservationError",
                format!("Duplicate reservation for resource '{mac}'"),
            ));
        }
        res.macs
            .entry(ec_id.to_string())
            .or_default()
            .insert(mac.to_string());
        Ok(())
    }

    /// A UUID unused in the configuration and not reserved, reserved for
    /// `ec_id` (`GenerateUniqueID`).
    pub fn generate_unique_id(&self, ec_id: &str) -> Result<String, GanetiError> {
        let cfg = self.read();
        let mut res = self
            .reservations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut taken = all_reserved(&res.ids);
        taken.extend(all_ids(&cfg));
        let id = generate_unique(&taken, new_uuid)?;
        res.ids
            .entry(ec_id.to_string())
            .or_default()
            .insert(id.clone());
        Ok(id)
    }

    /// Releases everything reserved for `ec_id` (`DropECReservations`).
    pub fn drop_reservations(&self, ec_id: &str) {
        let mut res = self
            .reservations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        res.macs.remove(ec_id);
        res.ids.remove(ec_id);
    }

    /// A network port (`AllocatePort`): a freed one from the pool, else
    /// the next above `highest_used_port`; written at once.
    pub fn allocate_port(&self) -> Result<u32, GanetiError> {
        self.update(|cfg| {
            let c = &mut cfg.cluster;
            if let Some(port) = c.tcpudp_port_pool.pop() {
                return Ok(port);
            }
            let port = c.highest_used_port.unwrap_or(FIRST_DRBD_PORT - 1) + 1;
            if port >= LAST_DRBD_PORT {
                return Err(config_error(format!(
                    "The highest used port is greater than {LAST_DRBD_PORT}. Aborting."
                )));
            }
            c.highest_used_port = Some(port);
            Ok(port)
        })
    }
}

/// Reads a small local file for upload.
fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_SIZE as u64 + 1)
        .read_to_end(&mut data)?;
    if data.len() > MAX_CONFIG_SIZE {
        return Err(std::io::Error::other("file too large to upload"));
    }
    Ok(data)
}

/// `upload_file` of one local file to `nodes`; a warning per failed node.
fn upload(
    rpc: &Client,
    nodes: &[client::Node],
    local: &Path,
    wire: &str,
    data: &[u8],
) -> Vec<String> {
    let fail = |node: &str, msg: &str| {
        let w = format!("Copy of file {wire} to node {node} failed: {msg}");
        log::error!("{w}");
        w
    };
    let args = match upload_args(local, wire, data) {
        Ok(a) => a,
        Err(msg) => return nodes.iter().map(|n| fail(&n.name, &msg)).collect(),
    };
    rpc.call(nodes, "upload_file", &args)
        .into_iter()
        .filter_map(|(node, r)| r.fail_msg().map(|m| fail(&node, m)))
        .collect()
}

/// `write_ssconf_files` with the configuration's values to every online
/// node (this one included); a warning per failed node.
fn ssconf_push(rpc: &Client, cfg: &ConfigData) -> Vec<String> {
    let nodes: Vec<client::Node> = sorted_nodes(cfg, |n| !n.offline)
        .into_iter()
        .map(|n| rpc_node(n, false))
        .collect();
    let args = json!([ssconf_values(cfg)]);
    rpc.call(&nodes, "write_ssconf_files", &args)
        .into_iter()
        .filter_map(|(node, r)| {
            r.fail_msg().map(|m| {
                let w = format!("Error while uploading ssconf files to node {node}: {m}");
                log::warn!("{w}");
                w
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared<T: Send + Sync>() {}

    #[test]
    fn the_writer_is_shared_between_threads() {
        shared::<ConfigWriter>();
        shared::<Arc<ConfigWriter>>();
    }

    #[test]
    fn a_write_whose_rename_happened_is_recognised() {
        let dir = std::env::temp_dir().join(format!("ganeti-cfg-replaced-{}", sys::getpid()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.data");
        std::fs::write(&path, b"old").unwrap();
        let ours = FileId::of(&std::fs::metadata(&path).unwrap());
        // The rename did not happen: the old file is still there, even if
        // its contents were what we meant to write.
        assert_eq!(replaced_by(&path, ours, b"old"), None);
        assert_eq!(replaced_by(&path, ours, b"new"), None);
        // It happened: a new file with exactly our data.
        let temp = dir.join(".config.data.tmp");
        std::fs::write(&temp, b"new").unwrap();
        std::fs::rename(&temp, &path).unwrap();
        let now = FileId::of(&std::fs::metadata(&path).unwrap());
        assert_eq!(replaced_by(&path, ours, b"new"), Some(now));
        // Someone else's file, or a longer one, is not ours.
        assert_eq!(replaced_by(&path, ours, b"ne"), None);
        assert_eq!(replaced_by(&path, ours, b"newer"), None);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(replaced_by(&path, ours, b"new"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn config_file_size_limit_and_limit_plus_one() {
        let dir = std::env::temp_dir().join(format!("ganeti-cfg-read-{}", sys::getpid()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.data");
        std::fs::write(&path, vec![b' '; MAX_CONFIG_SIZE]).unwrap();
        let (text, _) = read_config_file(&path, "/var/lib/ganeti/config.data").unwrap();
        assert_eq!(text.len(), MAX_CONFIG_SIZE);
        std::fs::write(&path, vec![b' '; MAX_CONFIG_SIZE + 1]).unwrap();
        let err = read_config_file(&path, "/var/lib/ganeti/config.data").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/var/lib/ganeti/config.data is larger than 16777216 bytes"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
