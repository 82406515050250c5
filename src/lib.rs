//! ganeti-rs: Ganeti 2.5.2's node daemon and master daemon in Rust.
//!
//! Module map (dependencies point downwards): `sys` (all libc calls and the
//! only `unsafe`), `paths`, `constants`, `daemon` (shared runtime), `http`, `tls`,
//! `rpc`, `ssconf`, `hypervisor`, `noded`, `masterd`. See DESIGN.md section 2.

pub mod cmd;
pub mod constants;
pub mod daemon;
pub mod fsutil;
pub mod http;
pub mod hypervisor;
pub mod masterd;
pub mod noded;
pub mod paths;
pub mod rpc;
pub mod ssconf;
pub mod sys;
pub mod tls;
