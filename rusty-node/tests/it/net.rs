//! The multi-node harness: `spawn_nodes(n)` starts a [`LocalNet`] of dev
//! nodes on temporary datadirs (real RocksDB, real libp2p over loopback
//! TCP); `mine`, `assert_synced` and `wait_peers` are the kit of
//! `rusty_node::testkit` (shared with the benches), failing the test on
//! timeout.

use std::time::Duration;

use rusty_node::{
    localnet::{LocalNet, LocalNetConfig},
    node::Node,
    rpc::client::RpcClient,
};
use rusty_shared_types::{Address, Hash256};
use serde_json::Value;

/// How long a test waits for the network to agree before failing.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(120);

pub struct TestNet {
    pub net: LocalNet,
    /// Kept alive: the datadirs live here.
    pub _dir: tempfile::TempDir,
}

/// `n` connected dev nodes, none mining by itself.
pub async fn spawn_nodes(n: usize) -> TestNet {
    // `RUST_LOG=p2p=debug,net=debug cargo nextest run --no-capture` to watch.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = LocalNetConfig::new(dir.path(), n);
    let net = LocalNet::start(cfg).await.expect("local network starts");
    TestNet { net, _dir: dir }
}

impl TestNet {
    pub fn node(&self, i: usize) -> &Node {
        self.net.node(i)
    }

    pub fn client(&self, i: usize) -> RpcClient {
        RpcClient::new(&self.net.rpc_url(i))
            .expect("url")
            .with_cookie_file(self.net.cookie_path(i))
            .expect("cookie")
    }

    /// Calls a method over HTTP on node `i`.
    pub async fn rpc(&self, i: usize, method: &str, params: Value) -> Value {
        let client = self.client(i);
        let m = method.to_owned();
        tokio::task::spawn_blocking(move || client.call(&m, params))
            .await
            .expect("rpc thread")
            .unwrap_or_else(|e| panic!("{method} on node {i}: {e}"))
    }

    /// A wallet address of node `i`.
    pub async fn address(&self, i: usize) -> Address {
        self.net.address(i).await.expect("address")
    }

    /// Mines `count` blocks on node `i` (paying its wallet); returns the
    /// new tip.
    pub async fn mine(&self, i: usize, count: u64) -> Hash256 {
        self.net.mine(i, count).await.expect("mining")
    }

    pub async fn tip(&self, i: usize) -> (Hash256, u64) {
        self.net.tip(i).await.expect("chain service")
    }

    pub async fn peer_count(&self, i: usize) -> usize {
        self.net.peer_count(i).await
    }

    /// Waits until the nodes in `which` share one tip; returns it.
    pub async fn assert_synced_among(&self, which: &[usize]) -> (Hash256, u64) {
        self.net
            .wait_synced_among(which, SYNC_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits until every node shares one tip.
    pub async fn assert_synced(&self) -> (Hash256, u64) {
        self.net
            .wait_synced(SYNC_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits until node `i` has at least `n` peers.
    pub async fn wait_peers(&self, i: usize, n: usize) {
        let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
        while self.peer_count(i).await < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {i} never reached {n} peers"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn shutdown(self) {
        self.net.shutdown().await;
    }
}
