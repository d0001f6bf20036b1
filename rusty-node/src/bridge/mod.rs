//! The bridge: atomic swaps between this chain and another (PAR, ARC) by
//! hash-time-locked contracts on both, with no custodian (docs/bridge.md).
//!
//! - [`messages`]: the signed swap protocol messages and their strict
//!   decoders.
//! - [`adapter`]: what the swap engine needs of a chain
//!   ([`adapter::ChainAdapter`]), over any node's `htlc_*` RPC.
//! - [`eth`]: the same over an Ethereum node and the `RustyHtlc`
//!   contract.
//! - [`networks`]: decimals, block spacing and lock lengths by network.
//! - [`swap`]: the persisted state machine of one swap, for either role.

pub mod adapter;
pub mod eth;
pub mod messages;
pub mod networks;
pub mod service;
pub mod swap;

#[cfg(test)]
mod tests;
