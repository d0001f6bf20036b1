//! Writing a response: which route a path names, the status line and
//! header block (date, content type and disposition), and the HLS playlist
//! of a live window. Formatting only, no I/O: the connection loop in
//! [`super`] decides what to send and writes these bytes to the socket.

use std::{
    fmt::Write as _,
    time::{SystemTime, UNIX_EPOCH},
};

use super::{MIME_FALLBACK, SERVER};

/// A live stream's window, as a playlist lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveWindow {
    /// `(seq, duration_ms)`, oldest first.
    pub segments: Vec<(u64, u32)>,
    /// The stream ended: no segment will be added.
    pub ended: bool,
    /// Where a player joining now should start, when that is not where it
    /// would on its own (see [`hls_playlist`]).
    pub start: Option<u64>,
    /// The longest segment of the stream so far, ms, for the target
    /// duration (see [`hls_playlist`]); 0 if unknown.
    pub longest_ms: u32,
}

/// The HLS (version 3) media playlist of a live window; `None` if the window
/// is empty. Once the stream `ended`, the playlist says so
/// (`#EXT-X-ENDLIST`), and players stop reloading it and end playback at
/// its last segment.
///
/// Segments are sorted by sequence number (duplicates dropped) and only the
/// run of consecutive sequence numbers from the oldest one is listed: a
/// playlist numbers its segments from `#EXT-X-MEDIA-SEQUENCE` on, so a gap
/// cannot be expressed, and segments after it wait until it is filled or
/// drops out of the window (the media sequence never goes backwards).
///
/// `start`, a listed segment, is where a player joining now should begin
/// (`#EXT-X-START`, a negative offset from the end, `PRECISE=YES`): the
/// newest segment a decoder can start at, given when a segment near the
/// end cannot be (cut inside a GOP larger than a segment), since players
/// start a few segments before the end on their own.
///
/// The target duration is [`hls_target_duration`]'s.
pub fn hls_playlist(window: &LiveWindow) -> Option<String> {
    let (ended, start) = (window.ended, window.start);
    let mut segments = window.segments.clone();
    segments.sort_by_key(|&(seq, _)| seq);
    segments.dedup_by_key(|&mut (seq, _)| seq);
    let first = segments.first()?.0;
    // `seq + 1 == next`, without overflow at u64::MAX.
    let run = 1 + segments
        .windows(2)
        .take_while(|pair| pair[0].0.checked_add(1) == Some(pair[1].0))
        .count();
    let segments = segments.get(..run)?;
    let max_ms = segments.iter().map(|&(_, ms)| u64::from(ms)).max()?;
    let target = hls_target_duration(max_ms, window.longest_ms);
    let mut out = String::new();
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
    );
    if let Some(line) = start.and_then(|s| hls_start_line(segments, s)) {
        out.push_str(&line);
    }
    for &(seq, ms) in segments {
        let _ = write!(
            out,
            "#EXTINF:{}.{:03},\nlive/{seq}.ts\n",
            ms / 1000,
            ms % 1000
        );
    }
    if ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    Some(out)
}

/// A live playlist's `#EXT-X-TARGETDURATION`, whole seconds (at least 1):
/// the longest segment of the stream so far (`longest_ms`, counted up to
/// [`crate::live::MAX_REMEMBERED_SEGMENT_MS`]), or of the window
/// (`window_max_ms`) if longer. HLS says it must not change between
/// reloads, and a window's own longest goes down as long segments leave
/// it; it still goes up when a longer segment than any before comes.
pub fn hls_target_duration(window_max_ms: u64, longest_ms: u32) -> u64 {
    let remembered = longest_ms.min(crate::live::MAX_REMEMBERED_SEGMENT_MS);
    window_max_ms
        .max(u64::from(remembered))
        .div_ceil(1000)
        .max(1)
}

/// The `#EXT-X-START` line (with its newline) of a live playlist listing
/// `segments` (`(seq, duration_ms)`, oldest first) that points players at
/// segment `start`: a negative offset from the end, `PRECISE=YES`. `None`
/// if `start` is not listed.
pub fn hls_start_line(segments: &[(u64, u32)], start: u64) -> Option<String> {
    let at = segments.iter().position(|&(seq, _)| seq == start)?;
    let from_end: u64 = segments[at..].iter().map(|&(_, ms)| u64::from(ms)).sum();
    Some(format!(
        "#EXT-X-START:TIME-OFFSET=-{}.{:03},PRECISE=YES\n",
        from_end / 1000,
        from_end % 1000
    ))
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    Root,
    Content,
    Playlist,
    Segment(u64),
    NotFound,
}

impl Route {
    pub(super) fn of(path: &str) -> Self {
        match path {
            "/" => Self::Root,
            "/content" => Self::Content,
            "/live.m3u8" => Self::Playlist,
            _ => path
                .strip_prefix("/live/")
                .and_then(|rest| rest.strip_suffix(".ts"))
                .filter(|digits| digits.len() <= 20)
                .and_then(|digits| {
                    if digits.bytes().all(|b| b.is_ascii_digit()) {
                        digits.parse().ok()
                    } else {
                        None
                    }
                })
                .map_or(Self::NotFound, Self::Segment),
        }
    }
}

pub(super) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// A response head. `headers` values must be free of CR and LF.
pub(super) fn render_head(
    status: u16,
    headers: &[(&str, String)],
    content_length: u64,
    keep_alive: bool,
    http10: bool,
) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nDate: {}\r\nServer: {SERVER}\r\n",
        reason(status),
        http_date(SystemTime::now())
    );
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    let _ = write!(out, "Content-Length: {content_length}\r\n");
    if !keep_alive {
        out.push_str("Connection: close\r\n");
    } else if http10 {
        out.push_str("Connection: keep-alive\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(super) fn http_date(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .min(253_402_300_799); // 9999-12-31T23:59:59Z
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm), in
    // unsigned arithmetic: dates from 1970 on only.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let weekday = DAYS.get((days % 7) as usize).copied().unwrap_or("Thu");
    let month = MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("Jan");
    format!(
        "{weekday}, {day:02} {month} {year} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `Content-Type` value: the source's MIME type if it is safe in a header.
pub(super) fn content_type(mime: &str) -> String {
    let ok =
        !mime.is_empty() && mime.len() <= 200 && mime.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if ok {
        mime.to_owned()
    } else {
        MIME_FALLBACK.to_owned()
    }
}

/// `Content-Disposition: inline` with the title as the file name (RFC 8187
/// percent-encoding, so any title is safe in the header).
pub(super) fn content_disposition(title: &str) -> Option<String> {
    if title.is_empty() {
        return None;
    }
    let mut out = String::from("inline; filename*=UTF-8''");
    for &b in title.as_bytes().iter().take(600) {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Some(out)
}
