//! Applying and healing the faults of the schedule.

use std::{
    io::Write,
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use super::{
    byzantine::{self, Ammunition},
    invariants::{CLEAN_RESTART, CRASH},
    schedule::{Fault, Scheduled},
    Soak,
};

/// A fault being held.
pub struct Active {
    pub scheduled: Scheduled,
    /// When it is healed.
    pub until: Instant,
    pub state: State,
}

pub enum State {
    Plain,
    /// A kill that waits for the node's DKG session first.
    KillWhenInDkg {
        give_up: Instant,
    },
    /// Killed; its tip height just before.
    Killed {
        height: u64,
    },
    Slow {
        stopped: bool,
    },
    Byzantine {
        task: tokio::task::JoinHandle<()>,
        peer: tokio::sync::oneshot::Receiver<rusty_network::NetworkHandle>,
    },
    Disk {
        filler: PathBuf,
    },
}

/// Outcomes worth a line in the report, beside the counts.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct FaultNotes {
    pub kills_in_dkg: u64,
    pub mid_dkg_kills_without_a_session: u64,
    pub byzantine_banned: u64,
    pub byzantine_not_banned: Vec<String>,
    pub disk_full_node_exited: u64,
    pub disk_full_node_kept_running: u64,
    pub skipped: Vec<String>,
}

impl Soak {
    /// Starts a scheduled fault.
    pub(super) fn start_fault(&mut self, s: Scheduled) {
        let at = self.elapsed_secs();
        let until = Instant::now() + s.fault.duration();
        self.log(&format!("t+{at} s  start: {}", s.fault));
        let state = match &s.fault {
            Fault::Kill { node, mid_dkg, .. } => {
                if *mid_dkg {
                    State::KillWhenInDkg {
                        give_up: Instant::now() + Duration::from_secs(60),
                    }
                } else {
                    self.kill(*node, false)
                }
            }
            Fault::Stall { node, .. } => {
                self.cluster.pause(*node, true);
                State::Plain
            }
            Fault::Slow { .. } => State::Slow { stopped: false },
            Fault::ClockSkew {
                node, skew_secs, ..
            } => {
                self.restart_with_skew(*node, *skew_secs);
                State::Plain
            }
            Fault::Partition { side, .. } => {
                self.set_partition(side, true);
                State::Plain
            }
            Fault::Byzantine { target, kind, .. } => {
                let Some(addr) = self.cluster.node(*target).listen_addr().parse().ok() else {
                    return;
                };
                let ammo = self.ammunition(*target);
                let (tx, rx) = tokio::sync::oneshot::channel();
                let task = self.rt.spawn(byzantine::run(addr, *kind, ammo, tx));
                State::Byzantine { task, peer: rx }
            }
            Fault::DiskFull { .. } => match self.fill_disk() {
                Some(filler) => State::Disk { filler },
                None => {
                    self.notes
                        .skipped
                        .push(format!("t+{at} s {}: no tmpfs", s.fault));
                    return;
                }
            },
        };
        *self.fault_counts.entry(s.fault.kind()).or_default() += 1;
        self.active.push(Active {
            scheduled: s,
            until,
            state,
        });
    }

    /// One tick of the faults being held: kills waiting for a DKG, slow
    /// peers' stop/continue, and heals that are due.
    pub(super) fn tick_faults(&mut self) {
        let mut i = 0;
        while i < self.active.len() {
            let node = self.active[i].scheduled.fault.node();
            match &mut self.active[i].state {
                State::KillWhenInDkg { give_up } => {
                    let give_up = *give_up;
                    let node = node.unwrap_or(0);
                    let in_dkg = self.in_dkg(node);
                    if in_dkg || Instant::now() > give_up {
                        if !in_dkg {
                            self.notes.mid_dkg_kills_without_a_session += 1;
                        }
                        let down = self.active[i].scheduled.fault.duration();
                        self.active[i].until = Instant::now() + down;
                        self.active[i].state = self.kill(node, in_dkg);
                    }
                }
                State::Slow { stopped } => {
                    *stopped = !*stopped;
                    let stop = *stopped;
                    self.cluster.pause(node.unwrap_or(0), stop);
                }
                _ => {}
            }
            if Instant::now() >= self.active[i].until
                && !matches!(self.active[i].state, State::KillWhenInDkg { .. })
            {
                let a = self.active.swap_remove(i);
                self.heal(a);
            } else {
                i += 1;
            }
        }
    }

