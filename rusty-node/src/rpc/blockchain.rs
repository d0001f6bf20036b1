//! The server side of [`super::api::blockchain`]: chain and mempool
//! queries and the `newblocks` subscription.

use std::{path::Path, sync::Arc};

use jsonrpsee::{
    core::{async_trait, RpcResult, SubscriptionResult},
    PendingSubscriptionSink, SubscriptionMessage,
};
use rusty_core::mempool::{Mempool, MempoolEntry};
use rusty_shared_types::{Amount, Encode, Hash256, OutPoint};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::{
    api::blockchain::{
        AddressUtxo, BlockchainApiServer, BlockchainInfo, MempoolEntryInfo, MempoolFees,
        MempoolInfo, NewBlock, RawMempool, TxOutInfo, TxOutSetInfo,
    },
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
        Some(other) => Err(super::params::wrong_type(2, "verbosity", &other, "number")),
    }
}

/// Bytes under `dir`, recursively (0 for what cannot be read).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .fold(0u64, u64::saturating_add)
}

/// A mempool entry in Core's shape, with its in-pool family.
fn mempool_entry(mp: &Mempool, e: &MempoolEntry) -> MempoolEntryInfo {
    let family = |txids: &mut dyn Iterator<Item = Hash256>| {
        let (mut count, mut size, mut fees) = (1u64, e.size as u64, e.fee);
        for t in txids {
            if let Some(other) = mp.get(&t) {
                count = count.saturating_add(1);
                size = size.saturating_add(other.size as u64);
                fees = fees.checked_add(other.fee).unwrap_or(fees);
            }
        }
        (count, size, fees)
    };
    let ancestors = mp.ancestors(&e.txid);
    let (ancestorcount, ancestorsize, ancestor_fees) = family(&mut ancestors.into_iter());
    let descendants = mp.with_descendants([e.txid]);
    let (descendantcount, descendantsize, descendant_fees) =
        family(&mut descendants.into_iter().filter(|t| *t != e.txid));
    let mut depends: Vec<String> =
        e.tx.inputs
            .iter()
            .filter(|i| mp.contains(&i.prevout.txid))
            .map(|i| i.prevout.txid.to_string())
            .collect();
    depends.sort_unstable();
    depends.dedup();
    let size = e.size as u64;
    MempoolEntryInfo {
        vsize: size,
        weight: size.saturating_mul(4),
        time: e.time,
        height: e.height,
        descendantcount,
        descendantsize,
        ancestorcount,
        ancestorsize,
        wtxid: e.tx.wtxid().to_string(),
        fees: MempoolFees {
            base: render::amount(e.fee),
            modified: render::amount(e.fee),
            ancestor: render::amount(ancestor_fees),
            descendant: render::amount(descendant_fees),
        },
        depends,
        spentby: mp.spent_by(&e.txid).iter().map(|t| t.to_string()).collect(),
        bip125_replaceable: true,
        unbroadcast: false,
    }
}

