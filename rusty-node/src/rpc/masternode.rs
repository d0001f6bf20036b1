//! Masternodes and quorums, in Dash's shapes: `protx`, `masternode` and
//! `quorum` (each taking a subcommand as its first parameter),
//! `getbestchainlock` and `dkginfo`.
//!
//! Registration and the operator's special transactions are paid by the
//! node's wallet; `protx update_service` and `protx revoke` are signed
//! with this node's operator key (`--masternode --operator-key`). Every
//! read is of the deterministic list at the active tip
//! ([`rusty_core::masternode::MnState`]); DKG sessions come from the quorum
//! service's view ([`crate::llmq::LlmqView`]), empty without P2P.

use std::{collections::BTreeSet, sync::Arc};

use jsonrpsee::{
    types::{ErrorObjectOwned, Params},
    RpcModule,
};
use rusty_crypto::bls;
use rusty_network::{peers::peer_id_of, Multiaddr};
use rusty_shared_types::{
    masternode::{BlsPublicKeyBytes, MAX_OPERATOR_REWARD_BPS, MAX_SERVICE_LEN},
    Address, Hash256, Network, Script,
};
use serde_json::{json, Value};

use super::{
    codes, json as render, method, parse_hash, rpc_error, running,
    wallet::{address_error, send_error},
    RpcContext, RpcResult,
};
use crate::llmq::SessionInfo;
use rusty_core::{
    masternode::{MasternodeEntry, MinedQuorum, MnState},
    state::Registration,
};

/// `masternode winners` projects at most this many blocks.
pub const MAX_WINNERS: u64 = 1000;
/// `masternode winners` without a count.
pub const DEFAULT_WINNERS: u64 = 10;

pub fn register(m: &mut RpcModule<RpcContext>) {
    method(m, "protx", protx);
    method(m, "masternode", masternode);
    method(m, "quorum", quorum);
    method(m, "getbestchainlock", |_, ctx| async move {
        ctx.with_state(|s| {
            let cl = s
                .chain()
                .best_chainlock()
                .ok_or_else(|| rpc_error(codes::INTERNAL_ERROR, "Unable to find any ChainLock"))?;
            Ok(json!({
                "blockhash": cl.block_hash.to_string(),
                "height": cl.height,
                "signature": hex::encode(cl.signature),
                "known_block": s.chain().entry(&cl.block_hash).is_some(),
            }))
        })
        .await?
    });
    method(m, "dkginfo", dkginfo);
}

// ---- subcommands ----

/// Looks `given` up in `table`; the error lists the valid names.
fn subcommand<T: Copy>(
    method: &str,
    given: &str,
    table: &[(&str, T)],
) -> Result<T, ErrorObjectOwned> {
    table
        .iter()
        .find(|(name, _)| *name == given)
        .map(|(_, c)| *c)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            rpc_error(
                codes::INVALID_PARAMETER,
                format!(
                    "{method} subcommand must be one of {}; got \"{given}\"",
                    names.join(", ")
                ),
            )
        })
}

/// The subcommands of `protx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtxCommand {
    Register,
    UpdateService,
    Revoke,
    List,
    Info,
}

impl ProtxCommand {
    const TABLE: &'static [(&'static str, ProtxCommand)] = &[
        ("register", ProtxCommand::Register),
        ("update_service", ProtxCommand::UpdateService),
        ("revoke", ProtxCommand::Revoke),
        ("list", ProtxCommand::List),
        ("info", ProtxCommand::Info),
    ];

    pub fn parse(s: &str) -> Result<Self, ErrorObjectOwned> {
        subcommand("protx", s, Self::TABLE)
    }
}

/// The subcommands of `masternode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasternodeCommand {
    Status,
    List,
    Count,
    Winners,
}

impl MasternodeCommand {
    const TABLE: &'static [(&'static str, MasternodeCommand)] = &[
        ("status", MasternodeCommand::Status),
        ("list", MasternodeCommand::List),
        ("count", MasternodeCommand::Count),
        ("winners", MasternodeCommand::Winners),
    ];

    pub fn parse(s: &str) -> Result<Self, ErrorObjectOwned> {
        subcommand("masternode", s, Self::TABLE)
    }
}

/// The subcommands of `quorum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuorumCommand {
    List,
    Info,
    Members,
    DkgStatus,
}

