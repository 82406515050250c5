//! The node RPC wire format: the `[success, payload]` envelope, serialized
//! the way Ganeti's `serializer.DumpJson` writes it (`", "` and `": "`
//! separators, a trailing newline), so byte-level comparisons with 2.5.2
//! hold.

pub mod blob;
pub mod client;

use serde::Serialize;
use serde_json::Value;

/// serde_json formatter producing Python's default `json.dumps` spacing.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

/// Serializes like Ganeti's `serializer.DumpJson`, newline included.
pub fn dump_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    if value.serialize(&mut ser).is_err() {
        // Only non-string map keys can fail here, and no reply has them.
        return b"[false, \"internal error: reply not serializable\"]\n".to_vec();
    }
    out.push(b'\n');
    out
}

/// The body of an RPC answer: `[true, payload]` or `[false, message]`.
pub fn envelope(result: &Result<Value, String>) -> Vec<u8> {
    match result {
        Ok(payload) => dump_json(&(true, payload)),
        Err(msg) => dump_json(&(false, msg)),
    }
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
}
