//! What the swap engine needs of a chain: fund an HTLC, audit one, find
//! how one was spent (and the secret a redeem revealed), redeem, refund,
//! and the tip. [`RpcChain`] implements it for any node of our chains
//! (RSC, PAR, ARC) through its `htlc_*` JSON-RPC methods, so a node swaps
//! on a chain it does not run; an Ethereum adapter would implement the
//! same trait over an HTLC contract.
//!
//! Calls block (the engine runs on a blocking worker): a swap takes
//! minutes, and a slow remote node must not stall the runtime.

use std::time::Duration;

use serde_json::{json, Value};
use thiserror::Error;

use super::messages::HashAlg;
use crate::rpc::client::{ClientError, RpcClient};

/// An HTLC output on some chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HtlcRef {
    pub txid: String,
    pub vout: u32,
}

/// A funded HTLC and the refund signed before it was sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HtlcFunding {
    pub htlc: HtlcRef,
    /// The lock script, hex.
    pub script: String,
    pub refund_tx: String,
    pub refund_txid: String,
}

/// What makes an HTLC's script: who redeems, with which secret hash,
/// until when, and who refunds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtlcTerms {
    pub recipient: String,
    pub hash_alg: HashAlg,
    pub secret_hash: [u8; 32],
    pub locktime: u64,
    pub refund: String,
}

/// An HTLC as its chain shows it (`htlc_audit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtlcView {
    pub amount: u64,
    pub hash_alg: HashAlg,
    pub secret_hash: [u8; 32],
    pub recipient: String,
    pub refund: String,
    pub locktime: u64,
    pub confirmations: u64,
    pub chainlocked: bool,
    pub spent: bool,
}

/// How an HTLC was spent (`htlc_findspend`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtlcSpend {
    pub txid: String,
    /// Confirmations of the spend; 0 in the mempool.
    pub confirmations: u64,
    /// The secret, for a redeem; `None` for a refund.
    pub secret: Option<[u8; 32]>,
    /// Whether the spend's block is ChainLocked.
    pub chainlocked: bool,
}

/// Why a chain call failed. Every failure is retried at the next step:
/// nodes go away and come back, and the chain decides in the end.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AdapterError {
    #[error("{network}: {message}")]
    Call { network: String, message: String },
    #[error("{network}: unexpected answer to {method}: {detail}")]
    BadAnswer {
        network: String,
        method: &'static str,
        detail: String,
    },
}

/// The operations of a swap on one chain.
pub trait ChainAdapter: Send + Sync {
    /// The network's name (`dev`, `par-dev`, …).
    fn network(&self) -> &str;
    /// Blocks on top of a block before it counts as final without a
    /// ChainLock.
    fn final_depth(&self) -> u64;
    fn tip_height(&self) -> Result<u64, AdapterError>;
    /// A new address of the wallet behind this adapter.
    fn new_address(&self) -> Result<String, AdapterError>;
    /// Pays `amount` into an HTLC refunding to `refund` (an address of the
    /// wallet behind this adapter, chosen and saved before the call).
    fn fund(&self, terms: &HtlcTerms, amount: u64) -> Result<HtlcFunding, AdapterError>;
    /// The HTLC with exactly `terms` if one was paid (after a crash lost
    /// `fund`'s answer), with its refund signed.
    fn find_funding(&self, terms: &HtlcTerms) -> Result<Option<HtlcFunding>, AdapterError>;
    /// `None` if the chain does not know the output (yet).
    fn audit(&self, htlc: &HtlcRef) -> Result<Option<HtlcView>, AdapterError>;
    fn find_spend(&self, htlc: &HtlcRef) -> Result<Option<HtlcSpend>, AdapterError>;
    /// Broadcasts the redeem (the same transaction every time).
    fn redeem(&self, htlc: &HtlcRef, secret: [u8; 32]) -> Result<String, AdapterError>;
    /// Broadcasts the refund (the same transaction every time).
    fn refund(&self, htlc: &HtlcRef) -> Result<String, AdapterError>;

    /// Whether `view`'s output is final: ChainLocked, or deep enough.
    fn is_final(&self, view: &HtlcView) -> bool {
        view.chainlocked || view.confirmations >= self.final_depth()
    }

    /// Whether a redeem or refund is final: ChainLocked, or deep enough.
    fn is_spend_final(&self, spend: &HtlcSpend) -> bool {
        spend.chainlocked || spend.confirmations >= self.final_depth()
    }
}

