//! A heavier competing branch submitted through `submitblock` reorganises
//! the chain; the disconnected transactions return to the mempool and the
//! wallet follows; a log filter reports the logs of a disconnected block
//! as removed.

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

/// A polled log filter (`eth_newFilter` / `eth_getFilterChanges`, what
/// ethers' `contract.on` and web3.py's `create_filter` use) across a
/// reorganisation: the log of the block that left the chain comes back
/// with `removed: true`, and once its transaction (back in the pool) is
/// mined again, as a new log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_filter_reports_a_reorganised_log_removed_then_mined_again() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    let a_addr = a.new_address().await;
    a.generate_to(11, &a_addr).await;
    let own = a.rpc("contract_address", json!([])).await;
    a.rpc("contract_deposit", json!([own, 2])).await;
    a.generate_to(1, &a_addr).await;
    // A contract that logs 0x2a as its topic on every call: PUSH1 0x2a
    // PUSH1 0 PUSH1 0 LOG1 (its 7 bytes; running off the end stops),
    // behind a constructor that returns it.
    let create = a
        .rpc(
            "contract_send",
            json!([null, "0x6007600c60003960076000f3602a60006000a100"]),
        )
        .await;
    a.generate_to(1, &a_addr).await;
    let receipt = a.rpc("eth_getTransactionReceipt", json!([create])).await;
    let contract = receipt["contractAddress"]
        .as_str()
        .expect("a contract address")
        .to_string();
    copy_blocks(&a, &b, 1..=13).await;
    assert_eq!(a.tip().await, b.tip().await);

    let filter = a
        .rpc("eth_newFilter", json!([{ "address": contract }]))
        .await;
    let call = a.rpc("contract_send", json!([contract, "0x"])).await;
    let mined = a.generate_to(1, &a_addr).await;
    let poll = || a.rpc("eth_getFilterChanges", json!([filter]));
    let log = one_log(poll().await, false, &call, &mined[0]);
    assert_eq!(log["topics"][0], format!("0x{:064x}", 0x2a));

    // B's longer branch from height 13 has no call: A reorganises.
    let b_addr = TestKey::new(6).address.to_string();
    b.generate_to(2, &b_addr).await;
    copy_blocks(&b, &a, 14..=15).await;
    assert_eq!(a.tip().await, b.tip().await);
    one_log(poll().await, true, &call, &mined[0]);
    assert_eq!(poll().await, json!([]), "a poll reports a change once");

    // The call went back to the pool; mined on the new branch, it logs again.
    let pending = a.rpc("eth_getTransactionByHash", json!([call])).await;
    assert!(!pending.is_null(), "the call is known");
    assert!(pending["blockHash"].is_null(), "{pending}");
    let again = a.generate_to(1, &a_addr).await;
    one_log(poll().await, false, &call, &again[0]);
}

/// The one log a filter poll returned: of transaction `tx` in `block` (our
/// hash, without `0x`), removed or not.
fn one_log(
    changes: serde_json::Value,
    removed: bool,
    tx: &serde_json::Value,
    block: &str,
) -> serde_json::Value {
    let logs = changes.as_array().expect("logs");
    assert_eq!(logs.len(), 1, "{changes}");
    assert_eq!(logs[0]["removed"], removed, "{changes}");
    assert_eq!(&logs[0]["transactionHash"], tx);
    assert_eq!(logs[0]["blockHash"], format!("0x{block}"));
    logs[0].clone()
}
