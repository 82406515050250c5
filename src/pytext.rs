//! Python 2's text of values, as Ganeti 2.5.2 put them into messages,
//! environments and summaries: `str()` and `repr()` of JSON-decoded values
//! and of floats, `repr()` of byte strings, `utils.SafeEncode` and
//! `str.strip()`. One implementation for every module that prints them;
//! JSON text itself is [`crate::pyjson`].
//!
//! `str()` and `repr()` of a float differ in Python 2.7: `str()` has 12
//! significant digits (`%.12g`, [`float_str`]), `repr()` the shortest
//! digits that read back ([`float_repr`]). `str()` of a list or dictionary
//! is the `repr()` of its items.
//!
//! How a string was decoded decides whether its `repr()` has a `u` prefix
//! ([`Strings`]): 2.5.2's own decoder (simplejson's C scanner) gave `str`
//! for ASCII text and `unicode` otherwise; Python's `json` module gives
//! `unicode` always. Each caller says which it reproduces.
//!
//! Differences from Python: dictionaries print with their keys sorted
//! (Python 2 printed them in hash order); integers beyond 64 bits cannot
//! occur (serde_json holds them as floats).
#![forbid(unsafe_code)]

use std::fmt::Write;

use serde_json::{Number, Value};

/// The Python type a decoded JSON string had, which decides the `u` prefix
/// of its `repr()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strings {
    /// simplejson's C decoder, as 2.5.2's `serializer.LoadJson` ran it:
    /// ASCII text is a `str` (`'a'`), other text `unicode` (`u'\xe9'`).
    AsciiAsStr,
    /// Every string is `unicode` (Python's `json` module): `u'a'`.
    Unicode,
}

/// Python 2's `str()` of a decoded JSON value: strings as they are, `True`,
/// `False`, `None`, integers in decimal, floats as [`float_str`]; lists and
/// dictionaries as their [`py_repr`].
pub fn py_str(v: &Value, strings: Strings) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => number(n, false),
        other => py_repr(other, strings),
    }
}

/// Python 2's `repr()` of a decoded JSON value: strings quoted as
/// [`py_repr_str`], `None`, `True`, floats as [`float_repr`], an `L` after
/// integers beyond 63 bits (a Python `long`), dictionary keys sorted.
pub fn py_repr(v: &Value, strings: Strings) -> String {
    let mut out = String::new();
    write_repr(&mut out, v, strings);
    out
}

fn write_repr(out: &mut String, v: &Value, strings: Strings) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&number(n, true)),
        Value::String(s) => out.push_str(&py_repr_str(s, strings)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item, strings);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&py_repr_str(key, strings));
                out.push_str(": ");
                if let Some(item) = map.get(key) {
                    write_repr(out, item, strings);
                }
            }
            out.push('}');
        }
    }
}

fn number(n: &Number, repr: bool) -> String {
    match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i.to_string(),
        (None, Some(u), _) if repr => format!("{u}L"),
        (None, Some(u), _) => u.to_string(),
        (None, None, Some(f)) if repr => float_repr(f),
        (None, None, Some(f)) => float_str(f),
        _ => n.to_string(),
    }
}

/// Python 2's `repr()` of a text string: single quotes unless the text has
/// a single quote and no double quote; `\\`, `\t`, `\n`, `\r` and the quote
/// escaped, printable ASCII as it is, other characters as `\xNN`, `\uNNNN`
/// or `\UNNNNNNNN`; a `u` prefix as [`Strings`] says.
pub fn py_repr_str(s: &str, strings: Strings) -> String {
    let quote = pick_quote(s.contains('\''), s.contains('"'));
    let mut out = String::with_capacity(s.len() + 3);
    if strings == Strings::Unicode || !s.is_ascii() {
        out.push('u');
    }
    out.push(quote);
    for c in s.chars() {
        push_repr_char(&mut out, u32::from(c), quote);
    }
    out.push(quote);
    out
}

/// Python 2's `repr()` of a byte string (`str`): as [`py_repr_str`] of
/// ASCII text, every other byte as `\xNN`.
pub fn py_repr_bytes(s: &[u8]) -> String {
    let quote = pick_quote(s.contains(&b'\''), s.contains(&b'"'));
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for &b in s {
        push_repr_char(&mut out, u32::from(b), quote);
    }
    out.push(quote);
    out
}

