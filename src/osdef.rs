//! OS definitions (Ganeti 2.5.2's ganeti-os-interface(7), OS API 10, 15
//! and 20): finding and checking a definition under the OS search path,
//! the environment its scripts get, and running a script.
//!
//! Supported, as 2.5.2's `backend.py` (`_TryOSFromDisk`, `DiagnoseOS`,
//! `OSCoreEnv`, `OSEnvironment`, `_InstanceLogName`, `utils.TailFile`,
//! `utils.SafeEncode`): the name rule `^[a-zA-Z0-9_-]+$`, the checks and
//! their order (Python 2's dict order, so the first problem reported is
//! the one 2.5.2 reports), every message word for word, `variants.list`
//! from API 15 and `parameters.list` from API 20, the variables of the
//! script environment (Python's `str()` of each value, floats with 12
//! significant digits) and nothing else (a clean environment), the log
//! file names under `/var/log/ganeti/os/` (local time), and the log tail
//! in failure messages (20 lines from the last 4 KiB, escaped).
//!
//! The search path is the single directory `/srv/ganeti/os` (under
//! `GANETI_ROOTDIR`). Paths in results and messages are wire paths.
//!
//! Differences from 2.5.2, on the safe side:
//! * The text files of a definition are read up to [`MAX_OS_FILE`] bytes;
//!   a longer one is reported as a read error ("file is larger than ...").
//!   An API version beyond a 64-bit integer counts as not an integer.
//! * Every script run has a timeout ([`CREATE_TIMEOUT`], [`RENAME_TIMEOUT`],
//!   [`VERIFY_TIMEOUT`], the master's own RPC timeouts): the script's
//!   process group gets SIGTERM, and SIGKILL once the script has exited or
//!   [`CHILD_LINGER`] later; the failure reads as 2.5.2's `RunCmd` timeout
//!   messages. 2.5.2 waited for ever. A script that outlived its timeout
//!   failed even if it then exited 0. Scripts run through
//!   [`crate::proc`], whose first doc comment has the details.
//! * The names that end up in a log file name (instance name, old name,
//!   the OS name with its variant) may not be empty, contain `/`, `..` or
//!   NUL, and the log file name may not exceed [`MAX_LOG_NAME`] bytes;
//!   environment names may not contain `=` or NUL, values no NUL. Such
//!   requests are refused before anything runs or is written (2.5.2 let
//!   `../` in a variant write a log file outside the log directory).
//! * `os_diagnose` lists the entries of the search path sorted by name
//!   (2.5.2: directory order). Sets in messages (unknown checks,
//!   unsupported parameters) are listed sorted (2.5.2: hash order).
//! * A script must start with `#!` or be an ELF binary; anything else
//!   fails with "Exec format error" as in 2.5.2 (the C library would
//!   otherwise hand it to /bin/sh). Other formats the kernel may know
//!   through binfmt_misc are refused.
//! * A value that 2.5.2 would have put into the environment as None (a NIC
//!   without MAC, a disk without mode, an instance without hypervisor) is
//!   refused with a message instead of a Python exception.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::hooks::{is_plugin_name, py_float, py_repr_str, py_str, py_strip, safe_encode};
use crate::objects::{Instance, LD_BLOCKDEV, LD_DRBD8, LD_FILE, LD_LV};
use crate::paths::{Paths, OS_SEARCH_PATH};
use crate::{proc, sys};

/// The OS API versions this Ganeti speaks.
pub const OS_API_V10: i64 = 10;
pub const OS_API_V15: i64 = 15;
pub const OS_API_V20: i64 = 20;
pub const OS_API_VERSIONS: [i64; 3] = [OS_API_V10, OS_API_V15, OS_API_V20];
/// How 2.5.2 prints `OS_API_VERSIONS` in messages (Python 2's set order).
const OS_API_VERSIONS_REPR: &str = "frozenset([10, 20, 15])";

/// The files of a definition.
pub const OS_API_FILE: &str = "ganeti_api_version";
pub const OS_VARIANTS_FILE: &str = "variants.list";
pub const OS_PARAMETERS_FILE: &str = "parameters.list";
pub const SCRIPT_CREATE: &str = "create";
pub const SCRIPT_IMPORT: &str = "import";
pub const SCRIPT_EXPORT: &str = "export";
pub const SCRIPT_RENAME: &str = "rename";
pub const SCRIPT_VERIFY: &str = "verify";
const SCRIPTS: [&str; 5] = [
    SCRIPT_CREATE,
    SCRIPT_IMPORT,
    SCRIPT_EXPORT,
    SCRIPT_RENAME,
    SCRIPT_VERIFY,
];

/// The checks `os_validate` knows (`OS_VALIDATE_CALLS`).
pub const OS_VALIDATE_PARAMETERS: &str = "parameters";
/// Separates an OS name from its variant: `debootstrap+squeeze`.
pub const VARIANT_DELIM: char = '+';
/// `PATH` of every script (`HOOKS_PATH`).
pub const SCRIPT_PATH: &str = "/sbin:/bin:/usr/sbin:/usr/bin";

/// Largest `ganeti_api_version`, `variants.list` or `parameters.list` read.
pub const MAX_OS_FILE: u64 = 64 * 1024;
/// Longest log file name (the file system's `NAME_MAX`).
pub const MAX_LOG_NAME: usize = 255;
/// `TailFile`: the last lines of the log quoted in a failure, read from
/// its last bytes.
pub const TAIL_LINES: usize = 20;
pub const TAIL_BYTES: u64 = 4096;
/// Most output kept from each of the verify script's stdout and stderr.
pub const MAX_VERIFY_OUTPUT: usize = 64 * 1024;

/// Script timeouts: the master's RPC timeouts of the calls that run them
/// (`instance_os_add` 1 day, `instance_run_rename` 1 hour, `os_validate`
/// 5 minutes), after which no master waits for the answer.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(86400);
pub const RENAME_TIMEOUT: Duration = Duration::from_secs(3600);
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(300);
/// Between SIGTERM and SIGKILL after a timeout (`CHILD_LINGER_TIMEOUT`).
pub const CHILD_LINGER: Duration = proc::CHILD_LINGER_TIMEOUT;

