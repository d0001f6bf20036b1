//! `rusty-cli bench abr`: the adaptive-bitrate rules of
//! [`rusty_media::abr`] over seeded bandwidth traces, scored with MPC's and
//! Pensieve's QoE (Σ bitrate − 4.3 × rebuffer s − Σ |Δ bitrate|, Mbit/s),
//! each beside the offline optimum of the same traces (the yardstick: what
//! a rule that knew the future would score).
//!
//! The ladder is the one `stream publish --transcode` makes for a 1080p30
//! source; segments are its 1 s; a trace gives each segment download the
//! rate of a provider set throttled by token buckets whose rates change,
//! with occasional deep drops. A simulation of the player's side: the same
//! code the node would run, fed with rates instead of a live swarm.
//!
//! [`nodes`] plays the same rules on real nodes, a provider throttled by
//! its token bucket as the trace says (`--node-traces`).

use std::fmt;

use rusty_media::{
    abr::{offline_optimum, seeded_trace, simulate, Qoe, Rule},
    ladder::{self, Rung, Source, SEGMENT_SECS},
};

pub mod nodes;

/// What to run.
#[derive(Debug, Clone)]
pub struct AbrBenchConfig {
    pub traces: u64,
    pub seed: u64,
    pub segments: usize,
    /// The traces' range, kbit/s.
    pub low_kbps: f64,
    pub high_kbps: f64,
    /// Traces also played on real nodes ([`nodes`]; 0: none), and their
    /// segments.
    pub node_traces: usize,
    pub node_segments: usize,
}

impl Default for AbrBenchConfig {
    fn default() -> Self {
        AbrBenchConfig {
            traces: 50,
            seed: 1,
            segments: 120,
            low_kbps: 300.0,
            high_kbps: 6_000.0,
            node_traces: 1,
            node_segments: 40,
        }
    }
}

/// One rule's means over the traces.
#[derive(Debug, Clone)]
pub struct RuleFigures {
    pub name: &'static str,
    pub qoe: f64,
    pub bitrate_mbps: f64,
    pub rebuffer_secs: f64,
    pub switches_mbps: f64,
}

#[derive(Debug, Clone)]
pub struct AbrBenchReport {
    pub config: AbrBenchConfig,
    pub bitrates: Vec<f64>,
    pub rules: Vec<RuleFigures>,
    /// Mean offline-optimum QoE.
    pub optimum: f64,
}

/// The ladder `stream publish --transcode` makes for a 1080p30 source.
pub fn rungs() -> Vec<Rung> {
    let source = Source {
        width: 1920,
        height: 1080,
        fps: 30.0,
        audio: false,
    };
    ladder::plan(&source).unwrap_or_default()
}

/// Runs every rule and the optimum over the same traces (simulated).
pub fn run_abr_bench(config: AbrBenchConfig) -> AbrBenchReport {
    let bitrates: Vec<f64> = rungs().iter().map(|r| f64::from(r.video_kbps)).collect();
    let seg = f64::from(SEGMENT_SECS);
    let traces: Vec<_> = (0..config.traces)
        .map(|i| {
            seeded_trace(
                config.seed.wrapping_add(i),
                config.segments,
                config.low_kbps,
                config.high_kbps,
            )
        })
        .collect();
    let n = traces.len().max(1) as f64;
    let rules = Rule::ALL
        .iter()
        .map(|&rule| {
            let mut sum = Qoe::default();
            let mut qoe = 0.0;
            for t in &traces {
                let q = simulate(rule, &bitrates, seg, t);
                qoe += q.score();
                sum.bitrate += q.bitrate / q.segments.max(1) as f64;
                sum.rebuffer_secs += q.rebuffer_secs;
                sum.switches += q.switches;
            }
            RuleFigures {
                name: rule.name(),
                qoe: qoe / n,
                bitrate_mbps: sum.bitrate / n,
                rebuffer_secs: sum.rebuffer_secs / n,
                switches_mbps: sum.switches / n,
            }
        })
        .collect();
    let optimum = traces
        .iter()
        .map(|t| offline_optimum(&bitrates, seg, t))
        .sum::<f64>()
        / n;
    AbrBenchReport {
        config,
        bitrates,
        rules,
        optimum,
    }
}

impl fmt::Display for AbrBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "ABR: {} seeded traces (seed {}), {} × {} s segments, {:.0}–{:.0} kbit/s; ladder {} kbit/s",
            c.traces,
            c.seed,
            c.segments,
            SEGMENT_SECS,
            c.low_kbps,
            c.high_kbps,
            self.bitrates
                .iter()
                .map(|b| format!("{b:.0}"))
                .collect::<Vec<_>>()
                .join(" / ")
        )?;
        writeln!(
            f,
            "  {:<12} {:>9} {:>8} {:>15} {:>12} {:>14}",
            "rule", "QoE", "of opt.", "mean Mbit/s", "rebuffer s", "Σ|Δ| Mbit/s"
        )?;
        for r in &self.rules {
            writeln!(
                f,
                "  {:<12} {:>9.1} {:>7.0}% {:>15.2} {:>12.2} {:>14.1}",
                r.name,
                r.qoe,
                100.0 * r.qoe / self.optimum,
                r.bitrate_mbps,
                r.rebuffer_secs,
                r.switches_mbps
            )?;
        }
        write!(
            f,
            "  {:<12} {:>9.1} {:>7}%  (yardstick: knows each trace in advance)",
            "offline opt.", self.optimum, 100
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_scores_every_rule_below_the_optimum() {
        let r = run_abr_bench(AbrBenchConfig {
            traces: 3,
            segments: 40,
            ..AbrBenchConfig::default()
        });
        assert_eq!(r.bitrates.len(), 5);
        assert_eq!(r.rules.len(), 3);
        for rule in &r.rules {
            assert!(rule.qoe <= r.optimum + 0.5, "{rule:?} vs {}", r.optimum);
        }
        assert!(r.to_string().contains("BOLA-E"));
    }
}