fn pick_quote(single: bool, double: bool) -> char {
    if single && !double {
        '"'
    } else {
        '\''
    }
}

fn push_repr_char(out: &mut String, code: u32, quote: char) {
    match char::from_u32(code) {
        Some('\\') => out.push_str("\\\\"),
        Some('\t') => out.push_str("\\t"),
        Some('\n') => out.push_str("\\n"),
        Some('\r') => out.push_str("\\r"),
        Some(c) if c == quote => {
            out.push('\\');
            out.push(c);
        }
        Some(c @ ' '..='~') => out.push(c),
        _ if code < 0x100 => {
            let _ = write!(out, "\\x{code:02x}");
        }
        _ if code < 0x10000 => {
            let _ = write!(out, "\\u{code:04x}");
        }
        _ => {
            let _ = write!(out, "\\U{code:08x}");
        }
    }
}

/// Python 2's `str()` of a float: 12 significant digits (`%.12g`), `.0`
/// added to what looks like an integer; as Python adds that `.0`, it
/// switches to the exponent form one digit earlier than C (from 1e11 on,
/// not 1e12). `nan`, `inf`, `-inf`.
pub fn float_str(f: f64) -> String {
    format_float(f, FloatStyle::Str)
}

/// Python 2.7's `repr()` of a float: the shortest digits that read back,
/// the exponent form from 1e16 on and below 1e-4 (`1e+16`, `1e-05`), `.0`
/// added to what looks like an integer. `nan`, `inf`, `-inf`.
pub fn float_repr(f: f64) -> String {
    format_float(f, FloatStyle::Repr)
}

#[derive(Clone, Copy)]
enum FloatStyle {
    Str,
    Repr,
}

