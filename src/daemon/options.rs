//! Command-line options of the daemons, as Ganeti 2.5.2's `GenericMain`
//! accepts them (optparse there, getopts here).
//!
//! Exit codes follow 2.5.2: a bad option is a usage error (2); positional
//! arguments are refused with exit 1.

use std::path::PathBuf;

use crate::constants;
use crate::paths::Daemon;

/// Default of `--max-clients`.
pub const MAX_CLIENTS_DEFAULT: usize = 20;
/// Largest `--max-clients`: each worker is a thread with a locked stack.
pub const MAX_CLIENTS_LIMIT: usize = 1000;

/// Where log messages go besides the log file (`--syslog`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogUsage {
    /// Log file only (2.5.2's build default).
    No,
    /// Log file and syslog.
    Yes,
    /// Syslog only.
    Only,
}

/// Options shared by both daemons, plus the few that only one has.
#[derive(Debug, Clone)]
pub struct Options {
    pub foreground: bool,
    pub debug: bool,
    pub syslog: SyslogUsage,
    /// Node daemon: `-p`.
    pub port: Option<u16>,
    /// Node daemon: `-b`.
    pub bind: Option<String>,
    /// Node daemon: false with `--no-ssl`.
    pub ssl: bool,
    pub ssl_key: Option<PathBuf>,
    pub ssl_cert: Option<PathBuf>,
    /// Node daemon: false with `--no-mlock`. The master daemon never locks.
    pub mlock: bool,
    /// Node daemon: `--max-clients`, the number of worker threads.
    pub max_clients: usize,
    /// Master daemon: `--no-voting`.
    pub no_voting: bool,
    /// Master daemon: `--yes-do-it`.
    pub yes_do_it: bool,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    Run(Options),
    /// `--help`: the text to print, exit 0.
    Help(String),
    /// `--version`: the text to print, exit 0.
    Version(String),
}

/// A command line that cannot be run; `Display` is what to print on stderr.
#[derive(Debug)]
pub enum OptionsError {
    /// An unknown option, a missing or bad value: exit 2.
    Usage {
        usage: String,
        prog: String,
        msg: String,
    },
    /// Positional arguments: exit 1, as 2.5.2's `CheckNoded`/`CheckMasterd`.
    Positional { usage: String },
}

impl OptionsError {
    pub fn exit_code(&self) -> i32 {
        match self {
            OptionsError::Usage { .. } => 2,
            OptionsError::Positional { .. } => constants::EXIT_FAILURE,
        }
    }
}

impl std::fmt::Display for OptionsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionsError::Usage { usage, prog, msg } => {
                write!(f, "{usage}\n\n{prog}: error: {msg}")
            }
            OptionsError::Positional { usage } => write!(f, "{usage}"),
        }
    }
}

fn usage_line(daemon: Daemon) -> String {
    match daemon {
        Daemon::Noded => "Usage: ganeti-noded [-f] [-d] [-p port] [-b ADDRESS]".to_string(),
        Daemon::Masterd => "Usage: ganeti-masterd [-f] [-d]".to_string(),
    }
}

fn option_table(daemon: Daemon) -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optflag("h", "help", "show this help message and exit");
    o.optflag("", "version", "show program's version number and exit");
    o.optflag("f", "foreground", "Don't detach from the current terminal");
    o.optflag("d", "debug", "Enable some debug messages");
    o.optopt(
        "",
        "syslog",
        "Enable logging to syslog (except debug messages); one of 'no', 'yes' or 'only' [no]",
        "SYSLOG",
    );
    match daemon {
        Daemon::Noded => {
            o.optopt("p", "port", "Network port (default: 1811)", "PORT");
            o.optopt("b", "bind", "Bind address (default: 0.0.0.0)", "ADDRESS");
            o.optflag("", "no-ssl", "Do not secure HTTP protocol with SSL");
            o.optopt(
                "K",
                "ssl-key",
                "SSL key path (default: /var/lib/ganeti/server.pem)",
                "SSL_KEY_PATH",
            );
            o.optopt(
                "C",
                "ssl-cert",
                "SSL certificate path (default: /var/lib/ganeti/server.pem)",
                "SSL_CERT_PATH",
            );
            o.optflag("", "no-mlock", "Do not mlock the node memory in ram");
            o.optopt(
                "",
                "max-clients",
                "Number of requests served at the same time (default: 20)",
                "N",
            );
        }
        Daemon::Masterd => {
            o.optflag(
                "",
                "no-voting",
                "Do not check that the nodes agree on this node being the master and start the daemon unconditionally",
            );
            o.optflag(
                "",
                "yes-do-it",
                "Override interactive check for --no-voting",
            );
        }
    }
    o
}

/// The `--version` text: 2.5.2's line first (scripts parse it), then ours.
pub fn version_text(daemon: Daemon) -> String {
    format!(
        "{} (ganeti) {}\nganeti-rs {}",
        daemon.name(),
        constants::RELEASE_VERSION,
        env!("CARGO_PKG_VERSION")
    )
}

