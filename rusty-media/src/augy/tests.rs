//! Unit tests of `augy`.

use proptest::prelude::*;

use super::*;

/// A minimal Ogg page carrying an Opus identification header, then
/// `extra` bytes.
fn opus_audio(extra: &[u8]) -> Vec<u8> {
    let mut a = b"OggS".to_vec();
    a.push(0); // stream structure version
    a.push(2); // beginning of stream
    a.extend_from_slice(&0u64.to_le_bytes()); // granule position
    a.extend_from_slice(&1u32.to_le_bytes()); // serial
    a.extend_from_slice(&0u32.to_le_bytes()); // sequence
    a.extend_from_slice(&0u32.to_le_bytes()); // CRC (not checked)
    a.push(1); // one segment
    a.push(19); // of 19 bytes
    a.extend_from_slice(b"OpusHead");
    a.push(1); // version
    a.push(2); // channels
    a.extend_from_slice(&312u16.to_le_bytes()); // pre-skip
    a.extend_from_slice(&48_000u32.to_le_bytes());
    a.extend_from_slice(&0u16.to_le_bytes()); // gain
    a.push(0); // mapping family
    a.extend_from_slice(extra);
    a
}

/// One ADTS frame header, then `extra` bytes.
fn aac_audio(extra: &[u8]) -> Vec<u8> {
    let mut a = vec![0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc];
    a.extend_from_slice(extra);
    a
}

fn meta() -> AugyMeta {
    AugyMeta {
        title: "Photosynthesis in ten minutes".into(),
        author: "Ada Green".into(),
        description: "How plants turn light into sugar.\nWith a short quiz.".into(),
        subject: "biology".into(),
        difficulty: Difficulty::Intermediate,
        duration_ms: 600_000,
        codec: Codec::Opus,
        sample_rate: 48_000,
        channels: 2,
    }
}

/// Raw fields, written without any check, sealed with a good checksum.
#[derive(Clone)]
struct Raw {
    magic: [u8; 4],
    version: u8,
    title: Vec<u8>,
    author: Vec<u8>,
    description: Vec<u8>,
    subject: Vec<u8>,
    difficulty: u8,
    duration_ms: u64,
    codec: u8,
    sample_rate: u32,
    channels: u8,
    audio_len: Option<u64>,
    audio: Vec<u8>,
}

impl Raw {
    fn good() -> Raw {
        let m = meta();
        Raw {
            magic: MAGIC,
            version: VERSION,
            title: m.title.into_bytes(),
            author: m.author.into_bytes(),
            description: m.description.into_bytes(),
            subject: m.subject.into_bytes(),
            difficulty: m.difficulty.tag(),
            duration_ms: m.duration_ms,
            codec: m.codec.tag(),
            sample_rate: m.sample_rate,
            channels: m.channels,
            audio_len: None,
            audio: opus_audio(b"some audio"),
        }
    }

    fn content(&self) -> Vec<u8> {
        let mut out = self.magic.to_vec();
        out.push(self.version);
        for t in [&self.title, &self.author, &self.description, &self.subject] {
            out.extend_from_slice(&(t.len() as u16).to_le_bytes());
            out.extend_from_slice(t);
        }
        out.push(self.difficulty);
        out.extend_from_slice(&self.duration_ms.to_le_bytes());
        out.push(self.codec);
        out.extend_from_slice(&self.sample_rate.to_le_bytes());
        out.push(self.channels);
        let len = self.audio_len.unwrap_or(self.audio.len() as u64);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&self.audio);
        out
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = self.content();
        let sum = checksum(&out);
        out.extend_from_slice(&sum);
        out
    }
}

/// Parse and streaming inspect agree on every input.
fn both(bytes: &[u8]) -> Result<AugyFile> {
    let parsed = AugyFile::parse(bytes);
    let streamed = AugyMeta::read_header(bytes);
    assert_eq!(
        parsed
            .as_ref()
            .map(|f| (f.meta.clone(), f.audio.len() as u64)),
        streamed.as_ref().map(|(m, l)| (m.clone(), *l)),
    );
    parsed
}

