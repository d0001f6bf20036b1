//! A deterministic simulation of one download from throttled providers, on
//! virtual time, for comparing provider policies (`rusty-cli bench select`
//! and the tests).
//!
//! - Each provider uploads at a token-bucket rate that follows a seeded
//!   schedule (piecewise constant) and has a round-trip time. It serves
//!   requests one after another (first come, first served), so a request
//!   finishes after everything queued before it: what pipelining against a
//!   rate-limited uploader looks like.
//! - The downloader side mirrors [`crate::downloader`]: 1 MiB ranges picked
//!   from the playhead onward, a window of requests per provider from the
//!   policy, critical ranges (near the playhead, and the last ones) only
//!   where the policy allows, slow requests raced on an idle provider with
//!   the slow one held to one request, the last ranges raced at the end,
//!   and at most `budget` providers in use, chosen by the policy; every
//!   5 s the providers' round trips as libp2p's ping measures them.
//! - Three policies: [`Classic`], [`Learned`] and an oracle that knows the
//!   true schedule (its rates, windows, completion times and active set
//!   are exact), the yardstick.
//! - A file is fetched as fast as possible; a stream is also played at a
//!   fixed bitrate from the moment its first ranges are in, and its
//!   start-up delay and stalls are measured.

use std::collections::BTreeSet;

use super::{Classic, Learned, ProviderPolicy, MAX_WINDOW};

/// Bytes per requested range (16 chunks of 64 KiB, as the downloader asks).
pub const RANGE_BYTES: u64 = 1 << 20;
/// Ranges ahead of a reader's playhead that count as critical (the
/// downloader's too).
pub const CRITICAL_RANGES: u64 = 2;
/// Ranges buffered before playback starts.
const STARTUP_RANGES: u64 = 2;
/// How often the downloader loop looks around without an answer, seconds.
const TICK: f64 = 0.2;
/// The downloader's race thresholds and provider refresh, in seconds.
const SLOW_FACTOR: f64 = crate::downloader::SLOW_FACTOR as f64;
const SLOW_MIN: f64 = crate::downloader::SLOW_MIN.as_secs_f64();
const REFRESH: f64 = crate::downloader::REFRESH_EVERY.as_secs_f64();
/// The simulation gives up after this much virtual time, seconds.
const HORIZON: f64 = 3_600.0;

/// How providers' rates change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// Each keeps one rate.
    Static,
    /// Each jumps to a new random rate after exponentially distributed
    /// holding times of this mean, seconds.
    Markov { mean_hold: f64 },
    /// Static, but the fastest falls to 2 % of its rate at this time.
    Collapse { at: f64 },
}

/// One set-up: N providers, at most K used at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scenario {
    pub name: &'static str,
    pub providers: usize,
    pub budget: usize,
    pub schedule: Schedule,
    /// Providers' rates are drawn log-uniformly from this range, bytes/s.
    pub min_rate: f64,
    pub max_rate: f64,
}

impl Scenario {
    /// The scenarios `bench select` runs.
    pub fn standard() -> Vec<Scenario> {
        let base = Scenario {
            name: "",
            providers: 6,
            budget: 6,
            schedule: Schedule::Static,
            min_rate: 100_000.0,
            max_rate: 2_500_000.0,
        };
        vec![
            Scenario {
                name: "6 of 6, static",
                ..base
            },
            Scenario {
                name: "6 of 6, switching every ~15 s",
                schedule: Schedule::Markov { mean_hold: 15.0 },
                ..base
            },
            Scenario {
                name: "6 of 6, the fastest collapses at 3 s",
                schedule: Schedule::Collapse { at: 3.0 },
                ..base
            },
            Scenario {
                name: "3 of 12, switching every ~60 s",
                providers: 12,
                budget: 3,
                schedule: Schedule::Markov { mean_hold: 60.0 },
                ..base
            },
            Scenario {
                name: "3 of 12, switching every ~15 s",
                providers: 12,
                budget: 3,
                schedule: Schedule::Markov { mean_hold: 15.0 },
                ..base
            },
        ]
    }
}

/// Which policy runs the download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Classic,
    Learned,
    Oracle,
}

