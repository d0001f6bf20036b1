//! JSON-RPC server (jsonrpsee over HTTP and WebSocket on one port).
//!
//! Method names and result shapes follow Bitcoin Core; errors use its codes
//! ([`codes`]); the masternode methods follow Dash. One file per namespace:
//! [`blockchain`], [`rawtx`], [`mining`], [`wallet`], [`net`],
//! [`masternode`], [`control`], [`htlc`]. [`http`] adds cookie/Basic auth and
//! legacy JSON-RPC 1.0 compatibility in front of jsonrpsee; [`client`] is
//! the small blocking client `rusty-cli` uses.

pub mod api;
pub mod blockchain;
pub mod bridge;
pub mod client;
pub mod contract;
pub mod control;
pub mod eth;
pub mod governance;
pub mod htlc;
pub mod http;
pub mod json;
pub mod masternode;
pub mod media;
pub mod mining;
pub mod net;
pub mod params;
pub mod rawtx;
pub mod remote;
pub mod wallet;

use std::{net::SocketAddr, sync::Arc};

use jsonrpsee::{
    server::{RpcServiceBuilder, Server, ServerHandle},
    types::{ErrorObject, ErrorObjectOwned},
    Methods, RpcModule,
};
use rusty_shared_types::{Amount, Hash256, Network};
use serde_json::Value;
use tokio::sync::watch;

use self::api::{
    blockchain::BlockchainApiServer, bridge::BridgeApiServer, contract::ContractApiServer,
    control::ControlApiServer, eth::EthApiServer, governance::GovernanceApiServer,
    htlc::HtlcApiServer, masternode::MasternodeApiServer, media::MediaApiServer,
    mining::MiningApiServer, net::NetApiServer, rawtx::RawTxApiServer, wallet::WalletApiServer,
};
use crate::{miner::MinerStats, service::ChainHandle};

/// Bitcoin Core's JSON-RPC error codes.
pub mod codes {
    pub const MISC_ERROR: i32 = -1;
    pub const TYPE_ERROR: i32 = -3;
    pub const WALLET_ERROR: i32 = -4;
    pub const INVALID_ADDRESS_OR_KEY: i32 = -5;
    pub const WALLET_INSUFFICIENT_FUNDS: i32 = -6;
    pub const INVALID_PARAMETER: i32 = -8;
    pub const WALLET_NOT_FOUND: i32 = -18;
    pub const DATABASE_ERROR: i32 = -20;
    pub const DESERIALIZATION_ERROR: i32 = -22;
    pub const VERIFY_ERROR: i32 = -25;
    pub const VERIFY_REJECTED: i32 = -26;
    pub const VERIFY_ALREADY_IN_CHAIN: i32 = -27;
    pub const INVALID_PARAMS: i32 = -32602;
    /// Dash's RPC_INTERNAL_ERROR: not a masternode, no ChainLock yet.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// Node already added (`addnode add`).
    pub const CLIENT_NODE_ALREADY_ADDED: i32 = -23;
    /// Node not connected / not found.
    pub const CLIENT_NODE_NOT_CONNECTED: i32 = -29;
    pub const CLIENT_INVALID_IP_OR_SUBNET: i32 = -30;
    /// The node runs without P2P networking.
    pub const CLIENT_P2P_DISABLED: i32 = -31;
}

/// A JSON-RPC error with a code and a message.
pub fn rpc_error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(code, message.into(), None::<()>)
}

pub(crate) fn stopped() -> ErrorObjectOwned {
    rpc_error(codes::MISC_ERROR, "the node is shutting down")
}

/// What every method can reach.
#[derive(Debug)]
pub struct RpcContext {
    pub chain: ChainHandle,
    pub network: Network,
    /// Set to true by the `stop` method.
    pub stop: watch::Sender<bool>,
    pub miner: Option<Arc<MinerStats>>,
    pub mine_threads: usize,
    /// Wallet fee rate, base units per 1000 bytes.
    pub wallet_fee_rate: u64,
    /// The P2P network, when the node runs one.
    pub p2p: Option<crate::p2p::P2pHandle>,
    /// This node's masternode operator key (`--masternode --operator-key`).
    pub operator: Option<crate::llmq::Operator>,
    /// The media layer (with networking).
    pub media: Option<rusty_media::service::MediaHandle>,
    /// The node's datadir (`getblockchaininfo`'s `size_on_disk`).
    pub datadir: Option<std::path::PathBuf>,
    /// `http://<addr>` where the node serves playback: the web UI
    /// (`--ui-bind`), else the playback server (`--playback-bind`).
    /// `stream_view` names the URL a player can open.
    pub playback_base_url: Option<String>,
    /// The bridge service (with P2P and a wallet).
    pub bridge: Option<crate::bridge::service::BridgeHandle>,
    /// Ethereum's polled filters (`eth_newFilter` …), one table for the
    /// RPC port and `--eth-rpc-bind`.
    pub(crate) eth_filters: Arc<eth::EthFilters>,
}

impl RpcContext {
    /// Runs the read `f` on the chain service.
    pub async fn with_state<R, F>(&self, f: F) -> Result<R, ErrorObjectOwned>
    where
        R: Send + 'static,
        F: FnOnce(&rusty_core::state::NodeState) -> R + Send + 'static,
    {
        self.chain.query(f).await.map_err(|_| stopped())
    }
}

/// A chain-service reply, or the error every method gives once the node is
/// shutting down.
pub(crate) fn running<R>(
    r: Result<R, crate::service::ServiceStopped>,
) -> Result<R, ErrorObjectOwned> {
    r.map_err(|_| stopped())
}

