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
mod tests {
    use rand::rngs::OsRng;
    use rusty_shared_types::{BitSet, OutPoint};

    use super::*;

    fn code<T: std::fmt::Debug>(r: Result<T, ErrorObjectOwned>) -> i32 {
        r.expect_err("an error").code()
    }

    fn hash(b: u8) -> Hash256 {
        Hash256([b; 32])
    }

    fn pubkey() -> BlsPublicKeyBytes {
        bls::SecretKey::generate(&mut OsRng).public_key().to_bytes()
    }

    fn entry(b: u8, last_paid: u64) -> MasternodeEntry {
        let payout = Address::p2pkh(Network::Dev, hash(b.wrapping_add(100))).lock_script();
        MasternodeEntry {
            pro_tx_hash: hash(b),
            collateral: OutPoint::new(hash(b), 0),
            owner_key: [b; 32],
            operator_key: [b; 48],
            voting_key: [b; 32],
            payout,
            operator_reward_bps: 0,
            operator_payout: None,
            service: format!(
                "/ip4/10.0.0.{b}/tcp/8433/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
            ),
            registered_height: 1,
            last_paid_height: last_paid,
            pose_penalty: 0,
            pose_ban_height: None,
            revoked: false,
        }
    }

    fn session(q: u8, phase: &'static str) -> SessionInfo {
        SessionInfo {
            quorum_hash: hash(q),
            quorum_height: 48,
            phase,
            member_index: 2,
            members: 5,
            contributions: 4,
            complaints: 0,
            justifications: 0,
            premature_commitments: 1,
            valid_members: Some(4),
            commitment_ready: false,
        }
    }

    #[test]
    fn subcommands() {
        assert_eq!(
            ProtxCommand::parse("register").ok(),
            Some(ProtxCommand::Register)
        );
        assert_eq!(
            ProtxCommand::parse("update_service").ok(),
            Some(ProtxCommand::UpdateService)
        );
        assert_eq!(
            ProtxCommand::parse("revoke").ok(),
            Some(ProtxCommand::Revoke)
        );
        assert_eq!(ProtxCommand::parse("list").ok(), Some(ProtxCommand::List));
        assert_eq!(ProtxCommand::parse("info").ok(), Some(ProtxCommand::Info));
        let e = ProtxCommand::parse("Register").expect_err("case matters");
        assert_eq!(e.code(), codes::INVALID_PARAMETER);
        assert!(
            e.message()
                .contains("register, update_service, revoke, list, info"),
            "{}",
            e.message()
        );
        assert_eq!(
            MasternodeCommand::parse("winners").ok(),
            Some(MasternodeCommand::Winners)
        );
        assert_eq!(
            MasternodeCommand::parse("count").ok(),
            Some(MasternodeCommand::Count)
        );
        assert_eq!(
            code(MasternodeCommand::parse("start")),
            codes::INVALID_PARAMETER
        );
        assert_eq!(
            QuorumCommand::parse("dkgstatus").ok(),
            Some(QuorumCommand::DkgStatus)
        );
        assert_eq!(
            QuorumCommand::parse("members").ok(),
            Some(QuorumCommand::Members)
        );
        assert_eq!(code(QuorumCommand::parse("sign")), codes::INVALID_PARAMETER);

        assert_eq!(ListFilter::parse(None).ok(), Some(ListFilter::Registered));
        assert_eq!(
            ListFilter::parse(Some("registered")).ok(),
            Some(ListFilter::Registered)
        );
        assert_eq!(
            ListFilter::parse(Some("valid")).ok(),
            Some(ListFilter::Valid)
        );
        assert_eq!(
            code(ListFilter::parse(Some("wallet"))),
            codes::INVALID_PARAMETER
        );
        let mut banned = entry(1, 0);
        banned.pose_ban_height = Some(5);
        assert!(ListFilter::Registered.admits(&banned));
        assert!(!ListFilter::Valid.admits(&banned));
        assert!(ListFilter::Valid.admits(&entry(2, 0)));
    }

