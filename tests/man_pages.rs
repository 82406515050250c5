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
