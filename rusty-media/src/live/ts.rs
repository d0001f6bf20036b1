//! Just enough MPEG-TS parsing for a live segmenter to cut where a player
//! can start: the PAT names the PMT, the PMT names the video stream, and a
//! packet of the video stream that begins a PES packet is a random-access
//! point when its adaptation field sets `random_access_indicator`, or when
//! its payload holds an H.264 IDR slice or SPS (NAL types 5, 7), or an HEVC
//! IRAP picture or VPS (types 16–21, 32).
//!
//! The last PAT and PMT packets are kept, so that a segment starting at a
//! random-access point can be given the tables a decoder needs first (a
//! player that joins there has seen no earlier packet).
//!
//! Untrusted input (the broadcaster's bytes): every read is bounds-checked,
//! and anything malformed is simply "not a random-access point".

use super::{TS_PACKET_LEN, TS_SYNC_BYTE};

/// The video codecs whose random-access points are recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// stream_type 0x1B.
    H264,
    /// stream_type 0x24.
    Hevc,
    /// Any other video stream type (0x01, 0x02, 0x10, ...): the
    /// `random_access_indicator` only.
    Other,
}

/// What one packet is, for the segmenter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// Starts a random-access point of the video stream.
    RandomAccess,
    /// Starts a PES packet of the video stream that is not a random-access
    /// point (a frame that needs earlier ones).
    VideoStart,
    /// The program association or program map table.
    Table,
    Other,
}

/// Follows the tables of one MPEG transport stream, packet by packet.
#[derive(Debug, Clone, Default)]
pub struct TsScanner {
    pmt_pid: Option<u16>,
    video: Option<(u16, VideoCodec)>,
    pat: Option<Vec<u8>>,
    pmt: Option<Vec<u8>>,
}

impl TsScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The video stream's PID and codec, once a PMT named one.
    pub fn video(&self) -> Option<(u16, VideoCodec)> {
        self.video
    }

    /// The last PAT and PMT packets, to put before a segment that starts
    /// at a random-access point; `None` until both were seen.
    pub fn tables(&self) -> Option<Vec<u8>> {
        let (pat, pmt) = (self.pat.as_ref()?, self.pmt.as_ref()?);
        let mut out = Vec::with_capacity(2 * TS_PACKET_LEN);
        out.extend_from_slice(pat);
        out.extend_from_slice(pmt);
        Some(out)
    }

    /// Looks at one packet (anything but exactly 188 bytes starting with
    /// the sync byte is `Other`).
    pub fn packet(&mut self, p: &[u8]) -> PacketKind {
        if p.len() != TS_PACKET_LEN || p[0] != TS_SYNC_BYTE {
            return PacketKind::Other;
        }
        let pusi = p[1] & 0x40 != 0;
        let pid = u16::from_be_bytes([p[1] & 0x1F, p[2]]);
        let afc = (p[3] >> 4) & 0x3;
        let (adaptation, payload) = split(p, afc);
        if pid == 0 {
            if pusi {
                if let Some(pmt_pid) = payload.and_then(section).and_then(pat_pmt_pid) {
                    self.pmt_pid = Some(pmt_pid);
                    self.pat = Some(p.to_vec());
                }
            }
            return PacketKind::Table;
        }
        if Some(pid) == self.pmt_pid {
            if pusi {
                if let Some(video) = payload.and_then(section).and_then(pmt_video) {
                    self.video = Some(video);
                    self.pmt = Some(p.to_vec());
                }
            }
            return PacketKind::Table;
        }
        match self.video {
            Some((video_pid, codec)) if video_pid == pid && pusi => {
                let rai = adaptation
                    .and_then(|a| a.get(1))
                    .is_some_and(|flags| flags & 0x40 != 0);
                if rai || payload.is_some_and(|pl| pes_starts_random_access(pl, codec)) {
                    PacketKind::RandomAccess
                } else {
                    PacketKind::VideoStart
                }
            }
            _ => PacketKind::Other,
        }
    }
}

