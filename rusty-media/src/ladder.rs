//! The transcoding ladder: which renditions a source gets, the `ffmpeg`
//! command that makes them, and the HLS playlists that tie them together.
//!
//! `ffmpeg` is an external program, run by `rusty-cli stream publish
//! --transcode`; nothing here links it. One `ffmpeg` run decodes the source
//! once and encodes every rendition with the same keyframe times (a keyframe
//! forced every [`SEGMENT_SECS`], scene-cut keyframes off), so segment `n` of
//! every rendition covers the same span and a player can switch between
//! them at any segment boundary. Its HLS muxer writes each rendition as one
//! MPEG-TS file with a media playlist of byte ranges, and a master playlist.
//!
//! Each rendition's TS file and each playlist is then published as content
//! of its own (its own id and verified chunks); the playlists' URIs are
//! rewritten to the node's playback paths (`../<id>/content`, relative to
//! the playlist's own `/media/<id>/content`), so a player given the master
//! playlist's URL finds everything on the node, byte ranges included.
//!
//! A live ladder (`rusty-cli stream broadcast --live --transcode`) uses the
//! same rungs and keyframe rule, but `ffmpeg` writes each rendition as a
//! live MPEG-TS stream of its own, each pushed to a broadcast of its own;
//! the master playlist names their live playlists
//! ([`live_master_playlist`]).
//!
//! Rungs follow PeerTube's shape: 240p, 360p, 480p, 720p, 1080p, none
//! taller than the source, each at a bitrate from bits per pixel.

mod live_play;
pub mod play;

/// Rung heights, shortest first.
pub const HEIGHTS: [u32; 5] = [240, 360, 480, 720, 1080];
/// Bits per pixel per frame for H.264 at these sizes (about 1 Mbit/s at
/// 480p30, 2.2 at 720p30).
pub const BITS_PER_PIXEL: f64 = 0.08;
/// Segment and keyframe interval, seconds: within LL-HLS's 1–3 s part.
pub const SEGMENT_SECS: u32 = 1;
/// Audio bitrate of every rendition that has audio, kbit/s.
pub const AUDIO_KBPS: u32 = 128;

/// A source video's shape, as `ffprobe` reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Source {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub audio: bool,
}

/// One rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    pub width: u32,
    pub height: u32,
    pub video_kbps: u32,
}

impl Rung {
    /// `480p`.
    pub fn name(&self) -> String {
        format!("{}p", self.height)
    }
}

/// Why a source cannot be transcoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LadderError {
    #[error("the source has no usable video size ({width}×{height})")]
    NoVideo { width: u32, height: u32 },
    #[error("the source frame rate {0} is not usable")]
    BadFrameRate(f64),
}

/// The rungs for `source`: every standard height not above the source's
/// (the source's own height when it is shorter than the first), widths
/// keeping the aspect ratio rounded to even numbers (H.264 needs them).
pub fn plan(source: &Source) -> Result<Vec<Rung>, LadderError> {
    let (w, h) = (source.width, source.height);
    if w < 2 || h < 2 || w > 16_384 || h > 16_384 {
        return Err(LadderError::NoVideo {
            width: w,
            height: h,
        });
    }
    if !(source.fps.is_finite() && source.fps > 0.0 && source.fps <= 1000.0) {
        return Err(LadderError::BadFrameRate(source.fps));
    }
    let mut heights: Vec<u32> = HEIGHTS.iter().copied().filter(|&x| x <= h).collect();
    if heights.is_empty() {
        heights.push(h & !1);
    }
    Ok(heights
        .into_iter()
        .map(|height| {
            // The nearest even width; at most 16,384, so it fits.
            let (w, h, height) = (u64::from(w), u64::from(h), u64::from(height));
            let width = ((w * height + h) / (2 * h) * 2) as u32;
            let height = height as u32;
            let pixels = f64::from(width) * f64::from(height);
            let video_kbps = (pixels * source.fps.min(60.0) * BITS_PER_PIXEL / 1000.0) as u32;
            Rung {
                width,
                height,
                video_kbps: video_kbps.max(100),
            }
        })
        .collect())
}

