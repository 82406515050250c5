//! `gnt-debug delay`: runs `OP_TEST_DELAY` (2.5.2 `client/gnt_debug.py`).

use serde_json::{json, Value};

use super::args::{
    generic_main, Arity, Command, Invocation, Kind, Opt, Tool, DRY_RUN_OPT, PRIORITY_OPT,
    SUBMIT_OPT,
};
use super::jobs::{opcode, submit_or_send};
use super::CliError;
use crate::constants::EXIT_SUCCESS;

const NO_MASTER_OPT: Opt = Opt {
    short: "",
    long: "no-master",
    kind: Kind::Flag,
    help: "Do not sleep in the master code",
};
const NODE_OPT: Opt = Opt {
    short: "n",
    long: "node",
    kind: Kind::Multi("NODE"),
    help: "Select nodes to sleep on",
};
const REPEAT_OPT: Opt = Opt {
    short: "r",
    long: "repeat",
    kind: Kind::Int("N"),
    help: "Number of times to repeat the sleep",
};

/// Python's `float()` of the duration argument: a finite number.
pub fn parse_duration(arg: &str) -> Result<f64, CliError> {
    match arg.trim().parse::<f64>() {
        Ok(d) if d.is_finite() => Ok(d),
        _ => Err(CliError::prereq1(format!("Invalid duration '{arg}'"))),
    }
}

/// The opcode of `gnt-debug delay` (generic options are added later).
pub fn delay_opcode(duration: f64, on_master: bool, on_nodes: Vec<String>, repeat: i64) -> Value {
    Value::Object(opcode(
        "OP_TEST_DELAY",
        json!({
            "duration": duration,
            "on_master": on_master,
            "on_nodes": on_nodes,
            "repeat": repeat,
        }),
    ))
}

fn delay(inv: &Invocation) -> Result<i32, CliError> {
    let duration = parse_duration(&inv.args[0])?;
    let op = delay_opcode(
        duration,
        !inv.flag(NO_MASTER_OPT.long),
        inv.values(NODE_OPT.long),
        inv.int(REPEAT_OPT.long).unwrap_or(0),
    );
    let Value::Object(op) = op else {
        return Err(CliError::Other("opcode is not an object".into()));
    };
    submit_or_send(inv, op)?;
    Ok(EXIT_SUCCESS)
}

static COMMANDS: [Command; 1] = [Command {
    name: "delay",
    run: delay,
    arity: Arity {
        min: 1,
        max: Some(1),
    },
    options: &[
        NO_MASTER_OPT,
        NODE_OPT,
        REPEAT_OPT,
        DRY_RUN_OPT,
        PRIORITY_OPT,
        SUBMIT_OPT,
    ],
    usage: "[opts...] <duration>",
    description: "Executes a TestDelay OpCode",
}];

/// The `gnt-debug` tool (only `delay` so far).
pub static TOOL: Tool = Tool {
    binary: "gnt-debug",
    commands: &COMMANDS,
    aliases: &[],
};

/// `gnt-debug`'s main: the exit code.
pub fn main(argv: &[String]) -> i32 {
    generic_main(&TOOL, argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0.1").unwrap(), 0.1);
        assert_eq!(parse_duration("1e1").unwrap(), 10.0);
        assert_eq!(parse_duration("-1").unwrap(), -1.0);
        for bad in ["x", "inf", "nan", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn opcode_as_2_5_2_sends_it() {
        assert_eq!(
            delay_opcode(0.1, true, vec![], 0),
            json!({"OP_ID": "OP_TEST_DELAY", "duration": 0.1, "on_master": true,
                   "on_nodes": [], "repeat": 0})
        );
    }
}
