//! Downloading a file from every peer that has it.
//!
//! - The manifest comes from the store or from a provider (verified to hash
//!   to the content id).
//! - Providers come from announcements, Kademlia provider records and, as a
//!   last resort, the connected peers; they are refreshed every few
//!   seconds, so viewers that start re-serving join in.
//! - Requests of up to 16 chunks go to several providers at once, a few in
//!   flight per provider (pipelining). Chunks are picked from the playhead
//!   (where a player reads) onward, then from the start.
//! - Which providers (at most [`MAX_ACTIVE_PROVIDERS`] at once), how many
//!   requests each and whether a critical range (at a reader's playhead, or
//!   one of the last) may go to a provider is the provider policy's call
//!   ([`crate::selection`]: `classic` by default, `learned` with
//!   `--media-provider-policy learned`).
//! - Every chunk is verified by the store before it is written. A provider
//!   that sends a bad chunk is penalised (banned by the network layer) and
//!   dropped; its chunks are fetched elsewhere.
//! - A request slower than a few times the typical one is sent again to an
//!   idle provider and the slow provider is held to one request at a time;
//!   at the end the last ranges are raced the same way.
//! - A provider that answers `Busy` (its upload limit is reached) rests for
//!   a second and is then held to one request at a time too, until a
//!   request sent since comes back quickly: the next request it gets is
//!   the most urgent (a player's seek), not one of a window it cannot
//!   serve.
//! - What is verified on disk stays: a restarted download asks only for
//!   the missing chunks.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures::{stream::FuturesUnordered, StreamExt};
use rusty_network::PeerId;
use rusty_shared_types::Hash256;
use tokio::sync::{watch, Notify};
use tracing::{debug, info};

use crate::{
    direct::client::DirectChannel,
    manifest::SignedManifest,
    selection::ProviderPolicy,
    service::{blocking, io_pool::low_priority, MediaError, MediaHandle},
    store::{PutChunks, StoreError},
    wire::{MediaRequest, MediaResponse, MAX_CHUNKS_PER_REQUEST},
};

/// Providers a download uses at once, at most; with more, the provider
/// policy chooses (see [`crate::selection`]).
pub const MAX_ACTIVE_PROVIDERS: usize = 8;
/// [`Download::horizon`] of a download of the whole file.
const WHOLE: u64 = u64::MAX;

/// Chunks ahead of a reader's playhead whose requests count as critical.
const CRITICAL_CHUNKS: u64 = crate::selection::sim::CRITICAL_RANGES * MAX_CHUNKS_PER_REQUEST as u64;
/// Data channels to one provider that may fail (closed, timed out) in one
/// download before it stays on libp2p; a chunk that does not verify on one
/// ends them at once.
const MAX_DIRECT_FAILURES: u32 = 3;
/// How often providers are looked up again.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// How long a provider lookup in the DHT may take.
const DHT_LOOKUP: Duration = Duration::from_secs(4);
/// How long a download waits for a provider's data channel to open
/// before asking for chunks over libp2p meanwhile.
const DIRECT_GRACE: Duration = Duration::from_millis(250);
/// Give up when no provider has turned up for this long.
const NO_PROVIDER_TIMEOUT: Duration = Duration::from_secs(60);
/// A request is slow after this many times the median request time...
pub(crate) const SLOW_FACTOR: u32 = 4;
/// ...but never before this.
pub(crate) const SLOW_MIN: Duration = Duration::from_secs(2);

/// Where a download is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DownloadState {
    FindingManifest,
    Downloading,
    Complete,
    Failed(String),
    Cancelled,
}

/// A provider's part in a download, for `stream_status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PeerProgress {
    pub peer: String,
    pub bytes: u64,
    pub in_flight: usize,
    /// Bytes per second over its completed requests.
    pub rate: u64,
    /// Penalised for a bad chunk, or slow.
    pub state: &'static str,
}

/// A snapshot of a download.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DownloadStatus {
    pub id: String,
    pub state: DownloadState,
    pub title: String,
    pub size: u64,
    pub chunks_total: u64,
    pub chunks_present: u64,
    pub bytes_present: u64,
    /// Chunks fetched by this download (not counting what was already on
    /// disk when it started).
    pub chunks_fetched: u64,
    /// Chunks that failed verification (their senders were penalised).
    pub bad_chunks: u64,
    /// Bytes per second over the last few seconds.
    pub rate: u64,
    pub elapsed_ms: u64,
    pub peers: Vec<PeerProgress>,
}

/// A running or finished download; see [`MediaHandle::download`].
///
/// Its task ([`run`]) is the only writer of the status: readers (the RPC,
/// waiting reads) see a snapshot through a `watch`. A reader steers it
/// through the playhead and the cancel flag, and wakes it with `progress`.
#[derive(Debug)]
pub struct Download {
    pub id: Hash256,
    status: watch::Sender<DownloadStatus>,
    /// The chunk a reader waits for; picking starts there.
    playhead: AtomicU64,
    /// A reader has asked for a chunk: ranges at its playhead are critical.
    reading: AtomicBool,
    /// Chunks at or past this are not fetched, nor any before the
    /// playhead: a sparse download fetches only what a reader asks for
    /// ([`Download::fetch_range`]). `u64::MAX`: the whole file.
    horizon: AtomicU64,
    cancelled: AtomicBool,
    /// The store dropped the content (cache full of other content).
    evicted: AtomicBool,
    /// A reader found a chunk missing from the store: if this download
    /// had stored it, the store lost it since (evicted, or found corrupt),
    /// and what is lost is fetched again.
    recheck: AtomicBool,
    progress: Notify,
    started: Instant,
}

