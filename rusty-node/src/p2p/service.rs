//! The P2P service task: one loop over network events, replies to its own
//! requests, new local tips and transactions, and a 1 s tick.
//!
//! Requests to peers run in small spawned tasks that send their result
//! back into the loop, so a slow peer never blocks it; chain work (serving
//! requests, validating gossip, connecting blocks) goes through the
//! [`ChainHandle`].

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use rusty_network::{
    message::{BLOCKS_REPLY_SOFT_BYTES, MAX_HEADERS_PER_REPLY, MAX_LOCATOR},
    Acceptance, DirectAck, MessageId, NetworkEvent, NetworkEvents, NetworkHandle, PeerAction,
    PeerId, Request, RequestError, Response, Status, Topic,
};
use rusty_shared_types::{
    decode_exact, Block, BlockHeader, ChainLock, Encode, Hash256, Transaction,
};
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info, warn};

use super::{
    rebroadcast::OwnTxs,
    sync::{BlockSync, STALL_TIMEOUT},
    PeerChain, SyncView,
};
use crate::{llmq::LlmqInput, service::ChainHandle};
use rusty_core::{
    chain::{BlockAcceptance, ChainError},
    state::{NodeState, TxRejection},
    tables::BlockStatus,
    validation::{self, ValidationError},
};

/// How often peers are asked for their status.
const STATUS_EVERY: Duration = Duration::from_secs(10);
/// Give up on a status or headers request after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Fetching an announced block: must finish well inside gossipsub's
/// validation window.
const ANNOUNCED_BLOCK_TIMEOUT: Duration = Duration::from_secs(4);
/// Blocks connected per chain-service call during sync.
const CONNECT_BATCH: usize = 64;
/// Our own block announcements are at least this far apart; tips in
/// between are folded into the next one (peers fetch the rest by header
/// sync). Ten a second stays well under a peer's block-gossip limit (20 a
/// second, bursts of 100) however fast `generatetoaddress` or a miner
/// submits, and a block every few seconds is still announced at once.
const ANNOUNCE_SPACING: Duration = Duration::from_millis(100);

pub(super) enum Internal {
    Status {
        peer: PeerId,
        result: Result<Response, RequestError>,
    },
    Headers {
        peer: PeerId,
        result: Result<Response, RequestError>,
    },
    Blocks {
        peer: PeerId,
        id: u64,
        result: Result<Response, RequestError>,
    },
    Announced {
        peer: PeerId,
        msg: MessageId,
        hash: Hash256,
        result: Result<Response, RequestError>,
    },
}

struct PeerEntry {
    status: Option<Status>,
    last_status_request: Option<Instant>,
    /// Not asked for headers before this (it stalled, or claimed more
    /// work than its headers showed).
    headers_not_before: Option<Instant>,
    /// The block of the last ChainLock from its status handed to the
    /// quorum service (each once).
    lock_forwarded: Option<Hash256>,
}

/// How long a peer that stalled a `headers` request (or sent none while
/// claiming more work) is passed over for header sync.
const HEADERS_BACKOFF: Duration = Duration::from_secs(60);

pub(super) struct Service {
    chain: ChainHandle,
    /// Our genesis hash (peers with another one are of another chain).
    genesis: Hash256,
    net: NetworkHandle,
    view: Arc<SyncView>,
    sync: BlockSync,
    peers: HashMap<PeerId, PeerEntry>,
    /// Peer and start time of the `headers` request in flight.
    header_sync: Option<(PeerId, Instant)>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    /// Blocks that came from the network (not announced as our own).
    recent_blocks: RecentSet,
    /// When we last announced a tip of our own, and the newest tip
    /// waiting for [`ANNOUNCE_SPACING`] to pass.
    last_announced: Option<Instant>,
    deferred_tip: Option<Hash256>,
    /// Height of the last tip the chain announced.
    last_tip_height: Option<u64>,
    /// Announced blocks being fetched (so a second announcement waits).
    fetching: HashSet<Hash256>,
    /// Transactions that arrived by gossip (not published again).
    recent_txs: RecentSet,
    /// Transactions this node published itself, published again while
    /// they wait in the mempool.
    own_txs: OwnTxs,
    /// DKG messages and quorum gossip go to the quorum service.
    llmq: mpsc::Sender<LlmqInput>,
    /// Media announcements and requests go to the media service.
    media: Option<rusty_media::service::MediaHandle>,
    /// Where swap messages (`direct` kind 2) go.
    bridge: Option<crate::bridge::service::BridgeHandle>,
}

/// A bounded set that forgets its oldest entries.
#[derive(Debug, Default)]
struct RecentSet {
    order: VecDeque<Hash256>,
    set: HashSet<Hash256>,
}

