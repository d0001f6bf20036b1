//! A hexary Merkle Patricia Trie in Ethereum's layout (leaf, extension
//! and branch nodes in RLP, hex-prefix paths, nodes under 32 bytes
//! embedded in their parent, the root always hashed), generic over the
//! hash: BLAKE3 on the chain, Keccak-256 in the tests, where the
//! ethereum/tests TrieTests roots must come out.
//!
//! Nodes are kept by hash in a [`NodeStore`] and never changed, so an old
//! root stays readable and a reorg is a switch of root. A [`Trie`] loads
//! the nodes it walks, changes them in memory, and [`Trie::commit`] hands
//! back the new root and the new nodes, for the caller to store. A stored
//! child keeps its node once read or made (`Loaded`). A store may carry
//! a [`NodeCache`] of decoded nodes, which keeps the roots commits make
//! with the trees below them, so the next trie opened at such a root
//! walks by pointer, without the database, a hash check or a decode; and
//! [`UnwrittenNodes`], nodes committed but not yet written (the chain
//! writes them when it flushes its coin cache). (Pruning old nodes is not
//! built.)

use std::{
    collections::HashMap,
    marker::PhantomData,
    sync::{Arc, OnceLock},
};

use rusty_shared_types::rlp::{self, Kind, Rlp, RlpError};
use thiserror::Error;

#[path = "trie_store.rs"]
mod store;

pub use store::{NodeBytes, NodeCache, TableNodes, UnwrittenNodes, DEFAULT_CACHED_NODES};

/// The trie's hash function.
pub trait TrieHasher {
    fn hash(data: &[u8]) -> [u8; 32];
}

/// The chain's trie hash.
#[derive(Debug, Clone, Copy, Default)]
pub struct Blake3Hasher;

impl TrieHasher for Blake3Hasher {
    fn hash(data: &[u8]) -> [u8; 32] {
        *blake3::hash(data).as_bytes()
    }
}

