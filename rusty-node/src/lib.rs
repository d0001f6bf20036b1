//! The running Rusty Coin node: the services around the chain state of
//! `rusty-core`, assembled and supervised.
//!
//! - [`service`]: the thread that owns the chain state ([`rusty_core::state::NodeState`])
//!   and its cloneable [`service::ChainHandle`].
//! - [`miner`]: the multi-threaded CPU miner (grinds off the chain thread,
//!   submits through the handle).
//! - [`p2p`]: the node on the network: gossip validation, sync, relay.
//! - [`llmq`]: DKG sessions, ChainLock signing and recovery on the network.
//! - [`media_pay`]: key releases and unsealing for paid media content.
//! - [`rpc`]: the JSON-RPC server and client.
//! - [`node`]: assembly, supervision and shutdown of a running node.
//! - [`localnet`]: N dev nodes on loopback in one process, wired together;
//!   [`testkit`]: mining and waits over one, for tests and benches.
//! - [`tasks`]: supervision of critical tasks and the one shutdown token.
//!
//! See `ARCHITECTURE.md` at the repository root for the tasks of a running
//! node and who talks to whom.

pub mod bridge;
pub mod llmq;
pub mod localnet;
pub mod media_pay;
pub mod metrics;
pub mod miner;
pub mod node;
pub mod p2p;
pub mod rpc;
pub mod service;
pub mod tasks;
pub mod testkit;
pub mod ui;