/// Why a definition is not valid; `Display` is 2.5.2's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OsError {
    NotFound {
        name: String,
    },
    ApiFileMissing {
        dir: String,
        reason: String,
    },
    ApiFileNotRegular {
        dir: String,
    },
    ApiFileRead {
        file: String,
        reason: String,
    },
    /// Python's `ValueError` text, e.g. `invalid literal for int() with
    /// base 10: 'x'`.
    ApiNotInteger {
        detail: String,
    },
    ApiMismatch {
        dir: String,
        found: Vec<i64>,
    },
    FileMissing {
        file: &'static str,
        dir: String,
        reason: String,
    },
    FileNotRegular {
        file: &'static str,
        dir: String,
    },
    NotExecutable {
        file: &'static str,
        dir: String,
    },
    VariantsRead {
        file: String,
        reason: String,
    },
    ParametersRead {
        file: String,
        reason: String,
    },
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OsError::NotFound { name } => {
                write!(f, "Directory for OS {name} not found in search path")
            }
            OsError::ApiFileMissing { dir, reason } => write!(
                f,
                "Required file '{OS_API_FILE}' not found under path {dir}: {reason}"
            ),
            OsError::ApiFileNotRegular { dir } => {
                write!(f, "File '{OS_API_FILE}' in {dir} is not a regular file")
            }
            OsError::ApiFileRead { file, reason } => write!(
                f,
                "Error while reading the API version file at {file}: {reason}"
            ),
            OsError::ApiNotInteger { detail } => {
                write!(f, "API version(s) can't be converted to integer: {detail}")
            }
            OsError::ApiMismatch { dir, found } => {
                let found: Vec<String> = found.iter().map(i64::to_string).collect();
                write!(
                    f,
                    "API version mismatch for path '{dir}': found [{}], want {OS_API_VERSIONS_REPR}.",
                    found.join(", ")
                )
            }
            OsError::FileMissing { file, dir, reason } => {
                write!(f, "File '{file}' under path '{dir}' is missing ({reason})")
            }
            OsError::FileNotRegular { file, dir } => {
                write!(f, "File '{file}' under path '{dir}' is not a regular file")
            }
            OsError::NotExecutable { file, dir } => {
                write!(f, "File '{file}' under path '{dir}' is not executable")
            }
            OsError::VariantsRead { file, reason } => write!(
                f,
                "Error while reading the OS variants file at {file}: {reason}"
            ),
            OsError::ParametersRead { file, reason } => write!(
                f,
                "Error while reading the OS parameters file at {file}: {reason}"
            ),
        }
    }
}

/// A valid OS definition (2.5.2 `objects.OS`).
#[derive(Debug, Clone, PartialEq)]
pub struct OsDef {
    /// The name without variant.
    pub name: String,
    /// The directory, local (under the root) and as on the wire.
    pub dir: PathBuf,
    pub wire_dir: String,
    pub api_versions: Vec<i64>,
    pub variants: Vec<String>,
    /// `parameters.list`, each line split once on white space (so one or
    /// two entries; none for a blank line).
    pub parameters: Vec<Vec<String>>,
}

impl OsDef {
    /// The highest API version the definition declares.
    pub fn max_api(&self) -> i64 {
        self.api_versions.iter().copied().max().unwrap_or(0)
    }

    /// The highest version the definition and Ganeti share.
    pub fn api_version(&self) -> i64 {
        self.api_versions
            .iter()
            .copied()
            .filter(|v| OS_API_VERSIONS.contains(v))
            .max()
            .unwrap_or(0)
    }

    /// Whether the definition has a `verify` script (API 20 and up).
    pub fn has_verify(&self) -> bool {
        self.max_api() >= OS_API_V20
    }

    /// The local path of a script.
    pub fn script(&self, script: &str) -> PathBuf {
        self.dir.join(script)
    }

    /// The names declared in `parameters.list`.
    pub fn parameter_names(&self) -> impl Iterator<Item = &str> {
        self.parameters
            .iter()
            .filter_map(|p| p.first().map(String::as_str))
    }

    /// The `objects.OS` dict of `os_get` (no `verify_script` below API 20).
    pub fn to_value(&self) -> Value {
        let script = |s: &str| Value::from(format!("{}/{s}", self.wire_dir));
        let mut m = Map::new();
        m.insert("name".into(), Value::from(self.name.clone()));
        m.insert("path".into(), Value::from(self.wire_dir.clone()));
        m.insert(
            "api_versions".into(),
            Value::from(self.api_versions.clone()),
        );
        m.insert("create_script".into(), script(SCRIPT_CREATE));
        m.insert("export_script".into(), script(SCRIPT_EXPORT));
        m.insert("import_script".into(), script(SCRIPT_IMPORT));
        m.insert("rename_script".into(), script(SCRIPT_RENAME));
        if self.has_verify() {
            m.insert("verify_script".into(), script(SCRIPT_VERIFY));
        }
        m.insert(
            "supported_variants".into(),
            Value::from(self.variants.clone()),
        );
        m.insert(
            "supported_parameters".into(),
            Value::from(self.parameters.clone()),
        );
        Value::Object(m)
    }
}

/// `objects.OS.SplitNameVariant`: `("debootstrap", "squeeze")` for
/// `debootstrap+squeeze`, an empty variant when there is none.
pub fn split_name_variant(name: &str) -> (&str, &str) {
    name.split_once(VARIANT_DELIM).unwrap_or((name, ""))
}

/// The search path: (local directory, wire directory) pairs.
fn search_path(paths: &Paths) -> Vec<(PathBuf, String)> {
    vec![(paths.os_search_path(), OS_SEARCH_PATH.to_string())]
}

/// 2.5.2's `OSFromDisk`: the definition for `name` (a variant after `+`
/// is ignored), searched in the search path.
pub fn find(paths: &Paths, name: &str) -> Result<OsDef, OsError> {
    let (name, _) = split_name_variant(name);
    try_from_disk(name, &search_path(paths))
}

