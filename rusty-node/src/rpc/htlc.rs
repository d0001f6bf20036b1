//! Hash-time-locked contracts over the node's chain and wallet (the API is
//! in [`super::api::htlc`]; the spend rules in `rusty_core::htlc`). Keys
//! never leave the chain thread: redeems and refunds are signed inside the
//! state closure.

use std::sync::Arc;

use jsonrpsee::{core::async_trait, core::RpcResult, types::ErrorObjectOwned};
use rusty_core::{
    htlc::{htlc_of, read_htlc_unlock, spend_htlc, HtlcError, HtlcPath},
    state::NodeState,
};
use rusty_shared_types::{Address, Encode, Hash256, OutPoint, Transaction, TxOut};
use rusty_vm::{HashKind, HtlcParams, Timeout};

use super::{
    api::htlc::{HtlcApiServer, HtlcAudit, HtlcFound, HtlcFunded, HtlcSpendTx, HtlcSpent},
    codes, json as render, parse_amount, parse_hash,
    rawtx::rejection_error,
    rpc_error, running,
    wallet::{address_error, send_error},
    RpcContext,
};

/// Implements [`HtlcApiServer`] over the node's RPC context.
#[derive(Debug, Clone)]
pub struct HtlcRpc(pub Arc<RpcContext>);

fn htlc_error(e: HtlcError) -> ErrorObjectOwned {
    rpc_error(codes::INVALID_PARAMETER, e.to_string())
}

fn parse_secret(hex_str: &str, what: &str) -> Result<[u8; 32], ErrorObjectOwned> {
    hex::decode(hex_str.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            rpc_error(
                codes::INVALID_PARAMETER,
                format!("{what} must be 32 bytes of hex"),
            )
        })
}

fn parse_hash_alg(s: &str) -> Result<HashKind, ErrorObjectOwned> {
    match s.to_ascii_lowercase().as_str() {
        "sha256" => Ok(HashKind::Sha256),
        "blake3" => Ok(HashKind::Blake3),
        other => Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!("unknown hash algorithm `{other}` (expected sha256 or blake3)"),
        )),
    }
}

/// The HTLC script of `params` (whose lock is `locktime`); an error for a
/// lock out of range.
fn htlc_script(
    params: &HtlcParams,
    locktime: u64,
) -> Result<rusty_shared_types::Script, ErrorObjectOwned> {
    rusty_vm::htlc(params).ok_or_else(|| {
        rpc_error(
            codes::INVALID_PARAMETER,
            format!("locktime {locktime} is out of range"),
        )
    })
}

pub(crate) fn hash_alg_name(k: HashKind) -> &'static str {
    match k {
        HashKind::Sha256 => "sha256",
        HashKind::Blake3 => "blake3",
    }
}

/// An output as the chain or mempool shows it: the output, the funding
/// block's height (`None` in the mempool) and whether it is spent.
fn find_output(s: &NodeState, op: &OutPoint) -> Option<(TxOut, Option<u64>, bool)> {
    let chain = s.chain();
    let in_mempool_spend = s.mempool().spender(op).is_some();
    if let Ok(Some(coin)) = chain.coin(op) {
        return Some((coin.output, Some(coin.height), in_mempool_spend));
    }
    if let Some(out) = s.mempool().output(op) {
        return Some((out.clone(), None, in_mempool_spend));
    }
    // Spent in a block: the funding transaction is in the index.
    let loc = chain.tx_location(&op.txid).ok()??;
    let height = chain.entry(&loc.block)?.height;
    let block = chain.block(&loc.block).ok()??;
    let tx = block.txs.get(loc.index as usize)?;
    let out = tx.outputs.get(op.vout as usize)?.clone();
    Some((out, Some(height), true))
}

