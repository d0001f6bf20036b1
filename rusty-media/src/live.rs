//! Live streams: the broadcaster's [`Segmenter`], which cuts the input into
//! segments by time or size, and the viewer's [`JitterBuffer`], which puts
//! fetched segments back in order and skips what is lost or too late.
//! [`LatencyStats`] summarises capture-to-playback latency.
//!
//! Everything here is pure and synchronous: time is the `now_ms` the caller
//! passes in (Unix milliseconds, or any clock that does not run backwards —
//! a clock that does is tolerated, never a panic), so behaviour is
//! deterministic and testable.

use std::{
    collections::{BTreeMap, VecDeque},
    fmt, mem,
};

use crate::wire::{MAX_SEGMENT_BYTES, MAX_SEGMENT_DURATION_MS};

/// Bytes of one MPEG transport stream packet.
pub const TS_PACKET_LEN: usize = 188;
/// The first byte of every MPEG-TS packet.
pub const TS_SYNC_BYTE: u8 = 0x47;
/// Sync bytes (at offsets 0, 188, 376, ...) the input must start with to be
/// taken for an MPEG transport stream.
pub const TS_DETECT_PACKETS: u64 = 4;
/// Default target duration of a segment.
pub const DEFAULT_TARGET_MS: u32 = 500;

/// How the [`Segmenter`] cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmenterConfig {
    /// A pending segment is cut by [`Segmenter::tick`] once this long has
    /// passed since it started (default [`DEFAULT_TARGET_MS`]).
    pub target_ms: u32,
    /// A segment is cut by [`Segmenter::push`] as soon as it holds this many
    /// bytes (default [`MAX_SEGMENT_BYTES`]; clamped to `1..=`
    /// [`MAX_SEGMENT_BYTES`]; for MPEG-TS rounded down to whole packets, at
    /// least one).
    pub max_bytes: usize,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        SegmenterConfig {
            target_ms: DEFAULT_TARGET_MS,
            max_bytes: MAX_SEGMENT_BYTES,
        }
    }
}

/// A segment cut by the [`Segmenter`], ready to be announced and served.
#[derive(Clone, PartialEq, Eq)]
pub struct CutSegment {
    /// 0, 1, 2, ... in the order cut.
    pub seq: u64,
    /// 1 to [`MAX_SEGMENT_BYTES`] bytes.
    pub data: Vec<u8>,
    /// When the segment's first byte was read (the `now_ms` of the push that
    /// brought it).
    pub captured_ms: u64,
    /// Media time the segment covers: from the previous cut (or from its
    /// first byte, if that came later) to this cut; `1..=`
    /// [`MAX_SEGMENT_DURATION_MS`].
    pub duration_ms: u32,
}

impl fmt::Debug for CutSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CutSegment")
            .field("seq", &self.seq)
            .field("len", &self.data.len())
            .field("captured_ms", &self.captured_ms)
            .field("duration_ms", &self.duration_ms)
            .finish()
    }
}

/// What the [`Segmenter`] has found its input to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Nothing read yet, or the input starts like an MPEG transport stream
    /// but fewer than [`TS_DETECT_PACKETS`] sync bytes were seen. Cuts are
    /// made on packet boundaries meanwhile.
    Detecting,
    /// An MPEG transport stream: every segment is a whole number of
    /// 188-byte packets (a playable HLS `.ts` segment), except possibly the
    /// one cut by [`Segmenter::finish`].
    MpegTs,
    /// Anything else: cut at any byte.
    Raw,
}

