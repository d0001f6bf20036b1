//! The network task and its handle.
//!
//! [`start`] builds the swarm, starts listening and spawns one tokio task
//! that owns the `Swarm`. The node talks to it through a cloneable
//! [`NetworkHandle`] (commands over two bounded channels, high priority
//! first) and hears from it through [`NetworkEvents`] (domain events over
//! three channels by priority: high is never dropped, medium and low are
//! shed when the node does not keep up, low first since it is smaller).

use std::{
    collections::{HashMap, HashSet},
    ops::ControlFlow,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use libp2p::{
    core::Endpoint,
    gossipsub::{self, MessageAcceptance, MessageId},
    identify, kad, mdns, noise, ping,
    request_response::{self, OutboundRequestId, ResponseChannel},
    swarm::{dial_opts::DialOpts, ConnectionId, NetworkBehaviour, SwarmEvent},
    tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::{
    behaviour::{protocol_version, Behaviour, BehaviourEvent},
    config::NetworkConfig,
    message::{Protocol, Request, Response},
    peers::{
        ip_of, peer_id_of, unix_now, with_peer_id, without_peer_id, Ban, BanTarget, PeerAction,
        ScoreOutcome,
    },
    rate_limit::{Kind, RateLimiter},
    store::{load_or_create_key, KeyError, PeerStoreFile, StoredBan, StoredPeer},
    topic::{Priority, Topic},
};

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("could not build the libp2p stack: {0}")]
    Build(String),
    #[error(
        "could not listen on {addr}: {reason} (is another node using that port? try --listen)"
    )]
    Listen { addr: Multiaddr, reason: String },
    #[error("the network task has stopped")]
    Stopped,
    /// The provider record could not be stored (e.g. the store holds
    /// [`crate::behaviour::MAX_PROVIDER_KEYS`] keys already).
    #[error("could not store the provider record: {0}")]
    Provider(String),
}

/// Why a request to a peer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the peer did not answer in time")]
    Timeout,
    #[error("the connection closed before the answer")]
    ConnectionClosed,
    #[error("the peer sent a malformed answer")]
    Malformed,
    #[error("the peer does not speak the protocol")]
    Unsupported,
    #[error("request failed: {0}")]
    Other(String),
    #[error("the network task has stopped")]
    Stopped,
}

/// The node's verdict on a gossip message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// Valid: forward it.
    Accept,
    /// Not forwarded, no blame (duplicate, not relevant now).
    Ignore,
    /// Invalid: not forwarded; the caller also reports the peer.
    Reject,
}

/// A request from a peer, to be answered with [`NetworkHandle::respond`].
#[derive(Debug)]
pub struct Responder {
    protocol: Protocol,
    request_id: request_response::InboundRequestId,
    channel: ResponseChannel<Response>,
}

/// What the network tells the node.
#[derive(Debug)]
pub enum NetworkEvent {
    PeerConnected {
        peer: PeerId,
        addr: Multiaddr,
        inbound: bool,
    },
    PeerDisconnected {
        peer: PeerId,
    },
    /// A gossip message awaiting validation; answer with
    /// [`NetworkHandle::validate`] within a few seconds.
    Gossip {
        topic: Topic,
        /// The peer that forwarded it to us (the one to blame or credit,
        /// and the one to pass to [`NetworkHandle::validate`]).
        source: PeerId,
        /// The peer that published it: `message.source`, covered by the
        /// author's signature (gossipsub runs in Signed mode with strict
        /// validation, so it is always set on messages that get here).
        author: Option<PeerId>,
        id: MessageId,
        data: Vec<u8>,
    },
    /// A request from a peer; answer with [`NetworkHandle::respond`].
    /// Sync and `direct` requests come at high priority; `media` requests
    /// at low priority (shed first when the node is busy: the requester
    /// then gets no answer).
    Request {
        peer: PeerId,
        request: Request,
        responder: Responder,
    },
}

/// A connected peer, for `getpeerinfo`.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Connection number, unique for the life of the process.
    pub id: u64,
    pub peer_id: PeerId,
    pub addr: Multiaddr,
    pub inbound: bool,
    pub connected_secs: u64,
    pub score: f64,
    pub ping: Option<Duration>,
    pub agent: Option<String>,
    /// A bootnode or `addnode` peer.
    pub persistent: bool,
}

/// A ban in force, for `listbanned`.
#[derive(Debug, Clone)]
pub struct BanInfo {
    pub target: BanTarget,
    pub created: u64,
    pub until: u64,
    pub reason: String,
}

/// The node's network identity and counters, for `getnetworkinfo`.
#[derive(Debug, Clone)]
pub struct NetworkInfo {
    pub peer_id: PeerId,
    pub listen_addrs: Vec<Multiaddr>,
    pub inbound: usize,
    pub outbound: usize,
    pub max_inbound: usize,
    pub max_outbound: usize,
    pub protocol_version: String,
    pub agent: String,
    pub mdns: bool,
    /// Gossip messages (and, low, media requests) dropped because the node
    /// was busy, by priority.
    pub shed_medium: u64,
    pub shed_low: u64,
}