impl Download {
    pub(crate) fn new(id: Hash256) -> Download {
        Download {
            id,
            status: watch::Sender::new(DownloadStatus {
                id: id.to_string(),
                state: DownloadState::FindingManifest,
                title: String::new(),
                size: 0,
                chunks_total: 0,
                chunks_present: 0,
                bytes_present: 0,
                chunks_fetched: 0,
                bad_chunks: 0,
                rate: 0,
                elapsed_ms: 0,
                peers: Vec::new(),
            }),
            playhead: AtomicU64::new(0),
            reading: AtomicBool::new(false),
            horizon: AtomicU64::new(WHOLE),
            cancelled: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            recheck: AtomicBool::new(false),
            progress: Notify::new(),
            started: Instant::now(),
        }
    }

    /// A download that will not run: the service stopped.
    pub(crate) fn stopped(id: Hash256) -> Arc<Download> {
        let d = Download::new(id);
        d.cancel();
        d.update(|s| s.state = DownloadState::Cancelled);
        Arc::new(d)
    }

    pub fn status(&self) -> DownloadStatus {
        let mut s = self.status.borrow().clone();
        s.elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        s
    }

    pub fn is_finished(&self) -> bool {
        !matches!(
            self.status.borrow().state,
            DownloadState::FindingManifest | DownloadState::Downloading
        )
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.status.borrow().state == DownloadState::Complete
    }

    pub(crate) fn is_finished_with_error(&self) -> bool {
        matches!(
            self.status.borrow().state,
            DownloadState::Failed(_) | DownloadState::Cancelled
        )
    }

    /// Why it failed, if it did.
    pub fn error(&self) -> Option<String> {
        match &self.status.borrow().state {
            DownloadState::Failed(e) => Some(e.clone()),
            DownloadState::Cancelled => Some("cancelled".into()),
            _ => None,
        }
    }

    /// Fetch from chunk `index` onward first (a player seeked there).
    pub fn prioritise(&self, index: u64) {
        self.playhead.store(index, Ordering::Relaxed);
        self.reading.store(true, Ordering::Relaxed);
        self.progress.notify_waiters();
    }

    /// A reader needs chunks `first..end`, and found `first` missing from
    /// the store: fetch from `first` first; a sparse download fetches only
    /// those.
    pub fn fetch_range(&self, first: u64, end: u64) {
        if self.is_sparse() {
            self.horizon.store(end.max(first), Ordering::Relaxed);
        }
        self.recheck.store(true, Ordering::Relaxed);
        self.prioritise(first);
    }

    /// Fetches only what readers ask for (see [`Download::fetch_range`]).
    pub fn is_sparse(&self) -> bool {
        self.horizon.load(Ordering::Relaxed) != WHOLE
    }

    /// From now on fetch the whole file (someone wants all of it).
    pub(crate) fn make_whole(&self) {
        self.horizon.store(WHOLE, Ordering::Relaxed);
        self.progress.notify_waiters();
    }

    /// A download that fetches nothing until a reader asks for a range.
    pub(crate) fn new_sparse(id: Hash256) -> Download {
        let d = Download::new(id);
        d.horizon.store(0, Ordering::Relaxed);
        d
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
        self.progress.notify_waiters();
    }

    /// Resolves at the next stored chunk or state change (or after a
    /// second, so waiters re-check).
    pub async fn progressed(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.progress.notified()).await;
    }

    /// Waits until the download finishes; the final status.
    pub async fn finished(&self) -> DownloadStatus {
        while !self.is_finished() {
            self.progressed().await;
        }
        self.status()
    }

    fn update(&self, f: impl FnOnce(&mut DownloadStatus)) {
        self.status.send_modify(f);
        self.progress.notify_waiters();
    }
}

pub(crate) async fn run(svc: MediaHandle, dl: Arc<Download>) {
    let state = match download(&svc, &dl).await {
        Ok(()) => DownloadState::Complete,
        Err(e) if dl.cancelled.load(Ordering::Relaxed) => {
            debug!(target: "media", id = %dl.id, error = %e, "download cancelled");
            DownloadState::Cancelled
        }
        Err(e) => {
            info!(target: "media", id = %dl.id, error = %e, "download failed");
            DownloadState::Failed(e.to_string())
        }
    };
    dl.update(|s| {
        s.state = state;
        s.rate = 0;
    });
}

