//! The node's own adaptive bitrate for a live ladder (`stream broadcast
//! --live --transcode`): the same [`LadderPlayer`] routes as an on-demand
//! ladder (`/media/<master>/abr.m3u8`, `abr/<seq>.ts`, the status and the
//! capped master), answered by a task that follows one rendition's
//! broadcast at a time and switches when the swarm carries another.
//!
//! A live rendition is a broadcast of its own, its segments fetched by the
//! node as they are announced. The task watches the rung it chose; every
//! segment that plays there (verified, in order, through the stream's
//! jitter buffer) joins the ladder's window, and how long its fetch took is
//! a throughput sample. After each segment the rule picks a rung; when it
//! is another, the task starts watching that rung and keeps the old one
//! until the new one's first segment is covered (every earlier segment held
//! or skipped), then stops watching the old one. Rungs are cut on the same
//! keyframe times, so segment `n` of every rung starts at the same media
//! time with a keyframe and the player sees one stream whose resolution
//! changes at a segment boundary.
//!
//! The rule is throughput (the highest rung under 90 % of the harmonic mean
//! of the last five segment fetches), not BOLA-E: on a live edge the buffer
//! ahead of the player is the distance the player keeps from the edge (about
//! three segments), which the player sets and the node cannot grow, so a
//! buffer-based rule would pick the lowest rung for ever. A segment the
//! player asked for that is no longer (or never was) in the window counts
//! as a rebuffer.
//!
//! The choices ([`Choices`]: the window, the rung in use, the switch) are
//! kept apart from the I/O (the feeds, the replies), so they are tested
//! without a network.
//!
//! [`LadderPlayer`]: super::play::LadderPlayer

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use rusty_shared_types::Hash256;
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{debug, info};

use super::play::{
    cap_master, id_in, read_master, refuse, refuse_all, Command, LadderPlayError, LadderStatus,
    RenditionStatus,
};
use crate::{
    abr::{Chooser, Rule},
    broadcast::{LiveStream, Played, WINDOW},
    service::MediaHandle,
};

/// Playlist and capped-master requests wait this long for the first
/// segment before they are answered with an error.
const FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(30);
/// A switch that has not covered its first segment by then stops the old
/// rung anyway (its jitter buffer skips a missing segment after 2 s).
const SWITCH_DEADLINE: Duration = Duration::from_secs(6);
/// How long a feed waits for the next played segment before it checks
/// whether its stream ended.
const FEED_WAIT: Duration = Duration::from_secs(1);
/// With no player request for this long the ladder stops following (the
/// broadcast may go on for hours with nobody watching through this node);
/// the next request follows the rung in use again.
const IDLE_STOP: Duration = Duration::from_secs(30);

/// A rung: a broadcast of one rendition.
#[derive(Debug)]
struct Rung {
    name: String,
    kbps: f64,
    stream: Hash256,
    /// Segments taken from it, and their bytes.
    segments: u64,
    bytes: u64,
}

/// A segment in the ladder's window.
#[derive(Debug)]
struct Segment {
    rung: usize,
    duration_ms: u32,
    data: Arc<[u8]>,
    joinable: bool,
}

/// What a rung's feed task reports.
enum FeedEvent {
    /// The node watches the rung's stream (`started`: this ladder started
    /// the watch, so it stops it when done).
    Watching {
        rung: usize,
        stream: LiveStream,
        started: bool,
    },
    Played {
        rung: usize,
        segments: Vec<Played>,
    },
    /// The stream ended, or could not be watched.
    Ended {
        rung: usize,
        error: Option<String>,
    },
}

/// A rung being followed: the task forwarding its played segments.
struct Feed {
    task: JoinHandle<()>,
    stream: Option<(LiveStream, bool)>,
}

/// A switch under way: segments come from the new rung from `first_new`
/// on (once known); the old rung feeds until everything before it is held
/// or was skipped.
#[derive(Debug, Clone, Copy)]
struct Switch {
    old: usize,
    started: Instant,
    first_new: Option<u64>,
    /// The old rung's next segment.
    old_next: u64,
}