/// File names `ffmpeg` writes in its output directory for rendition `i`.
pub fn rendition_files(i: usize) -> (String, String) {
    (format!("stream_{i}.ts"), format!("stream_{i}.m3u8"))
}

/// The master playlist's file name.
pub const MASTER: &str = "master.m3u8";

/// `ffmpeg`'s arguments: one decode of `input`, every rung encoded with
/// keyframes on the same times, HLS output in `out_dir` (see the module
/// documentation).
pub fn ffmpeg_args(input: &str, out_dir: &str, source: &Source, rungs: &[Rung]) -> Vec<String> {
    let mut args = input_args(&[], input, rungs);
    let mut streams = Vec::new();
    for (i, r) in rungs.iter().enumerate() {
        args.extend(["-map".into(), format!("[v{i}]")]);
        args.extend(video_codec(&format!(":{i}"), r, source.fps));
        if source.audio {
            args.extend(["-map".into(), "0:a:0".into()]);
            streams.push(format!("v:{i},a:{i}"));
        } else {
            streams.push(format!("v:{i}"));
        }
    }
    if source.audio {
        args.extend(audio_codec());
    }
    args.extend(common_video(source));
    args.extend([
        "-f".into(),
        "hls".into(),
        "-hls_time".into(),
        SEGMENT_SECS.to_string(),
        "-hls_playlist_type".into(),
        "vod".into(),
        "-hls_segment_type".into(),
        "mpegts".into(),
        "-hls_flags".into(),
        "single_file+independent_segments".into(),
        "-hls_segment_filename".into(),
        format!("{out_dir}/stream_%v.ts"),
        "-master_pl_name".into(),
        MASTER.into(),
        "-var_stream_map".into(),
        streams.join(" "),
        format!("{out_dir}/stream_%v.m3u8"),
    ]);
    args
}

/// How a live ladder's input arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveInput {
    /// A file (a path, or a file redirected to standard input): read at
    /// its frame rate (`-re`), as a capture would deliver it.
    File,
    /// A pipe or socket whose writer paces it (a capture, `ffmpeg -re …
    /// -f mpegts -`): read as it comes. With `-re` the bytes read ahead to
    /// probe it would stay a delay behind the clock for the whole
    /// broadcast.
    Paced,
}

/// `ffmpeg`'s arguments for a live ladder: `input` read at its own pace
/// (see [`LiveInput`]), decoded once, and each rung written as its own
/// MPEG-TS stream to `outputs[i]` (the CLI passes
/// `tcp://127.0.0.1:<port>` URLs it listens on and pushes each to a
/// broadcast of its own). Keyframes as in [`ffmpeg_args`], so the node's
/// segmenter, which cuts before keyframes, cuts every rendition at the same
/// media times; x264's `zerolatency` tuning keeps frames from waiting for
/// look-ahead.
pub fn ffmpeg_live_args(
    input: &str,
    pacing: LiveInput,
    source: &Source,
    rungs: &[Rung],
    outputs: &[String],
) -> Vec<String> {
    let before_input: &[&str] = match pacing {
        LiveInput::File => &["-re"],
        LiveInput::Paced => &[],
    };
    let mut args = input_args(before_input, input, rungs);
    for (i, (r, out)) in rungs.iter().zip(outputs).enumerate() {
        args.extend(["-map".into(), format!("[v{i}]")]);
        if source.audio {
            args.extend(["-map".into(), "0:a:0".into()]);
            args.extend(audio_codec());
        }
        args.extend(video_codec("", r, source.fps));
        args.extend(common_video(source));
        args.extend(["-tune".into(), "zerolatency".into()]);
        args.extend(["-f".into(), "mpegts".into(), out.clone()]);
    }
    args
}

