//! `rusty-cli augy`: pack, inspect and unpack `.augy` audio files. No node
//! needed.
//!
//! Output files are written under a temporary name beside their
//! destination and renamed into place only once complete and checked, so
//! an error never leaves a partial file at `--out`.

use std::{
    fs::{File, OpenOptions},
    io::{BufReader, BufWriter, Write},
    path::{Path, PathBuf},
};

use anyhow::{anyhow, bail, Context, Result};
use rusty_media::augy::{
    AugyError, AugyField, AugyFile, AugyInfo, AugyMeta, Codec, Difficulty, MAX_DURATION_MS,
};
use serde_json::json;

use crate::{
    args::{AugyCodec, AugyCommand, AugyDifficulty, AugyPackArgs},
    client::print,
};

pub fn run(cmd: &AugyCommand) -> Result<()> {
    match cmd {
        AugyCommand::Pack(a) => pack(a),
        AugyCommand::Inspect { file, json } => inspect(file, *json),
        AugyCommand::Unpack { file, out, force } => unpack(file, out, *force),
    }
}

/// `--duration`: seconds with up to three decimals, as milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let bad =
        || format!("expected seconds with at most 3 decimals, e.g. 754 or 754.25, found {s:?}");
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 3 {
        return Err(bad());
    }
    if s.ends_with('.') {
        return Err(bad());
    }
    let too_long = || format!("{s} seconds is longer than 24 hours");
    let secs: u64 = whole.parse().map_err(|_| too_long())?;
    let frac_ms = format!("{frac:0<3}").parse::<u64>().map_err(|_| bad())?;
    let ms = secs
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(frac_ms))
        .ok_or_else(too_long)?;
    if ms == 0 {
        return Err("the duration must be above zero".to_string());
    }
    if ms > MAX_DURATION_MS {
        return Err(too_long());
    }
    Ok(ms)
}

/// The `pack` flag that sets a field.
fn flag(field: AugyField) -> Option<&'static str> {
    Some(match field {
        AugyField::Title => "--title",
        AugyField::Author => "--author",
        AugyField::Description => "--description",
        AugyField::Subject => "--subject",
        AugyField::Duration => "--duration",
        AugyField::Codec => "--codec",
        AugyField::SampleRate => "--sample-rate",
        AugyField::Channels => "--channels",
        _ => return None,
    })
}

fn pack(a: &AugyPackArgs) -> Result<()> {
    let meta = AugyMeta {
        title: a.title.clone(),
        author: a.author.clone(),
        description: a.description.clone(),
        subject: a.subject.clone(),
        difficulty: match a.difficulty {
            AugyDifficulty::Beginner => Difficulty::Beginner,
            AugyDifficulty::Intermediate => Difficulty::Intermediate,
            AugyDifficulty::Advanced => Difficulty::Advanced,
            AugyDifficulty::Expert => Difficulty::Expert,
        },
        duration_ms: a.duration,
        codec: match a.codec {
            AugyCodec::Opus => Codec::Opus,
            AugyCodec::Aac => Codec::Aac,
        },
        sample_rate: a.sample_rate,
        channels: a.channels,
    };
    // The flags first: nothing is opened or created for a bad one.
    meta.validate()
        .map_err(|e| match e.field().and_then(flag) {
            Some(flag) => anyhow!("invalid {flag}: {e}"),
            None => anyhow!(e),
        })?;

    let audio_name = a.audio.display();
    let audio =
        File::open(&a.audio).with_context(|| format!("opening the audio file {audio_name}"))?;
    let stat = audio
        .metadata()
        .with_context(|| format!("reading the audio file {audio_name}"))?;
    if !stat.is_file() {
        bail!("the audio file {audio_name} is not a regular file");
    }

    let mut out = PendingFile::create(&a.out, a.force)?;
    let checksum = AugyFile::pack_to(&meta, BufReader::new(audio), stat.len(), out.writer())
        .map_err(|e| match e {
            AugyError::CodecMismatch { declared, .. } => {
                anyhow!("audio file {audio_name} does not match --codec {declared}: {e}")
            }
            AugyError::Read { .. } => anyhow!("reading the audio file {audio_name}: {e}"),
            AugyError::Write { .. } => anyhow!("writing {}: {e}", a.out.display()),
            _ => anyhow!("audio file {audio_name}: {e}"),
        })?;
    let size = out.commit()?;
    println!(
        "{}: {size} bytes, checksum {}",
        a.out.display(),
        hex::encode(checksum)
    );
    Ok(())
}

fn open(path: &Path) -> Result<BufReader<File>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(BufReader::new(file))
}

/// Errors about a `.augy` file name it first.
fn file_error(path: &Path, e: AugyError) -> anyhow::Error {
    anyhow!("{}: {e}", path.display())
}

fn inspect(path: &Path, as_json: bool) -> Result<()> {
    let info = AugyFile::inspect(open(path)?).map_err(|e| file_error(path, e))?;
    if as_json {
        print(&info_json(path, &info));
    } else {
        for line in info_text(path, &info) {
            println!("{line}");
        }
    }
    Ok(())
}

