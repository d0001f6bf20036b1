//! Which providers a download uses, how much it asks of each, and which
//! ranges go where.
//!
//! Two policies behind one trait, [`ProviderPolicy`], used by the real
//! downloader ([`crate::downloader`]) and by the simulation
//! ([`sim`]) that `rusty-cli bench select` runs:
//!
//! - [`Classic`]: the downloader as it was. A provider's rate is its
//!   lifetime average (bytes over busy time, never forgotten), every
//!   provider gets a fixed window of [`CLASSIC_WINDOW`] requests, any free
//!   slot takes any range, and when only some providers may be used the
//!   best lifetime rates win (so the first ones found stay).
//! - [`Learned`]:
//!   - a service-rate estimate per provider that forgets: two time-weighted
//!     EWMAs (half-lives [`FAST_HALF_LIFE`] and [`SLOW_HALF_LIFE`] seconds of
//!     samples), the smaller of the two (shaka-player's and hls.js's
//!     design: quick to fall, slow to rise);
//!   - a round-trip time from the connection's ping (libp2p's, every
//!     15 s), else the smallest over the last [`RTT_WINDOW`] seconds of
//!     answers' times beyond their transfer;
//!   - a window sized to the bandwidth-delay product,
//!     `ceil(rate · rtt / range) + 2`, in `2..=MAX_WINDOW`: one range being
//!     sent and one waiting beyond the ranges in flight, so the provider
//!     never idles and the window grows while the rate is still being
//!     learned;
//!   - expected-completion-time assignment (WebTorrent's `speedRanker`): a
//!     critical range (at the playhead, or one of the last) goes to a
//!     provider only if it would finish it no later than the best other
//!     provider would after draining its own queue;
//!   - when there are more candidates than the budget, a sliding-window UCB
//!     bandit (Garivier & Moulines 2011) over normalised rate samples picks
//!     all but one, and the last place is an optimistic probe (BitTorrent's
//!     optimistic unchoke) of a new or stale provider, rotated every
//!     [`PROBE_EVERY`] seconds.
//!
//! Bad chunks are not the policy's business: the downloader drops a
//! provider that sent one and the network layer's peer score carries the
//! (decaying) penalty.
//!
//! Time is seconds as `f64` from any fixed epoch, so the simulation runs
//! on virtual time and the downloader on `Instant`s.

pub mod sim;

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
};

/// The classic policy's requests in flight per provider.
pub const CLASSIC_WINDOW: usize = 4;
/// The learned window's bounds.
pub const MAX_WINDOW: usize = 8;
/// The window before a provider has answered anything: enough to measure
/// it, not enough to strand much work on a slow one.
pub const FIRST_WINDOW: usize = 2;
/// Half-lives of the two rate averages, seconds of samples.
pub const FAST_HALF_LIFE: f64 = 3.0;
pub const SLOW_HALF_LIFE: f64 = 9.0;
/// The round-trip time is the smallest seen over this many seconds.
pub const RTT_WINDOW: f64 = 10.0;
/// The bandit's memory, seconds.
pub const UCB_WINDOW: f64 = 60.0;
/// The bandit's exploration weight.
const UCB_C: f64 = 0.5;
/// The optimistic probe moves to another provider this often, seconds.
pub const PROBE_EVERY: f64 = 30.0;
/// The active set is recomputed this often, seconds (BitTorrent rechokes
/// every 10 s; switching more often thrashes connections).
pub const RECHOKE_EVERY: f64 = 10.0;
/// While some candidate has never been measured, the set is recomputed
/// this often instead, so exploring N providers does not take N / K
/// rechokes of 10 s.
pub const EXPLORE_RECHOKE_EVERY: f64 = 2.0;
/// Rate assumed of a provider nobody has measured yet, bytes/s, when no
/// other provider has been measured either.
const PRIOR_RATE: f64 = 1_000_000.0;

