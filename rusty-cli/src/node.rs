//! `rusty-cli node` and `rusty-cli bench`.

use std::{future::Future, net::SocketAddr, path::Path};

use anyhow::{Context, Result};
use rusty_network::{Multiaddr, NetworkConfig};
use rusty_node::{
    llmq::Operator,
    node::{Node, NodeConfig},
};
use rusty_shared_types::{Address, Network};

use crate::args::{BenchCommand, GlobalArgs, NodeArgs, P2pArgs};

pub(crate) fn init_logging() {
    // gossipsub warns about our own duplicate publishes (a ChainLock two
    // nodes recovered at once): noise for operators, so errors only unless
    // RUST_LOG asks.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p_gossipsub=error"));
    // A log line that cannot be written (stderr on a full disk) is lost,
    // never a panic: by default tracing-subscriber reports such a failure
    // with `eprintln!`, which panics when stderr is what failed, and took
    // down whichever task was logging (found by `rusty-cli chaos`).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .try_init();
}

/// Node settings: defaults for the network, then the config file, then
/// flags.
pub fn build_config(g: &GlobalArgs, a: &NodeArgs) -> Result<NodeConfig> {
    let network = g.network();
    let dir = g.network_dir();
    let file = match &a.config {
        Some(path) => FileConfig::load(path)?,
        None => {
            let path = dir.join("config.toml");
            if path.exists() {
                FileConfig::load(&path)?
            } else {
                FileConfig::default()
            }
        }
    };
    let mut c = NodeConfig::new(network, dir);
    c.p2p = p2p_config(network, &c.data_dir, &a.p2p, &file)?;
    if a.p2p.inject_panic.is_some() {
        if !network.is_dev() {
            anyhow::bail!("--inject-panic is a test of the dev network only");
        }
        c.inject_chain_panic = true;
    }
    if let Some(secs) = a.p2p.clock_skew {
        if !network.is_dev() {
            anyhow::bail!("--clock-skew is a test of the dev network only");
        }
        rusty_core::set_clock_skew(secs);
    }
    c.masternode = masternode_config(a, &file, c.p2p.is_some())?;
    if let Some(mb) = a.media_cache_size.or(file.media_cache_size) {
        c.media_cache_bytes = mb.checked_mul(1 << 20).ok_or_else(|| {
            anyhow::anyhow!("--media-cache-size (media_cache_size) {mb} MB is too large")
        })?;
    }
    if let Some(kbps) = a.media_upload_limit.or(file.media_upload_limit) {
        c.media_upload_limit = kbps.checked_mul(1000).ok_or_else(|| {
            anyhow::anyhow!("--media-upload-limit (media_upload_limit) {kbps} KB/s is too large")
        })?;
    }
    if let Some(policy) = a.media_provider_policy.or(file.media_provider_policy) {
        c.media_provider_policy = policy;
    }
    if let Some(bind) = flag_or_file(a.media_data_bind, &file.media_data_bind, "media_data_bind")? {
        c.media_data_bind = bind;
    }
    if let Some(bind) = flag_or_file(a.playback_bind, &file.playback_bind, "playback_bind")? {
        c.playback_bind = bind;
    }
    if let Some(bind) = a.rpc_bind.or(file.rpc_bind) {
        c.rpc_bind = bind;
    }
    let (ui_port, metrics_port) = http_ports(network);
    if let Some(bind) = a.ui_bind.clone().or(file.ui_bind.clone()) {
        let mut allow_hosts = a.ui_allow_host.clone();
        allow_hosts.extend(file.ui_allow_host.clone().unwrap_or_default());
        c.ui = Some(rusty_node::ui::UiConfig {
            bind: parse_http_bind(&bind, ui_port).context("--ui-bind (ui_bind)")?,
            allow_hosts,
        });
    }
    c.bridge_auto_accept = a.bridge_auto_accept;
    c.bridge_confirmations = a.bridge_confirmations;
    for spec in &a.bridge_chain {
        c.bridge_chains
            .push(parse_bridge_chain(spec).context("--bridge-chain")?);
    }
    if let Some(bind) = a.eth_rpc_bind.clone().or(file.eth_rpc_bind.clone()) {
        c.eth_rpc_bind = Some(
            parse_http_bind(&bind, eth_rpc_port(network))
                .context("--eth-rpc-bind (eth_rpc_bind)")?,
        );
    }
    if let Some(bind) = a.metrics_bind.clone().or(file.metrics_bind.clone()) {
        c.metrics_bind =
            Some(parse_http_bind(&bind, metrics_port).context("--metrics-bind (metrics_bind)")?);
    }
    let user = g.rpc_user.clone().or(file.rpc_user);
    let password = g.rpc_password.clone().or(file.rpc_password);
    match (user, password) {
        (Some(u), Some(p)) => c.rpc_user = Some((u, p)),
        (None, None) => {}
        _ => anyhow::bail!("rpc user and password go together (--rpc-user/--rpc-password or rpc_user/rpc_password)"),
    }
    c.mine = if a.no_mine {
        false
    } else {
        a.mine || file.mine.unwrap_or(g.dev)
    };
    c.mine_threads = a.mine_threads.or(file.mine_threads).unwrap_or(1).max(1);
    if let Some(s) = a.mine_address.clone().or(file.mine_address) {
        c.mine_address =
            Some(Address::parse_for(&s, network).with_context(|| format!("mine address {s}"))?);
    }
    c.wallet = !a.no_wallet && file.wallet.unwrap_or(true);
    c.create_wallet = a.create_wallet || file.create_wallet.unwrap_or(network.is_dev());
    if let Some(f) = a
        .wallet_passphrase_file
        .clone()
        .or(file.wallet_passphrase_file)
    {
        let text = std::fs::read_to_string(&f)
            .with_context(|| format!("reading the wallet passphrase file {}", f.display()))?;
        c.wallet_passphrase = text.trim_end_matches(['\r', '\n']).to_string();
    }
    if let Some(rate) = file.wallet_fee_rate {
        c.wallet_fee_rate = rate;
    }
    let mempool_mb = a.max_mempool.or(file.max_mempool).unwrap_or(300);
    c.mempool_max_bytes = mempool_mb.saturating_mul(1 << 20);
    c.db.sync_writes = a.sync_writes || file.sync_writes.unwrap_or(false);
    Ok(c)
}

