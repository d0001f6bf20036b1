//! `masternode status|list|count|winners`, and the JSON shapes of list
//! entries (`protx info` shows the same entry).

use std::collections::BTreeSet;

use jsonrpsee::core::RpcResult;
use rusty_shared_types::{Address, Hash256, Network, Script};
use serde_json::{json, Value};

use super::{no_operator, operator_public_key, parse_winners_count, MasternodeRequest};
use crate::rpc::{json as render, RpcContext};
use rusty_core::masternode::{MasternodeEntry, MnState};

/// `masternode winners` projects at most this many blocks.
pub const MAX_WINNERS: u64 = 1000;
/// `masternode winners` without a count.
pub const DEFAULT_WINNERS: u64 = 10;

pub(super) async fn masternode(ctx: &RpcContext, request: MasternodeRequest) -> RpcResult<Value> {
    let network = ctx.network;
    match request {
        MasternodeRequest::Status => {
            let key = operator_public_key(ctx).ok_or_else(no_operator)?;
            ctx.with_state(move |s| {
                let entry = s.chain().mn().by_operator_key(&key);
                let mut v = match entry {
                    Some(e) => entry_json(e, network),
                    None => json!({ "proTxHash": null }),
                };
                v["state"] = json!(local_state(entry));
                v["operatorPubKey"] = json!(hex::encode(key));
                v
            })
            .await
        }
        MasternodeRequest::List => {
            ctx.with_state(move |s| list_json(s.chain().mn(), network))
                .await
        }
        MasternodeRequest::Count => {
            ctx.with_state(|s| {
                let mn = s.chain().mn();
                json!({ "total": mn.len(), "enabled": mn.valid_count() })
            })
            .await
        }
        MasternodeRequest::Winners { count } => {
            let count = parse_winners_count(count)?;
            ctx.with_state(move |s| {
                let params = s.params();
                let mn = s.chain().mn();
                let first = s.chain().height().saturating_add(1);
                Value::Array(
                    project_winners(mn.entries(), first, count)
                        .into_iter()
                        .map(|(height, pro)| {
                            json!({
                                "height": height,
                                "proTxHash": pro.to_string(),
                                "payoutAddress": mn
                                    .get(&pro)
                                    .map(|e| script_address(&e.payout, network)),
                                "amount": render::amount(params.masternode_reward(height)),
                            })
                        })
                        .collect(),
                )
            })
            .await
        }
    }
}

/// `masternode status`'s `state`.
pub fn local_state(entry: Option<&MasternodeEntry>) -> &'static str {
    match entry {
        None => "WAITING_FOR_PROTX",
        Some(e) if e.revoked => "REVOKED",
        Some(e) if e.pose_ban_height.is_some() => "POSE_BANNED",
        Some(_) => "READY",
    }
}

// ---- JSON shapes ----

/// An address for a P2PKH script, otherwise the script as hex.
pub fn script_address(script: &Script, network: Network) -> Value {
    match Address::from_lock_script(network, script) {
        Some(a) => json!(a.to_string()),
        None => json!(hex::encode(script.as_bytes())),
    }
}

/// `ENABLED`, `POSE_BANNED` or `REVOKED`.
pub fn entry_status(e: &MasternodeEntry) -> &'static str {
    if e.revoked {
        "REVOKED"
    } else if e.pose_ban_height.is_some() {
        "POSE_BANNED"
    } else {
        "ENABLED"
    }
}

/// Basis points as a percentage with two decimals (1234 → 12.34).
pub fn operator_reward_percent(bps: u16) -> f64 {
    f64::from(bps) / 100.0
}

fn key_address(key: [u8; 32], network: Network) -> String {
    let pkh = rusty_crypto::ed25519::pubkey_hash(&rusty_crypto::ed25519::PublicKey(key));
    Address::p2pkh(network, pkh).to_string()
}

/// `protx info`: one masternode.
pub fn entry_json(e: &MasternodeEntry, network: Network) -> Value {
    json!({
        "proTxHash": e.pro_tx_hash.to_string(),
        "collateralHash": e.collateral.txid.to_string(),
        "collateralIndex": e.collateral.vout,
        "operatorPubKey": hex::encode(e.operator_key),
        "ownerKey": hex::encode(e.owner_key),
        "ownerAddress": key_address(e.owner_key, network),
        "votingKey": hex::encode(e.voting_key),
        "votingAddress": key_address(e.voting_key, network),
        "payoutAddress": script_address(&e.payout, network),
        "operatorReward": operator_reward_percent(e.operator_reward_bps),
        "operatorPayoutAddress": e.operator_payout.as_ref().map(|s| script_address(s, network)),
        "service": e.service,
        "registeredHeight": e.registered_height,
        "lastPaidHeight": e.last_paid_height,
        "PoSePenalty": e.pose_penalty,
        "PoSeBanHeight": e
            .pose_ban_height
            .map_or(-1, |h| i64::try_from(h).unwrap_or(i64::MAX)),
        "revoked": e.revoked,
        "status": entry_status(e),
    })
}

/// `masternode list`: proTxHash → a summary.
pub fn list_json(mn: &MnState, network: Network) -> Value {
    let map: serde_json::Map<String, Value> = mn
        .entries()
        .map(|e| {
            (
                e.pro_tx_hash.to_string(),
                json!({
                    "status": entry_status(e),
                    "payoutAddress": script_address(&e.payout, network),
                    "lastPaidHeight": e.last_paid_height,
                    "service": e.service,
                }),
            )
        })
        .collect();
    Value::Object(map)
}

/// The payees of the `count` blocks from `first_height` on, as the chain
/// will choose them if the list does not change: each block pays the valid
/// masternode with the lowest `(last_paid_height, pro_tx_hash)`
/// ([`MnState::next_payee`]), which then counts as paid at that height.
pub fn project_winners<'a>(
    entries: impl IntoIterator<Item = &'a MasternodeEntry>,
    first_height: u64,
    count: usize,
) -> Vec<(u64, Hash256)> {
    let mut queue: BTreeSet<(u64, Hash256)> = entries
        .into_iter()
        .filter(|e| e.is_valid())
        .map(|e| (e.last_paid_height, e.pro_tx_hash))
        .collect();
    let mut out = Vec::new();
    let mut height = first_height;
    for _ in 0..count {
        let Some((_, pro)) = queue.pop_first() else {
            break;
        };
        out.push((height, pro));
        queue.insert((height, pro));
        height = height.saturating_add(1);
    }
    out
}
