//! `rusty-cli stream publish --transcode`: the system's `ffmpeg` makes a
//! ladder of renditions (see `rusty_media::ladder`), and each rendition and
//! playlist is published as content of its own; the id printed is the
//! master playlist's, which a player opens at the node's
//! `/media/<id>/content`.
//!
//! `rusty-cli stream broadcast --live --transcode`: the same ladder live.
//! `ffmpeg` reads the input at its own pace and writes each rendition as
//! MPEG-TS to a loopback TCP connection this process listens on; each is
//! pushed to a broadcast of its own, and a master playlist naming their
//! live playlists is published first, so its id can be handed out at once.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
use rusty_media::ladder::{self, Rung, Source};
use rusty_node::rpc::{
    api::media::{MediaApiClient, PublishOptions},
    remote::Remote,
};

use crate::{
    args::{BroadcastArgs, GlobalArgs, PublishArgs},
    client::{connect, rpc_error},
    interrupt::{self, interrupt_flag, wait_child},
};

/// How much of a live input on stdin is read ahead for ffprobe, tried in
/// turn until it can size the video: the broadcast waits for these bytes
/// (4 MiB is half a minute of a 1 Mbit/s stream).
const PROBE_STEPS: [usize; 3] = [256 << 10, 1 << 20, 4 << 20];
/// How long ffmpeg gets to open its outputs (it opens them before the
/// first frame is encoded).
const OUTPUT_OPEN: Duration = Duration::from_secs(20);
/// A rendition's bytes are pushed to the node once this many have come, or
/// once [`PUSH_AFTER`] has passed with some waiting.
const PUSH_BYTES: usize = 64 * 1024;
const PUSH_AFTER: Duration = Duration::from_millis(20);

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
    let out = work.path.to_string_lossy().into_owned();
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
    // Ctrl-C stops ffmpeg and removes its output (nothing is published);
    // once publishing, it stops before the next file.
    let interrupted = interrupt_flag("stopping the transcode");
    let mut ffmpeg = Command::new("ffmpeg")
        .args(&args)
        .spawn()
        .map_err(|e| not_found("ffmpeg", e))?;
    let _ffmpeg_on_quit = interrupt::kill_on_quit(&ffmpeg);
    let status = wait_child(&mut ffmpeg, &interrupted, || false)?;
    if interrupted.load(Ordering::Relaxed) {
        bail!("interrupted: nothing published, ffmpeg's output removed");
    }
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
    // Checked before every file: an interrupt publishes nothing more.
    let go_on = |done: usize| {
        if interrupted.load(Ordering::Relaxed) {
            bail!(
                "interrupted after publishing {done} of {} renditions (their ids are above); no master playlist",
                rungs.len()
            );
        }
        Ok(())
    };
    for (i, rung) in rungs.iter().enumerate() {
        go_on(i)?;
        let (ts, playlist) = ladder::rendition_files(i);
        let what = format!("{title} ({})", rung.name());
        let ts_id = publish_file(c, a, &work.path.join(&ts), &what, "video/mp2t")?;
        let text = read_text(&work.path.join(&playlist))?;
        let rewritten = ladder::rewrite_playlist(&text, &[(ts, ladder::content_uri(&ts_id))])
            .map_err(anyhow::Error::msg)?;
        let path = work.path.join(format!("published_{playlist}"));
        std::fs::write(&path, rewritten).with_context(|| format!("{}", path.display()))?;
        go_on(i)?;
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
    let master =
        ladder::rewrite_playlist(&read_text(&work.path.join(ladder::MASTER))?, &master_uris)
            .map_err(anyhow::Error::msg)?;
    let path = work.path.join(format!("published_{}", ladder::MASTER));
    std::fs::write(&path, master).with_context(|| format!("{}", path.display()))?;
    go_on(rungs.len())?;
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
    publish_with(c, path, opts)
}

