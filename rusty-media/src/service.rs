//! The media service: the node's side of the media layer on the P2P
//! network.
//!
//! - answers peers' `media` requests (manifests, chunk ranges, live
//!   segments) from the content store and the live windows, under the
//!   upload limit (`--media-upload-limit`), at low priority;
//! - validates announcements on the `media` gossip topic (malformed ones
//!   are rejected and their sender penalised) and learns who provides what;
//! - publishes files (manifest, chunks, announcement, provider record);
//! - runs downloads ([`crate::downloader`]) and live streams
//!   ([`crate::broadcast`]).
//!
//! The node's P2P task hands it gossip and requests through
//! [`MediaHandle::on_gossip`] and [`MediaHandle::on_request`]; neither
//! blocks: serving runs in tasks bounded by a semaphore, and a request that
//! finds every slot taken is dropped (the requester asks someone else).

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use rusty_crypto::ed25519::SecretKey;
use rusty_network::{
    Acceptance, MessageId, NetworkHandle, PeerAction, PeerId, Request, RequestError, Responder,
    Response, Topic,
};
use rusty_shared_types::{Encode, Hash256};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::{
    broadcast::LiveStream,
    downloader::{self, Download, DownloadStatus},
    manifest::{Manifest, ManifestError, ManifestFields, SignedManifest},
    store::{ContentInfo, ContentStore, StoreError},
    wire::{Announcement, MediaRequest, MediaResponse, SegmentAnnouncement, WireError},
};

/// Default `--media-cache-size`: 4 GiB of cached (unpinned) content.
pub const DEFAULT_CACHE_BYTES: u64 = 4 << 30;
/// Requests served at once (until their reply is written out); more are
/// dropped (the requester goes elsewhere).
const SERVE_SLOTS: usize = 32;
/// Bytes of replies held until written out, at most, in KiB: a peer that
/// asks and never reads cannot make the node hold more ([`MediaResponse::Busy`]
/// beyond it).
const REPLY_BUDGET_KIB: usize = 64 * 1024;
/// A reply that would wait longer than this for upload tokens is `Busy`.
const MAX_UPLOAD_WAIT: Duration = Duration::from_secs(2);
/// Providers remembered per content id, and content ids remembered.
const MAX_PROVIDERS_PER_ITEM: usize = 64;
const MAX_PROVIDER_ITEMS: usize = 8_192;
/// Manifests fetched at once because of announcements.
const MAX_MANIFEST_FETCHES: usize = 8;
/// Announced manifests kept in the catalog per run, at most, and the
/// largest one kept (about 512 MiB of content): announcements cannot fill
/// the disk with manifests of content nobody here asked for.
const MAX_ANNOUNCED_MANIFESTS: usize = 4_096;
const MAX_ANNOUNCED_MANIFEST_BYTES: usize = 256 * 1024;
/// How long one request to a peer may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The creator key's file name in the network datadir.
pub const CREATOR_KEY_FILE: &str = "media.key";
/// Content keys of priced content, under the network datadir.
pub const KEYS_DIR: &str = "media-keys";

/// Where and how the media service runs.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The network's datadir: content under `content/`, the catalog in
    /// `media-db/`, the creator key in `media.key`.
    pub dir: PathBuf,
    /// Cap on cached (unpinned) content, bytes (`--media-cache-size`).
    pub cache_bytes: u64,
    /// Upload limit for media replies, bytes per second; 0 = none
    /// (`--media-upload-limit`).
    pub upload_limit: u64,
}

impl MediaConfig {
    pub fn new(dir: impl Into<PathBuf>) -> MediaConfig {
        MediaConfig {
            dir: dir.into(),
            cache_bytes: DEFAULT_CACHE_BYTES,
            upload_limit: 0,
        }
    }
}

/// Media service errors, as the RPC and the CLI show them.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("creator key {}: {reason}", path.display())]
    CreatorKey { path: PathBuf, reason: String },
    #[error("no peer provides content {0} (no manifest found on the network)")]
    NotFound(Hash256),
    #[error("content {0} is a live stream: watch it instead")]
    IsLive(Hash256),
    #[error("content {0} is not a live stream")]
    NotLive(Hash256),
    #[error("this node is not broadcasting stream {0}")]
    NotBroadcasting(Hash256),
    #[error("live stream {0} has ended")]
    Ended(Hash256),
    #[error("download of {id} failed: {reason}")]
    Download { id: Hash256, reason: String },
    #[error("timed out waiting for bytes {start}..{end} of {id}")]
    ReadTimeout { id: Hash256, start: u64, end: u64 },
    #[error("the media service stopped")]
    Stopped,
    #[error("content {0} is priced: buy it first (rusty-cli stream buy {0}); the key arrives once the purchase is final")]
    NotPurchased(Hash256),
    #[error("content {0} is free: there is nothing to buy")]
    NotPriced(Hash256),
    #[error("content {id}: {reason}")]
    Crypt { id: Hash256, reason: String },
}

/// Bytes-per-second token bucket for media replies. Tokens may go into
/// debt: a reply waits until the debt is paid, or is refused as `Busy` when
/// that would take longer than [`MAX_UPLOAD_WAIT`].
#[derive(Debug)]
pub(crate) struct UploadLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl UploadLimiter {
    pub(crate) fn new(bytes_per_sec: u64, now: Instant) -> Self {
        let rate = bytes_per_sec as f64;
        // One second's worth, but at least one full chunk reply.
        let burst = rate.max(MAX_REPLY_BYTES as f64);
        UploadLimiter {
            rate,
            burst,
            tokens: burst,
            updated: now,
        }
    }

