//! `masternode status|list|count|winners`, and a masternode in Dash Core's
//! shapes (`protx info` and `protx list … true` show the same entry), with
//! what the list's history adds to the list entry.

use std::collections::{BTreeSet, HashMap, HashSet};

use jsonrpsee::core::RpcResult;
use rusty_network::peers::with_peer_id;
use rusty_shared_types::{
    masternode::BlsPublicKeyBytes, Address, Block, Hash256, Network, Payload, Script,
};
use serde_json::{json, Value};

use super::{no_operator, operator_public_key, parse_winners_count, MasternodeRequest};
use crate::rpc::RpcContext;
use rusty_core::{
    chain::Chain,
    masternode::{MasternodeEntry, MnUndo},
    state::NodeState,
    tables::MnUndoTable,
};

/// `masternode winners` looks back at most this many blocks.
pub const MAX_WINNERS: u64 = 1000;
/// `masternode winners` without a count.
pub const DEFAULT_WINNERS: u64 = 10;
/// `masternode winners` projects this many blocks past the tip, as Dash.
pub const PROJECTED_WINNERS: usize = 20;

/// Dash's masternode `type`: this chain has only regular masternodes (no
/// EvoNodes).
pub const MN_TYPE: &str = "Regular";

/// Dash's `state.version`, the ProTx version: 2 is the version whose
/// operator keys are in the standard (IETF, non-legacy) BLS12-381
/// serialization, as this chain's are. The chain itself has one
/// masternode format, without a version.
pub const STATE_VERSION: u32 = 2;

/// Dash's text for no outpoint (`COutPoint()`): `masternode status` before
/// the registration is mined.
pub const NULL_OUTPOINT: &str =
    "0000000000000000000000000000000000000000000000000000000000000000-4294967295";

pub(super) async fn masternode(ctx: &RpcContext, request: MasternodeRequest) -> RpcResult<Value> {
    let network = ctx.network;
    match request {
        MasternodeRequest::Status => {
            let key = operator_public_key(ctx).ok_or_else(no_operator)?;
            let (entry, history) = ctx
                .with_state(move |s| {
                    let entry = s.chain().mn().by_operator_key(&key).cloned();
                    let history = entry
                        .as_ref()
                        .and_then(|e| entry_histories(s.chain(), &[e]).remove(&e.pro_tx_hash))
                        .unwrap_or_default();
                    (entry, history)
                })
                .await?;
            let local = match entry {
                Some(_) => String::new(),
                None => local_service(ctx).await,
            };
            Ok(status_json(entry.as_ref(), &history, &key, &local, network))
        }
        MasternodeRequest::List => {
            ctx.with_state(move |s| {
                let chain = s.chain();
                list_json(chain.mn().entries(), network, |e| {
                    list_facts(chain, e, network)
                })
            })
            .await
        }
        MasternodeRequest::Count => {
            ctx.with_state(|s| {
                let mn = s.chain().mn();
                count_json(mn.len(), mn.valid_count())
            })
            .await
        }
        MasternodeRequest::Winners { count } => {
            let count = parse_winners_count(count)?;
            ctx.with_state(move |s| {
                let chain = s.chain();
                let mn = chain.mn();
                let tip = chain.height();
                let back = u64::try_from(count).unwrap_or(MAX_WINNERS);
                let past: Vec<(u64, Option<Script>)> =
                    past_payees(chain, tip.saturating_sub(back).max(1))
                        .into_iter()
                        .map(|(height, payee)| (height, payee.map(|e| e.payout)))
                        .collect();
                let next: Vec<(u64, Script)> =
                    project_winners(mn.entries(), tip.saturating_add(1), PROJECTED_WINNERS)
                        .into_iter()
                        .filter_map(|(height, pro)| {
                            mn.get(&pro).map(|e| (height, e.payout.clone()))
                        })
                        .collect();
                winners_json(&past, &next, network)
            })
            .await
        }
    }
}

