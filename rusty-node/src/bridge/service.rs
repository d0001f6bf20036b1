//! The bridge service: one task owns every swap of this node. It takes
//! commands from RPC and swap messages from peers (the P2P `direct`
//! protocol, kind [`DIRECT_KIND_SWAP`]), steps each open swap every
//! `step_interval` against the chains' adapters, persists each record
//! (`<datadir>/bridge/<id>.json`, written to a temporary file and renamed)
//! before anything is broadcast, and sends the messages a step produces.
//! Chain calls block, so steps run on the blocking pool, one swap at a
//! time, the participants' urgent ones (secret seen, redeeming) first.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use rusty_crypto::{PublicKey, SecretKey};
use rusty_network::{DirectAck, DirectMessage, NetworkHandle, PeerId, Request, Response};
use rusty_shared_types::{decode_exact, Encode, Hash256};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::{
    adapter::ChainAdapter,
    messages::{Asset, HashAlg, SwapBody, SwapMessage, DIRECT_KIND_SWAP},
    networks::{asset_text, t2_blocks},
    swap::{Role, State, Swap},
};

/// How long an offer may wait for an accept, seconds.
const OFFER_TTL_SECS: u64 = 600;

/// What the bridge service needs.
pub struct BridgeConfig {
    /// Where swap records live (`<datadir>/bridge`).
    pub dir: PathBuf,
    /// Signs this node's swap messages.
    pub key: SecretKey,
    /// One adapter per network this node can swap on, its own included.
    pub chains: HashMap<String, Arc<dyn ChainAdapter>>,
    pub step_interval: Duration,
    /// Accept every offer whose two networks this node has adapters for.
    pub auto_accept: bool,
}

impl std::fmt::Debug for BridgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeConfig")
            .field("dir", &self.dir)
            .field("chains", &self.chains.keys().collect::<Vec<_>>())
            .field("step_interval", &self.step_interval)
            .finish_non_exhaustive()
    }
}

/// Why a bridge command failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BridgeError {
    #[error("no adapter for network `{0}`: start the node with --bridge-chain {0}=URL")]
    NoChain(String),
    #[error("no swap or offer {0}")]
    Unknown(Hash256),
    #[error("{0}")]
    Chain(String),
    #[error("the refund is possible from height {at} on {network} (the tip is at {tip})")]
    RefundNotYet { network: String, at: u64, tip: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error("the bridge service stopped")]
    Stopped,
}

/// A swap as RPC shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapInfo {
    pub id: String,
    pub role: Role,
    pub state: State,
    /// The design's status: initiated, confirming, processing, completed,
    /// failed.
    pub status: String,
    pub peer: String,
    pub give: String,
    pub want: String,
    pub hash_alg: String,
    pub secret_hash: String,
    /// Our HTLC's funding transaction.
    pub funding_txid: Option<String>,
    /// The other side's HTLC.
    pub peer_htlc_txid: Option<String>,
    pub redeem_txid: Option<String>,
    pub refund_txid: Option<String>,
    /// Height on `own_network` from which our refund is accepted.
    pub refund_available_at: u64,
    pub own_network: String,
    /// Height on `peer_network` our redeem must be mined before.
    pub must_redeem_before: u64,
    pub peer_network: String,
    /// `[state, unix ms]` of every state entered.
    pub history: Vec<(State, u64)>,
    pub last_error: Option<String>,
}

/// An offer received and not taken (yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferInfo {
    pub id: String,
    pub peer: String,
    /// What the offerer gives (and the taker receives).
    pub give: String,
    pub want: String,
    pub t1: u64,
    pub t2: u64,
    pub expires: u64,
}

/// A swap record on disk: the swap and who it is with.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    swap: Swap,
    peer: String,
    /// The other side's message key, once known (hex).
    peer_key: Option<String>,
}

impl Record {
    fn info(&self) -> SwapInfo {
        let s = &self.swap;
        SwapInfo {
            id: s.id.to_string(),
            role: s.role,
            state: s.state,
            status: s.state.status().to_string(),
            peer: self.peer.clone(),
            give: asset_text(&s.give_network, s.give_amount),
            want: asset_text(&s.want_network, s.want_amount),
            hash_alg: s.hash_alg.clone(),
            secret_hash: hex::encode(s.secret_hash),
            funding_txid: s.own.as_ref().map(|f| f.htlc.txid.clone()),
            peer_htlc_txid: s.peer.as_ref().map(|h| h.txid.clone()),
            redeem_txid: s.redeem_txid.clone(),
            refund_txid: s.refund_txid.clone(),
            refund_available_at: s.own_lock(),
            own_network: s.own_network().to_string(),
            must_redeem_before: s.must_redeem_before(),
            peer_network: s.peer_network().to_string(),
            history: s.history.clone(),
            last_error: s.last_error.clone(),
        }
    }