/// Finds the manifest of `id`: the store, else any provider.
pub(crate) async fn obtain_manifest(
    svc: &MediaHandle,
    id: Hash256,
    cancelled: &AtomicBool,
) -> Result<Arc<SignedManifest>, MediaError> {
    if let Some(m) = svc.store().manifest(&id)? {
        return Ok(m);
    }
    let deadline = Instant::now() + NO_PROVIDER_TIMEOUT;
    let mut tried: HashMap<PeerId, u32> = HashMap::new();
    while Instant::now() < deadline && !cancelled.load(Ordering::Relaxed) && !svc.is_stopped() {
        let mut candidates = svc.known_providers(&id).await;
        if let Ok(found) = svc
            .shared
            .net
            .get_providers(id.0.to_vec(), DHT_LOOKUP)
            .await
        {
            candidates.extend(found);
        }
        // Neighbours may have it without having said so.
        if let Ok(peers) = svc.shared.net.peers().await {
            candidates.extend(peers.into_iter().map(|p| p.peer_id));
        }
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|p| seen.insert(*p) && tried.get(p).copied().unwrap_or(0) < 3);
        for peer in candidates {
            if Instant::now() >= deadline || cancelled.load(Ordering::Relaxed) || svc.is_stopped() {
                break;
            }
            *tried.entry(peer).or_default() += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, svc.fetch_manifest_from(id, peer)).await {
                Ok(Ok(m)) => return Ok(m),
                Ok(Err(e)) => debug!(target: "media", %id, %peer, error = %e, "no manifest"),
                Err(_) => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(MediaError::NotFound(id))
}

#[derive(Debug)]
struct Provider {
    in_flight: usize,
    /// Bytes asked of it and not answered yet.
    queued: u64,
    /// Verified bytes it delivered first.
    bytes: u64,
    bad: bool,
    /// Held to one request at a time since then (a request of its was
    /// raced, or it answered `Busy`), until a request sent since comes back
    /// quickly.
    slow: Option<Instant>,
    cooldown_until: Option<Instant>,
    strikes: u32,
    /// Chunks it said it does not have (forgotten at each refresh: it may
    /// have fetched them since).
    lacks: BTreeSet<u64>,
    direct: Direct,
    /// Data channels to it that failed in this download.
    direct_failures: u32,
    /// Data channels to it opened in this download: which one a request
    /// went over, so that the failures of an old one are not counted
    /// against its successor.
    direct_opened: u32,
}

/// A provider's direct data channel ([`crate::direct`]) as this download
/// knows it. Requests go over libp2p until it is open (none for a moment
/// while it opens, then one at a time), and again once it is off.
#[derive(Debug)]
enum Direct {
    Untried,
    /// Since then.
    Opening(Instant),
    Open(DirectChannel),
    /// It could not be opened, failed, or carried a chunk that did not
    /// verify (which, on an unauthenticated connection, is no proof
    /// against the provider: libp2p will tell).
    Off,
}

impl Provider {
    fn new() -> Provider {
        Provider {
            in_flight: 0,
            queued: 0,
            bytes: 0,
            bad: false,
            slow: None,
            cooldown_until: None,
            strikes: 0,
            lacks: BTreeSet::new(),
            direct: Direct::Untried,
            direct_failures: 0,
            direct_opened: 0,
        }
    }

    /// The open data channel, if any, and its number.
    fn channel(&self) -> Option<(DirectChannel, u32)> {
        match &self.direct {
            Direct::Open(ch) => Some((ch.clone(), self.direct_opened)),
            _ => None,
        }
    }

    fn usable(&self, now: Instant) -> bool {
        !self.bad && self.cooldown_until.is_none_or(|t| t <= now)
    }
}

/// The policy's view of a download's providers, on the download's clock.
struct Policy {
    inner: Box<dyn ProviderPolicy<PeerId> + Send>,
    epoch: Instant,
    range_bytes: u64,
}

impl Policy {
    fn secs(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.epoch).as_secs_f64()
    }

    fn window(&self, k: PeerId, p: &Provider, now: Instant) -> usize {
        // While its data channel opens, nothing goes over libp2p for a
        // moment (the channel opens within a round trip or two), then one
        // range at a time: a full window there queued megabytes on the
        // connection blocks travel on, and a block gossiped as a download
        // started arrived several times later than the rest
        // (docs/performance.md, media).
        if let Direct::Opening(since) = p.direct {
            return usize::from(now.saturating_duration_since(since) >= DIRECT_GRACE);
        }
        if p.slow.is_some() {
            1
        } else {
            self.inner.window(k, self.range_bytes, self.secs(now))
        }
    }

    fn rate(&self, k: PeerId, now: Instant) -> f64 {
        self.inner.rate(k, self.secs(now))
    }
}

#[derive(Debug)]
struct InFlight {
    peer: PeerId,
    start: u64,
    count: u32,
    sent: Instant,
    /// Already raced against another provider.
    raced: bool,
    /// Sent over the provider's data channel of this number.
    direct: Option<u32>,
}

struct Outcome {
    req: u64,
    result: Result<MediaResponse, String>,
}

/// Which chunks are still wanted.
#[derive(Debug)]
struct Picker {
    have: Vec<bool>,
    /// Wanted and not requested from anyone.
    pending: BTreeSet<u64>,
    remaining: u64,
}

impl Picker {
    fn new(count: u64, missing: &[u64]) -> Picker {
        let mut have = vec![true; usize::try_from(count).unwrap_or(0)];
        for m in missing {
            if let Some(h) = usize::try_from(*m).ok().and_then(|i| have.get_mut(i)) {
                *h = false;
            }
        }
        Picker {
            have,
            pending: missing.iter().copied().collect(),
            remaining: missing.len() as u64,
        }
    }

