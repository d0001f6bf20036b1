//! Mining: `getblocktemplate`, `submitblock`, `generatetoaddress`,
//! `getmininginfo`.

use std::sync::atomic::Ordering;

use std::sync::Arc;

use jsonrpsee::core::{async_trait, RpcResult};
use rusty_shared_types::{decode_exact, Address, Block, Encode};
use serde_json::Value;

use super::{
    api::mining::{BlockTemplateResult, MiningApiServer, MiningInfo, TemplateTransaction},
    codes, json as render, rpc_error, running, RpcContext,
};
use crate::service::GenerateError;
use rusty_core::{
    chain::{BlockAcceptance, ChainError},
    validation::ValidationError,
};

/// Bitcoin Core's default `maxtries` for `generatetoaddress`.
const DEFAULT_MAX_TRIES: u64 = 1_000_000;

/// Implements [`MiningApiServer`] over the node's RPC context.
#[derive(Debug, Clone)]
pub struct MiningRpc(pub Arc<RpcContext>);

#[async_trait]
impl MiningApiServer for MiningRpc {
    async fn get_block_template(
        &self,
        template_request: Option<Value>,
    ) -> RpcResult<BlockTemplateResult> {
        if let Some(r) = &template_request {
            if !(r.is_object() || r.is_null()) {
                return Err(super::params::wrong_type(
                    1,
                    "template_request",
                    r,
                    "object",
                ));
            }
        }
        self.0
            .with_state(|s| {
                // The template's own coinbase pays nobody useful: miners
                // build theirs from `coinbasevalue` and `height` (with the
                // coinbase payload) and recompute the merkle root.
                let t = s.block_template(
                    &rusty_shared_types::Script::default(),
                    rusty_core::now(),
                    Vec::new(),
                );
                // 1-based positions in `transactions`, for `depends`.
                let position: std::collections::HashMap<_, _> = t
                    .block
                    .txs
                    .iter()
                    .skip(1)
                    .enumerate()
                    .map(|(i, tx)| (tx.txid(), i.saturating_add(1)))
                    .collect();
                let transactions = t
                    .block
                    .txs
                    .iter()
                    .skip(1)
                    .map(|tx| {
                        let mut depends: Vec<usize> = tx
                            .inputs
                            .iter()
                            .filter_map(|i| position.get(&i.prevout.txid).copied())
                            .collect();
                        depends.sort_unstable();
                        depends.dedup();
                        let fee = s
                            .mempool()
                            .get(&tx.txid())
                            .map(|e| e.fee)
                            .unwrap_or_default();
                        TemplateTransaction {
                            data: hex::encode(tx.encode()),
                            txid: tx.txid().to_string(),
                            hash: tx.wtxid().to_string(),
                            depends,
                            fee: fee.units(),
                            size: tx.size(),
                            weight: tx.size().saturating_mul(4),
                        }
                    })
                    .collect();
                let coinbasevalue = t.block.txs[0].outputs[0].value.units();
                BlockTemplateResult {
                    version: t.block.header.version,
                    rules: Vec::new(),
                    vbavailable: Default::default(),
                    capabilities: Vec::new(),
                    vbrequired: 0,
                    previousblockhash: t.block.header.prev_hash.to_string(),
                    transactions,
                    coinbaseaux: Default::default(),
                    coinbasevalue,
                    longpollid: format!("{}{}", t.block.header.prev_hash, s.mempool().len()),
                    target: hex::encode(t.target.to_be_bytes::<32>()),
                    mintime: t.min_time,
                    curtime: t.block.header.time,
                    mutable: ["time", "transactions", "prevblock"]
                        .map(String::from)
                        .to_vec(),
                    noncerange: "0000000000000000ffffffffffffffff".to_owned(),
                    sizelimit: governed_size_limit(s, t.height),
                    weightlimit: governed_size_limit(s, t.height).saturating_mul(4),
                    bits: format!("{:08x}", t.block.header.bits),
                    height: t.height,
                }
            })
            .await
    }

    async fn submit_block(&self, hexdata: String) -> RpcResult<Option<String>> {
        let bytes = hex::decode(hexdata.trim())
            .map_err(|_| rpc_error(codes::DESERIALIZATION_ERROR, "Block decode failed: not hex"))?;
        let block: Block = decode_exact(&bytes).map_err(|e| {
            rpc_error(
                codes::DESERIALIZATION_ERROR,
                format!("Block decode failed: {e}"),
            )
        })?;
        match running(self.0.chain.submit_block(block).await)? {
            Ok(BlockAcceptance::BecameTip) => Ok(None),
            Ok(BlockAcceptance::SideBranch) => Ok(Some("inconclusive".to_owned())),
            Err(ChainError::Invalid(v)) => Ok(Some(submit_reason(&v))),
            Err(e) => Err(rpc_error(codes::DATABASE_ERROR, e.to_string())),
        }
    }

    async fn generate_to_address(
        &self,
        nblocks: u64,
        address: String,
        maxtries: Option<u64>,
    ) -> RpcResult<Vec<String>> {
        let max_tries = maxtries.unwrap_or(DEFAULT_MAX_TRIES);
        let address = Address::parse_for(&address, self.0.network).map_err(|e| {
            rpc_error(
                codes::INVALID_ADDRESS_OR_KEY,
                format!("Error: Invalid address: {e}"),
            )
        })?;
        if nblocks > 100_000 {
            return Err(rpc_error(
                codes::INVALID_PARAMETER,
                "nblocks must be at most 100000",
            ));
        }
        match self.0.chain.generate(nblocks, &address, max_tries).await {
            Ok(hashes) => Ok(hashes.iter().map(|h| h.to_string()).collect()),
            Err(GenerateError::Stopped(e)) => running(Err(e)),
            Err(e) => Err(rpc_error(codes::MISC_ERROR, e.to_string())),
        }
    }

    async fn get_mining_info(&self) -> RpcResult<MiningInfo> {
        let (running, hashes, blocks) = match &self.0.miner {
            Some(st) => (
                st.running.load(Ordering::Relaxed),
                st.hashes.load(Ordering::Relaxed),
                st.blocks.load(Ordering::Relaxed),
            ),
            None => (false, 0, 0),
        };
        let threads = self.0.mine_threads;
        self.0
            .with_state(move |s| {
                let tip = s.chain().tip_entry();
                MiningInfo {
                    blocks: s.chain().height(),
                    bits: format!("{:08x}", tip.header.bits),
                    difficulty: render::difficulty(tip.header.bits, s.params().network),
                    target: rusty_core::pow::target_from_compact(tip.header.bits)
                        .map(|t| hex::encode(t.to_be_bytes::<32>()))
                        .unwrap_or_default(),
                    networkhashps: render::network_hashps(s.chain(), 120),
                    pooledtx: s.mempool().len(),
                    chain: s.params().network.name().to_owned(),
                    generate: running,
                    genproclimit: threads,
                    minedblocks: blocks,
                    totalhashes: hashes,
                    warnings: Vec::new(),
                }
            })
            .await
    }
}

/// `submitblock`'s answer for an invalid block: Bitcoin Core returns the
/// reject reason as a string rather than an error.
fn submit_reason(v: &ValidationError) -> String {
    v.reject_reason().to_string()
}

/// The largest block at `height`: the governed value in force, within the
/// hard cap.
fn governed_size_limit(s: &rusty_core::state::NodeState, height: u64) -> usize {
    let governed = s.chain().gov().values_at(height).max_block_size;
    usize::try_from(governed)
        .unwrap_or(usize::MAX)
        .min(rusty_core::validation::hard_max_block_size(s.params()))
}
