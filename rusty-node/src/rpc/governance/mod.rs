//! The server side of [`super::api::governance`]: Dash's governance
//! methods and the typed `gov_*` methods over the governance state at the
//! tip (`rusty_core::governance::GovState`).

mod gobject;
pub mod view;

use std::sync::Arc;

use jsonrpsee::{
    core::{async_trait, RpcResult, SubscriptionResult},
    PendingSubscriptionSink, SubscriptionMessage,
};
use rusty_core::{
    governance::{
        basis_points, GovernanceParams, Tally, VoteError, VoteSent, BLOCK_SIZE_BOUNDS,
        MAX_SPLIT_STEP_BP, RELAY_FEE_BOUNDS, SPLIT_BOUNDS,
    },
    state::NodeState,
};
use rusty_shared_types::{governance::VoteOutcome, Amount, Hash256, Payload};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::{
    api::governance::{
        GovParams, GovernanceApiServer, GovernanceEvent, GovernanceInfo, ParamBounds,
        PendingChange, ProposalInfo, ProposalRequest, TreasuryInfo, VoteResult,
    },
    codes, json as render, parse_hash, rpc_error, running,
    wallet::send_error,
    RpcContext,
};

/// Implements [`GovernanceApiServer`] over the node's RPC context.
#[derive(Debug, Clone)]
pub struct GovernanceRpc(pub Arc<RpcContext>);

/// The budget of the superblock at `superblock`: from the balance before
/// it (recorded in its undo data once connected, projected from the tip's
/// balance with the values in force when still ahead).
pub(crate) fn budget_at(s: &NodeState, superblock: u64) -> Amount {
    let params = s.params();
    let g = GovernanceParams::of(params.network);
    let chain = s.chain();
    let gov = chain.gov();
    let before = if superblock <= chain.height() {
        chain
            .hash_at(superblock)
            .and_then(|h| {
                chain
                    .db()
                    .get::<rusty_core::tables::GovUndoTable>(&h)
                    .ok()
                    .flatten()
            })
            .map(|u| u.treasury)
            .unwrap_or(Amount::ZERO)
    } else {
        let treasury_bp = gov.values().reward_split_bp[2];
        (chain.height().saturating_add(1)..superblock).fold(gov.treasury(), |acc, h| {
            acc.checked_add(basis_points(params.subsidy(h), treasury_bp))
                .unwrap_or(acc)
        })
    };
    let share = basis_points(
        params.subsidy(superblock),
        gov.values_at(superblock).reward_split_bp[2],
    );
    g.budget(before.checked_add(share).unwrap_or(before))
}

fn parse_outcome(s: &str) -> Result<VoteOutcome, jsonrpsee::types::ErrorObjectOwned> {
    s.parse()
        .map_err(|e: String| rpc_error(codes::INVALID_PARAMETER, e))
}

/// A wallet vote's error as the RPC reports it.
pub(crate) fn vote_error(e: VoteError) -> jsonrpsee::types::ErrorObjectOwned {
    match e {
        VoteError::NoWallet => rpc_error(
            codes::WALLET_NOT_FOUND,
            "No wallet is loaded: votes are signed with the voting keys the wallet holds.",
        ),
        VoteError::UnknownMasternode(_) => rpc_error(codes::INVALID_ADDRESS_OR_KEY, e.to_string()),
        VoteError::NoVotes => rpc_error(codes::INVALID_PARAMETER, e.to_string()),
        VoteError::NoVotingKey(_) | VoteError::NoMasternodes => {
            rpc_error(codes::WALLET_ERROR, e.to_string())
        }
    }
}

pub(crate) fn vote_results(sent: Vec<VoteSent>) -> Vec<VoteResult> {
    sent.into_iter()
        .map(|v| match v.result {
            Ok(txid) => VoteResult {
                masternode: v.masternode.to_string(),
                txid: Some(txid.to_string()),
                error: None,
            },
            Err(e) => VoteResult {
                masternode: v.masternode.to_string(),
                txid: None,
                error: Some(super::rawtx::rejection_error(&e).message().to_owned()),
            },
        })
        .collect()
}

impl GovernanceRpc {
    pub(crate) async fn vote(
        &self,
        proposal: Hash256,
        outcome: VoteOutcome,
        masternode: Option<Hash256>,
    ) -> RpcResult<Vec<VoteResult>> {
        let sent = running(
            self.0
                .chain
                .vote(vec![(proposal, outcome)], masternode)
                .await,
        )?
        .map_err(vote_error)?;
        Ok(vote_results(sent))
    }

