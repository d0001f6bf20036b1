//! `rusty-cli chaos`: a soak of a local masternode network of real node
//! processes under load, with faults from a seeded schedule and invariants
//! checked from outside over RPC (Jepsen's shape: the system under test is
//! a black box, the checker only reads what users can read).
//!
//! Layout: two miners (nodes 0 and 1), seven masternode processes (six
//! registered at set-up, one registered mid-soak and one revoked: churn),
//! a media publisher and a plain node whose datadir sits on a small tmpfs
//! (disk-full faults; root only). See `docs/reliability.md`.

mod byzantine;
mod cluster;
mod faults;
mod invariants;
mod load;
mod report;
mod schedule;
mod setup;

use std::{
    collections::BTreeMap,
    io::Write,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use self::{
    cluster::{Cluster, Role},
    faults::{Active, FaultNotes},
    invariants::{Checker, CONVERGENCE, CRASH},
    load::Load,
    schedule::{Fault, Scheduled, Targets},
};
use crate::args::{ChaosArgs, GlobalArgs};

/// Node roles, by index.
const ROLES: [Role; 11] = [
    Role::Miner,
    Role::Miner,
    Role::Masternode,
    Role::Masternode,
    Role::Masternode,
    Role::Masternode,
    Role::Masternode,
    Role::Masternode,
    Role::Masternode,
    Role::Plain,
    Role::Plain,
];
/// Registered at set-up: nodes 2 to 7; node 8 joins mid-soak.
const SPARE_MASTERNODE: usize = 8;
const PUBLISHER: usize = 9;
const DISK_NODE: usize = 10;

/// The running soak.
pub struct Soak {
    cluster: Cluster,
    rt: tokio::runtime::Runtime,
    schedule: Vec<Scheduled>,
    active: Vec<Active>,
    checker: Checker,
    load: Load,
    notes: FaultNotes,
    fault_counts: BTreeMap<&'static str, u64>,
    /// Heals whose convergence is awaited: (what, since).
    convergence: Vec<(String, Instant)>,
    convergence_secs: Vec<f64>,
    converge_bound: Duration,
    disk_node: Option<usize>,
    tmpfs: Option<PathBuf>,
    started: Instant,
    log_file: std::fs::File,
    /// pro_tx_hash of each registered masternode, by node.
    pro_tx: BTreeMap<usize, String>,
    /// The fault phase's length.
    length: Duration,
    /// Churn steps done (0, 1: spare registered, 2: one revoked).
    churned: u8,
    /// Wallet total and UTXO total at the end.
    final_wallet_units: Option<(u128, u128)>,
    payment_outcomes: report::PaymentOutcomes,
    /// Node 0's height at the end.
    final_height_seen: u64,
}

pub fn run(g: &GlobalArgs, a: &ChaosArgs) -> Result<()> {
    let seed = a.seed.unwrap_or_else(rand::random);
    let length = Duration::from_secs_f64((a.minutes * 60.0).max(10.0));
    let base = match &g.datadir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("rusty-chaos-{seed}-{}", std::process::id())),
    };
    if base.exists() && std::fs::read_dir(&base)?.next().is_some() {
        anyhow::bail!(
            "{} is not empty: the soak needs a fresh directory (--datadir)",
            base.display()
        );
    }
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let replay = format!(
        "rusty-cli chaos --seed {seed} --minutes {}{}",
        a.minutes,
        if a.masternodes_together {
            " --masternodes-together"
        } else {
            ""
        }
    );
    println!("chaos: seed {seed}; replay with: {replay}");
    println!("chaos: files under {}", base.display());

    let mut cluster = Cluster::new(&base, &ROLES)?;
    let tmpfs = setup::mount_tmpfs(&cluster.node(DISK_NODE).dir);
    let disk_node = match &tmpfs {
        Ok(_) => Some(DISK_NODE),
        Err(why) => {
            println!("chaos: disk-full faults skipped: {why}");
            None
        }
    };
    for (i, role) in ROLES.iter().enumerate() {
        if *role == Role::Masternode {
            setup::write_operator_key(&cluster.node(i).operator_key_path())?;
        }
    }
    let targets = Targets {
        nodes: cluster.len(),
        miners: vec![0, 1],
        masternodes: (2..=SPARE_MASTERNODE).collect(),
        disk_node,
        split_masternodes: !a.masternodes_together,
    };
    let schedule = schedule::generate(seed, length, &targets);
    let schedule_text: String = schedule.iter().map(|s| format!("{s}\n")).collect();
    std::fs::write(base.join("schedule.txt"), &schedule_text)?;
    println!(
        "chaos: {} faults scheduled over {:.1} min (schedule.txt)",
        schedule.len(),
        length.as_secs_f64() / 60.0
    );
    cluster.nodes.iter_mut().for_each(|n| n.mine = false);
    let work = base.join("work");
    std::fs::create_dir_all(&work)?;
    let mut soak = Soak {
        cluster,
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?,
        schedule,
        active: Vec::new(),
        checker: Checker::new(a.max_rss_mb.saturating_mul(1024)),
        load: Load::new(seed, work, PUBLISHER, (2..SPARE_MASTERNODE).collect()),
        notes: FaultNotes::default(),
        fault_counts: BTreeMap::new(),
        convergence: Vec::new(),
        convergence_secs: Vec::new(),
        converge_bound: Duration::from_secs(a.converge_secs),
        disk_node,
        tmpfs: tmpfs.ok(),
        started: Instant::now(),
        log_file: std::fs::File::create(base.join("chaos.log"))?,
        pro_tx: BTreeMap::new(),
        length,
        churned: 0,
        final_wallet_units: None,
        payment_outcomes: report::PaymentOutcomes::default(),
        final_height_seen: 0,
    };
    let setup_started = Instant::now();
    let result = soak.set_up().map(|()| {
        let setup_secs = setup_started.elapsed().as_secs_f64();
        println!("chaos: set-up done in {setup_secs:.0} s; faults start");
        soak.started = Instant::now();
        soak.run_faults(length);
        soak.finish();
        setup_secs
    });
    let setup_secs = match result {
        Ok(s) => s,
        Err(e) => {
            soak.cluster.stop_all();
            soak.unmount();
            return Err(e.context(format!(
                "chaos set-up failed (seed {seed}); files kept in {}",
                base.display()
            )));
        }
    };
    soak.cluster.stop_all();
    soak.unmount();
    let report = soak.report(seed, a.minutes, setup_secs);
    let text = report.render();
    println!("{text}");
    std::fs::write(base.join("report.txt"), &text)?;
    std::fs::write(
        base.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    if let Some(path) = &a.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    if !soak.checker.violations.is_empty() {
        eprintln!("chaos: FAILED; replay with: {replay}");
        eprintln!("chaos: the fault schedule:\n{schedule_text}");
        eprintln!("chaos: files kept in {}", base.display());
        anyhow::bail!("{} invariant violations", soak.checker.violations.len());
    }
    if !a.keep && g.datadir.is_none() {
        let _ = std::fs::remove_dir_all(&base);
    }
    Ok(())
}

