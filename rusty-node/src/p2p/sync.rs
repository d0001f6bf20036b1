//! Headers-first block download: the bookkeeping, without I/O.
//!
//! The service feeds it header batches (already checked for proof of work
//! and linkage), peers' statuses and block replies; it answers which blocks
//! to request from whom, which requests stalled, and which downloaded
//! blocks are next in chain order.
//!
//! - `pending` holds the headers whose blocks the node lacks, in chain
//!   order; the first one's parent is in the block index.
//! - Blocks are requested in chunks of up to [`CHUNK`] from any peer whose
//!   chain reaches that height, at most [`MAX_REQUESTS_PER_PEER`] chunks
//!   per peer, and only within [`WINDOW`] headers of the first missing
//!   block, so a slow peer delays the chain by one chunk at most.
//! - A chunk not answered within [`STALL_TIMEOUT`] is given back and its
//!   peer left out for [`STALL_PENALTY_BOX`].

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::{Duration, Instant},
};

use rusty_network::{message::MAX_BLOCKS_PER_REQUEST, PeerId};
use rusty_shared_types::{Block, BlockHeader, Hash256};

pub const CHUNK: usize = MAX_BLOCKS_PER_REQUEST;
pub const MAX_REQUESTS_PER_PEER: usize = 4;
pub const WINDOW: usize = 1024;
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
pub const STALL_PENALTY_BOX: Duration = Duration::from_secs(30);
/// Headers kept ahead of the chain, at most.
pub const MAX_PENDING: usize = 200_000;

/// A header waiting for its block.
#[derive(Debug, Clone)]
pub struct Pending {
    pub hash: Hash256,
    pub header: BlockHeader,
    pub height: u64,
}

#[derive(Debug, Default)]
struct PeerSync {
    /// Best height the peer told us about.
    height: u64,
    requests: Vec<Request>,
    /// Blocks it said it does not have.
    missing: HashSet<Hash256>,
    stalled_until: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Request {
    id: u64,
    hashes: Vec<Hash256>,
    sent: Instant,
}

/// A chunk to request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub peer: PeerId,
    pub id: u64,
    pub hashes: Vec<Hash256>,
}

/// What a block reply amounted to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Blocks that were pending and are now stored for connection.
    pub accepted: usize,
    /// Blocks nobody asked for (or that do not match any pending header).
    pub unsolicited: usize,
}

/// Headers-first download state.
#[derive(Debug, Default)]
pub struct BlockSync {
    pending: VecDeque<Pending>,
    pending_set: HashSet<Hash256>,
    /// Block hash → (peer, request id) of the request carrying it.
    in_flight: HashMap<Hash256, (PeerId, u64)>,
    downloaded: HashMap<Hash256, (Block, PeerId)>,
    peers: HashMap<PeerId, PeerSync>,
    next_id: u64,
}

impl BlockSync {
    pub fn add_peer(&mut self, peer: PeerId) {
        self.peers.entry(peer).or_default();
    }

    /// Forgets a peer; its requests go back to the pool.
    pub fn remove_peer(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.remove(peer) {
            for r in p.requests {
                for h in r.hashes {
                    self.in_flight.remove(&h);
                }
            }
        }
    }

    pub fn set_peer_height(&mut self, peer: PeerId, height: u64) {
        let p = self.peers.entry(peer).or_default();
        p.height = p.height.max(height);
    }

    pub fn requests_of(&self, peer: &PeerId) -> usize {
        self.peers.get(peer).map_or(0, |p| p.requests.len())
    }

    /// Heights of the blocks requested from `peer` and not yet received,
    /// lowest first (`getpeerinfo`'s `inflight`).
    pub fn heights_in_flight(&self, peer: &PeerId) -> Vec<u64> {
        let Some(p) = self.peers.get(peer) else {
            return Vec::new();
        };
        let asked: HashSet<&Hash256> = p.requests.iter().flat_map(|r| &r.hashes).collect();
        if asked.is_empty() {
            return Vec::new();
        }
        // Every requested block is a pending header, in height order.
        self.pending
            .iter()
            .filter(|pending| asked.contains(&pending.hash))
            .map(|pending| pending.height)
            .collect()
    }

