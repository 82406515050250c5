//! `hooks_runner` and `iallocator_runner` against the real node daemon over
//! real TLS, with real scripts written into the node's root. Recording 33
//! of 2.5.2 (its body is copied below) is replayed with scripts that do
//! what the lab's did, and the answer compared byte for byte.
//!
//! The timeout tests start the daemon with `GANETI_HOOKS_TIMEOUT=1` (the
//! documented override; the real default is 900 s); the 5 s linger
//! between SIGTERM and SIGKILL is the real one.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Recording 33's answer, byte for byte.
const SAMPLE_33_ANSWER: &str = "[true, [[\"lab-test-pre.d/00-lab-ok\", 2, \"hook 00-lab-ok: \
    phase=pre path=lab-test op=OP_TEST_DELAY\"], [\"lab-test-pre.d/10-lab-fail\", 1, \"hook \
    10-lab-fail: failing on purpose\"], [\"lab-test-pre.d/20-not.executable\", 0, \"\"]]]\n";
/// Recording 33's request body (`33-hooks_runner.body`), as sent by a
/// 2.5.2 master.
const SAMPLE_33_BODY: &str = r#"["lab-test", "pre", {"GANETI_CLUSTER": "cluster.lab25.test", "GANETI_DATA_DIR": "/var/lib/ganeti", "GANETI_HOOKS_PATH": "lab-test", "GANETI_HOOKS_PHASE": "pre", "GANETI_HOOKS_VERSION": "2", "GANETI_MASTER": "localhost", "GANETI_OBJECT_TYPE": "CLUSTER", "GANETI_OP_CODE": "OP_TEST_DELAY"}]"#;

const BACKEND: &str = "Error while executing backend function: ";

/// A node daemon with TLS in its own root (`TMPDIR` inside the root too).
struct Node(TlsNode);

impl std::ops::Deref for Node {
    type Target = TlsNode;
    fn deref(&self) -> &TlsNode {
        &self.0
    }
}

impl Node {
    fn start(tag: &str, hooks_timeout: Option<&str>) -> Node {
        let root = Root::new(tag);
        let tmp = root.path("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let mut env: Vec<(&str, &Path)> = vec![
            ("TMPDIR", tmp.as_path()),
            ("GANETI_TEST_LEAK", Path::new("must-not-reach-hooks")),
        ];
        if let Some(t) = hooks_timeout {
            env.push(("GANETI_HOOKS_TIMEOUT", Path::new(t)));
        }
        Node(TlsNode::start(root, &env))
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path(rel)
    }

    /// Writes an executable script `etc/ganeti/hooks/<dir>/<name>`.
    fn hook(&self, dir: &str, name: &str, body: &str) -> PathBuf {
        let p = self.path(&format!("etc/ganeti/hooks/{dir}/{name}"));
        write_script(&p, body, 0o755);
        p
    }

    /// Calls a procedure; the HTTP body text.
    fn call(&self, procedure: &str, body: &str) -> String {
        let a = self.raw(procedure, body);
        assert_eq!(a.status, 200, "{procedure}: {}", a.text());
        a.text()
    }

    /// Calls a procedure; the decoded `[success, payload]`.
    fn call_json(&self, procedure: &str, body: &Value) -> (bool, Value) {
        let text = self.call(procedure, &body.to_string());
        let v: Value = serde_json::from_str(&text).unwrap();
        (v[0].as_bool().unwrap(), v[1].clone())
    }