/// Up to the filter graph: quiet, `input` (after `before_input`), one
/// decode split and scaled into `[v0]`, `[v1]`, ... per rung.
fn input_args(before_input: &[&str], input: &str, rungs: &[Rung]) -> Vec<String> {
    let n = rungs.len();
    let mut filter = format!("[0:v]split={n}");
    for i in 0..n {
        filter.push_str(&format!("[s{i}]"));
    }
    for (i, r) in rungs.iter().enumerate() {
        filter.push_str(&format!(";[s{i}]scale={}:{}[v{i}]", r.width, r.height));
    }
    let mut args: Vec<String> = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
        .iter()
        .chain(before_input)
        .map(|s| s.to_string())
        .collect();
    args.extend(["-i".into(), input.into(), "-filter_complex".into(), filter]);
    args
}

/// libx264 at the rung's bitrate; `spec` is the output stream specifier
/// (`:2` when one output holds every rung, empty for an output of its own).
fn video_codec(spec: &str, r: &Rung, fps: f64) -> Vec<String> {
    let level = h264_level(r, fps);
    vec![
        format!("-c:v{spec}"),
        "libx264".into(),
        // Stated, so that a live master playlist can name them in CODECS
        // before a frame is encoded.
        format!("-profile:v{spec}"),
        "high".into(),
        format!("-level:v{spec}"),
        format!("{}.{}", level / 10, level % 10),
        format!("-b:v{spec}"),
        format!("{}k", r.video_kbps),
        format!("-maxrate:v{spec}"),
        format!("{}k", r.video_kbps * 3 / 2),
        format!("-bufsize:v{spec}"),
        format!("{}k", r.video_kbps * 2),
    ]
}

fn audio_codec() -> Vec<String> {
    vec![
        "-c:a".into(),
        "aac".into(),
        "-b:a".into(),
        format!("{AUDIO_KBPS}k"),
    ]
}

/// The same keyframe times in every rendition: a fixed GOP, forced
/// keyframes on the segment grid, no extra keyframes at scene cuts.
fn common_video(source: &Source) -> Vec<String> {
    let gop = (source.fps * f64::from(SEGMENT_SECS)).round().max(1.0) as u32;
    vec![
        "-preset".into(),
        "veryfast".into(),
        "-pix_fmt".into(),
        "yuv420p".into(),
        "-g".into(),
        gop.to_string(),
        "-keyint_min".into(),
        gop.to_string(),
        "-sc_threshold".into(),
        "0".into(),
        "-force_key_frames".into(),
        format!("expr:gte(t,n_forced*{SEGMENT_SECS})"),
    ]
}

/// H.264 levels from 3.0 up (×10), with the most macroblocks a frame,
/// macroblocks a second and kbit/s (High profile: 1.25 × Table A-1's)
/// each allows (ITU-T H.264, Table A-1).
const H264_LEVELS: [(u8, u64, u64, u64); 9] = [
    (30, 1_620, 40_500, 12_500),
    (31, 3_600, 108_000, 17_500),
    (32, 5_120, 216_000, 25_000),
    (40, 8_192, 245_760, 25_000),
    (41, 8_192, 245_760, 62_500),
    (42, 8_704, 522_240, 62_500),
    (50, 22_080, 589_824, 168_750),
    (51, 36_864, 983_040, 300_000),
    (52, 36_864, 2_073_600, 300_000),
];

/// The H.264 level (×10) a rung is encoded at: the lowest from 3.0 up
/// whose frame size, macroblock rate and bitrate hold the rung at `fps`
/// and its maxrate (5.2 beyond all of them).
pub fn h264_level(r: &Rung, fps: f64) -> u8 {
    let frame = u64::from(r.width.div_ceil(16)) * u64::from(r.height.div_ceil(16));
    let per_second = (frame as f64 * fps.max(1.0)).ceil() as u64;
    let peak_kbps = u64::from(r.video_kbps) * 3 / 2;
    H264_LEVELS
        .iter()
        .find(|&&(_, fs, mbps, kbps)| frame <= fs && per_second <= mbps && peak_kbps <= kbps)
        .map_or(52, |l| l.0)
}