/// What the ladder's choices ask of its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Follow(usize),
    Unfollow(usize),
}

/// The ladder's choices, apart from its I/O: the window of segments
/// taken, which rung they come from, and when a switch starts and ends.
#[derive(Debug)]
struct Choices {
    chooser: Chooser,
    rungs: Vec<Rung>,
    /// The rung segments are taken from.
    current: usize,
    switch: Option<Switch>,
    held: BTreeMap<u64, Segment>,
    /// The segment after the newest the player asked for.
    position: Option<u64>,
    rebuffers: u64,
    switches: u64,
    /// Every segment taken so far was joinable: the playlist says
    /// `#EXT-X-INDEPENDENT-SEGMENTS` until one is not, then never again
    /// (a live playlist may not take a tag back and forth).
    independent: bool,
    /// The longest segment taken so far, ms: the playlist's target
    /// duration, which must not change between reloads (see
    /// [`crate::http::hls_target_duration`]).
    longest_ms: u32,
}

/// Everything one live ladder's task owns.
struct LiveLadder {
    media: MediaHandle,
    master: Hash256,
    master_text: String,
    choices: Choices,
    feeds: HashMap<usize, Feed>,
    /// The current rung's broadcast ended (or failed): the playlist ends.
    ended: Option<Option<String>>,
    /// Playlist and master requests waiting for the first segment.
    waiting: Vec<(Instant, Command)>,
    /// The last request from a player.
    last_request: Instant,
    events: mpsc::Sender<FeedEvent>,
}

/// Runs a live ladder's task: answers `rx` until every handle is gone.
pub(super) async fn run(media: MediaHandle, master: Hash256, mut rx: mpsc::Receiver<Command>) {
    let (rungs, master_text) = match open(&media, master).await {
        Ok(r) => r,
        Err(e) => return refuse_all(master, rx, e).await,
    };
    let (events, mut feed_rx) = mpsc::channel(64);
    let mut ladder = LiveLadder {
        choices: Choices::new(rungs),
        media,
        master,
        master_text,
        feeds: HashMap::new(),
        ended: None,
        waiting: Vec::new(),
        last_request: Instant::now(),
        events,
    };
    info!(target: "media", %master, rungs = ladder.choices.rungs.len(), "the node chooses renditions of a live ladder");
    ladder.follow(0);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => ladder.on_command(cmd),
                None => break,
            },
            Some(event) = feed_rx.recv() => ladder.on_event(event),
            _ = tick.tick() => {
                ladder.expire_waiting();
                ladder.stop_if_idle();
            }
        }
    }
    ladder.stop_all();
}

/// The rungs of a live master playlist (ascending bitrate) and its text.
async fn open(
    media: &MediaHandle,
    master: Hash256,
) -> Result<(Vec<Rung>, String), LadderPlayError> {
    let (text, variants) = read_master(media, master).await?;
    let mut rungs = Vec::new();
    for (kbps, resolution, uri) in variants {
        let stream = id_in(&uri, "live.m3u8").ok_or_else(|| {
            LadderPlayError::BadLadder(format!(
                "variant {uri:?} of a live ladder is not a node path ../<id>/live.m3u8"
            ))
        })?;
        rungs.push(Rung {
            name: resolution.unwrap_or_else(|| format!("{kbps:.0} kbit/s")),
            kbps,
            stream,
            segments: 0,
            bytes: 0,
        });
    }
    rungs.sort_by(|a, b| a.kbps.total_cmp(&b.kbps));
    Ok((rungs, text))
}

