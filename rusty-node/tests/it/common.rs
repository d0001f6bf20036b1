//! The test harness: start a node, call it, build transactions and blocks.

use std::net::SocketAddr;

use rusty_core::{pow, validation};
use rusty_crypto::keystore::KdfParams;
use rusty_node::{
    node::{Node, NodeConfig},
    rpc::client::{ClientError, RpcClient},
};
use rusty_shared_types::{Amount, Block, Encode, Hash256, Network, OutPoint, TxOut};
use serde_json::{json, Value};

/// A dev node on a temporary datadir with RPC on an ephemeral port.
pub struct TestNode {
    pub node: Option<Node>,
    pub dir: tempfile::TempDir,
    pub client: RpcClient,
    pub addr: SocketAddr,
}

pub fn config(dir: &std::path::Path) -> NodeConfig {
    let mut c = NodeConfig::new(Network::Dev, dir.join("dev"));
    c.rpc_bind = "127.0.0.1:0".parse().expect("static address");
    c.wallet_kdf = KdfParams::insecure_fast_for_tests();
    c.create_wallet = true;
    c
}

impl TestNode {
    pub async fn start() -> TestNode {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = Node::start(config(dir.path())).await.expect("node starts");
        let addr = node.rpc_addr();
        let cookie = node.cookie_path().expect("cookie auth").to_path_buf();
        let client = RpcClient::new(&format!("http://{addr}"))
            .expect("url")
            .with_cookie_file(&cookie)
            .expect("cookie");
        TestNode {
            node: Some(node),
            dir,
            client,
            addr,
        }
    }

    /// Calls a method over HTTP (on a blocking thread: the client is sync).
    pub async fn try_rpc(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let client = self.client.clone();
        let method = method.to_string();
        tokio::task::spawn_blocking(move || client.call(&method, params))
            .await
            .expect("rpc thread")
    }

    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        match self.try_rpc(method, params.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{method} {params}: {e}"),
        }
    }

    /// The error code and message of a call that must fail.
    pub async fn rpc_err(&self, method: &str, params: Value) -> (i64, String) {
        match self.try_rpc(method, params.clone()).await {
            Err(ClientError::Rpc { code, message }) => (code, message),
            other => panic!("{method} {params}: expected an RPC error, got {other:?}"),
        }
    }

    pub async fn height(&self) -> u64 {
        self.rpc("getblockcount", json!([]))
            .await
            .as_u64()
            .expect("height")
    }

    pub async fn tip(&self) -> String {
        self.rpc("getbestblockhash", json!([]))
            .await
            .as_str()
            .expect("hash")
            .to_string()
    }

    /// Tip, mempool and wallet balances: what bad input must not change.
    pub async fn snapshot(&self) -> (String, Value, Value) {
        (
            self.tip().await,
            self.rpc("getrawmempool", json!([])).await,
            self.rpc("getbalances", json!([])).await,
        )
    }

    pub async fn generate_to(&self, n: u64, address: &str) -> Vec<String> {
        let v = self.rpc("generatetoaddress", json!([n, address])).await;
        v.as_array()
            .expect("hashes")
            .iter()
            .map(|h| h.as_str().expect("hash").to_string())
            .collect()
    }

    pub async fn new_address(&self) -> String {
        self.rpc("getnewaddress", json!([]))
            .await
            .as_str()
            .expect("address")
            .to_string()
    }

    /// Runs the read `f` on the node's state (to build blocks from its
    /// templates).
    pub async fn with_state<R: Send + 'static>(
        &self,
        f: impl FnOnce(&rusty_core::state::NodeState) -> R + Send + 'static,
    ) -> R {
        self.node
            .as_ref()
            .expect("running")
            .handle()
            .query(f)
            .await
            .expect("chain service")
    }

    pub async fn stop(&mut self) {
        if let Some(n) = self.node.take() {
            n.shutdown().await;
        }
    }
}

/// A key the test holds, with its dev address.
pub use rusty_core::test_utils::Key as TestKey;

pub fn hex_of<T: Encode>(v: &T) -> String {
    hex::encode(v.encode())
}

pub fn coins(units: u64) -> Amount {
    Amount::from_units(units).expect("amount")
}

/// The coinbase output (txid, value, lock) of the block `hash` on `node`.
pub async fn coinbase_of(node: &TestNode, hash: &str) -> (OutPoint, TxOut) {
    let hash: Hash256 = hash.parse().expect("hash");
    node.with_state(move |s| {
        let block = s.chain().block(&hash).expect("db").expect("block");
        let cb = &block.txs[0];
        (OutPoint::new(cb.txid(), 0), cb.outputs[0].clone())
    })
    .await
}

/// A valid next block from the node's template (paying `key`), with its
/// proof of work solved after `tweak` edits the header.
pub async fn next_block(
    node: &TestNode,
    key: &TestKey,
    tweak: impl FnOnce(&mut Block) + Send + 'static,
) -> Block {
    let lock = key.address.lock_script();
    node.with_state(move |s| {
        let t = s.block_template(&lock, rusty_core::now(), Vec::new());
        let mut block = t.block;
        tweak(&mut block);
        let target = pow::target_from_compact(block.header.bits).expect("bits");
        rusty_core::pow::solve(&mut block.header, &target, u64::MAX).expect("solved");
        block
    })
    .await
}

/// Recomputes the merkle root after editing transactions.
pub fn fix_merkle(block: &mut Block) {
    block.header.merkle_root = validation::block_merkle_root(&block.txs);
}
