//! Unit tests of `live`.

use proptest::prelude::*;

use super::*;

fn cfg(target_ms: u32, max_bytes: usize) -> SegmenterConfig {
    SegmenterConfig {
        target_ms,
        max_bytes,
    }
}

/// Raw (non-TS) bytes.
fn raw(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 200) as u8 + 1).collect()
}

/// `packets` MPEG-TS packets, each starting with the sync byte and
/// numbered in its second byte.
fn ts(packets: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(packets * TS_PACKET_LEN);
    for p in 0..packets {
        out.push(TS_SYNC_BYTE);
        out.extend((1..TS_PACKET_LEN).map(|i| (p + i) as u8));
    }
    out
}

fn concat(segs: &[CutSegment]) -> Vec<u8> {
    segs.iter().flat_map(|s| s.data.iter().copied()).collect()
}

#[test]
fn defaults() {
    let c = SegmenterConfig::default();
    assert_eq!(c.target_ms, 500);
    assert_eq!(c.max_bytes, MAX_SEGMENT_BYTES);
    let s = Segmenter::new(c);
    assert_eq!(s.next_seq(), 0);
    assert_eq!(s.format(), InputFormat::Detecting);
    assert_eq!(s.pending_bytes(), 0);
}

#[test]
fn cuts_by_time() {
    let mut s = Segmenter::new(cfg(500, 1 << 20));
    assert!(s.tick(0).is_none(), "nothing pending");
    assert!(s.push(&raw(100), 1000).is_empty());
    assert_eq!(s.format(), InputFormat::Raw);
    assert!(s.tick(1200).is_none());
    assert!(s.push(&raw(50), 1300).is_empty());
    assert!(s.tick(1499).is_none());
    let a = s.tick(1500).expect("500 ms after the first byte");
    assert_eq!(a.seq, 0);
    assert_eq!(a.data, [raw(100), raw(50)].concat());
    assert_eq!(a.captured_ms, 1000);
    assert_eq!(a.duration_ms, 500);
    assert!(s.tick(2500).is_none(), "nothing pending");

    // The next bytes come right away: the segment starts at the cut.
    s.push(&raw(10), 1500);
    assert!(s.tick(1999).is_none());
    let b = s.tick(2003).expect("due");
    assert_eq!((b.seq, b.captured_ms, b.duration_ms), (1, 1500, 503));

    // After a pause, the segment starts at its first byte.
    s.push(&raw(10), 5000);
    assert!(s.tick(5400).is_none());
    let c = s.tick(5600).expect("due");
    assert_eq!((c.seq, c.captured_ms, c.duration_ms), (2, 5000, 600));
    assert_eq!(s.next_seq(), 3);
}