/// 2.5.2's `_TryOSFromDisk` over the given (local, wire) directories.
fn try_from_disk(name: &str, dirs: &[(PathBuf, String)]) -> Result<OsDef, OsError> {
    let not_found = || OsError::NotFound { name: name.into() };
    if !is_plugin_name(name) {
        return Err(not_found());
    }
    let (dir, wire_dir) = dirs
        .iter()
        .map(|(local, wire)| (local.join(name), format!("{wire}/{name}")))
        .find(|(local, _)| local.is_dir())
        .ok_or_else(not_found)?;

    let api_versions = api_versions(&dir, &wire_dir)?;
    if !api_versions.iter().any(|v| OS_API_VERSIONS.contains(v)) {
        return Err(OsError::ApiMismatch {
            dir: wire_dir,
            found: api_versions,
        });
    }
    let max = api_versions.iter().copied().max().unwrap_or(0);
    let mut present = BTreeSet::new();
    for &(file, required) in files_to_check(max) {
        let meta = match std::fs::metadata(dir.join(file)) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !required => continue,
            Err(e) => {
                return Err(OsError::FileMissing {
                    file,
                    dir: wire_dir,
                    reason: errno_or_str(&e),
                })
            }
        };
        if !meta.is_file() {
            return Err(OsError::FileNotRegular {
                file,
                dir: wire_dir,
            });
        }
        if SCRIPTS.contains(&file) && meta.permissions().mode() & 0o100 == 0 {
            return Err(OsError::NotExecutable {
                file,
                dir: wire_dir,
            });
        }
        present.insert(file);
    }

    let mut variants = Vec::new();
    if present.contains(OS_VARIANTS_FILE) {
        match read_small(&dir.join(OS_VARIANTS_FILE)) {
            Ok(data) => variants = split_lines(&data).into_iter().map(lossy).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(OsError::VariantsRead {
                    file: format!("{wire_dir}/{OS_VARIANTS_FILE}"),
                    reason: errno_or_str(&e),
                })
            }
        }
    }
    let mut parameters = Vec::new();
    if present.contains(OS_PARAMETERS_FILE) {
        let data =
            read_small(&dir.join(OS_PARAMETERS_FILE)).map_err(|e| OsError::ParametersRead {
                file: format!("{wire_dir}/{OS_PARAMETERS_FILE}"),
                reason: errno_or_str(&e),
            })?;
        parameters = split_lines(&data)
            .into_iter()
            .map(|l| split_once_ws(l).into_iter().map(lossy).collect())
            .collect();
    }
    Ok(OsDef {
        name: name.into(),
        dir,
        wire_dir,
        api_versions,
        variants,
        parameters,
    })
}

/// The files `_TryOSFromDisk` checks for a highest API version, in the
/// order 2.5.2 checks them (its dict's order), with "required".
fn files_to_check(max_api: i64) -> &'static [(&'static str, bool)] {
    const V10: &[(&str, bool)] = &[
        (SCRIPT_RENAME, true),
        (SCRIPT_IMPORT, true),
        (SCRIPT_CREATE, true),
        (SCRIPT_EXPORT, true),
    ];
    const V15: &[(&str, bool)] = &[
        (SCRIPT_RENAME, true),
        (SCRIPT_CREATE, true),
        (OS_VARIANTS_FILE, false),
        (SCRIPT_EXPORT, true),
        (SCRIPT_IMPORT, true),
    ];
    const V20: &[(&str, bool)] = &[
        (SCRIPT_RENAME, true),
        (SCRIPT_VERIFY, true),
        (SCRIPT_CREATE, true),
        (OS_VARIANTS_FILE, false),
        (OS_PARAMETERS_FILE, true),
        (SCRIPT_EXPORT, true),
        (SCRIPT_IMPORT, true),
    ];
    if max_api >= OS_API_V20 {
        V20
    } else if max_api >= OS_API_V15 {
        V15
    } else {
        V10
    }
}

/// `_OSOndiskAPIVersion`: the versions in `ganeti_api_version`.
fn api_versions(dir: &Path, wire_dir: &str) -> Result<Vec<i64>, OsError> {
    let file = dir.join(OS_API_FILE);
    let meta = std::fs::metadata(&file).map_err(|e| OsError::ApiFileMissing {
        dir: wire_dir.into(),
        reason: errno_or_str(&e),
    })?;
    if !meta.is_file() {
        return Err(OsError::ApiFileNotRegular {
            dir: wire_dir.into(),
        });
    }
    let data = read_small(&file).map_err(|e| OsError::ApiFileRead {
        file: format!("{wire_dir}/{OS_API_FILE}"),
        reason: errno_or_str(&e),
    })?;
    split_lines(&data)
        .into_iter()
        .map(|line| {
            let text = py_strip(line);
            // Python quotes at most the first 200 bytes of the literal.
            py_int(text).ok_or_else(|| OsError::ApiNotInteger {
                detail: format!(
                    "invalid literal for int() with base 10: {}",
                    py_repr_bytes(&text[..text.len().min(200)])
                ),
            })
        })
        .collect()
}

/// Reads a small text file of a definition (non-blocking open, so a FIFO
/// put there meanwhile cannot hang the caller), at most [`MAX_OS_FILE`].
fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    let f = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let mut data = Vec::new();
    f.take(MAX_OS_FILE + 1).read_to_end(&mut data)?;
    if data.len() as u64 > MAX_OS_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("file is larger than {MAX_OS_FILE} bytes"),
        ));
    }
    Ok(data)
}

/// `_ErrnoOrStr`: the errno's symbolic name, else the error's text.
fn errno_or_str(e: &io::Error) -> String {
    match e.raw_os_error().and_then(errno_name) {
        Some(name) => name.into(),
        None => e.to_string(),
    }
}

/// Python's `errno.errorcode` for the errors a stat or read can give.
fn errno_name(code: i32) -> Option<&'static str> {
    Some(match code {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::EFBIG => "EFBIG",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ELOOP => "ELOOP",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::ESTALE => "ESTALE",
        libc::EINTR => "EINTR",
        libc::ETXTBSY => "ETXTBSY",
        _ => return None,
    })
}

