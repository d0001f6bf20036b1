//! The bridge's own swap engine and `RpcChain` adapters over real nodes of
//! two chains (an RSC node and a PAR node), driven step by step so a test
//! can cheat or crash exactly where it wants:
//! - an initiator that funds the wrong amount, hash or lock, or a lock
//!   too short to leave the participant time to redeem: the participant
//!   refuses, says why, and locks nothing of its own;
//! - both parties restarted from what they persisted before every step:
//!   the swap completes, and each side paid its HTLC exactly once.

use std::time::{SystemTime, UNIX_EPOCH};

use rusty_node::bridge::{
    adapter::{ChainAdapter, RpcChain},
    messages::{Asset, HashAlg, SwapBody},
    swap::{State, Swap},
};

use crate::{
    bridge_swap::{mine, INITIATOR_PATH, PARTICIPANT_PATH},
    harness::NodeProcess,
};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn chain(n: &NodeProcess, network: &str) -> RpcChain {
    let cookie = n.datadir.join(network).join(".cookie");
    let url = format!("http://127.0.0.1:{}", n.port);
    RpcChain::with_cookie(network, &url, cookie, 1).expect("rpc chain")
}

/// Wallet entries that paid something out (a funding would be one).
fn sends(n: &NodeProcess) -> usize {
    n.json(&["rpc", "listtransactions", "*", "1000"])
        .as_array()
        .expect("list")
        .iter()
        .filter(|t| t["category"] == "send")
        .count()
}

type Cheat = fn(&mut Swap);

/// An RSC node and a PAR node with mature coins, and an adapter for each.
struct Nodes {
    rsc_node: NodeProcess,
    par_node: NodeProcess,
    rsc: RpcChain,
    par: RpcChain,
    _dirs: Vec<tempfile::TempDir>,
}