/// The operator identity: `--masternode --operator-key FILE` (clap makes
/// the flag need the key) or `masternode = true` with `operator_key`.
fn masternode_config(a: &NodeArgs, file: &FileConfig, p2p: bool) -> Result<Option<Operator>> {
    let on = a.masternode || file.masternode == Some(true);
    let path = a.operator_key.clone().or_else(|| file.operator_key.clone());
    let Some(path) = path else {
        if on {
            anyhow::bail!(
                "masternode = true needs the operator key: --operator-key FILE or \
                 operator_key = \"FILE\" (make one with `rusty-cli masternode genkey --out FILE`)"
            );
        }
        return Ok(None);
    };
    if !on {
        // `masternode = false` in the file switches a configured key off.
        if file.masternode == Some(false) && a.operator_key.is_none() {
            return Ok(None);
        }
        anyhow::bail!(
            "an operator key is given (--operator-key or operator_key) but the node is not a \
             masternode: add --masternode (or masternode = true)"
        );
    }
    let key = crate::masternode::read_operator_key(&path)?;
    if !p2p {
        anyhow::bail!(
            "--masternode needs P2P networking to reach the other quorum members: drop \
             --no-network (or p2p = false)"
        );
    }
    Ok(Some(Operator { key }))
}

/// The network settings: defaults for the network (both transports on all
/// interfaces at its P2P port; mDNS on dev), then the file, then flags.
/// `None` with `--no-network` or `p2p = false`.
fn p2p_config(
    network: Network,
    dir: &Path,
    a: &P2pArgs,
    file: &FileConfig,
) -> Result<Option<NetworkConfig>> {
    if a.no_network || !file.p2p.unwrap_or(true) {
        return Ok(None);
    }
    let port = network.params().p2p_port;
    let mut n = NetworkConfig::new(network.name(), Some(dir.to_path_buf()), port);
    let listen_example = format!("/ip4/0.0.0.0/tcp/{port}");
    let peer_example = format!("/ip4/192.0.2.1/tcp/{port}/p2p/12D3KooW…");
    if !a.listen.is_empty() {
        n.listen = parse_addrs("--listen", &a.listen, &listen_example)?;
    } else if let Some(l) = &file.listen {
        n.listen = parse_addrs("config file: listen", l, &listen_example)?;
    }
    if !a.bootnodes.is_empty() {
        n.bootnodes = parse_addrs("--bootnode", &a.bootnodes, &peer_example)?;
    } else if let Some(b) = &file.bootnodes {
        n.bootnodes = parse_addrs("config file: bootnodes", b, &peer_example)?;
    }
    n.max_peers = a.max_peers.or(file.max_peers).unwrap_or(n.max_peers);
    if n.max_peers == 0 {
        anyhow::bail!(
            "--max-peers (max_peers) must be at least 1; to run without peers use --no-network"
        );
    }
    n.mdns = !a.no_mdns && file.mdns.unwrap_or(n.mdns);
    let external_example = format!("/ip4/203.0.113.5/tcp/{port}");
    if !a.external_addrs.is_empty() {
        n.external_addrs = parse_addrs("--external-addr", &a.external_addrs, &external_example)?;
    } else if let Some(e) = &file.external_addrs {
        n.external_addrs = parse_addrs("config file: external_addrs", e, &external_example)?;
    }
    n.relay_server = a
        .relay_server
        .or(file.relay_server)
        .unwrap_or(n.relay_server);
    Ok(Some(n))
}

