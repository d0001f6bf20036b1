//! Where a [`Trie`](super::Trie)'s nodes live besides the database's
//! bytes: the [`NodeCache`] of decoded nodes (and the trees below its
//! roots), the [`UnwrittenNodes`] that commits made and the chain has not
//! written yet, and [`TableNodes`], a RocksDB table with both in front.

use std::{
    collections::HashMap,
    marker::PhantomData,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use super::{NewNodes, Node, NodeStore, TrieError};

/// Decoded trie nodes by hash, kept across tries and blocks by their
/// owner (the chain). A node's hash names its content, so an entry is
/// never stale: a reorganisation or a new root needs no invalidation.
///
/// A cached node keeps the children it was walked or written through
/// (each stored child holds its node once read, see `Loaded`), and a
/// commit hands the cache its new root with the tree it made: the next
/// block opens the same root with one lookup here and walks its hot
/// paths by pointer, without a lookup, a hash check or a decode per node
/// (those were a quarter of `SLOAD`s and most of a storage commit's
/// loading in `bench erc20`).
///
/// Bounded by the nodes it made reachable since it was last emptied:
/// once that count reaches the capacity it empties, starts a new
/// generation, and a trie opened in an earlier generation commits
/// without handing its tree on (the nodes it read go with it), so no
/// tree outlives two generations.
///
/// Keys are hashes the network chose, so the map keeps a seeded hasher
/// (foldhash's, several times cheaper than SipHash on 32-byte keys).
#[derive(Debug)]
pub struct NodeCache {
    entries: Mutex<CacheEntries>,
    /// Bumped each time the cache empties.
    generation: AtomicU64,
    capacity: usize,
}

#[derive(Debug, Default)]
struct CacheEntries {
    nodes: NodeMap<Arc<Node>>,
    /// Nodes made reachable since the cache last emptied: each read
    /// from the store, and each a commit made under a root handed in.
    counted: usize,
}

type NodeMap<V> = HashMap<[u8; 32], V, foldhash::fast::RandomState>;

/// Nodes a [`NodeCache`] holds by default (a decoded branch is about a
/// kilobyte: tens of megabytes at most).
pub const DEFAULT_CACHED_NODES: usize = 65_536;

impl Default for NodeCache {
    fn default() -> Self {
        NodeCache::with_capacity(DEFAULT_CACHED_NODES)
    }
}

impl NodeCache {
    pub fn with_capacity(capacity: usize) -> Self {
        NodeCache {
            entries: Mutex::default(),
            generation: AtomicU64::new(0),
            capacity: capacity.max(1),
        }
    }

    /// Entries looked up by hash (the nodes below them not counted).
    pub fn len(&self) -> usize {
        self.lock().nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheEntries> {
        // A panic while holding the lock leaves a map of whole entries:
        // still correct to read.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(super) fn get(&self, hash: &[u8; 32]) -> Option<Arc<Node>> {
        self.lock().nodes.get(hash).cloned()
    }

    /// Room for `count` more nodes, emptying the cache (a new
    /// generation) when there is none.
    fn make_room(&self, entries: &mut CacheEntries, count: usize) -> bool {
        if entries.counted.saturating_add(count) <= self.capacity {
            return true;
        }
        *entries = CacheEntries::default();
        self.generation.fetch_add(1, Ordering::AcqRel);
        false
    }

    /// A node read from the store.
    pub(super) fn insert(&self, hash: [u8; 32], node: Arc<Node>) {
        let mut entries = self.lock();
        self.make_room(&mut entries, 1);
        entries.counted += 1;
        entries.nodes.insert(hash, node);
    }

    /// A committed root and the tree below it, in which a trie opened in
    /// `generation` made `made` nodes; refused (and the cache emptied)
    /// when they do not fit.
    pub(super) fn adopt(&self, hash: [u8; 32], node: Arc<Node>, made: usize, generation: u64) {
        let mut entries = self.lock();
        if generation == self.generation() && self.make_room(&mut entries, made) {
            entries.counted += made;
            entries.nodes.insert(hash, node);
        }
    }
}

#[cfg(test)]
impl NodeCache {
    /// Distinct shared nodes the entries reach, themselves included,
    /// through the children they hold: what the bound is about.
    pub(super) fn reachable(&self) -> usize {
        use super::{Child, Loaded};
        let entries = self.lock();
        let mut seen = std::collections::HashSet::new();
        let mut next: Vec<&Node> = entries.nodes.values().map(|n| &**n).collect();
        while let Some(node) = next.pop() {
            if !seen.insert(std::ptr::from_ref(node)) {
                continue;
            }
            let mut children: Vec<&Child> = match node {
                Node::Extension { child, .. } => vec![child],
                Node::Branch { children, .. } => children.iter().collect(),
                _ => Vec::new(),
            };
            while let Some(child) = children.pop() {
                match child {
                    Child::Hash(_, Loaded(loaded)) => next.extend(loaded.get().map(|n| &**n)),
                    // Embedded nodes are part of their parent.
                    Child::Node(embedded) => match &**embedded {
                        Node::Extension { child, .. } => children.push(child),
                        Node::Branch { children: c, .. } => children.extend(c.iter()),
                        _ => {}
                    },
                    Child::Empty => {}
                }
            }
        }
        seen.len()
    }
}

/// Nodes that blocks committed and that are not in the database yet: the
/// chain connects a block with one database write of its coins, receipts
/// and indexes, and keeps the block's new trie nodes here until it
/// flushes its coin cache, when they go to the database in the same batch
/// as the coins and the tip record. After a crash the blocks above the
/// recorded tip are connected again, which recomputes their nodes; so a
/// block's nodes are written once per flush, not once per block (500
/// transfers to fresh addresses make a few thousand nodes). Bounded by
/// the chain, which flushes when [`UnwrittenNodes::bytes`] grows large.
///
/// Each block's nodes are kept as its commit made them, and indexed by
/// hash only when a read first needs them: the next blocks walk the
/// trees the node cache keeps, so reads here are rare, and hashing every
/// node into a map as it arrived was 3 % of a block's connect.
#[derive(Debug, Default)]
pub struct UnwrittenNodes {
    held: Mutex<HeldNodes>,
}

#[derive(Debug, Default)]
struct HeldNodes {
    /// Each commit's nodes, in order.
    batches: Vec<NewNodes>,
    /// Where each node of the first `indexed` batches is: batch,
    /// position.
    index: NodeMap<(usize, usize)>,
    indexed: usize,
    /// Nodes held (a node two commits made counts twice) and their bytes
    /// with their hashes.
    count: usize,
    bytes: usize,
}

impl UnwrittenNodes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HeldNodes> {
        // Whole batches only: still correct after a panic elsewhere.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `nodes` (a commit's, moved in: a block makes thousands)
    /// until [`UnwrittenNodes::written`].
    pub fn hold(&self, nodes: NewNodes) {
        let bytes = nodes.iter().map(|(_, b)| b.len() + 32).sum::<usize>();
        let mut held = self.lock();
        held.count = held.count.saturating_add(nodes.len());
        held.bytes = held.bytes.saturating_add(bytes);
        held.batches.push(nodes);
    }

    fn get(&self, hash: &[u8; 32]) -> Option<Vec<u8>> {
        let mut held = self.lock();
        let held = &mut *held;
        while held.indexed < held.batches.len() {
            let batch = held.indexed;
            for (position, (h, _)) in held.batches[batch].iter().enumerate() {
                held.index.entry(*h).or_insert((batch, position));
            }
            held.indexed += 1;
        }
        let &(batch, position) = held.index.get(hash)?;
        Some(held.batches[batch][position].1.clone())
    }

    /// Bytes held (nodes and their hashes).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Nodes held (one that two commits made counts twice).
    pub fn len(&self) -> usize {
        self.lock().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `write` with every held node (the caller adds them to the
    /// batch it is about to commit; a node two commits made comes twice,
    /// the same bytes under the same key).
    pub fn for_each(&self, mut write: impl FnMut(&[u8; 32], &[u8])) {
        for (hash, bytes) in self.lock().batches.iter().flatten() {
            write(hash, bytes);
        }
    }

    /// Forgets the held nodes: the batch with them was committed.
    pub fn written(&self) {
        *self.lock() = HeldNodes::default();
    }
}

/// A node's bytes as a table value (length-prefixed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBytes(pub Vec<u8>);

/// Longest node: a branch of 16 hashes and a value (values are account
/// records or storage words; anything longer is not a node of ours).
const MAX_NODE_LEN: usize = 16 * 33 + 4096;

impl rusty_shared_types::Encode for NodeBytes {
    fn encode_to(&self, out: &mut Vec<u8>) {
        rusty_shared_types::encoding::write_bytes(out, &self.0);
    }
}

impl rusty_shared_types::Decode for NodeBytes {
    fn decode_from(
        r: &mut rusty_shared_types::encoding::Reader<'_>,
    ) -> rusty_shared_types::encoding::DecodeResult<Self> {
        r.bytes("trie node", MAX_NODE_LEN).map(NodeBytes)
    }
}

/// Nodes in a table of a [`Database`](crate::Database) (a RocksDB column
/// family on a node), keyed by hash.
pub struct TableNodes<'a, T> {
    db: &'a crate::Database,
    cache: Option<&'a NodeCache>,
    unwritten: Option<&'a UnwrittenNodes>,
    _table: PhantomData<T>,
}

impl<T> Clone for TableNodes<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for TableNodes<'_, T> {}

impl<T> std::fmt::Debug for TableNodes<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TableNodes")
    }
}

impl<'a, T> TableNodes<'a, T> {
    pub fn new(db: &'a crate::Database) -> Self {
        TableNodes {
            db,
            cache: None,
            unwritten: None,
            _table: PhantomData,
        }
    }

    /// The table's nodes with `cache` in front.
    pub fn cached(db: &'a crate::Database, cache: &'a NodeCache) -> Self {
        TableNodes {
            cache: Some(cache),
            ..Self::new(db)
        }
    }

    /// These nodes and the `unwritten` ones not in the table yet.
    pub fn with_unwritten(self, unwritten: &'a UnwrittenNodes) -> Self {
        TableNodes {
            unwritten: Some(unwritten),
            ..self
        }
    }
}

impl<T> NodeStore for TableNodes<'_, T>
where
    T: crate::Table<Key = rusty_shared_types::Hash256, Value = NodeBytes>,
{
    fn node(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, TrieError> {
        if let Some(bytes) = self.unwritten.and_then(|u| u.get(hash)) {
            return Ok(Some(bytes));
        }
        self.db
            .get::<T>(&rusty_shared_types::Hash256(*hash))
            .map(|v| v.map(|b| b.0))
            .map_err(|e| TrieError::Store(e.to_string()))
    }

    fn node_cache(&self) -> Option<&NodeCache> {
        self.cache
    }
}