#[test]
fn cuts_by_size() {
    let mut s = Segmenter::new(cfg(10_000, 1000));
    assert!(s.push(&raw(999), 0).is_empty());
    let cut = s.push(&raw(1), 10);
    assert_eq!(cut.len(), 1);
    assert_eq!(cut[0].data.len(), 1000);
    assert_eq!(cut[0].captured_ms, 0);
    assert_eq!(cut[0].duration_ms, 10);
    assert_eq!(s.pending_bytes(), 0);

    // One large push: several segments and a remainder.
    let input = raw(3500);
    let cut = s.push(&input, 20);
    assert_eq!(cut.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(cut
        .iter()
        .all(|c| c.data.len() == 1000 && c.captured_ms == 20));
    // All read at once: each covers no wall time, so the 1 ms floor.
    assert!(cut.iter().all(|c| c.duration_ms == 1));
    assert_eq!(s.pending_bytes(), 500);
    let last = s.finish(30).expect("remainder");
    assert_eq!(last.seq, 4);
    let mut all = concat(&cut);
    all.extend_from_slice(&last.data);
    assert_eq!(all, input);
    assert!(s.finish(40).is_none());

    // max_bytes is clamped to what a segment may hold.
    let mut s = Segmenter::new(cfg(500, usize::MAX));
    let cut = s.push(&raw(MAX_SEGMENT_BYTES + 1), 0);
    assert_eq!(cut.len(), 1);
    assert_eq!(cut[0].data.len(), MAX_SEGMENT_BYTES);
    let mut s = Segmenter::new(cfg(500, 0));
    assert_eq!(s.push(&raw(3), 0).len(), 3);
}

#[test]
fn mpeg_ts_cuts_on_packet_boundaries() {
    let input = ts(20);
    // 1000 bytes: 5 packets (940 bytes) per size cut.
    let mut s = Segmenter::new(cfg(500, 1000));
    let mut cut = Vec::new();
    // Fed in awkward pieces.
    for (i, piece) in input.chunks(77).enumerate() {
        cut.extend(s.push(piece, i as u64));
    }
    assert_eq!(s.format(), InputFormat::MpegTs);
    assert_eq!(cut.len(), 4);
    for c in &cut {
        assert_eq!(c.data.len(), 5 * TS_PACKET_LEN);
        assert_eq!(c.data[0], TS_SYNC_BYTE);
    }
    assert_eq!(concat(&cut), input);

    // Time cuts keep the partial packet for the next segment.
    let mut s = Segmenter::new(cfg(500, 1 << 20));
    s.push(&input[..3 * TS_PACKET_LEN + 50], 1000);
    s.push(&input[3 * TS_PACKET_LEN + 50..4 * TS_PACKET_LEN + 10], 1200);
    let a = s.tick(1500).expect("due");
    assert_eq!(a.data.len(), 4 * TS_PACKET_LEN);
    assert_eq!(a.captured_ms, 1000);
    assert_eq!(s.pending_bytes(), 10);
    // The remainder's first byte was read at 1200, but its media time
    // starts at the cut.
    assert!(s.tick(1999).is_none());
    let too_small = s.tick(2000);
    assert!(too_small.is_none(), "less than one packet pending");
    s.push(&input[4 * TS_PACKET_LEN + 10..6 * TS_PACKET_LEN + 20], 2100);
    let b = s.tick(2100).expect("due");
    assert_eq!(b.data.len(), 2 * TS_PACKET_LEN);
    assert_eq!(b.data[0], TS_SYNC_BYTE);
    assert_eq!((b.captured_ms, b.duration_ms), (1200, 600));
    assert_eq!(s.pending_bytes(), 20);
    let c = s.finish(2200).expect("the partial packet");
    assert_eq!(c.data.len(), 20);
    assert_eq!(c.captured_ms, 2100);
    assert_eq!(
        [a.data, b.data, c.data].concat(),
        input[..6 * TS_PACKET_LEN + 20]
    );
}

#[test]
fn ts_remainder_capture_time_from_the_right_push() {
    let input = ts(3);
    let mut s = Segmenter::new(cfg(100, 1 << 20));
    // Many small pushes at distinct times: byte i read at time 1000 + i.
    for (i, b) in input[..TS_PACKET_LEN + 30].iter().enumerate() {
        s.push(std::slice::from_ref(b), 1000 + i as u64);
    }
    let a = s.tick(5000).expect("due");
    assert_eq!(a.captured_ms, 1000);
    assert_eq!(a.data.len(), TS_PACKET_LEN);
    // The remainder starts with byte 188, read at 1188.
    let b = s.finish(5001).expect("remainder");
    assert_eq!(b.captured_ms, 1000 + TS_PACKET_LEN as u64);
    assert_eq!(b.data.len(), 30);
    // Marks stay bounded however many pushes there are.
    let mut s = Segmenter::new(cfg(100, 1 << 20));
    for (i, b) in ts(200).iter().enumerate() {
        s.push(std::slice::from_ref(b), i as u64);
        assert!(s.marks.len() <= TS_PACKET_LEN + 1);
    }
    let mut s = Segmenter::new(cfg(100, 1 << 20));
    for (i, b) in raw(1000).iter().enumerate() {
        s.push(std::slice::from_ref(b), i as u64);
        assert!(s.marks.len() <= 1);
    }
}

#[test]
fn format_detection() {
    // Not starting with the sync byte: raw at once.
    let mut s = Segmenter::new(SegmenterConfig::default());
    s.push(&[0x00], 0);
    assert_eq!(s.format(), InputFormat::Raw);

    // Sync byte at 0 but not at 188: raw.
    let mut bytes = ts(5);
    bytes[TS_PACKET_LEN] = 0;
    let mut s = Segmenter::new(SegmenterConfig::default());
    s.push(&bytes[..100], 0);
    assert_eq!(s.format(), InputFormat::Detecting);
    s.push(&bytes[100..], 0);
    assert_eq!(s.format(), InputFormat::Raw);

    // Broken at the last checked packet.
    let mut bytes = ts(5);
    bytes[3 * TS_PACKET_LEN] = 0;
    let mut s = Segmenter::new(SegmenterConfig::default());
    s.push(&bytes, 0);
    assert_eq!(s.format(), InputFormat::Raw);

    // Confirmed once TS_DETECT_PACKETS sync bytes were seen.
    let bytes = ts(5);
    let mut s = Segmenter::new(SegmenterConfig::default());
    s.push(&bytes[..3 * TS_PACKET_LEN], 0);
    assert_eq!(s.format(), InputFormat::Detecting);
    s.push(&bytes[3 * TS_PACKET_LEN..3 * TS_PACKET_LEN + 1], 0);
    assert_eq!(s.format(), InputFormat::MpegTs);
    // Later packets are not checked again.
    s.push(&raw(1000), 0);
    assert_eq!(s.format(), InputFormat::MpegTs);

    // A raw stream with a tiny max_bytes that starts like TS: cut at a
    // packet while detecting, then at max_bytes once it is raw.
    let mut bytes = ts(3);
    bytes[2 * TS_PACKET_LEN] = 0;
    let mut s = Segmenter::new(cfg(500, 100));
    let cut = s.push(&bytes, 0);
    assert_eq!(s.format(), InputFormat::Raw);
    assert!(cut.iter().all(|c| c.data.len() <= TS_PACKET_LEN));
    let mut all = concat(&cut);
    all.extend(s.finish(1).map(|c| c.data).unwrap_or_default());
    assert_eq!(all, bytes);
    // And a real TS stream with max_bytes under a packet: one packet per
    // segment.
    let mut s = Segmenter::new(cfg(500, 100));
    let cut = s.push(&ts(4), 0);
    assert_eq!(cut.len(), 4);
    assert!(cut.iter().all(|c| c.data.len() == TS_PACKET_LEN));
}

#[test]
fn durations_are_clamped_and_clock_may_go_back() {
    let mut s = Segmenter::new(cfg(500, 1 << 20));
    s.push(&raw(5), 1000);
    let a = s.finish(1000).expect("cut");
    assert_eq!(a.duration_ms, 1, "at least 1 ms");
    s.push(&raw(5), 2000);
    let b = s.tick(200_000).expect("due");
    assert_eq!(b.duration_ms, MAX_SEGMENT_DURATION_MS);
    // The clock goes backwards: no panic, durations stay valid.
    s.push(&raw(5), 100);
    assert!(s.tick(50).is_none());
    let c = s.finish(10).expect("cut");
    assert_eq!(c.duration_ms, 1);
    assert_eq!(c.captured_ms, 100);
    assert!(s.push(&[], 5).is_empty());
    assert!(s.finish(5).is_none());
}

proptest! {
    /// Whatever the input and the cut schedule, the segments put back
    /// together are the input, each is within limits, sequence numbers
    /// run 0, 1, 2, ... and TS segments are whole packets.
    #[test]
    fn segments_reassemble_the_input(
        is_ts in any::<bool>(),
        packets in 0usize..40,
        pieces in proptest::collection::vec((1usize..700, 0u64..400, any::<bool>()), 1..60),
        max_bytes in 1usize..3000,
        target_ms in 0u32..1000,
    ) {
        let input = if is_ts { ts(packets) } else { raw(packets * TS_PACKET_LEN) };
        let mut s = Segmenter::new(cfg(target_ms, max_bytes));
        let mut now = 0u64;
        let mut out = Vec::new();
        let mut at = 0;
        for (len, dt, tick) in pieces {
            let end = (at + len).min(input.len());
            now += dt;
            out.extend(s.push(&input[at..end], now));
            at = end;
            if tick {
                out.extend(s.tick(now));
            }
        }
        out.extend(s.push(&input[at..], now));
        out.extend(s.finish(now + 1));
        prop_assert_eq!(concat(&out), input.clone());
        let limit = if is_ts && packets >= TS_DETECT_PACKETS as usize {
            (max_bytes / TS_PACKET_LEN * TS_PACKET_LEN).max(TS_PACKET_LEN)
        } else {
            max_bytes.max(TS_PACKET_LEN)
        };
        let last = out.len().saturating_sub(1);
        for (i, c) in out.iter().enumerate() {
            prop_assert_eq!(c.seq, i as u64);
            prop_assert!(!c.data.is_empty());
            prop_assert!(c.data.len() <= limit);
            prop_assert!((1..=MAX_SEGMENT_DURATION_MS).contains(&c.duration_ms));
            prop_assert!(c.captured_ms <= now);
            if is_ts && i < last {
                prop_assert_eq!(c.data.len() % TS_PACKET_LEN, 0);
            }
        }
        for w in out.windows(2) {
            prop_assert!(w[0].captured_ms <= w[1].captured_ms);
        }
    }
}

// ---- Jitter buffer ----

fn seg(seq: u64) -> Vec<u8> {
    vec![seq as u8; 10 + (seq % 5) as usize]
}

fn played(out: &[Popped]) -> Vec<u64> {
    out.iter()
        .filter_map(|p| match p {
            Popped::Segment { seq, .. } => Some(*seq),
            Popped::Skipped { .. } => None,
        })
        .collect()
}

#[test]
fn reorders() {
    let mut jb = JitterBuffer::new(10, 1000);
    assert_eq!(jb.next_seq(), None);
    assert!(jb.pop_ready(0).is_empty());
    jb.insert(5, seg(5), 0, 0).expect("first");
    assert_eq!(jb.next_seq(), Some(5));
    jb.insert(7, seg(7), 0, 10).expect("ahead");
    jb.insert(6, seg(6), 0, 20).expect("ahead");
    assert_eq!(jb.buffered(), 3);
    assert_eq!(
        jb.buffered_bytes(),
        seg(5).len() + seg(6).len() + seg(7).len()
    );
    let out = jb.pop_ready(30);
    assert_eq!(played(&out), [5, 6, 7]);
    assert_eq!(
        out[1],
        Popped::Segment {
            seq: 6,
            data: seg(6),
            latency_ms: 30
        }
    );
    assert_eq!(jb.next_seq(), Some(8));
    assert_eq!(jb.buffered(), 0);
    assert_eq!(jb.buffered_bytes(), 0);
    assert!(jb.pop_ready(40).is_empty());
}

#[test]
fn holds_for_a_gap_then_skips_it() {
    let mut jb = JitterBuffer::new(10, 1000);
    jb.insert(0, seg(0), 0, 0).expect("insert");
    jb.insert(2, seg(2), 0, 100).expect("insert");
    jb.insert(3, seg(3), 0, 300).expect("insert");
    assert_eq!(played(&jb.pop_ready(100)), [0]);
    // Segment 1 is missing: 2 and 3 wait.
    assert!(jb.pop_ready(1099).is_empty());
    assert_eq!(jb.buffered(), 2);
    // A late 1 within the wait is played in order.
    let mut late = jb.clone();
    late.insert(1, seg(1), 0, 1050).expect("late but in time");
    assert_eq!(played(&late.pop_ready(1050)), [1, 2, 3]);
    // Otherwise 1 is skipped max_wait after 2 arrived.
    let out = jb.pop_ready(1100);
    assert_eq!(out[0], Popped::Skipped { from: 1, to: 2 });
    assert_eq!(played(&out), [2, 3]);
    assert_eq!(jb.next_seq(), Some(4));
    // 1 arriving now is refused as skipped.
    assert_eq!(
        jb.insert(1, seg(1), 0, 1200),
        Err(JitterError::AlreadySkipped { seq: 1, next: 4 })
    );
}

#[test]
fn gap_age_counts_from_the_oldest_segment_it_holds_back() {
    let mut jb = JitterBuffer::new(10, 1000);
    jb.insert(0, seg(0), 0, 0).expect("insert");
    // 1 and 3 are lost; 2 arrives at 100, 4 at 900.
    jb.insert(2, seg(2), 0, 100).expect("insert");
    jb.insert(4, seg(4), 0, 900).expect("insert");
    assert_eq!(played(&jb.pop_ready(500)), [0]);
    // At 1100 gap 1 is 1000 ms old (2 arrived at 100); gap 3 is only
    // 200 ms old (4 arrived at 900).
    let out = jb.pop_ready(1100);
    assert_eq!(
        out.iter()
            .map(|p| match p {
                Popped::Segment { seq, .. } => format!("play {seq}"),
                Popped::Skipped { from, to } => format!("skip {from}..{to}"),
            })
            .collect::<Vec<_>>(),
        ["skip 1..2", "play 2"]
    );
    assert!(jb.pop_ready(1899).is_empty());
    let out = jb.pop_ready(1900);
    assert_eq!(out[0], Popped::Skipped { from: 3, to: 4 });
    assert_eq!(played(&out), [4]);

    // But a gap behind an older segment waits no longer than that one.
    let mut jb = JitterBuffer::new(10, 1000);
    jb.insert(0, seg(0), 0, 0).expect("insert");
    jb.insert(4, seg(4), 0, 100).expect("insert");
    jb.insert(2, seg(2), 0, 900).expect("insert");
    jb.pop_ready(0);
    let out = jb.pop_ready(1100);
    assert_eq!(
        out,
        vec![
            Popped::Skipped { from: 1, to: 2 },
            Popped::Segment {
                seq: 2,
                data: seg(2),
                latency_ms: 1100
            },
            Popped::Skipped { from: 3, to: 4 },
            Popped::Segment {
                seq: 4,
                data: seg(4),
                latency_ms: 1100
            },
        ]
    );
}

#[test]
fn a_gap_with_nothing_after_it_waits() {
    let mut jb = JitterBuffer::new(10, 100);
    jb.insert(0, seg(0), 0, 0).expect("insert");
    jb.pop_ready(0);
    jb.note_newest(3);
    // Nothing to play after the gap: skipping would gain nothing.
    assert!(jb.pop_ready(10_000).is_empty());
    assert_eq!(jb.next_seq(), Some(1));
}

#[test]
fn skips_when_too_far_behind() {
    let mut jb = JitterBuffer::new(3, 60_000);
    jb.insert(10, seg(10), 0, 0).expect("insert");
    jb.insert(12, seg(12), 0, 0).expect("insert");
    assert_eq!(played(&jb.pop_ready(0)), [10]);
    // The live edge moves to 20: playback (at 11) is 9 behind, more than
    // the window of 3.
    assert_eq!(
        jb.insert(20, seg(20), 0, 10),
        Err(JitterError::TooFarAhead {
            seq: 20,
            next: 11,
            window: 3
        })
    );
    assert_eq!(jb.newest_seq(), Some(20));
    let out = jb.pop_ready(20);
    // The gap at 11 is skipped at once; 12, which arrived, is played;
    // then the buffer jumps to within the window of 20.
    assert_eq!(
        out,
        vec![
            Popped::Skipped { from: 11, to: 12 },
            Popped::Segment {
                seq: 12,
                data: seg(12),
                latency_ms: 20
            },
            Popped::Skipped { from: 13, to: 17 },
        ]
    );
    assert_eq!(jb.next_seq(), Some(17));
    // Now 20 fits.
    jb.insert(20, seg(20), 0, 30).expect("within the window");
    jb.insert(17, seg(17), 0, 30).expect("insert");
    assert_eq!(played(&jb.pop_ready(30)), [17]);

    // An announcement heard without data moves the edge too.
    let mut jb = JitterBuffer::new(5, 60_000);
    jb.insert(0, seg(0), 0, 0).expect("insert");
    jb.pop_ready(0);
    jb.note_newest(100);
    assert_eq!(jb.pop_ready(1), vec![Popped::Skipped { from: 1, to: 95 }]);
    jb.note_newest(50);
    assert_eq!(jb.newest_seq(), Some(100));
}

#[test]
fn refuses_duplicates_stale_and_future() {
    let mut jb = JitterBuffer::new(4, 100);
    jb.insert(10, seg(10), 0, 0).expect("insert");
    assert_eq!(
        jb.insert(10, seg(10), 0, 0),
        Err(JitterError::Duplicate { seq: 10 })
    );
    assert_eq!(
        jb.insert(9, seg(9), 0, 0),
        Err(JitterError::BeforeStart { seq: 9, start: 10 })
    );
    jb.insert(14, seg(14), 0, 0).expect("exactly window ahead");
    assert_eq!(
        jb.insert(15, seg(15), 0, 0),
        Err(JitterError::TooFarAhead {
            seq: 15,
            next: 10,
            window: 4
        })
    );
    // A refused far-future segment still moves the live edge (callers
    // insert only creator-verified segments).
    let mut far = jb.clone();
    assert_eq!(
        far.insert(u64::MAX, seg(0), 0, 0),
        Err(JitterError::TooFarAhead {
            seq: u64::MAX,
            next: 10,
            window: 4
        })
    );
    assert_eq!(played(&far.pop_ready(0)), [10, 14]);
    assert_eq!(far.next_seq(), Some(u64::MAX - 4));
    assert_eq!(played(&jb.pop_ready(0)), [10]);
    assert_eq!(
        jb.insert(10, seg(10), 0, 0),
        Err(JitterError::AlreadyPlayed { seq: 10, next: 11 })
    );
    let e = JitterError::AlreadyPlayed { seq: 10, next: 11 };
    assert!(e.is_late());
    assert!(e.to_string().contains("already played"));
    assert!(!JitterError::Duplicate { seq: 1 }.is_late());
    assert!(JitterError::TooFarAhead {
        seq: 1,
        next: 0,
        window: 0
    }
    .to_string()
    .contains("ahead"));
    // Refusals change nothing held.
    assert_eq!(jb.buffered(), 1);
    assert_eq!(jb.buffered_bytes(), seg(14).len());
}

#[test]
fn forgets_old_skips_but_says_so() {
    let mut jb = JitterBuffer::new(2, 0);
    jb.insert(0, seg(0), 0, 0).expect("insert");
    // Every odd segment lost: one skip per pair.
    let mut seq = 2;
    while jb.skips.len() < MAX_REMEMBERED_SKIPS || jb.forgotten_below == 0 {
        jb.insert(seq, seg(seq), 0, 0).expect("insert");
        jb.pop_ready(0);
        seq += 2;
    }
    assert_eq!(jb.skips.len(), MAX_REMEMBERED_SKIPS);
    assert!(matches!(
        jb.insert(1, seg(1), 0, 0),
        Err(JitterError::LongPast { seq: 1, .. })
    ));
    assert!(matches!(
        jb.insert(seq - 3, seg(0), 0, 0),
        Err(JitterError::AlreadySkipped { .. })
    ));
    assert!(matches!(
        jb.insert(seq - 2, seg(0), 0, 0),
        Err(JitterError::AlreadyPlayed { .. })
    ));
}

#[test]
fn latency_saturates() {
    let mut jb = JitterBuffer::new(4, 100);
    jb.insert(0, seg(0), 5000, 0).expect("insert");
    jb.insert(1, seg(1), 1000, 0).expect("insert");
    let out = jb.pop_ready(2000);
    let lat: Vec<u64> = out
        .iter()
        .filter_map(|p| match p {
            Popped::Segment { latency_ms, .. } => Some(*latency_ms),
            Popped::Skipped { .. } => None,
        })
        .collect();
    assert_eq!(lat, [0, 1000]);
    let s = format!("{:?}", out[0]);
    assert!(s.contains("len: 10") && !s.contains("[0, 0"), "{s}");
    assert!(format!("{jb:?}").contains("next: Some(2)"));
}

#[test]
fn seq_at_the_end_of_the_range() {
    let mut jb = JitterBuffer::new(4, 100);
    jb.insert(u64::MAX - 1, seg(0), 0, 0).expect("insert");
    jb.insert(u64::MAX, seg(0), 0, 0).expect("insert");
    assert_eq!(played(&jb.pop_ready(0)), [u64::MAX - 1, u64::MAX]);
    assert!(jb.pop_ready(0).is_empty());
}

#[test]
fn latency_stats() {
    let mut s = LatencyStats::new();
    assert_eq!(s.count(), 0);
    assert_eq!(s.percentile(50.0), None);
    assert_eq!(s.max(), None);
    assert_eq!(s.mean(), None);
    for v in [15, 20, 35, 40, 50] {
        s.record(v);
    }
    // The classic nearest-rank example.
    assert_eq!(s.percentile(5.0), Some(15));
    assert_eq!(s.percentile(30.0), Some(20));
    assert_eq!(s.percentile(40.0), Some(20));
    assert_eq!(s.percentile(50.0), Some(35));
    assert_eq!(s.percentile(100.0), Some(50));
    assert_eq!(s.percentile(0.0), Some(15));
    assert_eq!(s.p50(), Some(35));
    assert_eq!(s.max(), Some(50));
    assert_eq!(s.mean(), Some(32.0));
    assert_eq!(s.count(), 5);
    for p in [-1.0, 100.1, f64::NAN, f64::INFINITY] {
        assert_eq!(s.percentile(p), None, "{p}");
    }
    // p95 of 1..=20 is 19 (rank 19 exactly), of 1..=100 is 95.
    let mut s = LatencyStats::new();
    for v in (1..=20).rev() {
        s.record(v);
    }
    assert_eq!(s.p95(), Some(19));
    let mut s = LatencyStats::new();
    for v in 1..=100 {
        s.record(v);
    }
    assert_eq!(s.p95(), Some(95));
    assert_eq!(s.percentile(99.5), Some(100));
    assert_eq!(s.max(), Some(100));
}

proptest! {
    /// Segments inserted in any order with none lost (the first one
    /// fixing the start) come out all, in order, without skips.
    #[test]
    fn no_losses_means_everything_in_order(
        base in 0u64..1_000_000,
        order in (1usize..60).prop_flat_map(|n| Just((1..n as u64).collect::<Vec<_>>()).prop_shuffle()),
        pops in proptest::collection::vec(any::<bool>(), 60),
    ) {
        let n = order.len() as u64 + 1;
        let mut jb = JitterBuffer::new(n, 10_000);
        let mut out = Vec::new();
        jb.insert(base, seg(base), 0, 0).expect("first");
        for (i, s) in order.iter().enumerate() {
            jb.insert(base + s, seg(base + s), 0, i as u64).expect("insert");
            if pops[i] {
                out.extend(jb.pop_ready(i as u64));
            }
        }
        out.extend(jb.pop_ready(100));
        prop_assert_eq!(played(&out), (base..base + n).collect::<Vec<_>>());
        // Only segments: nothing skipped.
        prop_assert_eq!(out.len() as u64, n);
        prop_assert_eq!(jb.buffered(), 0);
        prop_assert_eq!(jb.buffered_bytes(), 0);
    }

    /// With losses, late arrivals, a small window and time passing, the
    /// output still covers a contiguous range exactly once, in order,
    /// every segment played was inserted, and the buffer stays within
    /// its window.
    #[test]
    fn output_is_contiguous_and_ordered(
        events in proptest::collection::vec((0u64..80, 0u64..300, any::<bool>()), 1..200),
        window in 0u64..10,
        max_wait in 0u64..1000,
    ) {
        let mut jb = JitterBuffer::new(window, max_wait);
        let mut now = 0;
        let mut out = Vec::new();
        let mut accepted = std::collections::HashSet::new();
        for (seq, dt, pop) in events {
            now += dt;
            if jb.insert(seq, seg(seq), now.saturating_sub(dt), now).is_ok() {
                accepted.insert(seq);
            }
            prop_assert!(jb.buffered() as u64 <= window + 1);
            if pop {
                out.extend(jb.pop_ready(now));
            }
        }
        out.extend(jb.pop_ready(now + 100_000));
        let mut expect_next = None;
        for p in &out {
            let (from, to) = match p {
                Popped::Segment { seq, data, .. } => {
                    prop_assert!(accepted.contains(seq));
                    prop_assert_eq!(data, &seg(*seq));
                    (*seq, seq + 1)
                }
                Popped::Skipped { from, to } => {
                    prop_assert!(from < to);
                    (*from, *to)
                }
            };
            if let Some(e) = expect_next {
                prop_assert_eq!(from, e);
            }
            expect_next = Some(to);
        }
        if let Some(e) = expect_next {
            prop_assert_eq!(jb.next_seq(), Some(e));
        }
        // Long after the last insert, everything held was played.
        prop_assert_eq!(jb.buffered(), 0);
    }
}

/// The committed sample (ffmpeg testsrc, H.264 with a keyframe every 0.48 s,
/// AAC) fed at its real rate, 10 packets at a time, with a tick every
/// 50 ms: what a broadcaster's node cuts.
fn sample_segments(target_ms: u32) -> Vec<CutSegment> {
    sample_segments_of_at_most(target_ms, MAX_SEGMENT_BYTES)
}

fn sample_segments_of_at_most(target_ms: u32, max_bytes: usize) -> Vec<CutSegment> {
    let input = include_bytes!("../../../tests/ui/sample.ts");
    let mut s = Segmenter::new(cfg(target_ms, max_bytes));
    let mut out = Vec::new();
    // 20 s of media: bytes per millisecond.
    let rate = input.len() as f64 / 20_000.0;
    let mut fed = 0usize;
    let mut now = 0u64;
    while fed < input.len() {
        now += 50;
        let due = ((now as f64 * rate) as usize).min(input.len());
        while fed < due {
            let end = (fed + 10 * TS_PACKET_LEN).min(input.len());
            out.extend(s.push(&input[fed..end], now));
            fed = end;
        }
        out.extend(s.tick(now));
    }
    out.extend(s.finish(now));
    out
}

/// The packets of one segment, as a fresh scanner (a player that joins at
/// it) sees them.
fn kinds(data: &[u8]) -> Vec<ts::PacketKind> {
    let mut scanner = ts::TsScanner::new();
    data.chunks(TS_PACKET_LEN)
        .map(|p| scanner.packet(p))
        .collect()
}

#[test]
fn every_live_segment_of_a_video_stream_starts_where_a_player_can_join() {
    let segs = sample_segments(DEFAULT_TARGET_MS);
    assert!(segs.len() >= 20, "{} segments", segs.len());
    for seg in &segs[1..] {
        let k = kinds(&seg.data);
        // PAT, PMT, then a random-access point of the video, as a decoder
        // that has seen nothing before needs them.
        assert_eq!(
            &k[..3],
            &[
                ts::PacketKind::Table,
                ts::PacketKind::Table,
                ts::PacketKind::RandomAccess
            ],
            "segment {}",
            seg.seq
        );
        assert_eq!(seg.data.len() % TS_PACKET_LEN, 0);
    }
    // The whole stream is there, in order, with the tables added before
    // each segment but the first.
    let added = (segs.len() - 1) * 2 * TS_PACKET_LEN;
    assert_eq!(
        segs.iter().map(|s| s.data.len()).sum::<usize>(),
        include_bytes!("../../../tests/ui/sample.ts").len() + added
    );
    // Segments follow the GOP (0.48 s) from the 0.5 s target: one or two
    // GOPs each, never a fraction of one.
    for seg in &segs[1..segs.len() - 1] {
        assert!(
            (400..=1100).contains(&seg.duration_ms),
            "segment {} lasts {} ms",
            seg.seq,
            seg.duration_ms
        );
    }
}

#[test]
fn a_late_joiner_decodes_every_segment_without_an_error() {
    if std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_err()
    {
        // The TS-level check above runs everywhere; this one needs a real
        // decoder (`make deps` installs ffmpeg).
        eprintln!("skipped: ffmpeg is not installed, so no real decoder can check the segments");
        return;
    }
    let decode_errors = |segs: &[CutSegment]| -> usize {
        use std::io::Write as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("joined.ts");
        let mut f = std::fs::File::create(&path).expect("create");
        for s in segs {
            f.write_all(&s.data).expect("write");
        }
        drop(f);
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&path)
            .args(["-f", "null", "-"])
            .output()
            .expect("run ffmpeg");
        String::from_utf8_lossy(&out.stderr).lines().count()
    };
    let segs = sample_segments(DEFAULT_TARGET_MS);
    // A player joining at each of several points decodes cleanly.
    for join in [1, 7, 13, segs.len() / 2] {
        assert_eq!(decode_errors(&segs[join..]), 0, "joining at segment {join}");
    }
    // The yardstick: cut every 0.5 s regardless of keyframes (as before),
    // a player joining mid-stream logs decode errors.
    let input = include_bytes!("../../../tests/ui/sample.ts");
    let half_second = (input.len() / 40) / TS_PACKET_LEN * TS_PACKET_LEN;
    let by_time: Vec<CutSegment> = input
        .chunks(half_second)
        .enumerate()
        .map(|(i, c)| CutSegment {
            seq: i as u64,
            data: c.to_vec(),
            captured_ms: 0,
            duration_ms: 500,
        })
        .collect();
    let errors: usize = [7, 13, 20]
        .iter()
        .map(|&j| decode_errors(&by_time[j..]))
        .sum();
    assert!(
        errors > 0,
        "time cuts decoded cleanly: the check would not notice"
    );
    eprintln!("time cuts: {errors} decoder error lines over 3 late joins; keyframe cuts: 0");

    // Segments smaller than a group of pictures (cut by size between
    // keyframes too): a player joining at one called joinable decodes
    // cleanly, and joining at the others is what the playlist avoids.
    let small = sample_segments_of_at_most(DEFAULT_TARGET_MS, 40 * TS_PACKET_LEN);
    let (mut clean_joins, mut rough_joins) = (0, 0);
    for join in 1..small.len().min(24) {
        let errors = decode_errors(&small[join..]);
        match ts::joinable(&small[join].data) {
            Some(true) => {
                assert_eq!(errors, 0, "joining at joinable segment {join}");
                clean_joins += 1;
            }
            _ => rough_joins += usize::from(errors > 0),
        }
    }
    assert!(clean_joins > 0, "no joinable segment among those tried");
    assert!(
        rough_joins > 0,
        "no join at a segment called unjoinable logged an error"
    );
}

