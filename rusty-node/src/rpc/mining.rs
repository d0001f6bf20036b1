//! Mining: `getblocktemplate`, `submitblock`, `generatetoaddress`,
//! `getmininginfo`.

use std::sync::atomic::Ordering;

use std::sync::Arc;

use jsonrpsee::core::{async_trait, RpcResult};
use rusty_shared_types::{decode_exact, Address, Block, Encode};

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
    async fn get_block_template(&self) -> RpcResult<BlockTemplateResult> {
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
                let transactions = t
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
                        TemplateTransaction {
                            data: hex::encode(tx.encode()),
                            txid: tx.txid().to_string(),
                            hash: tx.wtxid().to_string(),
                            fee: fee.units(),
                            size: tx.size(),
                        }
                    })
                    .collect();
                let coinbasevalue = t.block.txs[0].outputs[0].value.units();
                BlockTemplateResult {
                    version: t.block.header.version,
                    previousblockhash: t.block.header.prev_hash.to_string(),
                    transactions,
                    coinbasevalue,
                    target: hex::encode(t.target.to_be_bytes::<32>()),
                    mintime: t.min_time,
                    curtime: t.block.header.time,
                    mutable: ["time", "transactions", "prevblock"]
                        .map(String::from)
                        .to_vec(),
                    noncerange: "0000000000000000ffffffffffffffff".to_owned(),
                    sizelimit: s.params().max_block_size,
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
                    pooledtx: s.mempool().len(),
                    chain: s.params().network.name().to_owned(),
                    generate: running,
                    genproclimit: threads,
                    minedblocks: blocks,
                    totalhashes: hashes,
                    warnings: String::new(),
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
