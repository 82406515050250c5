//! Editing the hosts file as 2.5.2's `SetEtcHostsEntry` and
//! `RemoveEtcHostsEntry` do, on bytes: lines that are not touched stay byte
//! for byte.

#![forbid(unsafe_code)]

/// Python's `str.split()` whitespace (bytes).
fn is_space(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn fields(line: &[u8]) -> Vec<&[u8]> {
    line.split(is_space).filter(|f| !f.is_empty()).collect()
}

/// True for a line that carries an entry (not blank, not a comment).
fn is_entry(fields: &[&[u8]]) -> bool {
    fields.first().is_some_and(|f| !f.starts_with(b"#"))
}

/// Sets the entry of `ip` to `names` (duplicates dropped): every entry line
/// of `ip` goes, and the first one is replaced by `"<ip>\t<names>\n"`;
/// without one, that line is appended.
pub fn set_entry(text: &[u8], ip: &str, names: &[&str]) -> Vec<u8> {
    let mut unique: Vec<&str> = Vec::new();
    for n in names {
        if !unique.contains(n) {
            unique.push(n);
        }
    }
    let entry = format!("{ip}\t{}\n", unique.join(" "));
    let mut out = Vec::with_capacity(text.len() + entry.len() + 1);
    let mut written = false;
    for line in text.split_inclusive(|&b| b == b'\n') {
        let f = fields(line);
        if is_entry(&f) && f[0] == ip.as_bytes() {
            if !written {
                out.extend_from_slice(entry.as_bytes());
                written = true;
            }
        } else {
            out.extend_from_slice(line);
        }
    }
    if !written {
        // 2.5.2 would glue the entry to a last line without a newline.
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.extend_from_slice(entry.as_bytes());
    }
    out
}

/// Removes `name` from the names of every entry line; a line left without
/// names goes, a changed line becomes `"<ip> <names>\n"`.
pub fn remove_name(text: &[u8], name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for line in text.split_inclusive(|&b| b == b'\n') {
        let f = fields(line);
        if f.len() > 1 && is_entry(&f) && f[1..].contains(&name.as_bytes()) {
            let rest: Vec<&[u8]> = f[1..]
                .iter()
                .copied()
                .filter(|n| *n != name.as_bytes())
                .collect();
            if !rest.is_empty() {
                out.extend_from_slice(f[0]);
                out.push(b' ');
                out.extend_from_slice(&rest.join(&b' '));
                out.push(b'\n');
            }
            continue;
        }
        out.extend_from_slice(line);
    }
    out
}

/// The short name: up to the first dot.
pub fn short_name(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &[u8] = b"127.0.0.1\tlocalhost\n# 192.0.2.55 commented\n\n\
        192.0.2.55 old.example.com old\n10.0.0.1  a.example.com a  \n\
        192.0.2.55\tagain\n\xff\xfe binary line\n";

    #[test]
    fn add_replaces_the_first_line_of_the_ip_and_drops_the_others() {
        let out = set_entry(HOSTS, "192.0.2.55", &["n.example.com", "n"]);
        assert_eq!(
            out,
            b"127.0.0.1\tlocalhost\n# 192.0.2.55 commented\n\n\
              192.0.2.55\tn.example.com n\n10.0.0.1  a.example.com a  \n\
              \xff\xfe binary line\n"
        );
    }

    #[test]
    fn add_appends_and_drops_duplicate_names() {
        let out = set_entry(b"127.0.0.1 localhost", "192.0.2.9", &["short", "short"]);
        assert_eq!(out, b"127.0.0.1 localhost\n192.0.2.9\tshort\n");
        assert_eq!(set_entry(b"", "::1", &["x"]), b"::1\tx\n");
    }

    #[test]
    fn remove_takes_the_name_out_of_every_entry() {
        let out = remove_name(HOSTS, "old.example.com");
        let out = remove_name(&out, "old");
        assert_eq!(
            out,
            b"127.0.0.1\tlocalhost\n# 192.0.2.55 commented\n\n\
              10.0.0.1  a.example.com a  \n192.0.2.55\tagain\n\xff\xfe binary line\n"
        );
        // A changed line is rebuilt with single spaces; others stay.
        let out = remove_name(HOSTS, "a");
        assert!(out.windows(23).any(|w| w == b"10.0.0.1 a.example.com\n"));
        assert_eq!(remove_name(HOSTS, "missing"), HOSTS);
        // Comments and the address field are not names.
        assert_eq!(remove_name(HOSTS, "commented"), HOSTS);
        assert_eq!(remove_name(HOSTS, "10.0.0.1"), HOSTS);
    }

    #[test]
    fn short_names() {
        assert_eq!(short_name("n.example.com"), "n");
        assert_eq!(short_name("n"), "n");
    }
}
