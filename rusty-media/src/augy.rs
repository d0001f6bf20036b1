//! The `.augy` audio container: one audio stream (Opus in Ogg, or AAC in
//! ADTS) with its title, author, description and educational tags, sealed
//! by a BLAKE3 checksum.
//!
//! # Layout
//!
//! All integers are little-endian; text is UTF-8 with a `u16` byte length in
//! front. Fields follow each other with no padding:
//!
//! | Bytes      | Field            | Rule                                                  |
//! |------------|------------------|-------------------------------------------------------|
//! | 4          | magic            | `b"AUGY"`                                             |
//! | 1          | version          | `1`                                                   |
//! | 2 + n      | title            | 1 ..= 200 bytes                                       |
//! | 2 + n      | author           | 0 ..= 200 bytes                                       |
//! | 2 + n      | description      | 0 ..= 4000 bytes (line feeds allowed)                 |
//! | 2 + n      | subject          | 1 ..= 64 bytes                                        |
//! | 1          | difficulty       | 1 beginner, 2 intermediate, 3 advanced, 4 expert      |
//! | 8          | duration_ms      | 1 ..= 86 400 000 (24 h)                               |
//! | 1          | codec            | 1 Opus (in Ogg), 2 AAC (in ADTS)                      |
//! | 4          | sample_rate      | 8000, 16000, 24000, 44100 or 48000                    |
//! | 1          | channels         | 1 ..= 8                                               |
//! | 8          | audio_len        | 1 ..= 4 GiB                                           |
//! | audio_len  | audio            | starts with the codec's signature                     |
//! | 32         | checksum         | BLAKE3 derive-key (`"rusty-coin augy v1"`) of all the bytes before it |
//!
//! Text may not contain control characters (the description may contain
//! `\n`). Every file has exactly one encoding: whatever [`AugyFile::parse`]
//! accepts, [`AugyFile::pack`] writes back byte for byte.
//!
//! # Reading
//!
//! Fields are checked in file order as they are read; a length is checked
//! against its limit before anything is allocated or read for it. After
//! the audio come the checksum, then the end of input (no trailing bytes),
//! then the codec signature. [`AugyMeta::read_header`] and
//! [`AugyFile::unpack_to`] stream from any [`Read`] in 64 KiB pieces, so a
//! file of any size is checked in constant memory.

use std::{
    fmt,
    io::{self, Read, Write},
};

use serde::Serialize;
use thiserror::Error;

/// The first four bytes of every `.augy` file.
pub const MAGIC: [u8; 4] = *b"AUGY";
/// The format version this module reads and writes.
pub const VERSION: u8 = 1;
/// BLAKE3 derive-key context of the checksum.
pub const CHECKSUM_CONTEXT: &str = "rusty-coin augy v1";
/// Bytes in the trailing checksum.
pub const CHECKSUM_LEN: usize = 32;

/// Longest title, in bytes.
pub const MAX_TITLE_LEN: usize = 200;
/// Longest author, in bytes.
pub const MAX_AUTHOR_LEN: usize = 200;
/// Longest description, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 4000;
/// Longest subject, in bytes.
pub const MAX_SUBJECT_LEN: usize = 64;
/// Longest duration: 24 hours, in milliseconds.
pub const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;
/// The sample rates a file may declare, in Hz.
pub const SAMPLE_RATES: [u32; 5] = [8000, 16000, 24000, 44100, 48000];
/// Most audio channels.
pub const MAX_CHANNELS: u8 = 8;
/// Largest audio payload: 4 GiB.
pub const MAX_AUDIO_LEN: u64 = 4 * 1024 * 1024 * 1024;

/// Bytes of a file around its text and audio: magic, version, four text
/// lengths, the fixed-width fields, the audio length and the checksum.
pub const FIXED_LEN: usize = 4 + 1 + 4 * 2 + 1 + 8 + 1 + 4 + 1 + 8 + CHECKSUM_LEN;

/// An Ogg stream carrying Opus has `OpusHead` as the first packet of its
/// first page, right after the page header (27 bytes) and its segment table
/// (at most 255 bytes): it must start within this many bytes.
const OPUS_HEAD_WINDOW: usize = 27 + 255 + 8;

/// Audio is copied and hashed in pieces of this size.
const CHUNK: usize = 64 * 1024;

/// A field of the file, as named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AugyField {
    Magic,
    Version,
    Title,
    Author,
    Description,
    Subject,
    Difficulty,
    Duration,
    Codec,
    SampleRate,
    Channels,
    Audio,
    Checksum,
}