/// Watches `stream` and forwards what plays there, from the first segment
/// on, until the stream ends or the task is aborted.
async fn feed(media: MediaHandle, rung: usize, id: Hash256, events: mpsc::Sender<FeedEvent>) {
    let started = media.live_stream(&id).await.is_none();
    let stream = match media.watch(id).await {
        Ok(s) => s,
        Err(e) => {
            let error = Some(e.to_string());
            let _ = events.send(FeedEvent::Ended { rung, error }).await;
            return;
        }
    };
    let watching = FeedEvent::Watching {
        rung,
        stream: stream.clone(),
        started,
    };
    if events.send(watching).await.is_err() {
        return;
    }
    let mut next = 0;
    loop {
        let segments = stream.wait_played(next, WINDOW, FEED_WAIT).await;
        if let Some(last) = segments.last() {
            next = last.seq.saturating_add(1);
            if events
                .send(FeedEvent::Played { rung, segments })
                .await
                .is_err()
            {
                return;
            }
        } else if stream.is_ended() {
            let _ = events.send(FeedEvent::Ended { rung, error: None }).await;
            return;
        }
    }
}

/// The live media playlist of `window` (seq, ms, joinable), every segment
/// as `abr/<seq>.ts`: the newest run of consecutive segments (a playlist
/// numbers its entries from `#EXT-X-MEDIA-SEQUENCE` on, so a gap ends the
/// older part), with `#EXT-X-ENDLIST` once `ended`, `#EXT-X-INDEPENDENT-SEGMENTS`
/// while `independent`, and `#EXT-X-START` at the newest joinable segment
/// when players would otherwise start at one that is not
/// ([`crate::live::join_point`]); the target duration is the longest of
/// the window and `longest_ms` (the longest taken so far), as
/// [`crate::http::hls_target_duration`] counts it. `None` when empty.
fn live_abr_playlist(
    window: &[(u64, u32, bool)],
    ended: bool,
    independent: bool,
    longest_ms: u32,
) -> Option<String> {
    let newest = window.len().checked_sub(1)?;
    let start = (0..newest)
        .rev()
        .find(|&i| window[i].0.checked_add(1) != Some(window[i + 1].0))
        .map_or(0, |gap| gap + 1);
    let run = &window[start..];
    let max_ms = run.iter().map(|&(_, ms, _)| u64::from(ms)).max()?;
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n{}",
        crate::http::hls_target_duration(max_ms, longest_ms),
        run[0].0,
        if independent {
            "#EXT-X-INDEPENDENT-SEGMENTS\n"
        } else {
            ""
        }
    );
    let listed: Vec<(u64, bool)> = run.iter().map(|&(seq, _, j)| (seq, j)).collect();
    if let Some(join) = crate::live::join_point(&listed) {
        let durations: Vec<(u64, u32)> = run.iter().map(|&(seq, ms, _)| (seq, ms)).collect();
        out.push_str(&crate::http::hls_start_line(&durations, join).unwrap_or_default());
    }
    for &(seq, ms, _) in run {
        out.push_str(&format!(
            "#EXTINF:{}.{:03},\nabr/{seq}.ts\n",
            ms / 1000,
            ms % 1000
        ));
    }
    if ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    Some(out)
}

impl Choices {
    fn new(rungs: Vec<Rung>) -> Choices {
        let bitrates: Vec<f64> = rungs.iter().map(|r| r.kbps).collect();
        Choices {
            // Live segments are cut on the ladder's keyframe interval.
            chooser: Chooser::new(Rule::Throughput, &bitrates, f64::from(super::SEGMENT_SECS)),
            rungs,
            current: 0,
            switch: None,
            held: BTreeMap::new(),
            position: None,
            rebuffers: 0,
            switches: 0,
            independent: true,
            longest_ms: 0,
        }
    }

    /// Seconds held after the player's position.
    fn buffer(&self) -> f64 {
        let from = self.position.unwrap_or(0);
        self.held
            .range(from..)
            .fold(0.0, |secs, (_, s)| secs + f64::from(s.duration_ms) / 1000.0)
    }

