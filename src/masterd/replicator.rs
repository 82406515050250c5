//! Job queue replication to the master candidates (2.5.2 `JobQueue`'s
//! `_UpdateJobQueueFile` / `_RenameFilesUnlocked`, spec masterd-luxi 3.6):
//! `jobqueue_update [path, blob]` and `jobqueue_rename [[old, new], ...]`
//! to every master candidate but this node, addressed by the primary IP of
//! the configuration. Failures are logged only, nothing is retried.
//!
//! The list of candidates is a copy taken from the configuration when the
//! queue opens and again after every opcode that wrote the configuration
//! ([`RpcReplicator::refresh`]), so a replication (which runs with a job
//! locked) never waits for the configuration lock.
#![forbid(unsafe_code)]

use std::sync::{Arc, PoisonError, RwLock};

use serde_json::{json, Value};

use crate::config::ConfigWriter;
use crate::jqueue::Replicator;
use crate::rpc::blob;
use crate::rpc::client::{self, Client, NodeResult};

pub struct RpcReplicator {
    rpc: Arc<Client>,
    cfg: Arc<ConfigWriter>,
    targets: RwLock<Vec<client::Node>>,
}

impl RpcReplicator {
    pub fn new(rpc: Arc<Client>, cfg: Arc<ConfigWriter>) -> RpcReplicator {
        let r = RpcReplicator {
            rpc,
            cfg,
            targets: RwLock::new(Vec::new()),
        };
        r.refresh();
        r
    }

    /// Takes the master candidates (but this node) from the configuration
    /// again.
    pub fn refresh(&self) {
        let nodes = self.cfg.other_master_candidates();
        *self.targets.write().unwrap_or_else(PoisonError::into_inner) = nodes;
    }

    /// The nodes replicated to.
    pub fn targets(&self) -> Vec<client::Node> {
        self.targets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn call(&self, procedure: &str, what: &str, args: &Value) -> Result<(), String> {
        let nodes = self.targets();
        if nodes.is_empty() {
            return Ok(());
        }
        let results = self.rpc.call(&nodes, procedure, args);
        let mut failed = Vec::new();
        for (node, r) in &results {
            if let Some(msg) = r.fail_msg() {
                if matches!(r, NodeResult::Offline) {
                    continue;
                }
                log::error!("RPC call {procedure} ({what}) failed on node {node}: {msg}");
                failed.push(node.clone());
            }
        }
        // 2.5.2 logs an error too when about half the candidates failed.
        if !failed.is_empty() && failed.len() * 2 >= results.len() {
            log::error!(
                "{procedure} ({what}) failed on {} of {} master candidates",
                failed.len(),
                results.len()
            );
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!("{procedure} failed on {}", failed.join(", ")))
        }
    }
}

impl Replicator for RpcReplicator {
    fn update(&self, wire_path: &str, content: &[u8]) -> Result<(), String> {
        if self.targets().is_empty() {
            return Ok(());
        }
        let args = json!([wire_path, blob::encode(content)]);
        self.call("jobqueue_update", wire_path, &args)
    }

    fn rename(&self, pairs: &[(String, String)]) -> Result<(), String> {
        if pairs.is_empty() {
            return Ok(());
        }
        let args = Value::Array(pairs.iter().map(|(a, b)| json!([a, b])).collect());
        let what = pairs.first().map(|(a, _)| a.clone()).unwrap_or_default();
        self.call("jobqueue_rename", &what, &args)
    }
}