/// Cuts the broadcaster's input into segments: by size as bytes arrive
/// ([`Segmenter::push`]), by time when the caller ticks
/// ([`Segmenter::tick`]), and at the end of input ([`Segmenter::finish`]).
///
/// If the input starts with the MPEG-TS sync byte at 188-byte spacing,
/// segments are cut only on packet boundaries and the remainder starts the
/// next segment.
#[derive(Debug, Clone)]
pub struct Segmenter {
    target_ms: u32,
    /// Clamped to `1..=MAX_SEGMENT_BYTES`.
    max_bytes: usize,
    format: InputFormat,
    /// Bytes pushed so far.
    read: u64,
    /// The segment being filled. It always starts on a packet boundary of
    /// the input when the input is (or may be) MPEG-TS, because every
    /// earlier cut was a whole number of packets.
    pending: Vec<u8>,
    /// `(offset in pending, now_ms)` of the pushes that brought the pending
    /// bytes: the first gives the segment's capture time, the others the
    /// capture time of a remainder left by a cut on a packet boundary. Only
    /// marks that can still start a remainder (in the last packet's worth of
    /// bytes) are kept, so at most [`TS_PACKET_LEN`] + 1 of them.
    marks: VecDeque<(usize, u64)>,
    next_seq: u64,
    last_cut_ms: Option<u64>,
}

impl Segmenter {
    pub fn new(cfg: SegmenterConfig) -> Self {
        Segmenter {
            target_ms: cfg.target_ms,
            max_bytes: cfg.max_bytes.clamp(1, MAX_SEGMENT_BYTES),
            format: InputFormat::Detecting,
            read: 0,
            pending: Vec::new(),
            marks: VecDeque::new(),
            next_seq: 0,
            last_cut_ms: None,
        }
    }

