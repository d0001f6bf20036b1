//! Unit tests of `http`.

use std::{collections::HashMap, sync::Mutex, time::UNIX_EPOCH};

use proptest::prelude::*;
use tokio::sync::{oneshot, watch};

use super::{response::http_date, *};

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

    async fn live_window(&self) -> Result<LiveWindow, String> {
        Ok(LiveWindow {
            segments: self.live.as_ref().map(|l| l.0.clone()).unwrap_or_default(),
            ended: false,
            start: None,
            longest_ms: 0,
        })
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
    let req = parse_head(b"GET /live/7.ts?a=b HTTP/1.1\r\nHost: x\r\nRange:  bytes=0-1 \t\r\n\r\n")
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

fn live(segments: &[(u64, u32)], ended: bool) -> LiveWindow {
    LiveWindow {
        segments: segments.to_vec(),
        ended,
        ..LiveWindow::default()
    }
}

#[test]
fn http_playlist_and_date() {
    assert_eq!(hls_playlist(&live(&[], false)), None);
    assert_eq!(hls_playlist(&live(&[], true)), None);
    // Unsorted with a duplicate and a gap: the run from the oldest.
    let window = [(12, 900), (10, 400), (11, 1000), (10, 400), (14, 9000)];
    let p = hls_playlist(&live(&window, false)).unwrap();
    assert_eq!(
        p,
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:10\n\
         #EXTINF:0.400,\nlive/10.ts\n#EXTINF:1.000,\nlive/11.ts\n#EXTINF:0.900,\nlive/12.ts\n"
    );
    // Ended: the same, and the end said last.
    let ended = hls_playlist(&live(&window, true)).unwrap();
    assert_eq!(ended, format!("{p}#EXT-X-ENDLIST\n"));
    // A longer segment played earlier, gone from the window: the target
    // stays where it was.
    let mut earlier = live(&window, false);
    earlier.longest_ms = 2_100;
    let held = hls_playlist(&earlier).unwrap();
    assert_eq!(held, p.replace("TARGETDURATION:1", "TARGETDURATION:3"));
    // One far longer (a stalled input) is remembered only up to the
    // segmenter's own longest, 5 s.
    earlier.longest_ms = 3_600_000;
    let capped = hls_playlist(&earlier).unwrap();
    assert_eq!(capped, p.replace("TARGETDURATION:1", "TARGETDURATION:5"));
    let p = hls_playlist(&live(&[(u64::MAX, 0)], false)).unwrap();
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
