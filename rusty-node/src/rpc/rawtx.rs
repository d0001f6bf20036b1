//! Raw transactions: `getrawtransaction`, `decoderawtransaction`,
//! `sendrawtransaction`.

use std::sync::Arc;

use jsonrpsee::{
    core::{async_trait, RpcResult},
    types::ErrorObjectOwned,
};
use rusty_shared_types::{decode_exact, Amount, Block, Encode, Transaction};
use serde_json::{json, Value};

use super::{
    api::rawtx::RawTxApiServer, codes, json as render, parse_hash, rpc_error, running, RpcContext,
};
use rusty_core::{
    mempool::MempoolEntry,
    state::{NodeState, TxRejection},
    validation::ValidationError,
};

/// Decodes a hex transaction, with Bitcoin Core's error for bad input.
pub fn decode_tx_hex(hex_str: &str) -> Result<Transaction, ErrorObjectOwned> {
    let bytes = hex::decode(hex_str.trim())
        .map_err(|_| rpc_error(codes::DESERIALIZATION_ERROR, "TX decode failed: not hex"))?;
    decode_exact::<Transaction>(&bytes).map_err(|e| {
        rpc_error(
            codes::DESERIALIZATION_ERROR,
            format!("TX decode failed: {e}"),
        )
    })
}

/// Maps a refused transaction to Bitcoin Core's codes and reject reasons.
pub fn rejection_error(e: &TxRejection) -> ErrorObjectOwned {
    match e {
        TxRejection::Invalid(v @ ValidationError::MissingOrSpent(_)) => {
            rpc_error(codes::VERIFY_ERROR, format!("{}: {v}", v.reject_reason()))
        }
        TxRejection::Invalid(v) => rpc_error(
            codes::VERIFY_REJECTED,
            format!("{}: {v}", v.reject_reason()),
        ),
        TxRejection::Policy(p) => rpc_error(codes::VERIFY_REJECTED, p.to_string()),
        TxRejection::AlreadyInChain(_) => rpc_error(codes::VERIFY_ALREADY_IN_CHAIN, e.to_string()),
        TxRejection::Chain(c) => rpc_error(codes::DATABASE_ERROR, c.to_string()),
    }
}

/// Implements [`RawTxApiServer`] over the node's RPC context.
#[derive(Debug, Clone)]
pub struct RawTxRpc(pub Arc<RpcContext>);

/// `verbosity` of `getrawtransaction`: 0 (hex), 1 (decoded) or 2 (decoded
/// with the fee and each input's prevout); a boolean means 0 or 1, as
/// Bitcoin Core accepts.
fn verbosity(v: Option<Value>) -> Result<u8, ErrorObjectOwned> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Bool(b)) => Ok(u8::from(b)),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if v <= 0 => Ok(0),
            Some(1) => Ok(1),
            Some(_) => Ok(2),
            None => Err(rpc_error(codes::TYPE_ERROR, "verbosity must be an integer")),
        },
        Some(other) => Err(super::params::wrong_type(2, "verbosity", &other, "number")),
    }
}

/// The outputs a pool transaction spends, as `vin[].prevout`: the chain's
/// coin when there is one, else a pool parent's output.
fn pool_prevouts(s: &NodeState, e: &MempoolEntry) -> Vec<render::Prevout> {
    e.tx.inputs
        .iter()
        .zip(&e.spent)
        .map(|(i, out)| match s.chain().coin(&i.prevout).ok().flatten() {
            Some(c) => render::Prevout {
                generated: c.is_coinbase,
                height: c.height,
                output: c.output,
            },
            None => render::Prevout {
                generated: false,
                height: render::MEMPOOL_HEIGHT,
                output: out.clone(),
            },
        })
        .collect()
}

