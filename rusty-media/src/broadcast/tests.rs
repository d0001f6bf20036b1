//! A stream's state without its task: seeding, shared segment bytes,
//! one fetch per announced segment, the viewer's end.

use std::{sync::Arc, time::Instant};

use rusty_crypto::ed25519::SecretKey;
use rusty_network::PeerId;
use rusty_shared_types::Hash256;

use super::{state::State, task::Served, Role, SEED_HOLD};
use crate::wire::SegmentAnnouncement;

fn segment(key: &SecretKey, id: Hash256, seq: u64) -> (SegmentAnnouncement, Arc<[u8]>) {
    lasting(key, id, seq, 500)
}

fn lasting(
    key: &SecretKey,
    id: Hash256,
    seq: u64,
    duration_ms: u32,
) -> (SegmentAnnouncement, Arc<[u8]>) {
    let data = vec![0x47; 1_000];
    let ann = SegmentAnnouncement::sign(key, id, seq, &data, 0, duration_ms).expect("signs");
    (ann, data.into())
}

/// The playlist's target duration follows the longest segment played, and
/// stays there after that segment has left the window.
#[test]
fn the_longest_segment_played_outlives_the_window() {
    let key = SecretKey::generate();
    let id = Hash256([9; 32]);
    let mut s = State::new(id, Role::Broadcaster);
    let (ann, data) = lasting(&key, id, 0, 2_000);
    s.hold(ann, data, 0, 0);
    for seq in 1..=super::WINDOW as u64 + 1 {
        let (ann, data) = segment(&key, id, seq);
        s.hold(ann, data, 0, 0);
    }
    assert!(s.window().iter().all(|&(seq, ms)| seq > 0 && ms == 500));
    assert_eq!(s.longest_ms(), 2_000);
    let window = crate::http::LiveWindow {
        segments: s.window(),
        longest_ms: s.longest_ms(),
        ..Default::default()
    };
    let playlist = crate::http::hls_playlist(&window).expect("a playlist");
    assert!(playlist.contains("#EXT-X-TARGETDURATION:2\n"), "{playlist}");
}

#[test]
fn a_broadcaster_seeds_a_fresh_segment_to_one_watcher_and_serves_a_handle() {
    let key = SecretKey::generate();
    let id = Hash256([7; 32]);
    let mut s = State::new(id, Role::Broadcaster);
    let (a, b) = (PeerId::random(), PeerId::random());
    let now = Instant::now();
    s.add_watcher(a, now);
    s.add_watcher(b, now);
    let (ann, data) = segment(&key, id, 0);
    s.hold(ann, data.clone(), 0, 0);
    assert_eq!(s.window(), vec![(0, 500)]);
    assert_eq!(s.longest_ms(), 500);

    // The first asker gets it: the held bytes themselves, not a copy.
    let Served::Segment { data: got, .. } = s.serve(0, a, Instant::now()) else {
        panic!("the first asker is served");
    };
    assert!(Arc::ptr_eq(&got, &data));
    assert!(s.segment(0).is_some_and(|d| Arc::ptr_eq(&d, &data)));
    // While it is fresh, the others are sent to that one; later, served.
    assert!(matches!(s.serve(0, b, Instant::now()), Served::Busy));
    let later = Instant::now() + SEED_HOLD;
    assert!(matches!(s.serve(0, b, later), Served::Segment { .. }));
    assert!(matches!(s.serve(1, b, later), Served::NotFound));
}

#[test]
fn a_viewer_fetches_an_announced_segment_once_and_ends_after_the_last() {
    let key = SecretKey::generate();
    let id = Hash256([8; 32]);
    let mut s = State::new(id, Role::Viewer);
    let w = PeerId::random();
    let now = Instant::now();
    s.add_watcher(w, now);

    assert!(s.want(0));
    assert!(!s.want(0), "one fetch per segment");
    assert_eq!(s.fetch_peers(0), Some(vec![w]));
    let (ann, data) = segment(&key, id, 0);
    s.hold(ann, data, 7, 1_000);
    let played: Vec<(u64, u64)> = s
        .played_from(0, 16)
        .iter()
        .map(|p| (p.seq, p.fetch_ms))
        .collect();
    assert_eq!(played, [(0, 7)], "played, with how long its fetch took");
    assert_eq!(s.latencies().max(), Some(1_000));
    // Played: no new fetch, and a fetch still running stops.
    assert!(!s.want(0));
    assert_eq!(s.fetch_peers(0), None);

    assert!(!s.tick(now, 1_000).finished);
    s.on_end(Some(0), now);
    assert!(s.tick(now, 1_000).finished, "segment 0 was the last");
}