enum Command {
    Publish {
        topic: Topic,
        data: Vec<u8>,
        reply: Option<oneshot::Sender<Result<(), String>>>,
    },
    Validate {
        id: MessageId,
        source: PeerId,
        acceptance: Acceptance,
    },
    Request {
        peer: PeerId,
        request: Request,
        reply: oneshot::Sender<Result<Response, RequestError>>,
    },
    Respond {
        responder: Responder,
        response: Response,
        /// Told when the response has been written out (or failed).
        done: Option<oneshot::Sender<()>>,
    },
    AddAddress {
        peer: PeerId,
        addr: Multiaddr,
    },
    Report {
        peer: PeerId,
        action: PeerAction,
        reason: String,
    },
    StartProviding {
        key: kad::RecordKey,
        reply: oneshot::Sender<Result<(), String>>,
    },
    StopProviding {
        key: kad::RecordKey,
    },
    /// Every provider found is sent on `found` as `Some(peer)`; `None` once
    /// the query ended.
    GetProviders {
        key: kad::RecordKey,
        found: mpsc::UnboundedSender<Option<PeerId>>,
    },
    AddPeer {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Disconnect {
        peer: PeerId,
        reply: oneshot::Sender<bool>,
    },
    Ban {
        target: BanTarget,
        duration: Duration,
        reason: String,
        reply: oneshot::Sender<()>,
    },
    Unban {
        target: BanTarget,
        reply: oneshot::Sender<bool>,
    },
    ClearBans(oneshot::Sender<()>),
    ListBans(oneshot::Sender<Vec<BanInfo>>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Info(oneshot::Sender<NetworkInfo>),
    Shutdown(oneshot::Sender<()>),
}

/// Peers remembered from [`NetworkHandle::add_address`], at most.
pub const MAX_DIRECT_PEERS: usize = 4_096;
/// Addresses remembered per peer from [`NetworkHandle::add_address`].
pub const MAX_DIRECT_ADDRS_PER_PEER: usize = 4;

/// Command queue depths.
const HIGH_COMMANDS: usize = 1024;
const NORMAL_COMMANDS: usize = 4096;
/// Event queue depths of the shed-able classes.
const MEDIUM_EVENTS: usize = 4096;
const LOW_EVENTS: usize = 512;

/// A cloneable handle to the network task.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    high: mpsc::Sender<Command>,
    normal: mpsc::Sender<Command>,
    peer_id: PeerId,
    listen: Arc<Vec<Multiaddr>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl NetworkHandle {
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses the node listened on at start, with its `/p2p/` id.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen
            .iter()
            .map(|a| with_peer_id(a, self.peer_id))
            .collect()
    }

    async fn send(&self, priority: Priority, cmd: Command) -> Result<(), NetworkError> {
        let ch = if priority == Priority::High {
            &self.high
        } else {
            &self.normal
        };
        ch.send(cmd).await.map_err(|_| NetworkError::Stopped)
    }

    async fn ask<R>(
        &self,
        priority: Priority,
        make: impl FnOnce(oneshot::Sender<R>) -> Command,
    ) -> Result<R, NetworkError> {
        let (tx, rx) = oneshot::channel();
        self.send(priority, make(tx)).await?;
        rx.await.map_err(|_| NetworkError::Stopped)
    }

    /// Publishes on a topic. High-priority topics wait for queue space;
    /// others are dropped when the queue is full (the message stays in
    /// the node and is announced again later or not at all).
    pub async fn publish(&self, topic: Topic, data: Vec<u8>) -> Result<(), String> {
        if topic.priority() == Priority::High {
            return self
                .ask(Priority::High, |reply| Command::Publish {
                    topic,
                    data,
                    reply: Some(reply),
                })
                .await
                .map_err(|e| e.to_string())?;
        }
        self.normal
            .try_send(Command::Publish {
                topic,
                data,
                reply: None,
            })
            .map_err(|e| format!("publish queue: {e}"))
    }

    /// Reports the verdict on a gossip message.
    pub fn validate(&self, id: MessageId, source: PeerId, acceptance: Acceptance) {
        // Never blocks the caller; a full queue means the message simply
        // expires from the gossip cache unforwarded.
        let _ = self.high.try_send(Command::Validate {
            id,
            source,
            acceptance,
        });
    }

    /// Sends a request and waits for the answer (or the transport's
    /// timeout; callers usually add a shorter one).
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Response, RequestError> {
        self.ask(Priority::High, |reply| Command::Request {
            peer,
            request,
            reply,
        })
        .await
        .map_err(|_| RequestError::Stopped)?
    }

    pub async fn respond(&self, responder: Responder, response: Response) {
        let _ = self
            .send(
                Priority::High,
                Command::Respond {
                    responder,
                    response,
                    done: None,
                },
            )
            .await;
    }

    /// [`NetworkHandle::respond`], then waits until the response has been
    /// written to the peer's stream or has failed (the peer went away or
    /// stopped reading until the request timed out). A caller that bounds
    /// how many responses it has in flight this way bounds the memory they
    /// hold, however slowly peers read.
    pub async fn respond_and_wait(&self, responder: Responder, response: Response) {
        let (tx, rx) = oneshot::channel();
        if self
            .send(
                Priority::High,
                Command::Respond {
                    responder,
                    response,
                    done: Some(tx),
                },
            )
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Tells the network how to reach `peer`, so that a later
    /// [`NetworkHandle::request`] to it can dial it (masternode quorum
    /// members learn each other's addresses from the masternode list, not
    /// from discovery). The peer is not made persistent and is not dialed
    /// now; an empty address, or one with a `/p2p/` suffix of another peer,
    /// is ignored.
    ///
    /// Up to [`MAX_DIRECT_ADDRS_PER_PEER`] addresses are kept per peer, for
    /// [`MAX_DIRECT_PEERS`] peers; the oldest peer is forgotten beyond that.
    /// Such a dial is not counted against the outbound limit (the peer
    /// manager only limits its own dials), but the remote node may still
    /// refuse the connection if its inbound slots are full and we are not
    /// one of its persistent peers.
    ///
    /// Goes through the high-priority queue, like requests, so a request
    /// sent after this call always sees the address.
    pub async fn add_address(&self, peer: PeerId, addr: Multiaddr) {
        let _ = self
            .send(Priority::High, Command::AddAddress { peer, addr })
            .await;
    }

    /// Registers this node as a provider of `key` (a Kademlia provider
    /// record) and publishes the record to the peers closest to the key.
    /// Returns once the local record is stored; the publication runs in the
    /// background. If the routing table is empty (no peer yet), the record
    /// is published as soon as it has a peer. Kademlia republishes every
    /// 12 hours; records expire after 48 hours at the peers holding them.
    pub async fn start_providing(&self, key: Vec<u8>) -> Result<(), NetworkError> {
        let key = kad::RecordKey::new(&key);
        self.ask(Priority::Medium, |reply| Command::StartProviding {
            key,
            reply,
        })
        .await?
        .map_err(NetworkError::Provider)
    }

    /// Stops providing `key`. Local only: the records already published
    /// stay at other peers until they expire.
    pub async fn stop_providing(&self, key: Vec<u8>) {
        let key = kad::RecordKey::new(&key);
        let _ = self
            .send(Priority::Medium, Command::StopProviding { key })
            .await;
    }

    /// Looks up the providers of `key` in the DHT and collects every one
    /// found until the query ends or `timeout` passes; never the local
    /// peer. The addresses the query learned for each provider are kept
    /// (like [`NetworkHandle::add_address`], in a separate bounded cache),
    /// so a [`NetworkHandle::request`] to a provider this node is not
    /// connected to can dial it. Empty when nobody provides `key` (or the
    /// node has no peers).
    pub async fn get_providers(
        &self,
        key: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<PeerId>, NetworkError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let (found, mut rx) = mpsc::unbounded_channel();
        let key = kad::RecordKey::new(&key);
        self.send(Priority::Medium, Command::GetProviders { key, found })
            .await?;
        let mut providers = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Some(peer))) => providers.push(peer),
                Ok(Some(None)) | Err(_) => break,
                // The task dropped the query without ending it: it stopped.
                Ok(None) => return Err(NetworkError::Stopped),
            }
        }
        // Dropping `rx` tells the task to end a query still running.
        Ok(providers)
    }

    /// Tells the peer manager what a peer did.
    pub fn report(&self, peer: PeerId, action: PeerAction, reason: impl Into<String>) {
        let _ = self.high.try_send(Command::Report {
            peer,
            action,
            reason: reason.into(),
        });
    }

    /// Connects to `addr` and keeps the peer connected (`addnode`).
    pub async fn add_peer(&self, addr: Multiaddr) -> Result<(), String> {
        self.ask(Priority::Medium, |reply| Command::AddPeer { addr, reply })
            .await
            .map_err(|e| e.to_string())?
    }

    /// Disconnects a peer; false if it was not connected.
    pub async fn disconnect(&self, peer: PeerId) -> Result<bool, NetworkError> {
        self.ask(Priority::Medium, |reply| Command::Disconnect {
            peer,
            reply,
        })
        .await
    }

    pub async fn ban(
        &self,
        target: BanTarget,
        duration: Duration,
        reason: impl Into<String>,
    ) -> Result<(), NetworkError> {
        let reason = reason.into();
        self.ask(Priority::Medium, |reply| Command::Ban {
            target,
            duration,
            reason,
            reply,
        })
        .await
    }

    /// Lifts a ban; false if there was none.
    pub async fn unban(&self, target: BanTarget) -> Result<bool, NetworkError> {
        self.ask(Priority::Medium, |reply| Command::Unban { target, reply })
            .await
    }

    pub async fn clear_bans(&self) -> Result<(), NetworkError> {
        self.ask(Priority::Medium, Command::ClearBans).await
    }

    pub async fn bans(&self) -> Result<Vec<BanInfo>, NetworkError> {
        self.ask(Priority::Medium, Command::ListBans).await
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetworkError> {
        self.ask(Priority::Medium, Command::Peers).await
    }

    pub async fn info(&self) -> Result<NetworkInfo, NetworkError> {
        self.ask(Priority::Medium, Command::Info).await
    }

    /// Saves the peer store and stops the task.
    pub async fn shutdown(&self) {
        let _ = self.ask(Priority::High, Command::Shutdown).await;
    }
}

