//! `rusty-cli localnet`: N dev nodes wired together on loopback, in this
//! process ([`rusty_node::localnet`]).

use std::path::PathBuf;

use anyhow::Result;
use rusty_node::{
    localnet::{LocalNet, LocalNetConfig},
    node::BridgeChain,
};
use rusty_shared_types::Chain;

use crate::{
    args::{GlobalArgs, LocalnetArgs},
    node::{init_logging, runtime, wait_for_signal},
};

/// P2P ports sit this far above the RPC ports.
const P2P_PORT_OFFSET: u16 = 100;

/// Where the nodes live: `--datadir`, or `~/.rusty/localnet`.
fn base_dir(g: &GlobalArgs) -> PathBuf {
    g.datadir
        .clone()
        .unwrap_or_else(|| crate::args::default_root().join("localnet"))
}

/// The local network's settings from the flags.
pub fn build_config(g: &GlobalArgs, a: &LocalnetArgs) -> Result<LocalNetConfig> {
    if a.nodes == 0 {
        anyhow::bail!("--nodes must be at least 1");
    }
    if a.miners > a.nodes {
        anyhow::bail!(
            "--miners {} is more than --nodes {}: at most every node mines",
            a.miners,
            a.nodes
        );
    }
    let nodes = if a.masternodes > a.nodes {
        a.masternodes.saturating_add(a.miners)
    } else {
        a.nodes
    };
    if a.masternodes > 0 && a.miners == 0 {
        anyhow::bail!("--masternodes needs a miner to fund them: use --miners 1 or more");
    }
    let mut c = LocalNetConfig::new(base_dir(g), nodes);
    c.miners = a.miners;
    c.masternodes = a.masternodes;
    c.mine_threads = a.mine_threads.max(1);
    if a.base_port != 0 {
        // RPC on base..base+99, P2P on base+100..: the two ranges must
        // neither overlap nor run past the last port.
        let last = u16::try_from(a.nodes)
            .ok()
            .filter(|&n| n <= P2P_PORT_OFFSET)
            .and_then(|n| a.base_port.checked_add(P2P_PORT_OFFSET)?.checked_add(n - 1));
        if last.is_none() {
            anyhow::bail!(
                "--base-port {} with {} nodes needs ports past 65535 or more than {P2P_PORT_OFFSET} nodes; \
                 use a lower --base-port, fewer nodes, or --base-port 0 for free ports",
                a.base_port,
                nodes
            );
        }
        c.rpc_base_port = Some(a.base_port);
        c.p2p_base_port = a.base_port.checked_add(P2P_PORT_OFFSET);
    }
    Ok(c)
}

/// Ports of the k-th other chain sit this far above the first chain's.
const CHAIN_PORT_OFFSET: u16 = 1000;

/// The first chain of `--chains` (RSC if named) and the others, each
/// named once.
fn chains(a: &LocalnetArgs) -> (Chain, Vec<Chain>) {
    let mut all: Vec<Chain> = Vec::new();
    for c in &a.chains {
        if !all.contains(c) {
            all.push(*c);
        }
    }
    let home = if all.contains(&Chain::Rsc) || all.is_empty() {
        Chain::Rsc
    } else {
        all[0]
    };
    all.retain(|c| *c != home);
    (home, all)
}

/// The other chains' local networks: the same shape as `home`'s, every
/// node mining (so every node has coins to swap), no masternodes.
fn other_chain_configs(home: &LocalNetConfig, others: &[Chain]) -> Result<Vec<LocalNetConfig>> {
    let mut out = Vec::new();
    for (k, chain) in others.iter().enumerate() {
        let shift = u16::try_from(k + 1)
            .ok()
            .and_then(|k| k.checked_mul(CHAIN_PORT_OFFSET));
        let port = |base: Option<u16>| -> Result<Option<u16>> {
            match base {
                None => Ok(None),
                Some(b) => shift
                    .and_then(|s| b.checked_add(s))
                    .map(Some)
                    .ok_or_else(|| {
                        anyhow::anyhow!("--base-port too high for {} chains", others.len() + 1)
                    }),
            }
        };
        let mut c = home.clone();
        c.network = chain.dev_network();
        c.miners = c.nodes;
        c.masternodes = 0;
        c.rpc_base_port = port(home.rpc_base_port)?;
        c.p2p_base_port = port(home.p2p_base_port)?;
        out.push(c);
    }
    Ok(out)
}