    /// One segment that played on `rung`: taken into the window if it
    /// comes from the rung in use (during a switch, the old rung's up to
    /// the new rung's first segment).
    fn take(&mut self, rung: usize, played: Played) {
        let from_old = self.switch.is_some_and(|s| s.old == rung);
        if rung != self.current && !from_old {
            return;
        }
        let seq = played.seq;
        if let Some(s) = self.switch.as_mut() {
            if from_old {
                s.old_next = s.old_next.max(seq.saturating_add(1));
                if s.first_new.is_some_and(|first| seq >= first) {
                    return;
                }
            } else if s.first_new.is_none() {
                s.first_new = Some(seq);
            }
        }
        if self.held.contains_key(&seq) {
            return;
        }
        // A segment the node did not fetch (its own broadcast: 0 ms)
        // counts as a local read, a millisecond.
        let bytes = played.data.len() as u64;
        let secs = played.fetch_ms.max(1) as f64 / 1000.0;
        self.chooser.record(bytes as f64 * 8.0 / 1000.0, secs);
        let r = &mut self.rungs[rung];
        r.segments += 1;
        r.bytes += bytes;
        self.independent &= played.joinable;
        self.longest_ms = self.longest_ms.max(played.duration_ms);
        self.held.insert(
            seq,
            Segment {
                rung,
                duration_ms: played.duration_ms,
                data: played.data,
                joinable: played.joinable,
            },
        );
        while self.held.len() > WINDOW {
            self.held.pop_first();
        }
    }

    /// After new segments (and on `ended`, once the rung in use ended):
    /// ends a switch whose first new segment is covered (or that ran past
    /// [`SWITCH_DEADLINE`]), then asks the rule for the next rung and
    /// starts a switch to it.
    fn decide(&mut self, ended: bool, now: Instant) -> Vec<Step> {
        let mut steps = Vec::new();
        if let Some(s) = self.switch {
            let covered = s.first_new.is_some_and(|first| s.old_next >= first);
            if covered || now.saturating_duration_since(s.started) > SWITCH_DEADLINE {
                steps.extend(self.end_switch());
            }
        }
        if self.switch.is_some() || ended {
            return steps;
        }
        let want = self.chooser.choose(self.buffer());
        if want != self.current {
            let old_next = self.held.last_key_value().map_or(0, |(seq, _)| seq + 1);
            self.switch = Some(Switch {
                old: self.current,
                started: now,
                first_new: None,
                old_next,
            });
            self.current = want;
            self.switches += 1;
            steps.push(Step::Follow(want));
        }
        steps
    }

    /// Ends the switch under way: the old rung is no longer followed.
    fn end_switch(&mut self) -> Option<Step> {
        let s = self.switch.take()?;
        (s.old != self.current).then_some(Step::Unfollow(s.old))
    }

    /// Segment `seq` for the player, who is then past it.
    fn segment(&mut self, seq: u64) -> Result<Arc<[u8]>, LadderPlayError> {
        let next = seq.saturating_add(1);
        self.position = Some(self.position.map_or(next, |p| p.max(next)));
        match self.held.get(&seq) {
            Some(s) => Ok(s.data.clone()),
            None => {
                // Asked for and not here: out of the window, or never
                // delivered (skipped). Counted; the choice follows the
                // fetches' throughput alone.
                if self
                    .held
                    .last_key_value()
                    .is_some_and(|(newest, _)| seq < *newest)
                {
                    self.rebuffers += 1;
                }
                Err(LadderPlayError::NoSegment(
                    usize::try_from(seq).unwrap_or(usize::MAX),
                ))
            }
        }
    }

    /// The window as (seq, duration ms, joinable), oldest first.
    fn window(&self) -> Vec<(u64, u32, bool)> {
        self.held
            .iter()
            .map(|(seq, s)| (*seq, s.duration_ms, s.joinable))
            .collect()
    }

    /// The highest rung a self-choosing player is offered.
    fn cap_kbps(&self) -> f64 {
        self.rungs.get(self.chooser.cap()).map_or(0.0, |r| r.kbps)
    }
}

impl LiveLadder {
    /// Starts following `rung` (unless it is followed already).
    fn follow(&mut self, rung: usize) {
        if self.feeds.contains_key(&rung) {
            return;
        }
        let task = tokio::spawn(feed(
            self.media.clone(),
            rung,
            self.choices.rungs[rung].stream,
            self.events.clone(),
        ));
        self.feeds.insert(rung, Feed { task, stream: None });
    }

