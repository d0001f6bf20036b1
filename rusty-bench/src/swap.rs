//! Swap wall time on dev localnets of two chains: RSC and PAR, the RSC
//! nodes' bridges reaching PAR through their node of the same index. Node
//! 0 offers RSC for PAR; node 1 accepts every offer. Blocks come at the
//! dev spacings (RSC every 2 s, PAR every 1 s), mined by the benchmark so
//! every run sees the same pace. Reported per way of counting a lock as
//! final: offer → both sides Completed, and the time in each state on each
//! side, beside the RSC block spacing.
//!
//! The three ways, one after another in one run:
//! - dev finality: one confirmation (what a dev localnet uses);
//! - k confirmations (6, as on main), no ChainLocks;
//! - k confirmations or a ChainLock: the RSC localnet gets masternodes, a
//!   quorum forms, and every RSC block is ChainLocked, so an RSC lock is
//!   final at its ChainLock (PAR has no masternodes here and still counts
//!   confirmations).

use std::{fmt, path::Path, time::Duration};

use rusty_node::tasks::CancellationToken;
use rusty_node::{
    localnet::{LocalNet, LocalNetConfig},
    node::BridgeChain,
    rpc::client::RpcClient,
};
use rusty_shared_types::Network;
use serde_json::{json, Value};

use crate::{
    chainlock::{form_quorum, Percentiles},
    connect::BenchError,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct SwapBenchConfig {
    /// Swaps per way of counting finality, one after another.
    pub swaps: usize,
    /// Confirmations a lock needs without a ChainLock, in the second and
    /// third ways.
    pub confirmations: u64,
    /// Masternodes on the RSC localnet in the ChainLock way.
    pub masternodes: usize,
}

impl Default for SwapBenchConfig {
    fn default() -> Self {
        SwapBenchConfig {
            swaps: 3,
            confirmations: 6,
            masternodes: 6,
        }
    }
}

/// How a lock counts as final in one part of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finality {
    DevDefault,
    Confirmations(u64),
    ChainLocks {
        confirmations: u64,
        masternodes: usize,
    },
}

impl fmt::Display for Finality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finality::DevDefault => write!(f, "1 confirmation (dev), no ChainLocks"),
            Finality::Confirmations(k) => write!(f, "{k} confirmations, no ChainLocks"),
            Finality::ChainLocks {
                confirmations,
                masternodes,
            } => write!(
                f,
                "{confirmations} confirmations or a ChainLock ({masternodes} RSC masternodes)"
            ),
        }
    }
}

/// The figures of one way.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub finality: String,
    pub wall: Percentiles,
    /// Mean time in each state: (side, state, seconds).
    pub states: Vec<(&'static str, String, f64)>,
    /// How long the RSC quorum's DKG took (ChainLock way only).
    pub dkg: Option<Duration>,
}

/// The figures of one run.
#[derive(Debug, Clone)]
pub struct SwapBenchReport {
    pub scenarios: Vec<ScenarioReport>,
    pub rsc_spacing: Duration,
    pub par_spacing: Duration,
}

impl fmt::Display for SwapBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |d: Duration| d.as_secs_f64();
        writeln!(
            f,
            "swap RSC -> PAR on dev localnets (RSC block every {:.0} s, PAR every {:.0} s)",
            secs(self.rsc_spacing),
            secs(self.par_spacing)
        )?;
        for s in &self.scenarios {
            writeln!(f, "{} ({} swaps):", s.finality, s.wall.samples)?;
            if let Some(dkg) = s.dkg {
                writeln!(f, "  (quorum formed; its DKG took {:.2} s)", secs(dkg))?;
            }
            writeln!(
                f,
                "  offer -> both completed: p50 {:.2} s, max {:.2} s ({:.1} x the RSC block spacing)",
                secs(s.wall.p50),
                secs(s.wall.max),
                secs(s.wall.p50) / secs(self.rsc_spacing).max(1e-9)
            )?;
            for side in ["initiator", "participant"] {
                let steps: Vec<String> = s
                    .states
                    .iter()
                    .filter(|t| t.0 == side)
                    .map(|(_, state, t)| format!("{state} {t:.2}"))
                    .collect();
                writeln!(f, "  {side:<11} {}", steps.join(", "))?;
            }
        }
        Ok(())
    }
}

