//! Node assembly: opens the datadir, starts the chain service, the RPC
//! server and (optionally) the miner, and shuts them down in order.
//!
//! Tasks of a running node (critical ones are supervised by
//! [`crate::tasks`]: one that panics or ends stops the node):
//! - `chain` (OS thread, critical): owns chain, mempool and wallet; runs
//!   jobs in order.
//! - `rpc` (tokio, critical): jsonrpsee HTTP + WebSocket server.
//! - `miner` (OS thread + `--mine-threads` workers, critical), when mining.
//! - `network` (tokio): `rusty-network`'s swarm task, when P2P is on; its
//!   end closes the event stream, which ends `p2p`.
//! - `p2p` (tokio, critical): gossip validation, sync and relay
//!   ([`crate::p2p`]).
//! - `llmq` (tokio, critical): DKG and ChainLocks ([`crate::llmq`]).
//! - `media` (tokio, critical, graceful), when P2P is on: the media
//!   service's owning task ([`rusty_media::service`]); ends on
//!   `MediaHandle::stop`.
//! - `media_pay` (tokio, critical): key releases of paid content.
//!
//! See `ARCHITECTURE.md` for who talks to whom.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{atomic::AtomicBool, Arc},
    thread::JoinHandle,
    time::Duration,
};

use rusty_crypto::keystore::KdfParams;
use rusty_shared_types::{Address, Network};
use rusty_storage::{Database, RocksOptions};
use tokio::sync::watch;
use tracing::{info, warn};

use rusty_core::{
    chain::Chain,
    mempool::Mempool,
    state::NodeState,
    tables::{SCHEMA_VERSION, TABLES},
    wallet::Wallet,
};

use crate::{
    miner::{Miner, MinerConfig, MinerStats},
    p2p::P2pHandle,
    rpc::{
        self,
        http::{RpcAuth, RpcCredentials},
        RpcConfig, RpcContext,
    },
    service::{chain_service, ChainHandle},
    tasks::{CriticalFailure, TaskManager},
};

/// Everything needed to start a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub network: Network,
    /// The network's own directory (`<datadir>/<network>`).
    pub data_dir: PathBuf,
    pub rpc_bind: SocketAddr,
    /// Explicit RPC credentials; without them a cookie is written.
    pub rpc_user: Option<(String, String)>,
    pub mine: bool,
    pub mine_threads: usize,
    /// Where mined coins go; default: a new wallet address.
    pub mine_address: Option<Address>,
    pub wallet: bool,
    pub create_wallet: bool,
    pub wallet_passphrase: String,
    pub wallet_kdf: KdfParams,
    /// Wallet fee rate, base units per 1000 bytes.
    pub wallet_fee_rate: u64,
    pub mempool_max_bytes: usize,
    pub min_relay_fee_per_kb: u64,
    pub db: RocksOptions,
    /// P2P networking; `None` runs a node alone (tests, tools).
    pub p2p: Option<rusty_network::NetworkConfig>,
    /// Run as a masternode with this operator key (needs P2P).
    pub masternode: Option<crate::llmq::Operator>,
    /// Cap on cached (unpinned) media content, bytes (`--media-cache-size`).
    pub media_cache_bytes: u64,
    /// Media upload limit, bytes per second; 0 = none
    /// (`--media-upload-limit`).
    pub media_upload_limit: u64,
    /// How downloads choose and load providers
    /// (`--media-provider-policy`).
    pub media_provider_policy: rusty_media::selection::PolicyKind,
    /// Where the media data channel listens (`--media-data-bind`).
    pub media_data_bind: rusty_media::service::DataBind,
    /// Fault injection for supervision tests (dev only): the chain thread
    /// panics once the node is up.
    pub inject_chain_panic: bool,
    /// The web UI (`--ui-bind`); off when `None`.
    pub ui: Option<crate::ui::UiConfig>,
    /// Where playback is served when the UI is off (`--playback-bind`).
    pub playback_bind: crate::ui::PlaybackBind,
    /// Prometheus metrics (`--metrics-bind`); off when `None`.
    pub metrics_bind: Option<SocketAddr>,
    /// Ethereum JSON-RPC without authentication (`--eth-rpc-bind`); off
    /// when `None`.
    pub eth_rpc_bind: Option<SocketAddr>,
    /// Nodes of other chains the bridge swaps on (`--bridge-chain`).
    pub bridge_chains: Vec<BridgeChain>,
    /// Accept every swap offer this node can carry out
    /// (`--bridge-auto-accept`; a market maker for demos and tests).
    pub bridge_auto_accept: bool,
    /// Confirmations a swap's lock needs to count as final when it has no
    /// ChainLock (`--bridge-confirmations`); `None`: 1 on dev networks, 6
    /// on ours elsewhere, 64 on Ethereum.
    pub bridge_confirmations: Option<u64>,
}

