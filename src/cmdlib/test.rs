//! `OP_TEST_DELAY` (2.5.2 `LUTestDelay`): sleeps on the master and/or on
//! nodes (RPC `test_delay`), `repeat` times, logging
//! `" - INFO: Test delay iteration i/(repeat-1)"` when `repeat` > 0. The
//! nodes of `on_nodes` are expanded and locked.
//!
//! Differences from 2.5.2: a negative duration on the master fails with
//! "Error during master delay test" (2.5.2 meant to, but its check tested a
//! tuple that is always true and returned at once); the sleep on the master
//! ends early when the daemon stops, failing the opcode with that message
//! and the reason, instead of holding the shutdown until it ends.
#![forbid(unsafe_code)]

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{raise, Env, LogicalUnit, LuResult};
use crate::config;
use crate::errors::GanetiError;
use crate::locking::{Level, Names};
use crate::opcodes;

/// Longest sleep accepted (a day, as the node daemon's RPC timeout caps it).
pub const MAX_DELAY: f64 = 86400.0;

const FAILED: &str = "Error during master delay test";

/// The sleep on the master: 0 to [`MAX_DELAY`] seconds.
pub fn master_delay(duration: f64) -> Result<Duration, GanetiError> {
    if !(0.0..=MAX_DELAY).contains(&duration) {
        return Err(GanetiError::exec(FAILED));
    }
    Ok(Duration::from_secs_f64(duration))
}

pub struct TestDelay {
    duration: f64,
    on_master: bool,
    on_nodes: Vec<String>,
    repeat: u64,
}

impl TestDelay {
    pub fn new(op: &opcodes::TestDelay) -> TestDelay {
        TestDelay {
            duration: op.duration,
            on_master: op.on_master,
            on_nodes: op.on_nodes.clone(),
            repeat: op.repeat,
        }
    }

    fn delay(&self, env: &mut Env<'_>) -> Result<(), GanetiError> {
        if self.on_master {
            let d = master_delay(self.duration)?;
            if !env.ctx.stop.sleep(d) {
                return Err(GanetiError::exec(format!(
                    "{FAILED}: interrupted by the master daemon's shutdown"
                )));
            }
        }
        if !self.on_nodes.is_empty() {
            let results = env.call(&self.on_nodes, "test_delay", &json!([self.duration]));
            for (node, r) in &results {
                raise(r, &format!("Failure during rpc call to node {node}"))?;
            }
        }
        Ok(())
    }
}

impl LogicalUnit for TestDelay {
    fn expand_names(&mut self, env: &mut Env<'_>) -> Result<(), GanetiError> {
        if self.on_nodes.is_empty() {
            return Ok(());
        }
        let expanded = {
            let cfg = env.cfg().read();
            self.on_nodes
                .iter()
                .map(|n| config::expand_node_name(&cfg, n))
                .collect::<Result<Vec<_>, _>>()?
        };
        self.on_nodes = expanded;
        env.locks
            .needed
            .insert(Level::Node, Names::List(self.on_nodes.clone()));
        Ok(())
    }

    fn exec(&mut self, env: &mut Env<'_>) -> Result<LuResult, GanetiError> {
        if self.repeat == 0 {
            self.delay(env)?;
        } else {
            let top = self.repeat - 1;
            for i in 0..self.repeat {
                env.log_info(&format!("Test delay iteration {i}/{top}"));
                self.delay(env)?;
            }
        }
        Ok(LuResult::Value(Value::Null))
    }

    fn store_input(&self, input: &mut Map<String, Value>) {
        input.insert("on_nodes".into(), json!(self.on_nodes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_delay_limits() {
        assert_eq!(master_delay(0.0).unwrap(), Duration::ZERO);
        assert_eq!(master_delay(MAX_DELAY).unwrap(), Duration::from_secs(86400));
        for bad in [-0.001, MAX_DELAY + 1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                master_delay(bad).unwrap_err(),
                GanetiError::exec("Error during master delay test")
            );
        }
    }
}
