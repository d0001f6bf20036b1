//! `rusty-cli stream publish --transcode` with the system's ffmpeg: a 6 s
//! test-source clip (854×480, a 3 s GOP of its own) becomes three
//! renditions whose keyframes and segments line up, tied by a master
//! playlist, all published on a real node and read back from it.

use std::{path::Path, process::Command};

use rusty_media::ladder;

use crate::harness::{free_port, NodeProcess};

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

#[test]
fn a_transcoded_clip_has_three_keyframe_aligned_renditions_and_a_master_playlist() {
    if !have("ffmpeg") || !have("ffprobe") {
        eprintln!(
            "SKIPPED: ffmpeg/ffprobe are not installed (make test installs them via scripts/install-deps.sh)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    let made = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=854x480:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t", "6", "-c:v", "libx264", "-g", "90", "-pix_fmt", "yuv420p",
        ])
        .args(["-c:a", "aac", "-shortest"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(made.success());

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
