//! Chain queries: `getblockchaininfo`, `getblockcount`, `getbestblockhash`,
//! `getblockhash`, `getblockheader`, `getblock`, `gettxout`, `gettxoutsetinfo`,
//! `getmempoolinfo`, `getrawmempool`, and the `newblocks` subscription.

use jsonrpsee::{
    core::{RpcResult, SubscriptionResult},
    proc_macros::rpc,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `getblockchaininfo`'s result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockchainInfo {
    pub chain: String,
    pub blocks: u64,
    pub headers: u64,
    pub bestblockhash: String,
    pub bits: String,
    /// The tip's proof-of-work target, 64 hex digits.
    pub target: String,
    pub difficulty: f64,
    pub time: u64,
    pub mediantime: u64,
    pub verificationprogress: f64,
    pub initialblockdownload: bool,
    pub chainwork: String,
    /// Bytes of the chain database on disk (blocks, undo data, indexes,
    /// coins): where Core counts block and undo files.
    pub size_on_disk: u64,
    pub pruned: bool,
    /// Node warnings; an array of strings, as Core 28+.
    pub warnings: Vec<String>,
}

/// `gettxout`'s result for an unspent output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxOutInfo {
    pub bestblock: String,
    pub confirmations: u64,
    /// Coins, as a JSON number.
    pub value: Value,
    #[serde(rename = "scriptPubKey")]
    pub script_pub_key: Value,
    pub coinbase: bool,
}

/// Most outputs `getaddressutxos` returns.
pub const ADDRESS_UTXOS_LIMIT: usize = 1000;

/// One entry of `getaddressutxos` (Dash Core's fields).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AddressUtxo {
    pub address: String,
    pub txid: String,
    pub output_index: u32,
    /// The lock script, hex.
    pub script: String,
    /// Base units (Dash's `satoshis`).
    pub satoshis: u64,
    pub height: u64,
}

/// `gettxoutsetinfo`'s result: Core's fields, plus the exact amounts in
/// base units and the treasury balance read at the same tip (coins outside
/// the UTXO set), so that supply can be checked from outside in one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxOutSetInfo {
    pub height: u64,
    pub bestblock: String,
    pub txouts: u64,
    /// Coins, as a JSON number.
    pub total_amount: Value,
    /// The same, in base units.
    pub total_amount_units: u64,
    /// The governance treasury's balance at this tip, in base units.
    pub treasury_units: u64,
}

/// `getmempoolinfo`'s result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MempoolInfo {
    pub loaded: bool,
    pub size: usize,
    pub bytes: usize,
    pub usage: usize,
    pub total_fee: Value,
    pub maxmempool: usize,
    pub mempoolminfee: Value,
    pub minrelaytxfee: Value,
    /// The fee rate increment a replacement must pay.
    pub incrementalrelayfee: Value,
    pub unbroadcastcount: u64,
    /// Every pool transaction may be replaced by a conflicting one paying
    /// more: there is no opt-in signalling.
    pub fullrbf: bool,
}

/// Fees of a mempool entry, in coins, as Core's `fees` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MempoolFees {
    pub base: Value,
    /// `base` after prioritisation; there is no `prioritisetransaction`,
    /// so the same.
    pub modified: Value,
    /// With every in-pool ancestor.
    pub ancestor: Value,
    /// With every in-pool descendant.
    pub descendant: Value,
}

/// One entry of `getrawmempool true` (and Core's `getmempoolentry`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MempoolEntryInfo {
    pub vsize: u64,
    pub weight: u64,
    pub time: u64,
    pub height: u64,
    pub descendantcount: u64,
    pub descendantsize: u64,
    pub ancestorcount: u64,
    pub ancestorsize: u64,
    pub wtxid: String,
    pub fees: MempoolFees,
    pub depends: Vec<String>,
    pub spentby: Vec<String>,
    #[serde(rename = "bip125-replaceable")]
    pub bip125_replaceable: bool,
    pub unbroadcast: bool,
}

/// `getrawmempool`'s result: txids, or entries by txid with `verbose`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RawMempool {
    Txids(Vec<String>),
    Verbose(std::collections::BTreeMap<String, MempoolEntryInfo>),
}

/// One item of the `newblocks` subscription: each new tip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBlock {
    pub hash: String,
    pub height: u64,
    pub time: u64,
}

/// Chain and mempool queries, as Bitcoin Core's.
#[rpc(server, client)]
pub trait BlockchainApi {
    #[method(name = "getblockchaininfo")]
    async fn get_blockchain_info(&self) -> RpcResult<BlockchainInfo>;

    /// Height of the active tip.
    #[method(name = "getblockcount")]
    async fn get_block_count(&self) -> RpcResult<u64>;

    #[method(name = "getbestblockhash")]
    async fn get_best_block_hash(&self) -> RpcResult<String>;

    /// Hash of the active chain's block at `height`.
    #[method(name = "getblockhash")]
    async fn get_block_hash(&self, height: i64) -> RpcResult<String>;

    /// The header, decoded (`verbose`, the default) or as hex.
    #[method(name = "getblockheader")]
    async fn get_block_header(&self, blockhash: String, verbose: Option<bool>) -> RpcResult<Value>;

    /// The block as hex (verbosity 0), decoded with txids (1, the default)
    /// or with decoded transactions (2); a boolean means 0 or 1.
    #[method(name = "getblock")]
    async fn get_block(&self, blockhash: String, verbosity: Option<Value>) -> RpcResult<Value>;

    /// An unspent output, or `null` when spent or unknown (with
    /// `include_mempool`, the default, as the mempool would leave it).
    #[method(name = "gettxout")]
    async fn get_tx_out(
        &self,
        txid: String,
        n: u32,
        include_mempool: Option<bool>,
    ) -> RpcResult<Option<TxOutInfo>>;

    /// Count and total value of the UTXO set at the tip, and the treasury
    /// balance at the same tip. Reads every coin.
    #[method(name = "gettxoutsetinfo")]
    async fn get_tx_out_set_info(&self) -> RpcResult<TxOutSetInfo>;

    /// The unspent outputs paying `addresses` (Dash's shape; without an
    /// address index it reads the whole UTXO set, at most
    /// [`ADDRESS_UTXOS_LIMIT`] outputs). `addresses` is `{"addresses":
    /// [..]}` or one address string.
    #[method(name = "getaddressutxos")]
    async fn get_address_utxos(&self, addresses: Value) -> RpcResult<Vec<AddressUtxo>>;

    #[method(name = "getmempoolinfo")]
    async fn get_mempool_info(&self) -> RpcResult<MempoolInfo>;

    /// The txids in the mempool, or with `verbose` an object of entries by
    /// txid.
    #[method(name = "getrawmempool")]
    async fn get_raw_mempool(&self, verbose: Option<bool>) -> RpcResult<RawMempool>;

    /// Every new tip, as it becomes the tip (WebSocket).
    #[subscription(name = "subscribe_newblocks" => "newblocks", unsubscribe = "unsubscribe_newblocks", item = NewBlock)]
    async fn subscribe_new_blocks(&self) -> SubscriptionResult;
}
