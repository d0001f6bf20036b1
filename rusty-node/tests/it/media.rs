//! The media layer on real nodes: libp2p over loopback TCP, RocksDB content
//! stores on temporary datadirs, JSON-RPC over HTTP.
//!
//! - a 20 MiB file published on A is viewed on C, which is connected only to
//!   B: C finds A through the network and gets every byte;
//! - a provider that serves corrupt chunks is penalised and the download
//!   still completes from the honest one;
//! - a download interrupted by stopping the viewer resumes after a restart
//!   without fetching again what it had verified;
//! - a seek (an HTTP Range request into the middle) is answered before the
//!   file is complete;
//! - a live stream reaches three viewers in order, with latency measured;
//! - malformed announcements and requests get clear errors and change
//!   nothing.

use std::time::Duration;

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use rusty_media::{
    service::{MediaHandle, MediaSource},
    wire::{Announcement, MediaRequest, MediaResponse},
};
use rusty_network::{Multiaddr, NetworkConfig, NetworkEvent, PeerId, Request, Response, Topic};
use rusty_node::{
    localnet::LocalNetConfig,
    node::{Node, NodeConfig},
    rpc::client::RpcClient,
};
use rusty_shared_types::Hash256;
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(90);

/// Nodes started one by one with chosen wiring (LocalNet wires everyone to
/// everyone).
struct Nodes {
    dir: tempfile::TempDir,
    cfg: LocalNetConfig,
    nodes: Vec<Option<(Node, NodeConfig)>>,
}

impl Nodes {
    fn new(n: usize) -> Nodes {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = LocalNetConfig::new(dir.path(), n);
        Nodes {
            dir,
            cfg,
            nodes: (0..n).map(|_| None).collect(),
        }
    }

    /// Starts node `i` dialing `boot`; `max_peers` small keeps it from
    /// dialing anyone else by itself.
    async fn start(&mut self, i: usize, boot: &[usize], max_peers: usize, upload_limit: u64) {
        let boot: Vec<Multiaddr> = boot.iter().flat_map(|&b| self.addrs(b)).collect();
        let mut c = self.cfg.node_config(i, boot).expect("config");
        c.mine = false;
        c.media_upload_limit = upload_limit;
        if let Some(p) = c.p2p.as_mut() {
            p.max_peers = max_peers;
        }
        self.launch(i, c).await;
    }

    async fn launch(&mut self, i: usize, mut c: NodeConfig) {
        let node = Node::start(c.clone()).await.expect("node starts");
        c.rpc_bind = node.rpc_addr();
        if let (Some(net), Some(p2p)) = (c.p2p.as_mut(), node.p2p()) {
            net.listen = p2p
                .net
                .listen_addrs()
                .iter()
                .map(rusty_network::peers::without_peer_id)
                .collect();
        }
        self.nodes[i] = Some((node, c));
    }

    /// Stops node `i` (the viewer being killed mid-download).
    async fn stop(&mut self, i: usize) -> NodeConfig {
        let (node, c) = self.nodes[i].take().expect("running");
        node.shutdown().await;
        c
    }

    fn node(&self, i: usize) -> &Node {
        &self.nodes[i].as_ref().expect("running").0
    }

    fn addrs(&self, i: usize) -> Vec<Multiaddr> {
        self.node(i)
            .p2p()
            .map(|p| p.net.listen_addrs())
            .unwrap_or_default()
    }

    fn peer_id(&self, i: usize) -> PeerId {
        self.node(i).p2p().expect("p2p").net.peer_id()
    }

    fn media(&self, i: usize) -> MediaHandle {
        self.node(i)
            .p2p()
            .and_then(|p| p.media.clone())
            .expect("media service")
    }

    fn client(&self, i: usize) -> RpcClient {
        RpcClient::new(&format!("http://{}", self.node(i).rpc_addr()))
            .expect("url")
            .with_cookie_file(self.node(i).cookie_path().expect("cookie"))
            .expect("cookie")
    }

    async fn rpc(&self, i: usize, method: &str, params: Value) -> Result<Value, String> {
        let c = self.client(i);
        let m = method.to_owned();
        tokio::task::spawn_blocking(move || c.call(&m, params).map_err(|e| e.to_string()))
            .await
            .expect("rpc thread")
    }

