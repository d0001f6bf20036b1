//! `rusty-cli augy pack | inspect | unpack`: no node, just files.

use std::{
    path::Path,
    process::{Command, Output},
};

use serde_json::Value;

use crate::harness::BIN;

fn augy(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("augy")
        .args(args)
        .output()
        .expect("run rusty-cli")
}

fn ok(args: &[&str]) -> String {
    let out = augy(args);
    assert!(
        out.status.success(),
        "rusty-cli augy {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails with a one-line message on stderr containing `want`.
fn fails(args: &[&str], want: &str) -> String {
    let out = augy(args);
    assert!(!out.status.success(), "rusty-cli augy {args:?} succeeded");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains(want), "expected {want:?} in: {err}");
    err
}

/// Looks like the start of an Ogg/Opus file: an Ogg page whose first
/// packet is an Opus identification header, then "audio".
fn ogg_opus(len: usize) -> Vec<u8> {
    let mut a = b"OggS\x00\x02".to_vec();
    a.extend_from_slice(&[0; 8]); // granule position
    a.extend_from_slice(&7u32.to_le_bytes()); // serial
    a.extend_from_slice(&[0; 8]); // sequence, CRC
    a.extend_from_slice(&[1, 19]); // one segment of 19 bytes
    a.extend_from_slice(b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00");
    let mut x = 0x5eedu32;
    while a.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        a.push(x as u8);
    }
    a
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Files in `dir` other than `keep`: no temporary file may be left behind.
fn others(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

#[test]
fn augy_pack_inspect_unpack_and_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audio = ogg_opus(20_000);
    let audio_path = dir.path().join("lesson.opus");
    std::fs::write(&audio_path, &audio).expect("write audio");
    let packed = dir.path().join("lesson.augy");

    let pack_args = |out: &Path| -> Vec<String> {
        [
            "pack",
            "--audio",
            s(&audio_path),
            "--codec",
            "opus",
            "--title",
            "Fractions, gently",
            "--author",
            "Mia Okafor",
            "--description",
            "Halves, quarters and eighths with pizza.",
            "--subject",
            "mathematics",
            "--difficulty",
            "beginner",
            "--duration",
            "754.25",
            "--sample-rate",
            "48000",
            "--channels",
            "1",
            "--out",
            s(out),
        ]
        .map(String::from)
        .to_vec()
    };
    let args = pack_args(&packed);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let printed = ok(&args);
    assert!(printed.contains("lesson.augy"), "{printed}");
    let bytes = std::fs::read(&packed).expect("packed file");
    assert_eq!(&bytes[..5], b"AUGY\x01");

    // Inspect as JSON: every field.
    let v: Value = serde_json::from_str(&ok(&["inspect", s(&packed), "--json"])).expect("JSON");
    assert_eq!(v["title"], "Fractions, gently");
    assert_eq!(v["author"], "Mia Okafor");
    assert_eq!(v["description"], "Halves, quarters and eighths with pizza.");
    assert_eq!(v["subject"], "mathematics");
    assert_eq!(v["difficulty"], "beginner");
    assert_eq!(v["duration_ms"], 754_250);
    assert_eq!(v["codec"], "opus");
    assert_eq!(v["sample_rate"], 48_000);
    assert_eq!(v["channels"], 1);
    assert_eq!(v["version"], 1);
    assert_eq!(v["audio_bytes"], audio.len() as u64);
    assert_eq!(v["size"], bytes.len() as u64);
    assert_eq!(
        v["checksum"].as_str().expect("checksum"),
        hex::encode(&bytes[bytes.len() - 32..])
    );

    // And as aligned text.
    let text = ok(&["inspect", s(&packed)]);
    assert!(text.contains("title        Fractions, gently"), "{text}");
    assert!(
        text.contains("duration     12:34.250 (754250 ms)"),
        "{text}"
    );
    assert!(text.contains("sample rate  48000 Hz"), "{text}");

    // Unpack gives the audio back, byte for byte.
    let unpacked = dir.path().join("out.opus");
    ok(&["unpack", s(&packed), "--out", s(&unpacked)]);
    assert_eq!(std::fs::read(&unpacked).expect("unpacked"), audio);

    // An existing output is not replaced without --force.
    fails(
        &["unpack", s(&packed), "--out", s(&unpacked)],
        "already exists",
    );
    ok(&["unpack", s(&packed), "--out", s(&unpacked), "--force"]);
    // Only a regular file is replaced, even with --force.
    let subdir = dir.path().join("subdir");
    std::fs::create_dir(&subdir).expect("mkdir");
    fails(
        &["unpack", s(&packed), "--out", s(&subdir), "--force"],
        "not a regular file",
    );
    assert!(subdir.is_dir());
    std::fs::remove_dir(&subdir).expect("rmdir");

    // One flipped byte in the audio: a checksum error naming the file, and
    // no output file.
    let corrupt = dir.path().join("corrupt.augy");
    let mut bad = bytes.clone();
    let i = bad.len() - 32 - 5_000;
    bad[i] ^= 0x10;
    std::fs::write(&corrupt, &bad).expect("write corrupt");
    let restored = dir.path().join("restored.opus");
    let err = fails(
        &["unpack", s(&corrupt), "--out", s(&restored)],
        "checksum mismatch",
    );
    assert!(err.contains("corrupt.augy"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!restored.exists());
    fails(&["inspect", s(&corrupt)], "checksum mismatch");
    fails(&["inspect", s(&corrupt), "--json"], "checksum mismatch");

    // A truncated file names the field it ends in.
    let short = dir.path().join("short.augy");
    std::fs::write(&short, &bytes[..30]).expect("write short");
    fails(&["inspect", s(&short)], "ends inside the author field");

    assert_eq!(
        others(
            dir.path(),
            &[
                "lesson.opus",
                "lesson.augy",
                "out.opus",
                "corrupt.augy",
                "short.augy"
            ]
        ),
        Vec::<String>::new()
    );
}

#[test]
fn augy_pack_rejects_bad_fields_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opus = dir.path().join("a.opus");
    std::fs::write(&opus, ogg_opus(1000)).expect("write audio");
    let wav = dir.path().join("a.wav");
    std::fs::write(&wav, b"RIFF\x24\x00\x00\x00WAVEfmt ").expect("write wav");
    let out = dir.path().join("out.augy");

    // Good arguments with `changes` (flag, value) applied.
    let args = |audio: &Path, changes: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "pack",
            "--audio",
            s(audio),
            "--codec",
            "opus",
            "--title",
            "T",
            "--subject",
            "s",
            "--difficulty",
            "expert",
            "--duration",
            "60",
            "--out",
            s(&out),
        ]
        .map(String::from)
        .to_vec();
        for change in changes.chunks(2) {
            match args.iter().position(|a| a == change[0]) {
                Some(i) => args[i + 1] = change[1].to_string(),
                None => args.extend(change.iter().map(|c| c.to_string())),
            }
        }
        args
    };
    let pack = |audio: &Path, changes: &[&str], want: &str| {
        let args = args(audio, changes);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = fails(&args, want);
        assert!(!out.exists(), "{args:?} left {}", out.display());
        err
    };
    let long_title = "x".repeat(201);
    pack(
        &opus,
        &["--title", &long_title],
        "invalid --title: title is 201 bytes",
    );
    pack(&opus, &["--title", ""], "invalid --title: title is empty");
    pack(&opus, &["--subject", "a\u{7}b"], "invalid --subject");
    pack(&opus, &["--sample-rate", "22050"], "invalid --sample-rate");
    pack(&opus, &["--channels", "9"], "invalid --channels");
    pack(&opus, &["--duration", "0"], "--duration");
    pack(&opus, &["--duration", "86400.5"], "longer than 24 hours");
    pack(&opus, &["--difficulty", "easy"], "--difficulty");
    pack(&opus, &["--codec", "aac"], "does not match --codec aac");
    let err = pack(&wav, &[], "does not match --codec opus");
    assert!(err.contains("a.wav"), "{err}");
    pack(
        &dir.path().join("missing.opus"),
        &[],
        "opening the audio file",
    );

    // The good arguments do pack.
    let good = args(&opus, &[]);
    let good: Vec<&str> = good.iter().map(String::as_str).collect();
    ok(&good);
    assert!(out.exists());
    assert_eq!(
        others(dir.path(), &["a.opus", "a.wav", "out.augy"]),
        Vec::<String>::new()
    );
}