/// The first output locked by `script` in the mempool, then in the last
/// `depth` blocks of the active chain (newest first).
fn find_output_by_script(
    s: &NodeState,
    script: &rusty_shared_types::Script,
    depth: u64,
) -> Option<HtlcFound> {
    let found = |tx: &Transaction, height| {
        tx.outputs
            .iter()
            .position(|o| o.lock == *script)
            .and_then(|vout| u32::try_from(vout).ok())
            .map(|vout| HtlcFound {
                txid: tx.txid().to_string(),
                vout,
                height,
            })
    };
    for entry in s.mempool().entries() {
        if let Some(f) = found(&entry.tx, None) {
            return Some(f);
        }
    }
    let chain = s.chain();
    let tip = chain.height();
    for height in (tip.saturating_sub(depth)..=tip).rev() {
        let block = chain.block(&chain.hash_at(height)?).ok()??;
        for tx in &block.txs {
            if let Some(f) = found(tx, Some(height)) {
                return Some(f);
            }
        }
    }
    None
}

/// The spend of `op` and its height (`None` in the mempool), looking in the
/// mempool and then in the active chain's blocks above `from`.
fn find_spender(s: &NodeState, op: &OutPoint, from: u64) -> Option<(Transaction, Option<u64>)> {
    if let Some(txid) = s.mempool().spender(op) {
        let tx = s.mempool().get(&txid)?.tx.clone();
        return Some((tx, None));
    }
    let chain = s.chain();
    for height in from..=chain.height() {
        let block = chain.block(&chain.hash_at(height)?).ok()??;
        for tx in block.txs {
            if tx.inputs.iter().any(|i| i.prevout == *op) {
                return Some((tx, Some(height)));
            }
        }
    }
    None
}

impl HtlcRpc {
    async fn htlc_at(
        &self,
        op: OutPoint,
    ) -> RpcResult<(TxOut, HtlcParams, u64, Option<u64>, bool)> {
        let found = self.0.with_state(move |s| find_output(s, &op)).await?;
        let (out, height, spent) = found.ok_or_else(|| {
            rpc_error(
                codes::INVALID_ADDRESS_OR_KEY,
                format!("no output {}:{} on this chain", op.txid, op.vout),
            )
        })?;
        let (params, lock) = htlc_of(&out).map_err(htlc_error)?;
        Ok((out, params, lock, height, spent))
    }

    /// Signs a spend of the HTLC at `op` by `path`, paying the address of
    /// the key that signs it, and broadcasts it if asked. The same call
    /// makes the same transaction, so a retry never pays twice and the
    /// refund signed at funding is the one broadcast later.
    async fn spend(&self, op: OutPoint, path: HtlcPath, broadcast: bool) -> RpcResult<HtlcSpendTx> {
        let (out, params, lock, _, spent) = self.htlc_at(op).await?;
        if spent {
            return Err(rpc_error(
                codes::VERIFY_ALREADY_IN_CHAIN,
                format!("the HTLC {}:{} is already spent", op.txid, op.vout),
            ));
        }
        if broadcast && path == HtlcPath::Refund {
            let tip = self.0.with_state(|s| s.chain().height()).await?;
            if tip < lock {
                return Err(rpc_error(
                    codes::VERIFY_REJECTED,
                    format!(
                        "the refund is possible from height {lock} (the tip is at {tip}, \
                         {} blocks to go)",
                        lock - tip
                    ),
                ));
            }
        }
        let key_hash = match path {
            HtlcPath::Redeem(_) => params.recipient_pkh,
            HtlcPath::Refund => params.refund_pkh,
        };
        let fee_rate = self.0.wallet_fee_rate;
        let tx =
            self.0
                .with_state(move |s| {
                    let key =
                        s.wallet()
                            .and_then(|w| w.key_for(&key_hash))
                            .ok_or_else(|| {
                                rpc_error(
                        codes::WALLET_ERROR,
                        format!("the wallet holds no key for {key_hash}, which this HTLC needs"),
                    )
                            })?;
                    spend_htlc(op, &out, path, &key, &key_hash, fee_rate).map_err(htlc_error)
                })
                .await??;
        let hex = hex::encode(tx.encode());
        if broadcast {
            running(self.0.chain.accept_transaction(tx.clone()).await)?
                .map_err(|r| rejection_error(&r))?;
        }
        Ok(HtlcSpendTx {
            txid: tx.txid().to_string(),
            hex,
            broadcast,
        })
    }
}