/// The service `masternode status` shows before registration: the node's
/// first P2P listen address with its peer id (empty without P2P).
async fn local_service(ctx: &RpcContext) -> String {
    let Some(p2p) = &ctx.p2p else {
        return String::new();
    };
    match p2p.net.info().await {
        Ok(info) => info
            .listen_addrs
            .first()
            .map(|a| with_peer_id(a, info.peer_id).to_string())
            .unwrap_or_default(),
        Err(_) => String::new(),
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

/// `masternode status`'s `status`: Dash's sentence for each `state`.
pub fn status_text(state: &str) -> &'static str {
    match state {
        "READY" => "Ready",
        "POSE_BANNED" => "Masternode was PoSe banned",
        "REVOKED" => "Masternode was revoked by its operator",
        _ => "Waiting for ProTx to appear on-chain",
    }
}

/// `masternode status`: this node's masternode (`entry`, found by the
/// operator key `key`), in Dash's shape, with `operatorPubKey` besides.
/// `local_service` is the service shown before registration.
pub fn status_json(
    entry: Option<&MasternodeEntry>,
    history: &EntryHistory,
    key: &BlsPublicKeyBytes,
    local_service: &str,
    network: Network,
) -> Value {
    let state = local_state(entry);
    let mut v = json!({
        "outpoint": entry.map_or_else(|| NULL_OUTPOINT.to_string(), outpoint_key),
        "service": entry.map_or(local_service, |e| e.service.as_str()),
        "type": MN_TYPE,
        "state": state,
        "status": status_text(state),
        "operatorPubKey": hex::encode(key),
    });
    if let Some(e) = entry {
        v["proTxHash"] = json!(e.pro_tx_hash.to_string());
        v["collateralHash"] = json!(e.collateral.txid.to_string());
        v["collateralIndex"] = json!(e.collateral.vout);
        v["dmnState"] = state_json(e, history, network);
    }
    v
}

/// `masternode count`, with Dash's split by type (no EvoNodes here).
pub fn count_json(total: usize, enabled: usize) -> Value {
    json!({
        "total": total,
        "enabled": enabled,
        "detailed": {
            "regular": { "total": total, "enabled": enabled },
            "evo": { "total": 0, "enabled": 0 },
        },
    })
}

// ---- JSON shapes ----

/// An address for a P2PKH script, otherwise the script as hex.
pub fn script_address(script: &Script, network: Network) -> Value {
    json!(script_address_string(script, network))
}

/// [`script_address`] as a string.
pub fn script_address_string(script: &Script, network: Network) -> String {
    match Address::from_lock_script(network, script) {
        Some(a) => a.to_string(),
        None => hex::encode(script.as_bytes()),
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

/// The P2PKH script of an Ed25519 key (owner and voting keys).
fn key_script(key: [u8; 32]) -> Script {
    Script::p2pkh(&rusty_crypto::ed25519::pubkey_hash(
        &rusty_crypto::ed25519::PublicKey(key),
    ))
}

fn key_address(key: [u8; 32], network: Network) -> String {
    script_address_string(&key_script(key), network)
}

fn height_i64(h: u64) -> i64 {
    i64::try_from(h).unwrap_or(i64::MAX)
}

/// Dash's collateral outpoint text, `<txid>-<index>` (`masternode list`'s
/// keys, `masternode status`'s `outpoint`).
pub fn outpoint_key(e: &MasternodeEntry) -> String {
    format!("{}-{}", e.collateral.txid, e.collateral.vout)
}

/// The height of the masternode's last payment, `None` if never paid. The
/// list's `last_paid_height` is the registration height until the first
/// payment (the payment queue's order); a payment is always at a height
/// above the registration, whose block chose its payee from the list
/// before it.
pub fn last_paid_height(e: &MasternodeEntry) -> Option<u64> {
    (e.last_paid_height > e.registered_height).then_some(e.last_paid_height)
}

/// What an entry does not record but the list's history does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryHistory {
    /// The last block that lifted a PoSe ban (`protx update_service`).
    pub revived_height: Option<u64>,
    /// The reason of the `protx revoke` that revoked a revoked masternode.
    pub revocation_reason: Option<u16>,
}

/// Dash's `state` (`protx info`), `dmnState` (`masternode status`).
pub fn state_json(e: &MasternodeEntry, history: &EntryHistory, network: Network) -> Value {
    let mut v = json!({
        "version": STATE_VERSION,
        "service": e.service,
        "registeredHeight": e.registered_height,
        "lastPaidHeight": last_paid_height(e).unwrap_or(0),
        // Dash counts only EvoNodes' runs of consecutive payments; every
        // masternode here is regular.
        "consecutivePayments": 0,
        "PoSePenalty": e.pose_penalty,
        "PoSeRevivedHeight": history.revived_height.map_or(-1, height_i64),
        "PoSeBanHeight": e.pose_ban_height.map_or(-1, height_i64),
        // Dash's reasons; 0 (not specified) unless revoked, as Dash resets
        // it with the operator key.
        "revocationReason": if e.revoked { history.revocation_reason.unwrap_or(0) } else { 0 },
        "ownerAddress": key_address(e.owner_key, network),
        "votingAddress": key_address(e.voting_key, network),
        "payoutAddress": script_address(&e.payout, network),
        "pubKeyOperator": hex::encode(e.operator_key),
    });
    if let Some(s) = &e.operator_payout {
        v["operatorPayoutAddress"] = script_address(s, network);
    }
    v
}

/// What this node's wallet (and operator key) hold of a masternode:
/// Dash's `wallet` object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalletOwnership {
    pub has_owner_key: bool,
    /// This node runs with the masternode's operator key (Dash's wallet
    /// never holds BLS keys and always says false).
    pub has_operator_key: bool,
    pub has_voting_key: bool,
    pub owns_collateral: bool,
    pub owns_payee_script: bool,
    pub owns_operator_reward_script: bool,
}

/// What `protx info` shows beyond the list entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryFacts {
    /// The collateral output's address; `None` if the coin is not found.
    pub collateral_address: Option<String>,
    /// Confirmations of the collateral output (the registration); -1 if
    /// the coin is not found.
    pub confirmations: i64,
    pub history: EntryHistory,
    /// `None` on a node without a wallet (Dash leaves `wallet` out then).
    pub wallet: Option<WalletOwnership>,
}