impl QuorumCommand {
    const TABLE: &'static [(&'static str, QuorumCommand)] = &[
        ("list", QuorumCommand::List),
        ("info", QuorumCommand::Info),
        ("members", QuorumCommand::Members),
        ("dkgstatus", QuorumCommand::DkgStatus),
    ];

    pub fn parse(s: &str) -> Result<Self, ErrorObjectOwned> {
        subcommand("quorum", s, Self::TABLE)
    }
}

/// Which masternodes `protx list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFilter {
    /// Every registered masternode (banned and revoked ones too).
    Registered,
    /// Only those neither PoSe-banned nor revoked.
    Valid,
}

impl ListFilter {
    pub fn parse(s: Option<&str>) -> Result<Self, ErrorObjectOwned> {
        match s {
            None | Some("registered") => Ok(ListFilter::Registered),
            Some("valid") => Ok(ListFilter::Valid),
            Some(other) => Err(rpc_error(
                codes::INVALID_PARAMETER,
                format!("protx list type must be registered or valid, got \"{other}\""),
            )),
        }
    }

    pub fn admits(self, e: &MasternodeEntry) -> bool {
        match self {
            ListFilter::Registered => true,
            ListFilter::Valid => e.is_valid(),
        }
    }
}

// ---- parameter parsing ----

/// A BLS operator public key: 96 hex characters of a valid G1 point.
pub fn parse_operator_pubkey(s: &str) -> Result<BlsPublicKeyBytes, ErrorObjectOwned> {
    let s = s.trim();
    let mut key = [0u8; 48];
    hex::decode_to_slice(s, &mut key).map_err(|_| {
        rpc_error(
            codes::INVALID_PARAMETER,
            format!(
                "operatorPubKey must be 96 hex characters (a BLS public key, from \
                 `rusty-cli masternode genkey`), got \"{s}\""
            ),
        )
    })?;
    bls::PublicKey::from_bytes(&key).map_err(|_| {
        rpc_error(
            codes::INVALID_PARAMETER,
            format!("operatorPubKey {s} is not a valid BLS public key"),
        )
    })?;
    Ok(key)
}

/// A masternode's service: the multiaddr other members reach it at,
/// ending in its peer id. Returned in canonical form.
pub fn parse_service(s: &str) -> Result<String, ErrorObjectOwned> {
    let bad = || {
        rpc_error(
            codes::INVALID_PARAMETER,
            format!(
                "service must be the node's public multiaddr with its peer id, e.g. \
                 /ip4/192.0.2.1/tcp/8433/p2p/12D3KooW… (getnetworkinfo lists the node's \
                 localaddresses), got \"{s}\""
            ),
        )
    };
    let addr: Multiaddr = s.trim().parse().map_err(|_| bad())?;
    if addr.iter().next().is_none() || peer_id_of(&addr).is_none() {
        return Err(bad());
    }
    let canonical = addr.to_string();
    if canonical.len() > MAX_SERVICE_LEN {
        return Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!("service is longer than {MAX_SERVICE_LEN} characters"),
        ));
    }
    Ok(canonical)
}

/// The operator's share of the reward, in basis points (default 0).
pub fn parse_reward_bps(bps: Option<u64>) -> Result<u16, ErrorObjectOwned> {
    let bps = bps.unwrap_or(0);
    u16::try_from(bps)
        .ok()
        .filter(|b| *b <= MAX_OPERATOR_REWARD_BPS)
        .ok_or_else(|| {
            rpc_error(
                codes::INVALID_PARAMETER,
                format!(
                    "operatorRewardBps must be 0 to {MAX_OPERATOR_REWARD_BPS} (basis points \
                     of the masternode reward), got {bps}"
                ),
            )
        })
}

/// Dash's revocation reasons: 0 not specified, 1 termination of service,
/// 2 compromised keys, 3 change of keys.
pub fn parse_revoke_reason(reason: Option<u64>) -> Result<u16, ErrorObjectOwned> {
    match reason.unwrap_or(0) {
        r @ 0..=3 => Ok(r as u16),
        r => Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!(
                "reason must be 0 (not specified), 1 (termination of service), 2 \
                 (compromised keys) or 3 (change of keys), got {r}"
            ),
        )),
    }
}