    pub(crate) async fn proposal(&self, hash: Hash256) -> RpcResult<ProposalInfo> {
        self.0
            .with_state(move |s| {
                s.chain()
                    .gov()
                    .proposal(&hash)
                    .map(|p| view::proposal_info(s, p))
                    .ok_or_else(|| {
                        rpc_error(
                            codes::INVALID_ADDRESS_OR_KEY,
                            format!(
                                "no live proposal {hash} (unknown, not yet mined, or finished)"
                            ),
                        )
                    })
            })
            .await?
    }
}

#[async_trait]
impl GovernanceApiServer for GovernanceRpc {
    async fn get_governance_info(&self) -> RpcResult<GovernanceInfo> {
        self.0
            .with_state(|s| {
                let params = s.params();
                let gov = GovernanceParams::of(params.network);
                let height = s.chain().height();
                let next = gov.next_superblock(height);
                let eligible = s.chain().mn().valid_count() as u64;
                GovernanceInfo {
                    governanceminquorum: gov.min_quorum,
                    proposalfee: render::amount(
                        Amount::from_units(gov.proposal_fee).unwrap_or_default(),
                    ),
                    superblockcycle: gov.superblock_cycle,
                    superblockmaturitywindow: gov.maturity_window,
                    lastsuperblock: gov.last_superblock(height),
                    nextsuperblock: next,
                    fundingthreshold: Tally::funding_threshold(eligible, gov.min_quorum),
                    governancebudget: render::amount(budget_at(s, next)),
                }
            })
            .await
    }

    async fn get_superblock_budget(&self, index: i64) -> RpcResult<Value> {
        let index = u64::try_from(index)
            .ok()
            .filter(|i| *i > 0)
            .ok_or_else(|| rpc_error(codes::INVALID_PARAMETER, "Block height out of range"))?;
        self.0
            .with_state(move |s| {
                let gov = GovernanceParams::of(s.params().network);
                if !gov.is_superblock(index) {
                    // Dash answers 0 for a height that is not a superblock.
                    return render::amount(Amount::ZERO);
                }
                render::amount(budget_at(s, index))
            })
            .await
    }

    async fn gobject(
        &self,
        command: String,
        arg1: Option<Value>,
        arg2: Option<Value>,
        arg3: Option<Value>,
        arg4: Option<Value>,
        arg5: Option<Value>,
    ) -> RpcResult<Value> {
        gobject::dispatch(self, &command, [arg1, arg2, arg3, arg4, arg5]).await
    }

    async fn gov_treasury(&self) -> RpcResult<TreasuryInfo> {
        self.0
            .with_state(|s| {
                let params = s.params();
                let g = GovernanceParams::of(params.network);
                let height = s.chain().height();
                let next = g.next_superblock(height);
                let gov = s.chain().gov();
                let projected = gov
                    .decision()
                    .filter(|d| d.superblock == next)
                    .map(|_| gov.rewards(params, next).payout_total())
                    .unwrap_or(Amount::ZERO);
                TreasuryInfo {
                    balance: render::amount(gov.treasury()),
                    height,
                    nextsuperblock: next,
                    budget: render::amount(budget_at(s, next)),
                    projected_payout: render::amount(projected),
                    active: true,
                }
            })
            .await
    }

    async fn gov_submit(&self, request: ProposalRequest) -> RpcResult<String> {
        let proposal = self
            .0
            .with_state(move |s| view::proposal_from(&request, s))
            .await??;
        let fee_rate = self.0.wallet_fee_rate;
        running(self.0.chain.submit_proposal(proposal, fee_rate).await)?
            .map(|txid| txid.to_string())
            .map_err(send_error)
    }

    async fn gov_vote(
        &self,
        proposal: String,
        outcome: String,
        masternode: Option<String>,
    ) -> RpcResult<Vec<VoteResult>> {
        let proposal = parse_hash(&proposal, "proposal")?;
        let outcome = parse_outcome(&outcome)?;
        let masternode = match masternode.as_deref() {
            None | Some("all") => None,
            Some(m) => Some(parse_hash(m, "masternode")?),
        };
        self.vote(proposal, outcome, masternode).await
    }

    async fn gov_list(&self, state: Option<String>) -> RpcResult<Vec<ProposalInfo>> {
        let filter = state.unwrap_or_else(|| "all".into());
        if !["all", "open", "closed", "passing", "failing"].contains(&filter.as_str()) {
            return Err(rpc_error(
                codes::INVALID_PARAMETER,
                format!("state must be all, open, closed, passing or failing; got \"{filter}\""),
            ));
        }
        self.0
            .with_state(move |s| {
                s.chain()
                    .gov()
                    .proposals()
                    .map(|p| view::proposal_info(s, p))
                    .filter(|p| match filter.as_str() {
                        "open" | "closed" => p.state == filter,
                        "passing" => p.passing,
                        "failing" => !p.passing,
                        _ => true,
                    })
                    .collect()
            })
            .await
    }