proptest! {
    /// A real stream with random bytes overwritten (tables, PES headers,
    /// NAL units): the segmenter never panics, loses no byte (the output is
    /// the input plus whole table pairs), numbers segments in order, and
    /// respects the size limit.
    #[test]
    fn a_corrupted_video_stream_is_segmented_without_loss(
        flips in proptest::collection::vec((0usize..60_000, any::<u8>()), 0..64),
        step in 1usize..4000,
        target in 1u32..2000,
    ) {
        let mut input = include_bytes!("../../../tests/ui/sample.ts")[..60_000].to_vec();
        for (at, b) in flips {
            input[at] = b;
        }
        let mut s = Segmenter::new(cfg(target, MAX_SEGMENT_BYTES));
        let mut segs = Vec::new();
        let mut now = 0;
        for chunk in input.chunks(step) {
            now += 30;
            segs.extend(s.push(chunk, now));
            segs.extend(s.tick(now));
        }
        segs.extend(s.finish(now + 1));
        let total: usize = segs.iter().map(|c| c.data.len()).sum();
        prop_assert!(total >= input.len());
        prop_assert_eq!((total - input.len()) % (2 * TS_PACKET_LEN), 0);
        for (i, seg) in segs.iter().enumerate() {
            prop_assert_eq!(seg.seq, i as u64);
            prop_assert!(!seg.data.is_empty() && seg.data.len() <= MAX_SEGMENT_BYTES);
            // Classifying a corrupted segment never panics; whole packets
            // with a sync byte always get a verdict or "nothing to say".
            let verdict = ts::joinable(&seg.data);
            if seg.data[0] != 0x47 || !seg.data.len().is_multiple_of(TS_PACKET_LEN) {
                prop_assert_eq!(verdict, None);
            }
        }
        let _ = ts::joinable(&input[..input.len() / TS_PACKET_LEN * TS_PACKET_LEN]);
    }
}