pub fn parse_winners_count(count: Option<u64>) -> Result<usize, ErrorObjectOwned> {
    match count.unwrap_or(DEFAULT_WINNERS) {
        c @ 0..=MAX_WINNERS => Ok(c as usize),
        c => Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!("count must be at most {MAX_WINNERS}, got {c}"),
        )),
    }
}

fn not_found() -> ErrorObjectOwned {
    rpc_error(codes::INVALID_PARAMETER, "masternode not found")
}

fn quorum_not_found() -> ErrorObjectOwned {
    rpc_error(codes::INVALID_PARAMETER, "quorum not found")
}

/// The error of operator methods on a node without an operator key.
pub const NO_OPERATOR_KEY: &str =
    "this node has no operator key (start it with --masternode --operator-key)";

fn no_operator() -> ErrorObjectOwned {
    rpc_error(codes::INTERNAL_ERROR, NO_OPERATOR_KEY)
}

fn operator_key(ctx: &RpcContext) -> Result<bls::SecretKey, ErrorObjectOwned> {
    ctx.operator
        .as_ref()
        .map(|o| o.key.clone())
        .ok_or_else(no_operator)
}

/// This node's operator public key, if it is a masternode.
fn operator_public_key(ctx: &RpcContext) -> Option<BlsPublicKeyBytes> {
    ctx.operator
        .as_ref()
        .map(|o| o.key.public_key().to_bytes())
        .or_else(|| {
            ctx.p2p
                .as_ref()
                .and_then(|p| p.llmq.view.operator_public_key)
        })
}

/// What the quorum service currently shows (nothing without P2P).
#[derive(Debug, Default, Clone)]
struct LlmqSnapshot {
    sessions: Vec<SessionInfo>,
    quorum_shares: Vec<Hash256>,
}

