//! The kvm hypervisor (2.5.2's `hv_kvm`): real qemu processes, one per
//! instance, started with `-daemonize` and found again through their pid
//! files, so the node daemon can restart without losing them.
//!
//! Layout under `/var/run/ganeti/kvm-hypervisor` (2.5.2's): `pid/<name>`
//! (written by kvm's `-pidfile`), `conf/<name>.runtime` (the JSON `[argv,
//! nics, hvparams]` saved at start and reused by a soft reboot),
//! `ctrl/<name>.monitor` and `ctrl/<name>.serial` (unix sockets),
//! `nic/<name>/<seq>` (the tap of each NIC), plus `uid`, `keymap`, `chroot`
//! and `chroot-quarantine`, created but unused here.
//!
//! An instance is running when its pid file names a live (not zombie)
//! process whose command line has `-name <name>` and, stricter than 2.5.2,
//! `-pidfile` of this node's own pid file (so two node roots on one machine
//! never mistake each other's instances). The process is held, watched and
//! signalled through a pidfd (Linux >= 5.3), never by its pid: a stale pid
//! file, or a kvm that exits while being stopped, can never make the node
//! daemon signal a process that was later given the same pid.
//!
//! The command line follows 2.5.2's `_GenerateKVMRuntime`, except where
//! current qemu (>= 5.0 is required) refuses 2.5.2's options: `-no-acpi`
//! becomes `-machine acpi=off`, `-disable-kvm` `-machine accel=tcg`,
//! `-localtime` `-rtc base=localtime`, `-nographic` (refused together with
//! `-daemonize`) `-display none`, and `boot=on` is no longer put on drives
//! (qemu >= 0.14 does not need it). NICs: a tap device per NIC, opened
//! here and passed to kvm as a descriptor (`-netdev
//! type=tap,id=netdevN,fd=F -device <model>,mac=M,netdev=netdevN`), and
//! configured first (see [`net`]).
//!
//! The monitor is spoken to directly over its unix socket (2.5.2 ran
//! `echo <cmd> | socat ...` through a shell), so socat is not needed and
//! `verify` does not ask for it. Every exchange, the connection included,
//! ends within [`MONITOR_TIMEOUT`]; a soft stop whose `system_powerdown`
//! gets no answer within [`POWERDOWN_TIMEOUT`] is not an error (socat gave
//! up waiting after half a second and succeeded), so a shutdown of a hung
//! kvm goes on to the forced stop. Refused parameters are listed in
//! [`params`]. Not implemented: migration, VNC passwords and TLS, SPICE,
//! the uid pool, chroots, keymaps.

#![forbid(unsafe_code)]

pub mod net;
pub mod params;

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::{
    check_name, dir_entries, ensure_dir, linux_node_info, read_small, BlockDevice, HvError,
    Hypervisor, InstanceInfo, NodeInfo,
};
use crate::fsutil::{self, FileMeta};
use crate::objects::{Instance, Nic};
use crate::paths::{Paths, RUN_DIR};
use crate::sys;
use params::KvmParams;

/// The kvm binary (`KVM_PATH`); Debian's qemu-system-x86 still ships it
/// (a link to qemu-system-x86_64).
pub const KVM_PATH: &str = "/usr/bin/kvm";
/// Used when [`KVM_PATH`] is missing.
pub const QEMU_PATH: &str = "/usr/bin/qemu-system-x86_64";
/// The oldest qemu whose options the command line uses.
pub const MIN_KVM_VERSION: (u32, u32) = (5, 0);
/// How long `kvm --help` may take.
const KVM_HELP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long kvm may take to daemonize.
pub const KVM_START_TIMEOUT: Duration = Duration::from_secs(60);
/// 2.5.2's `KillProcess`: SIGTERM, up to 30 s, then SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGKILLed process may take to go.
const KILL9_TIMEOUT: Duration = Duration::from_secs(5);
/// The monitor command of a soft stop.
const POWERDOWN: &str = "system_powerdown";
/// How long a soft stop waits for kvm to take and answer its request (the
/// answer is not needed; 2.5.2's socat waited 0.5 s). Each soft stop of a
/// shutdown loop overruns the shutdown's timeout by at most this.
const POWERDOWN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one monitor command may take.
const MONITOR_TIMEOUT: Duration = Duration::from_secs(10);
/// Most monitor output read for one command.
pub const MAX_MONITOR_OUTPUT: usize = 64 * 1024;
/// Longest unix socket path (`sun_path` holds 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;
/// Most output kept from kvm or a network script.
const MAX_OUTPUT: u64 = 64 * 1024;
/// Most NICs of one instance: each takes a tap descriptor in the node
/// daemon while kvm starts and a slot on kvm's 32-slot PCI bus.
pub const MAX_NICS: usize = 32;
/// `VNC_BASE_PORT`.
const VNC_BASE_PORT: u32 = 5900;
/// The disk templates whose disks kvm must not cache (`DTS_EXT_MIRROR`).
const EXT_MIRROR: [&str; 2] = ["sharedfile", "blockdev"];

/// The kvm run subdirectories created with the hypervisor.
pub const KVM_SUBDIRS: [&str; 8] = [
    "pid",
    "uid",
    "ctrl",
    "conf",
    "nic",
    "keymap",
    "chroot",
    "chroot-quarantine",
];

/// The run directory (wire path).
pub fn root_dir() -> String {
    format!("{RUN_DIR}/kvm-hypervisor")
}

/// The kvm binary to run: [`KVM_PATH`], else [`QEMU_PATH`].
pub fn kvm_binary() -> &'static str {
    if !Path::new(KVM_PATH).exists() && Path::new(QEMU_PATH).exists() {
        QEMU_PATH
    } else {
        KVM_PATH
    }
}

