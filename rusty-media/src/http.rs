//! A small local HTTP/1.1 playback server, so that mpv, VLC, ffplay or a
//! browser can play content while it downloads (`rusty-cli stream view <id>
//! --serve 127.0.0.1:<port>`).
//!
//! Written by hand over tokio's [`TcpListener`]: one task per connection,
//! keep-alive, strict parsing of the request head (16 KiB, 64 headers) and of
//! `Range`, and bodies streamed in pieces of at most 1 MiB fetched from a
//! [`PlaybackSource`] one at a time (the next piece is fetched while the
//! current one is written), so a player gets its first bytes — and a seek
//! gets its range — long before the whole content is downloaded.
//!
//! Routes (see [`serve`] and the "Playback over HTTP" section of
//! `docs/media.md`):
//!
//! | Route | File (`size: Some`) | Live stream (`size: None`) |
//! |-------|---------------------|----------------------------|
//! | `GET`/`HEAD /` | the content, as `/content` | `302` to `/live.m3u8` |
//! | `GET`/`HEAD /content` | the content, with `Range` | `404` |
//! | `GET`/`HEAD /live.m3u8` | `404` | HLS v3 media playlist |
//! | `GET`/`HEAD /live/<seq>.ts` | `404` | one segment, `404` once gone |
//!
//! Any other path is `404`; any method other than `GET` or `HEAD` is `405`.

use std::{
    fmt::Write as _,
    future::Future,
    io,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        tcp::{ReadHalf, WriteHalf},
        TcpListener, TcpStream,
    },
    sync::{OwnedSemaphorePermit, Semaphore},
    task::JoinSet,
    time::{sleep, timeout, timeout_at, Instant},
};
use tracing::{debug, warn};

/// Largest request head (request line, headers and the blank line).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 64;
/// Most bytes asked of [`PlaybackSource::read_range`] at once. Pieces are
/// aligned to multiples of this size (so also to 64 KiB chunks).
pub const MAX_PIECE: u64 = 1 << 20;

/// Body bytes handed to the socket per write; each write must make progress
/// within the idle timeout.
const WRITE_SLICE: usize = 64 * 1024;
/// Bytes of a pipelined next request buffered while a response is served.
const MAX_BUFFERED: usize = MAX_HEAD_BYTES + 8 * 1024;
/// After the last response on a connection, how long (and how many bytes)
/// unread input is drained so that closing does not reset the connection
/// before the client has read the response.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;
/// Connections refused with 503 at the same time (beyond that they are
/// dropped at once).
const MAX_REJECTING: usize = 64;
/// How long the 503 of a refused connection may take to write.
const REJECT_WRITE: Duration = Duration::from_secs(2);
/// A playlist request for a live stream with no segment yet waits this long
/// for the first one before it is answered 503.
const LIVE_FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(10);
const LIVE_POLL: Duration = Duration::from_millis(250);
/// Pause after a failed `accept` (file descriptors exhausted, ...).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

const SERVER: &str = "rusty-media";
const MIME_HLS: &str = "application/vnd.apple.mpegurl";
const MIME_TS: &str = "video/mp2t";
const MIME_FALLBACK: &str = "application/octet-stream";

/// What a [`PlaybackSource`] serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// MIME type of the content (`Content-Type`).
    pub mime: String,
    /// Size of the file in bytes; `None` for a live stream.
    pub size: Option<u64>,
    /// Title (sent as the file name in `Content-Disposition`).
    pub title: String,
}

/// The content behind the server: a file being downloaded, or a live stream.
pub trait PlaybackSource: Send + Sync + 'static {
    /// What is served; asked once per request.
    fn info(&self) -> impl Future<Output = Result<SourceInfo, String>> + Send;

    /// Bytes `[start, end)` of a file, `end <= size`, `end - start <= 1 MiB`;
    /// waits until they are downloaded and verified (the implementation
    /// prioritises that range). `Err` = give up (the server answers 503, or
    /// closes the connection if the response has started).
    fn read_range(
        &self,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Vec<u8>, String>> + Send;

    /// Live: the segments currently in the live window, oldest first:
    /// `(seq, duration_ms)`.
    fn live_window(&self) -> impl Future<Output = Result<Vec<(u64, u32)>, String>> + Send;

    /// Live: one segment's bytes, `None` if it fell out of the window or is
    /// unknown.
    fn live_segment(
        &self,
        seq: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, String>> + Send;
}

/// Limits of the playback server.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Connections served at once; further ones get a 503 and are closed.
    pub max_connections: usize,
    /// Time allowed for a request head to arrive completely (for the first
    /// request of a connection: from the accept; later: from its first byte).
    /// A partial head at the deadline is answered 408.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request, and
    /// how long writing a response may make no progress (the client stopped
    /// reading), before the connection is closed. Choose it generously: a
    /// paused player with a full cache stops reading.
    pub idle_timeout: Duration,
}