/// Parses a hash parameter.
pub fn parse_hash(s: &str, what: &str) -> Result<Hash256, ErrorObjectOwned> {
    s.parse().map_err(|_| {
        rpc_error(
            codes::INVALID_PARAMETER,
            format!("{what} must be 64 hex characters, got \"{s}\""),
        )
    })
}

/// Parses an amount given as a JSON number or string of coins.
pub fn parse_amount(v: &Value) -> Result<Amount, ErrorObjectOwned> {
    let bad = || rpc_error(codes::TYPE_ERROR, format!("invalid amount {v}"));
    let s = match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().ok_or_else(bad)?;
                if !(0.0..=rusty_shared_types::MAX_MONEY as f64 / 1e8).contains(&f) {
                    return Err(rpc_error(codes::TYPE_ERROR, "amount out of range"));
                }
                format!("{f:.8}")
            }
        }
        Value::String(s) => s.clone(),
        _ => return Err(bad()),
    };
    Amount::parse_coins(&s).map_err(|_| rpc_error(codes::TYPE_ERROR, format!("invalid amount {v}")))
}

/// Builds the module with every method: the typed namespaces of [`api`]
/// merged in.
pub fn build_module(ctx: RpcContext) -> RpcModule<RpcContext> {
    build_module_shared(Arc::new(ctx))
}

/// [`build_module`] over a context shared with others (the web UI).
pub fn build_module_shared(ctx: Arc<RpcContext>) -> RpcModule<RpcContext> {
    let mut module = RpcModule::from_arc(ctx.clone());
    let typed: [Methods; 13] = [
        blockchain::BlockchainRpc(ctx.clone()).into_rpc().into(),
        contract::ContractRpc(ctx.clone()).into_rpc().into(),
        eth::EthRpc(ctx.clone()).into_rpc().into(),
        bridge::BridgeRpc(ctx.clone()).into_rpc().into(),
        control::ControlRpc(ctx.clone()).into_rpc().into(),
        governance::GovernanceRpc(ctx.clone()).into_rpc().into(),
        htlc::HtlcRpc(ctx.clone()).into_rpc().into(),
        rawtx::RawTxRpc(ctx.clone()).into_rpc().into(),
        mining::MiningRpc(ctx.clone()).into_rpc().into(),
        media::MediaRpc(ctx.clone()).into_rpc().into(),
        net::NetRpc(ctx.clone()).into_rpc().into(),
        masternode::MasternodeRpc(ctx.clone()).into_rpc().into(),
        wallet::WalletRpc(ctx).into_rpc().into(),
    ];
    for methods in typed {
        // Names are unique by construction; a clash is a programming error
        // caught by the unit test that builds the module.
        if let Err(e) = module.merge(methods) {
            tracing::error!(target: "rpc", error = %e, "duplicate RPC method");
        }
    }
    module
}

/// RPC server settings.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    pub bind: SocketAddr,
    pub auth: http::RpcAuth,
    pub max_body_bytes: u32,
    /// Where calls are counted by method (`/metrics`).
    pub metrics: Option<crate::metrics::RpcMetrics>,
}

/// Starts the server on `config.bind`; returns its handle and the bound
/// address.
pub async fn start_server(
    config: &RpcConfig,
    module: RpcModule<RpcContext>,
) -> std::io::Result<(ServerHandle, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    start_server_on(listener, config, module)
}

/// Starts the server on a listener already bound (a node binds its ports
/// before it opens anything else); returns its handle and the address.
pub fn start_server_on(
    listener: tokio::net::TcpListener,
    config: &RpcConfig,
    module: RpcModule<RpcContext>,
) -> std::io::Result<(ServerHandle, SocketAddr)> {
    let middleware = tower::ServiceBuilder::new().layer(
        http::RpcHttpLayer::new(config.auth.clone()).max_body_size(config.max_body_bytes as usize),
    );
    let server = Server::builder()
        .max_request_body_size(config.max_body_bytes)
        .set_http_middleware(middleware)
        .set_rpc_middleware(
            RpcServiceBuilder::new()
                .layer(crate::metrics::RpcMetricsLayer(config.metrics.clone()))
                .layer(params::CoreParamsLayer),
        )
        .build_from_tcp(listener.into_std()?)?;
    let addr = server.local_addr()?;
    let handle = server.start(module);
    Ok((handle, addr))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `help` lists exactly the registered methods, and docs/rpc.md
    /// documents each of them.
    #[tokio::test]
    async fn methods_listed_and_documented() {
        let (chain, thread) =
            crate::service::spawn_chain_service(rusty_core::test_utils::memory_state(None))
                .expect("chain service");
        let module = build_module(RpcContext {
            chain: chain.clone(),
            network: Network::Dev,
            stop: watch::channel(false).0,
            miner: None,
            mine_threads: 1,
            wallet_fee_rate: 2_000,
            p2p: None,
            operator: None,
            media: None,
            datadir: None,
            playback_base_url: None,
            bridge: None,
            eth_filters: Default::default(),
        });
        let registered: BTreeSet<&str> = module
            .method_names()
            .filter(|m| !m.starts_with("unsubscribe_"))
            .collect();
        let listed: BTreeSet<&str> = params::SIGNATURES.iter().map(|s| s.name).collect();
        assert_eq!(registered, listed);
        assert_eq!(
            listed.len(),
            params::SIGNATURES.len(),
            "a method is listed twice"
        );

        let docs = include_str!("../../../docs/rpc.md");
        for m in listed {
            assert!(docs.contains(&format!("`{m}")), "{m} is not in docs/rpc.md");
        }
        chain.shutdown().await;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}