/// A live kvm of an instance: its pid, what its command line says, and a
/// pidfd, through which alone it is signalled and watched (a pid can be
/// given to another process as soon as kvm exits).
#[derive(Debug)]
struct Proc {
    pid: i32,
    memory: u64,
    vcpus: u64,
    handle: OwnedFd,
}

/// 2.5.2's kvm runtime: the command line without its network part, the
/// NICs and the parameters it was started with.
#[derive(Debug, Clone)]
struct Runtime {
    argv: Vec<String>,
    nics: Vec<Nic>,
    hvparams: Map<String, Value>,
}

impl Runtime {
    fn to_json(&self) -> Result<Vec<u8>, HvError> {
        serde_json::to_vec(&(&self.argv, &self.nics, &self.hvparams))
            .map_err(|e| HvError::Failed(format!("Failed to save KVM runtime file: {e}")))
    }

    fn from_json(text: &str) -> Result<Runtime, HvError> {
        let (argv, nics, hvparams) = serde_json::from_str(text)
            .map_err(|e| HvError::Failed(format!("Failed to load KVM runtime file: {e}")))?;
        Ok(Runtime {
            argv,
            nics,
            hvparams,
        })
    }
}

/// The kvm hypervisor of one node.
#[derive(Debug)]
pub struct Kvm {
    paths: Paths,
    base: PathBuf,
    /// [`MONITOR_TIMEOUT`] (shorter in tests).
    monitor_timeout: Duration,
}

impl Kvm {
    /// Creates the run directories (mode 0775) when missing.
    pub fn open(paths: &Paths) -> Result<Kvm, HvError> {
        let base = paths.to_local(&root_dir());
        ensure_dir(&base)?;
        for sub in KVM_SUBDIRS {
            ensure_dir(&base.join(sub))?;
        }
        Ok(Kvm {
            paths: paths.clone(),
            base,
            monitor_timeout: MONITOR_TIMEOUT,
        })
    }

    fn pid_file(&self, name: &str) -> PathBuf {
        self.base.join("pid").join(name)
    }
    fn monitor_path(&self, name: &str) -> PathBuf {
        self.base.join("ctrl").join(format!("{name}.monitor"))
    }
    fn serial_path(&self, name: &str) -> PathBuf {
        self.base.join("ctrl").join(format!("{name}.serial"))
    }
    fn runtime_path(&self, name: &str) -> PathBuf {
        self.base.join("conf").join(format!("{name}.runtime"))
    }
    fn nic_dir(&self, name: &str) -> PathBuf {
        self.base.join("nic").join(name)
    }

    /// The live kvm of an instance, if any. The pidfd is taken before the
    /// command line is read and checked to be still running after: so the
    /// command line was that process's, not one that took over its pid.
    /// An error means the process could not be watched (too many open
    /// files, a kernel before 5.3): never "not running".
    fn process(&self, name: &str) -> Result<Option<Proc>, HvError> {
        let pid_file = self.pid_file(name);
        let Some(pid) = read_small(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
            .filter(|&pid| pid > 0)
        else {
            return Ok(None);
        };
        let handle = match sys::pidfd_open(pid) {
            Ok(handle) => handle,
            // Gone, or a thread's id rather than a process's.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ESRCH | libc::EINVAL)) => {
                return Ok(None)
            }
            Err(e) => {
                return Err(HvError::Failed(format!(
                    "Cannot watch process {pid} of instance {name}: {e}"
                )))
            }
        };
        let mut cmdline = Vec::new();
        let read = std::fs::File::open(format!("/proc/{pid}/cmdline"))
            .and_then(|f| f.take(MAX_STATE_BYTES).read_to_end(&mut cmdline));
        if read.is_err() || wait_exit(&handle, Duration::ZERO)? {
            return Ok(None);
        }
        let args = parse_cmdline(&cmdline);
        let ours = args.name.as_deref() == Some(name)
            && args.pidfile.as_deref() == Some(pid_file.to_string_lossy().as_ref());
        Ok(ours.then_some(Proc {
            pid,
            memory: args.memory,
            vcpus: args.vcpus,
            handle,
        }))
    }

    fn check_down(&self, name: &str) -> Result<(), HvError> {
        if self.process(name)?.is_some() {
            return Err(HvError::Failed(format!(
                "Failed to start instance {name}: already running"
            )));
        }
        Ok(())
    }