#[async_trait]
impl HtlcApiServer for HtlcRpc {
    async fn fund(
        &self,
        recipient: String,
        amount: serde_json::Value,
        secret_hash: String,
        hash_alg: String,
        locktime: u64,
        refund_address: Option<String>,
    ) -> RpcResult<HtlcFunded> {
        let network = self.0.network;
        let recipient = Address::parse_for(&recipient, network).map_err(address_error)?;
        let amount = parse_amount(&amount)?;
        let hash = parse_secret(&secret_hash, "secret_hash")?;
        let hash_kind = parse_hash_alg(&hash_alg)?;
        let tip = self.0.with_state(|s| s.chain().height()).await?;
        if locktime <= tip {
            return Err(rpc_error(
                codes::INVALID_PARAMETER,
                format!("locktime {locktime} is not above the tip ({tip})"),
            ));
        }
        let refund = match refund_address {
            Some(a) => {
                let a = Address::parse_for(&a, network).map_err(address_error)?;
                let pkh = a.pubkey_hash;
                let ours = self
                    .0
                    .with_state(move |s| s.wallet().and_then(|w| w.key_for(&pkh)).is_some())
                    .await?;
                if !ours {
                    return Err(rpc_error(
                        codes::INVALID_ADDRESS_OR_KEY,
                        format!("{a} is not an address of this wallet"),
                    ));
                }
                a
            }
            None => running(self.0.chain.new_address().await)?.map_err(send_error)?,
        };
        let params = HtlcParams {
            hash_kind,
            hash,
            recipient_pkh: recipient.pubkey_hash,
            refund_pkh: refund.pubkey_hash,
            timeout: Timeout::Absolute(locktime),
        };
        let lock = htlc_script(&params, locktime)?;
        let out = TxOut {
            value: amount,
            lock: lock.clone(),
        };
        // The refund is signed before the funding is sent: whatever happens
        // next, the caller holds a way back.
        let fee_rate = self.0.wallet_fee_rate;
        let refund_pkh = refund.pubkey_hash;
        let presign = |op: OutPoint, out: TxOut| {
            self.0.with_state(move |s| {
                let key = s
                    .wallet()
                    .and_then(|w| w.key_for(&refund_pkh))
                    .ok_or_else(|| rpc_error(codes::WALLET_ERROR, "the refund key is gone"))?;
                spend_htlc(op, &out, HtlcPath::Refund, &key, &refund_pkh, fee_rate)
                    .map_err(htlc_error)
            })
        };
        // Checked against the fee now, so a dust HTLC is never funded.
        presign(OutPoint::new(Hash256::ZERO, 0), out.clone()).await??;
        let txid = running(
            self.0
                .chain
                .send_special(vec![out.clone()], Box::new(|_| None), fee_rate)
                .await,
        )?
        .map_err(send_error)?;
        // The payment is the wallet transaction's first output.
        let refund_tx = presign(OutPoint::new(txid, 0), out).await??;
        Ok(HtlcFunded {
            txid: txid.to_string(),
            vout: 0,
            script: hex::encode(lock.as_bytes()),
            refund_address: refund.to_string(),
            refund_txid: refund_tx.txid().to_string(),
            refund_tx: hex::encode(refund_tx.encode()),
            locktime,
        })
    }

