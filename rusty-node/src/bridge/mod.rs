//! The bridge: atomic swaps between this chain and another (PAR, ARC) by
//! hash-time-locked contracts on both, with no custodian (docs/bridge.md).
//!
//! - [`messages`]: the signed swap protocol messages and their strict
//!   decoders.
//! - [`adapter`]: what the swap engine needs of a chain
//!   ([`adapter::ChainAdapter`]), over any node's `htlc_*` RPC.
//! - [`swap`]: the persisted state machine of one swap, for either role.

pub mod adapter;
pub mod messages;
pub mod service;
pub mod swap;

#[cfg(test)]
mod tests;