    #[test]
    fn parameters() {
        let pk = pubkey();
        assert_eq!(parse_operator_pubkey(&hex::encode(pk)).ok(), Some(pk));
        assert_eq!(
            parse_operator_pubkey(&format!(" {} \n", hex::encode(pk))).ok(),
            Some(pk)
        );
        for bad in [
            String::new(),
            "zz".repeat(48),
            hex::encode(&pk[..47]),
            hex::encode([0xffu8; 48]),
        ] {
            assert_eq!(
                code(parse_operator_pubkey(&bad)),
                codes::INVALID_PARAMETER,
                "{bad}"
            );
        }

        let peer = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
        let good = format!("/ip4/192.0.2.1/tcp/8433/p2p/{peer}");
        assert_eq!(parse_service(&format!(" {good} ")).ok(), Some(good.clone()));
        let quic = format!("/ip4/192.0.2.1/udp/8433/quic-v1/p2p/{peer}");
        assert_eq!(parse_service(&quic).ok(), Some(quic.clone()));
        for bad in [
            "",
            "192.0.2.1:8433",
            "/ip4/192.0.2.1/tcp/8433",
            "/p2p/nonsense",
        ] {
            let e = parse_service(bad).expect_err(bad);
            assert_eq!(e.code(), codes::INVALID_PARAMETER);
            assert!(e.message().contains("peer id"), "{}", e.message());
        }

        assert_eq!(parse_reward_bps(None).ok(), Some(0));
        assert_eq!(parse_reward_bps(Some(10_000)).ok(), Some(10_000));
        assert_eq!(
            code(parse_reward_bps(Some(10_001))),
            codes::INVALID_PARAMETER
        );
        assert_eq!(
            code(parse_reward_bps(Some(1 << 40))),
            codes::INVALID_PARAMETER
        );

        assert_eq!(parse_revoke_reason(None).ok(), Some(0));
        assert_eq!(parse_revoke_reason(Some(3)).ok(), Some(3));
        assert_eq!(code(parse_revoke_reason(Some(4))), codes::INVALID_PARAMETER);

        assert_eq!(parse_winners_count(None).ok(), Some(10));
        assert_eq!(parse_winners_count(Some(0)).ok(), Some(0));
        assert_eq!(parse_winners_count(Some(MAX_WINNERS)).ok(), Some(1000));
        assert_eq!(
            code(parse_winners_count(Some(MAX_WINNERS + 1))),
            codes::INVALID_PARAMETER
        );
    }

    #[test]
    fn entry_shapes() {
        let mut e = entry(7, 12);
        e.operator_reward_bps = 1234;
        let v = entry_json(&e, Network::Dev);
        assert_eq!(v["proTxHash"], hash(7).to_string());
        assert_eq!(v["collateralHash"], hash(7).to_string());
        assert_eq!(v["collateralIndex"], 0);
        assert_eq!(v["operatorPubKey"], hex::encode([7u8; 48]));
        assert_eq!(v["ownerKey"], hex::encode([7u8; 32]));
        assert!(v["ownerAddress"]
            .as_str()
            .is_some_and(|a| a.starts_with("drsc1")));
        assert!(v["payoutAddress"]
            .as_str()
            .is_some_and(|a| a.starts_with("drsc1")));
        assert_eq!(v["operatorReward"], 12.34);
        assert_eq!(v["operatorPayoutAddress"], Value::Null);
        assert_eq!(v["lastPaidHeight"], 12);
        assert_eq!(v["registeredHeight"], 1);
        assert_eq!(v["PoSePenalty"], 0);
        assert_eq!(v["PoSeBanHeight"], -1);
        assert_eq!(v["revoked"], false);
        assert_eq!(v["status"], "ENABLED");
        assert_eq!(local_state(Some(&e)), "READY");

        // A non-P2PKH payout shows as script hex.
        e.payout = Script::new(vec![0x51]);
        e.pose_ban_height = Some(40);
        e.pose_penalty = 100;
        let v = entry_json(&e, Network::Dev);
        assert_eq!(v["payoutAddress"], "51");
        assert_eq!(v["PoSeBanHeight"], 40);
        assert_eq!(v["PoSePenalty"], 100);
        assert_eq!(v["status"], "POSE_BANNED");
        assert_eq!(local_state(Some(&e)), "POSE_BANNED");
        e.revoked = true;
        assert_eq!(entry_status(&e), "REVOKED");
        assert_eq!(local_state(Some(&e)), "REVOKED");
        assert_eq!(local_state(None), "WAITING_FOR_PROTX");
        assert_eq!(operator_reward_percent(0), 0.0);
        assert_eq!(operator_reward_percent(10_000), 100.0);
        assert_eq!(operator_reward_percent(5), 0.05);

        let mut mn = MnState::default();
        mn.put_unrecorded(entry(1, 3));
        mn.put_unrecorded(e);
        let list = list_json(&mn, Network::Dev);
        let one = &list[hash(1).to_string()];
        assert_eq!(one["status"], "ENABLED");
        assert_eq!(one["lastPaidHeight"], 3);
        assert!(one["service"].as_str().is_some_and(|s| s.contains("/p2p/")));
        assert_eq!(list[hash(7).to_string()]["status"], "REVOKED");
        assert_eq!(list.as_object().map(|o| o.len()), Some(2));
    }