impl AugyField {
    pub fn name(self) -> &'static str {
        match self {
            AugyField::Magic => "magic",
            AugyField::Version => "version",
            AugyField::Title => "title",
            AugyField::Author => "author",
            AugyField::Description => "description",
            AugyField::Subject => "subject",
            AugyField::Difficulty => "difficulty",
            AugyField::Duration => "duration",
            AugyField::Codec => "codec",
            AugyField::SampleRate => "sample rate",
            AugyField::Channels => "channels",
            AugyField::Audio => "audio",
            AugyField::Checksum => "checksum",
        }
    }
}

impl fmt::Display for AugyField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why bytes are not a valid `.augy` file, or why a file cannot be packed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AugyError {
    /// The file does not start with `AUGY`.
    #[error("not an .augy file: it starts with \"{}\" instead of \"AUGY\"", .found.escape_ascii())]
    BadMagic { found: [u8; 4] },
    /// A version this build does not know.
    #[error("unsupported .augy version {0} (this build reads version {v})", v = VERSION)]
    UnsupportedVersion(u8),
    /// The input ends inside this field.
    #[error("truncated: the file ends inside the {0} field")]
    Truncated(AugyField),
    /// A text or the audio is longer than its limit.
    #[error("{field} is {len} bytes, more than the limit of {max}")]
    TooLong {
        field: AugyField,
        len: u64,
        max: u64,
    },
    /// The title, the subject or the audio is empty.
    #[error("{0} is empty")]
    Empty(AugyField),
    /// A text is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(AugyField),
    /// A text holds a control character.
    #[error("{field} contains the control character U+{code:04X} at byte {offset}")]
    ControlCharacter {
        field: AugyField,
        code: u32,
        offset: usize,
    },
    /// The difficulty or codec byte is no known value.
    #[error("unknown {field} tag {tag}")]
    UnknownTag { field: AugyField, tag: u8 },
    /// The duration, sample rate or channel count is out of range.
    #[error("{field} {value} is out of range ({})", allowed(.field))]
    OutOfRange { field: AugyField, value: u64 },
    /// The audio does not start with the declared codec's signature.
    #[error("the audio does not look like {declared}: {}", mismatch(.declared, .detected))]
    CodecMismatch {
        declared: Codec,
        /// The codec the payload does look like, if either.
        detected: Option<Codec>,
    },
    /// The stored checksum is not the checksum of the content.
    #[error(
        "checksum mismatch: the file says {} but its content hashes to {} (the file is corrupt)",
        hex::encode(.stored),
        hex::encode(.computed)
    )]
    ChecksumMismatch {
        stored: [u8; CHECKSUM_LEN],
        computed: [u8; CHECKSUM_LEN],
    },
    /// Bytes follow the checksum.
    #[error("{0} trailing bytes after the checksum")]
    TrailingBytes(u64),
    /// Reading the input failed (not a format error), or the audio given
    /// to [`AugyFile::pack_to`] is shorter or longer than announced.
    #[error("read error: {message}")]
    Read {
        kind: io::ErrorKind,
        message: String,
    },
    /// Writing the output failed.
    #[error("write error: {message}")]
    Write {
        kind: io::ErrorKind,
        message: String,
    },
}

impl AugyError {
    /// The field the error is about, if it is about one.
    pub fn field(&self) -> Option<AugyField> {
        match self {
            AugyError::BadMagic { .. } => Some(AugyField::Magic),
            AugyError::UnsupportedVersion(_) => Some(AugyField::Version),
            AugyError::Truncated(field)
            | AugyError::Empty(field)
            | AugyError::InvalidUtf8(field)
            | AugyError::TooLong { field, .. }
            | AugyError::ControlCharacter { field, .. }
            | AugyError::UnknownTag { field, .. }
            | AugyError::OutOfRange { field, .. } => Some(*field),
            AugyError::CodecMismatch { .. } => Some(AugyField::Audio),
            AugyError::ChecksumMismatch { .. } => Some(AugyField::Checksum),
            AugyError::TrailingBytes(_) | AugyError::Read { .. } | AugyError::Write { .. } => None,
        }
    }

