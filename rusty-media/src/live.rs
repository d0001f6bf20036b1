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

pub mod ts;

/// Segments from the end of a live playlist among which players start on
/// their own (hls.js and ffmpeg start three from the end).
pub const PLAYERS_START_WITHIN: usize = 3;

/// Where a player joining a live playlist (`(seq, joinable)`, oldest
/// first; see [`ts::joinable`]) should start, when the segment players
/// start at on their own ([`PLAYERS_START_WITHIN`] from the end) is not
/// joinable (a GOP larger than a segment was cut inside): the newest
/// joinable segment before it, else the oldest after it. `None` when
/// players may start where they like, or no segment is joinable.
pub fn join_point(listed: &[(u64, bool)]) -> Option<u64> {
    let at = listed.len().saturating_sub(PLAYERS_START_WITHIN);
    if listed.get(at).is_none_or(|&(_, joinable)| joinable) {
        return None;
    }
    let (before, after) = listed.split_at(at);
    before
        .iter()
        .rev()
        .chain(after)
        .find(|&&(_, joinable)| joinable)
        .map(|&(seq, _)| seq)
}

/// Bytes of one MPEG transport stream packet.
pub const TS_PACKET_LEN: usize = 188;
/// The first byte of every MPEG-TS packet.
pub const TS_SYNC_BYTE: u8 = 0x47;
/// Sync bytes (at offsets 0, 188, 376, ...) the input must start with to be
/// taken for an MPEG transport stream.
pub const TS_DETECT_PACKETS: u64 = 4;
/// Default target duration of a segment.
pub const DEFAULT_TARGET_MS: u32 = 500;
/// With video in an MPEG-TS input, a segment is cut only before a
/// random-access point, so segments follow the GOP; if none comes within
/// this many target durations, it is cut by time anyway.
pub const MAX_GOP_TARGETS: u32 = 10;
/// The longest segment a live playlist's target duration keeps counting
/// once it has left the window (see [`crate::http::hls_playlist`]): the
/// longest the segmenter cuts at its default target. A longer one (an
/// input that stalled, or a broadcaster announcing what it likes) raises
/// the target only while it is listed.
pub const MAX_REMEMBERED_SEGMENT_MS: u32 = DEFAULT_TARGET_MS * MAX_GOP_TARGETS;

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
    /// MPEG-TS: the tables and the video stream's random-access points.
    ts: ts::TsScanner,
    /// Bytes of `pending` looked at by `ts` (whole packets).
    scanned: usize,
    /// Offsets (> 0, on packet boundaries) in `pending` of packets that
    /// start a random-access point.
    keyframes: VecDeque<usize>,
    /// `pending` starts at a random-access point: its segment gets the
    /// PAT and PMT before it.
    starts_at_keyframe: bool,
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
            ts: ts::TsScanner::new(),
            scanned: 0,
            keyframes: VecDeque::new(),
            starts_at_keyframe: false,
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
    ///
    /// An MPEG-TS input with a video stream is cut only before a
    /// random-access point (the last one pending), so that every segment
    /// starts where a player can: segments follow the GOP. Without one
    /// after [`MAX_GOP_TARGETS`] target durations, it is cut by time.
    pub fn tick(&mut self, now_ms: u64) -> Option<CutSegment> {
        let start = self.segment_start_ms()?;
        let elapsed = now_ms.saturating_sub(start);
        if elapsed < u64::from(self.target_ms) {
            return None;
        }
        if self.format == InputFormat::MpegTs && self.ts.video().is_some() {
            let wait = u64::from(self.target_ms)
                .saturating_mul(u64::from(MAX_GOP_TARGETS))
                .min(u64::from(MAX_SEGMENT_DURATION_MS));
            if let Some(&at) = self.keyframes.back() {
                // The input's lead-in before its first keyframe (tables,
                // audio, an encoder's slow start) has nothing a decoder can
                // start from: it goes with the first GOP instead of making
                // a segment of its own.
                let lead_in = self.next_seq == 0 && !self.starts_at_keyframe;
                if !(lead_in && self.keyframes.len() == 1) || elapsed >= wait {
                    return Some(self.cut(at, now_ms));
                }
                return None;
            }
            if elapsed < wait {
                return None;
            }
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

    /// The size at which `push` cuts (with video, room is kept for the two
    /// table packets put before a segment).
    fn limit(&self) -> usize {
        match self.format {
            InputFormat::Raw => self.max_bytes,
            InputFormat::Detecting | InputFormat::MpegTs => {
                let room = if self.ts.video().is_some() {
                    2 * TS_PACKET_LEN
                } else {
                    0
                };
                (self.max_bytes.saturating_sub(room) / TS_PACKET_LEN * TS_PACKET_LEN)
                    .max(TS_PACKET_LEN)
            }
        }
    }

    /// Looks at the whole packets appended since the last call.
    fn scan(&mut self) {
        while self.scanned + TS_PACKET_LEN <= self.pending.len() {
            let packet = &self.pending[self.scanned..self.scanned + TS_PACKET_LEN];
            if self.ts.packet(packet) == ts::PacketKind::RandomAccess {
                if self.scanned == 0 {
                    self.starts_at_keyframe = true;
                } else {
                    self.keyframes.push_back(self.scanned);
                }
            }
            self.scanned += TS_PACKET_LEN;
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
        if self.format == InputFormat::MpegTs {
            self.scan();
        }
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
        // The remainder starts at a random-access point when one is at `len`.
        let next_starts_at_keyframe = self.keyframes.contains(&len);
        while self.keyframes.front().is_some_and(|&k| k <= len) {
            self.keyframes.pop_front();
        }
        for k in &mut self.keyframes {
            *k -= len;
        }
        self.scanned = self.scanned.saturating_sub(len);
        let tables = if mem::replace(&mut self.starts_at_keyframe, next_starts_at_keyframe) {
            self.ts.tables()
        } else {
            None
        };
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
        // A player joining at this segment has seen no table yet.
        let data = match tables {
            Some(mut t) => {
                t.extend_from_slice(&data);
                t
            }
            None => data,
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

/// What [`JitterBuffer::pop_ready`] hands out, in sequence order. `D` is
/// the segment's bytes as the buffer was given them (a shared handle on a
/// node, so a segment is never copied on its way through).
#[derive(Clone, PartialEq, Eq)]
pub enum Popped<D = Vec<u8>> {
    /// The next segment, `latency_ms` after it was captured
    /// (`now_ms - captured_ms`, 0 if the clocks disagree).
    Segment { seq: u64, data: D, latency_ms: u64 },
    /// Segments `from..to` (exclusive) will not be played: lost, too late,
    /// or the viewer fell too far behind the live edge.
    Skipped { from: u64, to: u64 },
}

impl<D: AsRef<[u8]>> fmt::Debug for Popped<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Popped::Segment {
                seq,
                data,
                latency_ms,
            } => f
                .debug_struct("Segment")
                .field("seq", seq)
                .field("len", &data.as_ref().len())
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
struct Held<D> {
    data: D,
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
/// `(window + 1) * MAX_SEGMENT_BYTES`. `D` is how a segment's bytes are
/// held (`Vec<u8>`, or a shared handle such as `Arc<[u8]>`).
#[derive(Clone)]
pub struct JitterBuffer<D = Vec<u8>> {
    window: u64,
    max_wait_ms: u64,
    /// Where playback started (the first insert).
    start: Option<u64>,
    /// The next segment to play; `None` before the first insert.
    next: Option<u64>,
    /// The highest sequence number seen (inserted, refused as too far
    /// ahead, or reported by [`JitterBuffer::note_newest`]).
    newest: Option<u64>,
    held: BTreeMap<u64, Held<D>>,
    bytes: usize,
    /// Recent skipped ranges `(from, to)`, in order.
    skips: VecDeque<(u64, u64)>,
    /// Below this, a segment's fate is forgotten (its skip range was dropped
    /// from `skips`).
    forgotten_below: u64,
}

impl<D> fmt::Debug for JitterBuffer<D> {
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

impl<D: AsRef<[u8]>> JitterBuffer<D> {
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
        data: D,
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
        self.bytes = self.bytes.saturating_add(data.as_ref().len());
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
    pub fn pop_ready(&mut self, now_ms: u64) -> Vec<Popped<D>> {
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
                self.bytes = self.bytes.saturating_sub(h.data.as_ref().len());
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
mod tests;
