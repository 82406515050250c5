//! ganeti-rs: Ganeti 2.5.2's node daemon and master daemon in Rust.
//!
//! Module map (dependencies point downwards): `sys` (all libc calls and the
//! only `unsafe`), `paths`, `constants`, `daemon` (shared runtime), `http`, `tls`,
//! `rpc`, `errors`, `objects`, `config`, `ssconf`, `luxi`, `locking`, `jqueue`,
//! `hypervisor`, `storage`, `osdef`, `hooks`, `noded`, `masterd`. See DESIGN.md section 2.

pub mod bootstrap;
pub mod cli;
pub mod cmd;
pub mod cmdlib;
pub mod config;
pub mod constants;
pub mod daemon;
pub mod errors;
pub mod fsutil;
pub mod hooks;
pub mod http;
pub mod hypervisor;
pub mod jqueue;
pub mod locking;
pub mod luxi;
pub mod masterd;
pub mod noded;
pub mod objects;
pub mod opcodes;
pub mod osdef;
pub mod paths;
pub mod proc;
pub mod rpc;
pub mod ssconf;
pub mod storage;
pub mod sys;
pub mod tls;