    fn read(e: &io::Error) -> Self {
        AugyError::Read {
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    fn write(e: &io::Error) -> Self {
        AugyError::Write {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

fn allowed(field: &AugyField) -> &'static str {
    match field {
        AugyField::Duration => "1 ms to 24 h",
        AugyField::SampleRate => "8000, 16000, 24000, 44100 or 48000 Hz",
        AugyField::Channels => "1 to 8",
        _ => "not allowed",
    }
}

fn mismatch(declared: &Codec, detected: &Option<Codec>) -> String {
    let expected = match declared {
        Codec::Opus => "an Ogg stream (\"OggS\") whose first packet is \"OpusHead\"",
        Codec::Aac => "an ADTS stream (sync word 0xFFF, layer 0)",
    };
    match detected {
        Some(other) => format!("expected {expected}, found {other}"),
        None => format!("expected {expected}"),
    }
}

pub type Result<T, E = AugyError> = std::result::Result<T, E>;

/// How hard the material is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    Beginner = 1,
    Intermediate = 2,
    Advanced = 3,
    Expert = 4,
}

impl Difficulty {
    pub const ALL: [Difficulty; 4] = [
        Difficulty::Beginner,
        Difficulty::Intermediate,
        Difficulty::Advanced,
        Difficulty::Expert,
    ];

    /// The byte stored in the file.
    pub fn tag(self) -> u8 {
        self as u8
    }

    pub fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.tag() == tag)
    }

    pub fn name(self) -> &'static str {
        match self {
            Difficulty::Beginner => "beginner",
            Difficulty::Intermediate => "intermediate",
            Difficulty::Advanced => "advanced",
            Difficulty::Expert => "expert",
        }
    }
}

impl fmt::Display for Difficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The audio codec, with its framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Opus in an Ogg stream (`.opus`, RFC 7845).
    Opus = 1,
    /// AAC in an ADTS stream (`.aac`).
    Aac = 2,
}

impl Codec {
    pub const ALL: [Codec; 2] = [Codec::Opus, Codec::Aac];

    /// The byte stored in the file.
    pub fn tag(self) -> u8 {
        self as u8
    }

    pub fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.tag() == tag)
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::Aac => "aac",
        }
    }

    /// The codec whose signature `prefix` (the first bytes of the audio)
    /// carries: Ogg (`OggS`) with `OpusHead` where the first page's first
    /// packet can start, or an ADTS header: the sync word (twelve 1 bits)
    /// and layer `00` (MPEG audio frames such as MP3's carry a nonzero
    /// layer there).
    pub fn detect(prefix: &[u8]) -> Option<Codec> {
        if prefix.starts_with(b"OggS") {
            let window = &prefix[..prefix.len().min(OPUS_HEAD_WINDOW)];
            if window.windows(8).any(|w| w == b"OpusHead") {
                return Some(Codec::Opus);
            }
        }
        match prefix {
            // 1111 V LL P: sync, MPEG version, layer 00, protection.
            [0xff, b, ..] if b & 0xf6 == 0xf0 => Some(Codec::Aac),
            _ => None,
        }
    }

    /// Checks that the audio starts with this codec's signature.
    pub fn check(self, prefix: &[u8]) -> Result<()> {
        match Codec::detect(prefix) {
            Some(c) if c == self => Ok(()),
            detected => Err(AugyError::CodecMismatch {
                declared: self,
                detected,
            }),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything in a `.augy` file but the audio.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct AugyMeta {
    pub title: String,
    pub author: String,
    pub description: String,
    pub subject: String,
    pub difficulty: Difficulty,
    pub duration_ms: u64,
    pub codec: Codec,
    pub sample_rate: u32,
    pub channels: u8,
}

/// What [`AugyFile::inspect`] and [`AugyFile::unpack_to`] learn from a
/// stream, checksum verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AugyInfo {
    pub meta: AugyMeta,
    pub audio_len: u64,
    pub checksum: [u8; CHECKSUM_LEN],
    /// The whole file's size.
    pub file_len: u64,
}

/// A whole `.augy` file in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AugyFile {
    pub meta: AugyMeta,
    pub audio: Vec<u8>,
}

/// Which characters a text field takes.
#[derive(Clone, Copy)]
struct TextRule {
    field: AugyField,
    max: usize,
    non_empty: bool,
    newlines: bool,
}

const TITLE: TextRule = TextRule {
    field: AugyField::Title,
    max: MAX_TITLE_LEN,
    non_empty: true,
    newlines: false,
};
const AUTHOR: TextRule = TextRule {
    field: AugyField::Author,
    max: MAX_AUTHOR_LEN,
    non_empty: false,
    newlines: false,
};
const DESCRIPTION: TextRule = TextRule {
    field: AugyField::Description,
    max: MAX_DESCRIPTION_LEN,
    non_empty: false,
    newlines: true,
};
const SUBJECT: TextRule = TextRule {
    field: AugyField::Subject,
    max: MAX_SUBJECT_LEN,
    non_empty: true,
    newlines: false,
};