    /// How long to wait before sending `bytes`, or `None` to refuse.
    pub(crate) fn reserve(&mut self, bytes: u64, now: Instant) -> Option<Duration> {
        if self.rate <= 0.0 {
            return Some(Duration::ZERO);
        }
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        let after = self.tokens - bytes as f64;
        // A reply larger than the burst (a big manifest) goes when the
        // bucket is full, into debt that later replies wait out; otherwise
        // a reply that would wait too long is refused.
        let full = self.tokens >= self.burst;
        if after < -(self.rate * MAX_UPLOAD_WAIT.as_secs_f64()) && !full {
            return None;
        }
        self.tokens = after;
        if after >= 0.0 {
            Some(Duration::ZERO)
        } else {
            Some(Duration::from_secs_f64(-after / self.rate))
        }
    }
}

/// The largest chunk reply.
const MAX_REPLY_BYTES: usize =
    crate::wire::MAX_CHUNKS_PER_REQUEST as usize * crate::manifest::CHUNK_SIZE as usize;

/// Who is known to provide which content (from announcements and provider
/// records), most recent first when asked.
#[derive(Debug, Default)]
pub(crate) struct ProviderBook {
    items: HashMap<Hash256, HashMap<PeerId, Instant>>,
}

impl ProviderBook {
    pub(crate) fn add(&mut self, id: Hash256, peer: PeerId, now: Instant) {
        if !self.items.contains_key(&id) && self.items.len() >= MAX_PROVIDER_ITEMS {
            // Forget the content heard of least recently.
            let stalest = self
                .items
                .iter()
                .map(|(k, v)| (*k, v.values().max().copied()))
                .min_by_key(|(_, t)| *t)
                .map(|(k, _)| k);
            if let Some(k) = stalest {
                self.items.remove(&k);
            }
        }
        let peers = self.items.entry(id).or_default();
        if !peers.contains_key(&peer) && peers.len() >= MAX_PROVIDERS_PER_ITEM {
            if let Some(oldest) = peers.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p) {
                peers.remove(&oldest);
            }
        }
        peers.insert(peer, now);
    }

    pub(crate) fn remove(&mut self, id: &Hash256, peer: &PeerId) {
        if let Some(peers) = self.items.get_mut(id) {
            peers.remove(peer);
        }
    }

    /// Providers of `id`, most recently heard first.
    pub(crate) fn get(&self, id: &Hash256) -> Vec<PeerId> {
        let mut v: Vec<(PeerId, Instant)> = self
            .items
            .get(id)
            .map(|m| m.iter().map(|(p, t)| (*p, *t)).collect())
            .unwrap_or_default();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        v.into_iter().map(|(p, _)| p).collect()
    }
}

/// Counters over the life of the service.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes of chunks and segments sent to peers.
    pub uploaded_bytes: AtomicU64,
    /// Media requests answered with data.
    pub served_requests: AtomicU64,
    /// Requests answered `Busy` because of the upload limit.
    pub busy_replies: AtomicU64,
    /// Requests dropped because every serving slot was taken.
    pub shed_requests: AtomicU64,
    /// Verified chunk and segment bytes received.
    pub downloaded_bytes: AtomicU64,
    /// Chunks or segments that failed verification (their senders were
    /// penalised).
    pub bad_chunks: AtomicU64,
    /// Announcements rejected as malformed or forged.
    pub bad_announcements: AtomicU64,
}

/// A snapshot of [`Counters`] and the store, for `stream_status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceStats {
    pub uploaded_bytes: u64,
    pub served_requests: u64,
    pub busy_replies: u64,
    pub shed_requests: u64,
    pub downloaded_bytes: u64,
    pub bad_chunks: u64,
    pub bad_announcements: u64,
    pub upload_limit: u64,
    pub store_bytes: u64,
    pub pinned_bytes: u64,
    pub cached_bytes: u64,
    pub cache_cap_bytes: u64,
    pub items: u64,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<ContentStore>,
    pub(crate) net: NetworkHandle,
    pub(crate) key: SecretKey,
    pub(crate) providers: Mutex<ProviderBook>,
    pub(crate) downloads: Mutex<HashMap<Hash256, Arc<Download>>>,
    pub(crate) live: Mutex<HashMap<Hash256, Arc<LiveStream>>>,
    upload: Mutex<UploadLimiter>,
    upload_limit: u64,
    serve_slots: Arc<Semaphore>,
    reply_budget: Arc<Semaphore>,
    manifest_fetches: Mutex<HashSet<Hash256>>,
    /// Manifests added to the catalog because of announcements, this run.
    announced_manifests: AtomicU64,
    /// Content this node announced and registered as provider of.
    providing: Mutex<HashSet<Hash256>>,
    pub(crate) counters: Counters,
    /// Set by [`MediaHandle::stop`]: background work winds down.
    pub(crate) stopped: std::sync::atomic::AtomicBool,
    /// Content keys of priced content (created here or bought), one
    /// owner-only file per content; `None`: kept in memory only.
    keys_dir: Option<PathBuf>,
    keys: Mutex<HashMap<Hash256, [u8; 32]>>,
}

