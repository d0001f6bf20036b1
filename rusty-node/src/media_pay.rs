//! Payments for content, on the node's side (see
//! `rusty_shared_types::media` for the consensus rules).
//!
//! A task follows the active chain and, for each new block:
//! - **as a creator**: for every purchase of this node's priced content
//!   (paying its creator key at least the manifest's price) that is final
//!   and whose payment is still unspent, publishes the key release: a
//!   transaction spending the payment (signed with the creator key) to a
//!   wallet address, carrying the content key sealed to the buyer;
//! - **as a buyer**: for every key release of a purchase whose buyer key is
//!   this node's (derived from its media key and the content id, so nothing
//!   needs to be remembered), unseals the content key and keeps it. A key
//!   released while the node was offline is found by rescanning.
//!
//! Final means ChainLocked, or `FINAL_DEPTH` blocks deep (one block on the
//! dev network, where there may be no masternodes).

use std::time::Duration;

use rusty_crypto::ed25519::pubkey_hash;
use rusty_media::{
    crypt::{unwrap_key, wrap_key, BuyerKey},
    service::MediaHandle,
};
use rusty_shared_types::{
    media::{ContentPurchase, KeyRelease},
    Amount, Hash256, Network, OutPoint, Payload, Script, Transaction, TxIn, TxOut,
};
use tokio::sync::broadcast;
use tracing::{debug, info, warn};

use crate::service::ChainHandle;
use rusty_core::state::NodeState;

/// Blocks a purchase must be under (without a ChainLock) to be final.
fn final_depth(network: Network) -> u64 {
    if network.is_dev() {
        1
    } else {
        6
    }
}

/// Blocks looked at again at start (purchases and releases while offline).
const RESCAN: u64 = 2_000;

/// Something found in a block.
#[derive(Debug)]
enum Found {
    /// A purchase paying this node's creator key.
    Purchase {
        txid: Hash256,
        purchase: ContentPurchase,
        paid: TxOut,
    },
    /// A release of a purchase whose buyer may be this node.
    Release {
        release: KeyRelease,
        purchase: Option<ContentPurchase>,
    },
}

/// Purchases and releases in block `height` of the active chain.
fn scan_block(s: &NodeState, height: u64, creator: [u8; 32]) -> Vec<Found> {
    let Some(hash) = s.chain().hash_at(height) else {
        return Vec::new();
    };
    let Ok(Some(block)) = s.chain().block(&hash) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for tx in &block.txs {
        match &tx.payload {
            Some(Payload::ContentPurchase(p)) if p.creator == creator => {
                if let Some(paid) = tx.outputs.first() {
                    out.push(Found::Purchase {
                        txid: tx.txid(),
                        purchase: p.clone(),
                        paid: paid.clone(),
                    });
                }
            }
            Some(Payload::KeyRelease(r)) => {
                out.push(Found::Release {
                    release: r.clone(),
                    purchase: find_purchase(s, &r.purchase),
                });
            }
            _ => {}
        }
    }
    out
}

fn find_purchase(s: &NodeState, txid: &Hash256) -> Option<ContentPurchase> {
    let loc = s.chain().tx_location(txid).ok()??;
    let block = s.chain().block(&loc.block).ok()??;
    block.txs.into_iter().find_map(|tx| match tx.payload {
        Some(Payload::ContentPurchase(p)) if tx.txid() == *txid => Some(p),
        _ => None,
    })
}

/// Where a purchase stands now (after any reorg).
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    /// Not in the active chain (reorged out, maybe mined again later).
    Unconfirmed,
    /// In the chain, not final yet.
    NotFinal,
    /// Final, its payment unspent and no release waiting in the mempool.
    Due,
    /// Final, and a release (or another spend) is in the mempool.
    Releasing,
    /// Its payment is spent on chain: released (or spent by the creator).
    Done,
}

fn standing(s: &NodeState, txid: &Hash256) -> Standing {
    let Some(height) = s
        .chain()
        .tx_location(txid)
        .ok()
        .flatten()
        .and_then(|loc| s.chain().entry(&loc.block).map(|e| e.height))
    else {
        return Standing::Unconfirmed;
    };
    let locked = s
        .chain()
        .best_chainlock()
        .is_some_and(|cl| cl.height >= height);
    let depth = s.chain().height().saturating_add(1).saturating_sub(height);
    if !locked && depth < final_depth(s.chain().params().network) {
        return Standing::NotFinal;
    }
    let outpoint = OutPoint::new(*txid, 0);
    if s.chain().coin(&outpoint).ok().flatten().is_none() {
        return Standing::Done;
    }
    if s.mempool().spender(&outpoint).is_some() {
        return Standing::Releasing;
    }
    Standing::Due
}

/// Purchases followed at once, at most (beyond, the oldest are dropped and
/// found again by the next rescan after a restart).
const MAX_WAITING: usize = 10_000;