/// `protx info`, and each of `protx list … true`: a masternode in Dash's
/// shape, with `status` besides.
pub fn entry_json(e: &MasternodeEntry, facts: &EntryFacts, network: Network) -> Value {
    let mut v = json!({
        "type": MN_TYPE,
        "proTxHash": e.pro_tx_hash.to_string(),
        "collateralHash": e.collateral.txid.to_string(),
        "collateralIndex": e.collateral.vout,
        "operatorReward": operator_reward_percent(e.operator_reward_bps),
        "state": state_json(e, &facts.history, network),
        "confirmations": facts.confirmations,
        "status": entry_status(e),
    });
    if let Some(a) = &facts.collateral_address {
        v["collateralAddress"] = json!(a);
    }
    if let Some(w) = &facts.wallet {
        v["wallet"] = json!({
            "hasOwnerKey": w.has_owner_key,
            "hasOperatorKey": w.has_operator_key,
            "hasVotingKey": w.has_voting_key,
            "ownsCollateral": w.owns_collateral,
            "ownsPayeeScript": w.owns_payee_script,
            "ownsOperatorRewardScript": w.owns_operator_reward_script,
        });
    }
    v
}

/// [`EntryFacts`] of `entries` at the tip, in their order: their
/// collateral coins, this node's wallet and operator key (`operator`), and
/// one walk of the list's history for all of them ([`entry_histories`]).
pub fn entry_facts(
    s: &NodeState,
    entries: &[&MasternodeEntry],
    operator: Option<&BlsPublicKeyBytes>,
    network: Network,
) -> Vec<EntryFacts> {
    let chain = s.chain();
    let tip = chain.height();
    let mut histories = entry_histories(chain, entries);
    entries
        .iter()
        .map(|e| {
            let coin = chain.coin(&e.collateral).ok().flatten();
            let lock = coin.as_ref().map(|c| &c.output.lock);
            let wallet = s.wallet().map(|w| WalletOwnership {
                has_owner_key: w.is_mine(&key_script(e.owner_key)),
                has_operator_key: operator == Some(&e.operator_key),
                has_voting_key: w.is_mine(&key_script(e.voting_key)),
                owns_collateral: lock.is_some_and(|l| w.is_mine(l)),
                owns_payee_script: w.is_mine(&e.payout),
                owns_operator_reward_script: e
                    .operator_payout
                    .as_ref()
                    .is_some_and(|p| w.is_mine(p)),
            });
            EntryFacts {
                collateral_address: lock
                    .and_then(|l| Address::from_lock_script(network, l))
                    .map(|a| a.to_string()),
                confirmations: coin.as_ref().map_or(-1, |c| {
                    height_i64(tip.saturating_sub(c.height).saturating_add(1))
                }),
                history: histories.remove(&e.pro_tx_hash).unwrap_or_default(),
                wallet,
            }
        })
        .collect()
}

