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

use std::{
    collections::{HashMap, HashSet},
    fmt,
    fs::{self, File, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    ops::Range,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use rusty_shared_types::{
    encoding::{write_bytes, write_compact_size, DecodeResult, Reader},
    Decode, DecodeError, Encode, Hash256,
};
use rusty_storage::{Database, RocksOptions, StorageError, TableKey};
use tracing::{info, warn};

use crate::manifest::{
    ManifestError, SignedManifest, CHUNK_SIZE, MAX_MIME_LEN, MAX_TAGS, MAX_TAG_LEN, MAX_TITLE_LEN,
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

const SEGMENT_BYTES: usize = (SEGMENT_CHUNKS / 8) as usize;

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
        if let Some(m) = self.lock().manifests.get(id) {
            return Ok(Some(Arc::clone(m)));
        }
        let Some(m) = self.db.get::<Catalog>(id)? else {
            return Ok(None);
        };
        let m = Arc::new(m);
        self.cache_manifest(id, &m);
        Ok(Some(m))
    }

    fn cache_manifest(&self, id: &Hash256, m: &Arc<SignedManifest>) {
        let mut inner = self.lock();
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
        }
        self.cache_manifest(&id, &Arc::new(signed));
        Ok(id)
    }

    /// Adds and pins `signed` and stores its content read from `content`,
    /// verifying every chunk: what a publisher does. The content is read
    /// once, one chunk at a time. On error, the chunks verified and written
    /// so far stay recorded (a later import or download completes them).
    pub fn import(&self, signed: SignedManifest, content: impl Read) -> Result<Hash256> {
        let id = self.add_manifest(signed, true)?;
        let m = self.require_manifest(&id)?;
        if m.manifest.live {
            return Err(StoreError::Live(id));
        }
        let path = self.content_path(&id);
        let mut file = open_for_write(&path)?;
        let mut pending = Vec::new();
        let result = self.import_chunks(&id, &m, content, &mut file, &mut pending);
        if !pending.is_empty() {
            file.sync_data().map_err(io_err(&path))?;
            self.mark_chunks(&id, &m, &pending)?;
        }
        result?;
        self.evict_except(Some(&id))?;
        Ok(id)
    }

    fn import_chunks(
        &self,
        id: &Hash256,
        m: &SignedManifest,
        mut content: impl Read,
        file: &mut File,
        pending: &mut Vec<u64>,
    ) -> Result<()> {
        let path = self.content_path(id);
        let mut buf = vec![0u8; CHUNK_SIZE as usize];
        for index in 0..m.chunk_count() {
            let (offset, len) = m.chunk_range(index)?;
            // `len <= CHUNK_SIZE`, a u32.
            let chunk = &mut buf[..len as usize];
            let got = read_full(&mut content, chunk).map_err(|e| StoreError::Manifest(e.into()))?;
            if got < chunk.len() {
                return Err(StoreError::ImportTooShort {
                    expected: m.manifest.size,
                    found: offset.saturating_add(got as u64),
                });
            }
            m.verify_chunk(index, chunk)?;
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.write_all(chunk))
                .map_err(io_err(&path))?;
            pending.push(index);
            if pending.len() >= IMPORT_COMMIT_CHUNKS {
                file.sync_data().map_err(io_err(&path))?;
                self.mark_chunks(id, m, pending)?;
                pending.clear();
            }
        }
        let mut extra = [0u8; 1];
        if read_full(&mut content, &mut extra).map_err(|e| StoreError::Manifest(e.into()))? > 0 {
            return Err(StoreError::ImportTooLong {
                expected: m.manifest.size,
            });
        }
        Ok(())
    }

    /// Records chunks whose verified bytes are already on disk.
    fn mark_chunks(&self, id: &Hash256, m: &SignedManifest, indices: &[u64]) -> Result<()> {
        let mut inner = self.lock();
        let mut state = self
            .db
            .get::<States>(id)?
            .ok_or(StoreError::UnknownContent(*id))?;
        let mut segments: HashMap<u32, ChunkBits> = HashMap::new();
        let mut added = 0u64;
        for &index in indices {
            let (_, len) = m.chunk_range(index)?;
            let key = SegmentKey::of(*id, index);
            let bits = match segments.entry(key.segment) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.load_segment(&key, m.chunk_count())?)
                }
            };
            if !bits.get(index) {
                bits.set(index, true);
                state.chunks_present = state.chunks_present.saturating_add(1);
                state.bytes_present = state.bytes_present.saturating_add(len);
                added = added.saturating_add(len);
            }
        }
        state.access_seq = inner.tick();
        state.accessed_at = now();
        let mut batch = self.db.batch();
        for (segment, bits) in &segments {
            batch.put::<ChunkMaps>(
                &SegmentKey {
                    id: *id,
                    segment: *segment,
                },
                bits,
            );
        }
        batch.put::<States>(id, &state);
        self.db.commit(batch)?;
        inner.add_bytes(added, state.pinned);
        Ok(())
    }

    fn load_segment(&self, key: &SegmentKey, chunk_count: u64) -> Result<ChunkBits> {
        Ok(self
            .db
            .get::<ChunkMaps>(key)?
            .unwrap_or_else(|| ChunkBits::new(key.segment, chunk_count)))
    }

    fn is_marked(&self, id: &Hash256, index: u64) -> Result<bool> {
        let key = SegmentKey::of(*id, index);
        Ok(self
            .db
            .get::<ChunkMaps>(&key)?
            .is_some_and(|bits| bits.get(index)))
    }

    /// Stores chunk `index` of `id` after verifying it against the manifest.
    /// Returns whether the chunk was new. A chunk that does not verify is an
    /// error naming its index ([`StoreError::is_bad_data`]) and nothing is
    /// written.
    pub fn put_chunk(&self, id: &Hash256, index: u64, bytes: &[u8]) -> Result<bool> {
        let m = self.require_manifest(id)?;
        if m.manifest.live {
            return Err(StoreError::Live(*id));
        }
        m.verify_chunk(index, bytes)?;
        let (offset, len) = m.chunk_range(index)?;
        {
            let mut inner = self.lock();
            let mut state = self
                .db
                .get::<States>(id)?
                .ok_or(StoreError::UnknownContent(*id))?;
            let key = SegmentKey::of(*id, index);
            let mut bits = self.load_segment(&key, m.chunk_count())?;
            if bits.get(index) {
                return Ok(false);
            }
            // The bytes first, then the record saying they are there.
            let path = self.content_path(id);
            let mut file = open_for_write(&path)?;
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.write_all(bytes))
                .map_err(io_err(&path))?;
            bits.set(index, true);
            state.chunks_present = state.chunks_present.saturating_add(1);
            state.bytes_present = state.bytes_present.saturating_add(len);
            state.access_seq = inner.tick();
            state.accessed_at = now();
            let mut batch = self.db.batch();
            batch.put::<ChunkMaps>(&key, &bits);
            batch.put::<States>(id, &state);
            self.db.commit(batch)?;
            inner.add_bytes(len, state.pinned);
        }
        self.evict_except(Some(id))?;
        Ok(true)
    }

    /// The stored chunks of `id` from `start` on, at most `count`, up to the
    /// first one missing (each re-verified as by [`ContentStore::read_chunk`]);
    /// the access time is updated once. What a peer asking for a range gets.
    pub fn read_chunks(&self, id: &Hash256, start: u64, count: u64) -> Result<Vec<Vec<u8>>> {
        let m = self.require_manifest(id)?;
        let end = start.saturating_add(count).min(m.chunk_count());
        let mut out = Vec::new();
        for index in start..end {
            match self.read_verified(id, &m, index)? {
                Some(bytes) => out.push(bytes),
                None => break,
            }
        }
        if !out.is_empty() {
            self.touch(id)?;
        }
        Ok(out)
    }

    /// The first of `chunks` of `id` not stored, if any: whether a read of
    /// them would succeed, without scanning the whole content.
    pub fn first_missing(&self, id: &Hash256, chunks: Range<u64>) -> Result<Option<u64>> {
        for index in chunks {
            if !self.is_marked(id, index)? {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }

    /// The bytes of chunk `index` of `id` if they are stored and still hash
    /// right. A stored chunk that no longer verifies (disk corruption, a
    /// crash before the bytes reached the disk) is marked missing and `None`
    /// is returned.
    pub fn read_chunk(&self, id: &Hash256, index: u64) -> Result<Option<Vec<u8>>> {
        let m = self.require_manifest(id)?;
        let bytes = self.read_verified(id, &m, index)?;
        if bytes.is_some() {
            self.touch(id)?;
        }
        Ok(bytes)
    }

    fn read_verified(
        &self,
        id: &Hash256,
        m: &SignedManifest,
        index: u64,
    ) -> Result<Option<Vec<u8>>> {
        let (offset, len) = m.chunk_range(index)?;
        if !self.is_marked(id, index)? {
            return Ok(None);
        }
        match self.read_at(id, offset, len)? {
            Some(bytes) if m.verify_chunk(index, &bytes).is_ok() => Ok(Some(bytes)),
            _ => {
                self.unmark_if_bad(id, m, index)?;
                Ok(None)
            }
        }
    }

    /// Unmarks chunk `index` unless, checked again under the lock, its bytes
    /// verify (a concurrent writer may have just rewritten them). Returns
    /// whether it was unmarked.
    fn unmark_if_bad(&self, id: &Hash256, m: &SignedManifest, index: u64) -> Result<bool> {
        let mut inner = self.lock();
        let Some(mut state) = self.db.get::<States>(id)? else {
            return Ok(false);
        };
        let key = SegmentKey::of(*id, index);
        let mut bits = self.load_segment(&key, m.chunk_count())?;
        if !bits.get(index) {
            return Ok(false);
        }
        let (offset, len) = m.chunk_range(index)?;
        if let Some(bytes) = self.read_at(id, offset, len)? {
            if m.verify_chunk(index, &bytes).is_ok() {
                return Ok(false);
            }
        }
        warn!(%id, index, "stored chunk failed verification; marked missing");
        bits.set(index, false);
        state.chunks_present = state.chunks_present.saturating_sub(1);
        state.bytes_present = state.bytes_present.saturating_sub(len);
        let mut batch = self.db.batch();
        batch.put::<ChunkMaps>(&key, &bits);
        batch.put::<States>(id, &state);
        self.db.commit(batch)?;
        inner.sub_bytes(len, state.pinned);
        Ok(true)
    }

    /// `len` bytes at `offset` of the content file, or `None` if the file is
    /// missing or too short.
    fn read_at(&self, id: &Hash256, offset: u64, len: u64) -> Result<Option<Vec<u8>>> {
        let path = self.content_path(id);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        // Chunk lengths are at most `CHUNK_SIZE`, a u32.
        let mut buf = vec![0u8; len as usize];
        file.seek(SeekFrom::Start(offset)).map_err(io_err(&path))?;
        match file.read_exact(&mut buf) {
            Ok(()) => Ok(Some(buf)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Bytes `start..end` (half-open) of `id`, for HTTP Range requests: an
    /// inclusive `bytes=a-b` is `read_range(id, a, b + 1)`. Every chunk the
    /// range touches must be present ([`StoreError::ChunkMissing`] names the
    /// first that is not) and is verified as it is read.
    pub fn read_range(&self, id: &Hash256, start: u64, end: u64) -> Result<Vec<u8>> {
        let m = self.require_manifest(id)?;
        if m.manifest.live {
            return Err(StoreError::Live(*id));
        }
        let size = m.manifest.size;
        if start > end || end > size {
            return Err(StoreError::BadRange { start, end, size });
        }
        let len = end - start;
        if len > MAX_READ_RANGE {
            return Err(StoreError::RangeTooLarge {
                len,
                max: MAX_READ_RANGE,
            });
        }
        // `len <= MAX_READ_RANGE`, which fits a usize.
        let mut out = Vec::with_capacity(len as usize);
        for index in m.chunks_for_range(start, end) {
            let (offset, chunk_len) = m.chunk_range(index)?;
            let bytes = self
                .read_verified(id, &m, index)?
                .ok_or(StoreError::ChunkMissing { id: *id, index })?;
            // The chunk overlaps `start..end`, so both bounds are within it.
            let from = start.saturating_sub(offset) as usize;
            let to = (end - offset).min(chunk_len) as usize;
            out.extend_from_slice(&bytes[from..to]);
        }
        if !out.is_empty() {
            self.touch(id)?;
        }
        Ok(out)
    }

    /// Re-reads and re-verifies every chunk marked present, unmarking those
    /// that fail. Returns how many were unmarked.
    pub fn verify_stored(&self, id: &Hash256) -> Result<u64> {
        let m = self.require_manifest(id)?;
        let mut unmarked = 0u64;
        for index in 0..m.chunk_count() {
            if self.is_marked(id, index)? {
                let (offset, len) = m.chunk_range(index)?;
                let ok = self
                    .read_at(id, offset, len)?
                    .is_some_and(|b| m.verify_chunk(index, &b).is_ok());
                if !ok && self.unmark_if_bad(id, &m, index)? {
                    unmarked = unmarked.saturating_add(1);
                }
            }
        }
        Ok(unmarked)
    }

    fn touch(&self, id: &Hash256) -> Result<()> {
        let mut inner = self.lock();
        if let Some(mut state) = self.db.get::<States>(id)? {
            state.access_seq = inner.tick();
            state.accessed_at = now();
            let mut batch = self.db.batch();
            batch.put::<States>(id, &state);
            self.db.commit(batch)?;
        }
        Ok(())
    }

    /// Indexes of the chunks not yet stored, ascending.
    pub fn missing_chunks(&self, id: &Hash256) -> Result<Vec<u64>> {
        let m = self.require_manifest(id)?;
        let count = m.chunk_count();
        let mut missing = Vec::new();
        for segment in 0..segment_count(count) {
            let key = SegmentKey { id: *id, segment };
            let bits = self.load_segment(&key, count)?;
            let first = u64::from(segment) * SEGMENT_CHUNKS;
            let last = first.saturating_add(SEGMENT_CHUNKS).min(count);
            missing.extend((first..last).filter(|i| !bits.get(*i)));
        }
        Ok(missing)
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

fn open_for_write(path: &Path) -> Result<File> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(path))
}

fn remove_file_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Bitmap segments of content with `chunk_count` chunks. At most
/// `MAX_CHUNKS / SEGMENT_CHUNKS` = 128 for a valid manifest.
fn segment_count(chunk_count: u64) -> u32 {
    u32::try_from(chunk_count.div_ceil(SEGMENT_CHUNKS)).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------
// Tables and records.

rusty_storage::tables! {
    /// Every table of the media database.
    const TABLES;
    /// Content id → signed manifest.
    table Catalog: Hash256 => SignedManifest = "media_catalog";
    /// Content id → what listing and search need, without the chunk hashes.
    table Summaries: Hash256 => Summary = "media_summary";
    /// Content id → pinned, chunks and bytes present, last access.
    table States: Hash256 => ContentState = "media_state";
    /// (content id, segment) → bitmap of the segment's verified chunks.
    table ChunkMaps: SegmentKey => ChunkBits = "media_chunk_map";
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Summary {
    creator: [u8; 32],
    title: String,
    tags: Vec<String>,
    mime: String,
    size: u64,
    chunk_count: u64,
    price: u64,
    encrypted: bool,
    live: bool,
    created: u64,
}

impl Summary {
    fn of(signed: &SignedManifest) -> Summary {
        let m = &signed.manifest;
        Summary {
            creator: m.creator,
            title: m.title.clone(),
            tags: m.tags.clone(),
            mime: m.mime.clone(),
            size: m.size,
            chunk_count: m.chunk_count(),
            price: m.price,
            encrypted: m.encrypted,
            live: m.live,
            created: m.created,
        }
    }
}

impl Encode for Summary {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.creator);
        write_bytes(out, self.title.as_bytes());
        write_compact_size(out, self.tags.len() as u64);
        for tag in &self.tags {
            write_bytes(out, tag.as_bytes());
        }
        write_bytes(out, self.mime.as_bytes());
        self.size.encode_to(out);
        self.chunk_count.encode_to(out);
        self.price.encode_to(out);
        self.encrypted.encode_to(out);
        self.live.encode_to(out);
        self.created.encode_to(out);
    }
}

fn read_string(r: &mut Reader<'_>, what: &'static str, max: usize) -> DecodeResult<String> {
    String::from_utf8(r.bytes(what, max)?).map_err(|_| DecodeError::InvalidValue(what))
}

impl Decode for Summary {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let creator = r.array()?;
        let title = read_string(r, "title", MAX_TITLE_LEN)?;
        let tag_count = r.length("tags", MAX_TAGS, 1)?;
        let mut tags = Vec::with_capacity(tag_count);
        for _ in 0..tag_count {
            tags.push(read_string(r, "tag", MAX_TAG_LEN)?);
        }
        Ok(Summary {
            creator,
            title,
            tags,
            mime: read_string(r, "MIME type", MAX_MIME_LEN)?,
            size: r.u64()?,
            chunk_count: r.u64()?,
            price: r.u64()?,
            encrypted: bool::decode_from(r)?,
            live: bool::decode_from(r)?,
            created: r.u64()?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ContentState {
    pinned: bool,
    chunks_present: u64,
    bytes_present: u64,
    /// The store's logical clock at the last access (orders LRU eviction).
    access_seq: u64,
    /// Unix seconds at the last access (for display).
    accessed_at: u64,
}

impl Encode for ContentState {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.pinned.encode_to(out);
        self.chunks_present.encode_to(out);
        self.bytes_present.encode_to(out);
        self.access_seq.encode_to(out);
        self.accessed_at.encode_to(out);
    }
}

impl Decode for ContentState {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ContentState {
            pinned: bool::decode_from(r)?,
            chunks_present: r.u64()?,
            bytes_present: r.u64()?,
            access_seq: r.u64()?,
            accessed_at: r.u64()?,
        })
    }
}

impl ContentInfo {
    fn new(id: Hash256, s: Summary, state: &ContentState) -> ContentInfo {
        ContentInfo {
            id,
            complete: !s.live && state.chunks_present == s.chunk_count,
            title: s.title,
            tags: s.tags,
            mime: s.mime,
            creator: s.creator,
            size: s.size,
            price: s.price,
            encrypted: s.encrypted,
            live: s.live,
            created: s.created,
            chunk_count: s.chunk_count,
            chunks_present: state.chunks_present,
            bytes_present: state.bytes_present,
            pinned: state.pinned,
            last_access: state.accessed_at,
        }
    }
}

/// Key of a bitmap segment: content id, then the segment number big-endian
/// (so a content's segments are adjacent and in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SegmentKey {
    id: Hash256,
    segment: u32,
}

impl SegmentKey {
    /// The segment holding chunk `index`.
    fn of(id: Hash256, index: u64) -> SegmentKey {
        SegmentKey {
            id,
            // Valid manifests have at most 2^20 chunks; an index past that
            // was rejected by `chunk_range` before any key is built.
            segment: u32::try_from(index / SEGMENT_CHUNKS).unwrap_or(u32::MAX),
        }
    }
}

impl TableKey for SegmentKey {
    fn encode_key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(36);
        k.extend_from_slice(&self.id.0);
        k.extend_from_slice(&self.segment.to_be_bytes());
        k
    }

    fn decode_key(bytes: &[u8]) -> Result<Self, DecodeError> {
        let b: [u8; 36] = bytes
            .try_into()
            .map_err(|_| DecodeError::InvalidValue("segment key length"))?;
        let mut id = [0u8; 32];
        id.copy_from_slice(&b[..32]);
        Ok(SegmentKey {
            id: Hash256(id),
            segment: u32::from_be_bytes([b[32], b[33], b[34], b[35]]),
        })
    }
}

/// The verified-chunk bits of one segment; bit `i % SEGMENT_CHUNKS` (LSB
/// first within each byte) is chunk `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChunkBits(Vec<u8>);

impl ChunkBits {
    /// All clear, sized for segment `segment` of `chunk_count` chunks.
    fn new(segment: u32, chunk_count: u64) -> ChunkBits {
        let first = u64::from(segment).saturating_mul(SEGMENT_CHUNKS);
        let chunks = chunk_count.saturating_sub(first).min(SEGMENT_CHUNKS);
        // `chunks <= SEGMENT_CHUNKS`, so the byte count fits a usize.
        ChunkBits(vec![0; chunks.div_ceil(8) as usize])
    }

    fn position(index: u64) -> (usize, u8) {
        let bit = index % SEGMENT_CHUNKS;
        ((bit / 8) as usize, 1 << (bit % 8))
    }

    fn get(&self, index: u64) -> bool {
        let (byte, mask) = Self::position(index);
        self.0.get(byte).is_some_and(|b| b & mask != 0)
    }

    fn set(&mut self, index: u64, value: bool) {
        let (byte, mask) = Self::position(index);
        if let Some(b) = self.0.get_mut(byte) {
            if value {
                *b |= mask;
            } else {
                *b &= !mask;
            }
        }
    }
}

impl Encode for ChunkBits {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write_bytes(out, &self.0);
    }
}

impl Decode for ChunkBits {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ChunkBits(r.bytes("chunk bitmap", SEGMENT_BYTES)?))
    }
}