impl TextRule {
    fn check_len(self, len: usize) -> Result<()> {
        if len > self.max {
            return Err(AugyError::TooLong {
                field: self.field,
                len: len as u64,
                max: self.max as u64,
            });
        }
        if len == 0 && self.non_empty {
            return Err(AugyError::Empty(self.field));
        }
        Ok(())
    }

    fn check(self, text: &str) -> Result<()> {
        self.check_len(text.len())?;
        match text
            .char_indices()
            .find(|&(_, c)| c.is_control() && !(self.newlines && c == '\n'))
        {
            Some((offset, c)) => Err(AugyError::ControlCharacter {
                field: self.field,
                code: u32::from(c),
                offset,
            }),
            None => Ok(()),
        }
    }
}

fn check_duration(ms: u64) -> Result<()> {
    if ms == 0 || ms > MAX_DURATION_MS {
        return Err(AugyError::OutOfRange {
            field: AugyField::Duration,
            value: ms,
        });
    }
    Ok(())
}

fn check_sample_rate(rate: u32) -> Result<()> {
    if !SAMPLE_RATES.contains(&rate) {
        return Err(AugyError::OutOfRange {
            field: AugyField::SampleRate,
            value: u64::from(rate),
        });
    }
    Ok(())
}

fn check_channels(channels: u8) -> Result<()> {
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(AugyError::OutOfRange {
            field: AugyField::Channels,
            value: u64::from(channels),
        });
    }
    Ok(())
}

fn check_audio_len(len: u64) -> Result<()> {
    if len > MAX_AUDIO_LEN {
        return Err(AugyError::TooLong {
            field: AugyField::Audio,
            len,
            max: MAX_AUDIO_LEN,
        });
    }
    if len == 0 {
        return Err(AugyError::Empty(AugyField::Audio));
    }
    Ok(())
}

fn new_hasher() -> blake3::Hasher {
    blake3::Hasher::new_derive_key(CHECKSUM_CONTEXT)
}

/// The checksum of a file's bytes before the checksum.
pub fn checksum(content: &[u8]) -> [u8; CHECKSUM_LEN] {
    *new_hasher().update(content).finalize().as_bytes()
}

impl AugyMeta {
    /// Checks every field against its rule, in file order.
    pub fn validate(&self) -> Result<()> {
        TITLE.check(&self.title)?;
        AUTHOR.check(&self.author)?;
        DESCRIPTION.check(&self.description)?;
        SUBJECT.check(&self.subject)?;
        check_duration(self.duration_ms)?;
        check_sample_rate(self.sample_rate)?;
        check_channels(self.channels)
    }

    /// Bytes of a file with this metadata and `audio_len` bytes of audio.
    pub fn file_len(&self, audio_len: u64) -> u64 {
        let text =
            self.title.len() + self.author.len() + self.description.len() + self.subject.len();
        (FIXED_LEN + text) as u64 + audio_len
    }

    /// Everything before the audio, for metadata that passed
    /// [`AugyMeta::validate`] (so every text length fits its `u16`).
    fn encode_header(&self, audio_len: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.file_len(0) as usize);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        for text in [&self.title, &self.author, &self.description, &self.subject] {
            out.extend_from_slice(&(text.len() as u16).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out.push(self.difficulty.tag());
        out.extend_from_slice(&self.duration_ms.to_le_bytes());
        out.push(self.codec.tag());
        out.extend_from_slice(&self.sample_rate.to_le_bytes());
        out.push(self.channels);
        out.extend_from_slice(&audio_len.to_le_bytes());
        out
    }

    /// Reads a whole `.augy` stream without keeping its audio: the
    /// metadata and the audio's length, after every check (checksum and
    /// codec signature included) passed. Memory use does not depend on the
    /// file's size.
    pub fn read_header<R: Read>(reader: R) -> Result<(AugyMeta, u64)> {
        let info = AugyFile::inspect(reader)?;
        Ok((info.meta, info.audio_len))
    }
}

/// Reads fields and feeds every byte before the checksum to the hasher.
struct Decoder<R> {
    inner: R,
    hasher: blake3::Hasher,
    /// Bytes consumed so far.
    pos: u64,
}

impl<R: Read> Decoder<R> {
    fn new(inner: R) -> Self {
        Decoder {
            inner,
            hasher: new_hasher(),
            pos: 0,
        }
    }

