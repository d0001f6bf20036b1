//! RSC ↔ ETH swaps against a real local Ethereum node (`hardhat node`,
//! installed pinned from npm): Alice's and Bob's RSC nodes each reach it
//! through `--bridge-chain eth:31337=URL,key=PATH`; Bob's adapter deploys
//! the committed `RustyHtlc` contract, locks ether in it, and the daemons
//! finish or refund the swap by themselves. Skipped, saying why, only
//! where npm or its registry is unreachable.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use crate::{
    bridge_swap::{
        agree, balance, history, listen, mine, state, wait_connected, INITIATOR_PATH,
        PARTICIPANT_PATH,
    },
    eth_tools::{contract_dir, key_file, tools_or_skip, EthNode, DEV_ADDRESSES, DEV_KEYS},
    harness::{free_port, NodeProcess},
};

/// The committed ABI and bytecode are exactly what the pinned solc makes
/// of the committed source.
#[test]
fn the_eth_htlc_artifacts_are_what_the_source_compiles_to() {
    let Some(tools) = tools_or_skip("the_eth_htlc_artifacts_are_what_the_source_compiles_to")
    else {
        return;
    };
    let out = Command::new("node")
        .arg(tools.join("compile.js"))
        .arg("--check")
        .arg("--dir")
        .arg(contract_dir())
        .output()
        .expect("run node compile.js");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Alice (RSC) and Bob (RSC, paying ether), their RSC nodes connected and
/// both reaching one hardhat node.
struct EthParties {
    eth: EthNode,
    alice: NodeProcess,
    bob: NodeProcess,
    _dirs: Vec<tempfile::TempDir>,
}

impl EthParties {
    fn start(tools: &std::path::Path) -> EthParties {
        let eth = EthNode::start(tools);
        let dirs: Vec<_> = (0..2)
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let flag = |i: usize| {
            format!(
                "eth:31337={},key={}",
                eth.url,
                key_file(dirs[i].path(), DEV_KEYS[i]).display()
            )
        };
        let rsc_listen = listen(free_port());
        let alice_flag = flag(0);
        let alice = NodeProcess::start(
            dirs[0].path(),
            free_port(),
            &[
                "--no-mine",
                "--listen",
                &rsc_listen,
                "--bridge-chain",
                &alice_flag,
            ],
        );
        let bob_flag = flag(1);
        let bob = NodeProcess::start(
            dirs[1].path(),
            free_port(),
            &[
                "--no-mine",
                "--bootnode",
                &rsc_listen,
                "--bridge-chain",
                &bob_flag,
            ],
        );
        wait_connected(&bob);
        mine(&alice, 11);
        let deadline = Instant::now() + Duration::from_secs(60);
        while bob.height() < alice.height() {
            assert!(Instant::now() < deadline, "Bob's node never synced");
            std::thread::sleep(Duration::from_millis(100));
        }
        EthParties {
            eth,
            alice,
            bob,
            _dirs: dirs,
        }
    }
}

#[test]
fn rsc_and_eth_swap_against_a_real_ethereum_node() {
    let Some(tools) = tools_or_skip("rsc_and_eth_swap_against_a_real_ethereum_node") else {
        return;
    };
    let p = EthParties::start(&tools);
    let (alice_eth, bob_eth) = (DEV_ADDRESSES[0], DEV_ADDRESSES[1]);
    let (alice_eth_before, bob_eth_before) = (p.eth.balance(alice_eth), p.eth.balance(bob_eth));
    let bob_rsc_before = balance(&p.bob);

    let id = agree(&p.alice, &p.bob, "5 dev", "1.5 eth:31337");

    // RSC blocks on demand; hardhat mines by itself.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (a, b) = (state(&p.alice, &id), state(&p.bob, &id));
        if a["state"] == "completed" && b["state"] == "completed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "swap not done: alice {a}, bob {b}"
        );
        for s in [&a, &b] {
            assert_ne!(s["status"], "failed", "{s}");
        }
        mine(&p.alice, 1);
        std::thread::sleep(Duration::from_millis(300));
    }
    let (a, b) = (state(&p.alice, &id), state(&p.bob, &id));
    assert_eq!(history(&a), INITIATOR_PATH);
    assert_eq!(history(&b), PARTICIPANT_PATH);
    assert_eq!(a["want"], "1.500000000 eth:31337", "{a}");
    assert_eq!(b["own_network"], "eth:31337", "{b}");

    // Ether moved from Bob to Alice, less gas (Bob also paid for the
    // contract's deployment); RSC from Alice to Bob, less fees.
    mine(&p.alice, 1);
    std::thread::sleep(Duration::from_millis(500));
    let alice_got = p.eth.balance(alice_eth) - alice_eth_before;
    let bob_paid = bob_eth_before - p.eth.balance(bob_eth);
    assert!(
        alice_got > 1.49 && alice_got < 1.5,
        "Alice got {alice_got} ether"
    );
    assert!(
        bob_paid > 1.5 && bob_paid < 1.51,
        "Bob paid {bob_paid} ether"
    );
    let got_rsc = balance(&p.bob) - bob_rsc_before;
    assert!(got_rsc > 4.99 && got_rsc < 5.0, "Bob got {got_rsc} RSC");
}