    /// Feeds bytes read at `now_ms`; returns the segments cut because they
    /// reached the size limit (any number: a large `data` yields several).
    pub fn push(&mut self, data: &[u8], now_ms: u64) -> Vec<CutSegment> {
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            // `pending.len() < limit()` between iterations: a full segment
            // is cut at once.
            let room = self.limit().saturating_sub(self.pending.len()).max(1);
            let (head, tail) = rest.split_at(room.min(rest.len()));
            self.append(head, now_ms);
            rest = tail;
            // Normally one cut of everything pending; more only if the
            // format turned out to be raw with `max_bytes` under a packet.
            while self.pending.len() >= self.limit() {
                out.push(self.cut(self.limit(), now_ms));
            }
        }
        out
    }

    /// Cuts the pending segment if `target_ms` has passed since it started
    /// (its first byte, or the previous cut if its first bytes were left
    /// over from that). For MPEG-TS only whole packets are cut: with less
    /// than one packet pending nothing is cut yet.
    pub fn tick(&mut self, now_ms: u64) -> Option<CutSegment> {
        let start = self.segment_start_ms()?;
        if now_ms.saturating_sub(start) < u64::from(self.target_ms) {
            return None;
        }
        let len = match self.format {
            InputFormat::Raw => self.pending.len(),
            InputFormat::Detecting | InputFormat::MpegTs => {
                self.pending.len() / TS_PACKET_LEN * TS_PACKET_LEN
            }
        };
        if len == 0 {
            return None;
        }
        Some(self.cut(len, now_ms))
    }

    /// End of input: cuts everything pending (for MPEG-TS, including a
    /// trailing partial packet, which has nowhere else to go).
    pub fn finish(&mut self, now_ms: u64) -> Option<CutSegment> {
        if self.pending.is_empty() {
            return None;
        }
        Some(self.cut(self.pending.len(), now_ms))
    }

    /// The sequence number the next segment will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Bytes waiting for the next cut.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// What the input looks like so far.
    pub fn format(&self) -> InputFormat {
        self.format
    }

    /// The size at which `push` cuts.
    fn limit(&self) -> usize {
        match self.format {
            InputFormat::Raw => self.max_bytes,
            InputFormat::Detecting | InputFormat::MpegTs => {
                (self.max_bytes / TS_PACKET_LEN * TS_PACKET_LEN).max(TS_PACKET_LEN)
            }
        }
    }

    /// When the pending segment's media time starts, if anything is pending.
    fn segment_start_ms(&self) -> Option<u64> {
        let captured = self.marks.front()?.1;
        Some(self.last_cut_ms.map_or(captured, |c| c.max(captured)))
    }

    fn append(&mut self, head: &[u8], now_ms: u64) {
        if head.is_empty() {
            return;
        }
        let start = self.read;
        let len = head.len() as u64;
        if self.format == InputFormat::Detecting {
            for k in 0..TS_DETECT_PACKETS {
                let pos = k * TS_PACKET_LEN as u64;
                let Some(i) = pos.checked_sub(start).filter(|i| *i < len) else {
                    continue;
                };
                // `i < head.len()`, so the cast is lossless.
                if head.get(i as usize) != Some(&TS_SYNC_BYTE) {
                    self.format = InputFormat::Raw;
                    break;
                }
                if k + 1 == TS_DETECT_PACKETS {
                    self.format = InputFormat::MpegTs;
                }
            }
        }
        let at = self.pending.len();
        if self.marks.back().is_none_or(|&(_, ms)| ms != now_ms) {
            self.marks.push_back((at, now_ms));
        }
        self.pending.extend_from_slice(head);
        self.read = self.read.saturating_add(len);
        match self.format {
            // Every cut takes all that is pending: only the first mark
            // matters.
            InputFormat::Raw => self.marks.truncate(1),
            // A remainder left by a cut on a packet boundary starts within
            // the last `TS_PACKET_LEN - 1` bytes; a mark that ends before
            // them can never start one.
            InputFormat::Detecting | InputFormat::MpegTs => {
                let horizon = self.pending.len().saturating_sub(TS_PACKET_LEN - 1);
                while self.marks.get(2).is_some_and(|&(off, _)| off <= horizon) {
                    self.marks.remove(1);
                }
            }
        }
    }

    /// Cuts the first `len` pending bytes (`1 <= len <= pending.len()`).
    fn cut(&mut self, len: usize, now_ms: u64) -> CutSegment {
        let captured_ms = self.marks.front().map_or(now_ms, |m| m.1);
        let start_ms = self.segment_start_ms().unwrap_or(now_ms);
        let data = if len >= self.pending.len() {
            self.marks.clear();
            mem::take(&mut self.pending)
        } else {
            let rest = self.pending.split_off(len);
            // The remainder starts with the bytes of the last push that
            // began at or before `len`.
            let mut first = None;
            while let Some(&(off, ms)) = self.marks.front() {
                if off > len {
                    break;
                }
                first = Some(ms);
                self.marks.pop_front();
            }
            for m in &mut self.marks {
                m.0 -= len;
            }
            if let Some(ms) = first {
                self.marks.push_front((0, ms));
            }
            mem::replace(&mut self.pending, rest)
        };
        let duration = now_ms
            .saturating_sub(start_ms)
            .clamp(1, u64::from(MAX_SEGMENT_DURATION_MS));
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        self.last_cut_ms = Some(self.last_cut_ms.map_or(now_ms, |c| c.max(now_ms)));
        CutSegment {
            seq,
            data,
            captured_ms,
            // Clamped to `MAX_SEGMENT_DURATION_MS` above.
            duration_ms: u32::try_from(duration).unwrap_or(MAX_SEGMENT_DURATION_MS),
        }
    }
}

/// What [`JitterBuffer::pop_ready`] hands out, in sequence order.
#[derive(Clone, PartialEq, Eq)]
pub enum Popped {
    /// The next segment, `latency_ms` after it was captured
    /// (`now_ms - captured_ms`, 0 if the clocks disagree).
    Segment {
        seq: u64,
        data: Vec<u8>,
        latency_ms: u64,
    },
    /// Segments `from..to` (exclusive) will not be played: lost, too late,
    /// or the viewer fell too far behind the live edge.
    Skipped { from: u64, to: u64 },
}

