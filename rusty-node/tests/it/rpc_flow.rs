//! The README's walk-through, over HTTP: mine 110 blocks, pay, confirm.

use serde_json::json;

use crate::common::TestNode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mine_pay_confirm() {
    let node = TestNode::start().await;
    let info = node.rpc("getblockchaininfo", json!([])).await;
    assert_eq!(info["chain"], "dev");
    assert_eq!(info["blocks"], 0);

    let miner = node.new_address().await;
    let hashes = node.generate_to(110, &miner).await;
    assert_eq!(hashes.len(), 110);
    assert_eq!(node.height().await, 110);
    assert_eq!(node.tip().await, hashes[109]);
    assert_eq!(
        node.rpc("getblockhash", json!([110])).await,
        json!(hashes[109])
    );

    // Dev maturity is 10 blocks: a coinbase at height h is spendable in the
    // next block (111) once 111 - h >= 10, so heights 1..=101 are mature.
    // Each coinbase is 45 RSC: the subsidy less the treasury's 10%.
    let balances = node.rpc("getbalances", json!([])).await;
    assert_eq!(balances["mine"]["trusted"].as_f64(), Some(4545.0));
    assert_eq!(balances["mine"]["immature"].as_f64(), Some(405.0));
    assert_eq!(
        node.rpc("getbalance", json!([])).await.as_f64(),
        Some(4545.0)
    );

    // Pay an address outside the wallet.
    let other = crate::common::TestKey::new(42).address.to_string();
    let txid = node.rpc("sendtoaddress", json!([other, 12.5])).await;
    let txid = txid.as_str().expect("txid").to_string();
    let pool = node.rpc("getrawmempool", json!([])).await;
    assert_eq!(pool, json!([txid]));
    let tx = node.rpc("getrawtransaction", json!([txid, true])).await;
    assert_eq!(tx["vout"][0]["value"].as_f64(), Some(12.5));
    assert_eq!(tx["vout"][0]["scriptPubKey"]["address"], json!(other));
    assert!(tx.get("blockhash").is_none());

    let block = node.generate_to(1, &miner).await;
    assert_eq!(node.rpc("getrawmempool", json!([])).await, json!([]));
    let tx = node.rpc("getrawtransaction", json!([txid, true])).await;
    assert_eq!(tx["blockhash"], json!(block[0]));
    assert_eq!(tx["confirmations"], 1);
    let full = node.rpc("getblock", json!([block[0], 2])).await;
    assert_eq!(full["tx"][1]["txid"], json!(txid));
    assert_eq!(full["height"], 111);

    // 4545 - 12.5 - fee + one more mature coinbase (height 102); the fee
    // went to block 111's coinbase, still immature.
    let trusted = node
        .rpc("getbalance", json!([]))
        .await
        .as_f64()
        .expect("balance");
    assert!(trusted > 4577.49 && trusted < 4577.5, "{trusted}");
    let list = node.rpc("listtransactions", json!(["*", 100])).await;
    let sends: Vec<_> = list
        .as_array()
        .expect("list")
        .iter()
        .filter(|e| e["category"] == "send")
        .collect();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0]["amount"].as_f64(), Some(-12.5));
    // count and skip take windows from the newest end, oldest first in each.
    let all = list.as_array().expect("list");
    assert!(all.len() > 6, "{}", all.len());
    let newest = node.rpc("listtransactions", json!(["*", 3])).await;
    let before = node.rpc("listtransactions", json!(["*", 3, 3])).await;
    assert_eq!(newest.as_array().unwrap().as_slice(), &all[all.len() - 3..]);
    assert_eq!(
        before.as_array().unwrap().as_slice(),
        &all[all.len() - 6..all.len() - 3]
    );

    // The paid output is in the UTXO set.
    let out = node.rpc("gettxout", json!([txid, 0])).await;
    assert_eq!(out["value"].as_f64(), Some(12.5));
    assert_eq!(out["confirmations"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_json_rpc_and_batches() {
    let node = TestNode::start().await;
    let client = node.client.clone();
    let (status, body) = tokio::task::spawn_blocking(move || {
        client.call_raw(r#"{"method":"getblockcount","params":[],"id":"legacy"}"#)
    })
    .await
    .expect("thread")
    .expect("http");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v, json!({"result": 0, "error": null, "id": "legacy"}));

    let client = node.client.clone();
    let (_, body) = tokio::task::spawn_blocking(move || {
        client.call_raw(
            r#"[{"jsonrpc":"2.0","method":"getblockcount","params":[],"id":1},
                {"method":"getblockhash","params":[99],"id":2}]"#,
        )
    })
    .await
    .expect("thread")
    .expect("http");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let arr = v.as_array().expect("batch reply");
    assert_eq!(arr.len(), 2);
    let one = arr.iter().find(|r| r["id"] == 1).expect("id 1");
    assert_eq!(one["result"], 0);
    let two = arr.iter().find(|r| r["id"] == 2).expect("id 2");
    assert_eq!(two["result"], serde_json::Value::Null);
    assert_eq!(two["error"]["code"], -8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused() {
    let node = TestNode::start().await;
    let bad = rusty_node::rpc::client::RpcClient::new(&format!("http://{}", node.addr))
        .expect("url")
        .with_basic_auth("__cookie__", "wrong");
    let r = tokio::task::spawn_blocking(move || bad.call("getblockcount", json!([])))
        .await
        .expect("thread");
    assert!(
        matches!(r, Err(rusty_node::rpc::client::ClientError::Unauthorized)),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_chain_and_wallet() {
    let mut node = TestNode::start().await;
    let addr = node.new_address().await;
    node.generate_to(15, &addr).await;
    // An unconfirmed payment survives a clean restart (mempool.dat).
    let payee = crate::common::TestKey::new(77).address.to_string();
    let txid = node.rpc("sendtoaddress", json!([payee, 3])).await;
    let before = node.rpc("getbalances", json!([])).await;
    let tip = node.tip().await;
    node.stop().await;
    let dir = node.dir;
    let restarted = rusty_node::node::Node::start(crate::common::config(dir.path()))
        .await
        .expect("restart");
    let cookie = restarted.cookie_path().expect("cookie").to_path_buf();
    let client =
        rusty_node::rpc::client::RpcClient::new(&format!("http://{}", restarted.rpc_addr()))
            .expect("url")
            .with_cookie_file(&cookie)
            .expect("cookie");
    let again = TestNode {
        node: Some(restarted),
        dir,
        addr: "127.0.0.1:1".parse().expect("addr"),
        client,
    };
    assert_eq!(again.tip().await, tip);
    assert_eq!(again.rpc("getrawmempool", json!([])).await, json!([txid]));
    assert_eq!(again.rpc("getbalances", json!([])).await, before);
}

/// The README's `curl --data-binary` line sends a form content type; Bitcoin
/// Core ignores Content-Type, and so do we.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_content_type_is_accepted_like_bitcoin_core() {
    let node = TestNode::start().await;
    for ct in ["application/x-www-form-urlencoded", "text/plain;"] {
        let client = node.client.clone();
        let resp = tokio::task::spawn_blocking(move || {
            client.request(
                "POST",
                Some(ct),
                br#"{"jsonrpc":"2.0","id":1,"method":"getblockchaininfo","params":[]}"#,
            )
        })
        .await
        .expect("thread")
        .expect("http");
        assert_eq!(resp.status, 200, "{ct}");
        let v: serde_json::Value = serde_json::from_str(&resp.text()).expect("json");
        assert_eq!(v["result"]["chain"], "dev", "{ct}: {v}");
    }
}

/// The WebSocket `newblocks` subscription announces every new tip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_newblocks_subscription() {
    use jsonrpsee::{
        core::client::{Subscription, SubscriptionClientT},
        rpc_params,
        ws_client::{HeaderMap, HeaderValue, WsClientBuilder},
    };

    let node = TestNode::start().await;
    let cookie = std::fs::read_to_string(
        node.node
            .as_ref()
            .expect("node")
            .cookie_path()
            .expect("cookie"),
    )
    .expect("cookie file");
    let (user, pass) = cookie.trim().split_once(':').expect("user:pass");
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&rusty_node::rpc::http::basic_authorization(user, pass))
            .expect("header"),
    );
    let ws = WsClientBuilder::default()
        .set_headers(headers)
        .build(format!("ws://{}", node.addr))
        .await
        .expect("websocket connects");
    let mut sub: Subscription<serde_json::Value> = ws
        .subscribe(
            "subscribe_newblocks",
            rpc_params![],
            "unsubscribe_newblocks",
        )
        .await
        .expect("subscribed");
    let addr = node.new_address().await;
    let hashes = node.generate_to(3, &addr).await;
    for (i, hash) in hashes.iter().enumerate() {
        let note = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next())
            .await
            .expect("notified in time")
            .expect("stream open")
            .expect("valid notification");
        assert_eq!(note["hash"], json!(hash));
        assert_eq!(note["height"], json!(i + 1));
    }
}