    /// `hooks_runner` that must succeed; its list of results.
    fn hooks(&self, hpath: &str, phase: &str, env: &Value) -> Vec<(String, u64, String)> {
        let (ok, payload) = self.call_json("hooks_runner", &json!([hpath, phase, env]));
        assert!(ok, "{payload}");
        payload
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e[0].as_str().unwrap().to_string(),
                    e[1].as_u64().unwrap(),
                    e[2].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

fn write_script(path: &Path, body: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `json` followed by spaces up to `len` bytes.
fn padded(json: &str, len: usize) -> String {
    format!("{json}{}", " ".repeat(len - json.len()))
}

fn base_env() -> Value {
    json!({"PATH": "/sbin:/bin:/usr/sbin:/usr/bin", "GANETI_HOOKS_VERSION": "2"})
}

fn pid_in(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn recording_33_is_answered_byte_for_byte() {
    let node = Node::start("hooks-sample", None);
    node.hook(
        "lab-test-pre.d",
        "00-lab-ok",
        "#!/bin/sh\necho \"hook 00-lab-ok: phase=$GANETI_HOOKS_PHASE \
         path=$GANETI_HOOKS_PATH op=$GANETI_OP_CODE\"\n",
    );
    node.hook(
        "lab-test-pre.d",
        "10-lab-fail",
        "#!/bin/sh\necho 'hook 10-lab-fail: failing on purpose' >&2\nexit 1\n",
    );
    write_script(
        &node.path("etc/ganeti/hooks/lab-test-pre.d/20-not.executable"),
        "#!/bin/sh\necho never\n",
        0o644,
    );
    assert_eq!(node.call("hooks_runner", SAMPLE_33_BODY), SAMPLE_33_ANSWER);
    // The other phase's directory does not exist: an empty list.
    let post = SAMPLE_33_BODY.replace("\"pre\", {", "\"post\", {");
    assert_eq!(node.call("hooks_runner", &post), "[true, []]\n");
}

#[test]
fn scripts_run_one_after_the_other_in_byte_order() {
    let node = Node::start("hooks-order", None);
    let log = node.path("order.log");
    let names = ["b", "a", "10", "9", "A", "_x", "-y"];
    for name in names {
        node.hook(
            "node-add-post.d",
            name,
            &format!(
                "#!/bin/sh\necho start {name} >> {log}\nsleep 0.05\necho end {name} >> {log}\n",
                log = log.display()
            ),
        );
    }
    let results = node.hooks("node-add", "post", &base_env());
    let order = ["-y", "10", "9", "A", "_x", "a", "b"];
    let shown: Vec<&str> = results.iter().map(|r| r.0.as_str()).collect();
    let want: Vec<String> = order
        .iter()
        .map(|n| format!("node-add-post.d/{n}"))
        .collect();
    assert_eq!(shown, want);
    assert!(
        results.iter().all(|r| r.1 == 2 && r.2.is_empty()),
        "{results:?}"
    );
    // Strictly sequential: each script ends before the next one starts.
    let expected: String = order
        .iter()
        .map(|n| format!("start {n}\nend {n}\n"))
        .collect();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), expected);
}

#[test]
fn a_failing_script_is_reported_with_its_output_and_the_run_goes_on() {
    let node = Node::start("hooks-fail", None);
    node.hook(
        "instance-add-pre.d",
        "10-fail",
        "#!/bin/sh\nprintf '  first line\\n\\tsecond\\r\\n'\necho 'caf\\303\\251' >&2\n\
         printf 'bell\\007\\n' >&2\nexit 7\n",
    );
    node.hook("instance-add-pre.d", "20-ok", "#!/bin/sh\necho fine\n");
    node.hook(
        "instance-add-pre.d",
        "30-signal",
        "#!/bin/sh\necho bye\nkill -9 $$\n",
    );
    // No #! line: 2.5.2's exec error, not a run by /bin/sh.
    let ran = node.path("noshebang-ran");
    node.hook(
        "instance-add-pre.d",
        "40-noshebang",
        &format!("touch {}\necho ran\n", ran.display()),
    );
    let results = node.hooks("instance-add", "pre", &base_env());
    assert!(!ran.exists(), "a script without #! was run");
    assert_eq!(
        results,
        vec![
            (
                "instance-add-pre.d/10-fail".into(),
                1,
                // stdout, then stderr; stripped; SafeEncode'd as 2.5.2
                // (CR becomes \'r, other bytes \xNN).
                "first line\\n\\tsecond\\'r\\ncaf\\xc3\\xa9\\nbell\\x07".into()
            ),
            ("instance-add-pre.d/20-ok".into(), 2, "fine".into()),
            ("instance-add-pre.d/30-signal".into(), 1, "bye".into()),
            (
                "instance-add-pre.d/40-noshebang".into(),
                1,
                "Hook script execution error: [Errno 8] Exec format error".into()
            ),
        ]
    );
}

#[test]
fn only_plain_named_executable_files_run() {
    let node = Node::start("hooks-skip", None);
    let dir = "cluster-verify-post.d";
    let ran = node.path("ran");
    std::fs::create_dir_all(&ran).unwrap();
    let marking = |name: &str| {
        format!(
            "#!/bin/sh\ntouch {}/{name}\necho ran {name}\n",
            ran.display()
        )
    };
    for name in ["with.dot", "with space", "tilde~", "UPPER_ok-1"] {
        node.hook(dir, name, &marking(name));
    }
    let hooks_dir = node.path(&format!("etc/ganeti/hooks/{dir}"));
    write_script(&hooks_dir.join("noexec"), &marking("noexec"), 0o644);
    write_script(&hooks_dir.join(".hidden"), &marking("hidden"), 0o755);
    std::fs::create_dir(hooks_dir.join("subdir")).unwrap();
    // A symlink to an executable runs (2.5.2 follows it); a dangling one
    // is skipped.
    let target = node.path("elsewhere/target");
    write_script(&target, &marking("linked"), 0o755);
    std::os::unix::fs::symlink(&target, hooks_dir.join("linked")).unwrap();
    std::os::unix::fs::symlink(node.path("nowhere"), hooks_dir.join("dangling")).unwrap();

    let results = node.hooks("cluster-verify", "post", &base_env());
    let got: BTreeMap<String, (u64, String)> = results
        .into_iter()
        .map(|(s, st, out)| {
            (
                s.trim_start_matches("cluster-verify-post.d/").to_string(),
                (st, out),
            )
        })
        .collect();
    let skip = (0, String::new());
    let want: BTreeMap<String, (u64, String)> = [
        ("UPPER_ok-1", (2, "ran UPPER_ok-1".to_string())),
        ("dangling", skip.clone()),
        ("linked", (2, "ran linked".to_string())),
        ("noexec", skip.clone()),
        ("subdir", skip.clone()),
        ("tilde~", skip.clone()),
        ("with space", skip.clone()),
        ("with.dot", skip.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, want);
    let mut ran_names: Vec<String> = std::fs::read_dir(&ran)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    ran_names.sort();
    assert_eq!(ran_names, ["UPPER_ok-1", "linked"]);
}

#[test]
fn the_environment_is_exactly_the_one_given() {
    let node = Node::start("hooks-env", None);
    let out = node.path("out");
    node.hook(
        "cluster-init-post.d",
        "env",
        &format!(
            "#!/bin/sh\ncat /proc/$$/environ > {o}/environ\npwd > {o}/cwd\n\
             readlink /proc/$$/fd/0 > {o}/stdin\n",
            o = out.display()
        ),
    );
    std::fs::create_dir_all(&out).unwrap();
    let env = json!({
        "PATH": "/sbin:/bin:/usr/sbin:/usr/bin",
        "GANETI_HOOKS_VERSION": "2",
        "GANETI_OP_CODE": "OP_CLUSTER_POST_INIT",
        "GANETI_POST_OP_TARGET": "cluster.example.com",
        "GANETI_SPACES": "a b  c",
        "GANETI_MULTI": "line1\nline2",
        "GANETI_EQUALS": "x=y=z",
        "GANETI_EMPTY": "",
        "GANETI_UTF8": "caf\u{e9}",
    });
    let results = node.hooks("cluster-init", "post", &env);
    assert_eq!(
        results,
        vec![("cluster-init-post.d/env".into(), 2, String::new())]
    );
    let raw = std::fs::read(out.join("environ")).unwrap();
    let got: BTreeMap<String, String> = raw
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            let text = String::from_utf8(v.to_vec()).unwrap();
            let (k, v) = text.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let want: BTreeMap<String, String> = serde_json::from_value(env).unwrap();
    assert_eq!(
        got, want,
        "nothing of the daemon's own environment may leak"
    );
    assert_eq!(std::fs::read_to_string(out.join("cwd")).unwrap(), "/\n");
    assert_eq!(
        std::fs::read_to_string(out.join("stdin")).unwrap(),
        "/dev/null\n"
    );
}

#[test]
fn a_hanging_script_and_its_child_are_killed_at_the_timeout() {
    let node = Node::start("hooks-hang", Some("1"));
    let child = node.path("child.pid");
    node.hook(
        "instance-start-pre.d",
        "10-hang",
        &format!(
            "#!/bin/sh\necho started\nsleep 300 &\necho $! > {}\nsleep 300\n",
            child.display()
        ),
    );
    // Exiting 0 on SIGTERM after the timeout is still a failure.
    node.hook(
        "instance-start-pre.d",
        "15-clean-exit",
        "#!/bin/sh\nexec 2>/dev/null\ntrap 'echo cleaned up; exit 0' TERM\n\
         while :; do sleep 0.1; done\n",
    );
    node.hook(
        "instance-start-pre.d",
        "20-after",
        "#!/bin/sh\necho after\n",
    );
    let start = Instant::now();
    let results = node.hooks("instance-start", "pre", &base_env());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(30),
        "{took:?}"
    );
    assert_eq!(
        results,
        vec![
            (
                "instance-start-pre.d/10-hang".into(),
                1,
                "started\\nterminated by signal 15, terminated after timeout of 1.00 seconds"
                    .into()
            ),
            (
                "instance-start-pre.d/15-clean-exit".into(),
                1,
                "cleaned up\\nexited with exit code 0, terminated after timeout of 1.00 seconds"
                    .into()
            ),
            ("instance-start-pre.d/20-after".into(), 2, "after".into()),
        ]
    );
    let pid = pid_in(&child);
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "the script's child {pid} survived"
    );
}

#[test]
fn a_script_ignoring_sigterm_is_killed_after_the_linger() {
    let node = Node::start("hooks-linger", Some("1"));
    let pids = node.path("pids");
    node.hook(
        "node-remove-pre.d",
        "stubborn",
        &format!(
            "#!/bin/sh\ntrap '' TERM\necho $$ > {p}.self\nsleep 300 &\necho $! > {p}.child\n\
             while :; do sleep 1; done\n",
            p = pids.display()
        ),
    );
    let start = Instant::now();
    let results = node.hooks("node-remove", "pre", &base_env());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(6) && took < Duration::from_secs(30),
        "{took:?}"
    );
    assert_eq!(
        results,
        vec![(
            "node-remove-pre.d/stubborn".into(),
            1,
            "terminated by signal 9, force termination after timeout of 1.00 seconds and \
             linger for another 5.00 seconds"
                .into()
        )]
    );
    for which in ["self", "child"] {
        let pid = pid_in(&pids.with_extension(which));
        assert!(
            wait_until(Duration::from_secs(5), || !alive(pid)),
            "{which} {pid} survived"
        );
    }
}