/// The receiving end of the network's events, high priority first.
#[derive(Debug)]
pub struct NetworkEvents {
    high: mpsc::UnboundedReceiver<NetworkEvent>,
    medium: mpsc::Receiver<NetworkEvent>,
    low: mpsc::Receiver<NetworkEvent>,
}

impl NetworkEvents {
    /// The next event; `None` once the network task stopped.
    pub async fn recv(&mut self) -> Option<NetworkEvent> {
        tokio::select! {
            biased;
            Some(e) = self.high.recv() => Some(e),
            Some(e) = self.medium.recv() => Some(e),
            Some(e) = self.low.recv() => Some(e),
            else => None,
        }
    }
}

/// Builds the swarm, listens, and spawns the network task.
pub async fn start(config: NetworkConfig) -> Result<(NetworkHandle, NetworkEvents), NetworkError> {
    let key = match &config.data_dir {
        Some(dir) => load_or_create_key(&dir.join("node.key"))?,
        None => libp2p::identity::Keypair::generate_ed25519(),
    };
    let peer_id = key.public().to_peer_id();
    let build = |e: &dyn std::fmt::Display| NetworkError::Build(e.to_string());
    let behaviour_config = config.clone();
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| build(&e))?
        .with_quic()
        .with_behaviour(|key| Behaviour::new(key, &behaviour_config))
        .map_err(|e| build(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();

    let mut listeners = Vec::new();
    for addr in &config.listen {
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| NetworkError::Listen {
                addr: addr.clone(),
                reason: describe(&e),
            })?;
        listeners.push((id, addr.clone()));
    }

    let (high_tx, high_rx) = mpsc::channel(HIGH_COMMANDS);
    let (normal_tx, normal_rx) = mpsc::channel(NORMAL_COMMANDS);
    let (ev_high_tx, ev_high_rx) = mpsc::unbounded_channel();
    let (ev_med_tx, ev_med_rx) = mpsc::channel(MEDIUM_EVENTS);
    let (ev_low_tx, ev_low_rx) = mpsc::channel(LOW_EVENTS);

    let mut task = Task {
        swarm,
        chain: config.chain.clone(),
        store_path: config.data_dir.as_ref().map(|d| d.join("peers.json")),
        config,
        pending: HashMap::new(),
        responding: HashMap::new(),
        aborted_dials: HashMap::new(),
        direct_addrs: DirectAddrs::default(),
        provider_addrs: DirectAddrs::default(),
        provider_queries: HashMap::new(),
        unpublished: HashSet::new(),
        limiter: RateLimiter::default(),
        listen_addrs: Vec::new(),
        anonymous_bootnodes: Vec::new(),
        conn_ids: HashMap::new(),
        next_conn_id: 0,
        events_high: ev_high_tx,
        events_medium: ev_med_tx,
        events_low: ev_low_tx,
        shed_medium: 0,
        shed_low: 0,
        last_save: Instant::now(),
        store_dirty: false,
        last_bootstrap: None,
    };
    task.load_store();
    for addr in task.config.bootnodes.clone() {
        task.add_peer(addr, true);
    }

    // Wait until every listener has an address, so callers (tests,
    // localnet) can hand them to other nodes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while listeners
        .iter()
        .any(|(id, _)| !task.listen_addrs.iter().any(|(l, _)| l == id))
    {
        match tokio::time::timeout_at(deadline, task.swarm.select_next_some()).await {
            Ok(SwarmEvent::ListenerError { listener_id, error })
                if listeners.iter().any(|(id, _)| *id == listener_id) =>
            {
                return Err(listen_failed(&listeners, listener_id, describe(&error)));
            }
            Ok(SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            }) if listeners.iter().any(|(id, _)| *id == listener_id) => {
                let why = match reason {
                    Err(e) => describe(&e),
                    Ok(()) => "listener closed".to_owned(),
                };
                return Err(listen_failed(&listeners, listener_id, why));
            }
            Ok(ev) => task.on_swarm_event(ev),
            Err(_) => {
                let addr = listeners[0].1.clone();
                return Err(NetworkError::Listen {
                    addr,
                    reason: "no listen address after 10 s".into(),
                });
            }
        }
    }

    let listen: Vec<Multiaddr> = task.listen_addrs.iter().map(|(_, a)| a.clone()).collect();
    info!(target: "net", %peer_id, addrs = ?listen, "network listening");
    let handle = NetworkHandle {
        high: high_tx,
        normal: normal_tx,
        peer_id,
        listen: Arc::new(listen),
    };
    tokio::spawn(task.run(high_rx, normal_rx));
    Ok((
        handle,
        NetworkEvents {
            high: ev_high_rx,
            medium: ev_med_rx,
            low: ev_low_rx,
        },
    ))
}

/// An error with its causes, never empty (some transport errors display
/// as "").
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !s.is_empty() && !parts.iter().any(|p: &String| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    if parts.is_empty() {
        format!("{e:?}")
    } else {
        parts.join(": ")
    }
}

fn listen_failed(
    listeners: &[(libp2p::core::transport::ListenerId, Multiaddr)],
    id: libp2p::core::transport::ListenerId,
    reason: String,
) -> NetworkError {
    let addr = listeners
        .iter()
        .find(|(l, _)| *l == id)
        .map(|(_, a)| a.clone())
        .unwrap_or_else(Multiaddr::empty);
    NetworkError::Listen { addr, reason }
}

/// Addresses the node gave for peers it wants to reach directly, oldest
/// peer first. Kept here rather than only in the swarm's address cache,
/// which forgets an address after one failed dial: a quorum member that is
/// restarting must still be reachable on the next attempt.
#[derive(Debug, Default)]
struct DirectAddrs {
    peers: HashMap<PeerId, Vec<Multiaddr>>,
    order: std::collections::VecDeque<PeerId>,
}

