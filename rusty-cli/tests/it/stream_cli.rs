//! `rusty-cli stream …` against real node processes: publish on one node,
//! find and view on another (saving to a file, and playing over HTTP with a
//! Range request), and a viewer node killed with SIGKILL mid-download that
//! resumes without fetching its verified chunks again.

use std::{
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::harness::{first_line, free_port, http_get, NodeProcess};

fn listen(p: u16) -> String {
    format!("/ip4/127.0.0.1/tcp/{p}")
}

/// Incompressible-looking test bytes (xorshift).
fn content(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `stream view` as a long-running child (killed when dropped).
struct Viewer(Child);

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_view(node: &NodeProcess, args: &[&str]) -> Viewer {
    Viewer(
        node.command(&["stream", "view"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(node.datadir.join("view.log")).expect("view log"))
            .spawn()
            .expect("spawn stream view"),
    )
}

/// Where `--serve` on `addr` sends a player asking for `path` (a `307`).
fn redirect_of(addr: &str, path: &str) -> String {
    let (head, _) = http_get(addr, path, "");
    assert!(head.starts_with("HTTP/1.1 307"), "{head}");
    head.lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .expect("a Location")
        .trim()
        .to_owned()
}

fn status(node: &NodeProcess, id: &str) -> Value {
    node.json(&["stream", "status", id])["downloads"][0].clone()
}

#[test]
fn publish_find_view_serve_and_resume_after_kill_9() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (rpc_a, rpc_b, p2p_a, p2p_b) = (free_port(), free_port(), free_port(), free_port());
    let ui_b = free_port().to_string();
    let (la, lb) = (listen(p2p_a), listen(p2p_b));
    // The publisher uploads at 1 MB/s so the 6 MB download takes seconds.
    let a = NodeProcess::start_raw(
        dir_a.path(),
        rpc_a,
        &[
            "--no-mine",
            "--no-mdns",
            "--listen",
            &la,
            "--media-upload-limit",
            "1000",
        ],
    );
    let start_b = || {
        NodeProcess::start_raw(
            dir_b.path(),
            rpc_b,
            &[
                "--no-mine",
                "--no-mdns",
                "--listen",
                &lb,
                "--bootnode",
                &la,
                "--ui-bind",
                &ui_b,
            ],
        )
    };
    let b = start_b();
    let deadline = Instant::now() + Duration::from_secs(60);
    while b.json(&["rpc", "getconnectioncount"]).as_u64() < Some(1) {
        assert!(Instant::now() < deadline, "B never connected to A");
        std::thread::sleep(Duration::from_millis(100));
    }

    let data = content(6_000_000);
    let file = dir_a.path().join("lecture.mp4");
    std::fs::write(&file, &data).unwrap();
    let id = a
        .json(&[
            "stream",
            "publish",
            file.to_str().unwrap(),
            "--title",
            "Physics lecture",
            "--tag",
            "physics",
        ])
        .as_str()
        .expect("content id")
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");

    // B finds it by searching (the announcement brought the manifest).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = b.json(&["stream", "search", "physics", "lecture"]);
        if found.as_array().is_some_and(|v| v.len() == 1) {
            assert_eq!(found[0]["id"], Value::String(id.clone()));
            assert_eq!(found[0]["mime"], "video/mp4");
            break;
        }
        assert!(Instant::now() < deadline, "B never learned the content");
        std::thread::sleep(Duration::from_millis(100));
    }

    // View with --output; kill the viewer node with SIGKILL mid-download.
    let out = dir_b.path().join("lecture-copy.mp4");
    let viewer = spawn_view(&b, &[&id, "--output", out.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(&b, &id);
        if s["chunks_present"].as_u64() >= Some(10) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no progress: {s}; viewer said: {}",
            std::fs::read_to_string(b.datadir.join("view.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(viewer);
    b.kill9();
    let b = start_b();
    let info = b.json(&["stream", "info", &id]);
    let total = info["chunks"].as_u64().unwrap();
    let present = info["chunks_present"].as_u64().unwrap();
    assert!(
        present >= 10 && present < total,
        "verified chunks survived the kill: {info}"
    );
    assert!(!out.exists(), "no partial output under the final name");

    // View again: only the missing chunks are fetched; the file is identical.
    let view = b.cli(&["stream", "view", &id, "--output", out.to_str().unwrap()]);
    assert!(
        view.status.success(),
        "{}",
        String::from_utf8_lossy(&view.stderr)
    );
    assert!(
        std::fs::read(&out).unwrap() == data,
        "the saved copy differs"
    );
    let s = status(&b, &id);
    assert_eq!(s["state"], "complete");
    assert_eq!(s["chunks_fetched"].as_u64(), Some(total - present), "{s}");

    // Play it over HTTP: --serve sends the player to the node (307), and a
    // Range request into the middle is answered there, bytes untouched.
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _server = spawn_view(&b, &[&id, "--serve", &addr]);
    let location = redirect_of(&addr, "/content");
    let node_ui = format!("http://127.0.0.1:{ui_b}/media/{id}/content");
    assert_eq!(location, node_ui);
    let (head, body) = http_get(
        &format!("127.0.0.1:{ui_b}"),
        &format!("/media/{id}/content"),
        "Range: bytes=3000000-3000999\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: video/mp4"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-range: bytes 3000000-3000999/6000000"),
        "{head}"
    );
    assert!(body == data[3_000_000..3_001_000]);

    // The publisher runs without --ui-bind: its playback server (the
    // default `--playback-bind auto`, on 127.0.0.1) serves the same bytes,
    // and --serve sends players there too; nothing goes through JSON.
    let addr_a = format!("127.0.0.1:{}", free_port());
    let _server_a = spawn_view(&a, &[&id, "--serve", &addr_a]);
    let location = redirect_of(&addr_a, "/content");
    let playback = location
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.strip_suffix(&format!("/media/{id}/content")))
        .unwrap_or_else(|| panic!("{location} is not the loopback playback server"));
    let (head, body) = http_get(
        &format!("127.0.0.1:{playback}"),
        &format!("/media/{id}/content"),
        "Range: bytes=0-999\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert!(body == data[..1000]);

    // Bad input: a clear error, nothing changes.
    let bad = b.cli(&["stream", "view", "not-an-id", "--output", "/tmp/x"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("content id must be 64 hex characters"),
        "{err}"
    );
    let none = b.cli(&["stream", "view", &id]);
    assert!(!none.status.success());
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("--output FILE and/or --serve"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
}

/// Ctrl-C (SIGINT) on `stream broadcast` ends the broadcast on the node,
/// so viewers' playlists end, instead of the process dying with the stream
/// left open and nothing coming.
#[test]
fn interrupting_a_broadcast_ends_it_on_the_node() {
    let dir = tempfile::tempdir().unwrap();
    // MPEG-TS null packets, paced at 200 kbit/s: a minute of input.
    let mut ts = Vec::new();
    for _ in 0..8_000 {
        ts.extend_from_slice(&[0x47, 0x1f, 0xff, 0x10]);
        ts.extend_from_slice(&[0xff; 184]);
    }
    let input = dir.path().join("input.ts");
    std::fs::write(&input, &ts).unwrap();
    let node = NodeProcess::start(dir.path(), free_port(), &["--no-mine"]);
    let mut broadcast = node
        .command(&["stream", "broadcast", "--live"])
        .arg(&input)
        .args(["--bitrate", "200", "--title", "interrupted"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stream broadcast");
    let id = first_line(&mut broadcast);
    assert_eq!(id.len(), 64, "{id:?}");
    let live = |node: &NodeProcess| node.json(&["stream", "status", &id])["live"][0].clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while live(&node)["ended"] != false {
        assert!(Instant::now() < deadline, "the broadcast never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let killed = std::process::Command::new("kill")
        .args(["-INT", &broadcast.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = broadcast.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the broadcast did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(broadcast.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("interrupted: broadcast ended"), "{err}");
    assert_eq!(live(&node)["ended"], true, "{}", live(&node));
}
