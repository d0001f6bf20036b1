//! A heavier competing branch submitted through `submitblock` reorganises
//! the chain; the disconnected transactions return to the mempool and the
//! wallet follows.

use serde_json::json;

use crate::common::{TestKey, TestNode};

async fn copy_blocks(from: &TestNode, to: &TestNode, heights: std::ops::RangeInclusive<u64>) {
    for h in heights {
        let hash = from.rpc("getblockhash", json!([h])).await;
        let hex = from.rpc("getblock", json!([hash, 0])).await;
        let r = to.rpc("submitblock", json!([hex])).await;
        assert!(r.is_null() || r == json!("inconclusive"), "block {h}: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavier_branch_reorganises_and_returns_txs_to_mempool() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    let a_addr = a.new_address().await;
    a.generate_to(11, &a_addr).await;
    copy_blocks(&a, &b, 1..=11).await;
    assert_eq!(a.tip().await, b.tip().await);

    // A pays someone and confirms it at height 12.
    let payee = TestKey::new(5).address.to_string();
    let txid = a.rpc("sendtoaddress", json!([payee, 1.0])).await;
    a.generate_to(1, &a_addr).await;
    assert_eq!(a.rpc("getrawmempool", json!([])).await, json!([]));
    let balance_before = a.rpc("getbalances", json!([])).await;

    // B builds a longer branch from height 11 without that payment.
    let b_addr = TestKey::new(6).address.to_string();
    b.generate_to(3, &b_addr).await;
    copy_blocks(&b, &a, 12..=13).await;
    // Equal-length branches at 12 and 12+: A switches only on more work.
    copy_blocks(&b, &a, 14..=14).await;
    assert_eq!(a.tip().await, b.tip().await);
    assert_eq!(a.height().await, 14);

    // The payment is unconfirmed again, back in the mempool.
    assert_eq!(a.rpc("getrawmempool", json!([])).await, json!([txid]));
    let tx = a.rpc("getrawtransaction", json!([txid, true])).await;
    assert!(tx.get("blockhash").is_none());

    // A's wallet lost block 12's coinbase but kept everything else.
    let after = a.rpc("getbalances", json!([])).await;
    let immature_before = balance_before["mine"]["immature"]
        .as_f64()
        .expect("immature");
    let immature_after = after["mine"]["immature"].as_f64().expect("immature");
    assert!(
        immature_after < immature_before,
        "{balance_before} -> {after}"
    );

    // Mining again confirms the payment on the new branch.
    a.generate_to(1, &a_addr).await;
    let tx = a.rpc("getrawtransaction", json!([txid, true])).await;
    assert_eq!(tx["confirmations"], 1);
}