impl RecentSet {
    const CAPACITY: usize = 16_384;

    fn insert(&mut self, h: Hash256) {
        if self.set.insert(h) {
            self.order.push_back(h);
            if self.order.len() > Self::CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    fn contains(&self, h: &Hash256) -> bool {
        self.set.contains(h)
    }
}

/// The local chain's status.
fn local_status(s: &NodeState) -> Status {
    let tip = s.chain().tip_entry();
    Status {
        genesis: s.chain().hash_at(0).unwrap_or(Hash256::ZERO),
        tip: s.chain().tip(),
        height: s.chain().height(),
        chain_work: tip.chain_work,
        best_chainlock: s.chain().best_chainlock().cloned().map(Box::new),
    }
}

/// Block locator of the active chain: the last 10 blocks, then
/// exponentially sparser back to genesis.
fn locator(s: &NodeState) -> Vec<Hash256> {
    let mut out = Vec::new();
    let mut h = s.chain().height();
    let mut step = 1u64;
    loop {
        if let Some(hash) = s.chain().hash_at(h) {
            out.push(hash);
        }
        if h == 0 || out.len() >= MAX_LOCATOR - 1 {
            break;
        }
        if out.len() >= 10 {
            step = step.saturating_mul(2);
        }
        h = h.saturating_sub(step);
    }
    if out.last() != s.chain().hash_at(0).as_ref() {
        if let Some(g) = s.chain().hash_at(0) {
            out.push(g);
        }
    }
    out
}

/// Headers of the active chain after the first locator hash on it.
fn headers_after(s: &NodeState, locator: &[Hash256], stop: Hash256) -> Vec<BlockHeader> {
    let start = locator
        .iter()
        .find_map(|h| {
            s.chain()
                .is_active(h)
                .then(|| s.chain().entry(h).map(|e| e.height))
                .flatten()
        })
        .unwrap_or(0);
    let mut out = Vec::new();
    let mut h = start.saturating_add(1);
    while out.len() < MAX_HEADERS_PER_REPLY {
        let Some(hash) = s.chain().hash_at(h) else {
            break;
        };
        let Some(e) = s.chain().entry(&hash) else {
            break;
        };
        out.push(e.header.clone());
        if hash == stop {
            break;
        }
        h += 1;
    }
    out
}

fn blocks_by_hash(s: &NodeState, hashes: &[Hash256]) -> Vec<Block> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for h in hashes {
        if let Ok(Some(b)) = s.chain().block(h) {
            bytes = bytes.saturating_add(b.encoded_size_hint());
            out.push(b);
            if bytes >= BLOCKS_REPLY_SOFT_BYTES {
                break;
            }
        }
    }
    out
}

/// The outcome of handing a block to the chain.
#[derive(Debug)]
enum Submitted {
    Accepted,
    /// Already known as valid.
    Known,
    Invalid(ValidationError),
    /// Could not be checked now (database trouble, unknown parent…).
    Failed(String),
}

fn submitted(r: Result<BlockAcceptance, ChainError>) -> Submitted {
    match r {
        Ok(_) => Submitted::Accepted,
        Err(ChainError::Invalid(ValidationError::DuplicateBlock(_))) => Submitted::Known,
        Err(ChainError::Invalid(e)) => Submitted::Invalid(e),
        Err(e) => Submitted::Failed(e.to_string()),
    }
}

impl Service {
    pub(super) fn new(
        chain: ChainHandle,
        net: NetworkHandle,
        view: Arc<SyncView>,
        llmq: mpsc::Sender<LlmqInput>,
        media: Option<rusty_media::service::MediaHandle>,
        bridge: Option<crate::bridge::service::BridgeHandle>,
    ) -> (Self, mpsc::UnboundedReceiver<Internal>) {
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        (
            Service {
                genesis: chain.params().genesis_block().hash(),
                chain,
                net,
                view,
                sync: BlockSync::default(),
                peers: HashMap::new(),
                header_sync: None,
                internal_tx,
                recent_blocks: RecentSet::default(),
                last_announced: None,
                deferred_tip: None,
                last_tip_height: None,
                fetching: HashSet::new(),
                recent_txs: RecentSet::default(),
                own_txs: OwnTxs::default(),
                llmq,
                media,
                bridge,
            },
            internal_rx,
        )
    }