    /// The projection agrees with applying `next_payee` block after block.
    #[test]
    fn winners_follow_next_payee() {
        let mut mn = MnState::default();
        for (b, paid) in [(1, 10), (2, 10), (3, 4), (4, 20), (5, 0)] {
            mn.put_unrecorded(entry(b, paid));
        }
        let mut banned = entry(6, 0);
        banned.pose_ban_height = Some(3);
        mn.put_unrecorded(banned);

        let projected = project_winners(mn.entries(), 21, 12);
        assert_eq!(projected.len(), 12);
        let mut sim = mn.clone();
        for (height, pro) in &projected {
            let payee = sim.next_payee().cloned().expect("a payee");
            assert_eq!(payee.pro_tx_hash, *pro, "height {height}");
            sim.put_unrecorded(MasternodeEntry {
                last_paid_height: *height,
                ..payee
            });
        }
        // Oldest payment first, ties by hash, the banned one never.
        let order: Vec<u8> = projected.iter().map(|(_, p)| p.0[0]).collect();
        assert_eq!(order, [5, 3, 1, 2, 4, 5, 3, 1, 2, 4, 5, 3]);
        assert_eq!(projected[0].0, 21);
        assert_eq!(projected[11].0, 32);
        // The state itself is untouched.
        assert_eq!(mn.get(&hash(5)).map(|e| e.last_paid_height), Some(0));
        assert!(project_winners(mn.entries(), 21, 0).is_empty());
        assert!(project_winners(MnState::default().entries(), 1, 10).is_empty());
    }

    #[test]
    fn quorum_and_session_shapes() {
        let q = MinedQuorum {
            quorum_hash: hash(9),
            quorum_height: 24,
            mined_height: 30,
            members: vec![hash(1), hash(2), hash(3)],
            valid_members: BitSet::from_bools(&[true, false, true]),
            vvec: vec![[1; 48], [2; 48]],
        };
        let v = quorum_json(&q);
        assert_eq!(v["quorumHash"], hash(9).to_string());
        assert_eq!(v["quorumHeight"], 24);
        assert_eq!(v["minedHeight"], 30);
        assert_eq!(v["members"], 3);
        assert_eq!(v["validMembers"], 2);
        assert_eq!(v["publicKey"], hex::encode([1u8; 48]));
        let members = quorum_members_json(&q);
        assert_eq!(
            members,
            json!([
                { "proTxHash": hash(1).to_string(), "valid": true },
                { "proTxHash": hash(2).to_string(), "valid": false },
                { "proTxHash": hash(3).to_string(), "valid": true },
            ])
        );
        let info = quorum_info_json(&q);
        assert_eq!(info["members"], members);
        assert_eq!(info["validMembers"], 2);
        assert_eq!(
            info["verificationVector"],
            json!([hex::encode([1u8; 48]), hex::encode([2u8; 48])])
        );

        let s = session_json(&session(4, "complain"));
        let keys: BTreeSet<&str> = s
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let expected: BTreeSet<&str> = [
            "quorumHash",
            "quorumHeight",
            "phase",
            "memberIndex",
            "members",
            "contributions",
            "complaints",
            "justifications",
            "prematureCommitments",
            "validMembers",
            "commitmentReady",
        ]
        .into_iter()
        .collect();
        assert_eq!(keys, expected);
        assert_eq!(s["phase"], "complain");
        assert_eq!(s["validMembers"], 4);
    }