impl fmt::Debug for Popped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Popped::Segment {
                seq,
                data,
                latency_ms,
            } => f
                .debug_struct("Segment")
                .field("seq", seq)
                .field("len", &data.len())
                .field("latency_ms", latency_ms)
                .finish(),
            Popped::Skipped { from, to } => f
                .debug_struct("Skipped")
                .field("from", from)
                .field("to", to)
                .finish(),
        }
    }
}

/// Why [`JitterBuffer::insert`] refused a segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JitterError {
    /// The segment is already buffered.
    #[error("segment {seq} is already buffered")]
    Duplicate { seq: u64 },
    /// The segment was already played.
    #[error("segment {seq} was already played (playback is at {next})")]
    AlreadyPlayed { seq: u64, next: u64 },
    /// The segment was skipped: it came too late.
    #[error("segment {seq} came too late: it was skipped (playback is at {next})")]
    AlreadySkipped { seq: u64, next: u64 },
    /// Played or skipped so long ago that the buffer no longer remembers
    /// which.
    #[error("segment {seq} is long past (playback is at {next})")]
    LongPast { seq: u64, next: u64 },
    /// Before the segment playback started at.
    #[error("segment {seq} is before the start of playback at {start}")]
    BeforeStart { seq: u64, start: u64 },
    /// More than `window` segments ahead of the next one to play. The
    /// segment still marks the live edge: the next
    /// [`JitterBuffer::pop_ready`] skips ahead so that it fits, and it may
    /// be inserted again then.
    #[error("segment {seq} is more than {window} segments ahead of playback at {next}")]
    TooFarAhead { seq: u64, next: u64, window: u64 },
}

impl JitterError {
    /// Whether the segment came after its time (played, skipped, or before
    /// the start) — as opposed to a duplicate or one from the future.
    pub fn is_late(&self) -> bool {
        matches!(
            self,
            JitterError::AlreadyPlayed { .. }
                | JitterError::AlreadySkipped { .. }
                | JitterError::LongPast { .. }
                | JitterError::BeforeStart { .. }
        )
    }
}

/// How many skipped ranges the buffer remembers, to tell a late segment
/// that was skipped from one that was played.
const MAX_REMEMBERED_SKIPS: usize = 1024;

#[derive(Clone)]
struct Held {
    data: Vec<u8>,
    captured_ms: u64,
    arrived_ms: u64,
}

/// The viewer's reorder buffer for live segments.
///
/// Segments arrive in any order (fetched from several peers); they leave in
/// sequence order through [`JitterBuffer::pop_ready`]. A missing segment (a
/// gap) holds back the ones after it for at most `max_wait_ms`, counted
/// from when the first segment after it arrived; then it is skipped. A
/// viewer more than `window` segments behind the newest segment it has
/// heard of skips the gaps ahead of it at once, until it is back within the
/// window. Segments that arrived are never dropped: they are played, in
/// order, even when the gaps around them are skipped.
///
/// At most `window + 1` segments are held, so memory is bounded by
/// `(window + 1) * MAX_SEGMENT_BYTES`.
#[derive(Clone)]
pub struct JitterBuffer {
    window: u64,
    max_wait_ms: u64,
    /// Where playback started (the first insert).
    start: Option<u64>,
    /// The next segment to play; `None` before the first insert.
    next: Option<u64>,
    /// The highest sequence number seen (inserted, refused as too far
    /// ahead, or reported by [`JitterBuffer::note_newest`]).
    newest: Option<u64>,
    held: BTreeMap<u64, Held>,
    bytes: usize,
    /// Recent skipped ranges `(from, to)`, in order.
    skips: VecDeque<(u64, u64)>,
    /// Below this, a segment's fate is forgotten (its skip range was dropped
    /// from `skips`).
    forgotten_below: u64,
}

