//! A small, strict HTTP/1.1 request reader and response writer for the node
//! daemon's RPC server.
//!
//! Supported: request lines `METHOD /path HTTP/1.0|1.1` (the method is
//! upper-cased, as 2.5.2 does), header fields, `Content-Length` bodies,
//! `Connection: close|keep-alive`, `Expect: 100-continue`. Not supported:
//! `Transfer-Encoding` (501), bodies without `Content-Length` (411),
//! obsolete header line folding (400), HTTP/2 and later (505).
//!
//! Every read is bounded by a named limit; the body buffer grows as bytes
//! arrive and is never sized from a number the peer sent.

use std::io::{self, BufRead, Read, Write};

/// Longest request line, CRLF included.
pub const MAX_REQUEST_LINE: usize = 4096;
/// Longest header block (all header lines with their CRLFs).
pub const MAX_HEADER_BYTES: usize = 8192;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 64;
/// Size of the chunks a body is read in.
const BODY_CHUNK: usize = 16 * 1024;

/// HTTP versions we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// The head of a request; the body is read separately with a limit chosen
/// from the path.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: String,
    pub path: String,
    pub version: Version,
    pub headers: Vec<(String, String)>,
    pub content_length: Option<usize>,
    pub keep_alive: bool,
    pub expect_continue: bool,
}

impl Head {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be read. Each maps to a status code, except
/// [`HttpError::Closed`] and [`HttpError::Io`], after which the connection is
/// simply dropped.
#[derive(Debug)]
pub enum HttpError {
    /// The peer closed the connection before sending a byte of a request.
    Closed,
    Io(io::Error),
    BadRequest(String),
    HeadTooLarge,
    LengthRequired,
    BodyTooLarge {
        limit: usize,
        length: usize,
    },
    NotImplemented(String),
    VersionNotSupported(String),
}

impl HttpError {
    /// Status code and reason for the answer, when one is sent.
    pub fn status(&self) -> Option<(u16, &'static str)> {
        match self {
            HttpError::Closed | HttpError::Io(_) => None,
            HttpError::BadRequest(_) => Some((400, "Bad Request")),
            HttpError::HeadTooLarge => Some((431, "Request Header Fields Too Large")),
            HttpError::LengthRequired => Some((411, "Length Required")),
            HttpError::BodyTooLarge { .. } => Some((413, "Payload Too Large")),
            HttpError::NotImplemented(_) => Some((501, "Not Implemented")),
            HttpError::VersionNotSupported(_) => Some((505, "HTTP Version Not Supported")),
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Closed => write!(f, "connection closed by the peer"),
            HttpError::Io(e) => write!(f, "I/O error: {e}"),
            HttpError::BadRequest(m) => write!(f, "{m}"),
            HttpError::HeadTooLarge => write!(
                f,
                "request head longer than {MAX_REQUEST_LINE} bytes (line) or \
                 {MAX_HEADER_BYTES} bytes / {MAX_HEADERS} fields (headers)"
            ),
            HttpError::LengthRequired => write!(f, "a Content-Length header is required"),
            HttpError::BodyTooLarge { limit, length } => {
                write!(
                    f,
                    "body of {length} bytes is over the limit of {limit} bytes"
                )
            }
            HttpError::NotImplemented(m) => write!(f, "{m}"),
            HttpError::VersionNotSupported(v) => write!(f, "HTTP version {v} is not supported"),
        }
    }
}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        HttpError::Io(e)
    }
}

/// Reads one line ending in LF, at most `limit` bytes including the LF.
/// Returns `None` at EOF before any byte.
fn read_line(r: &mut impl BufRead, limit: usize) -> Result<Option<Vec<u8>>, HttpError> {
    let mut line = Vec::new();
    let n = r.take(limit as u64).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if n >= limit {
            return Err(HttpError::HeadTooLarge);
        }
        return Err(HttpError::BadRequest(
            "connection closed in the middle of the request head".into(),
        ));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(line))
}

