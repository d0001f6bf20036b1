//! The peer database: every peer the node knows, its connection state, its
//! score, and the ban list. Plain data and arithmetic, no I/O, so the rules
//! are unit-tested without sockets; [`super::PeerManager`] drives it from
//! swarm events.

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use libp2p::{multiaddr::Protocol as Mp, Multiaddr, PeerId};
use rand::Rng;

/// How bad (or good) something a peer did was. The score moves by
/// [`PeerAction::delta`]; at or below [`BAN_THRESHOLD`] the peer is banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAction {
    /// Provably malicious: an invalid block, a consensus-invalid
    /// transaction, bytes that do not decode. Banned at once.
    Fatal,
    /// Clearly wrong but possibly a bug: unsolicited or inconsistent
    /// replies, a header chain that does not link.
    LowTolerance,
    /// Annoying: rate limits exceeded, a request that timed out.
    MidTolerance,
    /// Mildly unhelpful: a failed request, an empty reply.
    HighTolerance,
    /// Useful: a valid block or a prompt answer.
    Good,
}

impl PeerAction {
    pub fn delta(self) -> f64 {
        match self {
            PeerAction::Fatal => -(MAX_SCORE - MIN_SCORE),
            PeerAction::LowTolerance => -25.0,
            PeerAction::MidTolerance => -10.0,
            PeerAction::HighTolerance => -2.0,
            PeerAction::Good => 1.0,
        }
    }
}

pub const MAX_SCORE: f64 = 100.0;
pub const MIN_SCORE: f64 = -100.0;
/// A score at or below this bans the peer.
pub const BAN_THRESHOLD: f64 = -50.0;
/// Scores decay towards zero with this half-life (bad behaviour is forgiven
/// slowly, good behaviour must be kept up).
pub const SCORE_HALF_LIFE: Duration = Duration::from_secs(600);
/// Every full ten minutes of connection earn one point (uptime).
pub const UPTIME_REWARD_EVERY: Duration = Duration::from_secs(600);
/// Redial backoff: `BASE * 2^failures`, capped, ±20% jitter.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Addresses remembered per peer.
pub const MAX_ADDRS_PER_PEER: usize = 8;
/// Peers remembered in total; the worst disconnected ones are forgotten.
pub const MAX_KNOWN_PEERS: usize = 2_000;

/// Where a peer is in its connection life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    Disconnected,
    /// We are dialing it.
    Connecting,
    Connected {
        since: Instant,
        inbound: bool,
    },
    /// We asked the swarm to close its connections.
    Disconnecting,
}

/// What the node knows about one peer.
#[derive(Debug, Clone)]
pub struct PeerRecord {
    pub addrs: Vec<Multiaddr>,
    pub state: ConnectionState,
    pub score: f64,
    score_updated: Instant,
    uptime_rewarded: Duration,
    /// Dial failures in a row (for the backoff).
    pub failures: u32,
    /// Not dialed before this instant.
    pub next_dial: Instant,
    /// The address of the live connection.
    pub remote: Option<Multiaddr>,
    pub agent: Option<String>,
    pub ping: Option<Duration>,
    /// Added by `--bootnode`, `addnode` or the operator: always redialed.
    pub persistent: bool,
    /// Unix time it was last connected (peer store).
    pub last_seen: u64,
}

impl PeerRecord {
    fn new(now: Instant) -> Self {
        PeerRecord {
            addrs: Vec::new(),
            state: ConnectionState::Disconnected,
            score: 0.0,
            score_updated: now,
            uptime_rewarded: Duration::ZERO,
            failures: 0,
            next_dial: now,
            remote: None,
            agent: None,
            ping: None,
            persistent: false,
            last_seen: 0,
        }
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.state, ConnectionState::Connected { .. })
    }

    pub fn is_inbound(&self) -> bool {
        matches!(self.state, ConnectionState::Connected { inbound: true, .. })
    }

    fn add_addr(&mut self, addr: Multiaddr) {
        if let Some(pos) = self.addrs.iter().position(|a| *a == addr) {
            // Most recent first.
            let a = self.addrs.remove(pos);
            self.addrs.insert(0, a);
            return;
        }
        self.addrs.insert(0, addr);
        self.addrs.truncate(MAX_ADDRS_PER_PEER);
    }

    fn decay(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.score_updated);
        if dt.is_zero() {
            return;
        }
        let factor = 0.5f64.powf(dt.as_secs_f64() / SCORE_HALF_LIFE.as_secs_f64());
        self.score *= factor;
        self.score_updated = now;
    }
}

