//! The multi-node harness: `spawn_nodes(n)` starts a [`LocalNet`] of dev
//! nodes on temporary datadirs (real RocksDB, real libp2p over loopback
//! TCP), `mine` makes blocks on one node, `assert_synced` waits until
//! every node has the same tip.

use std::time::Duration;

use rusty_core::{
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
        self.node(i)
            .handle()
            .call(|s| s.wallet.as_mut().expect("wallet").new_address())
            .await
            .expect("chain service")
            .expect("address")
    }

    /// Mines `count` blocks on node `i` (paying its wallet); returns the
    /// new tip.
    pub async fn mine(&self, i: usize, count: u64) -> Hash256 {
        let addr = self.address(i).await;
        let hashes = self
            .node(i)
            .handle()
            .call(move |s| s.generate(count, &addr, u64::MAX, rusty_core::now()))
            .await
            .expect("chain service")
            .expect("mining");
        *hashes.last().expect("mined at least one block")
    }

    pub async fn tip(&self, i: usize) -> (Hash256, u64) {
        self.node(i)
            .handle()
            .call(|s| (s.chain.tip(), s.chain.height()))
            .await
            .expect("chain service")
    }

    pub async fn peer_count(&self, i: usize) -> usize {
        match self.node(i).p2p() {
            Some(p) => p.net.peers().await.map(|v| v.len()).unwrap_or(0),
            None => 0,
        }
    }

    /// Waits until the nodes in `which` share one tip; returns it.
    pub async fn assert_synced_among(&self, which: &[usize]) -> (Hash256, u64) {
        let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
        loop {
            let mut tips = Vec::new();
            for &i in which {
                tips.push(self.tip(i).await);
            }
            if tips.windows(2).all(|w| w[0] == w[1]) {
                return tips[0];
            }
            if tokio::time::Instant::now() > deadline {
                panic!("nodes {which:?} did not converge: {tips:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every node shares one tip.
    pub async fn assert_synced(&self) -> (Hash256, u64) {
        let all: Vec<usize> = (0..self.net.len()).collect();
        self.assert_synced_among(&all).await
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
