//! Mining: `getblocktemplate`, `submitblock`, `generatetoaddress`,
//! `getmininginfo`.

use std::sync::atomic::Ordering;

use jsonrpsee::RpcModule;
use rusty_shared_types::{decode_exact, Address, Block, Encode};
use serde_json::{json, Value};

use super::{codes, json as render, method, rpc_error, running, RpcContext};
use crate::service::GenerateError;
use rusty_core::{
    chain::{BlockAcceptance, ChainError},
    validation::ValidationError,
};

/// Bitcoin Core's default `maxtries` for `generatetoaddress`.
const DEFAULT_MAX_TRIES: u64 = 1_000_000;

pub fn register(m: &mut RpcModule<RpcContext>) {
    method(m, "getblocktemplate", |_, ctx| async move {
        ctx.with_state(|s| {
            // The template's own coinbase pays nobody useful: miners build
            // theirs from `coinbasevalue` and `height` (with the coinbase
            // payload) and recompute the merkle root.
            let t = s.block_template(
                &rusty_shared_types::Script::default(),
                rusty_core::now(),
                Vec::new(),
            );
            let txs: Vec<Value> = t
                .block
                .txs
                .iter()
                .skip(1)
                .map(|tx| {
                    let fee = s
                        .mempool()
                        .get(&tx.txid())
                        .map(|e| e.fee)
                        .unwrap_or_default();
                    json!({
                        "data": hex::encode(tx.encode()),
                        "txid": tx.txid().to_string(),
                        "hash": tx.wtxid().to_string(),
                        "fee": fee.units(),
                        "size": tx.size(),
                    })
                })
                .collect();
            let coinbase_value = t.block.txs[0].outputs[0].value;
            json!({
                "version": t.block.header.version,
                "previousblockhash": t.block.header.prev_hash.to_string(),
                "transactions": txs,
                "coinbasevalue": coinbase_value.units(),
                "target": hex::encode(t.target.to_be_bytes::<32>()),
                "mintime": t.min_time,
                "curtime": t.block.header.time,
                "mutable": ["time", "transactions", "prevblock"],
                "noncerange": "0000000000000000ffffffffffffffff",
                "sizelimit": s.params().max_block_size,
                "bits": format!("{:08x}", t.block.header.bits),
                "height": t.height,
            })
        })
        .await
    });
    method(m, "submitblock", |p, ctx| async move {
        let hex_str: String = p.sequence().next()?;
        let bytes = hex::decode(hex_str.trim())
            .map_err(|_| rpc_error(codes::DESERIALIZATION_ERROR, "Block decode failed: not hex"))?;
        let block: Block = decode_exact(&bytes).map_err(|e| {
            rpc_error(
                codes::DESERIALIZATION_ERROR,
                format!("Block decode failed: {e}"),
            )
        })?;
        match running(ctx.chain.submit_block(block).await)? {
            Ok(BlockAcceptance::BecameTip) => Ok(Value::Null),
            Ok(BlockAcceptance::SideBranch) => Ok(json!("inconclusive")),
            Err(ChainError::Invalid(v)) => Ok(json!(submit_reason(&v))),
            Err(e) => Err(rpc_error(codes::DATABASE_ERROR, e.to_string())),
        }
    });
    method(m, "generatetoaddress", |p, ctx| async move {
        let mut seq = p.sequence();
        let n: u64 = seq.next()?;
        let addr: String = seq.next()?;
        let max_tries: u64 = seq.optional_next()?.unwrap_or(DEFAULT_MAX_TRIES);
        let address = Address::parse_for(&addr, ctx.network).map_err(|e| {
            rpc_error(
                codes::INVALID_ADDRESS_OR_KEY,
                format!("Error: Invalid address: {e}"),
            )
        })?;
        if n > 100_000 {
            return Err(rpc_error(
                codes::INVALID_PARAMETER,
                "nblocks must be at most 100000",
            ));
        }
        match ctx.chain.generate(n, &address, max_tries).await {
            Ok(hashes) => Ok(json!(hashes
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>())),
            Err(GenerateError::Stopped(e)) => running(Err(e)),
            Err(e) => Err(rpc_error(codes::MISC_ERROR, e.to_string())),
        }
    });
    method(m, "getmininginfo", |_, ctx| async move {
        let (running, hashes, blocks) = match &ctx.miner {
            Some(st) => (
                st.running.load(Ordering::Relaxed),
                st.hashes.load(Ordering::Relaxed),
                st.blocks.load(Ordering::Relaxed),
            ),
            None => (false, 0, 0),
        };
        let threads = ctx.mine_threads;
        ctx.with_state(move |s| {
            let tip = s.chain().tip_entry();
            json!({
                "blocks": s.chain().height(),
                "bits": format!("{:08x}", tip.header.bits),
                "difficulty": render::difficulty(tip.header.bits, s.params().network),
                "pooledtx": s.mempool().len(),
                "chain": s.params().network.name(),
                "generate": running,
                "genproclimit": threads,
                "minedblocks": blocks,
                "totalhashes": hashes,
                "warnings": "",
            })
        })
        .await
    });
}

/// `submitblock`'s answer for an invalid block: Bitcoin Core returns the
/// reject reason as a string rather than an error.
fn submit_reason(v: &ValidationError) -> String {
    v.reject_reason().to_string()
}