impl fmt::Debug for JitterBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JitterBuffer")
            .field("window", &self.window)
            .field("max_wait_ms", &self.max_wait_ms)
            .field("next", &self.next)
            .field("newest", &self.newest)
            .field("held", &self.held.keys().collect::<Vec<_>>())
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl JitterBuffer {
    /// `window`: how many segments behind the newest one a viewer may be
    /// before it skips ahead (and how far ahead of playback a segment may
    /// be buffered); `max_wait_ms`: how long a gap may hold back later
    /// segments.
    pub fn new(window: u64, max_wait_ms: u64) -> Self {
        JitterBuffer {
            window,
            max_wait_ms,
            start: None,
            next: None,
            newest: None,
            held: BTreeMap::new(),
            bytes: 0,
            skips: VecDeque::new(),
            forgotten_below: 0,
        }
    }

    /// Buffers segment `seq`, captured at `captured_ms`, arriving at
    /// `now_ms`. The first insert fixes where playback starts (at that seq).
    /// Refuses duplicates, segments already played or skipped (or before
    /// the start), and segments more than `window` ahead of the next one to
    /// play.
    pub fn insert(
        &mut self,
        seq: u64,
        data: Vec<u8>,
        captured_ms: u64,
        now_ms: u64,
    ) -> Result<(), JitterError> {
        let next = *self.next.get_or_insert(seq);
        let start = *self.start.get_or_insert(seq);
        if seq < next {
            return Err(self.late_error(seq, next, start));
        }
        if self.held.contains_key(&seq) {
            return Err(JitterError::Duplicate { seq });
        }
        self.note_newest(seq);
        // `seq >= next` here.
        if seq - next > self.window {
            return Err(JitterError::TooFarAhead {
                seq,
                next,
                window: self.window,
            });
        }
        self.bytes = self.bytes.saturating_add(data.len());
        self.held.insert(
            seq,
            Held {
                data,
                captured_ms,
                arrived_ms: now_ms,
            },
        );
        Ok(())
    }

    /// Records that segment `seq` exists (an announcement was heard) without
    /// its data, so that a viewer that falls behind skips ahead even before
    /// later segments arrive.
    pub fn note_newest(&mut self, seq: u64) {
        self.newest = Some(self.newest.map_or(seq, |n| n.max(seq)));
    }

    /// Everything playable now, in order: segments in sequence, with the
    /// gaps skipped that are older than `max_wait_ms` (counted from the
    /// arrival of the first segment after them) or that leave playback more
    /// than `window` behind the newest segment.
    pub fn pop_ready(&mut self, now_ms: u64) -> Vec<Popped> {
        let mut out = Vec::new();
        let Some(mut next) = self.next else {
            return out;
        };
        // Earliest arrival among the held segments from each one on: the
        // age of a gap is that of the oldest segment it holds back.
        let held_seqs: Vec<u64> = self.held.keys().copied().collect();
        let mut oldest_from = vec![u64::MAX; held_seqs.len() + 1];
        for (i, h) in self.held.values().enumerate().rev() {
            let after = oldest_from.get(i + 1).copied().unwrap_or(u64::MAX);
            if let Some(slot) = oldest_from.get_mut(i) {
                *slot = after.min(h.arrived_ms);
            }
        }
        // Index in `held_seqs` of the first segment not yet played; every
        // held seq is `>= next`.
        let mut idx = 0;
        loop {
            if let Some(h) = self.held.remove(&next) {
                self.bytes = self.bytes.saturating_sub(h.data.len());
                out.push(Popped::Segment {
                    seq: next,
                    data: h.data,
                    latency_ms: now_ms.saturating_sub(h.captured_ms),
                });
                idx += 1;
                match next.checked_add(1) {
                    Some(n) => next = n,
                    None => break,
                }
                continue;
            }
            let first_held = held_seqs.get(idx).copied();
            let live_edge = self
                .newest
                .filter(|n| n.saturating_sub(next) > self.window)
                .map(|n| n.saturating_sub(self.window));
            let waited_out = || {
                let oldest = oldest_from.get(idx).copied().unwrap_or(u64::MAX);
                oldest != u64::MAX && now_ms.saturating_sub(oldest) >= self.max_wait_ms
            };
            let to = match (first_held, live_edge) {
                (Some(f), Some(edge)) => f.min(edge),
                (None, Some(edge)) => edge,
                (Some(f), None) if waited_out() => f,
                _ => break,
            };
            self.remember_skip(next, to);
            out.push(Popped::Skipped { from: next, to });
            next = to;
        }
        self.next = Some(next);
        out
    }

    /// The next segment to play (`None` before the first insert).
    pub fn next_seq(&self) -> Option<u64> {
        self.next
    }

    /// The highest sequence number heard of.
    pub fn newest_seq(&self) -> Option<u64> {
        self.newest
    }

    /// Segments held.
    pub fn buffered(&self) -> usize {
        self.held.len()
    }

    /// Bytes of the segments held.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    fn remember_skip(&mut self, from: u64, to: u64) {
        if self.skips.len() >= MAX_REMEMBERED_SKIPS {
            if let Some((_, end)) = self.skips.pop_front() {
                self.forgotten_below = end;
            }
        }
        self.skips.push_back((from, to));
    }

    fn late_error(&self, seq: u64, next: u64, start: u64) -> JitterError {
        if seq < start {
            return JitterError::BeforeStart { seq, start };
        }
        if seq < self.forgotten_below {
            return JitterError::LongPast { seq, next };
        }
        // Skip ranges are disjoint and in order.
        let i = self.skips.partition_point(|&(_, to)| to <= seq);
        match self.skips.get(i) {
            Some(&(from, _)) if from <= seq => JitterError::AlreadySkipped { seq, next },
            _ => JitterError::AlreadyPlayed { seq, next },
        }
    }
}

