//! The node RPC wire format: the `[success, payload]` envelope, serialized
//! the way Ganeti's `serializer.DumpJson` writes it (`", "` and `": "`
//! separators, sorted keys, floats as Python's `repr`, a trailing newline),
//! so byte-level comparisons with 2.5.2 hold. Unlike 2.5.2 (simplejson's
//! `ensure_ascii`), text outside ASCII is sent as UTF-8, not `\uXXXX`;
//! both read back the same.

pub mod blob;
pub mod client;

use serde::Serialize;
use serde_json::Value;

use crate::pyjson::{self, Options};

/// Serializes like Ganeti's `serializer.DumpJson(data, indent=False)`,
/// newline included (the writer is [`crate::pyjson`], with
/// [`Options::RPC`]).
pub fn dump_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    match serde_json::to_value(value) {
        Ok(v) => pyjson::dumps(&v, Options::RPC).into_bytes(),
        // Only non-string map keys can fail here, and no body has them.
        Err(_) => b"[false, \"internal error: reply not serializable\"]\n".to_vec(),
    }
}

/// The body of an RPC answer: `[true, payload]` or `[false, message]`.
pub fn envelope(result: &Result<Value, String>) -> Vec<u8> {
    let mut out = String::with_capacity(64);
    match result {
        Ok(payload) => {
            out.push_str("[true, ");
            pyjson::write_value(&mut out, payload, Options::RPC, 0);
        }
        Err(msg) => {
            out.push_str("[false, ");
            pyjson::write_value(&mut out, &Value::String(msg.clone()), Options::RPC, 0);
        }
    }
    out.push_str("]\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn version_answer_is_byte_identical_to_2_5_2() {
        // 2.5.2 answered `version` with Content-Length 16.
        let body = envelope(&Ok(json!(2050000)));
        assert_eq!(body, b"[true, 2050000]\n");
        assert_eq!(body.len(), 16);
    }

    #[test]
    fn nested_spacing() {
        let body = envelope(&Ok(json!({"a": [1, {"b": null}]})));
        assert_eq!(body, b"[true, {\"a\": [1, {\"b\": null}]}]\n");
        assert_eq!(envelope(&Err("no".into())), b"[false, \"no\"]\n");
    }

    #[test]
    fn floats_as_python_repr_and_utf8_text() {
        // Python 2.7's json.dumps([1e-05, 1e+16, 1795813498.14, ...]).
        assert_eq!(
            dump_json(&json!([1e-5, 1e16, 1795813498.14, 0.1, 3.0])),
            b"[1e-05, 1e+16, 1795813498.14, 0.1, 3.0]\n"
        );
        assert_eq!(
            dump_json(&json!({"b": "\u{e9}\u{1}", "a": [true, null]})),
            "{\"a\": [true, null], \"b\": \"\u{e9}\\u0001\"}\n".as_bytes()
        );
    }
}