    fn peer_key(&self) -> Option<PublicKey> {
        let bytes = hex::decode(self.peer_key.as_deref()?).ok()?;
        Some(PublicKey(bytes.try_into().ok()?))
    }
}

type Reply<T> = oneshot::Sender<Result<T, BridgeError>>;

enum Command {
    Initiate {
        peer: PeerId,
        give: Asset,
        want: Asset,
        reply: Reply<SwapInfo>,
    },
    Accept {
        id: Hash256,
        reply: Reply<SwapInfo>,
    },
    Status {
        id: Hash256,
        reply: Reply<SwapInfo>,
    },
    List {
        reply: Reply<Vec<SwapInfo>>,
    },
    Offers {
        reply: Reply<Vec<OfferInfo>>,
    },
    Refund {
        id: Hash256,
        reply: Reply<SwapInfo>,
    },
    Message {
        peer: PeerId,
        body: Vec<u8>,
    },
}

/// The bridge service's handle: cloneable, typed methods, a bounded queue.
#[derive(Clone, Debug)]
pub struct BridgeHandle {
    tx: mpsc::Sender<Command>,
}

/// The task side of a [`BridgeHandle`], started by [`BridgeService::run`].
#[derive(Debug)]
pub struct BridgeService {
    rx: mpsc::Receiver<Command>,
}

/// A handle and the service it talks to, not started yet (the node starts
/// it once its RPC, which its own chain adapter calls, is up).
pub fn channel() -> (BridgeHandle, BridgeService) {
    let (tx, rx) = mpsc::channel(256);
    (BridgeHandle { tx }, BridgeService { rx })
}

impl BridgeHandle {
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, BridgeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| BridgeError::Stopped)?;
        rx.await.map_err(|_| BridgeError::Stopped)?
    }

    /// Offers `give` for `want` to `peer`; this node is the initiator.
    pub async fn initiate(
        &self,
        peer: PeerId,
        give: Asset,
        want: Asset,
    ) -> Result<SwapInfo, BridgeError> {
        self.ask(|reply| Command::Initiate {
            peer,
            give,
            want,
            reply,
        })
        .await
    }

    /// Takes the received offer `id`; this node is the participant.
    pub async fn accept(&self, id: Hash256) -> Result<SwapInfo, BridgeError> {
        self.ask(|reply| Command::Accept { id, reply }).await
    }

    pub async fn status(&self, id: Hash256) -> Result<SwapInfo, BridgeError> {
        self.ask(|reply| Command::Status { id, reply }).await
    }

    pub async fn list(&self) -> Result<Vec<SwapInfo>, BridgeError> {
        self.ask(|reply| Command::List { reply }).await
    }

    pub async fn offers(&self) -> Result<Vec<OfferInfo>, BridgeError> {
        self.ask(|reply| Command::Offers { reply }).await
    }

    /// Refunds our HTLC now; refused before its lock.
    pub async fn refund(&self, id: Hash256) -> Result<SwapInfo, BridgeError> {
        self.ask(|reply| Command::Refund { id, reply }).await
    }

    /// A swap message from `peer` (from the P2P service); false if the
    /// queue is full (the sender retries).
    pub fn deliver(&self, peer: PeerId, body: Vec<u8>) -> bool {
        self.tx.try_send(Command::Message { peer, body }).is_ok()
    }
}

/// UNIX milliseconds (state times; offer expiry is checked in seconds).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

struct Task {
    config: BridgeConfig,
    net: NetworkHandle,
    swaps: HashMap<Hash256, Record>,
    /// Offers received: (peer, sender key, the offer).
    offers: HashMap<Hash256, (PeerId, PublicKey, SwapBody)>,
    /// Offers to take at the next step (`auto_accept`).
    to_accept: Vec<Hash256>,
}

