//! The fault schedule: every fault of a soak, drawn from one seed before
//! the soak starts, so that a failing run replays with `--seed`.
//!
//! Faults come in lanes that overlap in time (node faults, partitions,
//! byzantine peers, the disk); within a lane they follow one another with a
//! gap. Node faults never hit a node that another node fault holds, and at
//! most two hold nodes at once, so that quorums can still sign most of the
//! time and the soak tests recovery, not a dead network.

use std::{fmt, time::Duration};

use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};

/// What a byzantine peer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// A block with a valid proof of work whose coinbase pays too much,
    /// announced and served on request.
    InvalidBlock,
    /// Random bytes on every gossip topic.
    Garbage,
    /// ChainLocks and ChainLock signature shares signed by a key of no
    /// quorum.
    ForgedChainLocks,
    /// Claims to have the published media and serves chunks that do not
    /// match its manifest.
    CorruptChunks,
}

impl Misbehaviour {
    pub const ALL: [Misbehaviour; 4] = [
        Misbehaviour::InvalidBlock,
        Misbehaviour::Garbage,
        Misbehaviour::ForgedChainLocks,
        Misbehaviour::CorruptChunks,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Misbehaviour::InvalidBlock => "invalid blocks",
            Misbehaviour::Garbage => "garbage",
            Misbehaviour::ForgedChainLocks => "forged ChainLocks",
            Misbehaviour::CorruptChunks => "corrupt chunks",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL, then a restart `down_secs` later; with `mid_dkg` the kill
    /// waits (up to 60 s) until the node is in a DKG session.
    Kill {
        node: usize,
        down_secs: u64,
        mid_dkg: bool,
    },
    /// SIGSTOP for `secs`: a peer whose connections stay open but answer
    /// nothing.
    Stall { node: usize, secs: u64 },
    /// SIGSTOP and SIGCONT in turn (half the time stopped) for `secs`: a
    /// slow peer.
    Slow { node: usize, secs: u64 },
    /// Restart with the node's clock `skew_secs` off (within the chain's
    /// two-hour future limit), and back to the right time after `secs`.
    ClockSkew {
        node: usize,
        skew_secs: i64,
        secs: u64,
    },
    /// Nodes of `side` ban every other node and the others ban them, for
    /// `secs`; then the bans are lifted.
    Partition { side: Vec<usize>, secs: u64 },
    /// A peer with a fresh identity misbehaves towards `target` for `secs`.
    Byzantine {
        target: usize,
        kind: Misbehaviour,
        secs: u64,
    },
    /// The disk node's datadir (a small tmpfs) is filled up for `secs`.
    DiskFull { secs: u64 },
}

impl Fault {
    /// The kind, for the report's counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill { mid_dkg: true, .. } => "kill -9 mid-DKG",
            Fault::Kill { .. } => "kill -9",
            Fault::Stall { .. } => "stalled peer",
            Fault::Slow { .. } => "slow peer",
            Fault::ClockSkew { .. } => "clock skew",
            Fault::Partition { .. } => "partition",
            Fault::Byzantine { kind, .. } => match kind {
                Misbehaviour::InvalidBlock => "byzantine: invalid blocks",
                Misbehaviour::Garbage => "byzantine: garbage",
                Misbehaviour::ForgedChainLocks => "byzantine: forged ChainLocks",
                Misbehaviour::CorruptChunks => "byzantine: corrupt chunks",
            },
            Fault::DiskFull { .. } => "disk full",
        }
    }

    /// How long the fault holds.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(match self {
            Fault::Kill { down_secs, .. } => *down_secs,
            Fault::Stall { secs, .. }
            | Fault::Slow { secs, .. }
            | Fault::ClockSkew { secs, .. }
            | Fault::Partition { secs, .. }
            | Fault::Byzantine { secs, .. }
            | Fault::DiskFull { secs } => *secs,
        })
    }

    /// The node it holds, for node faults.
    pub fn node(&self) -> Option<usize> {
        match self {
            Fault::Kill { node, .. }
            | Fault::Stall { node, .. }
            | Fault::Slow { node, .. }
            | Fault::ClockSkew { node, .. } => Some(*node),
            _ => None,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kill {
                node,
                down_secs,
                mid_dkg,
            } => write!(
                f,
                "kill -9 node {node}{}, restart after {down_secs} s",
                if *mid_dkg { " during a DKG" } else { "" }
            ),
            Fault::Stall { node, secs } => write!(f, "stall node {node} for {secs} s"),
            Fault::Slow { node, secs } => write!(f, "slow node {node} for {secs} s"),
            Fault::ClockSkew {
                node,
                skew_secs,
                secs,
            } => write!(f, "node {node}'s clock {skew_secs:+} s for {secs} s"),
            Fault::Partition { side, secs } => {
                write!(f, "partition {side:?} from the rest for {secs} s")
            }
            Fault::Byzantine { target, kind, secs } => {
                write!(
                    f,
                    "byzantine peer sends {} to node {target} for {secs} s",
                    kind.name()
                )
            }
            Fault::DiskFull { secs } => write!(f, "fill the disk node's datadir for {secs} s"),
        }
    }
}