pub fn run(g: &GlobalArgs, a: &LocalnetArgs) -> Result<()> {
    init_logging();
    let mut config = build_config(g, a)?;
    let (home, others) = chains(a);
    config.network = home.dev_network();
    let other_configs = other_chain_configs(&config, &others)?;
    let base = config.base_dir.clone();
    runtime()?.block_on(async move {
        // The other chains first: the home chain's bridges call their RPC.
        let mut other_nets = Vec::new();
        for c in other_configs {
            match LocalNet::start(c).await {
                Ok(n) => other_nets.push(n),
                Err(e) => {
                    for n in other_nets {
                        n.shutdown().await;
                    }
                    return Err(e.into());
                }
            }
        }
        if !other_nets.is_empty() {
            config.bridge_chains = (0..config.nodes)
                .map(|i| {
                    other_nets
                        .iter()
                        .map(|n| BridgeChain {
                            network: n.config().network.name().to_string(),
                            url: n.rpc_url(i),
                            cookie: Some(n.cookie_path(i)),
                            eth_key: None,
                            eth_contract: None,
                        })
                        .collect()
                })
                .collect();
            config.bridge_auto_accept_from = Some(1);
        }
        let net = match LocalNet::start(config).await {
            Ok(n) => n,
            Err(e) => {
                for n in other_nets {
                    n.shutdown().await;
                }
                return Err(e.into());
            }
        };
        for other in &other_nets {
            for i in 0..other.len() {
                println!(
                    "node{i}  {}  {}  cookie {}  mining",
                    other.config().network,
                    other.rpc_url(i),
                    other.cookie_path(i).display()
                );
            }
        }
        for i in 0..net.len() {
            let peer = net.peer_id(i).map(|p| p.to_string()).unwrap_or_default();
            let role = match (i < net.config().miners, net.config().is_masternode(i)) {
                (true, true) => "  mining, masternode",
                (true, false) => "  mining",
                (false, true) => "  masternode",
                (false, false) => "",
            };
            println!(
                "node{i}  {}  {}  cookie {}  peer {peer}{role}",
                net.config().network,
                net.rpc_url(i),
                net.cookie_path(i).display()
            );
        }
        println!(
            "{} dev nodes running in this process (files under {}); Ctrl-C stops them all.",
            net.len() + other_nets.iter().map(LocalNet::len).sum::<usize>(),
            base.display()
        );
        if let (Some(other), true) = (other_nets.first(), net.len() > 1) {
            println!(
                "Swap: rusty-cli --network {} --datadir {} --rpc-url {} bridge swap {} \"5 {}\" \"10 {}\"  \
                 (node 1 accepts every offer; wait until node 0 has mined 11 blocks)",
                net.config().network,
                net.config().node_dir(0).display(),
                net.rpc_url(0),
                net.peer_id(1).map(|p| p.to_string()).unwrap_or_default(),
                net.config().network,
                other.config().network,
            );
        }
        println!(
            "Try: rusty-cli --dev --datadir {} --rpc-url {} rpc getpeerinfo",
            net.config().node_dir(0).display(),
            net.rpc_url(0)
        );
        if net.config().masternodes > 0 {
            println!(
                "Registering {} masternodes (node 0 funds them once its coins mature); \
                 watch with: rusty-cli --dev --datadir {} --rpc-url {} rpc masternode count",
                net.config().masternodes,
                net.config().node_dir(0).display(),
                net.rpc_url(0)
            );
        }
        {
            let setup = register_masternodes(&net);
            tokio::pin!(setup);
            let stopped = wait_for_signal(net.stopped_by_rpc());
            tokio::pin!(stopped);
            tokio::select! {
                _ = &mut stopped => {}
                _ = &mut setup => {
                    stopped.await;
                }
            }
        }
        net.shutdown().await;
        for n in other_nets {
            n.shutdown().await;
        }
        Ok::<(), anyhow::Error>(())
    })
}

