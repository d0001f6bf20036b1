//! The miner's threads and the priority they hash at.

use std::time::{Duration, Instant};

use rusty_crypto::keystore::KdfParams;
use rusty_node::node::{Node, NodeConfig};
use rusty_shared_types::Network;

const SCHED_OTHER: u32 = 0;
const SCHED_IDLE: u32 = 5;

/// This process's threads named `name`, each with its scheduling policy
/// (field 41 of its stat line, proc(5)).
fn policies_of(name: &str) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            if comm.trim_end() != name {
                return None;
            }
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            // The command name (field 2) may hold spaces: count after its ')'.
            let after = &stat[stat.rfind(')')? + 2..];
            after.split(' ').nth(41 - 3)?.parse().ok()
        })
        .collect()
}

/// A continuous miner (a network with difficulty adjustment) hashes on
/// `SCHED_IDLE` threads; the miner's own thread (templates, submitting)
/// and the chain's stay at the default policy, so validating a block never
/// waits for the hashing.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuous_miner_hashes_below_the_nodes_other_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = NodeConfig::new(Network::Test, dir.path().join("test"));
    c.rpc_bind = "127.0.0.1:0".parse().expect("static address");
    c.wallet_kdf = KdfParams::insecure_fast_for_tests();
    c.create_wallet = true;
    c.mine = true;
    c.mine_threads = 2;
    let node = Node::start(c).await.expect("node starts");

    // The workers live one template each (a block takes milliseconds at
    // the test network's starting difficulty): look until one is caught.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut hashing, mut own_thread) = (false, false);
    while Instant::now() < deadline && !(hashing && own_thread) {
        let seen = policies_of("miner");
        own_thread |= seen.contains(&SCHED_OTHER);
        hashing |= seen.contains(&SCHED_IDLE);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(hashing, "no hashing thread on SCHED_IDLE within 20 s");
    assert!(own_thread, "the miner's own thread stays at the default");
    let chain = policies_of("chain");
    assert!(
        !chain.is_empty() && chain.iter().all(|&p| p == SCHED_OTHER),
        "the chain thread at the default: {chain:?}"
    );
    node.shutdown().await;
}
