//! The invariants, checked from outside over RPC while the faults run and
//! once more at the end. A broken invariant is recorded with what was seen;
//! the soak goes on, so that one run shows every failure it can.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::cluster::{Cluster, NodeProc};

/// A broken invariant: when (seconds into the fault phase) and what.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Violation {
    pub at_secs: u64,
    pub invariant: &'static str,
    pub detail: String,
}

/// State kept between checks.
#[derive(Default)]
pub struct Checker {
    /// Every ChainLock seen on any node: height → block hash.
    pub locks: BTreeMap<u64, String>,
    /// The ChainLocks each node has reported, so that a node that later
    /// leaves one of them has reorganised a locked block.
    seen_by: HashMap<usize, BTreeMap<u64, String>>,
    /// Cumulative unspendable (OP_RETURN) value up to and including each
    /// block, by block hash, with the block's parent and height.
    burned: HashMap<String, (u64, u128)>,
    /// Checks made, by invariant.
    pub checks: BTreeMap<&'static str, u64>,
    pub violations: Vec<Violation>,
    /// Peak resident memory per node, KiB.
    pub peak_rss_kib: BTreeMap<usize, u64>,
    pub max_rss_kib: u64,
    /// Peer ids of the soak's nodes (honest ones).
    pub honest: HashMap<String, usize>,
    /// (banning node, banned node) pairs already reported.
    reported_bans: std::collections::HashSet<(usize, usize)>,
}

pub const CHAINLOCK_CONFLICT: &str = "one ChainLock per height";
pub const LOCKED_REORG: &str = "no ChainLocked block reorganised";
pub const SUPPLY: &str = "supply = subsidy schedule";
pub const CONVERGENCE: &str = "convergence after heal";
pub const MEMORY: &str = "memory bound";
pub const HONEST_BANS: &str = "honest nodes never banned";
pub const CLEAN_RESTART: &str = "restart without repair";
pub const CRASH: &str = "no node crashes";
pub const WALLETS: &str = "wallets + fees = mined";
pub const PAYMENTS: &str = "payments confirmed or returned";
pub const MEDIA: &str = "downloads byte-identical";

impl Checker {
    pub fn new(max_rss_kib: u64) -> Checker {
        Checker {
            max_rss_kib,
            ..Checker::default()
        }
    }

    pub fn count(&mut self, invariant: &'static str) {
        *self.checks.entry(invariant).or_default() += 1;
    }

    pub fn violate(&mut self, at_secs: u64, invariant: &'static str, detail: String) {
        eprintln!("chaos: VIOLATION t+{at_secs} s [{invariant}] {detail}");
        self.violations.push(Violation {
            at_secs,
            invariant,
            detail,
        });
    }

    /// Reads node `i`'s best ChainLock: a second lock at a known height is
    /// a conflict; then every lock this node reported before must still be
    /// on its active chain.
    pub fn chainlocks(&mut self, at: u64, cluster: &Cluster, i: usize) {
        let node = cluster.node(i);
        let Ok(cl) = node.call("getbestchainlock", json!([])) else {
            return;
        };
        let (Some(height), Some(hash)) = (cl["height"].as_u64(), cl["blockhash"].as_str()) else {
            return;
        };
        self.count(CHAINLOCK_CONFLICT);
        match self.locks.get(&height) {
            Some(known) if known != hash => self.violate(
                at,
                CHAINLOCK_CONFLICT,
                format!("height {height}: node {i} has a lock on {hash}, another node on {known}"),
            ),
            Some(_) => {}
            None => {
                self.locks.insert(height, hash.to_string());
            }
        }
        // Only a lock on the node's own active chain binds it: a node cut
        // off from the quorums can hold a lock on a block it does not have
        // yet, and moving to that block is no reorganisation of a lock.
        let adopted = matches!(
            node.call("getblockhash", json!([height])),
            Ok(Value::String(active)) if active == hash
        );
        if adopted {
            self.seen_by
                .entry(i)
                .or_default()
                .insert(height, hash.to_string());
        }
        // The newest few locks this node adopted, and one older in turn.
        let seen: Vec<(u64, String)> = {
            let Some(mine) = self.seen_by.get(&i) else {
                return;
            };
            let mut v: Vec<_> = mine
                .iter()
                .rev()
                .take(3)
                .map(|(h, x)| (*h, x.clone()))
                .collect();
            if let Some((h, x)) = mine.iter().nth((at as usize) % mine.len().max(1)) {
                v.push((*h, x.clone()));
            }
            v
        };
        for (h, locked) in seen {
            let Ok(Value::String(active)) = node.call("getblockhash", json!([h])) else {
                continue;
            };
            self.count(LOCKED_REORG);
            if active != locked {
                self.violate(
                    at,
                    LOCKED_REORG,
                    format!("node {i} reported a ChainLock on {locked} at height {h}, and now has {active} there"),
                );
                // Report each once.
                if let Some(m) = self.seen_by.get_mut(&i) {
                    m.remove(&h);
                }
            }
        }
    }

    /// UTXO total + treasury + unspendable outputs (burned proposal fees) =
    /// what the subsidy schedule issued (each miner claims its whole reward;
    /// fees only move coins), on node `i`'s chain.
    pub fn supply(&mut self, at: u64, node: &NodeProc) {
        let Ok(info) = node.call("gettxoutsetinfo", json!([])) else {
            return;
        };
        let (Some(height), Some(tip), Some(utxo), Some(treasury)) = (
            info["height"].as_u64(),
            info["bestblock"].as_str(),
            info["total_amount_units"].as_u64(),
            info["treasury_units"].as_u64(),
        ) else {
            return;
        };
        let Some(burned) = self.burned_to(node, tip) else {
            return;
        };
        self.count(SUPPLY);
        let issued = issued_through(height);
        let held = u128::from(utxo) + u128::from(treasury) + burned;
        if held != issued {
            self.violate(
                at,
                SUPPLY,
                format!(
                    "node {} at height {height} ({tip}): UTXO {utxo} + treasury {treasury} + burned {burned} = {held}, but the schedule issued {issued}",
                    node.index
                ),
            );
        }
    }