/// A rung's RFC 6381 codecs: H.264 High at its level, and AAC-LC with
/// `audio`.
pub fn rung_codecs(r: &Rung, fps: f64, audio: bool) -> String {
    let video = format!("avc1.6400{:02x}", h264_level(r, fps));
    if audio {
        format!("{video},mp4a.40.2")
    } else {
        video
    }
}

/// The master playlist of a live ladder: one variant per rung, its URI the
/// node's live playlist of that rung's broadcast (`../<id>/live.m3u8`,
/// relative to the master's own `/media/<master id>/content`). BANDWIDTH is
/// the rung's peak (the encoder's maxrate) plus audio, as HLS asks; CODECS
/// what [`ffmpeg_live_args`] tells x264 to state (High profile, the rung's
/// level) and AAC-LC, as Apple's players want before they pick a variant.
pub fn live_master_playlist(rungs: &[Rung], source: &Source, ids: &[String]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (r, id) in rungs.iter().zip(ids) {
        let audio_kbps = if source.audio { AUDIO_KBPS } else { 0 };
        let peak = (r.video_kbps * 3 / 2 + audio_kbps) * 1000;
        let average = (r.video_kbps + audio_kbps) * 1000;
        out.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},RESOLUTION={}x{},CODECS=\"{}\"\n{}\n",
            r.width,
            r.height,
            rung_codecs(r, source.fps, source.audio),
            live_uri(id)
        ));
    }
    out
}

/// The node's live playlist of broadcast `id`, relative to a playlist served
/// at `/media/<its id>/content`.
pub fn live_uri(id: &str) -> String {
    format!("../{id}/live.m3u8")
}

/// A playlist with every URI line equal to a key of `uris` replaced by its
/// value (the node's path of the published file). Tags are kept as they
/// are; a URI line not in `uris` is an error naming it, so nothing is
/// published that points at a file the node does not have.
pub fn rewrite_playlist(text: &str, uris: &[(String, String)]) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 64 * uris.len());
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            out.push_str(line);
        } else {
            let to = uris
                .iter()
                .find(|(from, _)| from == t)
                .map(|(_, to)| to)
                .ok_or_else(|| format!("the playlist names {t:?}, which was not produced"))?;
            out.push_str(to);
        }
        out.push('\n');
    }
    Ok(out)
}