/// The media service. Cheap to clone.
#[derive(Clone)]
pub struct MediaHandle {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for MediaHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaHandle")
            .field("peer", &self.inner.net.peer_id())
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MediaError> + Send + 'static,
) -> Result<T, MediaError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| MediaError::Stopped)?
}

/// Checks that `manifest` is a live stream's and that `verify` accepts its
/// creator key (a segment announcement or an end of stream).
fn live_signed(
    manifest: &SignedManifest,
    verify: impl FnOnce(&rusty_crypto::ed25519::PublicKey) -> Result<(), WireError>,
) -> Result<(), WireError> {
    if !manifest.manifest.live {
        return Err(WireError::NotLive);
    }
    verify(&manifest.manifest.creator())
}

/// Loads the creator key from `path`, or makes one (owner-only file).
pub fn load_or_create_creator_key(path: &Path) -> Result<SecretKey, MediaError> {
    let bad = |reason: String| MediaError::CreatorKey {
        path: path.to_owned(),
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                bad(format!(
                    "expected 32 bytes, found {} (remove it to make a new key)",
                    bytes.len()
                ))
            })?;
            Ok(SecretKey::from_bytes(seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            rusty_crypto::keystore::write_private(path, &key.to_bytes()).map_err(|source| {
                MediaError::Io {
                    path: path.to_owned(),
                    source,
                }
            })?;
            Ok(key)
        }
        Err(source) => Err(MediaError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

impl MediaHandle {
    /// Opens the content store and the creator key under `config.dir`.
    pub fn open(config: &MediaConfig, net: NetworkHandle) -> Result<MediaHandle, MediaError> {
        let store = ContentStore::open(&config.dir, config.cache_bytes)?;
        let key = load_or_create_creator_key(&config.dir.join(CREATOR_KEY_FILE))?;
        let mut handle = Self::with_store(Arc::new(store), key, net, config.upload_limit);
        if let Some(inner) = Arc::get_mut(&mut handle.inner) {
            inner.keys_dir = Some(config.dir.join(KEYS_DIR));
        }
        Ok(handle)
    }

    /// A service over an open store.
    pub fn with_store(
        store: Arc<ContentStore>,
        key: SecretKey,
        net: NetworkHandle,
        upload_limit: u64,
    ) -> MediaHandle {
        MediaHandle {
            inner: Arc::new(Inner {
                store,
                net,
                key,
                providers: Mutex::new(ProviderBook::default()),
                downloads: Mutex::new(HashMap::new()),
                live: Mutex::new(HashMap::new()),
                upload: Mutex::new(UploadLimiter::new(upload_limit, Instant::now())),
                upload_limit,
                serve_slots: Arc::new(Semaphore::new(SERVE_SLOTS)),
                reply_budget: Arc::new(Semaphore::new(REPLY_BUDGET_KIB)),
                manifest_fetches: Mutex::new(HashSet::new()),
                announced_manifests: AtomicU64::new(0),
                providing: Mutex::new(HashSet::new()),
                counters: Counters::default(),
                stopped: std::sync::atomic::AtomicBool::new(false),
                keys_dir: None,
                keys: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn store(&self) -> &Arc<ContentStore> {
        &self.inner.store
    }

    pub fn peer_id(&self) -> PeerId {
        self.inner.net.peer_id()
    }

    /// The creator's public key this node signs manifests with.
    pub fn creator(&self) -> [u8; 32] {
        self.inner.key.public_key().0
    }

    /// The creator key itself: it signs manifests and, on chain, the
    /// spending of payments for this node's priced content.
    pub fn creator_secret(&self) -> SecretKey {
        self.inner.key.clone()
    }

    /// This node's buyer key for content `id` (derived, never stored).
    pub fn buyer_key(&self, id: &Hash256) -> crate::crypt::BuyerKey {
        crate::crypt::BuyerKey::derive(&self.inner.key.to_bytes(), id)
    }

    /// The content key of priced content `id`, when this node created or
    /// bought it.
    pub fn content_key(&self, id: &Hash256) -> Option<crate::crypt::ContentKey> {
        if let Some(k) = lock(&self.inner.keys).get(id) {
            return Some(crate::crypt::ContentKey(*k));
        }
        let path = self.inner.keys_dir.as_ref()?.join(id.to_string());
        let bytes = std::fs::read(path).ok()?;
        let k: [u8; 32] = bytes.as_slice().try_into().ok()?;
        lock(&self.inner.keys).insert(*id, k);
        Some(crate::crypt::ContentKey(k))
    }

    /// Keeps the content key of `id` (owner-only file).
    pub fn set_content_key(
        &self,
        id: &Hash256,
        key: &crate::crypt::ContentKey,
    ) -> Result<(), MediaError> {
        if let Some(dir) = &self.inner.keys_dir {
            let path = dir.join(id.to_string());
            rusty_crypto::keystore::write_private(&path, &key.0)
                .map_err(|source| MediaError::Io { path, source })?;
        }
        lock(&self.inner.keys).insert(*id, key.0);
        Ok(())
    }

    /// The manifest of `id`, fetched from the network if needed.
    pub async fn manifest(&self, id: Hash256) -> Result<Arc<SignedManifest>, MediaError> {
        let never = std::sync::atomic::AtomicBool::new(false);
        downloader::obtain_manifest(self, id, &never).await
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    pub fn stats(&self) -> ServiceStats {
        let c = &self.inner.counters;
        let s = self.inner.store.stats();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ServiceStats {
            uploaded_bytes: get(&c.uploaded_bytes),
            served_requests: get(&c.served_requests),
            busy_replies: get(&c.busy_replies),
            shed_requests: get(&c.shed_requests),
            downloaded_bytes: get(&c.downloaded_bytes),
            bad_chunks: get(&c.bad_chunks),
            bad_announcements: get(&c.bad_announcements),
            upload_limit: self.inner.upload_limit,
            store_bytes: s.total_bytes,
            pinned_bytes: s.pinned_bytes,
            cached_bytes: s.cached_bytes,
            cache_cap_bytes: s.cap_bytes,
            items: s.items,
        }
    }

    // ---- gossip ---------------------------------------------------------

    /// A message on the `media` topic. Judges it at once (gossipsub
    /// forwards only accepted messages) and acts on it in the background.
    pub fn on_gossip(&self, source: PeerId, author: Option<PeerId>, id: MessageId, data: &[u8]) {
        let verdict = match Announcement::decode(data) {
            Err(e) => {
                self.bad_announcement(source, &e);
                Acceptance::Reject
            }
            Ok(a) => self.on_announcement(source, author, a),
        };
        self.inner.net.validate(id, source, verdict);
    }

    fn bad_announcement(&self, source: PeerId, e: &WireError) {
        self.inner
            .counters
            .bad_announcements
            .fetch_add(1, Ordering::Relaxed);
        debug!(target: "media", %source, error = %e, "bad media announcement");
        self.inner.net.report(
            source,
            PeerAction::LowTolerance,
            format!("bad media announcement: {e}"),
        );
    }

    fn on_announcement(
        &self,
        source: PeerId,
        author: Option<PeerId>,
        a: Announcement,
    ) -> Acceptance {
        let me = self.peer_id();
        match a {
            Announcement::Published { id } | Announcement::Have { id } => {
                let Some(author) = author.filter(|p| *p != me) else {
                    return Acceptance::Ignore;
                };
                self.add_provider(id, author);
                if let Some(l) = self.live_stream(&id) {
                    l.add_watcher(author);
                }
                if matches!(a, Announcement::Published { .. }) {
                    self.fetch_manifest_in_background(id, author);
                }
                Acceptance::Accept
            }
            Announcement::Segment(ann) => self.on_segment_announcement(source, author, ann),
            Announcement::End(end) => self.on_stream_end(source, end),
        }
    }

    fn on_segment_announcement(
        &self,
        source: PeerId,
        author: Option<PeerId>,
        ann: SegmentAnnouncement,
    ) -> Acceptance {
        let manifest = match self.inner.store.manifest(&ann.stream) {
            Ok(Some(m)) => m,
            _ => {
                // Not known here: cannot judge, so do not forward; learn the
                // stream from whoever announced it.
                if let Some(a) = author {
                    self.fetch_manifest_in_background(ann.stream, a);
                }
                return Acceptance::Ignore;
            }
        };
        if let Err(e) = live_signed(&manifest, |creator| ann.verify(creator)) {
            self.bad_announcement(source, &e);
            return Acceptance::Reject;
        }
        if let Some(a) = author.filter(|a| *a != self.peer_id()) {
            self.add_provider(ann.stream, a);
        }
        if let Some(l) = self.live_stream(&ann.stream) {
            l.on_announcement(self, ann, author);
        }
        Acceptance::Accept
    }

    /// The creator's end of a live stream: verified, then viewers finish.
    fn on_stream_end(&self, source: PeerId, end: crate::wire::StreamEnd) -> Acceptance {
        let manifest = match self.inner.store.manifest(&end.stream) {
            Ok(Some(m)) => m,
            _ => return Acceptance::Ignore,
        };
        if let Err(e) = live_signed(&manifest, |creator| end.verify(creator)) {
            self.bad_announcement(source, &e);
            return Acceptance::Reject;
        }
        if let Some(l) = self.live_stream(&end.stream) {
            l.on_end(end.last_seq);
        }
        Acceptance::Accept
    }

    pub(crate) fn add_provider(&self, id: Hash256, peer: PeerId) {
        lock(&self.inner.providers).add(id, peer, Instant::now());
    }

    pub(crate) fn known_providers(&self, id: &Hash256) -> Vec<PeerId> {
        lock(&self.inner.providers).get(id)
    }

    pub(crate) fn forget_provider(&self, id: &Hash256, peer: &PeerId) {
        lock(&self.inner.providers).remove(id, peer);
    }

    /// Fetches an announced manifest into the catalog (so `stream list`
    /// and `stream search` know it), at most a few at a time.
    fn fetch_manifest_in_background(&self, id: Hash256, from: PeerId) {
        if matches!(self.inner.store.manifest(&id), Ok(Some(_))) {
            return;
        }
        if self.inner.announced_manifests.load(Ordering::Relaxed) >= MAX_ANNOUNCED_MANIFESTS as u64
        {
            return;
        }
        {
            let mut f = lock(&self.inner.manifest_fetches);
            if f.len() >= MAX_MANIFEST_FETCHES || !f.insert(id) {
                return;
            }
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this
                .fetch_manifest_limited(id, from, MAX_ANNOUNCED_MANIFEST_BYTES)
                .await
            {
                debug!(target: "media", %id, peer = %from, error = %e, "announced manifest not fetched");
            }
            lock(&this.inner.manifest_fetches).remove(&id);
        });
    }

    /// Asks one peer for the manifest of `id`; verifies it and adds it to
    /// the catalog (unpinned).
    pub(crate) async fn fetch_manifest_from(
        &self,
        id: Hash256,
        peer: PeerId,
    ) -> Result<Arc<SignedManifest>, String> {
        self.fetch_manifest_limited(id, peer, usize::MAX).await
    }

    /// [`MediaHandle::fetch_manifest_from`], keeping it only if its
    /// encoding is at most `max_bytes` (announced content, for the catalog).
    async fn fetch_manifest_limited(
        &self,
        id: Hash256,
        peer: PeerId,
        max_bytes: usize,
    ) -> Result<Arc<SignedManifest>, String> {
        match self.request(peer, &MediaRequest::Manifest { id }).await? {
            MediaResponse::Manifest(bytes) if bytes.len() > max_bytes => Err(format!(
                "manifest of {} bytes: not kept for an announcement",
                bytes.len()
            )),
            MediaResponse::Manifest(bytes) => {
                if max_bytes != usize::MAX {
                    self.inner
                        .announced_manifests
                        .fetch_add(1, Ordering::Relaxed);
                }
                let signed = match SignedManifest::decode_verified(&bytes) {
                    Ok(s) if s.content_id() == id => s,
                    Ok(_) => {
                        self.penalise(peer, "sent a manifest of other content");
                        return Err("the manifest sent is of other content".into());
                    }
                    Err(e) => {
                        self.penalise(peer, &format!("sent a bad manifest: {e}"));
                        return Err(format!("bad manifest: {e}"));
                    }
                };
                let store = self.inner.store.clone();
                blocking(move || Ok(store.add_manifest(signed, false)?))
                    .await
                    .map_err(|e| e.to_string())?;
                self.add_provider(id, peer);
                self.inner
                    .store
                    .manifest(&id)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| "manifest evicted".to_owned())
            }
            MediaResponse::NotFound => Err("not found".into()),
            MediaResponse::Busy => Err("busy".into()),
            _ => {
                self.penalise(peer, "answered a manifest request with something else");
                Err("unexpected reply".into())
            }
        }
    }

    /// Penalises a peer for provably bad media data.
    pub(crate) fn penalise(&self, peer: PeerId, reason: &str) {
        warn!(target: "media", %peer, reason, "penalising peer");
        self.inner
            .net
            .report(peer, PeerAction::Fatal, format!("media: {reason}"));
    }

    /// One media request to `peer`, with a timeout; a reply that does not
    /// decode penalises the peer.
    pub(crate) async fn request(
        &self,
        peer: PeerId,
        req: &MediaRequest,
    ) -> Result<MediaResponse, String> {
        let fut = self.inner.net.request(peer, Request::Media(req.encode()));
        let resp = match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Err(_) => return Err("timed out".into()),
            Ok(Err(RequestError::Unsupported)) => return Err("peer has no media protocol".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(r)) => r,
        };
        match resp {
            Response::Media(bytes) => MediaResponse::decode(&bytes).map_err(|e| {
                self.penalise(peer, &format!("malformed media reply: {e}"));
                format!("malformed reply: {e}")
            }),
            _ => Err("reply on another protocol".into()),
        }
    }

    /// Tells the network this node has `id`: a `Have` announcement and a
    /// provider record (once per content per run).
    pub(crate) async fn announce_have(&self, id: Hash256, published: bool) {
        if !lock(&self.inner.providing).insert(id) {
            return;
        }
        let a = if published {
            Announcement::Published { id }
        } else {
            Announcement::Have { id }
        };
        if let Err(e) = self.inner.net.publish(Topic::Media, a.encode()).await {
            debug!(target: "media", %id, error = %e, "announcement not published");
        }
        if let Err(e) = self.inner.net.start_providing(id.0.to_vec()).await {
            debug!(target: "media", %id, error = %e, "provider record not stored");
        }
    }

    /// After a start: announces and provides (again) everything the store
    /// holds complete, a few per second, so content stays findable across
    /// restarts (provider records live in memory).
    pub fn spawn_reannounce(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            // Let the first connections come up (a stop cuts this short).
            for _ in 0..30 {
                if this.is_stopped() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let store = this.inner.store.clone();
            let Ok(items) = blocking(move || Ok(store.list()?)).await else {
                return;
            };
            for i in items.into_iter().filter(|i| i.complete && !i.live) {
                if this.is_stopped() {
                    return;
                }
                this.announce_have(i.id, false).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    /// Announces again (a `Have`, e.g. for peers that joined later).
    pub(crate) async fn reannounce(&self, id: Hash256) {
        let a = Announcement::Have { id };
        let _ = self.inner.net.publish(Topic::Media, a.encode()).await;
    }

    // ---- serving --------------------------------------------------------

    /// A `media` request from a peer; answered in a task.
    pub fn on_request(&self, peer: PeerId, body: Vec<u8>, responder: Responder) {
        let Ok(permit) = self.inner.serve_slots.clone().try_acquire_owned() else {
            self.inner
                .counters
                .shed_requests
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Some(resp) = this.answer(peer, &body).await else {
                return;
            };
            let bytes = resp.encode();
            // Hold the reply's size against the budget until it is out.
            let kib = u32::try_from(bytes.len().div_ceil(1024)).unwrap_or(u32::MAX);
            let budget = this.inner.reply_budget.clone().try_acquire_many_owned(kib);
            let (bytes, _held) = match budget {
                Ok(held) => (bytes, Some(held)),
                Err(_) => {
                    this.inner
                        .counters
                        .busy_replies
                        .fetch_add(1, Ordering::Relaxed);
                    (MediaResponse::Busy.encode(), None)
                }
            };
            this.inner
                .net
                .respond_and_wait(responder, Response::Media(bytes))
                .await;
        });
    }

    async fn answer(&self, peer: PeerId, body: &[u8]) -> Option<MediaResponse> {
        let req = match MediaRequest::decode(body) {
            Ok(r) => r,
            Err(e) => {
                self.inner.net.report(
                    peer,
                    PeerAction::LowTolerance,
                    format!("malformed media request: {e}"),
                );
                return None;
            }
        };
        let store = self.inner.store.clone();
        let resp = match req {
            MediaRequest::Manifest { id } => {
                match blocking(move || Ok(store.manifest(&id)?)).await {
                    Ok(Some(m)) => MediaResponse::Manifest(m.encode()),
                    _ => MediaResponse::NotFound,
                }
            }
            MediaRequest::Chunks { id, start, count } => {
                let read = blocking(move || Ok(store.read_chunks(&id, start, count.into())?))
                    .await
                    .unwrap_or_default();
                if read.is_empty() {
                    MediaResponse::NotFound
                } else {
                    MediaResponse::Chunks {
                        start,
                        chunks: read,
                    }
                }
            }
            MediaRequest::Segment { id, seq } => match self.live_stream(&id) {
                Some(l) => l.serve_segment(seq, peer),
                None => MediaResponse::NotFound,
            },
        };
        let bytes = match &resp {
            MediaResponse::Chunks { chunks, .. } => chunks.iter().map(Vec::len).sum(),
            MediaResponse::Segment { data, .. } => data.len(),
            MediaResponse::Manifest(m) => m.len(),
            _ => 0,
        };
        if bytes == 0 {
            return Some(resp);
        }
        let wait = lock(&self.inner.upload).reserve(bytes as u64, Instant::now());
        let Some(wait) = wait else {
            self.inner
                .counters
                .busy_replies
                .fetch_add(1, Ordering::Relaxed);
            return Some(MediaResponse::Busy);
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let c = &self.inner.counters;
        c.uploaded_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        c.served_requests.fetch_add(1, Ordering::Relaxed);
        if let MediaResponse::Segment { announcement, .. } = &resp {
            if let Some(l) = self.live_stream(&announcement.stream) {
                l.count_upload(bytes as u64);
            }
        }
        Some(resp)
    }

    // ---- files ----------------------------------------------------------

    /// Publishes the file at `path`: builds and signs its manifest, imports
    /// it (pinned), announces it and registers as its provider. Returns the
    /// content id.
    pub async fn publish_file(
        &self,
        path: PathBuf,
        fields: ManifestFields,
    ) -> Result<Hash256, MediaError> {
        let store = self.inner.store.clone();
        let key = self.inner.key.clone();
        let id = blocking(move || {
            let io = |source| MediaError::Io {
                path: path.clone(),
                source,
            };
            let file = std::fs::File::open(&path).map_err(io)?;
            if fields.price == 0 {
                let signed = Manifest::build_from_reader(&key, file, fields)?;
                let file = std::fs::File::open(&path).map_err(io)?;
                return Ok((store.import(signed, std::io::BufReader::new(file))?, None));
            }
            // Priced: encrypt to a temporary file, publish the ciphertext.
            let ckey = crate::crypt::ContentKey::generate();
            let tmp = store
                .content_path(&Hash256::ZERO)
                .with_extension(format!("encrypting-{}", std::process::id()));
            let tmp_io = |source| MediaError::Io {
                path: tmp.clone(),
                source,
            };
            if let Some(d) = tmp.parent() {
                std::fs::create_dir_all(d).map_err(tmp_io)?;
            }
            let result = (|| -> Result<Hash256, MediaError> {
                let out = std::fs::File::create(&tmp).map_err(tmp_io)?;
                let mut w = std::io::BufWriter::new(out);
                crate::crypt::encrypt_stream(&ckey, std::io::BufReader::new(file), &mut w)
                    .map_err(|e| MediaError::Crypt {
                        id: Hash256::ZERO,
                        reason: e.to_string(),
                    })?;
                std::io::Write::flush(&mut w).map_err(tmp_io)?;
                drop(w);
                let mut fields = fields;
                fields.encrypted = true;
                let f = std::fs::File::open(&tmp).map_err(tmp_io)?;
                let signed = Manifest::build_from_reader(&key, f, fields)?;
                let f = std::fs::File::open(&tmp).map_err(tmp_io)?;
                Ok(store.import(signed, std::io::BufReader::new(f))?)
            })();
            let _ = std::fs::remove_file(&tmp);
            Ok((result?, Some(ckey)))
        })
        .await?;
        let (id, ckey) = id;
        if let Some(k) = ckey {
            self.set_content_key(&id, &k)?;
        }
        info!(target: "media", %id, "published");
        self.announce_have(id, true).await;
        Ok(id)
    }

    /// Publishes bytes already in memory (tests, benchmarks, RPC uploads).
    pub async fn publish_bytes(
        &self,
        data: Vec<u8>,
        fields: ManifestFields,
    ) -> Result<Hash256, MediaError> {
        let store = self.inner.store.clone();
        let key = self.inner.key.clone();
        let id = blocking(move || {
            let signed = Manifest::build_from_reader(&key, data.as_slice(), fields)?;
            Ok(store.import(signed, data.as_slice())?)
        })
        .await?;
        self.announce_have(id, true).await;
        Ok(id)
    }

    /// Starts (or joins) the download of `id` and returns its handle.
    pub fn download(&self, id: Hash256) -> Arc<Download> {
        let mut map = lock(&self.inner.downloads);
        if let Some(d) = map.get(&id) {
            if !d.is_finished_with_error() {
                return d.clone();
            }
        }
        let d = Arc::new(Download::new(id));
        map.insert(id, d.clone());
        // Forget old finished downloads.
        if map.len() > 256 {
            map.retain(|_, d| !d.is_finished());
        }
        drop(map);
        tokio::spawn(downloader::run(self.clone(), d.clone()));
        d
    }

    /// Status of every download this run.
    pub fn downloads(&self) -> Vec<DownloadStatus> {
        lock(&self.inner.downloads)
            .values()
            .map(|d| d.status())
            .collect()
    }

    pub fn download_status(&self, id: &Hash256) -> Option<DownloadStatus> {
        lock(&self.inner.downloads).get(id).map(|d| d.status())
    }

    /// Bytes `start..end` of the content `id` (for priced content: of its
    /// plaintext, once this node has the key; [`MediaError::NotPurchased`]
    /// before), fetching the chunks first (with priority) if they are not
    /// here yet; waits up to `timeout`.
    pub async fn read(
        &self,
        id: Hash256,
        start: u64,
        end: u64,
        timeout: Duration,
    ) -> Result<Vec<u8>, MediaError> {
        let m = match self.inner.store.manifest(&id)? {
            Some(m) => m,
            None => self.manifest(id).await?,
        };
        if !m.manifest.encrypted {
            return self.read_stored(id, start, end, timeout).await;
        }
        let key = self.content_key(&id).ok_or(MediaError::NotPurchased(id))?;
        let crypt_err = |reason: String| MediaError::Crypt { id, reason };
        let size = crate::crypt::plain_size(m.manifest.size)
            .ok_or_else(|| crypt_err("the ciphertext size is impossible".into()))?;
        if start >= end || end > size {
            return Err(StoreError::BadRange { start, end, size }.into());
        }
        let (chunks, offset) = crate::crypt::plain_range_to_chunks(start, end);
        let (first, _) = m.chunk_range(chunks.start)?;
        let (last, last_len) = m.chunk_range(chunks.end.saturating_sub(1))?;
        let cipher = self
            .read_stored(id, first, last.saturating_add(last_len), timeout)
            .await?;
        let mut plain = Vec::with_capacity(cipher.len());
        let mut at = 0usize;
        for index in chunks {
            let (_, len) = m.chunk_range(index)?;
            let len = usize::try_from(len).map_err(|_| crypt_err("chunk too long".into()))?;
            let piece = cipher
                .get(at..at.saturating_add(len))
                .ok_or_else(|| crypt_err("short read".into()))?;
            at = at.saturating_add(len);
            plain.extend(
                crate::crypt::decrypt_chunk(&key, index, piece)
                    .map_err(|e| crypt_err(format!("chunk {index}: {e}")))?,
            );
        }
        let want = usize::try_from(end - start).map_err(|_| crypt_err("range too long".into()))?;
        plain
            .get(offset..offset.saturating_add(want))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| crypt_err("decrypted range is short".into()))
    }

    /// Bytes `start..end` of `id` as stored (ciphertext for priced
    /// content), fetching them first (with priority) if they are not here
    /// yet; waits up to `timeout`.
    pub async fn read_stored(
        &self,
        id: Hash256,
        start: u64,
        end: u64,
        timeout: Duration,
    ) -> Result<Vec<u8>, MediaError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut dl: Option<Arc<Download>> = None;
        loop {
            let store = self.inner.store.clone();
            let present = blocking(move || {
                let Some(m) = store.manifest(&id)? else {
                    return Ok(None);
                };
                if m.manifest.live {
                    return Err(MediaError::IsLive(id));
                }
                Ok(Some(
                    store.first_missing(&id, m.chunks_for_range(start, end))?,
                ))
            })
            .await?;
            match present {
                Some(None) => {
                    let store = self.inner.store.clone();
                    return blocking(move || Ok(store.read_range(&id, start, end)?)).await;
                }
                Some(Some(chunk)) => {
                    let d = dl.get_or_insert_with(|| self.download(id));
                    d.prioritise(chunk);
                }
                None => {
                    dl.get_or_insert_with(|| self.download(id));
                }
            }
            if let Some(d) = &dl {
                if let Some(e) = d.error() {
                    return Err(MediaError::Download { id, reason: e });
                }
                let wait = d.progressed();
                if tokio::time::timeout_at(deadline, wait).await.is_err() {
                    return Err(MediaError::ReadTimeout { id, start, end });
                }
            }
        }
    }

    pub fn list(&self) -> Result<Vec<ContentInfo>, MediaError> {
        Ok(self.inner.store.list()?)
    }

    pub fn search(&self, query: &str) -> Result<Vec<ContentInfo>, MediaError> {
        Ok(self.inner.store.search(query)?)
    }

    pub fn info(&self, id: &Hash256) -> Result<(ContentInfo, Arc<SignedManifest>), MediaError> {
        let m = self
            .inner
            .store
            .manifest(id)?
            .ok_or(StoreError::UnknownContent(*id))?;
        Ok((self.inner.store.info(id)?, m))
    }

    /// Providers of `id` this node knows of (announcements, provider
    /// records).
    pub fn providers(&self, id: &Hash256) -> Vec<PeerId> {
        self.known_providers(id)
    }

    // ---- live -----------------------------------------------------------

    pub(crate) fn live_stream(&self, id: &Hash256) -> Option<Arc<LiveStream>> {
        lock(&self.inner.live).get(id).cloned()
    }

    pub fn live_streams(&self) -> Vec<Arc<LiveStream>> {
        lock(&self.inner.live).values().cloned().collect()
    }

    /// Stops serving and watching every stream and download (shutdown).
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::Relaxed);
        for l in self.live_streams() {
            l.end();
        }
        for d in lock(&self.inner.downloads).values() {
            d.cancel();
        }
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Relaxed)
    }

    /// [`MediaHandle::stop`], then waits (up to `timeout`) until every
    /// background task has let go of the service, so the content store is
    /// closed when this handle is dropped (a restart can open it again).
    pub async fn stop_and_wait(self, timeout: Duration) {
        self.stop();
        let deadline = Instant::now() + timeout;
        while Arc::strong_count(&self.inner) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if Arc::strong_count(&self.inner) > 1 {
            warn!(target: "media", "media tasks still running at shutdown");
        }
    }
}

/// One content of this node as a [`crate::http::PlaybackSource`]: byte
/// ranges are read from the store, fetched first (with priority) when they
/// are not here yet; a live stream plays from its window.
#[derive(Debug, Clone)]
pub struct MediaSource {
    pub media: MediaHandle,
    pub id: Hash256,
}

impl crate::http::PlaybackSource for MediaSource {
    async fn info(&self) -> Result<crate::http::SourceInfo, String> {
        let never = std::sync::atomic::AtomicBool::new(false);
        crate::downloader::obtain_manifest(&self.media, self.id, &never)
            .await
            .map_err(|e| e.to_string())?;
        let (info, m) = self.media.info(&self.id).map_err(|e| e.to_string())?;
        let size = if m.manifest.encrypted {
            if self.media.content_key(&self.id).is_none() {
                return Err(MediaError::NotPurchased(self.id).to_string());
            }
            crate::crypt::plain_size(info.size).unwrap_or(0)
        } else {
            info.size
        };
        Ok(crate::http::SourceInfo {
            mime: info.mime,
            size: (!info.live).then_some(size),
            title: info.title,
        })
    }

    async fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>, String> {
        self.media
            .read(self.id, start, end, Duration::from_secs(60))
            .await
            .map_err(|e| e.to_string())
    }

    async fn live_window(&self) -> Result<Vec<(u64, u32)>, String> {
        Ok(self
            .media
            .live_stream(&self.id)
            .map(|s| s.window())
            .unwrap_or_default())
    }

    async fn live_segment(&self, seq: u64) -> Result<Option<Vec<u8>>, String> {
        Ok(self
            .media
            .live_stream(&self.id)
            .and_then(|s| s.segment(seq))
            .map(|d| d.as_ref().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_limiter_paces_and_refuses_long_waits() {
        let t0 = Instant::now();
        let mut l = UploadLimiter::new(1 << 20, t0);
        // The burst (1 MiB) goes at once.
        assert_eq!(l.reserve(1 << 20, t0), Some(Duration::ZERO));
        // The next MiB waits about a second.
        let w = l.reserve(1 << 20, t0).expect("within the wait cap");
        assert!(w > Duration::from_millis(900) && w <= Duration::from_millis(1000));
        // A third would wait two seconds: still allowed; a fourth is not.
        assert!(l.reserve(1 << 20, t0).is_some());
        assert_eq!(l.reserve(1 << 20, t0), None);
        // Time refills.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(l.reserve(1 << 20, later), Some(Duration::ZERO));
        // No limit: never waits.
        let mut free = UploadLimiter::new(0, t0);
        assert_eq!(free.reserve(u64::MAX, t0), Some(Duration::ZERO));
    }

    #[test]
    fn the_provider_book_is_bounded_and_most_recent_first() {
        let mut b = ProviderBook::default();
        let id = Hash256([1; 32]);
        let t0 = Instant::now();
        let peers: Vec<PeerId> = (0..MAX_PROVIDERS_PER_ITEM + 5)
            .map(|_| PeerId::random())
            .collect();
        for (i, p) in peers.iter().enumerate() {
            b.add(id, *p, t0 + Duration::from_millis(i as u64));
        }
        let got = b.get(&id);
        assert_eq!(got.len(), MAX_PROVIDERS_PER_ITEM);
        assert_eq!(got[0], *peers.last().expect("peers"));
        // The five oldest were forgotten.
        assert!(!got.contains(&peers[0]));
        b.remove(&id, &got[0]);
        assert_eq!(b.get(&id).len(), MAX_PROVIDERS_PER_ITEM - 1);
    }
}
