//! Governance on a dev network of real nodes (RocksDB datadirs, libp2p
//! over loopback, JSON-RPC over HTTP): a payment proposal and a reward
//! split change submitted from node 0's wallet, voted by four masternodes
//! from their own nodes, paid and activated at the superblock on every
//! node alike; an out-of-bounds change refused; a node that syncs from
//! scratch and one restarted mid-cycle reach the same treasury, values
//! and tallies.

use rusty_shared_types::{Amount, Network};
use serde_json::{json, Value};

use crate::{common::TestKey, masternodes::spawn_masternode_net, net::TestNet};

const COIN: u64 = 100_000_000;

/// What every node says about governance: treasury, values, the
/// proposals' tallies.
async fn gov_view(tn: &TestNet, i: usize) -> Value {
    let treasury = tn.rpc(i, "gov_treasury", json!([])).await;
    let params = tn.rpc(i, "gov_params", json!([])).await;
    let list = tn.rpc(i, "gov_list", json!([])).await;
    json!({
        "balance": treasury["balance"],
        "split": params["reward_split"],
        "proposals": list.as_array().map(|l| l.iter().map(|p| json!([p["hash"], p["yes"], p["no"]])).collect::<Vec<_>>()),
    })
}

async fn coinbase(tn: &TestNet, i: usize, height: u64) -> rusty_shared_types::Transaction {
    tn.node(i)
        .handle()
        .query(move |s| {
            let h = s.chain().hash_at(height).expect("height");
            s.chain().block(&h).expect("db").expect("block").txs[0].clone()
        })
        .await
        .expect("chain")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proposals_are_voted_paid_and_activated_on_every_node() {
    let g = rusty_core::governance::GovernanceParams::of(Network::Dev);
    // Node 0 mines; nodes 1..=6 are masternodes.
    let tn = spawn_masternode_net(7, 6).await;
    for i in 0..tn.net.len() {
        tn.wait_peers(i, 2).await;
    }
    let mns = tn.register_masternodes().await;
    assert_eq!(mns.len(), 6);

    let payee = tn.address(0).await.to_string();
    let pay = tn
        .rpc(0, "gov_submit", json!([{"type": "payment", "title": "Docs", "url": "https://example.org/docs", "payee": payee, "amount": "7"}]))
        .await;
    let split = tn
        .rpc(0, "gov_submit", json!([{"type": "param", "title": "More treasury", "param": "reward-split", "value": "4000,4500,1500"}]))
        .await;
    let (pay, split) = (
        pay.as_str().unwrap().to_owned(),
        split.as_str().unwrap().to_owned(),
    );
    // Out of bounds: refused by the mempool with the bound named.
    for bad in ["4000,3500,2500", "4500,4500,1100", "3900,4600,1500"] {
        let err = tn
            .client(0)
            .call(
                "gov_submit",
                json!([{"type": "param", "title": "bad", "param": "reward-split", "value": bad}]),
            )
            .expect_err("out of bounds");
        assert!(err.to_string().contains("bad-gov-param"), "{err}");
    }
    tn.mine(0, 1).await;
    tn.assert_synced().await;
    let info = tn.rpc(1, "gov_get", json!([pay])).await;
    let superblock = info["first_superblock"].as_u64().unwrap();
    assert!(g.is_superblock(superblock));

    // Four masternodes vote yes on both, each from its own node and key.
    for (i, _) in &mns[..4] {
        for p in [&pay, &split] {
            let sent = tn.rpc(*i, "gov_vote", json!([p, "yes"])).await;
            assert!(sent[0]["txid"].is_string(), "node {i}: {sent}");
        }
    }
    // The votes travel to the miner and are mined; tallies agree.
    let deadline = tokio::time::Instant::now() + crate::net::SYNC_TIMEOUT;
    loop {
        tn.mine(0, 1).await;
        let p = tn.rpc(0, "gov_get", json!([pay])).await;
        // Each masternode's two votes reach the miner separately.
        let c = tn.rpc(0, "gov_get", json!([split])).await;
        if p["yes"] == 4 && c["yes"] == 4 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "votes never mined: {p}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    tn.mine(0, 1).await;
    let (_, h) = tn.assert_synced().await;
    assert!(
        h < g.snapshot_height(superblock),
        "votes mined after the snapshot ({h})"
    );
    let s = tn.rpc(3, "gov_get", json!([split])).await;
    assert_eq!(
        (s["yes"].as_u64(), s["passing"].as_bool()),
        (Some(4), Some(true)),
        "{s}"
    );
    let votes = tn.rpc(5, "gobject", json!(["getcurrentvotes", pay])).await;
    assert_eq!(votes.as_object().unwrap().len(), 4);

    // Through the superblock.
    let (_, h) = tn.tip(0).await;
    tn.mine(0, superblock + 1 - h).await;
    tn.assert_synced().await;
    let views = futures::future::join_all((0..tn.net.len()).map(|i| gov_view(&tn, i))).await;
    assert!(views.windows(2).all(|w| w[0] == w[1]), "{views:?}");
    assert_eq!(views[0]["split"], json!([4000, 4500, 1500]));
    let params = rusty_shared_types::Network::Dev.params();
    for i in 0..tn.net.len() {
        let cb = coinbase(&tn, i, superblock).await;
        let last = cb.outputs.last().unwrap();
        assert_eq!(
            last.value,
            Amount::from_units(7 * COIN).unwrap(),
            "node {i}"
        );
        // Paid once: no other block pays the payee 7 coins from the treasury.
        let before = coinbase(&tn, i, superblock - 1).await;
        assert_eq!(
            before.outputs[0].value,
            rusty_core::governance::basis_points(params.subsidy(1), 4_500)
        );
        assert_eq!(
            cb.outputs[0].value,
            rusty_core::governance::basis_points(params.subsidy(1), 4_000)
        );
    }
    let accrued = rusty_core::governance::accrued_treasury(params, superblock);
    let treasury = tn.rpc(0, "gov_treasury", json!([])).await;
    let expected = rusty_core::governance::accrued_treasury(params, superblock - 1)
        .checked_add(rusty_core::governance::basis_points(
            params.subsidy(superblock),
            1_500,
        ))
        .unwrap()
        .checked_sub(Amount::from_units(7 * COIN).unwrap())
        .unwrap()
        // The block after the superblock (the tip) adds its 15% too.
        .checked_add(rusty_core::governance::basis_points(
            params.subsidy(superblock + 1),
            1_500,
        ))
        .unwrap();
    assert_ne!(
        accrued, expected,
        "the new split changed the superblock's share"
    );
    let balance = Amount::parse_coins(&treasury["balance"].to_string()).expect("coins");
    assert_eq!(balance, expected, "{treasury}");

    // Next cycle: a second proposal with a split vote, mid-cycle.
    let second = tn
        .rpc(
            0,
            "gov_submit",
            json!([{"type": "payment", "title": "Second", "payee": payee, "amount": "1"}]),
        )
        .await;
    let second = second.as_str().unwrap().to_owned();
    tn.mine(0, 1).await;
    tn.assert_synced().await;
    for (i, outcome) in [(mns[0].0, "yes"), (mns[1].0, "yes"), (mns[2].0, "no")] {
        let sent = tn.rpc(i, "gov_vote", json!([second, outcome])).await;
        assert!(sent[0]["txid"].is_string(), "node {i}: {sent}");
    }
    let deadline = tokio::time::Instant::now() + crate::net::SYNC_TIMEOUT;
    loop {
        tn.mine(0, 1).await;
        let p = tn.rpc(0, "gov_get", json!([second])).await;
        if p["yes"] == 2 && p["no"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "votes never mined: {p}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }

    // A node that syncs from scratch, and one restarted mid-cycle, agree
    // on the treasury, the values and the tallies.
    let mut tn = tn;
    tn.net.add_node(false).await.expect("new node");
    let fresh = tn.net.len() - 1;
    tn.net.restart_node(2, true).await.expect("restart");
    tn.mine(0, 1).await;
    tn.assert_synced().await;
    let reference = gov_view(&tn, 0).await;
    assert_eq!(
        reference["proposals"].as_array().map(Vec::len),
        Some(1),
        "{reference}"
    );
    assert_eq!(gov_view(&tn, fresh).await, reference);
    assert_eq!(gov_view(&tn, 2).await, reference);

    // The next superblock pays the second proposal, and the first once
    // only: it is not paid again.
    let next = superblock + g.superblock_cycle;
    let (_, h) = tn.tip(0).await;
    tn.mine(0, next + 1 - h).await;
    tn.assert_synced().await;
    for i in 0..tn.net.len() {
        let cb = coinbase(&tn, i, next).await;
        let seven = Amount::from_units(7 * COIN).unwrap();
        assert!(
            cb.outputs.iter().all(|o| o.value != seven),
            "node {i}: paid twice"
        );
        assert_eq!(
            cb.outputs.last().unwrap().value,
            Amount::from_units(COIN).unwrap()
        );
    }
    tn.shutdown().await;
}

/// A node whose wallet mined 13 blocks and registered one masternode over
/// RPC (so the wallet holds its voting key); returns it and the mining
/// address. The service address carries a valid peer id; nothing dials it.
async fn with_one_masternode() -> (crate::common::TestNode, String) {
    let node = crate::common::TestNode::start().await;
    let addr = node.new_address().await;
    node.generate_to(12, &addr).await;
    let operator = rusty_crypto::bls::SecretKey::from_bytes(&[3; 32]).expect("bls key");
    let service = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    let key = hex::encode(operator.public_key().to_bytes());
    node.rpc("protx", json!(["register", key, service])).await;
    node.generate_to(1, &addr).await;
    (node, addr)
}

/// Copies the active blocks at `heights` from one node to another by
/// `getblock`/`submitblock`.
async fn copy_blocks(
    from: &crate::common::TestNode,
    to: &crate::common::TestNode,
    heights: std::ops::RangeInclusive<u64>,
) {
    for h in heights {
        let hash = from.rpc("getblockhash", json!([h])).await;
        let hex = from.rpc("getblock", json!([hash, 0])).await;
        let _ = to.rpc("submitblock", json!([hex])).await;
    }
}

async fn views_of(n: &crate::common::TestNode) -> Value {
    json!([
        n.rpc("gov_treasury", json!([])).await["balance"],
        n.rpc("gov_params", json!([])).await["reward_split"],
        n.rpc("gov_list", json!([])).await,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_across_a_superblock_restores_payouts_balance_and_parameters() {
    use crate::common::TestNode;
    let (a, a_addr) = with_one_masternode().await;
    let b = TestNode::start().await;
    let payee = a.new_address().await;
    let pay = a
        .rpc(
            "gov_submit",
            json!([{"type": "payment", "title": "p", "payee": payee, "amount": 3}]),
        )
        .await;
    let split = a
        .rpc("gov_submit", json!([{"type": "param", "title": "s", "param": "reward-split", "value": "4000,4500,1500"}]))
        .await;
    a.generate_to(1, &a_addr).await;
    let fork = a.height().await;
    copy_blocks(&a, &b, 1..=fork).await;
    assert_eq!(a.tip().await, b.tip().await);
    let at_fork = views_of(&a).await;

    // a votes and goes through the superblock: paid and activated.
    for p in [&pay, &split] {
        let sent = a.rpc("gov_vote", json!([p, "yes"])).await;
        assert!(sent[0]["txid"].is_string(), "{sent}");
    }
    a.generate_to(49 - fork, &a_addr).await;
    let paid = a
        .rpc(
            "getblock",
            json!([a.rpc("getblockhash", json!([48])).await, 2]),
        )
        .await;
    let outs = paid["tx"][0]["vout"].as_array().unwrap().clone();
    assert_eq!(outs.last().unwrap()["value"], 3.0, "{outs:?}");
    assert_eq!(
        a.rpc("gov_params", json!([])).await["reward_split"],
        json!([4000, 4500, 1500])
    );

    // b's longer branch has no votes: nothing paid, nothing activated.
    let b_addr = TestKey::new(4).address.to_string();
    b.generate_to(50 - fork, &b_addr).await;
    copy_blocks(&b, &a, fork + 1..=50).await;
    assert_eq!(a.tip().await, b.tip().await);
    let (va, vb) = (views_of(&a).await, views_of(&b).await);
    assert_eq!(va, vb);
    assert_eq!(va[1], json!([4500, 4500, 1000]));
    assert_eq!(va[2], json!([]), "both proposals finished at 48 unpaid");
    let coinbase = a
        .rpc(
            "getblock",
            json!([a.rpc("getblockhash", json!([48])).await, 2]),
        )
        .await;
    let outs = coinbase["tx"][0]["vout"].as_array().unwrap().clone();
    assert!(outs.iter().all(|o| o["value"] != 3.0), "{outs:?}");
    let balance = Amount::parse_coins(&va[0].to_string()).unwrap();
    let params = Network::Dev.params();
    assert_eq!(
        balance,
        rusty_core::governance::accrued_treasury(params, 50)
    );
    assert_ne!(at_fork, va);
}

async fn next_event(sub: &mut jsonrpsee::core::client::Subscription<Value>) -> Value {
    tokio::time::timeout(std::time::Duration::from_secs(10), sub.next())
        .await
        .expect("notified in time")
        .expect("stream open")
        .expect("valid notification")
}

/// The `governance` WebSocket subscription: the block carrying a proposal,
/// the one carrying a vote, the snapshot and the superblock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_governance_subscription() {
    use jsonrpsee::{
        core::client::{Subscription, SubscriptionClientT},
        rpc_params,
        ws_client::{HeaderMap, HeaderValue, WsClientBuilder},
    };
    let (node, addr) = with_one_masternode().await;

    let cookie =
        std::fs::read_to_string(node.node.as_ref().unwrap().cookie_path().unwrap()).unwrap();
    let (user, pass) = cookie.trim().split_once(':').unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&rusty_node::rpc::http::basic_authorization(user, pass)).unwrap(),
    );
    let ws = WsClientBuilder::default()
        .set_headers(headers)
        .build(format!("ws://{}", node.addr))
        .await
        .expect("websocket connects");
    let mut sub: Subscription<Value> = ws
        .subscribe(
            "subscribe_governance",
            rpc_params![],
            "unsubscribe_governance",
        )
        .await
        .expect("subscribed");
    let hash = node
        .rpc(
            "gov_submit",
            json!([{"type": "payment", "title": "ws", "payee": addr, "amount": 2}]),
        )
        .await;
    node.generate_to(1, &addr).await;
    let ev = next_event(&mut sub).await;
    assert_eq!(ev["proposals"], json!([hash]), "{ev}");
    node.rpc("gov_vote", json!([hash, "yes"])).await;
    node.generate_to(1, &addr).await;
    let ev = next_event(&mut sub).await;
    assert_eq!(
        (ev["votes"].as_u64(), ev["snapshot"].as_bool()),
        (Some(1), Some(false)),
        "{ev}"
    );
    let h = node.height().await;
    node.generate_to(48 - h, &addr).await;
    let ev = next_event(&mut sub).await;
    assert_eq!(
        (ev["height"].as_u64(), ev["snapshot"].as_bool()),
        (Some(40), Some(true)),
        "{ev}"
    );
    let ev = next_event(&mut sub).await;
    assert_eq!(ev["height"], 48, "{ev}");
    assert_eq!(ev["payouts"], json!([hash]), "{ev}");
}