impl BridgeService {
    /// Runs the service until every handle is dropped or `stop` fires.
    pub async fn run(
        self,
        config: BridgeConfig,
        net: NetworkHandle,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let mut rx = self.rx;
        let swaps = match load(&config.dir) {
            Ok(s) => s,
            Err(e) => {
                warn!(target: "bridge", dir = %config.dir.display(), error = %e, "cannot read the swap records; the bridge is off");
                stop.cancelled().await;
                return;
            }
        };
        if !swaps.is_empty() {
            info!(target: "bridge", swaps = swaps.len(), "resuming swaps");
        }
        let mut task = Task {
            config,
            net,
            swaps,
            offers: HashMap::new(),
            to_accept: Vec::new(),
        };
        let mut tick = tokio::time::interval(task.config.step_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                cmd = rx.recv() => match cmd {
                    // A message that moved a swap is acted on at once,
                    // not at the next tick.
                    Some(cmd) => if task.on_command(cmd).await {
                        task.step_all().await;
                    },
                    None => return,
                },
                _ = tick.tick() => task.step_all().await,
            }
        }
    }
}

/// Reads every record in `dir` (created if missing).
fn load(dir: &Path) -> std::io::Result<HashMap<Hash256, Record>> {
    std::fs::create_dir_all(dir)?;
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        match serde_json::from_str::<Record>(&text) {
            Ok(r) => {
                out.insert(r.swap.id, r);
            }
            Err(e) => {
                warn!(target: "bridge", path = %path.display(), error = %e, "skipping an unreadable swap record")
            }
        }
    }
    Ok(out)
}

/// Writes `record` durably: a temporary file, synced, renamed over the old.
fn save(dir: &Path, record: &Record) -> Result<(), String> {
    use std::io::Write as _;
    let path = dir.join(format!("{}.json", record.swap.id));
    let tmp = dir.join(format!("{}.json.tmp", record.swap.id));
    let text = serde_json::to_vec_pretty(record).map_err(|e| e.to_string())?;
    let mut f = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
    f.write_all(&text).map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
}

/// How urgent a swap's next step is: the participant's redeem first.
fn urgency(s: &Swap) -> u8 {
    match (s.role, s.state) {
        (Role::Participant, State::SecretSeen | State::Redeeming | State::Funded) => 0,
        (_, State::Redeeming | State::Refunding) => 1,
        _ => 2,
    }
}

impl Task {
    fn chain(&self, network: &str) -> Result<Arc<dyn ChainAdapter>, BridgeError> {
        self.config
            .chains
            .get(network)
            .cloned()
            .ok_or_else(|| BridgeError::NoChain(network.to_string()))
    }

