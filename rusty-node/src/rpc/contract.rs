//! `contract_deposit` and `contract_balance` ([`super::api::contract`]).

use std::sync::Arc;

use jsonrpsee::core::{async_trait, RpcResult};
use ruint::aliases::U256;
use rusty_shared_types::{evm::deposit_script, TxOut};

use super::{
    api::contract::{ContractApiServer, ContractBalance},
    codes, parse_amount, rpc_error, running, RpcContext,
};

#[derive(Debug, Clone)]
pub struct ContractRpc(pub Arc<RpcContext>);

fn parse_eth_address(s: &str) -> RpcResult<[u8; 20]> {
    rusty_crypto::eth::parse_address(s).map_err(|_| {
        rpc_error(
            codes::INVALID_ADDRESS_OR_KEY,
            format!("Invalid address: {s:?} is not 0x and 40 hex digits"),
        )
    })
}

/// Wei-units as coins: the integer part, then up to 18 decimals without
/// trailing zeros.
pub fn format_wei(wei: U256) -> String {
    let unit = U256::from(10u64).pow(U256::from(18u64));
    let (whole, frac) = (wei / unit, wei % unit);
    if frac.is_zero() {
        return whole.to_string();
    }
    let frac = format!("{frac:0>18}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[async_trait]
impl ContractApiServer for ContractRpc {
    async fn deposit(&self, address: String, amount: serde_json::Value) -> RpcResult<String> {
        let address = parse_eth_address(&address)?;
        if self.0.network.params().evm.is_none() {
            return Err(rpc_error(
                codes::MISC_ERROR,
                format!("contracts are not active on {}", self.0.network),
            ));
        }
        let amount = parse_amount(&amount)?;
        if amount.units() == 0 {
            return Err(rpc_error(codes::TYPE_ERROR, "Invalid amount for send"));
        }
        let payment = vec![TxOut {
            value: amount,
            lock: deposit_script(&address),
        }];
        running(
            self.0
                .chain
                .send_special(payment, Box::new(|_| None), self.0.wallet_fee_rate)
                .await,
        )?
        .map(|txid| txid.to_string())
        .map_err(super::wallet::send_error)
    }

    async fn balance(&self, address: String) -> RpcResult<ContractBalance> {
        let a = parse_eth_address(&address)?;
        self.0
            .with_state(move |s| {
                let world = s.chain().accounts();
                let account = world.account(&a).map_err(|e| e.to_string())?;
                let (nonce, wei, contract) = account.map_or((0, U256::ZERO, false), |acc| {
                    (
                        acc.nonce,
                        U256::from_be_bytes(acc.balance),
                        acc.code_hash != rusty_storage::state::KECCAK_EMPTY,
                    )
                });
                Ok::<_, String>(ContractBalance {
                    address: rusty_core::contracts::hex(&a),
                    balance: format_wei(wei),
                    wei: wei.to_string(),
                    nonce,
                    contract,
                })
            })
            .await?
            .map_err(|e| rpc_error(codes::DATABASE_ERROR, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wei_reads_as_coins() {
        assert_eq!(format_wei(U256::ZERO), "0");
        assert_eq!(format_wei(U256::from(10u64).pow(U256::from(18u64))), "1");
        assert_eq!(format_wei(U256::from(1_500_000_000_000_000_000u128)), "1.5");
        assert_eq!(format_wei(U256::from(1u64)), "0.000000000000000001");
    }
}
