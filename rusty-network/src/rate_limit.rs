//! Per-peer, per-kind token buckets. Every inbound request and gossip message
//! costs one token of its kind; a peer out of tokens is refused, and
//! penalised by the caller at most once a second per kind unless the
//! refusals of that second pass four bursts: a backlog that arrives at once
//! (our node was paused, a link stalled) costs an honest peer one penalty,
//! not one per message (the chaos soak saw a node ban an honest peer after
//! a seven-second stall), while a flood, or a trickle over quota that goes
//! on, still ends in a ban.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use libp2p::PeerId;

/// What a token pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    StatusRequest,
    HeadersRequest,
    BlocksRequest,
    DirectRequest,
    MediaRequest,
    BlockGossip,
    TxGossip,
    ChainLockGossip,
    QuorumGossip,
    MediaGossip,
}

impl Kind {
    /// (sustained rate per second, burst).
    pub fn quota(self) -> (f64, f64) {
        match self {
            Kind::StatusRequest => (1.0, 10.0),
            // A syncing peer asks for 2,000 headers per request.
            Kind::HeadersRequest => (10.0, 50.0),
            // Parallel download: up to 16 blocks per request, a few in
            // flight per peer.
            Kind::BlocksRequest => (50.0, 200.0),
            // Quorum members send each other a burst of DKG messages per
            // phase (contributions, complaints, justifications).
            Kind::DirectRequest => (50.0, 200.0),
            // A viewer fetching chunk ranges from a peer at line rate, or
            // many viewers behind one relay. The media service bounds what
            // it serves itself (concurrent replies, bytes held, the upload
            // limit) and answers `Busy` beyond that, so this only stops a
            // flood: at 200 a second it capped one viewer at 200 requests'
            // worth of bytes (39 MB/s with 192 KiB ranges) and penalised it
            // for asking faster.
            Kind::MediaRequest => (4_000.0, 8_000.0),
            Kind::BlockGossip => (20.0, 100.0),
            Kind::TxGossip => (500.0, 2_000.0),
            // Signature shares of every quorum member, then the recovered
            // ChainLock, per block.
            Kind::ChainLockGossip => (100.0, 400.0),
            // Final DKG commitments: a few per quorum per DKG round.
            Kind::QuorumGossip => (10.0, 50.0),
            // Small signed announcements: content published, live segment
            // available, "I have content X".
            Kind::MediaGossip => (50.0, 200.0),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    /// When a refusal of this bucket was last penalised.
    penalised: Option<Instant>,
    /// Refusals since `penalised`.
    refused: u32,
}

/// What [`RateLimiter::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over quota; `penalise` at most once a second per peer and kind.
    Refused {
        penalise: bool,
    },
}

/// Refusals of one peer and kind are penalised at most this often...
const PENALTY_SPACING: Duration = Duration::from_secs(1);
/// ...unless more than this many bursts' worth come within the spacing:
/// a flood, not a backlog.
const FLOOD_BURSTS: f64 = 4.0;

/// Token buckets of every connected peer.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: HashMap<(PeerId, Kind), Bucket>,
}

impl RateLimiter {
    /// Takes one token; false if the peer is over its quota.
    pub fn allow(&mut self, peer: PeerId, kind: Kind, now: Instant) -> bool {
        self.check(peer, kind, now) == Verdict::Allowed
    }

    /// Takes one token, or says whether this refusal is to be penalised.
    pub fn check(&mut self, peer: PeerId, kind: Kind, now: Instant) -> Verdict {
        let (rate, burst) = kind.quota();
        let b = self.buckets.entry((peer, kind)).or_insert(Bucket {
            tokens: burst,
            updated: now,
            penalised: None,
            refused: 0,
        });
        let dt = now.saturating_duration_since(b.updated).as_secs_f64();
        b.tokens = (b.tokens + dt * rate).min(burst);
        b.updated = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Verdict::Allowed;
        }
        let spaced = b
            .penalised
            .is_none_or(|t| now.saturating_duration_since(t) >= PENALTY_SPACING);
        if spaced {
            b.penalised = Some(now);
            b.refused = 0;
        }
        b.refused = b.refused.saturating_add(1);
        let flood = f64::from(b.refused) > FLOOD_BURSTS * burst;
        Verdict::Refused {
            penalise: spaced || flood,
        }
    }

    /// Forgets a disconnected peer.
    pub fn remove_peer(&mut self, peer: &PeerId) {
        self.buckets.retain(|(p, _), _| p != peer);
    }

    /// Drops buckets that refilled completely (idle peers).
    pub fn prune(&mut self, now: Instant) {
        self.buckets.retain(|(_, kind), b| {
            let (rate, burst) = kind.quota();
            let full_after = Duration::from_secs_f64(burst / rate);
            now.saturating_duration_since(b.updated) < full_after
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_rate() {
        let mut rl = RateLimiter::default();
        let p = PeerId::random();
        let now = Instant::now();
        let (rate, burst) = Kind::StatusRequest.quota();
        for _ in 0..burst as usize {
            assert!(rl.allow(p, Kind::StatusRequest, now));
        }
        assert!(!rl.allow(p, Kind::StatusRequest, now));
        // Other peers and other kinds have their own buckets.
        assert!(rl.allow(PeerId::random(), Kind::StatusRequest, now));
        assert!(rl.allow(p, Kind::TxGossip, now));
        let later = now + Duration::from_secs_f64(1.0 / rate);
        assert!(rl.allow(p, Kind::StatusRequest, later));
        assert!(!rl.allow(p, Kind::StatusRequest, later));
    }

    /// A backlog arriving at once costs one penalty a second, however many
    /// messages are over the quota.
    #[test]
    fn refusals_are_penalised_at_most_once_a_second() {
        let mut rl = RateLimiter::default();
        let p = PeerId::random();
        let now = Instant::now();
        let (_, burst) = Kind::ChainLockGossip.quota();
        for _ in 0..burst as usize {
            assert_eq!(rl.check(p, Kind::ChainLockGossip, now), Verdict::Allowed);
        }
        let mut penalties = |n: usize, at: Instant| {
            (0..n)
                .filter(|_| {
                    rl.check(p, Kind::ChainLockGossip, at) == Verdict::Refused { penalise: true }
                })
                .count()
        };
        // A backlog of up to four bursts in a second: one penalty.
        assert_eq!(penalties(4 * burst as usize, now), 1);
        // Beyond that it is a flood: every message costs.
        assert_eq!(penalties(100, now), 100);
        // A trickle over quota that goes on is penalised again each second.
        let mut t = now;
        let mut more = 0;
        for _ in 0..10 {
            t += Duration::from_millis(1001);
            more += penalties(burst as usize + 50, t);
        }
        assert_eq!(more, 10);
    }

    /// A viewer downloading at line rate in the smallest ranges the
    /// downloader asks for is never refused (at 200 requests a second a
    /// 400 MiB download in 192 KiB ranges was refused and penalised from
    /// its 400th request on, and ran at a tenth of its speed).
    #[test]
    fn a_viewer_at_line_rate_is_not_refused() {
        let mut rl = RateLimiter::default();
        let p = PeerId::random();
        let start = Instant::now();
        // 1 GB/s in 256 KiB ranges for ten seconds: ~3,815 requests a second.
        let per_sec = 1_000_000_000 / (256 * 1024);
        let gap = Duration::from_secs(1) / per_sec;
        for i in 0..(10 * per_sec) {
            assert!(
                rl.allow(p, Kind::MediaRequest, start + gap * i),
                "request {i} refused"
            );
        }
    }
}
