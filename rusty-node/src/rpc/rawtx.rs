//! Raw transactions: `getrawtransaction`, `decoderawtransaction`,
//! `sendrawtransaction`.

use std::sync::Arc;

use jsonrpsee::{
    core::{async_trait, RpcResult},
    types::ErrorObjectOwned,
};
use rusty_shared_types::{decode_exact, Encode, Transaction};
use serde_json::{json, Value};

use super::{
    api::rawtx::RawTxApiServer, codes, json as render, parse_hash, rpc_error, running, RpcContext,
};
use rusty_core::{state::TxRejection, validation::ValidationError};

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

/// `verbose` of `getrawtransaction`: a boolean, or a number (non-zero is
/// true), as Bitcoin Core accepts.
fn verbose_flag(v: Option<Value>) -> Result<bool, ErrorObjectOwned> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(Value::Number(n)) => Ok(n.as_u64().unwrap_or(0) > 0),
        Some(_) => Err(rpc_error(
            codes::TYPE_ERROR,
            "verbose must be a boolean or number",
        )),
    }
}

#[async_trait]
impl RawTxApiServer for RawTxRpc {
    async fn get_raw_transaction(&self, txid: String, verbose: Option<Value>) -> RpcResult<Value> {
        let verbose = verbose_flag(verbose)?;
        let txid = parse_hash(&txid, "txid")?;
        self.0
            .with_state(move |s| {
                let network = s.params().network;
                if let Some(e) = s.mempool().get(&txid) {
                    return Ok(if verbose {
                        let mut v = render::transaction(&e.tx, network);
                        v["hex"] = json!(hex::encode(e.tx.encode()));
                        v
                    } else {
                        json!(hex::encode(e.tx.encode()))
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
                let tx = block.txs.get(loc.index as usize).ok_or_else(not_found)?;
                if !verbose {
                    return Ok(json!(hex::encode(tx.encode())));
                }
                let mut v = render::transaction(tx, network);
                v["hex"] = json!(hex::encode(tx.encode()));
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
        Ok(render::transaction(&tx, self.0.network))
    }

    async fn send_raw_transaction(&self, hexstring: String) -> RpcResult<String> {
        let tx = decode_tx_hex(&hexstring)?;
        running(self.0.chain.accept_transaction(tx).await)?
            .map(|txid| txid.to_string())
            .map_err(|e| rejection_error(&e))
    }
}