    fn has(&self, i: u64) -> bool {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.have.get(i))
            .copied()
            .unwrap_or(true)
    }

    fn mark_have(&mut self, i: u64) -> bool {
        match usize::try_from(i).ok().and_then(|i| self.have.get_mut(i)) {
            Some(h) if !*h => {
                *h = true;
                self.pending.remove(&i);
                self.remaining = self.remaining.saturating_sub(1);
                true
            }
            _ => false,
        }
    }

    /// Chunk `i`, stored before, is gone from the store: wanted again.
    fn lost(&mut self, i: u64) {
        if let Some(h) = usize::try_from(i).ok().and_then(|i| self.have.get_mut(i)) {
            if *h {
                *h = false;
                self.pending.insert(i);
                self.remaining = self.remaining.saturating_add(1);
            }
        }
    }

    /// Puts back the chunks of a range that are still missing.
    fn requeue(&mut self, start: u64, count: u32) {
        for i in start..start.saturating_add(u64::from(count)) {
            if !self.has(i) {
                self.pending.insert(i);
            }
        }
    }

    /// A run of up to [`MAX_CHUNKS_PER_REQUEST`] pending chunks, from the
    /// playhead onward (else from the start), skipping what `lacks` says
    /// the provider does not have. Removes it from `pending`.
    #[cfg(test)]
    fn take(&mut self, playhead: u64, lacks: &BTreeSet<u64>) -> Option<(u64, u32)> {
        let first = self.first(playhead, WHOLE, lacks)?;
        Some(self.take_from(first, WHOLE, lacks))
    }

    /// The first pending chunk from `playhead` onward (else from the
    /// start) that the provider is not known to lack; with a `horizon`
    /// (a sparse download), only from `playhead` up to it.
    fn first(&self, playhead: u64, horizon: u64, lacks: &BTreeSet<u64>) -> Option<u64> {
        let before = if horizon == WHOLE { playhead } else { 0 };
        self.pending
            .range(playhead..horizon.max(playhead))
            .chain(self.pending.range(..before))
            .find(|i| !lacks.contains(i))
            .copied()
    }

    /// The first such chunk at or after `from` and before `horizon`,
    /// without wrapping.
    fn first_after(&self, from: u64, horizon: u64, lacks: &BTreeSet<u64>) -> Option<u64> {
        self.pending
            .range(from..horizon.max(from))
            .find(|i| !lacks.contains(i))
            .copied()
    }

    /// The run of pending chunks from `first`.
    fn take_from(&mut self, first: u64, horizon: u64, lacks: &BTreeSet<u64>) -> (u64, u32) {
        let mut count: u32 = 0;
        while count < MAX_CHUNKS_PER_REQUEST {
            let i = first.saturating_add(u64::from(count));
            if i >= horizon || !self.pending.contains(&i) || lacks.contains(&i) {
                break;
            }
            self.pending.remove(&i);
            count += 1;
        }
        (first, count)
    }

    /// The still-missing part of a range (for racing it elsewhere).
    fn missing_in(&self, start: u64, count: u32) -> Option<(u64, u32)> {
        let end = start.saturating_add(u64::from(count));
        let first = (start..end).find(|i| !self.has(*i))?;
        let last = (first..end).rev().find(|i| !self.has(*i))?;
        let n = u32::try_from(last - first + 1).unwrap_or(MAX_CHUNKS_PER_REQUEST);
        Some((first, n))
    }
}