/// The outputs the `index`th transaction of a connected block spent, from
/// the block's undo data (coins in input order, coinbase excluded).
fn block_prevouts(s: &NodeState, block: &Block, index: usize) -> Option<Vec<render::Prevout>> {
    let undo = s.chain().block_undo(&block.header.hash()).ok().flatten()?;
    let before: usize = block
        .txs
        .iter()
        .take(index)
        .filter(|t| !t.is_coinbase())
        .map(|t| t.inputs.len())
        .sum();
    let tx = block.txs.get(index)?;
    let coins = undo
        .spent
        .get(before..before.checked_add(tx.inputs.len())?)?;
    Some(
        coins
            .iter()
            .map(|c| render::Prevout {
                generated: c.is_coinbase,
                height: c.height,
                output: c.output.clone(),
            })
            .collect(),
    )
}

/// Extras with `hex`, as getrawtransaction's decoded forms have it.
fn with_hex(prevouts: Option<Vec<render::Prevout>>) -> render::TxExtras {
    render::TxExtras {
        hex: true,
        fee: None,
        prevouts,
    }
}

/// The fee a transaction paid, given what it spent.
fn fee_of(tx: &Transaction, prevouts: &[render::Prevout]) -> Option<Amount> {
    let spent = Amount::checked_sum(prevouts.iter().map(|p| p.output.value)).ok()?;
    let paid = Amount::checked_sum(tx.outputs.iter().map(|o| o.value)).ok()?;
    spent.checked_sub(paid).ok()
}

#[async_trait]
impl RawTxApiServer for RawTxRpc {
    async fn get_raw_transaction(&self, txid: String, verbose: Option<Value>) -> RpcResult<Value> {
        let verbosity = verbosity(verbose)?;
        let txid = parse_hash(&txid, "txid")?;
        self.0
            .with_state(move |s| {
                let network = s.params().network;
                if let Some(e) = s.mempool().get(&txid) {
                    return Ok(match verbosity {
                        0 => json!(hex::encode(e.tx.encode())),
                        1 => render::transaction(&e.tx, network, &with_hex(None)),
                        _ => {
                            let mut extras = with_hex(Some(pool_prevouts(s, e)));
                            extras.fee = Some(e.fee);
                            render::transaction(&e.tx, network, &extras)
                        }
                    });
                }
                let not_found = || {
                    rpc_error(
                        codes::INVALID_ADDRESS_OR_KEY,
                        "No such mempool or blockchain transaction",
                    )
                };
                let loc = s
                    .chain()
                    .tx_location(&txid)
                    .map_err(|e| rpc_error(codes::DATABASE_ERROR, e.to_string()))?
                    .ok_or_else(not_found)?;
                let block = s
                    .chain()
                    .block(&loc.block)
                    .map_err(|e| rpc_error(codes::DATABASE_ERROR, e.to_string()))?
                    .ok_or_else(not_found)?;
                let index = loc.index as usize;
                let tx = block.txs.get(index).ok_or_else(not_found)?;
                if verbosity == 0 {
                    return Ok(json!(hex::encode(tx.encode())));
                }
                let mut extras = with_hex(None);
                if verbosity >= 2 && !tx.is_coinbase() {
                    if let Some(prevouts) = block_prevouts(s, &block, index) {
                        extras.fee = fee_of(tx, &prevouts);
                        extras.prevouts = Some(prevouts);
                    }
                }
                let mut v = render::transaction(tx, network, &extras);
                v["blockhash"] = json!(loc.block.to_string());
                if let Some(entry) = s.chain().entry(&loc.block) {
                    v["confirmations"] = json!(s
                        .chain()
                        .height()
                        .saturating_sub(entry.height)
                        .saturating_add(1));
                    v["time"] = json!(entry.header.time);
                    v["blocktime"] = json!(entry.header.time);
                }
                Ok(v)
            })
            .await?
    }

    async fn decode_raw_transaction(&self, hexstring: String) -> RpcResult<Value> {
        let tx = decode_tx_hex(&hexstring)?;
        Ok(render::transaction(
            &tx,
            self.0.network,
            &render::TxExtras::default(),
        ))
    }

    async fn send_raw_transaction(&self, hexstring: String) -> RpcResult<String> {
        let tx = decode_tx_hex(&hexstring)?;
        running(self.0.chain.accept_transaction(tx).await)?
            .map(|txid| txid.to_string())
            .map_err(|e| rejection_error(&e))
    }
}
