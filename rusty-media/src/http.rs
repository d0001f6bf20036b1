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
//!
//! This file holds the server and the connection loop; parsing a request
//! head and a `Range` is in `http/request.rs`, formatting a response head
//! and the HLS playlist in `http/response.rs`.

use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

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

mod request;
mod response;

use request::{find_head_end, parse_head, HeadError, Method, Request};
pub use request::{parse_range, RangeOutcome};
use response::{content_disposition, content_type, reason, render_head, Route};
pub use response::{hls_playlist, hls_start_line, hls_target_duration, LiveWindow};

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

    /// Live: the segments currently in the live window, and whether the
    /// stream ended.
    fn live_window(&self) -> impl Future<Output = Result<LiveWindow, String>> + Send;

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
mod tests;
