//! Bad input gets a specific error and changes nothing: chain, mempool and
//! wallet are compared before and after every attempt.

use rusty_shared_types::{Hash256, OutPoint, TxOut};
use serde_json::json;

use crate::common::{coinbase_of, coins, fix_merkle, hex_of, next_block, TestKey, TestNode};

/// A node with 12 blocks: the test key's coinbase at height 1 is mature;
/// the wallet mined the rest.
async fn funded_node() -> (TestNode, TestKey, OutPoint, TxOut) {
    let node = TestNode::start().await;
    let key = TestKey::new(7);
    let first = node.generate_to(1, &key.address.to_string()).await;
    let wallet_addr = node.new_address().await;
    node.generate_to(11, &wallet_addr).await;
    let (outpoint, out) = coinbase_of(&node, &first[0]).await;
    (node, key, outpoint, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transactions_are_rejected_without_side_effects() {
    let (node, key, outpoint, out) = funded_node().await;
    let before = node.snapshot().await;
    let pay = |units| {
        vec![TxOut {
            value: coins(units),
            lock: TestKey::new(9).address.lock_script(),
        }]
    };

    // Garbage hex, and valid hex that is not a transaction.
    let (code, msg) = node.rpc_err("sendrawtransaction", json!(["zz"])).await;
    assert_eq!(code, -22, "{msg}");
    let (code, msg) = node.rpc_err("sendrawtransaction", json!(["00ff00"])).await;
    assert_eq!(code, -22, "{msg}");
    let (code, _) = node.rpc_err("decoderawtransaction", json!(["0102"])).await;
    assert_eq!(code, -22);

    // A missing input.
    let missing = OutPoint::new(Hash256([0xab; 32]), 0);
    let tx = key.spend(missing, &out, pay(1000));
    let (code, msg) = node
        .rpc_err("sendrawtransaction", json!([hex_of(&tx)]))
        .await;
    assert_eq!(code, -25, "{msg}");
    assert!(msg.contains("bad-txns-inputs-missingorspent"), "{msg}");

    // Overspend.
    let too_much = out.value.units() + 1;
    let tx = key.spend(outpoint, &out, pay(too_much));
    let (code, msg) = node
        .rpc_err("sendrawtransaction", json!([hex_of(&tx)]))
        .await;
    assert_eq!(code, -26, "{msg}");
    assert!(msg.contains("bad-txns-in-belowout"), "{msg}");

    // A bad signature: one bit flipped.
    let mut tx = key.spend(outpoint, &out, pay(out.value.units() - 10_000));
    let mut unlock = tx.inputs[0].unlock.clone().into_bytes();
    unlock[5] ^= 1;
    tx.inputs[0].unlock = rusty_shared_types::Script::new(unlock);
    let (code, msg) = node
        .rpc_err("sendrawtransaction", json!([hex_of(&tx)]))
        .await;
    assert_eq!(code, -26, "{msg}");
    assert!(msg.contains("mandatory-script-verify-flag-failed"), "{msg}");

    // Signed by another key.
    let tx = TestKey::new(8).spend(outpoint, &out, pay(out.value.units() - 10_000));
    let (code, _) = node
        .rpc_err("sendrawtransaction", json!([hex_of(&tx)]))
        .await;
    assert_eq!(code, -26);

    assert_eq!(node.snapshot().await, before);

    // The good one is accepted; spending the same coin again (a double
    // spend paying no more) is refused and the first stays.
    let good = key.spend(outpoint, &out, pay(out.value.units() - 10_000));
    let txid = node.rpc("sendrawtransaction", json!([hex_of(&good)])).await;
    let double = key.spend(outpoint, &out, pay(out.value.units() - 10_001));
    let (code, msg) = node
        .rpc_err("sendrawtransaction", json!([hex_of(&double)]))
        .await;
    assert_eq!(code, -26, "{msg}");
    assert_eq!(node.rpc("getrawmempool", json!([])).await, json!([txid]));

    // Once mined, the coin is spent: a new spend of it is missing-or-spent.
    node.generate_to(1, &TestKey::new(3).address.to_string())
        .await;
    let (code, msg) = node
        .rpc_err("sendrawtransaction", json!([hex_of(&double)]))
        .await;
    assert_eq!(code, -25, "{msg}");
    let (code, _) = node
        .rpc_err("sendrawtransaction", json!([hex_of(&good)]))
        .await;
    assert_eq!(code, -27);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_blocks_are_rejected_without_side_effects() {
    let (node, key, _, _) = funded_node().await;
    let before = node.snapshot().await;

    let submit = |b: rusty_shared_types::Block| {
        let hex = hex_of(&b);
        let node = &node;
        async move { node.rpc("submitblock", json!([hex])).await }
    };

    // Garbage.
    let (code, _) = node.rpc_err("submitblock", json!(["nothex"])).await;
    assert_eq!(code, -22);
    let (code, _) = node.rpc_err("submitblock", json!(["0011"])).await;
    assert_eq!(code, -22);

    // Bad proof of work: find a nonce whose hash misses the target.
    let mut block = next_block(&node, &key, |_| {}).await;
    let target = rusty_core::pow::target_from_compact(block.header.bits).expect("bits");
    while rusty_core::pow::hash_meets_target(&block.header.hash(), &target) {
        block.header.nonce = block.header.nonce.wrapping_add(1);
    }
    assert_eq!(submit(block).await, json!("high-hash"));

    // Wrong merkle root.
    let block = next_block(&node, &key, |b| b.header.merkle_root = Hash256([1; 32])).await;
    assert_eq!(submit(block).await, json!("bad-txnmrklroot"));

    // Timestamps out of range.
    let block = next_block(&node, &key, |b| {
        b.header.time = rusty_core::now() + 3 * 3600
    })
    .await;
    assert_eq!(submit(block).await, json!("time-too-new"));
    let block = next_block(&node, &key, |b| b.header.time = 1).await;
    assert_eq!(submit(block).await, json!("time-too-old"));

    // A coinbase paying more than subsidy + fees (caught while connecting).
    let block = next_block(&node, &key, |b| {
        b.txs[0].outputs[0].value = coins(b.txs[0].outputs[0].value.units() + 1);
        fix_merkle(b);
    })
    .await;
    assert_eq!(submit(block).await, json!("bad-cb-amount"));

    // Wrong difficulty bits.
    let block = next_block(&node, &key, |b| b.header.bits = 0x1f00ffff).await;
    assert_eq!(submit(block).await, json!("bad-diffbits"));

    assert_eq!(node.snapshot().await, before);

    // And a good block still connects afterwards.
    let block = next_block(&node, &key, |_| {}).await;
    let hash = block.hash().to_string();
    assert_eq!(submit(block.clone()).await, serde_json::Value::Null);
    assert_eq!(node.tip().await, hash);
    assert_eq!(submit(block).await, json!("duplicate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_governance_input_is_rejected_without_side_effects() {
    use rusty_shared_types::{
        governance::{VoteBatch, VoteOutcome},
        Payload, Transaction,
    };
    let (node, key, outpoint, out) = funded_node().await;
    let before = node.snapshot().await;
    let vote = |outputs: Vec<TxOut>| Transaction {
        version: 1,
        inputs: Vec::new(),
        outputs,
        lock_time: 0,
        payload: Some(Payload::Vote(VoteBatch {
            pro_tx_hash: Hash256([4; 32]),
            made_at: 11,
            votes: vec![(Hash256([5; 32]), VoteOutcome::Yes)],
            signature: [7; 64],
        })),
    };
    // A vote that moves coins, one from no masternode, one that does not
    // decode (outcome tag 9).
    let with_output = vote(vec![TxOut {
        value: coins(1),
        lock: key.address.lock_script(),
    }]);
    let (code, msg) = node
        .rpc_err("sendrawtransaction", json!([hex_of(&with_output)]))
        .await;
    assert_eq!(code, -26, "{msg}");
    assert!(msg.contains("bad-gov-vote"), "{msg}");
    let (code, msg) = node
        .rpc_err("sendrawtransaction", json!([hex_of(&vote(Vec::new()))]))
        .await;
    assert_eq!(code, -26, "{msg}");
    assert!(msg.contains("bad-gov-vote-masternode"), "{msg}");
    let mut bytes = hex::decode(hex_of(&vote(Vec::new()))).unwrap();
    let tag = bytes.len() - 65;
    bytes[tag] = 9;
    let (code, msg) = node
        .rpc_err("sendrawtransaction", json!([hex::encode(&bytes)]))
        .await;
    assert_eq!(code, -22, "{msg}");

    // A proposal that does not burn the fee.
    let mut tx = key.spend(
        outpoint,
        &out,
        vec![TxOut {
            value: coins(out.value.units() - 10_000),
            lock: key.address.lock_script(),
        }],
    );
    tx.payload = Some(Payload::Proposal(
        rusty_shared_types::governance::Proposal {
            title: "no burn".into(),
            url: String::new(),
            doc_hash: Hash256::ZERO,
            first_superblock: 48,
            superblocks: 1,
            kind: rusty_shared_types::governance::ProposalKind::TreasuryPayment {
                payee: key.address.lock_script(),
                amount: 1,
            },
        },
    ));
    let (code, msg) = node
        .rpc_err("sendrawtransaction", json!([hex_of(&tx)]))
        .await;
    assert_eq!(code, -26, "{msg}");
    assert!(msg.contains("bad-gov-fee"), "{msg}");

    // Over RPC: out of bounds, unknown parameter, bad payee, long title,
    // a superblock already too close, malformed gobject data.
    let submit = |p: serde_json::Value| node.rpc_err("gov_submit", json!([p]));
    let (code, msg) = submit(
        json!({"type": "param", "title": "t", "param": "reward-split", "value": "4000,3500,2500"}),
    )
    .await;
    assert_eq!(code, -26, "{msg}");
    assert!(
        msg.contains("bad-gov-param") && msg.contains("treasury"),
        "{msg}"
    );
    let (code, msg) =
        submit(json!({"type": "param", "title": "t", "param": "block-reward", "value": "1"})).await;
    assert_eq!(code, -8, "{msg}");
    let (code, msg) =
        submit(json!({"type": "payment", "title": "t", "payee": "rsc1nope", "amount": 1})).await;
    assert_eq!(code, -5, "{msg}");
    let (code, msg) = submit(json!({"type": "payment", "title": "t".repeat(65), "payee": key.address.to_string(), "amount": 1})).await;
    assert_eq!(code, -8, "{msg}");
    let (code, msg) = submit(json!({"type": "payment", "title": "t", "payee": key.address.to_string(), "amount": 1, "first_superblock": 48, "superblocks": 13})).await;
    assert_eq!(code, -26, "{msg}");
    assert!(msg.contains("bad-gov-proposal"), "{msg}");
    let (code, msg) = node.rpc_err("gobject", json!(["check", "zz"])).await;
    assert_eq!(code, -8, "{msg}");
    let (code, msg) = node.rpc_err("gobject", json!(["frobnicate"])).await;
    assert_eq!(code, -8, "{msg}");
    let (code, msg) = node
        .rpc_err("gov_vote", json!([hex::encode([1u8; 32]), "maybe"]))
        .await;
    assert_eq!(code, -8, "{msg}");

    assert_eq!(node.snapshot().await, before);
}