    async fn ok(&self, i: usize, method: &str, params: Value) -> Value {
        self.rpc(i, method, params)
            .await
            .unwrap_or_else(|e| panic!("{method} on node {i}: {e}"))
    }

    async fn wait_peers(&self, i: usize, n: usize) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let count = self
                .node(i)
                .p2p()
                .expect("p2p")
                .net
                .peers()
                .await
                .map(|p| p.len())
                .unwrap_or(0);
            if count >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {i} never reached {n} peers"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Publishes `data` from node `i` over RPC (a file in the test dir).
    async fn publish(&self, i: usize, name: &str, data: &[u8]) -> Hash256 {
        let path = self.dir.path().join(name);
        std::fs::write(&path, data).expect("write content");
        let r = self
            .ok(
                i,
                "stream_publish",
                json!([path.to_string_lossy(), {"title": format!("test {name}"), "tags": ["test"]}]),
            )
            .await;
        r["id"].as_str().expect("id").parse().expect("hash")
    }

    /// Polls `stream_status` until the download of `id` is complete.
    async fn wait_download(&self, i: usize, id: Hash256) -> Value {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let s = self.ok(i, "stream_status", json!([id.to_string()])).await;
            let d = s["downloads"][0].clone();
            if d["state"] == "complete" {
                return d;
            }
            assert!(d["state"].get("failed").is_none(), "download failed: {d}");
            assert!(
                tokio::time::Instant::now() < deadline,
                "download never completed: {d}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every byte of `id` as node `i` serves it over `stream_read`.
    async fn read_all(&self, i: usize, id: Hash256, size: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while (out.len() as u64) < size {
            let len = (size - out.len() as u64).min(4 << 20);
            let r = self
                .ok(
                    i,
                    "stream_read",
                    json!([id.to_string(), out.len(), len, 10_000]),
                )
                .await;
            out.extend(
                BASE64
                    .decode(r["data"].as_str().expect("data"))
                    .expect("base64"),
            );
        }
        out
    }

    async fn shutdown(mut self) {
        for n in self.nodes.iter_mut() {
            if let Some((node, _)) = n.take() {
                node.shutdown().await;
            }
        }
    }
}

/// Deterministic test content.
fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(&[seed]);
    let mut out = vec![0u8; len];
    h.finalize_xof().fill(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_published_on_a_is_viewed_byte_identical_on_c_which_only_knows_b() {
    let mut n = Nodes::new(3);
    // B (0) is the hub; A (1) and C (2) each dial only B and, with one
    // outbound slot, dial nobody else by themselves.
    n.start(0, &[], 50, 0).await;
    n.start(1, &[0], 2, 0).await;
    n.start(2, &[0], 2, 0).await;
    n.wait_peers(0, 2).await;
    let a = n.peer_id(1);

    let data = content(20 << 20, 1);
    let id = n.publish(1, "twenty.bin", &data).await;
    let info = n.ok(1, "stream_info", json!([id.to_string()])).await;
    assert_eq!(info["size"], json!(data.len()));
    assert_eq!(info["complete"], json!(true));
    assert_eq!(info["pinned"], json!(true));

    let view = n.ok(2, "stream_view", json!([id.to_string()])).await;
    assert_eq!(view["live"], json!(false));
    let done = n.wait_download(2, id).await;
    assert_eq!(done["chunks_total"], json!(320));
    assert_eq!(done["chunks_fetched"], json!(320));
    assert_eq!(done["bad_chunks"], json!(0));
    // The bytes came from A (B never had them).
    let peers = done["peers"].as_array().expect("peers");
    assert!(
        peers
            .iter()
            .any(|p| p["peer"] == json!(a.to_string()) && p["bytes"].as_u64() > Some(0)),
        "A served the content: {done}"
    );
    let got = n.read_all(2, id, data.len() as u64).await;
    assert!(got == data, "C's copy differs from A's");
    // C now has it, cached (not pinned), and knows it in its catalog.
    let list = n.ok(2, "stream_search", json!(["test twenty"])).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["complete"], json!(true));
    assert_eq!(list[0]["pinned"], json!(false));
    // B learned the manifest from the announcement (catalog), not the bytes.
    let on_b = n.ok(0, "stream_info", json!([id.to_string()])).await;
    assert_eq!(on_b["chunks_present"], json!(0));
    n.shutdown().await;
}

/// A libp2p peer that claims to have `id` and serves corrupt chunks.
async fn corrupt_provider(
    boot: Vec<Multiaddr>,
    id: Hash256,
    manifest: Vec<u8>,
) -> (PeerId, tokio::task::JoinHandle<()>) {
    let mut cfg = NetworkConfig::new("dev", None, 0);
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")];
    cfg.mdns = false;
    cfg.bootnodes = boot;
    let (net, mut events) = rusty_network::start(cfg).await.expect("network");
    let me = net.peer_id();
    let task = tokio::spawn(async move {
        let mut announce = tokio::time::interval(Duration::from_millis(300));
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(NetworkEvent::Request { request: Request::Media(body), responder, .. }) => {
                        let reply = match MediaRequest::decode(&body) {
                            Ok(MediaRequest::Manifest { .. }) => MediaResponse::Manifest(manifest.clone()),
                            Ok(MediaRequest::Chunks { start, count, .. }) => MediaResponse::Chunks {
                                start,
                                chunks: (0..count).map(|i| vec![i as u8 ^ 0x5a; 64 * 1024]).collect(),
                            },
                            _ => MediaResponse::NotFound,
                        };
                        net.respond(responder, Response::Media(reply.encode())).await;
                    }
                    Some(NetworkEvent::Gossip { id: mid, source, .. }) => {
                        net.validate(mid, source, rusty_network::Acceptance::Ignore);
                    }
                    Some(_) => {}
                    None => break,
                },
                _ = announce.tick() => {
                    let _ = net.publish(Topic::Media, Announcement::Have { id }.encode()).await;
                }
            }
        }
    });
    (me, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_of_corrupt_chunks_is_penalised_and_the_download_completes_elsewhere() {
    let mut n = Nodes::new(2);
    // The honest provider uploads at 1 MB/s, so the corrupt one, which
    // answers at once, is surely asked.
    n.start(0, &[], 50, 1_000_000).await;
    n.start(1, &[0], 50, 0).await;
    n.wait_peers(1, 1).await;
    let data = content(4 << 20, 2);
    let id = n.publish(0, "four.bin", &data).await;
    let manifest = {
        let (_, m) = n.media(0).info(&id).expect("manifest");
        rusty_shared_types::Encode::encode(m.as_ref())
    };
    let (evil, task) = corrupt_provider(n.addrs(1), id, manifest).await;
    // Wait until the viewer heard the corrupt peer's "I have it".
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !n.media(1).providers(&id).await.contains(&evil) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the viewer never heard the corrupt provider"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    n.ok(1, "stream_view", json!([id.to_string()])).await;
    let done = n.wait_download(1, id).await;
    assert!(
        done["bad_chunks"].as_u64() >= Some(1),
        "the corrupt provider was asked: {done}"
    );
    let got = n.read_all(1, id, data.len() as u64).await;
    assert!(got == data, "the copy differs");
    let peers = done["peers"].as_array().expect("peers");
    assert!(
        peers.iter().any(|p| p["peer"] == json!(evil.to_string())
            && p["state"] == "penalised"
            && p["bytes"] == json!(0)),
        "the corrupt provider is marked and delivered nothing: {done}"
    );
    // The network banned it.
    let banned = n.ok(1, "listbanned", json!([])).await;
    assert!(
        banned.to_string().contains(&evil.to_string()),
        "the corrupt provider is banned: {banned}"
    );
    task.abort();
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_download_resumes_without_fetching_verified_chunks_again() {
    let mut n = Nodes::new(2);
    // The publisher uploads at 1 MB/s, so the 8 MiB download takes ~8 s.
    n.start(0, &[], 50, 1_000_000).await;
    n.start(1, &[0], 50, 0).await;
    n.wait_peers(1, 1).await;
    let data = content(8 << 20, 3);
    let id = n.publish(0, "eight.bin", &data).await;
    n.ok(1, "stream_view", json!([id.to_string()])).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let s = n.ok(1, "stream_status", json!([id.to_string()])).await;
        if s["downloads"][0]["chunks_present"].as_u64() >= Some(32) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no progress: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Stop the viewer mid-download and start it again on its datadir.
    let c = n.stop(1).await;
    n.launch(1, c).await;
    n.wait_peers(1, 1).await;
    let info = n.ok(1, "stream_info", json!([id.to_string()])).await;
    let present = info["chunks_present"].as_u64().expect("present");
    assert!(
        (32..128).contains(&present),
        "kept the verified chunks: {info}"
    );
    n.ok(1, "stream_view", json!([id.to_string()])).await;
    let done = n.wait_download(1, id).await;
    assert_eq!(
        done["chunks_fetched"].as_u64(),
        Some(128 - present),
        "only the missing chunks were fetched: {done}"
    );
    let got = n.read_all(1, id, data.len() as u64).await;
    assert!(got == data, "the resumed copy differs");
    n.shutdown().await;
}

/// Sends one HTTP request and reads the whole response.
async fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    range: Option<&str>,
) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let range = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{range}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    (head, buf[split..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_seek_into_the_middle_is_served_before_the_file_is_complete() {
    let mut n = Nodes::new(2);
    // Slow publisher: 1 MB/s for 32 MiB, so the whole file takes at least
    // 32 s; the seek is served in 1.5–4 s (behind at most the request in
    // flight at the provider). Before the downloader held a provider that
    // answers `Busy` to one request at a time, the seek was sometimes sent
    // only with the window's other requests, met the upload limit they had
    // taken, and was served after the whole file (33 s).
    n.start(0, &[], 50, 1_000_000).await;
    n.start(1, &[0], 50, 0).await;
    n.wait_peers(1, 1).await;
    let data = content(32 << 20, 4);
    let id = n.publish(0, "thirty-two.bin", &data).await;
    // The viewer's player: the node's content over HTTP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let source = std::sync::Arc::new(MediaSource {
        media: n.media(1),
        id,
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(rusty_media::http::serve(
        listener,
        source,
        rusty_media::http::HttpConfig::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    // Seek to 12 MiB before anything was fetched.
    let start = 12u64 << 20;
    let (head, body) = http_get(
        addr,
        "/content",
        Some(&format!("bytes={start}-{}", start + 99_999)),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert!(
        head.contains(&format!(
            "Content-Range: bytes {start}-{}/{}",
            start + 99_999,
            data.len()
        )),
        "{head}"
    );
    assert!(
        body == data[start as usize..start as usize + 100_000],
        "the seeked range is right"
    );
    let s = n.ok(1, "stream_status", json!([id.to_string()])).await;
    let d = &s["downloads"][0];
    assert_ne!(
        d["state"],
        json!("complete"),
        "served before the download completed: {d}"
    );
    assert!(d["bytes_present"].as_u64() < Some(data.len() as u64), "{d}");
    let _ = stop.send(());
    let _ = server.await;
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_media_input_gets_clear_errors_and_changes_nothing() {
    let mut n = Nodes::new(1);
    n.start(0, &[], 50, 0).await;
    // RPC: bad ids, unknown content, bad ranges.
    let e = n
        .rpc(0, "stream_view", json!(["zz"]))
        .await
        .expect_err("bad id");
    assert!(e.contains("content id must be 64 hex characters"), "{e}");
    let e = n
        .rpc(0, "stream_info", json!([Hash256([7; 32]).to_string()]))
        .await
        .expect_err("unknown");
    assert!(e.contains("not in the store"), "{e}");
    let e = n
        .rpc(
            0,
            "stream_read",
            json!([Hash256([7; 32]).to_string(), 0, 100 << 20]),
        )
        .await
        .expect_err("too long");
    assert!(e.contains("length must be 1 to"), "{e}");
    let e = n
        .rpc(0, "stream_publish", json!(["/nonexistent/file.bin"]))
        .await
        .expect_err("missing file");
    assert!(e.contains("/nonexistent/file.bin"), "{e}");
    let e = n
        .rpc(0, "stream_publish", json!(["/etc/hostname", {"title": ""}]))
        .await
        .expect_err("empty title");
    assert!(e.to_lowercase().contains("title"), "{e}");
    let e = n
        .rpc(
            0,
            "stream_broadcast_push",
            json!([Hash256([7; 32]).to_string(), "AAAA"]),
        )
        .await
        .expect_err("not broadcasting");
    assert!(e.contains("not broadcasting"), "{e}");

    // A peer gossiping garbage and asking malformed questions.
    let mut cfg = NetworkConfig::new("dev", None, 0);
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")];
    cfg.mdns = false;
    cfg.bootnodes = n.addrs(0);
    let (net, _events) = rusty_network::start(cfg).await.expect("network");
    let node = n.peer_id(0);
    let reply = net
        .request(
            node,
            Request::Media(
                MediaRequest::Chunks {
                    id: Hash256([1; 32]),
                    start: 0,
                    count: 1,
                }
                .encode(),
            ),
        )
        .await;
    let decoded = match reply {
        Ok(Response::Media(b)) => MediaResponse::decode(&b).expect("decodes"),
        other => panic!("unexpected {other:?}"),
    };
    assert!(matches!(decoded, MediaResponse::NotFound));
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let media = n.media(0);
    while media
        .counters()
        .bad_announcements
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        let _ = net.publish(Topic::Media, vec![0xff, 0x00, 0x13]).await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "the garbage announcement never arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing was added to the catalog.
    let list = n.ok(0, "stream_list", json!([])).await;
    assert_eq!(list, json!([]));
    net.shutdown().await;
    n.shutdown().await;
}

/// `n` MPEG-TS-like packets (sync byte, then a running packet number).
fn ts_packets(first: u32, n: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(n as usize * 188);
    for k in first..first + n {
        let mut p = [0xffu8; 188];
        p[0] = 0x47;
        p[1..5].copy_from_slice(&k.to_be_bytes());
        out.extend_from_slice(&p);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thirty_second_live_stream_reaches_three_viewers_in_order() {
    let mut n = Nodes::new(4);
    n.start(0, &[], 50, 0).await;
    for i in 1..4 {
        let boot: Vec<usize> = (0..i).collect();
        n.start(i, &boot, 50, 0).await;
    }
    for i in 0..4 {
        n.wait_peers(i, 3).await;
    }
    let r = n
        .ok(
            0,
            "stream_broadcast",
            json!([{"title": "live test", "tags": ["live"]}]),
        )
        .await;
    let id: Hash256 = r["id"].as_str().expect("id").parse().expect("hash");
    // Viewers join (they fetch the live manifest from the broadcaster).
    for i in 1..4 {
        let v = n.ok(i, "stream_view", json!([id.to_string()])).await;
        assert_eq!(v["live"], json!(true), "{v}");
    }
    // 30 s of input, 100 packets (18,800 bytes) every 100 ms: ~1.5 Mbit/s.
    let mut input = Vec::new();
    let started = tokio::time::Instant::now();
    let mut k = 0u32;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while started.elapsed() < Duration::from_secs(30) {
        tick.tick().await;
        let chunk = ts_packets(k, 100);
        k += 100;
        input.extend_from_slice(&chunk);
        n.ok(
            0,
            "stream_broadcast_push",
            json!([id.to_string(), BASE64.encode(&chunk)]),
        )
        .await;
    }
    n.ok(0, "stream_broadcast_end", json!([id.to_string()]))
        .await;

    let mut received_total = 0u64;
    for i in 1..4 {
        // Everything the viewer played, in order.
        let mut got = Vec::new();
        let mut next = 0u64;
        let mut seqs = Vec::new();
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let r = n
                .ok(i, "stream_segments", json!([id.to_string(), next, 3_000]))
                .await;
            let segs = r["segments"].as_array().cloned().unwrap_or_default();
            for s in &segs {
                seqs.push(s["seq"].as_u64().expect("seq"));
                got.extend(
                    BASE64
                        .decode(s["data"].as_str().expect("data"))
                        .expect("base64"),
                );
            }
            next = r["next"].as_u64().expect("next");
            let status = &r["status"];
            // Done when the last cut segment was played.
            if segs.is_empty() && status["last_seq"].as_u64().is_some() {
                let bcast = n.ok(0, "stream_status", json!([id.to_string()])).await;
                if status["last_seq"] == bcast["live"][0]["last_seq"] {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "viewer {i} stalled: {status}"
            );
        }
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "viewer {i} played in order without gaps: {seqs:?}"
        );
        assert!(
            seqs.len() >= 40,
            "viewer {i} played {} segments",
            seqs.len()
        );
        // The played bytes are the input from a packet boundary to the end.
        assert_eq!(got.len() % 188, 0);
        let first = u32::from_be_bytes(got[1..5].try_into().expect("4 bytes"));
        let from = first as usize * 188;
        assert!(
            got == input[from..],
            "viewer {i}'s stream differs from the input"
        );
        // The creator's signed end reaches the viewer, which ends too.
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let r = n
                .ok(i, "stream_segments", json!([id.to_string(), next, 1_000]))
                .await;
            if r["ended"] == json!(true) {
                assert_eq!(r["segments"], json!([]), "nothing after the end");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "viewer {i} never saw the end"
            );
        }
        let st = n.ok(i, "stream_status", json!([id.to_string()])).await;
        let live = &st["live"][0];
        assert_eq!(live["skipped"], json!(0), "{live}");
        let p50 = live["latency_p50_ms"].as_u64().expect("latency measured");
        let p95 = live["latency_p95_ms"].as_u64().expect("latency measured");
        eprintln!(
            "viewer {i}: {} segments, latency p50 {p50} ms, p95 {p95} ms",
            seqs.len()
        );
        received_total += live["received_bytes"].as_u64().unwrap_or(0);
    }
    let b = n.ok(0, "stream_status", json!([id.to_string()])).await;
    let uploaded = b["live"][0]["uploaded_bytes"].as_u64().unwrap_or(0);
    eprintln!(
        "broadcaster uploaded {uploaded} bytes for {received_total} received by viewers ({:.0}%)",
        uploaded as f64 * 100.0 / received_total.max(1) as f64
    );
    assert!(uploaded > 0 && received_total > 0);
    n.shutdown().await;
}

/// Mines `count` blocks on node `i` to its wallet.
async fn mine(n: &Nodes, i: usize, count: u64) {
    let handle = n.node(i).handle();
    let addr = handle
        .new_address()
        .await
        .expect("chain service")
        .expect("address");
    handle
        .generate(count, &addr, u64::MAX)
        .await
        .expect("mining");
}

async fn wait_height(n: &Nodes, i: usize, h: u64) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while n
        .node(i)
        .handle()
        .query(|s| s.chain().height())
        .await
        .expect("chain")
        < h
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {i} never reached height {h}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn priced_content_is_unreadable_before_the_purchase_and_readable_after() {
    let mut n = Nodes::new(2);
    n.start(0, &[], 50, 0).await;
    n.start(1, &[0], 50, 0).await;
    n.wait_peers(1, 1).await;
    // The buyer (1) needs mature coins; the creator (0) follows the chain.
    mine(&n, 1, 14).await;
    wait_height(&n, 0, 14).await;

    let data = content(300_000, 5);
    let path = n.dir.path().join("priced.bin");
    std::fs::write(&path, &data).expect("write");
    let r = n
        .ok(
            0,
            "stream_publish",
            json!([path.to_string_lossy(), {"title": "priced", "price": 2}]),
        )
        .await;
    let id: Hash256 = r["id"].as_str().expect("id").parse().expect("hash");
    // A price the key release's fee would eat is refused.
    let e = n
        .rpc(
            0,
            "stream_publish",
            json!([path.to_string_lossy(), {"price": "0.00000100"}]),
        )
        .await
        .expect_err("too cheap");
    assert!(e.contains("below the minimum"), "{e}");
    assert_eq!(r["encrypted"], json!(true));
    assert_eq!(r["size"], json!(data.len()));
    assert_eq!(
        r["purchased"],
        json!(true),
        "the creator holds the key: {r}"
    );
    // The stored bytes are ciphertext: the plaintext is nowhere on disk.
    let stored = n.media(0).store().read_range(&id, 0, 1000).expect("stored");
    assert!(stored != data[..1000], "priced content is stored encrypted");

    // The buyer fetches the (encrypted) content but cannot read it.
    n.ok(1, "stream_view", json!([id.to_string()])).await;
    n.wait_download(1, id).await;
    let e = n
        .rpc(1, "stream_read", json!([id.to_string(), 0, 1000]))
        .await
        .expect_err("not bought yet");
    assert!(e.contains("buy it first"), "{e}");
    let info = n.ok(1, "stream_info", json!([id.to_string()])).await;
    assert_eq!(info["purchased"], json!(false));
    assert_eq!(info["price"], json!(2.0));

    // Buy, confirm, and the creator releases the key on chain.
    let bought = n.ok(1, "stream_buy", json!([id.to_string()])).await;
    let purchase: Hash256 = bought["txid"]
        .as_str()
        .expect("txid")
        .parse()
        .expect("hash");
    // A retry before it is mined does not pay twice.
    let e = n
        .rpc(1, "stream_buy", json!([id.to_string()]))
        .await
        .expect_err("second purchase");
    assert!(e.contains("already waiting to be mined"), "{e}");
    mine(&n, 1, 1).await;
    wait_height(&n, 0, 15).await;
    // The release reaches the mempools; mine it.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let pool = n.ok(0, "getrawmempool", json!([])).await;
        if pool.as_array().is_some_and(|p| !p.is_empty()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the creator never released the key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    mine(&n, 0, 1).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let info = n.ok(1, "stream_info", json!([id.to_string()])).await;
        if info["purchased"] == json!(true) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key never arrived: {info}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = n.read_all(1, id, data.len() as u64).await;
    assert!(got == data, "the decrypted content differs");
    // A range in the middle decrypts too.
    let r = n
        .ok(1, "stream_read", json!([id.to_string(), 100_000, 70_000]))
        .await;
    let mid = BASE64
        .decode(r["data"].as_str().expect("data"))
        .expect("base64");
    assert!(mid == data[100_000..170_000]);
    // The purchase's payment was spent by the release (the key is on chain).
    let spent = n
        .node(1)
        .handle()
        .query(move |s| {
            s.chain()
                .coin(&rusty_shared_types::OutPoint::new(purchase, 0))
        })
        .await
        .expect("chain")
        .expect("db");
    assert!(spent.is_none(), "the release spent the payment");
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_learned_policy_fetches_from_two_throttled_providers_and_a_seek_comes_first() {
    let mut n = Nodes::new(3);
    // Two providers at different upload limits; the viewer (2) runs the
    // learned provider policy.
    n.start(0, &[], 50, 2_000_000).await;
    n.start(1, &[0], 50, 500_000).await;
    n.start(2, &[0, 1], 50, 0).await;
    n.wait_peers(2, 2).await;
    let data = content(8 << 20, 5);
    let id = n.publish(0, "eight.bin", &data).await;
    n.ok(1, "stream_view", json!([id.to_string()])).await;
    n.wait_download(1, id).await;
    n.media(2)
        .set_provider_policy(rusty_media::selection::PolicyKind::Learned);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while n.media(2).providers(&id).await.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "two providers never announced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    n.ok(2, "stream_view", json!([id.to_string()])).await;
    // A reader in the middle: those chunks are critical from now on.
    let mid = n
        .ok(
            2,
            "stream_read",
            json!([id.to_string(), 6 << 20, 65_536, 20_000]),
        )
        .await;
    let mid = BASE64
        .decode(mid["data"].as_str().expect("data"))
        .expect("base64");
    assert!(
        mid == data[6 << 20..(6 << 20) + 65_536],
        "the seeked bytes differ"
    );
    let done = n.wait_download(2, id).await;
    assert_eq!(done["bad_chunks"], json!(0));
    let peers = done["peers"].as_array().expect("peers");
    let delivered: u64 = peers.iter().filter_map(|p| p["bytes"].as_u64()).sum();
    assert_eq!(
        delivered,
        data.len() as u64,
        "every byte came from a provider once: {done}"
    );
    assert!(
        peers
            .iter()
            .filter(|p| p["bytes"].as_u64() > Some(0))
            .all(|p| p["rate"].as_u64() > Some(0)),
        "the learner has a rate for each provider that delivered: {done}"
    );
    let got = n.read_all(2, id, data.len() as u64).await;
    assert!(got == data, "the copy differs");
    n.shutdown().await;
}
