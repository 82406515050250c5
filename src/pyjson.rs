//! JSON text exactly as Ganeti 2.5.2's `serializer.DumpJson` wrote it
//! (simplejson with `sort_keys=True`), for every file and message that is
//! compared byte for byte with 2.5.2's: RPC bodies, job files,
//! `config.data`, LUXI requests and answers.
//!
//! Always: keys sorted by code point, `", "` between items and `": "`
//! between key and value, integers in decimal, floats as Python's `repr`
//! ([`float_repr`]), and a final newline from [`dumps`]. [`Options`] say
//! whether the text is indented (two spaces per level, one item per line,
//! the trailing space after each `,` stripped as 2.5.2 stripped it) and
//! whether every character outside printable ASCII is escaped as `\uXXXX`
//! (simplejson's `ensure_ascii`, surrogate pairs above the BMP); without
//! it, only `"`, `\` and control characters are escaped, as serde_json and
//! `ensure_ascii=False` do.
//!
//! serde_json's own writer differs (no spaces, `1e16` instead of `1e+16`,
//! raw UTF-8), hence this module. Reading is serde_json's, or
//! `config::parse_json` where floats must keep their exact digits.
#![forbid(unsafe_code)]

use std::fmt::Write;

use serde_json::{Number, Value};

/// How [`dumps`] lays the text out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// One item per line, two spaces per level (`DumpJson(data)`); else
    /// everything on one line (`DumpJson(data, indent=False)`).
    pub indent: bool,
    /// Every character outside printable ASCII as `\uXXXX`.
    pub ensure_ascii: bool,
}

impl Options {
    /// `DumpJson(data, indent=False)`: job files, LUXI requests.
    pub const COMPACT: Options = Options {
        indent: false,
        ensure_ascii: true,
    };
    /// `DumpJson(data)`: `config.data`, LUXI answers.
    pub const INDENTED: Options = Options {
        indent: true,
        ensure_ascii: true,
    };
    /// The node RPC bodies as this implementation has always written them:
    /// compact, UTF-8 left as it is (2.5.2 escaped it; both read the same).
    pub const RPC: Options = Options {
        indent: false,
        ensure_ascii: false,
    };
}

/// Spaces per indentation level (`serializer._JSON_INDENT`).
const INDENT: usize = 2;

/// `DumpJson`: the text of `v` laid out as `opts` says, plus `"\n"`.
pub fn dumps(v: &Value, opts: Options) -> String {
    let mut out = String::with_capacity(256);
    write_value(&mut out, v, opts, 0);
    out.push('\n');
    out
}

/// Appends the text of `v` (no newline) to `out`, as if it stood at
/// nesting `level` of an indented document (ignored when compact): the
/// lines after its first are indented for that level.
pub fn write_value(out: &mut String, v: &Value, opts: Options, level: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s, opts.ensure_ascii),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separator(out, i, opts, level + 1);
                write_value(out, item, opts, level + 1);
            }
            close(out, opts, level, ']');
        }
        Value::Object(map) => {
            // serde_json's map is sorted already unless its
            // `preserve_order` feature is on somewhere in the build; sort
            // anyway so the text never depends on that.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                separator(out, i, opts, level + 1);
                write_string(out, key, opts.ensure_ascii);
                out.push_str(": ");
                if let Some(item) = map.get(key) {
                    write_value(out, item, opts, level + 1);
                }
            }
            close(out, opts, level, '}');
        }
    }
}

fn separator(out: &mut String, index: usize, opts: Options, item_level: usize) {
    if opts.indent {
        if index > 0 {
            out.push(',');
        }
        out.push('\n');
        push_indent(out, item_level);
    } else if index > 0 {
        out.push_str(", ");
    }
}

fn close(out: &mut String, opts: Options, level: usize, bracket: char) {
    if opts.indent {
        out.push('\n');
        push_indent(out, level);
    }
    out.push(bracket);
}

fn push_indent(out: &mut String, level: usize) {
    for _ in 0..level * INDENT {
        out.push(' ');
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

/// A float as simplejson writes it: Python's `repr` ([`crate::pytext::float_repr`]);
/// `NaN`, `Infinity` and `-Infinity` (which a serde_json value never holds).
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        crate::pytext::float_repr(f)
    }
}

