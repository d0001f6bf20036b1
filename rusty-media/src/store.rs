//! The content store: verified chunks on disk, the catalog in RocksDB.
//!
//! Layout under the store's directory (the node's datadir):
//!
//! - `content/<first 2 hex digits>/<64 hex digits of the content id>`: the
//!   content's bytes, one file per content, each chunk written at its own
//!   offset (so a partial download is a sparse file that fills in).
//! - `media-db/`: a RocksDB database with the catalog (signed manifests), a
//!   small summary per content (for listing and search), the per-content
//!   state (pinned, chunks and bytes present, last access) and the bitmap of
//!   verified chunks, in segments of [`SEGMENT_CHUNKS`] chunks.
//!
//! Every chunk is verified against the manifest before it is written, and
//! again each time it is read, so bytes corrupted on disk are never served:
//! a chunk that fails the check on read is marked missing and fetched again.
//! A chunk is marked present only after its bytes were written (file first,
//! then the database batch), so a crash in between loses at most the mark.
//!
//! Pinned content (what this node publishes or the user chose to keep) is
//! never evicted. Cached content (fetched while viewing or re-serving) is
//! evicted least recently used first whenever the store's total exceeds
//! the cache cap.
//!
//! This file opens the store and keeps the catalog (manifests, listing and
//! search, pinning, removal and eviction); `store/chunks.rs` holds the chunk
//! I/O (import, put, verified reads) and `store/records.rs` the tables and
//! their record encodings.