fn setup(msg: impl fmt::Display) -> BenchError {
    BenchError::Setup(msg.to_string())
}

fn client(net: &LocalNet, i: usize) -> Result<RpcClient, BenchError> {
    RpcClient::new(&net.rpc_url(i))
        .and_then(|c| c.with_cookie_file(net.cookie_path(i)))
        .map_err(setup)
}

/// Calls `method` on the blocking pool.
async fn call(c: &RpcClient, method: &'static str, params: Value) -> Result<Value, BenchError> {
    let c = c.clone();
    tokio::task::spawn_blocking(move || c.call(method, params))
        .await
        .map_err(setup)?
        .map_err(|e| setup(format!("{method}: {e}")))
}

/// Runs the benchmark with the nodes' files under `base_dir`.
pub async fn run_swap_bench(
    cfg: SwapBenchConfig,
    base_dir: &Path,
) -> Result<SwapBenchReport, BenchError> {
    let ways = [
        Finality::DevDefault,
        Finality::Confirmations(cfg.confirmations),
        Finality::ChainLocks {
            confirmations: cfg.confirmations,
            masternodes: cfg.masternodes,
        },
    ];
    let mut scenarios = Vec::new();
    for (i, way) in ways.into_iter().enumerate() {
        let dir = base_dir.join(format!("way{i}"));
        scenarios.push(run_way(way, &cfg, &dir).await?);
    }
    Ok(SwapBenchReport {
        scenarios,
        rsc_spacing: Duration::from_secs(Network::Dev.params().target_spacing),
        par_spacing: Duration::from_secs(Network::ParDev.params().target_spacing),
    })
}

/// Two localnets for one way of counting finality, the swaps, and the
/// localnets stopped again.
async fn run_way(
    way: Finality,
    cfg: &SwapBenchConfig,
    base_dir: &Path,
) -> Result<ScenarioReport, BenchError> {
    let mut par_cfg = LocalNetConfig::new(base_dir, 2);
    par_cfg.network = Network::ParDev;
    let par = LocalNet::start(par_cfg).await?;
    let masternodes = match way {
        Finality::ChainLocks { masternodes, .. } => masternodes,
        _ => 0,
    };
    let mut rsc_cfg = LocalNetConfig::new(base_dir, 2 + masternodes);
    rsc_cfg.masternodes = masternodes;
    rsc_cfg.bridge_chains = (0..2)
        .map(|i| {
            vec![BridgeChain {
                network: Network::ParDev.name().to_string(),
                url: par.rpc_url(i),
                cookie: Some(par.cookie_path(i)),
                eth_key: None,
                eth_contract: None,
            }]
        })
        .collect();
    rsc_cfg.bridge_auto_accept_from = Some(1);
    rsc_cfg.bridge_confirmations = match way {
        Finality::DevDefault => None,
        Finality::Confirmations(k)
        | Finality::ChainLocks {
            confirmations: k, ..
        } => Some(k),
    };
    let rsc = match LocalNet::start(rsc_cfg).await {
        Ok(n) => n,
        Err(e) => {
            par.shutdown().await;
            return Err(e.into());
        }
    };
    let result = async {
        let dkg = match masternodes {
            0 => None,
            n => Some(form_quorum(&rsc, n).await?),
        };
        let (wall, states) = measure(&rsc, &par, cfg).await?;
        Ok(ScenarioReport {
            finality: way.to_string(),
            wall,
            states,
            dkg,
        })
    }
    .await;
    rsc.shutdown().await;
    par.shutdown().await;
    result
}