/// Parses the arguments after the program name.
pub fn parse(daemon: Daemon, args: &[String]) -> Result<Parsed, OptionsError> {
    let table = option_table(daemon);
    let usage_err = |msg: String| OptionsError::Usage {
        usage: usage_line(daemon),
        prog: daemon.name().to_string(),
        msg,
    };
    let m = table.parse(args).map_err(|e| usage_err(e.to_string()))?;
    if m.opt_present("help") {
        return Ok(Parsed::Help(table.usage(&usage_line(daemon))));
    }
    if m.opt_present("version") {
        return Ok(Parsed::Version(version_text(daemon)));
    }
    if !m.free.is_empty() {
        return Err(OptionsError::Positional {
            usage: usage_line(daemon),
        });
    }
    let syslog = match m.opt_str("syslog").as_deref() {
        None | Some("no") => SyslogUsage::No,
        Some("yes") => SyslogUsage::Yes,
        Some("only") => SyslogUsage::Only,
        Some(other) => {
            return Err(usage_err(format!(
                "option --syslog: invalid choice: '{other}' (choose from 'no', 'yes', 'only')"
            )))
        }
    };
    let mut o = Options {
        foreground: m.opt_present("f"),
        debug: m.opt_present("d"),
        syslog,
        port: None,
        bind: None,
        ssl: false,
        ssl_key: None,
        ssl_cert: None,
        mlock: false,
        max_clients: MAX_CLIENTS_DEFAULT,
        no_voting: false,
        yes_do_it: false,
    };
    // getopts panics when asked about an option it was not given, so each
    // daemon reads only its own.
    match daemon {
        Daemon::Noded => {
            if let Some(p) = m.opt_str("p") {
                o.port = match p.parse::<u16>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => {
                        return Err(usage_err(format!(
                            "option -p: invalid port value: '{p}' (1-65535)"
                        )))
                    }
                };
            }
            if let Some(b) = m.opt_str("b") {
                if b.parse::<std::net::IpAddr>().is_err() {
                    return Err(usage_err(format!("option -b: invalid IP address: '{b}'")));
                }
                o.bind = Some(b);
            }
            o.ssl = !m.opt_present("no-ssl");
            o.ssl_key = m.opt_str("K").map(PathBuf::from);
            o.ssl_cert = m.opt_str("C").map(PathBuf::from);
            o.mlock = !m.opt_present("no-mlock");
            if let Some(n) = m.opt_str("max-clients") {
                o.max_clients = match n.parse::<usize>() {
                    Ok(n) if (1..=MAX_CLIENTS_LIMIT).contains(&n) => n,
                    _ => {
                        return Err(usage_err(format!(
                            "option --max-clients: invalid value: '{n}' (1-{MAX_CLIENTS_LIMIT})"
                        )))
                    }
                };
            }
        }
        Daemon::Masterd => {
            o.no_voting = m.opt_present("no-voting");
            o.yes_do_it = m.opt_present("yes-do-it");
        }
    }
    Ok(Parsed::Run(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn run(d: Daemon, a: &[&str]) -> Options {
        match parse(d, &args(a)).unwrap() {
            Parsed::Run(o) => o,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn noded_options() {
        let o = run(
            Daemon::Noded,
            &[
                "-f",
                "-d",
                "--syslog=only",
                "-p",
                "1812",
                "-b",
                "127.0.0.2",
                "--no-ssl",
                "--no-mlock",
                "-K",
                "/k",
                "--ssl-cert=/c",
                "--max-clients",
                "1",
            ],
        );
        assert_eq!(o.max_clients, 1);
        assert!(o.foreground && o.debug && !o.ssl && !o.mlock);
        assert_eq!(o.syslog, SyslogUsage::Only);
        assert_eq!(o.port, Some(1812));
        assert_eq!(o.bind.as_deref(), Some("127.0.0.2"));
        assert_eq!(o.ssl_key, Some(PathBuf::from("/k")));
        assert_eq!(o.ssl_cert, Some(PathBuf::from("/c")));
    }

    #[test]
    fn defaults() {
        let o = run(Daemon::Noded, &[]);
        assert!(!o.foreground && o.ssl && o.mlock && o.port.is_none());
        assert_eq!(o.syslog, SyslogUsage::No);
        assert_eq!(o.max_clients, 20);
        let m = run(Daemon::Masterd, &["--no-voting", "--yes-do-it"]);
        assert!(m.no_voting && m.yes_do_it && !m.mlock && !m.ssl);
    }

    #[test]
    fn bad_options_are_usage_errors() {
        for bad in [
            &["--bogus"][..],
            &["-p", "0"],
            &["-p", "65536"],
            &["-p"],
            &["--syslog=maybe"],
            &["-b", "not-an-ip"],
            &["--max-clients", "0"],
            &["--max-clients=1001"],
            &["--max-clients=x"],
        ] {
            let e = parse(Daemon::Noded, &args(bad)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
            assert!(e.to_string().starts_with("Usage: ganeti-noded"));
        }
        // Node daemon options are not master daemon options.
        let e = parse(Daemon::Masterd, &args(&["--no-ssl"])).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = parse(Daemon::Noded, &args(&["--no-voting"])).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn positional_arguments_exit_1() {
        let e = parse(Daemon::Noded, &args(&["-f", "stray"])).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            e.to_string(),
            "Usage: ganeti-noded [-f] [-d] [-p port] [-b ADDRESS]"
        );
    }

    #[test]
    fn version_and_help() {
        match parse(Daemon::Noded, &args(&["--version"])).unwrap() {
            Parsed::Version(v) => assert!(v.starts_with("ganeti-noded (ganeti) 2.5.2\n")),
            other => panic!("{other:?}"),
        }
        match parse(Daemon::Masterd, &args(&["-h"])).unwrap() {
            Parsed::Help(h) => assert!(h.contains("--no-voting") && h.contains("--yes-do-it")),
            other => panic!("{other:?}"),
        }
    }
}