    /// 2.5.2's `_GenerateKVMRuntime`: the command line from the instance's
    /// parameters and disks (no side effects).
    fn generate_runtime(
        &self,
        inst: &Instance,
        block_devices: &[BlockDevice],
        paused: bool,
    ) -> Result<Runtime, HvError> {
        let name = &inst.name;
        let hvp = KvmParams::from_map(&inst.hvparams)?;
        hvp.validate(&self.paths)?;
        kvm_version()?;
        let (memory, vcpus) = match (inst.memory(), inst.vcpus()) {
            (Some(m), Some(v)) if m > 0 && v > 0 => (m, v),
            _ => {
                return Err(HvError::Failed(format!(
                    "Failed to start instance {name}: beparams 'memory' and 'vcpus' must be positive numbers"
                )))
            }
        };
        let pid_file = self.pid_file(name);
        let mut argv: Vec<String> = Vec::new();
        let mut push = |args: &[&str]| argv.extend(args.iter().map(|s| s.to_string()));
        push(&[kvm_binary(), "-name", name]);
        push(&["-m", &memory.to_string(), "-smp", &vcpus.to_string()]);
        push(&["-pidfile", &path_arg(&pid_file)?, "-daemonize"]);
        if !hvp.acpi {
            push(&["-machine", "acpi=off"]);
        }
        if paused {
            push(&["-S"]);
        }
        if hvp.reboot_behavior == "exit" {
            push(&["-no-reboot"]);
        }
        let kernel = !hvp.kernel_path.is_empty();
        let boot = |what: &str| !kernel && hvp.boot_order == what;
        let (mut boot_disk, boot_cdrom, boot_floppy) =
            (boot("disk"), boot("cdrom"), boot("floppy"));
        match hvp.kvm_flag.as_str() {
            "enabled" => push(&["-enable-kvm"]),
            "disabled" => push(&["-machine", "accel=tcg"]),
            _ => {}
        }
        if boot("network") {
            push(&["-boot", "n"]);
        }
        let if_val = if_name(&hvp.disk_type);
        let cache = if inst
            .disk_template
            .as_deref()
            .is_some_and(|t| EXT_MIRROR.contains(&t))
        {
            ",cache=none".to_string()
        } else if hvp.disk_cache != "default" {
            format!(",cache={}", hvp.disk_cache)
        } else {
            String::new()
        };
        for (disk, link) in block_devices {
            if disk.mode.as_deref() != Some("rw") {
                return Err(HvError::Failed(
                    "Instance has read-only disks which are not supported by KVM".into(),
                ));
            }
            if boot_disk {
                push(&["-boot", "c"]);
                boot_disk = false;
            }
            let drive = format!("file={},format=raw,if={if_val}{cache}", option_path(link)?);
            push(&["-drive", &drive]);
        }
        let cdrom_type = if hvp.cdrom_disk_type.is_empty() {
            &hvp.disk_type
        } else {
            &hvp.cdrom_disk_type
        };
        if let Some(iso) = KvmParams::local(&self.paths, &hvp.cdrom_image_path) {
            let if_cd = if boot_cdrom {
                "ide"
            } else {
                if_name(cdrom_type)
            };
            if boot_cdrom {
                push(&["-boot", "d"]);
            }
            let drive = format!(
                "file={},format=raw,media=cdrom,if={if_cd}",
                option_path(&iso)?
            );
            push(&["-drive", &drive]);
        }
        if let Some(iso) = KvmParams::local(&self.paths, &hvp.cdrom2_image_path) {
            let drive = format!(
                "file={},format=raw,media=cdrom,if={}",
                option_path(&iso)?,
                if_name(cdrom_type)
            );
            push(&["-drive", &drive]);
        }
        if let Some(img) = KvmParams::local(&self.paths, &hvp.floppy_image_path) {
            if boot_floppy {
                push(&["-boot", "a"]);
            }
            let drive = format!(
                "file={},format=raw,media=disk,if=floppy",
                option_path(&img)?
            );
            push(&["-drive", &drive]);
        }
        if let Some(k) = KvmParams::local(&self.paths, &hvp.kernel_path) {
            push(&["-kernel", &path_arg(&k)?]);
            if let Some(initrd) = KvmParams::local(&self.paths, &hvp.initrd_path) {
                push(&["-initrd", &path_arg(&initrd)?]);
            }
            let mut append = vec![
                format!("root={}", hvp.root_path.as_deref().unwrap_or("")),
                hvp.kernel_args.clone(),
            ];
            if hvp.serial_console {
                append.push("console=ttyS0,38400".into());
            }
            push(&["-append", &append.join(" ")]);
        }
        if let Some(mem) = KvmParams::local(&self.paths, &hvp.mem_path) {
            push(&["-mem-path", &path_arg(&mem)?, "-mem-prealloc"]);
        }
        let monitor = socket_arg(&self.monitor_path(name))?;
        push(&["-monitor", &format!("unix:{monitor},server,nowait")]);
        if hvp.serial_console {
            let serial = socket_arg(&self.serial_path(name))?;
            push(&["-serial", &format!("unix:{serial},server,nowait")]);
        } else {
            push(&["-serial", "none"]);
        }
        let vnc = &hvp.vnc_bind_address;
        if !hvp.usb_mouse.is_empty() {
            push(&["-usb", "-usbdevice", &hvp.usb_mouse]);
        } else if !vnc.is_empty() {
            push(&["-usbdevice", "tablet"]);
        }
        if vnc.is_empty() {
            push(&["-display", "none"]);
        } else if vnc.parse::<Ipv4Addr>().is_ok() {
            let port = inst.network_port.unwrap_or(0);
            let arg = if port > VNC_BASE_PORT {
                let display = port - VNC_BASE_PORT;
                if vnc == "0.0.0.0" {
                    format!(":{display}")
                } else {
                    format!("{vnc}:{display}")
                }
            } else {
                log::error!(
                    "Network port is not a valid VNC display ({port} < {VNC_BASE_PORT}). Not starting VNC"
                );
                "none".to_string()
            };
            push(&["-vnc", &arg]);
        } else {
            let dir = self.paths.to_local(vnc);
            push(&[
                "-vnc",
                &format!("unix:{}", socket_arg(&dir.join(format!("{name}.vnc")))?),
            ]);
        }
        if hvp.use_localtime {
            push(&["-rtc", "base=localtime"]);
        }
        Ok(Runtime {
            argv,
            nics: inst.nics.clone(),
            hvparams: inst.hvparams.clone(),
        })
    }

    fn save_runtime(&self, name: &str, runtime: &Runtime) -> Result<(), HvError> {
        let meta = FileMeta {
            mode: Some(0o600),
            ..FileMeta::default()
        };
        fsutil::write_atomic(&self.runtime_path(name), &runtime.to_json()?, &meta)
            .map_err(|e| HvError::Failed(format!("Failed to save KVM runtime file: {e}")))
    }

    fn load_runtime(&self, name: &str) -> Result<Runtime, HvError> {
        let text = read_small(&self.runtime_path(name))
            .map_err(|e| HvError::Failed(format!("Failed to load KVM runtime file: {e}")))?;
        Runtime::from_json(&text)
    }

