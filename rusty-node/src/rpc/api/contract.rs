//! The account world from our own wallet: `contract_deposit` moves coins
//! from the wallet into an EVM account, `contract_balance` reads one.
//! (Deploying and calling go through the Ethereum methods, signed by the
//! caller's Ethereum key.)

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
}