    async fn find(
        &self,
        recipient: String,
        secret_hash: String,
        hash_alg: String,
        locktime: u64,
        refund_address: String,
    ) -> RpcResult<Option<HtlcFound>> {
        let network = self.0.network;
        let params = HtlcParams {
            hash_kind: parse_hash_alg(&hash_alg)?,
            hash: parse_secret(&secret_hash, "secret_hash")?,
            recipient_pkh: Address::parse_for(&recipient, network)
                .map_err(address_error)?
                .pubkey_hash,
            refund_pkh: Address::parse_for(&refund_address, network)
                .map_err(address_error)?
                .pubkey_hash,
            timeout: Timeout::Absolute(locktime),
        };
        let lock = htlc_script(&params, locktime)?;
        self.0
            .with_state(move |s| find_output_by_script(s, &lock, 1_000))
            .await
    }

    async fn audit(&self, txid: String, vout: u32) -> RpcResult<HtlcAudit> {
        let op = OutPoint::new(parse_hash(&txid, "txid")?, vout);
        let (out, params, lock, height, spent) = self.htlc_at(op).await?;
        let (tip, locked_height) = self
            .0
            .with_state(|s| {
                let c = s.chain();
                (c.height(), c.best_chainlock().map(|cl| cl.height))
            })
            .await?;
        let network = self.0.network;
        Ok(HtlcAudit {
            txid,
            vout,
            amount: render::amount(out.value),
            amount_units: out.value.units(),
            hash_alg: hash_alg_name(params.hash_kind).to_string(),
            secret_hash: hex::encode(params.hash),
            recipient: Address::p2pkh(network, params.recipient_pkh).to_string(),
            refund: Address::p2pkh(network, params.refund_pkh).to_string(),
            locktime: lock,
            height,
            confirmations: height.map_or(0, |h| tip.saturating_sub(h) + 1),
            // Fork choice never leaves a ChainLocked block, so an active
            // block at or below the lock's height is locked with it.
            chainlocked: matches!((height, locked_height), (Some(h), Some(l)) if h <= l),
            spent,
            tip_height: tip,
        })
    }

    async fn redeem(
        &self,
        txid: String,
        vout: u32,
        secret: String,
        broadcast: Option<bool>,
    ) -> RpcResult<HtlcSpendTx> {
        let op = OutPoint::new(parse_hash(&txid, "txid")?, vout);
        let secret = parse_secret(&secret, "secret")?;
        self.spend(op, HtlcPath::Redeem(secret), broadcast.unwrap_or(true))
            .await
    }

    async fn refund(
        &self,
        txid: String,
        vout: u32,
        broadcast: Option<bool>,
    ) -> RpcResult<HtlcSpendTx> {
        let op = OutPoint::new(parse_hash(&txid, "txid")?, vout);
        self.spend(op, HtlcPath::Refund, broadcast.unwrap_or(true))
            .await
    }

    async fn find_spend(&self, txid: String, vout: u32) -> RpcResult<Option<HtlcSpent>> {
        let op = OutPoint::new(parse_hash(&txid, "txid")?, vout);
        let (_, _, _, height, spent) = self.htlc_at(op).await?;
        if !spent {
            return Ok(None);
        }
        let from = height.unwrap_or(0);
        let found = self
            .0
            .with_state(move |s| find_spender(s, &op, from))
            .await?;
        let Some((tx, height)) = found else {
            return Ok(None);
        };
        let locked_height = self
            .0
            .with_state(|s| s.chain().best_chainlock().map(|cl| cl.height))
            .await?;
        let path = tx
            .inputs
            .iter()
            .find(|i| i.prevout == op)
            .and_then(|i| read_htlc_unlock(&i.unlock));
        Ok(Some(HtlcSpent {
            txid: tx.txid().to_string(),
            height,
            path: match path {
                Some(HtlcPath::Redeem(_)) => "redeem",
                Some(HtlcPath::Refund) => "refund",
                None => "unknown",
            }
            .to_string(),
            secret: match path {
                Some(HtlcPath::Redeem(secret)) => Some(hex::encode(secret)),
                _ => None,
            },
            chainlocked: matches!((height, locked_height), (Some(h), Some(l)) if h <= l),
        }))
    }
}