async fn download(svc: &MediaHandle, dl: &Arc<Download>) -> Result<(), MediaError> {
    let id = dl.id;
    let manifest = obtain_manifest(svc, id, &dl.cancelled).await?;
    if manifest.manifest.live {
        return Err(MediaError::IsLive(id));
    }
    let store = svc.store().clone();
    let missing = blocking(move || Ok(store.missing_chunks(&id)?)).await?;
    let count = manifest.chunk_count();
    let size = manifest.manifest.size;
    let chunk_size = u64::from(manifest.manifest.chunk_size);
    dl.update(|s| {
        s.state = DownloadState::Downloading;
        s.title = manifest.manifest.title.clone();
        s.size = size;
        s.chunks_total = count;
        s.chunks_present = count - missing.len() as u64;
        s.bytes_present = size.saturating_sub(missing.len() as u64 * chunk_size);
    });
    if missing.is_empty() {
        svc.announce_have(id, false).await;
        return Ok(());
    }
    let mut picker = Picker::new(count, &missing);
    let mut policy = Policy {
        inner: svc.provider_policy().build::<PeerId>(),
        epoch: Instant::now(),
        range_bytes: u64::from(MAX_CHUNKS_PER_REQUEST) * chunk_size,
    };
    let mut providers: HashMap<PeerId, Provider> = HashMap::new();
    let mut in_flight: HashMap<u64, InFlight> = HashMap::new();
    let mut futures = FuturesUnordered::new();
    let mut writes = FuturesUnordered::new();
    let mut openings = FuturesUnordered::new();
    let mut next_req: u64 = 0;
    let mut durations: Vec<Duration> = Vec::new();
    let mut last_refresh: Option<Instant> = None;
    let mut last_provider_seen = Instant::now();
    let mut lookup: Option<tokio::task::JoinHandle<Vec<PeerId>>> = None;
    let mut announced = false;
    let mut rate_window: (Instant, u64) = (Instant::now(), 0);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    while picker.remaining > 0 {
        if dl.evicted.load(Ordering::Relaxed) {
            return Err(MediaError::Download {
                id,
                reason: "evicted from the cache while downloading: raise --media-cache-size".into(),
            });
        }
        if dl.cancelled.load(Ordering::Relaxed) {
            return Err(MediaError::Download {
                id,
                reason: "cancelled".into(),
            });
        }
        // A reader found a chunk missing that this download stored: the
        // store lost some (evicted, or corrupt); want them again.
        let playhead = dl.playhead.load(Ordering::Relaxed);
        if dl.recheck.swap(false, Ordering::Relaxed) && picker.has(playhead) {
            let store = svc.store().clone();
            match blocking(move || Ok(store.missing_chunks(&id)?)).await {
                Ok(gone) => gone.into_iter().for_each(|i| picker.lost(i)),
                Err(MediaError::Store(StoreError::UnknownContent(_))) => {
                    dl.evicted.store(true, Ordering::Relaxed);
                    continue;
                }
                Err(e) => debug!(target: "media", %id, error = %e, "store not rechecked"),
            }
        }
        let now = Instant::now();
        // Refresh providers: announcements now, the DHT in the background.
        if last_refresh.is_none_or(|t| now.duration_since(t) >= REFRESH_EVERY) {
            last_refresh = Some(now);
            for p in svc.known_providers(&id).await {
                providers.entry(p).or_insert_with(Provider::new);
            }
            // Round trips as libp2p's ping measured them (the learned
            // policy sizes windows with them).
            if let Ok(peers) = svc.shared.net.peers().await {
                let t = policy.secs(now);
                for info in peers {
                    if let (Some(rtt), true) = (info.ping, providers.contains_key(&info.peer_id)) {
                        policy.inner.on_rtt(info.peer_id, rtt.as_secs_f64(), t);
                    }
                }
            }
            for p in providers.values_mut() {
                p.lacks.clear();
                if p.strikes >= 3 && p.cooldown_until.is_none_or(|t| t <= now) {
                    p.strikes = 0;
                }
            }
            if lookup.is_none() {
                let net = svc.shared.net.clone();
                lookup = Some(tokio::spawn(async move {
                    net.get_providers(id.0.to_vec(), DHT_LOOKUP)
                        .await
                        .unwrap_or_default()
                }));
            }
        }
        if lookup.as_ref().is_some_and(|l| l.is_finished()) {
            if let Some(Some(Ok(found))) = lookup.take().map(futures::FutureExt::now_or_never) {
                for p in found {
                    providers.entry(p).or_insert_with(Provider::new);
                }
            }
        }

        // Hand out work: to the providers the policy makes active, least
        // loaded first, then by estimated rate.
        let reading = dl.reading.load(Ordering::Relaxed);
        let horizon = dl.horizon.load(Ordering::Relaxed);
        let mut usable: Vec<PeerId> = providers
            .iter()
            .filter(|(_, p)| p.usable(now))
            .map(|(k, _)| *k)
            .collect();
        usable.sort();
        let active = policy
            .inner
            .active(&usable, MAX_ACTIVE_PROVIDERS, policy.secs(now));
        let mut order: Vec<PeerId> = active
            .iter()
            .filter(|k| {
                let p = &providers[*k];
                p.in_flight < policy.window(**k, p, now)
            })
            .copied()
            .collect();
        order.sort_by(|a, b| {
            providers[a]
                .in_flight
                .cmp(&providers[b].in_flight)
                .then(policy.rate(*b, now).total_cmp(&policy.rate(*a, now)))
        });
        if !order.is_empty() {
            last_provider_seen = now;
        }
        for peer in order {
            if let Some(p) = providers.get_mut(&peer) {
                if matches!(p.direct, Direct::Untried) && svc.shared.direct.is_some() {
                    p.direct = Direct::Opening(now);
                    let svc = svc.clone();
                    openings.push(async move { (peer, DirectChannel::open(&svc, peer).await) });
                }
            }
            while let Some(p) = providers.get(&peer) {
                if p.in_flight >= policy.window(peer, p, now) {
                    break;
                }
                let Some(mut first) = picker.first(playhead, horizon, &p.lacks) else {
                    break;
                };
                // A critical range (at a reader's playhead, or one of the
                // last) goes here only if this provider would finish it no
                // later than another would after its own queue.
                let endgame = (picker.pending.len() as u64)
                    <= active.len() as u64 * u64::from(MAX_CHUNKS_PER_REQUEST);
                let critical = |i: u64| {
                    endgame || (reading && i >= playhead && i < playhead + CRITICAL_CHUNKS)
                };
                if critical(first) {
                    let others: Vec<(PeerId, u64)> =
                        active.iter().map(|o| (*o, providers[o].queued)).collect();
                    let range = policy.range_bytes;
                    if !policy.inner.may_take_critical(
                        peer,
                        p.queued,
                        &others,
                        range,
                        policy.secs(now),
                    ) {
                        match picker
                            .first_after(
                                playhead.saturating_add(CRITICAL_CHUNKS),
                                horizon,
                                &p.lacks,
                            )
                            .filter(|i| !critical(*i))
                        {
                            Some(later) => first = later,
                            None => break,
                        }
                    }
                }
                let (start, n) = picker.take_from(first, horizon, &p.lacks);
                let Some(p) = providers.get_mut(&peer) else {
                    break;
                };
                p.in_flight += 1;
                p.queued += u64::from(n) * chunk_size;
                let req = next_req;
                next_req += 1;
                let (via, channel) = p.channel().unzip();
                in_flight.insert(
                    req,
                    InFlight {
                        peer,
                        start,
                        count: n,
                        sent: now,
                        raced: false,
                        direct: channel,
                    },
                );
                futures.push(send(svc.clone(), req, peer, via, (id, start, n)));
            }
        }

        // Race slow requests (and, at the end, the last ones) on idle
        // providers.
        let slow_after = median(&durations)
            .map(|d| (d * SLOW_FACTOR).max(SLOW_MIN))
            .unwrap_or(SLOW_MIN * 2);
        // At the end, a request older than a typical one is raced too.
        let endgame = picker.pending.is_empty();
        let typical = median(&durations).unwrap_or(SLOW_MIN / 4);
        let to_race: Vec<u64> = in_flight
            .iter()
            .filter(|(_, f)| {
                let age = now.duration_since(f.sent);
                !f.raced && (age >= slow_after || (endgame && age >= typical))
            })
            .map(|(k, _)| *k)
            .collect();
        for req in to_race {
            let Some(f) = in_flight.get(&req) else {
                continue;
            };
            let (orig_peer, start, count, sent) = (f.peer, f.start, f.count, f.sent);
            let Some((s, n)) = picker.missing_in(start, count) else {
                continue;
            };
            // Slow requests go to a provider with nothing in flight; at the
            // end, to any with a free slot.
            let idle = active.iter().copied().find(|k| {
                let p = &providers[k];
                let cap = if endgame {
                    policy.window(*k, p, now)
                } else {
                    1
                };
                *k != orig_peer && p.usable(now) && p.in_flight < cap && !p.lacks.contains(&s)
            });
            let Some(other) = idle else { continue };
            if let Some(f) = in_flight.get_mut(&req) {
                f.raced = true;
            }
            if now.duration_since(sent) >= slow_after {
                if let Some(p) = providers.get_mut(&orig_peer) {
                    p.slow = Some(now);
                }
            }
            let (mut via, mut channel) = (None, None);
            if let Some(p) = providers.get_mut(&other) {
                p.in_flight += 1;
                p.queued += u64::from(n) * chunk_size;
                (via, channel) = p.channel().unzip();
            }
            let r = next_req;
            next_req += 1;
            in_flight.insert(
                r,
                InFlight {
                    peer: other,
                    start: s,
                    count: n,
                    sent: now,
                    raced: true,
                    direct: channel,
                },
            );
            futures.push(send(svc.clone(), r, other, via, (id, s, n)));
        }

        if futures.is_empty()
            && writes.is_empty()
            && openings.is_empty()
            && now.duration_since(last_provider_seen) > NO_PROVIDER_TIMEOUT
        {
            return Err(MediaError::Download {
                id,
                reason: format!(
                    "no provider answered for {} s ({} of {count} chunks missing)",
                    NO_PROVIDER_TIMEOUT.as_secs(),
                    picker.remaining
                ),
            });
        }

        tokio::select! {
            Some(out) = futures.next(), if !futures.is_empty() => {
                let Some(f) = in_flight.remove(&out.req) else { continue };
                let elapsed = f.sent.elapsed();
                if let Some(p) = providers.get_mut(&f.peer) {
                    p.in_flight = p.in_flight.saturating_sub(1);
                    p.queued = p.queued.saturating_sub(u64::from(f.count) * chunk_size);
                }
                let t = policy.secs(Instant::now());
                match &out.result {
                    Ok(MediaResponse::Chunks { chunks, .. }) => {
                        let bytes = chunks.iter().map(|c| c.len() as u64).sum();
                        policy.inner.on_done(f.peer, bytes, policy.secs(f.sent), t);
                    }
                    Ok(_) => {}
                    Err(_) => policy.inner.on_failed(f.peer, t),
                }
                // A run of chunks is verified and written on a blocking
                // thread while this loop keeps requests flowing; anything
                // else is handled here and now.
                if let Some(run) = on_reply(svc, id, &mut picker, &mut providers, &f, out.result) {
                    writes.push(store_run(svc.clone(), id, f, run, elapsed));
                }
            }
            Some(stored) = writes.next(), if !writes.is_empty() => {
                let (f, elapsed) = (stored.request, stored.elapsed);
                let got = on_stored(svc, dl, &mut picker, &mut providers, &f, stored.sent, stored.result).await;
                if got > 0 {
                    durations.push(elapsed);
                    if durations.len() > 64 {
                        durations.remove(0);
                    }
                    if let Some(p) = providers.get_mut(&f.peer) {
                        p.bytes += got;
                        // Only a request sent since it was held says how it
                        // does now: one from before (at a Busy, the others
                        // of the window) does not.
                        if p.slow.is_some_and(|t| f.sent >= t) && elapsed < slow_after {
                            p.slow = None;
                        }
                    }
                    rate_window.1 += got;
                    if !announced {
                        announced = true;
                        // Re-serve what we hold from now on.
                        let s = svc.clone();
                        tokio::spawn(async move { s.announce_have(id, false).await });
                    }
                }
            }
            Some((peer, opened)) = openings.next(), if !openings.is_empty() => {
                if let Some(p) = providers.get_mut(&peer) {
                    p.direct = match opened {
                        Ok(channel) => {
                            debug!(target: "media", %id, %peer, "data channel open");
                            p.direct_opened = p.direct_opened.wrapping_add(1);
                            Direct::Open(channel)
                        }
                        Err(reason) => {
                            debug!(target: "media", %id, %peer, reason, "no data channel: libp2p only");
                            Direct::Off
                        }
                    };
                }
            }
            _ = tick.tick() => {}
            _ = dl.progress.notified() => {}
        }

        // Progress for the status.
        let elapsed = rate_window.0.elapsed();
        let rate = if elapsed >= Duration::from_secs(1) {
            let r = (rate_window.1 as f64 / elapsed.as_secs_f64()) as u64;
            rate_window = (Instant::now(), 0);
            Some(r)
        } else {
            None
        };
        let peers: Vec<PeerProgress> = providers
            .iter()
            .filter(|(_, p)| p.bytes > 0 || p.in_flight > 0 || p.bad)
            .map(|(k, p)| PeerProgress {
                peer: k.to_string(),
                bytes: p.bytes,
                in_flight: p.in_flight,
                rate: policy.rate(*k, now) as u64,
                state: if p.bad {
                    "penalised"
                } else if p.slow.is_some() {
                    "slow"
                } else {
                    "active"
                },
            })
            .collect();
        let remaining = picker.remaining;
        // No wake-up: nothing new is stored, only the figures refreshed.
        dl.status.send_modify(|s| {
            s.chunks_present = count - remaining;
            s.bytes_present = size
                .saturating_sub(remaining.saturating_mul(chunk_size))
                .min(size);
            if let Some(r) = rate {
                s.rate = r;
            }
            s.peers = peers;
        });
    }
    dl.update(|s| {
        s.chunks_present = count;
        s.bytes_present = size;
    });
    svc.announce_have(id, false).await;
    info!(target: "media", %id, "download complete");
    Ok(())
}

