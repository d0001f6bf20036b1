//! Quorums on the network: DKG sessions, ChainLock signing and recovery.
//!
//! - [`dkg`]: one member's DKG state machine (pure);
//! - [`messages`]: DKG messages, signature shares and ChainLock gossip.
//!
//! [`LlmqService`] is one tokio task on every node with P2P. On every node
//! it validates `chainlocks` gossip (signature shares are checked against
//! the member's public key share, ChainLocks against the quorum key, and
//! recovered from `threshold` shares) and `quorum` gossip (final
//! commitments go into the miner's pool). On a masternode it also runs its
//! DKG sessions — messages go member to member over the `direct`
//! protocol, re-sent until acknowledged, and every message is appended to
//! `<datadir>/dkg/<quorum>.log` so a restart resumes the session instead of
//! failing it — and signs a share of every new tip for the quorums it is in.

pub mod dkg;
pub mod messages;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rand::RngCore;
use rusty_crypto::{bls, keystore::write_private};
use rusty_network::{
    peers::peer_id_of, Acceptance, DirectAck, DirectMessage, MessageId, Multiaddr, NetworkHandle,
    PeerAction, PeerId, Request, Responder, Response, Topic,
};
use rusty_shared_types::{
    decode_exact, masternode::quorum_sign_hash, ChainLock, Encode, Hash256, QuorumCommitment,
};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info, warn};

use self::{
    dkg::{DkgError, DkgSession, Phase},
    messages::{ChainLockGossip, DkgMessage, SigShare, DIRECT_KIND_DKG},
};
use crate::service::ChainHandle;
use rusty_core::{masternode::MinedQuorum, state::NodeState, validation::ValidationError};

/// Re-send unacknowledged DKG messages this often.
const RESEND_EVERY: Duration = Duration::from_millis(1000);
/// DKG messages kept for sessions that have not started here yet…
const MAX_EARLY_MESSAGES: usize = 1024;
/// …and per sender (one per phase of two overlapping DKGs).
const MAX_EARLY_PER_SENDER: usize = 8;
/// ChainLocks held for heights above the tip: at most this far ahead…
const MAX_CHAINLOCK_AHEAD: u64 = 8;
/// …and at most this many.
const MAX_PENDING_CHAINLOCKS: usize = 32;
/// Signature-share sets kept (by height), oldest dropped first.
const MAX_SHARE_SETS: usize = 64;

/// What the p2p service hands to the quorum service.
#[derive(Debug)]
pub enum LlmqInput {
    Gossip {
        topic: Topic,
        source: PeerId,
        id: MessageId,
        data: Vec<u8>,
    },
    Direct {
        peer: PeerId,
        msg: DirectMessage,
        responder: Responder,
    },
    /// The best ChainLock in a peer's status, above ours, of a block we
    /// hold: judged as if gossiped.
    PeerChainLock { peer: PeerId, cl: ChainLock },
}

/// A masternode's operator identity.
#[derive(Clone)]
pub struct Operator {
    pub key: bls::SecretKey,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("public_key", &hex::encode(self.key.public_key().to_bytes()))
            .finish()
    }
}

/// One DKG session as the RPC shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SessionInfo {
    pub quorum_hash: Hash256,
    pub quorum_height: u64,
    pub phase: &'static str,
    pub member_index: usize,
    pub members: usize,
    pub contributions: usize,
    pub complaints: usize,
    pub justifications: usize,
    pub premature_commitments: usize,
    pub valid_members: Option<usize>,
    pub commitment_ready: bool,
}

/// What the quorum service shares with the RPC.
#[derive(Debug, Default)]
pub struct LlmqView {
    pub sessions: Mutex<Vec<SessionInfo>>,
    /// Our masternode, once the list knows our operator key.
    pub pro_tx_hash: Mutex<Option<Hash256>>,
    pub operator_public_key: Option<[u8; 48]>,
    /// Quorums we hold a key share of.
    pub quorum_shares: Mutex<Vec<Hash256>>,
}

/// A verified ChainLock, as announced to subscribers (benchmarks, RPC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLockEvent {
    pub height: u64,
    pub block_hash: Hash256,
    pub at: Instant,
}

/// Handle to the quorum service.
#[derive(Debug, Clone)]
pub struct LlmqHandle {
    pub input: mpsc::Sender<LlmqInput>,
    pub view: Arc<LlmqView>,
    pub chainlocks: broadcast::Sender<ChainLockEvent>,
}