impl Soak {
    fn elapsed_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    fn log(&mut self, line: &str) {
        println!("chaos: {line}");
        let _ = writeln!(self.log_file, "{line}");
    }

    /// Nodes the checks and the load may use now: running, not stopped by
    /// a stall or slow fault.
    fn usable_nodes(&self) -> Vec<bool> {
        let held: Vec<usize> = self
            .active
            .iter()
            .filter(|a| matches!(a.scheduled.fault, Fault::Stall { .. } | Fault::Slow { .. }))
            .filter_map(|a| a.scheduled.fault.node())
            .collect();
        (0..self.cluster.len())
            .map(|i| self.cluster.node(i).is_live() && !held.contains(&i))
            .collect()
    }

    fn watch_convergence(&mut self, label: String) {
        self.convergence.push((label, Instant::now()));
    }

    fn partitioned(&self) -> bool {
        self.active
            .iter()
            .any(|a| matches!(a.scheduled.fault, Fault::Partition { .. }))
    }

    /// The fault phase: faults start on time, load and checks run between.
    fn run_faults(&mut self, length: Duration) {
        let mut next = 0;
        let mut tick = 0u64;
        let mut last_progress = Instant::now();
        while self.started.elapsed() < length {
            let t0 = Instant::now();
            while next < self.schedule.len() && self.schedule[next].at <= self.started.elapsed() {
                let s = self.schedule[next].clone();
                next += 1;
                self.start_fault(s);
            }
            self.tick_faults();
            self.tick(tick);
            tick += 1;
            if last_progress.elapsed() > Duration::from_secs(30) {
                last_progress = Instant::now();
                self.progress();
            }
            if let Some(rest) = Duration::from_millis(500).checked_sub(t0.elapsed()) {
                std::thread::sleep(rest);
            }
        }
    }