#[async_trait]
impl BlockchainApiServer for BlockchainRpc {
    async fn get_blockchain_info(&self) -> RpcResult<BlockchainInfo> {
        let size_on_disk = match &self.0.datadir {
            Some(dir) => {
                let db = dir.join("db");
                tokio::task::spawn_blocking(move || dir_size(&db))
                    .await
                    .unwrap_or(0)
            }
            None => 0,
        };
        self.0
            .with_state(move |s| {
                let chain = s.chain();
                let tip = chain.tip_entry();
                BlockchainInfo {
                    chain: chain.params().network.name().to_owned(),
                    blocks: chain.height(),
                    headers: chain.height(),
                    bestblockhash: chain.tip().to_string(),
                    bits: format!("{:08x}", tip.header.bits),
                    target: rusty_core::pow::target_from_compact(tip.header.bits)
                        .map(|t| hex::encode(t.to_be_bytes::<32>()))
                        .unwrap_or_default(),
                    difficulty: render::difficulty(tip.header.bits, chain.params().network),
                    time: tip.header.time,
                    mediantime: chain.median_time_past(&chain.tip()),
                    verificationprogress: 1.0,
                    initialblockdownload: false,
                    chainwork: hex::encode(tip.chain_work),
                    size_on_disk,
                    pruned: false,
                    warnings: Vec::new(),
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
                if verbosity == 0 {
                    return Ok(json!(hex::encode(block.encode())));
                }
                // Fees need the spent coins; a block without undo data
                // (not connected) shows none.
                let undo = match verbosity {
                    2 => s.chain().block_undo(&hash).ok().flatten(),
                    _ => None,
                };
                Ok(render::block(
                    s.chain(),
                    entry,
                    &block,
                    verbosity,
                    undo.as_ref(),
                ))
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

    async fn get_address_utxos(&self, addresses: Value) -> RpcResult<Vec<AddressUtxo>> {
        let listed = match &addresses {
            Value::String(one) => vec![one.clone()],
            Value::Object(o) => match o.get("addresses") {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .unwrap_or_default(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        if listed.is_empty() || listed.len() > 16 {
            return Err(rpc_error(
                codes::INVALID_PARAMETER,
                "addresses must be an address or {\"addresses\": [1 to 16 addresses]}",
            ));
        }
        let network = self.0.network;
        let mut parsed = Vec::with_capacity(listed.len());
        for a in &listed {
            let address = rusty_shared_types::Address::parse_for(a, network).map_err(|e| {
                rpc_error(
                    codes::INVALID_ADDRESS_OR_KEY,
                    format!("invalid address {a}: {e}"),
                )
            })?;
            parsed.push(address);
        }
        self.0
            .with_state(move |s| {
                let mut out = Vec::new();
                for address in parsed {
                    let left = super::api::blockchain::ADDRESS_UTXOS_LIMIT - out.len();
                    let coins = s
                        .chain()
                        .coins_of_script(&address.lock_script(), left)
                        .map_err(|e| rpc_error(codes::DATABASE_ERROR, e.to_string()))?;
                    out.extend(coins.into_iter().map(|(outpoint, coin)| AddressUtxo {
                        address: address.to_string(),
                        txid: outpoint.txid.to_string(),
                        output_index: outpoint.vout,
                        script: hex::encode(coin.output.lock.as_bytes()),
                        satoshis: coin.output.value.units(),
                        height: coin.height,
                    }));
                }
                Ok(out)
            })
            .await?
    }

    async fn get_tx_out_set_info(&self) -> RpcResult<TxOutSetInfo> {
        self.0
            .with_state(|s| {
                let chain = s.chain();
                let totals = chain
                    .utxo_totals()
                    .map_err(|e| rpc_error(codes::DATABASE_ERROR, e.to_string()))?;
                let total = u64::try_from(totals.total)
                    .ok()
                    .and_then(|u| Amount::from_units(u).ok())
                    .ok_or_else(|| {
                        rpc_error(
                            codes::DATABASE_ERROR,
                            format!(
                                "the UTXO set totals {} base units, more than can exist",
                                totals.total
                            ),
                        )
                    })?;
                Ok(TxOutSetInfo {
                    height: chain.height(),
                    bestblock: chain.tip().to_string(),
                    txouts: totals.txouts,
                    total_amount: render::amount(total),
                    total_amount_units: total.units(),
                    treasury_units: chain.gov().treasury().units(),
                })
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
                    incrementalrelayfee: render::amount(min_fee),
                    unbroadcastcount: 0,
                    fullrbf: true,
                }
            })
            .await
    }

    async fn get_raw_mempool(&self, verbose: Option<bool>) -> RpcResult<RawMempool> {
        let verbose = verbose.unwrap_or(false);
        self.0
            .with_state(move |s| {
                let mp = s.mempool();
                if !verbose {
                    return RawMempool::Txids(mp.entries().map(|e| e.txid.to_string()).collect());
                }
                RawMempool::Verbose(
                    mp.entries()
                        .map(|e| (e.txid.to_string(), mempool_entry(mp, e)))
                        .collect(),
                )
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
