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
    yamux, Multiaddr, PeerId, Swarm, SwarmBuilder,
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
    rate_limit::{Kind, RateLimiter, Verdict},
    store::{load_or_create_key, KeyError, PeerStoreFile, StoredBan, StoredPeer},
    topic::{Priority, Topic},
};

mod commands;
mod events;
pub mod nat;
mod transport;
mod upkeep;

use upkeep::is_dialable;

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
    /// Every connection to it goes through a relay (no direct one yet).
    pub relayed: bool,
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
    /// Reachability, relays and hole punching.
    pub nat: nat::NatInfo,
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
    start_with_metrics(config, &mut libp2p::metrics::Registry::default()).await
}

/// [`start`], with libp2p's own metrics (bandwidth by protocol and
/// direction, connections, gossipsub, Kademlia, identify, ping) registered
/// into `registry`.
pub async fn start_with_metrics(
    config: NetworkConfig,
    registry: &mut libp2p::metrics::Registry,
) -> Result<(NetworkHandle, NetworkEvents), NetworkError> {
    let key = match &config.data_dir {
        Some(dir) => load_or_create_key(&dir.join("node.key"))?,
        None => libp2p::identity::Keypair::generate_ed25519(),
    };
    let peer_id = key.public().to_peer_id();
    let build = |e: &dyn std::fmt::Display| NetworkError::Build(e.to_string());
    let behaviour_config = config.clone();
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_quic()
        .with_other_transport(transport::tcp_transport)
        .map_err(|e| build(&e))?
        .with_dns()
        .map_err(|e| build(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| build(&e))?
        .with_bandwidth_metrics(registry)
        .with_behaviour(|key, relay_client| Behaviour::new(key, relay_client, &behaviour_config))
        .map_err(|e| build(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    // Connections, gossipsub, Kademlia, identify and ping, recorded from the
    // events the task sees (bandwidth is counted by the transport above).
    let metrics = libp2p::metrics::Metrics::new(registry);

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

    for addr in &config.external_addrs {
        swarm.add_external_address(addr.clone());
    }
    let mut task = Task {
        swarm,
        nat: nat::NatState::default(),
        metrics,
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
    nat: nat::NatState,
    /// libp2p's own metrics (`rusty_libp2p_*` on `/metrics`).
    metrics: libp2p::metrics::Metrics,
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
