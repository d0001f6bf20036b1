//! The account world from our own wallet: `contract_deposit` moves coins
//! from the wallet into an EVM account, `contract_balance` reads one, and
//! the wallet's own EVM account (its key derived from the wallet's seed)
//! deploys and calls with `contract_send`.

use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `contract_balance`'s result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractBalance {
    /// `0x…`, lower case.
    pub address: String,
    /// Coins, with up to 18 decimals.
    pub balance: String,
    /// Wei-units (10^18 per coin), decimal.
    pub wei: String,
    pub nonce: u64,
    /// Whether the account has code (a contract).
    pub contract: bool,
}

#[rpc(server, client)]
pub trait ContractApi {
    /// Pays `amount` coins from the wallet into the account `address`
    /// (`0x` and 40 hex digits) through a deposit output; the account is
    /// credited when the transaction is mined. Returns the txid.
    #[method(name = "contract_deposit")]
    async fn deposit(&self, address: String, amount: Value) -> RpcResult<String>;

    /// The account `address` at the tip.
    #[method(name = "contract_balance")]
    async fn balance(&self, address: String) -> RpcResult<ContractBalance>;

    /// The address of the wallet's EVM account.
    #[method(name = "contract_address")]
    async fn address(&self) -> RpcResult<String>;

    /// Signs an Ethereum transaction with the wallet's EVM key and sends
    /// it: a creation when `to` is null, else a call of `to`, with `data`
    /// (hex) and `value` (coins, up to 18 decimals); gas is the estimate
    /// plus 20 % unless given. Returns the transaction's keccak256 hash.
    #[method(name = "contract_send")]
    async fn send(
        &self,
        to: Option<String>,
        data: String,
        value: Option<String>,
        gas: Option<u64>,
    ) -> RpcResult<String>;
}
