//! The node's RPC interface, one jsonrpsee `#[rpc(server, client)]` trait
//! per namespace, with the request and result types both sides share (in
//! the manner of reth's `rpc-api` crate).
//!
//! The server implements each `…ApiServer` trait in the sibling module of
//! [`super`] (`rpc/control.rs` for [`control::ControlApiServer`], …); the
//! CLI calls the generated `…ApiClient` methods through
//! [`super::remote::Remote`]. Because both ends use these types, the
//! server's result shapes and the CLI's reading of them cannot drift.
//!
//! Method names and result field names follow Bitcoin Core (and Dash for
//! the masternode methods); parameters are positional, as Bitcoin Core's.

pub mod blockchain;
pub mod bridge;
pub mod contract;
pub mod control;
pub mod eth;
pub mod governance;
pub mod htlc;
pub mod masternode;
pub mod media;
pub mod mining;
pub mod net;
pub mod rawtx;
pub mod wallet;