    /// 2.5.2's `_ExecuteKVMRuntime`: taps for the NICs, configured, then
    /// kvm itself; the tap names are saved under `nic/<name>/`.
    fn execute_runtime(&self, inst: &Instance, runtime: &Runtime) -> Result<(), HvError> {
        let name = &inst.name;
        self.check_down(name)?;
        if runtime.nics.len() > MAX_NICS {
            return Err(HvError::Failed(format!(
                "Failed to start instance {name}: it has {} NICs, kvm takes at most {MAX_NICS}",
                runtime.nics.len()
            )));
        }
        // NIC parameters as the instance was started with (2.5.2's up_hvp).
        let mut up = inst.hvparams.clone();
        up.extend(runtime.hvparams.clone());
        let up = KvmParams::from_map(&up)?;
        let mut argv = runtime.argv.clone();
        let mut taps: Vec<(String, OwnedFd)> = Vec::new();
        if runtime.nics.is_empty() {
            argv.extend(["-net".to_string(), "none".to_string()]);
        } else {
            let paravirtual = up.nic_type == "paravirtual";
            let model = if paravirtual {
                "virtio-net-pci"
            } else {
                up.nic_type.as_str()
            };
            let extra = if paravirtual && up.vhost_net {
                ",vhost=on"
            } else {
                ""
            };
            for (seq, nic) in runtime.nics.iter().enumerate() {
                let spec = net::check_nic(seq, nic)?;
                let (tap, fd) = sys::open_tap(paravirtual).map_err(|e| {
                    HvError::Failed(format!("Failed to allocate a new TAP device: {e}"))
                })?;
                argv.push("-netdev".into());
                argv.push(format!(
                    "type=tap,id=netdev{seq},fd={}{extra}",
                    fd.as_raw_fd()
                ));
                argv.push("-device".into());
                argv.push(format!("{model},mac={},netdev=netdev{seq}", spec.mac));
                net::configure_nic(&self.paths, inst, seq, &spec, &tap)?;
                taps.push((tap, fd));
            }
        }
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| HvError::Failed("Empty KVM runtime".into()))?;
        let mut command = sys::command(program);
        command
            .args(args)
            .env("LC_ALL", "C")
            .current_dir("/")
            .stdin(Stdio::null());
        for (_, fd) in &taps {
            sys::keep_fd_on_exec(&mut command, fd.as_raw_fd());
        }
        let outcome = run_bounded(command, KVM_START_TIMEOUT, &self.base);
        let (fail, output) = outcome
            .map_err(|e| HvError::Failed(format!("Failed to start instance {name}: {e}")))?;
        if let Some(reason) = fail {
            return Err(HvError::Failed(format!(
                "Failed to start instance {name}: {reason} ({})",
                output.trim_end()
            )));
        }
        if self.process(name)?.is_none() {
            return Err(HvError::Failed(format!("Failed to start instance {name}")));
        }
        let dir = self.nic_dir(name);
        if !taps.is_empty() {
            ensure_dir(&dir)?;
        }
        for (seq, (tap, _)) in taps.iter().enumerate() {
            let meta = FileMeta::default();
            fsutil::write_atomic(&dir.join(seq.to_string()), tap.as_bytes(), &meta)
                .map_err(|e| HvError::Failed(format!("Failed to save tap name: {e}")))?;
        }
        // The taps stay open in kvm; our descriptors close here.
        drop(taps);
        Ok(())
    }

    /// Removes the files of a stopped instance (2.5.2's
    /// `_RemoveInstanceRuntimeFiles`).
    fn remove_runtime_files(&self, name: &str) -> Result<(), HvError> {
        let rm = |p: PathBuf| match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(HvError::Failed(format!(
                "Cannot remove {}: {e}",
                self.paths.to_wire(&p).display()
            ))),
        };
        rm(self.pid_file(name))?;
        rm(self.monitor_path(name))?;
        rm(self.serial_path(name))?;
        rm(self.runtime_path(name))?;
        rm(self.base.join("keymap").join(name))?;
        rm(self.base.join("uid").join(name))?;
        match std::fs::remove_dir_all(self.nic_dir(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(HvError::Failed(format!("Cannot remove the NIC files: {e}"))),
        }
    }

    /// Sends one command to the instance's monitor and returns what the
    /// monitor answered (up to the next prompt), all within
    /// [`MONITOR_TIMEOUT`].
    pub fn monitor_command(&self, name: &str, command: &str) -> Result<String, HvError> {
        check_name(name)?;
        self.monitor_exchange(name, command, self.monitor_timeout)
            .map_err(|e| monitor_failed(name, command, e))
    }

    /// [`Kvm::monitor_command`] with the I/O error (a `TimedOut` kind when
    /// the time ran out). The connection is bounded too: a kvm that no
    /// longer accepts (hung, or another client holds the monitor) fills
    /// the socket's tiny listen queue, after which a plain connect would
    /// wait for ever.
    fn monitor_exchange(
        &self,
        name: &str,
        command: &str,
        timeout: Duration,
    ) -> std::io::Result<String> {
        use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
        let deadline = Instant::now() + timeout;
        let left = || {
            deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| std::io::Error::from(TimedOut))
        };
        let mut s = sys::unix_connect_timeout(&self.monitor_path(name), timeout)?;
        s.set_write_timeout(Some(left()?))?;
        match s.write_all(format!("{command}\n").as_bytes()) {
            Err(e) if e.kind() == WouldBlock => return Err(TimedOut.into()),
            other => other?,
        }
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // The greeting ends with a prompt; the answer with the next one.
        while count_prompts(&out) < 2 && out.len() < MAX_MONITOR_OUTPUT {
            s.set_read_timeout(Some(left()?))?;
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n.min(MAX_MONITOR_OUTPUT - out.len())]),
                Err(e) if e.kind() == Interrupted => {}
                Err(e) if e.kind() == WouldBlock => return Err(TimedOut.into()),
                Err(e) => return Err(e),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