/// What a download needs from a provider policy. `K` names a provider.
pub trait ProviderPolicy<K: Copy + Eq + Hash + Ord> {
    /// A request of `bytes` sent at `sent` was answered in full at `now`.
    fn on_done(&mut self, k: K, bytes: u64, sent: f64, now: f64);
    /// A request failed or timed out.
    fn on_failed(&mut self, k: K, now: f64);
    /// A round trip to `k` measured outside the requests (libp2p's ping).
    fn on_rtt(&mut self, _k: K, _rtt: f64, _now: f64) {}
    /// How many requests `k` may have in flight.
    fn window(&self, k: K, range_bytes: u64, now: f64) -> usize;
    /// The estimated rate of `k`, bytes/s (0 when unknown), for ordering
    /// and the status.
    fn rate(&self, k: K, now: f64) -> f64;
    /// May `k`, with `queued` bytes already asked of it, take a critical
    /// range of `range_bytes`? `others` gives every other usable provider
    /// with the bytes queued at it.
    fn may_take_critical(
        &self,
        k: K,
        queued: u64,
        others: &[(K, u64)],
        range_bytes: u64,
        now: f64,
    ) -> bool;
    /// Which of `candidates` (sorted, deduplicated) to use when at most
    /// `budget` may be. Called often; implementations keep their choice
    /// between rechokes.
    fn active(&mut self, candidates: &[K], budget: usize, now: f64) -> Vec<K>;
}

/// The expected-completion-time rule: `k`, with `queued` bytes asked of
/// it, finishes a range no later than every other provider in `others`
/// would after its own queue, by `completion(provider, queued)`.
pub(crate) fn finishes_first<K: Copy + PartialEq>(
    k: K,
    queued: u64,
    others: &[(K, u64)],
    completion: impl Fn(K, u64) -> f64,
) -> bool {
    let mine = completion(k, queued);
    others
        .iter()
        .filter(|(o, _)| *o != k)
        .all(|(o, q)| mine <= completion(*o, *q))
}

/// Which policy a download runs. The classic one is the default: the
/// learner wins on median in `bench select` but not on every seed (see
/// `docs/performance.md`), which is the bar for making it the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    #[default]
    Classic,
    Learned,
}

impl PolicyKind {
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Classic => "classic",
            PolicyKind::Learned => "learned",
        }
    }

    pub fn build<K: Copy + Eq + Hash + Ord + Send + 'static>(
        self,
    ) -> Box<dyn ProviderPolicy<K> + Send> {
        match self {
            PolicyKind::Classic => Box::new(Classic::default()),
            PolicyKind::Learned => Box::new(Learned::default()),
        }
    }
}

impl std::str::FromStr for PolicyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "classic" => Ok(PolicyKind::Classic),
            "learned" => Ok(PolicyKind::Learned),
            other => Err(format!(
                "unknown provider policy {other:?}: expected classic or learned"
            )),
        }
    }
}

/// The lifetime-average policy the downloader had before the learner.
#[derive(Debug)]
pub struct Classic<K> {
    totals: HashMap<K, (u64, f64)>,
}

impl<K> Default for Classic<K> {
    fn default() -> Self {
        Classic {
            totals: HashMap::new(),
        }
    }
}

impl<K: Copy + Eq + Hash + Ord> ProviderPolicy<K> for Classic<K> {
    fn on_done(&mut self, k: K, bytes: u64, sent: f64, now: f64) {
        let t = self.totals.entry(k).or_default();
        t.0 = t.0.saturating_add(bytes);
        t.1 += (now - sent).max(0.0);
    }

    fn on_failed(&mut self, _k: K, _now: f64) {}

    fn window(&self, _k: K, _range_bytes: u64, _now: f64) -> usize {
        CLASSIC_WINDOW
    }

    fn rate(&self, k: K, _now: f64) -> f64 {
        match self.totals.get(&k) {
            Some(&(bytes, secs)) if secs > 0.0 => bytes as f64 / secs,
            _ => 0.0,
        }
    }

    fn may_take_critical(&self, _: K, _: u64, _: &[(K, u64)], _: u64, _: f64) -> bool {
        true
    }

    fn active(&mut self, candidates: &[K], budget: usize, now: f64) -> Vec<K> {
        let mut ranked: Vec<K> = candidates.to_vec();
        // Stable: among equals (all unmeasured at first) the first found win.
        ranked.sort_by(|a, b| self.rate(*b, now).total_cmp(&self.rate(*a, now)));
        ranked.truncate(budget);
        ranked
    }
}

