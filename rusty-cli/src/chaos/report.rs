//! The soak's report: faults injected by kind, checks made by invariant,
//! violations, and what the load did. Printed, and written as
//! `report.txt` and `report.json` beside the nodes.

use std::{collections::BTreeMap, fmt::Write};

use serde::Serialize;
use serde_json::json;

use super::{
    faults::FaultNotes,
    invariants::Violation,
    load::{GovTally, MediaTally},
    Soak,
};

#[derive(Debug, Default, Clone, Serialize)]
pub struct PaymentOutcomes {
    pub confirmed: u64,
    /// Dropped, and every coin it spent is unspent in the sender's wallet.
    pub returned: u64,
    /// Dropped, its coins spent again by the same wallet or created by a
    /// block the chain left.
    pub inputs_respent_or_orphaned: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub minutes: f64,
    pub setup_secs: f64,
    pub nodes: usize,
    pub final_height: u64,
    pub chainlocks_seen: usize,
    pub faults: BTreeMap<&'static str, u64>,
    pub fault_notes: FaultNotes,
    pub checks: BTreeMap<&'static str, u64>,
    pub violations: Vec<Violation>,
    pub convergence_secs_max: f64,
    pub convergence_secs_median: f64,
    pub heals_converged: usize,
    pub payments_sent: usize,
    pub payment_send_errors: usize,
    pub payments: PaymentOutcomes,
    pub wallets_and_utxo_units: Option<(u128, u128)>,
    pub governance: GovTally,
    pub media: MediaTally,
    pub peak_rss_mib: BTreeMap<usize, u64>,
}

impl Soak {
    pub(super) fn report(&self, seed: u64, minutes: f64, setup_secs: f64) -> Report {
        let mut conv = self.convergence_secs.clone();
        conv.sort_by(f64::total_cmp);
        let final_height = self.final_height_seen;
        Report {
            seed,
            minutes,
            setup_secs,
            nodes: self.cluster.len(),
            final_height,
            chainlocks_seen: self.checker.locks.len(),
            faults: self.fault_counts.clone(),
            fault_notes: self.notes.clone(),
            checks: self.checker.checks.clone(),
            violations: self.checker.violations.clone(),
            convergence_secs_max: conv.last().copied().unwrap_or(0.0),
            convergence_secs_median: conv.get(conv.len() / 2).copied().unwrap_or(0.0),
            heals_converged: conv.len(),
            payments_sent: self.load.payments.len(),
            payment_send_errors: self.load.send_errors,
            payments: self.payment_outcomes.clone(),
            wallets_and_utxo_units: self.final_wallet_units,
            governance: self.load.gov.clone(),
            media: self.load.media_tally.clone(),
            peak_rss_mib: self
                .checker
                .peak_rss_kib
                .iter()
                .map(|(i, k)| (*i, k / 1024))
                .collect(),
        }
    }
}

impl Report {
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "chaos report: seed {}, {:.1} min of faults after {:.0} s of set-up, {} nodes, final height {}, {} ChainLocks seen",
            self.seed, self.minutes, self.setup_secs, self.nodes, self.final_height, self.chainlocks_seen
        );
        let _ = writeln!(
            s,
            "faults injected ({}):",
            self.faults.values().sum::<u64>()
        );
        for (k, n) in &self.faults {
            let _ = writeln!(s, "  {n:>5}  {k}");
        }
        let n = &self.fault_notes;
        let _ = writeln!(
            s,
            "  kills inside a DKG session: {}; byzantine peers banned {} of {}; disk-full: node exited {}, kept running {}",
            n.kills_in_dkg,
            n.byzantine_banned,
            n.byzantine_banned + n.byzantine_not_banned.len() as u64,
            n.disk_full_node_exited,
            n.disk_full_node_kept_running
        );
        for x in &n.byzantine_not_banned {
            let _ = writeln!(s, "  not banned: {x}");
        }
        for x in &n.skipped {
            let _ = writeln!(s, "  skipped: {x}");
        }
        let _ = writeln!(
            s,
            "invariant checks ({}):",
            self.checks.values().sum::<u64>()
        );
        for (k, n) in &self.checks {
            let _ = writeln!(s, "  {n:>7}  {k}");
        }
        let _ = writeln!(
            s,
            "convergence after heals: {} heals, median {:.1} s, max {:.1} s",
            self.heals_converged, self.convergence_secs_median, self.convergence_secs_max
        );
        let p = &self.payments;
        let _ = writeln!(
            s,
            "payments: {} accepted ({} refused by a wallet): {} confirmed, {} dropped and returned, {} dropped with coins re-spent or orphaned",
            self.payments_sent, self.payment_send_errors, p.confirmed, p.returned, p.inputs_respent_or_orphaned
        );
        if let Some((w, u)) = self.wallets_and_utxo_units {
            let _ = writeln!(s, "wallets hold {w} base units; the UTXO set {u}");
        }
        let g = &self.governance;
        let _ = writeln!(
            s,
            "governance: {} proposals, {} votes ({} tries before a proposal was mined or while a node was down); churn: {} registered late, {} revoked",
            g.proposals, g.votes, g.vote_errors, g.registered_late, g.revoked
        );
        let m = &self.media;
        let _ = writeln!(
            s,
            "media: {} files published, {} downloads: {} byte-identical, {} differing, {} unfinished (viewer killed or stalled); {} live streams saved by a viewer: {} byte-identical, {} with missing segments and exit 0, {} differing, {} unfinished or with missing segments reported",
            m.published, m.started, m.identical, m.differing, m.unfinished,
            m.live_streams, m.live_identical, m.live_gapped, m.live_differing, m.live_unfinished
        );
        let peak = self.peak_rss_mib.values().max().copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "peak memory of a node: {peak} MiB {}",
            json!(self.peak_rss_mib)
        );
        if self.violations.is_empty() {
            let _ = writeln!(s, "no invariant was broken");
        } else {
            let _ = writeln!(s, "VIOLATIONS ({}):", self.violations.len());
            for v in &self.violations {
                let _ = writeln!(s, "  t+{} s [{}] {}", v.at_secs, v.invariant, v.detail);
            }
        }
        s
    }
}