    /// Fills `buf` from the input without hashing it.
    fn fill_raw(&mut self, buf: &mut [u8], field: AugyField) -> Result<()> {
        self.inner.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                AugyError::Truncated(field)
            } else {
                AugyError::read(&e)
            }
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn fill(&mut self, buf: &mut [u8], field: AugyField) -> Result<()> {
        self.fill_raw(buf, field)?;
        self.hasher.update(buf);
        Ok(())
    }

    fn array<const N: usize>(&mut self, field: AugyField) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.fill(&mut buf, field)?;
        Ok(buf)
    }

    fn u8(&mut self, field: AugyField) -> Result<u8> {
        Ok(self.array::<1>(field)?[0])
    }

    fn text(&mut self, rule: TextRule) -> Result<String> {
        let len = usize::from(u16::from_le_bytes(self.array(rule.field)?));
        // The limit before the allocation.
        rule.check_len(len)?;
        let mut buf = vec![0u8; len];
        self.fill(&mut buf, rule.field)?;
        let text = String::from_utf8(buf).map_err(|_| AugyError::InvalidUtf8(rule.field))?;
        rule.check(&text)?;
        Ok(text)
    }

    /// Everything up to the audio: the metadata and the audio's length.
    fn header(&mut self) -> Result<(AugyMeta, u64)> {
        let found = self.array::<4>(AugyField::Magic)?;
        if found != MAGIC {
            return Err(AugyError::BadMagic { found });
        }
        let version = self.u8(AugyField::Version)?;
        if version != VERSION {
            return Err(AugyError::UnsupportedVersion(version));
        }
        let title = self.text(TITLE)?;
        let author = self.text(AUTHOR)?;
        let description = self.text(DESCRIPTION)?;
        let subject = self.text(SUBJECT)?;
        let tag = self.u8(AugyField::Difficulty)?;
        let difficulty = Difficulty::from_tag(tag).ok_or(AugyError::UnknownTag {
            field: AugyField::Difficulty,
            tag,
        })?;
        let duration_ms = u64::from_le_bytes(self.array(AugyField::Duration)?);
        check_duration(duration_ms)?;
        let tag = self.u8(AugyField::Codec)?;
        let codec = Codec::from_tag(tag).ok_or(AugyError::UnknownTag {
            field: AugyField::Codec,
            tag,
        })?;
        let sample_rate = u32::from_le_bytes(self.array(AugyField::SampleRate)?);
        check_sample_rate(sample_rate)?;
        let channels = self.u8(AugyField::Channels)?;
        check_channels(channels)?;
        let audio_len = u64::from_le_bytes(self.array(AugyField::Audio)?);
        check_audio_len(audio_len)?;
        let meta = AugyMeta {
            title,
            author,
            description,
            subject,
            difficulty,
            duration_ms,
            codec,
            sample_rate,
            channels,
        };
        Ok((meta, audio_len))
    }

    /// Copies `len` bytes of audio to `sink` in bounded pieces; returns the
    /// first bytes, enough to recognise the codec.
    fn audio<W: Write + ?Sized>(&mut self, len: u64, sink: &mut W) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len.min(CHUNK as u64) as usize];
        let mut prefix = Vec::new();
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            let piece = &mut buf[..n];
            self.fill(piece, AugyField::Audio)?;
            if prefix.len() < OPUS_HEAD_WINDOW {
                let want = (OPUS_HEAD_WINDOW - prefix.len()).min(n);
                prefix.extend_from_slice(&piece[..want]);
            }
            sink.write_all(piece).map_err(|e| AugyError::write(&e))?;
            left -= n as u64;
        }
        Ok(prefix)
    }

    /// The checksum, the end of the input and the codec signature.
    fn finish(mut self, codec: Codec, prefix: &[u8]) -> Result<([u8; CHECKSUM_LEN], u64)> {
        let computed = *self.hasher.finalize().as_bytes();
        let mut stored = [0u8; CHECKSUM_LEN];
        self.fill_raw(&mut stored, AugyField::Checksum)?;
        if stored != computed {
            return Err(AugyError::ChecksumMismatch { stored, computed });
        }
        let trailing =
            io::copy(&mut self.inner, &mut io::sink()).map_err(|e| AugyError::read(&e))?;
        if trailing > 0 {
            return Err(AugyError::TrailingBytes(trailing));
        }
        codec.check(prefix)?;
        Ok((stored, self.pos))
    }
}

