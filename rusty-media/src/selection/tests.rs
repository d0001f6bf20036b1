use super::*;

fn feed<P: ProviderPolicy<u32>>(p: &mut P, k: u32, rate: f64, from: f64, to: f64) {
    // Back-to-back 1 MiB answers at `rate`, one in flight, 20 ms round trip.
    let mut t = from;
    while t < to {
        let sent = t;
        t += 0.02 + (1 << 20) as f64 / rate;
        p.on_done(k, 1 << 20, sent, t);
    }
}

#[test]
fn the_learned_rate_follows_a_change_and_the_lifetime_average_does_not() {
    let mut learned = Learned::default();
    let mut classic = Classic::default();
    feed(&mut learned, 1, 4e6, 0.0, 60.0);
    feed(&mut classic, 1, 4e6, 0.0, 60.0);
    // The provider falls to a tenth for 6 s.
    feed(&mut learned, 1, 4e5, 60.0, 66.0);
    feed(&mut classic, 1, 4e5, 60.0, 66.0);
    let l = learned.rate(1, 66.0);
    let c = classic.rate(1, 66.0);
    assert!(
        l < 1.2e6,
        "learned estimate {l} should have fallen near 0.4 MB/s"
    );
    assert!(c > 2e6, "the lifetime average {c} barely moves");
}

#[test]
fn the_estimate_rises_slower_than_it_falls() {
    let mut up = Learned::default();
    feed(&mut up, 1, 1e6, 0.0, 30.0);
    feed(&mut up, 1, 8e6, 30.0, 33.0);
    let mut down = Learned::default();
    feed(&mut down, 1, 8e6, 0.0, 30.0);
    feed(&mut down, 1, 1e6, 30.0, 33.0);
    // After 3 s the fall is mostly taken; the rise (the slow average, the
    // minimum) less so.
    let rise = (up.rate(1, 33.0) - 1e6) / 7e6;
    let fall = (8e6 - down.rate(1, 33.0)) / 7e6;
    assert!(fall > rise, "fall {fall} vs rise {rise}");
}

/// A provider at `rate` with round trip `rtt`, serving first come first
/// served, kept busy with as many requests as the policy's window allows;
/// `n` answers.
fn feed_pipelined<P: ProviderPolicy<u32>>(p: &mut P, k: u32, rate: f64, rtt: f64, n: usize) -> f64 {
    let bytes = 1u64 << 20;
    let (mut t, mut busy) = (0.0f64, 0.0f64);
    let mut in_flight: std::collections::VecDeque<(f64, f64)> = Default::default();
    for _ in 0..n {
        while in_flight.len() < p.window(k, bytes, t) {
            let start = (t + rtt / 2.0).max(busy);
            busy = start + bytes as f64 / rate;
            in_flight.push_back((t, busy + rtt / 2.0));
        }
        let (sent, done) = in_flight.pop_front().unwrap();
        t = done;
        p.on_done(k, bytes, sent, done);
    }
    t
}

#[test]
fn the_window_covers_the_bandwidth_delay_product() {
    let mut p = Learned::<u32>::default();
    assert_eq!(p.window(1, 1 << 20, 0.0), FIRST_WINDOW);
    // 20 MB/s with a 200 ms round trip (pinged): 4 MB in flight = 4
    // ranges, + 2.
    p.on_rtt(1, 0.2, 0.0);
    let t = feed_pipelined(&mut p, 1, 2e7, 0.2, 100);
    let rate = p.rate(1, t);
    assert!((1.8e7..2.2e7).contains(&rate), "rate {rate}");
    let w = p.window(1, 1 << 20, t);
    assert!((5..=6).contains(&w), "window {w}");
    // A slow provider with a short round trip gets three at most.
    p.on_rtt(2, 0.02, 0.0);
    let t = feed_pipelined(&mut p, 2, 2e5, 0.02, 20);
    assert!(p.window(2, 1 << 20, t) <= 3);
}