/// Whether a player that joins a stream at `segment` (having seen nothing
/// before it) can decode its video from the start: the first frame after
/// the tables is a random-access point. `None` when the segment names no
/// video stream (not MPEG-TS, no PAT and PMT, audio only): nothing to say.
///
/// The segmenter cuts before random-access points and puts the tables
/// first, but cuts by size in the middle of a group of pictures larger
/// than a segment may be ([`super::MAX_SEGMENT_BYTES`]); such a segment
/// starts with frames that need earlier ones.
pub fn joinable(segment: &[u8]) -> Option<bool> {
    if segment.first() != Some(&TS_SYNC_BYTE) || !segment.len().is_multiple_of(TS_PACKET_LEN) {
        return None;
    }
    let packets = || segment.chunks_exact(TS_PACKET_LEN);
    // Demuxers (ffmpeg's, hls.js's) find the tables first and then read
    // the segment again from its start, so a frame before the tables
    // counts too: the video stream is looked for in the whole segment.
    let mut tables = TsScanner::new();
    for packet in packets() {
        tables.packet(packet);
        if tables.video.is_some() {
            break;
        }
    }
    let Some(known) = tables.tables().filter(|_| tables.video.is_some()) else {
        // No video stream named. With a PAT: an audio-only program (or a
        // PMT this scanner cannot read), nothing to say; without one no
        // demuxer can start here.
        return if tables.pmt_pid.is_some() {
            None
        } else {
            Some(false)
        };
    };
    let mut scanner = TsScanner::new();
    for packet in known.chunks_exact(TS_PACKET_LEN) {
        scanner.packet(packet);
    }
    for packet in packets() {
        match scanner.packet(packet) {
            PacketKind::RandomAccess => return Some(true),
            PacketKind::VideoStart => return Some(false),
            PacketKind::Table | PacketKind::Other => {}
        }
    }
    // Only the rest of a frame: no decoder can start here.
    Some(false)
}

/// Where a live input read ahead (`head`, MPEG-TS from its first byte)
/// can be joined: the tables (PAT and PMT) and the offset of the last
/// random-access point of its video. A consumer fed the tables and
/// `head[offset..]` (then the rest of the input) starts at that keyframe
/// instead of at the head's start: at most one GOP behind, rather than
/// the whole head. `None` when the head is not MPEG-TS, names no video
/// stream or has no random-access point.
pub fn last_join_point(head: &[u8]) -> Option<(Vec<u8>, usize)> {
    if head.first() != Some(&TS_SYNC_BYTE) {
        return None;
    }
    let mut scanner = TsScanner::new();
    let mut last = None;
    for (i, packet) in head.chunks_exact(TS_PACKET_LEN).enumerate() {
        if scanner.packet(packet) == PacketKind::RandomAccess {
            last = Some(i * TS_PACKET_LEN);
        }
    }
    Some((scanner.tables()?, last?))
}

/// The adaptation field (with its length byte) and the payload of a
/// packet, as its `adaptation_field_control` says.
fn split(p: &[u8], afc: u8) -> (Option<&[u8]>, Option<&[u8]>) {
    let body = &p[4..];
    match afc {
        1 => (None, Some(body)),
        2 => (Some(body), None),
        3 => {
            let len = usize::from(body[0]);
            match body.get(..=len) {
                Some(a) => (Some(a), body.get(len + 1..)),
                None => (None, None),
            }
        }
        _ => (None, None),
    }
}

/// A PSI section from a payload that starts one: skips the pointer field,
/// returns the section up to (not including) its CRC.
fn section(payload: &[u8]) -> Option<&[u8]> {
    let pointer = usize::from(*payload.first()?);
    let s = payload.get(1 + pointer..)?;
    let length = usize::from(u16::from_be_bytes([*s.get(1)? & 0x0F, *s.get(2)?]));
    // table_id, length (2), then `length` bytes of which the last 4 are
    // the CRC.
    s.get(..(3 + length).checked_sub(4)?)
}