/// Python 2's `str.splitlines()`: lines end at `\n`, `\r` or `\r\n`; no
/// empty last line.
fn split_lines(data: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\n' => {
                lines.push(&data[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&data[start..i]);
                if data.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < data.len() {
        lines.push(&data[start..]);
    }
    lines
}

fn is_py_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Python's `str.split(None, 1)`.
fn split_once_ws(s: &[u8]) -> Vec<&[u8]> {
    let start = s.iter().position(|&b| !is_py_space(b)).unwrap_or(s.len());
    let s = &s[start..];
    if s.is_empty() {
        return Vec::new();
    }
    let end = s.iter().position(|&b| is_py_space(b)).unwrap_or(s.len());
    let rest = &s[end..];
    let rest_start = rest
        .iter()
        .position(|&b| !is_py_space(b))
        .unwrap_or(rest.len());
    let rest = &rest[rest_start..];
    if rest.is_empty() {
        vec![&s[..end]]
    } else {
        vec![&s[..end], rest]
    }
}

/// Python 2's `int(s)` in base 10 for an already stripped string: an
/// optional sign and decimal digits.
fn py_int(s: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(s).ok()?;
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Python 2's `repr()` of a byte string.
fn py_repr_bytes(s: &[u8]) -> String {
    let quote = if s.contains(&b'\'') && !s.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(quote);
    for &b in s {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if char::from(b) == quote => {
                out.push('\\');
                out.push(quote);
            }
            32..=126 => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote);
    out
}

/// `DiagnoseOS`: one `[name, path, status, diagnose, variants, parameters,
/// api_versions]` for every visible entry of the search path.
pub fn diagnose(paths: &Paths) -> Vec<Value> {
    let dirs = search_path(paths);
    let mut result = Vec::new();
    for (local, wire) in &dirs {
        if !local.is_dir() {
            continue;
        }
        let mut names = match visible_names(local) {
            Ok(n) => n,
            Err(e) => {
                log::error!("Can't list the OS directory {wire}: {e}");
                break;
            }
        };
        names.sort();
        for name in names {
            let here = [(local.clone(), wire.clone())];
            let row = match try_from_disk(&name, &here) {
                Ok(os) => vec![
                    Value::from(name.clone()),
                    Value::from(format!("{wire}/{name}")),
                    Value::Bool(true),
                    Value::from(""),
                    Value::from(os.variants),
                    Value::from(os.parameters),
                    Value::from(os.api_versions),
                ],
                Err(e) => vec![
                    Value::from(name.clone()),
                    Value::from(format!("{wire}/{name}")),
                    Value::Bool(false),
                    Value::from(e.to_string()),
                    Value::Array(Vec::new()),
                    Value::Array(Vec::new()),
                    Value::Array(Vec::new()),
                ],
            };
            result.push(Value::Array(row));
        }
    }
    result
}

/// `ListVisibleFiles`: the names in `dir` not starting with a dot.
fn visible_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    Ok(names)
}

/// A script's environment: exactly these variables.
pub type Env = BTreeMap<String, String>;

/// `OSCoreEnv`: the variables of every script (and all of `verify`'s).
/// `full_name` is the OS name as the instance has it, with its variant.
pub fn core_env(full_name: &str, os: &OsDef, osparams: &Map<String, Value>, debug: i64) -> Env {
    let api = os.api_version();
    let mut env = Env::new();
    env.insert("OS_API_VERSION".into(), api.to_string());
    env.insert("OS_NAME".into(), os.name.clone());
    env.insert("DEBUG_LEVEL".into(), debug.to_string());
    let variant = if api >= OS_API_V15 && !os.variants.is_empty() {
        match split_name_variant(full_name).1 {
            "" => os.variants[0].clone(),
            v => v.to_string(),
        }
    } else {
        String::new()
    };
    env.insert("OS_VARIANT".into(), variant);
    for (name, value) in osparams {
        env.insert(format!("OSP_{}", name.to_uppercase()), py_str(value));
    }
    env.insert("PATH".into(), SCRIPT_PATH.into());
    env
}

/// `OSEnvironment`: the variables of create, rename, import and export
/// for `inst` (whose disks must be set up on this node).
pub fn instance_env(paths: &Paths, inst: &Instance, os: &OsDef, debug: i64) -> Result<Env, String> {
    let full_os = inst
        .os
        .as_deref()
        .ok_or_else(|| format!("Instance {} has no OS", inst.name))?;
    let mut env = core_env(full_os, os, &inst.osparams, debug);
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "None".into());
    let time = |t: Option<f64>| t.map_or_else(|| "None".into(), py_float);
    env.insert("INSTANCE_NAME".into(), inst.name.clone());
    env.insert("INSTANCE_OS".into(), full_os.into());
    env.insert("INSTANCE_UUID".into(), opt(&inst.uuid));
    env.insert("INSTANCE_CTIME".into(), time(inst.ctime));
    env.insert("INSTANCE_MTIME".into(), time(inst.mtime));
    env.insert("INSTANCE_PRIMARY_NODE".into(), opt(&inst.primary_node));
    let hypervisor = inst
        .hypervisor
        .clone()
        .ok_or_else(|| format!("Instance {} has no hypervisor", inst.name))?;
    env.insert("HYPERVISOR".into(), hypervisor);
    env.insert("DISK_COUNT".into(), inst.disks.len().to_string());
    env.insert("NIC_COUNT".into(), inst.nics.len().to_string());
    env.insert(
        "INSTANCE_SECONDARY_NODES".into(),
        secondary_nodes(inst).join(" "),
    );

    let disk_type = inst.hvparams.get("disk_type").map(py_str);
    for (idx, disk) in inst.disks.iter().enumerate() {
        let path = crate::storage::disk_dev_path(paths, disk)?;
        let path = path
            .to_str()
            .ok_or_else(|| format!("The path of disk {idx} is not valid UTF-8"))?;
        env.insert(format!("DISK_{idx}_PATH"), path.into());
        let mode = disk
            .mode
            .clone()
            .ok_or_else(|| format!("Disk {idx} has no access mode"))?;
        env.insert(format!("DISK_{idx}_ACCESS"), mode);
        if let Some(t) = &disk_type {
            env.insert(format!("DISK_{idx}_FRONTEND_TYPE"), t.clone());
        }
        match disk.dev_type.as_str() {
            LD_LV | LD_DRBD8 | LD_BLOCKDEV => {
                env.insert(format!("DISK_{idx}_BACKEND_TYPE"), "block".into());
            }
            LD_FILE => {
                let driver = disk
                    .physical_id
                    .as_ref()
                    .or(disk.logical_id.as_ref())
                    .and_then(|id| id.first())
                    .map(py_str)
                    .ok_or_else(|| format!("File disk {idx} has no driver"))?;
                env.insert(format!("DISK_{idx}_BACKEND_TYPE"), format!("file:{driver}"));
            }
            _ => {}
        }
    }

    let nic_type = inst.hvparams.get("nic_type").map(py_str);
    for (idx, nic) in inst.nics.iter().enumerate() {
        let mac = nic
            .mac
            .clone()
            .ok_or_else(|| format!("NIC {idx} has no MAC address"))?;
        env.insert(format!("NIC_{idx}_MAC"), mac);
        if let Some(ip) = nic.ip.as_deref().filter(|ip| !ip.is_empty()) {
            env.insert(format!("NIC_{idx}_IP"), ip.into());
        }
        let param = |key: &str| {
            nic.nicparams
                .get(key)
                .ok_or_else(|| format!("NIC {idx} has no '{key}' in its parameters"))
        };
        let mode = py_str(param("mode")?);
        let link = param("link")?;
        if mode == "bridged" {
            env.insert(format!("NIC_{idx}_BRIDGE"), py_str(link));
        }
        if py_truthy(link) {
            env.insert(format!("NIC_{idx}_LINK"), py_str(link));
        }
        env.insert(format!("NIC_{idx}_MODE"), mode);
        if let Some(t) = &nic_type {
            env.insert(format!("NIC_{idx}_FRONTEND_TYPE"), t.clone());
        }
    }

    for (kind, params) in [("BE", &inst.beparams), ("HV", &inst.hvparams)] {
        for (key, value) in params {
            env.insert(format!("INSTANCE_{kind}_{key}"), py_str(value));
        }
    }
    Ok(env)
}