    pub fn is_pending(&self, hash: &Hash256) -> bool {
        self.pending_set.contains(hash)
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The last pending header (where the next `headers` request starts).
    pub fn last_pending(&self) -> Option<&Pending> {
        self.pending.back()
    }

    /// Height of the best header known, if any is pending.
    pub fn best_header_height(&self) -> Option<u64> {
        self.pending.back().map(|p| p.height)
    }

    /// Adds headers (linked, proof of work checked) whose blocks the node
    /// lacks. `parent_height` is the height of the first header's parent
    /// when it is in the block index; `None` means it must extend the
    /// pending chain. A batch that forks off the pending chain replaces
    /// the pending headers after the fork. Returns how many were added.
    pub fn add_headers(
        &mut self,
        headers: Vec<(Hash256, BlockHeader)>,
        parent_height: Option<u64>,
    ) -> usize {
        let Some((_, first)) = headers.first() else {
            return 0;
        };
        let start_height = match parent_height {
            Some(h) => {
                // The batch starts right on the block index: any pending
                // headers are another branch (or the same one) — keep the
                // common prefix only.
                let keep = self
                    .pending
                    .iter()
                    .zip(headers.iter())
                    .take_while(|(p, (h, _))| p.hash == *h)
                    .count();
                self.truncate_pending(keep);
                h.saturating_add(1)
            }
            None => {
                let Some(pos) = self.pending.iter().position(|p| p.hash == first.prev_hash) else {
                    return 0;
                };
                self.truncate_pending(pos + 1);
                self.pending[pos].height.saturating_add(1)
            }
        };
        let mut added = 0;
        for (i, (hash, header)) in headers.into_iter().enumerate() {
            if self.pending.len() >= MAX_PENDING {
                break;
            }
            if self.pending_set.contains(&hash) {
                continue;
            }
            self.pending_set.insert(hash);
            self.pending.push_back(Pending {
                hash,
                header,
                height: start_height.saturating_add(i as u64),
            });
            added += 1;
        }
        added
    }

    fn truncate_pending(&mut self, keep: usize) {
        while self.pending.len() > keep {
            if let Some(p) = self.pending.pop_back() {
                self.pending_set.remove(&p.hash);
                self.in_flight.remove(&p.hash);
                self.downloaded.remove(&p.hash);
            }
        }
    }

    /// Drops every pending header from `hash` on (its block was invalid).
    pub fn drop_from(&mut self, hash: &Hash256) {
        if let Some(pos) = self.pending.iter().position(|p| p.hash == *hash) {
            self.truncate_pending(pos);
        }
    }

    /// Drops everything (e.g. the pending chain no longer connects).
    pub fn clear_pending(&mut self) {
        self.truncate_pending(0);
    }

    /// Chunks to request now.
    pub fn assign(&mut self, now: Instant) -> Vec<Assignment> {
        let mut out = Vec::new();
        let mut peers: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.requests.len() < MAX_REQUESTS_PER_PEER && p.stalled_until.is_none_or(|t| t <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        // Least busy first.
        peers.sort_by_key(|p| self.peers[p].requests.len());
        let window: Vec<(Hash256, u64)> = self
            .pending
            .iter()
            .take(WINDOW)
            .filter(|p| {
                !self.in_flight.contains_key(&p.hash) && !self.downloaded.contains_key(&p.hash)
            })
            .map(|p| (p.hash, p.height))
            .collect();
        let mut taken: HashSet<Hash256> = HashSet::new();
        'peers: for peer in peers {
            loop {
                let state = &self.peers[&peer];
                if state.requests.len() >= MAX_REQUESTS_PER_PEER {
                    continue 'peers;
                }
                let chunk: Vec<Hash256> = window
                    .iter()
                    .filter(|(h, height)| {
                        !taken.contains(h) && *height <= state.height && !state.missing.contains(h)
                    })
                    .take(CHUNK)
                    .map(|(h, _)| *h)
                    .collect();
                if chunk.is_empty() {
                    continue 'peers;
                }
                self.next_id += 1;
                let id = self.next_id;
                for h in &chunk {
                    taken.insert(*h);
                    self.in_flight.insert(*h, (peer, id));
                }
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.requests.push(Request {
                        id,
                        hashes: chunk.clone(),
                        sent: now,
                    });
                }
                out.push(Assignment {
                    peer,
                    id,
                    hashes: chunk,
                });
            }
        }
        out
    }