/// Multiaddrs given by `what`, each an error naming `what` when it does not
/// parse.
fn parse_addrs(what: &str, addrs: &[String], example: &str) -> Result<Vec<Multiaddr>> {
    addrs
        .iter()
        .map(|s| match s.trim().parse::<Multiaddr>() {
            Ok(a) if a.iter().next().is_some() => Ok(a),
            Ok(_) => anyhow::bail!("{what}: empty address; expected a multiaddr such as {example}"),
            Err(e) => {
                anyhow::bail!("{what} '{s}' is not a multiaddr ({e}); expected e.g. {example}")
            }
        })
        .collect()
}

/// A setting from its flag, else parsed from the config file's `key`.
fn flag_or_file<T: std::str::FromStr<Err = String>>(
    flag: Option<T>,
    file: &Option<String>,
    key: &str,
) -> Result<Option<T>> {
    match (flag, file) {
        (Some(v), _) => Ok(Some(v)),
        (None, Some(text)) => text
            .parse()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{key}: {e}")),
        (None, None) => Ok(None),
    }
}

/// `config.toml`: the same settings as the node's flags, in snake case.
/// Unknown keys are errors, so a typo never silently does nothing.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub rpc_bind: Option<SocketAddr>,
    pub rpc_user: Option<String>,
    pub rpc_password: Option<String>,
    pub mine: Option<bool>,
    pub mine_threads: Option<usize>,
    pub mine_address: Option<String>,
    pub wallet: Option<bool>,
    pub create_wallet: Option<bool>,
    pub wallet_passphrase_file: Option<std::path::PathBuf>,
    /// Base units per 1000 bytes.
    pub wallet_fee_rate: Option<u64>,
    /// MB.
    pub max_mempool: Option<usize>,
    pub sync_writes: Option<bool>,
    /// P2P networking on (default) or off.
    pub p2p: Option<bool>,
    /// Multiaddrs to listen on.
    pub listen: Option<Vec<String>>,
    /// Multiaddrs of peers to keep connected.
    pub bootnodes: Option<Vec<String>>,
    pub max_peers: Option<usize>,
    pub mdns: Option<bool>,
    /// As `--external-addr`.
    pub external_addrs: Option<Vec<String>>,
    /// As `--relay-server`.
    pub relay_server: Option<bool>,
    /// Run as a masternode (with `operator_key`).
    pub masternode: Option<bool>,
    /// The operator key file (as `--operator-key`).
    pub operator_key: Option<std::path::PathBuf>,
    /// MB (as `--media-cache-size`).
    pub media_cache_size: Option<u64>,
    /// KB/s (as `--media-upload-limit`).
    pub media_upload_limit: Option<u64>,
    /// As `--media-provider-policy` (`classic` or `learned`).
    pub media_provider_policy: Option<rusty_media::selection::PolicyKind>,
    /// As `--media-data-bind` (an address, `auto` or `off`).
    pub media_data_bind: Option<String>,
    /// As `--playback-bind` (an address, `auto` or `off`).
    pub playback_bind: Option<String>,
    /// As `--ui-bind` ("" for the default address).
    pub ui_bind: Option<String>,
    /// As `--ui-allow-host`.
    pub ui_allow_host: Option<Vec<String>>,
    /// As `--metrics-bind` ("" for the default address).
    pub metrics_bind: Option<String>,
    /// As `--eth-rpc-bind` ("" for the default address).
    pub eth_rpc_bind: Option<String>,
}

/// The web UI's and the metrics' default ports on `network`.
pub fn http_ports(network: Network) -> (u16, u16) {
    match network {
        Network::Dev => (28480, 29480),
        Network::Test => (18480, 19480),
        Network::Main => (8480, 9480),
        Network::ParDev => (28580, 29580),
        Network::Par => (8580, 9580),
        Network::ArcDev => (28680, 29680),
        Network::Arc => (8680, 9680),
    }
}

