//! Integration tests: real nodes on temporary RocksDB datadirs, driven over
//! real HTTP JSON-RPC.

mod bad_input;
mod common;
mod governance;
mod masternodes;
mod media;
mod mining;
mod net;
mod network;
mod reorg;
mod rpc_flow;