impl Default for HttpConfig {
    /// 32 connections, a 10 s header timeout, a 5 min idle timeout.
    fn default() -> Self {
        Self {
            max_connections: 32,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Serves `source` on `listener` until `shutdown` resolves; then stops
/// accepting, ends every open connection and returns `Ok(())`.
///
/// Routes:
///
/// - `GET|HEAD /`: for a file, the content (as `/content`); for a live
///   stream, `302 Found` with `Location: /live.m3u8`.
/// - `GET|HEAD /content`: the file (404 for a live stream). A single
///   `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` gives `206` with
///   `Content-Range`; no `Range` gives `200` with the whole file; a range that
///   starts at or past the end (or `bytes=-0`, or any range of an empty file)
///   gives `416` with `Content-Range: bytes */<size>`. A `Range` that is not
///   in the `bytes` unit, is syntactically invalid, lists several ranges,
///   appears twice, or comes with `If-Range` is ignored (RFC 9110 allows
///   that): the whole file, `200`. Always `Accept-Ranges: bytes`,
///   `Content-Type` from [`SourceInfo::mime`] and `Content-Length`.
/// - `GET|HEAD /live.m3u8`: the HLS (version 3) media playlist of the live
///   window (404 for a file).
/// - `GET|HEAD /live/<seq>.ts`: one live segment, `video/mp2t`; 404 once it
///   left the window (or for a file).
/// - Any other path: 404. Any method other than `GET` or `HEAD`: 405.
///
/// Failed `accept`s are logged and retried; `serve` itself does not fail.
pub async fn serve<S: PlaybackSource>(
    listener: TcpListener,
    source: Arc<S>,
    config: HttpConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(
        config.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let rejecting = Arc::new(Semaphore::new(MAX_REJECTING));
    let config = Arc::new(config);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = joined {
                    if e.is_panic() {
                        warn!(error = %e, "http connection task panicked");
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Ok(permit) = Arc::clone(&permits).try_acquire_owned() {
                        tasks.spawn(connection(
                            stream,
                            peer,
                            Arc::clone(&source),
                            Arc::clone(&config),
                            permit,
                        ));
                    } else if let Ok(permit) = Arc::clone(&rejecting).try_acquire_owned() {
                        tasks.spawn(reject(stream, peer, permit));
                    } else {
                        debug!(%peer, "http: too many connections, dropped");
                    }
                }
                Err(e) => {
                    warn!(error = %e, "http accept failed");
                    sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    tasks.shutdown().await;
    Ok(())
}

/// Answers a connection over the limit with 503 and closes it.
async fn reject(mut stream: TcpStream, peer: SocketAddr, _permit: OwnedSemaphorePermit) {
    debug!(%peer, status = 503, "http: too many connections");
    let body = b"503 too many connections\n";
    let mut out = render_head(
        503,
        &[
            ("Retry-After", "1".to_owned()),
            ("Content-Type", "text/plain; charset=utf-8".to_owned()),
        ],
        body.len() as u64,
        false,
        false,
    );
    out.extend_from_slice(body);
    if let Ok(Ok(())) = timeout(REJECT_WRITE, stream.write_all(&out)).await {
        linger_close(stream).await;
    }
}

/// Shuts the write side, then drains input for a moment, so the peer reads
/// the last response before the connection goes away (closing a socket with
/// unread input resets it).
async fn linger_close(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut drained = 0usize;
    let _ = timeout(LINGER, async {
        while drained < LINGER_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

async fn connection<S: PlaybackSource>(
    mut stream: TcpStream,
    peer: SocketAddr,
    source: Arc<S>,
    config: Arc<HttpConfig>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let end = {
        let (rd, wr) = stream.split();
        let mut conn = Conn {
            source: &*source,
            config: &config,
            peer,
            rd,
            wr,
            buf: Vec::new(),
        };
        conn.run().await
    };
    if end == End::Linger {
        linger_close(stream).await;
    }
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client went away, or the response broke off: just close.
    Drop,
    /// We close after a complete response: close gracefully.
    Linger,
}

/// Why a response was abandoned.
#[derive(Debug)]
enum Abort {
    /// The client closed the connection or writing to it failed.
    ClientGone,
    /// Writing made no progress within the idle timeout.
    Stalled,
    /// The source failed once the response had started.
    Source(String),
}

/// The next thing on a connection.
#[derive(Debug)]
enum Incoming {
    Request(Request),
    /// Closed by the client or idle for too long, between requests.
    Closed,
    /// The head did not arrive within the header timeout.
    TimedOut,
    Bad(HeadError),
}

/// A request head that cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadError {
    Malformed(&'static str),
    TooLarge,
    TooManyHeaders,
    Version,
}

impl HeadError {
    fn status(self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::TooLarge | Self::TooManyHeaders => 431,
            Self::Version => 505,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Self::Malformed(what) => what,
            Self::TooLarge => "request head larger than 16 KiB",
            Self::TooManyHeaders => "more than 64 header fields",
            Self::Version => "only HTTP/1.0 and HTTP/1.1 are supported",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Other,
}

/// A parsed request head.
#[derive(Debug)]
struct Request {
    method: Method,
    method_name: String,
    /// The path of the target, without query or fragment.
    path: String,
    http10: bool,
    /// Header fields in order, names in lower case.
    headers: Vec<(String, String)>,
    /// The client asked for (or its version defaults to) a persistent
    /// connection.
    keep_alive: bool,
    /// The request announces a body (which is never read: the connection is
    /// closed after the response).
    has_body: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next()
    }

    fn headers_named<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + 'n
    where
        'a: 'n,
    {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn is_head(&self) -> bool {
        self.method == Method::Head
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Index just past the blank line that ends the head (`\n\n` or
/// `\n\r\n`), searching from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
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
fn parse_head(head: &[u8]) -> Result<Request, HeadError> {
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
pub(crate) enum RangeOutcome {
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
pub(crate) fn parse_range(value: &str, size: u64) -> RangeOutcome {
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

/// The HLS (version 3) media playlist of a live window; `None` if the window
/// is empty.
///
/// Segments are sorted by sequence number (duplicates dropped) and only the
/// run of consecutive sequence numbers from the oldest one is listed: a
/// playlist numbers its segments from `#EXT-X-MEDIA-SEQUENCE` on, so a gap
/// cannot be expressed, and segments after it wait until it is filled or
/// drops out of the window (the media sequence never goes backwards).
pub(crate) fn hls_playlist(window: &[(u64, u32)]) -> Option<String> {
    let mut segments = window.to_vec();
    segments.sort_by_key(|&(seq, _)| seq);
    segments.dedup_by_key(|&mut (seq, _)| seq);
    let first = segments.first()?.0;
    // `seq + 1 == next`, without overflow at u64::MAX.
    let run = 1 + segments
        .windows(2)
        .take_while(|pair| pair[0].0.checked_add(1) == Some(pair[1].0))
        .count();
    let segments = segments.get(..run)?;
    let max_ms = segments.iter().map(|&(_, ms)| u64::from(ms)).max()?;
    let target = max_ms.div_ceil(1000).max(1);
    let mut out = String::new();
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
    );
    for &(seq, ms) in segments {
        let _ = write!(
            out,
            "#EXTINF:{}.{:03},\nlive/{seq}.ts\n",
            ms / 1000,
            ms % 1000
        );
    }
    Some(out)
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Root,
    Content,
    Playlist,
    Segment(u64),
    NotFound,
}

impl Route {
    fn of(path: &str) -> Self {
        match path {
            "/" => Self::Root,
            "/content" => Self::Content,
            "/live.m3u8" => Self::Playlist,
            _ => path
                .strip_prefix("/live/")
                .and_then(|rest| rest.strip_suffix(".ts"))
                .filter(|digits| digits.len() <= 20)
                .and_then(|digits| {
                    if digits.bytes().all(|b| b.is_ascii_digit()) {
                        digits.parse().ok()
                    } else {
                        None
                    }
                })
                .map_or(Self::NotFound, Self::Segment),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// A response head. `headers` values must be free of CR and LF.
fn render_head(
    status: u16,
    headers: &[(&str, String)],
    content_length: u64,
    keep_alive: bool,
    http10: bool,
) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nDate: {}\r\nServer: {SERVER}\r\n",
        reason(status),
        http_date(SystemTime::now())
    );
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    let _ = write!(out, "Content-Length: {content_length}\r\n");
    if !keep_alive {
        out.push_str("Connection: close\r\n");
    } else if http10 {
        out.push_str("Connection: keep-alive\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .min(253_402_300_799); // 9999-12-31T23:59:59Z
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm), in
    // unsigned arithmetic: dates from 1970 on only.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let weekday = DAYS.get((days % 7) as usize).copied().unwrap_or("Thu");
    let month = MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("Jan");
    format!(
        "{weekday}, {day:02} {month} {year} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `Content-Type` value: the source's MIME type if it is safe in a header.
fn content_type(mime: &str) -> String {
    let ok =
        !mime.is_empty() && mime.len() <= 200 && mime.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if ok {
        mime.to_owned()
    } else {
        MIME_FALLBACK.to_owned()
    }
}

/// `Content-Disposition: inline` with the title as the file name (RFC 8187
/// percent-encoding, so any title is safe in the header).
fn content_disposition(title: &str) -> Option<String> {
    if title.is_empty() {
        return None;
    }
    let mut out = String::from("inline; filename*=UTF-8''");
    for &b in title.as_bytes().iter().take(600) {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Some(out)
}

/// Reads into `buf` what the socket has (at least one byte, unless it is
/// closed: `Ok(0)`).
async fn read_more(rd: &mut ReadHalf<'_>, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.reserve(8 * 1024);
    rd.read_buf(buf).await
}

/// Resolves when the client closes its side or the connection fails;
/// meanwhile buffers what it sends (a pipelined request), up to a cap.
async fn client_gone(rd: &mut ReadHalf<'_>, buf: &mut Vec<u8>) -> Abort {
    loop {
        if buf.len() >= MAX_BUFFERED {
            return std::future::pending().await;
        }
        match read_more(rd, buf).await {
            Ok(0) | Err(_) => return Abort::ClientGone,
            Ok(_) => {}
        }
    }
}

/// Runs `fut` (a wait on the source) unless the client goes away first.
async fn watched<F: Future>(
    rd: &mut ReadHalf<'_>,
    buf: &mut Vec<u8>,
    fut: F,
) -> Result<F::Output, Abort> {
    tokio::select! {
        out = fut => Ok(out),
        abort = client_gone(rd, buf) => Err(abort),
    }
}

/// One piece of the file, checked to be as long as asked.
async fn fetch<S: PlaybackSource>(
    source: &S,
    rd: &mut ReadHalf<'_>,
    buf: &mut Vec<u8>,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, Abort> {
    match watched(rd, buf, source.read_range(start, end)).await? {
        Ok(bytes) if bytes.len() as u64 == end - start => Ok(bytes),
        Ok(bytes) => Err(Abort::Source(format!(
            "read_range({start}, {end}) returned {} bytes",
            bytes.len()
        ))),
        Err(e) => Err(Abort::Source(e)),
    }
}

/// Writes `data`; each slice must go out within `stall`.
async fn write_out(wr: &mut WriteHalf<'_>, data: &[u8], stall: Duration) -> Result<(), Abort> {
    for slice in data.chunks(WRITE_SLICE) {
        match timeout(stall, wr.write_all(slice)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Abort::ClientGone),
            Err(_) => return Err(Abort::Stalled),
        }
    }
    Ok(())
}

/// End of the 1 MiB-aligned piece holding `pos`, at most `end`.
fn piece_end(pos: u64, end: u64) -> u64 {
    (pos / MAX_PIECE)
        .saturating_add(1)
        .saturating_mul(MAX_PIECE)
        .min(end)
}

fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// `fut`, cut off at `deadline` (`None` = never): `None` if cut off.
async fn until<F: Future>(deadline: Option<Instant>, fut: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => timeout_at(deadline, fut).await.ok(),
        None => Some(fut.await),
    }
}

struct Conn<'a, S> {
    source: &'a S,
    config: &'a HttpConfig,
    peer: SocketAddr,
    rd: ReadHalf<'a>,
    wr: WriteHalf<'a>,
    /// Bytes read but not yet parsed.
    buf: Vec<u8>,
}

impl<S: PlaybackSource> Conn<'_, S> {
    async fn run(&mut self) -> End {
        let mut first = true;
        loop {
            let request = match self.read_request(first).await {
                Incoming::Request(request) => request,
                Incoming::Closed => return End::Drop,
                Incoming::TimedOut => {
                    debug!(peer = %self.peer, status = 408, "http: request head timed out");
                    return self.send_error(408, "request head timed out").await;
                }
                Incoming::Bad(e) => {
                    debug!(peer = %self.peer, status = e.status(), reason = e.reason(), "http: bad request");
                    return self.send_error(e.status(), e.reason()).await;
                }
            };
            first = false;
            match self.respond(&request).await {
                Ok(true) => {}
                Ok(false) => return End::Linger,
                Err(abort) => {
                    debug!(
                        peer = %self.peer,
                        method = %request.method_name,
                        path = %request.path,
                        ?abort,
                        "http: response abandoned"
                    );
                    return End::Drop;
                }
            }
        }
    }

    /// Answers a head that could not be parsed, then closes.
    async fn send_error(&mut self, status: u16, why: &str) -> End {
        let body = format!("{status} {}: {why}\n", reason(status));
        let mut out = render_head(
            status,
            &[("Content-Type", "text/plain; charset=utf-8".to_owned())],
            body.len() as u64,
            false,
            false,
        );
        out.extend_from_slice(body.as_bytes());
        match write_out(&mut self.wr, &out, self.config.idle_timeout).await {
            Ok(()) => End::Linger,
            Err(_) => End::Drop,
        }
    }

    async fn read_request(&mut self, first: bool) -> Incoming {
        let started = Instant::now();
        let Conn {
            rd, buf, config, ..
        } = self;
        let wait = if first {
            config.header_timeout
        } else {
            config.idle_timeout
        };
        // Between requests: wait for the first byte of the next one.
        if buf.is_empty() {
            match timeout(wait, read_more(rd, buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Incoming::Closed,
                Ok(Ok(_)) => {}
            }
        }
        let deadline = if first {
            started.checked_add(config.header_timeout)
        } else {
            deadline_after(config.header_timeout)
        };
        let mut scanned = 0;
        loop {
            // Empty lines before a request line are ignored (RFC 9112 §2.2).
            let blank = buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if blank > 0 {
                buf.drain(..blank);
                scanned = 0;
            }
            if let Some(end) = find_head_end(buf, scanned) {
                if end > MAX_HEAD_BYTES {
                    return Incoming::Bad(HeadError::TooLarge);
                }
                let parsed = parse_head(&buf[..end]);
                buf.drain(..end);
                return match parsed {
                    Ok(request) => Incoming::Request(request),
                    Err(e) => Incoming::Bad(e),
                };
            }
            if buf.len() >= MAX_HEAD_BYTES {
                return Incoming::Bad(HeadError::TooLarge);
            }
            scanned = buf.len().saturating_sub(2);
            match until(deadline, read_more(rd, buf)).await {
                None if buf.is_empty() => return Incoming::Closed,
                None => return Incoming::TimedOut,
                Some(Ok(0)) | Some(Err(_)) => return Incoming::Closed,
                Some(Ok(_)) => {}
            }
        }
    }

    fn log(&self, request: &Request, status: u16, length: u64) {
        debug!(
            peer = %self.peer,
            method = %request.method_name,
            path = %request.path,
            status,
            length,
            "http request"
        );
    }

    /// Sends a complete response with a small body (none for `HEAD`).
    async fn send_simple(
        &mut self,
        request: &Request,
        status: u16,
        headers: &[(&str, String)],
        body: &[u8],
        keep_alive: bool,
    ) -> Result<bool, Abort> {
        self.log(request, status, body.len() as u64);
        let mut out = render_head(
            status,
            headers,
            body.len() as u64,
            keep_alive,
            request.http10,
        );
        if !request.is_head() {
            out.extend_from_slice(body);
        }
        write_out(&mut self.wr, &out, self.config.idle_timeout).await?;
        Ok(keep_alive)
    }

    async fn send_text(
        &mut self,
        request: &Request,
        status: u16,
        text: &str,
        keep_alive: bool,
    ) -> Result<bool, Abort> {
        let body = format!("{status} {}: {text}\n", reason(status));
        let mut headers = vec![("Content-Type", "text/plain; charset=utf-8".to_owned())];
        match status {
            405 => headers.push(("Allow", "GET, HEAD".to_owned())),
            503 => headers.push(("Retry-After", "1".to_owned())),
            _ => {}
        }
        self.send_simple(request, status, &headers, body.as_bytes(), keep_alive)
            .await
    }

    /// Serves one request; `Ok(true)` if the connection stays open.
    async fn respond(&mut self, request: &Request) -> Result<bool, Abort> {
        let keep_alive = request.keep_alive && !request.has_body;
        if request.method == Method::Other {
            return self
                .send_text(request, 405, "use GET or HEAD", keep_alive)
                .await;
        }
        let route = Route::of(&request.path);
        if route == Route::NotFound {
            return self
                .send_text(request, 404, "no such path", keep_alive)
                .await;
        }
        let source = self.source;
        let info = match watched(&mut self.rd, &mut self.buf, source.info()).await? {
            Ok(info) => info,
            Err(e) => {
                debug!(peer = %self.peer, error = %e, "http: source info failed");
                return self
                    .send_text(request, 503, "content unavailable", keep_alive)
                    .await;
            }
        };
        match (route, info.size) {
            (Route::Root | Route::Content, Some(size)) => {
                self.serve_content(request, &info, size, keep_alive).await
            }
            (Route::Root, None) => {
                self.send_simple(
                    request,
                    302,
                    &[("Location", "/live.m3u8".to_owned())],
                    b"",
                    keep_alive,
                )
                .await
            }
            (Route::Playlist, None) => self.serve_playlist(request, keep_alive).await,
            (Route::Segment(seq), None) => self.serve_segment(request, seq, keep_alive).await,
            (Route::Content, None) => {
                self.send_text(request, 404, "a live stream: see /live.m3u8", keep_alive)
                    .await
            }
            (Route::Playlist | Route::Segment(_), Some(_)) => {
                self.send_text(request, 404, "not a live stream: see /content", keep_alive)
                    .await
            }
            (Route::NotFound, _) => {
                self.send_text(request, 404, "no such path", keep_alive)
                    .await
            }
        }
    }

    async fn serve_content(
        &mut self,
        request: &Request,
        info: &SourceInfo,
        size: u64,
        keep_alive: bool,
    ) -> Result<bool, Abort> {
        let mut headers = vec![
            ("Content-Type", content_type(&info.mime)),
            ("Accept-Ranges", "bytes".to_owned()),
        ];
        if let Some(disposition) = content_disposition(&info.title) {
            headers.push(("Content-Disposition", disposition));
        }
        let range = {
            let mut values = request.headers_named("range");
            match (values.next(), values.next()) {
                (Some(value), None) if request.header("if-range").is_none() => {
                    parse_range(value, size)
                }
                _ => RangeOutcome::Ignore,
            }
        };
        let (status, start, end) = match range {
            RangeOutcome::Ignore => (200, 0, size),
            RangeOutcome::Range { start, end } => {
                headers.push(("Content-Range", format!("bytes {start}-{}/{size}", end - 1)));
                (206, start, end)
            }
            RangeOutcome::Unsatisfiable => {
                let body = format!("416 {}\n", reason(416));
                return self
                    .send_simple(
                        request,
                        416,
                        &[
                            ("Content-Type", "text/plain; charset=utf-8".to_owned()),
                            ("Content-Range", format!("bytes */{size}")),
                        ],
                        body.as_bytes(),
                        keep_alive,
                    )
                    .await;
            }
        };
        let length = end - start;
        if request.is_head() || length == 0 {
            self.log(request, status, length);
            let out = render_head(status, &headers, length, keep_alive, request.http10);
            write_out(&mut self.wr, &out, self.config.idle_timeout).await?;
            return Ok(keep_alive);
        }

        // The first piece before the head, so a source that fails at once
        // still gets a proper 503.
        let source = self.source;
        let mut pos = piece_end(start, end);
        let mut piece = match fetch(source, &mut self.rd, &mut self.buf, start, pos).await {
            Ok(piece) => piece,
            Err(Abort::Source(e)) => {
                debug!(peer = %self.peer, error = %e, start, "http: source read failed");
                return self
                    .send_text(request, 503, "content unavailable", keep_alive)
                    .await;
            }
            Err(abort) => return Err(abort),
        };
        self.log(request, status, length);
        let head = render_head(status, &headers, length, keep_alive, request.http10);
        let stall = self.config.idle_timeout;
        let Conn { rd, wr, buf, .. } = self;
        write_out(wr, &head, stall).await?;
        // Write each piece while the next one is fetched.
        while pos < end {
            let next_end = piece_end(pos, end);
            let ((), next) = tokio::try_join!(
                write_out(wr, &piece, stall),
                fetch(source, rd, buf, pos, next_end)
            )?;
            piece = next;
            pos = next_end;
        }
        write_out(wr, &piece, stall).await?;
        Ok(keep_alive)
    }

    async fn serve_playlist(&mut self, request: &Request, keep_alive: bool) -> Result<bool, Abort> {
        let source = self.source;
        let started = Instant::now();
        let playlist = loop {
            match watched(&mut self.rd, &mut self.buf, source.live_window()).await? {
                Ok(window) => {
                    if let Some(playlist) = hls_playlist(&window) {
                        break playlist;
                    }
                }
                Err(e) => {
                    debug!(peer = %self.peer, error = %e, "http: live window failed");
                    return self
                        .send_text(request, 503, "live window unavailable", keep_alive)
                        .await;
                }
            }
            if started.elapsed() >= LIVE_FIRST_SEGMENT_WAIT {
                return self
                    .send_text(request, 503, "no live segment yet", keep_alive)
                    .await;
            }
            watched(&mut self.rd, &mut self.buf, sleep(LIVE_POLL)).await?;
        };
        self.send_simple(
            request,
            200,
            &[
                ("Content-Type", MIME_HLS.to_owned()),
                ("Cache-Control", "no-cache, no-store".to_owned()),
            ],
            playlist.as_bytes(),
            keep_alive,
        )
        .await
    }

    async fn serve_segment(
        &mut self,
        request: &Request,
        seq: u64,
        keep_alive: bool,
    ) -> Result<bool, Abort> {
        let source = self.source;
        match watched(&mut self.rd, &mut self.buf, source.live_segment(seq)).await? {
            Ok(Some(bytes)) => {
                self.send_simple(
                    request,
                    200,
                    &[("Content-Type", MIME_TS.to_owned())],
                    &bytes,
                    keep_alive,
                )
                .await
            }
            Ok(None) => {
                self.send_text(request, 404, "segment not in the live window", keep_alive)
                    .await
            }
            Err(e) => {
                debug!(peer = %self.peer, error = %e, seq, "http: live segment failed");
                self.send_text(request, 503, "segment unavailable", keep_alive)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, sync::Mutex};

    use proptest::prelude::*;
    use tokio::sync::{oneshot, watch};

    use super::*;

    const BLOCK: u64 = 64 * 1024;

    /// A live window and its segments.
    type Live = (Vec<(u64, u32)>, HashMap<u64, Vec<u8>>);

    /// An in-memory source: a file (optionally gated per 64 KiB block, and
    /// optionally failing from an offset on) or a live stream.
    #[derive(Default)]
    struct TestSource {
        data: Vec<u8>,
        /// Per-block availability: `read_range` waits until all its blocks are.
        gate: Option<watch::Receiver<Vec<bool>>>,
        /// `read_range` fails for ranges starting at or after this offset.
        fail_from: Option<u64>,
        /// Every `read_range` call.
        calls: Mutex<Vec<(u64, u64)>>,
        /// Live: the window and the segments.
        live: Option<Live>,
    }

    impl PlaybackSource for TestSource {
        async fn info(&self) -> Result<SourceInfo, String> {
            Ok(SourceInfo {
                mime: "video/mp4".into(),
                size: if self.live.is_some() {
                    None
                } else {
                    Some(self.data.len() as u64)
                },
                title: "Fractions, gently".into(),
            })
        }

        async fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>, String> {
            self.calls.lock().unwrap().push((start, end));
            assert!(start < end && end <= self.data.len() as u64 && end - start <= MAX_PIECE);
            if self.fail_from.is_some_and(|f| start >= f) {
                return Err("peer vanished".into());
            }
            if let Some(gate) = &self.gate {
                let mut gate = gate.clone();
                let blocks = (start / BLOCK) as usize..end.div_ceil(BLOCK) as usize;
                gate.wait_for(|avail| avail[blocks.clone()].iter().all(|&a| a))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(self.data[start as usize..end as usize].to_vec())
        }

        async fn live_window(&self) -> Result<Vec<(u64, u32)>, String> {
            Ok(self.live.as_ref().map(|l| l.0.clone()).unwrap_or_default())
        }

        async fn live_segment(&self, seq: u64) -> Result<Option<Vec<u8>>, String> {
            Ok(self.live.as_ref().and_then(|l| l.1.get(&seq).cloned()))
        }
    }

    fn test_data(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_right(13) as u8)
            .collect()
    }

    fn file_source(len: usize) -> TestSource {
        TestSource {
            data: test_data(len),
            ..TestSource::default()
        }
    }

    fn live_source() -> TestSource {
        let window = vec![(7, 2000), (8, 2500), (9, 1999)];
        let segments = (7..=9u64)
            .map(|s| (s, vec![s as u8; 1000 + s as usize]))
            .collect();
        TestSource {
            live: Some((window, segments)),
            ..TestSource::default()
        }
    }

    fn config() -> HttpConfig {
        HttpConfig {
            max_connections: 8,
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
        }
    }

    async fn start_with(
        source: Arc<TestSource>,
        config: HttpConfig,
    ) -> (SocketAddr, oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, source, config, async move {
            let _ = rx.await;
        }));
        (addr, tx)
    }

    async fn start(source: TestSource) -> (SocketAddr, oneshot::Sender<()>) {
        start_with(Arc::new(source), config()).await
    }

    #[derive(Debug)]
    struct Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Response {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// A raw client connection with its own read buffer.
    struct Client {
        stream: TcpStream,
        buf: Vec<u8>,
    }

    impl Client {
        async fn connect(addr: SocketAddr) -> Self {
            Self {
                stream: TcpStream::connect(addr).await.unwrap(),
                buf: Vec::new(),
            }
        }

        async fn send(&mut self, raw: &[u8]) {
            self.stream.write_all(raw).await.unwrap();
        }

        async fn get(&mut self, path: &str, extra: &str) -> Response {
            self.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").as_bytes())
                .await;
            self.response(false).await
        }

        async fn fill(&mut self) -> usize {
            let mut tmp = [0u8; 65536];
            let n = timeout(Duration::from_secs(10), self.stream.read(&mut tmp))
                .await
                .expect("response timed out")
                .unwrap_or(0);
            self.buf.extend_from_slice(&tmp[..n]);
            n
        }

        /// Reads one response; `head_only` for responses to HEAD.
        async fn response(&mut self, head_only: bool) -> Response {
            let end = loop {
                if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                assert!(
                    self.fill().await > 0,
                    "connection closed before a response head"
                );
            };
            let head = String::from_utf8(self.buf[..end].to_vec()).unwrap();
            self.buf.drain(..end);
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap();
            assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
            let status = status_line[9..12].parse().unwrap();
            let headers: Vec<(String, String)> = lines
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (n, v) = l.split_once(": ").unwrap();
                    (n.to_owned(), v.to_owned())
                })
                .collect();
            let mut response = Response {
                status,
                headers,
                body: Vec::new(),
            };
            let length: usize = response.header("Content-Length").unwrap().parse().unwrap();
            if !head_only {
                while self.buf.len() < length {
                    assert!(self.fill().await > 0, "connection closed inside a body");
                }
                response.body = self.buf.drain(..length).collect();
            }
            response
        }

        /// Reads until the server closes; returns what came.
        async fn rest(&mut self) -> Vec<u8> {
            while self.fill().await > 0 {}
            std::mem::take(&mut self.buf)
        }
    }

    #[tokio::test]
    async fn http_full_get_is_byte_identical_and_streamed_in_pieces() {
        let source = Arc::new(file_source(3 * (1 << 20) + 12_345));
        let (addr, _stop) = start_with(Arc::clone(&source), config()).await;
        let mut client = Client::connect(addr).await;
        let r = client.get("/content", "").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, source.data);
        assert_eq!(r.header("Content-Length"), Some("3158073"));
        assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
        assert_eq!(r.header("Content-Type"), Some("video/mp4"));
        assert_eq!(
            r.header("Content-Disposition"),
            Some("inline; filename*=UTF-8''Fractions%2C%20gently")
        );
        assert!(r.header("Date").is_some_and(|d| d.ends_with(" GMT")));
        assert_eq!(r.header("Content-Range"), None);
        let calls = source.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 4);
        assert!(calls.iter().all(|&(s, e)| e - s <= MAX_PIECE));

        // `/` is the same for a file.
        let r = client.get("/", "").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, source.data);
    }

    #[tokio::test]
    async fn http_ranges_give_206_on_one_connection() {
        let source = file_source(3 * (1 << 20) + 12_345);
        let data = source.data.clone();
        let size = data.len();
        let (addr, _stop) = start(source).await;
        let mut client = Client::connect(addr).await;

        let r = client.get("/content", "Range: bytes=100-199\r\n").await;
        assert_eq!(r.status, 206);
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes 100-199/{size}").as_str())
        );
        assert_eq!(r.header("Content-Length"), Some("100"));
        assert_eq!(r.body, &data[100..200]);

        let r = client.get("/content", "Range: bytes=1000-\r\n").await;
        assert_eq!(r.status, 206);
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes 1000-{}/{size}", size - 1).as_str())
        );
        assert_eq!(
            r.header("Content-Length"),
            Some((size - 1000).to_string().as_str())
        );
        assert_eq!(r.body, &data[1000..]);

        let r = client.get("/content", "Range: bytes=-500\r\n").await;
        assert_eq!(r.status, 206);
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes {}-{}/{size}", size - 500, size - 1).as_str())
        );
        assert_eq!(r.header("Content-Length"), Some("500"));
        assert_eq!(r.body, &data[size - 500..]);

        // A last position past the end is clamped; a range across piece
        // boundaries comes out whole.
        let r = client
            .get(
                "/content",
                "Range: bytes=1048000-99999999999999999999999\r\n",
            )
            .await;
        assert_eq!(r.status, 206);
        assert_eq!(r.body, &data[1_048_000..]);

        // Multiple ranges, another unit, bad syntax, If-Range: the whole file.
        for range in [
            "Range: bytes=0-1,5-6\r\n",
            "Range: items=0-1\r\n",
            "Range: bytes=5-1\r\n",
            "Range: bytes = 0-1\r\n",
            "Range: bytes=0-1\r\nIf-Range: \"x\"\r\n",
        ] {
            let r = client.get("/content", range).await;
            assert_eq!(r.status, 200, "{range}");
            assert_eq!(r.body.len(), size, "{range}");
        }
    }

    #[tokio::test]
    async fn http_unsatisfiable_range_is_416() {
        let (addr, _stop) = start(file_source(5000)).await;
        let mut client = Client::connect(addr).await;
        for range in [
            "bytes=5000-",
            "bytes=5000-6000",
            "bytes=-0",
            "bytes=18446744073709551616-",
        ] {
            let r = client.get("/content", &format!("Range: {range}\r\n")).await;
            assert_eq!(r.status, 416, "{range}");
            assert_eq!(r.header("Content-Range"), Some("bytes */5000"), "{range}");
        }
        // Still usable afterwards.
        let r = client.get("/content", "Range: bytes=4999-\r\n").await;
        assert_eq!(r.status, 206);
        assert_eq!(r.body.len(), 1);
    }

    #[tokio::test]
    async fn http_head_has_headers_and_no_body() {
        let source = file_source(200_000);
        let data = source.data.clone();
        let (addr, _stop) = start(source).await;
        let mut client = Client::connect(addr).await;
        client
            .send(b"HEAD /content HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let r = client.response(true).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Length"), Some("200000"));
        assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
        client
            .send(b"HEAD /content HTTP/1.1\r\nRange: bytes=10-19\r\n\r\n")
            .await;
        let r = client.response(true).await;
        assert_eq!(r.status, 206);
        assert_eq!(r.header("Content-Length"), Some("10"));
        assert_eq!(r.header("Content-Range"), Some("bytes 10-19/200000"));
        // No body bytes came: the next response starts right away.
        let r = client.get("/content", "Range: bytes=0-3\r\n").await;
        assert_eq!(r.status, 206);
        assert_eq!(r.body, &data[..4]);
    }

    #[tokio::test]
    async fn http_keep_alive_and_connection_close() {
        let (addr, _stop) = start(file_source(10_000)).await;
        let mut client = Client::connect(addr).await;
        // Two requests in one write (pipelined), then a third.
        client
            .send(
                b"GET /content HTTP/1.1\r\nRange: bytes=0-9\r\n\r\n\
                  GET /content HTTP/1.1\r\nRange: bytes=10-19\r\n\r\n",
            )
            .await;
        assert_eq!(client.response(false).await.body.len(), 10);
        assert_eq!(client.response(false).await.body.len(), 10);
        let r = client.get("/content", "Connection: close\r\n").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Connection"), Some("close"));
        assert!(client.rest().await.is_empty());

        // HTTP/1.0 closes unless asked to keep alive.
        let mut client = Client::connect(addr).await;
        client.send(b"GET /content HTTP/1.0\r\n\r\n").await;
        let r = client.response(false).await;
        assert_eq!(r.header("Connection"), Some("close"));
        assert!(client.rest().await.is_empty());
        let mut client = Client::connect(addr).await;
        client
            .send(b"GET /content HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await;
        let r = client.response(false).await;
        assert_eq!(r.header("Connection"), Some("keep-alive"));
        let r = client.get("/nope", "").await;
        assert_eq!(r.status, 404);
    }

    #[tokio::test]
    async fn http_malformed_request_is_400() {
        let (addr, _stop) = start(file_source(10)).await;
        for raw in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET /content\r\n\r\n",
            b"GET  /content HTTP/1.1\r\n\r\n",
            b"GET /content HTTP/1.1\r\nNo colon here\r\n\r\n",
            b"GET /content HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET /content HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
            b"GET /content HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
            b"GET /content HTTP/1.1\r\nX: a\0b\r\n\r\n",
            b"GET content HTTP/1.1\r\n\r\n",
            b"\xff\xfe /content HTTP/1.1\r\n\r\n",
        ] {
            let mut client = Client::connect(addr).await;
            client.send(raw).await;
            let r = client.response(false).await;
            assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(raw));
            assert_eq!(r.header("Connection"), Some("close"));
            assert!(client.rest().await.is_empty());
        }
        let mut client = Client::connect(addr).await;
        client.send(b"GET /content HTTP/2.0\r\n\r\n").await;
        assert_eq!(client.response(false).await.status, 505);
    }

    #[tokio::test]
    async fn http_oversize_head_is_431() {
        let (addr, _stop) = start(file_source(10)).await;
        let mut client = Client::connect(addr).await;
        let long = format!(
            "GET /content HTTP/1.1\r\nX-Long: {}\r\n",
            "a".repeat(17 * 1024)
        );
        client.send(long.as_bytes()).await;
        let r = client.response(false).await;
        assert_eq!(r.status, 431);
        assert!(client.rest().await.is_empty());

        let mut client = Client::connect(addr).await;
        let mut many = String::from("GET /content HTTP/1.1\r\n");
        for i in 0..65 {
            many.push_str(&format!("X-{i}: y\r\n"));
        }
        many.push_str("\r\n");
        client.send(many.as_bytes()).await;
        assert_eq!(client.response(false).await.status, 431);

        // 64 headers are fine.
        let mut client = Client::connect(addr).await;
        let mut ok = String::from("GET /content HTTP/1.1\r\n");
        for i in 0..64 {
            ok.push_str(&format!("X-{i}: y\r\n"));
        }
        ok.push_str("\r\n");
        client.send(ok.as_bytes()).await;
        assert_eq!(client.response(false).await.status, 200);
    }

    #[tokio::test]
    async fn http_header_timeout_is_408() {
        let mut config = config();
        config.header_timeout = Duration::from_millis(300);
        let (addr, _stop) = start_with(Arc::new(file_source(10)), config).await;
        let mut client = Client::connect(addr).await;
        client.send(b"GET /content HTTP/1.1\r\nHost:").await;
        let r = client.response(false).await;
        assert_eq!(r.status, 408);
        assert!(client.rest().await.is_empty());
        // A connection that sends nothing is just closed.
        let mut client = Client::connect(addr).await;
        assert!(client.rest().await.is_empty());
    }

    #[tokio::test]
    async fn http_live_playlist_and_segments() {
        let (addr, _stop) = start(live_source()).await;
        let mut client = Client::connect(addr).await;
        let r = client.get("/live.m3u8", "").await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("Content-Type"),
            Some("application/vnd.apple.mpegurl")
        );
        assert_eq!(r.header("Cache-Control"), Some("no-cache, no-store"));
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:7\n\
             #EXTINF:2.000,\nlive/7.ts\n#EXTINF:2.500,\nlive/8.ts\n#EXTINF:1.999,\nlive/9.ts\n"
        );
        let r = client.get("/live/8.ts", "").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Type"), Some("video/mp2t"));
        assert_eq!(r.body, vec![8u8; 1008]);
        // Gone, unknown, malformed.
        for path in [
            "/live/3.ts",
            "/live/99999999999999999999.ts",
            "/live/x.ts",
            "/live/+8.ts",
        ] {
            assert_eq!(client.get(path, "").await.status, 404, "{path}");
        }
        // `/` redirects; there is no `/content` for a live stream.
        let r = client.get("/", "").await;
        assert_eq!(r.status, 302);
        assert_eq!(r.header("Location"), Some("/live.m3u8"));
        assert_eq!(client.get("/content", "").await.status, 404);
        // A file has no playlist.
        let (addr, _stop2) = start(file_source(10)).await;
        let mut client = Client::connect(addr).await;
        assert_eq!(client.get("/live.m3u8", "").await.status, 404);
        assert_eq!(client.get("/live/7.ts", "").await.status, 404);
    }

    #[tokio::test]
    async fn http_unknown_path_404_and_method_405() {
        let (addr, _stop) = start(file_source(10)).await;
        let mut client = Client::connect(addr).await;
        let r = client.get("/etc/passwd", "").await;
        assert_eq!(r.status, 404);
        let r = client.get("/content?x=1", "").await;
        assert_eq!(r.status, 200);
        let r = client.get("http://127.0.0.1/content", "").await;
        assert_eq!(r.status, 200);
        client.send(b"DELETE /content HTTP/1.1\r\n\r\n").await;
        let r = client.response(false).await;
        assert_eq!(r.status, 405);
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));
        // A request with a body is answered, then the connection closes.
        client
            .send(b"POST /content HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
            .await;
        let r = client.response(false).await;
        assert_eq!(r.status, 405);
        assert_eq!(r.header("Connection"), Some("close"));
        assert!(client.rest().await.is_empty());
    }

    #[tokio::test]
    async fn http_connection_limit_gives_503() {
        let mut config = config();
        config.max_connections = 2;
        let (addr, _stop) = start_with(Arc::new(file_source(10)), config).await;
        let mut a = Client::connect(addr).await;
        assert_eq!(a.get("/content", "").await.status, 200);
        let mut b = Client::connect(addr).await;
        assert_eq!(b.get("/content", "").await.status, 200);
        let mut c = Client::connect(addr).await;
        c.send(b"GET /content HTTP/1.1\r\n\r\n").await;
        let r = c.response(false).await;
        assert_eq!(r.status, 503);
        assert_eq!(r.header("Connection"), Some("close"));
        assert!(c.rest().await.is_empty());
        // Once one closes, a new connection is served.
        drop(a);
        let mut served = false;
        for _ in 0..50 {
            let mut d = Client::connect(addr).await;
            if d.get("/content", "").await.status == 200 {
                served = true;
                break;
            }
            sleep(Duration::from_millis(20)).await;
        }
        assert!(served);
        assert_eq!(b.get("/content", "").await.status, 200);
    }

    #[tokio::test]
    async fn http_seek_is_served_before_earlier_bytes_are_downloaded() {
        let size = 4 << 20;
        let blocks = (size as u64).div_ceil(BLOCK) as usize;
        let (gate_tx, gate_rx) = watch::channel(vec![false; blocks]);
        let source = Arc::new(TestSource {
            data: test_data(size),
            gate: Some(gate_rx),
            ..TestSource::default()
        });
        let (addr, _stop) = start_with(Arc::clone(&source), config()).await;

        // The player asks for the start: nothing is downloaded yet.
        let mut early = Client::connect(addr).await;
        early
            .send(b"GET /content HTTP/1.1\r\nRange: bytes=0-99\r\n\r\n")
            .await;
        // Only the blocks around 2.5 MiB arrive.
        let mid = 5 << 19;
        gate_tx.send_modify(|avail| {
            avail[(mid / BLOCK) as usize] = true;
            avail[(mid / BLOCK) as usize + 1] = true;
        });
        // A seek into the middle is answered at once.
        let mut seek = Client::connect(addr).await;
        let r = seek
            .get(
                "/content",
                &format!("Range: bytes={mid}-{}\r\n", mid + 99_999),
            )
            .await;
        assert_eq!(r.status, 206);
        assert_eq!(r.body, &source.data[mid as usize..mid as usize + 100_000]);
        // The early request is still waiting.
        let mut tmp = [0u8; 16];
        assert!(
            timeout(Duration::from_millis(200), early.stream.read(&mut tmp))
                .await
                .is_err(),
            "the early range was answered before it was available"
        );
        // Its block arrives: it is answered.
        gate_tx.send_modify(|avail| avail[0] = true);
        let r = early.response(false).await;
        assert_eq!(r.status, 206);
        assert_eq!(r.body, &source.data[..100]);

        // A whole-file request gets its head and first piece before the rest
        // is downloaded.
        gate_tx.send_modify(|avail| avail[..16].iter_mut().for_each(|a| *a = true));
        let mut whole = Client::connect(addr).await;
        whole.send(b"GET /content HTTP/1.1\r\n\r\n").await;
        let r = whole.response(true).await;
        assert_eq!(r.status, 200);
        while whole.buf.len() < 1 << 20 {
            assert!(whole.fill().await > 0);
        }
        assert_eq!(&whole.buf[..1 << 20], &source.data[..1 << 20]);
        // The client leaves while the server waits on the source: fine.
        drop(whole);
        sleep(Duration::from_millis(50)).await;
        gate_tx.send_modify(|avail| avail.iter_mut().for_each(|a| *a = true));
        let mut again = Client::connect(addr).await;
        let r = again.get("/content", "").await;
        assert_eq!(r.body, source.data);
    }

    #[tokio::test]
    async fn http_source_errors_give_503_or_close() {
        let source = TestSource {
            fail_from: Some(1 << 20),
            ..file_source(3 << 20)
        };
        let (addr, _stop) = start(source).await;
        let mut client = Client::connect(addr).await;
        // Before the head: 503, connection kept.
        let r = client.get("/content", "Range: bytes=2000000-\r\n").await;
        assert_eq!(r.status, 503);
        // Mid-body: the head and first piece went out, then the connection
        // closes short of Content-Length.
        client.send(b"GET /content HTTP/1.1\r\n\r\n").await;
        let r = client.response(true).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Length"), Some("3145728"));
        let rest = client.rest().await;
        assert_eq!(rest.len(), 1 << 20);
    }

    #[tokio::test]
    async fn http_shutdown_stops_serving() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            Arc::new(file_source(10)),
            config(),
            async move {
                let _ = rx.await;
            },
        ));
        let mut client = Client::connect(addr).await;
        assert_eq!(client.get("/content", "").await.status, 200);
        tx.send(()).unwrap();
        timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(client.rest().await.is_empty());
    }

    #[test]
    fn http_parse_range_cases() {
        use RangeOutcome::*;
        let r = |start, end| Range { start, end };
        assert_eq!(parse_range("bytes=0-0", 10), r(0, 1));
        assert_eq!(parse_range("bytes=0-9", 10), r(0, 10));
        assert_eq!(parse_range("bytes=0-10", 10), r(0, 10));
        assert_eq!(parse_range("BYTES=3-", 10), r(3, 10));
        assert_eq!(parse_range("bytes=-3", 10), r(7, 10));
        assert_eq!(parse_range("bytes=-30", 10), r(0, 10));
        assert_eq!(parse_range("bytes= 2-4 ,", 10), r(2, 5));
        assert_eq!(
            parse_range("bytes=9-99999999999999999999999999", 10),
            r(9, 10)
        );
        assert_eq!(
            parse_range("bytes=-99999999999999999999999999", 10),
            r(0, 10)
        );
        assert_eq!(parse_range("bytes=0-", u64::MAX), r(0, u64::MAX));
        assert_eq!(parse_range("bytes=-1", u64::MAX), r(u64::MAX - 1, u64::MAX));
        assert_eq!(parse_range("bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=10-20", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), Unsatisfiable);
        assert_eq!(
            parse_range("bytes=99999999999999999999999-", 10),
            Unsatisfiable
        );
        for ignored in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=,",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=1 -2",
            "bytes =1-2",
            "items=0-1",
            "bytes=0-1,2-3",
            "bytes=0-1-2",
            "bytes=--1",
            "bytes=1--2",
            "bytes=0x1-2",
            "bytes=١-٢",
        ] {
            assert_eq!(parse_range(ignored, 10), Ignore, "{ignored:?}");
        }
    }

    #[test]
    fn http_parse_head_cases() {
        let req =
            parse_head(b"GET /live/7.ts?a=b HTTP/1.1\r\nHost: x\r\nRange:  bytes=0-1 \t\r\n\r\n")
                .unwrap();
        assert_eq!(req.method, Method::Get);
        assert_eq!(req.path, "/live/7.ts");
        assert_eq!(req.header("range"), Some("bytes=0-1"));
        assert!(req.keep_alive && !req.has_body && !req.http10);
        let req = parse_head(b"HEAD http://h:1 HTTP/1.0\nConnection: Keep-Alive, x\n\n").unwrap();
        assert_eq!(
            (req.method, req.path.as_str(), req.keep_alive),
            (Method::Head, "/", true)
        );
        let req = parse_head(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert!(req.has_body);
        let req = parse_head(b"GET / HTTP/1.1\r\nContent-Length: 0, 0\r\n\r\n").unwrap();
        assert!(!req.has_body);
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                .unwrap_err(),
            HeadError::Malformed("conflicting Content-Length")
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nX\r: y\r\n\r\n")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            parse_head(b"GET / HTTP/3.0\r\n\r\n").unwrap_err(),
            HeadError::Version
        );
        assert_eq!(Route::of("/live/0.ts"), Route::Segment(0));
        assert_eq!(
            Route::of("/live/18446744073709551615.ts"),
            Route::Segment(u64::MAX)
        );
        assert_eq!(Route::of("/live/18446744073709551616.ts"), Route::NotFound);
        assert_eq!(Route::of("/live/.ts"), Route::NotFound);
        assert_eq!(Route::of("/content/"), Route::NotFound);
    }

    #[test]
    fn http_playlist_and_date() {
        assert_eq!(hls_playlist(&[]), None);
        // Unsorted with a duplicate and a gap: the run from the oldest.
        let p = hls_playlist(&[(12, 900), (10, 400), (11, 1000), (10, 400), (14, 9000)]).unwrap();
        assert_eq!(
            p,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:10\n\
             #EXTINF:0.400,\nlive/10.ts\n#EXTINF:1.000,\nlive/11.ts\n#EXTINF:0.900,\nlive/12.ts\n"
        );
        let p = hls_playlist(&[(u64::MAX, 0)]).unwrap();
        assert!(p.contains("#EXT-X-TARGETDURATION:1\n"));
        assert!(p.contains("#EXTINF:0.000,\nlive/18446744073709551615.ts\n"));

        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(300_000_000_000)),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
        assert_eq!(content_type("video/mp4\r\nX: y"), MIME_FALLBACK);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Any value: no panic, and an accepted range lies within the size.
        #[test]
        fn http_parse_range_never_panics(value in ".{0,40}", size in any::<u64>()) {
            check_range(&value, size)?;
        }

        /// Values near the grammar, against a model.
        #[test]
        fn http_parse_range_matches_model(
            unit in "(bytes|BYTES|Bytes|byte|items)",
            first in proptest::option::of(0u64..2000),
            last in proptest::option::of(0u64..2000),
            size in prop_oneof![0u64..1500, any::<u64>()],
        ) {
            let value = format!(
                "{unit}={}-{}",
                first.map(|f| f.to_string()).unwrap_or_default(),
                last.map(|l| l.to_string()).unwrap_or_default()
            );
            let got = check_range(&value, size)?;
            let expected = if !unit.eq_ignore_ascii_case("bytes") {
                RangeOutcome::Ignore
            } else {
                match (first, last) {
                    (None, None) => RangeOutcome::Ignore,
                    (None, Some(0)) => RangeOutcome::Unsatisfiable,
                    (None, Some(_)) if size == 0 => RangeOutcome::Unsatisfiable,
                    (None, Some(n)) => RangeOutcome::Range { start: size - n.min(size), end: size },
                    (Some(f), Some(l)) if l < f => RangeOutcome::Ignore,
                    (Some(f), _) if f >= size => RangeOutcome::Unsatisfiable,
                    (Some(f), Some(l)) => RangeOutcome::Range { start: f, end: l.min(size - 1) + 1 },
                    (Some(f), None) => RangeOutcome::Range { start: f, end: size },
                }
            };
            prop_assert_eq!(got, expected);
        }

        /// Random heads never panic the parser.
        #[test]
        fn http_parse_head_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_head(&bytes);
            let _ = find_head_end(&bytes, bytes.len() / 2);
        }

        /// Heads assembled from plausible pieces never panic either.
        #[test]
        fn http_parse_head_pieces_never_panic(
            line in "(GET|HEAD|POST|get|G\\x00T) (/|/content|http://a|\\*|/live/[0-9]{1,3}\\.ts)( HTTP/1\\.[01]| HTTP/9\\.9|)",
            headers in proptest::collection::vec("[A-Za-z-]{0,8}:? ?[ -~\\t\\r]{0,12}", 0..70),
        ) {
            let mut head = line;
            for h in headers {
                head.push_str(&h);
                head.push_str("\r\n");
            }
            head.push_str("\r\n");
            let _ = parse_head(head.as_bytes());
        }
    }

    fn check_range(value: &str, size: u64) -> Result<RangeOutcome, TestCaseError> {
        let got = parse_range(value, size);
        if let RangeOutcome::Range { start, end } = got {
            prop_assert!(start < end && end <= size, "{value:?} {size} -> {got:?}");
        }
        Ok(got)
    }
}
