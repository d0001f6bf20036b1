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

/// The same comparison on real nodes: six providers on loopback, each
/// throttled by `--media-upload-limit` to a different rate, one viewer per
/// policy. Each trial publishes two files on node 0 and spreads them to
/// the other providers; viewer 6 (classic) fetches one and viewer 7
/// (learned) the other, one after the other, so no viewer ever holds what
/// the other fetches.
pub mod nodes {
    use std::{fmt, path::Path};

    use rusty_media::selection::PolicyKind;
    use rusty_node::localnet::{LocalNet, LocalNetConfig};

    use crate::{
        connect::BenchError,
        media::{fields, media, random_file, timed_download},
        network::{setup, wait_peers},
    };

    /// Providers' upload limits, bytes/s: one fast, a spread, one very slow.
    pub const PROVIDER_LIMITS: [u64; 6] =
        [4_000_000, 2_000_000, 1_000_000, 500_000, 250_000, 100_000];
    const VIEWERS: usize = 2;

    #[derive(Debug, Clone)]
    pub struct NodesReport {
        pub file_mib: usize,
        pub trials: usize,
        /// Seconds per trial.
        pub classic: Vec<f64>,
        pub learned: Vec<f64>,
        /// The sum of the providers' limits: no download can beat
        /// size / this.
        pub capacity: f64,
    }

    impl fmt::Display for NodesReport {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let floor = (self.file_mib << 20) as f64 / self.capacity;
            let list = |v: &[f64]| {
                v.iter()
                    .map(|s| format!("{s:.2}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            writeln!(
                f,
                "real nodes: {} MiB from 6 providers throttled to 4 / 2 / 1 / 0.5 / 0.25 / 0.1 MB/s ({:.2} s at their summed rate), {} trials",
                self.file_mib, floor, self.trials
            )?;
            writeln!(
                f,
                "  classic: {} s  (median {:.2})",
                list(&self.classic),
                super::median(&self.classic)
            )?;
            write!(
                f,
                "  learned: {} s  (median {:.2}; learned ÷ classic {:.3})",
                list(&self.learned),
                super::median(&self.learned),
                super::median(&self.learned) / super::median(&self.classic)
            )
        }
    }

    pub async fn run(
        dir: &Path,
        file_mib: usize,
        trials: usize,
    ) -> Result<NodesReport, BenchError> {
        let providers = PROVIDER_LIMITS.len();
        let mut config = LocalNetConfig::new(dir, providers + VIEWERS);
        config.upload_limits = PROVIDER_LIMITS.to_vec();
        let net = LocalNet::start(config).await?;
        let result = trials_on(&net, file_mib, trials).await;
        net.shutdown().await;
        result
    }

    async fn trials_on(
        net: &LocalNet,
        file_mib: usize,
        trials: usize,
    ) -> Result<NodesReport, BenchError> {
        let providers = PROVIDER_LIMITS.len();
        wait_peers(net, providers + VIEWERS - 1).await?;
        let (classic, learned) = (providers, providers + 1);
        media(net, classic)?.set_provider_policy(PolicyKind::Classic);
        media(net, learned)?.set_provider_policy(PolicyKind::Learned);
        let mut report = NodesReport {
            file_mib,
            trials,
            classic: Vec::new(),
            learned: Vec::new(),
            capacity: PROVIDER_LIMITS.iter().sum::<u64>() as f64,
        };
        for t in 0..trials {
            let mut ids = Vec::new();
            for k in 0..2u8 {
                // A fresh file per trial and viewer (seeds 10 and up: the
                // media bench uses the low ones).
                let seed = 10u8.wrapping_add((t as u8).wrapping_mul(2)).wrapping_add(k);
                let id = media(net, 0)?
                    .publish_bytes(
                        random_file(file_mib << 20, seed),
                        fields(&format!("select bench {t}/{k}")),
                    )
                    .await
                    .map_err(|e| setup(format!("publish: {e}")))?;
                // Every other provider holds it before a viewer starts.
                let mut spread = Vec::new();
                for i in 1..providers {
                    spread.push(media(net, i)?);
                }
                // Started together, then awaited: they fetch side by side.
                let mut started = Vec::new();
                for m in &spread {
                    started.push(m.download(id).await);
                }
                for d in started {
                    let s = d.finished().await;
                    if s.chunks_present != s.chunks_total {
                        return Err(setup("a provider did not get the file"));
                    }
                }
                ids.push(id);
            }
            // Alternate who goes first, so neither always meets fresher
            // token buckets.
            if t % 2 == 0 {
                report
                    .classic
                    .push(timed_download(net, classic, ids[0]).await?);
                report
                    .learned
                    .push(timed_download(net, learned, ids[1]).await?);
            } else {
                report
                    .learned
                    .push(timed_download(net, learned, ids[1]).await?);
                report
                    .classic
                    .push(timed_download(net, classic, ids[0]).await?);
            }
        }
        Ok(report)
    }
}
