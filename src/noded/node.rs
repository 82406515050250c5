//! Node and cluster basics. So far: `version`.

use serde::de::IgnoredAny;
use serde_json::Value;

use super::{decode, Context, Procedure, RpcError};
use crate::constants::PROTOCOL_VERSION;

/// Largest body accepted by the procedures of this area.
const SMALL_BODY: usize = 64 * 1024;

pub const PROCEDURES: &[Procedure] = &[Procedure {
    name: "version",
    max_body: SMALL_BODY,
    handler: version,
}];

/// `version`: the protocol version; arguments are ignored (2.5.2 accepts
/// any JSON there), but must be JSON.
fn version(_ctx: &Context, body: &[u8]) -> Result<Value, RpcError> {
    let _: IgnoredAny = decode(body)?;
    Ok(Value::from(PROTOCOL_VERSION))
}
