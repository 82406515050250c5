//! Hook scripts and iallocators on the node (spec 4.12): `hooks_runner`,
//! `iallocator_runner`.
//!
//! Supported, as 2.5.2 (`backend.HooksRunner`, `utils.RunParts`,
//! `backend.IAllocatorRunner`):
//! * `hooks_runner [hpath, phase, env]` runs, in byte order, the visible
//!   entries of `/etc/ganeti/hooks/<hpath>-<phase>.d/` that are regular
//!   files (symlinks followed), executable (`access(X_OK)`) and named
//!   `^[a-zA-Z0-9_-]+$`; the others are reported as skipped. Each script
//!   runs without arguments, with exactly `env` as its environment, cwd
//!   `/`, stdin `/dev/null`; its stdout followed by its stderr, stripped
//!   and escaped (`SafeEncode`), is its output. The answer is `[[script,
//!   status, output], ...]` with status 0 skipped, 1 failed, 2 success. A
//!   missing directory gives `[]`; an unknown phase fails with `Unknown
//!   hooks phase '<phase>'`.
//! * `iallocator_runner [name, idata]` finds `<name>` as a regular file in
//!   `/usr/lib/ganeti/iallocators` (the default `IALLOCATOR_SEARCH_PATH`),
//!   writes `idata` to a new `ganeti-iallocator.XXXXXX` in `$TMPDIR` (else
//!   `/tmp`), runs `<script> <file>` with the daemon's environment plus
//!   `LC_ALL=C`, removes the file and answers the script's stdout.
//!   Messages: `iallocator module '<name>' not found in the search path`,
//!   `iallocator module '<name>' failed: <reason>, output '<output>'`.
//!
//! Differences from 2.5.2, all on the safe side:
//! * **Timeouts.** 2.5.2 had none: a hanging hook script or iallocator held
//!   its noded child forever, while the master stopped waiting for the call
//!   after 15 minutes (`_TMO_NORMAL`, the RPC timeout of both procedures).
//!   Here each hook script, and each iallocator run, gets [`HOOK_TIMEOUT`]
//!   (those same 15 minutes: a later answer could never reach the master).
//!   Then its whole process group gets SIGTERM, and SIGKILL once the
//!   script has exited or after [`CHILD_LINGER_TIMEOUT`] (2.5.2's `RunCmd`
//!   timeout steps, applied to the group so that children the script
//!   forked die too; a child that moved to a session or group of its own
//!   escapes). The hook is then reported failed, also if it exited 0 on
//!   SIGTERM, its output followed by 2.5.2's `RunCmd` reason, for example
//!   `terminated by signal 15, terminated after timeout of 900.00
//!   seconds`. The timeout of hook scripts (not of iallocators) can be
//!   shortened, not lengthened, with the daemon's environment variable
//!   [`HOOKS_TIMEOUT_ENV`], in seconds; the tests use it. Scripts run
//!   through [`crate::proc`], whose first doc comment has the details.
//! * A script that exits while children it left behind still hold its
//!   output pipes is finished at once with the output read so far (2.5.2
//!   waited for the pipes to close, forever if a child lived on). Those
//!   children are left alone, as 2.5.2 did.
//! * Output is bounded: [`MAX_HOOK_OUTPUT`] bytes of each of stdout and
//!   stderr per script are kept (the rest is read and dropped); an
//!   iallocator whose stdout exceeds [`MAX_IALLOCATOR_OUTPUT`] fails, and
//!   the output quoted in an iallocator's failure message is its first
//!   [`MAX_HOOK_OUTPUT`] bytes of stdout followed by its stderr.
//! * `hpath` must be a plain name: with `/`, `..` or a NUL byte the call
//!   fails with `Invalid hooks path '<hpath>': ...` and runs nothing (2.5.2
//!   allowed subdirectories and failed on `..` with a `PathJoin` error).
//!   `env` must map names (not empty, without `=` or NUL) to strings
//!   without NUL.
//! * Names ending in a newline do not match `^[a-zA-Z0-9_-]+$` (they did
//!   with Python's `$`); an iallocator name that does not match is
//!   reported as not found, as 2.5.2 did, and logged.
//! * A script (or iallocator) must start with `#!` or be an ELF binary;
//!   anything else fails with `[Errno 8] Exec format error` as in 2.5.2
//!   (the C library's `execvp` would hand it to `/bin/sh`). Other formats
//!   the kernel may know through binfmt_misc are refused.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};

