//! Encoded data blobs, `[encoding, content]` (spec 1.3): `[0, "raw"]` or
//! `[1, "<base64 of a zlib stream>"]`. 2.5.2 uses them for `upload_file`
//! and `jobqueue_update`; its master compresses from 512 bytes on.

use std::io::{Read, Write};

use serde_json::Value;

/// `RPC_ENCODING_NONE`.
pub const ENCODING_NONE: u64 = 0;
/// `RPC_ENCODING_ZLIB_BASE64`.
pub const ENCODING_ZLIB_BASE64: u64 = 1;
/// Data shorter than this is sent raw (2.5.2 `RpcRunner._Compress`).
pub const COMPRESS_FROM: usize = 512;

/// Decodes a blob. The decompressed size may not exceed `limit` bytes, so a
/// small body cannot inflate into a huge one.
pub fn decode(blob: &Value, limit: usize) -> Result<Vec<u8>, String> {
    let (encoding, content) = match blob.as_array().map(Vec::as_slice) {
        Some([e, Value::String(c)]) => (e.as_u64(), c),
        _ => return Err("Invalid data encoding: expected [encoding, string]".into()),
    };
    match encoding {
        Some(ENCODING_NONE) => {
            if content.len() > limit {
                return Err(format!("Data larger than {limit} bytes"));
            }
            Ok(content.as_bytes().to_vec())
        }
        Some(ENCODING_ZLIB_BASE64) => {
            let packed = openssl::base64::decode_block(content.trim_end())
                .map_err(|_| "Invalid base64 data".to_string())?;
            let mut out = Vec::new();
            let mut inflater =
                flate2::read::ZlibDecoder::new(packed.as_slice()).take(limit as u64 + 1);
            inflater
                .read_to_end(&mut out)
                .map_err(|e| format!("Invalid zlib data: {e}"))?;
            if out.len() > limit {
                return Err(format!("Data larger than {limit} bytes"));
            }
            Ok(out)
        }
        _ => Err("Unknown data encoding".into()),
    }
}

/// Encodes data as a 2.5.2 master does: raw below 512 bytes of valid
/// UTF-8, else zlib (level 3) and base64.
pub fn encode(data: &[u8]) -> Value {
    match std::str::from_utf8(data) {
        Ok(text) if data.len() < COMPRESS_FROM => {
            Value::from(vec![Value::from(ENCODING_NONE), Value::from(text)])
        }
        _ => {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(3));
            // Writing into a Vec cannot fail.
            let packed = z
                .write_all(data)
                .and_then(|()| z.finish())
                .unwrap_or_default();
            Value::from(vec![
                Value::from(ENCODING_ZLIB_BASE64),
                Value::from(openssl::base64::encode_block(&packed)),
            ])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn raw_and_zlib_round_trip() {
        let small = b"hello".to_vec();
        assert_eq!(encode(&small), json!([0, "hello"]));
        let big = vec![b'x'; 4096];
        let e = encode(&big);
        assert_eq!(e[0], json!(1));
        assert_eq!(decode(&e, 4096).unwrap(), big);
        assert_eq!(decode(&encode(&small), 5).unwrap(), small);
        // Binary data is always compressed.
        let bin = [0xffu8, 0, 1];
        assert_eq!(decode(&encode(&bin), 10).unwrap(), bin);
    }

    #[test]
    fn python_zlib_blob_decodes() {
        // base64(zlib.compress("ganeti\n", 3)), computed with Python.
        let blob = json!([1, "eF5LT8xLLcnkAgALEAKD"]);
        assert_eq!(decode(&blob, 100).unwrap(), b"ganeti\n");
    }

    #[test]
    fn limits_and_bad_input() {
        let big = vec![b'x'; 4097];
        assert!(decode(&encode(&big), 4096).unwrap_err().contains("larger"));
        assert!(decode(&encode(&big), 4097).is_ok());
        assert!(decode(&json!([0, "abcd"]), 3).is_err());
        assert_eq!(
            decode(&json!([2, "x"]), 9).unwrap_err(),
            "Unknown data encoding"
        );
        assert!(decode(&json!([1, "!!!"]), 9).is_err());
        assert!(decode(&json!([1, "aGVsbG8="]), 9).is_err());
        assert!(decode(&json!("x"), 9).is_err());
        assert!(decode(&json!([0, 5]), 9).is_err());
    }
}