/// Python's truth value of a decoded JSON value.
fn py_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `Instance.secondary_nodes`: the nodes of the DRBD disks other than the
/// primary (sorted).
fn secondary_nodes(inst: &Instance) -> Vec<String> {
    fn walk(disk: &crate::objects::Disk, nodes: &mut BTreeSet<String>) {
        if disk.dev_type == LD_DRBD8 {
            for i in 0..2 {
                if let Some(n) = disk.logical_str(i) {
                    nodes.insert(n.to_string());
                }
            }
        }
        for child in disk.children.iter().flatten() {
            walk(child, nodes);
        }
    }
    let mut nodes = BTreeSet::new();
    for disk in &inst.disks {
        walk(disk, &mut nodes);
    }
    if let Some(primary) = &inst.primary_node {
        nodes.remove(primary);
    }
    nodes.into_iter().collect()
}

/// Refuses an environment that `execve` cannot carry as meant: a name
/// that is empty or holds `=` or NUL, a value with NUL.
pub fn check_env(env: &Env) -> Result<(), String> {
    for (name, value) in env {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(format!(
                "Invalid environment variable name {} for the OS script",
                py_repr_str(name)
            ));
        }
        if value.contains('\0') {
            return Err(format!(
                "The value of the environment variable {name} contains a NUL byte"
            ));
        }
    }
    Ok(())
}

/// Refuses a name that becomes part of a file name: empty, or with `/`,
/// `..` or NUL. `what` names it in the message ("instance name").
pub fn check_file_name_part(what: &str, name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        "it is empty"
    } else if name.contains('/') {
        "it contains '/'"
    } else if name.contains("..") {
        "it contains '..'"
    } else if name.contains('\0') {
        "it contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(format!("Invalid {what} {}: {problem}", py_repr_str(name)))
}

/// `utils.TimestampForFilename`: local time as `2012-01-10_14_00_00`.
pub fn timestamp_for_filename(now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, mo, d, h, mi, s) = sys::localtime(secs);
    format!("{y:04}-{mo:02}-{d:02}_{h:02}_{mi:02}_{s:02}")
}

/// `_InstanceLogName`: `<kind>-<os>-<instance>-<timestamp>.log` in the OS
/// log directory (local path), refused when longer than [`MAX_LOG_NAME`].
pub fn log_file(
    paths: &Paths,
    kind: &str,
    os_name: &str,
    instance: &str,
    now: SystemTime,
) -> Result<PathBuf, String> {
    let name = format!(
        "{kind}-{os_name}-{instance}-{}.log",
        timestamp_for_filename(now)
    );
    if name.len() > MAX_LOG_NAME {
        return Err(format!(
            "The log file name '{name}' is longer than {MAX_LOG_NAME} bytes"
        ));
    }
    Ok(paths.os_log_dir().join(name))
}

/// Where a script's output goes.
#[derive(Debug, Clone, Copy)]
pub enum Output<'a> {
    /// stdout and stderr appended to this file (created mode 0600).
    Append(&'a Path),
    /// stdout and stderr captured apart (each up to
    /// [`MAX_VERIFY_OUTPUT`]), `output` = stdout followed by stderr.
    Capture,
}

/// How a script run ended.
#[derive(Debug)]
pub struct ScriptRun {
    /// `None` on success; else 2.5.2's `fail_reason`.
    pub fail_reason: Option<String>,
    /// Captured output (empty with [`Output::Append`]).
    pub output: String,
}

/// Why a script could not be run to its end.
#[derive(Debug)]
pub enum RunError {
    LogFile(PathBuf, io::Error),
    Spawn(PathBuf, io::Error),
    Wait(io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::LogFile(p, e) => {
                write!(f, "Cannot open the log file {}: {e}", p.display())
            }
            RunError::Spawn(p, e) => write!(f, "Cannot run {}: {e}", p.display()),
            RunError::Wait(e) => write!(f, "Cannot wait for the OS script: {e}"),
        }
    }
}

/// Runs `script args...` as 2.5.2's `RunCmd(reset_env=True)`: exactly
/// `env`, cwd `cwd`, stdin closed, in its own process group, and at most
/// `timeout` (then SIGTERM to the group, SIGKILL [`CHILD_LINGER`] later;
/// see [`crate::proc`]).
pub fn run_script(
    script: &Path,
    args: &[&str],
    env: &Env,
    cwd: &Path,
    output: Output<'_>,
    timeout: Duration,
) -> Result<ScriptRun, RunError> {
    let program = script.to_str().ok_or_else(|| {
        RunError::Spawn(
            script.into(),
            io::Error::new(io::ErrorKind::InvalidInput, "path is not UTF-8"),
        )
    })?;
    proc::check_script_format(script).map_err(|e| RunError::Spawn(script.into(), e))?;
    let mut cmd = sys::command(program);
    cmd.args(args).env_clear().envs(env).current_dir(cwd);
    let output = match output {
        Output::Append(path) => {
            let log = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| RunError::LogFile(path.into(), e))?;
            proc::Output::File(log)
        }
        Output::Capture => proc::Output::Capture {
            stdout: MAX_VERIFY_OUTPUT,
            stderr: MAX_VERIFY_OUTPUT,
        },
    };
    let run = proc::run(cmd, output, timeout).map_err(|e| match e {
        proc::Error::Start(e) => RunError::Spawn(script.into(), e),
        proc::Error::Wait(e) => RunError::Wait(e),
    })?;
    Ok(ScriptRun {
        output: String::from_utf8_lossy(&run.output()).into_owned(),
        fail_reason: run.fail_reason,
    })
}

