//! Command tables and option parsing for the `gnt-*` tools (2.5.2's
//! `_ParseArgs`, `_CheckArguments` and `GenericMain`, built on getopts).
//!
//! Like 2.5.2's optparse set-up: the first argument names the command
//! (aliases allowed); options come before the positional arguments
//! (parsing stops at the first one, `disable_interspersed_args`); every
//! command also takes `-d`/`--debug` (repeatable) and `-h`/`--help`;
//! repeated options are allowed, the last value counts. Option errors print
//! the usage and optparse's message and exit 2; a wrong number of
//! arguments prints 2.5.2's "Error: Command ... expects ..." and exits 1.

use std::io::Write;

use getopts::{Fail, Matches, Options, ParsingStyle};

use super::format::{format_error, to_stderr, to_stdout};
use super::CliError;
use crate::constants::{EXIT_FAILURE, EXIT_SUCCESS, RELEASE_VERSION};
use crate::daemon::logging::{self, LogConfig};
use crate::paths::Paths;

/// Exit code of optparse's usage errors.
pub const EXIT_USAGE: i32 = 2;
/// Longest argument accepted on a command line (a job id, a cluster name,
/// a parameter list): anything longer is refused before it is used.
pub const MAX_ARG_LEN: usize = 4096;

/// What an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A switch (`store_true`/`store_false`/`count`).
    Flag,
    /// A value; the last one given counts.
    Value(&'static str),
    /// An integer value (optparse `type="int"`).
    Int(&'static str),
    /// A value, repeatable, all kept (optparse `action="append"`).
    Multi(&'static str),
    /// One of a fixed set of words (optparse `choices`).
    Choice(&'static str, &'static [&'static str]),
}

/// One option of a command.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// Short form without the dash (`"d"`), or `""`.
    pub short: &'static str,
    /// Long form without the dashes.
    pub long: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

/// `-d`/`--debug`, given to every command (2.5.2's `COMMON_OPTS`).
pub const DEBUG_OPT: Opt = Opt {
    short: "d",
    long: "debug",
    kind: Kind::Flag,
    help: "Turn debugging on",
};
pub const NOHDR_OPT: Opt = Opt {
    short: "",
    long: "no-headers",
    kind: Kind::Flag,
    help: "Don't display column headers",
};
pub const SEP_OPT: Opt = Opt {
    short: "",
    long: "separator",
    kind: Kind::Value("SEPARATOR"),
    help: "Separator between output fields (defaults to one space)",
};
pub const FIELDS_OPT: Opt = Opt {
    short: "o",
    long: "output",
    kind: Kind::Value("FIELDS"),
    help: "Comma separated list of output fields",
};
pub const SUBMIT_OPT: Opt = Opt {
    short: "",
    long: "submit",
    kind: Kind::Flag,
    help: "Submit the job and return the job ID, but don't wait for the job to finish",
};
pub const DRY_RUN_OPT: Opt = Opt {
    short: "",
    long: "dry-run",
    kind: Kind::Flag,
    help:
        "Do not execute the operation, just run the check steps and verify it it could be executed",
};
/// The priority names, most urgent first, and their opcode values.
pub const PRIORITIES: [(&str, i64); 3] = [("low", 10), ("normal", 0), ("high", -10)];
pub const PRIORITY_OPT: Opt = Opt {
    short: "",
    long: "priority",
    kind: Kind::Choice("low|normal|high", &["low", "normal", "high"]),
    help: "Priority for opcode processing",
};
pub const YES_DOIT_OPT: Opt = Opt {
    short: "",
    long: "yes-do-it",
    kind: Kind::Flag,
    help: "Destroy cluster",
};

/// How many positional arguments a command takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arity {
    pub min: usize,
    /// `None`: no upper bound.
    pub max: Option<usize>,
}

/// No arguments (`ARGS_NONE`).
pub const NO_ARGS: Arity = Arity {
    min: 0,
    max: Some(0),
};

/// What a command receives.
pub struct Invocation {
    /// `gnt-cluster`.
    pub binary: String,
    /// The command after alias resolution (`init`).
    pub command: String,
    pub matches: Matches,
    pub args: Vec<String>,
    pub paths: Paths,
}

impl Invocation {
    /// Does the command have this option (2.5.2's `hasattr(opts, ...)`)?
    pub fn has(&self, long: &str) -> bool {
        self.matches.opt_defined(long)
    }

    /// Was the switch given?
    pub fn flag(&self, long: &str) -> bool {
        self.has(long) && self.matches.opt_present(long)
    }

    /// How many times the switch was given (`-d -d`).
    pub fn count(&self, long: &str) -> usize {
        if self.has(long) {
            self.matches.opt_count(long)
        } else {
            0
        }
    }

    /// The last value of an option.
    pub fn value(&self, long: &str) -> Option<String> {
        self.values(long).pop()
    }

    /// Every value of a repeatable option, in order.
    pub fn values(&self, long: &str) -> Vec<String> {
        if self.has(long) {
            self.matches.opt_strs(long)
        } else {
            Vec::new()
        }
    }

    /// The last value of an integer option (checked while parsing).
    pub fn int(&self, long: &str) -> Option<i64> {
        self.value(long).and_then(|v| parse_int(&v))
    }

    /// `-d` count: the opcodes' `debug_level`.
    pub fn debug(&self) -> u32 {
        self.count(DEBUG_OPT.long) as u32
    }
}

/// The body of a command.
pub type Runner = fn(&Invocation) -> Result<i32, CliError>;

/// One command of a tool (2.5.2's `commands` table entry).
pub struct Command {
    pub name: &'static str,
    pub run: Runner,
    pub arity: Arity,
    pub options: &'static [Opt],
    /// The arguments part of the usage line.
    pub usage: &'static str,
    pub description: &'static str,
}

/// A tool: its name, commands and aliases.
pub struct Tool {
    pub binary: &'static str,
    pub commands: &'static [Command],
    /// `(alias, command)`.
    pub aliases: &'static [(&'static str, &'static str)],
}

/// Python's `int()` of an option value: optional sign, decimal digits,
/// surrounding white space allowed.
pub fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

fn option_table(cmd: &Command) -> Options {
    let mut o = Options::new();
    o.parsing_style(ParsingStyle::StopAtFirstFree);
    o.optflagmulti("h", "help", "show this help message and exit");
    for opt in cmd.options.iter().chain(std::iter::once(&DEBUG_OPT)) {
        match opt.kind {
            Kind::Flag => o.optflagmulti(opt.short, opt.long, opt.help),
            Kind::Value(hint) | Kind::Int(hint) | Kind::Multi(hint) | Kind::Choice(hint, _) => {
                o.optmulti(opt.short, opt.long, opt.help, hint)
            }
        };
    }
    o
}

/// `-x` or `--xyz`, as optparse names an option in messages.
fn dashed(name: &str) -> String {
    if name.chars().count() == 1 {
        format!("-{name}")
    } else {
        format!("--{name}")
    }
}

/// optparse's message for a getopts failure.
fn fail_text(f: &Fail) -> String {
    match f {
        Fail::UnrecognizedOption(o) => format!("no such option: {}", dashed(o)),
        Fail::ArgumentMissing(o) => format!("{} option requires an argument", dashed(o)),
        Fail::UnexpectedArgument(o) => format!("{} option does not take a value", dashed(o)),
        Fail::OptionMissing(o) | Fail::OptionDuplicated(o) => {
            format!("invalid use of option {}", dashed(o))
        }
    }
}

/// `Usage\n=====\n  gnt-job list [job_id ...]` (optparse's titled help).
fn usage_block(tool: &Tool, cmd: &Command) -> String {
    format!("Usage\n=====\n  {} {} {}", tool.binary, cmd.name, cmd.usage)
        .trim_end()
        .to_string()
}

/// The `--help` text of one command, optparse-like: usage, description,
/// then every option with its help.
pub fn command_help(tool: &Tool, cmd: &Command) -> String {
    let mut out = usage_block(tool, cmd);
    out.push_str("\n\n");
    out.push_str(&wrap(cmd.description, 78, ""));
    out.push_str("\n\nOptions\n=======\n");
    let mut lines: Vec<(String, &str)> =
        vec![("-h, --help".to_string(), "show this help message and exit")];
    for opt in cmd.options.iter().chain(std::iter::once(&DEBUG_OPT)) {
        let arg = match opt.kind {
            Kind::Flag => String::new(),
            Kind::Value(h) | Kind::Int(h) | Kind::Multi(h) | Kind::Choice(h, _) => {
                format!("={h}")
            }
        };
        let spec = if opt.short.is_empty() {
            format!("--{}{arg}", opt.long)
        } else {
            let short_arg = if arg.is_empty() {
                String::new()
            } else {
                format!(" {}", &arg[1..])
            };
            format!("-{}{short_arg}, --{}{arg}", opt.short, opt.long)
        };
        lines.push((spec, opt.help));
    }
    for (spec, help) in lines {
        let indent = " ".repeat(24);
        let text = wrap(help, 54, &indent);
        if spec.len() <= 20 {
            out.push_str(&format!("  {spec:<22}{}\n", text.trim_start()));
        } else {
            out.push_str(&format!("  {spec}\n{indent}{}\n", text.trim_start()));
        }
    }
    out
}

/// Wraps `text` at word boundaries to `width` columns, continuation lines
/// starting with `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut lines: Vec<String> = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().map(|l| l.len()).unwrap_or(0);
        if last > 0 && last + 1 + word.len() > width {
            lines.push(String::new());
        }
        if let Some(l) = lines.last_mut() {
            if !l.is_empty() {
                l.push(' ');
            }
            l.push_str(word);
        }
    }
    lines.join(&format!("\n{indent}"))
}

/// The list of commands, printed when none (or an unknown one) is given.
pub fn tool_usage(tool: &Tool) -> String {
    let mut out = format!(
        "Usage: {0} {{command}} [options...] [argument...]\n\
         {0} <command> --help to see details, or man {0}\n\nCommands:\n",
        tool.binary
    );
    let mut names: Vec<&Command> = tool.commands.iter().collect();
    names.sort_by_key(|c| c.name);
    let mlen = names
        .iter()
        .map(|c| c.name.len() + 1)
        .max()
        .unwrap_or(0)
        .min(60);
    for c in names {
        let cmdstr = format!(" {}", c.name);
        let text = wrap(c.description, 79 - 3 - mlen, &" ".repeat(mlen + 3));
        out.push_str(&format!("{cmdstr:<mlen$} - {text}\n"));
    }
    out
}

/// `_CheckArguments`: the message when the count is wrong.
pub fn check_arity(cmd: &str, arity: Arity, n: usize) -> Result<(), String> {
    if n > 0 && arity.max == Some(0) {
        return Err(format!("Error: Command {cmd} expects no arguments"));
    }
    if let Some(max) = arity.max {
        if arity.min == max && n != max {
            return Err(format!("Error: Command {cmd} expects {max} argument(s)"));
        }
        if n > max {
            return Err(format!(
                "Error: Command {cmd} expects only {max} argument(s)"
            ));
        }
    }
    if n < arity.min {
        return Err(format!(
            "Error: Command {cmd} expects at least {} argument(s)",
            arity.min
        ));
    }
    Ok(())
}

/// Checks typed option values as optparse does (integers, choices).
fn check_values(cmd: &Command, m: &Matches) -> Result<(), String> {
    for opt in cmd.options {
        for v in m.opt_strs(opt.long) {
            match opt.kind {
                Kind::Int(_) if parse_int(&v).is_none() => {
                    return Err(format!(
                        "option {}: invalid integer value: '{v}'",
                        dashed(opt.long)
                    ))
                }
                Kind::Choice(_, choices) if !choices.contains(&v.as_str()) => {
                    let list: Vec<String> = choices.iter().map(|c| format!("'{c}'")).collect();
                    return Err(format!(
                        "option {}: invalid choice: '{v}' (choose from {})",
                        dashed(opt.long),
                        list.join(", ")
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// What parsing the command line found.
pub enum Parsed {
    Run(&'static Command, Invocation),
    /// Print this on stdout and exit with the code.
    Done(String, i32),
    /// Print this on stderr and exit with the code.
    Failed(String, i32),
}

/// `_ParseArgs` + `_CheckArguments` on `argv` (program name first).
pub fn parse(tool: &Tool, argv: &[String]) -> Parsed {
    if let Some(long) = argv.iter().find(|a| a.len() > MAX_ARG_LEN) {
        return Parsed::Failed(
            format!(
                "Error: an argument is longer than {MAX_ARG_LEN} bytes ({} bytes)",
                long.len()
            ),
            EXIT_FAILURE,
        );
    }
    if argv.get(1).map(String::as_str) == Some("--version") {
        return Parsed::Done(
            format!(
                "{} (ganeti v{RELEASE_VERSION}) {RELEASE_VERSION}\nganeti-rs {}\n",
                tool.binary,
                env!("CARGO_PKG_VERSION")
            ),
            EXIT_SUCCESS,
        );
    }
    let wanted = argv.get(1).map(String::as_str).unwrap_or("");
    let name = tool
        .aliases
        .iter()
        .find(|(alias, _)| *alias == wanted)
        .map(|(_, target)| *target)
        .unwrap_or(wanted);
    let Some(cmd) = tool.commands.iter().find(|c| c.name == name) else {
        return Parsed::Done(tool_usage(tool), EXIT_FAILURE);
    };
    let table = option_table(cmd);
    let rest = &argv[2..];
    let usage_error = |msg: String| {
        Parsed::Failed(
            format!(
                "{}\n\n{}: error: {msg}",
                usage_block(tool, cmd),
                tool.binary
            ),
            EXIT_USAGE,
        )
    };
    let matches = match table.parse(rest) {
        Ok(m) => m,
        Err(f) => return usage_error(fail_text(&f)),
    };
    if matches.opt_present("help") {
        return Parsed::Done(command_help(tool, cmd), EXIT_SUCCESS);
    }
    if let Err(msg) = check_values(cmd, &matches) {
        return usage_error(msg);
    }
    let args = matches.free.clone();
    if let Err(msg) = check_arity(cmd.name, cmd.arity, args.len()) {
        return Parsed::Failed(msg, EXIT_FAILURE);
    }
    Parsed::Run(
        cmd,
        Invocation {
            binary: tool.binary.to_string(),
            command: cmd.name.to_string(),
            matches,
            args,
            paths: Paths::from_env(),
        },
    )
}

/// Logging as 2.5.2's `SetupLogging(LOG_COMMANDS, "<tool> <command>")`:
/// INFO and above (DEBUG with `-d`) to `commands.log`, and with `-d` to
/// stderr too. A log file that cannot be opened is skipped.
fn setup_logging(inv: &Invocation) {
    let program: &'static str = Box::leak(format!("{} {}", inv.binary, inv.command).into());
    let debug = inv.debug() > 0;
    let file = inv.paths.log_dir().join("commands.log");
    let cfg = |file| LogConfig {
        program,
        file,
        syslog: false,
        stderr: debug,
        debug,
        thread_names: false,
        redirect_stdio: false,
    };
    if logging::init(cfg(Some(file))).is_err() {
        let _ = logging::init(cfg(None));
    }
}

/// `GenericMain`: parses, runs the command, turns its error into 2.5.2's
/// message (on stderr) and exit code.
pub fn generic_main(tool: &Tool, argv: &[String]) -> i32 {
    let (cmd, inv) = match parse(tool, argv) {
        Parsed::Run(cmd, inv) => (cmd, inv),
        Parsed::Done(text, code) => {
            let mut out = std::io::stdout();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            return code;
        }
        Parsed::Failed(text, code) => {
            to_stderr(&text);
            return code;
        }
    };
    setup_logging(&inv);
    let rest = argv.get(2..).unwrap_or_default().join(" ");
    if rest.is_empty() {
        log::info!("run with no arguments");
    } else {
        log::info!("run with arguments '{rest}'");
    }
    match (cmd.run)(&inv) {
        Ok(code) => code,
        Err(e) => {
            let (code, text) = format_error(&e);
            if !matches!(e, CliError::JobSubmitted(_)) {
                log::error!("Error during command processing: {text}");
            }
            to_stderr(&text);
            code
        }
    }
}

/// Prints to stdout (re-exported for the tools).
pub fn out(text: &str) {
    to_stdout(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(_: &Invocation) -> Result<i32, CliError> {
        Ok(0)
    }

    static CMDS: [Command; 2] = [
        Command {
            name: "list",
            run: noop,
            arity: Arity { min: 0, max: None },
            options: &[NOHDR_OPT, SEP_OPT, FIELDS_OPT],
            usage: "[job_id ...]",
            description: "List the jobs and their status.",
        },
        Command {
            name: "delay",
            run: noop,
            arity: Arity {
                min: 1,
                max: Some(1),
            },
            options: &[
                Opt {
                    short: "r",
                    long: "repeat",
                    kind: Kind::Int("N"),
                    help: "repeat",
                },
                PRIORITY_OPT,
            ],
            usage: "<duration>",
            description: "Executes a TestDelay OpCode",
        },
    ];
    static TOOL: Tool = Tool {
        binary: "gnt-test",
        commands: &CMDS,
        aliases: &[("show", "list")],
    };

    fn argv(a: &[&str]) -> Vec<String> {
        std::iter::once("gnt-test")
            .chain(a.iter().copied())
            .map(String::from)
            .collect()
    }

    fn failed(a: &[&str]) -> (String, i32) {
        match parse(&TOOL, &argv(a)) {
            Parsed::Failed(t, c) => (t, c),
            _ => panic!("expected a failure for {a:?}"),
        }
    }

    #[test]
    fn options_stop_at_the_first_argument_and_repeat() {
        let Parsed::Run(cmd, inv) = parse(
            &TOOL,
            &argv(&["show", "-d", "-d", "--separator=:", "-o", "id", "7", "-o"]),
        ) else {
            panic!("not run");
        };
        assert_eq!(cmd.name, "list");
        assert_eq!(inv.debug(), 2);
        assert_eq!(inv.value("separator").as_deref(), Some(":"));
        assert_eq!(inv.args, vec!["7", "-o"]);
        let Parsed::Run(_, inv) = parse(&TOOL, &argv(&["delay", "-r", "1", "-r", "3", "2"])) else {
            panic!("not run");
        };
        assert_eq!(inv.int("repeat"), Some(3));
    }

    #[test]
    fn optparse_messages_and_exit_codes() {
        let (t, c) = failed(&["list", "--bogus"]);
        assert_eq!(c, EXIT_USAGE);
        assert!(t.starts_with("Usage\n=====\n  gnt-test list [job_id ...]\n\n"));
        assert!(
            t.ends_with("gnt-test: error: no such option: --bogus"),
            "{t}"
        );
        let (t, _) = failed(&["list", "-o"]);
        assert!(t.ends_with("error: -o option requires an argument"), "{t}");
        let (t, _) = failed(&["delay", "-r", "x", "1"]);
        assert!(
            t.ends_with("option --repeat: invalid integer value: 'x'"),
            "{t}"
        );
        let (t, _) = failed(&["delay", "--priority", "urgent", "1"]);
        assert!(
            t.ends_with("invalid choice: 'urgent' (choose from 'low', 'normal', 'high')"),
            "{t}"
        );
    }

    #[test]
    fn argument_counts_as_2_5_2() {
        assert_eq!(
            failed(&["delay"]),
            ("Error: Command delay expects 1 argument(s)".into(), 1)
        );
        assert_eq!(
            check_arity("x", NO_ARGS, 1),
            Err("Error: Command x expects no arguments".into())
        );
        assert_eq!(
            check_arity(
                "x",
                Arity {
                    min: 1,
                    max: Some(2)
                },
                3
            ),
            Err("Error: Command x expects only 2 argument(s)".into())
        );
        assert_eq!(
            check_arity("x", Arity { min: 2, max: None }, 1),
            Err("Error: Command x expects at least 2 argument(s)".into())
        );
        assert_eq!(check_arity("x", Arity { min: 1, max: None }, 9), Ok(()));
    }

    #[test]
    fn unknown_command_lists_the_commands() {
        let Parsed::Done(text, 1) = parse(&TOOL, &argv(&["nope"])) else {
            panic!("expected the command list");
        };
        assert!(text.starts_with("Usage: gnt-test {command} [options...] [argument...]\n"));
        assert!(
            text.contains("\n delay - Executes a TestDelay OpCode\n"),
            "{text}"
        );
        assert!(text.contains("\n list  - List the jobs"), "{text}");
    }

    #[test]
    fn help_lists_every_long_option() {
        let Parsed::Done(text, 0) = parse(&TOOL, &argv(&["list", "--help"])) else {
            panic!("expected help");
        };
        for o in [
            "--no-headers",
            "--separator=SEPARATOR",
            "--output=FIELDS",
            "--debug",
        ] {
            assert!(text.contains(o), "{o} missing: {text}");
        }
    }

    #[test]
    fn an_argument_one_byte_over_the_limit_is_refused() {
        let fits = "1".repeat(MAX_ARG_LEN);
        assert!(matches!(
            parse(&TOOL, &argv(&["list", &fits])),
            Parsed::Run(..)
        ));
        let over = "1".repeat(MAX_ARG_LEN + 1);
        let (t, c) = failed(&["list", &over]);
        assert_eq!(c, EXIT_FAILURE);
        assert!(t.contains("longer than 4096 bytes"), "{t}");
    }

    #[test]
    fn python_int() {
        assert_eq!(parse_int(" 12 "), Some(12));
        assert_eq!(parse_int("-3"), Some(-3));
        assert_eq!(parse_int("1.5"), None);
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_int("99999999999999999999"), None);
    }
}
