//! The server side of [`super::api::blockchain`]: chain and mempool
//! queries and the `newblocks` subscription.

use std::sync::Arc;

use jsonrpsee::{
    core::{async_trait, RpcResult, SubscriptionResult},
    PendingSubscriptionSink, SubscriptionMessage,
};
use rusty_shared_types::{Encode, OutPoint};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::{
    api::blockchain::{BlockchainApiServer, BlockchainInfo, MempoolInfo, NewBlock, TxOutInfo},
    codes, json as render, parse_hash, rpc_error, RpcContext,
};

/// Implements [`BlockchainApiServer`] over the node's RPC context.
#[derive(Debug, Clone)]
pub struct BlockchainRpc(pub Arc<RpcContext>);

/// `getblock`'s verbosity: 0, 1 or 2, or a boolean (false = 0, true = 1)
/// as Bitcoin Core accepts; 1 when absent.
fn verbosity(v: Option<Value>) -> Result<u8, jsonrpsee::types::ErrorObjectOwned> {
    match v {
        None | Some(Value::Null) => Ok(1),
        Some(Value::Bool(b)) => Ok(u8::from(b)),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v @ 0..=2) => Ok(v as u8),
            _ => Err(rpc_error(
                codes::INVALID_PARAMETER,
                "verbosity must be 0, 1 or 2",
            )),
        },
        Some(_) => Err(rpc_error(codes::TYPE_ERROR, "verbosity must be a number")),
    }
}

#[async_trait]
impl BlockchainApiServer for BlockchainRpc {
    async fn get_blockchain_info(&self) -> RpcResult<BlockchainInfo> {
        self.0
            .with_state(|s| {
                let chain = s.chain();
                let tip = chain.tip_entry();
                BlockchainInfo {
                    chain: chain.params().network.name().to_owned(),
                    blocks: chain.height(),
                    headers: chain.height(),
                    bestblockhash: chain.tip().to_string(),
                    bits: format!("{:08x}", tip.header.bits),
                    difficulty: render::difficulty(tip.header.bits, chain.params().network),
                    time: tip.header.time,
                    mediantime: chain.median_time_past(&chain.tip()),
                    verificationprogress: 1.0,
                    initialblockdownload: false,
                    chainwork: hex::encode(tip.chain_work),
                    pruned: false,
                    warnings: String::new(),
                }
            })
            .await
    }

    async fn get_block_count(&self) -> RpcResult<u64> {
        self.0.with_state(|s| s.chain().height()).await
    }

    async fn get_best_block_hash(&self) -> RpcResult<String> {
        self.0.with_state(|s| s.chain().tip().to_string()).await
    }

    async fn get_block_hash(&self, height: i64) -> RpcResult<String> {
        self.0
            .with_state(move |s| {
                u64::try_from(height)
                    .ok()
                    .and_then(|h| s.chain().hash_at(h))
                    .map(|h| h.to_string())
                    .ok_or_else(|| rpc_error(codes::INVALID_PARAMETER, "Block height out of range"))
            })
            .await?
    }

    async fn get_block_header(&self, blockhash: String, verbose: Option<bool>) -> RpcResult<Value> {
        let hash = parse_hash(&blockhash, "blockhash")?;
        self.0
            .with_state(move |s| {
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
    }

    async fn get_block(
        &self,
        blockhash: String,
        verbosity_param: Option<Value>,
    ) -> RpcResult<Value> {
        let verbosity = verbosity(verbosity_param)?;
        let hash = parse_hash(&blockhash, "blockhash")?;
        self.0
            .with_state(move |s| {
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
    }

    async fn get_tx_out(
        &self,
        txid: String,
        n: u32,
        include_mempool: Option<bool>,
    ) -> RpcResult<Option<TxOutInfo>> {
        let include_mempool = include_mempool.unwrap_or(true);
        let txid = parse_hash(&txid, "txid")?;
        self.0
            .with_state(move |s| {
                let outpoint = OutPoint::new(txid, n);
                let network = s.params().network;
                if include_mempool && s.mempool().spender(&outpoint).is_some() {
                    return Ok(None);
                }
                let tip = s.chain().tip();
                if let Some(coin) = s
                    .chain()
                    .coin(&outpoint)
                    .map_err(|e| rpc_error(codes::DATABASE_ERROR, e.to_string()))?
                {
                    return Ok(Some(TxOutInfo {
                        bestblock: tip.to_string(),
                        confirmations: s
                            .chain()
                            .height()
                            .saturating_sub(coin.height)
                            .saturating_add(1),
                        value: render::amount(coin.output.value),
                        script_pub_key: render::script_pubkey(&coin.output.lock, network),
                        coinbase: coin.is_coinbase,
                    }));
                }
                if include_mempool {
                    if let Some(out) = s.mempool().output(&outpoint) {
                        return Ok(Some(TxOutInfo {
                            bestblock: tip.to_string(),
                            confirmations: 0,
                            value: render::amount(out.value),
                            script_pub_key: render::script_pubkey(&out.lock, network),
                            coinbase: false,
                        }));
                    }
                }
                Ok(None)
            })
            .await?
    }

    async fn get_mempool_info(&self) -> RpcResult<MempoolInfo> {
        self.0
            .with_state(|s| {
                let mp = s.mempool();
                let min_fee =
                    rusty_shared_types::Amount::from_units(mp.min_fee_rate()).unwrap_or_default();
                MempoolInfo {
                    loaded: true,
                    size: mp.len(),
                    bytes: mp.total_size(),
                    usage: mp.total_size(),
                    total_fee: render::amount(mp.total_fees()),
                    maxmempool: mp.max_size(),
                    mempoolminfee: render::amount(min_fee),
                    minrelaytxfee: render::amount(min_fee),
                    unbroadcastcount: 0,
                }
            })
            .await
    }

    async fn get_raw_mempool(&self, verbose: Option<bool>) -> RpcResult<Value> {
        let verbose = verbose.unwrap_or(false);
        self.0
            .with_state(move |s| {
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
    }

    async fn subscribe_new_blocks(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut rx = self.0.chain.subscribe_blocks();
        let sink = pending.accept().await?;
        loop {
            match rx.recv().await {
                Ok(tip) => {
                    let msg = SubscriptionMessage::from_json(&NewBlock {
                        hash: tip.hash.to_string(),
                        height: tip.height,
                        time: tip.time,
                    })?;
                    if sink.send(msg).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
        Ok(())
    }
}