fn median(d: &[Duration]) -> Option<Duration> {
    if d.is_empty() {
        return None;
    }
    let mut v = d.to_vec();
    v.sort();
    v.get(v.len() / 2).copied()
}

/// One chunk request: over the provider's data channel when `via` is
/// one, else over libp2p.
async fn send(
    svc: MediaHandle,
    req: u64,
    peer: PeerId,
    via: Option<DirectChannel>,
    (id, start, count): (Hash256, u64, u32),
) -> Outcome {
    let result = match via {
        Some(channel) => channel.fetch(id, start, count).await,
        None => {
            svc.request(peer, &MediaRequest::Chunks { id, start, count })
                .await
        }
    };
    Outcome { req, result }
}

/// A reply's chunks on their way to the store.
struct Stored {
    request: InFlight,
    elapsed: Duration,
    /// Chunks the reply carried.
    sent: u64,
    result: Result<PutChunks, MediaError>,
}

/// Verifies and writes a run of chunks on the media I/O pool (below the
/// node's other work in CPU priority).
async fn store_run(
    svc: MediaHandle,
    id: Hash256,
    request: InFlight,
    chunks: Vec<Vec<u8>>,
    elapsed: Duration,
) -> Stored {
    let store = svc.store().clone();
    let start = request.start;
    let sent = chunks.len() as u64;
    let result = low_priority(move || {
        let runs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        Ok(store.put_chunks(&id, start, &runs)?)
    })
    .await;
    Stored {
        request,
        elapsed,
        sent,
        result,
    }
}