    #[test]
    fn dkg_timing_and_notes() {
        assert_eq!(next_dkg_height(0, 24), 24);
        assert_eq!(next_dkg_height(23, 24), 24);
        assert_eq!(next_dkg_height(24, 24), 48);
        assert_eq!(next_dkg_height(5, 0), 6);

        let mut facts = DkgFacts {
            height: 30,
            entry: None,
            pending_with_us: Vec::new(),
            valid_count: 1,
            quorum_interval: 24,
            quorum_threshold: 3,
            dkg_phase_blocks: 2,
            mining_window: 18,
        };
        let v = dkginfo_json(false, &facts, &[], &[]);
        assert_eq!(v["masternode"], false);
        assert_eq!(v["proTxHash"], Value::Null);
        assert_eq!(v["eligible"], false);
        assert_eq!(v["nextDkgHeight"], 48);
        assert_eq!(v["blocksUntilNextDkg"], 18);
        assert_eq!(v["dkgPhaseBlocks"], 2);
        assert_eq!(v["miningWindow"], 18);
        assert!(v["note"]
            .as_str()
            .is_some_and(|n| n.contains("--operator-key")));

        let note = |f: &DkgFacts, s: &[SessionInfo]| dkg_note(true, f, s, 48);
        assert!(
            note(&facts, &[]).starts_with("not registered: run `rusty-cli masternode register`")
        );

        facts.entry = Some(entry(3, 0));
        assert_eq!(
            note(&facts, &[]),
            "eligible, but only 1 valid masternodes are registered and a DKG needs 3; \
             members of the next DKG are chosen at height 48"
        );
        facts.valid_count = 5;
        assert_eq!(
            note(&facts, &[]),
            "eligible; members of the next DKG are chosen at height 48"
        );
        facts.pending_with_us = vec![hash(8)];
        assert!(note(&facts, &[]).starts_with(&format!("member of DKG {}", hash(8))));
        assert_eq!(
            note(&facts, &[session(8, "commit")]),
            format!("member of DKG {} (phase commit)", hash(8))
        );
        let v = dkginfo_json(true, &facts, &[session(8, "commit")], &[hash(2)]);
        assert_eq!(v["eligible"], true);
        assert_eq!(v["proTxHash"], hash(3).to_string());
        assert_eq!(v["pendingDkgsIncludingUs"], json!([hash(8).to_string()]));
        assert_eq!(v["quorumsWithKeyShare"], json!([hash(2).to_string()]));
        assert_eq!(v["activeSessions"][0]["phase"], "commit");

        if let Some(e) = facts.entry.as_mut() {
            e.pose_ban_height = Some(29);
        }
        assert!(note(&facts, &[]).starts_with("PoSe-banned since height 29"));
        assert_eq!(dkginfo_json(true, &facts, &[], &[])["eligible"], false);
        if let Some(e) = facts.entry.as_mut() {
            e.revoked = true;
        }
        assert!(note(&facts, &[]).starts_with("revoked"));
    }

    /// Calls `method`; an RPC error as its code.
    async fn rpc(m: &RpcModule<RpcContext>, method: &str, params: Value) -> Result<Value, i32> {
        let params: Vec<Value> = params.as_array().cloned().unwrap_or_default();
        m.call::<_, Value>(method, params)
            .await
            .map_err(|e| match e {
                jsonrpsee::core::server::MethodsError::JsonRpc(e) => e.code(),
                other => panic!("{other}"),
            })
    }

