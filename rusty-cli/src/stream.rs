//! `rusty-cli stream`: the media layer of a running node.
//!
//! `publish`, `list`, `search`, `info` and `status` are plain RPC calls
//! through the generated [`MediaApiClient`].
//! `view` asks the node to fetch the content and copies it to `--output`
//! and/or points players at the node's playback server from `--serve` (a
//! `307` per request: Range requests for files, an HLS playlist for live
//! streams), with progress on the terminal.
//! `broadcast --live` reads its input in real time and hands it to the node,
//! which cuts, signs and announces the segments.

use std::{
    io::{IsTerminal, Read, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use rusty_node::rpc::{
    api::media::{MediaApiClient, PublishOptions},
    remote::Remote,
};
use serde_json::Value;

use crate::{
    args::{BroadcastArgs, GlobalArgs, PublishArgs, StreamCommand, ViewArgs},
    client::{connect, print, rpc_error},
};

/// Bytes asked for per `stream_read`.
const READ_PIECE: u64 = 1 << 20;

pub fn run(g: &GlobalArgs, cmd: &StreamCommand) -> Result<()> {
    let c = connect(g)?;
    match cmd {
        StreamCommand::Publish(a) if a.transcode => crate::transcode::publish_ladder(&c, a),
        StreamCommand::Publish(a) => publish(&c, a),
        StreamCommand::List => {
            print(&c.run(c.api().stream_list()).map_err(rpc_error)?);
            Ok(())
        }
        StreamCommand::Search { words } => {
            print(
                &c.run(c.api().stream_search(words.join(" ")))
                    .map_err(rpc_error)?,
            );
            Ok(())
        }
        StreamCommand::Info { id } => {
            print(&c.run(c.api().stream_info(id.clone())).map_err(rpc_error)?);
            Ok(())
        }
        StreamCommand::Status { id } => {
            print(
                &c.run(c.api().stream_status(id.clone()))
                    .map_err(rpc_error)?,
            );
            Ok(())
        }
        // The playback server gets a connection of its own: a client's
        // pooled connections run on the runtime that opened them.
        StreamCommand::View(a) => view(c, a),
        StreamCommand::Broadcast(a) if a.transcode => crate::transcode::broadcast_ladder(g, &c, a),
        StreamCommand::Broadcast(a) => broadcast(&c, a),
        StreamCommand::Buy { id } => {
            let r = c.run(c.api().stream_buy(id.clone())).map_err(rpc_error)?;
            println!("{}", r.txid);
            eprintln!(
                "paid {} RSC; the key arrives once the payment is final (watch: rusty-cli stream info {id})",
                r.price
            );
            Ok(())
        }
    }
}

fn publish(c: &Remote, a: &PublishArgs) -> Result<()> {
    let path = std::fs::canonicalize(&a.file).with_context(|| format!("{}", a.file.display()))?;
    let opts = PublishOptions {
        title: a.title.clone(),
        description: a.description.clone().unwrap_or_default(),
        tags: a.tags.clone(),
        mime: a.mime.clone(),
        price: a.price.clone().map(Value::from),
    };
    let path = path.to_string_lossy().into_owned();
    let r = c
        .run(c.api().stream_publish(path, Some(opts)))
        .map_err(rpc_error)?;
    print(&r["id"]);
    Ok(())
}

/// Human-readable bytes.
pub(crate) fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// One progress line, redrawn in place on a terminal.
struct Progress {
    tty: bool,
    last: Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            last: Instant::now() - Duration::from_secs(10),
        }
    }

    fn show(&mut self, line: &str, force: bool) {
        let every = if self.tty {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(5)
        };
        if !force && self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let mut err = std::io::stderr();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    fn done(&mut self, line: &str) {
        self.show(line, true);
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }
}

fn download_line(status: &Value) -> String {
    let d = &status["downloads"][0];
    let present = d["bytes_present"].as_u64().unwrap_or(0);
    let size = d["size"].as_u64().unwrap_or(0);
    let rate = d["rate"].as_u64().unwrap_or(0);
    let peers = d["peers"].as_array().map(Vec::len).unwrap_or(0);
    let pct = if size == 0 {
        100.0
    } else {
        present as f64 * 100.0 / size as f64
    };
    format!(
        "{} / {} ({pct:.1}%)  {}/s  {peers} peer{}",
        human(present),
        human(size),
        human(rate),
        if peers == 1 { "" } else { "s" }
    )
}

fn view(c: Remote, a: &ViewArgs) -> Result<()> {
    if a.output.is_none() && a.serve.is_none() {
        bail!("say where the content goes: --output FILE and/or --serve 127.0.0.1:PORT");
    }
    let started = c
        .run(c.api().stream_view(a.id.clone()))
        .map_err(rpc_error)?;
    let live = started.live;
    if let Some(url) = &started.playback_url {
        eprintln!("the node plays it directly, bytes as they are: {url}");
    }
    // --serve points players at the node's playback server (307): the
    // bytes go node → player untouched, never through this process or
    // JSON-RPC.
    let node_base = started
        .playback_url
        .as_deref()
        .and_then(|u| u.rsplit_once('/'))
        .map(|(base, _)| base.to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let server = match (a.serve, node_base) {
        (Some(addr), Some(base)) => Some(rt.block_on(start_redirect(addr, base, live))?),
        (Some(_), None) => bail!(
            "the node does not serve playback (it runs with --playback-bind off and without \
             --ui-bind): restart it without `--playback-bind off`, or play with --output FILE"
        ),
        (None, _) => None,
    };
    let result = if live {
        view_live(&c, a)
    } else {
        view_file(&c, a)
    };
    if let Some((stop, task)) = server {
        if result.is_ok() {
            eprintln!(
                "done; still serving on http://{}/ (Ctrl-C to stop)",
                a.serve.map(|s| s.to_string()).unwrap_or_default()
            );
            rt.block_on(async {
                let _ = tokio::signal::ctrl_c().await;
            });
        }
        let _ = stop.send(());
        let _ = rt.block_on(task);
    }
    result
}

/// A server on `addr` that answers every request with a `307` to the same
/// path under `base` (the node's `…/media/<id>`), so `/content`,
/// `/live.m3u8` and `/live/<n>.ts` keep working for players told this
/// address, and Range headers go to the node with the retried request.
async fn start_redirect(addr: SocketAddr, base: String, live: bool) -> Result<Serving> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr} for --serve"))?;
    let bound = listener.local_addr().unwrap_or(addr);
    if live {
        eprintln!("serving the live stream at http://{bound}/live.m3u8 (mpv, VLC, ffplay; redirects to the node: {base}/…)");
    } else {
        eprintln!("serving at http://{bound}/content (mpv, VLC, ffplay, a browser; seeking works; redirects to the node: {base}/…)");
    }
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = &mut rx => return,
            };
            let Ok((mut conn, _)) = accepted else {
                continue;
            };
            let base = base.clone();
            tokio::spawn(async move {
                let mut head = vec![0u8; 8192];
                let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(10), conn.read(&mut head)).await
                else {
                    return;
                };
                let line = String::from_utf8_lossy(head.get(..n).unwrap_or_default());
                let path = line
                    .lines()
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .filter(|p| p.starts_with('/') && !p.contains(['\r', '\n']));
                let reply = match path {
                    Some(path) => format!(
                        "HTTP/1.1 307 Temporary Redirect\r\nLocation: {base}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    ),
                    None => "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
                };
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    Ok((tx, task))
}

/// A `--serve` server: the sender stops it, the task ends then.
type Serving = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

/// Copies a file as it downloads, in order, to `--output` (or just waits for
/// it when only serving).
fn view_file(c: &Remote, a: &ViewArgs) -> Result<()> {
    let info = c
        .run(c.api().stream_info(a.id.clone()))
        .map_err(rpc_error)?;
    let size = info["size"].as_u64().unwrap_or(0);
    let mut progress = Progress::new();
    let mut out = match &a.output {
        Some(p) => Some(OutputFile::create(p)?),
        None => None,
    };
    let mut offset = 0u64;
    loop {
        let status = c
            .run(c.api().stream_status(Some(a.id.clone())))
            .map_err(rpc_error)?;
        let state = &status["downloads"][0]["state"];
        if let Some(reason) = state.get("failed").and_then(Value::as_str) {
            bail!("download failed: {reason}");
        }
        if let Some(f) = out.as_mut() {
            if offset < size {
                let len = READ_PIECE.min(size - offset);
                let r = c
                    .run(c.api().stream_read(a.id.clone(), offset, len, Some(5_000)))
                    .map_err(rpc_error);
                match r {
                    Ok(v) => {
                        let bytes = BASE64
                            .decode(v.data)
                            .context("the node sent bytes that are not base64")?;
                        f.write(&bytes)?;
                        offset += bytes.len() as u64;
                    }
                    // Not there yet: keep waiting (the node keeps fetching).
                    Err(e) if e.to_string().contains("timed out") => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let complete = status["downloads"][0]["state"] == "complete";
        progress.show(&download_line(&status), false);
        let written = out.is_none() || offset >= size;
        if complete && written {
            progress.done(&download_line(&status));
            break;
        }
        if out.is_none() {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    if let Some(f) = out {
        let path = f.finish()?;
        eprintln!("saved {} to {}", human(size), path.display());
    }
    Ok(())
}

/// Writes segments of a live stream in order to `--output` until it ends
/// (or Ctrl-C when only serving). Segments that went by while the node
/// could not fetch them (it was down or cut off) are skipped, counted and
/// reported at the end: with `--output`, a stream saved with gaps exits
/// non-zero, the file keeping what arrived.
fn view_live(c: &Remote, a: &ViewArgs) -> Result<()> {
    let mut out = match &a.output {
        Some(p) if p.as_os_str() == "-" => None,
        Some(p) => {
            Some(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => None,
    };
    let to_stdout = a.output.as_deref() == Some(Path::new("-"));
    let mut progress = Progress::new();
    let mut next = 0u64;
    let mut gaps = Gaps::new(a.from_start);
    loop {
        let r = c
            .run(c.api().stream_segments(a.id.clone(), next, Some(5_000)))
            .map_err(rpc_error)?;
        for s in &r.segments {
            let seq = s.seq;
            let data = BASE64
                .decode(&s.data)
                .context("the node sent bytes that are not base64")?;
            gaps.received(seq);
            if let Some(f) = out.as_mut() {
                f.write_all(&data).context("writing the output")?;
            } else if to_stdout {
                let mut so = std::io::stdout().lock();
                so.write_all(&data).context("writing to stdout")?;
                let _ = so.flush();
            }
            next = seq + 1;
        }
        let st = &r.status;
        progress.show(
            &format!(
                "live: segment {}  latency p50 {} ms  p95 {} ms  skipped {}  buffered {}",
                st["last_seq"],
                st["latency_p50_ms"],
                st["latency_p95_ms"],
                st["skipped"],
                st["buffered"]
            ),
            false,
        );
        if r.ended && r.segments.is_empty() {
            if let Some(last) = st["final_seq"].as_u64() {
                gaps.ended(last);
            }
            if gaps.missing == 0 {
                progress.done("live stream ended");
                return Ok(());
            }
            progress.done(&format!(
                "live stream ended with {} segment(s) missing, first at segment {}",
                gaps.missing, gaps.first
            ));
            if a.output.is_some() {
                bail!(
                    "{} segment(s) of the live stream went by before this node could fetch them (first: segment {}); the output has every segment that arrived, in order",
                    gaps.missing,
                    gaps.first
                );
            }
            return Ok(());
        }
    }
}

/// Live segments a viewer never got.
#[derive(Debug)]
struct Gaps {
    /// The next segment expected, once one arrived (or from the start).
    next: Option<u64>,
    missing: u64,
    /// The first missing segment.
    first: u64,
}

impl Gaps {
    /// With `from_start`, segment 0 is expected first; otherwise the first
    /// segment received is the viewer's live edge.
    fn new(from_start: bool) -> Gaps {
        Gaps {
            next: from_start.then_some(0),
            missing: 0,
            first: 0,
        }
    }

    /// Segment `seq` arrived (segments arrive in order).
    fn received(&mut self, seq: u64) {
        if let Some(next) = self.next {
            self.missing_range(next, seq);
        }
        self.next = Some(seq.saturating_add(1));
    }

    /// The stream ended with segment `last`: what did not come is missing
    /// (the whole stream, with `from_start` and nothing received).
    fn ended(&mut self, last: u64) {
        if let Some(next) = self.next {
            self.missing_range(next, last.saturating_add(1));
        }
    }

    fn missing_range(&mut self, from: u64, to: u64) {
        if to <= from {
            return;
        }
        if self.missing == 0 {
            self.first = from;
        }
        self.missing = self.missing.saturating_add(to - from);
    }
}

/// Output written to a temporary file and renamed when complete.
struct OutputFile {
    path: PathBuf,
    tmp: PathBuf,
    file: std::fs::File,
}

impl OutputFile {
    fn create(path: &Path) -> Result<OutputFile> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".part");
        let tmp = PathBuf::from(tmp);
        let file =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        Ok(OutputFile {
            path: path.to_owned(),
            tmp,
            file,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .with_context(|| format!("writing {}", self.tmp.display()))
    }

    fn finish(self) -> Result<PathBuf> {
        self.file
            .sync_all()
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        std::fs::rename(&self.tmp, &self.path).with_context(|| {
            format!("renaming {} to {}", self.tmp.display(), self.path.display())
        })?;
        Ok(self.path)
    }
}

/// Reads `--live` input in real time and pushes it to the node.
fn broadcast(c: &Remote, a: &BroadcastArgs) -> Result<()> {
    if !a.live {
        bail!("only live broadcasts exist: pass --live <file | ->  (to publish a file, use `stream publish`)");
    }
    let mut input: Box<dyn Read> = if a.input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&a.input)
                .with_context(|| format!("opening {}", a.input.display()))?,
        )
    };
    let opts = PublishOptions {
        title: a.title.clone(),
        tags: a.tags.clone(),
        mime: Some(a.mime.clone().unwrap_or_else(|| "video/mp2t".into())),
        ..PublishOptions::default()
    };
    let r = c
        .run(c.api().stream_broadcast(Some(opts)))
        .map_err(rpc_error)?;
    let id = r.id;
    println!("{id}");
    eprintln!(
        "broadcasting live stream {id}; viewers: rusty-cli stream view {id} --serve 127.0.0.1:8080"
    );
    let started = Instant::now();
    let mut sent = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let mut progress = Progress::new();
    let interrupted = crate::interrupt::interrupt_flag("ending the broadcast");
    loop {
        if interrupted.load(Ordering::Relaxed) {
            break;
        }
        let n = match input.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the live input"),
        };
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        c.run(
            c.api()
                .stream_broadcast_push(id.clone(), BASE64.encode(chunk)),
        )
        .map_err(rpc_error)?;
        sent += n as u64;
        // A file is paced to --bitrate, as if it came from a capture.
        if let Some(kbps) = a.bitrate.filter(|k| *k > 0) {
            let due = Duration::from_secs_f64(sent as f64 * 8.0 / (kbps as f64 * 1000.0));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        progress.show(
            &format!(
                "sent {} in {:.0} s",
                human(sent),
                started.elapsed().as_secs_f64()
            ),
            false,
        );
    }
    c.run(c.api().stream_broadcast_end(id.clone()))
        .map_err(rpc_error)?;
    let how = if interrupted.load(Ordering::Relaxed) {
        "interrupted: broadcast ended"
    } else {
        "broadcast ended"
    };
    progress.done(&format!("{how} after {}", human(sent)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Gaps;

    #[test]
    fn a_viewer_joining_at_the_live_edge_counts_only_later_losses() {
        let mut g = Gaps::new(false);
        for seq in [4, 5, 7, 8] {
            g.received(seq);
        }
        g.ended(9);
        assert_eq!((g.missing, g.first), (2, 6), "6 and 9 are missing");
        let mut whole = Gaps::new(false);
        (3..=9).for_each(|s| whole.received(s));
        whole.ended(9);
        assert_eq!(whole.missing, 0);
    }

    #[test]
    fn a_viewer_from_the_start_counts_the_segments_before_its_first() {
        let mut g = Gaps::new(true);
        (4..=9).for_each(|s| g.received(s));
        g.ended(9);
        assert_eq!((g.missing, g.first), (4, 0));
        let mut nothing = Gaps::new(true);
        nothing.ended(9);
        assert_eq!(nothing.missing, 10);
        let mut not_started = Gaps::new(false);
        not_started.ended(9);
        assert_eq!(
            not_started.missing, 0,
            "joined after the end: nothing expected"
        );
    }
}
