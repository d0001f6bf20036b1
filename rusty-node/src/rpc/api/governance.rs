//! Governance: Dash Core's `getgovernanceinfo`, `getsuperblockbudget` and
//! `gobject`, and the typed `gov_*` methods (submit, vote, list, get,
//! treasury, params) with a `governance` subscription.
//!
//! Proposals and votes are special transactions (docs/governance.md): the
//! tally is a function of the chain, so every node answers alike.

use jsonrpsee::{core::RpcResult, core::SubscriptionResult, proc_macros::rpc};
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
    /// share since genesis, less what superblocks paid.
    pub balance: Value,
    pub height: u64,
    pub nextsuperblock: u64,
    /// What the next superblock may pay at most, coins.
    pub budget: Value,
    /// What the next superblock will pay by the tally so far (decided at
    /// its snapshot), coins.
    pub projected_payout: Value,
    /// Whether proposals and votes are accepted on chain.
    pub active: bool,
}

/// What `gov_submit` asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposalRequest {
    /// At most 64 bytes.
    pub title: String,
    #[serde(default)]
    pub url: String,
    /// BLAKE3 of the document, hex (zero when absent).
    #[serde(default)]
    pub doc_hash: Option<String>,
    /// Default: the first superblock whose tally is still ahead.
    #[serde(default)]
    pub first_superblock: Option<u64>,
    /// Payments: 1 to 12 superblocks (default 1); changes: 1.
    #[serde(default)]
    pub superblocks: Option<u16>,
    #[serde(flatten)]
    pub kind: ProposalRequestKind,
}

/// A payment or a parameter change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProposalRequestKind {
    /// `amount` coins to `payee` at each superblock.
    Payment { payee: String, amount: Value },
    /// `param`: `reward-split` (value `miner,masternode,treasury` in basis
    /// points), `max-block-size` (bytes) or `min-relay-fee` (base units
    /// per 1000 bytes).
    Param { param: String, value: String },
}

/// A proposal as `gov_get` and `gov_list` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposalInfo {
    pub hash: String,
    pub title: String,
    pub url: String,
    pub doc_hash: String,
    /// `payment` or `param`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub payee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub amount: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub param: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
    /// Height of the block that carried it.
    pub height: u64,
    pub first_superblock: u64,
    pub superblocks: u16,
    pub last_superblock: u64,
    /// The last height a vote may be mined at.
    pub voting_closes: u64,
    /// `open` (votes accepted), `closed` (waiting for its superblock).
    pub state: String,
    pub yes: u64,
    pub no: u64,
    pub abstain: u64,
    pub net_yes: i64,
    /// Masternodes whose votes count now.
    pub eligible: u64,
    /// What passing needs: net yes for a payment; for a change, 75% yes
    /// of cast and 20% participation (given as the yes votes needed).
    pub threshold: u64,
    /// Passing by the votes counted now.
    pub passing: bool,
    /// Net yes above (or below, negative) the payment threshold; for a
    /// change, yes votes above what 75% needs.
    pub margin: i64,
    /// The superblock it would be paid (or activate) at next, if passing.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub projected_height: Option<u64>,
}

/// One masternode's vote sent by `gov_vote`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoteResult {
    pub masternode: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub txid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// A pending parameter change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingChange {
    pub proposal: String,
    pub param: String,
    pub value: String,
    pub superblock: u64,
    /// `decided` (the snapshot passed it) or `passing` (by the votes so far).
    pub status: String,
}

/// One governed parameter's bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamBounds {
    pub param: String,
    pub min: String,
    pub max: String,
    pub max_step: String,
}

/// `gov_params`' result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GovParams {
    /// Miner, masternode, treasury shares in basis points.
    pub reward_split: [u16; 3],
    pub max_block_size: u64,
    pub min_relay_fee: u64,
    pub bounds: Vec<ParamBounds>,
    pub pending: Vec<PendingChange>,
}

/// One item of the `governance` subscription: a block that carried
/// governance content or was a snapshot or a superblock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GovernanceEvent {
    pub height: u64,
    pub hash: String,
    /// Proposals the block carried.
    pub proposals: Vec<String>,
    /// Vote transactions the block carried.
    pub votes: usize,
    /// The tally for the next superblock was taken at this block.
    pub snapshot: bool,
    /// What the block paid from the treasury (a superblock).
    pub payouts: Vec<String>,
    /// The treasury balance after the block, coins.
    pub treasury: Value,
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

    /// Dash's `gobject`: `count`, `list [signal] [type]`, `get <hash>`,
    /// `getcurrentvotes <hash>`, `check <data>`, `prepare <data>`,
    /// `submit <…> <txid>`, `vote-many <hash> funding <outcome>`,
    /// `vote-alias <hash> funding <outcome> <proTxHash>`.
    #[method(name = "gobject")]
    async fn gobject(
        &self,
        command: String,
        arg1: Option<Value>,
        arg2: Option<Value>,
        arg3: Option<Value>,
        arg4: Option<Value>,
        arg5: Option<Value>,
    ) -> RpcResult<Value>;

    #[method(name = "gov_treasury")]
    async fn gov_treasury(&self) -> RpcResult<TreasuryInfo>;

    /// Submits a proposal from the wallet; returns its hash (the txid).
    #[method(name = "gov_submit")]
    async fn gov_submit(&self, proposal: ProposalRequest) -> RpcResult<String>;

    /// Votes `outcome` (`yes`, `no`, `abstain`) on `proposal` as
    /// `masternode`, or as every masternode whose voting key the wallet
    /// holds (absent or `"all"`).
    #[method(name = "gov_vote")]
    async fn gov_vote(
        &self,
        proposal: String,
        outcome: String,
        masternode: Option<String>,
    ) -> RpcResult<Vec<VoteResult>>;

    /// Live proposals, optionally only `open`, `closed`, `passing` or
    /// `failing` ones.
    #[method(name = "gov_list")]
    async fn gov_list(&self, state: Option<String>) -> RpcResult<Vec<ProposalInfo>>;

    #[method(name = "gov_get")]
    async fn gov_get(&self, proposal: String) -> RpcResult<ProposalInfo>;

    /// The governed values in force, their bounds and pending changes.
    #[method(name = "gov_params")]
    async fn gov_params(&self) -> RpcResult<GovParams>;

    /// Blocks with governance content, snapshots and superblocks (WebSocket).
    #[subscription(name = "subscribe_governance" => "governance", unsubscribe = "unsubscribe_governance", item = GovernanceEvent)]
    async fn subscribe_governance(&self) -> SubscriptionResult;
}