    /// Runs `f` with the adapters on the blocking pool.
    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, BridgeError> + Send + 'static,
    ) -> Result<T, BridgeError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|_| BridgeError::Stopped)?
    }

    fn send(&self, peer: PeerId, body: SwapBody) {
        let msg = SwapMessage::sign(body, &self.config.key);
        let net = self.net.clone();
        tokio::spawn(async move {
            let req = Request::Direct(DirectMessage {
                kind: DIRECT_KIND_SWAP,
                body: msg.encode(),
            });
            let answer =
                tokio::time::timeout(Duration::from_secs(10), net.request(peer, req)).await;
            if !matches!(
                answer,
                Ok(Ok(Response::Direct(
                    DirectAck::Accepted | DirectAck::Duplicate
                )))
            ) {
                // A hint lost: the swap resends while it waits for it.
                tracing::debug!(target: "bridge", %peer, "swap message not delivered");
            }
        });
    }

    fn persist(&self, record: &Record) {
        if let Err(e) = save(&self.config.dir, record) {
            warn!(target: "bridge", swap = %record.swap.id, error = %e, "cannot save a swap record");
        }
    }

    /// Handles `cmd`; true if a swap message changed something to act on.
    async fn on_command(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Initiate {
                peer,
                give,
                want,
                reply,
            } => {
                let _ = reply.send(self.initiate(peer, give, want).await);
            }
            Command::Accept { id, reply } => {
                let _ = reply.send(self.accept(id).await);
            }
            Command::Status { id, reply } => {
                let r = self.swaps.get(&id).map(Record::info);
                let _ = reply.send(r.ok_or(BridgeError::Unknown(id)));
            }
            Command::List { reply } => {
                let mut all: Vec<SwapInfo> = self.swaps.values().map(Record::info).collect();
                all.sort_by_key(|i| i.history.first().map_or(0, |h| h.1));
                let _ = reply.send(Ok(all));
            }
            Command::Offers { reply } => {
                let offers = self
                    .offers
                    .iter()
                    .filter_map(|(id, (peer, _, body))| match body {
                        SwapBody::Offer {
                            give,
                            want,
                            t1,
                            t2,
                            offer_expiry,
                            ..
                        } => Some(OfferInfo {
                            id: id.to_string(),
                            peer: peer.to_string(),
                            give: asset_text(&give.network, give.amount),
                            want: asset_text(&want.network, want.amount),
                            t1: *t1,
                            t2: *t2,
                            expires: *offer_expiry,
                        }),
                        _ => None,
                    })
                    .collect();
                let _ = reply.send(Ok(offers));
            }
            Command::Refund { id, reply } => {
                let _ = reply.send(self.refund(id).await);
            }
            Command::Message { peer, body } => return self.on_message(peer, &body),
        }
        false
    }

    async fn initiate(
        &mut self,
        peer: PeerId,
        give: Asset,
        want: Asset,
    ) -> Result<SwapInfo, BridgeError> {
        if give.network == want.network {
            return Err(BridgeError::Invalid(
                "give and want are on one network".into(),
            ));
        }
        if give.amount == 0 || want.amount == 0 {
            return Err(BridgeError::Invalid("amounts must be positive".into()));
        }
        let (g, w) = (self.chain(&give.network)?, self.chain(&want.network)?);
        let (t2_len, t1_len) = (t2_blocks(&want.network), 2 * t2_blocks(&give.network));
        let (give_tip, want_tip, redeem) = Self::blocking(move || {
            let err = |e: super::adapter::AdapterError| BridgeError::Chain(e.to_string());
            Ok((
                g.tip_height().map_err(err)?,
                w.tip_height().map_err(err)?,
                w.new_address().map_err(err)?,
            ))
        })
        .await?;
        let secret: [u8; 32] = rand::random();
        let now = now_ms();
        let swap = Swap::initiate(
            give,
            want,
            HashAlg::Sha256,
            secret,
            (give_tip + t1_len, want_tip + t2_len),
            redeem,
            now / 1000 + OFFER_TTL_SECS,
            now,
        );
        let record = Record {
            swap,
            peer: peer.to_string(),
            peer_key: None,
        };
        // The secret is on disk before the offer leaves.
        save(&self.config.dir, &record).map_err(BridgeError::Chain)?;
        self.send(peer, record.swap.offer_body());
        info!(target: "bridge", swap = %record.swap.id, %peer, "offer sent");
        let info = record.info();
        self.swaps.insert(record.swap.id, record);
        Ok(info)
    }

    async fn accept(&mut self, id: Hash256) -> Result<SwapInfo, BridgeError> {
        let (peer, key, offer) = self
            .offers
            .get(&id)
            .cloned()
            .ok_or(BridgeError::Unknown(id))?;
        let SwapBody::Offer { give, .. } = &offer else {
            return Err(BridgeError::Unknown(id));
        };
        let g = self.chain(&give.network)?;
        if let SwapBody::Offer { want, .. } = &offer {
            self.chain(&want.network)?;
        }
        let redeem = Self::blocking(move || {
            g.new_address()
                .map_err(|e| BridgeError::Chain(e.to_string()))
        })
        .await?;
        let (swap, accept) = Swap::accept(&offer, redeem, now_ms())
            .map_err(|e| BridgeError::Invalid(e.to_string()))?;
        let record = Record {
            swap,
            peer: peer.to_string(),
            peer_key: Some(hex::encode(key.as_bytes())),
        };
        save(&self.config.dir, &record).map_err(BridgeError::Chain)?;
        self.offers.remove(&id);
        self.send(peer, accept);
        info!(target: "bridge", swap = %id, %peer, "offer accepted");
        let info = record.info();
        self.swaps.insert(id, record);
        Ok(info)
    }

    async fn refund(&mut self, id: Hash256) -> Result<SwapInfo, BridgeError> {
        let record = self.swaps.get(&id).ok_or(BridgeError::Unknown(id))?;
        let swap = record.swap.clone();
        let Some(own) = swap.own.clone() else {
            return Err(BridgeError::Invalid(
                "nothing of ours is locked in this swap".into(),
            ));
        };
        let chain = self.chain(swap.own_network())?;
        let (network, at) = (swap.own_network().to_string(), swap.own_lock());
        let txid = Self::blocking(move || {
            let tip = chain
                .tip_height()
                .map_err(|e| BridgeError::Chain(e.to_string()))?;
            if tip < at {
                return Err(BridgeError::RefundNotYet { network, at, tip });
            }
            chain
                .refund(&own.htlc)
                .map_err(|e| BridgeError::Chain(e.to_string()))
        })
        .await?;
        let record = self.swaps.get_mut(&id).ok_or(BridgeError::Unknown(id))?;
        record.swap.refund_txid = Some(txid);
        Ok(record.info())
    }

    /// Takes a swap message; true if a swap changed or an offer is to be
    /// accepted.
    fn on_message(&mut self, peer: PeerId, body: &[u8]) -> bool {
        let Ok(msg) = decode_exact::<SwapMessage>(body) else {
            warn!(target: "bridge", %peer, "malformed swap message");
            self.net.report(
                peer,
                rusty_network::PeerAction::Fatal,
                "malformed swap message",
            );
            return false;
        };
        if !msg.verify() {
            warn!(target: "bridge", %peer, "swap message with a bad signature");
            self.net.report(
                peer,
                rusty_network::PeerAction::LowTolerance,
                "swap message with a bad signature",
            );
            return false;
        }
        let id = msg.body.swap_id();
        if let SwapBody::Offer { give, want, .. } = &msg.body {
            if !self.swaps.contains_key(&id) && !self.offers.contains_key(&id) {
                let carries = |n: &str| self.config.chains.contains_key(n);
                let take =
                    self.config.auto_accept && carries(&give.network) && carries(&want.network);
                if take {
                    self.to_accept.push(id);
                }
                self.offers.insert(id, (peer, msg.sender, msg.body));
                return take;
            }
            return false;
        }
        let dir = self.config.dir.clone();
        let Some(record) = self.swaps.get_mut(&id) else {
            return false;
        };
        if record.peer != peer.to_string() {
            warn!(target: "bridge", swap = %id, %peer, "swap message from a peer not in the swap");
            return false;
        }
        // The first message of the other side binds its key; later ones
        // must carry it.
        match record.peer_key() {
            Some(k) if k != msg.sender => {
                warn!(target: "bridge", swap = %id, %peer, "swap message from another key");
                return false;
            }
            Some(_) => {}
            None => record.peer_key = Some(hex::encode(msg.sender.as_bytes())),
        }
        match record.swap.on_message(&msg.body, now_ms()) {
            Ok(true) => {
                if let Err(e) = save(&dir, record) {
                    warn!(target: "bridge", swap = %id, error = %e, "cannot save a swap record");
                }
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::debug!(target: "bridge", swap = %id, error = %e, "swap message ignored");
                false
            }
        }
    }

    async fn step_all(&mut self) {
        for id in std::mem::take(&mut self.to_accept) {
            match self.accept(id).await {
                Ok(_) => {}
                Err(e) => {
                    warn!(target: "bridge", swap = %id, error = %e, "could not accept an offer")
                }
            }
        }
        let mut open: Vec<(u8, Hash256)> = self
            .swaps
            .values()
            .filter(|r| !r.swap.state.is_terminal())
            .map(|r| (urgency(&r.swap), r.swap.id))
            .collect();
        open.sort();
        for (_, id) in open {
            let Some(record) = self.swaps.get(&id).cloned() else {
                continue;
            };
            let (Ok(own), Ok(other)) = (
                self.chain(record.swap.own_network()),
                self.chain(record.swap.peer_network()),
            ) else {
                continue;
            };
            let dir = self.config.dir.clone();
            let stepped = tokio::task::spawn_blocking(move || {
                let mut record = record;
                let before = record.swap.state;
                let peer = record.peer.clone();
                let peer_key = record.peer_key.clone();
                let mut swap = record.swap.clone();
                let mut persist = |s: &Swap| {
                    save(
                        &dir,
                        &Record {
                            swap: s.clone(),
                            peer: peer.clone(),
                            peer_key: peer_key.clone(),
                        },
                    )
                };
                let out = swap.step(own.as_ref(), other.as_ref(), now_ms(), &mut persist);
                let changed = swap != record.swap;
                record.swap = swap;
                (record, before, changed, out)
            })
            .await;
            let Ok((record, before, changed, out)) = stepped else {
                continue;
            };
            if record.swap.state != before {
                info!(target: "bridge", swap = %id, from = ?before, to = ?record.swap.state, "swap moved");
            }
            // Most ticks change nothing (waiting for a block): no write then.
            if changed {
                self.persist(&record);
            }
            if let Ok(msgs) = out {
                if let Ok(peer) = record.peer.parse::<PeerId>() {
                    for m in msgs {
                        self.send(peer, m);
                    }
                }
            }
            self.swaps.insert(id, record);
        }
    }
}
