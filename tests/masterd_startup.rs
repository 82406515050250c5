//! The master daemon's start-up checks of ganeti-masterd(8), on the real
//! binary in temporary roots.

mod common;

use common::*;

#[test]
fn missing_ssconf_exits_12_with_2_5_2_message() {
    let root = Root::new("m-nossconf");
    let out = root.command(MASTERD).arg("-f").output().unwrap();
    assert_eq!(out.status.code(), Some(12));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("Cluster configuration incomplete: 'Can't read from the ssconf file "),
        "{stdout}"
    );
    assert!(stdout.contains("ssconf_master_node"), "{stdout}");
}

#[test]
fn another_master_exits_11_silently_unless_debugging() {
    let root = Root::new("m-other");
    root.set_master("node2.example.com");
    for extra in [&[][..], &["--no-voting", "--yes-do-it"]] {
        let out = root
            .command(MASTERD)
            .arg("-f")
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(11));
        assert!(out.stdout.is_empty() && out.stderr.is_empty());
    }
    let out = root.command(MASTERD).args(["-f", "-d"]).output().unwrap();
    assert_eq!(out.status.code(), Some(11));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Not master, exiting."
    );
}

#[test]
fn master_without_configuration_is_refused() {
    let root = Root::new("m-noconfig");
    root.set_master("node1.example.com");
    let out = root.command(MASTERD).arg("-f").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("Configuration error while opening the configuration file:"),
        "{err}"
    );
    assert!(!root.pid_file("ganeti-masterd").exists());
}

#[test]
fn options() {
    let root = Root::new("m-opts");
    let out = root.command(MASTERD).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ganeti-masterd (ganeti) 2.5.2\n"));
    let out = root.command(MASTERD).arg("-p").arg("1").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "masterd has no -p");
    let out = root.command(MASTERD).arg("stray").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Usage: ganeti-masterd [-f] [-d]"
    );
}