/// Starts the quorum service.
pub fn spawn(
    executor: &crate::tasks::TaskExecutor,
    chain: ChainHandle,
    net: NetworkHandle,
    operator: Option<Operator>,
    data_dir: Option<PathBuf>,
) -> LlmqHandle {
    let (input_tx, input_rx) = mpsc::channel(4096);
    let (acks_tx, acks_rx) = mpsc::unbounded_channel();
    let (cl_tx, _) = broadcast::channel(256);
    let view = Arc::new(LlmqView {
        operator_public_key: operator.as_ref().map(|o| o.key.public_key().to_bytes()),
        ..LlmqView::default()
    });
    let service = LlmqService {
        chain,
        net,
        operator,
        dkg_dir: data_dir.map(|d| d.join("dkg")),
        sessions: BTreeMap::new(),
        early: Vec::new(),
        key_shares: HashMap::new(),
        share_sets: BTreeMap::new(),
        signed: BTreeMap::new(),
        share_matches: HashMap::new(),
        published: HashSet::new(),
        member_peers: HashMap::new(),
        last_resend: Instant::now(),
        acks: acks_tx,
        view: view.clone(),
        chainlocks: cl_tx.clone(),
        public_shares: HashMap::new(),
        pending_chainlocks: Vec::new(),
    };
    executor.spawn_critical("llmq", service.run(input_rx, acks_rx));
    LlmqHandle {
        input: input_tx,
        view,
        chainlocks: cl_tx,
    }
}

/// Signature shares collected for one block.
#[derive(Debug, Default)]
struct ShareSet {
    shares: BTreeMap<u16, bls::Signature>,
    done: bool,
}

/// A delivered (or refused) DKG message, back from its sending task.
#[derive(Debug)]
struct Ack {
    quorum_hash: Hash256,
    phase: u8,
    member: usize,
    ok: bool,
}

/// What the service needs to know about the tip, read in one chain call.
struct TipView {
    height: u64,
    hash: Hash256,
    pending: Vec<rusty_core::masternode::PendingDkg>,
    my_pro_tx_hash: Option<Hash256>,
    /// `(pro_tx_hash → service)` of the members of the pending DKGs (the
    /// peers our sessions talk to).
    services: HashMap<Hash256, String>,
    /// The quorum that signs this height's ChainLock.
    signing: Option<MinedQuorum>,
    best_chainlock_height: Option<u64>,
}

struct LlmqService {
    chain: ChainHandle,
    net: NetworkHandle,
    operator: Option<Operator>,
    dkg_dir: Option<PathBuf>,
    sessions: BTreeMap<Hash256, DkgSession>,
    early: Vec<DkgMessage>,
    key_shares: HashMap<Hash256, bls::SecretKey>,
    share_sets: BTreeMap<(u64, Hash256), ShareSet>,
    /// Heights we signed, and the block we signed at each.
    signed: BTreeMap<u64, Hash256>,
    /// Whether our key share of a quorum matches its mined verification
    /// vector (checked once per quorum before signing).
    share_matches: HashMap<Hash256, bool>,
    published: HashSet<Hash256>,
    member_peers: HashMap<Hash256, PeerId>,
    last_resend: Instant,
    acks: mpsc::UnboundedSender<Ack>,
    view: Arc<LlmqView>,
    chainlocks: broadcast::Sender<ChainLockEvent>,
    /// Public key shares of quorum members, by quorum.
    public_shares: HashMap<Hash256, Vec<Option<bls::PublicKey>>>,
    /// ChainLocks received for heights just above our tip, with their
    /// senders, judged when the tip gets there.
    pending_chainlocks: Vec<(ChainLock, PeerId)>,
}

