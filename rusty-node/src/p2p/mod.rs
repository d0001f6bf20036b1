//! The node on the network: everything between the chain service and
//! `rusty-network`'s swarm task.
//!
//! - gossip validation: block headers announced on the `blocks` topic are
//!   fetched, validated and only then forwarded; transactions go through
//!   the mempool's checks first;
//! - answering peers' `status`, `headers` and `blocks` requests;
//! - headers-first sync with parallel block download ([`sync`]);
//! - announcing the node's own new tips and transactions.
//!
//! Everything here runs in one tokio task ([`P2pService`]); the RPC reaches
//! it through a [`P2pHandle`].

mod rebroadcast;
mod service;
pub mod sync;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use rusty_network::{NetworkHandle, PeerId};
use rusty_shared_types::Hash256;

/// What the node knows of a peer's chain (from its `status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerChain {
    pub tip: Hash256,
    pub height: u64,
    pub chain_work: [u8; 32],
    /// Heights of the blocks requested from it and not yet received.
    pub in_flight: Vec<u64>,
}

/// When a peer last gave this node something new (`getpeerinfo`'s
/// `last_block` and `last_transaction`), UNIX seconds; 0 for never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerActivity {
    /// A block the chain accepted (that it did not have).
    pub last_block: u64,
    /// A transaction the mempool accepted.
    pub last_transaction: u64,
}

/// Sync progress shared with the RPC.
#[derive(Debug, Default)]
pub struct SyncView {
    peers: Mutex<HashMap<PeerId, PeerChain>>,
    activity: Mutex<HashMap<PeerId, PeerActivity>>,
    /// Height of the best header chain known (≥ the active height while
    /// syncing).
    header_height: std::sync::atomic::AtomicU64,
}

impl SyncView {
    pub fn peer(&self, peer: &PeerId) -> Option<PeerChain> {
        self.peers.lock().ok()?.get(peer).cloned()
    }

    /// When `peer` last gave us a new block or transaction.
    pub fn activity(&self, peer: &PeerId) -> PeerActivity {
        self.activity
            .lock()
            .ok()
            .and_then(|m| m.get(peer).copied())
            .unwrap_or_default()
    }

    pub(crate) fn note_block(&self, peer: PeerId, now: u64) {
        if let Ok(mut m) = self.activity.lock() {
            m.entry(peer).or_default().last_block = now;
        }
    }

    pub(crate) fn note_transaction(&self, peer: PeerId, now: u64) {
        if let Ok(mut m) = self.activity.lock() {
            m.entry(peer).or_default().last_transaction = now;
        }
    }

    pub fn header_height(&self) -> u64 {
        self.header_height
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set_peer(&self, peer: PeerId, chain: Option<PeerChain>) {
        if let Ok(mut m) = self.peers.lock() {
            match chain {
                Some(c) => {
                    m.insert(peer, c);
                }
                None => {
                    m.remove(&peer);
                    if let Ok(mut a) = self.activity.lock() {
                        a.remove(&peer);
                    }
                }
            }
        }
    }

    pub(crate) fn set_header_height(&self, h: u64) {
        self.header_height
            .store(h, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What the RPC needs of the network.
#[derive(Debug, Clone)]
pub struct P2pHandle {
    pub net: NetworkHandle,
    pub view: Arc<SyncView>,
    /// The quorum service (DKG, ChainLocks).
    pub llmq: crate::llmq::LlmqHandle,
    /// The media layer.
    pub media: Option<rusty_media::service::MediaHandle>,
}

/// Starts the P2P service task over a started network.
///
/// The quorum service starts with it; `operator` makes this node a
/// masternode, and `data_dir` is where its DKG state survives restarts.
/// The services the P2P task hands messages to.
#[derive(Debug, Clone, Default)]
pub struct Services {
    /// Media announcements and requests.
    pub media: Option<rusty_media::service::MediaHandle>,
    /// Swap messages (`direct` kind 2).
    pub bridge: Option<crate::bridge::service::BridgeHandle>,
}

pub fn spawn(
    executor: &crate::tasks::TaskExecutor,
    chain: crate::service::ChainHandle,
    net: NetworkHandle,
    events: rusty_network::NetworkEvents,
    operator: Option<crate::llmq::Operator>,
    data_dir: Option<std::path::PathBuf>,
    services: Services,
) -> P2pHandle {
    let Services { media, bridge } = services;
    let view = Arc::new(SyncView::default());
    let llmq = crate::llmq::spawn(executor, chain.clone(), net.clone(), operator, data_dir);
    let handle = P2pHandle {
        net: net.clone(),
        view: view.clone(),
        llmq: llmq.clone(),
        media: media.clone(),
    };
    let (service, internal) =
        service::Service::new(chain, net, view, llmq.input, media.clone(), bridge);
    // The p2p task ends when the network's event stream closes (the swarm
    // task stopped); while the node runs, that is a critical failure.
    executor.spawn_critical("p2p", async move {
        service.run(events, internal).await;
        if let Some(m) = media {
            m.stop();
        }
    });
    handle
}