/// What a ban applies to: one identity, or every connection from an IP
/// address (operator bans only; automatic bans never ban an address, which
/// may be shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BanTarget {
    Peer(PeerId),
    Ip(IpAddr),
}

impl std::fmt::Display for BanTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BanTarget::Peer(p) => write!(f, "{p}"),
            BanTarget::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl BanTarget {
    /// As Core's `listbanned` names it: an IP as a full-length subnet.
    pub fn as_subnet(&self) -> String {
        match self {
            BanTarget::Peer(p) => p.to_string(),
            BanTarget::Ip(ip @ IpAddr::V4(_)) => format!("{ip}/32"),
            BanTarget::Ip(ip @ IpAddr::V6(_)) => format!("{ip}/128"),
        }
    }
}

impl std::str::FromStr for BanTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(BanTarget::Ip(ip));
        }
        // One address as a full-length subnet, as Core's `listbanned`
        // shows it: `192.0.2.1/32`, `2001:db8::1/128`.
        if let Some((ip, bits)) = s.split_once('/') {
            match (ip.parse::<IpAddr>(), bits) {
                (Ok(ip @ IpAddr::V4(_)), "32") | (Ok(ip @ IpAddr::V6(_)), "128") => {
                    return Ok(BanTarget::Ip(ip));
                }
                _ => {}
            }
        }
        if let Ok(p) = s.parse::<PeerId>() {
            return Ok(BanTarget::Peer(p));
        }
        if let Ok(addr) = s.parse::<Multiaddr>() {
            if let Some(p) = peer_id_of(&addr) {
                return Ok(BanTarget::Peer(p));
            }
            if let Some(ip) = ip_of(&addr) {
                return Ok(BanTarget::Ip(ip));
            }
        }
        Err(format!(
            "'{s}' is neither a peer id, an IP address nor a multiaddr with one"
        ))
    }
}

/// A ban in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// Unix time the ban was made and when it ends.
    pub created: u64,
    pub until: u64,
    pub reason: String,
}

/// The `/p2p/<id>` suffix of an address.
pub fn peer_id_of(addr: &Multiaddr) -> Option<PeerId> {
    // The last one: in a relay circuit address
    // (`…/p2p/<relay>/p2p-circuit/p2p/<peer>`) the first names the relay.
    addr.iter()
        .filter_map(|p| match p {
            Mp::P2p(id) => Some(id),
            _ => None,
        })
        .last()
}

/// The IP address of an address, if it has one.
pub fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Mp::Ip4(ip) => Some(IpAddr::V4(ip)),
        Mp::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// `addr` without its `/p2p/...` suffix (a relay's `/p2p/<relay>` inside
/// a circuit address stays: it is part of the way there).
pub fn without_peer_id(addr: &Multiaddr) -> Multiaddr {
    let mut out = addr.clone();
    if matches!(out.iter().last(), Some(Mp::P2p(_))) {
        out.pop();
    }
    out
}

/// `addr` ending in `/p2p/<peer>` (added unless already there).
pub fn with_peer_id(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    addr.clone().with_p2p(peer).unwrap_or_else(|a| a)
}

/// The redial delay after `failures` failures in a row.
pub fn backoff(failures: u32, rng: &mut impl Rng) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << failures.min(16));
    let capped = exp.min(BACKOFF_MAX);
    capped.mul_f64(rng.gen_range(0.8..1.2))
}

/// Every known peer and the bans.
#[derive(Debug, Default)]
pub struct PeerDb {
    peers: HashMap<PeerId, PeerRecord>,
    bans: HashMap<BanTarget, Ban>,
}

/// What a score change led to.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreOutcome {
    Unchanged,
    /// The score fell to the ban threshold: disconnect and ban.
    Banned,
}

impl PeerDb {
    pub fn get(&self, peer: &PeerId) -> Option<&PeerRecord> {
        self.peers.get(peer)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &PeerRecord)> {
        self.peers.iter()
    }

    fn entry(&mut self, peer: PeerId, now: Instant) -> &mut PeerRecord {
        self.peers
            .entry(peer)
            .or_insert_with(|| PeerRecord::new(now))
    }