#[test]
fn a_critical_range_waits_for_the_provider_that_finishes_it_first() {
    let mut p = Learned::default();
    feed(&mut p, 1, 1e7, 0.0, 20.0);
    feed(&mut p, 2, 2e5, 0.0, 20.0);
    let range = 1 << 20;
    // The fast one has 2 MiB queued and still beats the slow, idle one.
    assert!(!p.may_take_critical(2, 0, &[(1, 2 << 20)], range, 20.0));
    assert!(p.may_take_critical(1, 2 << 20, &[(2, 0)], range, 20.0));
    // The classic policy never holds back.
    let c = Classic::<u32>::default();
    assert!(c.may_take_critical(2, 0, &[(1, 0)], range, 0.0));
}

#[test]
fn the_bandit_tries_everyone_then_keeps_the_best_and_probes_the_stalest() {
    let mut p = Learned::default();
    let candidates: Vec<u32> = (0..6).collect();
    let mut tried = BTreeSet::new();
    let mut now = 0.0;
    // Provider 5 is by far the fastest.
    let rate = |k: u32| if k == 5 { 8e6 } else { 5e5 };
    for _ in 0..40 {
        let chosen = p.active(&candidates, 3, now);
        assert_eq!(chosen.len(), 3);
        for k in &chosen {
            tried.insert(*k);
            feed(&mut p, *k, rate(*k), now, now + RECHOKE_EVERY);
        }
        now += RECHOKE_EVERY;
    }
    assert_eq!(tried.len(), 6, "every provider was measured");
    let chosen = p.active(&candidates, 3, now);
    assert!(chosen.contains(&5), "the best is kept: {chosen:?}");
    // Within the budget, everyone is used.
    assert_eq!(p.active(&candidates[..2], 3, now), vec![0, 1]);
}

#[test]
fn the_policy_names_parse() {
    assert_eq!("learned".parse::<PolicyKind>(), Ok(PolicyKind::Learned));
    assert_eq!("classic".parse::<PolicyKind>(), Ok(PolicyKind::Classic));
    assert!("fastest".parse::<PolicyKind>().is_err());
}

use std::collections::BTreeSet;

mod simulation {
    use super::super::sim::*;

    const SIZE: u64 = 64 << 20;

    #[test]
    fn a_seed_gives_the_same_download_every_time() {
        for s in Scenario::standard() {
            for which in Which::ALL {
                let a = run(&s, 7, which, Mode::Stream { bitrate: 1e6 }, SIZE);
                let b = run(&s, 7, which, Mode::Stream { bitrate: 1e6 }, SIZE);
                assert_eq!(a, b);
                assert!(
                    a.fetch_secs > 0.0 && a.fetch_secs < 3_600.0,
                    "{} {a:?}",
                    s.name
                );
                assert!(a.startup_secs > 0.0 && a.startup_secs <= a.fetch_secs);
            }
        }
    }

    #[test]
    fn no_policy_beats_the_oracle_by_much_and_the_fetch_respects_capacity() {
        for s in Scenario::standard() {
            for seed in 1..=5 {
                let truth = providers(&s, seed);
                // Even every provider at its initial rate at once cannot
                // beat SIZE / Σ rates (static schedules only).
                if s.schedule == Schedule::Static {
                    let total: f64 = truth.iter().map(|p| p.steps[0].1).sum();
                    let floor = SIZE as f64 / total;
                    for which in Which::ALL {
                        let o = run(&s, seed, which, Mode::File, SIZE);
                        assert!(
                            o.fetch_secs >= floor,
                            "{} {} {o:?} < {floor}",
                            s.name,
                            which.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn with_more_providers_than_the_budget_the_bandit_beats_keeping_the_first_found() {
        let s = Scenario::standard()
            .into_iter()
            .find(|s| s.budget < s.providers)
            .unwrap();
        let total = |which| -> f64 {
            (1..=5)
                .map(|seed| run(&s, seed, which, Mode::File, SIZE).fetch_secs)
                .sum()
        };
        let (classic, learned) = (total(Which::Classic), total(Which::Learned));
        assert!(
            learned < classic,
            "{}: learned {learned} s vs classic {classic} s over 5 seeds",
            s.name
        );
    }
}