/// Where nodes are kept, by hash.
pub trait NodeStore {
    fn node(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, TrieError>;

    /// Decoded nodes kept in front of the store, if any.
    fn node_cache(&self) -> Option<&NodeCache> {
        None
    }
}

/// A store shared by reference (the account trie and the storage tries
/// read the same nodes).
impl<T: NodeStore + ?Sized> NodeStore for &T {
    fn node(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, TrieError> {
        (**self).node(hash)
    }

    fn node_cache(&self) -> Option<&NodeCache> {
        (**self).node_cache()
    }
}

/// In memory, for tests and for proofs.
impl NodeStore for HashMap<[u8; 32], Vec<u8>> {
    fn node(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, TrieError> {
        Ok(self.get(hash).cloned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TrieError {
    #[error("trie node {} is missing", hex::encode(.0))]
    MissingNode([u8; 32]),
    #[error("trie node {hash}: {why}", hash = hex::encode(.0), why = .1)]
    Corrupt([u8; 32], String),
    #[error("trie store: {0}")]
    Store(String),
    #[error("the trie has uncommitted changes: commit before proving")]
    Uncommitted,
}

/// A child reference: nothing, a node in the store (and the node, once
/// read or made), or a node in memory not committed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Child {
    Empty,
    Hash([u8; 32], Loaded),
    Node(Box<Node>),
}

impl Child {
    fn stored(hash: [u8; 32]) -> Child {
        Child::Hash(hash, Loaded::default())
    }
}

/// The node a stored child names, once a walk read it or a commit made
/// it: shared by every tree that has the child (the node cache's, the
/// next block's), so a later walk follows the pointer. It is always the
/// node its hash names (read nodes are checked against it, made ones
/// hashed from it), so it never goes stale, and equality ignores it.
#[derive(Clone, Default)]
struct Loaded(OnceLock<Arc<Node>>);

impl Loaded {
    fn with(node: Arc<Node>) -> Loaded {
        Loaded(OnceLock::from(node))
    }
}

impl PartialEq for Loaded {
    fn eq(&self, _: &Loaded) -> bool {
        true
    }
}

impl Eq for Loaded {}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "loaded"
        } else {
            "not loaded"
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Empty,
    /// `path`: the rest of the key, in nibbles.
    Leaf {
        path: Vec<u8>,
        value: Vec<u8>,
    },
    Extension {
        path: Vec<u8>,
        child: Child,
    },
    Branch {
        children: Box<[Child; 16]>,
        value: Option<Vec<u8>>,
    },
}

fn nibbles(key: &[u8]) -> Vec<u8> {
    nibbles_of(key).collect()
}

/// A key's nibbles, high first.
fn nibbles_of(key: &[u8]) -> impl Iterator<Item = u8> + '_ {
    key.iter().flat_map(|b| [b >> 4, b & 0x0f])
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Hex-prefix encoding of a path (flag nibble: 2 for a leaf, +1 if odd).
fn hex_prefix(path: &[u8], leaf: bool) -> Vec<u8> {
    let flag = if leaf { 2 } else { 0 } + (path.len() % 2) as u8;
    let mut out = Vec::with_capacity(path.len() / 2 + 1);
    let rest = if path.len() % 2 == 1 {
        out.push((flag << 4) | path[0]);
        &path[1..]
    } else {
        out.push(flag << 4);
        path
    };
    out.extend(rest.chunks(2).map(|p| (p[0] << 4) | p[1]));
    out
}

/// A hex-prefixed path and whether it ends in a leaf; strict (an even
/// path's padding nibble must be 0).
fn decode_hex_prefix(bytes: &[u8]) -> Option<(Vec<u8>, bool)> {
    let first = *bytes.first()?;
    let (flag, low) = (first >> 4, first & 0x0f);
    if flag > 3 || (flag % 2 == 0 && low != 0) {
        return None;
    }
    let mut path = Vec::with_capacity(bytes.len() * 2);
    if flag % 2 == 1 {
        path.push(low);
    }
    path.extend(nibbles(&bytes[1..]));
    Some((path, flag >= 2))
}

fn empty_children() -> Box<[Child; 16]> {
    Box::new(std::array::from_fn(|_| Child::Empty))
}

/// A node from its RLP (`hash` names it in errors).
fn decode_node(hash: &[u8; 32], bytes: &[u8]) -> Result<Node, TrieError> {
    let corrupt = |why: &str| TrieError::Corrupt(*hash, why.to_string());
    let item = rlp::decode(bytes).map_err(|e: RlpError| corrupt(&e.to_string()))?;
    node_of(hash, &item, 0)
}

/// How deep embedded nodes may nest (each embeds at most 31 bytes, so a
/// real trie never goes past a handful).
const MAX_EMBED_DEPTH: usize = 8;

fn node_of(hash: &[u8; 32], item: &Rlp<'_>, depth: usize) -> Result<Node, TrieError> {
    let corrupt = |why: &str| TrieError::Corrupt(*hash, why.to_string());
    let items = item.list().map_err(|e| corrupt(&e.to_string()))?;
    let child_of = |it: &Rlp<'_>| -> Result<Child, TrieError> {
        match &it.kind {
            Kind::Bytes([]) => Ok(Child::Empty),
            Kind::Bytes(b) if b.len() == 32 => {
                let mut h = [0u8; 32];
                h.copy_from_slice(b);
                Ok(Child::stored(h))
            }
            Kind::List(_) if it.raw.len() < 32 && depth < MAX_EMBED_DEPTH => {
                Ok(Child::Node(Box::new(node_of(hash, it, depth + 1)?)))
            }
            _ => Err(corrupt("a child that is neither a hash nor a small node")),
        }
    };
    match items.len() {
        17 => {
            let mut children = empty_children();
            for (slot, it) in children.iter_mut().zip(&items[..16]) {
                *slot = child_of(it)?;
            }
            let value = items[16].bytes().map_err(|e| corrupt(&e.to_string()))?;
            Ok(Node::Branch {
                children,
                value: (!value.is_empty()).then(|| value.to_vec()),
            })
        }
        2 => {
            let encoded = items[0].bytes().map_err(|e| corrupt(&e.to_string()))?;
            let (path, leaf) = decode_hex_prefix(encoded).ok_or_else(|| corrupt("a bad path"))?;
            if leaf {
                let value = items[1].bytes().map_err(|e| corrupt(&e.to_string()))?;
                Ok(Node::Leaf {
                    path,
                    value: value.to_vec(),
                })
            } else {
                match child_of(&items[1])? {
                    Child::Empty => Err(corrupt("an extension to nothing")),
                    child if !path.is_empty() => Ok(Node::Extension { path, child }),
                    _ => Err(corrupt("an extension with an empty path")),
                }
            }
        }
        _ => Err(corrupt("a list of neither 2 nor 17 items")),
    }
}

/// Insertions a [`Trie::commit_batch`] needs before it splits the work
/// over two threads (below, a thread costs more than it saves).
const PARALLEL_BATCH: usize = 128;

/// The cores this process may use, read once (`available_parallelism`
/// reads cgroup files on every call).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Room [`Trie::encode`] leaves before a node's payload for its list
/// header: enough for a payload under 64 KiB (every node of the chain's).
const HEADER_ROOM: usize = 3;

/// A list's RLP from `encoded`: [`HEADER_ROOM`] bytes, then the payload.
fn close_list(mut encoded: Vec<u8>) -> Vec<u8> {
    let end = encoded.len();
    rlp::write_list_header(end - HEADER_ROOM, &mut encoded);
    let header_len = encoded.len() - end;
    match HEADER_ROOM.checked_sub(header_len) {
        Some(spare) => {
            encoded.copy_within(end.., spare);
            encoded.truncate(end);
            encoded.drain(..spare);
        }
        None => {
            let header = encoded.split_off(end);
            encoded.splice(..HEADER_ROOM, header);
        }
    }
    encoded
}

/// Nodes made by a change, by hash: what [`Trie::commit`] hands back.
pub type NewNodes = Vec<([u8; 32], Vec<u8>)>;

/// A trie over `S`, hashed with `H`.
#[derive(Debug, Clone)]
pub struct Trie<H, S> {
    root: Child,
    store: S,
    /// The store's cache generation when the trie was opened: a commit
    /// hands its tree to the cache only within the same one.
    generation: u64,
    _hasher: PhantomData<H>,
}

impl<H: TrieHasher, S: NodeStore> Trie<H, S> {
    /// The root of the empty trie: the hash of the empty string's RLP.
    pub fn empty_root() -> [u8; 32] {
        H::hash(&[0x80])
    }

