//! The Rusty Coin peer-to-peer layer on libp2p.
//!
//! Split as in Lighthouse: this crate owns the `Swarm` and speaks the wire
//! protocols; it knows nothing about consensus. The node (`rusty-node`'s
//! `p2p` module) validates what arrives and decides what to send.
//!
//! - [`service`]: [`start`] spawns the network task; [`NetworkHandle`]
//!   sends it commands, [`NetworkEvents`] delivers [`NetworkEvent`]s by
//!   priority.
//! - [`behaviour`]: TCP + Noise + Yamux and QUIC; identify, ping, Kademlia,
//!   mDNS, gossipsub, and the `status`/`headers`/`blocks`/`direct`/`media`
//!   request-response protocols, all namespaced `/rusty/<chain>/...`.
//!   Kademlia also holds provider records (who has which media content):
//!   [`NetworkHandle::start_providing`], [`NetworkHandle::get_providers`].
//! - [`peers`]: the peer manager (scores, bans, connection states, backoff,
//!   limits). [`rate_limit`]: per-peer, per-kind token buckets.
//! - [`message`], [`codec`], [`topic`]: wire formats and topics.
//! - [`store`]: `node.key` and `peers.json` in the datadir.

pub mod behaviour;
pub mod codec;
pub mod config;
pub mod message;
pub mod peers;
pub mod port;
pub mod rate_limit;
pub mod service;
pub mod store;
pub mod topic;

pub use config::NetworkConfig;
pub use libp2p::{gossipsub::MessageId, multiaddr, Multiaddr, PeerId};
pub use message::{
    DirectAck, DirectMessage, Request, Response, Status, MAX_DIRECT_BODY, MAX_MEDIA_REQUEST,
    MAX_MEDIA_RESPONSE,
};
pub use peers::{BanTarget, PeerAction};
pub use service::{
    start, start_with_metrics, Acceptance, BanInfo, NetworkError, NetworkEvent, NetworkEvents,
    NetworkHandle, NetworkInfo, PeerInfo, RequestError, Responder,
};
pub use topic::{Priority, Topic};
