//! Governance on chain: proposals and masternode votes are typed special
//! transactions, the treasury is a balance in consensus state, and every
//! superblock pays what the tally at its snapshot decided. The tally is a
//! pure function of the chain, in heights only: no gossip objects, no
//! triggers, no wall clock.
//!
//! - [`rules`]: the constants, bounds and passing rules as pure functions;
//! - [`state`]: [`GovState`], what the active tip's governance holds;
//! - [`apply`]: connecting and disconnecting a block's governance effects.

mod apply;
mod pool;
mod rules;
mod state;
#[cfg(test)]
mod tests;
mod wallet;

pub use apply::{GovBlock, GovError, GovUndo, MAX_LEAD_CYCLES};
pub use pool::{VotePool, VotePoolError, MAX_POOLED_VOTES};
pub use rules::*;
pub use state::{
    basis_points, initial_values, BlockRewards, DecidedPayment, Decision, GovState, LiveProposal,
    VoteKey, VoteRecord,
};
pub use wallet::{vote_transaction, VoteError, VoteSent, BURN_MARKER};