/// What `masternode list` shows beyond the list entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFacts {
    /// The collateral output's address; `None` if the coin is not found.
    pub collateral_address: Option<String>,
    /// The time of the block of the last payment; 0 if never paid.
    pub last_paid_time: u64,
}

/// [`ListFacts`] of `e` from the chain at the tip.
pub fn list_facts(chain: &Chain, e: &MasternodeEntry, network: Network) -> ListFacts {
    ListFacts {
        collateral_address: chain
            .coin(&e.collateral)
            .ok()
            .flatten()
            .and_then(|c| Address::from_lock_script(network, &c.output.lock))
            .map(|a| a.to_string()),
        last_paid_time: last_paid_height(e)
            .and_then(|h| chain.hash_at(h))
            .and_then(|hash| chain.entry(&hash))
            .map_or(0, |i| i.header.time),
    }
}

/// `masternode list`: Dash's json mode, an object keyed by the collateral
/// outpoint `<txid>-<index>`.
pub fn list_json<'a>(
    entries: impl IntoIterator<Item = &'a MasternodeEntry>,
    network: Network,
    facts: impl Fn(&MasternodeEntry) -> ListFacts,
) -> Value {
    let map: serde_json::Map<String, Value> = entries
        .into_iter()
        .map(|e| {
            let f = facts(e);
            (
                outpoint_key(e),
                json!({
                    "proTxHash": e.pro_tx_hash.to_string(),
                    "address": e.service,
                    "payee": script_address(&e.payout, network),
                    "status": entry_status(e),
                    "type": MN_TYPE,
                    "pospenaltyscore": e.pose_penalty,
                    "consecutivePayments": 0,
                    "lastpaidtime": f.last_paid_time,
                    "lastpaidblock": last_paid_height(e).unwrap_or(0),
                    "owneraddress": key_address(e.owner_key, network),
                    "votingaddress": key_address(e.voting_key, network),
                    // Dash's text when the collateral coin is not found.
                    "collateraladdress": f
                        .collateral_address
                        .unwrap_or_else(|| "UNKNOWN".to_string()),
                    "pubkeyoperator": hex::encode(e.operator_key),
                }),
            )
        })
        .collect();
    Value::Object(map)
}

/// `masternode winners`: block height (as a string) → the payee's payout
/// address, for the past blocks (`past`; `Unknown` where no masternode was
/// paid, as Dash) and the projected ones (`next`).
pub fn winners_json(
    past: &[(u64, Option<Script>)],
    next: &[(u64, Script)],
    network: Network,
) -> Value {
    let mut map = serde_json::Map::new();
    for (height, payee) in past {
        let payee = payee.as_ref().map_or_else(
            || "Unknown".to_string(),
            |s| script_address_string(s, network),
        );
        map.insert(height.to_string(), Value::String(payee));
    }
    for (height, payee) in next {
        map.insert(
            height.to_string(),
            Value::String(script_address_string(payee, network)),
        );
    }
    Value::Object(map)
}

// ---- the list's history ----

/// The list's undo record of the active block at `height`: the entries the
/// block changed with their value before it (kept for every connected
/// block).
fn undo_at(chain: &Chain, height: u64) -> Option<MnUndo> {
    let hash = chain.hash_at(height)?;
    chain.db().get::<MnUndoTable>(&hash).ok().flatten()
}

/// The payees of the active blocks from `first` to the tip, as consensus
/// chose them: the next payee of the list before each block, found by
/// undoing the list block by block from the tip. `None`: the block paid no
/// masternode (none was valid).
pub fn past_payees(chain: &Chain, first: u64) -> Vec<(u64, Option<MasternodeEntry>)> {
    let mut mn = chain.mn().clone();
    let mut out = Vec::new();
    let mut height = chain.height();
    while height >= first && height > 0 {
        let Some(undo) = undo_at(chain, height) else {
            break;
        };
        mn.undo(undo);
        out.push((height, mn.next_payee().cloned()));
        height -= 1;
    }
    out.reverse();
    out
}