impl DirectAddrs {
    /// Remembers `addr` (without `/p2p/`) for `peer`, most recent first.
    fn add(&mut self, peer: PeerId, addr: Multiaddr) {
        if !self.peers.contains_key(&peer) {
            while self.peers.len() >= MAX_DIRECT_PEERS {
                match self.order.pop_front() {
                    Some(old) => {
                        self.peers.remove(&old);
                    }
                    None => break,
                }
            }
            self.order.push_back(peer);
        }
        let addrs = self.peers.entry(peer).or_default();
        addrs.retain(|a| *a != addr);
        addrs.insert(0, addr);
        addrs.truncate(MAX_DIRECT_ADDRS_PER_PEER);
    }

    fn get(&self, peer: &PeerId) -> Vec<Multiaddr> {
        self.peers.get(peer).cloned().unwrap_or_default()
    }
}

/// A running `get_providers` query of a [`NetworkHandle::get_providers`]
/// call.
#[derive(Debug)]
struct ProviderQuery {
    found: mpsc::UnboundedSender<Option<PeerId>>,
    seen: HashSet<PeerId>,
}

type RequestReply = oneshot::Sender<Result<Response, RequestError>>;

/// Requests held back until the dials to their peer that a disconnect
/// aborted have ended (see [`Task::disconnect`]).
#[derive(Debug)]
struct AbortedDials {
    dials: HashSet<ConnectionId>,
    since: Instant,
    requests: Vec<(Request, RequestReply)>,
}

/// How long requests wait at most for aborted dials to be reported.
const ABORTED_DIALS_WAIT: Duration = Duration::from_secs(5);

/// A bootnode given without a peer id, until its first connection tells it.
#[derive(Debug)]
struct AnonymousPeer {
    addr: Multiaddr,
    failures: u32,
    next_dial: Instant,
}

struct Task {
    swarm: Swarm<Behaviour>,
    chain: String,
    config: NetworkConfig,
    store_path: Option<std::path::PathBuf>,
    pending: HashMap<(Protocol, OutboundRequestId), RequestReply>,
    /// Responses handed to the swarm whose senders wait to hear they went
    /// out ([`NetworkHandle::respond_and_wait`]).
    responding: HashMap<(Protocol, request_response::InboundRequestId), oneshot::Sender<()>>,
    /// Peers whose dials a disconnect aborted and the swarm has not
    /// reported ended yet, with the requests to them sent meanwhile.
    aborted_dials: HashMap<PeerId, AbortedDials>,
    /// Addresses given by [`NetworkHandle::add_address`].
    direct_addrs: DirectAddrs,
    /// Addresses of providers found by [`NetworkHandle::get_providers`]
    /// (kept apart, so lookups never evict quorum members' addresses).
    provider_addrs: DirectAddrs,
    /// Running `get_providers` queries.
    provider_queries: HashMap<kad::QueryId, ProviderQuery>,
    /// Keys provided while the routing table was empty, to publish once it
    /// has a peer.
    unpublished: HashSet<kad::RecordKey>,
    limiter: RateLimiter,
    listen_addrs: Vec<(libp2p::core::transport::ListenerId, Multiaddr)>,
    anonymous_bootnodes: Vec<AnonymousPeer>,
    conn_ids: HashMap<PeerId, u64>,
    next_conn_id: u64,
    events_high: mpsc::UnboundedSender<NetworkEvent>,
    events_medium: mpsc::Sender<NetworkEvent>,
    events_low: mpsc::Sender<NetworkEvent>,
    /// Gossip messages shed, by class (for `getnetworkinfo`).
    shed_medium: u64,
    shed_low: u64,
    last_save: Instant,
    /// A new peer connected since the last save (saved within seconds, so
    /// even a killed node finds its peers again).
    store_dirty: bool,
    last_bootstrap: Option<Instant>,
}

const HEARTBEAT: Duration = Duration::from_secs(1);
const SAVE_EVERY: Duration = Duration::from_secs(60);
const BOOTSTRAP_EVERY: Duration = Duration::from_secs(300);
const DIRTY_SAVE_AFTER: Duration = Duration::from_secs(2);