    /// Records a reply to request `id` of `peer`.
    pub fn on_blocks(&mut self, peer: PeerId, id: u64, blocks: Vec<Block>) -> Delivery {
        let mut d = Delivery::default();
        let requested = self
            .peers
            .get_mut(&peer)
            .and_then(|p| {
                let pos = p.requests.iter().position(|r| r.id == id)?;
                Some(p.requests.remove(pos).hashes)
            })
            .unwrap_or_default();
        let mut got = HashSet::new();
        for block in blocks {
            let hash = block.hash();
            if requested.contains(&hash) {
                got.insert(hash);
            }
            if !self.pending_set.contains(&hash) || self.downloaded.contains_key(&hash) {
                if !requested.contains(&hash) {
                    d.unsolicited += 1;
                }
                continue;
            }
            self.in_flight.remove(&hash);
            self.downloaded.insert(hash, (block, peer));
            d.accepted += 1;
        }
        // A reply is cut after its byte budget, so blocks after the last
        // one sent only go back to the pool; blocks skipped before it, or
        // all of them in an empty reply, the peer does not have: ask
        // someone else.
        let last_sent = requested.iter().rposition(|h| got.contains(h));
        for (pos, h) in requested.into_iter().enumerate() {
            if got.contains(&h) {
                continue;
            }
            if self
                .in_flight
                .get(&h)
                .is_some_and(|(p, i)| *p == peer && *i == id)
            {
                self.in_flight.remove(&h);
            }
            if last_sent.is_none_or(|last| pos < last) {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.missing.insert(h);
                }
            }
        }
        d
    }

    /// A request failed (timeout, disconnect): its blocks go back. False
    /// if it was no longer outstanding (already given back as stalled).
    pub fn on_request_failed(&mut self, peer: PeerId, id: u64) -> bool {
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        let Some(pos) = p.requests.iter().position(|r| r.id == id) else {
            return false;
        };
        let r = p.requests.remove(pos);
        for h in r.hashes {
            if self
                .in_flight
                .get(&h)
                .is_some_and(|(pp, i)| *pp == peer && *i == id)
            {
                self.in_flight.remove(&h);
            }
        }
        true
    }

    /// Requests older than [`STALL_TIMEOUT`]: their blocks go back to the
    /// pool and their peers sit out [`STALL_PENALTY_BOX`]. Returns the
    /// stalling peers.
    pub fn check_stalls(&mut self, now: Instant) -> Vec<PeerId> {
        let mut stalled = Vec::new();
        for (peer, p) in self.peers.iter_mut() {
            let (old, fresh): (Vec<Request>, Vec<Request>) = p
                .requests
                .drain(..)
                .partition(|r| now.saturating_duration_since(r.sent) >= STALL_TIMEOUT);
            p.requests = fresh;
            if !old.is_empty() {
                stalled.push(*peer);
                p.stalled_until = Some(now + STALL_PENALTY_BOX);
                for r in old {
                    for h in r.hashes {
                        if self
                            .in_flight
                            .get(&h)
                            .is_some_and(|(pp, i)| pp == peer && *i == r.id)
                        {
                            self.in_flight.remove(&h);
                        }
                    }
                }
            }
        }
        stalled
    }

    /// Downloaded blocks that are next in chain order, at most `max`, with
    /// their hashes and the peers that sent them; they leave the pending
    /// chain.
    pub fn take_ready(&mut self, max: usize) -> Vec<(Hash256, Block, PeerId)> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some(front) = self.pending.front() else {
                break;
            };
            let hash = front.hash;
            let Some((block, peer)) = self.downloaded.remove(&hash) else {
                break;
            };
            self.pending.pop_front();
            self.pending_set.remove(&hash);
            out.push((hash, block, peer));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusty_core::test_utils::NOW;
    use rusty_shared_types::Network;

    /// A chain of `n` blocks after a fake parent (no proof of work needed
    /// here: the bookkeeping does not look at it).
    fn chain(n: usize, salt: u64) -> Vec<Block> {
        let params = Network::Dev.params();
        let mut prev = Hash256([salt as u8; 32]);
        (0..n)
            .map(|i| {
                let header = BlockHeader {
                    version: 1,
                    prev_hash: prev,
                    merkle_root: Hash256::ZERO,
                    state_root: Hash256::ZERO,
                    mn_list_root: Hash256::ZERO,
                    chainlock_hash: Hash256::ZERO,
                    time: NOW + i as u64 + salt,
                    bits: params.pow_limit_bits,
                    nonce: salt,
                };
                let b = Block {
                    header,
                    txs: Vec::new(),
                };
                prev = b.hash();
                b
            })
            .collect()
    }

    fn headers(blocks: &[Block]) -> Vec<(Hash256, BlockHeader)> {
        blocks
            .iter()
            .map(|b| (b.hash(), b.header.clone()))
            .collect()
    }

    #[test]
    fn blocks_are_spread_over_peers_and_connected_in_order() {
        let blocks = chain(200, 0);
        let mut s = BlockSync::default();
        assert_eq!(s.add_headers(headers(&blocks), Some(0)), 200);
        let (a, b) = (PeerId::random(), PeerId::random());
        s.set_peer_height(a, 200);
        s.set_peer_height(b, 200);
        let now = Instant::now();
        let asg = s.assign(now);
        // Four chunks per peer, each block once.
        assert_eq!(asg.len(), 2 * MAX_REQUESTS_PER_PEER);
        let mut all: Vec<Hash256> = asg.iter().flat_map(|x| x.hashes.clone()).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
        assert!(asg.iter().any(|x| x.peer == a) && asg.iter().any(|x| x.peer == b));
        // Answer the later chunks first: nothing is ready until the first.
        for x in asg.iter().rev() {
            let got: Vec<Block> = blocks
                .iter()
                .filter(|bl| x.hashes.contains(&bl.hash()))
                .cloned()
                .collect();
            assert_eq!(s.on_blocks(x.peer, x.id, got).accepted, x.hashes.len());
            if x.hashes.contains(&blocks[0].hash()) {
                break;
            }
        }
        let ready = s.take_ready(1000);
        assert_eq!(ready.len(), n);
        for (i, (_, blk, _)) in ready.iter().enumerate() {
            assert_eq!(blk.hash(), blocks[i].hash());
        }
    }

    #[test]
    fn peers_are_only_asked_for_heights_they_have() {
        let blocks = chain(40, 0);
        let mut s = BlockSync::default();
        s.add_headers(headers(&blocks), Some(0));
        let short = PeerId::random();
        s.set_peer_height(short, 10);
        let asg = s.assign(Instant::now());
        assert_eq!(asg.len(), 1);
        assert_eq!(asg[0].hashes.len(), 10);
    }

    #[test]
    fn stalled_requests_move_to_another_peer() {
        let blocks = chain(16, 0);
        let mut s = BlockSync::default();
        s.add_headers(headers(&blocks), Some(0));
        let slow = PeerId::random();
        s.set_peer_height(slow, 16);
        let t0 = Instant::now();
        assert_eq!(s.assign(t0).len(), 1);
        let fast = PeerId::random();
        s.set_peer_height(fast, 16);
        assert!(s.assign(t0).is_empty(), "nothing left to assign");
        assert_eq!(s.check_stalls(t0 + STALL_TIMEOUT), vec![slow]);
        // Its request's own timeout, arriving later, finds nothing to give
        // back (so the stall is not counted twice).
        assert!(!s.on_request_failed(slow, 1));
        let again = s.assign(t0 + STALL_TIMEOUT);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].peer, fast, "the stalled peer sits out");
    }

    #[test]
    fn missing_blocks_are_asked_elsewhere_and_unsolicited_ones_counted() {
        let blocks = chain(4, 0);
        let mut s = BlockSync::default();
        s.add_headers(headers(&blocks), Some(0));
        let a = PeerId::random();
        s.set_peer_height(a, 4);
        let asg = s.assign(Instant::now());
        let other = chain(1, 9).remove(0);
        // It skipped the first three: it does not have them.
        let d = s.on_blocks(a, asg[0].id, vec![blocks[3].clone(), other]);
        assert_eq!(
            d,
            Delivery {
                accepted: 1,
                unsolicited: 1
            }
        );
        // The three it lacked are not asked of it again.
        assert!(s.assign(Instant::now()).is_empty());
        let b = PeerId::random();
        s.set_peer_height(b, 4);
        let asg = s.assign(Instant::now());
        assert_eq!(asg[0].hashes.len(), 3);
    }

    #[test]
    fn a_reply_cut_short_by_its_byte_budget_is_asked_again_of_the_same_peer() {
        let blocks = chain(16, 0);
        let mut s = BlockSync::default();
        s.add_headers(headers(&blocks), Some(0));
        let a = PeerId::random();
        s.set_peer_height(a, 16);
        let asg = s.assign(Instant::now());
        // The first five fit the reply; the peer has the rest too.
        let d = s.on_blocks(a, asg[0].id, blocks[..5].to_vec());
        assert_eq!(d.accepted, 5);
        let again = s.assign(Instant::now());
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].peer, a);
        assert_eq!(again[0].hashes.len(), 11);
    }

    #[test]
    fn a_competing_branch_replaces_the_pending_one_after_the_fork() {
        let main = chain(10, 0);
        let mut s = BlockSync::default();
        s.add_headers(headers(&main), Some(0));
        // Extension of the pending chain.
        let mut ext = chain(1, 5);
        ext[0].header.prev_hash = main[9].hash();
        assert_eq!(s.add_headers(headers(&ext), None), 1);
        assert_eq!(s.pending_len(), 11);
        // A header whose parent is unknown is refused.
        assert_eq!(s.add_headers(headers(&chain(1, 7)), None), 0);
        // Another branch from the block index replaces everything.
        let other = chain(3, 3);
        assert_eq!(s.add_headers(headers(&other), Some(0)), 3);
        assert_eq!(s.pending_len(), 3);
        s.drop_from(&other[1].hash());
        assert_eq!(s.pending_len(), 1);
    }
}
