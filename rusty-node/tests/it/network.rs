//! Nodes on a real libp2p network over loopback: convergence, initial
//! sync, partitions, and misbehaving peers.

use std::time::Duration;

use rusty_core::validation;
use rusty_network::{
    Acceptance, NetworkConfig, NetworkEvent, NetworkHandle, PeerId, Request, Response, Topic,
};
use rusty_shared_types::{Block, Encode};
use serde_json::json;

use crate::net::{spawn_nodes, TestNet, SYNC_TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_converge_while_two_mine() {
    let net = spawn_nodes(3).await;
    net.wait_peers(2, 2).await;
    // Both mine at once: their blocks compete, and every node must still
    // end on one tip.
    for _ in 0..5 {
        tokio::join!(net.mine(0, 2), net.mine(1, 2));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Branches of equal work stay split (first seen wins, as in Bitcoin);
    // the next block breaks the tie.
    let last = net.mine(0, 1).await;
    let (tip, height) = net.assert_synced().await;
    assert_eq!(tip, last);
    assert!(height >= 11, "height {height}");
    // The node that did not mine agrees, and so do its RPC answers.
    let best = net.rpc(2, "getbestblockhash", json!([])).await;
    assert_eq!(best, json!(tip.to_string()));
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_node_syncs_two_thousand_blocks() {
    let mut net = spawn_nodes(1).await;
    net.mine(0, 2_000).await;
    net.net.add_node(false).await.expect("late node starts");
    let (_, height) = net.assert_synced().await;
    assert_eq!(height, 2_000);
    // Its wallet-independent view agrees block by block at a few heights.
    for h in [1u64, 999, 2_000] {
        let a = net.rpc(0, "getblockhash", json!([h])).await;
        let b = net.rpc(1, "getblockhash", json!([h])).await;
        assert_eq!(a, b);
    }
    net.shutdown().await;
}

async fn balances_total(net: &TestNet, i: usize) -> (u64, u64) {
    let b = net.rpc(i, "getbalances", json!([])).await;
    let units = |v: &serde_json::Value| -> u64 {
        let s = v.to_string();
        rusty_shared_types::Amount::parse_coins(s.trim_matches('"'))
            .expect("amount")
            .units()
    };
    let mine = &b["mine"];
    (
        units(&mine["trusted"]) + units(&mine["immature"]),
        units(&mine["untrusted_pending"]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_heals_to_the_heavier_branch_with_correct_balances() {
    let net = spawn_nodes(2).await;
    net.wait_peers(1, 1).await;
    // Common history with mature coins on node 0.
    net.mine(0, 15).await;
    net.assert_synced().await;

    // Partition: each side bans the other.
    let id0 = net.node(0).p2p().unwrap().net.peer_id().to_string();
    let id1 = net.node(1).p2p().unwrap().net.peer_id().to_string();
    net.rpc(0, "setban", json!([id1, "add", 3600])).await;
    net.rpc(1, "setban", json!([id0, "add", 3600])).await;
    assert_eq!(net.peer_count(0).await, 0);

    // Node 0 pays node 1 and mines 2 blocks on its side; node 1 mines 4.
    let to = net.address(1).await.to_string();
    let txid = net.rpc(0, "sendtoaddress", json!([to, 7])).await;
    let after_send = balances_total(&net, 0).await;
    let lost_tip = net.mine(0, 2).await;
    let heavy_tip = net.mine(1, 4).await;

    // Heal.
    net.rpc(0, "clearbanned", json!([])).await;
    net.rpc(1, "clearbanned", json!([])).await;
    let addr1 = net.node(1).p2p().unwrap().net.listen_addrs()[0].to_string();
    net.rpc(0, "addnode", json!([addr1, "add"])).await;
    let (tip, height) = net.assert_synced().await;
    assert_eq!(tip, heavy_tip);
    assert_eq!(height, 19);
    let lost = net
        .rpc(0, "getblockheader", json!([lost_tip.to_string()]))
        .await;
    assert_eq!(lost["confirmations"], json!(-1), "{lost}");

    // The payment is back in node 0's mempool and reached node 1's.
    let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
    loop {
        let m0 = net.rpc(0, "getrawmempool", json!([])).await;
        let m1 = net.rpc(1, "getrawmempool", json!([])).await;
        let has = |m: &serde_json::Value| m.as_array().is_some_and(|a| a.contains(&txid));
        if has(&m0) && has(&m1) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{m0} {m1}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Node 0's wallet is what it was right after sending (its two lost
    // coinbases are gone); node 1 sees the payment as pending.
    assert_eq!(balances_total(&net, 0).await.0, after_send.0);
    assert_eq!(
        balances_total(&net, 1).await.1,
        7 * rusty_shared_types::COIN
    );
    net.shutdown().await;
}

/// A bare libp2p peer of the dev chain, dialing `to`.
async fn rogue_peer(to: rusty_network::Multiaddr) -> (NetworkHandle, rusty_network::NetworkEvents) {
    let mut cfg = NetworkConfig::new("dev", None, 0);
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")];
    cfg.mdns = false;
    cfg.bootnodes = vec![to];
    rusty_network::start(cfg).await.expect("rogue peer starts")
}

async fn wait_banned(net: &TestNet, i: usize, peer: PeerId) {
    let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
    loop {
        let bans = net.rpc(i, "listbanned", json!([])).await;
        if bans.to_string().contains(&peer.to_string()) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{peer} not banned: {bans}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes until the node bans us (gossip needs a moment to learn the
/// node's subscriptions).
async fn publish_until_banned(net: &TestNet, rogue: &NetworkHandle, topic: Topic, data: Vec<u8>) {
    let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
    let me = rogue.peer_id();
    loop {
        let _ = rogue.publish(topic, data.clone()).await;
        let bans = net.rpc(0, "listbanned", json!([])).await;
        if bans.to_string().contains(&me.to_string()) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never banned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peers_sending_garbage_or_invalid_blocks_are_banned_and_honest_ones_stay() {
    let net = spawn_nodes(2).await;
    net.wait_peers(1, 1).await;
    net.mine(1, 3).await;
    net.assert_synced().await;
    let addr0 = net.node(0).p2p().unwrap().net.listen_addrs()[0].clone();

    // 1. Garbage on the blocks topic.
    let (garbage, _ev) = rogue_peer(addr0.clone()).await;
    publish_until_banned(&net, &garbage, Topic::Blocks, vec![0xde, 0xad, 0xbe, 0xef]).await;
    wait_banned(&net, 0, garbage.peer_id()).await;

    // 2. A valid-looking announcement of a block whose coinbase pays too
    //    much, served when the node asks for it.
    let (liar, mut events) = rogue_peer(addr0.clone()).await;
    let (tip, height) = net.tip(0).await;
    let handle = net.node(0).handle();
    let addr = handle.new_address().await.unwrap().unwrap();
    let mut block: Block = handle
        .block_template(addr.lock_script(), Vec::new())
        .await
        .unwrap()
        .block;
    assert_eq!(block.header.prev_hash, tip);
    block.txs[0].outputs[0].value = rusty_shared_types::Amount::from_coins(51).unwrap();
    block.header.merkle_root = validation::block_merkle_root(&block.txs);
    let target = rusty_core::pow::target_from_compact(block.header.bits).unwrap();
    rusty_core::pow::solve(&mut block.header, &target, u64::MAX).expect("solved");
    let served = block.clone();
    let liar_handle = liar.clone();
    let server = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                NetworkEvent::Request {
                    request: Request::Blocks { .. },
                    responder,
                    ..
                } => {
                    liar_handle
                        .respond(responder, Response::Blocks(vec![served.clone()]))
                        .await
                }
                NetworkEvent::Request {
                    request: Request::Status(s),
                    responder,
                    ..
                } => liar_handle.respond(responder, Response::Status(s)).await,
                NetworkEvent::Gossip { id, source, .. } => {
                    liar_handle.validate(id, source, Acceptance::Ignore)
                }
                _ => {}
            }
        }
    });
    publish_until_banned(&net, &liar, Topic::Blocks, block.header.encode()).await;
    server.abort();

    // The invalid block was not accepted, the honest peer is still
    // connected, and the network still works.
    assert_eq!(net.tip(0).await, (tip, height));
    let peers = net.rpc(0, "getpeerinfo", json!([])).await;
    let honest = net.node(1).p2p().unwrap().net.peer_id().to_string();
    assert!(peers.to_string().contains(&honest), "{peers}");
    assert!(!peers.to_string().contains(&liar.peer_id().to_string()));
    net.mine(1, 2).await;
    let (_, h) = net.assert_synced().await;
    assert_eq!(h, height + 2);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalling_peer_is_passed_over_and_its_blocks_fetched_elsewhere() {
    let seed = spawn_nodes(1).await;
    seed.mine(0, 300).await;
    let seed_status = seed
        .node(0)
        .handle()
        .query(|s| rusty_network::Status {
            genesis: s.chain().hash_at(0).expect("genesis"),
            tip: s.chain().tip(),
            height: s.chain().height(),
            chain_work: s.chain().tip_entry().chain_work,
            best_chainlock: s.chain().best_chainlock().cloned().map(Box::new),
        })
        .await
        .expect("chain service");

    // A peer claiming the seed's chain that never answers a headers or
    // blocks request (it keeps the reply channels open forever).
    let mut cfg = NetworkConfig::new("dev", None, 0);
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")];
    cfg.mdns = false;
    let (staller, mut events) = rusty_network::start(cfg).await.expect("staller starts");
    let staller_handle = staller.clone();
    let claimed = seed_status.clone();
    let stall_task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(ev) = events.recv().await {
            match ev {
                NetworkEvent::Request {
                    request: Request::Status(_),
                    responder,
                    ..
                } => {
                    staller_handle
                        .respond(responder, Response::Status(claimed.clone()))
                        .await
                }
                NetworkEvent::Request { responder, .. } => held.push(responder),
                NetworkEvent::Gossip { id, source, .. } => {
                    staller_handle.validate(id, source, Acceptance::Ignore)
                }
                _ => {}
            }
        }
    });

    // The new node knows the staller first, then the seed.
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = rusty_node::localnet::LocalNetConfig::new(dir.path(), 0);
    let mut bootnodes = staller.listen_addrs();
    bootnodes.extend(seed.net.listen_addrs(0));
    let node = rusty_node::node::Node::start(cfg.node_config(1, bootnodes).expect("config"))
        .await
        .expect("node starts");
    let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
    loop {
        let (tip, height) = node
            .handle()
            .query(|s| (s.chain().tip(), s.chain().height()))
            .await
            .expect("chain service");
        if tip == seed_status.tip {
            assert_eq!(height, 300);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck at {height} behind a stalling peer"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The staller paid for it (scored down, or banned and gone).
    let peers = node.p2p().expect("p2p").net.peers().await.expect("peers");
    let staller_score = peers
        .iter()
        .find(|p| p.peer_id == staller.peer_id())
        .map(|p| p.score);
    assert!(staller_score.is_none_or(|s| s < 0.0), "{staller_score:?}");
    stall_task.abort();
    node.shutdown().await;
    seed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_flooding_requests_is_rate_limited_then_banned() {
    let net = spawn_nodes(1).await;
    let addr0 = net.node(0).p2p().expect("p2p").net.listen_addrs()[0].clone();
    let (flooder, _events) = rogue_peer(addr0).await;
    net.wait_peers(0, 1).await;
    let genesis = net
        .node(0)
        .handle()
        .query(|s| s.chain().hash_at(0).expect("genesis"))
        .await
        .expect("chain service");
    let status = rusty_network::Status {
        genesis,
        tip: genesis,
        height: 0,
        chain_work: [0; 32],
        best_chainlock: None,
    };
    let mut answered = 0;
    for _ in 0..60 {
        let r = tokio::time::timeout(
            Duration::from_millis(300),
            flooder.request(
                net.node(0).p2p().expect("p2p").net.peer_id(),
                Request::Status(status.clone()),
            ),
        )
        .await;
        if matches!(r, Ok(Ok(Response::Status(_)))) {
            answered += 1;
        }
    }
    // The burst (10) is served, the rest is refused, and the flood ends in
    // a ban.
    assert!((10..60).contains(&answered), "answered {answered}");
    wait_banned(&net, 0, flooder.peer_id()).await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_of_another_chain_never_exchange_chain_data() {
    let net = spawn_nodes(1).await;
    let node_net = net.node(0).p2p().expect("p2p").net.clone();
    let mut cfg = NetworkConfig::new("test", None, 0);
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")];
    cfg.mdns = false;
    cfg.bootnodes = vec![node_net.listen_addrs()[0].clone()];
    let (foreign, _events) = rusty_network::start(cfg)
        .await
        .expect("foreign peer starts");
    let status = rusty_network::Status {
        genesis: rusty_shared_types::Hash256::ZERO,
        tip: rusty_shared_types::Hash256::ZERO,
        height: 0,
        chain_work: [0; 32],
        best_chainlock: None,
    };
    // Its `/rusty/test/...` protocols are not the node's `/rusty/dev/...`.
    for _ in 0..5 {
        let r = foreign
            .request(node_net.peer_id(), Request::Status(status.clone()))
            .await;
        assert!(r.is_err(), "a test-chain peer got an answer: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    net.mine(0, 1).await;
    assert_eq!(net.tip(0).await.1, 1);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_blocks_is_announced_once_and_synced() {
    let net = spawn_nodes(3).await;
    net.wait_peers(0, 2).await;
    // Far more than the block-gossip burst allowance (100) in one go.
    let tip = net.mine(0, 400).await;
    let (synced, height) = net.assert_synced().await;
    assert_eq!((synced, height), (tip, 400));
    // Nobody was banned for it; the miner still has its peers.
    for i in 0..3 {
        let bans = net.rpc(i, "listbanned", json!([])).await;
        assert_eq!(bans, json!([]), "node {i}");
    }
    assert_eq!(net.peer_count(0).await, 2);
    net.shutdown().await;
}