use super::{backend, decode, os_error_text, Context, Procedure, RpcError};
use crate::hooks::{is_plugin_name, py_strip, safe_encode, Phase, HKR_FAIL, HKR_SKIP, HKR_SUCCESS};
use crate::pytext::shell_quote;
use crate::{proc, sys};

/// Longest a hook script (or an iallocator) may run: the master's timeout
/// for the whole `hooks_runner` call (`_TMO_NORMAL`, 15 minutes). 2.5.2
/// itself had no limit.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The daemon's environment variable that shortens [`HOOK_TIMEOUT`]:
/// seconds, a number above 0 and at most 900 (other values are logged and
/// ignored). Read once, at the first hooks run.
pub const HOOKS_TIMEOUT_ENV: &str = "GANETI_HOOKS_TIMEOUT";
/// Between SIGTERM and SIGKILL of a script that timed out (2.5.2's
/// `CHILD_LINGER_TIMEOUT`).
pub use crate::proc::CHILD_LINGER_TIMEOUT;
/// Most bytes kept from each of a script's stdout and stderr.
pub const MAX_HOOK_OUTPUT: usize = 64 * 1024;
/// Largest `hooks_runner` body: the environment of an instance with many
/// disks and NICs is a few KiB.
pub const MAX_HOOKS_BODY: usize = 256 * 1024;
/// Largest `iallocator_runner` body (the input describes the whole
/// cluster).
pub const MAX_IALLOCATOR_BODY: usize = 16 * 1024 * 1024;
/// Largest iallocator answer (its stdout).
pub const MAX_IALLOCATOR_OUTPUT: usize = 16 * 1024 * 1024;
/// `IALLOCATOR_SEARCH_PATH` of a default 2.5.2 build (`$libdir/ganeti/
/// iallocators`), mapped under `GANETI_ROOTDIR`.
pub const IALLOCATOR_SEARCH_PATH: [&str; 1] = ["/usr/lib/ganeti/iallocators"];
/// Prefix of the iallocator's input file (`tempfile.mkstemp`).
const IALLOCATOR_TMP_PREFIX: &str = "ganeti-iallocator.";

pub const PROCEDURES: &[Procedure] = &[
    Procedure {
        name: "hooks_runner",
        max_body: MAX_HOOKS_BODY,
        handler: hooks_runner,
    },
    Procedure {
        name: "iallocator_runner",
        max_body: MAX_IALLOCATOR_BODY,
        handler: iallocator_runner,
    },
];

/// Reads [`HOOKS_TIMEOUT_ENV`]'s value: `None` when unset.
fn parse_timeout(value: Option<&str>) -> Result<Option<Duration>, String> {
    let Some(text) = value else {
        return Ok(None);
    };
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{HOOKS_TIMEOUT_ENV}='{text}' is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= HOOK_TIMEOUT.as_secs_f64()) {
        return Err(format!(
            "{HOOKS_TIMEOUT_ENV}={text} is not above 0 and at most {} seconds",
            HOOK_TIMEOUT.as_secs()
        ));
    }
    Ok(Some(Duration::from_secs_f64(secs)))
}

/// The timeout of each hook script: [`HOOK_TIMEOUT`], or shorter from
/// [`HOOKS_TIMEOUT_ENV`].
fn hook_timeout() -> Duration {
    static TIMEOUT: OnceLock<Duration> = OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        let value = std::env::var(HOOKS_TIMEOUT_ENV).ok();
        match parse_timeout(value.as_deref()) {
            Ok(t) => t.unwrap_or(HOOK_TIMEOUT),
            Err(msg) => {
                log::warn!("{msg}; using {} seconds", HOOK_TIMEOUT.as_secs());
                HOOK_TIMEOUT
            }
        }
    })
}

/// The text of an error running a program, as 2.5.2's `RunCmd` raises it.
fn start_error(e: &io::Error, wire: &Path) -> String {
    if e.kind() == io::ErrorKind::NotFound {
        format!(
            "Can't execute '{}': not found ({})",
            shell_quote(&wire.to_string_lossy()),
            os_error_text(e, None)
        )
    } else {
        os_error_text(e, None)
    }
}

