//! A local network in one process: N dev nodes on loopback, wired to each
//! other, for trying things out (`rusty-cli localnet`) and for tests.
//!
//! Node `i` keeps its files in `<base_dir>/node<i>/dev/` (the usual
//! `<datadir>/<network>` layout, so `rusty-cli --dev --datadir
//! <base_dir>/node<i>` finds its cookie), serves RPC on `127.0.0.1` and
//! listens for peers on `/ip4/127.0.0.1/tcp/<port>` only, without mDNS.
//! Nodes start one after another; each one's bootnodes are the addresses of
//! every node started before it, so the network is connected from the start.
//! The first `miners` nodes mine. The last `masternodes` nodes run as
//! masternodes, each with an operator key kept in `<base_dir>/node<i>/
//! operator.key`; [`MasternodeSetup`] funds and registers them from node 0's
//! wallet, one idempotent step at a time.

use std::{
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    pin::Pin,
    task::Poll,
};

use rusty_crypto::{bls, keystore::KdfParams};
use rusty_network::{peers::without_peer_id, Multiaddr, NetworkConfig, PeerId};
use rusty_shared_types::{Amount, Hash256, Network};
use tracing::info;

use crate::node::{Node, NodeConfig, NodeError};

/// What to start.
#[derive(Debug, Clone)]
pub struct LocalNetConfig {
    /// Nodes started by [`LocalNet::start`].
    pub nodes: usize,
    /// The first `miners` nodes mine (a dev block every 2 s between them).
    pub miners: usize,
    /// Node `i` lives in `<base_dir>/node<i>`.
    pub base_dir: PathBuf,
    /// RPC of node `i` on `base + i`; `None`: a free port each.
    pub rpc_base_port: Option<u16>,
    /// P2P of node `i` on `base + i`; `None`: a free port each.
    pub p2p_base_port: Option<u16>,
    /// Miner threads per mining node.
    pub mine_threads: usize,
    /// The last `masternodes` nodes are masternodes.
    pub masternodes: usize,
    /// Media upload limit of node `i`, bytes per second (missing or 0:
    /// none), as `--media-upload-limit`.
    pub upload_limits: Vec<u64>,
    /// Every node's media data channel, as `--media-data-bind` (the
    /// default: beside each node's P2P listener).
    pub media_data_bind: rusty_media::service::DataBind,
    /// The network (a dev network: `dev`, `par-dev`, `arc-dev`).
    pub network: Network,
    /// Other chains' nodes the bridge of node `i` swaps on.
    pub bridge_chains: Vec<Vec<crate::node::BridgeChain>>,
    /// Nodes from this index on accept every swap offer they can carry out.
    pub bridge_auto_accept_from: Option<usize>,
    /// Every node's `--bridge-confirmations`.
    pub bridge_confirmations: Option<u64>,
}

impl LocalNetConfig {
    /// `nodes` nodes under `base_dir` on free ports, none mining.
    pub fn new(base_dir: impl Into<PathBuf>, nodes: usize) -> Self {
        LocalNetConfig {
            nodes,
            miners: 0,
            base_dir: base_dir.into(),
            rpc_base_port: None,
            p2p_base_port: None,
            mine_threads: 1,
            masternodes: 0,
            upload_limits: Vec::new(),
            media_data_bind: Default::default(),
            network: Network::Dev,
            bridge_chains: Vec::new(),
            bridge_auto_accept_from: None,
            bridge_confirmations: None,
        }
    }

    /// Whether node `i` runs as a masternode.
    pub fn is_masternode(&self, i: usize) -> bool {
        i < self.nodes && i >= self.nodes.saturating_sub(self.masternodes)
    }