#[test]
fn hostile_hpath_phase_and_arguments_are_refused() {
    let node = Node::start("hooks-hostile", None);
    let marker = node.path("marker");
    let marking = format!("#!/bin/sh\ntouch {}\n", marker.display());
    // Directories that a traversing hpath would reach.
    write_script(&node.path("etc/ganeti/evil-pre.d/run"), &marking, 0o755);
    node.hook("sub/x-pre.d", "run", &marking);
    node.hook("ok-pre.d", "run", &marking);
    let invalid = |hpath: &str| {
        format!(
            "[false, \"Invalid hooks path '{hpath}': it must be a plain name, without '/', \
             '..' or NUL bytes\"]\n"
        )
    };
    for hpath in ["../evil", "sub/x", "..", "/etc/ganeti/evil"] {
        let body = json!([hpath, "pre", {}]).to_string();
        assert_eq!(node.call("hooks_runner", &body), invalid(hpath));
    }
    for phase in ["PRE", "mid", "pre/../x", ""] {
        let body = json!(["ok", phase, {}]).to_string();
        assert_eq!(
            node.call("hooks_runner", &body),
            format!("[false, \"Unknown hooks phase '{phase}'\"]\n")
        );
    }
    let bad_args = [
        r#"["ok", "pre"]"#,
        r#"["ok", "pre", {"A": 1}]"#,
        r#"["ok", "pre", ["A"]]"#,
        r#"["ok", "pre", {"A=B": "c"}]"#,
        r#"["ok", "pre", {"": "c"}]"#,
        r#"["ok", "pre", {"A": "c\u0000d"}]"#,
        r#"[1, "pre", {}]"#,
        r#"{"hpath": "ok"}"#,
    ];
    for body in bad_args {
        let text = node.call("hooks_runner", body);
        assert!(
            text.starts_with(&format!("[false, \"{BACKEND}invalid arguments: ")),
            "{body}: {text}"
        );
    }
    assert!(!marker.exists(), "a refused call ran a script");
    // The body limit, at its value and one byte over.
    let limit = 256 * 1024;
    assert_eq!(
        node.call("hooks_runner", &padded(r#"["none", "pre", {}]"#, limit)),
        "[true, []]\n"
    );
    assert_eq!(node.announced("hooks_runner", limit + 1), 413);
    // The plain directory still works.
    assert_eq!(
        node.hooks("ok", "pre", &json!({})),
        vec![("ok-pre.d/run".into(), 2, String::new())]
    );
    assert!(marker.exists());
}

#[test]
fn iallocator_runner_runs_the_allocator_on_a_temporary_input_file() {
    let node = Node::start("hooks-ialloc", None);
    let dir = node.path("usr/lib/ganeti/iallocators");
    let seen = node.path("seen-input");
    write_script(
        &dir.join("test-alloc"),
        &format!(
            "#!/bin/sh\necho \"$1\" > {seen}\nls -l \"$1\" | cut -c1-10 >> {seen}\n\
             echo \"LC_ALL=$LC_ALL\"\ncat \"$1\"\necho to-stderr >&2\n",
            seen = seen.display()
        ),
        0o755,
    );
    write_script(
        &dir.join("fail-alloc"),
        "#!/bin/sh\necho oops\necho bad >&2\nexit 3\n",
        0o755,
    );
    write_script(&dir.join("noexec-alloc"), "#!/bin/sh\necho x\n", 0o644);
    write_script(&dir.join("noshebang-alloc"), "echo x\n", 0o755);
    std::fs::create_dir_all(dir.join("dir-alloc")).unwrap();

    let idata = r#"{"version": 2, "request": {"type": "allocate", "name": "inst1"}}"#;
    let (ok, out) = node.call_json("iallocator_runner", &json!(["test-alloc", idata]));
    assert!(ok, "{out}");
    assert_eq!(out, json!(format!("LC_ALL=C\n{idata}")));
    let seen = std::fs::read_to_string(&seen).unwrap();
    let mut lines = seen.lines();
    let input = PathBuf::from(lines.next().unwrap());
    assert_eq!(input.parent().unwrap(), node.path("tmp"));
    let name = input.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("ganeti-iallocator.") && name.len() == "ganeti-iallocator.".len() + 6,
        "{name}"
    );
    assert_eq!(lines.next(), Some("-rw-------"));
    assert!(!input.exists(), "the input file was left behind");

    assert_eq!(
        node.call(
            "iallocator_runner",
            &json!(["fail-alloc", idata]).to_string()
        ),
        "[false, \"iallocator module 'fail-alloc' failed: exited with exit code 3, output \
         'oops\\nbad\\n'\"]\n"
    );
    for name in [
        "missing",
        "dir-alloc",
        "../../../../bin/sh",
        "test-alloc/",
        "",
    ] {
        assert_eq!(
            node.call("iallocator_runner", &json!([name, idata]).to_string()),
            format!("[false, \"iallocator module '{name}' not found in the search path\"]\n"),
        );
    }
    assert_eq!(
        node.call(
            "iallocator_runner",
            &json!(["noexec-alloc", idata]).to_string()
        ),
        format!("[false, \"{BACKEND}[Errno 13] Permission denied\"]\n")
    );
    assert_eq!(
        node.call(
            "iallocator_runner",
            &json!(["noshebang-alloc", idata]).to_string()
        ),
        format!("[false, \"{BACKEND}[Errno 8] Exec format error\"]\n")
    );
    let text = node.call(
        "iallocator_runner",
        r#"["test-alloc", {"not": "a string"}]"#,
    );
    assert!(
        text.starts_with(&format!("[false, \"{BACKEND}invalid arguments: ")),
        "{text}"
    );
    // The body limit, at its value and one byte over.
    let limit = 16 * 1024 * 1024;
    assert_eq!(
        node.call("iallocator_runner", &padded(r#"["missing", ""]"#, limit)),
        "[false, \"iallocator module 'missing' not found in the search path\"]\n"
    );
    assert_eq!(node.announced("iallocator_runner", limit + 1), 413);
    // No temporary file is left by any of these calls.
    let left: Vec<_> = std::fs::read_dir(node.path("tmp")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn output_limits_at_their_value_and_one_byte_over() {
    const MAX_HOOK_OUTPUT: usize = 64 * 1024;
    const MAX_IALLOCATOR_OUTPUT: usize = 16 * 1024 * 1024;
    let node = Node::start("hooks-limits", None);
    let emit = |n: usize, c: char| format!("head -c {n} /dev/zero | tr '\\0' {c}");
    for (name, n) in [("exact", MAX_HOOK_OUTPUT), ("over", MAX_HOOK_OUTPUT + 1)] {
        node.hook(
            "big-post.d",
            name,
            &format!("#!/bin/sh\n{}\n{} >&2\n", emit(n, 'a'), emit(n, 'b')),
        );
    }
    let results = node.hooks("big", "post", &base_env());
    let kept = format!(
        "{}{}",
        "a".repeat(MAX_HOOK_OUTPUT),
        "b".repeat(MAX_HOOK_OUTPUT)
    );
    assert_eq!(results.len(), 2);
    for (script, status, output) in results {
        assert_eq!(status, 2, "{script}");
        assert!(output == kept, "{script}: {} bytes", output.len());
    }

    let dir = node.path("usr/lib/ganeti/iallocators");
    for (name, n) in [
        ("exact", MAX_IALLOCATOR_OUTPUT),
        ("over", MAX_IALLOCATOR_OUTPUT + 1),
    ] {
        write_script(
            &dir.join(name),
            &format!("#!/bin/sh\n{}\necho err >&2\n", emit(n, 'x')),
            0o755,
        );
    }
    let (ok, out) = node.call_json("iallocator_runner", &json!(["exact", "{}"]));
    assert!(ok);
    assert!(out.as_str().unwrap() == "x".repeat(MAX_IALLOCATOR_OUTPUT));
    let (ok, out) = node.call_json("iallocator_runner", &json!(["over", "{}"]));
    assert!(!ok);
    let want = format!(
        "iallocator module 'over' failed: its output is longer than {MAX_IALLOCATOR_OUTPUT} \
         bytes, output '{}err\n'",
        "x".repeat(MAX_HOOK_OUTPUT)
    );
    assert!(
        out.as_str().unwrap() == want,
        "{} bytes",
        out.as_str().unwrap().len()
    );
}
