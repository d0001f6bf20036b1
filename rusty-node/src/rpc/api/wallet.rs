//! Wallet: `getnewaddress`, `getbalance`, `getbalances`, `listunspent`,
//! `listtransactions`, `sendtoaddress`, `validateaddress`.

use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The wallet's balances, in coins (JSON numbers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MineBalances {
    pub trusted: Value,
    pub untrusted_pending: Value,
    pub immature: Value,
}

/// `getbalances`'s result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Balances {
    pub mine: MineBalances,
    /// The block the balances are as of.
    pub lastprocessedblock: LastProcessedBlock,
}

/// `getbalances`'s `lastprocessedblock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastProcessedBlock {
    pub hash: String,
    pub height: u64,
}

/// One output of `listunspent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnspentOutput {
    pub txid: String,
    pub vout: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub address: Option<String>,
    /// Labels are not kept: always empty.
    #[serde(default)]
    pub label: String,
    #[serde(rename = "scriptPubKey")]
    pub script_pub_key: String,
    /// Coins, as a JSON number.
    pub amount: Value,
    pub confirmations: u64,
    pub spendable: bool,
    pub solvable: bool,
    pub safe: bool,
}

/// `validateaddress`'s result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressValidation {
    pub isvalid: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub address: Option<String>,
    #[serde(
        rename = "scriptPubKey",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub script_pub_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub isscript: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub iswitness: Option<bool>,
    /// Why the address is invalid.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// The node's HD wallet, as Bitcoin Core's wallet methods.
#[rpc(server, client)]
pub trait WalletApi {
    /// A new receiving address.
    #[method(name = "getnewaddress")]
    async fn get_new_address(&self) -> RpcResult<String>;

    #[method(name = "getbalances")]
    async fn get_balances(&self) -> RpcResult<Balances>;

    /// The trusted (spendable) balance in coins.
    #[method(name = "getbalance")]
    async fn get_balance(&self) -> RpcResult<Value>;

    /// The wallet's unspent outputs with `minconf` (default 1) to
    /// `maxconf` (default 9,999,999) confirmations.
    #[method(name = "listunspent")]
    async fn list_unspent(
        &self,
        minconf: Option<u64>,
        maxconf: Option<u64>,
    ) -> RpcResult<Vec<UnspentOutput>>;

    /// The last `count` (default 10) wallet entries after skipping `skip`,
    /// oldest first, mempool last; the label is accepted and ignored.
    #[method(name = "listtransactions")]
    async fn list_transactions(
        &self,
        label: Option<String>,
        count: Option<usize>,
        skip: Option<usize>,
    ) -> RpcResult<Vec<Value>>;

    /// Pays `amount` coins (a number or a decimal string) to `address`;
    /// returns the txid.
    #[method(name = "sendtoaddress")]
    async fn send_to_address(&self, address: String, amount: Value) -> RpcResult<String>;

    #[method(name = "validateaddress")]
    async fn validate_address(&self, address: String) -> RpcResult<AddressValidation>;
}