    /// Stops following `rung`, and watching its stream if this ladder
    /// started the watch.
    fn unfollow(&mut self, rung: usize) {
        let Some(feed) = self.feeds.remove(&rung) else {
            return;
        };
        feed.task.abort();
        if let Some((stream, started)) = feed.stream {
            self.release(&stream, started);
        }
    }

    /// Stops watching `stream` if this ladder `started` the watch (another
    /// watcher on the node keeps its own).
    fn release(&self, stream: &LiveStream, started: bool) {
        if started {
            let (media, id) = (self.media.clone(), stream.id);
            tokio::spawn(async move { media.unwatch(&id).await });
        }
    }

    fn stop_all(&mut self) {
        let rungs: Vec<usize> = self.feeds.keys().copied().collect();
        for rung in rungs {
            self.unfollow(rung);
        }
    }

    fn apply(&mut self, steps: Vec<Step>) {
        for step in steps {
            match step {
                Step::Follow(rung) => {
                    let c = &self.choices;
                    info!(target: "media", master = %self.master, to = %c.rungs[rung].name,
                          throughput_kbps = ?c.chooser.throughput().map(f64::round),
                          "live ladder switches rendition");
                    self.follow(rung);
                }
                Step::Unfollow(rung) => self.unfollow(rung),
            }
        }
    }

    fn on_event(&mut self, event: FeedEvent) {
        match event {
            FeedEvent::Watching {
                rung,
                stream,
                started,
            } => match self.feeds.get_mut(&rung) {
                Some(feed) => feed.stream = Some((stream, started)),
                // Stopped before the watch began: stop the watch too.
                None => self.release(&stream, started),
            },
            FeedEvent::Played { rung, segments } => {
                for played in segments {
                    self.choices.take(rung, played);
                }
                let steps = self.choices.decide(self.ended.is_some(), Instant::now());
                self.apply(steps);
                self.answer_waiting();
            }
            FeedEvent::Ended { rung, error } => {
                if let Some(e) = &error {
                    debug!(target: "media", master = %self.master, rung, error = %e, "a live rung could not be watched");
                }
                if rung == self.choices.current {
                    self.ended = Some(error);
                    self.answer_waiting();
                } else if self.choices.switch.is_some_and(|s| s.old == rung) {
                    let step = self.choices.end_switch();
                    self.apply(step.into_iter().collect());
                }
            }
        }
    }

    /// Stops following once no player asked anything for [`IDLE_STOP`].
    fn stop_if_idle(&mut self) {
        if !self.feeds.is_empty() && self.last_request.elapsed() > IDLE_STOP {
            debug!(target: "media", master = %self.master, "no player for a while: the live ladder stops following");
            self.choices.switch = None;
            self.stop_all();
        }
    }

    fn on_command(&mut self, cmd: Command) {
        if !matches!(cmd, Command::Status(_)) {
            self.last_request = Instant::now();
            // Back from idle: follow the rung in use again (the window
            // then has a gap, and the playlist starts after it).
            if self.feeds.is_empty() && self.ended.is_none() {
                self.follow(self.choices.current);
            }
        }
        match cmd {
            Command::Segment(seq, reply) => {
                let answer = self.choices.segment(seq as u64).map(|d| d.to_vec());
                let _ = reply.send(answer);
            }
            Command::Status(reply) => {
                let _ = reply.send(Ok(self.status()));
            }
            cmd @ (Command::Playlist(_) | Command::Master(_)) => {
                if self.choices.held.is_empty() && self.ended.is_none() {
                    self.waiting.push((Instant::now(), cmd));
                } else {
                    self.answer(cmd);
                }
            }
        }
    }

    fn answer(&self, cmd: Command) {
        match cmd {
            Command::Playlist(reply) => {
                let window = self.choices.window();
                let answer = match (
                    live_abr_playlist(
                        &window,
                        self.ended.is_some(),
                        self.choices.independent,
                        self.choices.longest_ms,
                    ),
                    &self.ended,
                ) {
                    (Some(text), _) => Ok(text),
                    (None, Some(Some(e))) => Err(LadderPlayError::Media(e.clone())),
                    (None, _) => Err(LadderPlayError::Media(
                        "the live ladder ended before any segment".into(),
                    )),
                };
                let _ = reply.send(answer);
            }
            Command::Master(reply) => {
                let _ = reply.send(Ok(cap_master(&self.master_text, self.choices.cap_kbps())));
            }
            other => refuse(other, LadderPlayError::Stopped),
        }
    }