/// The Ethereum JSON-RPC's default port on `network` (Ethereum's 8545,
/// shifted as the RPC ports are).
pub fn eth_rpc_port(network: Network) -> u16 {
    match network {
        Network::Dev => 28545,
        Network::Test => 18545,
        Network::Main => 8545,
        Network::ParDev => 28645,
        Network::Par => 8645,
        Network::ArcDev => 28745,
        Network::Arc => 8745,
    }
}

/// `--ui-bind`/`--metrics-bind`: empty for 127.0.0.1 on `default_port`, a
/// port alone for 127.0.0.1 on it, or a whole socket address.
pub fn parse_http_bind(s: &str, default_port: u16) -> Result<SocketAddr> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], default_port)));
    }
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        anyhow::anyhow!("\"{s}\" is not an address (127.0.0.1:8480), a port, or empty")
    })
}

impl FileConfig {
    pub fn load(path: &std::path::Path) -> Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("config file {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<FileConfig> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message()))
    }
}

/// The multi-threaded tokio runtime the node, localnet and benches run on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rusty-rt")
        .build()
        .context("starting the async runtime")
}

pub fn run(g: &GlobalArgs, a: &NodeArgs) -> Result<()> {
    init_logging();
    let config = build_config(g, a)?;
    runtime()?.block_on(async move {
        let node = Node::start(config).await?;
        let addr: SocketAddr = node.rpc_addr();
        if let Some(cookie) = node.cookie_path() {
            tracing::info!(target: "node", rpc = %format!("http://{addr}"), cookie = %cookie.display(), "RPC ready");
        }
        match node.p2p() {
            Some(p2p) => {
                let listen: Vec<String> =
                    p2p.net.listen_addrs().iter().map(|a| a.to_string()).collect();
                tracing::info!(target: "node", peer_id = %p2p.net.peer_id(), listen = %listen.join(" "), "P2P ready");
            }
            None => tracing::info!(target: "node", "P2P networking is off (--no-network or p2p = false)"),
        }
        // A critical task that panicked or ended stops the node too: shut
        // down in order, then exit non-zero with that one line.
        let outcome = wait_for_signal(node.wait()).await;
        node.shutdown().await;
        match outcome {
            Some(Err(failure)) => Err(failure.into()),
            _ => Ok::<(), anyhow::Error>(()),
        }
    })
}

/// Waits for Ctrl-C, SIGTERM or `stop` (the `stop` RPC, or a node's own
/// reason to stop); `Some` with `stop`'s output when it came first.
pub(crate) async fn wait_for_signal<F: Future>(stop: F) -> Option<F::Output> {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    return tokio::select! {
                        _ = tokio::signal::ctrl_c() => None,
                        out = stop => Some(out),
                    };
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => None,
            _ = term.recv() => None,
            out = stop => Some(out),
        }
    }
    #[cfg(not(unix))]
    tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        out = stop => Some(out),
    }
}