fn nodes() -> Nodes {
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let rsc_node = NodeProcess::start(dirs[0].path(), crate::harness::free_port(), &["--no-mine"]);
    let par_node = NodeProcess::start_on(
        "par",
        dirs[1].path(),
        crate::harness::free_port(),
        &["--no-mine", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"],
    );
    mine(&rsc_node, 11);
    mine(&par_node, 11);
    let (rsc, par) = (chain(&rsc_node, "dev"), chain(&par_node, "par-dev"));
    Nodes {
        rsc_node,
        par_node,
        rsc,
        par,
        _dirs: dirs,
    }
}

/// Alice offers 5 RSC for 10 PAR, locked for `t1_len` RSC blocks and 20
/// PAR blocks; Bob accepts. Returns both sides' swaps.
fn agree(n: &Nodes, t1_len: u64, secret: [u8; 32]) -> (Swap, Swap) {
    let (rsc_tip, par_tip) = (
        n.rsc.tip_height().expect("tip"),
        n.par.tip_height().expect("tip"),
    );
    let now = now_ms();
    let mut alice = Swap::initiate(
        Asset {
            network: "dev".into(),
            amount: 500_000_000,
        },
        Asset {
            network: "par-dev".into(),
            amount: 1_000_000_000,
        },
        HashAlg::Sha256,
        secret,
        (rsc_tip + t1_len, par_tip + 20),
        n.par.new_address().expect("address"),
        now / 1000 + 600,
        now,
    );
    let (bob, accept) = Swap::accept(
        &alice.offer_body(),
        n.rsc.new_address().expect("address"),
        now,
    )
    .expect("accept");
    assert_eq!(alice.on_message(&accept, now), Ok(true));
    (alice, bob)
}

#[test]
fn the_audit_refuses_a_cheating_initiator_on_real_nodes_and_locks_nothing() {
    let n = nodes();
    let Nodes {
        rsc_node,
        par_node,
        rsc,
        par,
        ..
    } = &n;
    let par_sends_before = sends(par_node);

    // (what the participant must say, T1 length in RSC blocks, the cheat)
    let cases: [(&str, u64, Cheat); 4] = [
        ("locks 400000000 instead of 500000000", 40, |s| {
            s.give_amount = 400_000_000
        }),
        ("a different secret hash", 40, |s| s.secret_hash = [7; 32]),
        ("locked until", 40, |s| s.t1 += 3),
        // Agreed in the offer, but 12 RSC blocks (24 s) against 20 PAR
        // blocks (20 s) leave the participant too little time.
        ("too short to redeem safely", 12, |_| {}),
    ];
    for (i, (why, t1_len, cheat)) in cases.into_iter().enumerate() {
        let (mut alice, mut bob) = agree(&n, t1_len, [i as u8 + 1; 32]);
        cheat(&mut alice);

        let mut keep = |_: &Swap| Ok::<(), String>(());
        for _ in 0..6 {
            let now = now_ms();
            let msgs = alice.step(rsc, par, now, &mut keep).unwrap_or_default();
            for m in &msgs {
                let _ = bob.on_message(m, now);
            }
            let _ = bob.step(par, rsc, now, &mut keep);
            mine(rsc_node, 1);
            mine(par_node, 1);
        }
        // Alice's (cheating) HTLC is on chain and final; Bob saw it.
        assert!(alice.own.is_some(), "{why}: Alice never funded: {alice:?}");
        assert_eq!(bob.state, State::Accepted, "{why}: {bob:?}");
        let err = bob.last_error.clone().unwrap_or_default();
        assert!(err.contains(why), "{why}: {err}");
        assert!(bob.own.is_none() && bob.own_refund.is_none(), "{why}");
    }
    // Nothing of Bob's PAR left his wallet in any case.
    assert_eq!(sends(par_node), par_sends_before);
}

/// One side of a swap as the bridge service keeps it: the swap in memory
/// and the JSON record it last persisted.
struct Side {
    swap: Swap,
    saved: String,
}

impl Side {
    fn new(swap: Swap) -> Side {
        let saved = serde_json::to_string(&swap).expect("json");
        Side { swap, saved }
    }

    /// `kill -9` and start again: only the persisted record survives.
    fn restart(&mut self) {
        self.swap = serde_json::from_str(&self.saved).expect("record");
    }

    fn step(&mut self, own: &RpcChain, peer: &RpcChain) -> Vec<SwapBody> {
        let mut saved = None;
        let out = {
            let mut persist = |s: &Swap| {
                saved = Some(serde_json::to_string(s).map_err(|e| e.to_string())?);
                Ok(())
            };
            self.swap.step(own, peer, now_ms(), &mut persist)
        };
        if let Some(s) = saved {
            self.saved = s;
        }
        // Chain errors are retried at the next step.
        out.unwrap_or_default()
    }

    fn deliver(&mut self, msgs: &[SwapBody]) {
        for m in msgs {
            if self.swap.on_message(m, now_ms()) == Ok(true) {
                self.saved = serde_json::to_string(&self.swap).expect("json");
            }
        }
    }
}

#[test]
fn a_restart_before_every_step_on_real_nodes_completes_and_pays_once() {
    let n = nodes();
    let (rsc_sends, par_sends) = (sends(&n.rsc_node), sends(&n.par_node));
    let (alice, bob) = agree(&n, 40, [42; 32]);
    let (mut alice, mut bob) = (Side::new(alice), Side::new(bob));
    for _ in 0..40 {
        alice.restart();
        let msgs = alice.step(&n.rsc, &n.par);
        bob.restart();
        bob.deliver(&msgs);
        let msgs = bob.step(&n.par, &n.rsc);
        alice.deliver(&msgs);
        if alice.swap.state == State::Completed && bob.swap.state == State::Completed {
            break;
        }
        mine(&n.rsc_node, 1);
        mine(&n.par_node, 1);
    }
    let names = |s: &Swap| -> Vec<String> {
        s.history
            .iter()
            .map(|(state, _)| {
                serde_json::to_value(state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect()
    };
    assert_eq!(names(&alice.swap), INITIATOR_PATH, "{:?}", alice.swap);
    assert_eq!(names(&bob.swap), PARTICIPANT_PATH, "{:?}", bob.swap);
    // Each side paid its HTLC once, however often it restarted.
    assert_eq!(sends(&n.rsc_node), rsc_sends + 1);
    assert_eq!(sends(&n.par_node), par_sends + 1);
}