    fn answer_waiting(&mut self) {
        if self.choices.held.is_empty() && self.ended.is_none() {
            return;
        }
        for (_, cmd) in std::mem::take(&mut self.waiting) {
            self.answer(cmd);
        }
    }

    /// Fails requests that waited too long for the first segment.
    fn expire_waiting(&mut self) {
        let (expired, kept) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(at, _)| at.elapsed() > FIRST_SEGMENT_WAIT);
        self.waiting = kept;
        for (_, cmd) in expired {
            refuse(
                cmd,
                LadderPlayError::Media(format!(
                    "no segment of the live ladder arrived within {} s",
                    FIRST_SEGMENT_WAIT.as_secs()
                )),
            );
        }
    }

    fn status(&self) -> LadderStatus {
        let c = &self.choices;
        let first = c.held.first_key_value().map_or(0, |(seq, _)| *seq);
        let last = c.held.last_key_value().map_or(0, |(seq, _)| seq + 1);
        let mut following: Vec<usize> = self.feeds.keys().copied().collect();
        following.sort_unstable();
        LadderStatus {
            master: self.master.to_string(),
            rule: c.chooser.rule().name(),
            live: true,
            first_segment: first,
            segments: c.held.len(),
            position: usize::try_from(c.position.unwrap_or(0)).unwrap_or(usize::MAX),
            buffer_secs: c.buffer(),
            throughput_kbps: c.chooser.throughput(),
            rebuffers: c.rebuffers,
            // Counted as they happen: the window forgets older segments.
            switches: c.switches,
            renditions: c
                .rungs
                .iter()
                .map(|r| RenditionStatus {
                    name: r.name.clone(),
                    kbps: r.kbps,
                    content: r.stream.to_string(),
                    segments: r.segments,
                    bytes: r.bytes,
                })
                .collect(),
            chosen: (first..last)
                .map(|seq| c.held.get(&seq).map(|s| s.rung))
                .collect(),
            offered: c.chooser.cap() + 1,
            following,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ladder() -> Choices {
        let rung = |name: &str, kbps: f64, n: u8| Rung {
            name: name.into(),
            kbps,
            stream: Hash256([n; 32]),
            segments: 0,
            bytes: 0,
        };
        Choices::new(vec![
            rung("428x240", 400.0, 1),
            rung("640x360", 700.0, 2),
            rung("854x480", 1100.0, 3),
        ])
    }

    /// A 1 s segment of `kbits` fetched in `fetch_ms`, its first byte
    /// naming its rung.
    fn played(seq: u64, rung: u8, kbits: u64, fetch_ms: u64) -> Played {
        let mut data = vec![0u8; usize::try_from(kbits * 1000 / 8).unwrap()];
        data[0] = rung;
        Played {
            seq,
            duration_ms: 1000,
            latency_ms: 0,
            fetch_ms,
            data: data.into(),
            joinable: true,
        }
    }

    fn rungs_held(c: &Choices) -> Vec<(u64, usize)> {
        c.held.iter().map(|(seq, s)| (*seq, s.rung)).collect()
    }

    #[test]
    fn a_fast_swarm_switches_up_and_the_old_rung_feeds_until_the_new_one_takes_over() {
        let mut c = ladder();
        let now = Instant::now();
        // Nothing measured: the lowest, and no switch before a sample.
        assert_eq!(c.chooser.choose(0.0), 0);
        // 400 kbit in 100 ms: 4,000 kbit/s carries the highest rung.
        c.take(0, played(10, 0, 400, 100));
        assert_eq!(c.decide(false, now), [Step::Follow(2)]);
        assert_eq!((c.current, c.switches), (2, 1));
        // A second decision while switching changes nothing.
        assert_eq!(c.decide(false, now), []);
        // The new rung's first segment is 12; the old one still owes 11,
        // and what it brings from 12 on is not taken.
        c.take(2, played(12, 2, 1100, 100));
        assert_eq!(c.decide(false, now), []);
        c.take(0, played(11, 0, 400, 100));
        c.take(0, played(12, 0, 400, 100));
        assert_eq!(c.decide(false, now), [Step::Unfollow(0)]);
        assert!(c.switch.is_none());
        // Late segments of the old rung are dropped; the new rung's kept.
        c.take(0, played(13, 0, 400, 100));
        c.take(2, played(13, 2, 1100, 100));
        assert_eq!(rungs_held(&c), [(10, 0), (11, 0), (12, 2), (13, 2)]);
        assert_eq!((c.rungs[0].segments, c.rungs[2].segments), (2, 2));
        assert_eq!(c.rungs[1].segments, 0, "the middle rung was never used");
    }

    #[test]
    fn a_switch_whose_old_rung_never_delivers_ends_at_its_deadline() {
        let mut c = ladder();
        let now = Instant::now();
        c.take(0, played(0, 0, 400, 100));
        assert_eq!(c.decide(false, now), [Step::Follow(2)]);
        // The new rung starts at 3: 1 and 2 never come from the old one.
        c.take(2, played(3, 2, 1100, 100));
        assert_eq!(c.decide(false, now + Duration::from_secs(1)), []);
        let late = now + SWITCH_DEADLINE + Duration::from_millis(1);
        assert_eq!(c.decide(false, late), [Step::Unfollow(0)]);
        // The gap leaves the playlist at the newest run.
        let p = live_abr_playlist(&c.window(), false, true, 0).unwrap();
        assert!(p.contains("#EXT-X-MEDIA-SEQUENCE:3\n"), "{p}");
        assert!(!p.contains("abr/0.ts"));
    }

    #[test]
    fn a_slow_swarm_steps_down_and_an_ended_rung_stops_the_choosing() {
        let mut c = ladder();
        let now = Instant::now();
        c.take(0, played(0, 0, 400, 50));
        assert_eq!(c.decide(false, now), [Step::Follow(2)]);
        c.take(2, played(1, 2, 1100, 100));
        assert_eq!(c.decide(false, now), [Step::Unfollow(0)]);
        // Fetches slow down to about 900 kbit/s: 90 % of it carries 360p.
        for seq in 2..7 {
            c.take(2, played(seq, 2, 1100, 1222));
        }
        assert_eq!(c.decide(false, now), [Step::Follow(1)]);
        c.take(1, played(7, 1, 700, 700));
        assert_eq!(c.decide(false, now), [Step::Unfollow(2)]);
        // Once the rung in use ended, nothing more is chosen.
        c.take(1, played(8, 1, 100, 1000));
        assert_eq!(c.decide(true, now), []);
        assert_eq!(c.current, 1);
    }

    #[test]
    fn the_player_gets_held_segments_and_a_missing_one_is_a_rebuffer() {
        let mut c = ladder();
        for seq in 5..8 {
            c.take(0, played(seq, 0, 400, 100));
        }
        assert_eq!(c.segment(5).unwrap()[0], 0);
        assert_eq!((c.position, c.buffer()), (Some(6), 2.0));
        // Out of the window (before it): a rebuffer; past the newest: not
        // yet here, not counted.
        assert_eq!(c.segment(4), Err(LadderPlayError::NoSegment(4)));
        assert_eq!(c.segment(9), Err(LadderPlayError::NoSegment(9)));
        assert_eq!(c.rebuffers, 1);
        assert_eq!(c.position, Some(10), "the position never goes back");
        // The window keeps the newest 64.
        for seq in 8..100 {
            c.take(0, played(seq, 0, 8, 100));
        }
        assert_eq!(c.held.len(), WINDOW);
        assert_eq!(
            c.held.first_key_value().map(|(s, _)| *s),
            Some(100 - WINDOW as u64)
        );
    }

    /// The ladder's playlist keeps the target duration of the longest
    /// segment taken after it has left the window.
    #[test]
    fn the_longest_segment_taken_outlives_the_window() {
        let mut c = ladder();
        let mut long = played(0, 0, 400, 100);
        long.duration_ms = 3_000;
        c.take(0, long);
        for seq in 1..=WINDOW as u64 + 1 {
            c.take(0, played(seq, 0, 400, 100));
        }
        assert!(c.window().iter().all(|&(seq, ms, _)| seq > 0 && ms == 1000));
        let p =
            live_abr_playlist(&c.window(), false, c.independent, c.longest_ms).expect("segments");
        assert!(p.contains("#EXT-X-TARGETDURATION:3\n"), "{p}");
    }

    #[test]
    fn the_live_playlist_lists_the_newest_run_and_ends_when_told() {
        assert_eq!(live_abr_playlist(&[], false, true, 0), None);
        let p = live_abr_playlist(
            &[
                (4, 1000, true),
                (5, 1000, true),
                (7, 1000, true),
                (8, 480, true),
            ],
            false,
            true,
            0,
        )
        .expect("segments");
        assert!(p.contains("#EXT-X-INDEPENDENT-SEGMENTS\n"));
        // The run after the gap at 6 only, numbered from 7.
        assert!(p.contains("#EXT-X-MEDIA-SEQUENCE:7\n"));
        assert!(!p.contains("abr/5.ts"));
        assert!(p.contains("#EXTINF:1.000,\nabr/7.ts\n#EXTINF:0.480,\nabr/8.ts\n"));
        assert!(p.contains("#EXT-X-TARGETDURATION:1\n"));
        assert!(!p.contains("#EXT-X-ENDLIST"));
        let ended = live_abr_playlist(&[(0, 1500, true), (1, 1000, true)], true, true, 0)
            .expect("segments");
        assert!(ended.contains("#EXT-X-MEDIA-SEQUENCE:0\n"));
        assert!(ended.contains("#EXT-X-TARGETDURATION:2\n"));
        // A longer segment taken before, gone from the window: the target
        // stays.
        let held = live_abr_playlist(&[(7, 1000, true)], false, true, 4_200).expect("segments");
        assert!(held.contains("#EXT-X-TARGETDURATION:5\n"), "{held}");
        assert!(ended.ends_with("abr/1.ts\n#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn the_live_playlist_points_players_at_a_joinable_segment_near_the_end() {
        // 5 was cut inside a group of pictures: players, which start three
        // from the end (at 5), are pointed at 4 (3.5 s before the end).
        let window = [
            (4, 1000, true),
            (5, 1000, false),
            (6, 1000, true),
            (7, 500, true),
        ];
        let p = live_abr_playlist(&window, false, false, 0).expect("segments");
        assert!(p.contains("#EXT-X-MEDIA-SEQUENCE:4\n"), "{p}");
        assert!(
            p.contains("#EXT-X-START:TIME-OFFSET=-3.500,PRECISE=YES\n"),
            "{p}"
        );
        // No joinable one before: the oldest after.
        let later = [
            (4, 1000, false),
            (5, 1000, false),
            (6, 1000, true),
            (7, 500, true),
        ];
        let q = live_abr_playlist(&later, false, false, 0).expect("segments");
        assert!(
            q.contains("#EXT-X-START:TIME-OFFSET=-1.500,PRECISE=YES\n"),
            "{q}"
        );
        assert!(!p.contains("INDEPENDENT"), "{p}");
        // The last three all joinable: no start given.
        let fine = [
            (4, 1000, false),
            (5, 1000, true),
            (6, 1000, true),
            (7, 1000, true),
        ];
        let p = live_abr_playlist(&fine, false, true, 0).expect("segments");
        assert!(!p.contains("EXT-X-START"), "{p}");
        assert!(p.contains("#EXT-X-INDEPENDENT-SEGMENTS\n"), "{p}");
        // None joinable: nothing to point at.
        let rough = live_abr_playlist(&[(1, 1000, false), (2, 1000, false)], false, false, 0)
            .expect("segments");
        assert!(!rough.contains("EXT-X-START"), "{rough}");
    }
}