    /// Ends a fault.
    pub(super) fn heal(&mut self, a: Active) {
        let at = self.elapsed_secs();
        self.log(&format!("t+{at} s  heal:  {}", a.scheduled.fault));
        let label = a.scheduled.fault.to_string();
        match (a.scheduled.fault, a.state) {
            (Fault::Kill { node, .. }, State::Killed { height }) => {
                self.restart_after_kill(node, height);
                self.watch_convergence(label);
            }
            (Fault::Stall { node, .. } | Fault::Slow { node, .. }, _) => {
                self.cluster.pause(node, false);
            }
            (Fault::ClockSkew { node, .. }, _) => {
                self.restart_with_skew(node, 0);
                self.watch_convergence(label);
            }
            (Fault::Partition { side, .. }, _) => {
                self.set_partition(&side, false);
                // Heals awaited during the partition could not converge
                // across it: their clocks start now too.
                let now = Instant::now();
                self.convergence.iter_mut().for_each(|c| c.1 = now);
                self.watch_convergence(label);
            }
            (Fault::Byzantine { target, .. }, State::Byzantine { task, mut peer }) => {
                let handle = peer.try_recv().ok();
                let banned = handle.as_ref().is_some_and(|h| {
                    let me = h.peer_id().to_string();
                    matches!(
                        self.cluster.node(target).call("listbanned", json!([])),
                        Ok(v) if v.to_string().contains(&me)
                    )
                });
                if banned {
                    self.notes.byzantine_banned += 1;
                } else {
                    self.notes.byzantine_not_banned.push(label);
                }
                if let Some(h) = handle {
                    self.rt.block_on(h.shutdown());
                }
                task.abort();
            }
            (Fault::DiskFull { .. }, State::Disk { filler }) => {
                let _ = std::fs::remove_file(&filler);
                if let Some(d) = self.disk_node {
                    // Reap it if it stopped since the last tick.
                    let _ = self.cluster.nodes[d].exited();
                    if self.cluster.node(d).is_running() {
                        self.notes.disk_full_node_kept_running += 1;
                    } else {
                        self.notes.disk_full_node_exited += 1;
                        self.restart_after_kill(d, 0);
                        self.watch_convergence(label);
                    }
                }
            }
            _ => {}
        }
    }

    fn kill(&mut self, node: usize, in_dkg: bool) -> State {
        let height = self.cluster.node(node).height().unwrap_or(0);
        if in_dkg {
            self.notes.kills_in_dkg += 1;
        }
        self.cluster.kill9(node);
        State::Killed { height }
    }

    fn in_dkg(&self, node: usize) -> bool {
        self.cluster
            .node(node)
            .call("dkginfo", json!([]))
            .ok()
            .and_then(|v| v["activeSessions"].as_array().map(|a| !a.is_empty()))
            .unwrap_or(false)
    }

    /// Starts a node after a kill (or a crash): it must come up on its own,
    /// without repair, at or above the height it had.
    pub(super) fn restart_after_kill(&mut self, node: usize, height_before: u64) {
        let at = self.elapsed_secs();
        if self.cluster.node(node).is_running() {
            return;
        }
        match self.cluster.start(node) {
            Ok(()) => {
                self.checker.count(CLEAN_RESTART);
                self.reapply_partition();
                let h = self.cluster.node(node).height().unwrap_or(0);
                if h < height_before {
                    self.checker.violate(
                        at,
                        CLEAN_RESTART,
                        format!(
                            "node {node} came back at height {h}, below the {height_before} it had"
                        ),
                    );
                }
            }
            Err(e) => {
                let tail = self.log_tail(node);
                self.checker.violate(
                    at,
                    CLEAN_RESTART,
                    format!("node {node} did not restart: {e:#}; log: {tail}"),
                );
            }
        }
    }