    pub(super) async fn run(
        mut self,
        mut events: NetworkEvents,
        mut internal: mpsc::UnboundedReceiver<Internal>,
    ) {
        let mut tips = self.chain.subscribe_blocks();
        let mut txs = self.chain.subscribe_txs();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let announce_due = self
                .last_announced
                .map_or_else(tokio::time::Instant::now, |t| {
                    tokio::time::Instant::from_std(t + ANNOUNCE_SPACING)
                });
            tokio::select! {
                biased;
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(ev).await,
                    None => break,
                },
                Some(msg) = internal.recv() => self.on_internal(msg).await,
                tip = tips.recv() => match tip {
                    Ok(mut tip) => {
                        // A burst of tips (a batch mined or submitted at
                        // once) is announced by its last header only;
                        // peers fetch the rest by header sync.
                        let mut lowest = tip.height;
                        while let Ok(next) = tips.try_recv() {
                            lowest = lowest.min(next.height);
                            tip = next;
                        }
                        // The chain moved back (a ChainLock took it to
                        // another branch): headers queued against the old
                        // branch would hold the sync; start over from the
                        // new tip (found by `rusty-cli chaos`: a node stayed
                        // at the locked block while its peers were ahead).
                        if self.last_tip_height.is_some_and(|h| lowest < h) {
                            self.sync.clear_pending();
                            self.header_sync = None;
                        }
                        self.last_tip_height = Some(tip.height);
                        self.deferred_tip = Some(tip.hash);
                        if self.last_announced.is_none_or(|t| t.elapsed() >= ANNOUNCE_SPACING) {
                            self.announce_deferred_tip().await;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                tx = txs.recv() => match tx {
                    Ok(tx) => {
                        // Transactions from gossip are forwarded by gossip.
                        let txid = tx.txid();
                        if !self.recent_txs.contains(&txid) {
                            let _ = self.net.publish(Topic::Txs, tx.encode()).await;
                            self.own_txs.published(txid, Instant::now());
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        debug!(target: "p2p", skipped = n, "transaction relay lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tokio::time::sleep_until(announce_due), if self.deferred_tip.is_some() => {
                    self.announce_deferred_tip().await;
                }
                _ = tick.tick() => self.on_tick().await,
            }
        }
        debug!(target: "p2p", "p2p service stopped");
    }

    async fn query<R, F>(&self, f: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce(&NodeState) -> R + Send + 'static,
    {
        self.chain.query(f).await.ok()
    }

    fn spawn_request(
        &self,
        peer: PeerId,
        request: Request,
        timeout: Duration,
        wrap: impl FnOnce(Result<Response, RequestError>) -> Internal + Send + 'static,
    ) {
        let net = self.net.clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let result = match tokio::time::timeout(timeout, net.request(peer, request)).await {
                Ok(r) => r,
                Err(_) => Err(RequestError::Timeout),
            };
            let _ = tx.send(wrap(result));
        });
    }

    async fn request_status(&mut self, peer: PeerId) {
        let Some(status) = self.query(local_status).await else {
            return;
        };
        if let Some(p) = self.peers.get_mut(&peer) {
            p.last_status_request = Some(Instant::now());
        }
        self.spawn_request(
            peer,
            Request::Status(status),
            REQUEST_TIMEOUT,
            move |result| Internal::Status { peer, result },
        );
    }

    async fn on_event(&mut self, ev: NetworkEvent) {
        match ev {
            NetworkEvent::PeerConnected { peer, .. } => {
                self.peers.insert(
                    peer,
                    PeerEntry {
                        status: None,
                        last_status_request: None,
                        headers_not_before: None,
                        lock_forwarded: None,
                    },
                );
                self.sync.add_peer(peer);
                self.request_status(peer).await;
            }
            NetworkEvent::PeerDisconnected { peer } => {
                self.peers.remove(&peer);
                self.sync.remove_peer(&peer);
                self.view.set_peer(peer, None);
                if self.header_sync.is_some_and(|(p, _)| p == peer) {
                    self.header_sync = None;
                }
                self.schedule().await;
            }
            NetworkEvent::Gossip {
                topic,
                source,
                author,
                id,
                data,
            } => match topic {
                Topic::Blocks => self.on_block_announcement(source, id, data).await,
                Topic::Txs => self.on_tx_gossip(source, id, data).await,
                Topic::ChainLocks | Topic::Quorum => {
                    let input = LlmqInput::Gossip {
                        topic,
                        source,
                        id,
                        data,
                    };
                    if let Err(mpsc::error::TrySendError::Full(LlmqInput::Gossip {
                        id,
                        source,
                        ..
                    })) = self.llmq.try_send(input)
                    {
                        // Overloaded: drop without blame.
                        self.net.validate(id, source, Acceptance::Ignore);
                    }
                }
                Topic::Media => match &self.media {
                    // Judged at once; the work happens in the media service.
                    Some(m) => m.on_gossip(source, author, id, &data),
                    None => self.net.validate(id, source, Acceptance::Ignore),
                },
                _ => self.net.validate(id, source, Acceptance::Ignore),
            },
            NetworkEvent::Request {
                peer,
                request,
                responder,
            } => {
                let response = match request {
                    Request::Status(theirs) => {
                        let Some(ours) = self.query(local_status).await else {
                            return;
                        };
                        if theirs.genesis != self.genesis {
                            self.net
                                .report(peer, PeerAction::Fatal, "status from another chain");
                            return;
                        }
                        self.on_peer_status(peer, theirs).await;
                        Response::Status(ours)
                    }
                    Request::Headers { locator, stop } => {
                        let Some(h) = self.query(move |s| headers_after(s, &locator, stop)).await
                        else {
                            return;
                        };
                        Response::Headers(h)
                    }
                    Request::Blocks { hashes } => {
                        let Some(b) = self.query(move |s| blocks_by_hash(s, &hashes)).await else {
                            return;
                        };
                        Response::Blocks(b)
                    }
                    Request::Direct(msg)
                        if msg.kind == crate::bridge::messages::DIRECT_KIND_SWAP =>
                    {
                        // Swap messages go to the bridge, which checks them.
                        let delivered = self
                            .bridge
                            .as_ref()
                            .is_some_and(|b| b.deliver(peer, msg.body));
                        let ack = if delivered {
                            DirectAck::Accepted
                        } else {
                            DirectAck::Rejected
                        };
                        self.net.respond(responder, Response::Direct(ack)).await;
                        return;
                    }
                    Request::Direct(msg) => {
                        let input = LlmqInput::Direct {
                            peer,
                            msg,
                            responder,
                        };
                        if let Err(mpsc::error::TrySendError::Full(LlmqInput::Direct {
                            responder,
                            ..
                        })) = self.llmq.try_send(input)
                        {
                            // The sender retries; no blame.
                            self.net
                                .respond(responder, Response::Direct(DirectAck::Rejected))
                                .await;
                        }
                        return;
                    }
                    Request::Media(body) => {
                        // Without a media service, dropping the responder
                        // tells the requester at once there is no answer.
                        if let Some(m) = &self.media {
                            m.on_request(peer, body, responder);
                        }
                        return;
                    }
                };
                self.net.respond(responder, response).await;
            }
        }
    }

    async fn on_peer_status(&mut self, peer: PeerId, status: Status) {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        entry.status = Some(status.clone());
        let peer_lock = status.best_chainlock.clone();
        self.sync.set_peer_height(peer, status.height);
        self.view.set_peer(
            peer,
            Some(PeerChain {
                tip: status.tip,
                height: status.height,
                chain_work: status.chain_work,
                in_flight: self.sync.heights_in_flight(&peer),
            }),
        );
        self.maybe_sync_headers().await;
        if let Some(cl) = peer_lock {
            self.follow_peer_chainlock(peer, *cl).await;
        }
    }

    /// A peer's best ChainLock above ours. Without its block, fetch the
    /// peer's headers whatever its work: a node cut off by a partition mines
    /// a heavier fork of its own, and sync by work never leaves it (found by
    /// `rusty-cli chaos`). With the block, hand the lock to the quorum
    /// service, which judges it as if gossiped; a valid lock moves the
    /// chain to the locked branch.
    async fn follow_peer_chainlock(&mut self, peer: PeerId, cl: ChainLock) {
        let block = cl.block_hash;
        let Some((our_lock, known)) = self
            .query(move |s| {
                (
                    s.chain().best_chainlock().map(|c| c.height),
                    s.chain().entry(&block).is_some(),
                )
            })
            .await
        else {
            return;
        };
        if our_lock.is_some_and(|h| h >= cl.height) {
            return;
        }
        let now = Instant::now();
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        if known {
            if entry.lock_forwarded != Some(block) {
                entry.lock_forwarded = Some(block);
                debug!(target: "p2p", %peer, height = cl.height, %block,
                       "judging a peer's ChainLock above ours");
                let _ = self.llmq.try_send(LlmqInput::PeerChainLock { peer, cl });
            }
            return;
        }
        if self.header_sync.is_none()
            && !self.sync.is_pending(&block)
            && entry.headers_not_before.is_none_or(|t| t <= now)
        {
            debug!(target: "p2p", %peer, height = cl.height, %block,
                   "fetching the chain of a peer's ChainLock");
            self.request_headers(peer).await;
        }
    }

    /// Starts a `headers` request to the peer with the most work, if it has
    /// more than our chain and nothing is in flight.
    async fn maybe_sync_headers(&mut self) {
        if let Some((_, started)) = self.header_sync {
            if started.elapsed() < REQUEST_TIMEOUT {
                return;
            }
            self.header_sync = None;
        }
        let Some(ours) = self.query(local_status).await else {
            return;
        };
        let now = Instant::now();
        let best = self
            .peers
            .iter()
            .filter(|(_, e)| e.headers_not_before.is_none_or(|t| t <= now))
            .filter_map(|(p, e)| e.status.as_ref().map(|s| (*p, s.clone())))
            // Big-endian bytes compare as the numbers they encode.
            .filter(|(_, s)| s.chain_work > ours.chain_work)
            .filter(|(_, s)| !self.sync.is_pending(&s.tip))
            .max_by(|a, b| a.1.chain_work.cmp(&b.1.chain_work));
        if let Some((peer, _)) = best {
            self.request_headers(peer).await;
        }
    }

    fn pass_over_for_headers(&mut self, peer: PeerId) {
        if let Some(e) = self.peers.get_mut(&peer) {
            e.headers_not_before = Some(Instant::now() + HEADERS_BACKOFF);
        }
    }

    async fn request_headers(&mut self, peer: PeerId) {
        let last = self.sync.last_pending().map(|p| p.hash);
        let Some(mut loc) = self.query(locator).await else {
            return;
        };
        if let Some(last) = last {
            loc.insert(0, last);
            loc.truncate(MAX_LOCATOR);
        }
        self.header_sync = Some((peer, Instant::now()));
        self.spawn_request(
            peer,
            Request::Headers {
                locator: loc,
                stop: Hash256::ZERO,
            },
            REQUEST_TIMEOUT,
            move |result| Internal::Headers { peer, result },
        );
    }

    async fn on_internal(&mut self, msg: Internal) {
        match msg {
            Internal::Status { peer, result } => match result {
                Ok(Response::Status(s)) => {
                    if s.genesis != self.genesis {
                        self.net
                            .report(peer, PeerAction::Fatal, "status from another chain");
                        return;
                    }
                    self.on_peer_status(peer, s).await;
                }
                Ok(_) => self
                    .net
                    .report(peer, PeerAction::LowTolerance, "wrong reply kind"),
                Err(e) => debug!(target: "p2p", %peer, error = %e, "status request failed"),
            },
            Internal::Headers { peer, result } => {
                if self.header_sync.is_some_and(|(p, _)| p == peer) {
                    self.header_sync = None;
                }
                match result {
                    Ok(Response::Headers(h)) => self.on_headers(peer, h).await,
                    Ok(_) => self
                        .net
                        .report(peer, PeerAction::LowTolerance, "wrong reply kind"),
                    Err(RequestError::Timeout) => {
                        self.net
                            .report(peer, PeerAction::MidTolerance, "headers request stalled");
                        self.pass_over_for_headers(peer);
                        self.maybe_sync_headers().await;
                    }
                    Err(e) => debug!(target: "p2p", %peer, error = %e, "headers request failed"),
                }
            }
            Internal::Blocks { peer, id, result } => {
                match result {
                    Ok(Response::Blocks(blocks)) => {
                        let d = self.sync.on_blocks(peer, id, blocks);
                        if d.unsolicited > 0 {
                            self.net
                                .report(peer, PeerAction::LowTolerance, "unsolicited blocks");
                        } else if d.accepted > 0 {
                            self.net.report(peer, PeerAction::Good, "delivered blocks");
                        }
                    }
                    Ok(_) => {
                        self.sync.on_request_failed(peer, id);
                        self.net
                            .report(peer, PeerAction::LowTolerance, "wrong reply kind");
                    }
                    Err(e) => {
                        // A request that stalled was already given back and
                        // penalised by the stall check; do not count it twice.
                        let outstanding = self.sync.on_request_failed(peer, id);
                        if outstanding && e == RequestError::Timeout {
                            self.net.report(
                                peer,
                                PeerAction::MidTolerance,
                                "block request stalled",
                            );
                        }
                    }
                }
                self.connect_ready().await;
                self.schedule().await;
            }
            Internal::Announced {
                peer,
                msg,
                hash,
                result,
            } => {
                self.fetching.remove(&hash);
                let block = match result {
                    Ok(Response::Blocks(mut b)) if b.len() == 1 && b[0].hash() == hash => {
                        b.remove(0)
                    }
                    Ok(Response::Blocks(b)) if b.is_empty() => {
                        self.net.validate(msg, peer, Acceptance::Ignore);
                        return;
                    }
                    Ok(_) => {
                        self.net.validate(msg, peer, Acceptance::Reject);
                        self.net.report(
                            peer,
                            PeerAction::LowTolerance,
                            "reply does not match the announced block",
                        );
                        return;
                    }
                    Err(_) => {
                        self.net.validate(msg, peer, Acceptance::Ignore);
                        return;
                    }
                };
                self.remember_from_network(hash);
                match self.chain.submit_block(block).await.ok().map(submitted) {
                    Some(Submitted::Accepted) => {
                        self.view.note_block(peer, rusty_core::now());
                        self.net.validate(msg, peer, Acceptance::Accept)
                    }
                    Some(Submitted::Known) | None => {
                        self.net.validate(msg, peer, Acceptance::Ignore)
                    }
                    Some(Submitted::Invalid(e)) => {
                        if e.is_peer_fault() {
                            self.net.validate(msg, peer, Acceptance::Reject);
                            warn!(target: "p2p", %peer, %hash, error = %e, "peer announced an invalid block");
                            self.net.report(
                                peer,
                                PeerAction::Fatal,
                                format!("invalid block: {}", e.reject_reason()),
                            );
                        } else {
                            self.net.validate(msg, peer, Acceptance::Ignore);
                            if matches!(e, ValidationError::PrevBlockNotFound(_)) {
                                self.request_headers(peer).await;
                            }
                        }
                    }
                    Some(Submitted::Failed(e)) => {
                        warn!(target: "p2p", %hash, error = %e, "could not process an announced block");
                        self.net.validate(msg, peer, Acceptance::Ignore);
                    }
                }
            }
        }
    }

    /// A `headers` reply: check linkage and proof of work, queue the new
    /// ones for download, and ask for more if the reply was full.
    async fn on_headers(&mut self, peer: PeerId, headers: Vec<BlockHeader>) {
        if headers.is_empty() {
            // It claimed more work but has nothing after our locator.
            self.pass_over_for_headers(peer);
            return;
        }
        let full = headers.len() == MAX_HEADERS_PER_REPLY;
        let params = self.chain.params();
        let mut hashed: Vec<(Hash256, BlockHeader)> = Vec::with_capacity(headers.len());
        for h in headers {
            if let Err(e) = validation::check_proof_of_work(&h, params) {
                self.net.report(
                    peer,
                    PeerAction::Fatal,
                    format!("header with bad proof of work: {}", e.reject_reason()),
                );
                return;
            }
            if hashed.last().is_some_and(|(prev, _)| h.prev_hash != *prev) {
                self.net
                    .report(peer, PeerAction::LowTolerance, "headers do not link");
                return;
            }
            hashed.push((h.hash(), h));
        }
        // Which are known, and is the first one's parent in the index?
        let query: Vec<Hash256> = hashed.iter().map(|(h, _)| *h).collect();
        let first_parent = hashed[0].1.prev_hash;
        let Some((known, parent)) = self
            .query(move |s| {
                let known: Vec<Option<BlockStatus>> = query
                    .iter()
                    .map(|h| s.chain().entry(h).map(|e| e.status))
                    .collect();
                let parent = s.chain().entry(&first_parent).map(|e| (e.height, e.status));
                (known, parent)
            })
            .await
        else {
            return;
        };
        if known.contains(&Some(BlockStatus::Invalid))
            || parent.is_some_and(|(_, st)| st == BlockStatus::Invalid)
        {
            self.net
                .report(peer, PeerAction::Fatal, "headers of an invalid chain");
            return;
        }
        // Skip the prefix the node already has as blocks.
        let skip = known.iter().take_while(|k| k.is_some()).count();
        let last_hash = hashed.last().map(|(h, _)| *h);
        let added = if skip == hashed.len() {
            0
        } else if skip > 0 {
            let parent_height = parent.map(|(h, _)| h.saturating_add(skip as u64));
            self.sync.add_headers(hashed.split_off(skip), parent_height)
        } else {
            match parent {
                Some((h, _)) => self.sync.add_headers(hashed, Some(h)),
                None => {
                    let n = self.sync.add_headers(hashed, None);
                    if n == 0 && !self.sync.is_pending(&first_parent) {
                        self.net
                            .report(peer, PeerAction::HighTolerance, "headers do not connect");
                    }
                    n
                }
            }
        };
        if let Some((h, best)) = self.sync.last_pending().map(|p| (p.height, p.hash)) {
            self.view.set_header_height(h);
            // The sender has every block up to its last header.
            if Some(best) == last_hash {
                self.sync.set_peer_height(peer, h);
                if let Some(mut c) = self.view.peer(&peer) {
                    if c.height < h {
                        c.height = h;
                        c.tip = best;
                        self.view.set_peer(peer, Some(c));
                    }
                }
            }
        }
        debug!(target: "p2p", %peer, added, pending = self.sync.pending_len(), "headers received");
        if full && last_hash.is_some() {
            self.request_headers(peer).await;
        }
        self.schedule().await;
    }

    /// Sends the block requests the scheduler hands out.
    async fn schedule(&mut self) {
        for a in self.sync.assign(Instant::now()) {
            let (peer, id) = (a.peer, a.id);
            self.spawn_request(
                peer,
                Request::Blocks { hashes: a.hashes },
                STALL_TIMEOUT + Duration::from_secs(5),
                move |result| Internal::Blocks { peer, id, result },
            );
        }
    }

    /// Connects downloaded blocks that are next in chain order.
    async fn connect_ready(&mut self) {
        loop {
            let ready = self.sync.take_ready(CONNECT_BATCH);
            if ready.is_empty() {
                return;
            }
            for (hash, _, _) in &ready {
                self.remember_from_network(*hash);
            }
            let (origins, blocks): (Vec<_>, Vec<_>) = ready
                .into_iter()
                .map(|(hash, block, peer)| ((hash, peer), block))
                .unzip();
            // One command for the batch; the chain stops at the first
            // block that fails, and the rest stay unanswered.
            let Ok(results) = self.chain.submit_blocks(blocks).await else {
                return;
            };
            let results = origins
                .into_iter()
                .zip(results)
                .map(|((hash, peer), r)| (hash, peer, submitted(r)));
            for (hash, peer, r) in results {
                match r {
                    Submitted::Accepted => self.view.note_block(peer, rusty_core::now()),
                    Submitted::Known => {}
                    Submitted::Invalid(e) => {
                        warn!(target: "p2p", %peer, %hash, error = %e, "downloaded block is invalid");
                        self.sync.drop_from(&hash);
                        if e.is_peer_fault() {
                            self.net.report(
                                peer,
                                PeerAction::Fatal,
                                format!("invalid block: {}", e.reject_reason()),
                            );
                        } else {
                            // Our view changed under the sync (e.g. a
                            // reorg); start over from the chain.
                            self.sync.clear_pending();
                        }
                        return;
                    }
                    Submitted::Failed(e) => {
                        warn!(target: "p2p", %hash, error = %e, "could not connect a downloaded block");
                        self.sync.clear_pending();
                        return;
                    }
                }
            }
        }
    }

    async fn on_block_announcement(&mut self, source: PeerId, id: MessageId, data: Vec<u8>) {
        debug!(target: "p2p", %source, "block announcement");
        let header: BlockHeader = match decode_exact(&data) {
            Ok(h) => h,
            Err(_) => {
                self.net.validate(id, source, Acceptance::Reject);
                self.net
                    .report(source, PeerAction::Fatal, "malformed block announcement");
                return;
            }
        };
        if let Err(e) = validation::check_proof_of_work(&header, self.chain.params()) {
            self.net.validate(id, source, Acceptance::Reject);
            self.net.report(
                source,
                PeerAction::Fatal,
                format!("announced header: {}", e.reject_reason()),
            );
            return;
        }
        let hash = header.hash();
        let prev = header.prev_hash;
        let Some((known, parent_known)) = self
            .query(move |s| {
                (
                    s.chain().entry(&hash).map(|e| e.status),
                    s.chain().entry(&prev).is_some(),
                )
            })
            .await
        else {
            return;
        };
        match known {
            Some(BlockStatus::Invalid) => {
                self.net.validate(id, source, Acceptance::Reject);
                self.net
                    .report(source, PeerAction::Fatal, "announced a known-invalid block");
                return;
            }
            Some(BlockStatus::Valid) => {
                self.net.validate(id, source, Acceptance::Ignore);
                return;
            }
            None => {}
        }
        if self.fetching.contains(&hash) || self.sync.is_pending(&hash) {
            self.net.validate(id, source, Acceptance::Ignore);
            return;
        }
        if !parent_known {
            // Behind (or a gap): fetch the headers in between rather than
            // dropping the block.
            self.net.validate(id, source, Acceptance::Ignore);
            if self.header_sync.is_none() {
                self.request_headers(source).await;
            }
            return;
        }
        self.fetching.insert(hash);
        self.spawn_request(
            source,
            Request::Blocks { hashes: vec![hash] },
            ANNOUNCED_BLOCK_TIMEOUT,
            move |result| Internal::Announced {
                peer: source,
                msg: id,
                hash,
                result,
            },
        );
    }

    async fn on_tx_gossip(&mut self, source: PeerId, id: MessageId, data: Vec<u8>) {
        let tx: Transaction = match decode_exact(&data) {
            Ok(t) => t,
            Err(_) => {
                self.net.validate(id, source, Acceptance::Reject);
                self.net
                    .report(source, PeerAction::Fatal, "malformed transaction");
                return;
            }
        };
        self.recent_txs.insert(tx.txid());
        let r = self
            .chain
            .accept_transaction(tx)
            .await
            .ok()
            .map(|r| match r {
                Ok(_) => Ok(()),
                Err(TxRejection::Invalid(e)) if e.is_peer_fault() => Err(Some(e)),
                Err(_) => Err(None),
            });
        match r {
            Some(Ok(())) => {
                self.view.note_transaction(source, rusty_core::now());
                self.net.validate(id, source, Acceptance::Accept)
            }
            Some(Err(Some(e))) => {
                self.net.validate(id, source, Acceptance::Reject);
                self.net.report(
                    source,
                    PeerAction::Fatal,
                    format!("invalid transaction: {}", e.reject_reason()),
                );
            }
            Some(Err(None)) | None => self.net.validate(id, source, Acceptance::Ignore),
        }
    }

    fn remember_from_network(&mut self, hash: Hash256) {
        self.recent_blocks.insert(hash);
    }

    /// Announces the deferred tip, if any, and starts the spacing anew.
    async fn announce_deferred_tip(&mut self) {
        if let Some(hash) = self.deferred_tip.take() {
            if self.on_new_tip(hash).await {
                self.last_announced = Some(Instant::now());
            }
        }
    }

    /// Announces a new tip the node made itself (mined, or submitted over
    /// RPC); tips that came from the network are forwarded by gossip.
    /// True if it was published.
    async fn on_new_tip(&mut self, hash: Hash256) -> bool {
        if self.recent_blocks.contains(&hash) {
            return false;
        }
        let Some(Some(header)) = self
            .query(move |s| s.chain().entry(&hash).map(|e| e.header.clone()))
            .await
        else {
            return false;
        };
        match self.net.publish(Topic::Blocks, header.encode()).await {
            Ok(_) => true,
            Err(e) => {
                debug!(target: "p2p", %hash, error = %e, "could not announce block");
                false
            }
        }
    }

    async fn on_tick(&mut self) {
        let now = Instant::now();
        for peer in self.sync.check_stalls(now) {
            info!(target: "p2p", %peer, "block download stalled; reassigning");
            self.net
                .report(peer, PeerAction::MidTolerance, "block download stalled");
        }
        let due: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, e)| {
                e.last_status_request
                    .is_none_or(|t| now.duration_since(t) >= STATUS_EVERY)
            })
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            self.request_status(p).await;
        }
        for (p, _) in self.peers.iter() {
            if let Some(mut c) = self.view.peer(p) {
                c.in_flight = self.sync.heights_in_flight(p);
                self.view.set_peer(*p, Some(c));
            }
        }
        self.connect_ready().await;
        self.maybe_sync_headers().await;
        self.schedule().await;
        self.rebroadcast_own_txs(now).await;
    }