/// A chain reached through a node's JSON-RPC (ours, or a remote node of
/// another chain).
#[derive(Debug)]
pub struct RpcChain {
    network: String,
    /// Replaced when the node's cookie changes (it restarted).
    client: std::sync::Mutex<RpcClient>,
    /// The node's cookie file, read again after an HTTP 401.
    cookie: Option<std::path::PathBuf>,
    final_depth: u64,
}

impl RpcChain {
    pub fn new(network: impl Into<String>, client: RpcClient, final_depth: u64) -> RpcChain {
        RpcChain {
            network: network.into(),
            client: std::sync::Mutex::new(client.with_timeout(Duration::from_secs(30))),
            cookie: None,
            final_depth,
        }
    }

    /// A node authenticated by its cookie file, read now if it is there
    /// and again whenever the node answers 401 (it restarted, or it was
    /// not up yet).
    pub fn with_cookie(
        network: impl Into<String>,
        url: &str,
        cookie: std::path::PathBuf,
        final_depth: u64,
    ) -> Result<RpcChain, ClientError> {
        let client = RpcClient::new(url)?;
        let client = client.clone().with_cookie_file(&cookie).unwrap_or(client);
        let mut chain = RpcChain::new(network, client, final_depth);
        chain.cookie = Some(cookie);
        Ok(chain)
    }

    fn client(&self) -> RpcClient {
        // A poisoned lock only means a panic elsewhere mid-replace; the
        // client inside is whole either way.
        self.client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `method` on the node; after a 401, once more with the cookie read
    /// again.
    fn raw_call(&self, method: &'static str, params: Value) -> Result<Value, ClientError> {
        let client = self.client();
        match (client.call(method, params.clone()), &self.cookie) {
            (Err(ClientError::Unauthorized), Some(path)) => {
                let fresh = RpcClient::new(client.url())?
                    .with_cookie_file(path)?
                    .with_timeout(Duration::from_secs(30));
                *self
                    .client
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh.clone();
                fresh.call(method, params)
            }
            (result, _) => result,
        }
    }

    fn call(&self, method: &'static str, params: Value) -> Result<Value, AdapterError> {
        self.raw_call(method, params)
            .map_err(|e: ClientError| AdapterError::Call {
                network: self.network.clone(),
                message: format!("{method}: {e}"),
            })
    }

    fn bad(&self, method: &'static str, detail: impl Into<String>) -> AdapterError {
        AdapterError::BadAnswer {
            network: self.network.clone(),
            method,
            detail: detail.into(),
        }
    }

    fn string(&self, method: &'static str, v: &Value, field: &str) -> Result<String, AdapterError> {
        v.get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| self.bad(method, format!("no `{field}`")))
    }

    fn number(&self, method: &'static str, v: &Value, field: &str) -> Result<u64, AdapterError> {
        v.get(field)
            .and_then(Value::as_u64)
            .ok_or_else(|| self.bad(method, format!("no `{field}`")))
    }

    fn bytes32(&self, method: &'static str, s: &str) -> Result<[u8; 32], AdapterError> {
        hex::decode(s)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| self.bad(method, "not 32 bytes of hex"))
    }
}

impl ChainAdapter for RpcChain {
    fn network(&self) -> &str {
        &self.network
    }

    fn final_depth(&self) -> u64 {
        self.final_depth
    }

    fn tip_height(&self) -> Result<u64, AdapterError> {
        let v = self.call("getblockcount", json!([]))?;
        v.as_u64()
            .ok_or_else(|| self.bad("getblockcount", v.to_string()))
    }