    /// A node restarted during a partition forgot its bans: ban again.
    fn reapply_partition(&mut self) {
        let side = self.active.iter().find_map(|a| match &a.scheduled.fault {
            Fault::Partition { side, .. } => Some(side.clone()),
            _ => None,
        });
        if let Some(side) = side {
            self.set_partition(&side, true);
        }
    }

    fn restart_with_skew(&mut self, node: usize, skew: i64) {
        self.cluster.stop(node);
        self.cluster.nodes[node].clock_skew = skew;
        let at = self.elapsed_secs();
        match self.cluster.start(node) {
            Ok(()) => self.reapply_partition(),
            Err(e) => {
                let tail = self.log_tail(node);
                self.checker.violate(
                    at,
                    CRASH,
                    format!("node {node} did not start with clock skew {skew}: {e:#}; {tail}"),
                );
            }
        }
    }

    /// Bans (or unbans) across the cut, on every node that runs.
    fn set_partition(&mut self, side: &[usize], on: bool) {
        let n = self.cluster.len();
        for a in 0..n {
            for b in 0..n {
                if side.contains(&a) == side.contains(&b) {
                    continue;
                }
                let peer = self.cluster.node(b).peer_id.clone();
                if !self.cluster.node(a).is_live() || peer.is_empty() {
                    continue;
                }
                let params = if on {
                    json!([peer, "add", 3600])
                } else {
                    json!([peer, "remove"])
                };
                let _ = self.cluster.node(a).call("setban", params);
            }
        }
        if !on {
            // Bans of a node that was down when the partition began, or
            // that restarted during it, are gone; these are the rest.
            for a in 0..n {
                if self.cluster.node(a).is_live() {
                    let _ = self.cluster.node(a).call("clearbanned", json!([]));
                }
            }
        }
    }

    fn ammunition(&self, target: usize) -> Ammunition {
        let node = self.cluster.node(target);
        let tip = node.call("getbestblockhash", json!([])).ok();
        let tip_block = tip
            .as_ref()
            .and_then(Value::as_str)
            .and_then(|h| node.call("getblock", json!([h, 0])).ok())
            .and_then(|v| v.as_str().and_then(|s| hex::decode(s).ok()));
        let tip_height = node.height().unwrap_or(0);
        let quorum = node
            .call("quorum", json!(["list"]))
            .ok()
            .and_then(|v| first_hash(&v));
        let media = self
            .load
            .media
            .iter()
            .filter_map(|p| p.id.parse().ok())
            .collect();
        Ammunition {
            tip_block,
            tip_height,
            quorum,
            media,
        }
    }

    /// Fills the disk node's tmpfs; the filler's path, or `None` without a
    /// tmpfs.
    fn fill_disk(&mut self) -> Option<PathBuf> {
        let node = self.disk_node?;
        let filler = self.cluster.node(node).dir.join("filler");
        let mut f = std::fs::File::create(&filler).ok()?;
        let block = vec![0u8; 1 << 20];
        // Until the filesystem says no.
        while f.write_all(&block).is_ok() {}
        let _ = f.flush();
        Some(filler)
    }

    /// The last lines of node `i`'s log, for a violation's detail.
    pub(super) fn log_tail(&self, i: usize) -> String {
        let text = std::fs::read_to_string(self.cluster.node(i).log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(3).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

/// The first 64-hex-digit string anywhere in `v`.
pub(super) fn first_hash(v: &Value) -> Option<rusty_shared_types::Hash256> {
    match v {
        Value::String(s) if s.len() == 64 => s.parse().ok(),
        Value::Array(a) => a.iter().find_map(first_hash),
        Value::Object(o) => o.values().find_map(first_hash),
        _ => None,
    }
}