/// A fault and when it starts, counted from the start of the fault phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub at: Duration,
    pub fault: Fault,
}

impl fmt::Display for Scheduled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t+{:>4} s  {}", self.at.as_secs(), self.fault)
    }
}

/// Which nodes the schedule may pick.
#[derive(Debug, Clone)]
pub struct Targets {
    pub nodes: usize,
    pub miners: Vec<usize>,
    pub masternodes: Vec<usize>,
    /// The node whose datadir is on a tmpfs (disk-full faults).
    pub disk_node: Option<usize>,
    /// Partitions may put masternodes on both sides.
    pub split_masternodes: bool,
}

/// At most this many node faults hold nodes at once.
const MAX_CONCURRENT_NODE_FAULTS: usize = 2;

/// Draws the faults of a soak of `length` from `seed`. The same seed,
/// length and targets give the same schedule.
pub fn generate(seed: u64, length: Duration, t: &Targets) -> Vec<Scheduled> {
    let mut rng = StdRng::seed_from_u64(seed);
    let end = length.as_secs();
    let mut out = Vec::new();
    // The disk: full for 10–20 s, every 60–120 s.
    if t.disk_node.is_some() {
        let mut at = rng.gen_range(30..=60);
        while at < end {
            let secs = rng.gen_range(10..=20);
            out.push(Scheduled {
                at: Duration::from_secs(at),
                fault: Fault::DiskFull { secs },
            });
            at += secs + rng.gen_range(60..=120);
        }
    }
    // Node faults: a new one every 4–12 s, on a node no other fault holds.
    let mut busy: Vec<(u64, u64, usize)> = Vec::new(); // (from, to, node)
    let mut at = 5;
    while at < end {
        let fault = node_fault(&mut rng, t);
        let node = fault.node().unwrap_or(0);
        let to = at + fault.duration().as_secs() + 5;
        // The disk node is left alone while its disk is full and for a
        // minute after (a node stopped by a full disk takes a while to go).
        let disk_busy = Some(node) == t.disk_node
            && out.iter().any(|d: &Scheduled| {
                let from = d.at.as_secs();
                from < to && at < from + d.fault.duration().as_secs() + 60
            });
        let overlapping: Vec<_> = busy.iter().filter(|b| b.0 < to && at < b.1).collect();
        if !disk_busy
            && overlapping.len() < MAX_CONCURRENT_NODE_FAULTS
            && !overlapping.iter().any(|b| b.2 == node)
        {
            busy.push((at, to, node));
            out.push(Scheduled {
                at: Duration::from_secs(at),
                fault,
            });
        }
        at += rng.gen_range(4..=12);
    }
    // Partitions: one at a time, 20–45 s, 20–40 s apart.
    let mut at = rng.gen_range(15..=30);
    while at < end {
        let secs = rng.gen_range(20..=45);
        out.push(Scheduled {
            at: Duration::from_secs(at),
            fault: Fault::Partition {
                side: partition_side(&mut rng, t),
                secs,
            },
        });
        at += secs + rng.gen_range(20..=40);
    }
    // Byzantine peers: each kind in turn, 10–20 s each, 10–25 s apart.
    let mut at = rng.gen_range(8..=20);
    let mut kinds = Misbehaviour::ALL.to_vec();
    while at < end {
        if kinds.is_empty() {
            kinds = Misbehaviour::ALL.to_vec();
        }
        kinds.shuffle(&mut rng);
        let kind = kinds.pop().unwrap_or(Misbehaviour::Garbage);
        let secs = rng.gen_range(10..=20);
        out.push(Scheduled {
            at: Duration::from_secs(at),
            fault: Fault::Byzantine {
                target: rng.gen_range(0..t.nodes),
                kind,
                secs,
            },
        });
        at += secs + rng.gen_range(10..=25);
    }
    // Every fault heals at least 30 s before the fault phase ends, so the
    // final phase starts from a healed network that had time to converge
    // (a partition healed by the final phase itself left the cut-off
    // miner on a heavier fork of its own; docs/reliability.md).
    out.retain(|s| s.at.as_secs() + s.fault.duration().as_secs() + 30 <= end);
    out.sort_by_key(|s| s.at);
    out
}

