//! The server side of [`super::api::masternode`]: masternodes and quorums,
//! in Dash's shapes — `protx`, `masternode` and `quorum` (each taking a
//! subcommand as its first parameter), `getbestchainlock` and `dkginfo`.
//!
//! One file per subcommand family: [`protx`] (registration and the
//! operator's special transactions), [`list`] (`masternode`: the list, its
//! JSON shapes and payee projection), [`quorum`] (`quorum`,
//! `getbestchainlock`, `dkginfo`). This file holds the dispatch and what
//! the families share: parameter checks and this node's operator.
//!
//! Registration and the operator's special transactions are paid by the
//! node's wallet; `protx update_service` and `protx revoke` are signed
//! with this node's operator key (`--masternode --operator-key`). Every
//! read is of the deterministic list at the active tip
//! ([`rusty_core::masternode::MnState`]), in Dash Core's documented shapes;
//! what Dash shows and the list entry does not record (when a ban was
//! lifted, why a masternode was revoked, past payees) comes from the
//! list's per-block undo records ([`entry_histories`], [`past_payees`]).
//! DKG sessions come from the quorum service's view
//! ([`crate::llmq::LlmqView`]), empty without P2P.

mod list;
mod protx;
mod quorum;

use std::sync::Arc;

use jsonrpsee::{
    core::{async_trait, RpcResult},
    types::ErrorObjectOwned,
};
use rusty_crypto::bls;
use rusty_network::{peers::peer_id_of, Multiaddr};
use rusty_shared_types::{
    masternode::{BlsPublicKeyBytes, MAX_OPERATOR_REWARD_BPS, MAX_SERVICE_LEN},
    Hash256,
};
use serde_json::Value;

pub use self::{list::*, quorum::*};
pub use super::api::masternode::{
    MasternodeCommand, MasternodeRequest, ProtxCommand, ProtxRequest, QuorumCommand, QuorumRequest,
    Subcommand,
};
use super::{api::masternode::MasternodeApiServer, codes, rpc_error, RpcContext};
use crate::llmq::SessionInfo;
use rusty_core::masternode::MasternodeEntry;

/// Implements [`MasternodeApiServer`] over the node's RPC context.
#[derive(Debug, Clone)]
pub struct MasternodeRpc(pub Arc<RpcContext>);

#[async_trait]
impl MasternodeApiServer for MasternodeRpc {
    async fn protx(
        &self,
        command: Subcommand<ProtxCommand>,
        arg1: Option<Value>,
        arg2: Option<Value>,
        arg3: Option<Value>,
        arg4: Option<Value>,
    ) -> RpcResult<Value> {
        let request = ProtxRequest::from_params(command.known()?, [arg1, arg2, arg3, arg4])?;
        protx::protx(&self.0, request).await
    }

    async fn masternode(
        &self,
        command: Subcommand<MasternodeCommand>,
        arg1: Option<Value>,
    ) -> RpcResult<Value> {
        let request = MasternodeRequest::from_params(command.known()?, arg1)?;
        list::masternode(&self.0, request).await
    }

    async fn quorum(
        &self,
        command: Subcommand<QuorumCommand>,
        arg1: Option<Value>,
    ) -> RpcResult<Value> {
        let request = QuorumRequest::from_params(command.known()?, arg1)?;
        quorum::quorum(&self.0, request).await
    }

    async fn get_best_chainlock(&self) -> RpcResult<Value> {
        quorum::best_chainlock(&self.0).await
    }

    async fn dkg_info(&self) -> RpcResult<Value> {
        quorum::dkginfo(&self.0).await
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

// ---- parameter checks ----

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
                 localmultiaddrs), got \"{s}\""
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

// ---- this node's operator ----

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

#[cfg(test)]
mod tests;
