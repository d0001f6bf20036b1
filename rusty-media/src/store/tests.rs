//! Unit tests of `store`.

use rusty_crypto::SecretKey;
use tempfile::TempDir;

use super::*;
use crate::manifest::{Manifest, ManifestFields, CHUNK_SIZE};

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

/// The bytes a located run covers, as the data channel sends them.
fn read_run(run: crate::store::StoredRun) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = run.file;
    file.seek(SeekFrom::Start(run.offset)).unwrap();
    let mut out = Vec::new();
    file.take(run.len).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn a_located_run_stops_at_a_missing_chunk_and_at_the_files_end() {
    let dir = TempDir::new().unwrap();
    let data = content(4 * CS + 10, 9);
    let m = signed("Runs", &[], &data);
    let store = ContentStore::open(dir.path(), u64::MAX).unwrap();
    let id = store.add_manifest(m, false).unwrap();
    let c = chunks(&data);
    for i in [1, 2, 4] {
        assert!(store.put_chunk(&id, i, c[i as usize]).unwrap());
    }
    assert!(store.locate_run(&id, 0, 5).unwrap().is_none());
    let run = store
        .locate_run(&id, 1, 16)
        .unwrap()
        .expect("chunks 1 and 2");
    assert_eq!(run.lengths, vec![CS as u64; 2]);
    assert_eq!(read_run(run), data[CS..3 * CS]);
    let last = store
        .locate_run(&id, 4, 16)
        .unwrap()
        .expect("the short last chunk");
    assert_eq!((last.offset, last.len), (4 * CS as u64, 10));
    assert_eq!(read_run(last), data[4 * CS..]);

    // A file cut short: the run ends before the chunk it no longer holds,
    // and that chunk is marked missing (as a short read does).
    let path = store.content_path(&id);
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(2 * CS as u64 + 7).unwrap();
    let run = store.locate_run(&id, 1, 16).unwrap().expect("chunk 1");
    assert_eq!(run.lengths, vec![CS as u64]);
    assert_eq!(store.missing_chunks(&id).unwrap(), vec![0, 2, 3]);
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

    // The data channel's read serves what is on disk (its viewer verifies,
    // and a bad chunk there counts against nobody); the checked read stops
    // before the bad chunk and forgets it.
    let run = store.locate_run(&id, 0, 3).unwrap().expect("stored");
    assert_eq!(
        (run.offset, run.len, run.lengths.clone()),
        (0, 3 * CS as u64, vec![CS as u64; 3])
    );
    assert_eq!(read_run(run), bytes);
    assert_eq!(
        store.read_chunks(&id, 0, 3).unwrap(),
        vec![data[..CS].to_vec()]
    );
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
