//! Wallet: `getnewaddress`, `getbalance`, `getbalances`, `listunspent`,
//! `listtransactions`, `sendtoaddress`, `validateaddress`.

use std::sync::Arc;

use jsonrpsee::{
    core::{async_trait, RpcResult},
    types::ErrorObjectOwned,
};
use rusty_shared_types::{Address, AddressError};
use serde_json::{json, Value};

use super::{
    api::wallet::{AddressValidation, Balances, MineBalances, UnspentOutput, WalletApiServer},
    codes, json as render, parse_amount, rpc_error, running, RpcContext,
};
use rusty_core::{
    state::{NodeState, SendError},
    wallet::{Wallet, WalletError},
};

fn no_wallet() -> ErrorObjectOwned {
    rpc_error(
        codes::WALLET_NOT_FOUND,
        "No wallet is loaded. Start the node with --wallet (on by default with --dev).",
    )
}

/// Maps a failed wallet payment (also masternode special transactions) to
/// Bitcoin Core's codes.
pub(crate) fn send_error(e: SendError) -> ErrorObjectOwned {
    match e {
        SendError::NoWallet => no_wallet(),
        SendError::Wallet(w @ WalletError::InsufficientFunds { .. }) => {
            rpc_error(codes::WALLET_INSUFFICIENT_FUNDS, w.to_string())
        }
        SendError::Wallet(w) => rpc_error(codes::WALLET_ERROR, w.to_string()),
        SendError::Rejected(r) => super::rawtx::rejection_error(&r),
    }
}

pub(super) fn address_error(e: AddressError) -> ErrorObjectOwned {
    rpc_error(
        codes::INVALID_ADDRESS_OR_KEY,
        format!("Invalid address: {e}"),
    )
}

/// Implements [`WalletApiServer`] over the node's RPC context.
#[derive(Debug, Clone)]
pub struct WalletRpc(pub Arc<RpcContext>);

#[async_trait]
impl WalletApiServer for WalletRpc {
    async fn get_new_address(&self) -> RpcResult<String> {
        running(self.0.chain.new_address().await)?
            .map(|a| a.to_string())
            .map_err(send_error)
    }

    async fn get_balances(&self) -> RpcResult<Balances> {
        self.0
            .with_state(|s| {
                let (height, maturity) = (s.chain().height(), s.params().coinbase_maturity);
                let w = s.wallet().ok_or_else(no_wallet)?;
                let b = w.balances(height, maturity, s.mempool());
                Ok(Balances {
                    mine: MineBalances {
                        trusted: render::amount(b.trusted),
                        untrusted_pending: render::amount(b.untrusted_pending),
                        immature: render::amount(b.immature),
                    },
                })
            })
            .await?
    }

    async fn get_balance(&self) -> RpcResult<Value> {
        self.0
            .with_state(|s| {
                let (height, maturity) = (s.chain().height(), s.params().coinbase_maturity);
                let w = s.wallet().ok_or_else(no_wallet)?;
                Ok(render::amount(
                    w.balances(height, maturity, s.mempool()).trusted,
                ))
            })
            .await?
    }

    async fn list_unspent(
        &self,
        minconf: Option<u64>,
        maxconf: Option<u64>,
    ) -> RpcResult<Vec<UnspentOutput>> {
        let minconf = minconf.unwrap_or(1);
        let maxconf = maxconf.unwrap_or(9_999_999);
        self.0
            .with_state(move |s| {
                let height = s.chain().height();
                let maturity = s.params().coinbase_maturity;
                let network = s.params().network;
                let w = s.wallet().ok_or_else(no_wallet)?;
                Ok(w.coins()
                    .filter_map(|c| {
                        let conf = height.saturating_sub(c.height).saturating_add(1);
                        if conf < minconf || conf > maxconf {
                            return None;
                        }
                        let spendable = (!c.is_coinbase || conf >= maturity)
                            && s.mempool().spender(&c.outpoint).is_none();
                        Some(UnspentOutput {
                            txid: c.outpoint.txid.to_string(),
                            vout: c.outpoint.vout,
                            address: Address::from_lock_script(network, &c.output.lock)
                                .map(|a| a.to_string()),
                            script_pub_key: hex::encode(c.output.lock.as_bytes()),
                            amount: render::amount(c.output.value),
                            confirmations: conf,
                            spendable,
                            solvable: true,
                            safe: true,
                        })
                    })
                    .collect())
            })
            .await?
    }