#[test]
fn augy_round_trip() {
    let audio = opus_audio(&[7u8; 5000]);
    let bytes = AugyFile::pack(&meta(), &audio).unwrap();
    assert_eq!(&bytes[..4], b"AUGY");
    assert_eq!(bytes.len() as u64, meta().file_len(audio.len() as u64));
    let file = both(&bytes).unwrap();
    assert_eq!(file.meta, meta());
    assert_eq!(file.audio, audio);
    assert_eq!(file.to_bytes().unwrap(), bytes);
    assert_eq!(AugyFile::unpack(&bytes).unwrap(), audio);
    assert_eq!(
        Raw::good().bytes(),
        AugyFile::pack(&meta(), &Raw::good().audio).unwrap()
    );

    let mut out = Vec::new();
    let info = AugyFile::unpack_to(&bytes[..], &mut out).unwrap();
    assert_eq!(out, audio);
    assert_eq!(info.meta, meta());
    assert_eq!(info.audio_len, audio.len() as u64);
    assert_eq!(info.file_len, bytes.len() as u64);
    assert_eq!(info.checksum[..], bytes[bytes.len() - 32..]);

    // AAC, every difficulty, the limits themselves.
    for difficulty in Difficulty::ALL {
        let m = AugyMeta {
            title: "t".repeat(MAX_TITLE_LEN),
            author: String::new(),
            description: "é".repeat(MAX_DESCRIPTION_LEN / 2),
            subject: "s".repeat(MAX_SUBJECT_LEN),
            difficulty,
            duration_ms: MAX_DURATION_MS,
            codec: Codec::Aac,
            sample_rate: 8000,
            channels: MAX_CHANNELS,
        };
        let audio = aac_audio(b"frame");
        let bytes = AugyFile::pack(&m, &audio).unwrap();
        let file = both(&bytes).unwrap();
        assert_eq!(file.meta, m);
        assert_eq!(file.audio, audio);
    }
}

#[test]
fn augy_layout_is_as_documented() {
    let m = AugyMeta {
        title: "T".into(),
        author: "A".into(),
        description: String::new(),
        subject: "S".into(),
        difficulty: Difficulty::Expert,
        duration_ms: 1500,
        codec: Codec::Aac,
        sample_rate: 44_100,
        channels: 1,
    };
    let audio = aac_audio(&[]);
    let bytes = AugyFile::pack(&m, &audio).unwrap();
    let mut expect = b"AUGY\x01".to_vec();
    expect.extend_from_slice(&[1, 0, b'T', 1, 0, b'A', 0, 0, 1, 0, b'S']);
    expect.push(4);
    expect.extend_from_slice(&1500u64.to_le_bytes());
    expect.push(2);
    expect.extend_from_slice(&44_100u32.to_le_bytes());
    expect.push(1);
    expect.extend_from_slice(&(audio.len() as u64).to_le_bytes());
    expect.extend_from_slice(&audio);
    let sum = blake3::derive_key("rusty-coin augy v1", &expect);
    expect.extend_from_slice(&sum);
    assert_eq!(bytes, expect);
    assert_eq!(bytes.len(), FIXED_LEN + 3 + audio.len());
}