    /// Learns an address of `peer` (discovery, identify, peer store).
    pub fn add_address(&mut self, peer: PeerId, addr: Multiaddr, now: Instant) {
        let addr = without_peer_id(&addr);
        self.entry(peer, now).add_addr(addr);
    }

    /// Marks `peer` as one to keep connected (bootnode, `addnode`).
    pub fn set_persistent(&mut self, peer: PeerId, addr: Multiaddr, now: Instant) {
        self.add_address(peer, addr, now);
        let r = self.entry(peer, now);
        r.persistent = true;
        r.next_dial = now;
        r.failures = 0;
    }

    pub fn set_not_persistent(&mut self, peer: &PeerId) {
        if let Some(r) = self.peers.get_mut(peer) {
            r.persistent = false;
        }
    }

    pub fn connected_count(&self, inbound: bool) -> usize {
        self.peers
            .values()
            .filter(|r| matches!(r.state, ConnectionState::Connected { inbound: i, .. } if i == inbound))
            .count()
    }

    pub fn connected(&self) -> impl Iterator<Item = (&PeerId, &PeerRecord)> {
        self.peers.iter().filter(|(_, r)| r.is_connected())
    }

    pub fn dialing_count(&self) -> usize {
        self.peers
            .values()
            .filter(|r| r.state == ConnectionState::Connecting)
            .count()
    }

    pub fn on_dialing(&mut self, peer: PeerId, now: Instant) {
        self.entry(peer, now).state = ConnectionState::Connecting;
    }

    pub fn on_connected(
        &mut self,
        peer: PeerId,
        remote: Multiaddr,
        inbound: bool,
        now: Instant,
        unix_now: u64,
    ) {
        let r = self.entry(peer, now);
        r.decay(now);
        r.state = ConnectionState::Connected {
            since: now,
            inbound,
        };
        r.uptime_rewarded = Duration::ZERO;
        r.failures = 0;
        r.last_seen = unix_now;
        if !inbound {
            r.add_addr(without_peer_id(&remote));
        }
        r.remote = Some(remote);
    }

    /// The last connection to `peer` closed.
    pub fn on_disconnected(&mut self, peer: PeerId, now: Instant, rng: &mut impl Rng) {
        let r = self.entry(peer, now);
        r.state = ConnectionState::Disconnected;
        r.remote = None;
        r.ping = None;
        // Do not hammer a peer that just hung up either.
        r.next_dial = now + backoff(r.failures, rng);
        r.failures = r.failures.saturating_add(1).min(16);
    }

    /// A dial to `peer` failed.
    pub fn on_dial_failure(&mut self, peer: PeerId, now: Instant, rng: &mut impl Rng) {
        let r = self.entry(peer, now);
        if r.is_connected() {
            return;
        }
        r.state = ConnectionState::Disconnected;
        r.next_dial = now + backoff(r.failures, rng);
        r.failures = r.failures.saturating_add(1).min(16);
    }

    pub fn on_disconnecting(&mut self, peer: &PeerId) {
        if let Some(r) = self.peers.get_mut(peer) {
            r.state = ConnectionState::Disconnecting;
        }
    }

    pub fn set_info(&mut self, peer: &PeerId, agent: Option<String>, ping: Option<Duration>) {
        if let Some(r) = self.peers.get_mut(peer) {
            if agent.is_some() {
                r.agent = agent;
            }
            if ping.is_some() {
                r.ping = ping;
            }
        }
    }

    /// Applies `action` to `peer`'s score.
    pub fn report(&mut self, peer: PeerId, action: PeerAction, now: Instant) -> ScoreOutcome {
        let r = self.entry(peer, now);
        r.decay(now);
        r.score = (r.score + action.delta()).clamp(MIN_SCORE, MAX_SCORE);
        if r.score <= BAN_THRESHOLD {
            ScoreOutcome::Banned
        } else {
            ScoreOutcome::Unchanged
        }
    }