    async fn list_transactions(
        &self,
        _label: Option<String>,
        count: Option<usize>,
        skip: Option<usize>,
    ) -> RpcResult<Vec<Value>> {
        let count = count.unwrap_or(10);
        let skip = skip.unwrap_or(0);
        self.0
            .with_state(move |s| {
                let w = s.wallet().ok_or_else(no_wallet)?;
                Ok(list_transactions(s, w, count, skip))
            })
            .await?
    }

    async fn send_to_address(&self, address: String, amount: Value) -> RpcResult<String> {
        let address = Address::parse_for(&address, self.0.network).map_err(address_error)?;
        let amount = parse_amount(&amount)?;
        if amount.units() == 0 {
            return Err(rpc_error(codes::TYPE_ERROR, "Invalid amount for send"));
        }
        let fee_rate = self.0.wallet_fee_rate;
        running(
            self.0
                .chain
                .send_to_address(address, amount, fee_rate)
                .await,
        )?
        .map(|txid| txid.to_string())
        .map_err(send_error)
    }

    async fn validate_address(&self, address: String) -> RpcResult<AddressValidation> {
        Ok(match Address::parse_for(&address, self.0.network) {
            Ok(a) => AddressValidation {
                isvalid: true,
                address: Some(a.to_string()),
                script_pub_key: Some(hex::encode(a.lock_script().as_bytes())),
                isscript: Some(false),
                iswitness: Some(false),
                error: None,
            },
            Err(e) => AddressValidation {
                isvalid: false,
                address: None,
                script_pub_key: None,
                isscript: None,
                iswitness: None,
                error: Some(e.to_string()),
            },
        })
    }
}

/// One entry per wallet-relevant output, newest last (Bitcoin Core's order),
/// mempool transactions after confirmed ones.
fn list_transactions(s: &NodeState, w: &Wallet, count: usize, skip: usize) -> Vec<Value> {
    let network = s.params().network;
    let height = s.chain().height();
    let maturity = s.params().coinbase_maturity;
    let mut out = Vec::new();
    let mut push_tx = |tx: &rusty_shared_types::Transaction,
                       debit_ours: bool,
                       conf: u64,
                       block: Option<(String, u64, u64)>| {
        let txid = tx.txid().to_string();
        for (n, o) in tx.outputs.iter().enumerate() {
            let mine = w.is_mine(&o.lock);
            let category = if tx.is_coinbase() {
                if !mine {
                    continue;
                }
                if conf >= maturity {
                    "generate"
                } else {
                    "immature"
                }
            } else if mine && !debit_ours {
                "receive"
            } else if !mine && debit_ours {
                "send"
            } else {
                // Change back to ourselves is not listed, like Bitcoin Core.
                continue;
            };
            let sign = if category == "send" { -1.0 } else { 1.0 };
            let mut v = json!({
                "category": category,
                "amount": sign * o.value.as_coins_f64(),
                "vout": n,
                "confirmations": conf,
                "txid": txid,
            });
            if let Some(a) = Address::from_lock_script(network, &o.lock) {
                v["address"] = json!(a.to_string());
            }
            if let Some((hash, h, time)) = &block {
                v["blockhash"] = json!(hash);
                v["blockheight"] = json!(h);
                v["blocktime"] = json!(time);
                v["time"] = json!(time);
            }
            out.push(v);
        }
    };
    for t in w.history() {
        let conf = height.saturating_sub(t.height).saturating_add(1);
        push_tx(
            &t.tx,
            t.debit.units() > 0,
            conf,
            Some((t.block.to_string(), t.height, t.time)),
        );
    }
    for e in s.mempool().entries() {
        let ours = !e.spent.is_empty() && e.spent.iter().all(|o| w.is_mine(&o.lock));
        push_tx(&e.tx, ours, 0, None);
    }
    let end = out.len().saturating_sub(skip);
    let start = end.saturating_sub(count);
    out.drain(start..end).collect()
}