    async fn gov_get(&self, proposal: String) -> RpcResult<ProposalInfo> {
        let hash = parse_hash(&proposal, "proposal")?;
        self.proposal(hash).await
    }

    async fn gov_params(&self) -> RpcResult<GovParams> {
        self.0
            .with_state(|s| {
                let gov = s.chain().gov();
                let v = gov.values();
                let mut bounds: Vec<ParamBounds> = SPLIT_BOUNDS
                    .iter()
                    .map(|(share, min, max)| ParamBounds {
                        param: format!("reward-split.{share}"),
                        min: format!("{min} bp"),
                        max: format!("{max} bp"),
                        max_step: format!("{MAX_SPLIT_STEP_BP} bp"),
                    })
                    .collect();
                bounds.push(ParamBounds {
                    param: "max-block-size".into(),
                    min: BLOCK_SIZE_BOUNDS.0.to_string(),
                    max: BLOCK_SIZE_BOUNDS.1.to_string(),
                    max_step: "×2 or ÷2".into(),
                });
                bounds.push(ParamBounds {
                    param: "min-relay-fee".into(),
                    min: RELAY_FEE_BOUNDS.0.to_string(),
                    max: RELAY_FEE_BOUNDS.1.to_string(),
                    max_step: "×2 or ÷2".into(),
                });
                let mut pending: Vec<PendingChange> = gov
                    .decision()
                    .map(|d| {
                        d.changes
                            .iter()
                            .map(|(h, c)| {
                                let (param, value) = view::change_text(c);
                                PendingChange {
                                    proposal: h.to_string(),
                                    param,
                                    value,
                                    superblock: d.superblock,
                                    status: "decided".into(),
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                for p in gov.proposals() {
                    let info = view::proposal_info(s, p);
                    if info.param.is_some() && info.passing && info.state == "open" {
                        pending.push(PendingChange {
                            proposal: info.hash,
                            param: info.param.unwrap_or_default(),
                            value: info.value.unwrap_or_default(),
                            superblock: info.first_superblock,
                            status: "passing".into(),
                        });
                    }
                }
                GovParams {
                    reward_split: v.reward_split_bp,
                    max_block_size: v.max_block_size,
                    min_relay_fee: v.min_relay_fee,
                    bounds,
                    pending,
                }
            })
            .await
    }

    async fn subscribe_governance(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut rx = self.0.chain.subscribe_blocks();
        let sink = pending.accept().await?;
        loop {
            match rx.recv().await {
                Ok(tip) => {
                    let hash = tip.hash;
                    let event = self
                        .0
                        .with_state(move |s| governance_event(s, hash))
                        .await
                        .ok()
                        .flatten();
                    let Some(event) = event else { continue };
                    if sink
                        .send(SubscriptionMessage::from_json(&event)?)
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
        Ok(())
    }
}

/// The governance content of the active block `hash`, if it has any (or
/// is a snapshot or a superblock).
fn governance_event(s: &NodeState, hash: Hash256) -> Option<GovernanceEvent> {
    let chain = s.chain();
    let height = chain.entry(&hash)?.height;
    if chain.hash_at(height) != Some(hash) {
        return None;
    }
    let g = GovernanceParams::of(s.params().network);
    let block = chain.block(&hash).ok().flatten()?;
    let proposals: Vec<String> = block
        .txs
        .iter()
        .filter(|t| matches!(t.payload, Some(Payload::Proposal(_))))
        .map(|t| t.txid().to_string())
        .collect();
    let votes = block
        .txs
        .iter()
        .filter(|t| matches!(t.payload, Some(Payload::Vote(_))))
        .count();
    let snapshot = g.snapshot_height(g.next_superblock(height)) == height;
    let undo = chain
        .db()
        .get::<rusty_core::tables::GovUndoTable>(&hash)
        .ok()
        .flatten();
    let payouts: Vec<String> = if g.is_superblock(height) {
        undo.and_then(|u| u.decision.flatten())
            .filter(|d| d.superblock == height)
            .map(|d| d.payments.iter().map(|p| p.proposal.to_string()).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    if proposals.is_empty() && votes == 0 && !snapshot && !g.is_superblock(height) {
        return None;
    }
    Some(GovernanceEvent {
        height,
        hash: hash.to_string(),
        proposals,
        votes,
        snapshot,
        payouts,
        treasury: render::amount(chain.gov().treasury()),
    })
}
