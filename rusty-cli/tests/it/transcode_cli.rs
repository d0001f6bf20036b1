//! `rusty-cli stream publish --transcode` and `stream broadcast --live
//! --transcode` with the system's ffmpeg: a 6 s test-source clip (854×480,
//! a 3 s GOP of its own) becomes three renditions whose keyframes and
//! segments line up, tied by a master playlist, all on a real node and read
//! back from it (the live ladder over the node's HTTP playback routes).

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use rusty_media::ladder;

use crate::harness::{first_line, free_port, http_get, NodeProcess};

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The content's bytes, read back from the node with `stream view --output`.
fn read(node: &NodeProcess, id: &str, dir: &Path) -> Vec<u8> {
    let out = dir.join(id);
    let r = node.cli(&["stream", "view", id, "--output", &out.to_string_lossy()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    std::fs::read(out).expect("the viewed content")
}

/// `../<id>/content` → `<id>`.
fn id_of(uri: &str) -> &str {
    uri.trim_start_matches("../").trim_end_matches("/content")
}

fn uris(playlist: &str) -> Vec<&str> {
    playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Presentation times of the video keyframes, as ffprobe decodes them.
fn keyframes(ts: &Path) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-skip_frame",
            "nokey",
        ])
        .args(["-show_entries", "frame=pts_time", "-of", "csv=p=0"])
        .arg(ts)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_end_matches(',').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// False (with a message saying so) where ffmpeg is missing.
fn ffmpeg_present() -> bool {
    let present = have("ffmpeg") && have("ffprobe");
    if !present {
        eprintln!(
            "SKIPPED: ffmpeg/ffprobe are not installed (make test installs them via scripts/install-deps.sh)"
        );
    }
    present
}

/// A 6 s 854×480 test card with a 440 Hz tone and a keyframe every 3 s.
fn test_clip(path: &Path) {
    test_clip_of(path, 6);
}

/// [`test_clip`], `secs` long.
fn test_clip_of(path: &Path, secs: u32) {
    make_clip(path, secs, "medium");
}

/// A long [`test_clip`] made quickly (x264's `ultrafast`), for tests that
/// only need it to last.
fn long_test_clip(path: &Path, secs: u32) {
    make_clip(path, secs, "ultrafast");
}

fn make_clip(path: &Path, secs: u32, preset: &str) {
    let made = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=854x480:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string()])
        .args([
            "-c:v", "libx264", "-preset", preset, "-g", "90", "-pix_fmt", "yuv420p",
        ])
        .args(["-c:a", "aac", "-shortest"])
        .arg(path)
        .status()
        .expect("ffmpeg runs");
    assert!(made.success());
}

/// A publishing node A and a viewer node B, another process bootstrapped
/// from A over loopback, whose UI (playback routes) listens on the address
/// returned.
fn publisher_and_viewer(a: &Path, b: &Path) -> (NodeProcess, NodeProcess, String) {
    let listen_a = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let node_a = NodeProcess::start_raw(
        a,
        free_port(),
        &["--no-mine", "--no-mdns", "--listen", &listen_a],
    );
    let ui = format!("127.0.0.1:{}", free_port());
    let listen_b = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let node_b = NodeProcess::start_raw(
        b,
        free_port(),
        &[
            "--no-mine",
            "--no-mdns",
            "--listen",
            &listen_b,
            "--bootnode",
            &listen_a,
            "--ui-bind",
            &ui,
        ],
    );
    (node_a, node_b, ui)
}

