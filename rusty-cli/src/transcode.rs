//! `rusty-cli stream publish --transcode`: the system's `ffmpeg` makes a
//! ladder of renditions (see `rusty_media::ladder`), and each rendition and
//! playlist is published as content of its own; the id printed is the
//! master playlist's, which a player opens at the node's
//! `/media/<id>/content`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, Context, Result};
use rusty_media::ladder::{self, Rung, Source};
use rusty_node::rpc::{
    api::media::{MediaApiClient, PublishOptions},
    remote::Remote,
};

use crate::{args::PublishArgs, client::rpc_error};

/// Transcodes `a.file` and publishes the ladder; prints the master
/// playlist's id on stdout and each rendition on stderr.
pub fn publish_ladder(c: &Remote, a: &PublishArgs) -> Result<()> {
    if a.price.is_some() {
        bail!("--transcode cannot be combined with --price yet: publish the ladder free, or one priced file without --transcode");
    }
    let input = std::fs::canonicalize(&a.file).with_context(|| format!("{}", a.file.display()))?;
    let source = probe(&input)?;
    let rungs = ladder::plan(&source).context("planning the ladder")?;
    let work = WorkDir::new()?;
    let out = work.0.to_string_lossy().into_owned();
    let names: Vec<String> = rungs.iter().map(Rung::name).collect();
    eprintln!(
        "transcoding {}×{} at {:.2} fps{} into {} with ffmpeg…",
        source.width,
        source.height,
        source.fps,
        if source.audio { " with audio" } else { "" },
        names.join(", ")
    );
    let started = Instant::now();
    let args = ladder::ffmpeg_args(&input.to_string_lossy(), &out, &source, &rungs);
    let status = Command::new("ffmpeg")
        .args(&args)
        .status()
        .map_err(|e| not_found("ffmpeg", e))?;
    if !status.success() {
        bail!("ffmpeg failed ({status}); its messages are above");
    }
    eprintln!("transcoded in {:.1} s", started.elapsed().as_secs_f64());

    let title = a.title.clone().unwrap_or_else(|| {
        a.file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "video".into())
    });
    let mut master_uris = Vec::new();
    for (i, rung) in rungs.iter().enumerate() {
        let (ts, playlist) = ladder::rendition_files(i);
        let what = format!("{title} ({})", rung.name());
        let ts_id = publish_file(c, a, &work.0.join(&ts), &what, "video/mp2t")?;
        let text = read_text(&work.0.join(&playlist))?;
        let rewritten = ladder::rewrite_playlist(&text, &[(ts, ladder::content_uri(&ts_id))])
            .map_err(anyhow::Error::msg)?;
        let path = work.0.join(format!("published_{playlist}"));
        std::fs::write(&path, rewritten).with_context(|| format!("{}", path.display()))?;
        let playlist_id = publish_file(
            c,
            a,
            &path,
            &format!("{what} playlist"),
            "application/vnd.apple.mpegurl",
        )?;
        eprintln!(
            "  {:>5}  {}×{} at {} kbit/s: video {ts_id}, playlist {playlist_id}",
            rung.name(),
            rung.width,
            rung.height,
            rung.video_kbps
        );
        master_uris.push((playlist, ladder::content_uri(&playlist_id)));
    }
    let master = ladder::rewrite_playlist(&read_text(&work.0.join(ladder::MASTER))?, &master_uris)
        .map_err(anyhow::Error::msg)?;
    let path = work.0.join(format!("published_{}", ladder::MASTER));
    std::fs::write(&path, master).with_context(|| format!("{}", path.display()))?;
    let id = publish_file(c, a, &path, &title, "application/vnd.apple.mpegurl")?;
    println!("{id}");
    eprintln!("play: the node's /media/{id}/content (HLS master playlist; e.g. ffplay or hls.js)");
    Ok(())
}

fn publish_file(
    c: &Remote,
    a: &PublishArgs,
    path: &Path,
    title: &str,
    mime: &str,
) -> Result<String> {
    let opts = PublishOptions {
        title: Some(title.into()),
        description: a.description.clone().unwrap_or_default(),
        tags: a.tags.clone(),
        mime: Some(mime.into()),
        price: None,
    };
    let r = c
        .run(
            c.api()
                .stream_publish(path.to_string_lossy().into_owned(), Some(opts)),
        )
        .map_err(rpc_error)?;
    r["id"]
        .as_str()
        .map(str::to_owned)
        .context("stream_publish answered without an id")
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("ffmpeg did not write {}", path.display()))
}

/// The first video stream's size and frame rate, and whether there is audio.
pub fn probe(input: &Path) -> Result<Source> {
    let run = |args: &[&str]| -> Result<String> {
        let out = Command::new("ffprobe")
            .args(["-v", "error"])
            .args(args)
            .arg(input)
            .output()
            .map_err(|e| not_found("ffprobe", e))?;
        if !out.status.success() {
            bail!(
                "ffprobe cannot read {}: {}",
                input.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let video = run(&[
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=width,height,avg_frame_rate",
        "-of",
        "default=noprint_wrappers=1",
    ])?;
    let field = |name: &str| {
        video
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(str::trim)
    };
    let (Some(width), Some(height)) = (
        field("width").and_then(|w| w.parse().ok()),
        field("height").and_then(|h| h.parse().ok()),
    ) else {
        bail!("{} has no video stream ffprobe can size", input.display());
    };
    let fps = field("avg_frame_rate")
        .and_then(|r| {
            let (n, d) = r.split_once('/').unwrap_or((r, "1"));
            Some(n.parse::<f64>().ok()? / d.parse::<f64>().ok()?)
        })
        .filter(|f| f.is_finite() && *f > 0.0)
        .unwrap_or(30.0);
    let audio = !run(&[
        "-select_streams",
        "a",
        "-show_entries",
        "stream=index",
        "-of",
        "csv=p=0",
    ])?
    .trim()
    .is_empty();
    Ok(Source {
        width,
        height,
        fps,
        audio,
    })
}

fn not_found(tool: &str, e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "--transcode needs {tool}, which is not installed (Debian: apt-get install ffmpeg)"
        )
    } else {
        anyhow::anyhow!("running {tool}: {e}")
    }
}

/// A scratch directory for ffmpeg's output, removed when dropped (the node
/// copies what it publishes into its own store).
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<WorkDir> {
        let path = std::env::temp_dir().join(format!(
            "rusty-transcode-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(WorkDir(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