fn node_fault(rng: &mut StdRng, t: &Targets) -> Fault {
    let node = rng.gen_range(0..t.nodes);
    match rng.gen_range(0..100) {
        0..=39 => Fault::Kill {
            node,
            down_secs: rng.gen_range(2..=15),
            mid_dkg: false,
        },
        40..=54 => {
            let mns = &t.masternodes;
            Fault::Kill {
                node: mns[rng.gen_range(0..mns.len())],
                down_secs: rng.gen_range(2..=10),
                mid_dkg: true,
            }
        }
        55..=69 => Fault::Stall {
            node,
            secs: rng.gen_range(5..=20),
        },
        70..=84 => Fault::Slow {
            node,
            secs: rng.gen_range(10..=30),
        },
        _ => Fault::ClockSkew {
            node,
            // Within the chain's tolerance: a block may be two hours ahead
            // of a node's clock, so ±30 minutes leaves room on both sides.
            skew_secs: rng.gen_range(-1800..=1800),
            secs: rng.gen_range(20..=60),
        },
    }
}

/// One side of a partition: the first miner with a random share of the
/// other nodes (masternodes only with `split_masternodes`), so that both
/// sides mine and a fork forms.
fn partition_side(rng: &mut StdRng, t: &Targets) -> Vec<usize> {
    let mut side: Vec<usize> = Vec::new();
    if let Some(&m) = t.miners.first() {
        side.push(m);
    }
    for i in 0..t.nodes {
        let eligible =
            !t.miners.contains(&i) && (t.split_masternodes || !t.masternodes.contains(&i));
        if eligible && rng.gen_bool(0.4) {
            side.push(i);
        }
    }
    side.sort_unstable();
    side
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Targets {
        Targets {
            nodes: 11,
            miners: vec![0, 1],
            masternodes: (2..9).collect(),
            disk_node: Some(10),
            split_masternodes: true,
        }
    }

    #[test]
    fn a_seed_replays_its_schedule_and_another_seed_differs() {
        let len = Duration::from_secs(600);
        let a = generate(7, len, &targets());
        assert_eq!(a, generate(7, len, &targets()));
        assert_ne!(a, generate(8, len, &targets()));
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[test]
    fn node_faults_never_share_a_node_and_at_most_two_overlap() {
        for seed in 0..50 {
            let s = generate(seed, Duration::from_secs(1800), &targets());
            let spans: Vec<_> = s
                .iter()
                .filter_map(|x| {
                    let from = x.at.as_secs();
                    Some((
                        from,
                        from + x.fault.duration().as_secs() + 5,
                        x.fault.node()?,
                    ))
                })
                .collect();
            for (i, a) in spans.iter().enumerate() {
                // At the moment each fault starts, at most two hold nodes.
                let holding = spans.iter().filter(|b| b.0 <= a.0 && a.0 < b.1).count();
                assert!(holding <= MAX_CONCURRENT_NODE_FAULTS, "seed {seed}");
                let overlapping: Vec<_> = spans
                    .iter()
                    .enumerate()
                    .filter(|(j, b)| *j != i && b.0 < a.1 && a.0 < b.1)
                    .collect();
                assert!(overlapping.iter().all(|(_, b)| b.2 != a.2), "seed {seed}");
            }
        }
    }

    #[test]
    fn every_kind_of_fault_is_drawn_in_a_long_soak() {
        let s = generate(1, Duration::from_secs(1800), &targets());
        let kinds: std::collections::BTreeSet<_> = s.iter().map(|x| x.fault.kind()).collect();
        assert_eq!(kinds.len(), 11, "{kinds:?}");
        // Partition sides hold one miner, never both.
        for x in &s {
            if let Fault::Partition { side, .. } = &x.fault {
                assert!(side.contains(&0) && !side.contains(&1), "{side:?}");
            }
        }
    }

    /// The soak's 30-minute run restarted the disk node for a clock fault
    /// while its disk was full; node faults now leave it alone then.
    #[test]
    fn the_disk_node_gets_no_node_fault_while_its_disk_is_full() {
        for seed in 0..50 {
            let s = generate(seed, Duration::from_secs(1800), &targets());
            let disk: Vec<(u64, u64)> = s
                .iter()
                .filter(|x| matches!(x.fault, Fault::DiskFull { .. }))
                .map(|x| {
                    (
                        x.at.as_secs(),
                        x.at.as_secs() + x.fault.duration().as_secs() + 60,
                    )
                })
                .collect();
            assert!(!disk.is_empty());
            for x in s.iter().filter(|x| x.fault.node() == Some(10)) {
                let (from, to) = (
                    x.at.as_secs(),
                    x.at.as_secs() + x.fault.duration().as_secs() + 5,
                );
                assert!(
                    disk.iter().all(|d| !(d.0 < to && from < d.1)),
                    "seed {seed}: {x}"
                );
            }
        }
    }

    #[test]
    fn masternodes_stay_together_unless_split_is_asked_for() {
        let mut t = targets();
        t.split_masternodes = false;
        let s = generate(3, Duration::from_secs(1800), &t);
        let mut partitions = 0;
        for x in &s {
            if let Fault::Partition { side, .. } = &x.fault {
                partitions += 1;
                assert!(side.iter().all(|i| !t.masternodes.contains(i)), "{side:?}");
            }
        }
        assert!(partitions > 10);
    }
}
