//! Set-up before the faults (funded wallets, registered masternodes, a
//! first ChainLock), masternode churn during them, and the final phase
//! after them (every fault healed, mining stopped, mempools drained, the
//! end-state invariants).

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{
    faults::first_hash,
    invariants::{self, CONVERGENCE, LOCKED_REORG, MEDIA, PAYMENTS, WALLETS},
    Soak, PUBLISHER, SPARE_MASTERNODE,
};

/// A tmpfs this small fills in a moment, and still holds a dev chain.
const TMPFS_SIZE: &str = "size=192m";

/// Mounts a tmpfs on `dir` (root only); `Err` says why not.
pub fn mount_tmpfs(dir: &Path) -> Result<std::path::PathBuf, String> {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", TMPFS_SIZE, "tmpfs"])
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(dir.to_path_buf())
    } else {
        Err(format!(
            "cannot mount a tmpfs for the disk node (needs root): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub fn unmount_tmpfs(dir: &Path) {
    let _ = Command::new("umount").arg(dir).status();
}

/// A fresh BLS operator key, written as `rusty-cli masternode genkey` does.
pub fn write_operator_key(path: &Path) -> Result<()> {
    let key = rusty_crypto::bls::SecretKey::generate(&mut rand::rngs::OsRng);
    rusty_crypto::keystore::write_private(path, hex::encode(key.to_bytes()).as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + limit;
    let mut last_note = Instant::now();
    while !done() {
        if Instant::now() > deadline {
            bail!("timed out after {} s waiting for {what}", limit.as_secs());
        }
        if last_note.elapsed() > Duration::from_secs(15) {
            println!("chaos: still waiting for {what}");
            last_note = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

impl Soak {
    fn call(&self, i: usize, method: &str, params: Value) -> Result<Value> {
        self.cluster.node(i).call(method, params)
    }

    fn generate(&self, i: usize, n: u64) -> Result<()> {
        let addr = self.call(i, "getnewaddress", json!([]))?;
        self.cluster
            .node(i)
            .call_slow("generatetoaddress", json!([n, addr]))?;
        Ok(())
    }

    fn all_synced(&self, slack: u64) -> bool {
        let live = self.cluster.live();
        invariants::converged(&self.cluster, &live, slack)
    }

    /// Starts the nodes, funds the wallets, registers six masternodes and
    /// waits for the first ChainLock; then the miners start.
    pub(super) fn set_up(&mut self) -> Result<()> {
        self.cluster.start(0)?;
        self.generate(0, 30)?;
        for i in 1..self.cluster.len() {
            self.cluster.start(i)?;
        }
        println!("chaos: {} nodes up", self.cluster.len());
        for i in 0..self.cluster.len() {
            let peer = self.cluster.node(i).peer_id.clone();
            self.checker.honest.insert(peer, i);
            let addr = self.call(i, "getnewaddress", json!([]))?;
            self.load
                .addresses
                .push(addr.as_str().unwrap_or_default().to_string());
        }
        wait_until("every node to sync", Duration::from_secs(120), || {
            self.all_synced(0)
        })?;
        // Collateral and fees for each masternode process, spending money
        // for the other wallets that pay.
        for i in 1..self.cluster.len() {
            let coins = if (2..=SPARE_MASTERNODE).contains(&i) {
                12
            } else {
                200
            };
            let to = self.load.addresses[i].clone();
            self.call(0, "sendtoaddress", json!([to, coins]))
                .with_context(|| format!("funding node {i}"))?;
        }
        self.generate(0, 2)?;
        wait_until(
            "the funding to reach every node",
            Duration::from_secs(120),
            || self.all_synced(0),
        )?;
        for i in 2..SPARE_MASTERNODE {
            self.register(i)?;
        }
        // A registration may reach node 0's mempool after a block: mine
        // until every one is in.
        let mut last_block: Option<Instant> = None;
        wait_until(
            "six masternodes on every node",
            Duration::from_secs(120),
            || {
                if last_block.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
                    last_block = Some(Instant::now());
                    let _ = self.generate(0, 1);
                }
                self.cluster.live().iter().all(|&i| {
                    self.call(i, "masternode", json!(["count"]))
                        .ok()
                        .and_then(|v| v["total"].as_u64().or(v.as_u64()))
                        == Some(6)
                })
            },
        )?;
        for m in [0, 1] {
            self.cluster.stop(m);
            self.cluster.nodes[m].mine = true;
            self.cluster.start(m)?;
        }
        println!("chaos: miners on; waiting for quorums and a first ChainLock");
        wait_until("a first ChainLock", Duration::from_secs(400), || {
            self.call(0, "getbestchainlock", json!([]))
                .is_ok_and(|v| v["height"].is_u64())
        })?;
        self.load.senders = vec![0, 1, PUBLISHER, super::DISK_NODE];
        Ok(())
    }

    /// `protx register` from node `i`'s own wallet, with its own address.
    fn register(&mut self, i: usize) -> Result<()> {
        let key = std::fs::read_to_string(self.cluster.node(i).operator_key_path())?;
        let secret: [u8; 32] = hex::decode(key.trim())?
            .try_into()
            .map_err(|_| anyhow::anyhow!("operator key of node {i} is not 32 bytes"))?;
        let public = rusty_crypto::bls::SecretKey::from_bytes(&secret)?.public_key();
        let service = format!(
            "{}/p2p/{}",
            self.cluster.node(i).listen_addr(),
            self.cluster.node(i).peer_id
        );
        let reply = self.call(
            i,
            "protx",
            json!(["register", hex::encode(public.to_bytes()), service]),
        )?;
        let pro = first_hash(&reply)
            .map(|h| h.to_string())
            .with_context(|| format!("protx register on node {i} returned {reply}"))?;
        self.pro_tx.insert(i, pro);
        Ok(())
    }

    /// Masternode churn: the spare registers a third of the way in, and
    /// node 7 is revoked two thirds in (each from its own wallet).
    pub(super) fn churn_step(&mut self) {
        let done = self.started.elapsed().as_secs_f64() / self.length.as_secs_f64().max(1.0);
        let at = self.elapsed_secs();
        if self.churned == 0 && done > 1.0 / 3.0 && self.cluster.node(SPARE_MASTERNODE).is_live() {
            self.churned = 1;
            match self.register(SPARE_MASTERNODE) {
                Ok(()) => {
                    self.load.gov.registered_late += 1;
                    self.log(&format!(
                        "t+{at} s  churn: node {SPARE_MASTERNODE} registers as a masternode"
                    ));
                }
                Err(e) => self.log(&format!(
                    "t+{at} s  churn: registering node {SPARE_MASTERNODE} failed: {e:#}"
                )),
            }
        }
        let revoked = SPARE_MASTERNODE - 1;
        if self.churned == 1 && done > 2.0 / 3.0 && self.cluster.node(revoked).is_live() {
            self.churned = 2;
            let Some(pro) = self.pro_tx.get(&revoked).cloned() else {
                return;
            };
            match self.call(revoked, "protx", json!(["revoke", pro])) {
                Ok(_) => {
                    self.load.gov.revoked += 1;
                    self.log(&format!(
                        "t+{at} s  churn: node {revoked} revokes its masternode"
                    ));
                }
                Err(e) => self.log(&format!(
                    "t+{at} s  churn: revoking node {revoked} failed: {e:#}"
                )),
            }
        }
    }

    /// Heals everything, stops the miners, drains the mempools and checks
    /// the end state.
    pub(super) fn finish(&mut self) {
        let at = self.elapsed_secs();
        self.log(&format!("t+{at} s  final phase: healing every fault"));
        for a in std::mem::take(&mut self.active) {
            self.heal(a);
        }
        for i in 0..self.cluster.len() {
            if !self.cluster.node(i).is_running() {
                self.restart_after_kill(i, 0);
            }
        }
        for m in [0, 1] {
            self.cluster.stop(m);
            self.cluster.nodes[m].mine = false;
            if let Err(e) = self.cluster.start(m) {
                self.checker.violate(
                    at,
                    super::invariants::CRASH,
                    format!("miner {m} did not restart: {e:#}"),
                );
            }
        }
        let bound = self.converge_bound;
        // Mine until every node is on one tip with an empty mempool: each
        // payment confirms or is dropped back into its wallet. A payment a
        // restarted miner never heard of reaches it when its sender
        // publishes it again (65 s), hence the time, a block a second.
        let mut synced = false;
        let deadline = Instant::now() + bound + Duration::from_secs(90);
        while Instant::now() < deadline {
            synced = wait_until("every node on one tip", bound, || self.all_synced(0)).is_ok();
            if !synced {
                break;
            }
            let pending: u64 = self
                .cluster
                .live()
                .iter()
                .filter_map(|&i| self.call(i, "getmempoolinfo", json!([])).ok())
                .filter_map(|v| v["size"].as_u64())
                .sum();
            if pending == 0 {
                break;
            }
            let _ = self.generate(0, 1);
            std::thread::sleep(Duration::from_secs(1));
        }
        self.load.finish_downloads(Duration::from_secs(120));
        let at = self.elapsed_secs();
        self.checker.count(CONVERGENCE);
        // The last block mined above may still be on its way.
        if !(synced && wait_until("every node on one tip", bound, || self.all_synced(0)).is_ok()) {
            let live = self.cluster.live();
            let tips = invariants::tips(&self.cluster, &live).unwrap_or_default();
            self.checker.violate(
                at,
                CONVERGENCE,
                format!("the nodes did not end on one tip: {tips:?}"),
            );
        }
        for i in self.cluster.live() {
            self.checker.supply(at, self.cluster.node(i));
            self.checker.honest_bans(at, self.cluster.node(i));
        }
        self.checker.memory(at, &self.cluster);
        self.final_height_seen = self.cluster.node(0).height().unwrap_or(0);
        self.final_locks(at);
        self.final_wallets(at);
        self.final_payments(at);
        let m = self.load.media_tally.clone();
        self.checker.count(MEDIA);
        if m.live_gapped > 0 {
            self.checker.violate(
                at,
                MEDIA,
                format!(
                    "{} saved live streams miss segments and their viewer exited 0",
                    m.live_gapped
                ),
            );
        }
        if m.differing > 0 || m.live_differing > 0 {
            self.checker.violate(
                at,
                MEDIA,
                format!(
                    "{} of {} finished downloads and {} of {} saved live streams differ from the published bytes",
                    m.differing,
                    m.differing + m.identical,
                    m.live_differing,
                    m.live_differing + m.live_identical
                ),
            );
        }
    }

    /// Every ChainLock seen during the soak is on the final chain.
    fn final_locks(&mut self, at: u64) {
        let locks: Vec<(u64, String)> = self
            .checker
            .locks
            .iter()
            .map(|(h, x)| (*h, x.clone()))
            .collect();
        // The highest node's chain (they should all be one by now).
        let Some(top) = self
            .cluster
            .live()
            .into_iter()
            .max_by_key(|&i| self.cluster.node(i).height().unwrap_or(0))
        else {
            return;
        };
        for (h, hash) in locks {
            self.checker.count(LOCKED_REORG);
            match self.call(top, "getblockhash", json!([h])) {
                Ok(Value::String(active)) if active == hash => {}
                Ok(other) => self.checker.violate(
                    at,
                    LOCKED_REORG,
                    format!(
                        "the final chain has {other} at height {h}, where {hash} was ChainLocked"
                    ),
                ),
                Err(e) => self.checker.violate(
                    at,
                    LOCKED_REORG,
                    format!("node {top} cannot say which block is at locked height {h}: {e:#}"),
                ),
            }
        }
    }

    /// Every coin is in some node's wallet: the wallets' totals are the
    /// UTXO set's (fees went to the miners' wallets; the treasury and the
    /// burned proposal fees are outside the UTXO set).
    fn final_wallets(&mut self, at: u64) {
        let mut wallets: u128 = 0;
        for i in 0..self.cluster.len() {
            let Ok(b) = self.call(i, "getbalances", json!([])) else {
                self.checker
                    .violate(at, WALLETS, format!("node {i}'s wallet does not answer"));
                return;
            };
            let mine = &b["mine"];
            for field in ["trusted", "untrusted_pending", "immature", "locked"] {
                wallets += u128::from(invariants::coins_to_units(&mine[field]).unwrap_or(0));
            }
        }
        let Ok(info) = self.call(0, "gettxoutsetinfo", json!([])) else {
            return;
        };
        let utxo = u128::from(info["total_amount_units"].as_u64().unwrap_or(0));
        self.checker.count(WALLETS);
        if wallets != utxo {
            self.checker.violate(
                at,
                WALLETS,
                format!("the wallets hold {wallets} base units, the UTXO set {utxo}"),
            );
        }
        self.final_wallet_units = Some((wallets, utxo));
    }

    /// Each payment is confirmed, or every coin it spent is unspent again
    /// and in the sender's wallet.
    fn final_payments(&mut self, at: u64) {
        let payments = self.load.payments.clone();
        let mut unspent_by_node: std::collections::HashMap<usize, String> = Default::default();
        for p in payments {
            self.checker.count(PAYMENTS);
            let tx = self.call(0, "getrawtransaction", json!([p.txid, true]));
            let confirmed = tx
                .as_ref()
                .is_ok_and(|t| t["confirmations"].as_u64().is_some_and(|c| c > 0));
            if confirmed {
                self.payment_outcomes.confirmed += 1;
                continue;
            }
            let listed = unspent_by_node.entry(p.from).or_insert_with(|| {
                self.cluster
                    .node(p.from)
                    .call("listunspent", json!([0]))
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            });
            let mut back = true;
            let mut gone = false;
            for (txid, vout) in &p.inputs {
                match self
                    .cluster
                    .node(0)
                    .call("gettxout", json!([txid, vout, false]))
                {
                    Ok(Value::Null) => gone = true,
                    Ok(_) => back &= listed.contains(txid.as_str()),
                    Err(_) => back = false,
                }
            }
            if gone {
                // Spent by a later payment of the same wallet (the first was
                // dropped), or created by a block the chain left.
                self.payment_outcomes.inputs_respent_or_orphaned += 1;
            } else if back {
                self.payment_outcomes.returned += 1;
            } else {
                self.checker.violate(
                    at,
                    PAYMENTS,
                    format!("payment {} from node {} is not confirmed and its coins are not back in the wallet", p.txid, p.from),
                );
            }
        }
    }
}
