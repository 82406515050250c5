//! JSON text exactly as 2.5.2's `serializer.DumpJson(data, indent=False)`
//! writes it (simplejson with `sort_keys=True`): `", "` and `": "`
//! separators, keys sorted by code point, every character outside printable
//! ASCII escaped as `\uXXXX` (surrogate pairs above the BMP), floats as
//! Python's `repr`, and a trailing newline.
//!
//! serde_json's own writer differs in three places (raw UTF-8, `1e16`
//! instead of `1e+16`, no spaces), so job files are written through here to
//! stay byte-identical with the ones a 2.5.2 master writes.

use std::fmt::Write;

use serde_json::{Number, Value};

/// `DumpJson(value, indent=False)`: the compact text plus `"\n"`.
pub fn dumps(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value);
    out.push('\n');
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // serde_json's map is ordered by key already unless the
            // `preserve_order` feature is on somewhere in the build; sort
            // anyway so the output never depends on it.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, key);
                out.push_str(": ");
                if let Some(v) = map.get(key) {
                    write_value(out, v);
                }
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        out.push_str(&float_repr(f));
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed
/// notation when the decimal exponent is in [-4, 16), else `d.ddde+XX`.
pub fn float_repr(f: f64) -> String {
    if !f.is_finite() {
        // JSON values never hold these; Python would write the same words.
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e17", "0e0".
    let sci = format!("{:e}", f);
    let (negative, sci) = match sci.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sci.as_str()),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Position of the decimal point relative to the digit string.
    let decpt = exp + 1;
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if !(-4 < decpt && decpt <= 16) {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if decpt <= 0 {
        out.push_str("0.");
        for _ in 0..(-decpt) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let point = decpt as usize;
        if digits.len() <= point {
            out.push_str(&digits);
            for _ in digits.len()..point {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
    out
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_as_python_repr() {
        // Expected values printed by Python 2.7.18's json.dumps.
        for (f, want) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e300, "1.5e+300"),
            (-2.5e-7, "-2.5e-07"),
            (1795814304.265016, "1795814304.265016"),
            (0.05, "0.05"),
            (1e22, "1e+22"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (100.0, "100.0"),
            (12345.678, "12345.678"),
        ] {
            assert_eq!(float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn strings_escaped_as_ensure_ascii() {
        let s = "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}é€😀/";
        assert_eq!(
            dumps(&json!(s)),
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\\u00e9\\u20ac\\ud83d\\ude00/\"\n"
        );
    }

    #[test]
    fn compact_with_python_separators_and_sorted_keys() {
        let v = json!({"b": [1, 2.5, null, true], "a": {"z": false, "OP_ID": "x"}, "": -3});
        assert_eq!(
            dumps(&v),
            "{\"\": -3, \"a\": {\"OP_ID\": \"x\", \"z\": false}, \"b\": [1, 2.5, null, true]}\n"
        );
        assert_eq!(dumps(&json!([])), "[]\n");
        assert_eq!(dumps(&json!({})), "{}\n");
        assert_eq!(dumps(&json!(u64::MAX)), "18446744073709551615\n");
    }
}
