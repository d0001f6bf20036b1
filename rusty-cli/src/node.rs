//! `rusty-cli node` and `rusty-cli bench`.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use rusty_core::node::{Node, NodeConfig};
use rusty_shared_types::{Address, Network};

use crate::args::{BenchCommand, GlobalArgs, NodeArgs};

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
    if let Some(bind) = a.rpc_bind.or(file.rpc_bind) {
        c.rpc_bind = bind;
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
    c.create_wallet = a.create_wallet || file.create_wallet.unwrap_or(network == Network::Dev);
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

pub fn run(g: &GlobalArgs, a: &NodeArgs) -> Result<()> {
    init_logging();
    let config = build_config(g, a)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rusty-rt")
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let node = Node::start(config).await?;
        let addr: SocketAddr = node.rpc_addr();
        if let Some(cookie) = node.cookie_path() {
            tracing::info!(target: "node", rpc = %format!("http://{addr}"), cookie = %cookie.display(), "RPC ready");
        }
        wait_for_signal(&node).await;
        node.shutdown().await;
        Ok::<(), anyhow::Error>(())
    })
}

async fn wait_for_signal(node: &Node) {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = node.stopped_by_rpc() => {}
                    }
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = node.stopped_by_rpc() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = node.stopped_by_rpc() => {}
    }
}

pub fn bench(b: &BenchCommand) -> Result<()> {
    init_logging();
    match b {
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
            let report = rusty_core::bench::run_connect_bench(*blocks, *txs, threads)?;
            println!("{report}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
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
    fn unknown_keys_and_bad_values_are_errors() {
        let err = FileConfig::parse("mien = true\n").unwrap_err().to_string();
        assert!(err.contains("mien"), "{err}");
        assert!(FileConfig::parse("mine_threads = \"many\"\n").is_err());
        assert!(FileConfig::parse("rpc_bind = \"nowhere\"\n").is_err());
    }
}