#[test]
fn segments_cut_inside_a_group_of_pictures_are_not_joinable() {
    // Keyframe cuts: every segment but the lead-in starts where a player can.
    let whole = sample_segments(DEFAULT_TARGET_MS);
    assert!(whole
        .iter()
        .all(|seg| ts::joinable(&seg.data) == Some(true)));
    // Segments smaller than a group of pictures are cut by size between
    // keyframes as well.
    let small = sample_segments_of_at_most(DEFAULT_TARGET_MS, 40 * TS_PACKET_LEN);
    assert!(small.len() > whole.len(), "{} segments", small.len());
    // The lead-in (the input's first packets, then its first keyframe).
    assert_eq!(ts::joinable(&small[0].data), Some(true));
    let mut seen = (0, 0);
    for seg in &small[1..] {
        let k = kinds(&seg.data);
        // A cut at a keyframe puts the tables and the keyframe first.
        let at_keyframe = k.starts_with(&[
            ts::PacketKind::Table,
            ts::PacketKind::Table,
            ts::PacketKind::RandomAccess,
        ]);
        let verdict = ts::joinable(&seg.data);
        if at_keyframe {
            assert_eq!(verdict, Some(true), "segment {}", seg.seq);
        }
        match verdict {
            Some(true) => seen.0 += 1,
            Some(false) => seen.1 += 1,
            None => panic!("segment {}: a video stream's segment", seg.seq),
        }
    }
    // Whether a decoder agrees: `a_late_joiner_decodes_every_segment_without_an_error`.
    assert!(seen.0 >= 3 && seen.1 >= 10, "{seen:?}");
    // Not MPEG-TS: nothing to say.
    assert_eq!(ts::joinable(&raw(1000)), None);
}