/// `hooks_runner [hpath, phase, env]`.
fn hooks_runner(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (hpath, phase, env): (String, String, BTreeMap<String, String>) =
        decode(body).map_err(|e| {
            RpcError::Arguments(format!(
                "expected [hpath, phase, env] with env mapping names to strings: {e}"
            ))
        })?;
    let Some(phase) = Phase::parse(&phase) else {
        return Err(RpcError::Failed(format!("Unknown hooks phase '{phase}'")));
    };
    check_hpath(&hpath)?;
    check_env(&env)?;
    let subdir = format!("{hpath}-{}.d", phase.as_str());
    let dir = ctx.paths.hooks_dir().join(&subdir);
    if !dir.is_dir() {
        return Ok(json!([]));
    }
    let names = match visible_entries(&dir) {
        Ok(n) => n,
        Err(e) => {
            log::warn!(
                "RunParts: skipping {} (cannot list: {})",
                dir.display(),
                os_error_text(&e, None)
            );
            return Ok(json!([]));
        }
    };
    let timeout = hook_timeout();
    let results: Vec<Value> = names
        .iter()
        .map(|name| {
            let shown = format!("{subdir}/{}", name.to_string_lossy());
            let (status, output) = run_hook(ctx, &dir.join(name), name, &env, timeout);
            json!([shown, status, output])
        })
        .collect();
    Ok(Value::Array(results))
}

/// `hpath` names one directory below the hooks directory.
fn check_hpath(hpath: &str) -> Result<(), RpcError> {
    if hpath.contains('/') || hpath.contains("..") || hpath.contains('\0') {
        return Err(RpcError::Failed(format!(
            "Invalid hooks path '{}': it must be a plain name, without '/', '..' or NUL bytes",
            hpath.escape_default()
        )));
    }
    Ok(())
}

/// Every variable must be one `execve` can pass on as given.
fn check_env(env: &BTreeMap<String, String>) -> Result<(), RpcError> {
    for (k, v) in env {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(RpcError::Arguments(format!(
                "env: invalid variable name '{}'",
                k.escape_default()
            )));
        }
        if v.contains('\0') {
            return Err(RpcError::Arguments(format!(
                "env: the value of {k} contains a NUL byte"
            )));
        }
    }
    Ok(())
}

/// The names in `dir` not starting with `.`, in byte order
/// (`ListVisibleFiles`, then `sorted`).
fn visible_entries(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        if !name.as_bytes().starts_with(b".") {
            names.push(name);
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Runs one entry of a hooks directory (or skips it); its status and
/// output.
fn run_hook(
    ctx: &Context,
    path: &Path,
    name: &OsString,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> (u8, String) {
    let runnable =
        name.to_str().is_some_and(is_plugin_name) && path.is_file() && sys::is_executable(path);
    if !runnable {
        return (HKR_SKIP, String::new());
    }
    let wire = ctx.paths.to_wire(path);
    let exec_error = |text: String| (HKR_FAIL, format!("Hook script execution error: {text}"));
    let Some(program) = path.to_str() else {
        return exec_error(format!("the path '{}' is not UTF-8", path.display()));
    };
    if let Err(e) = proc::check_script_format(path) {
        return exec_error(start_error(&e, &wire));
    }
    log::debug!("RunCmd {}", shell_quote(program));
    let mut cmd = sys::command(program);
    cmd.env_clear().envs(env).current_dir("/");
    let output = proc::Output::Capture {
        stdout: MAX_HOOK_OUTPUT,
        stderr: MAX_HOOK_OUTPUT,
    };
    match proc::run(cmd, output, timeout) {
        Err(e) => exec_error(start_error(e.io(), &wire)),
        Ok(run) => {
            let raw = run.output();
            let mut text = py_strip(&raw).to_vec();
            let status = match &run.fail_reason {
                None => HKR_SUCCESS,
                Some(reason) => {
                    if run.timed_out {
                        log::warn!("Hook script {} {reason}", wire.display());
                        if !text.is_empty() {
                            text.push(b'\n');
                        }
                        text.extend_from_slice(reason.as_bytes());
                    }
                    HKR_FAIL
                }
            };
            (status, safe_encode(&text))
        }
    }
}

/// A temporary file removed on drop (2.5.2 unlinked it in a `finally`).
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// `tempfile.mkstemp(prefix=...)`: a new file, mode 0600, with six
    /// random characters after the prefix, holding `data`.
    fn create(dir: &Path, prefix: &str, data: &[u8]) -> io::Result<TempFile> {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
        const ATTEMPTS: usize = 100;
        for _ in 0..ATTEMPTS {
            let mut random = [0u8; 6];
            openssl::rand::rand_bytes(&mut random).map_err(io::Error::other)?;
            let suffix: String = random
                .iter()
                .map(|b| char::from(CHARS[usize::from(*b) % CHARS.len()]))
                .collect();
            let path = dir.join(format!("{prefix}{suffix}"));
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path);
            let mut file: File = match file {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            let temp = TempFile { path };
            file.write_all(data)?;
            return Ok(temp);
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "No usable temporary file name found",
        ))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            log::warn!("Cannot remove {}: {e}", self.path.display());
        }
    }
}