fn monitor_failed(name: &str, command: &str, e: std::io::Error) -> HvError {
    HvError::Failed(format!(
        "Failed to send command '{command}' to instance {name}: {e}"
    ))
}

/// Bytes of `/proc/<pid>/cmdline` read.
const MAX_STATE_BYTES: u64 = super::MAX_STATE_FILE;

fn count_prompts(out: &[u8]) -> usize {
    out.windows(7).filter(|w| w == b"(qemu) ").count()
}

/// The `-drive if=` value of a disk type.
fn if_name(disk_type: &str) -> &str {
    if disk_type == "paravirtual" {
        "virtio"
    } else {
        disk_type
    }
}

/// A path as one argument (no NUL byte).
fn path_arg(p: &Path) -> Result<String, HvError> {
    let s = p.to_string_lossy().into_owned();
    if s.contains('\0') || p.to_str().is_none() {
        return Err(HvError::Failed(format!(
            "Path '{}' cannot be passed to kvm",
            s.escape_debug()
        )));
    }
    Ok(s)
}

/// A path inside a kvm option list: no commas either.
fn option_path(p: &Path) -> Result<String, HvError> {
    let s = path_arg(p)?;
    if s.contains(',') {
        return Err(HvError::Failed(format!(
            "Path '{s}' contains a comma, which kvm would read as an option"
        )));
    }
    Ok(s)
}

/// A unix socket path for kvm: an option path of at most
/// [`MAX_SOCKET_PATH`] bytes.
fn socket_arg(p: &Path) -> Result<String, HvError> {
    let s = option_path(p)?;
    if s.len() > MAX_SOCKET_PATH {
        return Err(HvError::Failed(format!(
            "Socket path '{s}' is longer than {MAX_SOCKET_PATH} bytes"
        )));
    }
    Ok(s)
}

/// What the kvm command line of a process says.
#[derive(Debug, Default, PartialEq)]
struct CmdlineArgs {
    name: Option<String>,
    pidfile: Option<String>,
    memory: u64,
    vcpus: u64,
}

/// Reads `-name`, `-pidfile`, `-m` and `-smp` from a NUL-separated command
/// line (the last of each wins, as in 2.5.2's loop).
fn parse_cmdline(cmdline: &[u8]) -> CmdlineArgs {
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let mut out = CmdlineArgs::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-name" => out.name = it.next(),
            "-pidfile" => out.pidfile = it.next(),
            "-m" => out.memory = it.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "-smp" => out.vcpus = it.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            _ => {}
        }
    }
    out
}

/// Waits up to `timeout` (0: just looks) for the process of a pidfd to
/// exit; true once it has (a zombie counts as gone).
fn wait_exit(handle: &OwnedFd, timeout: Duration) -> Result<bool, HvError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [sys::poll_fd(handle.as_raw_fd(), sys::POLL_IN)];
        match sys::poll(&mut fds, Some(left)) {
            Ok(n) if n > 0 => return Ok(true),
            Ok(_) if left.is_zero() => return Ok(false),
            // Interrupted, or the timeout ran out: look again.
            Ok(_) => {}
            Err(e) => return Err(HvError::Failed(format!("Cannot watch a process: {e}"))),
        }
    }
}

/// 2.5.2's `KillProcess`: SIGTERM, wait up to [`KILL_TIMEOUT`], SIGKILL;
/// all through the pidfd, so a pid that changed hands meanwhile is never
/// signalled. Unlike 2.5.2, SIGCONT follows SIGTERM: a stopped kvm
/// (SIGSTOP, a debugger) would otherwise hold SIGTERM pending for the
/// whole wait.
fn kill_process(p: &Proc) -> Result<(), HvError> {
    let pid = p.pid;
    let send = |sig| match sys::pidfd_send_signal(&p.handle, sig) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        Err(e) => Err(HvError::Failed(format!("Cannot signal process {pid}: {e}"))),
    };
    send(libc::SIGTERM)?;
    send(libc::SIGCONT)?;
    if wait_exit(&p.handle, KILL_TIMEOUT)? {
        return Ok(());
    }
    log::warn!("Process {pid} did not stop on SIGTERM, sending SIGKILL");
    send(libc::SIGKILL)?;
    if wait_exit(&p.handle, KILL9_TIMEOUT)? {
        Ok(())
    } else {
        Err(HvError::Failed(format!("Process {pid} did not die")))
    }
}

/// 2.5.2's `_GetKVMVersion`: the version on the first line of `kvm
/// --help`; older than [`MIN_KVM_VERSION`] is refused.
fn kvm_version() -> Result<(u32, u32, u32), HvError> {
    let unable = || HvError::Failed("Unable to get KVM version".into());
    let r = crate::cmd::run(&[kvm_binary(), "--help"], KVM_HELP_TIMEOUT).map_err(|_| unable())?;
    if !r.ok() {
        return Err(unable());
    }
    let v = parse_version(r.output().lines().next().unwrap_or("")).ok_or_else(unable)?;
    if (v.0, v.1) < MIN_KVM_VERSION {
        return Err(HvError::Failed(format!(
            "KVM version {}.{}.{} is too old, at least {}.{} is needed",
            v.0, v.1, v.2, MIN_KVM_VERSION.0, MIN_KVM_VERSION.1
        )));
    }
    Ok(v)
}