fn parse_version(v: &str) -> Result<Version, HttpError> {
    match v {
        "HTTP/1.1" => Ok(Version::Http11),
        "HTTP/1.0" => Ok(Version::Http10),
        _ => {
            let rest = v
                .strip_prefix("HTTP/")
                .ok_or_else(|| HttpError::BadRequest(format!("bad HTTP version '{v}'")))?;
            let major: u32 = rest
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .ok_or_else(|| HttpError::BadRequest(format!("bad HTTP version '{v}'")))?;
            if major >= 2 {
                Err(HttpError::VersionNotSupported(v.to_string()))
            } else {
                Err(HttpError::BadRequest(format!("bad HTTP version '{v}'")))
            }
        }
    }
}

/// Reads a request head. Empty lines before the request line are skipped
/// (RFC 9112 2.2) but count against the line limit.
pub fn read_head(r: &mut impl BufRead) -> Result<Head, HttpError> {
    let mut line = match read_line(r, MAX_REQUEST_LINE)? {
        Some(l) => l,
        None => return Err(HttpError::Closed),
    };
    if line.is_empty() {
        line = read_line(r, MAX_REQUEST_LINE)?.ok_or(HttpError::Closed)?;
    }
    let line = String::from_utf8(line)
        .map_err(|_| HttpError::BadRequest("request line is not UTF-8".into()))?;
    let mut parts = line.split(' ');
    let (method, path, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(p), Some(v), None) if !m.is_empty() && !p.is_empty() => (m, p, v),
        _ => {
            return Err(HttpError::BadRequest(format!(
                "malformed request line '{line}'"
            )))
        }
    };
    if !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(HttpError::BadRequest(format!(
            "malformed method '{method}'"
        )));
    }
    let version = parse_version(version)?;
    let mut headers = Vec::new();
    let mut header_bytes = 0usize;
    loop {
        let remaining = MAX_HEADER_BYTES.saturating_sub(header_bytes);
        if remaining == 0 {
            return Err(HttpError::HeadTooLarge);
        }
        let raw = read_line(r, remaining)?.ok_or_else(|| {
            HttpError::BadRequest("connection closed in the middle of the request head".into())
        })?;
        header_bytes += raw.len() + 2;
        if raw.is_empty() {
            break;
        }
        if raw[0] == b' ' || raw[0] == b'\t' {
            return Err(HttpError::BadRequest(
                "obsolete header line folding is not accepted".into(),
            ));
        }
        if headers.len() >= MAX_HEADERS {
            return Err(HttpError::HeadTooLarge);
        }
        let raw = String::from_utf8(raw)
            .map_err(|_| HttpError::BadRequest("header is not UTF-8".into()))?;
        let (name, value) = raw
            .split_once(':')
            .ok_or_else(|| HttpError::BadRequest(format!("malformed header '{raw}'")))?;
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(HttpError::BadRequest(format!(
                "malformed header name '{name}'"
            )));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let mut head = Head {
        method: method.to_ascii_uppercase(),
        path: path.to_string(),
        version,
        headers,
        content_length: None,
        keep_alive: false,
        expect_continue: false,
    };
    if head.header("Transfer-Encoding").is_some() {
        return Err(HttpError::NotImplemented(
            "Transfer-Encoding is not supported; send a Content-Length".into(),
        ));
    }
    let mut length = None;
    for (n, v) in &head.headers {
        if n.eq_ignore_ascii_case("Content-Length") {
            let parsed: usize = v
                .parse()
                .ok()
                .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| HttpError::BadRequest(format!("bad Content-Length '{v}'")))?;
            if length.is_some_and(|l| l != parsed) {
                return Err(HttpError::BadRequest(
                    "conflicting Content-Length headers".into(),
                ));
            }
            length = Some(parsed);
        }
    }
    head.content_length = length;
    if version == Version::Http11 && head.header("Host").is_none() {
        return Err(HttpError::BadRequest("Missing Host header".into()));
    }
    let connection = head.header("Connection").map(|c| c.to_ascii_lowercase());
    head.keep_alive = match (version, connection.as_deref()) {
        (_, Some(c)) if c.split(',').any(|t| t.trim() == "close") => false,
        (Version::Http11, _) => true,
        (Version::Http10, Some(c)) => c.split(',').any(|t| t.trim() == "keep-alive"),
        (Version::Http10, None) => false,
    };
    head.expect_continue = version == Version::Http11
        && head
            .header("Expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
    Ok(head)
}