/// 2.5.2's `FindFile(name, IALLOCATOR_SEARCH_PATH, os.path.isfile)`.
fn find_iallocator(ctx: &Context, name: &str) -> Option<PathBuf> {
    if !is_plugin_name(name) {
        log::error!(
            "Invalid value passed for external script name: '{}'",
            name.escape_default()
        );
        return None;
    }
    IALLOCATOR_SEARCH_PATH
        .iter()
        .map(|dir| ctx.paths.to_local(dir).join(name))
        .find(|p| p.is_file())
}

/// `iallocator_runner [name, idata]`.
fn iallocator_runner(ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let (name, idata): (String, String) = decode(body)
        .map_err(|e| RpcError::Arguments(format!("expected [name, idata], both strings: {e}")))?;
    let Some(script) = find_iallocator(ctx, &name) else {
        return Err(RpcError::Failed(format!(
            "iallocator module '{}' not found in the search path",
            name.escape_default()
        )));
    };
    let tmp_dir = std::env::temp_dir();
    let input = TempFile::create(&tmp_dir, IALLOCATOR_TMP_PREFIX, idata.as_bytes())
        .map_err(|e| backend(os_error_text(&e, Some(&tmp_dir))))?;
    let program = script
        .to_str()
        .ok_or_else(|| backend(format!("the path '{}' is not UTF-8", script.display())))?;
    proc::check_script_format(&script)
        .map_err(|e| backend(start_error(&e, &ctx.paths.to_wire(&script))))?;
    let mut cmd = sys::command(program);
    cmd.arg(&input.path).env("LC_ALL", "C").current_dir("/");
    log::debug!("RunCmd {} {}", shell_quote(program), input.path.display());
    let output = proc::Output::Capture {
        stdout: MAX_IALLOCATOR_OUTPUT,
        stderr: MAX_HOOK_OUTPUT,
    };
    let run = proc::run(cmd, output, HOOK_TIMEOUT)
        .map_err(|e| backend(start_error(e.io(), &ctx.paths.to_wire(&script))));
    drop(input);
    let run = run?;
    let failed = |reason: &str| {
        let mut output = run.stdout[..run.stdout.len().min(MAX_HOOK_OUTPUT)].to_vec();
        output.extend_from_slice(&run.stderr);
        RpcError::Failed(format!(
            "iallocator module '{name}' failed: {reason}, output '{}'",
            String::from_utf8_lossy(&output)
        ))
    };
    if let Some(reason) = &run.fail_reason {
        return Err(failed(reason));
    }
    if run.stdout_overflow {
        return Err(failed(&format!(
            "its output is longer than {MAX_IALLOCATOR_OUTPUT} bytes"
        )));
    }
    Ok(Value::String(
        String::from_utf8_lossy(&run.stdout).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(tag: &str) -> (Context, PathBuf) {
        let root = std::env::temp_dir().join(format!("ganeti-hooks-{tag}-{}", sys::getpid()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        (Context::for_root(&root, "node1.example.com"), root)
    }

    fn script(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    const SECS5: Duration = Duration::from_secs(5);

    #[test]
    fn timeout_override_is_bounded() {
        assert_eq!(parse_timeout(None), Ok(None));
        assert_eq!(parse_timeout(Some("2")), Ok(Some(Duration::from_secs(2))));
        assert_eq!(
            parse_timeout(Some("0.25")),
            Ok(Some(Duration::from_millis(250)))
        );
        assert_eq!(parse_timeout(Some("900")), Ok(Some(HOOK_TIMEOUT)));
        for bad in ["900.001", "901", "0", "-1", "nan", "inf", "", "1s"] {
            assert!(parse_timeout(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn start_errors_read_as_2_5_2() {
        let output = proc::Output::Capture {
            stdout: 9,
            stderr: 9,
        };
        let e = proc::run(sys::command("/nonexistent/ganeti-hook"), output, SECS5).unwrap_err();
        assert_eq!(
            start_error(e.io(), Path::new("/etc/ganeti/hooks/a b")),
            "Can't execute ''/etc/ganeti/hooks/a b'': not found ([Errno 2] No such file or \
             directory)"
        );
    }

    #[test]
    fn hpath_env_and_names() {
        for bad in ["../x", "a/b", "..", "/etc", "x\0y", "a..b"] {
            let e = check_hpath(bad).unwrap_err().to_string();
            assert!(e.starts_with("Invalid hooks path '"), "{e}");
        }
        for ok in ["cluster-init", "instance-add", "config-update", "", "."] {
            check_hpath(ok).unwrap();
        }
        let env = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(check_env(&env("A", "b=c")).is_ok());
        for (k, v) in [("", "x"), ("A=B", "x"), ("A\0", "x"), ("A", "x\0")] {
            assert!(check_env(&env(k, v)).is_err(), "{k:?}={v:?}");
        }
        assert_eq!(
            shell_quote("/etc/ganeti/hooks/x-pre.d/a"),
            "/etc/ganeti/hooks/x-pre.d/a"
        );
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn runs_in_order_and_reports_as_2_5_2() {
        let (ctx, root) = scratch("order");
        let dir = ctx.paths.hooks_dir().join("lab-test-pre.d");
        script(
            &dir.join("10-b"),
            "#!/bin/sh\necho \"b $GANETI_X\"\nexit 1\n",
        );
        script(
            &dir.join("00-a"),
            "#!/bin/sh\nprintf ' a\\tout\\r\\n'; echo err >&2\n",
        );
        script(&dir.join("20-not.executable"), "#!/bin/sh\n");
        script(&dir.join(".hidden"), "#!/bin/sh\n");
        std::fs::write(dir.join("30-plain"), "#!/bin/sh\n").unwrap();
        let body = br#"["lab-test", "pre", {"GANETI_X": "x"}]"#;
        let answer = hooks_runner(&ctx, body).unwrap();
        assert_eq!(
            answer,
            json!([
                ["lab-test-pre.d/00-a", 2, "a\\tout\\'r\\nerr"],
                ["lab-test-pre.d/10-b", 1, "b x"],
                ["lab-test-pre.d/20-not.executable", 0, ""],
                ["lab-test-pre.d/30-plain", 0, ""]
            ])
        );
        assert_eq!(
            hooks_runner(&ctx, br#"["lab-test", "post", {}]"#).unwrap(),
            json!([])
        );
        let e = hooks_runner(&ctx, br#"["lab-test", "PRE", {}]"#).unwrap_err();
        assert_eq!(e.to_string(), "Unknown hooks phase 'PRE'");
        let e = hooks_runner(&ctx, br#"["lab-test", "pre", {"A": 1}]"#).unwrap_err();
        assert!(matches!(e, RpcError::Arguments(_)), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn temp_files_are_private_and_removed() {
        let (_ctx, root) = scratch("tmp");
        let t = TempFile::create(&root, IALLOCATOR_TMP_PREFIX, b"data").unwrap();
        let name = t.path.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(name.len(), IALLOCATOR_TMP_PREFIX.len() + 6);
        assert!(name.starts_with(IALLOCATOR_TMP_PREFIX));
        let meta = std::fs::metadata(&t.path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&t.path).unwrap(), b"data");
        let path = t.path.clone();
        drop(t);
        assert!(!path.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