/// Views `id` (a small file, a master playlist) on `node` into `out` as a
/// user would, again until it succeeds (the node may not have found its
/// provider yet), within `within`.
fn view_until_held(node: &NodeProcess, id: &str, out: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let r = node.cli(&["stream", "view", id, "--output", &out.to_string_lossy()]);
        if r.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the node never fetched {id}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// ffmpeg as a player: decodes `url` to nothing; whether it succeeded, and
/// what it printed at level `error` (nothing when every frame decoded).
fn decode(url: &str) -> (bool, String) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-nostdin", "-i", url])
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_transcoded_clip_has_three_keyframe_aligned_renditions_and_a_master_playlist() {
    if !ffmpeg_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    test_clip(&clip);

    let node = NodeProcess::start(dir.path(), free_port(), &["--no-mine"]);
    let r = node.cli(&[
        "stream",
        "publish",
        &clip.to_string_lossy(),
        "--transcode",
        "--title",
        "test card",
    ]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    let master_id = String::from_utf8_lossy(&r.stdout).trim().to_string();
    assert_eq!(master_id.len(), 64, "{master_id} / {stderr}");

    let master = String::from_utf8(read(&node, &master_id, dir.path())).unwrap();
    assert!(master.starts_with("#EXTM3U"), "{master}");
    for size in ["428x240", "640x360", "854x480"] {
        assert!(master.contains(&format!("RESOLUTION={size}")), "{master}");
    }
    let variants = uris(&master);
    assert_eq!(variants.len(), 3, "{master}");

    let mut ladders = Vec::new();
    for variant in variants {
        assert!(
            variant.starts_with("../") && variant.ends_with("/content"),
            "{variant}"
        );
        let playlist = String::from_utf8(read(&node, id_of(variant), dir.path())).unwrap();
        let segments = ladder::segments(&playlist);
        let media = uris(&playlist);
        assert!(
            !media.is_empty() && media.iter().all(|u| *u == media[0]),
            "{playlist}"
        );
        let ts = read(&node, id_of(media[0]), dir.path());
        // Every byte range lies in the file and starts on a TS packet.
        for &(_, offset, len) in &segments {
            let start = usize::try_from(offset).unwrap();
            assert!(
                start + usize::try_from(len).unwrap() <= ts.len(),
                "{playlist}"
            );
            assert_eq!(ts[start], 0x47, "segment at {offset} is not on a packet");
        }
        let path = dir.path().join(format!("{}.ts", id_of(media[0])));
        std::fs::write(&path, &ts).unwrap();
        ladders.push((segments, keyframes(&path)));
    }
    let (segments, keys) = &ladders[0];
    let total: f64 = segments.iter().map(|s| s.0).sum();
    assert!((5.5..=6.5).contains(&total), "{total} s in {segments:?}");
    // A keyframe every second (the source had one every 3 s).
    assert!(keys.len() >= 6, "{keys:?}");
    for (other_segments, other_keys) in &ladders[1..] {
        let durations = |s: &[(f64, u64, u64)]| s.iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(durations(other_segments), durations(segments));
        assert_eq!(other_keys, keys, "keyframes differ between renditions");
    }
}

/// One rendition of a live ladder as the node serves it: every segment seen
/// in its live playlist while the broadcast ran: bytes by sequence number.
type LiveSegments = BTreeMap<u64, Vec<u8>>;

/// Polls the live playlist `/media/<id>/live.m3u8` and fetches each new
/// segment.
fn collect_live(ui: &str, id: &str, into: &mut LiveSegments) {
    let (head, body) = http_get(ui, &format!("/media/{id}/live.m3u8"), "");
    if !head.starts_with("HTTP/1.1 200") {
        return; // no segment yet
    }
    let text = String::from_utf8(body).expect("a playlist is text");
    for line in text.lines() {
        if let Some(seq) = line
            .strip_prefix("live/")
            .and_then(|l| l.strip_suffix(".ts"))
        {
            let seq: u64 = seq.parse().expect("segment names are <seq>.ts");
            if into.contains_key(&seq) {
                continue;
            }
            let (head, bytes) = http_get(ui, &format!("/media/{id}/live/{seq}.ts"), "");
            if head.starts_with("HTTP/1.1 200") {
                into.insert(seq, bytes);
            }
        }
    }
}

#[test]
fn a_live_transcode_broadcasts_three_keyframe_aligned_renditions_under_a_master_playlist() {
    if !ffmpeg_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.ts");
    test_clip(&clip);
    let ui = format!("127.0.0.1:{}", free_port());
    let node = NodeProcess::start(dir.path(), free_port(), &["--no-mine", "--ui-bind", &ui]);
    // The input comes on stdin, as from a capture: the CLI reads ahead to
    // probe it and feeds ffmpeg the rest.
    let mut broadcast = node
        .command(&[
            "stream",
            "broadcast",
            "--live",
            "-",
            "--transcode",
            "--title",
            "live card",
        ])
        .stdin(std::fs::File::open(&clip).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The master playlist's id is printed before ffmpeg starts.
    let master_id = first_line(&mut broadcast);
    assert_eq!(master_id.len(), 64, "{master_id:?}");
    let (head, master) = http_get(&ui, &format!("/media/{master_id}/content"), "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let master = String::from_utf8(master).unwrap();
    for size in ["428x240", "640x360", "854x480"] {
        assert!(master.contains(&format!("RESOLUTION={size}")), "{master}");
    }
    let ids: Vec<String> = uris(&master)
        .iter()
        .map(|u| {
            assert!(u.starts_with("../") && u.ends_with("/live.m3u8"), "{u}");
            u.trim_start_matches("../")
                .trim_end_matches("/live.m3u8")
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 3, "{master}");

    let mut renditions: Vec<LiveSegments> = vec![LiveSegments::new(); 3];
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        for (id, seen) in ids.iter().zip(renditions.iter_mut()) {
            collect_live(&ui, id, seen);
        }
        if let Some(status) = broadcast.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the live transcode never ended");
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut broadcast.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    for (id, seen) in ids.iter().zip(renditions.iter_mut()) {
        collect_live(&ui, id, seen);
    }

    let mut keys = Vec::new();
    let mut starts = Vec::new();
    for (i, seen) in renditions.iter().enumerate() {
        assert!(
            seen.len() >= 5,
            "rendition {i}: {} segments; {stderr}",
            seen.len()
        );
        // Each segment decodes on its own: its first video frame is a
        // keyframe (the node cut before it); where it starts in media time
        // is what must line up across renditions.
        let mut at = Vec::new();
        for (seq, bytes) in seen {
            assert_eq!(bytes.first(), Some(&0x47), "rendition {i} segment {seq}");
            let path = dir.path().join(format!("live_{i}_{seq}.ts"));
            std::fs::write(&path, bytes).unwrap();
            let (pts, key) = first_frame(&path);
            assert!(
                key,
                "rendition {i} segment {seq} ({} bytes) starts with a frame that is not a keyframe (at {pts:?}); segments: {:?}",
                bytes.len(),
                seen.iter().map(|(q, b)| (*q, b.len())).collect::<Vec<_>>()
            );
            at.push(pts);
        }
        starts.push(at);
        let path = dir.path().join(format!("live_{i}.ts"));
        let joined: Vec<u8> = seen.values().flat_map(|b| b.iter().copied()).collect();
        std::fs::write(&path, joined).unwrap();
        keys.push(keyframes(&path));
        // The master playlist's CODECS say what the rendition is.
        let codecs = master
            .lines()
            .filter_map(|l| l.split("CODECS=\"").nth(1))
            .nth(i)
            .and_then(|c| c.split('"').next())
            .expect("CODECS on every variant");
        let level = u8::from_str_radix(&codecs[9..11], 16).expect("avc1.6400LL");
        assert!(
            codecs.starts_with("avc1.6400") && codecs.ends_with(",mp4a.40.2"),
            "{codecs}"
        );
        let probed = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=profile,level",
                "-of",
                "default=noprint_wrappers=1",
            ])
            .arg(&path)
            .output()
            .unwrap();
        let probed = String::from_utf8_lossy(&probed.stdout).into_owned();
        assert!(probed.contains("profile=High\n"), "rendition {i}: {probed}");
        assert!(
            probed.contains(&format!("level={level}\n")),
            "rendition {i} ({codecs}): {probed}"
        );
    }
    // The same keyframe times and segment starts in every rendition, so a
    // player can switch at any segment.
    for i in 1..3 {
        assert_eq!(keys[i], keys[0], "keyframes of rendition {i}");
        assert_eq!(starts[i], starts[0], "segment starts of rendition {i}");
    }
    assert!(keys[0].len() >= 5, "{:?}", keys[0]);
}

/// The first video frame of a TS file: its presentation time and whether
/// it is a keyframe.
fn first_frame(ts: &Path) -> (String, bool) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
        ])
        .args([
            "-show_entries",
            "frame=pts_time,key_frame",
            "-of",
            "csv=p=0",
        ])
        .arg(ts)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .trim_end_matches(',');
    let mut fields = line.split(',');
    let key = fields.next() == Some("1");
    (fields.next().unwrap_or_default().to_string(), key)
}