impl Task {
    async fn run(mut self, mut high: mpsc::Receiver<Command>, mut normal: mpsc::Receiver<Command>) {
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                cmd = high.recv() => match cmd {
                    Some(cmd) => if self.on_command(cmd).is_break() {
                        break;
                    },
                    None => break,
                },
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                _ = heartbeat.tick() => self.heartbeat(),
                Some(cmd) = normal.recv() => if self.on_command(cmd).is_break() {
                    break;
                },
            }
        }
        debug!(target: "net", "network task stopped");
    }

    /// Hands an event to the node; false if it was shed (medium and low
    /// priority, queue full).
    fn emit(&mut self, priority: Priority, event: NetworkEvent) -> bool {
        let (queue, shed) = match priority {
            Priority::High => return self.events_high.send(event).is_ok(),
            Priority::Medium => (&self.events_medium, &mut self.shed_medium),
            Priority::Low => (&self.events_low, &mut self.shed_low),
        };
        let sent = queue.try_send(event).is_ok();
        if !sent {
            *shed += 1;
        }
        sent
    }

    fn behaviour_for(
        &mut self,
        p: Protocol,
    ) -> &mut request_response::Behaviour<crate::codec::SyncCodec> {
        let b = self.swarm.behaviour_mut();
        match p {
            Protocol::Status => &mut b.status,
            Protocol::Headers => &mut b.headers,
            Protocol::Blocks => &mut b.blocks,
            Protocol::Direct => &mut b.direct,
            Protocol::Media => &mut b.media,
        }
    }

    /// Runs a command; `Break` after `Shutdown`.
    fn on_command(&mut self, cmd: Command) -> ControlFlow<()> {
        match cmd {
            Command::Publish { topic, data, reply } => {
                let t = topic.ident(&self.chain);
                let published = self.swarm.behaviour_mut().gossipsub.publish(t, data);
                debug!(target: "net", ?topic, result = ?published.as_ref().map(|_| ()), "publish");
                let result = match published {
                    Ok(_) | Err(gossipsub::PublishError::Duplicate) => Ok(()),
                    // Nobody to tell yet: not an error for the node.
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Ok(()),
                    Err(e) => Err(e.to_string()),
                };
                if let Some(r) = reply {
                    let _ = r.send(result);
                }
            }
            Command::Validate {
                id,
                source,
                acceptance,
            } => self.verdict(&id, &source, acceptance),
            Command::Request {
                peer,
                request,
                reply,
            } => match self.aborted_dials.get_mut(&peer) {
                Some(aborted) => aborted.requests.push((request, reply)),
                None => self.send_request(peer, request, reply),
            },
            Command::Respond {
                responder,
                response,
                done,
            } => {
                let p = responder.protocol;
                // The requester may have gone away: nothing to do then (a
                // waiting caller sees its `done` dropped).
                let sent = self
                    .behaviour_for(p)
                    .send_response(responder.channel, response);
                if let (Ok(()), Some(done)) = (sent, done) {
                    self.responding.insert((p, responder.request_id), done);
                }
            }
            Command::AddAddress { peer, addr } => {
                let base = without_peer_id(&addr);
                if peer_id_of(&addr).is_some_and(|p| p != peer)
                    || peer == *self.swarm.local_peer_id()
                    || base.is_empty()
                {
                    debug!(target: "net", %peer, %addr, "ignoring a direct address");
                } else {
                    self.direct_addrs.add(peer, base.clone());
                    // Every behaviour's address cache, so requests on any
                    // protocol can dial it too.
                    self.swarm.add_peer_address(peer, base);
                }
            }
            Command::Report {
                peer,
                action,
                reason,
            } => self.report(peer, action, &reason),
            Command::StartProviding { key, reply } => {
                let routable = self.has_routable_peer();
                let kad = &mut self.swarm.behaviour_mut().kad;
                let r = match kad.start_providing(key.clone()) {
                    Ok(_) => {
                        if !routable {
                            // The query finds nobody to store the record at;
                            // publish again once there is someone.
                            self.unpublished.insert(key);
                        }
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                };
                let _ = reply.send(r);
            }
            Command::StopProviding { key } => {
                self.unpublished.remove(&key);
                self.swarm.behaviour_mut().kad.stop_providing(&key);
            }
            Command::GetProviders { key, found } => {
                let id = self.swarm.behaviour_mut().kad.get_providers(key);
                self.provider_queries.insert(
                    id,
                    ProviderQuery {
                        found,
                        seen: HashSet::new(),
                    },
                );
            }
            Command::AddPeer { addr, reply } => {
                let r = if addr.iter().next().is_none() {
                    Err("empty address".to_owned())
                } else {
                    self.add_peer(addr, true);
                    Ok(())
                };
                let _ = reply.send(r);
            }
            Command::Disconnect { peer, reply } => {
                // An explicit disconnect also ends "keep connected".
                self.swarm
                    .behaviour_mut()
                    .peers
                    .db
                    .set_not_persistent(&peer);
                let ok = self.disconnect(peer);
                let _ = reply.send(ok);
            }
            Command::Ban {
                target,
                duration,
                reason,
                reply,
            } => {
                self.ban(target, duration, reason);
                let _ = reply.send(());
            }
            Command::Unban { target, reply } => {
                let ok = self.swarm.behaviour_mut().peers.db.unban(&target);
                if ok {
                    info!(target: "net", %target, "ban lifted");
                    self.save_store();
                }
                let _ = reply.send(ok);
            }
            Command::ClearBans(reply) => {
                self.swarm.behaviour_mut().peers.db.clear_bans();
                self.save_store();
                let _ = reply.send(());
            }
            Command::ListBans(reply) => {
                let mut bans: Vec<BanInfo> = self
                    .swarm
                    .behaviour()
                    .peers
                    .db
                    .bans()
                    .map(|(t, b)| BanInfo {
                        target: *t,
                        created: b.created,
                        until: b.until,
                        reason: b.reason.clone(),
                    })
                    .collect();
                bans.sort_by_key(|b| (b.created, b.target));
                let _ = reply.send(bans);
            }
            Command::Peers(reply) => {
                let now = Instant::now();
                let mut peers: Vec<PeerInfo> = self
                    .swarm
                    .behaviour()
                    .peers
                    .db
                    .connected()
                    .map(|(p, r)| {
                        let (since, inbound) = match r.state {
                            crate::peers::ConnectionState::Connected { since, inbound } => {
                                (since, inbound)
                            }
                            _ => (now, false),
                        };
                        PeerInfo {
                            id: self.conn_ids.get(p).copied().unwrap_or(0),
                            peer_id: *p,
                            addr: r.remote.clone().unwrap_or_else(Multiaddr::empty),
                            inbound,
                            connected_secs: now.saturating_duration_since(since).as_secs(),
                            score: r.score,
                            ping: r.ping,
                            agent: r.agent.clone(),
                            persistent: r.persistent,
                        }
                    })
                    .collect();
                peers.sort_by_key(|p| p.id);
                let _ = reply.send(peers);
            }
            Command::Info(reply) => {
                let db = &self.swarm.behaviour().peers.db;
                let peer_id = *self.swarm.local_peer_id();
                let info = NetworkInfo {
                    peer_id,
                    listen_addrs: self.listen_addrs.iter().map(|(_, a)| a.clone()).collect(),
                    inbound: db.connected_count(true),
                    outbound: db.connected_count(false),
                    max_inbound: self.config.max_inbound(),
                    max_outbound: self.config.max_outbound(),
                    protocol_version: protocol_version(&self.chain),
                    agent: self.config.agent.clone(),
                    mdns: self.swarm.behaviour().mdns.is_enabled(),
                    shed_medium: self.shed_medium,
                    shed_low: self.shed_low,
                };
                let _ = reply.send(info);
            }
            Command::Shutdown(reply) => {
                self.save_store();
                let _ = reply.send(());
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// Adds a peer to keep connected (bootnode, `addnode`).
    fn add_peer(&mut self, addr: Multiaddr, dial_now: bool) {
        let now = Instant::now();
        match peer_id_of(&addr) {
            Some(peer) => {
                let base = without_peer_id(&addr);
                self.swarm
                    .behaviour_mut()
                    .peers
                    .db
                    .set_persistent(peer, base.clone(), now);
                self.swarm.behaviour_mut().kad.add_address(&peer, base);
            }
            None => {
                if !self.anonymous_bootnodes.iter().any(|a| a.addr == addr) {
                    self.anonymous_bootnodes.push(AnonymousPeer {
                        addr,
                        failures: 0,
                        next_dial: now,
                    });
                }
            }
        }
        if dial_now {
            self.dial_due();
        }
    }

    fn report(&mut self, peer: PeerId, action: PeerAction, reason: &str) {
        let now = Instant::now();
        let outcome = self
            .swarm
            .behaviour_mut()
            .peers
            .db
            .report(peer, action, now);
        debug!(target: "net", %peer, ?action, reason, "peer reported");
        if outcome == ScoreOutcome::Banned {
            warn!(target: "net", %peer, reason, "banning peer");
            let d = self.config.ban_duration;
            self.ban(BanTarget::Peer(peer), d, reason.to_owned());
        }
    }

    fn ban(&mut self, target: BanTarget, duration: Duration, reason: String) {
        let created = unix_now();
        let until = created.saturating_add(duration.as_secs().max(1));
        let to_drop: Vec<PeerId> = {
            let db = &self.swarm.behaviour().peers.db;
            match target {
                BanTarget::Peer(p) => vec![p],
                BanTarget::Ip(ip) => db
                    .connected()
                    .filter(|(_, r)| r.remote.as_ref().and_then(ip_of) == Some(ip))
                    .map(|(p, _)| *p)
                    .collect(),
            }
        };
        self.swarm.behaviour_mut().peers.db.ban(
            target,
            Ban {
                created,
                until,
                reason,
            },
        );
        for p in to_drop {
            self.disconnect(p);
        }
        self.save_store();
    }

    /// Sends a request; if the peer is not connected, the request-response
    /// behaviour dials it.
    fn send_request(&mut self, peer: PeerId, request: Request, reply: RequestReply) {
        let p = request.protocol();
        // Not connected: the swarm dials with these addresses and any its
        // behaviours know (Kademlia, earlier connections).
        let mut addrs = self.direct_addrs.get(&peer);
        for a in self.provider_addrs.get(&peer) {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        let id = self
            .behaviour_for(p)
            .send_request_with_addresses(&peer, request, addrs);
        self.pending.insert((p, id), reply);
    }

    /// Closes every connection to `peer`; false if there was none.
    ///
    /// The swarm also aborts the dials to `peer` in progress, but reports
    /// each as failed only later. A request sent to `peer` before then
    /// would wait for such a dial instead of dialing anew (the swarm dials
    /// a peer once at a time) and fail with it, so requests to `peer` are
    /// held back until the aborted dials have ended.
    fn disconnect(&mut self, peer: PeerId) -> bool {
        let pm = &mut self.swarm.behaviour_mut().peers;
        pm.db.on_disconnecting(&peer);
        let dials = pm.pending_dials(&peer);
        if !dials.is_empty() {
            debug!(target: "net", %peer, dials = dials.len(), "aborting dials");
            let aborted = self
                .aborted_dials
                .entry(peer)
                .or_insert_with(|| AbortedDials {
                    dials: HashSet::new(),
                    since: Instant::now(),
                    requests: Vec::new(),
                });
            aborted.dials.extend(dials);
        }
        self.swarm.disconnect_peer_id(peer).is_ok()
    }

    /// A dial to `peer` connected or failed: sends the requests held back
    /// once no aborted dial to `peer` is left.
    fn dial_ended(&mut self, peer: PeerId, id: ConnectionId) {
        let Some(aborted) = self.aborted_dials.get_mut(&peer) else {
            return;
        };
        aborted.dials.remove(&id);
        if aborted.dials.is_empty() {
            self.release_requests(peer);
        }
    }

    fn release_requests(&mut self, peer: PeerId) {
        if let Some(aborted) = self.aborted_dials.remove(&peer) {
            for (request, reply) in aborted.requests {
                self.send_request(peer, request, reply);
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(b) => self.on_behaviour_event(b),
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                info!(target: "net", %address, "listening");
                self.listen_addrs.push((listener_id, address));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|(_, a)| *a != address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                self.dial_ended(peer_id, connection_id);
                let addr = endpoint.get_remote_address().clone();
                if endpoint.is_dialer() {
                    let base = without_peer_id(&addr);
                    if let Some(pos) = self
                        .anonymous_bootnodes
                        .iter()
                        .position(|a| without_peer_id(&a.addr) == base)
                    {
                        self.anonymous_bootnodes.remove(pos);
                        self.swarm.behaviour_mut().peers.db.set_persistent(
                            peer_id,
                            base.clone(),
                            Instant::now(),
                        );
                    }
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, base);
                }
                if num_established.get() == 1 {
                    self.store_dirty = true;
                    self.next_conn_id += 1;
                    self.conn_ids.insert(peer_id, self.next_conn_id);
                    debug!(target: "net", peer = %peer_id, %addr, inbound = !endpoint.is_dialer(), "connected");
                    self.emit(
                        Priority::High,
                        NetworkEvent::PeerConnected {
                            peer: peer_id,
                            addr,
                            inbound: !endpoint.is_dialer(),
                        },
                    );
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                debug!(target: "net", peer = %peer_id, ?cause, "disconnected");
                self.conn_ids.remove(&peer_id);
                self.limiter.remove_peer(&peer_id);
                self.emit(
                    Priority::High,
                    NetworkEvent::PeerDisconnected { peer: peer_id },
                );
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id,
                connection_id,
                error,
            } => {
                debug!(target: "net", peer = ?peer_id, %error, "dial failed");
                if let Some(peer) = peer_id {
                    self.dial_ended(peer, connection_id);
                }
                if peer_id.is_none() {
                    let now = Instant::now();
                    let rng = self.swarm.behaviour_mut().peers.rng();
                    for a in &mut self.anonymous_bootnodes {
                        // Pending dials were parked 10 s ahead; back off.
                        if a.next_dial > now {
                            a.next_dial = now + crate::peers::backoff(a.failures, rng);
                            a.failures = a.failures.saturating_add(1).min(16);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => self.on_gossip(propagation_source, message_id, message),
            BehaviourEvent::Gossipsub(_) => {}
            BehaviourEvent::Status(e) => self.on_sync_event(Protocol::Status, e),
            BehaviourEvent::Headers(e) => self.on_sync_event(Protocol::Headers, e),
            BehaviourEvent::Blocks(e) => self.on_sync_event(Protocol::Blocks, e),
            BehaviourEvent::Direct(e) => self.on_sync_event(Protocol::Direct, e),
            BehaviourEvent::Media(e) => self.on_sync_event(Protocol::Media, e),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if info.protocol_version != protocol_version(&self.chain) {
                    info!(target: "net", peer = %peer_id, theirs = %info.protocol_version,
                          "disconnecting a peer of another chain");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                let now = Instant::now();
                for addr in info
                    .listen_addrs
                    .iter()
                    .take(crate::peers::MAX_ADDRS_PER_PEER)
                {
                    if is_dialable(addr) {
                        self.swarm
                            .behaviour_mut()
                            .peers
                            .db
                            .add_address(peer_id, addr.clone(), now);
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, addr.clone());
                    }
                }
                self.swarm.behaviour_mut().peers.db.set_info(
                    &peer_id,
                    Some(info.agent_version.chars().take(128).collect()),
                    None,
                );
            }
            BehaviourEvent::Identify(_) => {}
            BehaviourEvent::Ping(ping::Event { peer, result, .. }) => {
                if let Ok(rtt) = result {
                    self.swarm
                        .behaviour_mut()
                        .peers
                        .db
                        .set_info(&peer, None, Some(rtt));
                }
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer, addresses, ..
            }) => {
                let now = Instant::now();
                for a in addresses.iter() {
                    self.swarm
                        .behaviour_mut()
                        .peers
                        .db
                        .add_address(peer, a.clone(), now);
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            }) => self.on_kad_query(id, result, step.last),
            BehaviourEvent::Kad(_) => {}
            BehaviourEvent::Mdns(mdns::Event::Discovered(list)) => {
                let now = Instant::now();
                for (peer, addr) in list {
                    debug!(target: "net", %peer, %addr, "mDNS discovered");
                    self.swarm
                        .behaviour_mut()
                        .peers
                        .db
                        .add_address(peer, addr.clone(), now);
                    self.swarm.behaviour_mut().kad.add_address(&peer, addr);
                }
            }
            BehaviourEvent::Mdns(_) => {}
            BehaviourEvent::Peers(never) => match never {},
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: MessageId, message: gossipsub::Message) {
        let Some(topic) = Topic::from_hash(&self.chain, &message.topic) else {
            self.verdict(&id, &source, Acceptance::Reject);
            self.report(
                source,
                PeerAction::LowTolerance,
                "gossip on an unknown topic",
            );
            return;
        };
        let kind = match topic {
            Topic::Blocks => Kind::BlockGossip,
            Topic::ChainLocks => Kind::ChainLockGossip,
            Topic::Quorum => Kind::QuorumGossip,
            Topic::Media => Kind::MediaGossip,
            // Governance is not subscribed yet.
            Topic::Txs | Topic::Governance => Kind::TxGossip,
        };
        if !self.limiter.allow(source, kind, Instant::now()) {
            self.verdict(&id, &source, Acceptance::Ignore);
            self.report(
                source,
                PeerAction::HighTolerance,
                "gossip rate limit exceeded",
            );
            return;
        }
        let event = NetworkEvent::Gossip {
            topic,
            source,
            author: message.source,
            id: id.clone(),
            data: message.data,
        };
        if !self.emit(topic.priority(), event) {
            // Shed: the node is busy; let the message expire unforwarded.
            self.verdict(&id, &source, Acceptance::Ignore);
        }
    }

    /// Hands a verdict on a gossip message to gossipsub (only `Accept`
    /// forwards it).
    fn verdict(&mut self, id: &MessageId, source: &PeerId, acceptance: Acceptance) {
        let a = match acceptance {
            Acceptance::Accept => MessageAcceptance::Accept,
            Acceptance::Ignore => MessageAcceptance::Ignore,
            Acceptance::Reject => MessageAcceptance::Reject,
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, a);
    }

    fn on_sync_event(
        &mut self,
        protocol: Protocol,
        event: request_response::Event<Request, Response>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request_id,
                        request,
                        channel,
                    },
                ..
            } => {
                let kind = match protocol {
                    Protocol::Status => Kind::StatusRequest,
                    Protocol::Headers => Kind::HeadersRequest,
                    Protocol::Blocks => Kind::BlocksRequest,
                    Protocol::Direct => Kind::DirectRequest,
                    Protocol::Media => Kind::MediaRequest,
                };
                if !self.limiter.allow(peer, kind, Instant::now()) {
                    // Dropping the channel tells the peer nothing; it times
                    // out, as a flood deserves.
                    self.report(
                        peer,
                        PeerAction::MidTolerance,
                        "request rate limit exceeded",
                    );
                    return;
                }
                // Media requests never delay blocks: low priority, shed
                // first. A shed request's channel is dropped, so the peer
                // learns at once that it got no answer.
                let priority = if protocol == Protocol::Media {
                    Priority::Low
                } else {
                    Priority::High
                };
                self.emit(
                    priority,
                    NetworkEvent::Request {
                        peer,
                        request,
                        responder: Responder {
                            protocol,
                            request_id,
                            channel,
                        },
                    },
                );
            }
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.pending.remove(&(protocol, request_id)) {
                    let _ = reply.send(Ok(response));
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                use request_response::OutboundFailure as F;
                let e = match error {
                    F::Timeout => RequestError::Timeout,
                    F::ConnectionClosed | F::DialFailure => RequestError::ConnectionClosed,
                    F::UnsupportedProtocols => RequestError::Unsupported,
                    F::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        self.report(peer, PeerAction::Fatal, "malformed response");
                        RequestError::Malformed
                    }
                    F::Io(e) => RequestError::Other(e.to_string()),
                };
                if let Some(reply) = self.pending.remove(&(protocol, request_id)) {
                    let _ = reply.send(Err(e));
                }
            }
            Event::InboundFailure {
                peer,
                error,
                request_id,
                ..
            } => {
                if let Some(done) = self.responding.remove(&(protocol, request_id)) {
                    let _ = done.send(());
                }
                if let request_response::InboundFailure::Io(e) = &error {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        self.report(peer, PeerAction::Fatal, "malformed request");
                    }
                }
            }
            Event::ResponseSent { request_id, .. } => {
                if let Some(done) = self.responding.remove(&(protocol, request_id)) {
                    let _ = done.send(());
                }
            }
        }
    }

    fn heartbeat(&mut self) {
        let now = Instant::now();
        let unix = unix_now();
        {
            let db = &mut self.swarm.behaviour_mut().peers.db;
            db.heartbeat(now);
            for t in db.expire_bans(unix) {
                info!(target: "net", target = %t, "ban expired");
            }
        }
        self.limiter.prune(now);
        // Never hold requests back for long, should a dial's end go
        // unreported.
        let overdue: Vec<PeerId> = self
            .aborted_dials
            .iter()
            .filter(|(_, a)| now.duration_since(a.since) >= ABORTED_DIALS_WAIT)
            .map(|(p, _)| *p)
            .collect();
        for peer in overdue {
            self.release_requests(peer);
        }
        self.provider_housekeeping();
        self.dial_due();
        let connected = self.swarm.connected_peers().count();
        let bootstrap_due = self
            .last_bootstrap
            .is_none_or(|t| now.duration_since(t) >= BOOTSTRAP_EVERY);
        if connected > 0 && bootstrap_due {
            self.last_bootstrap = Some(now);
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
        let since_save = now.duration_since(self.last_save);
        if since_save >= SAVE_EVERY || (self.store_dirty && since_save >= DIRTY_SAVE_AFTER) {
            self.save_store();
        }
    }

    /// Whether Kademlia's routing table has any peer.
    fn has_routable_peer(&mut self) -> bool {
        self.swarm
            .behaviour_mut()
            .kad
            .kbuckets()
            .any(|b| b.num_entries() > 0)
    }

    /// Ends provider lookups whose caller gave up, and publishes records
    /// provided while the routing table was empty.
    fn provider_housekeeping(&mut self) {
        let abandoned: Vec<kad::QueryId> = self
            .provider_queries
            .iter()
            .filter(|(_, q)| q.found.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in abandoned {
            self.provider_queries.remove(&id);
            if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                q.finish();
            }
        }
        if !self.unpublished.is_empty() && self.has_routable_peer() {
            for key in std::mem::take(&mut self.unpublished) {
                if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key) {
                    debug!(target: "net", error = %e, "could not publish a provider record");
                }
            }
        }
    }

    /// Progress of a Kademlia query: collects the providers of a
    /// `get_providers` lookup.
    fn on_kad_query(&mut self, id: kad::QueryId, result: kad::QueryResult, last: bool) {
        match result {
            kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                providers,
                ..
            })) => {
                let local = *self.swarm.local_peer_id();
                let mut new = Vec::new();
                if let Some(q) = self.provider_queries.get_mut(&id) {
                    for p in providers {
                        if p != local && q.seen.insert(p) {
                            new.push(p);
                        }
                    }
                }
                for p in new {
                    self.remember_provider_addrs(p);
                    if let Some(q) = self.provider_queries.get(&id) {
                        let _ = q.found.send(Some(p));
                    }
                }
            }
            kad::QueryResult::GetProviders(_) => {}
            kad::QueryResult::StartProviding(r) => {
                debug!(target: "net", result = ?r.map(|_| ()), "provider record published");
                return;
            }
            _ => return,
        }
        if last {
            if let Some(q) = self.provider_queries.remove(&id) {
                let _ = q.found.send(None);
            }
        }
    }

    /// Keeps the addresses Kademlia knows for a provider — its routing
    /// table entry, and the addresses the peers answering the running query
    /// gave with their provider records (those are forgotten when the
    /// query ends) — so a later request can dial it.
    fn remember_provider_addrs(&mut self, peer: PeerId) {
        // Kademlia answers this from its routing table and running queries,
        // without side effects; it is how the swarm itself asks it when
        // dialing a peer id.
        let addrs = self
            .swarm
            .behaviour_mut()
            .kad
            .handle_pending_outbound_connection(
                ConnectionId::new_unchecked(0),
                Some(peer),
                &[],
                Endpoint::Dialer,
            )
            .unwrap_or_default();
        let mut kept: Vec<Multiaddr> = Vec::new();
        for a in addrs {
            if peer_id_of(&a).is_some_and(|p| p != peer) {
                continue;
            }
            let base = without_peer_id(&a);
            if is_dialable(&base) && !kept.contains(&base) {
                kept.push(base);
            }
        }
        // Most preferred (routing table first) ends up first.
        for a in kept.into_iter().take(MAX_DIRECT_ADDRS_PER_PEER).rev() {
            self.provider_addrs.add(peer, a);
        }
    }

    /// Dials persistent peers that are down and, while outbound slots are
    /// free, the best-scored known peers not in backoff.
    fn dial_due(&mut self) {
        let now = Instant::now();
        let unix = unix_now();
        let max_out = self.config.max_outbound();
        let dial = {
            let db = &self.swarm.behaviour().peers.db;
            let busy = db.connected_count(false) + db.dialing_count();
            let want = max_out.saturating_sub(busy);
            db.to_dial(want, now, unix)
        };
        let local = *self.swarm.local_peer_id();
        for (peer, addrs) in dial {
            if peer == local {
                continue;
            }
            self.swarm.behaviour_mut().peers.db.on_dialing(peer, now);
            let opts = DialOpts::peer_id(peer).addresses(addrs).build();
            // A refused dial reaches the peer manager as a `DialFailure`
            // swarm event, which records it (and backs off).
            if let Err(e) = self.swarm.dial(opts) {
                debug!(target: "net", %peer, error = %e, "dial refused");
            }
        }
        let anon: Vec<Multiaddr> = self
            .anonymous_bootnodes
            .iter_mut()
            .filter(|a| a.next_dial <= now)
            .map(|a| {
                // Until the dial fails or connects, do not retry.
                a.next_dial = now + Duration::from_secs(10);
                a.addr.clone()
            })
            .collect();
        for addr in anon {
            if let Err(e) = self.swarm.dial(addr.clone()) {
                debug!(target: "net", %addr, error = %e, "dial refused");
            }
        }
    }

    fn load_store(&mut self) {
        let Some(path) = &self.store_path else {
            return;
        };
        let store = PeerStoreFile::load(path);
        let now = Instant::now();
        let db = &mut self.swarm.behaviour_mut().peers.db;
        let mut n = 0;
        for (peer, addrs, _score) in store.parsed_peers() {
            for a in addrs {
                db.add_address(peer, a, now);
            }
            n += 1;
        }
        let unix = unix_now();
        for (target, ban) in store.parsed_bans() {
            if ban.until > unix {
                db.ban(target, ban);
            }
        }
        if n > 0 {
            info!(target: "net", peers = n, "loaded the peer store");
        }
    }

    fn save_store(&mut self) {
        self.last_save = Instant::now();
        self.store_dirty = false;
        let Some(path) = &self.store_path else {
            return;
        };
        let db = &self.swarm.behaviour().peers.db;
        let unix = unix_now();
        let mut peers: Vec<StoredPeer> = db
            .iter()
            .filter(|(p, r)| !r.addrs.is_empty() && !db.is_banned_peer(p, unix))
            .map(|(p, r)| StoredPeer {
                peer_id: p.to_string(),
                addrs: r.addrs.iter().map(|a| a.to_string()).collect(),
                last_seen: r.last_seen,
                score: r.score,
            })
            .collect();
        peers.sort_by(|a, b| {
            b.last_seen
                .cmp(&a.last_seen)
                .then(b.score.total_cmp(&a.score))
        });
        peers.truncate(1000);
        let bans = db
            .bans()
            .map(|(t, b)| StoredBan {
                target: t.to_string(),
                created: b.created,
                until: b.until,
                reason: b.reason.clone(),
            })
            .collect();
        let file = PeerStoreFile { peers, bans };
        if let Err(e) = file.save(path) {
            warn!(target: "net", path = %path.display(), error = %e, "could not save the peer store");
        }
    }
}

