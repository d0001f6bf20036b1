//! Raw transactions: `getrawtransaction`, `decoderawtransaction`,
//! `sendrawtransaction`.

use jsonrpsee::{types::ErrorObjectOwned, RpcModule};
use rusty_shared_types::{decode_exact, Encode, Transaction};
use serde_json::{json, Value};

use super::{codes, json as render, method, parse_hash, rpc_error, running, RpcContext};
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

pub fn register(m: &mut RpcModule<RpcContext>) {
    method(m, "getrawtransaction", |p, ctx| async move {
        let mut seq = p.sequence();
        let txid: String = seq.next()?;
        let verbose = match seq.optional_next::<Value>()? {
            None => false,
            Some(Value::Bool(b)) => b,
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0) > 0,
            Some(_) => {
                return Err(rpc_error(
                    codes::TYPE_ERROR,
                    "verbose must be a boolean or number",
                ))
            }
        };
        let txid = parse_hash(&txid, "txid")?;
        ctx.with_state(move |s| {
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
    });
    method(m, "decoderawtransaction", |p, ctx| async move {
        let hex_str: String = p.sequence().next()?;
        let tx = decode_tx_hex(&hex_str)?;
        Ok(render::transaction(&tx, ctx.network))
    });
    method(m, "sendrawtransaction", |p, ctx| async move {
        let hex_str: String = p.sequence().next()?;
        let tx = decode_tx_hex(&hex_str)?;
        running(ctx.chain.accept_transaction(tx).await)?
            .map(|txid| json!(txid.to_string()))
            .map_err(|e| rejection_error(&e))
    });
}
