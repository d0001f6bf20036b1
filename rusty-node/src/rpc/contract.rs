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

/// Coins (a decimal string, up to 18 decimals) as 32-byte big-endian
/// wei-units.
pub fn coins_to_wei(text: &str) -> Result<[u8; 32], String> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 18 || whole.is_empty() && frac.is_empty() {
        return Err(format!("invalid amount {text:?} (at most 18 decimals)"));
    }
    let wei: u128 = format!("{whole}{frac:0<18}")
        .parse()
        .map_err(|_| format!("invalid amount {text:?}"))?;
    Ok(U256::from(wei).to_be_bytes())
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

    async fn address(&self) -> RpcResult<String> {
        self.0
            .with_state(|s| {
                let w = s.wallet().ok_or(rusty_core::state::SendError::NoWallet)?;
                let key = w.evm_key().map_err(rusty_core::state::SendError::Wallet)?;
                Ok(rusty_core::contracts::hex(&key.address()))
            })
            .await?
            .map_err(super::wallet::send_error)
    }

    async fn send(
        &self,
        to: Option<String>,
        data: String,
        value: Option<String>,
        gas: Option<u64>,
    ) -> RpcResult<String> {
        let evm = self.0.network.params().evm.ok_or_else(|| {
            rpc_error(
                codes::MISC_ERROR,
                format!("contracts are not active on {}", self.0.network),
            )
        })?;
        let to = to.as_deref().map(parse_eth_address).transpose()?;
        let input = hex::decode(data.trim_start_matches("0x"))
            .map_err(|_| rpc_error(codes::INVALID_PARAMETER, "data is not hex"))?;
        let value = match value.as_deref() {
            Some(v) => coins_to_wei(v).map_err(|e| rpc_error(codes::TYPE_ERROR, e))?,
            None => [0; 32],
        };
        let call = rusty_vm::evm::EvmCall {
            caller: [0; 20],
            to,
            value,
            input: input.clone(),
            gas_limit: evm.block_gas_limit,
            gas_price: 0,
            max_priority_fee: None,
            nonce: 0,
            // Estimated as an unpriced legacy call, as eth_estimateGas runs
            // one without fees.
            tx_type: 0,
            access_list: Vec::new(),
            simulate: true,
        };
        // Key, nonce and gas from one state.
        let (key, nonce, gas) = self
            .0
            .with_state(move |s| {
                let w = s.wallet().ok_or_else(|| {
                    super::wallet::send_error(rusty_core::state::SendError::NoWallet)
                })?;
                let key = w.evm_key().map_err(|e| {
                    super::wallet::send_error(rusty_core::state::SendError::Wallet(e))
                })?;
                let nonce = s
                    .eth_pending_nonce(&key.address())
                    .map_err(|e| rpc_error(codes::DATABASE_ERROR, e.to_string()))?;
                let gas = match gas {
                    Some(g) => g,
                    None => {
                        let tip = (s.chain().height(), s.chain().tip());
                        let mut c = call;
                        c.caller = key.address();
                        super::eth::estimate(s, &evm, &tip.1, tip.0, &c, false)?.saturating_mul(6)
                            / 5
                    }
                };
                Ok::<_, jsonrpsee::types::ErrorObjectOwned>((key, nonce, gas))
            })
            .await??;
        let raw = rusty_crypto::eth::tx::EthTxFields {
            tx_type: rusty_crypto::eth::tx::EthTxType::DynamicFee,
            chain_id: Some(evm.chain_id),
            nonce,
            max_priority_fee_per_gas: 0,
            max_fee_per_gas: u128::from(evm.base_fee) * 2,
            gas_limit: gas.min(evm.block_gas_limit),
            to,
            value,
            input,
            access_list: Vec::new(),
        }
        .sign(&key)
        .map_err(|e| rpc_error(codes::WALLET_ERROR, e.to_string()))?;
        super::eth::submit_raw(&self.0, raw).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coins_become_wei() {
        let wei = |s: &str| U256::from_be_bytes(coins_to_wei(s).unwrap());
        assert_eq!(wei("1"), U256::from(10u64).pow(U256::from(18u64)));
        assert_eq!(wei("0.5"), U256::from(500_000_000_000_000_000u128));
        assert_eq!(wei("0.000000000000000001"), U256::from(1u64));
        assert!(coins_to_wei("0.0000000000000000001").is_err());
        assert!(coins_to_wei("one").is_err());
        assert!(coins_to_wei(".").is_err());
    }

    #[test]
    fn wei_reads_as_coins() {
        assert_eq!(format_wei(U256::ZERO), "0");
        assert_eq!(format_wei(U256::from(10u64).pow(U256::from(18u64))), "1");
        assert_eq!(format_wei(U256::from(1_500_000_000_000_000_000u128)), "1.5");
        assert_eq!(format_wei(U256::from(1u64)), "0.000000000000000001");
    }
}