use std::{
    collections::{HashMap, HashSet},
    fmt, fs, io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use rusty_shared_types::Hash256;
use rusty_storage::{Database, RocksOptions, StorageError};
use tracing::{info, warn};

use crate::manifest::{ManifestError, SignedManifest};

mod chunks;
pub use chunks::{PutChunks, StoredRun};
mod records;

use records::{
    segment_count, Catalog, ChunkMaps, ContentState, SegmentKey, States, Summaries, Summary, TABLES,
};

/// Bumped whenever a table's layout changes.
pub const SCHEMA_VERSION: u32 = 1;
/// Chunks per bitmap segment record (1 KiB of bits, 512 MiB of content).
pub const SEGMENT_CHUNKS: u64 = 8192;
/// Most bytes one [`ContentStore::read_range`] call returns.
pub const MAX_READ_RANGE: u64 = 64 << 20;
/// During an import, chunk marks are committed every this many chunks.
const IMPORT_COMMIT_CHUNKS: usize = 1024;
/// Manifests kept decoded in memory (a manifest lists 32 bytes per chunk).
const MANIFEST_CACHE_ENTRIES: usize = 64;
/// RocksDB block cache of the media database.
const DB_CACHE_BYTES: usize = 8 << 20;

/// Content store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A manifest or chunk was rejected; see [`StoreError::is_bad_data`].
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The media database failed.
    #[error("content store database: {0}")]
    Storage(#[from] StorageError),
    /// A content file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// No content with this id is in the store.
    #[error("content {0} is not in the store")]
    UnknownContent(Hash256),
    /// A chunk a read needs has not been fetched (or was found corrupt).
    #[error("chunk {index} of content {id} is not in the store")]
    ChunkMissing { id: Hash256, index: u64 },
    /// A byte range outside the content.
    #[error("byte range {start}..{end} is not within the content's {size} bytes")]
    BadRange { start: u64, end: u64, size: u64 },
    /// A byte range larger than one read may return.
    #[error("byte range of {len} bytes is more than the {max} bytes one read may return")]
    RangeTooLarge { len: u64, max: u64 },
    /// The imported content ended before the manifest's size.
    #[error("the content ended after {found} bytes, the manifest says {expected}")]
    ImportTooShort { expected: u64, found: u64 },
    /// The imported content is longer than the manifest's size.
    #[error("the content is longer than the manifest's {expected} bytes")]
    ImportTooLong { expected: u64 },
    /// Live streams have no chunks to store.
    #[error("content {0} is a live stream; its segments are not stored as chunks")]
    Live(Hash256),
}

impl StoreError {
    /// Whether the error means the data offered was bad (a chunk that does
    /// not match its manifest, a malformed or forged manifest): the peer
    /// that sent it should be penalised.
    pub fn is_bad_data(&self) -> bool {
        matches!(self, StoreError::Manifest(e) if e.is_bad_data())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A content's entry in [`ContentStore::list`] and [`ContentStore::search`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentInfo {
    pub id: Hash256,
    pub title: String,
    pub tags: Vec<String>,
    pub mime: String,
    /// The creator's Ed25519 public key.
    pub creator: [u8; 32],
    pub size: u64,
    pub price: u64,
    pub encrypted: bool,
    pub live: bool,
    /// The manifest's creation time, Unix seconds.
    pub created: u64,
    pub chunk_count: u64,
    /// Verified chunks on disk.
    pub chunks_present: u64,
    /// Bytes of the verified chunks on disk.
    pub bytes_present: u64,
    pub pinned: bool,
    /// Every chunk is present (never true for a live stream).
    pub complete: bool,
    /// Last read or write, Unix seconds.
    pub last_access: u64,
}

/// Totals over the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Bytes of verified chunks on disk.
    pub total_bytes: u64,
    /// Of which pinned content.
    pub pinned_bytes: u64,
    /// Of which cached (unpinned) content, subject to eviction.
    pub cached_bytes: u64,
    /// Contents in the catalog, complete or not.
    pub items: u64,
    /// The cap on `total_bytes` eviction works towards.
    pub cap_bytes: u64,
}

/// The content store. Cheap operations take `&self`; share it with an `Arc`.
pub struct ContentStore {
    content_dir: PathBuf,
    db: Database,
    cap_bytes: u64,
    inner: Mutex<Inner>,
}

/// In-memory state guarded by the store's lock. Every read-modify-write of a
/// content's state or bitmap happens under it.
#[derive(Default)]
struct Inner {
    total_bytes: u64,
    pinned_bytes: u64,
    items: u64,
    /// Logical clock ordering accesses for LRU eviction.
    clock: u64,
    manifests: HashMap<Hash256, Arc<SignedManifest>>,
}

impl Inner {
    fn tick(&mut self) -> u64 {
        self.clock = self.clock.saturating_add(1);
        self.clock
    }

    fn add_bytes(&mut self, n: u64, pinned: bool) {
        self.total_bytes = self.total_bytes.saturating_add(n);
        if pinned {
            self.pinned_bytes = self.pinned_bytes.saturating_add(n);
        }
    }

    fn sub_bytes(&mut self, n: u64, pinned: bool) {
        self.total_bytes = self.total_bytes.saturating_sub(n);
        if pinned {
            self.pinned_bytes = self.pinned_bytes.saturating_sub(n);
        }
    }
}

impl fmt::Debug for ContentStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentStore")
            .field("content_dir", &self.content_dir)
            .field("cap_bytes", &self.cap_bytes)
            .finish_non_exhaustive()
    }
}

impl ContentStore {
    /// Opens (or creates) the store under `dir`: content files in
    /// `<dir>/content/`, the database in `<dir>/media-db/`. Cached content
    /// is evicted when the store holds more than `cache_cap_bytes`.
    pub fn open(dir: &Path, cache_cap_bytes: u64) -> Result<ContentStore> {
        let db_dir = dir.join("media-db");
        fs::create_dir_all(&db_dir).map_err(io_err(&db_dir))?;
        let opts = RocksOptions {
            cache_bytes: DB_CACHE_BYTES,
            ..RocksOptions::default()
        };
        let db = Database::open_rocksdb(&db_dir, TABLES, SCHEMA_VERSION, opts)?;
        Self::with_database(dir, db, cache_cap_bytes)
    }