    /// Every method through the RPC module, on an in-memory dev chain with a
    /// wallet: register, mine, read back, update, revoke.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn methods_in_process() {
        use crate::{llmq::Operator, service::spawn_chain_service};
        use rusty_core::test_utils::memory_state;

        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = memory_state(Some(dir.path()));
        let mine_to = state.new_address().expect("address");
        state
            .generate(15, &mine_to, u64::MAX, rusty_core::now())
            .expect("generate");
        let (chain, thread) = spawn_chain_service(state).expect("chain service");
        let operator = bls::SecretKey::generate(&mut OsRng);
        let operator_pk = hex::encode(operator.public_key().to_bytes());
        let make = |operator: Option<Operator>| {
            super::super::build_module(RpcContext {
                chain: chain.clone(),
                network: Network::Dev,
                stop: tokio::sync::watch::channel(false).0,
                miner: None,
                mine_threads: 1,
                wallet_fee_rate: 2_000,
                p2p: None,
                operator,
                media: None,
            })
        };
        let module = make(Some(Operator {
            key: operator.clone(),
        }));
        let plain = make(None);
        let mine = |n: u64| {
            let chain = chain.clone();
            let to = mine_to;
            async move { chain.generate(n, &to, u64::MAX).await.expect("generate") }
        };