/// `PyOS_double_to_string` with `Py_DTSF_ADD_DOT_0`: mode 'g' with 12
/// digits for `str()`, mode 'r' (which switches to the exponent form after
/// 16 digits) for `repr()`.
fn format_float(f: f64, style: FloatStyle) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust rounds correctly, as Python's dtoa does: "d.ddde<exp>", and
    // `{:e}` without a precision gives the shortest digits that read back.
    let (sci, exp_limit) = match style {
        FloatStyle::Str => (format!("{:.11e}", f.abs()), 11),
        FloatStyle::Repr => (format!("{:e}", f.abs()), 16),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let mut out = String::with_capacity(digits.len() + 8);
    if f.is_sign_negative() {
        out.push('-');
    }
    if exp < -4 || exp >= exp_limit {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 1..exp.unsigned_abs() {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        // 0 <= exp < 16 here.
        let point = exp.unsigned_abs() as usize + 1;
        if point >= digits.len() {
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

/// 2.5.2's `utils.SafeEncode` of a byte string: printable ASCII stays, tab
/// and newline become `\t` and `\n`, carriage return becomes the 3
/// characters `\'r` (sic), every other byte `\xNN`.
pub fn safe_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\'r"),
            32..=126 => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// 2.5.2's `utils.SafeEncode` of a text (`unicode`) string: first
/// `encode("ascii", "backslashreplace")` (`\xNN`, `\uNNNN`, `\UNNNNNNNN`
/// for characters outside ASCII), then [`safe_encode`].
pub fn safe_encode_text(text: &str) -> String {
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        let code = u32::from(c);
        if c.is_ascii() {
            ascii.push(c);
        } else if code < 0x100 {
            let _ = write!(ascii, "\\x{code:02x}");
        } else if code < 0x10000 {
            let _ = write!(ascii, "\\u{code:04x}");
        } else {
            let _ = write!(ascii, "\\U{code:08x}");
        }
    }
    safe_encode(ascii.as_bytes())
}

/// Python 2's `str.strip()`: removes leading and trailing ASCII whitespace
/// (space, `\t`, `\n`, `\r`, `\x0b`, `\x0c`).
pub fn strip(bytes: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = bytes.iter().position(|b| !ws(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// 2.5.2's `utils.ShellQuote`: an argument as its messages show it, in
/// single quotes unless it is made of harmless characters only.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.,=:/_+@".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// 2.5.2's `utils.ShellQuoteArgs`: a command line as its messages show it.
pub fn shell_quote_args(argv: &[&str]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn str_and_repr_of_floats() {
        // (value, str(), repr()) as printed by Python 2.7.18.
        let cases: &[(f64, &str, &str)] = &[
            (0.0, "0.0", "0.0"),
            (-0.0, "-0.0", "-0.0"),
            (1.0, "1.0", "1.0"),
            (3.0, "3.0", "3.0"),
            (100.0, "100.0", "100.0"),
            (84.0, "84.0", "84.0"),
            (20.5, "20.5", "20.5"),
            (0.1, "0.1", "0.1"),
            (0.05, "0.05", "0.05"),
            (-2.5, "-2.5", "-2.5"),
            (-0.5, "-0.5", "-0.5"),
            (123.456, "123.456", "123.456"),
            (12345.678, "12345.678", "12345.678"),
            (1.0 / 3.0, "0.333333333333", "0.3333333333333333"),
            (0.30000000000000004, "0.3", "0.30000000000000004"),
            (9.99999999999995, "10.0", "9.99999999999995"),
            (1e-4, "0.0001", "0.0001"),
            (0.00012345, "0.00012345", "0.00012345"),
            (1e-5, "1e-05", "1e-05"),
            (2.5e-5, "2.5e-05", "2.5e-05"),
            (1.234e-5, "1.234e-05", "1.234e-05"),
            (1.5e-7, "1.5e-07", "1.5e-07"),
            (-2.5e-7, "-2.5e-07", "-2.5e-07"),
            (5e-324, "4.94065645841e-324", "5e-324"),
            (1e10, "10000000000.0", "10000000000.0"),
            (99999999999.0, "99999999999.0", "99999999999.0"),
            (99999999999.5, "99999999999.5", "99999999999.5"),
            (99999999999.95, "99999999999.9", "99999999999.95"),
            (12345678901.0, "12345678901.0", "12345678901.0"),
            (1e11, "1e+11", "100000000000.0"),
            (123456789012.0, "1.23456789012e+11", "123456789012.0"),
            (123456789012.25, "1.23456789012e+11", "123456789012.25"),
            (123456789012.5, "1.23456789012e+11", "123456789012.5"),
            (999999999999.9, "1e+12", "999999999999.9"),
            (1326196800.123456, "1326196800.12", "1326196800.123456"),
            (1795814247.593712, "1795814247.59", "1795814247.593712"),
            (1795814247.59974, "1795814247.6", "1795814247.59974"),
            (1795814304.265016, "1795814304.27", "1795814304.265016"),
            (1700000000.0, "1700000000.0", "1700000000.0"),
            (1e15, "1e+15", "1000000000000000.0"),
            (
                1234567890123456.0,
                "1.23456789012e+15",
                "1234567890123456.0",
            ),
            (1e16, "1e+16", "1e+16"),
            (
                12345678901234567.0,
                "1.23456789012e+16",
                "1.2345678901234568e+16",
            ),
            (
                123456789012345678.0,
                "1.23456789012e+17",
                "1.2345678901234568e+17",
            ),
            (
                9223372036854775808.0,
                "9.22337203685e+18",
                "9.223372036854776e+18",
            ),
            (1e20, "1e+20", "1e+20"),
            (1e22, "1e+22", "1e+22"),
            (1.2345e22, "1.2345e+22", "1.2345e+22"),
            (1e100, "1e+100", "1e+100"),
            (1e300, "1e+300", "1e+300"),
            (1.5e300, "1.5e+300", "1.5e+300"),
            (f64::MAX, "1.79769313486e+308", "1.7976931348623157e+308"),
        ];
        for &(x, s, r) in cases {
            assert_eq!(float_str(x), s, "str({x:e})");
            assert_eq!(float_repr(x), r, "repr({x:e})");
            assert_eq!(py_str(&json!(x), Strings::AsciiAsStr), s, "{x:e}");
            assert_eq!(py_repr(&json!(x), Strings::Unicode), r, "{x:e}");
        }
        for (x, text) in [
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (-f64::INFINITY, "-inf"),
        ] {
            assert_eq!(float_str(x), text);
            assert_eq!(float_repr(x), text);
        }
    }

    #[test]
    fn str_and_repr_of_values() {
        let ascii = Strings::AsciiAsStr;
        let cases = [
            (json!("text"), "text"),
            (json!(true), "True"),
            (json!(false), "False"),
            (Value::Null, "None"),
            (json!(128), "128"),
            (json!(-3), "-3"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!(["a", 1, null]), "['a', 1, None]"),
            (
                json!({"b": true, "a": "it's"}),
                "{'a': \"it's\", 'b': True}",
            ),
            (
                json!([null, true, 128, 1.5, "a", {"k": "v"}]),
                "[None, True, 128, 1.5, 'a', {'k': 'v'}]",
            ),
            (
                json!([1326196800.123456, u64::MAX, -1, "\u{e9}", "it's \u{e9}"]),
                "[1326196800.123456, 18446744073709551615L, -1, u'\\xe9', u\"it's \\xe9\"]",
            ),
            (json!({"k": ["é€"]}), "{'k': [u'\\xe9\\u20ac']}"),
        ];
        for (v, want) in cases {
            assert_eq!(py_str(&v, ascii), want, "{v}");
        }
        let uni = Strings::Unicode;
        assert_eq!(py_repr(&json!(u64::MAX), uni), "18446744073709551615L");
        assert_eq!(py_str(&json!(u64::MAX), uni), "18446744073709551615");
        assert_eq!(
            py_repr(&json!([1, "x", null, true, 1.5, {"a": [2]}]), uni),
            "[1, u'x', None, True, 1.5, {u'a': [2]}]"
        );
        assert_eq!(py_str(&json!("x"), uni), "x");
        assert_eq!(py_repr(&json!("x"), ascii), "'x'");
    }

    #[test]
    fn repr_of_strings_and_bytes() {
        let uni = Strings::Unicode;
        assert_eq!(py_repr_str("a'b", uni), "u\"a'b\"");
        assert_eq!(py_repr_str("a\"b", uni), "u'a\"b'");
        assert_eq!(py_repr_str("a'\"b", uni), "u'a\\'\"b'");
        assert_eq!(
            py_repr_str("\n\t\\\u{0}\u{7f}\u{e9}\u{20ac}\u{1f600}", uni),
            "u'\\n\\t\\\\\\x00\\x7f\\xe9\\u20ac\\U0001f600'"
        );
        let ascii = Strings::AsciiAsStr;
        assert_eq!(py_repr_str("abc", ascii), "'abc'");
        assert_eq!(py_repr_str("it's", ascii), "\"it's\"");
        assert_eq!(py_repr_str("a'\"b\n\r", ascii), "'a\\'\"b\\n\\r'");
        assert_eq!(py_repr_str("\u{1}\u{1f}", ascii), "'\\x01\\x1f'");
        assert_eq!(py_repr_str("\u{e9}", ascii), "u'\\xe9'");
        assert_eq!(
            py_repr_str("\u{7f}\u{101}\u{1f600}", ascii),
            "u'\\x7f\\u0101\\U0001f600'"
        );
        assert_eq!(py_repr_bytes(b"abc"), "'abc'");
        assert_eq!(py_repr_bytes(b"a'b"), "\"a'b\"");
        assert_eq!(py_repr_bytes(b"a\"b'"), "'a\"b\\''");
        assert_eq!(
            py_repr_bytes(b"\xff\t\x7f\xc3\xa9"),
            "'\\xff\\t\\x7f\\xc3\\xa9'"
        );
    }

    #[test]
    fn safe_encode_and_strip_as_2_5_2() {
        assert_eq!(
            safe_encode(b"a\tb\nc\rd\x01\xff~ "),
            "a\\tb\\nc\\'rd\\x01\\xff~ "
        );
        assert_eq!(
            safe_encode(b"a\tb\nc\rd\x01\xc3\xa9~"),
            "a\\tb\\nc\\'rd\\x01\\xc3\\xa9~"
        );
        // Python 2.7: SafeEncode(u"a\tb\nc\rd\x01\x7f\xe9\u20ac\U0001f600").
        assert_eq!(
            safe_encode_text("a\tb\nc\rd\u{1}\u{7f}é€😀"),
            "a\\tb\\nc\\'rd\\x01\\x7f\\xe9\\u20ac\\U0001f600"
        );
        assert_eq!(strip(b" \t\x0b\x0cx y\r\n"), b"x y");
        assert_eq!(strip(b" \n "), b"");
        assert_eq!(strip(b""), b"");
    }
}