#[test]
fn augy_each_bad_field_has_its_error() {
    use AugyField as F;
    let cases: Vec<(Raw, AugyError)> = vec![
        (
            Raw {
                magic: *b"AUGZ",
                ..Raw::good()
            },
            AugyError::BadMagic { found: *b"AUGZ" },
        ),
        (
            Raw {
                version: 2,
                ..Raw::good()
            },
            AugyError::UnsupportedVersion(2),
        ),
        (
            Raw {
                title: vec![b'x'; 201],
                ..Raw::good()
            },
            AugyError::TooLong {
                field: F::Title,
                len: 201,
                max: 200,
            },
        ),
        (
            Raw {
                title: vec![],
                ..Raw::good()
            },
            AugyError::Empty(F::Title),
        ),
        (
            Raw {
                title: b"bad \xff byte".to_vec(),
                ..Raw::good()
            },
            AugyError::InvalidUtf8(F::Title),
        ),
        (
            Raw {
                title: b"two\nlines".to_vec(),
                ..Raw::good()
            },
            AugyError::ControlCharacter {
                field: F::Title,
                code: 0x0a,
                offset: 3,
            },
        ),
        (
            Raw {
                author: vec![b'x'; 201],
                ..Raw::good()
            },
            AugyError::TooLong {
                field: F::Author,
                len: 201,
                max: 200,
            },
        ),
        (
            Raw {
                author: b"\x1b[31mred".to_vec(),
                ..Raw::good()
            },
            AugyError::ControlCharacter {
                field: F::Author,
                code: 0x1b,
                offset: 0,
            },
        ),
        (
            Raw {
                author: b"\xc3".to_vec(),
                ..Raw::good()
            },
            AugyError::InvalidUtf8(F::Author),
        ),
        (
            Raw {
                description: vec![b'x'; 4001],
                ..Raw::good()
            },
            AugyError::TooLong {
                field: F::Description,
                len: 4001,
                max: 4000,
            },
        ),
        (
            Raw {
                description: "tab\there".as_bytes().to_vec(),
                ..Raw::good()
            },
            AugyError::ControlCharacter {
                field: F::Description,
                code: 0x09,
                offset: 3,
            },
        ),
        (
            Raw {
                // C1 controls are control characters too.
                description: "a\u{85}b".as_bytes().to_vec(),
                ..Raw::good()
            },
            AugyError::ControlCharacter {
                field: F::Description,
                code: 0x85,
                offset: 1,
            },
        ),
        (
            Raw {
                subject: vec![b'x'; 65],
                ..Raw::good()
            },
            AugyError::TooLong {
                field: F::Subject,
                len: 65,
                max: 64,
            },
        ),
        (
            Raw {
                subject: vec![],
                ..Raw::good()
            },
            AugyError::Empty(F::Subject),
        ),
        (
            Raw {
                subject: b"\xed\xa0\x80".to_vec(), // a UTF-16 surrogate
                ..Raw::good()
            },
            AugyError::InvalidUtf8(F::Subject),
        ),
        (
            Raw {
                difficulty: 0,
                ..Raw::good()
            },
            AugyError::UnknownTag {
                field: F::Difficulty,
                tag: 0,
            },
        ),
        (
            Raw {
                difficulty: 5,
                ..Raw::good()
            },
            AugyError::UnknownTag {
                field: F::Difficulty,
                tag: 5,
            },
        ),
        (
            Raw {
                duration_ms: 0,
                ..Raw::good()
            },
            AugyError::OutOfRange {
                field: F::Duration,
                value: 0,
            },
        ),
        (
            Raw {
                duration_ms: MAX_DURATION_MS + 1,
                ..Raw::good()
            },
            AugyError::OutOfRange {
                field: F::Duration,
                value: MAX_DURATION_MS + 1,
            },
        ),
        (
            Raw {
                codec: 3,
                ..Raw::good()
            },
            AugyError::UnknownTag {
                field: F::Codec,
                tag: 3,
            },
        ),
        (
            Raw {
                codec: 0,
                ..Raw::good()
            },
            AugyError::UnknownTag {
                field: F::Codec,
                tag: 0,
            },
        ),
        (
            Raw {
                sample_rate: 22_050,
                ..Raw::good()
            },
            AugyError::OutOfRange {
                field: F::SampleRate,
                value: 22_050,
            },
        ),
        (
            Raw {
                channels: 0,
                ..Raw::good()
            },
            AugyError::OutOfRange {
                field: F::Channels,
                value: 0,
            },
        ),
        (
            Raw {
                channels: 9,
                ..Raw::good()
            },
            AugyError::OutOfRange {
                field: F::Channels,
                value: 9,
            },
        ),
        (
            Raw {
                audio: vec![],
                ..Raw::good()
            },
            AugyError::Empty(F::Audio),
        ),
        (
            // Larger than 4 GiB: refused from the length alone.
            Raw {
                audio_len: Some(MAX_AUDIO_LEN + 1),
                ..Raw::good()
            },
            AugyError::TooLong {
                field: F::Audio,
                len: MAX_AUDIO_LEN + 1,
                max: MAX_AUDIO_LEN,
            },
        ),
        (
            // Exactly 4 GiB announced, a few bytes present: nothing is
            // allocated for it.
            Raw {
                audio_len: Some(MAX_AUDIO_LEN),
                ..Raw::good()
            },
            AugyError::Truncated(F::Audio),
        ),
        (
            Raw {
                codec: Codec::Aac.tag(),
                ..Raw::good()
            },
            AugyError::CodecMismatch {
                declared: Codec::Aac,
                detected: Some(Codec::Opus),
            },
        ),
        (
            Raw {
                audio: aac_audio(b"x"),
                ..Raw::good()
            },
            AugyError::CodecMismatch {
                declared: Codec::Opus,
                detected: Some(Codec::Aac),
            },
        ),
        (
            // Ogg, but not Opus.
            Raw {
                audio: b"OggS\0\x02........vorbis".to_vec(),
                ..Raw::good()
            },
            AugyError::CodecMismatch {
                declared: Codec::Opus,
                detected: None,
            },
        ),
        (
            Raw {
                audio: b"RIFF....WAVE".to_vec(),
                codec: Codec::Aac.tag(),
                ..Raw::good()
            },
            AugyError::CodecMismatch {
                declared: Codec::Aac,
                detected: None,
            },
        ),
        (
            // An MP3 frame: the same sync bits, but layer III.
            Raw {
                audio: vec![0xff, 0xfb, 0x90, 0x64, 0, 0],
                codec: Codec::Aac.tag(),
                ..Raw::good()
            },
            AugyError::CodecMismatch {
                declared: Codec::Aac,
                detected: None,
            },
        ),
    ];
    for (raw, want) in cases {
        assert_eq!(both(&raw.bytes()), Err(want.clone()), "{want}");
        // `pack` refuses the same metadata and audio where it can be
        // expressed (valid UTF-8, known tags, an honest length).
        let (Ok(title), Ok(author), Ok(description), Ok(subject)) = (
            String::from_utf8(raw.title.clone()),
            String::from_utf8(raw.author.clone()),
            String::from_utf8(raw.description.clone()),
            String::from_utf8(raw.subject.clone()),
        ) else {
            continue;
        };
        let (Some(difficulty), Some(codec)) = (
            Difficulty::from_tag(raw.difficulty),
            Codec::from_tag(raw.codec),
        ) else {
            continue;
        };
        if raw.magic != MAGIC || raw.version != VERSION || raw.audio_len.is_some() {
            continue;
        }
        let m = AugyMeta {
            title,
            author,
            description,
            subject,
            difficulty,
            duration_ms: raw.duration_ms,
            codec,
            sample_rate: raw.sample_rate,
            channels: raw.channels,
        };
        assert_eq!(AugyFile::pack(&m, &raw.audio), Err(want.clone()), "{want}");
    }
}