impl Which {
    pub const ALL: [Which; 3] = [Which::Classic, Which::Learned, Which::Oracle];
    pub fn name(self) -> &'static str {
        match self {
            Which::Classic => "classic",
            Which::Learned => "learned",
            Which::Oracle => "oracle",
        }
    }
}

/// A file, or a stream played at `bitrate` bytes/s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    File,
    Stream { bitrate: f64 },
}

/// What one simulated download gave.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Outcome {
    /// Seconds until every range was in.
    pub fetch_secs: f64,
    /// Streams: seconds until playback started, and seconds stalled after.
    pub startup_secs: f64,
    pub stall_secs: f64,
    /// Bytes received that another copy had already delivered.
    pub wasted_bytes: u64,
}

/// A provider's true behaviour.
#[derive(Debug, Clone)]
pub struct ProviderTruth {
    pub rtt: f64,
    /// (from, rate) steps, sorted, the first from 0.
    pub steps: Vec<(f64, f64)>,
}

impl ProviderTruth {
    pub fn rate_at(&self, t: f64) -> f64 {
        self.steps
            .iter()
            .rev()
            .find(|(from, _)| *from <= t)
            .map_or(self.steps[0].1, |s| s.1)
    }

    /// When sending `bytes` starting at `start` ends.
    fn finish(&self, start: f64, bytes: f64) -> f64 {
        let mut t = start;
        let mut left = bytes;
        loop {
            let rate = self.rate_at(t).max(1.0);
            let next = self
                .steps
                .iter()
                .map(|s| s.0)
                .find(|from| *from > t)
                .unwrap_or(f64::INFINITY);
            let can = (next - t) * rate;
            if can >= left {
                return t + left / rate;
            }
            left -= can;
            t = next;
        }
    }
}

/// xorshift64*, seeded: the same seed gives the same providers.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + (hi.ln() - lo.ln()) * self.unit()).exp()
    }
}

/// The providers of `scenario` under `seed`.
pub fn providers(scenario: &Scenario, seed: u64) -> Vec<ProviderTruth> {
    let mut rng = Rng::new(seed);
    let mut out: Vec<ProviderTruth> = (0..scenario.providers)
        .map(|_| {
            let rtt = 0.01 + 0.11 * rng.unit();
            let mut steps = vec![(0.0, rng.log_uniform(scenario.min_rate, scenario.max_rate))];
            if let Schedule::Markov { mean_hold } = scenario.schedule {
                let mut t = 0.0;
                while t < HORIZON {
                    t += -mean_hold * (1.0 - rng.unit()).ln();
                    steps.push((t, rng.log_uniform(scenario.min_rate, scenario.max_rate)));
                }
            }
            ProviderTruth { rtt, steps }
        })
        .collect();
    if let Schedule::Collapse { at } = scenario.schedule {
        if let Some(fastest) = out
            .iter_mut()
            .max_by(|a, b| a.steps[0].1.total_cmp(&b.steps[0].1))
        {
            let r = fastest.steps[0].1;
            fastest.steps.push((at, r * 0.02));
        }
    }
    out
}

/// The yardstick: a policy that knows every provider's true schedule.
struct Oracle<'a> {
    truth: &'a [ProviderTruth],
}

impl Oracle<'_> {
    fn completion(&self, k: usize, queued: u64, extra: u64, now: f64) -> f64 {
        let p = &self.truth[k];
        p.finish(now + p.rtt / 2.0, (queued + extra) as f64) + p.rtt / 2.0 - now
    }
}

impl ProviderPolicy<usize> for Oracle<'_> {
    fn on_done(&mut self, _: usize, _: u64, _: f64, _: f64) {}
    fn on_failed(&mut self, _: usize, _: f64) {}
    fn window(&self, k: usize, range_bytes: u64, now: f64) -> usize {
        let p = &self.truth[k];
        let bdp = p.rate_at(now) * p.rtt / range_bytes as f64;
        (bdp.ceil() as usize + 1).clamp(1, MAX_WINDOW)
    }
    fn rate(&self, k: usize, now: f64) -> f64 {
        self.truth[k].rate_at(now)
    }
    fn may_take_critical(
        &self,
        k: usize,
        queued: u64,
        others: &[(usize, u64)],
        range_bytes: u64,
        now: f64,
    ) -> bool {
        super::finishes_first(k, queued, others, |o, q| {
            self.completion(o, q, range_bytes, now)
        })
    }
    fn active(&mut self, candidates: &[usize], budget: usize, now: f64) -> Vec<usize> {
        let mut ranked = candidates.to_vec();
        ranked.sort_by(|a, b| self.rate(*b, now).total_cmp(&self.rate(*a, now)));
        ranked.truncate(budget);
        ranked.sort();
        ranked
    }
}

