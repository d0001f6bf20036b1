//! The composed libp2p behaviour. It only moves bytes and tracks peers; no
//! consensus logic lives here (the node validates gossip and answers sync
//! requests above [`crate::Network`]).

use std::time::Duration;

use libp2p::{
    autonat, dcutr, gossipsub, identify,
    identity::Keypair,
    kad, mdns, ping, relay, request_response,
    swarm::{behaviour::toggle::Toggle, NetworkBehaviour},
    StreamProtocol,
};

use crate::{
    codec::{SyncCodec, SyncProtocol},
    config::NetworkConfig,
    message::Protocol,
    peers::{Limits, PeerManager},
    topic::Topic,
};

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// First, so it can refuse a connection before the others see it.
    pub peers: PeerManager,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub gossipsub: gossipsub::Behaviour,
    /// One request-response behaviour per protocol: a request offers
    /// exactly its own protocol, and each has its own size caps.
    pub status: request_response::Behaviour<SyncCodec>,
    pub headers: request_response::Behaviour<SyncCodec>,
    pub blocks: request_response::Behaviour<SyncCodec>,
    /// Member-to-member messages (masternode DKG).
    pub direct: request_response::Behaviour<SyncCodec>,
    /// Media requests and responses (manifests, chunks): large replies, a
    /// longer timeout ([`media_request_timeout`]) and fewer concurrent
    /// streams per connection ([`MEDIA_MAX_STREAMS`]).
    pub media: request_response::Behaviour<SyncCodec>,
    /// NAT traversal (see `service::nat`): reservations and circuits
    /// through relays, relaying for others (only advertised while this node
    /// has a confirmed external address), hole punching, and reachability
    /// tests in both roles.
    pub relay_client: relay::client::Behaviour,
    pub relay_server: Toggle<relay::Behaviour>,
    pub dcutr: dcutr::Behaviour,
    pub autonat_client: autonat::v2::client::Behaviour,
    pub autonat_server: autonat::v2::server::Behaviour,
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behaviour")
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

/// `/rusty/<chain>/1`: the identify protocol version; peers that announce
/// another one are disconnected.
pub fn protocol_version(chain: &str) -> String {
    format!("/rusty/{chain}/{PROTOCOL_VERSION}")
}

/// The version of this node's protocols (the last part of their names and
/// of [`protocol_version`]); a peer speaking another is not connected.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest gossip message: a transaction, or later a media
/// announcement. Blocks travel as headers on gossip.
pub const MAX_GOSSIP_BYTES: usize = 1 << 20;

/// Provider records a node stores (its own and others'), at most; the
/// MemoryStore's default is 1,024, too few for a media library.
pub const MAX_PROVIDER_KEYS: usize = 65_536;

/// Concurrent `media` streams per connection, inbound and outbound
/// together. A reply holds up to [`crate::message::MAX_MEDIA_RESPONSE`]
/// bytes in memory while it is read, so this is kept well below the sync
/// protocols' 256.
pub const MEDIA_MAX_STREAMS: usize = 32;

/// The `media` protocol's request timeout: at least 60 s, since a manifest
/// of the largest content is about 32 MiB.
pub fn media_request_timeout(config: &NetworkConfig) -> Duration {
    config.request_timeout.max(Duration::from_secs(60))
}

/// Gossip message ids are the content hash, so the same header or
/// transaction published by two nodes is one message.
fn message_id(m: &gossipsub::Message) -> gossipsub::MessageId {
    let mut h = blake3::Hasher::new_derive_key("rusty-coin gossip-id v1");
    h.update(m.topic.as_str().as_bytes());
    h.update(&[0]);
    // Media announcements ("I have X", "watching X") are the same bytes
    // from every node that has X and are repeated: their id is per author
    // and per publication (forwarded copies keep both), or every one but
    // the first would be dropped as a duplicate.
    if m.topic.as_str().ends_with("/media/1") {
        if let Some(source) = &m.source {
            h.update(&source.to_bytes());
        }
        h.update(&m.sequence_number.unwrap_or(0).to_le_bytes());
    }
    h.update(&m.data);
    gossipsub::MessageId::from(h.finalize().as_bytes()[..20].to_vec())
}

impl Behaviour {
    pub fn new(
        key: &Keypair,
        relay_client: relay::client::Behaviour,
        config: &NetworkConfig,
    ) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
        let chain = config.chain.as_str();
        let peer_id = key.public().to_peer_id();

        let identify = identify::Behaviour::new(
            identify::Config::new(protocol_version(chain), key.public())
                .with_agent_version(config.agent.clone())
                .with_interval(Duration::from_secs(300)),
        );
        let ping = ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15)));

        let kad_protocol = StreamProtocol::try_from_owned(format!("/rusty/{chain}/kad/1"))?;
        let mut kad = kad::Behaviour::with_config(
            peer_id,
            kad::store::MemoryStore::with_config(
                peer_id,
                kad::store::MemoryStoreConfig {
                    max_provided_keys: MAX_PROVIDER_KEYS,
                    ..Default::default()
                },
            ),
            kad::Config::new(kad_protocol),
        );
        // Serve the DHT even without a confirmed external address (loopback
        // and LAN networks never get one).
        kad.set_mode(Some(kad::Mode::Server));

        let mdns = if config.mdns {
            match mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(target: "net", error = %e, "mDNS unavailable; local discovery is off");
                    None
                }
            }
        } else {
            None
        };

        let gossip_config = gossipsub::ConfigBuilder::default()
            .protocol_id_prefix(format!("/rusty/{chain}/meshsub"))
            .heartbeat_interval(Duration::from_millis(700))
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .max_transmit_size(MAX_GOSSIP_BYTES)
            .message_id_fn(message_id)
            .build()?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )?;
        for topic in Topic::SUBSCRIBED {
            gossipsub.subscribe(&topic.ident(chain))?;
        }

        let request_response = |p: Protocol, timeout: Duration, streams: usize| {
            request_response::Behaviour::with_codec(
                SyncCodec {
                    max_block_size: config.max_block_size,
                },
                [(
                    SyncProtocol::new(chain, p),
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default()
                    .with_request_timeout(timeout)
                    .with_max_concurrent_streams(streams),
            )
        };
        let sync = |p: Protocol| request_response(p, config.request_timeout, 256);

        Ok(Behaviour {
            peers: PeerManager::new(Limits {
                max_inbound: config.max_inbound(),
                max_outbound: config.max_outbound(),
            }),
            identify,
            ping,
            kad,
            mdns: mdns.into(),
            gossipsub,
            status: sync(Protocol::Status),
            headers: sync(Protocol::Headers),
            blocks: sync(Protocol::Blocks),
            direct: sync(Protocol::Direct),
            media: request_response(
                Protocol::Media,
                media_request_timeout(config),
                MEDIA_MAX_STREAMS,
            ),
            relay_client,
            // libp2p's defaults, which docs/network.md states: 128
            // reservations of 1 h (4 per peer), 16 circuits (4 per peer),
            // each closed after 2 min or 128 KiB each way.
            relay_server: config
                .relay_server
                .then(|| relay::Behaviour::new(peer_id, relay::Config::default()))
                .into(),
            dcutr: dcutr::Behaviour::new(peer_id),
            autonat_client: autonat::v2::client::Behaviour::default(),
            autonat_server: autonat::v2::server::Behaviour::default(),
        })
    }
}
