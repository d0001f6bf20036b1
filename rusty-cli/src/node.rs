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

pub fn build_config(g: &GlobalArgs, a: &NodeArgs) -> Result<NodeConfig> {
    let network = g.network();
    let mut c = NodeConfig::new(network, g.network_dir());
    if let Some(bind) = a.rpc_bind {
        c.rpc_bind = bind;
    }
    if let (Some(u), Some(p)) = (&g.rpc_user, &g.rpc_password) {
        c.rpc_user = Some((u.clone(), p.clone()));
    }
    c.mine = (a.mine || g.dev) && !a.no_mine;
    c.mine_threads = a.mine_threads.max(1);
    if let Some(s) = &a.mine_address {
        c.mine_address =
            Some(Address::parse_for(s, network).with_context(|| format!("--mine-address {s}"))?);
    }
    c.wallet = !a.no_wallet;
    c.create_wallet = a.create_wallet || network == Network::Dev;
    if let Some(f) = &a.wallet_passphrase_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading --wallet-passphrase-file {}", f.display()))?;
        c.wallet_passphrase = text.trim_end_matches(['\r', '\n']).to_string();
    }
    c.mempool_max_bytes = a.max_mempool.saturating_mul(1 << 20);
    c.db.sync_writes = a.sync_writes;
    Ok(c)
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