        // Before registration.
        let status = rpc(&module, "masternode", json!(["status"]))
            .await
            .expect("status");
        assert_eq!(status["state"], "WAITING_FOR_PROTX");
        assert_eq!(status["operatorPubKey"], operator_pk);
        assert_eq!(
            rpc(&plain, "masternode", json!(["status"])).await,
            Err(codes::INTERNAL_ERROR)
        );
        let info = rpc(&module, "dkginfo", json!([])).await.expect("dkginfo");
        assert_eq!(info["masternode"], true);
        assert_eq!(info["eligible"], false);
        assert_eq!(info["height"], 15);
        assert_eq!(info["nextDkgHeight"], 24);
        assert!(info["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("not registered")));
        assert_eq!(
            rpc(&module, "getbestchainlock", json!([])).await,
            Err(codes::INTERNAL_ERROR)
        );
        assert_eq!(rpc(&module, "quorum", json!(["list"])).await, Ok(json!([])));
        let dkg = rpc(&module, "quorum", json!(["dkgstatus"]))
            .await
            .expect("dkgstatus");
        assert_eq!(
            dkg,
            json!({ "pending": [], "sessions": [], "minableCommitments": [] })
        );

        // Parameter errors.
        let service =
            "/ip4/127.0.0.1/tcp/28433/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
        assert_eq!(
            rpc(&module, "protx", json!([])).await,
            Err(codes::INVALID_PARAMS)
        );
        assert_eq!(
            rpc(&module, "protx", json!(["destroy"])).await,
            Err(codes::INVALID_PARAMETER)
        );
        assert_eq!(
            rpc(&module, "protx", json!(["register", "00", service])).await,
            Err(codes::INVALID_PARAMETER)
        );
        assert_eq!(
            rpc(
                &module,
                "protx",
                json!(["register", operator_pk, "127.0.0.1:1"])
            )
            .await,
            Err(codes::INVALID_PARAMETER)
        );
        assert_eq!(
            rpc(
                &module,
                "protx",
                json!(["register", operator_pk, service, 0, "nope"])
            )
            .await,
            Err(codes::INVALID_ADDRESS_OR_KEY)
        );
        assert_eq!(
            rpc(&module, "protx", json!(["info", hash(1).to_string()])).await,
            Err(codes::INVALID_PARAMETER)
        );
        assert_eq!(
            rpc(&plain, "protx", json!(["revoke", hash(1).to_string()])).await,
            Err(codes::INTERNAL_ERROR)
        );

        // Register and mine it.
        let reg = rpc(
            &module,
            "protx",
            json!(["register", operator_pk, service, 250]),
        )
        .await
        .expect("register");
        let pro = reg["proTxHash"].as_str().expect("proTxHash").to_string();
        for k in ["collateralAddress", "ownerAddress", "payoutAddress"] {
            assert!(
                reg[k].as_str().is_some_and(|a| a.starts_with("drsc1")),
                "{k}: {reg}"
            );
        }
        mine(1).await;
        // Once mined, the same operator key is refused.
        assert_eq!(
            rpc(&module, "protx", json!(["register", operator_pk, service])).await,
            Err(codes::INVALID_PARAMETER)
        );
        assert_eq!(
            rpc(&module, "protx", json!(["list"])).await,
            Ok(json!([pro]))
        );
        assert_eq!(
            rpc(&module, "protx", json!(["list", "valid"])).await,
            Ok(json!([pro]))
        );
        let info = rpc(&module, "protx", json!(["info", pro]))
            .await
            .expect("info");
        assert_eq!(info["operatorPubKey"], operator_pk);
        assert_eq!(info["payoutAddress"], reg["payoutAddress"]);
        assert_eq!(info["ownerAddress"], reg["ownerAddress"]);
        assert_eq!(info["operatorReward"], 2.5);
        assert_eq!(info["registeredHeight"], 16);
        assert_eq!(info["service"], service);
        assert_eq!(info["status"], "ENABLED");
        let status = rpc(&module, "masternode", json!(["status"]))
            .await
            .expect("status");
        assert_eq!(status["state"], "READY");
        assert_eq!(status["proTxHash"], pro);
        let list = rpc(&module, "masternode", json!(["list"]))
            .await
            .expect("list");
        assert_eq!(list[&pro]["status"], "ENABLED");
        assert_eq!(
            rpc(&module, "masternode", json!(["count"])).await,
            Ok(json!({ "total": 1, "enabled": 1 }))
        );
        let winners = rpc(&module, "masternode", json!(["winners", 3]))
            .await
            .expect("winners");
        let winners = winners.as_array().expect("array");
        assert_eq!(winners.len(), 3);
        assert_eq!(winners[0]["height"], 17);
        assert_eq!(winners[2]["height"], 19);
        assert_eq!(winners[0]["proTxHash"], pro);
        assert_eq!(winners[0]["payoutAddress"], reg["payoutAddress"]);
        let reward = Network::Dev.params().masternode_reward(17).as_coins_f64();
        assert_eq!(winners[0]["amount"].as_f64(), Some(reward));
        assert_eq!(
            rpc(&module, "masternode", json!(["winners"]))
                .await
                .map(|w| w.as_array().map(Vec::len)),
            Ok(Some(10))
        );
        let info = rpc(&module, "dkginfo", json!([])).await.expect("dkginfo");
        assert_eq!(info["eligible"], true);
        assert_eq!(info["proTxHash"], pro);
        assert!(
            info["note"]
                .as_str()
                .is_some_and(|n| n.starts_with("eligible, but only 1")),
            "{info}"
        );

        // Update the service, then revoke.
        let moved = service.replace("127.0.0.1", "127.0.0.2");
        let up = rpc(&module, "protx", json!(["update_service", pro, moved]))
            .await
            .expect("update");
        assert_eq!(up["txid"].as_str().map(str::len), Some(64));
        assert_eq!(
            rpc(&plain, "protx", json!(["update_service", pro, moved])).await,
            Err(codes::INTERNAL_ERROR)
        );
        mine(1).await;
        let info = rpc(&module, "protx", json!(["info", pro]))
            .await
            .expect("info");
        assert_eq!(info["service"], moved);
        assert_eq!(
            rpc(&module, "protx", json!(["revoke", pro, 9])).await,
            Err(codes::INVALID_PARAMETER)
        );
        rpc(&module, "protx", json!(["revoke", pro, 1]))
            .await
            .expect("revoke");
        mine(1).await;
        let status = rpc(&module, "masternode", json!(["status"]))
            .await
            .expect("status");
        assert_eq!(status["state"], "REVOKED");
        assert_eq!(status["status"], "REVOKED");
        assert_eq!(
            rpc(&module, "protx", json!(["list", "valid"])).await,
            Ok(json!([]))
        );
        assert_eq!(
            rpc(&module, "masternode", json!(["count"])).await,
            Ok(json!({ "total": 1, "enabled": 0 }))
        );
        assert_eq!(
            rpc(&module, "masternode", json!(["winners"])).await,
            Ok(json!([]))
        );
        assert_eq!(
            rpc(&module, "protx", json!(["revoke", pro])).await,
            Err(codes::INVALID_PARAMETER)
        );

        chain.shutdown().await;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}