    /// Decays scores and pays uptime; called once per heartbeat.
    pub fn heartbeat(&mut self, now: Instant) {
        for r in self.peers.values_mut() {
            r.decay(now);
            if let ConnectionState::Connected { since, .. } = r.state {
                let up = now.saturating_duration_since(since);
                while up >= r.uptime_rewarded + UPTIME_REWARD_EVERY {
                    r.uptime_rewarded += UPTIME_REWARD_EVERY;
                    r.score = (r.score + 1.0).min(MAX_SCORE);
                }
            }
        }
        if self.peers.len() > MAX_KNOWN_PEERS {
            let mut forgettable: Vec<(PeerId, f64)> = self
                .peers
                .iter()
                .filter(|(_, r)| r.state == ConnectionState::Disconnected && !r.persistent)
                .map(|(p, r)| (*p, r.score))
                .collect();
            forgettable.sort_by(|a, b| a.1.total_cmp(&b.1));
            let excess = self.peers.len() - MAX_KNOWN_PEERS;
            for (p, _) in forgettable.into_iter().take(excess) {
                self.peers.remove(&p);
            }
        }
    }

    /// Peers to dial now to reach `want` outbound connections: persistent
    /// ones first, then the best-scored; never banned ones, never ones in
    /// backoff.
    pub fn to_dial(
        &self,
        want: usize,
        now: Instant,
        unix_now: u64,
    ) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let mut candidates: Vec<(&PeerId, &PeerRecord)> = self
            .peers
            .iter()
            .filter(|(p, r)| {
                r.state == ConnectionState::Disconnected
                    && !r.addrs.is_empty()
                    && r.next_dial <= now
                    && r.score > BAN_THRESHOLD
                    && !self.is_banned_peer(p, unix_now)
            })
            .collect();
        candidates.sort_by(|a, b| {
            b.1.persistent
                .cmp(&a.1.persistent)
                .then(b.1.score.total_cmp(&a.1.score))
        });
        let persistent = candidates.iter().filter(|(_, r)| r.persistent).count();
        candidates
            .into_iter()
            .take(want.max(persistent))
            .map(|(p, r)| (*p, r.addrs.clone()))
            .collect()
    }

    pub fn ban(&mut self, target: BanTarget, ban: Ban) {
        if let BanTarget::Peer(p) = target {
            if let Some(r) = self.peers.get_mut(&p) {
                r.persistent = false;
            }
        }
        self.bans.insert(target, ban);
    }

    pub fn unban(&mut self, target: &BanTarget) -> bool {
        let removed = self.bans.remove(target).is_some();
        if let BanTarget::Peer(p) = target {
            if let Some(r) = self.peers.get_mut(p) {
                r.score = r.score.max(0.0);
            }
        }
        removed
    }

    pub fn clear_bans(&mut self) {
        let peers: Vec<BanTarget> = self.bans.keys().copied().collect();
        for t in peers {
            self.unban(&t);
        }
    }

    /// Drops expired bans.
    pub fn expire_bans(&mut self, unix_now: u64) -> Vec<BanTarget> {
        let expired: Vec<BanTarget> = self
            .bans
            .iter()
            .filter(|(_, b)| b.until <= unix_now)
            .map(|(t, _)| *t)
            .collect();
        for t in &expired {
            self.unban(t);
        }
        expired
    }

    pub fn bans(&self) -> impl Iterator<Item = (&BanTarget, &Ban)> {
        self.bans.iter()
    }

    pub fn is_banned_peer(&self, peer: &PeerId, unix_now: u64) -> bool {
        self.bans
            .get(&BanTarget::Peer(*peer))
            .is_some_and(|b| b.until > unix_now)
    }

    pub fn is_banned_addr(&self, addr: &Multiaddr, unix_now: u64) -> bool {
        ip_of(addr).is_some_and(|ip| {
            self.bans
                .get(&BanTarget::Ip(ip))
                .is_some_and(|b| b.until > unix_now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn a_circuit_address_names_the_peer_last_and_keeps_the_relay() {
        let relay = PeerId::random();
        let peer = PeerId::random();
        let circuit: Multiaddr =
            format!("/ip4/17.0.0.10/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{peer}")
                .parse()
                .expect("multiaddr");
        assert_eq!(peer_id_of(&circuit), Some(peer));
        let base = without_peer_id(&circuit);
        assert_eq!(
            base.to_string(),
            format!("/ip4/17.0.0.10/tcp/4001/p2p/{relay}/p2p-circuit")
        );
        assert_eq!(with_peer_id(&base, peer), circuit);
        // A plain address is unchanged by the rule.
        let plain: Multiaddr = format!("/ip4/1.2.3.4/tcp/1/p2p/{peer}")
            .parse()
            .expect("multiaddr");
        assert_eq!(peer_id_of(&plain), Some(peer));
        assert_eq!(without_peer_id(&plain).to_string(), "/ip4/1.2.3.4/tcp/1");
    }

    #[test]
    fn a_fatal_action_bans_at_once_and_small_ones_add_up() {
        let mut db = PeerDb::default();
        let now = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        assert_eq!(db.report(a, PeerAction::Fatal, now), ScoreOutcome::Banned);
        for _ in 0..4 {
            assert_eq!(
                db.report(b, PeerAction::MidTolerance, now),
                ScoreOutcome::Unchanged
            );
        }
        assert_eq!(
            db.report(b, PeerAction::MidTolerance, now),
            ScoreOutcome::Banned
        );
    }

    #[test]
    fn scores_decay_towards_zero() {
        let mut db = PeerDb::default();
        let now = Instant::now();
        let p = PeerId::random();
        db.report(p, PeerAction::LowTolerance, now);
        db.heartbeat(now + SCORE_HALF_LIFE);
        let s = db.get(&p).unwrap().score;
        assert!((s - -12.5).abs() < 0.01, "{s}");
    }

    #[test]
    fn uptime_earns_points() {
        let mut db = PeerDb::default();
        let now = Instant::now();
        let p = PeerId::random();
        db.on_connected(p, addr(1), false, now, 0);
        db.heartbeat(now + UPTIME_REWARD_EVERY * 3);
        assert!(db.get(&p).unwrap().score > 0.0);
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_is_capped() {
        let mut rng = StdRng::seed_from_u64(7);
        for f in 0..20u32 {
            let d = backoff(f, &mut rng);
            let nominal = BACKOFF_BASE.saturating_mul(1 << f.min(16)).min(BACKOFF_MAX);
            assert!(
                d >= nominal.mul_f64(0.8) && d <= nominal.mul_f64(1.2),
                "{f}: {d:?}"
            );
        }
    }

    #[test]
    fn failed_peers_wait_before_redial_and_banned_ones_never() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut db = PeerDb::default();
        let now = Instant::now();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        db.add_address(a, addr(1), now);
        db.add_address(b, addr(2), now);
        db.add_address(c, addr(3), now);
        db.on_dial_failure(a, now, &mut rng);
        db.ban(
            BanTarget::Peer(b),
            Ban {
                created: 0,
                until: 100,
                reason: "test".into(),
            },
        );
        let dial: Vec<PeerId> = db.to_dial(8, now, 10).into_iter().map(|x| x.0).collect();
        assert_eq!(dial, vec![c]);
        // After the backoff and the ban's expiry both are dialable again.
        let later = now + BACKOFF_MAX * 2;
        assert_eq!(db.expire_bans(100), vec![BanTarget::Peer(b)]);
        assert_eq!(db.to_dial(8, later, 100).len(), 3);
    }

    #[test]
    fn persistent_peers_are_dialed_even_beyond_the_target() {
        let mut db = PeerDb::default();
        let now = Instant::now();
        let p = PeerId::random();
        db.add_address(PeerId::random(), addr(1), now);
        db.set_persistent(p, addr(2), now);
        let dial = db.to_dial(0, now, 0);
        assert_eq!(dial.len(), 1);
        assert_eq!(dial[0].0, p);
    }

    #[test]
    fn ban_targets_parse_from_ids_ips_and_multiaddrs() {
        let p = PeerId::random();
        assert_eq!(p.to_string().parse::<BanTarget>(), Ok(BanTarget::Peer(p)));
        assert_eq!(
            "10.0.0.1".parse::<BanTarget>(),
            Ok(BanTarget::Ip("10.0.0.1".parse().unwrap()))
        );
        assert_eq!(
            format!("/ip4/1.2.3.4/tcp/1/p2p/{p}").parse::<BanTarget>(),
            Ok(BanTarget::Peer(p))
        );
        assert!("nonsense".parse::<BanTarget>().is_err());
    }

    #[test]
    fn ip_bans_match_addresses() {
        let mut db = PeerDb::default();
        db.ban(
            BanTarget::Ip("127.0.0.1".parse().unwrap()),
            Ban {
                created: 0,
                until: 10,
                reason: String::new(),
            },
        );
        assert!(db.is_banned_addr(&addr(5), 5));
        assert!(!db.is_banned_addr(&addr(5), 10));
    }
}