    pub fn new(store: S) -> Self {
        Self::with_root(Child::Empty, store)
    }

    fn with_root(root: Child, store: S) -> Self {
        let generation = store.node_cache().map_or(0, NodeCache::generation);
        Trie {
            root,
            store,
            generation,
            _hasher: PhantomData,
        }
    }

    /// The trie whose root is `root`, its nodes in `store`.
    pub fn at(root: [u8; 32], store: S) -> Self {
        let root = if root == Self::empty_root() {
            Child::Empty
        } else {
            Child::stored(root)
        };
        Self::with_root(root, store)
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The stored node `h`, through the cache: shared, for reading.
    fn load_stored(&self, h: &[u8; 32]) -> Result<Arc<Node>, TrieError> {
        let cache = self.store.node_cache();
        if let Some(node) = cache.and_then(|c| c.get(h)) {
            return Ok(node);
        }
        let bytes = self.store.node(h)?.ok_or(TrieError::MissingNode(*h))?;
        if H::hash(&bytes) != *h {
            return Err(TrieError::Corrupt(*h, "its bytes hash to another".into()));
        }
        let node = Arc::new(decode_node(h, &bytes)?);
        if let Some(cache) = cache {
            cache.insert(*h, Arc::clone(&node));
        }
        Ok(node)
    }

    /// The node a stored child names: the one it holds, or read (through
    /// the cache) and kept in the child for later walks.
    fn resolve<'c>(&self, hash: &[u8; 32], loaded: &'c Loaded) -> Result<&'c Node, TrieError> {
        if let Some(node) = loaded.0.get() {
            return Ok(node);
        }
        let node = self.load_stored(hash)?;
        Ok(loaded.0.get_or_init(|| node))
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TrieError> {
        // The chain's keys are hashes: their path fits on the stack, and
        // an `SLOAD` allocates nothing for it.
        let mut on_stack = [0u8; 64];
        if let Some(path) = on_stack.get_mut(..key.len() * 2) {
            for (slot, nibble) in path.iter_mut().zip(nibbles_of(key)) {
                *slot = nibble;
            }
            return self.get_below(&self.root, path);
        }
        self.get_below(&self.root, &nibbles(key))
    }

    /// The value at `path` below `child`. Nodes in memory (not committed
    /// yet) are walked by reference, never copied: a block's reads would
    /// otherwise copy the subtrees its writes built.
    fn get_below(&self, child: &Child, path: &[u8]) -> Result<Option<Vec<u8>>, TrieError> {
        match child {
            Child::Empty => Ok(None),
            Child::Node(node) => self.get_in(node, path),
            Child::Hash(h, loaded) => self.get_in(self.resolve(h, loaded)?, path),
        }
    }

