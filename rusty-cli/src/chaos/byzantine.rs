//! A byzantine peer: a bare libp2p node of the dev chain with a fresh
//! identity that dials one soak node and misbehaves until its episode ends.
//! Whether the target bans it is recorded, not assumed.

use std::time::Duration;

use rand::{Rng, RngCore};
use rusty_crypto::bls;
use rusty_media::wire::{Announcement, MediaRequest, MediaResponse};
use rusty_network::{
    Acceptance, Multiaddr, NetworkConfig, NetworkEvent, NetworkHandle, Request, Response, Topic,
};
use rusty_node::llmq::messages::{ChainLockGossip, SigShare};
use rusty_shared_types::{decode_exact, masternode::ChainLock, Amount, Block, Encode, Hash256};

use super::schedule::Misbehaviour;

/// What the peer needs to know of the chain, read over RPC before it
/// starts.
#[derive(Debug, Clone, Default)]
pub struct Ammunition {
    /// The target's tip block, raw, and its height.
    pub tip_block: Option<Vec<u8>>,
    pub tip_height: u64,
    /// A quorum hash the network knows (forged shares name it).
    pub quorum: Option<Hash256>,
    /// Published media ids (corrupt chunks claim them).
    pub media: Vec<Hash256>,
}

/// Runs until aborted: dials `target`, then sends `kind` every 300 ms.
pub async fn run(
    target: Multiaddr,
    kind: Misbehaviour,
    ammo: Ammunition,
    started: tokio::sync::oneshot::Sender<NetworkHandle>,
) {
    let mut cfg = NetworkConfig::new("dev", None, 0);
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("a valid multiaddr")];
    cfg.mdns = false;
    cfg.bootnodes = vec![target];
    let Ok((net, mut events)) = rusty_network::start(cfg).await else {
        return;
    };
    let _ = started.send(net.clone());
    let bad_block = ammo.tip_block.as_deref().and_then(invalid_child);
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(NetworkEvent::Request { request, responder, .. }) => {
                    let reply = match (request, kind) {
                        (Request::Status(s), _) => Some(Response::Status(s)),
                        (Request::Blocks { .. }, Misbehaviour::InvalidBlock) => {
                            bad_block.clone().map(|b| Response::Blocks(vec![b]))
                        }
                        (Request::Media(body), Misbehaviour::CorruptChunks) => {
                            Some(Response::Media(corrupt_reply(&body).encode()))
                        }
                        _ => None,
                    };
                    if let Some(r) = reply {
                        net.respond(responder, r).await;
                    }
                }
                Some(NetworkEvent::Gossip { id, source, .. }) => {
                    net.validate(id, source, Acceptance::Ignore);
                }
                Some(_) => {}
                None => break,
            },
            _ = tick.tick() => send(&net, kind, &ammo, bad_block.as_ref()).await,
        }
    }
}

async fn send(net: &NetworkHandle, kind: Misbehaviour, ammo: &Ammunition, bad: Option<&Block>) {
    match kind {
        Misbehaviour::InvalidBlock => {
            if let Some(b) = bad {
                let _ = net.publish(Topic::Blocks, b.header.encode()).await;
            }
        }
        Misbehaviour::Garbage => {
            let topics = [
                Topic::Blocks,
                Topic::Txs,
                Topic::ChainLocks,
                Topic::Quorum,
                Topic::Media,
            ];
            let (topic, bytes) = {
                let mut rng = rand::thread_rng();
                let topic = topics[rng.gen_range(0..topics.len())];
                let mut bytes = vec![0u8; rng.gen_range(1..2048)];
                rng.fill_bytes(&mut bytes);
                (topic, bytes)
            };
            let _ = net.publish(topic, bytes).await;
        }
        Misbehaviour::ForgedChainLocks => {
            let mut rng = rand::rngs::OsRng;
            let forger = bls::SecretKey::generate(&mut rng);
            // Where a real lock would come next.
            let height = ammo.tip_height.saturating_add(1);
            let block_hash = Hash256(rand::random());
            let signature = forger.sign(b"no quorum signed this").to_bytes();
            let lock = ChainLockGossip::Lock(ChainLock {
                height,
                block_hash,
                signature,
            });
            let _ = net.publish(Topic::ChainLocks, lock.encode()).await;
            if let Some(quorum_hash) = ammo.quorum {
                let share = ChainLockGossip::Share(SigShare {
                    quorum_hash,
                    height,
                    block_hash,
                    member: 0,
                    share: signature,
                });
                let _ = net.publish(Topic::ChainLocks, share.encode()).await;
            }
        }
        Misbehaviour::CorruptChunks => {
            for id in &ammo.media {
                let _ = net
                    .publish(Topic::Media, Announcement::Have { id: *id }.encode())
                    .await;
            }
        }
    }
}

/// Chunks of the right size with the wrong bytes; no manifest.
fn corrupt_reply(body: &[u8]) -> MediaResponse {
    match MediaRequest::decode(body) {
        Ok(MediaRequest::Chunks { start, count, .. }) => MediaResponse::Chunks {
            start,
            chunks: (0..count.min(64))
                .map(|i| vec![(i as u8) ^ 0xa5; 64 * 1024])
                .collect(),
        },
        _ => MediaResponse::NotFound,
    }
}

/// A child of `tip` with a real proof of work whose coinbase pays one coin
/// more than it may.
fn invalid_child(tip: &[u8]) -> Option<Block> {
    let parent: Block = decode_exact(tip).ok()?;
    let mut block = parent.clone();
    block.header.prev_hash = parent.header.hash();
    block.header.time = parent.header.time.saturating_add(1);
    let coinbase = block.txs.first_mut()?;
    let out = coinbase.outputs.first_mut()?;
    out.value = out.value.checked_add(Amount::from_coins(1).ok()?).ok()?;
    block.header.merkle_root = rusty_core::validation::block_merkle_root(&block.txs);
    let target = rusty_core::pow::target_from_compact(block.header.bits).ok()?;
    rusty_core::pow::solve(&mut block.header, &target, 1 << 24)?;
    Some(block)
}
