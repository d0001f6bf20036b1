//! End-to-end tests of the `rusty-cli` binary: real processes, real
//! datadirs, real HTTP.

mod augy_cli;
mod bridge_engine;
mod bridge_eth;
mod bridge_swap;
mod chains;
mod cli;
mod contracts_eth;
mod crash;
mod eth_tools;
mod harness;
mod htlc_swap;
mod install_lock;
mod masternode_cli;
mod nat_lab;
mod pyvenv;
mod rpc_compat;
mod stream_cli;
mod supervision;
mod transcode_cli;
mod ui_browser;