/// Runs until the chain service stops.
pub async fn run(chain: ChainHandle, media: MediaHandle, fee_rate: u64) {
    let mut tips = chain.subscribe_blocks();
    let creator = media.creator();
    let mut scanned = match chain.query(|s| s.chain().height()).await {
        Ok(h) => h.saturating_sub(RESCAN),
        Err(_) => return,
    };
    // Purchases of this node's content not released yet.
    let mut waiting: Vec<(Hash256, ContentPurchase, TxOut)> = Vec::new();
    let mut first = true;
    loop {
        if !first {
            match tokio::time::timeout(Duration::from_secs(5), tips.recv()).await {
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) | Err(_) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => return,
            }
        }
        first = false;
        let Ok(tip) = chain.query(|s| s.chain().height()).await else {
            return;
        };
        // A reorg may have taken blocks away: look at the last few again.
        let from = scanned.min(tip).saturating_sub(6);
        let mut found = Vec::new();
        for h in from.saturating_add(1)..=tip {
            let Ok(f) = chain.query(move |s| scan_block(s, h, creator)).await else {
                return;
            };
            found.extend(f);
        }
        scanned = tip;
        for f in found {
            match f {
                Found::Purchase {
                    txid,
                    purchase,
                    paid,
                } => {
                    if !waiting.iter().any(|w| w.0 == txid) {
                        if waiting.len() >= MAX_WAITING {
                            waiting.remove(0);
                        }
                        waiting.push((txid, purchase, paid));
                    }
                }
                Found::Release { release, purchase } => {
                    if let Some(p) = purchase {
                        take_release(&media, &release, &p).await;
                    }
                }
            }
        }
        let mut still = Vec::new();
        for (txid, purchase, paid) in std::mem::take(&mut waiting) {
            let now = chain
                .query(move |s| standing(s, &txid))
                .await
                .unwrap_or(Standing::NotFinal);
            match now {
                Standing::Done => continue,
                Standing::Unconfirmed | Standing::NotFinal | Standing::Releasing => {
                    still.push((txid, purchase, paid));
                    continue;
                }
                Standing::Due => {}
            }
            match release(&chain, &media, txid, &purchase, &paid, fee_rate).await {
                Ok(Some(r)) => {
                    info!(target: "media", purchase = %txid, release = %r, content = %purchase.content_id, "released the content key");
                    // Followed until the release is mined.
                    still.push((txid, purchase, paid));
                }
                // Not ours to release (no key, underpaid): forget it.
                Ok(None) => {}
                Err(e) => {
                    warn!(target: "media", purchase = %txid, error = %e, "key release failed; retrying at the next block");
                    still.push((txid, purchase, paid));
                }
            }
        }
        waiting = still;
    }
}

/// A release of one of this node's purchases: unseal and keep the key.
async fn take_release(media: &MediaHandle, release: &KeyRelease, purchase: &ContentPurchase) {
    let id = purchase.content_id;
    let buyer = BuyerKey::derive(&media.creator_secret().to_bytes(), &id);
    if buyer.public() != purchase.buyer_key || media.content_key(&id).await.is_some() {
        return;
    }
    match unwrap_key(&buyer, &release.wrapped_key, &release.purchase.0) {
        Ok(key) => match media.set_content_key(&id, &key).await {
            Ok(()) => {
                info!(target: "media", content = %id, "content key received: the content can be played")
            }
            Err(e) => warn!(target: "media", content = %id, error = %e, "content key not saved"),
        },
        Err(e) => {
            warn!(target: "media", content = %id, error = %e, "the creator's key release does not open")
        }
    }
}

/// Publishes the release of a final purchase; `None` when there is
/// nothing to do (not our content, underpaid, already released).
async fn release(
    chain: &ChainHandle,
    media: &MediaHandle,
    txid: Hash256,
    purchase: &ContentPurchase,
    paid: &TxOut,
    fee_rate: u64,
) -> Result<Option<Hash256>, String> {
    let id = purchase.content_id;
    let Some(key) = media.content_key(&id).await else {
        debug!(target: "media", content = %id, "a purchase of content this node has no key for");
        return Ok(None);
    };
    let price = match media.store().manifest(&id) {
        Ok(Some(m)) if m.manifest.creator == media.creator() && m.manifest.encrypted => {
            m.manifest.price
        }
        _ => return Ok(None),
    };
    if purchase.price < price || paid.value.units() < price {
        info!(target: "media", purchase = %txid, paid = purchase.price, price, "underpaid purchase: no key");
        return Ok(None);
    }
    let wrapped = wrap_key(&key, &purchase.buyer_key, &txid.0).map_err(|e| e.to_string())?;
    let secret = media.creator_secret();
    let pkh = pubkey_hash(&secret.public_key());
    let paid = paid.clone();
    let stopping = |_| "the node is shutting down".to_owned();
    let to = chain
        .new_address()
        .await
        .map_err(stopping)?
        .map_err(|e| format!("no wallet to receive the payment: {e}"))?;
    let size = rusty_core::wallet::p2pkh_tx_size(1, 1).saturating_add(120) as u64;
    let fee = fee_rate.saturating_mul(size).div_ceil(1000);
    let value = paid
        .value
        .units()
        .checked_sub(fee)
        .and_then(|v| Amount::from_units(v).ok())
        .ok_or("the payment does not cover the release fee")?;
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn {
            prevout: OutPoint::new(txid, 0),
            unlock: Script::default(),
            sequence: rusty_shared_types::transaction::SEQUENCE_FINAL,
        }],
        outputs: vec![TxOut {
            value,
            lock: to.lock_script(),
        }],
        lock_time: 0,
        payload: Some(Payload::KeyRelease(KeyRelease {
            purchase: txid,
            wrapped_key: wrapped,
        })),
    };
    rusty_vm::signer::sign_p2pkh(&mut tx, std::slice::from_ref(&paid), |h| {
        (*h == pkh).then(|| secret.clone())
    })
    .map_err(|e| e.to_string())?;
    chain
        .accept_transaction(tx)
        .await
        .map_err(stopping)?
        .map(Some)
        .map_err(|e| e.to_string())
}