/// A viewer node plays a ladder published on another node through its own
/// ABR (`/media/<master>/abr.m3u8`): ffmpeg, as the player, decodes every
/// segment without an error, the node says which rendition each segment
/// came in, and it fetched only those segments (sparse downloads), not
/// whole renditions.
#[test]
fn a_viewer_node_chooses_renditions_for_a_player_and_fetches_only_those() {
    if !ffmpeg_present() {
        return;
    }
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clip = dir_a.path().join("clip.mp4");
    test_clip(&clip);
    let (a, b, ui) = publisher_and_viewer(dir_a.path(), dir_b.path());
    let r = a.cli(&["stream", "publish", &clip.to_string_lossy(), "--transcode"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let master = String::from_utf8_lossy(&r.stdout).trim().to_string();
    // The viewer learns the master playlist (a small file) as a user would.
    let master_copy = dir_b.path().join("master.m3u8");
    view_until_held(&b, &master, &master_copy, Duration::from_secs(60));

    let (ok, errors) = decode(&format!("http://{ui}/media/{master}/abr.m3u8"));
    assert!(ok, "ffmpeg: {errors}");
    assert!(
        errors.trim().is_empty(),
        "decode errors playing the node's ABR stream: {errors}"
    );

    let (head, body) = http_get(&ui, &format!("/api/v1/media/{master}/abr"), "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    eprintln!("the node's choices: {status}");
    let segments = status["segments"].as_u64().unwrap();
    assert!(segments >= 5, "{status}");
    assert_eq!(status["position"].as_u64(), Some(segments), "{status}");
    assert_eq!(status["rule"], "BOLA-E");
    let chosen = status["chosen"].as_array().unwrap();
    assert!(
        chosen.iter().all(|c| c.is_u64()),
        "a segment without a rendition: {status}"
    );
    let renditions = status["renditions"].as_array().unwrap();
    assert_eq!(renditions.len(), 3, "{status}");
    let fetched: u64 = renditions
        .iter()
        .map(|r| r["segments"].as_u64().unwrap())
        .sum();
    assert!(fetched >= segments, "{status}");
    // Sparse: what B holds of each rendition is what it fetched for the
    // player, give or take the 64 KiB chunks at each segment's ends.
    for r in renditions {
        let content = r["content"].as_str().unwrap();
        let held = b.json(&["stream", "status", content])["downloads"][0]["bytes_present"]
            .as_u64()
            .unwrap_or(0);
        let bytes = r["bytes"].as_u64().unwrap();
        let slack = r["segments"].as_u64().unwrap() * 2 * 64 * 1024;
        assert!(
            held <= bytes + slack,
            "B holds {held} bytes of {content} but fetched {bytes} for the player: {status}"
        );
    }

    // A player that chooses for itself gets the master capped to what B
    // measured: the lowest renditions of the original, as many as B's
    // status says it offers, and a real player plays what it names.
    let (head, body) = http_get(&ui, &format!("/media/{master}/master.m3u8"), "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let capped = String::from_utf8(body).unwrap();
    let original = std::fs::read_to_string(&master_copy).unwrap();
    let mut all = ladder::play::master_variants(&original).unwrap();
    let offered = ladder::play::master_variants(&capped).unwrap();
    assert!(!capped.contains("/content"), "{capped}");
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (_, body) = http_get(&ui, &format!("/api/v1/media/{master}/abr"), "");
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let n = status["offered"].as_u64().unwrap() as usize;
    assert!(n >= 1 && n <= all.len(), "{status}");
    let mut got: Vec<String> = offered
        .iter()
        .map(|v| v.2.replace("/index.m3u8", "/content"))
        .collect();
    let mut lowest: Vec<String> = all[..n].iter().map(|v| v.2.clone()).collect();
    got.sort_unstable();
    lowest.sort_unstable();
    assert_eq!(got, lowest, "offered:\n{capped}\nstatus: {status}");
    // Its URIs carry extensions (`index.m3u8`, `data.ts`): ffmpeg plays it
    // as it is, while it refuses the published playlists' extension-less
    // `../<id>/content` paths unless told not to be picky.
    let (ok, errors) = decode(&format!("http://{ui}/media/{master}/master.m3u8"));
    assert!(
        ok && errors.trim().is_empty(),
        "ffmpeg on the capped master: {errors}"
    );
}

/// A viewer node plays a live ladder broadcast on another node through its
/// own ABR (`/media/<master>/abr.m3u8`, a live playlist): ffmpeg, as the
/// player, follows the live playlist to its end and decodes every segment
/// without an error while the node switches renditions; the node follows
/// one rendition's broadcast at a time (two during a switch), so what it
/// downloaded is what it served plus the overlap of its switches.
#[test]
fn a_viewer_node_chooses_live_renditions_for_a_player_and_follows_one_at_a_time() {
    if !ffmpeg_present() {
        return;
    }
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clip = dir_a.path().join("clip.ts");
    test_clip_of(&clip, 14);
    let (a, b, ui) = publisher_and_viewer(dir_a.path(), dir_b.path());
    let mut broadcast = a
        .command(&[
            "stream",
            "broadcast",
            "--live",
            &clip.to_string_lossy(),
            "--transcode",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let master = first_line(&mut broadcast);
    assert_eq!(master.len(), 64, "{master:?}");
    // The viewer learns the master playlist (a small file) as a user would.
    let master_copy = dir_b.path().join("master.m3u8");
    view_until_held(&b, &master, &master_copy, Duration::from_secs(30));

    // ffmpeg plays the live playlist until the node ends it.
    let (ok, errors) = decode(&format!("http://{ui}/media/{master}/abr.m3u8"));
    let status = broadcast.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut broadcast.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "the broadcast: {stderr}");
    assert!(ok, "ffmpeg: {errors}");
    assert!(
        errors.trim().is_empty(),
        "decode errors playing the node's live ABR stream: {errors}"
    );

    let (head, body) = http_get(&ui, &format!("/api/v1/media/{master}/abr"), "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    eprintln!("the node's choices: {status}");
    assert_eq!(status["live"], true, "{status}");
    assert_eq!(status["rule"], "throughput", "{status}");
    let chosen: Vec<u64> = status["chosen"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_u64())
        .collect();
    assert!(chosen.len() >= 6, "{status}");
    // It starts at the lowest (nothing measured yet) and moves up once a
    // fetch over loopback has shown the link.
    assert_eq!(chosen.first(), Some(&0), "{status}");
    assert!(chosen.iter().any(|&r| r > 0), "never switched up: {status}");
    assert!(status["switches"].as_u64().unwrap() >= 1, "{status}");
    assert!(
        status["following"].as_array().unwrap().len() <= 1,
        "{status}"
    );
    // The player was served through the window's newest segment.
    let first = status["first_segment"].as_u64().unwrap();
    let position = status["position"].as_u64().unwrap();
    assert!(position >= first + chosen.len() as u64 - 1, "{status}");

    // What B downloaded: the segments it served, plus at most a few
    // segments per switch while two rungs were followed; never every rung.
    let renditions = status["renditions"].as_array().unwrap();
    let taken: u64 = renditions
        .iter()
        .map(|r| r["bytes"].as_u64().unwrap())
        .sum();
    let largest = renditions
        .iter()
        .map(|r| r["bytes"].as_u64().unwrap() / r["segments"].as_u64().unwrap().max(1))
        .max()
        .unwrap();
    let switches = status["switches"].as_u64().unwrap();
    let downloaded = b.json(&["stream", "status"])["service"]["downloaded_bytes"]
        .as_u64()
        .unwrap();
    assert!(
        downloaded <= taken + switches * 3 * largest + 64 * 1024,
        "B downloaded {downloaded} bytes for {taken} served: {status}"
    );

    // A player that chooses for itself gets the live master capped to what
    // B measured, its variants still the rungs' live playlists.
    let (head, body) = http_get(&ui, &format!("/media/{master}/master.m3u8"), "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let capped = String::from_utf8(body).unwrap();
    let offered = ladder::play::master_variants(&capped).unwrap();
    assert_eq!(
        offered.len() as u64,
        status["offered"].as_u64().unwrap(),
        "{capped}\n{status}"
    );
    assert!(
        offered.iter().all(|v| v.2.ends_with("/live.m3u8")),
        "{capped}"
    );
}

/// Sends SIGINT to `child` alone (not its process group, as a terminal's
/// Ctrl-C would: the CLI must pass it on to ffmpeg itself), then waits
/// for it to exit; its exit status and stderr.
fn interrupt(
    child: &mut std::process::Child,
    within: Duration,
) -> (std::process::ExitStatus, String) {
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(killed.success());
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "not stopped {within:?} after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr)
        .expect("stderr");
    (status, stderr)
}

/// The rendition ids of the live ladder `broadcast` started (its master
/// playlist's, read from `node`), once each has cut segment `min_seq`.
fn renditions_on_air(
    node: &NodeProcess,
    broadcast: &mut std::process::Child,
    dir: &Path,
    min_seq: u64,
) -> Vec<String> {
    let master_id = first_line(broadcast);
    assert_eq!(master_id.len(), 64, "{master_id:?}");
    let master = String::from_utf8(read(node, &master_id, dir)).expect("a playlist is text");
    let ids: Vec<String> = uris(&master)
        .iter()
        .map(|u| {
            u.trim_start_matches("../")
                .trim_end_matches("/live.m3u8")
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 3, "{master}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ids.iter().all(|id| {
        node.json(&["stream", "status", id])["live"][0]["last_seq"]
            .as_u64()
            .is_some_and(|s| s >= min_seq)
    }) {
        assert!(Instant::now() < deadline, "the renditions never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    ids
}

/// What is left in a scratch directory.
fn left_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("scratch directory")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn interrupting_a_live_transcode_ends_every_renditions_broadcast() {
    if !ffmpeg_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.ts");
    long_test_clip(&clip, 30);
    let scratch = dir.path().join("tmp");
    std::fs::create_dir(&scratch).unwrap();
    let node = NodeProcess::start(dir.path(), free_port(), &["--no-mine"]);
    let mut broadcast = node
        .command(&["stream", "broadcast", "--live"])
        .arg(&clip)
        .args(["--transcode", "--title", "interrupted card"])
        .env("TMPDIR", &scratch)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ids = renditions_on_air(&node, &mut broadcast, dir.path(), 2);
    let live = |id: &str| node.json(&["stream", "status", id])["live"][0].clone();
    let (status, stderr) = interrupt(&mut broadcast, Duration::from_secs(30));
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("interrupted: broadcasts ended"), "{stderr}");
    for id in &ids {
        assert_eq!(live(id)["ended"], true, "{id}: {}", live(id));
    }
    assert_eq!(
        left_in(&scratch),
        Vec::<String>::new(),
        "the scratch directory is removed"
    );
}

#[test]
fn interrupting_a_transcode_publishes_nothing_and_leaves_no_files() {
    if !ffmpeg_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    long_test_clip(&clip, 60);
    let scratch = dir.path().join("tmp");
    std::fs::create_dir(&scratch).unwrap();
    let node = NodeProcess::start(dir.path(), free_port(), &["--no-mine"]);
    let mut publish = node
        .command(&["stream", "publish"])
        .arg(&clip)
        .args(["--transcode", "--title", "interrupted"])
        .env("TMPDIR", &scratch)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // ffmpeg is at work once it has written into the scratch directory.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_dir(&scratch)
        .unwrap()
        .filter_map(Result::ok)
        .any(|d| std::fs::read_dir(d.path()).is_ok_and(|mut f| f.next().is_some()))
    {
        assert!(Instant::now() < deadline, "ffmpeg never started writing");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, stderr) = interrupt(&mut publish, Duration::from_secs(30));
    assert!(!status.success(), "an interrupted publish fails: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut publish.stdout.take().unwrap(), &mut stdout).unwrap();
    assert_eq!(stdout.trim(), "", "no master playlist id printed");
    assert_eq!(
        left_in(&scratch),
        Vec::<String>::new(),
        "ffmpeg's output is removed"
    );
}

#[test]
fn a_live_transcode_of_a_paced_pipe_starts_at_the_keyframe_it_read_ahead_to() {
    if !ffmpeg_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.ts");
    long_test_clip(&clip, 40);
    let node = NodeProcess::start(dir.path(), free_port(), &["--no-mine"]);
    // A live source: ffmpeg plays the clip out in real time into a pipe.
    let mut source = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(&clip)
        .args(["-c", "copy", "-f", "mpegts", "-"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut broadcast = node
        .command(&["stream", "broadcast", "--live", "-", "--transcode"])
        .stdin(source.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    renditions_on_air(&node, &mut broadcast, dir.path(), 1);
    let (status, stderr) = interrupt(&mut broadcast, Duration::from_secs(30));
    let _ = source.kill();
    let _ = source.wait();
    assert!(status.success(), "{status:?}: {stderr}");
    // The read-ahead before its last keyframe was skipped, not queued:
    // the clip's keyframes are 3 s apart, and 256 KiB of it is about 5 s.
    let said = stderr
        .lines()
        .find(|l| l.starts_with("joining the live input at its last keyframe read ahead"))
        .unwrap_or_else(|| panic!("no join reported: {stderr}"));
    assert!(!said.contains("(0 B of"), "nothing skipped: {said}");
}