impl LlmqService {
    async fn run(
        mut self,
        mut input: mpsc::Receiver<LlmqInput>,
        mut acks: mpsc::UnboundedReceiver<Ack>,
    ) {
        self.load_key_shares();
        let mut tips = self.chain.subscribe_blocks();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.on_tip().await;
        loop {
            tokio::select! {
                msg = input.recv() => match msg {
                    Some(LlmqInput::Gossip { topic, source, id, data }) => {
                        self.on_gossip(topic, source, id, data).await
                    }
                    Some(LlmqInput::Direct { peer, msg, responder }) => {
                        let ack = self.on_direct(peer, msg).await;
                        self.net.respond(responder, Response::Direct(ack)).await;
                    }
                    Some(LlmqInput::PeerChainLock { peer, cl }) => {
                        if let Err(reason) = self.on_chainlock_gossip(cl, peer).await {
                            warn!(target: "llmq", %peer, %reason, "invalid ChainLock in a status");
                            self.net.report(peer, PeerAction::Fatal, reason);
                        }
                    }
                    None => break,
                },
                Some(ack) = acks.recv() => {
                    if let Some(s) = self.sessions.get_mut(&ack.quorum_hash) {
                        if ack.ok {
                            s.mark_acked(ack.phase, ack.member);
                        }
                    }
                }
                tip = tips.recv() => match tip {
                    Ok(_) => {
                        while tips.try_recv().is_ok() {}
                        self.on_tip().await;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => self.on_tip().await,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => self.on_tick().await,
            }
        }
        debug!(target: "llmq", "quorum service stopped");
    }

    async fn tip_view(&self) -> Option<TipView> {
        let my_key = self
            .operator
            .as_ref()
            .map(|o| o.key.public_key().to_bytes());
        self.chain
            .query(move |s: &NodeState| {
                let params = s.params();
                let mn = s.chain().mn();
                let height = s.chain().height();
                let request = ChainLock::request_id(height);
                TipView {
                    height,
                    hash: s.chain().tip(),
                    pending: mn.pending_dkgs().to_vec(),
                    my_pro_tx_hash: my_key
                        .and_then(|k| mn.by_operator_key(&k))
                        .map(|e| e.pro_tx_hash),
                    services: mn
                        .pending_dkgs()
                        .iter()
                        .flat_map(|d| &d.members)
                        .filter_map(|(pro, _)| Some((*pro, mn.get(pro)?.service.clone())))
                        .collect(),
                    signing: mn.signing_quorum(params, height, &request).cloned(),
                    best_chainlock_height: s.chain().best_chainlock().map(|c| c.height),
                }
            })
            .await
            .ok()
    }

    async fn on_tip(&mut self) {
        let Some(tip) = self.tip_view().await else {
            return;
        };
        if let Ok(mut p) = self.view.pro_tx_hash.lock() {
            *p = tip.my_pro_tx_hash;
        }
        for (pro, service) in &tip.services {
            if let Ok(addr) = service.parse::<Multiaddr>() {
                if let Some(peer) = peer_id_of(&addr) {
                    if self.member_peers.insert(*pro, peer) != Some(peer) {
                        self.net.add_address(peer, addr).await;
                    }
                }
            }
        }
        self.start_sessions(&tip);
        // Sessions whose DKG was mined (or abandoned) are over; a mined one
        // leaves us the key share of the quorum as mined.
        let over: Vec<Hash256> = self
            .sessions
            .keys()
            .filter(|q| !tip.pending.iter().any(|d| &d.quorum_hash == *q))
            .copied()
            .collect();
        for quorum in over {
            if let Some(session) = self.sessions.remove(&quorum) {
                self.settle_key_share(session).await;
            }
        }
        self.advance_all(tip.height).await;
        self.sign_tip(&tip).await;
        self.judge_pending_chainlocks(tip.height).await;
        self.publish_view();
    }

    fn start_sessions(&mut self, tip: &TipView) {
        let (Some(op), Some(me)) = (self.operator.clone(), tip.my_pro_tx_hash) else {
            return;
        };
        for dkg in &tip.pending {
            if self.sessions.contains_key(&dkg.quorum_hash) {
                continue;
            }
            let Some(index) = dkg.members.iter().position(|(h, _)| *h == me) else {
                continue;
            };
            let seed = self.session_seed(&dkg.quorum_hash);
            let Ok(mut session) =
                DkgSession::new(self.chain.params(), dkg, index, op.key.clone(), seed)
            else {
                continue;
            };
            let mut replayed = 0;
            for msg in self.read_log(&dkg.quorum_hash) {
                if session.receive(&msg).is_ok() {
                    replayed += 1;
                }
            }
            info!(target: "llmq", quorum = %dkg.quorum_hash, height = dkg.quorum_height,
                  member = index, members = dkg.members.len(), replayed, "joining DKG");
            let early = std::mem::take(&mut self.early);
            for msg in early {
                if msg.quorum_hash == dkg.quorum_hash {
                    if session.receive(&msg).is_ok() {
                        self.append_log(&msg);
                    }
                } else {
                    self.early.push(msg);
                }
            }
            self.sessions.insert(dkg.quorum_hash, session);
        }
    }

    async fn advance_all(&mut self, height: u64) {
        let quorums: Vec<Hash256> = self.sessions.keys().copied().collect();
        for q in quorums {
            self.advance(q, height).await;
        }
    }

    async fn advance(&mut self, quorum: Hash256, height: u64) {
        let Some(session) = self.sessions.get_mut(&quorum) else {
            return;
        };
        let before = session.phase();
        let out = session.advance(height);
        let after = session.phase();
        let commitment = session.commitment.clone();
        let share = session.key_share();
        if before != after {
            info!(target: "llmq", %quorum, from = before.name(), to = after.name(), "DKG phase");
        }
        for msg in &out {
            self.append_log(msg);
        }
        if !out.is_empty() {
            self.send_unacked(quorum);
        }
        if let (Some(qc), Some(share)) = (commitment, share) {
            if self.published.insert(quorum) {
                self.save_key_share(&quorum, &share);
                self.key_shares.insert(quorum, share);
                info!(target: "llmq", %quorum, valid = qc.valid_members.count(),
                      signers = qc.signers.count(), "DKG complete: publishing the commitment");
                if let Err(e) = self.submit_commitment(qc.clone()).await {
                    warn!(target: "llmq", %quorum, err = %e, "our own commitment was refused");
                }
                let _ = self.net.publish(Topic::Quorum, qc.encode()).await;
            }
        }
    }

    /// Keeps our key share of a DKG that was mined: the share for the mined
    /// valid set, if it verifies against the mined vector. It replaces one
    /// saved earlier from our own commitment (which may name another valid
    /// set, or have been built before a late contribution reached us).
    async fn settle_key_share(&mut self, session: DkgSession) {
        let quorum_hash = session.quorum_hash;
        let Ok(Some(mined)) = self
            .chain
            .query(move |s: &NodeState| s.chain().mn().quorum(&quorum_hash).cloned())
            .await
        else {
            return; // abandoned, or mined on a branch we left
        };
        let me = session.my_pro_tx_hash();
        if !mined
            .index_of(&me)
            .is_some_and(|i| mined.valid_members.get(i))
        {
            return;
        }
        let share = session.share_for(&mined.valid_members).filter(|share| {
            mined
                .verification_vector()
                .is_some_and(|v| v.verify_share(bls::MemberId::from_identity(&me.0), share))
        });
        let Some(share) = share else {
            warn!(target: "llmq", quorum = %quorum_hash,
                  "no key share of ours matches the mined quorum: not signing with it");
            return;
        };
        if self.key_shares.get(&quorum_hash).map(|k| k.to_bytes()) != Some(share.to_bytes()) {
            info!(target: "llmq", quorum = %quorum_hash, "key share settled for the mined quorum");
            self.save_key_share(&quorum_hash, &share);
            self.key_shares.insert(quorum_hash, share);
            self.share_matches.remove(&quorum_hash);
        }
    }

    fn send_unacked(&mut self, quorum: Hash256) {
        let Some(session) = self.sessions.get(&quorum) else {
            return;
        };
        for (member, msg) in session.unacked() {
            let pro = session.members()[member].0;
            let Some(peer) = self.member_peers.get(&pro).copied() else {
                continue;
            };
            let net = self.net.clone();
            let acks = self.acks.clone();
            let phase = msg.body.phase();
            let body = msg.encode();
            tokio::spawn(async move {
                let req = Request::Direct(DirectMessage {
                    kind: DIRECT_KIND_DKG,
                    body,
                });
                let ok = matches!(
                    tokio::time::timeout(Duration::from_secs(5), net.request(peer, req)).await,
                    Ok(Ok(Response::Direct(
                        DirectAck::Accepted | DirectAck::Duplicate
                    )))
                );
                let _ = acks.send(Ack {
                    quorum_hash: quorum,
                    phase,
                    member,
                    ok,
                });
            });
        }
    }

    async fn on_tick(&mut self) {
        if self.sessions.is_empty() {
            return;
        }
        if self.last_resend.elapsed() >= RESEND_EVERY {
            self.last_resend = Instant::now();
            let quorums: Vec<Hash256> = self.sessions.keys().copied().collect();
            for q in quorums {
                self.send_unacked(q);
            }
        }
        self.publish_view();
    }

    async fn on_direct(&mut self, peer: PeerId, msg: DirectMessage) -> DirectAck {
        if msg.kind != DIRECT_KIND_DKG {
            self.net.report(
                peer,
                PeerAction::LowTolerance,
                "unknown direct message kind",
            );
            return DirectAck::Rejected;
        }
        let Ok(dkg_msg) = decode_exact::<DkgMessage>(&msg.body) else {
            self.net
                .report(peer, PeerAction::Fatal, "undecodable DKG message");
            return DirectAck::Rejected;
        };
        let quorum = dkg_msg.quorum_hash;
        let Some(session) = self.sessions.get_mut(&quorum) else {
            // The DKG may not have started here yet (our block lags): keep
            // the message if a registered masternode signed it, a few per
            // sender.
            let sender = dkg_msg.sender;
            let key = self
                .chain
                .query(move |s: &NodeState| s.chain().mn().get(&sender).map(|e| e.operator_key))
                .await
                .ok()
                .flatten();
            let signed = key.is_some_and(|k| {
                let (Ok(pk), Ok(sig)) = (
                    bls::PublicKey::from_bytes(&k),
                    bls::Signature::from_bytes(&dkg_msg.signature),
                ) else {
                    return false;
                };
                sig.verify(&dkg_msg.signing_hash().0, &pk)
            });
            if !signed {
                // Unknown sender, or a DKG that is over: no blame, the
                // sender may be ahead of or behind us.
                return DirectAck::Rejected;
            }
            let from_sender = self.early.iter().filter(|m| m.sender == sender).count();
            if self.early.contains(&dkg_msg) {
                return DirectAck::Duplicate;
            }
            if self.early.len() < MAX_EARLY_MESSAGES && from_sender < MAX_EARLY_PER_SENDER {
                self.early.push(dkg_msg);
                return DirectAck::Accepted;
            }
            return DirectAck::Rejected;
        };
        match session.receive(&dkg_msg) {
            Ok(_) => {
                debug!(target: "llmq", %quorum, kind = dkg_msg.body.name(), "DKG message");
                self.append_log(&dkg_msg);
                let height = self.chain_height().await;
                self.advance(quorum, height).await;
                self.publish_view();
                DirectAck::Accepted
            }
            Err(DkgError::Duplicate) => DirectAck::Duplicate,
            Err(e) => {
                warn!(target: "llmq", %peer, %quorum, err = %e, "refused DKG message");
                self.net
                    .report(peer, PeerAction::LowTolerance, format!("DKG: {e}"));
                DirectAck::Rejected
            }
        }
    }

    async fn chain_height(&self) -> u64 {
        self.chain
            .query(|s: &NodeState| s.chain().height())
            .await
            .unwrap_or(0)
    }

    async fn on_gossip(&mut self, topic: Topic, source: PeerId, id: MessageId, data: Vec<u8>) {
        let verdict = match topic {
            Topic::ChainLocks => match decode_exact::<ChainLockGossip>(&data) {
                Ok(ChainLockGossip::Share(share)) => self.on_share(share).await,
                Ok(ChainLockGossip::Lock(cl)) => self.on_chainlock_gossip(cl, source).await,
                Err(_) => Err("undecodable ChainLock message".to_string()),
            },
            Topic::Quorum => match decode_exact::<QuorumCommitment>(&data) {
                Ok(qc) => self.submit_commitment(qc).await,
                Err(_) => Err("undecodable quorum commitment".to_string()),
            },
            _ => Ok(Acceptance::Ignore),
        };
        match verdict {
            Ok(a) => self.net.validate(id, source, a),
            Err(reason) => {
                warn!(target: "llmq", %source, %reason, "invalid quorum gossip");
                self.net.validate(id, source, Acceptance::Reject);
                self.net.report(source, PeerAction::Fatal, reason);
            }
        }
    }

    /// Checks a final commitment and adds it to the miner's pool.
    async fn submit_commitment(&mut self, qc: QuorumCommitment) -> Result<Acceptance, String> {
        self.chain
            .submit_commitment(qc)
            .await
            .map(|r| match r {
                Ok(true) => Ok(Acceptance::Accept),
                Ok(false) => Ok(Acceptance::Ignore),
                // Mined already, or our chain is elsewhere: no blame.
                Err(rusty_core::masternode::MnError::UnexpectedCommitment(_)) => {
                    Ok(Acceptance::Ignore)
                }
                Err(e) => Err(format!("invalid quorum commitment: {e}")),
            })
            .unwrap_or(Ok(Acceptance::Ignore))
    }

    /// Public key share of `member` of `quorum` (cached per quorum).
    fn public_share(&mut self, quorum: &MinedQuorum, member: usize) -> Option<bls::PublicKey> {
        let shares = self
            .public_shares
            .entry(quorum.quorum_hash)
            .or_insert_with(|| {
                let vvec = quorum.verification_vector();
                quorum
                    .members
                    .iter()
                    .enumerate()
                    .map(|(i, pro)| {
                        if !quorum.valid_members.get(i) {
                            return None;
                        }
                        let id = bls::MemberId::from_identity(&pro.0);
                        vvec.as_ref()?.public_share(id).ok()
                    })
                    .collect()
            });
        shares.get(member).copied().flatten()
    }

    async fn on_share(&mut self, share: SigShare) -> Result<Acceptance, String> {
        let height = share.height;
        let request = ChainLock::request_id(height);
        let q = share.quorum_hash;
        let Some((quorum, best)) = self
            .chain
            .query(move |s: &NodeState| {
                let quorum = s
                    .chain()
                    .mn()
                    .signing_quorum(s.params(), height, &request)
                    .cloned();
                (quorum, s.chain().best_chainlock().map(|c| c.height))
            })
            .await
            .ok()
        else {
            return Ok(Acceptance::Ignore);
        };
        if best.is_some_and(|b| b >= height) {
            return Ok(Acceptance::Ignore);
        }
        let Some(quorum) = quorum.filter(|quorum| quorum.quorum_hash == q) else {
            // Not the quorum we expect for that height: maybe our view is
            // behind; no blame.
            return Ok(Acceptance::Ignore);
        };
        let member = usize::from(share.member);
        let Some(public) = self.public_share(&quorum, member) else {
            return Err("signature share from a non-member".into());
        };
        let sig = bls::Signature::from_bytes(&share.share)
            .map_err(|_| "malformed signature share".to_string())?;
        // A share we hold already, or one for a lock already recovered,
        // changes nothing: no need to spend a verification on it.
        if self
            .share_sets
            .get(&(height, share.block_hash))
            .is_some_and(|set| set.done || set.shares.contains_key(&share.member))
        {
            return Ok(Acceptance::Ignore);
        }
        let msg = quorum_sign_hash(&q, &request, &share.block_hash);
        if !sig.verify(&msg.0, &public) {
            return Err("signature share does not verify".into());
        }
        Ok(self.add_share(&quorum, &share, sig).await)
    }

    /// Adds a verified share (or our own) to its set, and recovers the
    /// ChainLock once the set holds a threshold of shares.
    async fn add_share(
        &mut self,
        quorum: &MinedQuorum,
        share: &SigShare,
        sig: bls::Signature,
    ) -> Acceptance {
        let set = self
            .share_sets
            .entry((share.height, share.block_hash))
            .or_default();
        if set.done || set.shares.insert(share.member, sig).is_some() {
            return Acceptance::Ignore;
        }
        while self.share_sets.len() > MAX_SHARE_SETS {
            self.share_sets.pop_first();
        }
        self.try_recover(share.height, share.block_hash, quorum)
            .await;
        Acceptance::Accept
    }

    async fn try_recover(&mut self, height: u64, block_hash: Hash256, quorum: &MinedQuorum) {
        let t = self.chain.params().masternode.quorum_threshold;
        let Some(set) = self.share_sets.get_mut(&(height, block_hash)) else {
            return;
        };
        if set.done || set.shares.len() < t {
            return;
        }
        let shares: Vec<(bls::MemberId, bls::Signature)> = set
            .shares
            .iter()
            .filter_map(|(m, s)| {
                let pro = quorum.members.get(usize::from(*m))?;
                Some((bls::MemberId::from_identity(&pro.0), *s))
            })
            .collect();
        let Ok(sig) = bls::recover_signature(&shares, t) else {
            return;
        };
        set.done = true;
        let cl = ChainLock {
            height,
            block_hash,
            signature: sig.to_bytes(),
        };
        debug!(target: "llmq", height, %block_hash, "recovered ChainLock");
        if let Ok(Acceptance::Accept) = self.on_chainlock(cl.clone(), true).await {
            let _ = self
                .net
                .publish(Topic::ChainLocks, ChainLockGossip::Lock(cl).encode())
                .await;
        }
    }

    /// A ChainLock from gossip. Above our tip we may not know the quorums
    /// that sign its height yet, and judging it now could blame an honest
    /// peer: a few blocks ahead it is held until the tip gets there, further
    /// ahead it is dropped.
    async fn on_chainlock_gossip(
        &mut self,
        cl: ChainLock,
        source: PeerId,
    ) -> Result<Acceptance, String> {
        let tip = self.chain_height().await;
        if cl.height <= tip {
            return self.on_chainlock(cl, false).await;
        }
        if cl.height <= tip.saturating_add(MAX_CHAINLOCK_AHEAD)
            && self.pending_chainlocks.len() < MAX_PENDING_CHAINLOCKS
            && !self.pending_chainlocks.iter().any(|(c, _)| *c == cl)
        {
            self.pending_chainlocks.push((cl, source));
        }
        Ok(Acceptance::Ignore)
    }

    /// Judges the held ChainLocks the tip has reached: a forged one costs
    /// its sender, a valid one is applied.
    async fn judge_pending_chainlocks(&mut self, tip: u64) {
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_chainlocks)
            .into_iter()
            .partition(|(cl, _)| cl.height <= tip);
        self.pending_chainlocks = later;
        for (cl, source) in ready {
            let check = cl.clone();
            let verdict = self
                .chain
                .query(move |s: &NodeState| {
                    s.chain()
                        .mn()
                        .verify_chainlock(s.params(), &check)
                        .map_err(|e| e.to_string())
                })
                .await;
            match verdict {
                Ok(Ok(())) => {
                    let _ = self.on_chainlock(cl, false).await;
                }
                Ok(Err(e)) => {
                    if self.locks_our_chain(&cl).await {
                        warn!(target: "llmq", %source, err = %e, "invalid ChainLock (received early)");
                        self.net.report(
                            source,
                            PeerAction::Fatal,
                            format!("invalid ChainLock: {e}"),
                        );
                    } else {
                        // It may be valid on its own branch: the chain
                        // judges it there (Chain::apply_chainlock).
                        debug!(target: "llmq", %source, err = %e, height = cl.height,
                               "ChainLock of a block off our chain does not verify here");
                        let _ = self.on_chainlock(cl, false).await;
                    }
                }
                Err(_) => return,
            }
        }
    }

    /// Verifies a ChainLock and makes it the chain's best. Forged ones
    /// (bad signature, wrong quorum) are the sender's fault.
    async fn on_chainlock(&mut self, cl: ChainLock, local: bool) -> Result<Acceptance, String> {
        let height = cl.height;
        let block_hash = cl.block_hash;
        let result = self.chain.apply_chainlock(cl).await;
        match result {
            Ok(Ok(true)) => {
                if let Some(set) = self.share_sets.get_mut(&(height, block_hash)) {
                    set.done = true;
                }
                let _ = self.chainlocks.send(ChainLockEvent {
                    height,
                    block_hash,
                    at: Instant::now(),
                });
                debug!(target: "llmq", height, block = %block_hash, local, "ChainLock");
                Ok(Acceptance::Accept)
            }
            Ok(Ok(false)) => Ok(Acceptance::Ignore),
            Ok(Err(ValidationError::Masternode(
                rusty_core::masternode::MnError::NoSigningQuorum(_),
            ))) => Ok(Acceptance::Ignore),
            // Forged only if it names a block of our own chain: the quorums
            // that sign a height are those of the chain that holds the
            // block, and a fork's (one that mined a different DKG
            // commitment during a partition) are not ours to judge. Found
            // by `rusty-cli chaos`: nodes banned honest peers after a heal.
            Ok(Err(e)) if local || self.locks_our_chain_at(height, block_hash).await => {
                Err(format!("invalid ChainLock: {e}"))
            }
            Ok(Err(e)) => {
                debug!(target: "llmq", height, %block_hash, err = %e,
                       "ChainLock of a block off our chain does not verify here");
                Ok(Acceptance::Ignore)
            }
            Err(_) => Ok(Acceptance::Ignore),
        }
    }

    async fn locks_our_chain(&self, cl: &ChainLock) -> bool {
        self.locks_our_chain_at(cl.height, cl.block_hash).await
    }

    /// Whether `block_hash` is our active chain's block at `height`.
    async fn locks_our_chain_at(&self, height: u64, block_hash: Hash256) -> bool {
        self.chain
            .query(move |s: &NodeState| s.chain().hash_at(height) == Some(block_hash))
            .await
            .unwrap_or(false)
    }

    /// Signs our share of the tip's ChainLock if we are in its quorum.
    async fn sign_tip(&mut self, tip: &TipView) {
        if tip.best_chainlock_height.is_some_and(|h| h >= tip.height) || tip.height == 0 {
            return;
        }
        let Some(quorum) = &tip.signing else {
            return;
        };
        let (Some(me), Some(key)) = (tip.my_pro_tx_hash, self.key_shares.get(&quorum.quorum_hash))
        else {
            return;
        };
        let Some(member) = quorum.index_of(&me) else {
            return;
        };
        if !quorum.valid_members.get(member) {
            return;
        }
        // Our key share must be the one the mined commitment implies: a
        // member whose own DKG result differed from the mined commitment
        // (killed and restarted mid-DKG, found by `rusty-cli chaos`) would
        // sign shares that fail everywhere and get banned as a forger.
        // Shares are settled for the mined valid set when the DKG is mined
        // (`settle_key_share`); this check, once per quorum, covers a share
        // saved before a restart that could not be settled.
        let quorum_hash = quorum.quorum_hash;
        let matches = *self.share_matches.entry(quorum_hash).or_insert_with(|| {
            let ok = quorum.verification_vector().is_some_and(|v| {
                v.verify_share(bls::MemberId::from_identity(&me.0), key)
            });
            if !ok {
                warn!(target: "llmq", quorum = %quorum_hash,
                      "our key share does not match the mined commitment: not signing with this quorum");
            }
            ok
        });
        if !matches {
            return;
        }
        // Never sign two blocks at one height.
        if let Some(signed) = self.signed.get(&tip.height) {
            if *signed != tip.hash {
                return;
            }
        }
        self.signed.insert(tip.height, tip.hash);
        while self.signed.len() > MAX_SHARE_SETS {
            self.signed.pop_first();
        }
        let request = ChainLock::request_id(tip.height);
        let msg = quorum_sign_hash(&quorum.quorum_hash, &request, &tip.hash);
        let sig = key.sign(&msg.0);
        let share = SigShare {
            quorum_hash: quorum.quorum_hash,
            height: tip.height,
            block_hash: tip.hash,
            member: u16::try_from(member).unwrap_or(u16::MAX),
            share: sig.to_bytes(),
        };
        let _ = self
            .net
            .publish(
                Topic::ChainLocks,
                ChainLockGossip::Share(share.clone()).encode(),
            )
            .await;
        // Our own share counts too (gossip does not deliver it back). It
        // needs no verification: the key share it was made with was
        // checked against the mined commitment above.
        let _ = self.add_share(quorum, &share, sig).await;
    }

    fn publish_view(&self) {
        let infos = self
            .sessions
            .values()
            .map(|s| {
                let [contributions, complaints, justifications, premature_commitments] =
                    s.received_counts();
                SessionInfo {
                    quorum_hash: s.quorum_hash,
                    quorum_height: s.quorum_height,
                    phase: s.phase().name(),
                    member_index: s.my_index,
                    members: s.members().len(),
                    contributions,
                    complaints,
                    justifications,
                    premature_commitments,
                    valid_members: s.valid_members().map(|v| v.count()),
                    commitment_ready: s.phase() == Phase::Finalized,
                }
            })
            .collect();
        if let Ok(mut v) = self.view.sessions.lock() {
            *v = infos;
        }
        if let Ok(mut v) = self.view.quorum_shares.lock() {
            *v = self.key_shares.keys().copied().collect();
        }
    }

    // ---- persistence: seeds, message logs and key shares ----

    fn path(&self, quorum: &Hash256, ext: &str) -> Option<PathBuf> {
        self.dkg_dir
            .as_ref()
            .map(|d| d.join(format!("{quorum}.{ext}")))
    }

    /// The secret seed of our contribution to `quorum`: the persisted one
    /// after a restart, else a new one, persisted first.
    fn session_seed(&self, quorum: &Hash256) -> [u8; 32] {
        let path = self.path(quorum, "seed");
        if let Some(seed) = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        {
            return seed;
        }
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        if let Some(path) = path {
            if let Err(e) = write_private(&path, &seed) {
                warn!(target: "llmq", path = %path.display(), err = %e, "cannot persist the DKG seed");
            }
        }
        seed
    }

    fn append_log(&self, msg: &DkgMessage) {
        let Some(path) = self.path(&msg.quorum_hash, "log") else {
            return;
        };
        let bytes = msg.encode();
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            f.write_all(&(bytes.len() as u32).to_le_bytes())?;
            f.write_all(&bytes)
        };
        if let Err(e) = write() {
            warn!(target: "llmq", path = %path.display(), err = %e, "cannot append to the DKG log");
        }
    }

