//! Chain queries: `getblockchaininfo`, `getblockcount`, `getbestblockhash`,
//! `getblockhash`, `getblockheader`, `getblock`, `gettxout`,
//! `getmempoolinfo`, `getrawmempool`, and the `newblocks` subscription.

use jsonrpsee::{RpcModule, SubscriptionMessage};
use rusty_shared_types::{Encode, OutPoint};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::{codes, json as render, method, parse_hash, rpc_error, RpcContext};

pub fn register(m: &mut RpcModule<RpcContext>) {
    method(m, "getblockchaininfo", |_, ctx| async move {
        ctx.with_state(|s| {
            let chain = s.chain();
            let tip = chain.tip_entry();
            json!({
                "chain": chain.params().network.name(),
                "blocks": chain.height(),
                "headers": chain.height(),
                "bestblockhash": chain.tip().to_string(),
                "bits": format!("{:08x}", tip.header.bits),
                "difficulty": render::difficulty(tip.header.bits, chain.params().network),
                "time": tip.header.time,
                "mediantime": chain.median_time_past(&chain.tip()),
                "verificationprogress": 1.0,
                "initialblockdownload": false,
                "chainwork": hex::encode(tip.chain_work),
                "pruned": false,
                "warnings": "",
            })
        })
        .await
    });
    method(m, "getblockcount", |_, ctx| async move {
        ctx.with_state(|s| json!(s.chain().height())).await
    });
    method(m, "getbestblockhash", |_, ctx| async move {
        ctx.with_state(|s| json!(s.chain().tip().to_string())).await
    });
    method(m, "getblockhash", |p, ctx| async move {
        let height: i64 = p.sequence().next()?;
        ctx.with_state(move |s| {
            u64::try_from(height)
                .ok()
                .and_then(|h| s.chain().hash_at(h))
                .map(|h| json!(h.to_string()))
                .ok_or_else(|| rpc_error(codes::INVALID_PARAMETER, "Block height out of range"))
        })
        .await?
    });
    method(m, "getblockheader", |p, ctx| async move {
        let mut seq = p.sequence();
        let hash: String = seq.next()?;
        let verbose: Option<bool> = seq.optional_next()?;
        let hash = parse_hash(&hash, "blockhash")?;
        ctx.with_state(move |s| {
            let entry = s
                .chain()
                .entry(&hash)
                .ok_or_else(|| rpc_error(codes::INVALID_ADDRESS_OR_KEY, "Block not found"))?;
            if verbose.unwrap_or(true) {
                let n_tx = s.chain().block(&hash).ok().flatten().map(|b| b.txs.len());
                Ok(render::header(s.chain(), entry, n_tx))
            } else {
                Ok(json!(hex::encode(entry.header.encode())))
            }
        })
        .await?
    });
    method(m, "getblock", |p, ctx| async move {
        let mut seq = p.sequence();
        let hash: String = seq.next()?;
        // Bitcoin Core accepts a boolean here too (false = 0, true = 1).
        let verbosity = match seq.optional_next::<Value>()? {
            None => 1,
            Some(Value::Bool(b)) => u8::from(b),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v @ 0..=2) => v as u8,
                _ => {
                    return Err(rpc_error(
                        codes::INVALID_PARAMETER,
                        "verbosity must be 0, 1 or 2",
                    ))
                }
            },
            Some(_) => return Err(rpc_error(codes::TYPE_ERROR, "verbosity must be a number")),
        };
        let hash = parse_hash(&hash, "blockhash")?;
        ctx.with_state(move |s| {
            let entry = s
                .chain()
                .entry(&hash)
                .ok_or_else(|| rpc_error(codes::INVALID_ADDRESS_OR_KEY, "Block not found"))?;
            let block = s
                .chain()
                .block(&hash)
                .map_err(|e| rpc_error(codes::DATABASE_ERROR, e.to_string()))?
                .ok_or_else(|| rpc_error(codes::MISC_ERROR, "Block not available"))?;
            Ok(if verbosity == 0 {
                json!(hex::encode(block.encode()))
            } else {
                render::block(s.chain(), entry, &block, verbosity)
            })
        })
        .await?
    });
    method(m, "gettxout", |p, ctx| async move {
        let mut seq = p.sequence();
        let txid: String = seq.next()?;
        let n: u32 = seq.next()?;
        let include_mempool: bool = seq.optional_next()?.unwrap_or(true);
        let txid = parse_hash(&txid, "txid")?;
        ctx.with_state(move |s| {
            let outpoint = OutPoint::new(txid, n);
            let network = s.params().network;
            if include_mempool && s.mempool().spender(&outpoint).is_some() {
                return Ok(Value::Null);
            }
            let tip = s.chain().tip();
            if let Some(coin) = s
                .chain()
                .coin(&outpoint)
                .map_err(|e| rpc_error(codes::DATABASE_ERROR, e.to_string()))?
            {
                return Ok(json!({
                    "bestblock": tip.to_string(),
                    "confirmations": s.chain().height().saturating_sub(coin.height).saturating_add(1),
                    "value": render::amount(coin.output.value),
                    "scriptPubKey": render::script_pubkey(&coin.output.lock, network),
                    "coinbase": coin.is_coinbase,
                }));
            }
            if include_mempool {
                if let Some(out) = s.mempool().output(&outpoint) {
                    return Ok(json!({
                        "bestblock": tip.to_string(),
                        "confirmations": 0,
                        "value": render::amount(out.value),
                        "scriptPubKey": render::script_pubkey(&out.lock, network),
                        "coinbase": false,
                    }));
                }
            }
            Ok(Value::Null)
        })
        .await?
    });
    method(m, "getmempoolinfo", |_, ctx| async move {
        ctx.with_state(|s| {
            let mp = s.mempool();
            let min_fee =
                rusty_shared_types::Amount::from_units(mp.min_fee_rate()).unwrap_or_default();
            json!({
                "loaded": true,
                "size": mp.len(),
                "bytes": mp.total_size(),
                "usage": mp.total_size(),
                "total_fee": render::amount(mp.total_fees()),
                "maxmempool": mp.max_size(),
                "mempoolminfee": render::amount(min_fee),
                "minrelaytxfee": render::amount(min_fee),
                "unbroadcastcount": 0,
            })
        })
        .await
    });
    method(m, "getrawmempool", |p, ctx| async move {
        let verbose: bool = p.sequence().optional_next()?.unwrap_or(false);
        ctx.with_state(move |s| {
            let mp = s.mempool();
            if !verbose {
                return json!(mp.entries().map(|e| e.txid.to_string()).collect::<Vec<_>>());
            }
            let mut obj = serde_json::Map::new();
            for e in mp.entries() {
                let depends: Vec<String> =
                    e.tx.inputs
                        .iter()
                        .filter(|i| mp.contains(&i.prevout.txid))
                        .map(|i| i.prevout.txid.to_string())
                        .collect();
                obj.insert(
                    e.txid.to_string(),
                    json!({
                        "vsize": e.size,
                        "size": e.size,
                        "fees": { "base": render::amount(e.fee) },
                        "time": e.time,
                        "depends": depends,
                    }),
                );
            }
            Value::Object(obj)
        })
        .await
    });
    let sub = m.register_subscription(
        "subscribe_newblocks",
        "newblocks",
        "unsubscribe_newblocks",
        |_, pending, ctx, _| async move {
            let mut rx = ctx.chain.subscribe_blocks();
            let sink = pending.accept().await?;
            loop {
                match rx.recv().await {
                    Ok(tip) => {
                        let msg = SubscriptionMessage::from_json(&json!({
                            "hash": tip.hash.to_string(),
                            "height": tip.height,
                            "time": tip.time,
                        }))?;
                        if sink.send(msg).await.is_err() {
                            break;
                        }
                    }
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                }
            }
            Ok(())
        },
    );
    if let Err(e) = sub {
        tracing::error!(target: "rpc", error = %e, "registering newblocks failed");
    }
}