/// A time-weighted exponential average: a sample of `weight` seconds moves
/// the estimate by `1 − 0.5^(weight / half_life)`; the estimate is
/// corrected for its zero start (shaka-player's `Ewma`).
#[derive(Debug, Clone, Copy)]
struct Ewma {
    half_life: f64,
    estimate: f64,
    total_weight: f64,
}

impl Ewma {
    fn new(half_life: f64) -> Ewma {
        Ewma {
            half_life,
            estimate: 0.0,
            total_weight: 0.0,
        }
    }

    fn sample(&mut self, weight: f64, value: f64) {
        let keep = 0.5f64.powf(weight / self.half_life);
        self.estimate = value * (1.0 - keep) + keep * self.estimate;
        self.total_weight += weight;
    }

    fn get(&self) -> Option<f64> {
        let zero_factor = 1.0 - 0.5f64.powf(self.total_weight / self.half_life);
        (zero_factor > 0.0).then(|| self.estimate / zero_factor)
    }
}

/// What the learner knows of one provider.
#[derive(Debug, Clone)]
struct Model {
    fast: Ewma,
    slow: Ewma,
    /// (time, round trip) samples of the last [`RTT_WINDOW`] seconds.
    rtts: VecDeque<(f64, f64)>,
    /// The last round trip its connection's ping measured: the round trip
    /// without queueing, which answers cannot give once requests overlap.
    ping_rtt: Option<f64>,
    /// When its last answer finished, to measure the next one's service
    /// time from there when requests overlap.
    last_done: f64,
    /// (time, rate) samples of the last [`UCB_WINDOW`] seconds.
    rewards: VecDeque<(f64, f64)>,
    last_sample: Option<f64>,
    /// When the bandit last put it in the active set.
    chosen_at: Option<f64>,
}

impl Model {
    fn new() -> Model {
        Model {
            fast: Ewma::new(FAST_HALF_LIFE),
            slow: Ewma::new(SLOW_HALF_LIFE),
            rtts: VecDeque::new(),
            ping_rtt: None,
            last_done: f64::NEG_INFINITY,
            rewards: VecDeque::new(),
            last_sample: None,
            chosen_at: None,
        }
    }

    fn rate(&self) -> Option<f64> {
        match (self.fast.get(), self.slow.get()) {
            (Some(f), Some(s)) => Some(f.min(s)),
            _ => None,
        }
    }

    fn min_rtt(&self) -> Option<f64> {
        self.ping_rtt
            .or_else(|| self.rtts.iter().map(|(_, r)| *r).reduce(f64::min))
    }
}

/// The learning policy (see the module documentation).
#[derive(Debug)]
pub struct Learned<K> {
    models: HashMap<K, Model>,
    chosen: Vec<K>,
    last_rechoke: Option<f64>,
    probe: Option<(K, f64)>,
}

impl<K> Default for Learned<K> {
    fn default() -> Self {
        Learned {
            models: HashMap::new(),
            chosen: Vec::new(),
            last_rechoke: None,
            probe: None,
        }
    }
}

impl<K: Copy + Eq + Hash + Ord> Learned<K> {
    /// The rate assumed for `k`: its estimate, else the median of the
    /// measured ones (a newcomer is assumed typical), else a prior.
    fn rate_or_prior(&self, k: K) -> f64 {
        if let Some(r) = self.models.get(&k).and_then(Model::rate) {
            return r.max(1.0);
        }
        let mut known: Vec<f64> = self.models.values().filter_map(Model::rate).collect();
        if known.is_empty() {
            return PRIOR_RATE;
        }
        known.sort_by(f64::total_cmp);
        known[known.len() / 2].max(1.0)
    }

    fn rtt_or_prior(&self, k: K) -> f64 {
        self.models
            .get(&k)
            .and_then(Model::min_rtt)
            .or_else(|| {
                self.models
                    .values()
                    .filter_map(Model::min_rtt)
                    .reduce(f64::min)
            })
            .unwrap_or(0.05)
    }

    /// Seconds until `k` would deliver `extra` more bytes behind `queued`.
    pub fn completion_time(&self, k: K, queued: u64, extra: u64) -> f64 {
        self.rtt_or_prior(k) + (queued.saturating_add(extra)) as f64 / self.rate_or_prior(k)
    }