/// Latency samples (milliseconds) and their nearest-rank percentiles, for
/// the viewer's report and the benchmark.
#[derive(Debug, Clone, Default)]
pub struct LatencyStats {
    samples: Vec<u64>,
    max: Option<u64>,
}

impl LatencyStats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &LatencyStats) {
        for s in &other.samples {
            self.record(*s);
        }
    }

    pub fn record(&mut self, ms: u64) {
        self.samples.push(ms);
        self.max = Some(self.max.map_or(ms, |m| m.max(ms)));
    }

    /// Samples recorded.
    pub fn count(&self) -> usize {
        self.samples.len()
    }

    /// The nearest-rank `p`-th percentile (`0 <= p <= 100`): the smallest
    /// sample with at least `p`% of the samples at or below it (`p = 0`
    /// gives the minimum). `None` without samples or for `p` out of range.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.samples.is_empty() || !(0.0..=100.0).contains(&p) {
            return None;
        }
        let n = self.samples.len();
        // `p * n` first keeps whole-number ranks exact (95 * 20 / 100 = 19).
        let rank = (p * n as f64 / 100.0).ceil();
        // `0 <= rank <= n`; the float-to-int cast saturates.
        let rank = (rank as usize).clamp(1, n);
        let mut sorted = self.samples.clone();
        let (_, v, _) = sorted.select_nth_unstable(rank - 1);
        Some(*v)
    }

    /// The median (nearest rank).
    pub fn p50(&self) -> Option<u64> {
        self.percentile(50.0)
    }

    /// The 95th percentile (nearest rank).
    pub fn p95(&self) -> Option<u64> {
        self.percentile(95.0)
    }

    /// The largest sample.
    pub fn max(&self) -> Option<u64> {
        self.max
    }

    /// The mean, if there are samples.
    pub fn mean(&self) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let sum: u128 = self.samples.iter().map(|&s| u128::from(s)).sum();
        Some(sum as f64 / self.samples.len() as f64)
    }
}

#[cfg(test)]
mod tests {
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
}
