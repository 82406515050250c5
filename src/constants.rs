//! Version numbers and exit codes of Ganeti 2.5.2 that cross process borders.

/// The Ganeti release we are wire compatible with.
pub const RELEASE_VERSION: &str = "2.5.2";

/// `BuildVersion(major, minor, revision)` of Ganeti.
pub const fn build_version(major: u32, minor: u32, revision: u32) -> u32 {
    1_000_000 * major + 10_000 * minor + revision
}

/// Node RPC protocol version (`PROTOCOL_VERSION`), also the LUXI and config
/// version of 2.5.2.
pub const PROTOCOL_VERSION: u32 = build_version(2, 5, 0);

/// Exit codes (`constants.EXIT_*`).
pub const EXIT_SUCCESS: i32 = 0;
pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_NOTCLUSTER: i32 = 5;
pub const EXIT_NOTMASTER: i32 = 11;
pub const EXIT_NODESETUP_ERROR: i32 = 12;
pub const EXIT_CONFIRMATION: i32 = 13;

/// Default node daemon port when the services database has no entry.
pub const DEFAULT_NODED_PORT: u16 = 1811;

/// The Ganeti daemon users (masterd, confd, rapi, noded) of a default
/// 2.5.2 build (no `--with-user-prefix`): `upload_file` maps owner names
/// through these only.
pub const GANETI_USERS: [&str; 4] = ["root", "root", "root", "root"];
/// The Ganeti groups (masterd, confd, rapi, noded, daemons, admin) of a
/// default 2.5.2 build.
pub const GANETI_GROUPS: [&str; 6] = ["root", "root", "root", "root", "root", "root"];

#[cfg(test)]
mod tests {
    #[test]
    fn protocol_version_is_2050000() {
        assert_eq!(super::PROTOCOL_VERSION, 2_050_000);
    }
}