fn publish_with(c: &Remote, path: &Path, opts: PublishOptions) -> Result<String> {
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

/// Transcodes a live input into a ladder of live streams; prints the
/// master playlist's id on stdout and each rendition on stderr, and runs
/// until the input ends (then ends every broadcast).
pub fn broadcast_ladder(g: &GlobalArgs, c: &Remote, a: &BroadcastArgs) -> Result<()> {
    if !a.live {
        bail!("only live broadcasts exist: pass --live <file | ->  (to transcode a file for on-demand viewing, use `stream publish --transcode`)");
    }
    let work = WorkDir::new()?;
    // Ctrl-C (or SIGTERM) ends every rendition's broadcast on the node,
    // as it ends a plain broadcast: ffmpeg is asked to stop, each pump
    // pushes what ffmpeg wrote last and ends its broadcast.
    let interrupted = interrupt_flag("ending the broadcasts");
    let from_stdin = a.input.as_os_str() == "-";
    // On stdin the first bytes are read ahead into a file ffprobe can open,
    // and fed to ffmpeg before the rest: as few as ffprobe needs, since a
    // live input's read-ahead is waited for before the broadcast starts.
    let (probe_path, head, source) = if from_stdin {
        let path = work.path.join("head.ts");
        let (head, source, ended) = probe_stdin(&path)?;
        (path, Some((head, ended)), source)
    } else {
        let path =
            std::fs::canonicalize(&a.input).with_context(|| format!("{}", a.input.display()))?;
        let source = probe(&path)?;
        (path, None, source)
    };
    if interrupted.load(Ordering::Relaxed) {
        bail!("interrupted before the broadcast started");
    }
    let rungs = ladder::plan(&source).context("planning the ladder")?;
    let title = a.title.clone().unwrap_or_else(|| "live".into());

    // Until the pumps own them, the broadcasts are ended on any error.
    let mut announced = Announced { c, ids: Vec::new() };
    for rung in &rungs {
        let opts = PublishOptions {
            title: Some(format!("{title} ({})", rung.name())),
            tags: a.tags.clone(),
            mime: Some("video/mp2t".into()),
            ..PublishOptions::default()
        };
        announced.ids.push(
            c.run(c.api().stream_broadcast(Some(opts)))
                .map_err(rpc_error)?
                .id,
        );
    }
    let ids = announced.ids.clone();
    let master = work.path.join(ladder::MASTER);
    std::fs::write(&master, ladder::live_master_playlist(&rungs, &source, &ids))
        .with_context(|| format!("{}", master.display()))?;
    let master_id = publish_with(
        c,
        &master,
        PublishOptions {
            title: Some(title.clone()),
            tags: a.tags.clone(),
            mime: Some("application/vnd.apple.mpegurl".into()),
            ..PublishOptions::default()
        },
    )?;
    println!("{master_id}");
    for (rung, id) in rungs.iter().zip(&ids) {
        eprintln!(
            "  {:>5}  {}×{} at {} kbit/s: live stream {id}",
            rung.name(),
            rung.width,
            rung.height,
            rung.video_kbps
        );
    }
    eprintln!("play: the node's /media/{master_id}/content (HLS master playlist), or one rendition's /media/<id>/live.m3u8");

    let listeners = (0..rungs.len())
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("listening for ffmpeg's outputs on loopback")?;
    let outputs = listeners
        .iter()
        .map(|l| Ok(format!("tcp://{}", l.local_addr()?)))
        .collect::<std::io::Result<Vec<_>>>()?;
    let input = if from_stdin {
        "pipe:0".to_string()
    } else {
        probe_path.to_string_lossy().into_owned()
    };
    // A pipe is live, paced by its writer: ffmpeg reads it as it comes,
    // and is fed the read-ahead from its last keyframe on (with the
    // tables), so the broadcast starts at most a GOP behind the input.
    // (A pipe that ended within the read-ahead was no live source: it is
    // played out at its frame rate, whole, as a file.)
    let ended_early = head.as_ref().is_some_and(|(_, ended)| *ended);
    let pacing = if from_stdin && !ended_early && !stdin_is_a_file() {
        ladder::LiveInput::Paced
    } else {
        ladder::LiveInput::File
    };
    let head = head.map(|(head, _)| match pacing {
        ladder::LiveInput::Paced => match rusty_media::live::ts::last_join_point(&head) {
            Some((tables, at)) => {
                eprintln!(
                    "joining the live input at its last keyframe read ahead ({} of {} skipped)",
                    crate::stream::human(at as u64),
                    crate::stream::human(head.len() as u64)
                );
                [tables.as_slice(), head.get(at..).unwrap_or_default()].concat()
            }
            None => head,
        },
        ladder::LiveInput::File => head,
    });
    let args = ladder::ffmpeg_live_args(&input, pacing, &source, &rungs, &outputs);
    let mut ffmpeg = Command::new("ffmpeg")
        .args(&args)
        .stdin(if from_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .map_err(|e| not_found("ffmpeg", e))?;
    let _ffmpeg_on_quit = interrupt::kill_on_quit(&ffmpeg);
    if let (Some(head), Some(mut to_ffmpeg)) = (head, ffmpeg.stdin.take()) {
        std::thread::spawn(move || {
            // A write error means ffmpeg stopped; its exit status says why.
            let _ = to_ffmpeg
                .write_all(&head)
                .and_then(|()| std::io::copy(&mut std::io::stdin().lock(), &mut to_ffmpeg));
        });
    }
    let connections = match accept_all(&listeners, &mut ffmpeg, &interrupted) {
        Ok(c) => c,
        Err(e) => {
            let _ = interrupt::kill_and_reap(&mut ffmpeg);
            return Err(e);
        }
    };
    // Each pump ends its own broadcast from here on.
    announced.ids.clear();
    eprintln!("broadcasting {} renditions…", rungs.len());
    let pump_failed = Arc::new(AtomicBool::new(false));
    let pumps: Vec<_> = connections
        .into_iter()
        .zip(ids)
        .map(|(conn, id)| {
            let remote = connect(g);
            let failed = pump_failed.clone();
            std::thread::spawn(move || {
                let pushed = remote.and_then(|r| pump(r, conn, &id));
                if pushed.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                pushed
            })
        })
        .collect();
    // A rendition that cannot be pushed stops ffmpeg, so that the others
    // end too.
    let status = wait_child(&mut ffmpeg, &interrupted, || {
        pump_failed.load(Ordering::Relaxed)
    })?;
    let mut failed = None;
    let mut sent = 0u64;
    for p in pumps {
        match p.join() {
            Ok(Ok(n)) => sent += n,
            Ok(Err(e)) => failed = failed.or(Some(e)),
            Err(_) => failed = failed.or(Some(anyhow::anyhow!("a rendition's pump panicked"))),
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let how = if interrupted.load(Ordering::Relaxed) {
        // ffmpeg exits with 255 after SIGINT: expected here.
        "interrupted: broadcasts ended"
    } else if !status.success() {
        bail!("ffmpeg failed ({status}); its messages are above");
    } else {
        "broadcast ended"
    };
    eprintln!(
        "{how}: {} pushed over {} renditions",
        crate::stream::human(sent),
        rungs.len()
    );
    Ok(())
}

/// Reads standard input ahead into `path` in [`PROBE_STEPS`] until
/// ffprobe can size its video: the bytes read, what ffprobe found, and
/// whether the input ended within them.
fn probe_stdin(path: &Path) -> Result<(Vec<u8>, Source, bool)> {
    let mut stdin = std::io::stdin().lock();
    let mut head = Vec::new();
    let mut failed = None;
    for step in PROBE_STEPS {
        let want = step.saturating_sub(head.len());
        let got = (&mut stdin)
            .take(want as u64)
            .read_to_end(&mut head)
            .context("reading the live input")?;
        let ended = got < want;
        std::fs::write(path, &head).with_context(|| format!("{}", path.display()))?;
        match probe(path) {
            Ok(source) => return Ok((head, source, ended)),
            Err(e) if ended => return Err(e),
            Err(e) => failed = Some(e),
        }
    }
    Err(failed.unwrap_or_else(|| anyhow::anyhow!("the live input could not be probed")))
}

/// Standard input is a regular file (`< clip.ts`), not a pipe, socket or
/// terminal: nothing paces it.
fn stdin_is_a_file() -> bool {
    use std::os::fd::AsFd;
    std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.file_type().is_file())
}

/// ffmpeg's connections, one per listener in order; an error if ffmpeg
/// exits, takes longer than [`OUTPUT_OPEN`] to open them, or the user
/// interrupts.
fn accept_all(
    listeners: &[TcpListener],
    ffmpeg: &mut Child,
    interrupted: &AtomicBool,
) -> Result<Vec<TcpStream>> {
    let deadline = Instant::now() + OUTPUT_OPEN;
    let mut out = Vec::new();
    for l in listeners {
        l.set_nonblocking(true)?;
        loop {
            match l.accept() {
                Ok((conn, _)) => {
                    conn.set_nonblocking(false)?;
                    out.push(conn);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e).context("accepting ffmpeg's output connection"),
            }
            if let Some(status) = interrupt::try_reap(ffmpeg)? {
                bail!(
                    "ffmpeg exited ({status}) before opening its outputs; its messages are above"
                );
            }
            if Instant::now() > deadline {
                bail!("ffmpeg did not open its outputs within {OUTPUT_OPEN:?}");
            }
            if interrupted.load(Ordering::Relaxed) {
                bail!("interrupted before ffmpeg opened its outputs; broadcasts ended");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(out)
}

/// Broadcasts announced on the node and not yet handed to their pumps:
/// ended when dropped (an error on the way), so that viewers' playlists
/// end rather than wait for segments. Best effort: the node may be why.
struct Announced<'a> {
    c: &'a Remote,
    ids: Vec<String>,
}

impl Drop for Announced<'_> {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.c.run(self.c.api().stream_broadcast_end(id.clone()));
        }
    }
}

/// Pushes one rendition's MPEG-TS to its broadcast until ffmpeg closes the
/// connection, then ends the broadcast, also after a failed push (best
/// effort). Returns the bytes pushed.
fn pump(c: Remote, conn: TcpStream, id: &str) -> Result<u64> {
    let pushed = pump_bytes(&c, conn, id);
    let ended = c
        .run(c.api().stream_broadcast_end(id.to_string()))
        .map_err(rpc_error);
    let sent = pushed?;
    ended?;
    Ok(sent)
}

fn pump_bytes(c: &Remote, mut conn: TcpStream, id: &str) -> Result<u64> {
    conn.set_read_timeout(Some(PUSH_AFTER))?;
    let mut buf = vec![0u8; PUSH_BYTES];
    let (mut filled, mut sent) = (0usize, 0u64);
    let mut push = |data: &[u8]| -> Result<()> {
        c.run(
            c.api()
                .stream_broadcast_push(id.to_string(), BASE64.encode(data)),
        )
        .map_err(rpc_error)?;
        sent += data.len() as u64;
        Ok(())
    };
    loop {
        // Push when the buffer is full, when the input was quiet for
        // PUSH_AFTER (a read timeout), and at the end.
        let (ended, quiet) = match conn.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => (true, false),
            Ok(n) => {
                filled += n;
                (false, false)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                (false, true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading ffmpeg's output"),
        };
        if filled > 0 && (filled == buf.len() || ended || quiet) {
            push(buf.get(..filled).unwrap_or_default())?;
            filled = 0;
        }
        if ended {
            break;
        }
    }
    Ok(sent)
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
/// copies what it publishes into its own store), or by an exit at once.
struct WorkDir {
    path: PathBuf,
    _on_quit: interrupt::OnQuit,
}

impl WorkDir {
    fn new() -> Result<WorkDir> {
        let path = std::env::temp_dir().join(format!(
            "rusty-transcode-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        let _on_quit = interrupt::remove_on_quit(&path);
        Ok(WorkDir { path, _on_quit })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
