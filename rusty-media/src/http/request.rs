//! Reading a request: the request head (request line and header fields,
//! strictly checked against [`super::MAX_HEAD_BYTES`] and
//! [`super::MAX_HEADERS`]) and the `Range` header. Pure functions over bytes
//! and strings with no I/O, kept apart from the connection loop in
//! [`super`] so the parsers (the part a hostile client talks to) can be
//! read, tested and fuzzed on their own.

use super::MAX_HEADERS;

/// A request head that cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeadError {
    Malformed(&'static str),
    TooLarge,
    TooManyHeaders,
    Version,
}

impl HeadError {
    pub(super) fn status(self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::TooLarge | Self::TooManyHeaders => 431,
            Self::Version => 505,
        }
    }

    pub(super) fn reason(self) -> &'static str {
        match self {
            Self::Malformed(what) => what,
            Self::TooLarge => "request head larger than 16 KiB",
            Self::TooManyHeaders => "more than 64 header fields",
            Self::Version => "only HTTP/1.0 and HTTP/1.1 are supported",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Head,
    Other,
}

/// A parsed request head.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) method: Method,
    pub(super) method_name: String,
    /// The path of the target, without query or fragment.
    pub(super) path: String,
    pub(super) http10: bool,
    /// Header fields in order, names in lower case.
    pub(super) headers: Vec<(String, String)>,
    /// The client asked for (or its version defaults to) a persistent
    /// connection.
    pub(super) keep_alive: bool,
    /// The request announces a body (which is never read: the connection is
    /// closed after the response).
    pub(super) has_body: bool,
}

impl Request {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next()
    }

    pub(super) fn headers_named<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a str> + 'n
    where
        'a: 'n,
    {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn is_head(&self) -> bool {
        self.method == Method::Head
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Index just past the blank line that ends the head (`\n\n` or
/// `\n\r\n`), searching from `from`.
pub(super) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match (buf.get(i + 1), buf.get(i + 2)) {
                (Some(b'\n'), _) => return Some(i + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(i + 3),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Parses a request head: the request line, the header fields and the blank
/// line (lines end in CRLF or a bare LF).
pub(super) fn parse_head(head: &[u8]) -> Result<Request, HeadError> {
    let mut lines = head.split(|&b| b == b'\n').map(|line| match line {
        [rest @ .., b'\r'] => rest,
        _ => line,
    });
    let request_line = lines.next().unwrap_or_default();
    if request_line.contains(&b'\r') {
        return Err(HeadError::Malformed("stray CR in the request line"));
    }
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed("bad request line"));
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(HeadError::Malformed("bad method"));
    }
    if target.is_empty() || !target.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return Err(HeadError::Malformed("bad request target"));
    }
    let http10 = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(HeadError::Version)
        }
        _ => return Err(HeadError::Malformed("bad HTTP version")),
    };
    // Checked above: visible ASCII only.
    let method_name = String::from_utf8_lossy(method).into_owned();
    let target = String::from_utf8_lossy(target);
    let path = request_path(&target).ok_or(HeadError::Malformed("bad request target"))?;

    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(HeadError::TooManyHeaders);
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(HeadError::Malformed("obsolete line folding"));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(HeadError::Malformed("header line without a colon"));
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(HeadError::Malformed("bad header name"));
        }
        let value = trim_ows(value);
        if !value
            .iter()
            .all(|&b| b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80)
        {
            return Err(HeadError::Malformed("bad header value"));
        }
        headers.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }

    let mut request = Request {
        method: match method {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            _ => Method::Other,
        },
        method_name,
        path,
        http10,
        headers,
        keep_alive: false,
        has_body: false,
    };

    let mut content_length = None;
    for value in request.headers_named("content-length") {
        for item in value.split(',') {
            let n = parse_digits(item.trim_matches([' ', '\t']))
                .ok_or(HeadError::Malformed("bad Content-Length"))?;
            if content_length.is_some_and(|m| m != n) {
                return Err(HeadError::Malformed("conflicting Content-Length"));
            }
            content_length = Some(n);
        }
    }
    request.has_body =
        content_length.unwrap_or(0) > 0 || request.header("transfer-encoding").is_some();

    let mut close = false;
    let mut keep_alive = false;
    for value in request.headers_named("connection") {
        for token in value.split(',') {
            let token = token.trim_matches([' ', '\t']);
            close |= token.eq_ignore_ascii_case("close");
            keep_alive |= token.eq_ignore_ascii_case("keep-alive");
        }
    }
    request.keep_alive = !close && (!http10 || keep_alive);
    Ok(request)
}

