//! Ethereum's JSON-RPC (`eth_`, `net_`, `web3_`), as ethers.js, viem and
//! web3.py call it: hex quantities, `0x` data, block tags, and
//! Ethereum's error shapes (`-32000` with geth's messages, `3` with the
//! revert data for a reverted call). Results are built as JSON values in
//! `rpc/eth/`, field for field as geth returns them.
//!
//! These methods hold no keys (transactions arrive signed), so they are
//! also served without authentication on `--eth-rpc-bind`.

use jsonrpsee::{
    core::{RpcResult, SubscriptionResult},
    proc_macros::rpc,
};
use serde_json::Value;

#[rpc(server, client)]
pub trait EthApi {
    /// EIP-695: the chain id, hex.
    #[method(name = "eth_chainId")]
    async fn chain_id(&self) -> RpcResult<String>;

    /// The chain id, decimal.
    #[method(name = "net_version")]
    async fn net_version(&self) -> RpcResult<String>;

    #[method(name = "net_listening")]
    async fn net_listening(&self) -> RpcResult<bool>;

    #[method(name = "web3_clientVersion")]
    async fn client_version(&self) -> RpcResult<String>;

    /// Always false: the node serves what it has validated.
    #[method(name = "eth_syncing")]
    async fn syncing(&self) -> RpcResult<bool>;

    /// No accounts: keys stay in the clients.
    #[method(name = "eth_accounts")]
    async fn accounts(&self) -> RpcResult<Vec<String>>;

    #[method(name = "eth_blockNumber")]
    async fn block_number(&self) -> RpcResult<String>;

    /// The base fee (the tip the node suggests is zero).
    #[method(name = "eth_gasPrice")]
    async fn gas_price(&self) -> RpcResult<String>;

    #[method(name = "eth_maxPriorityFeePerGas")]
    async fn max_priority_fee(&self) -> RpcResult<String>;

    #[method(name = "eth_feeHistory")]
    async fn fee_history(
        &self,
        block_count: Value,
        newest: Value,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<Value>;

    #[method(name = "eth_getBalance")]
    async fn get_balance(&self, address: String, block: Option<Value>) -> RpcResult<String>;

    /// With `pending`, counts the pool's gap-free run.
    #[method(name = "eth_getTransactionCount")]
    async fn get_transaction_count(
        &self,
        address: String,
        block: Option<Value>,
    ) -> RpcResult<String>;

    #[method(name = "eth_getCode")]
    async fn get_code(&self, address: String, block: Option<Value>) -> RpcResult<String>;

    #[method(name = "eth_getStorageAt")]
    async fn get_storage_at(
        &self,
        address: String,
        slot: String,
        block: Option<Value>,
    ) -> RpcResult<String>;

    #[method(name = "eth_call")]
    async fn call(&self, call: Value, block: Option<Value>) -> RpcResult<String>;

    #[method(name = "eth_estimateGas")]
    async fn estimate_gas(&self, call: Value, block: Option<Value>) -> RpcResult<String>;

    #[method(name = "eth_sendRawTransaction")]
    async fn send_raw_transaction(&self, raw: String) -> RpcResult<String>;

    #[method(name = "eth_getTransactionByHash")]
    async fn get_transaction_by_hash(&self, hash: String) -> RpcResult<Value>;

    #[method(name = "eth_getTransactionReceipt")]
    async fn get_transaction_receipt(&self, hash: String) -> RpcResult<Value>;

    #[method(name = "eth_getBlockByNumber")]
    async fn get_block_by_number(&self, block: Value, full: Option<bool>) -> RpcResult<Value>;

    #[method(name = "eth_getBlockByHash")]
    async fn get_block_by_hash(&self, hash: String, full: Option<bool>) -> RpcResult<Value>;

    #[method(name = "eth_getLogs")]
    async fn get_logs(&self, filter: Value) -> RpcResult<Value>;

    /// A log filter polled with `eth_getFilterChanges`; its id.
    #[method(name = "eth_newFilter")]
    async fn new_filter(&self, filter: Value) -> RpcResult<String>;

    /// A filter of new block hashes.
    #[method(name = "eth_newBlockFilter")]
    async fn new_block_filter(&self) -> RpcResult<String>;

    /// A filter of the hashes of transactions admitted to the pool.
    #[method(name = "eth_newPendingTransactionFilter")]
    async fn new_pending_transaction_filter(&self, full: Option<bool>) -> RpcResult<String>;

    /// What is new for a filter since its last poll.
    #[method(name = "eth_getFilterChanges")]
    async fn get_filter_changes(&self, id: String) -> RpcResult<Value>;

    /// Every log a log filter matches over its range.
    #[method(name = "eth_getFilterLogs")]
    async fn get_filter_logs(&self, id: String) -> RpcResult<Value>;

    #[method(name = "eth_uninstallFilter")]
    async fn uninstall_filter(&self, id: String) -> RpcResult<bool>;

    /// Over WebSocket: `newHeads`, `logs` (with a filter as
    /// `eth_getLogs`') or `newPendingTransactions`, each notification an
    /// `eth_subscription` message.
    #[subscription(name = "eth_subscribe" => "eth_subscription", unsubscribe = "eth_unsubscribe", item = Value)]
    async fn eth_subscribe(&self, kind: String, filter: Option<Value>) -> SubscriptionResult;

    /// EIP-1186, with BLAKE3 trie nodes.
    #[method(name = "eth_getProof")]
    async fn get_proof(
        &self,
        address: String,
        slots: Vec<String>,
        block: Option<Value>,
    ) -> RpcResult<Value>;
}