    fn read_log(&self, quorum: &Hash256) -> Vec<DkgMessage> {
        let Some(bytes) = self.path(quorum, "log").and_then(|p| std::fs::read(p).ok()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut rest = bytes.as_slice();
        while rest.len() >= 4 {
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let Some(body) = rest.get(4..4 + len) else {
                break; // a torn last record
            };
            match decode_exact::<DkgMessage>(body) {
                Ok(m) => out.push(m),
                Err(_) => break,
            }
            rest = &rest[4 + len..];
        }
        out
    }

    fn save_key_share(&self, quorum: &Hash256, share: &bls::SecretKey) {
        if let Some(path) = self.path(quorum, "share") {
            if let Err(e) = write_private(&path, &share.to_bytes()) {
                warn!(target: "llmq", path = %path.display(), err = %e, "cannot persist the quorum key share");
            }
        }
    }

    fn load_key_shares(&mut self) {
        let Some(dir) = &self.dkg_dir else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("share") {
                continue;
            }
            let Some(q) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<Hash256>().ok())
            else {
                continue;
            };
            let key = std::fs::read(&path)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .and_then(|b| bls::SecretKey::from_bytes(&b).ok());
            if let Some(key) = key {
                self.key_shares.insert(q, key);
                self.published.insert(q);
            }
        }
    }
}