    /// One round of load and checks.
    fn tick(&mut self, tick: u64) {
        let at = self.elapsed_secs();
        self.reap_crashes(at);
        let usable = self.usable_nodes();
        self.load.step(&self.cluster, &|i| usable[i]);
        self.churn_step();
        let live: Vec<usize> = (0..usable.len()).filter(|&i| usable[i]).collect();
        // ChainLocks every other tick on every usable node.
        if tick.is_multiple_of(2) {
            for &i in &live {
                self.checker.chainlocks(at, &self.cluster, i);
            }
        }
        if tick.is_multiple_of(10) {
            self.checker.memory(at, &self.cluster);
            for &i in &live {
                self.checker.honest_bans(at, self.cluster.node(i));
            }
        }
        if tick % 20 == 5 && !live.is_empty() {
            let i = live[(tick as usize / 20) % live.len()];
            self.checker.supply(at, self.cluster.node(i));
        }
        self.check_convergence(at, &live);
    }

    /// A node that exited on its own: a crash, unless its disk is full.
    fn reap_crashes(&mut self, at: u64) {
        for i in 0..self.cluster.len() {
            let Some(status) = self.cluster.nodes[i].exited() else {
                continue;
            };
            let disk_full = self
                .active
                .iter()
                .any(|a| matches!(a.scheduled.fault, Fault::DiskFull { .. }));
            if disk_full && Some(i) == self.disk_node {
                self.log(&format!(
                    "t+{at} s  node {i} stopped with its disk full ({status})"
                ));
                continue;
            }
            let tail = self.log_tail(i);
            // Stopped by the full disk, but only after the fault was healed
            // (its shutdown can outlast a short fault): restart it.
            if Some(i) == self.disk_node && tail.contains("database write failed") {
                self.log(&format!(
                    "t+{at} s  node {i} stopped for its full disk ({status}); restarting"
                ));
                self.notes.disk_full_node_exited += 1;
                self.notes.disk_full_node_kept_running =
                    self.notes.disk_full_node_kept_running.saturating_sub(1);
                self.restart_after_kill(i, 0);
                self.watch_convergence(format!("node {i} restarted after its disk was full"));
                continue;
            }
            self.checker.violate(
                at,
                CRASH,
                format!("node {i} exited on its own ({status}): {tail}"),
            );
            self.restart_after_kill(i, 0);
        }
    }

    fn check_convergence(&mut self, at: u64, live: &[usize]) {
        if self.convergence.is_empty() || self.partitioned() {
            return;
        }
        self.checker.count(CONVERGENCE);
        if invariants::converged(&self.cluster, live, 2) {
            for (label, since) in self.convergence.drain(..) {
                let secs = since.elapsed().as_secs_f64();
                self.convergence_secs.push(secs);
                let _ = writeln!(
                    self.log_file,
                    "t+{at} s  converged {secs:.1} s after: {label}"
                );
            }
            return;
        }
        let bound = self.converge_bound;
        let late: Vec<String> = self
            .convergence
            .iter()
            .filter(|(_, since)| since.elapsed() > bound)
            .map(|(l, _)| l.clone())
            .collect();
        if !late.is_empty() {
            let tips = invariants::tips(&self.cluster, live).unwrap_or_default();
            self.checker.violate(
                at,
                CONVERGENCE,
                format!(
                    "no common tip {} s after: {}; tips {tips:?}",
                    bound.as_secs(),
                    late.join("; ")
                ),
            );
            self.convergence
                .retain(|(_, since)| since.elapsed() <= bound);
        }
    }

    fn progress(&mut self) {
        let at = self.elapsed_secs();
        let height = self
            .cluster
            .live()
            .first()
            .and_then(|&i| self.cluster.node(i).height())
            .unwrap_or(0);
        let line = format!(
            "t+{at} s  height {height}, {} ChainLocks, {} payments, {} faults, {} violations",
            self.checker.locks.len(),
            self.load.payments.len(),
            self.fault_counts.values().sum::<u64>(),
            self.checker.violations.len()
        );
        self.log(&line);
    }

    fn unmount(&mut self) {
        if let Some(dir) = self.tmpfs.take() {
            setup::unmount_tmpfs(&dir);
        }
    }
}