/// Most bytes a complete request head can take: one skipped empty line,
/// the request line and the header block.
pub const MAX_HEAD: usize = 2 + MAX_REQUEST_LINE + MAX_HEADER_BYTES;

/// Length of the request head at the start of `buf` (through its empty
/// line), or `None` while it is incomplete.
fn head_len(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    let mut lines = 0;
    while let Some(i) = buf[start..].iter().position(|&b| b == b'\n') {
        let line = &buf[start..start + i];
        let empty = line.is_empty() || line == b"\r";
        start += i + 1;
        lines += 1;
        // An empty first line is skipped (see read_head); a second empty
        // line, or one after the request line, ends the head.
        if empty && lines > 1 {
            return Some(start);
        }
    }
    None
}

/// Parses a request head from the bytes received so far, for a reader
/// that gathers input without blocking. `Ok(None)`: not complete yet.
/// Gives up as soon as the limits cannot be met any more, so a peer
/// cannot make the buffer grow past [`MAX_HEAD`].
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    match head_len(buf) {
        Some(n) => {
            let head = read_head(&mut io::Cursor::new(&buf[..n]))?;
            Ok(Some((head, n)))
        }
        None => {
            let first = buf.strip_prefix(b"\r\n").unwrap_or(buf);
            let first = first.strip_prefix(b"\n").unwrap_or(first);
            let line_open = !first.contains(&b'\n');
            if buf.len() > MAX_HEAD || (line_open && first.len() >= MAX_REQUEST_LINE) {
                Err(HttpError::HeadTooLarge)
            } else {
                Ok(None)
            }
        }
    }
}

/// Reads the body announced by `head`, refusing more than `limit` bytes
/// before reading any of it. Sends `100 Continue` first when asked to.
pub fn read_body<S: BufRead + Write>(
    stream: &mut S,
    head: &Head,
    limit: usize,
) -> Result<Vec<u8>, HttpError> {
    let length = head.content_length.ok_or(HttpError::LengthRequired)?;
    if length > limit {
        return Err(HttpError::BodyTooLarge { limit, length });
    }
    if head.expect_continue && length > 0 {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        stream.flush()?;
    }
    let mut body = Vec::new();
    let mut chunk = [0u8; 1024];
    while body.len() < length {
        let want = (length - body.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..want])?;
        if n == 0 {
            return Err(HttpError::BadRequest(format!(
                "connection closed after {} of {length} body bytes",
                body.len()
            )));
        }
        if body.capacity() - body.len() < n {
            body.reserve((length - body.len()).min(BODY_CHUNK));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(body)
}

/// A byte stream with a read buffer that can still be written to: the
/// server's side of one connection.
#[derive(Debug)]
pub struct Connection<S: Read + Write> {
    inner: io::BufReader<S>,
}

impl<S: Read + Write> Connection<S> {
    pub fn new(stream: S) -> Self {
        Connection {
            inner: io::BufReader::with_capacity(BODY_CHUNK, stream),
        }
    }

    pub fn get_ref(&self) -> &S {
        self.inner.get_ref()
    }

    pub fn get_mut(&mut self) -> &mut S {
        self.inner.get_mut()
    }
}

impl<S: Read + Write> Read for Connection<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<S: Read + Write> BufRead for Connection<S> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.inner.consume(n)
    }
}

impl<S: Read + Write> Write for Connection<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.get_mut().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.get_mut().flush()
    }
}

/// A response to write.
#[derive(Debug)]
pub struct Response<'a> {
    pub status: u16,
    pub reason: &'a str,
    pub content_type: &'a str,
    pub body: &'a [u8],
    pub keep_alive: bool,
}