#[test]
fn a_live_input_read_ahead_is_joined_at_its_last_keyframe() {
    let input = include_bytes!("../../../tests/ui/sample.ts");
    // 100,000 bytes read ahead, ending inside a packet.
    let head = &input[..100_000];
    let (tables, at) = ts::last_join_point(head).expect("a keyframe in the head");
    assert_eq!(tables.len(), 2 * TS_PACKET_LEN);
    assert_eq!(at % TS_PACKET_LEN, 0);
    // The last one: no random-access point after it in the head.
    let after: Vec<ts::PacketKind> = {
        let mut scanner = ts::TsScanner::new();
        for p in head[..at].chunks(TS_PACKET_LEN) {
            scanner.packet(p);
        }
        head[at..]
            .chunks_exact(TS_PACKET_LEN)
            .map(|p| scanner.packet(p))
            .collect()
    };
    assert_eq!(after.first(), Some(&ts::PacketKind::RandomAccess));
    assert!(!after[1..].contains(&ts::PacketKind::RandomAccess));
    // What a consumer is fed (the tables, the head from there, the rest)
    // starts where a decoder can.
    let mut fed = tables.clone();
    fed.extend_from_slice(&input[at..]);
    assert_eq!(
        ts::joinable(&fed[..fed.len() / TS_PACKET_LEN * TS_PACKET_LEN]),
        Some(true)
    );
    assert!(at > 50_000, "most of the head is skipped: {at}");
    // Not MPEG-TS, or no keyframe yet: nothing to join at.
    assert_eq!(ts::last_join_point(&raw(5_000)), None);
    assert_eq!(ts::last_join_point(&input[..3 * TS_PACKET_LEN]), None);
}
