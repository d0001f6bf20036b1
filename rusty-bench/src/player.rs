//! Live latency as a viewer sees it: from input to a real player's first
//! decoded frame (part of `rusty-cli bench media`, when ffmpeg is here).
//!
//! 1. An `ffmpeg` encoder makes a real-time H.264 test card in MPEG-TS
//!    (`-re`, a keyframe every 0.5 s, timestamps starting at zero) and its
//!    output is pushed into a broadcast on node 0 as it arrives.
//! 2. Node 1 watches, and serves its live window over HTTP as a node serves
//!    players (`rusty_media::http::serve` over [`MediaSource`]).
//! 3. After `join_after`, an `ffmpeg` player joins at the live edge
//!    (`-live_start_index -1`), decodes one frame and prints its timestamp
//!    (`showinfo`); the line is stamped as it arrives.
//!
//! Latency = the moment the player decoded the frame − the moment the
//! encoder took it in (encoder start + the frame's timestamp). The encoder
//! start is taken when its process is spawned, before ffmpeg's own start-up,
//! so the figure errs high by that start-up (tens of ms).

use std::{
    io::{BufRead, BufReader, Read},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use rusty_media::{
    http::{serve, HttpConfig},
    service::{MediaHandle, MediaSource},
};
use rusty_shared_types::Hash256;

use crate::{connect::BenchError, network::setup};

/// Whether `ffmpeg` can run here.
pub fn ffmpeg_installed() -> bool {
    crate::tool_runs("ffmpeg", "-version")
}

/// One measurement (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct FirstFrame {
    /// Input → first decoded frame.
    pub latency: Duration,
    /// Player start → first decoded frame (start-up: playlist, segment).
    pub startup: Duration,
}

/// Broadcasts a test card from node `broadcaster`, has `viewer` watch it,
/// and measures a player joining after `join_after`.
pub async fn first_frame(
    broadcaster: MediaHandle,
    viewer: MediaHandle,
    id: Hash256,
    join_after: Duration,
) -> Result<FirstFrame, BenchError> {
    // The viewer's playback server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| setup(format!("playback server: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| setup(format!("playback server: {e}")))?;
    let source = Arc::new(MediaSource { media: viewer, id });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, source, HttpConfig::default(), async move {
        let _ = stopped.await;
    }));

    // The encoder, fed into the broadcast as its bytes arrive.
    let encoder_start = Instant::now();
    let mut encoder = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=640x360:rate=30"])
        .args(["-t", &format!("{}", join_after.as_secs() + 15)])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-g", "15", "-pix_fmt", "yuv420p"])
        .args(["-muxdelay", "0", "-muxpreload", "0", "-f", "mpegts", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| setup(format!("starting the ffmpeg encoder: {e}")))?;
    let mut out = encoder
        .stdout
        .take()
        .ok_or_else(|| setup("the encoder has no stdout"))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 188 * 64];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.blocking_send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let push = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if broadcaster.broadcast_push(id, &bytes).await.is_err() {
                break;
            }
        }
    });

    tokio::time::sleep(join_after).await;
    let player_start = Instant::now();
    let measured = tokio::task::spawn_blocking(move || play_one_frame(addr, player_start)).await;
    let _ = encoder.kill();
    let _ = encoder.wait();
    let _ = reader.join();
    push.abort();
    let _ = stop.send(());
    let _ = server.await;
    let (decoded_at, pts) = measured.map_err(|_| setup("the player thread failed"))??;
    let input_at = encoder_start + Duration::from_secs_f64(pts.max(0.0));
    Ok(FirstFrame {
        latency: decoded_at.saturating_duration_since(input_at),
        startup: decoded_at.saturating_duration_since(player_start),
    })
}

/// Runs the player; when it decoded its first frame, and that frame's
/// timestamp in seconds.
fn play_one_frame(
    addr: std::net::SocketAddr,
    started: Instant,
) -> Result<(Instant, f64), BenchError> {
    let mut player = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "info"])
        .args(["-live_start_index", "-1", "-copyts"])
        .arg("-i")
        .arg(format!("http://{addr}/live.m3u8"))
        .args([
            "-map",
            "0:v:0",
            "-frames:v",
            "1",
            "-vf",
            "showinfo",
            "-f",
            "null",
            "-",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| setup(format!("starting the ffmpeg player: {e}")))?;
    let stderr = player
        .stderr
        .take()
        .ok_or_else(|| setup("the player has no stderr"))?;
    let deadline = started + Duration::from_secs(30);
    let mut found = None;
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if let Some(pts) = line
            .split_once("pts_time:")
            .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok())
        {
            found = Some((Instant::now(), pts));
            break;
        }
        if Instant::now() > deadline {
            break;
        }
    }
    let _ = player.kill();
    let _ = player.wait();
    found.ok_or_else(|| setup("the player decoded no frame within 30 s"))
}
