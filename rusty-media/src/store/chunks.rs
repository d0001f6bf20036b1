//! Chunk I/O of [`ContentStore`]: importing a publisher's content, storing
//! a downloaded chunk, reading chunks and byte ranges back (each re-verified
//! against the manifest, a corrupt one marked missing), and the bitmap of
//! which chunks are present. Separate from the catalog side in [`super`]
//! (manifests, listing, pinning, eviction) because this is where the bytes
//! on disk and the chunk marks must stay in step.

use std::{
    collections::HashMap,
    fs::{self, File, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    ops::Range,
    path::Path,
};

use rusty_shared_types::Hash256;
use tracing::warn;

use super::{
    io_err, now,
    records::{segment_count, ChunkBits, ChunkMaps, SegmentKey, States},
    ContentStore, Result, StoreError, IMPORT_COMMIT_CHUNKS, MAX_READ_RANGE, SEGMENT_CHUNKS,
};
use crate::manifest::{SignedManifest, CHUNK_SIZE};

impl ContentStore {
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
        self.write_and_mark(id, m, indices.iter().map(|&i| (i, None)))?;
        Ok(())
    }

    /// Under the store lock, in one database commit: writes the bytes given
    /// (already verified) of chunks not yet marked, then marks every listed
    /// chunk present. The bytes go first, then the record saying they are
    /// there; holding the lock keeps an eviction from removing the file in
    /// between. Returns the indices that were newly marked and their bytes.
    fn write_and_mark<'a>(
        &self,
        id: &Hash256,
        m: &SignedManifest,
        chunks: impl IntoIterator<Item = (u64, Option<&'a [u8]>)>,
    ) -> Result<(Vec<u64>, u64)> {
        let mut inner = self.lock();
        let mut state = self
            .db
            .get::<States>(id)?
            .ok_or(StoreError::UnknownContent(*id))?;
        let mut segments: HashMap<u32, ChunkBits> = HashMap::new();
        let mut file: Option<File> = None;
        let path = self.content_path(id);
        let mut added = 0u64;
        let mut marked = Vec::new();
        for (index, bytes) in chunks {
            let (offset, len) = m.chunk_range(index)?;
            let key = SegmentKey::of(*id, index);
            let bits = match segments.entry(key.segment) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.load_segment(&key, m.chunk_count())?)
                }
            };
            if bits.get(index) {
                continue;
            }
            if let Some(bytes) = bytes {
                let f = match &mut file {
                    Some(f) => f,
                    None => file.insert(open_for_write(&path)?),
                };
                f.seek(SeekFrom::Start(offset))
                    .and_then(|_| f.write_all(bytes))
                    .map_err(io_err(&path))?;
            }
            bits.set(index, true);
            state.chunks_present = state.chunks_present.saturating_add(1);
            state.bytes_present = state.bytes_present.saturating_add(len);
            added = added.saturating_add(len);
            marked.push(index);
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
        Ok((marked, added))
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
        let put = self.put_chunks(id, index, &[bytes])?;
        match put.rejected {
            Some((_, e)) => Err(e),
            None => Ok(!put.new.is_empty()),
        }
    }

    /// Stores a run of chunks of `id` starting at `start`, as a reply to a
    /// range request brings them: each is verified against the manifest,
    /// and those before the first that fails are written with one file open
    /// and one database commit. The failing chunk and everything after it
    /// are not written; [`PutChunks::rejected`] says which and why.
    pub fn put_chunks(&self, id: &Hash256, start: u64, chunks: &[&[u8]]) -> Result<PutChunks> {
        let m = self.require_manifest(id)?;
        if m.manifest.live {
            return Err(StoreError::Live(*id));
        }
        let mut rejected = None;
        let mut verified = Vec::with_capacity(chunks.len());
        for (i, &bytes) in chunks.iter().enumerate() {
            let index = start.saturating_add(i as u64);
            if let Err(e) = m.verify_chunk(index, bytes) {
                rejected = Some((index, e.into()));
                break;
            }
            verified.push((index, Some(bytes)));
        }
        let (new, new_bytes) = if verified.is_empty() {
            (Vec::new(), 0)
        } else {
            let new = self.write_and_mark(id, &m, verified)?;
            self.evict_except(Some(id))?;
            new
        };
        Ok(PutChunks {
            new,
            new_bytes,
            rejected,
        })
    }

    /// The stored chunks of `id` from `start` on, at most `count`, up to the
    /// first one missing (each re-verified as by [`ContentStore::read_chunk`]);
    /// the access time is updated once. What a peer asking for a range gets.
    pub fn read_chunks(&self, id: &Hash256, start: u64, count: u64) -> Result<Vec<Vec<u8>>> {
        let m = self.require_manifest(id)?;
        let end = start.saturating_add(count).min(m.chunk_count());
        let path = self.content_path(id);
        // One open and sequential reads for the run: a range request's
        // chunks are adjacent in the file.
        let Some(mut file) = open_stored(&path)? else {
            return Ok(Vec::new());
        };
        let stored_end = self.first_missing(id, start..end)?.unwrap_or(end);
        let mut out = Vec::new();
        let mut position = None;
        for index in start..stored_end {
            let (offset, len) = m.chunk_range(index)?;
            if position != Some(offset) {
                file.seek(SeekFrom::Start(offset)).map_err(io_err(&path))?;
            }
            let bytes = read_exactly(&mut file, len).map_err(io_err(&path))?;
            match bytes {
                Some(bytes) if m.verify_chunk(index, &bytes).is_ok() => out.push(bytes),
                _ => {
                    self.unmark_if_bad(id, &m, index)?;
                    break;
                }
            }
            position = Some(offset.saturating_add(len));
        }
        if !out.is_empty() {
            self.touch(id)?;
        }
        Ok(out)
    }

    /// Where the stored chunks of `id` from `start` on (at most `count`, up
    /// to the first one missing) lie in its file, without reading them:
    /// for a sender that hands the file's pages to the socket (`sendfile`)
    /// instead of copying them through memory. Not re-verified: for a
    /// reader that verifies them itself and does not hold a bad one against
    /// this node (the direct data channel's viewer). The file's length is
    /// checked, so a run never reaches past its end. `None` when the first
    /// chunk is not stored.
    pub fn locate_run(&self, id: &Hash256, start: u64, count: u64) -> Result<Option<StoredRun>> {
        let m = self.require_manifest(id)?;
        let end = start.saturating_add(count).min(m.chunk_count());
        let path = self.content_path(id);
        let Some(file) = open_stored(&path)? else {
            return Ok(None);
        };
        let file_len = file.metadata().map_err(io_err(&path))?.len();
        let stored_end = self.first_missing(id, start..end)?.unwrap_or(end);
        let mut lengths = Vec::new();
        let mut run_end = None;
        for index in start..stored_end {
            let (offset, len) = m.chunk_range(index)?;
            if offset.saturating_add(len) > file_len {
                // Marked but not on disk (the file was cut short): the
                // same repair as a read that comes up short.
                self.unmark_if_bad(id, &m, index)?;
                break;
            }
            lengths.push(len);
            run_end = Some(offset.saturating_add(len));
        }
        let Some(run_end) = run_end else {
            return Ok(None);
        };
        self.touch(id)?;
        let (offset, _) = m.chunk_range(start)?;
        Ok(Some(StoredRun {
            file,
            offset,
            len: run_end - offset,
            lengths,
        }))
    }

    /// The first of `chunks` of `id` not stored, if any: whether a read of
    /// them would succeed, without scanning the whole content.
    pub fn first_missing(&self, id: &Hash256, chunks: Range<u64>) -> Result<Option<u64>> {
        // Each segment's bitmap is read once, not once per chunk: a range
        // request's run lies in one or two segments.
        let mut segment: Option<(u32, Option<ChunkBits>)> = None;
        for index in chunks {
            let key = SegmentKey::of(*id, index);
            if segment.as_ref().is_none_or(|(s, _)| *s != key.segment) {
                segment = Some((key.segment, self.db.get::<ChunkMaps>(&key)?));
            }
            let bits = segment.as_ref().and_then(|(_, bits)| bits.as_ref());
            if !bits.is_some_and(|b| b.get(index)) {
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
        file.seek(SeekFrom::Start(offset)).map_err(io_err(&path))?;
        read_exactly(&mut file, len).map_err(io_err(&path))
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
}

/// The content file at `path` for reading; `None` when none was written.
fn open_stored(path: &Path) -> Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
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

/// What [`ContentStore::put_chunks`] did.
#[derive(Debug)]
pub struct PutChunks {
    /// Indices written and marked by this call (not those already present).
    pub new: Vec<u64>,
    /// Their bytes.
    pub new_bytes: u64,
    /// The first chunk that did not verify, and why; nothing from it on was
    /// written.
    pub rejected: Option<(u64, StoreError)>,
}

/// The next `len` bytes of `file` (a chunk, at most `CHUNK_SIZE`), or `None`
/// if it ends first. Read into fresh capacity: nothing is zero-filled first.
/// A run of adjacent stored chunks in their content's file
/// ([`ContentStore::locate_run`]).
#[derive(Debug)]
pub struct StoredRun {
    /// The content's file, open for reading.
    pub file: File,
    /// Where the run's first chunk starts in it.
    pub offset: u64,
    /// Bytes of the run: the sum of `lengths`.
    pub len: u64,
    /// Each chunk's length, in order.
    pub lengths: Vec<u64>,
}

fn read_exactly(file: &mut File, len: u64) -> io::Result<Option<Vec<u8>>> {
    // `len` is a chunk's length, at most `CHUNK_SIZE`, a u32.
    let mut buf = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut buf)?;
    Ok((buf.len() as u64 == len).then_some(buf))
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