impl AugyFile {
    /// Checks the metadata and audio and returns the file's bytes.
    pub fn pack(meta: &AugyMeta, audio: &[u8]) -> Result<Vec<u8>> {
        let capacity = usize::try_from(meta.file_len(audio.len() as u64)).unwrap_or(0);
        let mut out = Vec::with_capacity(capacity);
        AugyFile::pack_to(meta, audio, audio.len() as u64, &mut out)?;
        Ok(out)
    }

    /// This file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        AugyFile::pack(&self.meta, &self.audio)
    }

    /// Streams a file to `out`: `audio_len` bytes of audio from `audio`,
    /// which must hold exactly that many. Everything that can be checked
    /// before writing is (the metadata, the length, the codec signature);
    /// an audio source that is shorter or longer than `audio_len` fails with
    /// [`AugyError::Read`] after part of the file was written. Returns the
    /// checksum.
    pub fn pack_to<R: Read, W: Write>(
        meta: &AugyMeta,
        mut audio: R,
        audio_len: u64,
        mut out: W,
    ) -> Result<[u8; CHECKSUM_LEN]> {
        meta.validate()?;
        check_audio_len(audio_len)?;
        let short = |done: u64| AugyError::Read {
            kind: io::ErrorKind::UnexpectedEof,
            message: format!("the audio ended after {done} of {audio_len} bytes"),
        };
        let read_err = |e: io::Error| AugyError::read(&e);
        let write_err = |e: io::Error| AugyError::write(&e);

        // The first piece, to check the codec before anything is written.
        let mut buf = vec![0u8; audio_len.min(CHUNK as u64) as usize];
        let mut n = read_full(&mut audio, &mut buf).map_err(read_err)?;
        if n < buf.len() {
            return Err(short(n as u64));
        }
        meta.codec.check(&buf)?;

        let header = meta.encode_header(audio_len);
        let mut hasher = new_hasher();
        hasher.update(&header);
        out.write_all(&header).map_err(write_err)?;
        let mut done = 0u64;
        loop {
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(write_err)?;
            done += n as u64;
            if done == audio_len {
                break;
            }
            let want = (audio_len - done).min(buf.len() as u64) as usize;
            n = read_full(&mut audio, &mut buf[..want]).map_err(read_err)?;
            if n < want {
                return Err(short(done + n as u64));
            }
        }
        if read_full(&mut audio, &mut [0u8; 1]).map_err(read_err)? > 0 {
            return Err(AugyError::Read {
                kind: io::ErrorKind::InvalidInput,
                message: format!("the audio is longer than the {audio_len} bytes announced"),
            });
        }
        let sum = *hasher.finalize().as_bytes();
        out.write_all(&sum).map_err(write_err)?;
        out.flush().map_err(write_err)?;
        Ok(sum)
    }

    /// Parses and checks a whole file held in memory.
    pub fn parse(bytes: &[u8]) -> Result<AugyFile> {
        let mut d = Decoder::new(bytes);
        let (meta, audio_len) = d.header()?;
        // `d.inner` is what is left of the input: never allocate more.
        if audio_len > d.inner.len() as u64 {
            return Err(AugyError::Truncated(AugyField::Audio));
        }
        let mut audio = Vec::with_capacity(audio_len as usize);
        let prefix = d.audio(audio_len, &mut audio)?;
        d.finish(meta.codec, &prefix)?;
        Ok(AugyFile { meta, audio })
    }

    /// The audio of a file held in memory, after every check.
    pub fn unpack(bytes: &[u8]) -> Result<Vec<u8>> {
        Ok(AugyFile::parse(bytes)?.audio)
    }

    /// Reads and checks a whole stream without keeping its audio.
    pub fn inspect<R: Read>(reader: R) -> Result<AugyInfo> {
        AugyFile::unpack_to(reader, &mut io::sink())
    }

    /// Streams a file's audio to `out`. The audio is written before the
    /// checksum at its end is read: on error, discard what was written.
    pub fn unpack_to<R: Read, W: Write + ?Sized>(reader: R, out: &mut W) -> Result<AugyInfo> {
        let mut d = Decoder::new(reader);
        let (meta, audio_len) = d.header()?;
        let prefix = d.audio(audio_len, out)?;
        let (checksum, file_len) = d.finish(meta.codec, &prefix)?;
        out.flush().map_err(|e| AugyError::write(&e))?;
        Ok(AugyInfo {
            meta,
            audio_len,
            checksum,
            file_len,
        })
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests;