    /// The operator key of masternode `i`: read from `operator.key` in its
    /// datadir, or made and written there on first use.
    pub fn operator_key(&self, i: usize) -> Result<bls::SecretKey, LocalNetError> {
        let path = self.node_dir(i).join("operator.key");
        let io = |e: std::io::Error| LocalNetError::OperatorKey {
            path: path.clone(),
            reason: e.to_string(),
        };
        if let Ok(text) = std::fs::read_to_string(&path) {
            let bytes: [u8; 32] = hex::decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| LocalNetError::OperatorKey {
                    path: path.clone(),
                    reason: "not 64 hex characters".into(),
                })?;
            return bls::SecretKey::from_bytes(&bytes).map_err(|e| LocalNetError::OperatorKey {
                path: path.clone(),
                reason: e.to_string(),
            });
        }
        let key = bls::SecretKey::generate(&mut rand::rngs::OsRng);
        rusty_crypto::keystore::write_private(&path, hex::encode(key.to_bytes()).as_bytes())
            .map_err(io)?;
        Ok(key)
    }

    /// The root datadir of node `i` (`--datadir` for `rusty-cli`).
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.base_dir.join(format!("node{i}"))
    }

    /// The configuration of node `i` on its ports (numbered from the base
    /// ports), dialing `bootnodes` at start. It mines when `i < miners`.
    pub fn node_config(
        &self,
        i: usize,
        bootnodes: Vec<Multiaddr>,
    ) -> Result<NodeConfig, LocalNetError> {
        let rpc_port = nth_port(self.rpc_base_port, i)?;
        let p2p_port = nth_port(self.p2p_base_port, i)?;
        let network = self.network;
        let data_dir = self.node_dir(i).join(network.name());
        let mut c = NodeConfig::new(network, data_dir.clone());
        c.rpc_bind = SocketAddr::from(([127, 0, 0, 1], rpc_port));
        c.mine = i < self.miners;
        c.mine_threads = self.mine_threads.max(1);
        c.create_wallet = true;
        c.media_upload_limit = self.upload_limits.get(i).copied().unwrap_or(0);
        c.media_data_bind = self.media_data_bind;
        c.bridge_chains = self.bridge_chains.get(i).cloned().unwrap_or_default();
        c.bridge_auto_accept = self.bridge_auto_accept_from.is_some_and(|from| i >= from);
        c.bridge_confirmations = self.bridge_confirmations;
        // Throwaway dev wallets with an empty passphrase: a slow KDF would
        // only slow the start down.
        c.wallet_kdf = KdfParams::insecure_fast_for_tests();
        let mut net = NetworkConfig::new(network.name(), Some(data_dir), p2p_port);
        net.listen = vec![loopback_tcp(p2p_port)];
        net.mdns = false;
        net.bootnodes = bootnodes;
        c.p2p = Some(net);
        if self.is_masternode(i) {
            c.masternode = Some(crate::llmq::Operator {
                key: self.operator_key(i)?,
            });
        }
        Ok(c)
    }
}

/// Tries to bind a restarted node's old RPC port before taking any free
/// one.
const RESTART_RPC_ATTEMPTS: u32 = 10;