/// Handles a reply: a run of chunks that fits the request is returned for
/// storing; anything else (not found, busy, an error, a wrong answer) is
/// dealt with here and the range goes back to the picker.
fn on_reply(
    svc: &MediaHandle,
    id: Hash256,
    picker: &mut Picker,
    providers: &mut HashMap<PeerId, Provider>,
    f: &InFlight,
    result: Result<MediaResponse, String>,
) -> Option<Vec<Vec<u8>>> {
    let now = Instant::now();
    let Some(p) = providers.get_mut(&f.peer) else {
        picker.requeue(f.start, f.count);
        return None;
    };
    let counters = &svc.shared.counters;
    match result {
        Ok(MediaResponse::Chunks { start, chunks })
            if start == f.start && !chunks.is_empty() && chunks.len() <= f.count as usize =>
        {
            return Some(chunks);
        }
        Ok(MediaResponse::NotFound) => {
            counters.replies_not_found.fetch_add(1, Ordering::Relaxed);
            for i in f.start..f.start.saturating_add(u64::from(f.count)) {
                p.lacks.insert(i);
            }
        }
        Ok(MediaResponse::Busy) => {
            counters
                .busy_replies_received
                .fetch_add(1, Ordering::Relaxed);
            p.cooldown_until = Some(now + Duration::from_secs(1));
            // Its upload limit holds fewer requests than the window keeps
            // in flight: one at a time until a reply comes quickly again.
            // Otherwise the requests sent as the cool-down ends meet the
            // limit still held by the one sent before them, and a range
            // at a player's seek, always among them, starves while the
            // sequential ones go through.
            p.slow = Some(now);
        }
        Ok(_) if f.direct.is_some() => p.direct = Direct::Off,
        Ok(_) => {
            p.bad = true;
            svc.penalise(f.peer, "answered a chunk request with other data");
        }
        Err(e) if f.direct.is_some() => {
            // The channel is gone (the provider closes one idle for two
            // minutes, as a paused player leaves it): open a new one, a
            // few times per download; until then, and after, libp2p. The
            // other requests that were on it fail too: counted once.
            debug!(target: "media", %id, peer = %f.peer, error = %e, "data channel failed");
            if f.direct == Some(p.direct_opened) && matches!(p.direct, Direct::Open(_)) {
                p.direct_failures = p.direct_failures.saturating_add(1);
                p.direct = if p.direct_failures < MAX_DIRECT_FAILURES {
                    Direct::Untried
                } else {
                    Direct::Off
                };
            }
        }
        Err(e) => {
            debug!(target: "media", %id, peer = %f.peer, error = %e, "chunk request failed");
            counters.requests_failed.fetch_add(1, Ordering::Relaxed);
            p.strikes += 1;
            p.cooldown_until =
                Some(now + Duration::from_secs(2u64.saturating_mul(u64::from(p.strikes))));
        }
    }
    picker.requeue(f.start, f.count);
    None
}