#[test]
fn augy_checksum_trailing_and_truncation() {
    let good = Raw::good().bytes();
    let n = good.len();

    // Any flipped bit in the audio or the checksum: checksum mismatch.
    for i in [n - 40, n - 33, n - 32, n - 1] {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        assert!(
            matches!(both(&bad), Err(AugyError::ChecksumMismatch { .. })),
            "byte {i}"
        );
    }

    // A trailing byte.
    let mut long = good.clone();
    long.push(0);
    assert_eq!(both(&long), Err(AugyError::TrailingBytes(1)));
    long.extend_from_slice(&[0; 9]);
    assert_eq!(both(&long), Err(AugyError::TrailingBytes(10)));

    // Every truncation names the field it cuts into.
    let raw = Raw::good();
    let title_end = 5 + 2 + raw.title.len();
    let audio_start = n - 32 - raw.audio.len();
    for len in 0..n {
        let want = match len {
            0..=3 => AugyField::Magic,
            4 => AugyField::Version,
            l if l < title_end => AugyField::Title,
            l if l >= n - 32 => AugyField::Checksum,
            l if l >= audio_start - 8 => AugyField::Audio,
            _ => continue,
        };
        assert_eq!(both(&good[..len]), Err(AugyError::Truncated(want)), "{len}");
    }
    for len in 0..n {
        assert!(
            matches!(both(&good[..len]), Err(AugyError::Truncated(_))),
            "{len}"
        );
    }
}

