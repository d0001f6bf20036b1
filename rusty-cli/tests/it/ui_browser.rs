//! The web UI in a real browser: `tests/ui/browser.py` drives Debian's
//! Chromium (`/usr/bin/chromium`, through `/usr/bin/chromedriver`) with
//! Selenium, pinned in `tests/ui/requirements.txt` and installed into a
//! virtual environment, against a real dev node with `--ui-bind` and
//! `--metrics-bind`, and a peer node that publishes a clip and broadcasts a
//! live stream. It checks the home page against `getblockcount` as blocks
//! arrive, the explorer, playback of the clip and of the live stream,
//! the security rules, a send with its confirmation (checked over RPC),
//! the other pages, and `/metrics` through the Prometheus project's own
//! parser; then it mines to 10,000 blocks and reports page-load times.
//!
//! The clip and the live stream are made by `ffmpeg` from its test sources
//! when it is installed (`make deps` installs it), else taken from the small
//! samples committed in `tests/ui/`. Chromium and ChromeDriver are
//! installed by `make deps` (`scripts/install-deps.sh`); without them the
//! test fails and says so. It never downloads a browser.
//!
//! `RUSTY_UI_SCREENSHOTS=<dir>` keeps the screenshots there (`docs/ui/` is
//! made so); otherwise they go to a temporary directory.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::harness::{free_port, NodeProcess};

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("tests")
        .join("ui")
}

fn have_ffmpeg() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A 6 s H.264/AAC MP4 from ffmpeg's test sources, or the committed sample.
fn clip(dir: &Path) -> PathBuf {
    if !have_ffmpeg() {
        let _ = writeln!(
            std::io::stdout(),
            "ffmpeg not found: playing the committed tests/ui/sample.mp4"
        );
        return ui_dir().join("sample.mp4");
    }
    let out = dir.join("clip.mp4");
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=size=320x240:rate=25")
        .args(["-f", "lavfi", "-i", "sine=frequency=440", "-t", "6"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .args(["-g", "25", "-c:a", "aac", "-movflags", "+faststart"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not make the test clip");
    out
}

/// Child processes killed (and reaped) when dropped, also when the test
/// fails.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A live MPEG-TS source on the broadcast's stdin: ffmpeg in real time
/// (`-re`, 120 s), or the committed 20 s sample paced by `--bitrate`.
fn broadcast(peer: &NodeProcess) -> Children {
    let mut children = Vec::new();
    let mut cmd = Command::new(crate::harness::BIN);
    cmd.args(["--dev", "--datadir"])
        .arg(&peer.datadir)
        .args(["--rpc-url", &format!("http://127.0.0.1:{}", peer.port)])
        .args(["stream", "broadcast", "--live", "--title", "UI live test"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if have_ffmpeg() {
        let mut ffmpeg = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-re", "-f", "lavfi", "-i"])
            .arg("testsrc=size=320x240:rate=25")
            .args(["-f", "lavfi", "-i", "sine=frequency=660", "-t", "120"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
            ])
            .args([
                "-pix_fmt", "yuv420p", "-g", "12", "-c:a", "aac", "-f", "mpegts", "-",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ffmpeg");
        cmd.arg("-")
            .stdin(ffmpeg.stdout.take().expect("ffmpeg stdout"));
        children.push(ffmpeg);
    } else {
        cmd.arg(ui_dir().join("sample.ts"))
            .args(["--bitrate", "150"]);
    }
    children.push(cmd.spawn().expect("spawn stream broadcast"));
    Children(children)
}

/// The stream id the broadcast prints first.
fn live_id(peer: &NodeProcess, started: Instant) -> String {
    loop {
        let list = peer.json(&["stream", "list"]);
        if let Some(id) = list
            .as_array()
            .and_then(|a| a.iter().find(|i| i["live"] == true))
            .and_then(|i| i["id"].as_str())
        {
            return id.to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the live broadcast did not start: {list}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A title a hostile publisher might choose (the page must show it as text).
const HOSTILE_TITLE: &str = "<img src=x onerror=alert(1)> UI test clip";

#[test]
fn the_web_ui_works_in_a_real_browser() {
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: the web UI's browser test drives Debian's Chromium. Run `make deps` \
             (scripts/install-deps.sh installs chromium and chromium-driver) and re-run"
        );
    }
    let python = crate::pyvenv::venv_python("ui-browser", &ui_dir().join("requirements.txt"));

    // The peer: the clip's provider and the live broadcaster.
    let peer_dir = tempfile::tempdir().expect("tempdir");
    let peer_listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let peer = NodeProcess::start_raw(
        peer_dir.path(),
        free_port(),
        &["--no-mine", "--listen", &peer_listen, "--no-mdns"],
    );
    // The node under test, with the UI and metrics on.
    let dir = tempfile::tempdir().expect("tempdir");
    let (ui_port, metrics_port) = (free_port(), free_port());
    let node = NodeProcess::start_raw(
        dir.path(),
        free_port(),
        &[
            "--no-mine",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--bootnode",
            &peer_listen,
            "--ui-bind",
            &format!("127.0.0.1:{ui_port}"),
            "--metrics-bind",
            &format!("127.0.0.1:{metrics_port}"),
        ],
    );
    // Mature coins for the wallet's send.
    let addr = node.json(&["rpc", "getnewaddress"]);
    let addr = addr.as_str().expect("address");
    node.json(&["rpc", "generatetoaddress", "110", addr]);
    // A proposal for the governance page's tally; its title must be shown
    // as text.
    node.json(&[
        "gov",
        "submit",
        "--payment",
        "--payee",
        addr,
        "--amount",
        "100",
        "--title",
        "<b>Fund</b> the explorer",
    ]);
    node.json(&["rpc", "generatetoaddress", "1", addr]);

    let media_dir = tempfile::tempdir().expect("tempdir");
    let clip = clip(media_dir.path());
    let published = peer.json(&[
        "stream",
        "publish",
        clip.to_str().expect("utf-8 path"),
        "--title",
        // Peers' text is shown as text: this must not become an element.
        HOSTILE_TITLE,
        "--tag",
        "test",
    ]);
    let clip_id = published["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| published.as_str().expect("content id").to_owned());
    let started = Instant::now();
    let live = broadcast(&peer);
    let live_id = live_id(&peer, started);

    let screenshots = std::env::var_os("RUSTY_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| media_dir.path().join("screenshots"));
    let report = media_dir.path().join("page-load.json");
    let out = Command::new(&python)
        .arg(ui_dir().join("browser.py"))
        .args(["--ui", &format!("http://127.0.0.1:{ui_port}")])
        .args(["--metrics", &format!("http://127.0.0.1:{metrics_port}")])
        .args(["--rpc", &format!("http://127.0.0.1:{}", node.port)])
        .arg("--cookie")
        .arg(dir.path().join("dev").join(".cookie"))
        .args(["--peer-rpc", &format!("http://127.0.0.1:{}", peer.port)])
        .arg("--peer-cookie")
        .arg(peer_dir.path().join("dev").join(".cookie"))
        .args(["--clip", &clip_id, "--live", &live_id])
        .arg("--screenshots")
        .arg(&screenshots)
        .arg("--report")
        .arg(&report)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run browser.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Shown with `--no-capture`: every check and the page-load times.
    let _ = writeln!(std::io::stdout(), "{text}");
    drop(live);
    assert!(
        out.status.success(),
        "the web UI's browser test failed:\n{text}"
    );
    node.stop();
    peer.stop();
}