#[derive(Debug, Clone, Copy)]
struct Req {
    provider: usize,
    range: u64,
    sent: f64,
    done_at: f64,
    raced: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Side {
    in_flight: usize,
    queued: u64,
    slow: bool,
}

/// Runs one download of `size` bytes.
pub fn run(scenario: &Scenario, seed: u64, which: Which, mode: Mode, size: u64) -> Outcome {
    let truth = providers(scenario, seed);
    let mut policy: Box<dyn ProviderPolicy<usize> + '_> = match which {
        Which::Classic => Box::new(Classic::default()),
        Which::Learned => Box::new(Learned::default()),
        Which::Oracle => Box::new(Oracle { truth: &truth }),
    };
    let ranges = size.div_ceil(RANGE_BYTES);
    let range_len = |r: u64| RANGE_BYTES.min(size - r * RANGE_BYTES);
    let mut have = vec![false; ranges as usize];
    let mut pending: BTreeSet<u64> = (0..ranges).collect();
    let mut remaining = ranges;
    let mut reqs: Vec<Req> = Vec::new();
    let mut sides = vec![Side::default(); truth.len()];
    let mut busy_until = vec![0.0f64; truth.len()];
    let mut durations: Vec<f64> = Vec::new();
    let all: Vec<usize> = (0..truth.len()).collect();
    let mut out = Outcome::default();
    // Playback (streams only).
    let mut started: Option<f64> = None;
    let mut position = 0.0f64; // seconds of media played
    let mut now = 0.0f64;
    let mut last_refresh = f64::NEG_INFINITY;

