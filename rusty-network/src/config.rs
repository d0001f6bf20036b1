//! Network configuration.

use std::{path::PathBuf, time::Duration};

use libp2p::Multiaddr;

/// The identify agent string of this build (`rusty-coin/<version>`).
pub const DEFAULT_AGENT: &str = concat!("rusty-coin/", env!("CARGO_PKG_VERSION"));

/// Everything the network layer needs to start.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Chain name (`main`, `test`, `dev`): namespaces every protocol id.
    pub chain: String,
    /// Directory of `node.key` and `peers.json` (the network's datadir);
    /// `None` gives a throwaway identity and no peer store (tools, tests).
    pub data_dir: Option<PathBuf>,
    /// Addresses to listen on (TCP and/or QUIC multiaddrs).
    pub listen: Vec<Multiaddr>,
    /// Peers to connect to at start and keep connected; with or without a
    /// `/p2p/<peer-id>` suffix.
    pub bootnodes: Vec<Multiaddr>,
    /// Local discovery by mDNS.
    pub mdns: bool,
    /// Total connection limit; outbound gets `min(8, max_peers / 2)` (at
    /// least one), inbound the rest.
    pub max_peers: usize,
    /// How long automatic bans last.
    pub ban_duration: Duration,
    /// Give up on a request after this long.
    pub request_timeout: Duration,
    /// `max_block_size` of the chain (bounds `blocks` replies).
    pub max_block_size: usize,
    /// Identify agent string, e.g. `rusty-coin/0.1.0`.
    pub agent: String,
    /// Relay circuits for nodes behind NAT (`--relay-server`); advertised
    /// only while the node has a confirmed external address.
    pub relay_server: bool,
    /// Addresses others reach this node at, confirmed without testing
    /// (`--external-addr`, as bitcoind's `-externalip`): a public node's
    /// or masternode's address.
    pub external_addrs: Vec<Multiaddr>,
}

impl NetworkConfig {
    /// Defaults for `chain` with the given datadir: listen on all
    /// interfaces at `port` over TCP and QUIC.
    pub fn new(chain: &str, data_dir: Option<PathBuf>, port: u16) -> NetworkConfig {
        NetworkConfig {
            chain: chain.to_owned(),
            data_dir,
            listen: vec![
                format!("/ip4/0.0.0.0/tcp/{port}")
                    .parse()
                    .expect("a valid multiaddr"),
                format!("/ip4/0.0.0.0/udp/{port}/quic-v1")
                    .parse()
                    .expect("a valid multiaddr"),
            ],
            bootnodes: Vec::new(),
            mdns: chain == "dev",
            max_peers: 50,
            ban_duration: Duration::from_secs(24 * 3600),
            request_timeout: Duration::from_secs(30),
            max_block_size: 2_000_000,
            agent: DEFAULT_AGENT.to_owned(),
            relay_server: true,
            external_addrs: Vec::new(),
        }
    }

    pub fn max_outbound(&self) -> usize {
        (self.max_peers / 2).clamp(1, 8)
    }

    pub fn max_inbound(&self) -> usize {
        self.max_peers.saturating_sub(self.max_outbound())
    }
}
