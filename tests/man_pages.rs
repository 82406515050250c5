//! The man pages document every long option the binaries accept, and no
//! option they do not.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

fn long_options(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("--") {
        let start = i + pos + 2;
        let end = start
            + bytes[start..]
                .iter()
                .take_while(|b| b.is_ascii_lowercase() || **b == b'-')
                .count();
        let name = text[start..end].trim_end_matches('-');
        if !name.is_empty() && bytes[start].is_ascii_lowercase() {
            out.insert(name.to_string());
        }
        i = end.max(start);
    }
    out
}

fn check(bin: &str, page: &str) {
    let help = Command::new(bin).arg("--help").output().unwrap();
    let accepted = long_options(&String::from_utf8_lossy(&help.stdout));
    compare(accepted, page);
}

/// The commands a `gnt-*` tool lists when run without one.
fn tool_commands(bin: &str) -> Vec<String> {
    let out = Command::new(bin).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .filter(|l| l.starts_with(' ') && l.contains(" - "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

/// A `gnt-*` tool: the options of every command's `--help`, plus
/// `--version`.
fn check_tool(bin: &str, page: &str, at_least: &[&str]) {
    let commands = tool_commands(bin);
    for c in at_least {
        assert!(
            commands.iter().any(|x| x == c),
            "{bin} lacks {c}: {commands:?}"
        );
    }
    let mut accepted = BTreeSet::from(["version".to_string()]);
    for c in &commands {
        let help = Command::new(bin)
            .args([c.as_str(), "--help"])
            .output()
            .unwrap();
        assert!(help.status.success(), "{bin} {c} --help");
        accepted.extend(long_options(&String::from_utf8_lossy(&help.stdout)));
    }
    compare(accepted, page);
}

fn compare(accepted: BTreeSet<String>, page: &str) {
    let roff = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("man8")
            .join(page),
    )
    .unwrap()
    .replace("\\-", "-");
    assert!(
        accepted.len() >= 5,
        "too few options parsed from --help: {accepted:?}"
    );
    let documented = long_options(&roff);
    let missing: Vec<_> = accepted.difference(&documented).collect();
    assert!(missing.is_empty(), "{page} lacks {missing:?}");
    let extra: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        extra.is_empty(),
        "{page} documents options the binary refuses: {extra:?}"
    );
}

#[test]
fn noded_page_matches_the_binary() {
    check(common::NODED, "ganeti-noded.8");
}

#[test]
fn masterd_page_matches_the_binary() {
    check(common::MASTERD, "ganeti-masterd.8");
}

#[test]
fn gnt_cluster_page_matches_the_binary() {
    check_tool(
        env!("CARGO_BIN_EXE_gnt-cluster"),
        "gnt-cluster.8",
        &[
            "init",
            "destroy",
            "getmaster",
            "info",
            "redist-conf",
            "queue",
            "master-failover",
        ],
    );
}

#[test]
fn gnt_job_page_matches_the_binary() {
    check_tool(
        env!("CARGO_BIN_EXE_gnt-job"),
        "gnt-job.8",
        &["list", "info", "watch", "cancel", "archive", "autoarchive"],
    );
}

#[test]
fn gnt_debug_page_matches_the_binary() {
    check_tool(env!("CARGO_BIN_EXE_gnt-debug"), "gnt-debug.8", &["delay"]);
}