/// The first `N.N[.N]` on a line (2.5.2's `\b(\d+)\.(\d+)(\.(\d+))?\b`).
fn parse_version(line: &str) -> Option<(u32, u32, u32)> {
    line.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find_map(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            let num = |s: &str| s.parse::<u32>().ok();
            match parts[..] {
                [a, b] => Some((num(a)?, num(b)?, 0)),
                [a, b, c] => Some((num(a)?, num(b)?, num(c)?)),
                _ => None,
            }
        })
}

static SCRATCH_SEQ: AtomicU64 = AtomicU64::new(0);

/// Runs a prepared command (stdin, environment and working directory set
/// by the caller) with stdout and stderr in an unlinked scratch file, and
/// kills it after `timeout`. Returns (2.5.2's fail_reason, output), or why
/// it could not run. The scratch file is made in `scratch_dir`, the kvm
/// run directory: in a world-writable one such as /tmp anybody could take
/// its predictable name first and so stop every instance from starting.
pub(crate) fn run_bounded(
    mut command: Command,
    timeout: Duration,
    scratch_dir: &Path,
) -> Result<(Option<String>, String), String> {
    let scratch = scratch_dir.join(format!(
        ".ganeti-hv-{}-{}.out",
        sys::getpid(),
        SCRATCH_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    let _ = std::fs::remove_file(&scratch);
    let out = file.try_clone().map_err(|e| e.to_string())?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let mut child = command
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok((
                    Some(format!(
                        "killed after the timeout of {}s",
                        timeout.as_secs()
                    )),
                    String::new(),
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let mut output = Vec::new();
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(0))
        .and_then(|_| (&mut file).take(MAX_OUTPUT).read_to_end(&mut output))
        .map_err(|e| e.to_string())?;
    use std::os::unix::process::ExitStatusExt;
    let fail = match (status.code(), status.signal()) {
        (Some(0), _) => None,
        (Some(code), _) => Some(format!("exited with exit code {code}")),
        (None, Some(sig)) => Some(format!("terminated by signal {sig}")),
        (None, None) => Some("terminated for an unknown reason".into()),
    };
    Ok((fail, String::from_utf8_lossy(&output).into_owned()))
}

impl Hypervisor for Kvm {
    fn list_instances(&self) -> Result<Vec<String>, HvError> {
        dir_entries(&self.base.join("pid"))?
            .into_iter()
            .filter(|n| check_name(n).is_ok())
            .filter_map(|n| match self.process(&n) {
                Ok(Some(_)) => Some(Ok(n)),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            })
            .collect()
    }

    fn instance_info(&self, name: &str) -> Result<Option<InstanceInfo>, HvError> {
        check_name(name)?;
        Ok(self.process(name)?.map(|p| InstanceInfo {
            name: name.to_string(),
            id: Value::from(p.pid),
            memory: Value::from(p.memory),
            vcpus: Value::from(p.vcpus),
            state: "---b-".into(),
            time: Value::from("0"),
        }))
    }

    fn all_instances_info(&self) -> Result<Vec<InstanceInfo>, HvError> {
        let mut out = Vec::new();
        for name in dir_entries(&self.base.join("pid"))? {
            if let Ok(Some(info)) = self.instance_info(&name) {
                out.push(info);
            }
        }
        Ok(out)
    }

    fn start(
        &self,
        inst: &Instance,
        block_devices: &[BlockDevice],
        paused: bool,
    ) -> Result<(), HvError> {
        check_name(&inst.name)?;
        self.check_down(&inst.name)?;
        let runtime = self.generate_runtime(inst, block_devices, paused)?;
        self.save_runtime(&inst.name, &runtime)?;
        let result = self.execute_runtime(inst, &runtime);
        if result.is_err() && matches!(self.process(&inst.name), Ok(None)) {
            let _ = self.remove_runtime_files(&inst.name);
        }
        result
    }

    fn stop(&self, inst: &Instance, force: bool, _retry: bool) -> Result<(), HvError> {
        let name = &inst.name;
        check_name(name)?;
        // A missing or malformed acpi parameter: try ACPI first.
        let acpi = inst
            .hvparams
            .get("acpi")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        match self.process(name)? {
            Some(p) if force || !acpi => kill_process(&p),
            Some(_) => match self.monitor_exchange(
                name,
                POWERDOWN,
                self.monitor_timeout.min(POWERDOWN_TIMEOUT),
            ) {
                Ok(_) => Ok(()),
                // A kvm too busy or hung to answer: the request stays
                // asked, and the shutdown goes on to its forced stop at
                // the timeout (2.5.2's socat gave up waiting for the answer
                // after half a second and reported success).
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    log::warn!("Instance {name} did not answer '{POWERDOWN}' in time");
                    Ok(())
                }
                Err(e) => Err(monitor_failed(name, POWERDOWN, e)),
            },
            None => Ok(()),
        }
    }

    fn cleanup(&self, name: &str) -> Result<(), HvError> {
        check_name(name)?;
        if self.process(name)?.is_some() {
            return Err(HvError::Failed("Cannot cleanup a live instance".into()));
        }
        self.remove_runtime_files(name)
    }

    /// Stops kvm (2.5.2 ends up killing it) and starts it again from the
    /// saved runtime.
    fn reboot(&self, inst: &Instance) -> Result<(), HvError> {
        let name = &inst.name;
        check_name(name)?;
        let Some(p) = self.process(name)? else {
            return Err(HvError::Failed(format!(
                "Failed to reboot instance {name}: not running"
            )));
        };
        let runtime = self.load_runtime(name)?;
        kill_process(&p)?;
        self.save_runtime(name, &runtime)?;
        self.execute_runtime(inst, &runtime)
    }

    fn node_info(&self) -> Result<NodeInfo, HvError> {
        linux_node_info()
    }

    fn verify(&self) -> Option<String> {
        let kvm = kvm_binary();
        (!Path::new(kvm).exists()).then(|| format!("The kvm binary ('{kvm}') does not exist."))
    }

    fn validate_params(&self, params: &Map<String, Value>) -> Result<(), HvError> {
        KvmParams::from_map(params)?.validate(&self.paths)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::scratch;
    use super::super::*;
    use super::*;

    #[test]
    fn scratch_files_stay_out_of_the_temporary_directory() {
        let (root, paths) = scratch("kvmscratch");
        let kvm = Kvm::open(&paths).unwrap();
        // Somebody took the names in the shared temporary directory.
        let next = SCRATCH_SEQ.load(Ordering::Relaxed);
        let taken: Vec<PathBuf> = (next..next + 1000)
            .map(|seq| std::env::temp_dir().join(format!("ganeti-hv-{}-{seq}.out", sys::getpid())))
            .collect();
        for path in &taken {
            std::fs::write(path, "").unwrap();
        }
        let mut command = sys::command("sh");
        command.args(["-c", "echo out; echo err >&2; exit 3"]);
        let outcome = run_bounded(command, Duration::from_secs(60), &kvm.base);
        for path in &taken {
            std::fs::remove_file(path).unwrap();
        }
        let (fail, output) = outcome.unwrap();
        assert_eq!(fail.as_deref(), Some("exited with exit code 3"));
        assert_eq!(output, "out\nerr\n");
        // Nothing is left in the run directory either.
        assert!(!std::fs::read_dir(&kvm.base).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".out")));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn versions_are_found_on_the_help_line() {
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)"),
            Some((10, 0, 2))
        );
        assert_eq!(
            parse_version("QEMU PC emulator version 0.12.5 (qemu-kvm-0.12.5), Copyright"),
            Some((0, 12, 5))
        );
        assert_eq!(parse_version("kvm version 1.1"), Some((1, 1, 0)));
        assert_eq!(parse_version("no version here"), None);
    }

    #[test]
    fn cmdline_fields() {
        let args = parse_cmdline(
            b"/usr/bin/kvm\0-name\0a\0-m\x00128\0-smp\x002\0-pidfile\0/p/a\0-name\0b\0",
        );
        assert_eq!(
            args,
            CmdlineArgs {
                name: Some("b".into()),
                pidfile: Some("/p/a".into()),
                memory: 128,
                vcpus: 2
            }
        );
        assert_eq!(parse_cmdline(b"/usr/bin/kvm\0-name").name, None);
    }

    #[test]
    fn socket_paths_at_the_limit() {
        let ok = format!("/{}", "s".repeat(MAX_SOCKET_PATH - 1));
        assert_eq!(socket_arg(Path::new(&ok)).unwrap(), ok);
        let long = format!("/{}", "s".repeat(MAX_SOCKET_PATH));
        let e = socket_arg(Path::new(&long)).unwrap_err().to_string();
        assert!(e.contains("is longer than 107 bytes"), "{e}");
        assert!(option_path(Path::new("/a,b")).is_err());
    }

    #[test]
    fn monitor_output_is_bounded() {
        // A fake monitor that never prompts twice and talks a lot.
        let (root, paths) = scratch("kvmmon");
        let kvm = Kvm::open(&paths).unwrap();
        let sock = kvm.monitor_path("inst1");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let talker = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // Take the command first, as qemu does.
            let mut byte = [0u8; 1];
            while s.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {}
            let chunk = vec![b'x'; 4096];
            let mut sent = 0;
            while sent <= MAX_MONITOR_OUTPUT + 4096 {
                if s.write_all(&chunk).is_err() {
                    break;
                }
                sent += chunk.len();
            }
        });
        let out = kvm.monitor_command("inst1", "info status").unwrap();
        assert_eq!(out.len(), MAX_MONITOR_OUTPUT);
        talker.join().unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn monitor_that_accepts_nothing_is_given_up_in_time() {
        // A hung kvm: its monitor socket is bound and listening (with kvm's
        // tiny queue) but nobody accepts; earlier, timed-out commands
        // still fill the queue.
        let (root, paths) = scratch("kvmhung");
        let limit = Duration::from_millis(500);
        let mut kvm = Kvm::open(&paths).unwrap();
        kvm.monitor_timeout = limit;
        let sock = kvm.monitor_path("inst1");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        sys::listen(&listener, 0).unwrap();
        let queued = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let started = Instant::now();
        std::thread::spawn(move || {
            let _ = tx.send(kvm.monitor_command("inst1", "system_powerdown"));
        });
        let answer = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the monitor command hangs");
        let e = answer.unwrap_err().to_string();
        assert!(
            e.starts_with("Failed to send command 'system_powerdown' to instance inst1: "),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        // A listener that takes the connection but never answers: also
        // bounded, by the same limit.
        drop((queued, listener));
        std::fs::remove_file(&sock).unwrap();
        let mut kvm = Kvm::open(&paths).unwrap();
        kvm.monitor_timeout = limit;
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let silent = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
        let started = Instant::now();
        let e = kvm
            .monitor_command("inst1", "info status")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("timed out"), "{e}");
        assert!(started.elapsed() >= limit && started.elapsed() < Duration::from_secs(10));
        drop(silent.join().unwrap());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn soft_stop_of_a_kvm_that_does_not_answer_is_no_error() {
        use std::os::unix::process::ExitStatusExt;
        let (root, paths) = scratch("kvmsoft");
        let mut kvm = Kvm::open(&paths).unwrap();
        kvm.monitor_timeout = Duration::from_millis(300);
        let mut child = fake_kvm(&kvm, "inst1");
        let inst: Instance = serde_json::from_value(
            serde_json::json!({"name": "inst1", "hvparams": {"acpi": true}}),
        )
        .unwrap();
        // No monitor socket at all: an error, as 2.5.2's socat failed.
        let e = kvm.stop(&inst, false, false).unwrap_err().to_string();
        assert!(
            e.starts_with("Failed to send command 'system_powerdown' to instance inst1: "),
            "{e}"
        );
        // A monitor that never answers, its queue full: the request counts
        // as made, so a shutdown goes on to its forced stop.
        let sock = kvm.monitor_path("inst1");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        sys::listen(&listener, 0).unwrap();
        let _queued = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        let started = Instant::now();
        kvm.stop(&inst, false, false).unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(kvm.process("inst1").unwrap().is_some());
        // With the real limits, the soft stop waits POWERDOWN_TIMEOUT, not
        // the whole MONITOR_TIMEOUT.
        let started = Instant::now();
        Kvm::open(&paths)
            .unwrap()
            .stop(&inst, false, false)
            .unwrap();
        let took = started.elapsed();
        assert!(
            took >= POWERDOWN_TIMEOUT && took < MONITOR_TIMEOUT,
            "{took:?}"
        );
        // The forced stop ends it.
        kvm.stop(&inst, true, false).unwrap();
        assert!(child.wait().unwrap().signal().is_some());
        assert!(kvm.process("inst1").unwrap().is_none());
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A stand-in kvm of instance `name`: a shell waiting on its stdin,
    /// whose command line carries `-name <name>` and the instance's
    /// `-pidfile`, and whose pid is in that pid file.
    fn fake_kvm(kvm: &Kvm, name: &str) -> std::process::Child {
        let own = kvm.pid_file(name).to_string_lossy().into_owned();
        let child = std::process::Command::new("sh")
            .args(["-c", "read x", "-name", name, "-m", "64", "-pidfile", &own])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let needle = format!("{own}\0");
        let started = Instant::now();
        while !std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.ends_with(needle.as_bytes()))
        {
            assert!(started.elapsed() < Duration::from_secs(60), "no exec");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::write(kvm.pid_file(name), pid.to_string()).unwrap();
        child
    }

    /// A `sleep` given exactly `pid` (through `ns_last_pid`); `None` where
    /// that is not allowed or other processes keep taking the pid first.
    fn sleep_with_pid(pid: i32) -> Option<std::process::Child> {
        for _ in 0..100 {
            std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).ok()?;
            let mut c = std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap();
            if c.id() as i32 == pid {
                return Some(c);
            }
            c.kill().unwrap();
            c.wait().unwrap();
        }
        None
    }

    #[test]
    fn kills_go_to_the_process_never_to_its_pid() {
        use std::os::unix::process::ExitStatusExt;
        let (root, paths) = scratch("kvmkill");
        let kvm = Kvm::open(&paths).unwrap();
        // A kvm that stops on SIGTERM is stopped by it.
        let mut child = fake_kvm(&kvm, "inst1");
        let p = kvm
            .process("inst1")
            .unwrap()
            .expect("the stand-in is found");
        assert_eq!(p.pid, child.id() as i32);
        let started = Instant::now();
        kill_process(&p).unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        // Not reaped yet: a zombie counts as gone.
        assert!(kvm.process("inst1").unwrap().is_none());
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
        // A kvm found alive exits, and its pid goes to another process
        // before the kill (or during its wait): that one is left alone.
        let mut child = fake_kvm(&kvm, "inst1");
        let p = kvm.process("inst1").unwrap().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        match sleep_with_pid(p.pid) {
            Some(mut other) => {
                kill_process(&p).unwrap();
                // A signal sent to it would end it within this second.
                let mut signalled = || other.try_wait().unwrap().is_some();
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(1) && !signalled() {
                    std::thread::sleep(Duration::from_millis(10));
                }
                assert!(!signalled(), "the new owner of the pid was signalled");
                assert!(kvm.process("inst1").unwrap().is_none());
                other.kill().unwrap();
                other.wait().unwrap();
            }
            None => eprintln!("cannot hand pid {} to another process here", p.pid),
        }
        // A dead or foreign pid in the pid file is no instance.
        std::fs::write(kvm.pid_file("inst1"), "1").unwrap();
        assert!(kvm.process("inst1").unwrap().is_none());
        std::fs::write(kvm.pid_file("inst1"), "-5").unwrap();
        assert!(kvm.process("inst1").unwrap().is_none());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn lists_only_processes_with_its_name_and_pid_file() {
        let (root, paths) = scratch("kvm");
        assert!(list_instances(&paths, "kvm").unwrap().is_empty());
        let base = paths.to_local("/var/run/ganeti/kvm-hypervisor");
        for sub in KVM_SUBDIRS {
            assert!(base.join(sub).is_dir(), "{sub}");
        }
        let pids = base.join("pid");
        // A process whose command line carries kvm's -name and -pidfile.
        let mut child = fake_kvm(&Kvm::open(&paths).unwrap(), "inst1");
        let pid = child.id().to_string();
        std::fs::write(pids.join("other"), &pid).unwrap(); // name mismatch
        std::fs::write(pids.join("garbage"), "x").unwrap();
        std::fs::write(pids.join("dead"), "999999999").unwrap();
        assert_eq!(list_instances(&paths, "kvm").unwrap(), ["inst1"]);
        let hv = get(&paths, "kvm").unwrap();
        let info = hv.instance_info("inst1").unwrap().unwrap();
        assert_eq!(info.memory, Value::from(64));
        // Another root's pid file with the same instance name does not match.
        let (root2, paths2) = scratch("kvm2");
        let pids2 = paths2.to_local("/var/run/ganeti/kvm-hypervisor/pid");
        Kvm::open(&paths2).unwrap();
        std::fs::write(pids2.join("inst1"), &pid).unwrap();
        assert!(list_instances(&paths2, "kvm").unwrap().is_empty());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(list_instances(&paths, "kvm").unwrap().is_empty());
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&root2).unwrap();
    }
}