fn info_json(path: &Path, info: &AugyInfo) -> serde_json::Value {
    let m = &info.meta;
    json!({
        "file": path.display().to_string(),
        "size": info.file_len,
        "version": rusty_media::augy::VERSION,
        "title": m.title,
        "author": m.author,
        "description": m.description,
        "subject": m.subject,
        "difficulty": m.difficulty.name(),
        "duration_ms": m.duration_ms,
        "codec": m.codec.name(),
        "sample_rate": m.sample_rate,
        "channels": m.channels,
        "audio_bytes": info.audio_len,
        "checksum": hex::encode(info.checksum),
    })
}

/// `1:02:03.250` or `2:03.250`.
fn clock(ms: u64) -> String {
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}.{milli:03}")
    } else {
        format!("{m}:{s:02}.{milli:03}")
    }
}

/// Aligned `key  value` lines; the description, which may span lines,
/// last, its lines indented under the first.
fn info_text(path: &Path, info: &AugyInfo) -> Vec<String> {
    const WIDTH: usize = 13;
    let m = &info.meta;
    let mut rows = vec![
        ("file", path.display().to_string()),
        ("size", format!("{} bytes", info.file_len)),
        ("version", rusty_media::augy::VERSION.to_string()),
        ("title", m.title.clone()),
        ("author", m.author.clone()),
        ("subject", m.subject.clone()),
        ("difficulty", m.difficulty.to_string()),
        (
            "duration",
            format!("{} ({} ms)", clock(m.duration_ms), m.duration_ms),
        ),
        ("codec", m.codec.to_string()),
        ("sample rate", format!("{} Hz", m.sample_rate)),
        ("channels", m.channels.to_string()),
        ("audio", format!("{} bytes", info.audio_len)),
        ("checksum", hex::encode(info.checksum)),
    ];
    let mut description = m.description.lines();
    rows.push(("description", description.next().unwrap_or("").to_string()));
    let mut out: Vec<String> = rows
        .into_iter()
        .map(|(k, v)| format!("{k:<WIDTH$}{v}").trim_end().to_string())
        .collect();
    out.extend(description.map(|l| format!("{:WIDTH$}{l}", "").trim_end().to_string()));
    out
}

fn unpack(path: &Path, dest: &Path, force: bool) -> Result<()> {
    let input = open(path)?;
    let mut out = PendingFile::create(dest, force)?;
    let info = AugyFile::unpack_to(input, out.writer()).map_err(|e| match e {
        AugyError::Write { .. } => anyhow!("writing {}: {e}", dest.display()),
        e => file_error(path, e),
    })?;
    out.commit()?;
    println!(
        "{}: {} bytes of {} audio",
        dest.display(),
        info.audio_len,
        info.meta.codec
    );
    Ok(())
}

/// A file written under a temporary name in its destination's directory,
/// renamed to the destination by [`PendingFile::commit`]; dropped before
/// that, it is removed.
#[derive(Debug)]
struct PendingFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: BufWriter<File>,
    committed: bool,
}

impl PendingFile {
    fn create(dest: &Path, force: bool) -> Result<PendingFile> {
        // Only a regular file is ever replaced: renaming over a directory,
        // a device or a symbolic link would not do what was meant.
        match std::fs::symlink_metadata(dest) {
            Ok(_) if !force => bail!(
                "{} already exists (add --force to replace it)",
                dest.display()
            ),
            Ok(m) if !m.file_type().is_file() => bail!(
                "{} exists and is not a regular file; not replacing it",
                dest.display()
            ),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("checking {}", dest.display()));
            }
        }
        let name = dest
            .file_name()
            .ok_or_else(|| anyhow!("{} is not a file name", dest.display()))?;
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = dir.join(format!(
            ".{}.{:016x}.tmp",
            name.to_string_lossy(),
            rand::random::<u64>()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| {
                format!(
                    "creating a temporary file for {} in {}",
                    dest.display(),
                    dir.display()
                )
            })?;
        Ok(PendingFile {
            tmp,
            dest: dest.to_path_buf(),
            file: BufWriter::new(file),
            committed: false,
        })
    }

    fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.file
    }

    /// Flushes, syncs and renames into place; returns the file's size.
    fn commit(mut self) -> Result<u64> {
        let writing = || format!("writing {}", self.dest.display());
        self.file.flush().with_context(writing)?;
        self.file.get_ref().sync_all().with_context(writing)?;
        let size = self.file.get_ref().metadata().with_context(writing)?.len();
        std::fs::rename(&self.tmp, &self.dest).with_context(writing)?;
        self.committed = true;
        Ok(size)
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_to_milliseconds() {
        assert_eq!(parse_duration_ms("754"), Ok(754_000));
        assert_eq!(parse_duration_ms("754.25"), Ok(754_250));
        assert_eq!(parse_duration_ms("0.001"), Ok(1));
        assert_eq!(parse_duration_ms("86400"), Ok(MAX_DURATION_MS));
        for bad in [
            "", ".5", "5.", "1.2345", "-1", "1e3", "1,5", " 1", "0", "0.000",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration_ms("86400.001").is_err());
        assert!(parse_duration_ms("99999999999999999999999").is_err());
    }

    #[test]
    fn clock_formats() {
        assert_eq!(clock(123_250), "2:03.250");
        assert_eq!(clock(3_723_250), "1:02:03.250");
    }
}