    fn get_in(&self, node: &Node, path: &[u8]) -> Result<Option<Vec<u8>>, TrieError> {
        match node {
            Node::Empty => Ok(None),
            Node::Leaf { path: p, value } => Ok((p[..] == *path).then(|| value.clone())),
            Node::Extension { path: p, child } => match path.strip_prefix(&p[..]) {
                Some(rest) => self.get_below(child, rest),
                None => Ok(None),
            },
            Node::Branch { children, value } => match path.split_first() {
                None => Ok(value.clone()),
                Some((&i, rest)) => self.get_below(&children[usize::from(i)], rest),
            },
        }
    }

    /// The nodes on `key`'s path, root first (EIP-1186's `proof`): enough
    /// to show the key's value, or its absence, against the root. The
    /// trie must be committed.
    pub fn proof(&self, key: &[u8]) -> Result<Vec<Vec<u8>>, TrieError> {
        let mut proof = Vec::new();
        let mut next = match &self.root {
            Child::Empty => return Ok(proof),
            Child::Hash(h, _) => *h,
            Child::Node(_) => return Err(TrieError::Uncommitted),
        };
        let path = nibbles(key);
        let mut at = 0;
        loop {
            let bytes = self
                .store
                .node(&next)?
                .ok_or(TrieError::MissingNode(next))?;
            let mut node = decode_node(&next, &bytes)?;
            proof.push(bytes);
            // Walk the embedded nodes inside this one; stop at the next
            // hashed child (or the end of the path).
            loop {
                let child = match node {
                    Node::Extension { path: p, child } if path[at..].starts_with(&p) => {
                        at += p.len();
                        child
                    }
                    Node::Branch { children, .. } if at < path.len() => {
                        let i = usize::from(path[at]);
                        at += 1;
                        children[i].clone()
                    }
                    _ => return Ok(proof),
                };
                match child {
                    Child::Hash(h, _) => {
                        next = h;
                        break;
                    }
                    Child::Node(n) => node = *n,
                    Child::Empty => return Ok(proof),
                }
            }
        }
    }

    /// Sets `key` to `value`; an empty value removes the key (as in
    /// Ethereum, where a zero slot is no slot).
    pub fn insert(&mut self, key: &[u8], value: Vec<u8>) -> Result<(), TrieError> {
        if value.is_empty() {
            return self.remove(key);
        }
        let root = std::mem::replace(&mut self.root, Child::Empty);
        let root = self.take(root)?;
        let node = self.insert_at(root, &nibbles(key), value)?;
        self.root = Child::Node(Box::new(node));
        Ok(())
    }

    /// A child as an owned node: moved out of memory, or the stored node
    /// (copied when shared: its children stay shared). Changes move the
    /// nodes on their path instead of copying the subtrees below them;
    /// after an error (a missing or corrupt stored node) the trie is
    /// incomplete and must be dropped.
    fn take(&self, child: Child) -> Result<Node, TrieError> {
        match child {
            Child::Empty => Ok(Node::Empty),
            Child::Node(n) => Ok(*n),
            Child::Hash(h, loaded) => Ok(Arc::unwrap_or_clone(match loaded.0.into_inner() {
                Some(node) => node,
                None => self.load_stored(&h)?,
            })),
        }
    }