/// The PID of the first program's PMT in a PAT section.
fn pat_pmt_pid(s: &[u8]) -> Option<u16> {
    if *s.first()? != 0x00 {
        return None;
    }
    // table_id, length (2), transport_stream_id (2), version, section,
    // last section: 8 bytes, then 4 per program.
    s.get(8..)?.chunks_exact(4).find_map(|e| {
        let program = u16::from_be_bytes([e[0], e[1]]);
        (program != 0).then(|| u16::from_be_bytes([e[2] & 0x1F, e[3]]))
    })
}

/// The first video stream of a PMT section.
fn pmt_video(s: &[u8]) -> Option<(u16, VideoCodec)> {
    if *s.first()? != 0x02 {
        return None;
    }
    // table_id, length (2), program (2), version, section, last section,
    // PCR PID (2), program_info_length (2).
    let info = usize::from(u16::from_be_bytes([*s.get(10)? & 0x0F, *s.get(11)?]));
    let mut rest = s.get(12 + info..)?;
    while rest.len() >= 5 {
        let stream_type = rest[0];
        let pid = u16::from_be_bytes([rest[1] & 0x1F, rest[2]]);
        let es_info = usize::from(u16::from_be_bytes([rest[3] & 0x0F, rest[4]]));
        let codec = match stream_type {
            0x1B => Some(VideoCodec::H264),
            0x24 => Some(VideoCodec::Hevc),
            0x01 | 0x02 | 0x10 | 0x42 | 0xEA => Some(VideoCodec::Other),
            _ => None,
        };
        if let Some(codec) = codec {
            return Some((pid, codec));
        }
        rest = rest.get(5 + es_info..)?;
    }
    None
}

/// Whether the start of a PES packet holds a random-access NAL unit.
fn pes_starts_random_access(payload: &[u8], codec: VideoCodec) -> bool {
    // packet_start_code_prefix, stream_id, length (2), flags (2), header
    // data length, header data.
    if payload.get(..3) != Some(&[0, 0, 1][..]) {
        return false;
    }
    let Some(&header_len) = payload.get(8) else {
        return false;
    };
    let Some(es) = payload.get(9 + usize::from(header_len)..) else {
        return false;
    };
    // Each NAL unit follows a 00 00 01 start code.
    es.windows(4).any(|w| {
        w[..3] == [0, 0, 1]
            && match codec {
                VideoCodec::H264 => matches!(w[3] & 0x1F, 5 | 7),
                VideoCodec::Hevc => matches!((w[3] >> 1) & 0x3F, 16..=21 | 32),
                VideoCodec::Other => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The committed 20 s sample (ffmpeg testsrc, H.264 with a keyframe
    /// every 12 frames at 25 fps, AAC) has its tables and 42 keyframes.
    #[test]
    fn the_sample_stream_has_a_keyframe_every_gop() {
        let ts = include_bytes!("../../../tests/ui/sample.ts");
        let mut s = TsScanner::new();
        let mut keyframes = 0;
        for p in ts.chunks(TS_PACKET_LEN) {
            if s.packet(p) == PacketKind::RandomAccess {
                keyframes += 1;
            }
        }
        assert_eq!(s.video().map(|v| v.1), Some(VideoCodec::H264));
        assert_eq!(s.tables().map(|t| t.len()), Some(2 * TS_PACKET_LEN));
        // 500 frames / 12 per GOP.
        assert_eq!(keyframes, 42);
    }

    proptest! {
        /// Any bytes, cut into packets: no panic, and nothing is a
        /// random-access point before a PMT named a video stream.
        #[test]
        fn arbitrary_packets_never_panic(
            packets in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..200), 0..32)
        ) {
            let mut s = TsScanner::new();
            for mut p in packets {
                if let Some(first) = p.first_mut() { *first = TS_SYNC_BYTE; }
                let kind = s.packet(&p);
                if s.video().is_none() {
                    prop_assert_ne!(kind, PacketKind::RandomAccess);
                }
            }
        }
    }
}