/// A node of another chain the bridge reaches by RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeChain {
    /// Its network's name (`par-dev`).
    pub network: String,
    pub url: String,
    /// Its cookie file (credentials are never put in the URL).
    pub cookie: Option<PathBuf>,
    /// Ethereum (`eth:<chain id>`): the file holding the hex secp256k1
    /// key the bridge signs with.
    pub eth_key: Option<PathBuf>,
    /// Ethereum: a deployed `RustyHtlc` to lock in (`0x…`); without it
    /// one is deployed on the first funding.
    pub eth_contract: Option<String>,
}

impl NodeConfig {
    /// Defaults for `network` under `data_dir` (already network-specific).
    pub fn new(network: Network, data_dir: PathBuf) -> Self {
        let p = network.params();
        NodeConfig {
            network,
            data_dir,
            rpc_bind: SocketAddr::from(([127, 0, 0, 1], p.rpc_port)),
            rpc_user: None,
            mine: false,
            mine_threads: 1,
            mine_address: None,
            wallet: true,
            create_wallet: network.is_dev(),
            wallet_passphrase: String::new(),
            wallet_kdf: KdfParams::default(),
            wallet_fee_rate: p.min_relay_fee_per_kb.saturating_mul(2),
            mempool_max_bytes: 300 << 20,
            min_relay_fee_per_kb: p.min_relay_fee_per_kb,
            db: RocksOptions::default(),
            p2p: None,
            masternode: None,
            media_cache_bytes: rusty_media::service::DEFAULT_CACHE_BYTES,
            media_upload_limit: 0,
            media_provider_policy: Default::default(),
            media_data_bind: Default::default(),
            inject_chain_panic: false,
            ui: None,
            playback_bind: Default::default(),
            metrics_bind: None,
            eth_rpc_bind: None,
            bridge_chains: Vec::new(),
            bridge_auto_accept: false,
            bridge_confirmations: None,
        }
    }
}

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("datadir {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] rusty_storage::StorageError),
    #[error(transparent)]
    Chain(#[from] rusty_core::chain::ChainError),
    #[error("wallet: {0}")]
    Wallet(#[from] rusty_core::wallet::WalletError),
    #[error("could not start the RPC server on {addr}: {source} (is another node using that port? try --rpc-bind)")]
    Rpc {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid RPC credentials: {0}")]
    RpcCredentials(String),
    #[error("mining needs a payout address: enable the wallet or pass --mine-address")]
    NoPayout,
    #[error("could not start a thread: {0}")]
    Thread(std::io::Error),
    #[error("network: {0}")]
    Network(#[from] rusty_network::NetworkError),
    #[error("media: {0}")]
    Media(#[from] rusty_media::service::MediaError),
    #[error(transparent)]
    Ui(#[from] crate::ui::UiError),
    #[error("could not serve metrics: {0}")]
    Metrics(std::io::Error),
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    handle: ChainHandle,
    rpc: jsonrpsee::server::ServerHandle,
    rpc_addr: SocketAddr,
    /// The unauthenticated Ethereum JSON-RPC server (`--eth-rpc-bind`).
    eth_rpc: Option<jsonrpsee::server::ServerHandle>,
    cookie: Option<PathBuf>,
    stop_rx: watch::Receiver<bool>,
    chain_thread: Option<JoinHandle<()>>,
    miner_thread: Option<JoinHandle<()>>,
    miner_shutdown: Arc<AtomicBool>,
    p2p: Option<P2pHandle>,
    /// Supervision and the one shutdown token.
    tasks: TaskManager,
}

impl Node {
    /// Opens the datadir and starts every service.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        let dir = &config.data_dir;
        let io = |source| NodeError::DataDir {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        // The HTTP listeners first: a taken port or a refused public bind
        // fails before anything else has started (and a caller may try
        // again at once: nothing is left to close).
        let rpc_listener = tokio::net::TcpListener::bind(config.rpc_bind)
            .await
            .map_err(|source| NodeError::Rpc {
                addr: config.rpc_bind,
                source,
            })?;
        let metrics_listener = match config.metrics_bind {
            Some(bind) => Some(
                crate::metrics::bind(bind)
                    .await
                    .map_err(NodeError::Metrics)?,
            ),
            None => None,
        };
        let ui_listener = match &config.ui {
            Some(ui) => Some(crate::ui::bind(ui, config.rpc_user.is_some()).await?),
            None => None,
        };
        // Without the UI, playback alone (a node without media serves
        // nothing to play).
        let playback_listener = match config.playback_bind.address() {
            Some(addr) if config.ui.is_none() && config.p2p.is_some() => {
                let bind_err = |source| crate::ui::UiError::PlaybackBind { addr, source };
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(bind_err)?;
                let bound = listener.local_addr().map_err(bind_err)?;
                Some((listener, bound))
            }
            _ => None,
        };
        let params = config.network.params();
        let db =
            Database::open_rocksdb(&dir.join("db"), TABLES, SCHEMA_VERSION, config.db.clone())?;
        let now = rusty_core::now();
        let (chain, _events) = Chain::open(db, params, now)?;
        let mempool = Mempool::new(config.mempool_max_bytes, config.min_relay_fee_per_kb);
        let wallet = if config.wallet {
            let w = Wallet::open_or_create(
                &dir.join("wallets").join("default"),
                config.network,
                &config.wallet_passphrase,
                config.create_wallet,
                config.wallet_kdf,
            )?;
            if w.is_none() {
                warn!(target: "wallet", "no wallet in the datadir; start with --create-wallet (or --dev) to make one");
            }
            w
        } else {
            None
        };
        let mut state = NodeState::new(chain, mempool, wallet);
        let mempool_file = dir.join("mempool.dat");
        state.load_mempool(&mempool_file);
        state.set_mempool_file(mempool_file);

        let payout = if config.mine {
            match (&config.mine_address, state.wallet_mut()) {
                (Some(a), _) => Some(*a),
                (None, Some(w)) => Some(w.new_address()?),
                (None, None) => return Err(NodeError::NoPayout),
            }
        } else {
            None
        };

        let tasks = TaskManager::new();
        let executor = tasks.executor();
        let mut metrics = crate::metrics::Metrics::new();
        let (handle, chain_loop) = chain_service(state);
        let chain_loop = chain_loop.with_metrics(metrics.chain.clone());
        let chain_thread = executor
            .spawn_critical_thread("chain", move || chain_loop.run())
            .map_err(NodeError::Thread)?;

        // The bridge needs P2P (messages) and a wallet (its own chain's
        // HTLCs); it starts once the RPC its own adapter calls is up.
        let bridge = (config.p2p.is_some() && config.wallet).then(crate::bridge::service::channel);
        let p2p = match &config.p2p {
            Some(net_config) => {
                let mut net_config = net_config.clone();
                net_config.chain = config.network.name().to_owned();
                net_config.max_block_size = params.max_block_size;
                let media_data_bind = config.media_data_bind.resolve(&net_config.listen);
                let (net, events) =
                    match rusty_network::start_with_metrics(net_config, metrics.libp2p_registry())
                        .await
                    {
                        Ok(x) => x,
                        Err(e) => {
                            tasks.cancel();
                            handle.shutdown().await;
                            let _ = tokio::task::spawn_blocking(move || chain_thread.join()).await;
                            return Err(e.into());
                        }
                    };
                let media_config = rusty_media::service::MediaConfig {
                    dir: dir.clone(),
                    cache_bytes: config.media_cache_bytes,
                    upload_limit: config.media_upload_limit,
                    provider_policy: config.media_provider_policy,
                    data_bind: media_data_bind,
                };
                let opened =
                    rusty_media::service::MediaHandle::open_task(&media_config, net.clone());
                let media = match opened {
                    Ok((m, task)) => {
                        // The media task owns the service's state: the
                        // node stops if it panics or ends early. It ends
                        // on `MediaHandle::stop` (see `Node::shutdown`).
                        executor.spawn_critical_graceful("media", task);
                        m
                    }
                    Err(e) => {
                        tasks.cancel();
                        net.shutdown().await;
                        handle.shutdown().await;
                        let _ = tokio::task::spawn_blocking(move || chain_thread.join()).await;
                        return Err(e.into());
                    }
                };
                media.spawn_reannounce();
                let p2p = crate::p2p::spawn(
                    &executor,
                    handle.clone(),
                    net,
                    events,
                    config.masternode.clone(),
                    Some(dir.clone()),
                    crate::p2p::Services {
                        media: Some(media),
                        bridge: bridge.as_ref().map(|b| b.0.clone()),
                    },
                );
                Some(p2p)
            }
            None => None,
        };

        let (auth, cookie) = match &config.rpc_user {
            Some((u, p)) => {
                let c = RpcCredentials::new(u.clone(), p.clone())
                    .map_err(|e| NodeError::RpcCredentials(e.to_string()))?;
                (RpcAuth::new().with(c), None)
            }
            None => {
                let c = rpc::http::write_cookie(dir).map_err(io)?;
                (RpcAuth::new().with(c), Some(rpc::http::cookie_path(dir)))
            }
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let miner_stats = payout.map(|_| Arc::new(MinerStats::default()));
        let ctx = RpcContext {
            chain: handle.clone(),
            network: config.network,
            stop: stop_tx,
            miner: miner_stats.clone(),
            mine_threads: config.mine_threads,
            wallet_fee_rate: config.wallet_fee_rate,
            p2p: p2p.clone(),
            operator: config.masternode.clone(),
            media: p2p.as_ref().and_then(|h| h.media.clone()),
            datadir: Some(dir.to_path_buf()),
            playback_base_url: ui_listener
                .as_ref()
                .or(playback_listener.as_ref())
                .map(|(_, addr)| format!("http://{addr}")),
            bridge: bridge.as_ref().map(|b| b.0.clone()),
            eth_filters: Default::default(),
        };
        let ctx = Arc::new(ctx);
        let module = rpc::build_module_shared(ctx.clone());
        // The web UI calls the same methods in-process.
        let methods: jsonrpsee::Methods = module.clone();
        let rpc_config = RpcConfig {
            bind: config.rpc_bind,
            auth: auth.clone(),
            max_body_bytes: 32 << 20,
            metrics: Some(metrics.rpc.clone()),
        };
        let (rpc, rpc_addr) =
            rpc::start_server_on(rpc_listener, &rpc_config, module).map_err(|source| {
                NodeError::Rpc {
                    addr: config.rpc_bind,
                    source,
                }
            })?;
        info!(target: "node", network = %config.network, rpc = %rpc_addr, datadir = %dir.display(), "node started");
        // The server runs its own tasks; a server that stops by itself
        // (not through shutdown) leaves the node unreachable: critical.
        let server = rpc.clone();
        executor.spawn_critical("rpc", async move { server.stopped().await });
        let mut eth_rpc = None;
        if let Some(bind) = config.eth_rpc_bind {
            let (eth, addr) =
                rpc::eth::start_eth_server(bind, ctx.clone(), Some(metrics.rpc.clone()))
                    .await
                    .map_err(|source| NodeError::Rpc { addr: bind, source })?;
            info!(target: "node", eth_rpc = %addr, "Ethereum JSON-RPC on http://{addr}");
            eth_rpc = Some(eth.clone());
            executor.spawn_critical("eth-rpc", async move { eth.stopped().await });
        }

        if let (Some((_, service)), Some(p2p)) = (bridge, p2p.as_ref()) {
            match bridge_config(&config, dir, rpc_addr, cookie.as_deref()) {
                Ok(bridge_config) => {
                    let (net, token) = (p2p.net.clone(), tasks.token());
                    executor.spawn_critical_graceful("bridge", async move {
                        service.run(bridge_config, net, token).await
                    });
                }
                Err(e) => warn!(target: "bridge", error = %e, "the bridge is off"),
            }
        }

        let metrics = Arc::new(metrics);
        if let Some((listener, addr)) = metrics_listener {
            info!(target: "node", metrics = %addr, "Prometheus metrics on http://{addr}/metrics");
            let token = tasks.token();
            let (metrics, ctx) = (metrics.clone(), ctx.clone());
            executor.spawn_critical("metrics", async move {
                let stop = async move { token.cancelled().await };
                if let Err(e) = crate::metrics::serve(listener, metrics, ctx, stop).await {
                    tracing::error!(target: "node", error = %e, "metrics server failed");
                }
            });
        }
        if let Some((listener, addr)) = playback_listener {
            info!(target: "node", playback = %addr, "media playback on http://{addr}/media/<id>/…");
            let token = tasks.token();
            let (ctx, auth) = (ctx.clone(), auth.clone());
            executor.spawn_critical("playback", async move {
                let stop = async move { token.cancelled().await };
                if let Err(e) = crate::ui::serve_playback(listener, ctx, auth, stop).await {
                    tracing::error!(target: "node", error = %e, "playback server failed");
                }
            });
        }
        if let (Some((listener, addr)), Some(ui)) = (ui_listener, &config.ui) {
            info!(target: "node", ui = %addr, "web UI on http://{addr}/");
            let token = tasks.token();
            let ui = ui.clone();
            let (module, ctx, auth) = (methods.clone(), ctx.clone(), auth.clone());
            executor.spawn_critical("ui", async move {
                let stop = async move { token.cancelled().await };
                if let Err(e) = crate::ui::serve(listener, &ui, module, ctx, auth, stop).await {
                    tracing::error!(target: "node", error = %e, "web UI server failed");
                }
            });
        }

        let miner_shutdown = Arc::new(AtomicBool::new(false));
        let miner_thread = match (payout, miner_stats) {
            (Some(payout), Some(stats)) => {
                let h = handle.clone();
                let stop = miner_shutdown.clone();
                let cfg = MinerConfig {
                    threads: config.mine_threads.max(1),
                    payout,
                    pace_to_spacing: params.pow_no_retargeting,
                };
                Some(
                    executor
                        .spawn_critical_thread("miner", move || Miner::run(h, cfg, stats, stop))
                        .map_err(NodeError::Thread)?,
                )
            }
            _ => None,
        };

        if let Some(m) = p2p.as_ref().and_then(|h| h.media.clone()) {
            if config.wallet {
                executor.spawn_critical(
                    "media_pay",
                    crate::media_pay::run(handle.clone(), m, config.wallet_fee_rate),
                );
            }
        }

        if config.inject_chain_panic && config.network.is_dev() {
            let h = handle.clone();
            tokio::spawn(async move { h.inject_panic().await });
        }

        Ok(Node {
            tasks,
            handle,
            rpc,
            rpc_addr,
            eth_rpc,
            cookie,
            stop_rx,
            chain_thread: Some(chain_thread),
            miner_thread,
            miner_shutdown,
            p2p,
        })
    }

    pub fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    pub fn handle(&self) -> &ChainHandle {
        &self.handle
    }

    /// The P2P side, when networking is on.
    pub fn p2p(&self) -> Option<&P2pHandle> {
        self.p2p.as_ref()
    }

    /// Path of the RPC cookie, when cookie auth is used.
    pub fn cookie_path(&self) -> Option<&Path> {
        self.cookie.as_deref()
    }

    /// Resolves when the `stop` RPC was called.
    pub async fn stopped_by_rpc(&self) {
        let mut rx = self.stop_rx.clone();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Resolves when the node should stop: `Ok` after the `stop` RPC, `Err`
    /// when a critical task panicked or ended (see [`crate::tasks`]).
    pub async fn wait(&self) -> Result<(), CriticalFailure> {
        tokio::select! {
            _ = self.stopped_by_rpc() => Ok(()),
            f = self.tasks.wait_for_failure() => Err(f),
        }
    }

    /// The critical failure that stopped (or is stopping) the node.
    pub fn failure(&self) -> Option<CriticalFailure> {
        self.tasks.failure()
    }

    /// Stops the miner, the RPC server and the chain service (which flushes
    /// the database), in that order.
    pub async fn shutdown(mut self) {
        info!(target: "node", "shutting down");
        // Supervised tasks stop at their next await point; their ends are
        // no longer failures.
        self.tasks.cancel();
        self.miner_shutdown
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.miner_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let _ = self.rpc.stop();
        self.rpc.clone().stopped().await;
        if let Some(eth) = &self.eth_rpc {
            let _ = eth.stop();
            eth.clone().stopped().await;
        }
        if let Some(p2p) = self.p2p.take() {
            if let Some(m) = &p2p.media {
                m.stop();
            }
            p2p.net.shutdown().await;
            // The content store closes when the last media task lets go.
            if let Some(m) = p2p.media {
                m.stop_and_wait(Duration::from_secs(5)).await;
            }
        }
        self.handle.shutdown().await;
        if let Some(t) = self.chain_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        if let Some(c) = &self.cookie {
            let _ = std::fs::remove_file(c);
        }
        info!(target: "node", "shutdown complete");
    }
}

/// A node dropped without [`Node::shutdown`] (a test ending, a panic) still
/// stops its threads and closes RocksDB before the process exits: RocksDB
/// aborts if the process tears down while its database is open.
impl Drop for Node {
    fn drop(&mut self) {
        self.tasks.cancel();
        self.miner_shutdown
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.miner_thread.take() {
            let _ = t.join();
        }
        let _ = self.rpc.stop();
        if let Some(eth) = &self.eth_rpc {
            let _ = eth.stop();
        }
        if let Some(p2p) = self.p2p.take() {
            if let Some(m) = &p2p.media {
                m.stop();
            }
        }
        if let Some(t) = self.chain_thread.take() {
            if self.handle.try_shutdown() {
                let _ = t.join();
            }
        }
        if let Some(c) = &self.cookie {
            let _ = std::fs::remove_file(c);
        }
    }
}

/// An Ethereum chain for the bridge, from `--bridge-chain eth:<id>=URL,key=PATH`.
fn eth_chain(
    c: &BridgeChain,
    chain_id: u64,
    dir: &std::path::Path,
    final_depth: u64,
) -> Result<crate::bridge::eth::EthChain, String> {
    use crate::bridge::eth::{EthChain, EthConfig};
    use rusty_crypto::eth::{parse_address, EthKey};
    let key_path = c
        .eth_key
        .as_ref()
        .ok_or_else(|| format!("{}: an Ethereum chain needs key=PATH", c.network))?;
    let text =
        std::fs::read_to_string(key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
    let key = EthKey::from_hex(&text).map_err(|e| format!("{}: {e}", key_path.display()))?;
    let contract = c
        .eth_contract
        .as_deref()
        .map(parse_address)
        .transpose()
        .map_err(|e| e.to_string())?;
    let state_dir = dir.join("bridge");
    std::fs::create_dir_all(&state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
    EthChain::new(EthConfig {
        chain_id,
        url: c.url.clone(),
        key,
        contract,
        state_dir,
        final_depth,
    })
}

/// The bridge's configuration: its key (`<datadir>/bridge.key`, made on
/// first start), this node's chain through its own RPC, and the other
/// chains' nodes from `--bridge-chain`.
fn bridge_config(
    config: &NodeConfig,
    dir: &std::path::Path,
    rpc_addr: SocketAddr,
    cookie: Option<&std::path::Path>,
) -> Result<crate::bridge::service::BridgeConfig, String> {
    use crate::bridge::adapter::{ChainAdapter, RpcChain};
    use crate::rpc::client::RpcClient;
    let key_path = dir.join("bridge.key");
    let key = match std::fs::read(&key_path) {
        Ok(bytes) => <[u8; 32]>::try_from(bytes)
            .map_err(|_| format!("{} is not a 32-byte key", key_path.display()))?,
        Err(_) => {
            let key: [u8; 32] = rand::random();
            std::fs::write(&key_path, key).map_err(|e| e.to_string())?;
            key
        }
    };
    use crate::bridge::networks::BridgeNetwork;
    let depth = |network: &str| {
        config.bridge_confirmations.unwrap_or_else(|| {
            network
                .parse::<BridgeNetwork>()
                .map_or(6, BridgeNetwork::final_depth)
        })
    };
    let mut chains: std::collections::HashMap<String, Arc<dyn ChainAdapter>> =
        std::collections::HashMap::new();
    let own_url = format!("http://{rpc_addr}");
    let mut own = RpcClient::new(&own_url).map_err(|e| e.to_string())?;
    own = match (cookie, &config.rpc_user) {
        (Some(path), _) => own.with_cookie_file(path).map_err(|e| e.to_string())?,
        (None, Some((u, p))) => own.with_basic_auth(u.clone(), p.clone()),
        (None, None) => own,
    };
    let name = config.network.name();
    chains.insert(
        name.to_string(),
        Arc::new(RpcChain::new(name, own, depth(name))),
    );
    for c in &config.bridge_chains {
        if let Ok(BridgeNetwork::Eth { chain_id }) = c.network.parse::<BridgeNetwork>() {
            let chain = eth_chain(c, chain_id, dir, depth(&c.network))?;
            chains.insert(c.network.clone(), Arc::new(chain));
            continue;
        }
        let chain = match &c.cookie {
            Some(path) => {
                RpcChain::with_cookie(&c.network, &c.url, path.clone(), depth(&c.network))
            }
            None => RpcClient::new(&c.url)
                .map(|client| RpcChain::new(&c.network, client, depth(&c.network))),
        }
        .map_err(|e| e.to_string())?;
        chains.insert(c.network.clone(), Arc::new(chain));
    }
    Ok(crate::bridge::service::BridgeConfig {
        dir: dir.join("bridge"),
        key: rusty_crypto::SecretKey::from_bytes(key),
        chains,
        auto_accept: config.bridge_auto_accept,
        step_interval: if config.network.is_dev() {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        },
    })
}