    fn insert_at(&self, node: Node, path: &[u8], value: Vec<u8>) -> Result<Node, TrieError> {
        Ok(match node {
            Node::Empty => Node::Leaf {
                path: path.to_vec(),
                value,
            },
            Node::Leaf { path: lp, .. } if lp == path => Node::Leaf { path: lp, value },
            Node::Leaf {
                path: lp,
                value: lv,
            } => {
                let c = common_prefix(&lp, path);
                let mut children = empty_children();
                let mut branch_value = None;
                for (p, v) in [(lp, lv), (path.to_vec(), value)] {
                    match p.get(c) {
                        None => branch_value = Some(v),
                        Some(&i) => {
                            children[usize::from(i)] = Child::Node(Box::new(Node::Leaf {
                                path: p[c + 1..].to_vec(),
                                value: v,
                            }))
                        }
                    }
                }
                let branch = Node::Branch {
                    children,
                    value: branch_value,
                };
                extend(&path[..c], branch)
            }
            Node::Extension { path: ep, child } => {
                let c = common_prefix(&ep, path);
                if c == ep.len() {
                    let below = self.insert_at(self.take(child)?, &path[c..], value)?;
                    return Ok(Node::Extension {
                        path: ep,
                        child: Child::Node(Box::new(below)),
                    });
                }
                let mut children = empty_children();
                // What the extension led to, under its next nibble.
                children[usize::from(ep[c])] = if ep.len() > c + 1 {
                    Child::Node(Box::new(Node::Extension {
                        path: ep[c + 1..].to_vec(),
                        child,
                    }))
                } else {
                    child
                };
                let mut branch_value = None;
                match path.get(c) {
                    None => branch_value = Some(value),
                    Some(&i) => {
                        children[usize::from(i)] = Child::Node(Box::new(Node::Leaf {
                            path: path[c + 1..].to_vec(),
                            value,
                        }))
                    }
                }
                let branch = Node::Branch {
                    children,
                    value: branch_value,
                };
                extend(&path[..c], branch)
            }
            Node::Branch {
                mut children,
                value: bv,
            } => match path.first() {
                None => Node::Branch {
                    children,
                    value: Some(value),
                },
                Some(&i) => {
                    let slot = &mut children[usize::from(i)];
                    let below = self.insert_at(
                        self.take(std::mem::replace(slot, Child::Empty))?,
                        &path[1..],
                        value,
                    )?;
                    *slot = Child::Node(Box::new(below));
                    Node::Branch {
                        children,
                        value: bv,
                    }
                }
            },
        })
    }

    pub fn remove(&mut self, key: &[u8]) -> Result<(), TrieError> {
        let root = std::mem::replace(&mut self.root, Child::Empty);
        let root = self.take(root)?;
        self.root = match self.remove_at(root, &nibbles(key))? {
            Node::Empty => Child::Empty,
            node => Child::Node(Box::new(node)),
        };
        Ok(())
    }

    fn remove_at(&self, node: Node, path: &[u8]) -> Result<Node, TrieError> {
        Ok(match node {
            Node::Empty => Node::Empty,
            Node::Leaf { path: lp, .. } if lp == path => Node::Empty,
            leaf @ Node::Leaf { .. } => leaf,
            Node::Extension { path: ep, child } => {
                if !path.starts_with(&ep) {
                    return Ok(Node::Extension { path: ep, child });
                }
                let below = self.remove_at(self.take(child)?, &path[ep.len()..])?;
                prefix(&ep, below)
            }
            Node::Branch {
                mut children,
                mut value,
            } => {
                match path.first() {
                    None => value = None,
                    Some(&i) => {
                        let slot = &mut children[usize::from(i)];
                        let below = self.take(std::mem::replace(slot, Child::Empty))?;
                        *slot = match self.remove_at(below, &path[1..])? {
                            Node::Empty => Child::Empty,
                            n => Child::Node(Box::new(n)),
                        };
                    }
                }
                let left: Vec<usize> = (0..16)
                    .filter(|&i| !matches!(children[i], Child::Empty))
                    .take(2)
                    .collect();
                match (left.as_slice(), value) {
                    ([], None) => Node::Empty,
                    ([], Some(v)) => Node::Leaf {
                        path: Vec::new(),
                        value: v,
                    },
                    // One child and no value: the branch is not needed.
                    (&[i], None) => {
                        let below = self.take(std::mem::replace(&mut children[i], Child::Empty))?;
                        prefix(&[i as u8], below)
                    }
                    (_, value) => Node::Branch { children, value },
                }
            }
        })
    }

    /// The root hash of the trie as it is now.
    pub fn root_hash(&self) -> [u8; 32] {
        match &self.root {
            Child::Empty => Self::empty_root(),
            Child::Hash(h, _) => *h,
            Child::Node(n) => H::hash(&Self::encode(&mut n.clone(), &mut Vec::new(), false)),
        }
    }

    /// Whether a commit hands the tree it made to the store's cache: not
    /// when the cache emptied since the trie was opened (the tree holds
    /// what the trie read in the cache's earlier generation).
    fn keeps_tree(&self) -> bool {
        self.store
            .node_cache()
            .is_none_or(|cache| cache.generation() == self.generation)
    }

