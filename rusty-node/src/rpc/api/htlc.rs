//! Hash-time-locked contracts: `htlc_fund`, `htlc_audit`, `htlc_redeem`,
//! `htlc_refund`, `htlc_findspend`. The operations of decred/atomicswap
//! (initiate/participate, auditcontract, redeem, refund, extractsecret) on
//! this node's chain and wallet; the bridge's chain adapter drives a swap
//! through them, on this node or on a node of another chain.

use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `htlc_fund`'s result: the HTLC output and its refund, signed in advance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HtlcFunded {
    /// The funding transaction.
    pub txid: String,
    pub vout: u32,
    /// The HTLC lock script, hex.
    pub script: String,
    /// The wallet address the refund pays.
    pub refund_address: String,
    /// The refund transaction, signed and valid once the chain's tip has
    /// reached `locktime` (hex). Keep it: it needs no wallet to broadcast.
    pub refund_tx: String,
    pub refund_txid: String,
    pub locktime: u64,
}

/// `htlc_audit`'s result: an HTLC output as the chain shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HtlcAudit {
    pub txid: String,
    pub vout: u32,
    /// Coins, as a JSON number.
    pub amount: Value,
    /// Base units.
    pub amount_units: u64,
    /// `sha256` or `blake3`.
    pub hash_alg: String,
    /// The secret's hash, hex.
    pub secret_hash: String,
    /// Who redeems with the secret.
    pub recipient: String,
    /// Who refunds after the lock.
    pub refund: String,
    /// The block height of the lock; the refund is accepted once the tip
    /// has reached it.
    pub locktime: u64,
    /// The funding block's height; `None` while in the mempool.
    pub height: Option<u64>,
    pub confirmations: u64,
    /// Whether a ChainLock covers the funding block.
    pub chainlocked: bool,
    /// Whether the HTLC has been spent (in a block or the mempool).
    pub spent: bool,
    /// The chain's tip height.
    pub tip_height: u64,
}

/// `htlc_find`'s result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HtlcFound {
    pub txid: String,
    pub vout: u32,
    /// `None` while in the mempool.
    pub height: Option<u64>,
}

/// A transaction `htlc_redeem`/`htlc_refund` made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HtlcSpendTx {
    pub txid: String,
    /// The signed transaction, hex.
    pub hex: String,
    /// Whether it was accepted to the mempool (false with `broadcast=false`).
    pub broadcast: bool,
}

/// `htlc_findspend`'s result: how an HTLC was spent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HtlcSpent {
    pub txid: String,
    /// The block height; `None` while in the mempool.
    pub height: Option<u64>,
    /// `redeem` or `refund`.
    pub path: String,
    /// The 32-byte secret a redeem revealed, hex.
    pub secret: Option<String>,
    /// Whether the spend's block is ChainLocked (final however shallow).
    #[serde(default)]
    pub chainlocked: bool,
}

#[rpc(server, client)]
pub trait HtlcApi {
    /// Pays `amount` coins from the wallet into an HTLC: `recipient` (an
    /// address of this chain) redeems with the 32-byte secret whose
    /// `hash_alg` (`sha256` or `blake3`) hash is `secret_hash` (hex); a new
    /// wallet address (`refund_address`, a wallet address, if given)
    /// refunds once the tip reaches block `locktime`.
    #[method(name = "htlc_fund")]
    async fn fund(
        &self,
        recipient: String,
        amount: Value,
        secret_hash: String,
        hash_alg: String,
        locktime: u64,
        refund_address: Option<String>,
    ) -> RpcResult<HtlcFunded>;

    /// The HTLC output with exactly these terms, in the mempool or the last
    /// 1,000 blocks; `null` if there is none. A caller that lost the answer
    /// of `htlc_fund` (a crash) finds out whether it paid.
    #[method(name = "htlc_find")]
    async fn find(
        &self,
        recipient: String,
        secret_hash: String,
        hash_alg: String,
        locktime: u64,
        refund_address: String,
    ) -> RpcResult<Option<HtlcFound>>;

    /// The HTLC at `txid:vout` (an error if that output is not one).
    #[method(name = "htlc_audit")]
    async fn audit(&self, txid: String, vout: u32) -> RpcResult<HtlcAudit>;

    /// Redeems the HTLC at `txid:vout` with `secret` (hex), paying the
    /// recipient's address, whose key the wallet must hold. Broadcast unless
    /// `broadcast` is false.
    #[method(name = "htlc_redeem")]
    async fn redeem(
        &self,
        txid: String,
        vout: u32,
        secret: String,
        broadcast: Option<bool>,
    ) -> RpcResult<HtlcSpendTx>;

    /// Refunds the HTLC at `txid:vout` to its refund address, whose key the
    /// wallet must hold (the same transaction `htlc_fund` signed). Broadcasting before the lock is refused
    /// with the height it becomes possible; `broadcast=false` signs only.
    #[method(name = "htlc_refund")]
    async fn refund(
        &self,
        txid: String,
        vout: u32,
        broadcast: Option<bool>,
    ) -> RpcResult<HtlcSpendTx>;

    /// How the HTLC at `txid:vout` was spent, looking in the mempool and the
    /// blocks from its funding on; `null` while unspent.
    #[method(name = "htlc_findspend")]
    async fn find_spend(&self, txid: String, vout: u32) -> RpcResult<Option<HtlcSpent>>;
}