pub fn bench(b: &BenchCommand) -> Result<()> {
    match b {
        BenchCommand::Erc20 { transfers, rounds } => {
            init_logging();
            let report = rusty_bench::erc20::run_erc20_bench(*transfers, usize::from(*rounds))?;
            println!("{report}");
            Ok(())
        }
        BenchCommand::Connect {
            blocks,
            txs,
            threads,
        } => {
            let threads = threads.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
            init_logging();
            let report = rusty_bench::connect::run_connect_bench(*blocks, *txs, threads)?;
            println!("{report}");
            Ok(())
        }
        BenchCommand::Network {
            blocks,
            txs,
            gossip_txs,
        } => {
            // Up to five nodes' info logs would bury the report: quiet unless
            // RUST_LOG asks for something.
            if std::env::var_os("RUST_LOG").is_some() {
                init_logging();
            }
            let cfg = rusty_bench::network::NetBenchConfig {
                blocks: *blocks,
                txs_per_block: *txs,
                gossip_txs: *gossip_txs,
            };
            let dir = rusty_bench::connect::TempDir::new("netbench")
                .context("creating a temporary directory")?;
            let report =
                runtime()?.block_on(rusty_bench::network::run_network_bench(cfg, dir.path()))?;
            println!("{report}");
            Ok(())
        }
        BenchCommand::Chainlock { blocks } => {
            if std::env::var_os("RUST_LOG").is_some() {
                init_logging();
            }
            let cfg = rusty_bench::chainlock::ClBenchConfig {
                blocks: *blocks,
                ..Default::default()
            };
            // The quorum arithmetic first, beside raw blst, in the same run.
            let bls = rusty_bench::bls::run_bls_bench(&[3, 30, 240], &[50, 400], 10)?;
            println!("{bls}");
            let dir = rusty_bench::connect::TempDir::new("clbench")
                .context("creating a temporary directory")?;
            let report = runtime()?
                .block_on(rusty_bench::chainlock::run_chainlock_bench(cfg, dir.path()))?;
            println!("{report}");
            Ok(())
        }
        BenchCommand::Media {
            file_mib,
            blocks,
            chainlock_blocks,
            viewers,
            live_secs,
            kbps,
            rounds,
        } => {
            if std::env::var_os("RUST_LOG").is_some() {
                init_logging();
            }
            let cfg = rusty_bench::media::MediaBenchConfig {
                file_mib: (*file_mib).max(1),
                blocks: (*blocks).max(1),
                chainlock_blocks: *chainlock_blocks,
                viewers: (*viewers).max(1),
                live_secs: (*live_secs).max(1),
                live_kbps: (*kbps).max(8),
                rounds: usize::from(*rounds),
            };
            let dir = rusty_bench::connect::TempDir::new("mediabench")
                .context("creating a temporary directory")?;
            let report =
                runtime()?.block_on(rusty_bench::media::run_media_bench(cfg, dir.path()))?;
            println!("{report}");
            Ok(())
        }
        BenchCommand::Abr {
            traces,
            seed,
            segments,
            node_traces,
            node_segments,
        } => {
            let config = rusty_bench::abr::AbrBenchConfig {
                traces: (*traces).max(1),
                seed: *seed,
                segments: (*segments).max(1),
                node_traces: *node_traces,
                node_segments: (*node_segments).max(2),
                ..Default::default()
            };
            let report = rusty_bench::abr::run_abr_bench(config.clone());
            println!("{report}");
            if config.node_traces > 0 {
                let dir = rusty_bench::connect::TempDir::new("abrbench")
                    .context("creating a temporary directory")?;
                let nodes =
                    runtime()?.block_on(rusty_bench::abr::nodes::run(dir.path(), &config))?;
                println!("{nodes}");
            }
            Ok(())
        }
        BenchCommand::Select { seeds, node_trials } => {
            let report =
                rusty_bench::select::run_select_bench(rusty_bench::select::SelectBenchConfig {
                    seeds: (*seeds).max(1),
                    ..Default::default()
                });
            println!("{report}");
            if *node_trials > 0 {
                let dir = rusty_bench::connect::TempDir::new("selectbench")
                    .context("creating a temporary directory")?;
                let nodes = runtime()?.block_on(rusty_bench::select::nodes::run(
                    dir.path(),
                    16,
                    *node_trials,
                ))?;
                println!("{nodes}");
            }
            Ok(())
        }
        BenchCommand::Bls { iterations } => {
            let report = rusty_bench::bls::run_bls_bench(&[3, 30, 240], &[50, 400], *iterations)?;
            println!("{report}");
            Ok(())
        }
        BenchCommand::Swap {
            swaps,
            confirmations,
            masternodes,
        } => {
            if std::env::var_os("RUST_LOG").is_some() {
                init_logging();
            }
            let dir = rusty_bench::connect::TempDir::new("swapbench")
                .context("creating a temporary directory")?;
            let cfg = rusty_bench::swap::SwapBenchConfig {
                swaps: *swaps,
                confirmations: *confirmations,
                masternodes: *masternodes,
            };
            let report = runtime()?.block_on(rusty_bench::swap::run_swap_bench(cfg, dir.path()))?;
            println!("{report}");
            Ok(())
        }
        BenchCommand::Superblock {
            masternodes,
            proposals,
            txs,
            runs,
        } => {
            init_logging();
            let cfg = rusty_bench::superblock::SuperblockBenchConfig {
                masternodes: *masternodes,
                proposals: *proposals,
                txs_per_block: *txs,
                runs: *runs,
            };
            println!("{}", rusty_bench::superblock::run_superblock_bench(cfg)?);
            Ok(())
        }
    }
}