/// A ladder's playlist as the node serves it to players that check file
/// extensions (ffmpeg and mpv refuse segment URIs without a known one):
/// each `../<id>/content` URI line becomes `../<id>/index.m3u8` when it
/// follows `#EXT-X-STREAM-INF` (a rendition's playlist) and
/// `../<id>/data.ts` otherwise (a segment's file); every other line stays.
/// The node answers both paths (`rusty-node`'s playback routes).
pub fn with_extensions(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut variant = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("#EXT-X-STREAM-INF") {
            variant = true;
        } else if !t.is_empty() && !t.starts_with('#') {
            if let Some(id) = t
                .strip_prefix("../")
                .and_then(|rest| rest.strip_suffix("/content"))
                .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                let tail = if variant { "index.m3u8" } else { "data.ts" };
                out.push_str(&format!("../{id}/{tail}\n"));
                variant = false;
                continue;
            }
            variant = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The node's playback path of content `id`, relative to a playlist that is
/// itself served at `/media/<its id>/content`.
pub fn content_uri(id: &str) -> String {
    format!("../{id}/content")
}

/// The byte ranges and durations of a media playlist's segments, in order
/// (`#EXTINF` seconds, `#EXT-X-BYTERANGE` length and offset): what a player
/// fetches, and what must line up across renditions.
pub fn segments(text: &str) -> Vec<(f64, u64, u64)> {
    let mut out = Vec::new();
    let mut duration = None;
    let mut next_offset = 0u64;
    for line in text.lines().map(str::trim) {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            duration = d.split(',').next().and_then(|d| d.parse::<f64>().ok());
        } else if let Some(r) = line.strip_prefix("#EXT-X-BYTERANGE:") {
            let mut parts = r.split('@');
            let len = parts.next().and_then(|l| l.parse::<u64>().ok());
            let offset = parts
                .next()
                .and_then(|o| o.parse::<u64>().ok())
                .unwrap_or(next_offset);
            if let (Some(d), Some(len)) = (duration.take(), len) {
                out.push((d, offset, len));
                next_offset = offset.saturating_add(len);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(w: u32, h: u32) -> Source {
        Source {
            width: w,
            height: h,
            fps: 30.0,
            audio: true,
        }
    }

    #[test]
    fn rungs_stop_at_the_source_height_and_keep_the_aspect_ratio() {
        let r = plan(&source(1920, 1080)).unwrap();
        assert_eq!(r.iter().map(|r| r.height).collect::<Vec<_>>(), HEIGHTS);
        assert_eq!((r[0].width, r[2].width, r[4].width), (426, 854, 1920));
        assert!(r.windows(2).all(|w| w[0].video_kbps < w[1].video_kbps));
        let r = plan(&source(854, 480)).unwrap();
        assert_eq!(
            r.iter().map(Rung::name).collect::<Vec<_>>(),
            ["240p", "360p", "480p"]
        );
        // Portrait, and shorter than the first rung.
        let r = plan(&source(720, 1280)).unwrap();
        assert_eq!((r[0].width, r[0].height), (136, 240));
        let r = plan(&source(320, 180)).unwrap();
        assert_eq!((r.len(), r[0].height, r[0].width), (1, 180, 320));
        assert!(r.iter().all(|r| r.width % 2 == 0 && r.height % 2 == 0));
    }

    #[test]
    fn each_rung_gets_the_lowest_h264_level_that_holds_it() {
        let rung = |width, height, video_kbps| Rung {
            width,
            height,
            video_kbps,
        };
        assert_eq!(h264_level(&rung(426, 240, 400), 30.0), 30);
        // 54 × 30 macroblocks at 30 fps: 48,600 a second, over 3.0's 40,500.
        assert_eq!(h264_level(&rung(854, 480, 1_200), 30.0), 31);
        assert_eq!(h264_level(&rung(1280, 720, 2_500), 30.0), 31);
        assert_eq!(h264_level(&rung(1280, 720, 2_500), 60.0), 32);
        assert_eq!(h264_level(&rung(1920, 1080, 5_000), 30.0), 40);
        assert_eq!(h264_level(&rung(1920, 1080, 5_000), 60.0), 42);
        // A bitrate over a level's: the next one up.
        assert_eq!(h264_level(&rung(426, 240, 10_000), 30.0), 31);
        assert_eq!(h264_level(&rung(7680, 4320, 5_000), 60.0), 52);
        assert_eq!(
            rung_codecs(&rung(854, 480, 1_200), 30.0, true),
            "avc1.64001f,mp4a.40.2"
        );
        assert_eq!(
            rung_codecs(&rung(426, 240, 400), 30.0, false),
            "avc1.64001e"
        );
        // What x264 is told matches.
        let s = source(854, 480);
        let rungs = plan(&s).unwrap();
        let args = ffmpeg_live_args(
            "-",
            LiveInput::File,
            &s,
            &rungs,
            &["a".into(), "b".into(), "c".into()],
        );
        assert_eq!(
            args.join(" ")
                .matches("-profile:v high -level:v 3.1")
                .count(),
            1
        );
        assert_eq!(
            args.join(" ")
                .matches("-profile:v high -level:v 3.0")
                .count(),
            2
        );
    }

    #[test]
    fn unusable_sources_are_refused() {
        assert!(matches!(
            plan(&source(0, 480)),
            Err(LadderError::NoVideo { .. })
        ));
        let mut s = source(640, 480);
        s.fps = f64::NAN;
        assert!(matches!(plan(&s), Err(LadderError::BadFrameRate(_))));
    }

    #[test]
    fn the_ffmpeg_command_forces_the_same_keyframes_in_every_rendition() {
        let s = source(854, 480);
        let args = ffmpeg_args("in.mp4", "/out", &s, &plan(&s).unwrap());
        let joined = args.join(" ");
        assert!(joined.contains("split=3[s0][s1][s2]"), "{joined}");
        assert!(
            joined.contains("-g 30 -keyint_min 30 -sc_threshold 0"),
            "{joined}"
        );
        assert!(
            joined.contains("-var_stream_map v:0,a:0 v:1,a:1 v:2,a:2"),
            "{joined}"
        );
        assert_eq!(args.last().map(String::as_str), Some("/out/stream_%v.m3u8"));
    }

    #[test]
    fn the_live_command_writes_each_rung_to_its_own_output_with_the_same_keyframes() {
        let s = source(854, 480);
        let rungs = plan(&s).unwrap();
        let outs: Vec<String> = (0..3).map(|i| format!("tcp://127.0.0.1:{i}")).collect();
        let args = ffmpeg_live_args("-", LiveInput::File, &s, &rungs, &outs);
        let joined = args.join(" ");
        assert!(joined.contains("-re -i - -filter_complex"), "{joined}");
        // A paced pipe is read as it comes.
        let paced = ffmpeg_live_args("-", LiveInput::Paced, &s, &rungs, &outs).join(" ");
        assert!(paced.contains("-y -i - -filter_complex"), "{paced}");
        assert!(!paced.contains("-re"), "{paced}");
        assert_eq!(joined.matches("-f mpegts tcp://").count(), 3, "{joined}");
        assert_eq!(joined.matches("-sc_threshold 0").count(), 3, "{joined}");
        assert!(joined.contains("-map [v2] -map 0:a:0"), "{joined}");
        assert_eq!(args.last(), outs.last());
        let ids: Vec<String> = ["aa", "bb", "cc"].iter().map(|s| s.to_string()).collect();
        let master = live_master_playlist(&rungs, &s, &ids);
        assert!(master.starts_with("#EXTM3U\n"), "{master}");
        assert!(
            master
                .contains("RESOLUTION=854x480,CODECS=\"avc1.64001f,mp4a.40.2\"\n../cc/live.m3u8\n"),
            "{master}"
        );
        assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 3);
    }

    #[test]
    fn playlists_for_picky_players_name_files_with_extensions() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let master = format!(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=300000\n../{a}/content\n#EXT-X-STREAM-INF:BANDWIDTH=700000\n../{b}/content\n"
        );
        assert_eq!(
            with_extensions(&master),
            format!(
                "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=300000\n../{a}/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=700000\n../{b}/index.m3u8\n"
            )
        );
        let media = format!(
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXTINF:1.000,\n#EXT-X-BYTERANGE:1000@0\n../{a}/content\n#EXTINF:1.000,\n#EXT-X-BYTERANGE:900@1000\n../{a}/content\n#EXT-X-ENDLIST\n"
        );
        let served = with_extensions(&media);
        assert_eq!(served.matches(&format!("../{a}/data.ts\n")).count(), 2);
        assert!(!served.contains("/content"));
        assert!(served.contains("#EXT-X-BYTERANGE:900@1000\n"));
        // Anything else is left as it is.
        let other = "#EXTM3U\n#EXTINF:1,\nseg0.ts\n../zz/content\n";
        assert_eq!(with_extensions(other), other);
    }

    #[test]
    fn playlists_are_rewritten_to_node_paths_and_unknown_uris_refused() {
        let media = "#EXTM3U\n#EXTINF:1.000000,\n#EXT-X-BYTERANGE:1000@0\nstream_0.ts\n#EXTINF:0.5,\n#EXT-X-BYTERANGE:500\nstream_0.ts\n#EXT-X-ENDLIST\n";
        let map = [("stream_0.ts".to_string(), content_uri("ab"))];
        let out = rewrite_playlist(media, &map).unwrap();
        assert_eq!(out.matches("../ab/content").count(), 2);
        assert_eq!(segments(&out), vec![(1.0, 0, 1000), (0.5, 1000, 500)]);
        assert!(rewrite_playlist("#EXTM3U\nother.ts\n", &map)
            .unwrap_err()
            .contains("other.ts"));
    }
}
