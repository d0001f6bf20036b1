//! `rusty-cli bench select`: provider policies over seeded provider
//! schedules, the classic heuristic beside the learner, both beside an
//! oracle that knows the true schedule (the yardstick), in one run.
//!
//! Each scenario runs over `seeds` seeds, as a 64 MiB file (time to fetch)
//! and as a stream played at `bitrate` (start-up delay, stall seconds).
//! The decision rule of the issue: the learner is the right default only
//! if its median fetch time beats the classic one and no seed is more than
//! 5 % worse.

use std::fmt;

use rusty_media::selection::sim::{run, Mode, Scenario, Which};

#[derive(Debug, Clone)]
pub struct SelectBenchConfig {
    pub seeds: u64,
    pub size: u64,
    /// Stream bitrate, bytes/s.
    pub bitrate: f64,
}

impl Default for SelectBenchConfig {
    fn default() -> Self {
        SelectBenchConfig {
            seeds: 8,
            size: 64 << 20,
            bitrate: 1_000_000.0,
        }
    }
}

/// One policy in one scenario, medians over seeds.
#[derive(Debug, Clone)]
pub struct PolicyFigures {
    pub which: Which,
    pub fetch_secs: f64,
    pub startup_secs: f64,
    pub stall_secs: f64,
    /// Per seed, fetch time.
    pub per_seed: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct ScenarioFigures {
    pub name: &'static str,
    pub policies: Vec<PolicyFigures>,
    /// learned / classic fetch time: median and worst over seeds.
    pub median_ratio: f64,
    pub worst_ratio: f64,
}

#[derive(Debug, Clone)]
pub struct SelectBenchReport {
    pub config: SelectBenchConfig,
    pub scenarios: Vec<ScenarioFigures>,
    /// Over every scenario and seed: learned / classic fetch time.
    pub median_ratio: f64,
    pub worst_ratio: f64,
}

impl SelectBenchReport {
    /// The rule: median better, no seed more than 5 % worse.
    pub fn learner_wins(&self) -> bool {
        self.median_ratio < 1.0 && self.worst_ratio <= 1.05
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn run_select_bench(config: SelectBenchConfig) -> SelectBenchReport {
    let mut scenarios = Vec::new();
    let mut all_ratios = Vec::new();
    for s in Scenario::standard() {
        let policies: Vec<PolicyFigures> = Which::ALL
            .iter()
            .map(|&which| {
                let files: Vec<f64> = (1..=config.seeds)
                    .map(|seed| run(&s, seed, which, Mode::File, config.size).fetch_secs)
                    .collect();
                let streams: Vec<_> = (1..=config.seeds)
                    .map(|seed| {
                        run(
                            &s,
                            seed,
                            which,
                            Mode::Stream {
                                bitrate: config.bitrate,
                            },
                            config.size,
                        )
                    })
                    .collect();
                PolicyFigures {
                    which,
                    fetch_secs: median(&files),
                    startup_secs: median(
                        &streams.iter().map(|o| o.startup_secs).collect::<Vec<_>>(),
                    ),
                    stall_secs: median(&streams.iter().map(|o| o.stall_secs).collect::<Vec<_>>()),
                    per_seed: files,
                }
            })
            .collect();
        let ratios: Vec<f64> = policies[1]
            .per_seed
            .iter()
            .zip(&policies[0].per_seed)
            .map(|(l, c)| l / c)
            .collect();
        all_ratios.extend(&ratios);
        scenarios.push(ScenarioFigures {
            name: s.name,
            median_ratio: median(&ratios),
            worst_ratio: ratios.iter().copied().fold(0.0, f64::max),
            policies,
        });
    }
    SelectBenchReport {
        median_ratio: median(&all_ratios),
        worst_ratio: all_ratios.iter().copied().fold(0.0, f64::max),
        config,
        scenarios,
    }
}

impl fmt::Display for SelectBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "provider policies, simulated: {} MiB per download, {} seeds per scenario, streams at {:.1} MB/s",
            c.size >> 20,
            c.seeds,
            c.bitrate / 1e6
        )?;
        writeln!(
            f,
            "medians over seeds: fetch s (file) | start-up s / stall s (stream); learned ÷ classic fetch: median, worst seed"
        )?;
        for s in &self.scenarios {
            write!(f, "  {:<38}", s.name)?;
            for p in &s.policies {
                write!(
                    f,
                    " {} {:6.2} | {:4.2}/{:5.2}  ",
                    p.which.name(),
                    p.fetch_secs,
                    p.startup_secs,
                    p.stall_secs
                )?;
            }
            writeln!(
                f,
                " ratio {:.3}, worst {:.3}",
                s.median_ratio, s.worst_ratio
            )?;
            let per_seed: Vec<String> = s.policies[1]
                .per_seed
                .iter()
                .zip(&s.policies[0].per_seed)
                .map(|(l, c)| format!("{:.2}", l / c))
                .collect();
            writeln!(f, "      learned ÷ classic by seed: {}", per_seed.join(" "))?;
        }
        writeln!(
            f,
            "over all: learned ÷ classic median {:.3}, worst seed {:.3} → {}",
            self.median_ratio,
            self.worst_ratio,
            if self.learner_wins() {
                "the learner is the default (median better, no seed > 5 % worse)"
            } else {
                "the classic heuristic stays the default (the rule is median better and no seed > 5 % worse)"
            }
        )
    }
}