/// Accounts for a stored run: marks what arrived, penalises a provider
/// whose chunk did not verify, notes what it did not send; returns the
/// verified bytes newly stored.
async fn on_stored(
    svc: &MediaHandle,
    dl: &Arc<Download>,
    picker: &mut Picker,
    providers: &mut HashMap<PeerId, Provider>,
    f: &InFlight,
    sent: u64,
    result: Result<PutChunks, MediaError>,
) -> u64 {
    let id = dl.id;
    let counters = &svc.shared.counters;
    let mut bytes = 0;
    match result {
        Ok(put) => {
            // Only this call wrote them, so they count as fetched once.
            bytes = put.new_bytes;
            let fetched = put.new.len() as u64;
            if fetched > 0 {
                dl.update(|s| s.chunks_fetched += fetched);
            }
            let verified = put
                .rejected
                .as_ref()
                .map_or(sent, |(i, _)| i.saturating_sub(f.start));
            counters.chunks_ok.fetch_add(verified, Ordering::Relaxed);
            // Verified chunks the store already held (a raced copy won)
            // are had all the same.
            for i in f.start..f.start.saturating_add(verified) {
                picker.mark_have(i);
            }
            match put.rejected {
                Some((index, e)) if e.is_bad_data() && f.direct.is_some() => {
                    counters.bad_chunks.fetch_add(1, Ordering::Relaxed);
                    dl.update(|s| s.bad_chunks += 1);
                    debug!(target: "media", %id, index, peer = %f.peer, "a chunk on the data channel did not verify: libp2p only");
                    if let Some(p) = providers.get_mut(&f.peer) {
                        p.direct = Direct::Off;
                    }
                }
                Some((index, e)) if e.is_bad_data() => {
                    if let Some(p) = providers.get_mut(&f.peer) {
                        p.bad = true;
                    }
                    counters.bad_chunks.fetch_add(1, Ordering::Relaxed);
                    dl.update(|s| s.bad_chunks += 1);
                    svc.forget_provider(&id, &f.peer).await;
                    svc.penalise(
                        f.peer,
                        &format!("chunk {index} of {id} does not match its hash"),
                    );
                }
                Some((index, e)) => {
                    debug!(target: "media", %id, index, error = %e, "chunk not stored");
                }
                None => {}
            }
        }
        Err(MediaError::Store(StoreError::UnknownContent(_))) => {
            dl.evicted.store(true, Ordering::Relaxed)
        }
        Err(e) => debug!(target: "media", %id, error = %e, "chunks not stored"),
    }
    counters
        .downloaded_bytes
        .fetch_add(bytes, Ordering::Relaxed);
    if f.direct.is_some() {
        counters
            .direct_downloaded_bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }
    if let Some(p) = providers.get_mut(&f.peer) {
        // What it did not send, it lacks (for now).
        let end = f.start.saturating_add(u64::from(f.count));
        for i in f.start.saturating_add(sent)..end {
            p.lacks.insert(i);
        }
        p.strikes = 0;
    }
    picker.requeue(f.start, f.count);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_picker_takes_runs_from_the_playhead_and_requeues_what_is_missing() {
        let missing: Vec<u64> = (0..40).collect();
        let mut p = Picker::new(40, &missing);
        let none = BTreeSet::new();
        assert_eq!(p.take(0, &none), Some((0, 16)));
        // A seek: from chunk 30 on, up to the end.
        assert_eq!(p.take(30, &none), Some((30, 10)));
        // Then wraps to what is left after the first run.
        assert_eq!(p.take(30, &none), Some((16, 14)));
        assert_eq!(p.take(0, &none), None);
        // Chunks 0 and 1 arrived; the rest of the run goes back.
        assert!(p.mark_have(0));
        assert!(p.mark_have(1));
        assert!(!p.mark_have(1));
        p.requeue(0, 16);
        assert_eq!(p.missing_in(0, 16), Some((2, 14)));
        // A provider lacking chunk 5 gets 2..5 only.
        let lacks: BTreeSet<u64> = [5].into_iter().collect();
        assert_eq!(p.take(0, &lacks), Some((2, 3)));
        assert_eq!(p.remaining, 38);
    }

    #[test]
    fn a_provider_whose_data_channel_opens_gets_nothing_then_one_range_over_libp2p() {
        let epoch = Instant::now();
        let policy = Policy {
            inner: crate::selection::PolicyKind::Classic.build::<PeerId>(),
            epoch,
            range_bytes: 1 << 20,
        };
        let peer = PeerId::random();
        let mut p = Provider::new();
        let full = policy.window(peer, &p, epoch);
        assert!(full > 1, "the policy's window: {full}");
        p.direct = Direct::Opening(epoch);
        assert_eq!(policy.window(peer, &p, epoch), 0);
        let later = epoch + DIRECT_GRACE / 2;
        assert_eq!(policy.window(peer, &p, later), 0);
        assert_eq!(policy.window(peer, &p, epoch + DIRECT_GRACE), 1);
        // A channel that could not open leaves libp2p the whole window.
        p.direct = Direct::Off;
        assert_eq!(policy.window(peer, &p, epoch + DIRECT_GRACE), full);
    }

    #[test]
    fn a_sparse_download_picks_only_between_the_playhead_and_its_horizon() {
        let missing: Vec<u64> = (0..100).collect();
        let mut p = Picker::new(100, &missing);
        let none = BTreeSet::new();
        // Nothing asked for yet: nothing to fetch.
        assert_eq!(p.first(0, 0, &none), None);
        // A segment at chunks 40..45: that run only, no wrap to the start.
        let first = p.first(40, 45, &none);
        assert_eq!(first, Some(40));
        assert_eq!(p.take_from(40, 45, &none), (40, 5));
        assert_eq!(p.first(40, 45, &none), None);
        assert_eq!(p.first_after(42, 45, &none), None);
        // A whole download from the same playhead wraps.
        assert_eq!(p.first(40, WHOLE, &none), Some(45));
        assert_eq!(p.first(99, WHOLE, &none), Some(99));
        let d = Download::new_sparse(Hash256([0; 32]));
        assert!(d.is_sparse());
        d.fetch_range(7, 9);
        assert_eq!(d.horizon.load(Ordering::Relaxed), 9);
        d.make_whole();
        assert!(!d.is_sparse());
        d.fetch_range(3, 4);
        assert_eq!(d.horizon.load(Ordering::Relaxed), WHOLE);
    }
}