#[test]
fn the_eth_participant_refunds_by_itself_when_the_initiator_never_redeems() {
    let Some(tools) =
        tools_or_skip("the_eth_participant_refunds_by_itself_when_the_initiator_never_redeems")
    else {
        return;
    };
    let p = EthParties::start(&tools);
    let bob_eth = DEV_ADDRESSES[1];
    let bob_eth_before = p.eth.balance(bob_eth);
    let id = agree(&p.alice, &p.bob, "5 dev", "2 eth:31337");

    // Alice's RSC lock is sent but not mined; she vanishes before she
    // could see Bob's ether, let alone redeem it. (The test hands her
    // lock to Bob's node in case hers had no time to relay it.)
    let deadline = Instant::now() + Duration::from_secs(60);
    let funding = loop {
        if let Some(txid) = state(&p.alice, &id)["funding_txid"].as_str() {
            break txid.to_string();
        }
        assert!(Instant::now() < deadline, "Alice never funded");
        std::thread::sleep(Duration::from_millis(100));
    };
    let raw = p.alice.json(&["rpc", "getrawtransaction", &funding]);
    // Relayed already, or not yet: either way it ends in Bob's mempool.
    let _ = p
        .bob
        .cli(&["rpc", "sendrawtransaction", raw.as_str().expect("raw tx")]);
    let mempool = p.bob.json(&["rpc", "getrawmempool"]);
    assert!(
        mempool
            .as_array()
            .is_some_and(|m| m.iter().any(|t| t == funding.as_str())),
        "Alice's lock is not in Bob's mempool: {mempool}"
    );
    let EthParties {
        eth, alice, bob, ..
    } = p;
    alice.kill9();

    // Bob's node mines Alice's lock; his daemon audits it and locks ether.
    let deadline = Instant::now() + Duration::from_secs(60);
    while state(&bob, &id)["state"] != "funded" {
        assert!(
            Instant::now() < deadline,
            "Bob never funded: {}",
            state(&bob, &id)
        );
        mine(&bob, 1);
        std::thread::sleep(Duration::from_millis(300));
    }
    let locked = bob_eth_before - eth.balance(bob_eth);
    assert!(locked > 2.0, "Bob's ether is not locked: {locked}");

    // Nobody redeems; hardhat's blocks pass Bob's lock (T2 = 20 blocks),
    // and his daemon refunds without being asked.
    let refund_at = state(&bob, &id)["refund_available_at"]
        .as_u64()
        .expect("refund height");
    assert!(refund_at > eth.block_number(), "the lock is already open");
    let deadline = Instant::now() + Duration::from_secs(120);
    while state(&bob, &id)["state"] != "refunded" {
        assert!(Instant::now() < deadline, "no refund: {}", state(&bob, &id));
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(eth.block_number() >= refund_at);
    let lost = bob_eth_before - eth.balance(bob_eth);
    assert!(
        lost > 0.0 && lost < 0.01,
        "Bob's ether came back less only gas: lost {lost}"
    );
}