#[test]
fn augy_pack_to_checks_the_audio_source_length() {
    let audio = opus_audio(b"0123456789");
    let n = audio.len() as u64;
    let mut out = Vec::new();
    let err = AugyFile::pack_to(&meta(), &audio[..], n + 1, &mut out).unwrap_err();
    assert!(
        matches!(
            err,
            AugyError::Read {
                kind: io::ErrorKind::UnexpectedEof,
                ..
            }
        ),
        "{err}"
    );
    let err = AugyFile::pack_to(&meta(), &audio[..], n - 1, &mut out).unwrap_err();
    assert!(
        matches!(
            err,
            AugyError::Read {
                kind: io::ErrorKind::InvalidInput,
                ..
            }
        ),
        "{err}"
    );
    out.clear();
    let sum = AugyFile::pack_to(&meta(), &audio[..], n, &mut out).unwrap();
    assert_eq!(out, AugyFile::pack(&meta(), &audio).unwrap());
    assert_eq!(sum[..], out[out.len() - 32..]);
}

#[test]
fn augy_errors_name_the_field() {
    let e = AugyError::TooLong {
        field: AugyField::Title,
        len: 201,
        max: 200,
    };
    assert_eq!(
        e.to_string(),
        "title is 201 bytes, more than the limit of 200"
    );
    assert_eq!(e.field(), Some(AugyField::Title));
    let e = AugyError::OutOfRange {
        field: AugyField::SampleRate,
        value: 22_050,
    };
    assert_eq!(
        e.to_string(),
        "sample rate 22050 is out of range (8000, 16000, 24000, 44100 or 48000 Hz)"
    );
    let e = AugyError::CodecMismatch {
        declared: Codec::Aac,
        detected: Some(Codec::Opus),
    };
    assert!(e.to_string().contains("found opus"), "{e}");
    let e = AugyError::Truncated(AugyField::Checksum);
    assert_eq!(
        e.to_string(),
        "truncated: the file ends inside the checksum field"
    );
}

/// Serves a reader's bytes and records how it was read.
struct Probe<R> {
    inner: R,
    total: u64,
    largest: usize,
}

impl<R: Read> Read for Probe<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.largest = self.largest.max(buf.len());
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        Ok(n)
    }
}

