//! JSON exactly as Ganeti 2.5.2 reads and writes `config.data`: Python's
//! (simplejson) parser, keeping integers and floats apart and every float
//! exactly as written; `serializer.DumpJson`'s indented text is
//! [`crate::pyjson`]'s.
//!
//! Refused on reading: control characters in strings, lone surrogates,
//! integers outside 64 bits, non-finite numbers (Python's `NaN` and
//! `Infinity` extensions) and nesting deeper than [`MAX_JSON_DEPTH`].
#![forbid(unsafe_code)]

use serde_json::{Map, Number, Value};

/// Deepest nesting of JSON arrays and objects accepted. A real
/// configuration needs about ten levels (DRBD disks with LV children);
/// the bound keeps hostile input from exhausting the stack.
pub const MAX_JSON_DEPTH: usize = 64;

/// Parses JSON text as Python's (simplejson) `loads` does, but keeping
/// integers and floats apart and every float exactly as written (the
/// shortest repr of the parsed double prints the same digits again).
/// Refused: control characters in strings, lone surrogates, integers
/// outside 64 bits, non-finite numbers, nesting over [`MAX_JSON_DEPTH`].
pub fn parse_json(text: &str) -> Result<Value, String> {
    let mut p = JsonParser {
        s: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    let v = p.value()?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(p.error("extra data after the JSON value"));
    }
    Ok(v)
}

struct JsonParser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl JsonParser<'_> {
    fn error(&self, what: &str) -> String {
        format!("invalid JSON at byte {}: {what}", self.pos)
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, String> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.error("unexpected character"))
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            None => Err(self.error("unexpected end of data")),
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    fn nested(&mut self, f: fn(&mut Self) -> Result<Value, String>) -> Result<Value, String> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(self.error(&format!("nested deeper than {MAX_JSON_DEPTH} levels")));
        }
        self.depth += 1;
        self.pos += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn object(&mut self) -> Result<Value, String> {
        let mut map = Map::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.pos += 1;
            self.skip_ws();
            let v = self.value()?;
            // As in Python, a repeated key keeps the last value.
            map.insert(key, v);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self) -> Result<Value, String> {
        let mut list = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(list));
        }
        loop {
            self.skip_ws();
            list.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(list));
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .s
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("invalid \\u escape"))?;
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid \\u escape"))
    }

    fn string(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(&b) = self.s.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The input is a str and we stopped at ASCII bytes: the slice is
            // whole UTF-8 characters.
            out.push_str(
                std::str::from_utf8(&self.s[start..self.pos])
                    .map_err(|_| self.error("invalid UTF-8"))?,
            );
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self
                        .peek()
                        .ok_or_else(|| self.error("unterminated string"))?;
                    self.pos += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi) {
                                if !self.s[self.pos..].starts_with(b"\\u") {
                                    return Err(self.error("lone surrogate in \\u escape"));
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err(self.error("lone surrogate in \\u escape"));
                                }
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else {
                                hi
                            };
                            out.push(
                                char::from_u32(code)
                                    .ok_or_else(|| self.error("lone surrogate in \\u escape"))?,
                            );
                        }
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                Some(_) => return Err(self.error("control character in a string")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        if self.digits() == 0 {
            return Err(self.error("invalid number"));
        }
        if self.s[int_start] == b'0' && self.pos - int_start > 1 {
            return Err(self.error("leading zero in a number"));
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
            float = true;
        }
        // Only ASCII digits, signs, '.' and 'e' were consumed.
        let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        let n = if float {
            text.parse::<f64>().ok().and_then(Number::from_f64)
        } else if text.starts_with('-') {
            text.parse::<i64>().ok().map(Number::from)
        } else {
            text.parse::<u64>().ok().map(Number::from)
        };
        n.map(Value::Number).ok_or_else(|| {
            self.pos = start;
            self.error(&format!("number {text} out of range"))
        })
    }
}

/// Python's `repr()` of a float as simplejson writes it (the writer is
/// [`crate::pyjson`]).
pub use crate::pyjson::float_repr as py_float_repr;

/// 2.5.2's `serializer.DumpJson(data)` (indented form): sorted keys,
/// two-space indent, `,` at line ends (the trailing space stripped),
/// `": "` between key and value, non-ASCII escaped, a final newline.
pub fn dump_json_indented(v: &Value) -> String {
    crate::pyjson::dumps(v, crate::pyjson::Options::INDENTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_ints_floats_and_exact_values() {
        let v = parse_json(r#"{"a": 1, "b": 1.0, "c": -3, "d": 1e2, "e": 18446744073709551615}"#)
            .unwrap();
        assert!(v["a"].is_u64() && v["b"].is_f64() && v["c"].is_i64() && v["d"].is_f64());
        assert_eq!(v["e"].as_u64(), Some(u64::MAX));
        // 17 significant digits: a naive parse rounds twice and misses.
        for text in [
            "1795814247.5937123",
            "0.30000000000000004",
            "2.2250738585072014e-308",
        ] {
            let v = parse_json(text).unwrap();
            assert_eq!(v.as_f64(), text.parse::<f64>().ok(), "{text}");
        }
        assert_eq!(
            parse_json(r#""\u00e9\ud83d\ude00\n\/""#).unwrap(),
            Value::String("é😀\n/".into())
        );
        for bad in [
            "18446744073709551616",
            "-9223372036854775809",
            "01",
            "1.",
            "1e400",
            "[1,]",
            "{\"a\" 1}",
            "\"\\ud800\"",
            "\"\\udc00x\"",
            "\"a\tb\"",
            "\"\\x\"",
            "{} x",
            "nul",
            "",
        ] {
            assert!(parse_json(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn json_depth_limit_and_limit_plus_one() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse_json(&nested(MAX_JSON_DEPTH)).is_ok());
        let err = parse_json(&nested(MAX_JSON_DEPTH + 1)).unwrap_err();
        assert!(err.contains("nested deeper than 64"), "{err}");
    }
}
