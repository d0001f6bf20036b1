//! A live broadcaster's input from untrusted bytes: the segmenter (with
//! its MPEG-TS scanner) never panics, every byte comes out exactly once in
//! order (the tables it adds before a random-access segment aside), and no
//! segment exceeds the wire limit. A viewer's classification of a segment
//! it was sent (`ts::joinable`) never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusty_media::{
    live::{ts, Segmenter, SegmenterConfig, TS_PACKET_LEN},
    wire::MAX_SEGMENT_BYTES,
};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the push size, the second the target duration.
    let (Some(&step), Some(&target)) = (data.first(), data.get(1)) else {
        return;
    };
    let input = &data[2..];
    let mut s = Segmenter::new(SegmenterConfig {
        target_ms: u32::from(target) * 10 + 1,
        max_bytes: MAX_SEGMENT_BYTES,
    });
    let mut segs = Vec::new();
    let mut now = 0;
    for chunk in input.chunks(usize::from(step).max(1) * 7) {
        now += 40;
        segs.extend(s.push(chunk, now));
        segs.extend(s.tick(now));
    }
    segs.extend(s.finish(now + 1));
    let total: usize = segs.iter().map(|c| c.data.len()).sum();
    assert!(total >= input.len());
    assert_eq!((total - input.len()) % (2 * TS_PACKET_LEN), 0);
    for (i, seg) in segs.iter().enumerate() {
        assert_eq!(seg.seq, i as u64);
        assert!(!seg.data.is_empty() && seg.data.len() <= MAX_SEGMENT_BYTES);
        let _ = ts::joinable(&seg.data);
    }
    let _ = ts::joinable(input);
});