async fn measure(
    rsc: &LocalNet,
    par: &LocalNet,
    cfg: &SwapBenchConfig,
) -> Result<(Percentiles, Vec<(&'static str, String, f64)>), BenchError> {
    let rsc_spacing = Duration::from_secs(Network::Dev.params().target_spacing);
    let par_spacing = Duration::from_secs(Network::ParDev.params().target_spacing);
    // Coins: node 0 RSC, node 1 PAR (one coinbase each matures).
    rsc.mine(0, 11).await?;
    par.mine(1, 11).await?;
    rsc.wait_synced(Duration::from_secs(60)).await?;
    par.wait_synced(Duration::from_secs(60)).await?;
    let (alice, bob) = (client(rsc, 0)?, client(rsc, 1)?);
    let bob_peer = rsc
        .peer_id(1)
        .ok_or_else(|| setup("node 1 has no peer id"))?
        .to_string();

    // Blocks at the dev spacings while the swaps run.
    let stop = CancellationToken::new();
    let miners = {
        let stop = stop.clone();
        async move {
            let mut rsc_tick = tokio::time::interval(rsc_spacing);
            let mut par_tick = tokio::time::interval(par_spacing);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return Ok::<(), BenchError>(()),
                    _ = rsc_tick.tick() => { rsc.mine(0, 1).await?; }
                    _ = par_tick.tick() => { par.mine(0, 1).await?; }
                }
            }
        }
    };
    let swaps = async {
        let result = run_swaps(&alice, &bob, &bob_peer, cfg.swaps).await;
        stop.cancel();
        result
    };
    let (mined, measured) = tokio::join!(miners, swaps);
    mined?;
    let (walls, states) = measured?;
    Ok((Percentiles::of(walls), states))
}

type Measured = (Vec<Duration>, Vec<(&'static str, String, f64)>);

async fn run_swaps(
    alice: &RpcClient,
    bob: &RpcClient,
    bob_peer: &str,
    swaps: usize,
) -> Result<Measured, BenchError> {
    let mut walls = Vec::new();
    // (side, state) → total seconds, in first-seen order.
    let mut totals: Vec<(&'static str, String, f64)> = Vec::new();
    for _ in 0..swaps {
        let start = std::time::Instant::now();
        let offered = call(
            alice,
            "bridge_swap",
            json!([bob_peer, "1 dev", "2 par-dev"]),
        )
        .await?;
        let id = offered["id"]
            .as_str()
            .ok_or_else(|| setup("bridge_swap gave no id"))?
            .to_string();
        let deadline = start + Duration::from_secs(300);
        let (a, b) = loop {
            let a = call(alice, "bridge_status", json!([id])).await?;
            let b = call(bob, "bridge_status", json!([id]))
                .await
                .unwrap_or(Value::Null);
            if a["state"] == "completed" && b["state"] == "completed" {
                break (a, b);
            }
            if a["status"] == "failed" || b["status"] == "failed" {
                return Err(setup(format!("swap failed: {a} / {b}")));
            }
            if std::time::Instant::now() > deadline {
                return Err(setup(format!("swap not done in 300 s: {a} / {b}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        walls.push(start.elapsed());
        for (side, s) in [("initiator", &a), ("participant", &b)] {
            let history = s["history"].as_array().cloned().unwrap_or_default();
            for pair in history.windows(2) {
                let state = pair[0][0].as_str().unwrap_or_default().to_string();
                let secs = (pair[1][1].as_u64().unwrap_or(0))
                    .saturating_sub(pair[0][1].as_u64().unwrap_or(0))
                    as f64
                    / 1000.0;
                match totals.iter_mut().find(|t| t.0 == side && t.1 == state) {
                    Some(t) => t.2 += secs,
                    None => totals.push((side, state, secs)),
                }
            }
        }
    }
    let n = swaps.max(1) as f64;
    for t in &mut totals {
        t.2 /= n;
    }
    Ok((walls, totals))
}