/// Funds and registers the masternodes as blocks come in, until all are
/// in the list (or the setup fails, which is logged and ends it).
async fn register_masternodes(net: &LocalNet) {
    let want = net.config().masternodes;
    if want == 0 {
        return;
    }
    let mut setup = rusty_node::localnet::MasternodeSetup::default();
    let mut last = 0;
    loop {
        match setup.step(net).await {
            Ok(n) if n >= want => {
                println!("all {want} masternodes registered; quorums form every 24 blocks");
                return;
            }
            Ok(n) => {
                if n != last {
                    println!("{n} of {want} masternodes registered");
                    last = n;
                }
            }
            Err(e) => {
                tracing::error!(target: "localnet", err = %e, "masternode setup failed");
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn config_for(args: &[&str]) -> Result<LocalNetConfig> {
        let cli = Cli::try_parse_from(args)?;
        match &cli.command {
            Command::Localnet(a) => build_config(&cli.global, a),
            _ => anyhow::bail!("not a localnet command"),
        }
    }

    #[test]
    fn masternodes_are_the_last_nodes() {
        let c = config_for(&["rusty-cli", "localnet", "--masternodes", "6"]).unwrap();
        assert_eq!((c.nodes, c.miners, c.masternodes), (7, 1, 6));
        assert!(!c.is_masternode(0));
        assert!((1..7).all(|i| c.is_masternode(i)));
        let c = config_for(&[
            "rusty-cli",
            "localnet",
            "--nodes",
            "8",
            "--masternodes",
            "6",
        ])
        .unwrap();
        assert_eq!(c.nodes, 8);
        assert!(!c.is_masternode(1) && c.is_masternode(2));
        assert!(config_for(&[
            "rusty-cli",
            "localnet",
            "--masternodes",
            "2",
            "--miners",
            "0"
        ])
        .is_err());
    }

    #[test]
    fn defaults_and_ports() {
        let c = config_for(&["rusty-cli", "--datadir", "/tmp/x", "localnet"]).unwrap();
        assert_eq!((c.nodes, c.miners, c.mine_threads), (3, 1, 1));
        assert_eq!(c.base_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.rpc_base_port, Some(28500));
        assert_eq!(c.p2p_base_port, Some(28600));

        let c = config_for(&[
            "rusty-cli",
            "localnet",
            "--nodes",
            "5",
            "--miners",
            "2",
            "--base-port",
            "0",
            "--mine-threads",
            "2",
        ])
        .unwrap();
        assert_eq!((c.nodes, c.miners, c.mine_threads), (5, 2, 2));
        assert_eq!((c.rpc_base_port, c.p2p_base_port), (None, None));
        assert!(c.base_dir.ends_with(".rusty/localnet"));
    }

    #[test]
    fn bad_counts_and_ports_are_errors() {
        let e = |args: &[&str]| config_for(args).expect_err("invalid").to_string();
        assert!(e(&["rusty-cli", "localnet", "--nodes", "0"]).contains("--nodes"));
        assert!(
            e(&["rusty-cli", "localnet", "--nodes", "2", "--miners", "3"]).contains("--miners")
        );
        assert!(e(&["rusty-cli", "localnet", "--base-port", "65500"]).contains("--base-port"));
        assert!(e(&["rusty-cli", "localnet", "--nodes", "101"]).contains("--base-port 0"));
        assert!(config_for(&[
            "rusty-cli",
            "localnet",
            "--nodes",
            "101",
            "--base-port",
            "0"
        ])
        .is_ok());
    }
}