/// Whether a block that changed an entry from `before` to `after` lifted a
/// PoSe ban, which only `protx update_service` does: banned before the
/// block and not after it, or given a new operator key in it (which bans)
/// and not banned after it.
pub fn revived_in_block(before: Option<&MasternodeEntry>, after: &MasternodeEntry) -> bool {
    let Some(before) = before else {
        return false;
    };
    after.pose_ban_height.is_none()
        && (before.pose_ban_height.is_some() || before.operator_key != after.operator_key)
}

/// The reason of the last `protx revoke` of `pro` in `block`.
pub fn revoke_reason_in(block: &Block, pro: &Hash256) -> Option<u16> {
    block.txs.iter().rev().find_map(|tx| match &tx.payload {
        Some(Payload::ProRevoke(r)) if &r.pro_tx_hash == pro => Some(r.reason),
        _ => None,
    })
}

/// [`EntryHistory`] of each of `entries` (the list's entries at the tip),
/// from the list's undo records: walking down from the tip, each block's
/// record gives the entries it changed as they were before it, so the
/// entry after each block is known and the block that lifted a ban is
/// found ([`revived_in_block`]); for a revoked entry the blocks that
/// changed it are read for its `protx revoke`. Reads one undo record per
/// block down to the oldest registration among the entries that still
/// lack an answer (an entry never revived walks back to its
/// registration).
pub fn entry_histories(
    chain: &Chain,
    entries: &[&MasternodeEntry],
) -> HashMap<Hash256, EntryHistory> {
    let mut out: HashMap<Hash256, EntryHistory> = entries
        .iter()
        .map(|e| (e.pro_tx_hash, EntryHistory::default()))
        .collect();
    // Each entry as it was after the block being read.
    let mut after: HashMap<Hash256, MasternodeEntry> = entries
        .iter()
        .map(|e| (e.pro_tx_hash, (*e).clone()))
        .collect();
    let mut want_revival: HashSet<Hash256> = after.keys().copied().collect();
    let mut want_reason: HashSet<Hash256> = entries
        .iter()
        .filter(|e| e.revoked)
        .map(|e| e.pro_tx_hash)
        .collect();
    let mut height = chain.height();
    while height > 0 && !(want_revival.is_empty() && want_reason.is_empty()) {
        let Some(undo) = undo_at(chain, height) else {
            break;
        };
        let mut block: Option<Option<Block>> = None;
        for (pro, before) in &undo.entries {
            let Some(now) = after.get(pro) else {
                continue;
            };
            let revived = revived_in_block(before.as_ref(), now);
            if revived && want_revival.remove(pro) {
                if let Some(h) = out.get_mut(pro) {
                    h.revived_height = Some(height);
                }
            }
            if want_reason.contains(pro) {
                let read = block.get_or_insert_with(|| {
                    chain
                        .hash_at(height)
                        .and_then(|hash| chain.block(&hash).ok().flatten())
                });
                let reason = match read {
                    Some(b) => revoke_reason_in(b, pro),
                    None => None,
                };
                if let Some(reason) = reason {
                    if let Some(h) = out.get_mut(pro) {
                        h.revocation_reason = Some(reason);
                    }
                    want_reason.remove(pro);
                } else if !before.as_ref().is_some_and(|b| b.revoked) {
                    // Not revoked before this block, yet no revocation in
                    // it: the node's records are incomplete; stop looking.
                    want_reason.remove(pro);
                }
            }
            match before {
                Some(b) => {
                    after.insert(*pro, b.clone());
                }
                None => {
                    // Registered in this block: nothing older.
                    after.remove(pro);
                    want_revival.remove(pro);
                    want_reason.remove(pro);
                }
            }
        }
        height -= 1;
    }
    out
}

/// The payees of the `count` blocks from `first_height` on, as the chain
/// will choose them if the list does not change: each block pays the valid
/// masternode with the lowest `(last_paid_height, pro_tx_hash)`
/// ([`rusty_core::masternode::MnState::next_payee`]), which then counts as
/// paid at that height.
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