/// The value of the `Server` header.
pub const SERVER_NAME: &str = concat!("ganeti-rs/", env!("CARGO_PKG_VERSION"), " (Ganeti 2.5.2)");

/// `Date` header value (RFC 9110 IMF-fixdate) for a Unix time.
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86400;
    let rem = secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Writes a whole response in one `write_all`.
pub fn write_response(w: &mut impl Write, r: &Response<'_>) -> io::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nDate: {}\r\nServer: {SERVER_NAME}\r\nConnection: {}\r\n\
         Content-Type: {}\r\nContent-Length: {}\r\n\r\n",
        r.status,
        r.reason,
        http_date(now),
        if r.keep_alive { "keep-alive" } else { "close" },
        r.content_type,
        r.body.len()
    )
    .into_bytes();
    out.extend_from_slice(r.body);
    w.write_all(&out)?;
    w.flush()
}

/// A small HTML error page, as Ganeti's HTTP server sends.
pub fn error_page(status: u16, reason: &str, message: &str) -> Vec<u8> {
    let esc = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<html>\n<head>\n<title>Error response</title>\n</head>\n<body>\n\
         <h1>Error response</h1>\n<p>Error code {status}.\n<p>Message: {esc}\n\
         <p>Error code explanation: {status} = {reason}.\n</body>\n</html>\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn head(raw: &str) -> Result<Head, HttpError> {
        read_head(&mut Cursor::new(raw.as_bytes().to_vec()))
    }

    #[test]
    fn parses_a_ganeti_request() {
        let h = head(
            "put /version HTTP/1.1\r\nHost: n1\r\nContent-Length: 2\r\n\
             Content-Type: application/json\r\n\r\n[]",
        )
        .unwrap();
        assert_eq!(h.method, "PUT");
        assert_eq!(h.path, "/version");
        assert_eq!(h.content_length, Some(2));
        assert!(h.keep_alive);
        assert_eq!(h.header("content-type"), Some("application/json"));
    }

    #[test]
    fn connection_semantics() {
        let h = head("POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        let h = head("POST / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        let h = head("POST / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(h.keep_alive);
    }

    #[test]
    fn refusals() {
        assert!(matches!(head(""), Err(HttpError::Closed)));
        assert!(matches!(
            head("PUT /version\r\n\r\n"),
            Err(HttpError::BadRequest(_))
        ));
        assert!(matches!(
            head("PUT /v HTTP/2.0\r\nHost: x\r\n\r\n"),
            Err(HttpError::VersionNotSupported(_))
        ));
        assert!(matches!(
            head("PUT /v HTTP/1.1\r\n\r\n"),
            Err(HttpError::BadRequest(_))
        ));
        assert!(matches!(
            head("PUT /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(HttpError::NotImplemented(_))
        ));
        assert!(matches!(
            head("PUT /v HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(HttpError::BadRequest(_))
        ));
        assert!(matches!(
            head("PUT /v HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
            Err(HttpError::BadRequest(_))
        ));
        assert!(matches!(
            head("PUT /v HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"),
            Err(HttpError::BadRequest(_))
        ));
        assert!(matches!(
            head("PUT /v HTTP/1.1\r\nHost: x\r\nX-Half"),
            Err(HttpError::BadRequest(_))
        ));
    }

    #[test]
    fn parse_head_waits_for_the_whole_head() {
        let raw = b"\r\nPUT /version HTTP/1.1\r\nHost: n1\r\nContent-Length: 2\r\n\r\n[]";
        let end = raw.len() - 2;
        for cut in 0..end {
            assert!(parse_head(&raw[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        let (h, n) = parse_head(raw).unwrap().unwrap();
        assert_eq!((h.path.as_str(), n), ("/version", end));
        let (_, n) = parse_head(b"PUT /v HTTP/1.0\n\nrest").unwrap().unwrap();
        assert_eq!(n, 17);
        assert!(matches!(
            parse_head(b"\r\n\r\n"),
            Err(HttpError::BadRequest(_))
        ));
    }

    #[test]
    fn parse_head_gives_up_at_the_limits() {
        let line = vec![b'a'; MAX_REQUEST_LINE - 1];
        assert!(parse_head(&line).unwrap().is_none());
        let line = vec![b'a'; MAX_REQUEST_LINE];
        assert!(matches!(parse_head(&line), Err(HttpError::HeadTooLarge)));
        let mut open = b"PUT /v HTTP/1.1\r\n".to_vec();
        open.resize(MAX_HEAD, b'a');
        assert!(parse_head(&open).unwrap().is_none());
        open.push(b'a');
        assert!(matches!(parse_head(&open), Err(HttpError::HeadTooLarge)));
    }

    #[test]
    fn request_line_limit() {
        let fits = format!(
            "PUT /{} HTTP/1.0\r\n\r\n",
            "a".repeat(MAX_REQUEST_LINE - 16)
        );
        assert_eq!(fits.find('\n').unwrap() + 1, MAX_REQUEST_LINE);
        assert!(head(&fits).is_ok());
        let over = format!(
            "PUT /{} HTTP/1.0\r\n\r\n",
            "a".repeat(MAX_REQUEST_LINE - 15)
        );
        assert!(matches!(head(&over), Err(HttpError::HeadTooLarge)));
    }

    #[test]
    fn header_bytes_limit() {
        // Host line + filler so that the block (with the final CRLF) is
        // exactly the limit, then one byte more.
        let base = "Host: x\r\n".len() + "X: \r\n".len() + 2;
        let fits = format!(
            "PUT /v HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEADER_BYTES - base)
        );
        assert!(head(&fits).is_ok());
        let over = format!(
            "PUT /v HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEADER_BYTES - base + 1)
        );
        assert!(matches!(head(&over), Err(HttpError::HeadTooLarge)));
    }

    #[test]
    fn header_count_limit() {
        let mut fits = String::from("PUT /v HTTP/1.1\r\nHost: x\r\n");
        for i in 1..MAX_HEADERS {
            fits.push_str(&format!("X{i}: y\r\n"));
        }
        let over = format!("{fits}X0: y\r\n\r\n");
        fits.push_str("\r\n");
        assert!(head(&fits).is_ok());
        assert!(matches!(head(&over), Err(HttpError::HeadTooLarge)));
    }

    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }
    impl Read for Duplex {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.input.read(b)
        }
    }
    impl Write for Duplex {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.output.write(b)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn body(raw: &str, limit: usize) -> (Result<Vec<u8>, HttpError>, Vec<u8>) {
        let mut s = Connection::new(Duplex {
            input: Cursor::new(raw.as_bytes().to_vec()),
            output: Vec::new(),
        });
        let h = read_head(&mut s).unwrap();
        let b = read_body(&mut s, &h, limit);
        (b, s.get_ref().output.clone())
    }

    #[test]
    fn body_limit_is_checked_before_reading() {
        let (b, _) = body(
            "PUT /v HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd",
            4,
        );
        assert_eq!(b.unwrap(), b"abcd");
        let (b, _) = body(
            "PUT /v HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde",
            4,
        );
        assert!(matches!(
            b,
            Err(HttpError::BodyTooLarge {
                limit: 4,
                length: 5
            })
        ));
        let (b, _) = body(
            "PUT /v HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\n\r\n",
            4,
        );
        assert!(matches!(b, Err(HttpError::BodyTooLarge { .. })));
    }

    #[test]
    fn body_truncated_or_missing_length() {
        let (b, _) = body(
            "PUT /v HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc",
            100,
        );
        assert!(matches!(b, Err(HttpError::BadRequest(_))));
        let (b, _) = body("PUT /v HTTP/1.1\r\nHost: x\r\n\r\nabc", 100);
        assert!(matches!(b, Err(HttpError::LengthRequired)));
    }

    #[test]
    fn expect_continue_gets_100() {
        let (b, out) = body(
            "PUT /v HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n[]",
            10,
        );
        assert_eq!(b.unwrap(), b"[]");
        assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_795_737_600), "Fri, 27 Nov 2026 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