/// `utils.TailFile` + `SafeEncode`: the last [`TAIL_LINES`] lines of the
/// last [`TAIL_BYTES`] of a file, each escaped.
pub fn tail_lines(path: &Path) -> io::Result<Vec<String>> {
    let mut f = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let len = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
    let mut data = Vec::new();
    f.take(TAIL_BYTES).read_to_end(&mut data)?;
    let lines = split_lines(&data);
    let skip = lines.len().saturating_sub(TAIL_LINES);
    Ok(lines[skip..].iter().map(|l| safe_encode(l)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::time::Instant;

    fn scratch(tag: &str) -> (Paths, PathBuf) {
        let root =
            std::env::temp_dir().join(format!("ganeti-osdef-{tag}-{}", crate::sys::getpid()));
        let _ = std::fs::remove_dir_all(&root);
        let paths = Paths::with_root(&root);
        std::fs::create_dir_all(paths.os_search_path()).unwrap();
        (paths, root)
    }

    fn write_exec(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A definition `name` with `api` and every file that API needs.
    fn make_os(paths: &Paths, name: &str, api: &str) -> PathBuf {
        let dir = paths.os_search_path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(OS_API_FILE), api).unwrap();
        for s in SCRIPTS {
            write_exec(&dir.join(s), "#!/bin/sh\nexit 0\n");
        }
        std::fs::write(dir.join(OS_PARAMETERS_FILE), "").unwrap();
        dir
    }

    fn err(paths: &Paths, name: &str) -> String {
        find(paths, name).unwrap_err().to_string()
    }

    #[test]
    fn python_text_helpers() {
        assert_eq!(
            split_lines(b"a\r\nb\rc\n\nd"),
            [&b"a"[..], b"b", b"c", b"", b"d"]
        );
        assert_eq!(split_lines(b"a\n"), [&b"a"[..]]);
        assert!(split_lines(b"").is_empty());
        assert_eq!(
            split_once_ws(b"  dhcp \t yes or no "),
            [&b"dhcp"[..], b"yes or no "]
        );
        assert_eq!(split_once_ws(b"x "), [&b"x"[..]]);
        assert!(split_once_ws(b" \t").is_empty());
        assert_eq!(py_int(b"+10"), Some(10));
        assert_eq!(py_int(b"010"), Some(10));
        for bad in [
            &b""[..],
            b"10L",
            b"1 0",
            b"1_0",
            b"0x1",
            b"99999999999999999999",
        ] {
            assert_eq!(py_int(bad), None, "{bad:?}");
        }
        assert_eq!(py_repr_bytes(b"abc"), "'abc'");
        assert_eq!(py_repr_bytes(b"a'b"), "\"a'b\"");
        assert_eq!(py_repr_bytes(b"a\"b'"), "'a\"b\\''");
        assert_eq!(py_repr_bytes(b"\xff\t"), "'\\xff\\t'");
        assert_eq!(py_repr_str("\u{e9}"), "u'\\xe9'");
    }

    #[test]
    fn python_float_and_value_strings() {
        for (f, s) in [
            (1326196800.123456, "1326196800.12"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (123456789012.5, "1.23456789012e+11"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (0.0, "0.0"),
            (9.99999999999995, "10.0"),
            (99999999999.5, "99999999999.5"),
            (1e11, "1e+11"),
            (1e10, "10000000000.0"),
            (1.234e-5, "1.234e-05"),
        ] {
            assert_eq!(py_float(f), s, "{f}");
        }
        let v: Value = serde_json::json!([null, true, 128, 1.5, "a", {"k": "v"}]);
        assert_eq!(py_str(&v), "[None, True, 128, 1.5, 'a', {'k': 'v'}]");
        assert_eq!(py_str(&Value::from("plain")), "plain");
    }

    #[test]
    fn safe_encode_and_tail() {
        assert_eq!(
            safe_encode(b"a\tb\nc\rd\x01\xc3\xa9~"),
            "a\\tb\\nc\\'rd\\x01\\xc3\\xa9~"
        );
        let (_, root) = scratch("tail");
        let log = root.join("log");
        let mut text = String::new();
        for i in 0..30 {
            text.push_str(&format!("line {i}\n"));
        }
        std::fs::write(&log, &text).unwrap();
        let lines = tail_lines(&log).unwrap();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines[0], "line 10");
        // Only the last TAIL_BYTES are read: one long line is cut.
        let long = format!("{}\nend\n", "x".repeat(TAIL_BYTES as usize + 10));
        std::fs::write(&log, long).unwrap();
        let lines = tail_lines(&log).unwrap();
        assert_eq!(lines[0].len(), TAIL_BYTES as usize - 5);
        assert_eq!(lines[1], "end");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn lookup_messages_are_2_5_2s() {
        let (paths, root) = scratch("lookup");
        assert_eq!(
            err(&paths, "nosuch"),
            "Directory for OS nosuch not found in search path"
        );
        for hostile in ["../os", "a/b", ".", "..", "", "a.b", "a\0b"] {
            assert_eq!(
                err(&paths, hostile),
                format!("Directory for OS {hostile} not found in search path")
            );
        }
        let dir = paths.os_search_path().join("x");
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(
            err(&paths, "x"),
            "Required file 'ganeti_api_version' not found under path /srv/ganeti/os/x: ENOENT"
        );
        std::fs::create_dir(dir.join(OS_API_FILE)).unwrap();
        assert_eq!(
            err(&paths, "x"),
            "File 'ganeti_api_version' in /srv/ganeti/os/x is not a regular file"
        );
        std::fs::remove_dir(dir.join(OS_API_FILE)).unwrap();
        for (text, detail) in [
            ("abc\n", "invalid literal for int() with base 10: 'abc'"),
            ("20\n\n", "invalid literal for int() with base 10: ''"),
            (
                "  x'y \n",
                "invalid literal for int() with base 10: \"x'y\"",
            ),
        ] {
            std::fs::write(dir.join(OS_API_FILE), text).unwrap();
            assert_eq!(
                err(&paths, "x"),
                format!("API version(s) can't be converted to integer: {detail}")
            );
        }
        std::fs::write(dir.join(OS_API_FILE), "5\n30\n").unwrap();
        assert_eq!(
            err(&paths, "x"),
            "API version mismatch for path '/srv/ganeti/os/x': found [5, 30], want \
             frozenset([10, 20, 15])."
        );
        // API 20: rename is looked at first, then verify.
        std::fs::write(dir.join(OS_API_FILE), "20\n").unwrap();
        assert_eq!(
            err(&paths, "x"),
            "File 'rename' under path '/srv/ganeti/os/x' is missing (ENOENT)"
        );
        write_exec(&dir.join("rename"), "");
        assert_eq!(
            err(&paths, "x"),
            "File 'verify' under path '/srv/ganeti/os/x' is missing (ENOENT)"
        );
        std::fs::write(dir.join("verify"), "").unwrap();
        assert_eq!(
            err(&paths, "x"),
            "File 'verify' under path '/srv/ganeti/os/x' is not executable"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn api_levels_decide_the_files() {
        let (paths, root) = scratch("levels");
        // API 10: no verify, variants not read even if present.
        let d = make_os(&paths, "old", "10\n");
        std::fs::remove_file(d.join("verify")).unwrap();
        std::fs::remove_file(d.join(OS_PARAMETERS_FILE)).unwrap();
        std::fs::write(d.join(OS_VARIANTS_FILE), "a\n").unwrap();
        let os = find(&paths, "old+a").unwrap();
        assert_eq!((os.variants.len(), os.has_verify()), (0, false));
        assert!(os.to_value().get("verify_script").is_none());
        // API 15: optional variants; a symlink to a directory is a file
        // that is not regular.
        let d = make_os(&paths, "mid", "15\n10\n");
        let os = find(&paths, "mid").unwrap();
        assert_eq!(os.api_version(), 15);
        assert!(os.variants.is_empty());
        symlink("/", d.join(OS_VARIANTS_FILE)).unwrap();
        assert_eq!(
            err(&paths, "mid"),
            "File 'variants.list' under path '/srv/ganeti/os/mid' is not a regular file"
        );
        // API 20 with an unknown higher version: shares 20.
        let d = make_os(&paths, "new", "30\n20\n");
        std::fs::write(d.join(OS_VARIANTS_FILE), "default\nsmall\n").unwrap();
        std::fs::write(
            d.join(OS_PARAMETERS_FILE),
            "color the color\nsize\tthe size\n\n",
        )
        .unwrap();
        let os = find(&paths, "new+small").unwrap();
        assert_eq!(os.api_version(), 20);
        assert_eq!(os.variants, ["default", "small"]);
        assert_eq!(os.parameter_names().collect::<Vec<_>>(), ["color", "size"]);
        assert_eq!(os.parameters[2], Vec::<String>::new());
        let v = os.to_value();
        assert_eq!(v["verify_script"], "/srv/ganeti/os/new/verify");
        assert_eq!(
            v["supported_parameters"][1],
            serde_json::json!(["size", "the size"])
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn text_files_are_bounded() {
        let (paths, root) = scratch("bounded");
        let d = make_os(&paths, "big", "20\n");
        let at_limit = format!("{}\n", "v".repeat(MAX_OS_FILE as usize - 1));
        std::fs::write(d.join(OS_VARIANTS_FILE), &at_limit).unwrap();
        assert_eq!(
            find(&paths, "big").unwrap().variants[0].len() as u64,
            MAX_OS_FILE - 1
        );
        std::fs::write(d.join(OS_VARIANTS_FILE), format!("{at_limit}x")).unwrap();
        assert_eq!(
            err(&paths, "big"),
            format!(
                "Error while reading the OS variants file at /srv/ganeti/os/big/variants.list: \
                 file is larger than {MAX_OS_FILE} bytes"
            )
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn core_env_variants() {
        let (paths, root) = scratch("core");
        let d = make_os(&paths, "v", "20\n15\n");
        std::fs::write(d.join(OS_VARIANTS_FILE), "first\nsecond\n").unwrap();
        let os = find(&paths, "v").unwrap();
        let params: Map<String, Value> =
            serde_json::from_str(r#"{"dhcp": "yes", "root_size": 8}"#).unwrap();
        let env = core_env("v", &os, &params, 1);
        let expect: Env = [
            ("OS_API_VERSION", "20"),
            ("OS_NAME", "v"),
            ("DEBUG_LEVEL", "1"),
            ("OS_VARIANT", "first"),
            ("OSP_DHCP", "yes"),
            ("OSP_ROOT_SIZE", "8"),
            ("PATH", SCRIPT_PATH),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(env, expect);
        assert_eq!(
            core_env("v+second", &os, &Map::new(), 0)["OS_VARIANT"],
            "second"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn names_and_log_files() {
        for ok in ["inst1.example.com", "lab+default", "a.b"] {
            assert!(check_file_name_part("instance name", ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "..", "a..b", "x\0y", "/"] {
            assert!(
                check_file_name_part("instance name", bad).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            check_file_name_part("OS name", "lab+../x").unwrap_err(),
            "Invalid OS name 'lab+../x': it contains '/'"
        );
        let paths = Paths::with_root("/r");
        let now = UNIX_EPOCH + Duration::from_secs(1_326_196_800);
        let ts = timestamp_for_filename(now);
        assert_eq!(ts.len(), 19);
        let p = log_file(&paths, "add", "lab", "i1", now).unwrap();
        assert_eq!(
            p,
            Path::new(&format!("/r/var/log/ganeti/os/add-lab-i1-{ts}.log"))
        );
        // "add-lab-" + name + "-" + 19 + ".log" = name + 32 bytes.
        let fits = "n".repeat(MAX_LOG_NAME - 32);
        assert!(log_file(&paths, "add", "lab", &fits, now).is_ok());
        let over = "n".repeat(MAX_LOG_NAME - 31);
        assert!(log_file(&paths, "add", "lab", &over, now)
            .unwrap_err()
            .contains("is longer than 255 bytes"));
    }

    #[test]
    fn secondary_nodes_come_from_drbd_disks() {
        let inst: Instance = serde_json::from_value(serde_json::json!({
            "name": "i1", "primary_node": "n1",
            "disks": [
                {"dev_type": "drbd8", "logical_id": ["n1", "n3", 11000, 0, 0, "s"],
                 "children": [{"dev_type": "lvm", "logical_id": ["xenvg", "a"]}]},
                {"dev_type": "lvm", "logical_id": ["xenvg", "b"],
                 "children": [{"dev_type": "drbd8", "logical_id": ["n2", "n1", 11001, 1, 1, "t"]}]},
                {"dev_type": "file", "logical_id": ["loop", "/srv/ganeti/file-storage/i1/disk2"]}
            ]
        }))
        .unwrap();
        assert_eq!(secondary_nodes(&inst), ["n2", "n3"]);
    }

    #[test]
    fn nic_variables_and_missing_values() {
        let (paths, root) = scratch("nics");
        make_os(&paths, "n", "20\n");
        let os = find(&paths, "n").unwrap();
        let inst = |nic: Value, hv: Value| -> Instance {
            serde_json::from_value(serde_json::json!({
                "name": "i1", "os": "n", "hypervisor": hv, "nics": [nic],
                "hvparams": {"extra": [1, "a"]}
            }))
            .unwrap()
        };
        let nic =
            serde_json::json!({"mac": "m", "ip": "", "nicparams": {"mode": "bridged", "link": ""}});
        let env = instance_env(&paths, &inst(nic.clone(), "fake".into()), &os, 0).unwrap();
        assert_eq!(env["NIC_0_BRIDGE"], "");
        assert!(!env.contains_key("NIC_0_LINK") && !env.contains_key("NIC_0_IP"));
        assert!(!env.contains_key("NIC_0_FRONTEND_TYPE"));
        assert_eq!(env["INSTANCE_HV_extra"], "[1, 'a']");
        assert_eq!(env["INSTANCE_UUID"], "None");
        assert_eq!(env["INSTANCE_CTIME"], "None");
        assert_eq!(
            instance_env(&paths, &inst(nic, Value::Null), &os, 0).unwrap_err(),
            "Instance i1 has no hypervisor"
        );
        let no_mac = serde_json::json!({"nicparams": {"mode": "routed", "link": "t"}});
        assert_eq!(
            instance_env(&paths, &inst(no_mac, "fake".into()), &os, 0).unwrap_err(),
            "NIC 0 has no MAC address"
        );
        let no_mode = serde_json::json!({"mac": "m", "nicparams": {"link": "t"}});
        assert_eq!(
            instance_env(&paths, &inst(no_mode, "fake".into()), &os, 0).unwrap_err(),
            "NIC 0 has no 'mode' in its parameters"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn env_names_and_values_are_checked() {
        let mut env = Env::new();
        env.insert("OSP_A".into(), "x".into());
        assert!(check_env(&env).is_ok());
        env.insert("OSP_A=B".into(), "x".into());
        assert!(check_env(&env).unwrap_err().contains("'OSP_A=B'"));
        env.remove("OSP_A=B");
        env.insert("OSP_C".into(), "x\0y".into());
        assert!(check_env(&env).unwrap_err().contains("OSP_C"));
    }

    #[test]
    fn scripts_run_clean_and_time_out() {
        let (_, root) = scratch("run");
        let script = root.join("s");
        write_exec(
            &script,
            "#!/bin/sh\npwd\necho \"$A|$HOME|$1\"\necho err >&2\nexit ${CODE:-0}\n",
        );
        let mut env = Env::new();
        env.insert("A".into(), "a".into());
        let run = |env: &Env, out: Output<'_>, t: Duration| {
            run_script(&script, &["arg"], env, &root, out, t).unwrap()
        };
        let r = run(&env, Output::Capture, Duration::from_secs(5));
        assert_eq!(r.fail_reason, None);
        assert_eq!(r.output, format!("{}\na||arg\nerr\n", root.display()));
        env.insert("CODE".into(), "3".into());
        let log = root.join("log");
        std::fs::write(&log, "before\n").unwrap();
        let r = run(&env, Output::Append(&log), Duration::from_secs(5));
        assert_eq!(r.fail_reason.as_deref(), Some("exited with exit code 3"));
        assert_eq!(r.output, "");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.starts_with("before\n") && text.ends_with("a||arg\nerr\n"),
            "{text}"
        );
        // A symlinked log file is not followed.
        let link = root.join("link");
        symlink(&log, &link).unwrap();
        assert!(matches!(
            run_script(
                &script,
                &[],
                &env,
                &root,
                Output::Append(&link),
                Duration::from_secs(5)
            ),
            Err(RunError::LogFile(..))
        ));

        // The timeout reaches the whole group: the child's sleep too.
        let mut path_env = Env::new();
        path_env.insert("PATH".into(), SCRIPT_PATH.into());
        write_exec(&script, "#!/bin/sh\nsleep 30 &\necho $! > pid\nsleep 30\n");
        let start = Instant::now();
        let r = run(&path_env, Output::Capture, Duration::from_millis(300));
        assert!(start.elapsed() < Duration::from_secs(20));
        assert_eq!(
            r.fail_reason.as_deref(),
            Some("terminated by signal 15, terminated after timeout of 0.30 seconds")
        );
        let pid: i32 = std::fs::read_to_string(root.join("pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        });
        assert!(gone, "the script's child survived the timeout");
        // A script that ignores SIGTERM is killed after the linger time,
        // and a late exit 0 still fails.
        write_exec(
            &script,
            "#!/bin/sh\ntrap 'exit 0' TERM\nwhile :; do sleep 0.05; done\n",
        );
        let r = run(&path_env, Output::Capture, Duration::from_millis(200));
        assert_eq!(
            r.fail_reason.as_deref(),
            Some("exited with exit code 0, terminated after timeout of 0.20 seconds")
        );
        // One that ignores SIGTERM (and so does its sleep) gets SIGKILL.
        write_exec(&script, "#!/bin/sh\ntrap '' TERM\nsleep 30\n");
        let start = Instant::now();
        let r = run(&path_env, Output::Capture, Duration::from_millis(100));
        assert!(start.elapsed() < CHILD_LINGER + Duration::from_secs(15));
        assert_eq!(
            r.fail_reason.as_deref(),
            Some(
                "terminated by signal 9, force termination after timeout of 0.10 seconds \
                 and linger for another 5.00 seconds"
            )
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn children_ignoring_sigterm_die_with_a_script_that_timed_out() {
        // The script exits on SIGTERM at once; its child ignores SIGTERM
        // and must still get SIGKILL.
        let (_, root) = scratch("orphan");
        let script = root.join("s");
        write_exec(
            &script,
            "#!/bin/sh\ntrap 'exit 0' TERM\n(trap '' TERM; exec sleep 30) &\n\
             echo $! > pid\nwhile :; do sleep 0.05; done\n",
        );
        let mut env = Env::new();
        env.insert("PATH".into(), SCRIPT_PATH.into());
        let r = run_script(
            &script,
            &[],
            &env,
            &root,
            Output::Capture,
            Duration::from_millis(300),
        )
        .unwrap();
        assert_eq!(
            r.fail_reason.as_deref(),
            Some("exited with exit code 0, terminated after timeout of 0.30 seconds")
        );
        let pid: i32 = std::fs::read_to_string(root.join("pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gone = (0..250).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        });
        let _ = crate::sys::kill(pid, libc::SIGKILL);
        assert!(gone, "the child that ignored SIGTERM survived the timeout");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn verify_output_is_bounded() {
        let (_, root) = scratch("bound");
        let script = root.join("s");
        write_exec(
            &script,
            &format!("#!/bin/sh\nhead -c {} /dev/zero\n", MAX_VERIFY_OUTPUT + 1),
        );
        let mut env = Env::new();
        env.insert("PATH".into(), SCRIPT_PATH.into());
        let r = run_script(
            &script,
            &[],
            &env,
            &root,
            Output::Capture,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(r.fail_reason, None);
        assert_eq!(r.output.len(), MAX_VERIFY_OUTPUT);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