    /// Publishes again our own transactions still in the mempool a while
    /// after their last publish (see [`super::rebroadcast`]).
    async fn rebroadcast_own_txs(&mut self, now: Instant) {
        let due = self.own_txs.due(now);
        if due.is_empty() {
            return;
        }
        let ids = due.clone();
        // Each waiting transaction with its unconfirmed ancestors, parents
        // first: a transaction that came back from a block orphaned by a
        // reorg may spend the output of one we got by gossip and never
        // publish ourselves; a peer that never saw that parent (it was on
        // the other side of a partition) would refuse the child.
        let Some(waiting) = self
            .query(move |s| {
                let pool = s.mempool();
                ids.iter()
                    .map(|id| {
                        let entry = pool.get(id)?;
                        let mut ancestors: Vec<(usize, Hash256)> = pool
                            .ancestors(id)
                            .into_iter()
                            .map(|a| (pool.ancestors(&a).len(), a))
                            .collect();
                        // A parent has fewer ancestors than its child.
                        ancestors.sort();
                        let mut txs: Vec<Transaction> = ancestors
                            .iter()
                            .filter_map(|(_, a)| pool.get(a).map(|e| e.tx.clone()))
                            .collect();
                        txs.push(entry.tx.clone());
                        Some(txs)
                    })
                    .collect::<Vec<_>>()
            })
            .await
        else {
            return;
        };
        for (txid, txs) in due.into_iter().zip(waiting) {
            match txs {
                Some(txs) => {
                    debug!(target: "p2p", %txid, ancestors = txs.len() - 1, "publishing our unconfirmed transaction again");
                    for tx in txs {
                        let _ = self.net.publish(Topic::Txs, tx.encode()).await;
                    }
                    self.own_txs.published(txid, now);
                }
                None => self.own_txs.forget(&txid),
            }
        }
    }
}