    while now < HORIZON {
        if now - last_refresh >= REFRESH {
            last_refresh = now;
            for (k, p) in truth.iter().enumerate() {
                policy.on_rtt(k, p.rtt, now);
            }
        }
        // Hand out work.
        let active = policy.active(&all, scenario.budget, now);
        let playhead = match mode {
            Mode::Stream { bitrate } if remaining > 0 => {
                ((position * bitrate) as u64 / RANGE_BYTES).min(ranges - 1)
            }
            _ => 0,
        };
        let streaming = matches!(mode, Mode::Stream { .. });
        let mut order = active.clone();
        order.sort_by(|a, b| {
            sides[*a]
                .in_flight
                .cmp(&sides[*b].in_flight)
                .then(policy.rate(*b, now).total_cmp(&policy.rate(*a, now)))
        });
        for &p in &order {
            loop {
                let window = if sides[p].slow {
                    1
                } else {
                    policy.window(p, RANGE_BYTES, now)
                };
                if sides[p].in_flight >= window {
                    break;
                }
                let others: Vec<(usize, u64)> =
                    active.iter().map(|o| (*o, sides[*o].queued)).collect();
                let critical = |r: u64| {
                    (streaming && r < playhead + CRITICAL_RANGES) || pending.len() <= active.len()
                };
                let first = pending
                    .range(playhead..)
                    .next()
                    .or_else(|| pending.iter().next())
                    .copied();
                let Some(mut r) = first else { break };
                if critical(r)
                    && !policy.may_take_critical(p, sides[p].queued, &others, range_len(r), now)
                {
                    // Something further on, if there is any.
                    match pending
                        .range(playhead + CRITICAL_RANGES..)
                        .next()
                        .copied()
                        .filter(|r| !critical(*r))
                    {
                        Some(later) => r = later,
                        None => break,
                    }
                }
                pending.remove(&r);
                send(
                    &truth,
                    &mut busy_until,
                    &mut sides,
                    &mut reqs,
                    p,
                    r,
                    range_len(r),
                    now,
                    false,
                );
            }
        }
        // Race slow requests, and at the end the last ones.
        let median = median(&durations);
        let slow_after = median.map_or(SLOW_MIN * 2.0, |d| (d * SLOW_FACTOR).max(SLOW_MIN));
        let endgame = pending.is_empty();
        let typical = median.unwrap_or(SLOW_MIN / 4.0);
        for i in 0..reqs.len() {
            let q = reqs[i];
            let age = now - q.sent;
            if q.raced
                || have[q.range as usize]
                || !(age >= slow_after || (endgame && age >= typical))
            {
                continue;
            }
            let idle = active.iter().copied().find(|o| {
                let cap = if endgame {
                    policy.window(*o, RANGE_BYTES, now)
                } else {
                    1
                };
                *o != q.provider && sides[*o].in_flight < cap
            });
            let Some(other) = idle else { continue };
            reqs[i].raced = true;
            if age >= slow_after {
                sides[q.provider].slow = true;
            }
            send(
                &truth,
                &mut busy_until,
                &mut sides,
                &mut reqs,
                other,
                q.range,
                range_len(q.range),
                now,
                true,
            );
        }

        // The next event: an answer or a tick.
        let next_done = reqs.iter().map(|q| q.done_at).fold(f64::INFINITY, f64::min);
        let next = next_done.min(now + TICK);
        if let Mode::Stream { bitrate } = mode {
            play(
                &have,
                bitrate,
                size,
                started,
                &mut position,
                &mut out.stall_secs,
                now,
                next,
            );
        }
        now = next;
        // Answers due now.
        let mut i = 0;
        while i < reqs.len() {
            if reqs[i].done_at > now {
                i += 1;
                continue;
            }
            let q = reqs.swap_remove(i);
            let bytes = range_len(q.range);
            let side = &mut sides[q.provider];
            side.in_flight -= 1;
            side.queued -= bytes;
            policy.on_done(q.provider, bytes, q.sent, now);
            let took = now - q.sent;
            if took < slow_after {
                side.slow = false;
            }
            if have[q.range as usize] {
                out.wasted_bytes += bytes;
            } else {
                have[q.range as usize] = true;
                remaining -= 1;
                durations.push(took);
                if durations.len() > 64 {
                    durations.remove(0);
                }
            }
        }
        if let Mode::Stream { .. } = mode {
            if started.is_none() && (0..STARTUP_RANGES.min(ranges)).all(|r| have[r as usize]) {
                started = Some(now);
                out.startup_secs = now;
            }
        }
        if remaining == 0 && out.fetch_secs == 0.0 {
            out.fetch_secs = now;
            if mode == Mode::File {
                break;
            }
        }
        if remaining == 0 {
            // Nothing can stall any more: the rest plays out.
            break;
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn send(
    truth: &[ProviderTruth],
    busy_until: &mut [f64],
    sides: &mut [Side],
    reqs: &mut Vec<Req>,
    p: usize,
    range: u64,
    bytes: u64,
    now: f64,
    raced: bool,
) {
    let t = &truth[p];
    let start = (now + t.rtt / 2.0).max(busy_until[p]);
    let end = t.finish(start, bytes as f64);
    busy_until[p] = end;
    sides[p].in_flight += 1;
    sides[p].queued += bytes;
    reqs.push(Req {
        provider: p,
        range,
        sent: now,
        done_at: end + t.rtt / 2.0,
        raced,
    });
}

/// Advances playback from `from` to `to`, counting stalls.
#[allow(clippy::too_many_arguments)]
fn play(
    have: &[bool],
    bitrate: f64,
    size: u64,
    started: Option<f64>,
    position: &mut f64,
    stalled: &mut f64,
    from: f64,
    to: f64,
) {
    if started.is_none() {
        return;
    }
    let end = size as f64 / bitrate;
    let mut t = from;
    while t < to && *position < end {
        let range = ((*position * bitrate) as u64 / RANGE_BYTES) as usize;
        if !have[range] {
            *stalled += to - t;
            return;
        }
        let range_end = (((range as u64 + 1) * RANGE_BYTES) as f64 / bitrate).min(end);
        let step = (range_end - *position).min(to - t).max(1e-9);
        *position += step;
        t += step;
    }
}

fn median(d: &[f64]) -> Option<f64> {
    if d.is_empty() {
        return None;
    }
    let mut v = d.to_vec();
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}