/// Starts a stopped node again. Its RPC port may be taken for a moment,
/// by its own listener still closing, or for longer, by an outgoing
/// connection of another process that the kernel gave the freed port (the
/// ports come from the ephemeral range): after a few tries on the old
/// port it takes any free one, as the node's address is read from it.
/// The node's RPC bind fails before anything else starts, so a try
/// leaves nothing open.
async fn start_again(mut config: NodeConfig) -> Result<(Node, NodeConfig), NodeError> {
    let mut attempt = 0;
    loop {
        match Node::start(config.clone()).await {
            Ok(node) => return Ok((node, config)),
            Err(NodeError::Rpc { addr, source })
                if source.kind() == std::io::ErrorKind::AddrInUse
                    && config.rpc_bind.port() != 0 =>
            {
                attempt += 1;
                if attempt < RESTART_RPC_ATTEMPTS {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                } else {
                    tracing::warn!(target: "localnet", %addr, "the RPC port stays taken; restarting on another");
                    config.rpc_bind.set_port(0);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// `/ip4/127.0.0.1/tcp/<port>`.
fn loopback_tcp(port: u16) -> Multiaddr {
    format!("/ip4/127.0.0.1/tcp/{port}")
        .parse()
        .expect("a valid multiaddr")
}

/// `base + i`, or 0 (any free port) without a base.
fn nth_port(base: Option<u16>, i: usize) -> Result<u16, LocalNetError> {
    let Some(base) = base else { return Ok(0) };
    u16::try_from(i)
        .ok()
        .and_then(|i| base.checked_add(i))
        .ok_or(LocalNetError::PortRange { base, index: i })
}

/// Why a local network (or one of its nodes) could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalNetError {
    /// Node `index` failed to start.
    #[error("node {index}: {source}")]
    Node {
        index: usize,
        #[source]
        source: NodeError,
    },
    /// A masternode's operator key file is unusable.
    #[error("operator key {path}: {reason}")]
    OperatorKey { path: PathBuf, reason: String },
    /// Funding or registering a masternode failed.
    #[error("masternode setup: {0}")]
    Setup(String),
    /// A wait of the test kit ran out of time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// `base + index` is not a port.
    #[error("node {index} would need port {base} + {index}, past 65535: use a lower base port")]
    PortRange { base: u16, index: usize },
}

/// Running local nodes; [`LocalNet::shutdown`] stops them.
#[derive(Debug)]
pub struct LocalNet {
    config: LocalNetConfig,
    nodes: Vec<Node>,
    /// How each node was started, with the ports actually bound, so that a
    /// restart comes back on the addresses the other nodes know.
    configs: Vec<NodeConfig>,
}

impl LocalNet {
    /// Starts `config.nodes` nodes, one after another. On error the nodes
    /// already started are stopped again.
    pub async fn start(config: LocalNetConfig) -> Result<LocalNet, LocalNetError> {
        let mut net = LocalNet {
            config: config.clone(),
            nodes: Vec::new(),
            configs: Vec::new(),
        };
        for i in 0..config.nodes {
            let started = match net.config.node_config(i, net.listen_addrs_except(None)) {
                Ok(c) => net.launch(i, c).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = started {
                net.shutdown().await;
                return Err(e);
            }
        }
        Ok(net)
    }

    /// Starts one more node, with index [`LocalNet::len`], bootstrapping
    /// from every running node.
    pub async fn add_node(&mut self, mine: bool) -> Result<&Node, LocalNetError> {
        let i = self.nodes.len();
        let mut c = self.config.node_config(i, self.listen_addrs_except(None))?;
        c.mine = mine;
        self.launch(i, c).await
    }

    /// Starts a node and inserts it at `index`.
    async fn launch(&mut self, index: usize, config: NodeConfig) -> Result<&Node, LocalNetError> {
        let node = Node::start(config.clone())
            .await
            .map_err(|source| LocalNetError::Node { index, source })?;
        Ok(self.adopt(index, node, config))
    }

    /// Inserts a started node at `index`, with the configuration that
    /// starts it again (its actual ports).
    fn adopt(&mut self, index: usize, node: Node, mut config: NodeConfig) -> &Node {
        config.rpc_bind = node.rpc_addr();
        if let (Some(net), Some(p2p)) = (config.p2p.as_mut(), node.p2p()) {
            net.listen = p2p.net.listen_addrs().iter().map(without_peer_id).collect();
        }
        info!(
            target: "localnet",
            node = index,
            rpc = %node.rpc_addr(),
            peer_id = %node.p2p().map(|p| p.net.peer_id().to_string()).unwrap_or_default(),
            mining = config.mine,
            "node started"
        );
        self.nodes.insert(index, node);
        self.configs.insert(index, config);
        &self.nodes[index]
    }

    /// The listen addresses (with `/p2p/`) of every node but `except`.
    fn listen_addrs_except(&self, except: Option<usize>) -> Vec<Multiaddr> {
        (0..self.nodes.len())
            .filter(|&j| Some(j) != except)
            .flat_map(|j| self.listen_addrs(j))
            .collect()
    }

    pub fn config(&self) -> &LocalNetConfig {
        &self.config
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every node, in start order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Node `i`. Panics if there is no such node, like slice indexing.
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// `http://127.0.0.1:<port>` of node `i`.
    pub fn rpc_url(&self, i: usize) -> String {
        format!("http://{}", self.nodes[i].rpc_addr())
    }

    /// The RPC cookie of node `i` (`<base_dir>/node<i>/dev/.cookie`).
    pub fn cookie_path(&self, i: usize) -> PathBuf {
        crate::rpc::http::cookie_path(&self.configs[i].data_dir)
    }

    /// The network directory of node `i` (`<base_dir>/node<i>/dev`).
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.configs[i].data_dir
    }

    pub fn peer_id(&self, i: usize) -> Option<PeerId> {
        self.nodes[i].p2p().map(|p| p.net.peer_id())
    }

    /// Where node `i` listens for peers, with its `/p2p/` id.
    pub fn listen_addrs(&self, i: usize) -> Vec<Multiaddr> {
        self.nodes[i]
            .p2p()
            .map(|p| p.net.listen_addrs())
            .unwrap_or_default()
    }

    /// The configuration that starts node `i` again on the same datadir
    /// and ports, with every other running node as a bootnode: for tests
    /// that stop a node and start it again themselves.
    pub fn node_config(&self, i: usize) -> NodeConfig {
        let mut c = self.configs[i].clone();
        if let Some(net) = c.p2p.as_mut() {
            net.bootnodes = self.listen_addrs_except(Some(i));
        }
        c
    }

    /// Stops node `i` and starts it again with [`LocalNet::node_config`].
    /// `clean = false` drops it instead of the orderly shutdown (no final
    /// peer-store or mempool save; the database is still closed, as for
    /// any dropped node). If it does not come back, the error says why and
    /// the node is gone from the net: later nodes move down one index.
    pub async fn restart_node(&mut self, i: usize, clean: bool) -> Result<&Node, LocalNetError> {
        let config = self.node_config(i);
        let node = self.nodes.remove(i);
        self.configs.remove(i);
        if clean {
            node.shutdown().await;
        } else {
            drop(node);
        }
        let (node, config) = start_again(config)
            .await
            .map_err(|source| LocalNetError::Node { index: i, source })?;
        Ok(self.adopt(i, node, config))
    }

    /// Resolves with the index of the first node whose `stop` RPC was
    /// called; never resolves when there are no nodes.
    pub async fn stopped_by_rpc(&self) -> usize {
        type Wait<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
        let mut waits: Vec<Wait<'_>> = self
            .nodes
            .iter()
            .map(|n| Box::pin(n.stopped_by_rpc()) as Wait<'_>)
            .collect();
        std::future::poll_fn(|cx| {
            for (i, w) in waits.iter_mut().enumerate() {
                if w.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(i);
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Stops every node, the last started first.
    pub async fn shutdown(mut self) {
        while let Some(node) = self.nodes.pop() {
            node.shutdown().await;
        }
    }
}

/// Funds and registers the masternodes of a [`LocalNet`] from node 0's
/// wallet. Each [`MasternodeSetup::step`] does what can be done now: send a
/// masternode node the collateral and fees once node 0 has mature coins,
/// then register it from its own wallet once those coins confirm. Blocks
/// must keep coming (miners, or a test mining between steps).
#[derive(Debug, Default)]
pub struct MasternodeSetup {
    funded: std::collections::HashSet<usize>,
    registered: std::collections::HashMap<usize, Hash256>,
}

/// What node `i` sends each masternode node: collateral plus fees.
fn funding(params: &rusty_shared_types::ChainParams) -> Amount {
    params
        .masternode
        .collateral
        .checked_add(Amount::from_coins_const(1))
        .unwrap_or(params.masternode.collateral)
}

impl MasternodeSetup {
    /// Registrations sent so far, by node index.
    pub fn registered(&self) -> &std::collections::HashMap<usize, Hash256> {
        &self.registered
    }

    /// One round of funding and registration; returns how many masternodes
    /// are registered on node 0's chain.
    pub async fn step(&mut self, net: &LocalNet) -> Result<usize, LocalNetError> {
        let setup = |e: String| LocalNetError::Setup(e);
        let mns: Vec<usize> = (0..net.len())
            .filter(|&i| net.config.is_masternode(i))
            .collect();
        for &i in &mns {
            if self.registered.contains_key(&i) {
                continue;
            }
            let operator = net.config.operator_key(i)?.public_key().to_bytes();
            let Some(service) = net.listen_addrs(i).into_iter().next() else {
                return Err(setup(format!("node {i} has no listen address")));
            };
            let service = service.to_string();
            let node = net.node(i).handle();
            // Register once its own wallet has confirmed coins.
            let reg = rusty_core::state::Registration {
                operator_key: operator,
                service,
                operator_reward_bps: 0,
                payout: None,
            };
            // Already registered, or not funded yet: read first, then ask
            // the wallet to register in its own command.
            let known = node
                .query(move |s| {
                    if let Some(e) = s.chain().mn().by_operator_key(&operator) {
                        return (Some(e.pro_tx_hash), true);
                    }
                    let params = s.params();
                    let confirmed = s
                        .wallet()
                        .map(|w| {
                            w.balances(s.chain().height(), params.coinbase_maturity, s.mempool())
                                .trusted
                        })
                        .unwrap_or(Amount::ZERO);
                    (None, confirmed >= funding(params))
                })
                .await
                .map_err(|_| setup("chain service stopped".into()))?;
            let result = match known {
                (Some(pro), _) => Some(pro),
                (None, false) => None,
                (None, true) => {
                    let fee_rate = node.params().min_relay_fee_per_kb.saturating_mul(2);
                    let registered = node
                        .register_masternode(reg, fee_rate)
                        .await
                        .map_err(|_| setup("chain service stopped".into()))?
                        .map_err(|e| setup(format!("registering node {i}: {e}")))?;
                    Some(registered.pro_tx_hash)
                }
            };
            if let Some(pro) = result {
                info!(target: "localnet", node = i, pro_tx_hash = %pro, "masternode registered");
                self.registered.insert(i, pro);
                continue;
            }
            if self.funded.contains(&i) {
                continue;
            }
            let to = node
                .new_address()
                .await
                .map_err(|_| setup("chain service stopped".into()))?
                .map_err(|e| setup(format!("node {i}: {e}")))?;
            let funder = net.node(0).handle();
            let params = funder.params();
            let fee_rate = params.min_relay_fee_per_kb.saturating_mul(2);
            let sent = funder
                .send_to_address(to, funding(params), fee_rate)
                .await
                .map_err(|_| setup("chain service stopped".into()))?;
            match sent {
                Ok(txid) => {
                    info!(target: "localnet", node = i, %txid, "funded masternode collateral");
                    self.funded.insert(i);
                }
                // Node 0 has no mature coins yet: try again next step.
                Err(rusty_core::state::SendError::Wallet(_)) => {}
                Err(e) => return Err(setup(format!("funding node {i}: {e}"))),
            }
        }
        let count = net
            .node(0)
            .handle()
            .query(|s| s.chain().mn().len())
            .await
            .map_err(|_| setup("chain service stopped".into()))?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_configs_follow_the_layout() {
        let mut cfg = LocalNetConfig::new("/tmp/ln", 3);
        cfg.miners = 1;
        cfg.rpc_base_port = Some(28500);
        cfg.p2p_base_port = Some(28600);
        let boot: Multiaddr = "/ip4/127.0.0.1/tcp/28600".parse().expect("static");
        let c0 = cfg.node_config(0, Vec::new()).expect("config");
        let c2 = cfg.node_config(2, vec![boot.clone()]).expect("config");
        assert_eq!(c0.network, Network::Dev);
        assert_eq!(c0.data_dir, PathBuf::from("/tmp/ln/node0/dev"));
        assert_eq!(cfg.node_dir(2), PathBuf::from("/tmp/ln/node2"));
        assert_eq!(c2.rpc_bind, "127.0.0.1:28502".parse().expect("static"));
        assert!(c0.mine && !c2.mine);
        assert!(c0.create_wallet && c0.wallet);
        let net = c2.p2p.expect("p2p on");
        assert_eq!(net.listen[0].to_string(), "/ip4/127.0.0.1/tcp/28602");
        assert_eq!(net.listen.len(), 1);
        assert_eq!(net.bootnodes, vec![boot]);
        assert!(!net.mdns);
        assert_eq!(net.data_dir, Some(PathBuf::from("/tmp/ln/node2/dev")));

        // Without base ports every node takes a free one.
        let cfg = LocalNetConfig::new("/tmp/ln", 2);
        let c = cfg.node_config(1, Vec::new()).expect("config");
        assert_eq!(c.rpc_bind.port(), 0);
        assert_eq!(c.p2p.expect("p2p").listen, vec![loopback_tcp(0)]);
        assert!(!c.mine);
    }

    #[test]
    fn ports_past_the_range_are_an_error() {
        let mut cfg = LocalNetConfig::new("/tmp/ln", 3);
        cfg.rpc_base_port = Some(65534);
        assert!(cfg.node_config(1, Vec::new()).is_ok());
        let err = cfg.node_config(2, Vec::new()).expect_err("past 65535");
        assert!(err.to_string().contains("65535"), "{err}");
    }

    /// Two nodes on free ports find each other through the bootnode list,
    /// and a third added later joins them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_connect_over_loopback() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut net = LocalNet::start(LocalNetConfig::new(dir.path(), 2))
            .await
            .expect("localnet starts");
        assert_eq!(net.len(), 2);
        assert!(net.cookie_path(1).exists());
        assert_eq!(net.data_dir(1), dir.path().join("node1").join("dev"));
        assert!(net.rpc_url(0).starts_with("http://127.0.0.1:"));
        net.add_node(false).await.expect("third node");
        let p0 = net.peer_id(0).expect("p2p on");
        for i in 1..3 {
            let p2p = net.node(i).p2p().expect("p2p on");
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let peers = p2p.net.peers().await.expect("network running");
                if peers.iter().any(|p| p.peer_id == p0) {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "node {i} did not connect to node 0"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        // A restart keeps the datadir (and so the peer id) and the ports.
        let rpc = net.rpc_url(1);
        let p1 = net.peer_id(1);
        net.restart_node(1, true).await.expect("restart");
        assert_eq!(net.rpc_url(1), rpc);
        assert_eq!(net.peer_id(1), p1);
        net.shutdown().await;
        assert!(!dir
            .path()
            .join("node0")
            .join("dev")
            .join(".cookie")
            .exists());
    }
}
