//! The server side of [`super::api::governance`].

use std::sync::Arc;

use jsonrpsee::core::{async_trait, RpcResult};
use rusty_core::governance::{accrued_treasury, GovernanceParams, Tally};
use rusty_shared_types::Amount;
use serde_json::Value;

use super::{
    api::governance::{GovernanceApiServer, GovernanceInfo, TreasuryInfo},
    codes, json as render, rpc_error, RpcContext,
};

/// Implements [`GovernanceApiServer`] over the node's RPC context.
#[derive(Debug, Clone)]
pub struct GovernanceRpc(pub Arc<RpcContext>);

/// The budget of the superblock at `superblock`: from the balance the
/// blocks before it accrued.
fn budget_at(
    gov: &GovernanceParams,
    params: &rusty_shared_types::ChainParams,
    superblock: u64,
) -> Amount {
    gov.budget(accrued_treasury(params, superblock.saturating_sub(1)))
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
                    governancebudget: render::amount(budget_at(&gov, params, next)),
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
                let params = s.params();
                let gov = GovernanceParams::of(params.network);
                if !gov.is_superblock(index) {
                    // Dash answers 0 for a height that is not a superblock.
                    return render::amount(Amount::ZERO);
                }
                render::amount(budget_at(&gov, params, index))
            })
            .await
    }

    async fn gov_treasury(&self) -> RpcResult<TreasuryInfo> {
        self.0
            .with_state(|s| {
                let params = s.params();
                let gov = GovernanceParams::of(params.network);
                let height = s.chain().height();
                let next = gov.next_superblock(height);
                TreasuryInfo {
                    balance: render::amount(accrued_treasury(params, height)),
                    height,
                    nextsuperblock: next,
                    budget: render::amount(budget_at(&gov, params, next)),
                    active: false,
                }
            })
            .await
    }
}