/// The fields Bitcoin Core's clients read carry this chain's real values:
/// fees from undo data and the mempool, the mempool family, the coinbase as
/// hex, `depends` in the template, a payment to oneself listed twice, and
/// parameters checked as Core checks them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_fields_carry_real_values() {
    let node = TestNode::start().await;
    let miner = node.new_address().await;
    node.generate_to(110, &miner).await;

    // A payment to ourselves: a family of one in the pool.
    let own = node.new_address().await;
    let txid = node.rpc("sendtoaddress", json!([own, 7.0])).await;
    let txid = txid.as_str().expect("txid").to_string();
    let pool = node.rpc("getrawmempool", json!([true])).await;
    let entry = &pool[&txid];
    assert_eq!(entry["height"], 110);
    assert_eq!(entry["ancestorcount"], 1);
    assert_eq!(entry["descendantcount"], 1);
    assert_eq!(entry["ancestorsize"], entry["vsize"]);
    assert_eq!(entry["fees"]["base"], entry["fees"]["ancestor"]);
    assert_eq!(entry["spentby"], json!([]));
    let fee = entry["fees"]["base"].as_f64().expect("fee");
    assert!(fee > 0.0 && fee < 0.01, "{fee}");

    // Verbosity 2 in the pool: the fee and what each input spent.
    let tx = node.rpc("getrawtransaction", json!([txid, 2])).await;
    assert_eq!(tx["fee"].as_f64(), Some(fee));
    let prevout = &tx["vin"][0]["prevout"];
    assert_eq!(prevout["generated"], true, "{prevout}");
    assert!(prevout["height"]
        .as_u64()
        .is_some_and(|h| (1..=101).contains(&h)));
    assert!(prevout["scriptPubKey"]["asm"]
        .as_str()
        .is_some_and(|a| a.contains("OP_CHECKSIG")));
    assert!(tx["vin"][0]["scriptSig"]["asm"].is_string());

    // Sent and received: a payment to oneself is listed as both.
    let list = node.rpc("listtransactions", json!(["*", 10])).await;
    let of_tx: Vec<_> = list
        .as_array()
        .expect("list")
        .iter()
        .filter(|e| e["txid"] == json!(txid))
        .collect();
    let categories: Vec<_> = of_tx.iter().map(|e| e["category"].clone()).collect();
    assert_eq!(
        categories,
        vec![json!("send"), json!("receive")],
        "{of_tx:?}"
    );
    assert_eq!(of_tx[0]["fee"].as_f64(), Some(-fee));
    assert_eq!(of_tx[0]["bip125-replaceable"], "yes");

    // The template lists it, with nothing to depend on.
    let template = node
        .rpc("getblocktemplate", json!([{"rules": ["segwit"]}]))
        .await;
    assert_eq!(template["transactions"][0]["txid"], json!(txid));
    assert_eq!(template["transactions"][0]["depends"], json!([]));

    // Mined: the block's fee comes from its undo data, the coinbase is hex.
    let block = node.generate_to(1, &miner).await;
    let full = node.rpc("getblock", json!([block[0], 2])).await;
    assert_eq!(full["tx"][1]["txid"], json!(txid));
    assert_eq!(full["tx"][1]["fee"].as_f64(), Some(fee));
    assert!(
        full["tx"][0].get("fee").is_none(),
        "the coinbase has no fee"
    );
    let coinbase = full["tx"][0]["vin"][0]["coinbase"].as_str().expect("hex");
    assert!(hex::decode(coinbase).is_ok_and(|b| !b.is_empty()));
    let raw = node.rpc("getrawtransaction", json!([txid, 0])).await;
    assert_eq!(full["tx"][1]["hex"], raw);
    let confirmed = node.rpc("getrawtransaction", json!([txid, 2])).await;
    assert_eq!(confirmed["fee"].as_f64(), Some(fee));
    assert_eq!(confirmed["vin"][0]["prevout"], tx["vin"][0]["prevout"]);

    let info = node.rpc("getblockchaininfo", json!([])).await;
    assert!(info["size_on_disk"].as_u64().is_some_and(|n| n > 0));
    assert_eq!(info["warnings"], json!([]));

    // The treasury holds every block's share since genesis (dev: 5 of 50
    // RSC), heights 0..=111; the dev superblock cycle is 48 blocks.
    let treasury = node.rpc("gov_treasury", json!([])).await;
    assert_eq!(treasury["balance"].as_f64(), Some(112.0 * 5.0));
    assert_eq!(treasury["nextsuperblock"], 144);
    assert_eq!(treasury["active"], true);
    let gov = node.rpc("getgovernanceinfo", json!([])).await;
    assert_eq!(gov["lastsuperblock"], 96);
    assert_eq!(gov["nextsuperblock"], 144);
    assert_eq!(gov["proposalfee"].as_f64(), Some(1.0));
    // 144 blocks accrue 720 RSC: 4% is below the 100 RSC floor.
    assert_eq!(gov["governancebudget"].as_f64(), Some(100.0));
    let budget = node.rpc("getsuperblockbudget", json!([144])).await;
    assert_eq!(budget.as_f64(), Some(100.0));
    let off_cycle = node.rpc("getsuperblockbudget", json!([100])).await;
    assert_eq!(off_cycle.as_f64(), Some(0.0));
    let (code, _) = node.rpc_err("getsuperblockbudget", json!([0])).await;
    assert_eq!(code, -8);

    // Core's parameter errors: arity (-1 with usage), type (-3), value (-8).
    let (code, message) = node.rpc_err("getblockcount", json!(["junk", 5])).await;
    assert_eq!(code, -1);
    assert!(message.starts_with("getblockcount\n"), "{message}");
    let (code, message) = node.rpc_err("getblockhash", json!(["x"])).await;
    assert_eq!(code, -3);
    assert_eq!(
        message,
        "Wrong type passed:\n{\n    \"Position 1 (height)\": \"JSON value of type string is not of expected type number\"\n}"
    );
    let (code, _) = node.rpc_err("getblockhash", json!([1_000_000_000])).await;
    assert_eq!(code, -8);
    let help = node.rpc("help", json!(["getblock"])).await;
    assert!(help
        .as_str()
        .is_some_and(|h| h.starts_with("getblock \"blockhash\" ( verbosity )")));
}