    /// Like [`ContentStore::open`] but with an in-memory database (content
    /// files still go to `<dir>/content/`). For unit tests.
    pub fn with_memory_db(dir: &Path, cache_cap_bytes: u64) -> Result<ContentStore> {
        let db = Database::in_memory(TABLES, SCHEMA_VERSION)?;
        Self::with_database(dir, db, cache_cap_bytes)
    }

    fn with_database(dir: &Path, db: Database, cap_bytes: u64) -> Result<ContentStore> {
        let content_dir = dir.join("content");
        fs::create_dir_all(&content_dir).map_err(io_err(&content_dir))?;
        let store = ContentStore {
            content_dir,
            db,
            cap_bytes,
            inner: Mutex::new(Inner::default()),
        };
        store.recover()?;
        Ok(store)
    }

    /// Rebuilds the in-memory totals, resets contents whose file is gone and
    /// deletes content files the catalog does not know (left by a crash
    /// during removal).
    fn recover(&self) -> Result<()> {
        let mut inner = self.lock();
        let mut known = HashSet::new();
        let mut batch = self.db.batch();
        for item in self.db.iter_from::<States>(&Hash256::ZERO) {
            let (id, mut state) = item?;
            known.insert(id);
            inner.clock = inner.clock.max(state.access_seq);
            if state.chunks_present > 0 && !self.content_path(&id).exists() {
                warn!(%id, "content file missing; its chunks will be fetched again");
                if let Some(summary) = self.db.get::<Summaries>(&id)? {
                    for segment in 0..segment_count(summary.chunk_count) {
                        batch.delete::<ChunkMaps>(&SegmentKey { id, segment });
                    }
                }
                state.chunks_present = 0;
                state.bytes_present = 0;
                batch.put::<States>(&id, &state);
            }
            inner.add_bytes(state.bytes_present, state.pinned);
        }
        inner.items = known.len() as u64;
        if !batch.is_empty() {
            self.db.commit(batch)?;
        }
        drop(inner);
        self.sweep_orphans(&known)
    }

