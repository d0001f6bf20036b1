//! Governance: `getgovernanceinfo` and `getsuperblockbudget` in Dash
//! Core's shapes, and `gov_treasury`.
//!
//! Proposals and votes are not active yet (docs/governance.md): these
//! report the schedule, the thresholds and the treasury as the chain
//! defines them today, with no superblock having paid anything.

use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `getgovernanceinfo`'s result, with Dash Core's keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GovernanceInfo {
    /// Net yes a payment needs at least.
    pub governanceminquorum: u64,
    /// Coins the proposal transaction burns.
    pub proposalfee: Value,
    pub superblockcycle: u64,
    /// Blocks between the tally's snapshot and the superblock.
    pub superblockmaturitywindow: u64,
    /// The last superblock height at or below the tip (0 before the first).
    pub lastsuperblock: u64,
    pub nextsuperblock: u64,
    /// Net yes a payment needs now: `max(min quorum, ⌈10% of valid
    /// masternodes⌉)`.
    pub fundingthreshold: u64,
    /// What the next superblock may pay, coins.
    pub governancebudget: Value,
}

/// `gov_treasury`'s result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreasuryInfo {
    /// The treasury's balance at the tip, coins: every block's treasury
    /// share since genesis, less what superblocks paid (nothing yet).
    pub balance: Value,
    pub height: u64,
    pub nextsuperblock: u64,
    /// What the next superblock may pay, coins.
    pub budget: Value,
    /// Whether proposals and votes are accepted on chain (not yet).
    pub active: bool,
}

/// Governance and the treasury.
#[rpc(server, client)]
pub trait GovernanceApi {
    #[method(name = "getgovernanceinfo")]
    async fn get_governance_info(&self) -> RpcResult<GovernanceInfo>;

    /// What the superblock at `index` may pay, coins, as Dash's: from the
    /// treasury's balance before that block.
    #[method(name = "getsuperblockbudget")]
    async fn get_superblock_budget(&self, index: i64) -> RpcResult<Value>;

    #[method(name = "gov_treasury")]
    async fn gov_treasury(&self) -> RpcResult<TreasuryInfo>;
}
