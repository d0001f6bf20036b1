//! `quorum list|info|members|dkgstatus`, `getbestchainlock` and `dkginfo`:
//! mined quorums and ChainLocks from the chain, DKG sessions from the
//! quorum service.

use jsonrpsee::{core::RpcResult, types::ErrorObjectOwned};
use rusty_shared_types::{masternode::MAX_QUORUM_SIZE, Hash256};
use serde_json::{json, Value};

use super::{llmq_snapshot, operator_public_key, QuorumRequest, NO_OPERATOR_KEY};
use crate::{
    llmq::SessionInfo,
    rpc::{codes, parse_hash, rpc_error, RpcContext},
};
use rusty_core::masternode::{MasternodeEntry, MinedQuorum};

fn quorum_not_found() -> ErrorObjectOwned {
    rpc_error(codes::INVALID_PARAMETER, "quorum not found")
}

pub(super) async fn quorum(ctx: &RpcContext, request: QuorumRequest) -> RpcResult<Value> {
    match request {
        QuorumRequest::List { count } => {
            ctx.with_state(move |s| {
                let mp = &s.params().masternode;
                // Without a count, as Dash: the active quorums, those that
                // sign (the newest `signing_quorums` handed over to).
                let all = s.chain().mn().quorums();
                let (quorums, count) = match count {
                    Some(c) => (all.to_vec(), usize::try_from(c).unwrap_or(usize::MAX)),
                    None => (
                        all.iter()
                            .filter(|q| q.active_from.is_some())
                            .cloned()
                            .collect(),
                        mp.signing_quorums,
                    ),
                };
                quorum_list_json(
                    &llmq_type_name(mp.quorum_size, mp.quorum_threshold),
                    &quorums,
                    count,
                )
            })
            .await
        }
        QuorumRequest::Info { quorum_hash } => mined_quorum(ctx, &quorum_hash, false).await,
        QuorumRequest::Members { quorum_hash } => mined_quorum(ctx, &quorum_hash, true).await,
        QuorumRequest::DkgStatus => {
            let llmq = llmq_snapshot(ctx);
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

/// `quorum info` (or with `members_only`, `quorum members`).
async fn mined_quorum(ctx: &RpcContext, hash: &str, members_only: bool) -> RpcResult<Value> {
    let hash = parse_hash(hash, "quorumHash")?;
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

pub(super) async fn best_chainlock(ctx: &RpcContext) -> RpcResult<Value> {
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
}

/// The chain's one quorum type in Dash's naming, `llmq_<size>_<threshold
/// as a percentage of the size>`: `llmq_50_60` on main (Dash's name for
/// the same 50-member quorum signing with 30), `llmq_10_60` on test,
/// `llmq_5_60` on dev.
pub fn llmq_type_name(size: usize, threshold: usize) -> String {
    let size = size.clamp(1, MAX_QUORUM_SIZE);
    format!("llmq_{size}_{}", threshold.saturating_mul(100) / size)
}

/// `quorum list`: Dash's object of quorum type → the hashes of its newest
/// `count` mined quorums, newest first (`quorums` is oldest first, as the
/// list keeps them).
pub fn quorum_list_json(type_name: &str, quorums: &[MinedQuorum], count: usize) -> Value {
    let hashes: Vec<Value> = quorums
        .iter()
        .rev()
        .take(count)
        .map(|q| json!(q.quorum_hash.to_string()))
        .collect();
    let mut map = serde_json::Map::new();
    map.insert(type_name.to_string(), Value::Array(hashes));
    Value::Object(map)
}

/// One mined quorum, members as counts (`quorum info` adds the members).
pub fn quorum_json(q: &MinedQuorum) -> Value {
    json!({
        "quorumHash": q.quorum_hash.to_string(),
        "quorumHeight": q.quorum_height,
        "minedHeight": q.mined_height,
        "activeFrom": q.active_from,
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

/// `quorum info`: [`quorum_json`] with the members and the verification
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

pub(super) async fn dkginfo(ctx: &RpcContext) -> RpcResult<Value> {
    let key = operator_public_key(ctx);
    let llmq = llmq_snapshot(ctx);
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
