//! Consensus and chain state of Rusty Coin: everything a node must compute
//! bit-identically, and nothing that talks to the network.
//!
//! - [`pow`]: compact targets, block work, ASERT difficulty, nonce search.
//! - [`validation`]: consensus rules for transactions and blocks.
//! - [`tables`]: the column families of the chain database.
//! - [`chain`]: the block tree, fork choice by cumulative work, atomic
//!   connect/disconnect with undo data, the UTXO set.
//! - [`contracts`]: the account world: EVM accounts in a state trie,
//!   deposits, Ethereum transactions, receipts and their pool.
//! - [`masternode`]: the deterministic masternode list, payee and quorum state.
//! - [`mempool`]: fee-rate ordered pool with replacement and eviction.
//! - [`wallet`]: the HD wallet following the chain.
//! - [`state`]: chain + mempool + wallet as one owned [`state::NodeState`],
//!   whose methods are the chain's operations. The thread that owns it, its
//!   handle, the network, RPC and the services around them are in
//!   `rusty-node`.
//!
//! Dependencies point down only: `rusty-shared-types`, `rusty-crypto`,
//! `rusty-storage`, `rusty-vm`. No libp2p, no JSON-RPC server, no media.

pub mod chain;
mod claims;
pub mod contracts;
pub mod governance;
pub mod htlc;
pub mod masternode;
pub mod mempool;
pub mod pow;
pub mod state;
pub mod tables;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;
pub mod validation;
pub mod wallet;

/// The cores this process may use, read once: `available_parallelism`
/// reads the cgroup files on every call, which several calls per block
/// made a visible part of connecting one.
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Seconds added to the system clock by [`now`]: zero except on a dev node
/// started with `--clock-skew` (the chaos soak's clock fault).
static CLOCK_SKEW_SECS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Makes [`now`] run `secs` ahead of (or, negative, behind) the system
/// clock, for the whole process.
pub fn set_clock_skew(secs: i64) {
    CLOCK_SKEW_SECS.store(secs, std::sync::atomic::Ordering::Relaxed);
}

/// Seconds since the UNIX epoch by the system clock, plus the clock skew
/// (zero unless [`set_clock_skew`] was called).
pub fn now() -> u64 {
    let system = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let skew = CLOCK_SKEW_SECS.load(std::sync::atomic::Ordering::Relaxed);
    system.saturating_add_signed(skew)
}
