//! Masternodes, quorums and ChainLocks on a dev network of real nodes:
//! libp2p over loopback TCP, RocksDB datadirs, the quorum service's DKG
//! over the `direct` protocol and ChainLock gossip.

use std::time::Duration;

use rusty_core::{chain::ChainError, masternode::MasternodeEntry, validation::ValidationError};
use rusty_crypto::bls;
use rusty_network::Topic;
use rusty_node::{
    localnet::{LocalNet, LocalNetConfig, MasternodeSetup},
    node::{Node, NodeConfig},
};
use rusty_shared_types::{
    masternode::quorum_sign_hash, Amount, ChainLock, Encode, Hash256, Network, OutPoint,
    Transaction, TxIn, TxOut,
};

use crate::net::{TestNet, SYNC_TIMEOUT};

/// `nodes` dev nodes of which the last `masternodes` are masternodes.
pub(crate) async fn spawn_masternode_net(nodes: usize, masternodes: usize) -> TestNet {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = LocalNetConfig::new(dir.path(), nodes);
    cfg.masternodes = masternodes;
    let net = LocalNet::start(cfg).await.expect("local network starts");
    TestNet { net, _dir: dir }
}

fn params() -> &'static rusty_shared_types::ChainParams {
    Network::Dev.params()
}

impl TestNet {
    /// Funds and registers every masternode, mining on node 0 between
    /// steps; returns node index → pro_tx_hash.
    pub(crate) async fn register_masternodes(&self) -> Vec<(usize, Hash256)> {
        let want = (0..self.net.len())
            .filter(|&i| self.net.config().is_masternode(i))
            .count();
        // Coinbases mature after 10 blocks.
        self.mine(0, params().coinbase_maturity + 1).await;
        let mut setup = MasternodeSetup::default();
        let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
        loop {
            let count = setup.step(&self.net).await.expect("setup step");
            if count == want {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {count} of {want} masternodes registered"
            );
            // Let funding and registrations reach node 0's mempool.
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.mine(0, 1).await;
            self.assert_synced().await;
        }
        self.assert_synced().await;
        let mut out: Vec<(usize, Hash256)> =
            setup.registered().iter().map(|(i, h)| (*i, *h)).collect();
        out.sort();
        out
    }

    async fn mn_entry(&self, i: usize, pro: Hash256) -> Option<MasternodeEntry> {
        self.node(i)
            .handle()
            .query(move |s| s.chain().mn().get(&pro).cloned())
            .await
            .expect("chain service")
    }

    /// Mines on node 0 up to the next quorum height; returns it.
    async fn mine_to_next_dkg(&self) -> u64 {
        let interval = params().masternode.quorum_interval;
        let (_, h) = self.tip(0).await;
        let q = (h / interval + 1) * interval;
        self.mine(0, q - h).await;
        self.assert_synced().await;
        q
    }