/// `value` without leading and trailing spaces and tabs.
fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// The path of a request target in origin form (`/a/b?q`) or absolute form
/// (`http://host/a/b?q`), without query or fragment; `*` stays `*`.
fn request_path(target: &str) -> Option<String> {
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    let path = if let Some(scheme_len) = ["http://", "https://"]
        .iter()
        .find(|s| lower.starts_with(*s))
        .map(|s| s.len())
    {
        let rest = target.get(scheme_len..)?;
        match rest.find('/') {
            Some(i) => rest.get(i..)?,
            None => "/",
        }
    } else if target.starts_with('/') || target == "*" {
        target
    } else {
        return None;
    };
    let end = path.find(['?', '#']).unwrap_or(path.len());
    Some(path.get(..end)?.to_owned())
}

/// A non-empty string of ASCII digits as a `u64`, saturating at `u64::MAX`
/// (a larger number means the same as the largest one here).
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// What a `Range` header asks of content of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Serve the whole content (200): not a single valid `bytes` range.
    Ignore,
    /// Serve bytes `[start, end)` (206); `start < end <= size`.
    Range { start: u64, end: u64 },
    /// No byte of the range exists (416).
    Unsatisfiable,
}

/// Parses a `Range` header value (RFC 9110 §14.2) against `size`.
///
/// Only a single range in the `bytes` unit (case-insensitive) is honoured:
/// `bytes=a-b` (`b` past the end is clamped), `bytes=a-` and `bytes=-n` (the
/// last `n` bytes). A range starting at or past the end, `bytes=-0`, and any
/// range of empty content are unsatisfiable. Anything else — another unit,
/// bad syntax (spaces around `=` or `-`, signs, `b < a`, no digits), several
/// ranges — is ignored. Numbers too large for a `u64` count as `u64::MAX`.
pub fn parse_range(value: &str, size: u64) -> RangeOutcome {
    let Some((unit, set)) = value.split_once('=') else {
        return RangeOutcome::Ignore;
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        return RangeOutcome::Ignore;
    }
    // A list: empty elements are allowed and skipped.
    let mut specs = set
        .split(',')
        .map(|s| s.trim_matches([' ', '\t']))
        .filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return RangeOutcome::Ignore;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeOutcome::Ignore;
    };
    if first.is_empty() {
        let Some(suffix) = parse_digits(last) else {
            return RangeOutcome::Ignore;
        };
        if suffix == 0 || size == 0 {
            return RangeOutcome::Unsatisfiable;
        }
        return RangeOutcome::Range {
            start: size - suffix.min(size),
            end: size,
        };
    }
    let Some(first) = parse_digits(first) else {
        return RangeOutcome::Ignore;
    };
    let last = if last.is_empty() {
        None
    } else {
        match parse_digits(last) {
            Some(last) if last >= first => Some(last),
            _ => return RangeOutcome::Ignore,
        }
    };
    if first >= size {
        return RangeOutcome::Unsatisfiable;
    }
    // size > first >= 0, so size - 1 does not underflow and + 1 stays <= size.
    let end = last.map_or(size, |last| last.min(size - 1) + 1);
    RangeOutcome::Range { start: first, end }
}