    /// Rate samples of the last [`UCB_WINDOW`] seconds, over every
    /// provider (the bandit's `t`).
    fn recent_samples(&self, now: f64) -> f64 {
        self.models
            .values()
            .map(|m| {
                m.rewards
                    .iter()
                    .filter(|(t, _)| now - t <= UCB_WINDOW)
                    .count()
            })
            .sum::<usize>() as f64
    }

    /// The sliding-window UCB score of `k`; `best` normalises rates,
    /// `total` is [`Self::recent_samples`].
    fn ucb(&self, k: K, now: f64, best: f64, total: f64) -> f64 {
        let Some(m) = self.models.get(&k) else {
            return f64::INFINITY;
        };
        let recent: Vec<f64> = m
            .rewards
            .iter()
            .filter(|(t, _)| now - t <= UCB_WINDOW)
            .map(|(_, r)| (r / best).min(1.0))
            .collect();
        if recent.is_empty() {
            // Chosen a while ago and still nothing answered: as bad as a
            // provider can be, for now (a slow one must not keep its place
            // only because it never finishes a request).
            return match m.chosen_at {
                Some(t) if now - t >= EXPLORE_RECHOKE_EVERY => 0.0,
                _ => f64::INFINITY,
            };
        }
        let n = recent.len() as f64;
        let mean = recent.iter().sum::<f64>() / n;
        mean + UCB_C * (total.max(1.0).ln().max(0.0) / n).sqrt()
    }
}

impl<K: Copy + Eq + Hash + Ord> ProviderPolicy<K> for Learned<K> {
    fn on_done(&mut self, k: K, bytes: u64, sent: f64, now: f64) {
        let m = self.models.entry(k).or_insert_with(Model::new);
        let elapsed = (now - sent).max(1e-6);
        // Service time: from the later of sending and the previous answer
        // (with pipelining the provider was busy with that one until then).
        let service = (now - sent.max(m.last_done)).max(1e-6);
        m.last_done = now;
        let rate = bytes as f64 / service;
        m.fast.sample(service, rate);
        m.slow.sample(service, rate);
        // The round trip is what the request took beyond sending its bytes
        // at the estimated rate, the smallest of the recent ones.
        let est = m.rate().unwrap_or(rate).max(1.0);
        let rtt = (elapsed - bytes as f64 / est).max(0.0);
        m.rtts.push_back((now, rtt));
        while m.rtts.front().is_some_and(|(t, _)| now - t > RTT_WINDOW) && m.rtts.len() > 1 {
            m.rtts.pop_front();
        }
        m.rewards.push_back((now, rate));
        while m.rewards.front().is_some_and(|(t, _)| now - t > UCB_WINDOW) {
            m.rewards.pop_front();
        }
        m.last_sample = Some(now);
    }

    fn on_failed(&mut self, k: K, now: f64) {
        // A failure is a sample of zero reward for the bandit; the rate
        // estimate is left alone (the request may not have been served).
        let m = self.models.entry(k).or_insert_with(Model::new);
        m.rewards.push_back((now, 0.0));
    }

    fn on_rtt(&mut self, k: K, rtt: f64, _now: f64) {
        self.models.entry(k).or_insert_with(Model::new).ping_rtt = Some(rtt.max(0.0));
    }

    fn window(&self, k: K, range_bytes: u64, _now: f64) -> usize {
        let Some(m) = self.models.get(&k) else {
            return FIRST_WINDOW;
        };
        let (Some(rate), Some(rtt)) = (m.rate(), m.min_rtt()) else {
            return FIRST_WINDOW;
        };
        // The ranges in flight over the round trip, plus one being sent and
        // one waiting behind it: the provider never idles between answers,
        // and while the rate is still underestimated (answers that do not
        // overlap measure less than the provider can do) the window still
        // grows by one each time, until the rate stops rising.
        let bdp = rate * rtt / range_bytes.max(1) as f64;
        (bdp.ceil() as usize)
            .saturating_add(2)
            .clamp(FIRST_WINDOW, MAX_WINDOW)
    }

    fn rate(&self, k: K, _now: f64) -> f64 {
        self.models.get(&k).and_then(Model::rate).unwrap_or(0.0)
    }