fn write_string(out: &mut String, s: &str, ensure_ascii: bool) {
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
            c if !ensure_ascii && !c.is_ascii_control() => out.push(c),
            '\u{7f}' if !ensure_ascii => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Whether a JSON text nests arrays and objects deeper than `limit`,
/// found without parsing it (brackets inside strings do not count; invalid
/// JSON is left to the parser). Servers check this before handing a body to
/// serde_json, whose recursion would otherwise use up a small stack.
pub fn nests_deeper_than(text: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_as_python_repr() {
        // Python 2.7.18's json.dumps; the digits themselves are tested in
        // pytext.
        for (f, want) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (1795814304.265016, "1795814304.265016"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (-f64::INFINITY, "-Infinity"),
        ] {
            assert_eq!(float_repr(f), want, "{f}");
        }
        assert_eq!(
            dumps(&json!([0.1, 1e16, 1e-5, -3, u64::MAX]), Options::COMPACT),
            "[0.1, 1e+16, 1e-05, -3, 18446744073709551615]\n"
        );
    }

    #[test]
    fn strings_escaped_as_ensure_ascii() {
        let s = "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}é€😀/";
        assert_eq!(
            dumps(&json!(s), Options::COMPACT),
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\\u00e9\\u20ac\\ud83d\\ude00/\"\n"
        );
        assert_eq!(
            dumps(
                &json!({"k": "é😀\"\\\n\t\u{1}\u{7f}~ /"}),
                Options::INDENTED
            ),
            "{\n  \"k\": \"\\u00e9\\ud83d\\ude00\\\"\\\\\\n\\t\\u0001\\u007f~ /\"\n}\n"
        );
    }

    #[test]
    fn strings_without_ensure_ascii_as_serde_json() {
        for s in [
            "a\"b\\c\n\r\t\u{8}\u{c}\u{0}\u{1}\u{1f}\u{7f}é€😀/",
            "\u{80}\u{9f}\u{a0}\u{2028}\u{feff}",
            "",
        ] {
            let v = json!([s, {s: 1.5}]);
            let want = serde_json::to_string(&v).unwrap().replace(",", ", ");
            let want = want.replace("\":1.5", "\": 1.5");
            assert_eq!(dumps(&v, Options::RPC), format!("{want}\n"), "{s:?}");
        }
    }

    #[test]
    fn compact_with_python_separators_and_sorted_keys() {
        let v = json!({"b": [1, 2.5, null, true], "a": {"z": false, "OP_ID": "x"}, "": -3});
        assert_eq!(
            dumps(&v, Options::COMPACT),
            "{\"\": -3, \"a\": {\"OP_ID\": \"x\", \"z\": false}, \"b\": [1, 2.5, null, true]}\n"
        );
        assert_eq!(dumps(&json!([]), Options::COMPACT), "[]\n");
        assert_eq!(dumps(&json!({}), Options::COMPACT), "{}\n");
        assert_eq!(
            dumps(&json!({"a": [1, {"b": null}]}), Options::RPC),
            "{\"a\": [1, {\"b\": null}]}\n"
        );
    }

    #[test]
    fn indented_as_2_5_2() {
        let v = json!({"k": [1, {"x": []}], "b": [], "a": {}, "c": [1.5, "\u{e9}"]});
        assert_eq!(
            dumps(&v, Options::INDENTED),
            "{\n  \"a\": {},\n  \"b\": [],\n  \"c\": [\n    1.5,\n    \"\\u00e9\"\n  ],\n  \
             \"k\": [\n    1,\n    {\n      \"x\": []\n    }\n  ]\n}\n"
        );
        // Embedded at level 1, as a LUXI answer embeds its result.
        let mut out = String::new();
        write_value(&mut out, &json!([["waiting"], []]), Options::INDENTED, 1);
        assert_eq!(out, "[\n    [\n      \"waiting\"\n    ],\n    []\n  ]");
        let mut out = String::new();
        write_value(&mut out, &json!([["waiting"], []]), Options::COMPACT, 3);
        assert_eq!(out, "[[\"waiting\"], []]");
    }
}