    fn new_address(&self) -> Result<String, AdapterError> {
        let v = self.call("getnewaddress", json!([]))?;
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.bad("getnewaddress", v.to_string()))
    }

    fn fund(&self, terms: &HtlcTerms, amount: u64) -> Result<HtlcFunding, AdapterError> {
        const M: &str = "htlc_fund";
        // Coins as a decimal string: exact, whatever the amount.
        let coins = format!("{}.{:08}", amount / 100_000_000, amount % 100_000_000);
        let v = self.call(
            M,
            json!([
                terms.recipient,
                coins,
                hex::encode(terms.secret_hash),
                terms.hash_alg.name(),
                terms.locktime,
                terms.refund
            ]),
        )?;
        Ok(HtlcFunding {
            htlc: HtlcRef {
                txid: self.string(M, &v, "txid")?,
                vout: u32::try_from(self.number(M, &v, "vout")?)
                    .map_err(|_| self.bad(M, "vout out of range"))?,
            },
            script: self.string(M, &v, "script")?,
            refund_tx: self.string(M, &v, "refund_tx")?,
            refund_txid: self.string(M, &v, "refund_txid")?,
        })
    }

    fn find_funding(&self, terms: &HtlcTerms) -> Result<Option<HtlcFunding>, AdapterError> {
        const M: &str = "htlc_find";
        let v = self.call(
            M,
            json!([
                terms.recipient,
                hex::encode(terms.secret_hash),
                terms.hash_alg.name(),
                terms.locktime,
                terms.refund
            ]),
        )?;
        if v.is_null() {
            return Ok(None);
        }
        let htlc = HtlcRef {
            txid: self.string(M, &v, "txid")?,
            vout: u32::try_from(self.number(M, &v, "vout")?)
                .map_err(|_| self.bad(M, "vout out of range"))?,
        };
        // The refund, signed again (the same transaction as at funding).
        let r = self.call("htlc_refund", json!([htlc.txid, htlc.vout, false]))?;
        Ok(Some(HtlcFunding {
            script: String::new(),
            refund_tx: self.string("htlc_refund", &r, "hex")?,
            refund_txid: self.string("htlc_refund", &r, "txid")?,
            htlc,
        }))
    }

    fn audit(&self, htlc: &HtlcRef) -> Result<Option<HtlcView>, AdapterError> {
        const M: &str = "htlc_audit";
        let v = match self.raw_call(M, json!([htlc.txid, htlc.vout])) {
            Ok(v) => v,
            // -5: no such output (not seen yet, or never).
            Err(ClientError::Rpc { code: -5, .. }) => return Ok(None),
            Err(e) => {
                return Err(AdapterError::Call {
                    network: self.network.clone(),
                    message: format!("{M}: {e}"),
                })
            }
        };
        let hash_alg = match self.string(M, &v, "hash_alg")?.as_str() {
            "sha256" => HashAlg::Sha256,
            "blake3" => HashAlg::Blake3,
            other => return Err(self.bad(M, format!("hash algorithm {other}"))),
        };
        Ok(Some(HtlcView {
            amount: self.number(M, &v, "amount_units")?,
            hash_alg,
            secret_hash: self.bytes32(M, &self.string(M, &v, "secret_hash")?)?,
            recipient: self.string(M, &v, "recipient")?,
            refund: self.string(M, &v, "refund")?,
            locktime: self.number(M, &v, "locktime")?,
            confirmations: self.number(M, &v, "confirmations")?,
            chainlocked: v.get("chainlocked").and_then(Value::as_bool) == Some(true),
            spent: v.get("spent").and_then(Value::as_bool) == Some(true),
        }))
    }

    fn find_spend(&self, htlc: &HtlcRef) -> Result<Option<HtlcSpend>, AdapterError> {
        const M: &str = "htlc_findspend";
        let v = self.call(M, json!([htlc.txid, htlc.vout]))?;
        if v.is_null() {
            return Ok(None);
        }
        let confirmations = match v.get("height").and_then(Value::as_u64) {
            Some(h) => self.tip_height()?.saturating_sub(h) + 1,
            None => 0,
        };
        let secret = match v.get("secret").and_then(Value::as_str) {
            Some(s) => Some(self.bytes32(M, s)?),
            None => None,
        };
        Ok(Some(HtlcSpend {
            txid: self.string(M, &v, "txid")?,
            confirmations,
            secret,
            chainlocked: v.get("chainlocked").and_then(Value::as_bool) == Some(true),
        }))
    }

    fn redeem(&self, htlc: &HtlcRef, secret: [u8; 32]) -> Result<String, AdapterError> {
        let v = self.call(
            "htlc_redeem",
            json!([htlc.txid, htlc.vout, hex::encode(secret)]),
        )?;
        self.string("htlc_redeem", &v, "txid")
    }

    fn refund(&self, htlc: &HtlcRef) -> Result<String, AdapterError> {
        let v = self.call("htlc_refund", json!([htlc.txid, htlc.vout]))?;
        self.string("htlc_refund", &v, "txid")
    }
}
