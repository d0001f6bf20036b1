use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use sha3::{Digest, Keccak256};

use super::*;

/// Ethereum's hash, for the conformance vectors.
pub(crate) struct Keccak;

impl TrieHasher for Keccak {
    fn hash(data: &[u8]) -> [u8; 32] {
        Keccak256::digest(data).into()
    }
}

type MemStore = HashMap<[u8; 32], Vec<u8>>;

/// ethereum/tests TrieTests/hex_encoded_securetrie_test.json `test1`:
/// (address, account RLP) pairs whose secure trie has a known root.
pub(crate) const SECURE_TRIE_TEST1: [(&str, &str); 5] = [
    ("a94f5374fce5edbc8e2a8697c15331677e6ebf0b", "f848018405f446a7a056e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421a0c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
    ("095e7baea6a6c7c4c2dfeb977efac326af552d87", "f8440101a056e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421a004bccc5d94f4d1f99aab44369a910179931772f2a5c001c3229f57831c102769"),
    ("d2571607e241ecf590ed94b12d87c94babe36db6", "f8440180a0ba4b47865c55a341a4a78759bb913cd15c3ee8eaf30a62fa8d1c8863113d84e8a0c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
    ("62c01474f089b07dae603491675dc5b5748f7049", "f8448080a056e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421a0c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
    ("2adc25665018aa1fe0e6bc666dac8fc2697ff9ba", "f8478083019a59a056e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421a0c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
];

fn bytes_of(s: &str) -> Vec<u8> {
    match s.strip_prefix("0x") {
        Some(h) => hex::decode(h).unwrap(),
        None => s.as_bytes().to_vec(),
    }
}

/// ethereum/tests TrieTests/trietest.json: every root matches.
#[test]
fn ethereum_trie_tests_roots_match() {
    let cases: serde_json::Value =
        serde_json::from_str(include_str!("../tests/data/trietest.json")).unwrap();
    let cases = cases.as_object().unwrap();
    assert_eq!(cases.len(), 4);
    for (name, case) in cases {
        let mut trie = Trie::<Keccak, _>::new(MemStore::new());
        for pair in case["in"].as_array().unwrap() {
            let key = bytes_of(pair[0].as_str().unwrap());
            match pair[1].as_str() {
                Some(v) => trie.insert(&key, bytes_of(v)).unwrap(),
                None => trie.remove(&key).unwrap(),
            }
        }
        let want = bytes_of(case["root"].as_str().unwrap());
        assert_eq!(trie.root_hash().to_vec(), want, "{name}");
    }
}

/// ethereum/tests TrieTests/hex_encoded_securetrie_test.json, `test1`
/// (secure keys: each key is hashed first; the values are account RLP).
#[test]
fn ethereum_secure_trie_test_root_matches() {
    let mut trie = Trie::<Keccak, _>::new(MemStore::new());
    for (key, value) in SECURE_TRIE_TEST1 {
        let key = Keccak::hash(&hex::decode(key).unwrap());
        trie.insert(&key, hex::decode(value).unwrap()).unwrap();
    }
    assert_eq!(
        hex::encode(trie.root_hash()),
        "730a444e08ab4b8dee147c9b232fc52d34a223d600031c1e9d25bfc985cbd797"
    );
}

#[test]
fn the_empty_trie_has_the_known_empty_root() {
    let trie = Trie::<Keccak, _>::new(MemStore::new());
    assert_eq!(
        hex::encode(trie.root_hash()),
        "56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
    );
}

/// Committed nodes are enough to read the trie back from its root, and
/// an older root stays readable after later changes.
#[test]
fn a_committed_root_reads_back_and_old_roots_stay() {
    let mut trie = Trie::<Blake3Hasher, _>::new(MemStore::new());
    let mut store = MemStore::new();
    for i in 0u32..200 {
        trie.insert(&i.to_be_bytes(), vec![1; 1 + i as usize % 40])
            .unwrap();
    }
    let (old_root, nodes) = trie.commit();
    store.extend(nodes);
    trie = Trie::at(old_root, store.clone());
    trie.insert(&7u32.to_be_bytes(), b"seven".to_vec()).unwrap();
    trie.remove(&8u32.to_be_bytes()).unwrap();
    let (new_root, nodes) = trie.commit();
    store.extend(nodes);

    let old = Trie::<Blake3Hasher, _>::at(old_root, store.clone());
    let new = Trie::<Blake3Hasher, _>::at(new_root, store);
    assert_eq!(old.get(&7u32.to_be_bytes()).unwrap(), Some(vec![1; 8]));
    assert_eq!(
        new.get(&7u32.to_be_bytes()).unwrap(),
        Some(b"seven".to_vec())
    );
    assert_eq!(old.get(&8u32.to_be_bytes()).unwrap(), Some(vec![1; 9]));
    assert_eq!(new.get(&8u32.to_be_bytes()).unwrap(), None);
    assert_eq!(new.get(&9999u32.to_be_bytes()).unwrap(), None);
}

/// Checks that every node a tree holds for a stored child is the node
/// the store's bytes for its hash decode to.
fn check_kept_tree(child: &Child, store: &MemStore) -> Result<(), TestCaseError> {
    let node = match child {
        Child::Empty => return Ok(()),
        Child::Node(node) => &**node,
        Child::Hash(hash, loaded) => {
            let Some(node) = loaded.0.get() else {
                return Ok(());
            };
            let bytes = store
                .get(hash)
                .ok_or_else(|| TestCaseError::fail("a kept node is not stored"))?;
            prop_assert_eq!(&decode_node(hash, bytes).unwrap(), &**node);
            &**node
        }
    };
    match node {
        Node::Extension { child, .. } => check_kept_tree(child, store),
        Node::Branch { children, .. } => {
            children.iter().try_for_each(|c| check_kept_tree(c, store))
        }
        _ => Ok(()),
    }
}

/// A list closed in place is the list written whole, whatever its
/// header's length (one byte under 56 bytes of payload, up to four over
/// 64 KiB, where the room left for it is too small).
#[test]
fn a_list_closed_in_place_is_the_list_written_whole() {
    for len in [0usize, 1, 55, 56, 255, 256, 65_535, 65_536, 70_000] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut roomy = vec![0; HEADER_ROOM];
        roomy.extend_from_slice(&payload);
        let mut whole = Vec::new();
        rlp::write_list_header(len, &mut whole);
        whole.extend_from_slice(&payload);
        assert_eq!(close_list(roomy), whole, "payload of {len}");
    }
}

/// A store whose nodes can be taken away, with a node cache in front.
struct CachedStore {
    nodes: std::sync::Mutex<MemStore>,
    cache: NodeCache,
}

impl NodeStore for CachedStore {
    fn node(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, TrieError> {
        Ok(self.nodes.lock().unwrap().get(hash).cloned())
    }

    fn node_cache(&self) -> Option<&NodeCache> {
        Some(&self.cache)
    }
}

/// Reads through a node cache answer as the store would, are served from
/// the cache once it holds the path (the store emptied), and the cache
/// keeps to its bound.
#[test]
fn a_node_cache_serves_reads_and_keeps_its_bound() {
    let mut trie = Trie::<Blake3Hasher, _>::new(MemStore::new());
    for i in 0u32..300 {
        trie.insert(&i.to_be_bytes(), vec![2; 33]).unwrap();
    }
    let (root, nodes) = trie.commit();
    let all: MemStore = nodes.into_iter().collect();
    let store = CachedStore {
        nodes: std::sync::Mutex::new(all.clone()),
        cache: NodeCache::with_capacity(10_000),
    };
    let cached = Trie::<Blake3Hasher, _>::at(root, &store);
    for i in 0u32..300 {
        assert_eq!(cached.get(&i.to_be_bytes()).unwrap(), Some(vec![2; 33]));
    }
    assert!(!store.cache.is_empty());
    store.nodes.lock().unwrap().clear();
    for i in 0u32..300 {
        assert_eq!(cached.get(&i.to_be_bytes()).unwrap(), Some(vec![2; 33]));
    }
    assert_eq!(cached.get(&1000u32.to_be_bytes()).unwrap(), None);

    // A small cache: evictions, and reads fall back to the store.
    let small = CachedStore {
        nodes: std::sync::Mutex::new(all),
        cache: NodeCache::with_capacity(8),
    };
    let trie = Trie::<Blake3Hasher, _>::at(root, &small);
    for i in 0u32..300 {
        assert_eq!(trie.get(&i.to_be_bytes()).unwrap(), Some(vec![2; 33]));
        assert!(small.cache.len() <= 8);
    }
}

/// A missing or altered node is an error, never a wrong answer.
#[test]
fn missing_and_corrupt_nodes_are_errors() {
    let mut trie = Trie::<Blake3Hasher, _>::new(MemStore::new());
    for i in 0u32..50 {
        trie.insert(&i.to_be_bytes(), vec![2; 40]).unwrap();
    }
    let (root, nodes) = trie.commit();
    let store: MemStore = nodes.into_iter().collect();
    let missing = Trie::<Blake3Hasher, _>::at(root, MemStore::new());
    assert_eq!(
        missing.get(&1u32.to_be_bytes()),
        Err(TrieError::MissingNode(root))
    );
    let mut altered = store.clone();
    altered.get_mut(&root).unwrap()[3] ^= 1;
    let corrupt = Trie::<Blake3Hasher, _>::at(root, altered);
    assert!(matches!(
        corrupt.get(&1u32.to_be_bytes()),
        Err(TrieError::Corrupt(..))
    ));
    // Bytes that hash right but are not a node.
    let junk = vec![0xc3, 0x80, 0x80, 0x80];
    let junk_hash = Blake3Hasher::hash(&junk);
    let junk_store: MemStore = [(junk_hash, junk)].into_iter().collect();
    let bad = Trie::<Blake3Hasher, _>::at(junk_hash, junk_store);
    assert!(matches!(bad.get(b"x"), Err(TrieError::Corrupt(..))));
}

crate::tables! {
    const TABLES;
    table Nodes: rusty_shared_types::Hash256 => NodeBytes = "trie_nodes";
}

/// A RocksDB database with the node table in `dir`.
fn node_db(dir: &std::path::Path) -> crate::Database {
    crate::Database::open_rocksdb(dir, TABLES, 1, crate::RocksOptions::default()).unwrap()
}

/// On RocksDB: the nodes of a commit go in one batch with everything
/// else; after reopening the database the root reads back.
#[test]
fn nodes_in_a_rocksdb_table_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let root = {
        let db = node_db(dir.path());
        let mut trie = Trie::<Blake3Hasher, _>::new(TableNodes::<Nodes>::new(&db));
        for i in 0u32..100 {
            trie.insert(&i.to_le_bytes(), i.to_be_bytes().to_vec())
                .unwrap();
        }
        let (root, nodes) = trie.commit();
        let mut batch = db.batch();
        for (hash, node) in nodes {
            batch.put::<Nodes>(&rusty_shared_types::Hash256(hash), &NodeBytes(node));
        }
        db.commit(batch).unwrap();
        root
    };
    let db = node_db(dir.path());
    let trie = Trie::<Blake3Hasher, _>::at(root, TableNodes::<Nodes>::new(&db));
    for i in 0u32..100 {
        assert_eq!(
            trie.get(&i.to_le_bytes()).unwrap(),
            Some(i.to_be_bytes().to_vec())
        );
    }
}

/// Nodes a commit made and the chain holds (not in the table yet) are
/// read, changed and committed on like stored ones, through the cache or
/// not, and the same changes give the same roots as in memory; once the
/// held nodes are written and forgotten, the table serves them.
#[test]
fn held_nodes_serve_reads_and_later_commits_until_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = node_db(dir.path());
    let held = UnwrittenNodes::default();
    let cache = NodeCache::default();
    let mut mem = Trie::<Blake3Hasher, _>::new(MemStore::new());
    let mut root = Trie::<Blake3Hasher, TableNodes<'_, Nodes>>::empty_root();
    for round in 0u32..3 {
        let store = TableNodes::<Nodes>::cached(&db, &cache).with_unwritten(&held);
        let mut trie = Trie::<Blake3Hasher, _>::at(root, store);
        for i in 0u32..200 {
            let value = (i * 7 + round).to_be_bytes().to_vec();
            trie.insert(&i.to_le_bytes(), value.clone()).unwrap();
            mem.insert(&i.to_le_bytes(), value).unwrap();
        }
        let (new_root, nodes) = trie.commit();
        let (mem_root, mem_nodes) = mem.commit();
        assert_eq!(new_root, mem_root, "round {round}");
        mem.store.extend(mem_nodes);
        held.hold(nodes);
        root = new_root;
        // Read back without the cache: every load comes from the held set.
        let uncached = TableNodes::<Nodes>::new(&db).with_unwritten(&held);
        let trie = Trie::<Blake3Hasher, _>::at(root, uncached);
        for i in (0u32..200).step_by(13) {
            assert_eq!(
                trie.get(&i.to_le_bytes()).unwrap(),
                Some((i * 7 + round).to_be_bytes().to_vec())
            );
        }
    }
    let mut batch = db.batch();
    held.for_each(|hash, bytes| {
        batch.put::<Nodes>(
            &rusty_shared_types::Hash256(*hash),
            &NodeBytes(bytes.to_vec()),
        );
    });
    db.commit(batch).unwrap();
    held.written();
    let trie =
        Trie::<Blake3Hasher, _>::at(root, TableNodes::<Nodes>::new(&db).with_unwritten(&held));
    assert_eq!(
        trie.get(&5u32.to_le_bytes()).unwrap(),
        Some(37u32.to_be_bytes().to_vec())
    );
    // Nothing held any more, and nothing in the table under a made-up name.
    let missing =
        Trie::<Blake3Hasher, _>::at([7; 32], TableNodes::<Nodes>::new(&db).with_unwritten(&held));
    assert!(matches!(missing.get(b"x"), Err(TrieError::MissingNode(_))));
}

fn ops() -> impl Strategy<Value = Vec<(Vec<u8>, Option<Vec<u8>>)>> {
    // Short keys from a small alphabet, so paths share prefixes and
    // every node shape (and every collapse on removal) turns up.
    let key = proptest::collection::vec(0u8..4, 0..5);
    let value = proptest::option::of(proptest::collection::vec(any::<u8>(), 1..40));
    proptest::collection::vec((key, value), 1..60)
}

proptest! {
    /// Any sequence of inserts and removes reads like a map, and its root
    /// is the root of the same map built fresh in sorted order (so the
    /// root depends on the contents alone).
    #[test]
    fn the_trie_is_a_map_and_its_root_depends_on_contents_only(ops in ops()) {
        let mut trie = Trie::<Keccak, _>::new(MemStore::new());
        let mut model = BTreeMap::new();
        for (key, value) in &ops {
            match value {
                Some(v) => {
                    trie.insert(key, v.clone()).unwrap();
                    model.insert(key.clone(), v.clone());
                }
                None => {
                    trie.remove(key).unwrap();
                    model.remove(key);
                }
            }
        }
        for (key, _) in &ops {
            prop_assert_eq!(trie.get(key).unwrap(), model.get(key.as_slice()).cloned());
        }
        let mut fresh = Trie::<Keccak, _>::new(MemStore::new());
        for (k, v) in &model {
            fresh.insert(k, v.clone()).unwrap();
        }
        prop_assert_eq!(trie.root_hash(), fresh.root_hash());
        // And through the store: commit, reopen, read.
        let (root, nodes) = trie.commit();
        let reopened = Trie::<Keccak, _>::at(root, nodes.into_iter().collect::<MemStore>());
        for (k, v) in &model {
            prop_assert_eq!(reopened.get(k).unwrap(), Some(v.clone()));
        }
    }

    /// A proof from a committed trie shows each key's value, and each
    /// absent key's absence; a proof missing a node or with an altered
    /// byte is an error, never another answer.
    #[test]
    fn proofs_verify_and_tampered_proofs_fail(ops in ops(), probe in proptest::collection::vec(0u8..4, 0..5), flip in any::<usize>()) {
        let mut trie = Trie::<Keccak, _>::new(MemStore::new());
        for (key, value) in &ops {
            match value {
                Some(v) => trie.insert(key, v.clone()).unwrap(),
                None => trie.remove(key).unwrap(),
            }
        }
        prop_assert_eq!(trie.proof(b"x"), if trie.root_hash() == Trie::<Keccak, MemStore>::empty_root() { Ok(vec![]) } else { Err(TrieError::Uncommitted) });
        let (root, nodes) = trie.commit();
        let trie = Trie::<Keccak, _>::at(root, nodes.into_iter().collect::<MemStore>());
        for key in ops.iter().map(|(k, _)| k).chain([&probe]) {
            let proof = trie.proof(key).unwrap();
            prop_assert_eq!(verify_proof::<Keccak>(root, key, &proof).unwrap(), trie.get(key).unwrap());
        }
        let proof = trie.proof(&probe).unwrap();
        if !proof.is_empty() {
            let mut dropped = proof.clone();
            dropped.remove(flip % proof.len());
            prop_assert!(verify_proof::<Keccak>(root, &probe, &dropped).is_err());
            let mut altered = proof.clone();
            let node = &mut altered[flip % proof.len()];
            let at = (flip / 7) % node.len();
            node[at] ^= 1;
            prop_assert!(verify_proof::<Keccak>(root, &probe, &altered).is_err());
        }
    }

    /// A batch gives the root and the nodes that inserting its entries
    /// one by one gives: above the size that splits it over two threads
    /// and below, with removals (which keep it on one thread) or not, on a
    /// trie whose root is a branch, a leaf or nothing.
    #[test]
    fn a_batch_commits_as_its_inserts_do(
        before in proptest::collection::btree_map(any::<[u8; 32]>(), 1u8..=255, 0..64),
        batch in proptest::collection::btree_map(any::<[u8; 32]>(), 0u8..=255, 0..300),
    ) {
        let mut base = Trie::<Blake3Hasher, _>::new(MemStore::new());
        for (k, v) in &before {
            base.insert(k, vec![*v; 40]).unwrap();
        }
        let (root, nodes) = base.commit();
        let store: MemStore = nodes.into_iter().collect();
        let entries: Vec<(Vec<u8>, Vec<u8>)> = batch
            .iter()
            .map(|(k, v)| (k.to_vec(), if *v == 0 { Vec::new() } else { vec![*v; 40] }))
            .collect();
        let mut one_by_one = Trie::<Blake3Hasher, _>::at(root, &store);
        for (k, v) in &entries {
            one_by_one.insert(k, v.clone()).unwrap();
        }
        let (want_root, want_nodes) = one_by_one.commit();
        let mut batched = Trie::<Blake3Hasher, _>::at(root, &store);
        let (got_root, got_nodes) = batched.commit_batch(entries).unwrap();
        prop_assert_eq!(got_root, want_root);
        let got: HashMap<_, _> = got_nodes.into_iter().collect();
        let want: HashMap<_, _> = want_nodes.into_iter().collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(batched.root_hash(), want_root);
    }

    /// The trees commits hand to the node cache (and reads fill in) are
    /// the nodes the store's bytes decode to, block after block: with the
    /// cache large, and so small that it empties (a new generation) in
    /// the middle of nearly every block; a trie reopened at each root
    /// reads as a map, as does one over the store alone; and the nodes
    /// the cache's entries reach stay within its capacity.
    #[test]
    fn kept_trees_are_the_stored_nodes_across_commits(
        blocks in proptest::collection::vec(
            (proptest::collection::btree_map(any::<[u8; 4]>(), 0u8..=3, 0..200), any::<bool>()),
            1..6,
        ),
        capacity in prop_oneof![Just(4usize), Just(64), Just(100_000)],
    ) {
        let store = CachedStore {
            nodes: std::sync::Mutex::new(MemStore::new()),
            cache: NodeCache::with_capacity(capacity),
        };
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut root = Trie::<Blake3Hasher, &CachedStore>::empty_root();
        for (writes, batched) in &blocks {
            let mut trie = Trie::<Blake3Hasher, _>::at(root, &store);
            // Reads first, as a block's transactions read before the
            // commit writes: of the keys written, and of every key
            // already there (so the tree holds paths the block does not
            // change, read before the cache empties).
            for key in writes.keys() {
                prop_assert_eq!(trie.get(key).unwrap(), model.get(key.as_slice()).cloned());
            }
            for (key, value) in &model {
                prop_assert_eq!(trie.get(key).unwrap(), Some(value.clone()));
            }
            let entries: Vec<(Vec<u8>, Vec<u8>)> = writes
                .iter()
                .map(|(k, v)| (k.to_vec(), vec![*v; usize::from(*v) * 20]))
                .collect();
            for (k, v) in &entries {
                if v.is_empty() {
                    model.remove(k);
                } else {
                    model.insert(k.clone(), v.clone());
                }
            }
            let (new_root, nodes) = if *batched {
                trie.commit_batch(entries).unwrap()
            } else {
                for (k, v) in entries {
                    trie.insert(&k, v).unwrap();
                }
                trie.commit()
            };
            store.nodes.lock().unwrap().extend(nodes);
            root = new_root;
            prop_assert!(store.cache.len() <= capacity);
            // The bound is on memory: what the entries reach through the
            // trees they keep, not only the entries.
            prop_assert!(store.cache.reachable() <= capacity);
            let nodes = store.nodes.lock().unwrap().clone();
            check_kept_tree(&trie.root, &nodes)?;
            let reopened = Trie::<Blake3Hasher, _>::at(root, &store);
            let uncached = Trie::<Blake3Hasher, _>::at(root, &nodes);
            for (k, v) in &model {
                prop_assert_eq!(reopened.get(k).unwrap(), Some(v.clone()));
                prop_assert_eq!(uncached.get(k).unwrap(), Some(v.clone()));
            }
            check_kept_tree(&reopened.root, &nodes)?;
        }
    }

    /// Node decoding takes untrusted bytes (proofs): it never panics.
    #[test]
    fn decoding_arbitrary_node_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_node(&[0; 32], &bytes);
    }
}