    fn may_take_critical(
        &self,
        k: K,
        queued: u64,
        others: &[(K, u64)],
        range_bytes: u64,
        _now: f64,
    ) -> bool {
        finishes_first(k, queued, others, |o, q| {
            self.completion_time(o, q, range_bytes)
        })
    }

    fn active(&mut self, candidates: &[K], budget: usize, now: f64) -> Vec<K> {
        if candidates.len() <= budget {
            return candidates.to_vec();
        }
        if budget == 0 {
            return Vec::new();
        }
        let gone = self.chosen.iter().any(|k| !candidates.contains(k));
        let exploring = candidates
            .iter()
            .any(|k| self.models.get(k).is_none_or(|m| m.chosen_at.is_none()));
        let every = if exploring {
            EXPLORE_RECHOKE_EVERY
        } else {
            RECHOKE_EVERY
        };
        let due = self.last_rechoke.is_none_or(|t| now - t >= every);
        if !due && !gone && !self.chosen.is_empty() {
            return self.chosen.clone();
        }
        self.last_rechoke = Some(now);
        if exploring && !gone && self.chosen.len() == budget {
            // Exploring one at a time: the worst of the current set (by the
            // bandit's score) gives its place to a provider never tried, so
            // the good ones found so far keep working meanwhile.
            let (best, total) = (self.best_rate(candidates), self.recent_samples(now));
            let worst = self.chosen.iter().copied().min_by(|a, b| {
                self.ucb(*a, now, best, total)
                    .total_cmp(&self.ucb(*b, now, best, total))
            });
            let fresh = candidates
                .iter()
                .copied()
                .find(|k| self.models.get(k).is_none_or(|m| m.chosen_at.is_none()));
            if let (Some(worst), Some(fresh)) = (worst, fresh) {
                let mut chosen: Vec<K> = self
                    .chosen
                    .iter()
                    .copied()
                    .filter(|k| *k != worst)
                    .collect();
                chosen.push(fresh);
                chosen.sort();
                return self.choose(chosen, now);
            }
        }
        let (best, total) = (self.best_rate(candidates), self.recent_samples(now));
        // All but one place by UCB; unmeasured providers score infinity,
        // so each is tried once early on.
        let mut ranked: Vec<(K, f64)> = candidates
            .iter()
            .map(|k| (*k, self.ucb(*k, now, best, total)))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let exploit = if budget > 1 { budget - 1 } else { budget };
        let mut chosen: Vec<K> = ranked.iter().take(exploit).map(|(k, _)| *k).collect();
        if budget > 1 {
            // The optimistic probe: kept for PROBE_EVERY seconds, then moved
            // to the provider not already chosen that was measured longest
            // ago (never measured first).
            let keep = self
                .probe
                .filter(|(k, since)| {
                    now - since < PROBE_EVERY && candidates.contains(k) && !chosen.contains(k)
                })
                .map(|(k, _)| k);
            let probe = keep.or_else(|| {
                candidates
                    .iter()
                    .filter(|k| !chosen.contains(k))
                    .min_by(|a, b| {
                        let age = |k: &K| {
                            self.models
                                .get(k)
                                .and_then(|m| m.last_sample)
                                .map_or(f64::NEG_INFINITY, |t| t)
                        };
                        age(a).total_cmp(&age(b)).then(a.cmp(b))
                    })
                    .copied()
            });
            if let Some(p) = probe {
                if keep.is_none() {
                    self.probe = Some((p, now));
                }
                chosen.push(p);
            }
        }
        chosen.sort();
        self.choose(chosen, now)
    }
}

impl<K: Copy + Eq + Hash + Ord> Learned<K> {
    fn best_rate(&self, candidates: &[K]) -> f64 {
        candidates
            .iter()
            .filter_map(|k| self.models.get(k).and_then(Model::rate))
            .fold(1.0, f64::max)
    }

    fn choose(&mut self, chosen: Vec<K>, now: f64) -> Vec<K> {
        for k in &chosen {
            let m = self.models.entry(*k).or_insert_with(Model::new);
            if m.chosen_at.is_none() || !self.chosen.contains(k) {
                m.chosen_at = Some(now);
            }
        }
        self.chosen = chosen.clone();
        chosen
    }
}

#[cfg(test)]
mod tests;
