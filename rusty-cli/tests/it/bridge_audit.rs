//! The participant's audit against real nodes of two chains: the bridge's
//! own swap engine and `RpcChain` adapters over an RSC node and a PAR
//! node, with an initiator that cheats (funds the wrong amount, hash or
//! lock, or a lock too short to leave the participant time to redeem).
//! The participant refuses, says why, and locks nothing of its own.

use std::time::{SystemTime, UNIX_EPOCH};

use rusty_node::bridge::{
    adapter::{ChainAdapter, RpcChain},
    messages::{Asset, HashAlg},
    swap::{State, Swap},
};

use crate::{bridge_swap::mine, harness::NodeProcess};

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

#[test]
fn the_audit_refuses_a_cheating_initiator_on_real_nodes_and_locks_nothing() {
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
    let par_sends_before = sends(&par_node);

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
        let (rsc_tip, par_tip) = (
            rsc.tip_height().expect("tip"),
            par.tip_height().expect("tip"),
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
            [i as u8 + 1; 32],
            (rsc_tip + t1_len, par_tip + 20),
            par.new_address().expect("address"),
            now / 1000 + 600,
            now,
        );
        let (mut bob, accept) = Swap::accept(
            &alice.offer_body(),
            rsc.new_address().expect("address"),
            now,
        )
        .expect("accept");
        assert_eq!(alice.on_message(&accept, now), Ok(true));
        cheat(&mut alice);

        let mut keep = |_: &Swap| Ok::<(), String>(());
        for _ in 0..6 {
            let now = now_ms();
            let msgs = alice.step(&rsc, &par, now, &mut keep).unwrap_or_default();
            for m in &msgs {
                let _ = bob.on_message(m, now);
            }
            let _ = bob.step(&par, &rsc, now, &mut keep);
            mine(&rsc_node, 1);
            mine(&par_node, 1);
        }
        // Alice's (cheating) HTLC is on chain and final; Bob saw it.
        assert!(alice.own.is_some(), "{why}: Alice never funded: {alice:?}");
        assert_eq!(bob.state, State::Accepted, "{why}: {bob:?}");
        let err = bob.last_error.clone().unwrap_or_default();
        assert!(err.contains(why), "{why}: {err}");
        assert!(bob.own.is_none() && bob.own_refund.is_none(), "{why}");
    }
    // Nothing of Bob's PAR left his wallet in any case.
    assert_eq!(sends(&par_node), par_sends_before);
}