    /// Waits until node 0's miner holds a final commitment for the DKG
    /// started at `quorum_height`, mining one block every `mine_every`
    /// (phases advance with blocks when a member is missing).
    async fn wait_commitment(&self, quorum_height: u64, mine_every: Option<Duration>) -> Hash256 {
        let q = self
            .node(0)
            .handle()
            .query(move |s| s.chain().hash_at(quorum_height))
            .await
            .expect("chain")
            .expect("quorum block");
        let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
        let mut last_mine = tokio::time::Instant::now();
        loop {
            let ready = self
                .node(0)
                .handle()
                .query(move |s| s.pending_commitments().contains_key(&q))
                .await
                .expect("chain");
            if ready {
                return q;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no commitment for quorum {q}"
            );
            if let Some(every) = mine_every {
                if last_mine.elapsed() >= every {
                    self.mine(0, 1).await;
                    last_mine = tokio::time::Instant::now();
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every node in `which` holds a ChainLock on `hash` at
    /// `height` (or a later one).
    async fn wait_chainlock(&self, which: &[usize], height: u64, hash: Hash256) {
        let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
        for &i in which {
            loop {
                let best = self
                    .node(i)
                    .handle()
                    .query(|s| s.chain().best_chainlock().map(|c| (c.height, c.block_hash)))
                    .await
                    .expect("chain");
                match best {
                    Some((h, b)) if h == height => {
                        assert_eq!(b, hash, "node {i} locked another block at {h}");
                        break;
                    }
                    Some((h, _)) if h > height => break,
                    _ => {}
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "node {i} has no ChainLock at {height} (best {best:?})"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Block `hash` from node `i`'s store.
    async fn block(&self, i: usize, hash: Hash256) -> rusty_shared_types::Block {
        self.node(i)
            .handle()
            .query(move |s| s.chain().block(&hash))
            .await
            .expect("chain")
            .expect("db")
            .expect("block")
    }

    async fn quorums(&self, i: usize) -> Vec<rusty_core::masternode::MinedQuorum> {
        self.node(i)
            .handle()
            .query(|s| s.chain().mn().quorums().to_vec())
            .await
            .expect("chain")
    }

    /// Node index of the masternode whose operator key is `key`.
    fn node_of_operator(&self, key: &[u8; 48]) -> usize {
        (0..self.net.len())
            .find(|&i| {
                self.net.config().is_masternode(i)
                    && self
                        .net
                        .config()
                        .operator_key(i)
                        .ok()
                        .map(|k| k.public_key().to_bytes())
                        == Some(*key)
            })
            .expect("a masternode node")
    }
}

/// A dev node of its own (no P2P), to grow a competing branch.
async fn lone_node(dir: &std::path::Path) -> Node {
    let mut c = NodeConfig::new(Network::Dev, dir.join("dev"));
    c.rpc_bind = "127.0.0.1:0".parse().expect("addr");
    c.create_wallet = true;
    c.wallet_kdf = rusty_crypto::keystore::KdfParams::insecure_fast_for_tests();
    Node::start(c).await.expect("lone node starts")
}

/// Publishes `data` on `topic` from node `i`, retrying while gossipsub
/// has no mesh peers yet.
async fn publish(tn: &TestNet, i: usize, topic: Topic, data: Vec<u8>) {
    let net = &tn.node(i).p2p().expect("p2p").net;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Err(e) = net.publish(topic, data.clone()).await {
        assert!(tokio::time::Instant::now() < deadline, "publish: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether some node in `which` banned node `bad`'s peer id.
async fn banned_by_someone(tn: &TestNet, which: &[usize], bad: usize) -> bool {
    let peer = tn.net.peer_id(bad).expect("peer id").to_string();
    for &i in which {
        let bans = tn
            .node(i)
            .p2p()
            .expect("p2p")
            .net
            .bans()
            .await
            .expect("bans");
        if bans.iter().any(|b| b.target.to_string().contains(&peer)) {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_masternodes_form_a_quorum_and_chainlock_every_block() {
    // Node 0 mines and funds; nodes 3..=8 (the last six) are masternodes;
    // nodes 1 and 2 are plain nodes that later turn forger.
    let tn = spawn_masternode_net(9, 6).await;
    for i in 0..tn.net.len() {
        tn.wait_peers(i, 2).await;
    }
    let mns = tn.register_masternodes().await;
    assert_eq!(mns.len(), 6);

    // Registrations are consensus: every node has the same list and root.
    let roots: Vec<Hash256> = {
        let mut v = Vec::new();
        for i in 0..tn.net.len() {
            v.push(
                tn.node(i)
                    .handle()
                    .query(|s| s.chain().mn().list_root())
                    .await
                    .expect("chain"),
            );
        }
        v
    };
    assert!(roots.windows(2).all(|w| w[0] == w[1]) && !roots[0].is_zero());

    // A DKG at the next quorum height completes without further blocks.
    let q_height = tn.mine_to_next_dkg().await;
    let q = tn.wait_commitment(q_height, None).await;
    tn.mine(0, 1).await;
    tn.assert_synced().await;
    let quorums = tn.quorums(0).await;
    let quorum = quorums
        .iter()
        .find(|x| x.quorum_hash == q)
        .expect("quorum mined");
    assert_eq!(quorum.members.len(), params().masternode.quorum_size);
    assert_eq!(
        quorum.valid_members.count(),
        params().masternode.quorum_size
    );

    // Every new block is ChainLocked on every node.
    let all: Vec<usize> = (0..tn.net.len()).collect();
    let mut payees = std::collections::HashSet::new();
    for _ in 0..6 {
        let tip = tn.mine(0, 1).await;
        let (_, h) = tn.tip(0).await;
        tn.wait_chainlock(&all, h, tip).await;
        // The coinbase pays the masternode reward to the expected payee.
        let block = tn.block(0, tip).await;
        let reward = params().masternode_reward(h);
        // Output 0 is the miner's; the payee's follows.
        let paid: Vec<&TxOut> = block.txs[0].outputs[1..]
            .iter()
            .filter(|o| o.value == reward)
            .collect();
        assert_eq!(paid.len(), 1, "one masternode payment at {h}");
        payees.insert(paid[0].lock.clone());
    }
    // Six blocks paid six different masternodes (lowest last-paid first).
    assert_eq!(payees.len(), 6);
    let tip = tn.mine(0, 1).await;
    let block = tn.block(0, tip).await;
    assert!(
        !block.header.chainlock_hash.is_zero(),
        "a later block embeds a ChainLock"
    );
    let (_, h) = tn.tip(0).await;
    tn.wait_chainlock(&all, h, tip).await;
    let (locked_hash, locked_height) = (tip, h);

    // A heavier branch below the ChainLock is rejected.
    let other = tempfile::tempdir().expect("tempdir");
    let lone = lone_node(other.path()).await;
    let addr = lone
        .handle()
        .new_address()
        .await
        .expect("chain")
        .expect("addr");
    let hashes = lone
        .handle()
        .generate(locked_height + 5, &addr, u64::MAX)
        .await
        .expect("mining");
    let first = hashes[0];
    let block = lone
        .handle()
        .query(move |s| s.chain().block(&first))
        .await
        .expect("chain")
        .expect("db")
        .expect("block");
    let verdict = tn
        .node(1)
        .handle()
        .submit_block(block)
        .await
        .expect("chain");
    assert!(
        matches!(
            verdict,
            Err(ChainError::Invalid(ValidationError::ForkBelowFinality))
        ),
        "{verdict:?}"
    );
    lone.shutdown().await;
    assert_eq!(tn.tip(1).await.0, locked_hash);

    // A forged ChainLock (a random key's signature) of our own next block
    // is rejected and its sender banned. (One naming a block off our chain
    // is only ignored: it may be an honest lock of another fork, whose
    // quorums are not ours to judge.)
    let forger = bls::SecretKey::generate(&mut rand::rngs::OsRng);
    let handle0 = tn.node(0).handle().clone();
    let to = handle0
        .new_address()
        .await
        .expect("chain")
        .expect("address");
    let mut next_block = handle0
        .block_template(to.lock_script(), Vec::new())
        .await
        .expect("chain")
        .block;
    let target = rusty_core::pow::target_from_compact(next_block.header.bits).expect("bits");
    rusty_core::pow::solve(&mut next_block.header, &target, u64::MAX).expect("solved");
    let next = next_block.header.hash();
    let forged = ChainLock {
        height: locked_height + 1,
        block_hash: next,
        signature: forger.sign(b"not a quorum").to_bytes(),
    };
    let gossip = rusty_node::llmq::messages::ChainLockGossip::Lock(forged.clone());
    publish(&tn, 1, Topic::ChainLocks, gossip.encode()).await;

    // Short of threshold: recovered from t − 1 real key shares.
    let t = params().masternode.quorum_threshold;
    let mut shares = Vec::new();
    let request = ChainLock::request_id(locked_height + 1);
    let msg = quorum_sign_hash(&q, &request, &next);
    for i in 0..tn.net.len() {
        if shares.len() == t - 1 || !tn.net.config().is_masternode(i) {
            continue;
        }
        let path = tn.net.data_dir(i).join("dkg").join(format!("{q}.share"));
        if let Ok(bytes) = std::fs::read(&path) {
            let key = bls::SecretKey::from_bytes(&bytes.try_into().expect("32 bytes"))
                .expect("key share");
            let pro = tn
                .node(0)
                .handle()
                .query({
                    let pk = tn
                        .net
                        .config()
                        .operator_key(i)
                        .expect("key")
                        .public_key()
                        .to_bytes();
                    move |s| s.chain().mn().by_operator_key(&pk).map(|e| e.pro_tx_hash)
                })
                .await
                .expect("chain")
                .expect("registered");
            shares.push((bls::MemberId::from_identity(&pro.0), key.sign(&msg.0)));
        }
    }
    assert_eq!(shares.len(), t - 1);
    let short = ChainLock {
        height: locked_height + 1,
        block_hash: next,
        signature: bls::recover_signature(&shares, t - 1)
            .expect("recover")
            .to_bytes(),
    };
    publish(
        &tn,
        2,
        Topic::ChainLocks,
        rusty_node::llmq::messages::ChainLockGossip::Lock(short).encode(),
    )
    .await;

    let honest: Vec<usize> = (3..tn.net.len()).chain([0]).collect();
    // Both claim the next height: they are judged once the tip gets there.
    handle0
        .submit_block(next_block)
        .await
        .expect("chain")
        .expect("our next block is valid");
    let next_tip = next;
    tn.wait_chainlock(&honest, locked_height + 1, next_tip)
        .await;
    let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
    while !(banned_by_someone(&tn, &honest, 1).await && banned_by_someone(&tn, &honest, 2).await) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "forgers were not banned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for &i in &honest {
        let best = tn
            .node(i)
            .handle()
            .query(|s| s.chain().best_chainlock().map(|c| (c.height, c.block_hash)))
            .await
            .expect("chain");
        assert_eq!(
            best,
            Some((locked_height + 1, next_tip)),
            "node {i} took a forged ChainLock"
        );
    }

    // Spending the collateral removes the masternode and its payouts.
    let (victim_node, victim) = mns[0];
    let entry = tn.mn_entry(0, victim).await.expect("registered");
    let collateral: OutPoint = entry.collateral;
    let victim_handle = tn.node(victim_node).handle().clone();
    let to = victim_handle
        .new_address()
        .await
        .expect("chain")
        .expect("address");
    let tx = victim_handle
        .query(move |s| {
            let coin = s
                .chain()
                .coin(&collateral)
                .expect("db")
                .expect("collateral unspent");
            let pkh = coin.output.lock.as_p2pkh().expect("p2pkh");
            let key = s.wallet().expect("wallet").key_for(&pkh).expect("our key");
            let mut tx = Transaction {
                version: 1,
                inputs: vec![TxIn {
                    prevout: collateral,
                    unlock: Default::default(),
                    sequence: rusty_shared_types::transaction::SEQUENCE_FINAL,
                }],
                outputs: vec![TxOut {
                    value: coin
                        .output
                        .value
                        .checked_sub(Amount::from_units(100_000).expect("fee"))
                        .expect("amount"),
                    lock: to.lock_script(),
                }],
                lock_time: 0,
                payload: None,
            };
            rusty_vm::signer::sign_p2pkh(&mut tx, &[coin.output], |_| Some(key.clone()))
                .expect("sign");
            tx
        })
        .await
        .expect("chain");
    let spend = victim_handle
        .accept_transaction(tx)
        .await
        .expect("chain")
        .expect("collateral spend accepted");
    // Wait for the spend to reach node 0, then mine it.
    let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
    while !tn
        .node(0)
        .handle()
        .query(move |s| s.mempool().contains(&spend))
        .await
        .expect("chain")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "collateral spend did not reach the miner"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tn.mine(0, 1).await;
    tn.assert_synced_among(&honest).await;
    for &i in &honest {
        assert!(
            tn.mn_entry(i, victim).await.is_none(),
            "node {i} still lists the spent masternode"
        );
    }
    let payout = entry.payout.clone();
    let tip = tn.mine(0, 6).await;
    let _ = tip;
    let (_, h) = tn.tip(0).await;
    for height in h - 5..=h {
        let block = tn
            .node(0)
            .handle()
            .query(move |s| {
                s.chain()
                    .hash_at(height)
                    .and_then(|b| s.chain().block(&b).ok().flatten())
            })
            .await
            .expect("chain")
            .expect("block");
        assert!(
            block.txs[0].outputs.iter().all(|o| o.lock != payout),
            "block {height} paid the removed masternode"
        );
    }
    tn.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dkg_survives_an_absent_member_and_a_restart() {
    let tn = spawn_masternode_net(7, 6).await;
    for i in 0..tn.net.len() {
        tn.wait_peers(i, 2).await;
    }
    let mut tn = tn;
    tn.register_masternodes().await;

    // Build the quorum block on node 0 without announcing it, to learn
    // the members; take the first one offline before the DKG starts.
    let interval = params().masternode.quorum_interval;
    let (_, h) = tn.tip(0).await;
    let q_height = (h / interval + 1) * interval;
    tn.mine(0, q_height - h - 1).await;
    tn.assert_synced().await;
    let addr = tn.address(0).await;
    let (block, members) = tn
        .node(0)
        .handle()
        .query(move |s| {
            let template = s.block_template(&addr.lock_script(), rusty_core::now(), Vec::new());
            let mut block = template.block;
            rusty_core::pow::solve(&mut block.header, &template.target, u64::MAX).expect("solved");
            let members = s.chain().mn().select_members(s.params(), &block.hash());
            (block, members)
        })
        .await
        .expect("chain");
    assert_eq!(members.len(), params().masternode.quorum_size);
    let absent = tn.node_of_operator(&members[0].1);
    let absent_pro = members[0].0;
    tn.node(absent).p2p().expect("p2p").net.shutdown().await;
    let online: Vec<usize> = (0..tn.net.len()).filter(|&i| i != absent).collect();
    tn.node(0)
        .handle()
        .submit_block(block)
        .await
        .expect("chain")
        .expect("quorum block");
    tn.assert_synced_among(&online).await;

    // Its contribution never comes: the phase ends at its last block, and
    // the quorum forms from the other four.
    let q = tn
        .wait_commitment(q_height, Some(Duration::from_millis(1500)))
        .await;
    tn.mine(0, 1).await;
    tn.assert_synced_among(&online).await;
    let quorum = tn
        .quorums(0)
        .await
        .into_iter()
        .find(|x| x.quorum_hash == q)
        .expect("quorum mined");
    assert_eq!(
        quorum.valid_members.count(),
        params().masternode.quorum_size - 1
    );
    let idx = quorum.index_of(&absent_pro).expect("member");
    assert!(
        !quorum.valid_members.get(idx),
        "the absent member is excluded"
    );
    let entry = tn.mn_entry(0, absent_pro).await.expect("still registered");
    assert_eq!(entry.pose_penalty, params().masternode.pose_miss_penalty);
    assert!(
        entry.pose_ban_height.is_none(),
        "one missed DKG does not ban"
    );

    // The next DKG: a member restarts in the middle of it and is neither
    // excluded for that nor banned.
    let (_, h) = tn.tip(0).await;
    let q2_height = (h / interval + 1) * interval;
    tn.mine(0, q2_height - h).await;
    tn.assert_synced_among(&online).await;
    let pending = tn
        .node(0)
        .handle()
        .query(|s| s.chain().mn().pending_dkgs().to_vec())
        .await
        .expect("chain");
    let dkg = pending.last().expect("a DKG started").clone();
    let restarted = dkg
        .members
        .iter()
        .map(|(_, k)| tn.node_of_operator(k))
        .find(|&i| i != absent && i != 0)
        .expect("an online member");
    let restarted_pro = dkg
        .members
        .iter()
        .find(|(_, k)| tn.node_of_operator(k) == restarted)
        .expect("member")
        .0;
    // Let it send its contribution, then restart it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    tn.net.restart_node(restarted, true).await.expect("restart");
    tn.assert_synced_among(&online).await;
    let absent_in_q2 = dkg.members.iter().any(|(p, _)| *p == absent_pro);
    let mine_every = absent_in_q2.then_some(Duration::from_millis(1500));
    let q2 = tn.wait_commitment(q2_height, mine_every).await;
    tn.mine(0, 1).await;
    tn.assert_synced_among(&online).await;
    let quorum = tn
        .quorums(0)
        .await
        .into_iter()
        .find(|x| x.quorum_hash == q2)
        .expect("second quorum mined");
    let idx = quorum.index_of(&restarted_pro).expect("member");
    assert!(
        quorum.valid_members.get(idx),
        "the restarted member completed its DKG"
    );
    let entry = tn.mn_entry(0, restarted_pro).await.expect("registered");
    assert!(entry.pose_ban_height.is_none());
    tn.shutdown().await;
}

/// A node cut off by a partition mines a heavier fork of its own while the
/// rest of the network ChainLocks a lighter one. After the heal, with no
/// new block or lock anywhere, it learns the lock from its peers' status,
/// fetches the lighter chain and moves to it (found by `rusty-cli chaos`:
/// sync by work alone left such a node on its fork for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_on_a_heavier_fork_of_its_own_follows_the_chainlocked_chain() {
    // Node 0 mines; node 1 is the one cut off; nodes 2..=7 are masternodes.
    let tn = spawn_masternode_net(8, 6).await;
    for i in 0..tn.net.len() {
        tn.wait_peers(i, 2).await;
    }
    tn.register_masternodes().await;
    let q_height = tn.mine_to_next_dkg().await;
    tn.wait_commitment(q_height, None).await;
    tn.mine(0, 1).await;
    let all: Vec<usize> = (0..tn.net.len()).collect();
    let tip = tn.mine(0, 1).await;
    let (_, h) = tn.tip(0).await;
    tn.wait_chainlock(&all, h, tip).await;
    tn.assert_synced().await;

    // Partition node 1 from everyone.
    let ids: Vec<String> = (0..tn.net.len())
        .map(|i| tn.net.peer_id(i).expect("peer id").to_string())
        .collect();
    for i in 2..tn.net.len() {
        tn.rpc(1, "setban", serde_json::json!([ids[i], "add", 3600]))
            .await;
        tn.rpc(i, "setban", serde_json::json!([ids[1], "add", 3600]))
            .await;
    }
    tn.rpc(1, "setban", serde_json::json!([ids[0], "add", 3600]))
        .await;
    tn.rpc(0, "setban", serde_json::json!([ids[1], "add", 3600]))
        .await;
    assert_eq!(tn.peer_count(1).await, 0);

    // The rest locks two blocks; node 1 mines six of its own.
    let rest: Vec<usize> = all.iter().copied().filter(|&i| i != 1).collect();
    let locked = tn.mine(0, 2).await;
    let (_, locked_height) = tn.tip(0).await;
    tn.wait_chainlock(&rest, locked_height, locked).await;
    let fork = tn.mine(1, 6).await;
    let mut work = Vec::new();
    for i in [0, 1] {
        let w = tn
            .node(i)
            .handle()
            .query(|s| s.chain().tip_entry().chain_work)
            .await
            .expect("chain");
        work.push(w);
    }
    // Big-endian bytes compare as the numbers they encode.
    assert!(work[1] > work[0], "node 1's fork is heavier");

    // Let the announcements and locks age out of gossipsub's message cache
    // (5 heartbeats of 0.7 s), so the heal re-gossips none of them, as
    // after a long partition. Heal, and mine nothing more.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for i in 0..tn.net.len() {
        tn.rpc(i, "clearbanned", serde_json::json!([])).await;
    }
    let addr0 = tn.node(0).p2p().expect("p2p").net.listen_addrs()[0].to_string();
    tn.rpc(1, "addnode", serde_json::json!([addr0, "add"]))
        .await;
    tn.wait_chainlock(&[1], locked_height, locked).await;
    let (tip, _) = tn.assert_synced().await;
    assert_eq!(tip, locked);
    let gone = tn
        .rpc(1, "getblockheader", serde_json::json!([fork.to_string()]))
        .await;
    assert_eq!(gone["confirmations"], serde_json::json!(-1), "{gone}");
    tn.shutdown().await;
}
