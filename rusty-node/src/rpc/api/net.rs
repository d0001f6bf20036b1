//! Network methods: `getpeerinfo`, `getnetworkinfo`, `getnodehealth`, `getconnectioncount`,
//! `addnode`, `disconnectnode`, `setban`, `listbanned`, `clearbanned`.
//!
//! Result shapes follow Bitcoin Core; addresses are libp2p multiaddrs and
//! peers are also named by their peer id.

use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use serde_json::Value;

/// The node's peers and bans, as Bitcoin Core's network methods.
#[rpc(server, client)]
pub trait NetApi {
    /// One object per connected peer.
    #[method(name = "getpeerinfo")]
    async fn get_peer_info(&self) -> RpcResult<Vec<Value>>;

    #[method(name = "getnetworkinfo")]
    async fn get_network_info(&self) -> RpcResult<Value>;

    /// The node's health in one object: what `/metrics` shows beside its
    /// instrumented series (chain, mempool, peers, masternodes, ChainLock
    /// lag, DKG sessions by phase, media counters and live lag, process).
    #[method(name = "getnodehealth")]
    async fn get_node_health(&self) -> RpcResult<crate::metrics::Health>;

    #[method(name = "getconnectioncount")]
    async fn get_connection_count(&self) -> RpcResult<usize>;

    /// `add`, `remove` or `onetry` a peer given as a multiaddr.
    #[method(name = "addnode")]
    async fn add_node(&self, node: String, command: String) -> RpcResult<()>;

    /// Disconnects a peer by address (or peer id), or by `nodeid`.
    #[method(name = "disconnectnode")]
    async fn disconnect_node(&self, address: Option<String>, nodeid: Option<u64>) -> RpcResult<()>;

    /// `add` or `remove` a ban on a peer id, IP or subnet; `bantime`
    /// seconds (default 24 h), or until that UNIX time with `absolute`.
    #[method(name = "setban")]
    async fn set_ban(
        &self,
        target: String,
        command: String,
        bantime: Option<i64>,
        absolute: Option<bool>,
    ) -> RpcResult<()>;

    #[method(name = "listbanned")]
    async fn list_banned(&self) -> RpcResult<Vec<Value>>;

    #[method(name = "clearbanned")]
    async fn clear_banned(&self) -> RpcResult<()>;
}