fn llmq_snapshot(ctx: &RpcContext) -> LlmqSnapshot {
    let Some(p2p) = &ctx.p2p else {
        return LlmqSnapshot::default();
    };
    let view = &p2p.llmq.view;
    let sessions = view.sessions.lock().map(|s| s.clone()).unwrap_or_default();
    let mut quorum_shares = view
        .quorum_shares
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    quorum_shares.sort();
    LlmqSnapshot {
        sessions,
        quorum_shares,
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

/// `quorum list`: one mined quorum, members as counts.
pub fn quorum_json(q: &MinedQuorum) -> Value {
    json!({
        "quorumHash": q.quorum_hash.to_string(),
        "quorumHeight": q.quorum_height,
        "minedHeight": q.mined_height,
        "members": q.members.len(),
        "validMembers": q.valid_members.count(),
        "publicKey": q.vvec.first().map(hex::encode),
    })
}

/// `quorum members`: `[{proTxHash, valid}]` in member order.
pub fn quorum_members_json(q: &MinedQuorum) -> Value {
    Value::Array(
        q.members
            .iter()
            .enumerate()
            .map(|(i, m)| json!({ "proTxHash": m.to_string(), "valid": q.valid_members.get(i) }))
            .collect(),
    )
}

/// `quorum info`: as in the list, with the members and the verification
/// vector.
pub fn quorum_info_json(q: &MinedQuorum) -> Value {
    let mut v = quorum_json(q);
    v["members"] = quorum_members_json(q);
    v["verificationVector"] = Value::Array(q.vvec.iter().map(|p| json!(hex::encode(p))).collect());
    v
}

/// One DKG session of this node, in camelCase.
pub fn session_json(s: &SessionInfo) -> Value {
    json!({
        "quorumHash": s.quorum_hash.to_string(),
        "quorumHeight": s.quorum_height,
        "phase": s.phase,
        "memberIndex": s.member_index,
        "members": s.members,
        "contributions": s.contributions,
        "complaints": s.complaints,
        "justifications": s.justifications,
        "prematureCommitments": s.premature_commitments,
        "validMembers": s.valid_members,
        "commitmentReady": s.commitment_ready,
    })
}

fn hashes_json(hashes: &[Hash256]) -> Value {
    Value::Array(hashes.iter().map(|h| json!(h.to_string())).collect())
}

/// The first height above `height` at which a DKG starts.
pub fn next_dkg_height(height: u64, interval: u64) -> u64 {
    let interval = interval.max(1);
    (height / interval)
        .saturating_add(1)
        .saturating_mul(interval)
}

// ---- protx ----

async fn protx(p: Params<'static>, ctx: Arc<RpcContext>) -> RpcResult {
    let mut seq = p.sequence();
    let command: String = seq.next()?;
    let fee_rate = ctx.wallet_fee_rate;
    match ProtxCommand::parse(&command)? {
        ProtxCommand::Register => {
            let key: String = seq.next()?;
            let service: String = seq.next()?;
            let reward: Option<u64> = seq.optional_next()?;
            let payout: Option<String> = seq.optional_next()?;
            let operator_key = parse_operator_pubkey(&key)?;
            let service = parse_service(&service)?;
            let operator_reward_bps = parse_reward_bps(reward)?;
            let payout = payout
                .map(|a| Address::parse_for(&a, ctx.network).map_err(address_error))
                .transpose()?;
            // Checked against the list at the tip first for a clear error;
            // the mempool checks the transaction against the list again.
            let (key_check, service_check) = (operator_key, service.clone());
            ctx.with_state(move |s| {
                let mn = s.chain().mn();
                if let Some(other) = mn.by_operator_key(&key_check) {
                    return Err(rpc_error(
                        codes::INVALID_PARAMETER,
                        format!(
                            "operator key is already used by masternode {}",
                            other.pro_tx_hash
                        ),
                    ));
                }
                check_service_free(mn, &service_check, None)
            })
            .await??;
            let reg = Registration {
                operator_key,
                service,
                operator_reward_bps,
                payout,
            };
            let r =
                running(ctx.chain.register_masternode(reg, fee_rate).await)?.map_err(send_error)?;
            Ok(json!({
                "proTxHash": r.pro_tx_hash.to_string(),
                "collateralAddress": r.collateral_address.to_string(),
                "ownerAddress": r.owner_address.to_string(),
                "payoutAddress": r.payout_address.to_string(),
            }))
        }
        ProtxCommand::UpdateService => {
            let pro: String = seq.next()?;
            let service: String = seq.next()?;
            let pro = parse_hash(&pro, "proTxHash")?;
            let service = parse_service(&service)?;
            let key = operator_key(&ctx)?;
            let (key_check, service_check) = (key.clone(), service.clone());
            ctx.with_state(move |s| {
                let mn = s.chain().mn();
                check_our_masternode(mn, &pro, &key_check)?;
                check_service_free(mn, &service_check, Some(&pro))
            })
            .await??;
            running(
                ctx.chain
                    .update_masternode_service(pro, service, key, fee_rate)
                    .await,
            )?
            .map(|txid| json!({ "txid": txid.to_string() }))
            .map_err(send_error)
        }
        ProtxCommand::Revoke => {
            let pro: String = seq.next()?;
            let reason: Option<u64> = seq.optional_next()?;
            let pro = parse_hash(&pro, "proTxHash")?;
            let reason = parse_revoke_reason(reason)?;
            let key = operator_key(&ctx)?;
            let key_check = key.clone();
            ctx.with_state(move |s| {
                let e = check_our_masternode(s.chain().mn(), &pro, &key_check)?;
                if e.revoked {
                    return Err(rpc_error(
                        codes::INVALID_PARAMETER,
                        format!("masternode {pro} is already revoked"),
                    ));
                }
                Ok(())
            })
            .await??;
            running(
                ctx.chain
                    .revoke_masternode(pro, reason, key, fee_rate)
                    .await,
            )?
            .map(|txid| json!({ "txid": txid.to_string() }))
            .map_err(send_error)
        }
        ProtxCommand::List => {
            let filter: Option<String> = seq.optional_next()?;
            let filter = ListFilter::parse(filter.as_deref())?;
            ctx.with_state(move |s| {
                Value::Array(
                    s.chain()
                        .mn()
                        .entries()
                        .filter(|e| filter.admits(e))
                        .map(|e| json!(e.pro_tx_hash.to_string()))
                        .collect(),
                )
            })
            .await
        }
        ProtxCommand::Info => {
            let pro: String = seq.next()?;
            let pro = parse_hash(&pro, "proTxHash")?;
            let network = ctx.network;
            ctx.with_state(move |s| {
                s.chain()
                    .mn()
                    .get(&pro)
                    .map(|e| entry_json(e, network))
                    .ok_or_else(not_found)
            })
            .await?
        }
    }
}

/// The entry `pro`, which must be operated with `key`.
fn check_our_masternode<'a>(
    mn: &'a MnState,
    pro: &Hash256,
    key: &bls::SecretKey,
) -> Result<&'a MasternodeEntry, ErrorObjectOwned> {
    let e = mn.get(pro).ok_or_else(not_found)?;
    let ours = key.public_key().to_bytes();
    if e.operator_key != ours {
        return Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!(
                "masternode {pro} is operated with key {}, not this node's {}",
                hex::encode(e.operator_key),
                hex::encode(ours)
            ),
        ));
    }
    Ok(e)
}