    fn sweep_orphans(&self, known: &HashSet<Hash256>) -> Result<()> {
        let dirs = fs::read_dir(&self.content_dir).map_err(io_err(&self.content_dir))?;
        for shard in dirs {
            let shard = shard.map_err(io_err(&self.content_dir))?.path();
            let Some(prefix) = shard.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if prefix.len() != 2 || !shard.is_dir() {
                continue;
            }
            for file in fs::read_dir(&shard).map_err(io_err(&shard))? {
                let path = file.map_err(io_err(&shard))?.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let Ok(id) = name.parse::<Hash256>() else {
                    continue;
                };
                if name.starts_with(prefix) && !known.contains(&id) {
                    warn!(%id, "deleting a content file the catalog does not know");
                    remove_file_if_exists(&path)?;
                }
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while the lock was held can at worst leave the in-memory
        // totals off; the database records are written atomically.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `<dir>/content/ab/abcd…`.
    pub fn content_path(&self, id: &Hash256) -> PathBuf {
        let name = id.to_string();
        let shard = name.get(..2).unwrap_or_default();
        self.content_dir.join(shard).join(&name)
    }

    /// The signed manifest of `id`, if it is in the catalog.
    pub fn manifest(&self, id: &Hash256) -> Result<Option<Arc<SignedManifest>>> {
        // Read and cached under the lock that `remove` holds, so that a
        // removal between the two cannot leave its manifest cached.
        let mut inner = self.lock();
        if let Some(m) = inner.manifests.get(id) {
            return Ok(Some(Arc::clone(m)));
        }
        let Some(m) = self.db.get::<Catalog>(id)? else {
            return Ok(None);
        };
        let m = Arc::new(m);
        Self::cache_manifest_in(&mut inner, id, &m);
        Ok(Some(m))
    }

    fn cache_manifest_in(inner: &mut Inner, id: &Hash256, m: &Arc<SignedManifest>) {
        if inner.manifests.len() >= MANIFEST_CACHE_ENTRIES {
            if let Some(old) = inner.manifests.keys().next().copied() {
                inner.manifests.remove(&old);
            }
        }
        inner.manifests.insert(*id, Arc::clone(m));
    }

    fn require_manifest(&self, id: &Hash256) -> Result<Arc<SignedManifest>> {
        self.manifest(id)?.ok_or(StoreError::UnknownContent(*id))
    }

    /// Verifies `signed` and adds it to the catalog with no chunks yet;
    /// returns its content id. Adding a manifest that is already there
    /// changes nothing, except that `pinned = true` pins it.
    pub fn add_manifest(&self, signed: SignedManifest, pinned: bool) -> Result<Hash256> {
        signed.verify()?;
        let id = signed.content_id();
        {
            let mut inner = self.lock();
            if let Some(mut state) = self.db.get::<States>(&id)? {
                if pinned && !state.pinned {
                    self.set_pinned(&mut inner, &id, &mut state, true)?;
                }
                return Ok(id);
            }
            let state = ContentState {
                pinned,
                chunks_present: 0,
                bytes_present: 0,
                access_seq: inner.tick(),
                accessed_at: now(),
            };
            let mut batch = self.db.batch();
            batch.put::<Summaries>(&id, &Summary::of(&signed));
            batch.put::<States>(&id, &state);
            batch.put::<Catalog>(&id, &signed);
            self.db.commit(batch)?;
            inner.items = inner.items.saturating_add(1);
            // Under the lock, as in `manifest`.
            Self::cache_manifest_in(&mut inner, &id, &Arc::new(signed));
        }
        Ok(id)
    }

    /// Whether every chunk of `id` is stored (never for a live stream).
    pub fn is_complete(&self, id: &Hash256) -> Result<bool> {
        Ok(self.info(id)?.complete)
    }

    /// The catalog entry of `id`.
    pub fn info(&self, id: &Hash256) -> Result<ContentInfo> {
        let summary = self
            .db
            .get::<Summaries>(id)?
            .ok_or(StoreError::UnknownContent(*id))?;
        let state = self
            .db
            .get::<States>(id)?
            .ok_or(StoreError::UnknownContent(*id))?;
        Ok(ContentInfo::new(*id, summary, &state))
    }

    /// Every content in the catalog, by id.
    pub fn list(&self) -> Result<Vec<ContentInfo>> {
        let mut out = Vec::new();
        for item in self.db.iter_from::<Summaries>(&Hash256::ZERO) {
            let (id, summary) = item?;
            // Removed between the two reads: skip it.
            if let Some(state) = self.db.get::<States>(&id)? {
                out.push(ContentInfo::new(id, summary, &state));
            }
        }
        Ok(out)
    }

    /// Contents whose title or tags contain every word of `query`, ignoring
    /// case. An empty query matches everything.
    pub fn search(&self, query: &str) -> Result<Vec<ContentInfo>> {
        let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
        let mut out = self.list()?;
        out.retain(|info| {
            let title = info.title.to_lowercase();
            let tags: Vec<String> = info.tags.iter().map(|t| t.to_lowercase()).collect();
            words
                .iter()
                .all(|w| title.contains(w.as_str()) || tags.iter().any(|t| t.contains(w.as_str())))
        });
        Ok(out)
    }

    /// Pins `id`: it is never evicted.
    pub fn pin(&self, id: &Hash256) -> Result<()> {
        self.update_pin(id, true)
    }

    /// Unpins `id`, making it cached content that may be evicted (which may
    /// happen right away if the store is over its cap).
    pub fn unpin(&self, id: &Hash256) -> Result<()> {
        self.update_pin(id, false)?;
        self.evict_to_cap()?;
        Ok(())
    }

    fn update_pin(&self, id: &Hash256, pinned: bool) -> Result<()> {
        let mut inner = self.lock();
        let mut state = self
            .db
            .get::<States>(id)?
            .ok_or(StoreError::UnknownContent(*id))?;
        if state.pinned != pinned {
            self.set_pinned(&mut inner, id, &mut state, pinned)?;
        }
        Ok(())
    }

    fn set_pinned(
        &self,
        inner: &mut Inner,
        id: &Hash256,
        state: &mut ContentState,
        pinned: bool,
    ) -> Result<()> {
        state.pinned = pinned;
        let mut batch = self.db.batch();
        batch.put::<States>(id, state);
        self.db.commit(batch)?;
        if pinned {
            inner.pinned_bytes = inner.pinned_bytes.saturating_add(state.bytes_present);
        } else {
            inner.pinned_bytes = inner.pinned_bytes.saturating_sub(state.bytes_present);
        }
        Ok(())
    }

    /// Removes `id` (manifest, records and file), pinned or not. Returns
    /// whether it was there.
    pub fn remove(&self, id: &Hash256) -> Result<bool> {
        self.remove_inner(id, false)
    }

    fn remove_inner(&self, id: &Hash256, only_unpinned: bool) -> Result<bool> {
        let mut inner = self.lock();
        let Some(state) = self.db.get::<States>(id)? else {
            return Ok(false);
        };
        if only_unpinned && state.pinned {
            return Ok(false);
        }
        let chunk_count = self.db.get::<Summaries>(id)?.map_or(0, |s| s.chunk_count);
        let mut batch = self.db.batch();
        batch.delete::<Catalog>(id);
        batch.delete::<Summaries>(id);
        batch.delete::<States>(id);
        for segment in 0..segment_count(chunk_count) {
            batch.delete::<ChunkMaps>(&SegmentKey { id: *id, segment });
        }
        // The records go first: a crash before the file is deleted leaves an
        // orphan file, which the next open deletes.
        self.db.commit(batch)?;
        inner.sub_bytes(state.bytes_present, state.pinned);
        inner.items = inner.items.saturating_sub(1);
        inner.manifests.remove(id);
        let path = self.content_path(id);
        if let Err(e) = remove_file_if_exists(&path) {
            warn!(%id, error = %e, "could not delete the content file; it is deleted at the next start");
        }
        Ok(true)
    }

    /// Evicts cached (unpinned) content, least recently used first, until
    /// the store's total is within the cap or nothing unpinned is left.
    /// Returns the evicted ids. Called after every write that adds bytes.
    pub fn evict_to_cap(&self) -> Result<Vec<Hash256>> {
        self.evict_except(None)
    }

    /// [`ContentStore::evict_to_cap`], sparing `keep` (the content being
    /// written, so a download is not evicted by its own chunks).
    fn evict_except(&self, keep: Option<&Hash256>) -> Result<Vec<Hash256>> {
        if self.lock().total_bytes <= self.cap_bytes {
            return Ok(Vec::new());
        }
        let mut candidates = Vec::new();
        for item in self.db.iter_from::<States>(&Hash256::ZERO) {
            let (id, state) = item?;
            if !state.pinned && state.bytes_present > 0 && Some(&id) != keep {
                candidates.push((state.access_seq, id));
            }
        }
        candidates.sort_unstable();
        let mut evicted = Vec::new();
        for (_, id) in candidates {
            if self.lock().total_bytes <= self.cap_bytes {
                break;
            }
            if self.remove_inner(&id, true)? {
                info!(%id, "evicted cached content");
                evicted.push(id);
            }
        }
        Ok(evicted)
    }

    /// Totals over the store.
    pub fn stats(&self) -> StoreStats {
        let inner = self.lock();
        StoreStats {
            total_bytes: inner.total_bytes,
            pinned_bytes: inner.pinned_bytes,
            cached_bytes: inner.total_bytes.saturating_sub(inner.pinned_bytes),
            items: inner.items,
            cap_bytes: self.cap_bytes,
        }
    }

    /// Flushes the database (clean shutdown).
    pub fn flush(&self) -> Result<()> {
        Ok(self.db.flush()?)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn remove_file_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

#[cfg(test)]
mod tests;
