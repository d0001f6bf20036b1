//! An atomic swap done by hand with the `htlc_*` RPC methods, between real
//! nodes of two chains (RSC dev and PAR dev), two parties with a node on
//! each: the operations the bridge daemon drives, checked on chain.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{free_port, NodeProcess};

fn listen(p: u16) -> String {
    format!("/ip4/127.0.0.1/tcp/{p}")
}

/// Two connected nodes of one chain: (Alice's, Bob's).
fn chain_pair(network: &'static str, dirs: &[tempfile::TempDir]) -> (NodeProcess, NodeProcess) {
    let la = listen(free_port());
    let a = NodeProcess::start_on(
        network,
        dirs[0].path(),
        free_port(),
        &["--no-mine", "--no-mdns", "--listen", &la],
    );
    let lb = listen(free_port());
    let b = NodeProcess::start_on(
        network,
        dirs[1].path(),
        free_port(),
        &["--no-mine", "--no-mdns", "--listen", &lb, "--bootnode", &la],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while b.json(&["rpc", "getconnectioncount"]).as_u64() < Some(1) {
        assert!(Instant::now() < deadline, "{network} nodes never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
    (a, b)
}

fn address(n: &NodeProcess) -> String {
    n.json(&["rpc", "getnewaddress"])
        .as_str()
        .expect("address")
        .to_string()
}

/// Mines `count` blocks on `miner` and waits until `other` has them.
fn mine(miner: &NodeProcess, other: &NodeProcess, count: u64) {
    let to = address(miner);
    miner.json(&["rpc", "generatetoaddress", &count.to_string(), &to]);
    let height = miner.height();
    let deadline = Instant::now() + Duration::from_secs(30);
    while other.height() < height {
        assert!(Instant::now() < deadline, "block did not propagate");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `txid` is in `n`'s mempool (relayed from the other node).
fn wait_mempool(n: &NodeProcess, txid: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pool = n.json(&["rpc", "getrawmempool"]);
        if pool.as_array().is_some_and(|a| a.iter().any(|t| t == txid)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{txid} never reached the mempool"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn balance(n: &NodeProcess) -> f64 {
    n.json(&["rpc", "getbalance"]).as_f64().expect("balance")
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn a_swap_by_hand_redeems_on_both_chains_and_a_refund_waits_for_its_lock() {
    let dirs: Vec<_> = (0..4)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let (alice_rsc, bob_rsc) = chain_pair("dev", &dirs[0..2]);
    let (alice_par, bob_par) = chain_pair("par", &dirs[2..4]);
    // Alice holds RSC, Bob PAR (11 blocks: one matures).
    mine(&alice_rsc, &bob_rsc, 11);
    mine(&bob_par, &alice_par, 11);

    // Alice, the initiator, knows the secret; both sides lock to its hash.
    let secret = [0x42u8; 32];
    let hash = hex::encode(blake3::hash(&secret).as_bytes());
    let t1 = alice_rsc.height() + 40;
    let bob_rsc_addr = address(&bob_rsc);
    let funded = alice_rsc.json(&[
        "rpc",
        "htlc_fund",
        &bob_rsc_addr,
        "5",
        &hash,
        "blake3",
        &t1.to_string(),
    ]);
    let a_txid = s(&funded["txid"]);
    assert!(funded["refund_tx"].as_str().is_some_and(|h| !h.is_empty()));
    // Its exact terms find it again (what a node that crashed while
    // funding asks), and other terms find nothing.
    let refund_addr = s(&funded["refund_address"]);
    let find = |lock: u64| {
        alice_rsc.json(&[
            "rpc",
            "htlc_find",
            &bob_rsc_addr,
            &hash,
            "blake3",
            &lock.to_string(),
            &refund_addr,
        ])
    };
    assert_eq!(find(t1)["txid"], a_txid.as_str());
    assert_eq!(find(t1 + 1), Value::from(""));
    wait_mempool(&bob_rsc, &a_txid);
    mine(&alice_rsc, &bob_rsc, 1);

    // Bob audits Alice's HTLC on his own RSC node before locking his PAR.
    let audit = bob_rsc.json(&["rpc", "htlc_audit", &a_txid, "0"]);
    assert_eq!(audit["amount_units"], 500_000_000u64);
    assert_eq!(audit["secret_hash"], hash.as_str());
    assert_eq!(audit["recipient"], bob_rsc_addr.as_str());
    assert_eq!(audit["locktime"], t1);
    assert_eq!(audit["confirmations"], 1);
    assert_eq!(audit["spent"], false);

    let t2 = bob_par.height() + 20;
    let alice_par_addr = address(&alice_par);
    let funded = bob_par.json(&[
        "rpc",
        "htlc_fund",
        &alice_par_addr,
        "10",
        &hash,
        "blake3",
        &t2.to_string(),
    ]);
    let b_txid = s(&funded["txid"]);
    wait_mempool(&alice_par, &b_txid);
    mine(&bob_par, &alice_par, 1);

    // Alice redeems Bob's PAR with the secret, revealing it on PAR; a wrong
    // secret is refused first and changes nothing.
    let wrong = alice_par.cli(&["rpc", "htlc_redeem", &b_txid, "0", &"ab".repeat(32)]);
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("secret does not match"), "{err}");
    let before = balance(&alice_par);
    let redeem = alice_par.json(&["rpc", "htlc_redeem", &b_txid, "0", &hex::encode(secret)]);
    wait_mempool(&bob_par, &s(&redeem["txid"]));
    mine(&bob_par, &alice_par, 1);
    let gained = balance(&alice_par) - before;
    assert!(gained > 9.99 && gained < 10.0, "Alice got {gained} PAR");

    // Bob finds the secret in Alice's redeem on PAR and redeems his RSC.
    let spent = bob_par.json(&["rpc", "htlc_findspend", &b_txid, "0"]);
    assert_eq!(spent["path"], "redeem");
    assert_eq!(spent["txid"], redeem["txid"]);
    let found = s(&spent["secret"]);
    assert_eq!(found, hex::encode(secret));
    let before = balance(&bob_rsc);
    let redeem = bob_rsc.json(&["rpc", "htlc_redeem", &a_txid, "0", &found]);
    wait_mempool(&alice_rsc, &s(&redeem["txid"]));
    mine(&alice_rsc, &bob_rsc, 1);
    let gained = balance(&bob_rsc) - before;
    assert!(gained > 4.99 && gained < 5.0, "Bob got {gained} RSC");
    let audit = alice_rsc.json(&["rpc", "htlc_audit", &a_txid, "0"]);
    assert_eq!(audit["spent"], true);
    let again = bob_rsc.cli(&["rpc", "htlc_redeem", &a_txid, "0", &found]);
    assert!(!again.status.success(), "a spent HTLC was redeemed twice");

    // A refund: refused before its lock with the height it opens at, then
    // accepted once the tip reaches it, and read back as a refund.
    let lock = alice_rsc.height() + 3;
    let funded = alice_rsc.json(&[
        "rpc",
        "htlc_fund",
        &bob_rsc_addr,
        "2",
        &hash,
        "blake3",
        &lock.to_string(),
    ]);
    let r_txid = s(&funded["txid"]);
    mine(&alice_rsc, &bob_rsc, 1);
    let early = alice_rsc.cli(&["rpc", "htlc_refund", &r_txid, "0"]);
    assert!(!early.status.success());
    let err = String::from_utf8_lossy(&early.stderr);
    assert!(
        err.contains(&format!("possible from height {lock}")),
        "{err}"
    );
    // Unspent: `null`, which the CLI prints as nothing.
    assert_eq!(
        alice_rsc.json(&["rpc", "htlc_findspend", &r_txid, "0"]),
        Value::from("")
    );
    mine(&alice_rsc, &bob_rsc, lock - alice_rsc.height());
    let refund = alice_rsc.json(&["rpc", "htlc_refund", &r_txid, "0"]);
    // The refund signed at funding time is the same transaction.
    assert_eq!(refund["txid"], funded["refund_txid"]);
    mine(&alice_rsc, &bob_rsc, 1);
    let spent = bob_rsc.json(&["rpc", "htlc_findspend", &r_txid, "0"]);
    assert_eq!(spent["path"], "refund");
    assert_eq!(spent["secret"], Value::Null);
    assert!(spent["height"].as_u64().is_some());
}