/// `len` bytes of a pattern, produced on demand.
struct Pattern {
    left: u64,
    next: u8,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for b in &mut buf[..n] {
            *b = self.next;
            self.next = self.next.wrapping_mul(31).wrapping_add(7);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[test]
fn augy_inspect_streams_10_mib() {
    const LEN: u64 = 10 * 1024 * 1024;
    let head = opus_audio(&[]);
    let audio = || {
        (&head[..]).chain(Pattern {
            left: LEN - head.len() as u64,
            next: 1,
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.augy");
    let file = std::fs::File::create(&path).unwrap();
    let sum = AugyFile::pack_to(&meta(), audio(), LEN, io::BufWriter::new(file)).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(size, meta().file_len(LEN));

    // Inspect reads the file once, in pieces of at most 64 KiB.
    let mut probe = Probe {
        inner: std::fs::File::open(&path).unwrap(),
        total: 0,
        largest: 0,
    };
    let info = AugyFile::inspect(&mut probe).unwrap();
    assert_eq!(info.meta, meta());
    assert_eq!(info.audio_len, LEN);
    assert_eq!(info.checksum, sum);
    assert_eq!(info.file_len, size);
    assert_eq!(probe.total, size);
    assert!(
        probe.largest <= CHUNK,
        "read {} bytes at once",
        probe.largest
    );
    let (m, len) = AugyMeta::read_header(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!((m, len), (meta(), LEN));

    // Streamed unpack gives the audio back.
    let mut hasher = blake3::Hasher::new();
    let mut expected = blake3::Hasher::new();
    io::copy(&mut audio(), &mut expected).unwrap();
    AugyFile::unpack_to(std::fs::File::open(&path).unwrap(), &mut hasher).unwrap();
    assert_eq!(hasher.finalize(), expected.finalize());

    // A flipped byte deep in the audio is caught while streaming.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5 * 1024 * 1024] ^= 0x80;
    assert!(matches!(
        AugyMeta::read_header(&bytes[..]),
        Err(AugyError::ChecksumMismatch { .. })
    ));
}

fn text(max: usize, non_empty: bool, newlines: bool) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..40).prop_map(move |chars| {
        let mut s = String::new();
        for c in chars {
            if (c.is_control() && !(newlines && c == '\n')) || s.len() + c.len_utf8() > max {
                continue;
            }
            s.push(c);
        }
        if non_empty && s.is_empty() {
            s.push('a');
        }
        s
    })
}

fn any_meta() -> impl Strategy<Value = AugyMeta> {
    (
        (
            text(MAX_TITLE_LEN, true, false),
            text(MAX_AUTHOR_LEN, false, false),
            text(MAX_DESCRIPTION_LEN, false, true),
            text(MAX_SUBJECT_LEN, true, false),
        ),
        proptest::sample::select(Difficulty::ALL.to_vec()),
        1..=MAX_DURATION_MS,
        proptest::sample::select(Codec::ALL.to_vec()),
        proptest::sample::select(SAMPLE_RATES.to_vec()),
        1..=MAX_CHANNELS,
    )
        .prop_map(
            |(
                (title, author, description, subject),
                difficulty,
                duration_ms,
                codec,
                sample_rate,
                channels,
            )| AugyMeta {
                title,
                author,
                description,
                subject,
                difficulty,
                duration_ms,
                codec,
                sample_rate,
                channels,
            },
        )
}

fn audio_for(codec: Codec, extra: &[u8]) -> Vec<u8> {
    match codec {
        Codec::Opus => opus_audio(extra),
        Codec::Aac => aac_audio(extra),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Garbage never panics; anything that parses re-packs to exactly
    /// the input.
    #[test]
    fn augy_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(file) = both(&bytes) {
            prop_assert_eq!(file.to_bytes().unwrap(), bytes);
        }
    }

    /// The same, past the magic and the checksum: random content after
    /// `AUGY 1`, sealed with its own checksum.
    #[test]
    fn augy_sealed_random_content_reencodes(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = b"AUGY\x01".to_vec();
        bytes.extend_from_slice(&body);
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum);
        if let Ok(file) = both(&bytes) {
            prop_assert_eq!(file.to_bytes().unwrap(), bytes);
        }
    }

    /// Valid files round-trip, and every single-byte change or
    /// truncation of one is rejected.
    #[test]
    fn augy_valid_files_round_trip_and_resist_corruption(
        m in any_meta(),
        extra in proptest::collection::vec(any::<u8>(), 0..300),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        cut in any::<prop::sample::Index>(),
    ) {
        let audio = audio_for(m.codec, &extra);
        let bytes = AugyFile::pack(&m, &audio).unwrap();
        let file = both(&bytes).unwrap();
        prop_assert_eq!(&file.meta, &m);
        prop_assert_eq!(&file.audio, &audio);
        prop_assert_eq!(file.to_bytes().unwrap(), bytes.clone());

        let mut bad = bytes.clone();
        bad[at.index(bytes.len())] ^= flip;
        prop_assert!(both(&bad).is_err());
        let short = &bytes[..cut.index(bytes.len())];
        prop_assert!(matches!(both(short), Err(AugyError::Truncated(_))));

        // The changed content sealed with its own checksum reaches the
        // field checks: rejected, or valid and canonical.
        let mut content = bytes[..bytes.len() - CHECKSUM_LEN].to_vec();
        let i = at.index(content.len());
        content[i] ^= flip;
        let sum = checksum(&content);
        content.extend_from_slice(&sum);
        if let Ok(file) = both(&content) {
            prop_assert_eq!(file.to_bytes().unwrap(), content);
        }
    }
}