/// Addresses worth remembering: not unspecified (0.0.0.0) ones.
fn is_dialable(addr: &Multiaddr) -> bool {
    match ip_of(addr) {
        Some(ip) => !ip.is_unspecified(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_addresses_are_bounded_most_recent_first() {
        let addr = |port: u16| -> Multiaddr {
            format!("/ip4/127.0.0.1/tcp/{port}")
                .parse()
                .expect("multiaddr")
        };
        let mut d = DirectAddrs::default();
        let first = PeerId::random();
        for port in 1..=(MAX_DIRECT_ADDRS_PER_PEER as u16 + 1) {
            d.add(first, addr(port));
        }
        d.add(first, addr(3));
        let got = d.get(&first);
        assert_eq!(got.len(), MAX_DIRECT_ADDRS_PER_PEER);
        assert_eq!(got[0], addr(3));
        assert_eq!(got.iter().filter(|a| **a == addr(3)).count(), 1);
        for _ in 0..MAX_DIRECT_PEERS {
            d.add(PeerId::random(), addr(1));
        }
        // The oldest peer made room.
        assert_eq!(d.peers.len(), MAX_DIRECT_PEERS);
        assert!(d.get(&first).is_empty());
    }

    #[tokio::test]
    async fn events_come_high_priority_first_and_shed_classes_are_bounded() {
        let (high_tx, high) = mpsc::unbounded_channel();
        let (med_tx, medium) = mpsc::channel(2);
        let (_low_tx, low) = mpsc::channel(1);
        let mut events = NetworkEvents { high, medium, low };
        let peer = PeerId::random();
        med_tx
            .try_send(NetworkEvent::PeerDisconnected { peer })
            .expect("room");
        med_tx
            .try_send(NetworkEvent::PeerDisconnected { peer })
            .expect("room");
        // A full medium queue refuses more: that message is shed.
        assert!(med_tx
            .try_send(NetworkEvent::PeerDisconnected { peer })
            .is_err());
        high_tx
            .send(NetworkEvent::PeerConnected {
                peer,
                addr: Multiaddr::empty(),
                inbound: true,
            })
            .expect("open");
        assert!(matches!(
            events.recv().await,
            Some(NetworkEvent::PeerConnected { .. })
        ));
        assert!(matches!(
            events.recv().await,
            Some(NetworkEvent::PeerDisconnected { .. })
        ));
    }
}