    /// Unspendable value from genesis through `tip`, walking back to a
    /// block already counted (so each block is read once per branch).
    fn burned_to(&mut self, node: &NodeProc, tip: &str) -> Option<u128> {
        let mut path = Vec::new();
        let mut hash = tip.to_string();
        let base = loop {
            if let Some(&(_, total)) = self.burned.get(&hash) {
                break total;
            }
            let block = node.call("getblock", json!([hash, 2])).ok()?;
            let burned: u128 = block["tx"]
                .as_array()?
                .iter()
                .flat_map(|tx| tx["vout"].as_array().cloned().unwrap_or_default())
                .filter(|o| o["scriptPubKey"]["type"] == "nulldata")
                .filter_map(|o| coins_to_units(&o["value"]))
                .map(u128::from)
                .sum();
            let height = block["height"].as_u64()?;
            path.push((hash.clone(), height, burned));
            match block["previousblockhash"].as_str() {
                Some(prev) => hash = prev.to_string(),
                None => break 0,
            }
        };
        let mut total = base;
        for (hash, height, burned) in path.into_iter().rev() {
            total += burned;
            self.burned.insert(hash, (height, total));
        }
        Some(total)
    }

    /// Every node's resident memory under the bound.
    pub fn memory(&mut self, at: u64, cluster: &Cluster) {
        for n in &cluster.nodes {
            let Some(kib) = n.rss_kib() else { continue };
            self.count(MEMORY);
            let peak = self.peak_rss_kib.entry(n.index).or_default();
            *peak = (*peak).max(kib);
            if kib > self.max_rss_kib {
                self.violate(
                    at,
                    MEMORY,
                    format!(
                        "node {} uses {} MiB (bound {} MiB)",
                        n.index,
                        kib / 1024,
                        self.max_rss_kib / 1024
                    ),
                );
            }
        }
    }

    /// No honest node has banned another honest node on its own (bans the
    /// soak made with `setban` for partitions say so and are skipped).
    pub fn honest_bans(&mut self, at: u64, node: &NodeProc) {
        let Ok(Value::Array(bans)) = node.call("listbanned", json!([])) else {
            return;
        };
        self.count(HONEST_BANS);
        for b in bans {
            let reason = b["reason"].as_str().unwrap_or_default();
            if reason.starts_with("manual") {
                continue;
            }
            let text = b.to_string();
            let Some((peer, j)) = self.honest.iter().find(|(p, _)| text.contains(p.as_str()))
            else {
                continue;
            };
            let (peer, j) = (peer.clone(), *j);
            if self.reported_bans.insert((node.index, j)) {
                let detail = format!(
                    "node {} banned honest node {j} ({peer}): {reason}",
                    node.index
                );
                self.violate(at, HONEST_BANS, detail);
            }
        }
    }
}

/// Coins as RPC renders them (a JSON number) → base units, read the way
/// the node reads amounts (`rusty_node::rpc::parse_amount`).
pub fn coins_to_units(v: &Value) -> Option<u64> {
    rusty_node::rpc::parse_amount(v).ok().map(|a| a.units())
}

/// What blocks 0 through `height` of the dev chain issued: the genesis
/// block only its treasury share (its coinbase is a fixed message that
/// claims nothing), every later block its whole subsidy.
pub fn issued_through(height: u64) -> u128 {
    let params = rusty_shared_types::Network::Dev.params();
    let mut total = u128::from(params.treasury_reward(0).units());
    // Halvings are 840,000 blocks apart, so a soak's sum is a product; the
    // loop keeps it right for any height anyway.
    let mut h = 1u64;
    while h <= height {
        let subsidy = params.subsidy(h).units();
        let next_halving =
            (h / params.halving_interval.max(1) + 1) * params.halving_interval.max(1);
        let until = next_halving.min(height + 1);
        total += u128::from(subsidy) * u128::from(until - h);
        h = until;
    }
    total
}

/// The chain tips of `nodes`: (height, hash).
pub fn tips(cluster: &Cluster, nodes: &[usize]) -> Option<Vec<(usize, u64, String)>> {
    let mut out = Vec::new();
    for &i in nodes {
        let info = cluster.node(i).call("getblockchaininfo", json!([])).ok()?;
        out.push((
            i,
            info["blocks"].as_u64()?,
            info["bestblockhash"].as_str()?.to_string(),
        ));
    }
    Some(out)
}

/// Whether `nodes` agree: all hold the same block at the lowest of their
/// heights, and none is more than `slack` blocks ahead of it.
pub fn converged(cluster: &Cluster, nodes: &[usize], slack: u64) -> bool {
    let Some(tips) = tips(cluster, nodes) else {
        return false;
    };
    let Some(low) = tips.iter().map(|t| t.1).min() else {
        return true;
    };
    if tips.iter().any(|t| t.1 > low + slack) {
        return false;
    }
    let mut at_low = None;
    for &(i, h, ref hash) in &tips {
        let here = if h == low {
            hash.clone()
        } else {
            match cluster.node(i).call("getblockhash", json!([low])) {
                Ok(Value::String(s)) => s,
                _ => return false,
            }
        };
        match &at_low {
            None => at_low = Some(here),
            Some(x) if *x != here => return false,
            Some(_) => {}
        }
    }
    true
}
