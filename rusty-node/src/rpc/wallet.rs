//! Wallet: `getnewaddress`, `getbalance`, `getbalances`, `listunspent`,
//! `listtransactions`, `sendtoaddress`, `validateaddress`.

use std::sync::Arc;

use jsonrpsee::{
    core::{async_trait, RpcResult},
    types::ErrorObjectOwned,
};
use rusty_shared_types::{Address, AddressError, Amount};
use serde_json::{json, Value};

use super::{
    api::wallet::{
        AddressValidation, Balances, LastProcessedBlock, MineBalances, UnspentOutput,
        WalletApiServer,
    },
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
                    lastprocessedblock: LastProcessedBlock {
                        hash: s.chain().tip().to_string(),
                        height,
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
                        // As Core's: immature coinbase outputs and coins a
                        // pool transaction spends are not listed.
                        let immature = c.is_coinbase && conf < maturity;
                        if immature || s.mempool().spender(&c.outpoint).is_some() {
                            return None;
                        }
                        Some(UnspentOutput {
                            txid: c.outpoint.txid.to_string(),
                            vout: c.outpoint.vout,
                            address: Address::from_lock_script(network, &c.output.lock)
                                .map(|a| a.to_string()),
                            label: String::new(),
                            script_pub_key: hex::encode(c.output.lock.as_bytes()),
                            amount: render::amount(c.output.value),
                            confirmations: conf,
                            spendable: true,
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

/// Where a listed transaction stands.
struct Listed<'a> {
    tx: &'a rusty_shared_types::Transaction,
    /// The wallet paid for it (its inputs were ours).
    debit_ours: bool,
    /// The fee, when the wallet paid it.
    fee: Option<Amount>,
    conf: u64,
    /// Hash, height and time of its block, when confirmed.
    block: Option<(String, u64, u64)>,
    /// When this node first saw it.
    received: u64,
}

/// One entry per wallet-relevant output, newest last (Bitcoin Core's order),
/// mempool transactions after confirmed ones, in Core's shape.
fn list_transactions(s: &NodeState, w: &Wallet, count: usize, skip: usize) -> Vec<Value> {
    let network = s.params().network;
    let height = s.chain().height();
    let maturity = s.params().coinbase_maturity;
    // Entries of one transaction, in output order.
    let entries_of = |l: Listed<'_>| {
        let mut out = Vec::new();
        let tx = l.tx;
        let txid = tx.txid().to_string();
        // As Core's: when the wallet paid, every output but change is a
        // send; every output to the wallet is a receive (a payment to
        // oneself is both).
        let mut sends = Vec::new();
        let mut receives = Vec::new();
        for (n, o) in tx.outputs.iter().enumerate() {
            if l.debit_ours {
                if w.is_change(&o.lock) {
                    continue;
                }
                sends.push(n);
            }
            if w.is_mine(&o.lock) {
                receives.push(n);
            }
        }
        let entries = sends
            .into_iter()
            .map(|n| (n, "send"))
            .chain(receives.into_iter().map(|n| {
                let category = match (tx.is_coinbase(), l.conf >= maturity) {
                    (false, _) => "receive",
                    (true, true) => "generate",
                    (true, false) => "immature",
                };
                (n, category)
            }));
        for (n, category) in entries {
            let o = &tx.outputs[n];
            let sign = if category == "send" { -1.0 } else { 1.0 };
            let mut v = json!({
                "category": category,
                "amount": sign * o.value.as_coins_f64(),
                "label": "",
                "vout": n,
                "confirmations": l.conf,
                "txid": txid,
                "wtxid": tx.wtxid().to_string(),
                "walletconflicts": [],
                "mempoolconflicts": [],
                "time": l.received,
                "timereceived": l.received,
                // Every unconfirmed transaction can be replaced (full RBF).
                "bip125-replaceable": if l.conf == 0 { "yes" } else { "no" },
            });
            if let Some(a) = Address::from_lock_script(network, &o.lock) {
                v["address"] = json!(a.to_string());
            }
            if category == "send" {
                if let Some(fee) = l.fee {
                    v["fee"] = json!(-fee.as_coins_f64());
                }
                v["abandoned"] = json!(false);
            }
            if tx.is_coinbase() {
                v["generated"] = json!(true);
            }
            match &l.block {
                Some((hash, h, time)) => {
                    v["blockhash"] = json!(hash);
                    v["blockheight"] = json!(h);
                    v["blocktime"] = json!(time);
                }
                None => v["trusted"] = json!(l.debit_ours),
            }
            out.push(v);
        }
        out
    };
    // The list is the history then the mempool, oldest first; the result
    // is its last `count` entries before the last `skip`. Walk it from the
    // newest end and stop once those are found, so a wallet with a long
    // history (every coinbase of a miner) answers as fast as a new one.
    let needed = skip.saturating_add(count);
    let mut newest_first: Vec<Value> = Vec::new();
    let pool: Vec<_> = s.mempool().entries().collect();
    for e in pool.iter().rev() {
        if newest_first.len() >= needed {
            break;
        }
        let ours = !e.spent.is_empty() && e.spent.iter().all(|o| w.is_mine(&o.lock));
        let entries = entries_of(Listed {
            tx: &e.tx,
            debit_ours: ours,
            fee: Some(e.fee),
            conf: 0,
            block: None,
            received: e.time,
        });
        newest_first.extend(entries.into_iter().rev());
    }
    for t in w.history().iter().rev() {
        if newest_first.len() >= needed {
            break;
        }
        let conf = height.saturating_sub(t.height).saturating_add(1);
        let debit_ours = t.debit.units() > 0;
        let paid = Amount::checked_sum(t.tx.outputs.iter().map(|o| o.value)).ok();
        let entries = entries_of(Listed {
            tx: &t.tx,
            debit_ours,
            fee: paid.and_then(|p| t.debit.checked_sub(p).ok()),
            conf,
            block: Some((t.block.to_string(), t.height, t.time)),
            received: t.time,
        });
        newest_first.extend(entries.into_iter().rev());
    }
    let mut listed: Vec<Value> = newest_first.into_iter().skip(skip).take(count).collect();
    listed.reverse();
    // The position in the block costs a database read: only for the
    // entries returned, not the whole history.
    for v in &mut listed {
        if v.get("blockhash").is_none() {
            continue;
        }
        let location = v["txid"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .and_then(|txid| s.chain().tx_location(&txid).ok().flatten());
        if let Some(l) = location {
            v["blockindex"] = json!(l.index);
        }
    }
    listed
}