/// No masternode but `me` announces `service`.
fn check_service_free(
    mn: &MnState,
    service: &str,
    me: Option<&Hash256>,
) -> Result<(), ErrorObjectOwned> {
    match mn
        .entries()
        .find(|e| e.service == service && Some(&e.pro_tx_hash) != me)
    {
        Some(other) => Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!(
                "service {service} is already used by masternode {}",
                other.pro_tx_hash
            ),
        )),
        None => Ok(()),
    }
}

// ---- masternode ----

/// `masternode status`'s `state`.
pub fn local_state(entry: Option<&MasternodeEntry>) -> &'static str {
    match entry {
        None => "WAITING_FOR_PROTX",
        Some(e) if e.revoked => "REVOKED",
        Some(e) if e.pose_ban_height.is_some() => "POSE_BANNED",
        Some(_) => "READY",
    }
}

async fn masternode(p: Params<'static>, ctx: Arc<RpcContext>) -> RpcResult {
    let mut seq = p.sequence();
    let command: String = seq.next()?;
    let network = ctx.network;
    match MasternodeCommand::parse(&command)? {
        MasternodeCommand::Status => {
            let key = operator_public_key(&ctx).ok_or_else(no_operator)?;
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
        MasternodeCommand::List => {
            ctx.with_state(move |s| list_json(s.chain().mn(), network))
                .await
        }
        MasternodeCommand::Count => {
            ctx.with_state(|s| {
                let mn = s.chain().mn();
                json!({ "total": mn.len(), "enabled": mn.valid_count() })
            })
            .await
        }
        MasternodeCommand::Winners => {
            let count: Option<u64> = seq.optional_next()?;
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

// ---- quorum ----

async fn quorum(p: Params<'static>, ctx: Arc<RpcContext>) -> RpcResult {
    let mut seq = p.sequence();
    let command: String = seq.next()?;
    let command = QuorumCommand::parse(&command)?;
    match command {
        QuorumCommand::List => {
            ctx.with_state(|s| {
                Value::Array(
                    s.chain()
                        .mn()
                        .quorums()
                        .iter()
                        .rev()
                        .map(quorum_json)
                        .collect(),
                )
            })
            .await
        }
        QuorumCommand::Info | QuorumCommand::Members => {
            let hash: String = seq.next()?;
            let hash = parse_hash(&hash, "quorumHash")?;
            let members_only = command == QuorumCommand::Members;
            ctx.with_state(move |s| {
                let q = s.chain().mn().quorum(&hash).ok_or_else(quorum_not_found)?;
                Ok(if members_only {
                    quorum_members_json(q)
                } else {
                    quorum_info_json(q)
                })
            })
            .await?
        }
        QuorumCommand::DkgStatus => {
            let llmq = llmq_snapshot(&ctx);
            let (pending, mut minable) = ctx
                .with_state(|s| {
                    let pending: Vec<Value> = s
                        .chain()
                        .mn()
                        .pending_dkgs()
                        .iter()
                        .map(|d| {
                            json!({
                                "quorumHash": d.quorum_hash.to_string(),
                                "quorumHeight": d.quorum_height,
                                "members": d
                                    .members
                                    .iter()
                                    .map(|(p, _)| p.to_string())
                                    .collect::<Vec<_>>(),
                            })
                        })
                        .collect();
                    let minable: Vec<Hash256> = s.pending_commitments().keys().copied().collect();
                    (pending, minable)
                })
                .await?;
            minable.sort();
            Ok(json!({
                "pending": pending,
                "sessions": llmq.sessions.iter().map(session_json).collect::<Vec<_>>(),
                "minableCommitments": hashes_json(&minable),
            }))
        }
    }
}

// ---- dkginfo ----

/// What `dkginfo` reads from the chain.
#[derive(Debug, Clone)]
pub struct DkgFacts {
    pub height: u64,
    /// This node's masternode, if registered.
    pub entry: Option<MasternodeEntry>,
    /// DKGs in progress that include this node.
    pub pending_with_us: Vec<Hash256>,
    pub valid_count: usize,
    pub quorum_interval: u64,
    pub quorum_threshold: usize,
    pub dkg_phase_blocks: u64,
    pub mining_window: u64,
}

/// The one sentence `dkginfo` ends with: what this node should expect.
pub fn dkg_note(
    masternode: bool,
    facts: &DkgFacts,
    sessions: &[SessionInfo],
    next_dkg: u64,
) -> String {
    if !masternode {
        return format!("not a masternode: {NO_OPERATOR_KEY}");
    }
    let Some(e) = &facts.entry else {
        return "not registered: run `rusty-cli masternode register` (the registration \
                counts once it is mined)"
            .to_string();
    };
    if e.revoked {
        return "revoked: the owner must set a new operator key (update registrar), then the \
                operator sends `protx update_service`"
            .to_string();
    }
    if let Some(h) = e.pose_ban_height {
        return format!(
            "PoSe-banned since height {h}: send `protx update_service` to be eligible again"
        );
    }
    if !sessions.is_empty() {
        return sessions
            .iter()
            .map(|s| format!("member of DKG {} (phase {})", s.quorum_hash, s.phase))
            .collect::<Vec<_>>()
            .join("; ");
    }
    if let Some(q) = facts.pending_with_us.first() {
        return format!(
            "member of DKG {q}, but its session has not started on this node (is P2P on?)"
        );
    }
    if facts.valid_count < facts.quorum_threshold {
        return format!(
            "eligible, but only {} valid masternodes are registered and a DKG needs {}; \
             members of the next DKG are chosen at height {next_dkg}",
            facts.valid_count, facts.quorum_threshold
        );
    }
    format!("eligible; members of the next DKG are chosen at height {next_dkg}")
}

/// The whole `dkginfo` result.
pub fn dkginfo_json(
    masternode: bool,
    facts: &DkgFacts,
    sessions: &[SessionInfo],
    quorum_shares: &[Hash256],
) -> Value {
    let next = next_dkg_height(facts.height, facts.quorum_interval);
    json!({
        "masternode": masternode,
        "proTxHash": facts.entry.as_ref().map(|e| e.pro_tx_hash.to_string()),
        "eligible": facts.entry.as_ref().is_some_and(MasternodeEntry::is_valid),
        "height": facts.height,
        "nextDkgHeight": next,
        "blocksUntilNextDkg": next.saturating_sub(facts.height),
        "dkgPhaseBlocks": facts.dkg_phase_blocks,
        "miningWindow": facts.mining_window,
        "activeSessions": sessions.iter().map(session_json).collect::<Vec<_>>(),
        "pendingDkgsIncludingUs": hashes_json(&facts.pending_with_us),
        "quorumsWithKeyShare": hashes_json(quorum_shares),
        "note": dkg_note(masternode, facts, sessions, next),
    })
}

async fn dkginfo(_: Params<'static>, ctx: Arc<RpcContext>) -> RpcResult {
    let key = operator_public_key(&ctx);
    let llmq = llmq_snapshot(&ctx);
    let facts = ctx
        .with_state(move |s| {
            let params = s.params();
            let mn = s.chain().mn();
            let entry = key.and_then(|k| mn.by_operator_key(&k)).cloned();
            let pending_with_us = entry
                .as_ref()
                .map(|e| {
                    mn.pending_dkgs()
                        .iter()
                        .filter(|d| d.members.iter().any(|(p, _)| p == &e.pro_tx_hash))
                        .map(|d| d.quorum_hash)
                        .collect()
                })
                .unwrap_or_default();
            DkgFacts {
                height: s.chain().height(),
                entry,
                pending_with_us,
                valid_count: mn.valid_count(),
                quorum_interval: params.masternode.quorum_interval,
                quorum_threshold: params.masternode.quorum_threshold,
                dkg_phase_blocks: params.masternode.dkg_phase_blocks,
                mining_window: params.masternode.dkg_mining_window,
            }
        })
        .await?;
    Ok(dkginfo_json(
        key.is_some(),
        &facts,
        &llmq.sessions,
        &llmq.quorum_shares,
    ))
}

#[cfg(test)]
mod tests;
