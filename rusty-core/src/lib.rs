//! Consensus and the Rusty Coin node.
//!
//! - [`pow`]: compact targets, block work, ASERT difficulty.
//! - [`validation`]: consensus rules for transactions and blocks.
//! - [`tables`]: the column families of the chain database.
//! - [`chain`]: the block tree, fork choice by cumulative work, atomic
//!   connect/disconnect with undo data, the UTXO set.
//! - [`mempool`]: fee-rate ordered pool with replacement and eviction.
//! - [`miner`]: nonce search and the multi-threaded CPU miner.
//! - [`wallet`]: the HD wallet following the chain.
//! - [`state`]: chain + mempool + wallet as one owned state.
//! - [`service`]: the thread that owns the state, and its [`service::ChainHandle`].
//! - [`rpc`]: the JSON-RPC server and client.
//! - [`p2p`]: the node on the network: gossip validation, sync, relay.
//! - [`masternode`]: the deterministic masternode list, payee and quorum state.
//! - [`llmq`]: DKG sessions, ChainLock signing and recovery on the network.
//! - [`node`]: assembly and shutdown of a running node.
//! - [`localnet`]: N dev nodes on loopback in one process, wired together.
//! - [`bench`]: the block-connection benchmark.
//! - [`clbench`]: the ChainLock latency benchmark on a masternode localnet.
//! - [`netbench`]: the network benchmark: initial sync and tx gossip over
//!   loopback, beside raw loopback TCP.

pub mod bench;
pub mod chain;
pub mod clbench;
pub mod llmq;
pub mod localnet;
pub mod masternode;
pub mod media_pay;
pub mod mediabench;
pub mod mempool;
pub mod miner;
pub mod netbench;
pub mod node;
pub mod p2p;
pub mod pow;
pub mod rpc;
pub mod service;
pub mod state;
pub mod tables;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;
pub mod validation;
pub mod wallet;

/// Seconds since the UNIX epoch by the system clock.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