#[cfg(test)]
mod tests {
    use rusty_crypto::SecretKey;
    use tempfile::TempDir;

    use super::*;
    use crate::manifest::{Manifest, ManifestFields};

    const CS: usize = CHUNK_SIZE as usize;

    fn content(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) ^ (i >> 9) as u8)
            .collect()
    }

    fn signed(title: &str, tags: &[&str], data: &[u8]) -> SignedManifest {
        let fields = ManifestFields {
            title: title.into(),
            description: String::new(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            mime: "application/octet-stream".into(),
            price: 0,
            encrypted: false,
            created: 1_700_000_000,
        };
        Manifest::build(&SecretKey::from_bytes([9; 32]), data, fields).unwrap()
    }

    fn chunks(data: &[u8]) -> Vec<&[u8]> {
        data.chunks(CS).collect()
    }

    #[test]
    fn import_and_read_back_byte_identical() {
        let dir = TempDir::new().unwrap();
        let store = ContentStore::open(dir.path(), u64::MAX).unwrap();
        let data = content((1 << 20) + 12_345, 1);
        let m = signed("Big file", &[], &data);
        let id = store.import(m.clone(), &data[..]).unwrap();
        assert_eq!(id, m.content_id());

        let path = store.content_path(&id);
        let hex = id.to_string();
        assert_eq!(path, dir.path().join("content").join(&hex[..2]).join(&hex));
        assert_eq!(fs::read(&path).unwrap(), data);

        let mut back = Vec::new();
        for i in 0..m.chunk_count() {
            back.extend(store.read_chunk(&id, i).unwrap().unwrap());
        }
        assert_eq!(back, data);
        assert_eq!(store.read_range(&id, 0, data.len() as u64).unwrap(), data);
        assert!(store.is_complete(&id).unwrap());
        assert!(store.missing_chunks(&id).unwrap().is_empty());
        let info = store.info(&id).unwrap();
        assert!(info.pinned && info.complete);
        assert_eq!(info.chunk_count, 17);
        let stats = store.stats();
        assert_eq!(stats.total_bytes, data.len() as u64);
        assert_eq!(stats.pinned_bytes, data.len() as u64);
        assert_eq!(stats.cached_bytes, 0);
        assert_eq!(stats.items, 1);

        // Importing again and adding again are no-ops.
        assert_eq!(store.import(m.clone(), &data[..]).unwrap(), id);
        assert_eq!(store.add_manifest(m.clone(), false).unwrap(), id);
        assert_eq!(store.stats().items, 1);
        assert_eq!(store.stats().total_bytes, data.len() as u64);
        assert!(store.info(&id).unwrap().pinned);

        // Import of the wrong content.
        let other = content(3 * CS, 2);
        let m2 = signed("Other", &[], &other);
        assert!(matches!(
            store.import(m2.clone(), &other[..CS + 10]),
            Err(StoreError::ImportTooShort { .. })
        ));
        // The first chunk verified and stays recorded.
        assert_eq!(store.missing_chunks(&m2.content_id()).unwrap(), vec![1, 2]);
        let mut longer = other.clone();
        longer.push(0);
        assert!(matches!(
            store.import(m2.clone(), &longer[..]),
            Err(StoreError::ImportTooLong { .. })
        ));
        let mut wrong = other.clone();
        wrong[2 * CS + 3] ^= 1;
        let err = store.import(m2, &wrong[..]).unwrap_err();
        assert!(err.is_bad_data());
        assert!(matches!(
            err,
            StoreError::Manifest(ManifestError::BadChunk { index: 2 })
        ));
    }

    #[test]
    fn corrupt_chunk_is_refused_and_writes_nothing() {
        let dir = TempDir::new().unwrap();
        let store = ContentStore::open(dir.path(), u64::MAX).unwrap();
        let data = content(3 * CS + 7, 3);
        let m = signed("Video", &[], &data);
        let id = store.add_manifest(m, false).unwrap();
        let c = chunks(&data);

        let mut bad = c[1].to_vec();
        bad[0] ^= 0xff;
        let err = store.put_chunk(&id, 1, &bad).unwrap_err();
        assert!(err.is_bad_data());
        assert!(matches!(
            err,
            StoreError::Manifest(ManifestError::BadChunk { index: 1 })
        ));
        // Swapped chunk, short chunk, out of range.
        assert!(store.put_chunk(&id, 1, c[0]).unwrap_err().is_bad_data());
        assert!(store.put_chunk(&id, 3, c[2]).unwrap_err().is_bad_data());
        assert!(matches!(
            store.put_chunk(&id, 4, c[3]),
            Err(StoreError::Manifest(ManifestError::ChunkOutOfRange { .. }))
        ));
        assert!(!store.content_path(&id).exists());
        assert_eq!(store.missing_chunks(&id).unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(store.stats().total_bytes, 0);
        assert_eq!(store.read_chunk(&id, 1).unwrap(), None);

        assert!(store.put_chunk(&id, 1, c[1]).unwrap());
        assert!(!store.put_chunk(&id, 1, c[1]).unwrap());
        assert_eq!(store.read_chunk(&id, 1).unwrap().unwrap(), c[1]);
        assert_eq!(store.stats().total_bytes, CS as u64);
        assert_eq!(store.stats().cached_bytes, CS as u64);

        let unknown = Hash256([1; 32]);
        assert!(matches!(
            store.put_chunk(&unknown, 0, c[0]),
            Err(StoreError::UnknownContent(_))
        ));
    }

    #[test]
    fn download_resumes_after_reopen() {
        let dir = TempDir::new().unwrap();
        let data = content(6 * CS + 1, 4);
        let m = signed("Resumable", &[], &data);
        let c = chunks(&data);
        let id = {
            let store = ContentStore::open(dir.path(), u64::MAX).unwrap();
            let id = store.add_manifest(m.clone(), false).unwrap();
            for i in [0usize, 2, 6] {
                assert!(store.put_chunk(&id, i as u64, c[i]).unwrap());
            }
            store.flush().unwrap();
            id
        };
        let store = ContentStore::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(store.missing_chunks(&id).unwrap(), vec![1, 3, 4, 5]);
        assert_eq!(store.stats().total_bytes, 2 * CS as u64 + 1);
        assert_eq!(store.read_chunk(&id, 2).unwrap().unwrap(), c[2]);
        assert!(!store.is_complete(&id).unwrap());
        for i in [1usize, 3, 4, 5] {
            assert!(store.put_chunk(&id, i as u64, c[i]).unwrap());
        }
        assert!(store.is_complete(&id).unwrap());
        assert_eq!(fs::read(store.content_path(&id)).unwrap(), data);
    }

    #[test]
    fn corruption_on_disk_is_never_served() {
        let dir = TempDir::new().unwrap();
        let data = content(3 * CS, 5);
        let m = signed("Fragile", &[], &data);
        let store = ContentStore::open(dir.path(), u64::MAX).unwrap();
        let id = store.import(m, &data[..]).unwrap();
        let path = store.content_path(&id);
        let mut bytes = fs::read(&path).unwrap();
        bytes[CS + 100] ^= 1;
        bytes[2 * CS + 5] ^= 1;
        fs::write(&path, &bytes).unwrap();

        assert_eq!(store.read_chunk(&id, 1).unwrap(), None);
        assert_eq!(store.missing_chunks(&id).unwrap(), vec![1]);
        assert!(matches!(
            store.read_range(&id, 0, 3 * CS as u64),
            Err(StoreError::ChunkMissing { index: 1, .. })
        ));
        assert_eq!(store.verify_stored(&id).unwrap(), 1);
        assert_eq!(store.missing_chunks(&id).unwrap(), vec![1, 2]);
        assert_eq!(store.stats().total_bytes, CS as u64);
        let c = chunks(&data);
        assert!(store.put_chunk(&id, 1, c[1]).unwrap());
        assert!(store.put_chunk(&id, 2, c[2]).unwrap());
        assert_eq!(store.read_range(&id, 0, 3 * CS as u64).unwrap(), data);

        // A deleted file resets the content at the next open.
        drop(store);
        fs::remove_file(&path).unwrap();
        let store = ContentStore::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(store.missing_chunks(&id).unwrap(), vec![0, 1, 2]);
        assert_eq!(store.stats().total_bytes, 0);
    }

    #[test]
    fn orphan_files_are_deleted_at_open() {
        let dir = TempDir::new().unwrap();
        let orphan = Hash256([0xab; 32]);
        let keep_me = dir.path().join("content").join("ab").join("notes.txt");
        {
            let store = ContentStore::open(dir.path(), u64::MAX).unwrap();
            let path = store.content_path(&orphan);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, b"junk").unwrap();
            fs::write(&keep_me, b"not ours").unwrap();
        }
        let store = ContentStore::open(dir.path(), u64::MAX).unwrap();
        assert!(!store.content_path(&orphan).exists());
        assert!(keep_me.exists());
    }

    #[test]
    fn lru_eviction_spares_pinned_and_recent() {
        let dir = TempDir::new().unwrap();
        let size = 2 * CS + 1000; // three chunks
        let cap = 3 * size as u64 + 1000;
        let store = ContentStore::open(dir.path(), cap).unwrap();
        let mk = |seed: u8| {
            let data = content(size, seed);
            (signed(&format!("item {seed}"), &[], &data), data)
        };
        let fill = |m: &SignedManifest, data: &[u8]| {
            let id = store.add_manifest(m.clone(), false).unwrap();
            for (i, c) in chunks(data).iter().enumerate() {
                store.put_chunk(&id, i as u64, c).unwrap();
            }
            id
        };
        let (ma, da) = mk(1);
        let a = store.import(ma, &da[..]).unwrap(); // pinned, oldest
        let (mb, db) = mk(2);
        let b = fill(&mb, &db);
        let (mc, dc) = mk(3);
        let c = fill(&mc, &dc);
        assert_eq!(store.stats().total_bytes, 3 * size as u64);
        // B is used again, so C is now the least recently used.
        store.read_chunk(&b, 0).unwrap().unwrap();

        let (md, dd) = mk(4);
        let d = fill(&md, &dd);
        assert!(store.manifest(&c).unwrap().is_none(), "C evicted");
        assert!(!store.content_path(&c).exists());
        for id in [a, b, d] {
            assert!(store.is_complete(&id).unwrap());
        }
        let stats = store.stats();
        assert_eq!(stats.total_bytes, 3 * size as u64);
        assert_eq!(stats.pinned_bytes, size as u64);
        assert_eq!(stats.items, 3);

        // Over the cap with only pinned content left: nothing more to do.
        store.pin(&b).unwrap();
        store.pin(&d).unwrap();
        let (me, de) = mk(5);
        let e = fill(&me, &de);
        // E is spared while it is being written…
        assert!(store.is_complete(&e).unwrap());
        // …but evicted by the next eviction pass; pinned content stays.
        assert_eq!(store.evict_to_cap().unwrap(), vec![e]);
        assert_eq!(store.stats().total_bytes, 3 * size as u64);
        store.unpin(&b).unwrap();
        assert_eq!(store.stats().total_bytes, 3 * size as u64);
        assert_eq!(store.stats().pinned_bytes, 2 * size as u64);
        assert!(store.evict_to_cap().unwrap().is_empty());
    }

    #[test]
    fn read_range_across_chunk_boundaries() {
        let dir = TempDir::new().unwrap();
        let store = ContentStore::with_memory_db(dir.path(), u64::MAX).unwrap();
        let data = content(3 * CS + 500, 6);
        let m = signed("Seekable", &[], &data);
        let id = store.import(m, &data[..]).unwrap();
        let n = data.len() as u64;
        let cs = CS as u64;
        for (a, b) in [
            (0, 1),
            (cs - 10, cs + 10),
            (cs, 2 * cs),
            (cs - 1, 3 * cs + 1),
            (n - 1, n),
            (5, 5),
            (0, n),
        ] {
            assert_eq!(
                store.read_range(&id, a, b).unwrap(),
                data[a as usize..b as usize],
                "{a}..{b}"
            );
        }
        assert!(matches!(
            store.read_range(&id, 0, n + 1),
            Err(StoreError::BadRange { .. })
        ));
        assert!(matches!(
            store.read_range(&id, 10, 9),
            Err(StoreError::BadRange { .. })
        ));

        // Missing chunks are named.
        let data2 = content(2 * CS, 7);
        let m2 = signed("Partial", &[], &data2);
        let id2 = store.add_manifest(m2, false).unwrap();
        store.put_chunk(&id2, 0, &data2[..CS]).unwrap();
        assert_eq!(store.read_range(&id2, 0, 100).unwrap(), data2[..100]);
        assert!(matches!(
            store.read_range(&id2, cs - 1, cs + 1),
            Err(StoreError::ChunkMissing { index: 1, .. })
        ));
    }

    #[test]
    fn search_titles_and_tags() {
        let dir = TempDir::new().unwrap();
        let store = ContentStore::with_memory_db(dir.path(), u64::MAX).unwrap();
        let a = store
            .add_manifest(signed("Learning Rust", &["programming"], b"a"), false)
            .unwrap();
        let b = store
            .add_manifest(signed("Cooking pasta", &["Food", "italian"], b"b"), false)
            .unwrap();
        let c = store
            .add_manifest(signed("Rusty bikes", &["repair"], b"c"), true)
            .unwrap();
        let ids = |q: &str| {
            let mut v: Vec<Hash256> = store.search(q).unwrap().iter().map(|i| i.id).collect();
            v.sort();
            v
        };
        let sorted = |mut v: Vec<Hash256>| {
            v.sort();
            v
        };
        assert_eq!(ids("rust"), sorted(vec![a, c]));
        assert_eq!(ids("RUST programming"), vec![a]);
        assert_eq!(ids("food"), vec![b]);
        assert_eq!(ids("ITALIAN pasta"), vec![b]);
        assert_eq!(ids("opera"), Vec::<Hash256>::new());
        assert_eq!(ids("  "), sorted(vec![a, b, c]));
        assert_eq!(store.list().unwrap().len(), 3);

        assert!(store.remove(&b).unwrap());
        assert!(!store.remove(&b).unwrap());
        assert_eq!(ids("food"), Vec::<Hash256>::new());
        assert_eq!(store.stats().items, 2);
    }

    #[test]
    fn live_and_bad_manifests() {
        let dir = TempDir::new().unwrap();
        let store = ContentStore::with_memory_db(dir.path(), u64::MAX).unwrap();
        let key = SecretKey::from_bytes([3; 32]);
        let fields = ManifestFields {
            title: "Live".into(),
            mime: "video/mp2t".into(),
            ..ManifestFields::default()
        };
        let live = Manifest::build_live(&key, fields).unwrap();
        let id = store.add_manifest(live, false).unwrap();
        assert!(matches!(
            store.put_chunk(&id, 0, b"x"),
            Err(StoreError::Live(_))
        ));
        assert!(!store.is_complete(&id).unwrap());

        let mut forged = signed("Forged", &[], b"abc");
        forged.manifest.title = "Changed".into();
        let err = store.add_manifest(forged, false).unwrap_err();
        assert!(err.is_bad_data());
        assert_eq!(store.stats().items, 1);
    }
}