    /// Makes `node` (committed, `made` nodes new with it) the root, by
    /// its hash, keeping it (and the tree below it) when `keep`, and
    /// handing it to the cache.
    fn set_committed_root(&mut self, hash: [u8; 32], node: Node, made: usize, keep: bool) {
        if !keep {
            self.root = Child::stored(hash);
            return;
        }
        let node = Arc::new(node);
        if let Some(cache) = self.store.node_cache() {
            cache.adopt(hash, Arc::clone(&node), made, self.generation);
        }
        self.root = Child::Hash(hash, Loaded::with(node));
    }

    /// Sets each key to its value (an empty value removes it), then
    /// commits: the same root and nodes as [`Trie::insert`] for each and
    /// [`Trie::commit`]. A large batch of insertions (no removal) under a
    /// root branch is split by the keys' first nibble: two threads each
    /// insert into and hash one half of the branch's children (a block's
    /// storage writes and their hashing were a sixth of connecting a block
    /// of ERC-20 transfers, on one core of two). Keys must be distinct.
    pub fn commit_batch(
        &mut self,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<([u8; 32], NewNodes), TrieError>
    where
        H: Sync,
        S: Sync,
    {
        let parallel = entries.len() >= PARALLEL_BATCH
            && cores() >= 2
            && entries.iter().all(|(k, v)| !k.is_empty() && !v.is_empty());
        // The root, when the batch may be split; `Node::Empty` otherwise,
        // which leaves the root in place and takes the one-thread path.
        let root = if parallel {
            let root = std::mem::replace(&mut self.root, Child::Empty);
            self.take(root)?
        } else {
            Node::Empty
        };
        let Node::Branch {
            mut children,
            value,
        } = root
        else {
            if !matches!(root, Node::Empty) {
                self.root = Child::Node(Box::new(root));
            }
            for (key, value) in entries {
                self.insert(&key, value)?;
            }
            return Ok(self.commit());
        };
        let mut groups: [Vec<(Vec<u8>, Vec<u8>)>; 16] = Default::default();
        for (key, value) in entries {
            let mut path = nibbles(&key);
            let first = path.remove(0);
            groups[usize::from(first)].push((path, value));
        }
        let keep = self.keeps_tree();
        // One half of the children: each with its keys inserted, then
        // hashed into the branch's payload.
        // The low half's payload starts with the branch's header room.
        let half = |children: &mut [Child],
                    groups: &mut [Vec<(Vec<u8>, Vec<u8>)>],
                    room: usize|
         -> Result<(Vec<u8>, NewNodes), TrieError> {
            let mut payload = Vec::with_capacity(room + 16 * 33 + 2 + HEADER_ROOM);
            payload.resize(room, 0);
            let mut nodes = Vec::new();
            for (child, group) in children.iter_mut().zip(groups) {
                if !group.is_empty() {
                    let mut node = self.take(std::mem::replace(child, Child::Empty))?;
                    for (path, value) in group.drain(..) {
                        node = self.insert_at(node, &path, value)?;
                    }
                    *child = Child::Node(Box::new(node));
                }
                Self::write_child(child, &mut nodes, &mut payload, keep);
            }
            Ok((payload, nodes))
        };
        let (low_children, high_children) = children.split_at_mut(8);
        let (low_groups, high_groups) = groups.split_at_mut(8);
        let (low, high) = std::thread::scope(|scope| {
            let high = scope.spawn(|| half(high_children, high_groups, 0));
            let low = half(low_children, low_groups, HEADER_ROOM);
            // A panic there is a bug here: surface it as the serial path
            // would.
            (
                low,
                high.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            )
        });
        let ((mut payload, mut nodes), (high_payload, high_nodes)) = (low?, high?);
        nodes.extend(high_nodes);
        payload.extend_from_slice(&high_payload);
        rlp::write_string(value.as_deref().unwrap_or_default(), &mut payload);
        let encoded = close_list(payload);
        let hash = H::hash(&encoded);
        nodes.push((hash, encoded));
        let made = nodes.len();
        self.set_committed_root(hash, Node::Branch { children, value }, made, keep);
        Ok((hash, nodes))
    }

    /// The root hash and the nodes made since the last commit, for the
    /// caller to store; the trie then refers to its root by hash (and
    /// keeps the nodes it made and read, see [`NodeCache`]).
    pub fn commit(&mut self) -> ([u8; 32], NewNodes) {
        let keep = self.keeps_tree();
        match std::mem::replace(&mut self.root, Child::Empty) {
            Child::Empty => (Self::empty_root(), Vec::new()),
            Child::Hash(hash, loaded) => {
                self.root = Child::Hash(hash, if keep { loaded } else { Loaded::default() });
                (hash, Vec::new())
            }
            Child::Node(mut node) => {
                let mut nodes = Vec::new();
                let encoded = Self::encode(&mut node, &mut nodes, keep);
                let hash = H::hash(&encoded);
                nodes.push((hash, encoded));
                self.set_committed_root(hash, *node, nodes.len(), keep);
                (hash, nodes)
            }
        }
    }

    /// A node's RLP, written in one pass (a commit encodes every node a
    /// block touched: building `Item` trees for them was most of its
    /// allocations). New descendants go to `out`, and their parents then
    /// name them by hash, holding them when `keep` (else the stored
    /// children drop what they hold).
    fn encode(node: &mut Node, out: &mut NewNodes, keep: bool) -> Vec<u8> {
        // The payload goes after room for the list header, written last:
        // one allocation per node (the header is appended, then moved
        // into the room, so the capacity counts it twice).
        let mut payload = Vec::with_capacity(
            2 * HEADER_ROOM
                + match node {
                    Node::Branch { .. } => 16 * 33 + 2,
                    _ => 72,
                },
        );
        payload.resize(HEADER_ROOM, 0);
        match node {
            Node::Empty => return vec![0x80],
            Node::Leaf { path, value } => {
                rlp::write_string(&hex_prefix(path, true), &mut payload);
                rlp::write_string(value, &mut payload);
            }
            Node::Extension { path, child } => {
                rlp::write_string(&hex_prefix(path, false), &mut payload);
                Self::write_child(child, out, &mut payload, keep);
            }
            Node::Branch { children, value } => {
                for child in children.iter_mut() {
                    Self::write_child(child, out, &mut payload, keep);
                }
                rlp::write_string(value.as_deref().unwrap_or_default(), &mut payload);
            }
        }
        close_list(payload)
    }

    /// A child as its parent holds it: embedded under 32 bytes, else its
    /// hash (and the node is new, to be stored; the child becomes a
    /// stored one, holding the node when `keep`).
    fn write_child(child: &mut Child, out: &mut NewNodes, payload: &mut Vec<u8>, keep: bool) {
        match child {
            Child::Empty => payload.push(0x80),
            Child::Hash(h, loaded) => {
                rlp::write_string(h, payload);
                if !keep {
                    *loaded = Loaded::default();
                }
            }
            Child::Node(node) => {
                let encoded = Self::encode(node, out, keep);
                if encoded.len() < 32 {
                    payload.extend_from_slice(&encoded);
                    return;
                }
                let hash = H::hash(&encoded);
                rlp::write_string(&hash, payload);
                out.push((hash, encoded));
                let node = std::mem::replace(&mut **node, Node::Empty);
                let loaded = if keep {
                    Loaded::with(Arc::new(node))
                } else {
                    Loaded::default()
                };
                *child = Child::Hash(hash, loaded);
            }
        }
    }
}

/// `key`'s value (or its absence) as `proof` shows it against `root`:
/// the proof's nodes are looked up by their hash, so a node that is
/// missing or altered makes it an error, never a wrong answer.
pub fn verify_proof<H: TrieHasher>(
    root: [u8; 32],
    key: &[u8],
    proof: &[Vec<u8>],
) -> Result<Option<Vec<u8>>, TrieError> {
    let nodes: HashMap<[u8; 32], Vec<u8>> = proof.iter().map(|n| (H::hash(n), n.clone())).collect();
    Trie::<H, _>::at(root, nodes).get(key)
}

/// `node` below the nibbles `path` (an extension, unless `path` is
/// empty).
fn extend(path: &[u8], node: Node) -> Node {
    if path.is_empty() {
        node
    } else {
        Node::Extension {
            path: path.to_vec(),
            child: Child::Node(Box::new(node)),
        }
    }
}

/// `node` reached through `path`, merged with it where the shape allows
/// (what is left of a branch or extension after a removal).
fn prefix(path: &[u8], node: Node) -> Node {
    match node {
        Node::Empty => Node::Empty,
        Node::Leaf { path: p, value } => Node::Leaf {
            path: [path, &p].concat(),
            value,
        },
        Node::Extension { path: p, child } => Node::Extension {
            path: [path, &p].concat(),
            child,
        },
        branch @ Node::Branch { .. } => extend(path, branch),
    }
}

#[cfg(test)]
#[path = "trie_tests.rs"]
pub(crate) mod tests;