/// A skipped segment never comes: the playlist moves past it at once
/// instead of stopping before it until the older segments leave the
/// window.
#[test]
fn a_viewers_playlist_goes_on_after_a_skipped_segment() {
    let key = SecretKey::generate();
    let id = Hash256([9; 32]);
    let mut s = State::new(id, Role::Viewer);
    let now = Instant::now();
    for seq in [0, 1, 3] {
        let (ann, data) = segment(&key, id, seq);
        s.hold(ann, data, 0, 1_000);
    }
    let listed = |s: &State| s.window().iter().map(|w| w.0).collect::<Vec<_>>();
    assert_eq!(listed(&s), [0, 1], "3 waits for 2");
    // 2 does not come in time: skipped, and 3 plays.
    s.tick(now, 1_000 + super::JITTER_MAX_WAIT_MS + 1);
    assert_eq!(listed(&s), [3]);
    for seq in 4..=6 {
        let (ann, data) = segment(&key, id, seq);
        s.hold(ann, data, 0, 4_000);
    }
    assert_eq!(listed(&s), [3, 4, 5, 6]);
    let window = crate::http::LiveWindow {
        segments: s.window(),
        ..Default::default()
    };
    let playlist = crate::http::hls_playlist(&window).expect("a playlist");
    assert!(playlist.contains("#EXT-X-MEDIA-SEQUENCE:3\n"), "{playlist}");
    assert!(playlist.contains("live/6.ts"), "{playlist}");
    // The segments before the gap are still served to whoever asks.
    assert!(s.segment(1).is_some());
}

/// A segment cut inside a group of pictures larger than a segment is no
/// place for a player to start: when one is near the end, where players
/// start, the playlist points them at the newest that is (which segments
/// are is `live::ts::joinable`'s to tell, tested there against ffmpeg's
/// decoder). The playlist itself only slides, as HLS requires.
#[test]
fn a_playlist_points_players_at_a_segment_they_can_join() {
    let key = SecretKey::generate();
    let id = Hash256([5; 32]);
    // One MPEG-TS packet of a stream's middle: no tables before it.
    let mut rough = vec![0u8; crate::live::TS_PACKET_LEN];
    rough[..4].copy_from_slice(&[0x47, 0x01, 0x00, 0x10]);
    let hold = |s: &mut State, seq: u64, data: &[u8]| {
        let ann = SegmentAnnouncement::sign(&key, id, seq, data, 0, 500).expect("signs");
        s.hold(ann, data.into(), 0, 0);
    };
    let listed = |s: &State| s.window().iter().map(|w| w.0).collect::<Vec<_>>();
    let mut s = State::new(id, Role::Broadcaster);
    hold(&mut s, 0, &rough);
    hold(&mut s, 1, &rough);
    // Nothing joinable yet: nothing to point at.
    assert_eq!(listed(&s), [0, 1]);
    assert_eq!(s.join_at(), None);
    let (_, joinable) = segment(&key, id, 2);
    hold(&mut s, 2, &joinable);
    hold(&mut s, 3, &rough);
    assert_eq!(listed(&s), [0, 1, 2, 3]);
    assert_eq!(s.join_at(), Some(2));
    let window = crate::http::LiveWindow {
        segments: s.window(),
        start: s.join_at(),
        ..Default::default()
    };
    let playlist = crate::http::hls_playlist(&window).expect("a playlist");
    assert!(playlist.contains("#EXT-X-MEDIA-SEQUENCE:0\n"), "{playlist}");
    assert!(
        playlist.contains("#EXT-X-START:TIME-OFFSET=-1.000,PRECISE=YES\n"),
        "{playlist}"
    );
    // Three joinable at the end: players start where they like.
    for seq in 4..=6 {
        let (_, joinable) = segment(&key, id, seq);
        hold(&mut s, seq, &joinable);
    }
    assert_eq!(s.join_at(), None);
}
