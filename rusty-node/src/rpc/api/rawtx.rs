//! Raw transactions: `getrawtransaction`, `decoderawtransaction`,
//! `sendrawtransaction`.

use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use serde_json::Value;

/// Raw transactions, as Bitcoin Core's.
#[rpc(server, client)]
pub trait RawTxApi {
    /// A transaction from the mempool or the chain (transaction index):
    /// its hex, or with `verbose` (a boolean or a number, as Bitcoin Core
    /// accepts) the decoded transaction with `hex`, `blockhash`,
    /// `confirmations` and times.
    #[method(name = "getrawtransaction")]
    async fn get_raw_transaction(&self, txid: String, verbose: Option<Value>) -> RpcResult<Value>;

    /// Decodes a transaction given as hex.
    #[method(name = "decoderawtransaction")]
    async fn decode_raw_transaction(&self, hexstring: String) -> RpcResult<Value>;

    /// Validates a transaction and accepts it into the mempool (then it is
    /// relayed); returns its txid.
    #[method(name = "sendrawtransaction")]
    async fn send_raw_transaction(&self, hexstring: String) -> RpcResult<String>;
}