/// `NETWORK=URL[,cookie=PATH]` for our chains,
/// `eth:<chain id>=URL,key=PATH[,contract=0x…]` for Ethereum.
fn parse_bridge_chain(spec: &str) -> Result<rusty_node::node::BridgeChain> {
    use rusty_node::bridge::networks::BridgeNetwork;
    let (network, rest) = spec
        .split_once('=')
        .context("expected NETWORK=URL[,cookie=PATH] or eth:<chain id>=URL,key=PATH")?;
    let network: BridgeNetwork = network.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut parts = rest.split(',');
    let url = parts.next().unwrap_or_default();
    anyhow::ensure!(
        url.starts_with("http://"),
        "the URL must start with http:// (got `{url}`)"
    );
    let is_eth = matches!(network, BridgeNetwork::Eth { .. });
    let mut chain = rusty_node::node::BridgeChain {
        network: network.name(),
        url: url.to_string(),
        cookie: None,
        eth_key: None,
        eth_contract: None,
    };
    for part in parts {
        match part.split_once('=') {
            Some(("cookie", path)) if !is_eth => chain.cookie = Some(path.into()),
            Some(("key", path)) if is_eth => chain.eth_key = Some(path.into()),
            Some(("contract", address)) if is_eth => {
                rusty_crypto::eth::parse_address(address)?;
                chain.eth_contract = Some(address.to_string());
            }
            _ if is_eth => {
                anyhow::bail!("`{part}`: an Ethereum chain takes key=PATH and contract=0x…")
            }
            _ => anyhow::bail!("`{part}`: a chain of ours takes cookie=PATH"),
        }
    }
    anyhow::ensure!(
        !is_eth || chain.eth_key.is_some(),
        "an Ethereum chain needs key=PATH (a file with the hex secp256k1 key it pays from)"
    );
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn http_binds_default_to_loopback_on_the_networks_port() {
        assert_eq!(
            parse_http_bind("", 28480).unwrap(),
            "127.0.0.1:28480".parse().unwrap()
        );
        assert_eq!(
            parse_http_bind("8080", 1).unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            parse_http_bind("0.0.0.0:9", 1).unwrap(),
            "0.0.0.0:9".parse().unwrap()
        );
        assert!(parse_http_bind("nowhere", 1).is_err());
        assert!(parse_http_bind("70000", 1).is_err());
    }
    use crate::args::{Cli, Command};

    fn config_for(args: &[&str]) -> Result<NodeConfig> {
        let cli = Cli::try_parse_from(args)?;
        match &cli.command {
            Command::Node(n) => build_config(&cli.global, n),
            _ => anyhow::bail!("not a node command"),
        }
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "mine = true\nmine_threads = 3\nmax_mempool = 10\nrpc_bind = \"127.0.0.1:1234\"\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let d = dir.path().to_str().unwrap();
        let c = config_for(&[
            "rusty-cli",
            "--network",
            "test",
            "--datadir",
            d,
            "node",
            "--config",
            p,
        ])
        .unwrap();
        assert!(c.mine);
        assert_eq!(c.mine_threads, 3);
        assert_eq!(c.mempool_max_bytes, 10 << 20);
        assert_eq!(c.rpc_bind.port(), 1234);
        let c = config_for(&[
            "rusty-cli",
            "--network",
            "test",
            "--datadir",
            d,
            "node",
            "--config",
            p,
            "--no-mine",
            "--mine-threads",
            "2",
        ])
        .unwrap();
        assert!(!c.mine);
        assert_eq!(c.mine_threads, 2);
    }

    #[test]
    fn defaults_per_network() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let dev = config_for(&["rusty-cli", "--dev", "--datadir", d, "node"]).unwrap();
        assert!(dev.mine && dev.create_wallet);
        assert_eq!(dev.rpc_bind.port(), 28432);
        assert_eq!(dev.data_dir, dir.path().join("dev"));
        let main = config_for(&["rusty-cli", "--datadir", d, "node"]).unwrap();
        assert!(!main.mine && !main.create_wallet);
        // The network's config.toml is read when present.
        std::fs::create_dir_all(dir.path().join("main")).unwrap();
        std::fs::write(
            dir.path().join("main").join("config.toml"),
            "mine_threads = 4\n",
        )
        .unwrap();
        assert_eq!(
            config_for(&["rusty-cli", "--datadir", d, "node"])
                .unwrap()
                .mine_threads,
            4
        );
    }

    #[test]
    fn p2p_defaults_per_network() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let dev = config_for(&["rusty-cli", "--dev", "--datadir", d, "node"]).unwrap();
        let net = dev.p2p.expect("P2P on by default");
        let listen: Vec<String> = net.listen.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            listen,
            ["/ip4/0.0.0.0/tcp/28433", "/ip4/0.0.0.0/udp/28433/quic-v1"]
        );
        assert!(net.bootnodes.is_empty());
        assert!(net.mdns, "mDNS is on for dev");
        assert_eq!(net.max_peers, 50);
        // node.key and peers.json live beside the database.
        assert_eq!(net.data_dir, Some(dir.path().join("dev")));
        let main = config_for(&["rusty-cli", "--datadir", d, "node"]).unwrap();
        let net = main.p2p.expect("P2P on by default");
        assert!(!net.mdns, "mDNS is off outside dev");
        assert_eq!(net.listen[0].to_string(), "/ip4/0.0.0.0/tcp/8433");
        assert_eq!(net.data_dir, Some(dir.path().join("main")));
    }

    #[test]
    fn p2p_file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "listen = [\"/ip4/127.0.0.1/tcp/7000\"]\n\
             bootnodes = [\"/ip4/127.0.0.1/tcp/7001\", \"/dns4/seed.example/tcp/7002\"]\n\
             max_peers = 12\nmdns = true\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let base = ["rusty-cli", "--datadir", d, "node", "--config", p];
        let net = config_for(&base).unwrap().p2p.unwrap();
        assert_eq!(net.listen.len(), 1);
        assert_eq!(net.listen[0].to_string(), "/ip4/127.0.0.1/tcp/7000");
        assert_eq!(net.bootnodes.len(), 2);
        assert_eq!(net.max_peers, 12);
        assert!(net.mdns, "the file turns mDNS on outside dev");

        let peer = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
        let boot = format!("/ip4/10.0.0.9/tcp/8433/p2p/{peer}");
        let mut args = base.to_vec();
        args.extend([
            "--listen",
            "/ip4/0.0.0.0/tcp/9000",
            "--listen",
            "/ip6/::/udp/9000/quic-v1",
            "--bootnode",
            &boot,
            "--max-peers",
            "3",
            "--no-mdns",
        ]);
        let net = config_for(&args).unwrap().p2p.unwrap();
        let listen: Vec<String> = net.listen.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            listen,
            ["/ip4/0.0.0.0/tcp/9000", "/ip6/::/udp/9000/quic-v1"]
        );
        assert_eq!(net.bootnodes.len(), 1);
        assert_eq!(net.bootnodes[0].to_string(), boot);
        assert_eq!(net.max_peers, 3);
        assert!(!net.mdns);

        // Off by flag, or by the file.
        let mut args = base.to_vec();
        args.push("--no-network");
        assert!(config_for(&args).unwrap().p2p.is_none());
        std::fs::write(&path, "p2p = false\n").unwrap();
        assert!(config_for(&base).unwrap().p2p.is_none());
        assert!(
            config_for(&["rusty-cli", "--dev", "--datadir", d, "node", "--no-network"])
                .unwrap()
                .p2p
                .is_none()
        );
    }

    #[test]
    fn bad_p2p_settings_name_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let err = |extra: &[&str]| {
            let mut args = vec!["rusty-cli", "--datadir", d, "node"];
            args.extend(extra);
            let e = config_for(&args).expect_err("invalid").to_string();
            assert_eq!(e.lines().count(), 1, "{e}");
            e
        };
        let e = err(&["--listen", "0.0.0.0:8433"]);
        assert!(
            e.starts_with("--listen '0.0.0.0:8433' is not a multiaddr"),
            "{e}"
        );
        assert!(e.contains("/ip4/0.0.0.0/tcp/8433"), "{e}");
        let e = err(&["--bootnode", "/ip4/1.2.3.4/tcp/notaport"]);
        assert!(
            e.starts_with("--bootnode '/ip4/1.2.3.4/tcp/notaport'"),
            "{e}"
        );
        let e = err(&["--bootnode", ""]);
        assert!(e.contains("--bootnode") && e.contains("empty"), "{e}");
        let e = err(&["--max-peers", "0"]);
        assert!(e.contains("--max-peers"), "{e}");

        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "bootnodes = [\"seed.example:8433\"]\n").unwrap();
        let e = format!(
            "{:#}",
            config_for(&[
                "rusty-cli",
                "--datadir",
                d,
                "node",
                "--config",
                path.to_str().unwrap()
            ])
            .expect_err("invalid")
        );
        assert!(
            e.contains("config file: bootnodes 'seed.example:8433'"),
            "{e}"
        );
        assert!(FileConfig::parse("listen = \"/ip4/0.0.0.0/tcp/1\"\n").is_err());
        assert!(FileConfig::parse("bootnode = []\n").is_err());
    }

    #[test]
    fn masternode_flags_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let key = rusty_crypto::bls::SecretKey::generate(&mut rand::rngs::OsRng);
        let key_path = dir.path().join("operator.key");
        std::fs::write(&key_path, format!("{}\n", hex::encode(key.to_bytes()))).unwrap();
        let k = key_path.to_str().unwrap();

        let c = config_for(&["rusty-cli", "--datadir", d, "node"]).unwrap();
        assert!(c.masternode.is_none());
        let c = config_for(&[
            "rusty-cli",
            "--datadir",
            d,
            "node",
            "--masternode",
            "--operator-key",
            k,
        ])
        .unwrap();
        let op = c.masternode.expect("operator");
        assert_eq!(op.key.to_bytes(), key.to_bytes());

        // clap: --masternode needs --operator-key.
        let e = Cli::try_parse_from(["rusty-cli", "node", "--masternode"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(e.to_string().contains("--operator-key"), "{e}");

        let err = |args: &[&str]| {
            let mut all = vec!["rusty-cli", "--datadir", d, "node"];
            all.extend(args);
            format!("{:#}", config_for(&all).expect_err("invalid"))
        };
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "not a key").unwrap();
        let b = bad.to_str().unwrap();
        let e = err(&["--masternode", "--operator-key", b]);
        assert!(e.contains(b) && e.contains("64 hex"), "{e}");
        let missing = dir.path().join("missing.key");
        let m = missing.to_str().unwrap();
        let e = err(&["--masternode", "--operator-key", m]);
        assert!(e.contains(m), "{e}");
        let e = err(&["--operator-key", k]);
        assert!(e.contains("--masternode"), "{e}");
        let e = err(&["--masternode", "--operator-key", k, "--no-network"]);
        assert!(e.contains("P2P"), "{e}");

        // The same from the file.
        let conf = dir.path().join("mn.toml");
        std::fs::write(
            &conf,
            format!("masternode = true\noperator_key = {:?}\n", k),
        )
        .unwrap();
        let p = conf.to_str().unwrap();
        let c = config_for(&["rusty-cli", "--datadir", d, "node", "--config", p]).unwrap();
        assert!(c.masternode.is_some());
        std::fs::write(&conf, "masternode = true\n").unwrap();
        let e = err(&["--config", p]);
        assert!(e.contains("operator_key"), "{e}");
        // The file's key with the flag.
        std::fs::write(&conf, format!("operator_key = {:?}\n", k)).unwrap();
        assert!(config_for(&["rusty-cli", "--datadir", d, "node", "--config", p]).is_err());
        // masternode = false switches a configured key off.
        std::fs::write(
            &conf,
            format!("masternode = false\noperator_key = {:?}\n", k),
        )
        .unwrap();
        let c = config_for(&["rusty-cli", "--datadir", d, "node", "--config", p]).unwrap();
        assert!(c.masternode.is_none());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let err = FileConfig::parse("mien = true\n").unwrap_err().to_string();
        assert!(err.contains("mien"), "{err}");
        assert!(FileConfig::parse("mine_threads = \"many\"\n").is_err());
        assert!(FileConfig::parse("rpc_bind = \"nowhere\"\n").is_err());
    }

    #[test]
    fn bridge_chains_parse_with_and_without_a_cookie() {
        let c = parse_bridge_chain("par-dev=http://127.0.0.1:28532,cookie=/tmp/.cookie")
            .expect("parses");
        assert_eq!(c.network, "par-dev");
        assert_eq!(c.url, "http://127.0.0.1:28532");
        assert_eq!(
            c.cookie.as_deref(),
            Some(std::path::Path::new("/tmp/.cookie"))
        );
        let c = parse_bridge_chain("arc=http://10.0.0.2:8632").expect("parses");
        assert_eq!(c.cookie, None);
        assert!(parse_bridge_chain("moon=http://x").is_err());
        assert!(parse_bridge_chain("par").is_err());
        assert!(parse_bridge_chain("par=ftp://x").is_err());
    }

    #[test]
    fn ethereum_chains_need_a_key_and_take_a_contract() {
        let c = parse_bridge_chain(
            "eth:31337=http://127.0.0.1:8545,key=/k,contract=0x5fbdb2315678afecb367f032d93f642f64180aa3",
        )
        .expect("parses");
        assert_eq!(c.network, "eth:31337");
        assert_eq!(c.eth_key.as_deref(), Some(std::path::Path::new("/k")));
        assert!(c.eth_contract.is_some());
        assert!(parse_bridge_chain("eth:31337=http://127.0.0.1:8545").is_err());
        assert!(parse_bridge_chain("eth:31337=http://x,cookie=/c,key=/k").is_err());
        assert!(parse_bridge_chain("eth:31337=http://x,key=/k,contract=0x12").is_err());
        assert!(parse_bridge_chain("par-dev=http://x,key=/k").is_err());
        assert!(parse_bridge_chain("eth=http://x,key=/k").is_err());
    }
}
