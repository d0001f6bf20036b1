//! The Ethereum side of a swap: [`EthChain`] implements
//! [`ChainAdapter`] over any Ethereum node's standard JSON-RPC (no
//! wallet or admin method: this adapter signs its own EIP-155
//! transactions with its key) and the `RustyHtlc` contract beside this
//! file (Solidity, compiled with the pinned solc by
//! `tests/eth/compile.js`; the tests check the committed bytecode is
//! what the source compiles to).
//!
//! How the UTXO notions map:
//! - an HTLC is a lock in the contract; its [`HtlcRef`] is the funding
//!   transaction's hash (vout 0), and the lock id, contract and terms are
//!   read from that transaction's receipt, so the other side needs
//!   nothing but the hash;
//! - the audit also checks that the contract's code is exactly
//!   `RustyHtlc`'s, so a look-alike contract cannot fake a lock;
//! - amounts are in gwei (the swap's base unit on Ethereum);
//! - lock heights are block numbers, as on our chains;
//! - there is no refund to pre-sign (an Ethereum transaction's nonce is
//!   not known in advance): the refund is a call anyone may make from the
//!   lock height on, signed when due and checked by `eth_call` first, so
//!   a refused call costs no gas.
//!
//! Only SHA-256 hash locks: Ethereum has no BLAKE3 precompile.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::Mutex,
    time::{Duration, Instant},
};

use rusty_crypto::eth::{
    abi::{call_data, word_address, word_uint},
    address_hex, keccak256, parse_address, EthAddress, EthKey, LegacyTx, SignedTx,
};
use serde_json::{json, Value};

use super::{
    adapter::{AdapterError, ChainAdapter, HtlcFunding, HtlcRef, HtlcSpend, HtlcTerms, HtlcView},
    messages::HashAlg,
    networks::BridgeNetwork,
};
use crate::rpc::client::{ClientError, RpcClient};

/// The contract's creation bytecode (hex), as solc compiled it.
const CREATION_CODE: &str = include_str!("RustyHtlc.bin");
/// The code a deployed `RustyHtlc` has (hex): what the audit compares.
const RUNTIME_CODE: &str = include_str!("RustyHtlc.runtime.bin");

/// 1 gwei (the swap's base unit) in wei.
const WEI_PER_UNIT: u128 = 1_000_000_000;

/// Gas limits: measured use is about 100k for `lock`, 40k for `redeem` and
/// `refund`, 500k to deploy; the rest is headroom (unused gas is not paid).
const GAS_LOCK: u64 = 250_000;
const GAS_SPEND: u64 = 120_000;
const GAS_DEPLOY: u64 = 1_000_000;

/// How long a deployment may take to be mined.
const DEPLOY_WAIT: Duration = Duration::from_secs(60);

/// The `State` enum of the contract.
const STATE_NONE: u8 = 0;
const STATE_OPEN: u8 = 1;

fn topic(signature: &str) -> String {
    format!("0x{}", hex::encode(keccak256(signature.as_bytes())))
}

const LOCK_FN: &str = "lock(address,bytes32,uint256)";
const REDEEM_FN: &str = "redeem(bytes32,bytes32)";
const REFUND_FN: &str = "refund(bytes32)";
const LOCKS_FN: &str = "locks(bytes32)";
const LOCKED_EVENT: &str = "Locked(bytes32,address,address,uint256,bytes32,uint256)";
const REDEEMED_EVENT: &str = "Redeemed(bytes32,bytes32)";
const REFUNDED_EVENT: &str = "Refunded(bytes32)";

/// The lock id, as the contract's `lockId` computes it.
pub fn lock_id(
    sender: &EthAddress,
    recipient: &EthAddress,
    secret_hash: &[u8; 32],
    lock_height: u64,
) -> [u8; 32] {
    let mut encoded = Vec::with_capacity(128);
    encoded.extend_from_slice(&word_address(sender));
    encoded.extend_from_slice(&word_address(recipient));
    encoded.extend_from_slice(secret_hash);
    encoded.extend_from_slice(&word_uint(lock_height.into()));
    keccak256(&encoded)
}

/// A lock as the funding transaction's `Locked` event records it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LockedEvent {
    contract: EthAddress,
    id: [u8; 32],
    sender: EthAddress,
    recipient: EthAddress,
    wei: u128,
    secret_hash: [u8; 32],
    lock_height: u64,
    block: u64,
}

/// What the adapter needs to reach an Ethereum node.
#[derive(Debug, Clone)]
pub struct EthConfig {
    pub chain_id: u64,
    pub url: String,
    pub key: EthKey,
    /// A deployed `RustyHtlc` to lock in; `None` deploys one on the first
    /// funding and remembers it in `state_dir`.
    pub contract: Option<EthAddress>,
    /// Where the deployed contract's address is kept.
    pub state_dir: PathBuf,
    /// Confirmations before a lock counts as final.
    pub final_depth: u64,
}

/// A swap's view of an Ethereum chain.
#[derive(Debug)]
pub struct EthChain {
    network: String,
    final_depth: u64,
    client: RpcClient,
    chain_id: u64,
    key: EthKey,
    address: EthAddress,
    contract: Mutex<Option<EthAddress>>,
    state_dir: PathBuf,
    /// Contracts whose code was checked to be `RustyHtlc`'s.
    verified: Mutex<HashSet<EthAddress>>,
    /// Transactions sent per (what, lock id), resent as they are while
    /// unmined, so a retry never signs a second one.
    sent: Mutex<HashMap<(&'static str, [u8; 32]), SignedTx>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere; the data is whole.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn hex_u64(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.strip_prefix("0x")?, 16).ok()
}

fn hex_u128(v: &Value) -> Option<u128> {
    u128::from_str_radix(v.as_str()?.strip_prefix("0x")?, 16).ok()
}

fn hex_data(v: &Value) -> Option<Vec<u8>> {
    hex::decode(v.as_str()?.strip_prefix("0x")?).ok()
}

fn word(data: &[u8], index: usize) -> Option<[u8; 32]> {
    data.get(index * 32..(index + 1) * 32)?.try_into().ok()
}

fn word_to_address(word: &[u8; 32]) -> Option<EthAddress> {
    if word[..12].iter().any(|b| *b != 0) {
        return None;
    }
    word[12..].try_into().ok()
}

fn word_to_u128(word: &[u8; 32]) -> Option<u128> {
    if word[..16].iter().any(|b| *b != 0) {
        return None;
    }
    Some(u128::from_be_bytes(word[16..].try_into().ok()?))
}

impl EthChain {
    pub fn new(config: EthConfig) -> Result<EthChain, String> {
        let network = BridgeNetwork::Eth {
            chain_id: config.chain_id,
        };
        let client = RpcClient::new(&config.url)
            .map_err(|e| e.to_string())?
            .with_timeout(Duration::from_secs(30));
        let address = config.key.address();
        Ok(EthChain {
            network: network.name(),
            final_depth: config.final_depth,
            client,
            chain_id: config.chain_id,
            key: config.key,
            address,
            contract: Mutex::new(config.contract),
            state_dir: config.state_dir,
            verified: Mutex::new(HashSet::new()),
            sent: Mutex::new(HashMap::new()),
        })
    }

    /// This adapter's account.
    pub fn address(&self) -> EthAddress {
        self.address
    }

    fn err(&self, method: &str, e: impl std::fmt::Display) -> AdapterError {
        AdapterError::Call {
            network: self.network.clone(),
            message: format!("{method}: {e}"),
        }
    }

    fn bad(&self, method: &'static str, detail: impl Into<String>) -> AdapterError {
        AdapterError::BadAnswer {
            network: self.network.clone(),
            method,
            detail: detail.into(),
        }
    }

    fn call(&self, method: &'static str, params: Value) -> Result<Value, AdapterError> {
        self.client
            .call(method, params)
            .map_err(|e| self.err(method, e))
    }

    fn chain_id_checked(&self) -> Result<(), AdapterError> {
        let v = self.call("eth_chainId", json!([]))?;
        match hex_u64(&v) {
            Some(id) if id == self.chain_id => Ok(()),
            Some(id) => Err(self.err(
                "eth_chainId",
                format!("the node is on chain {id}, not {}", self.chain_id),
            )),
            None => Err(self.bad("eth_chainId", v.to_string())),
        }
    }

    /// `eth_call` of `data` on `to` from our account: its return data, or
    /// the revert reason as an error.
    fn eth_call(&self, to: &EthAddress, data: &[u8]) -> Result<Vec<u8>, AdapterError> {
        let v = self.call(
            "eth_call",
            json!([{
                "from": address_hex(&self.address),
                "to": address_hex(to),
                "data": format!("0x{}", hex::encode(data)),
            }, "latest"]),
        )?;
        hex_data(&v).ok_or_else(|| self.bad("eth_call", v.to_string()))
    }

    fn code_is_htlc(&self, contract: &EthAddress) -> Result<bool, AdapterError> {
        if lock(&self.verified).contains(contract) {
            return Ok(true);
        }
        let v = self.call("eth_getCode", json!([address_hex(contract), "latest"]))?;
        let code = v.as_str().and_then(|s| s.strip_prefix("0x")).unwrap_or("");
        let ok = code.eq_ignore_ascii_case(RUNTIME_CODE.trim());
        if ok {
            lock(&self.verified).insert(*contract);
        }
        Ok(ok)
    }

    /// Signs and sends a transaction with our next nonce.
    fn send(
        &self,
        to: Option<EthAddress>,
        value: u128,
        data: Vec<u8>,
        gas_limit: u64,
    ) -> Result<SignedTx, AdapterError> {
        self.chain_id_checked()?;
        let nonce_v = self.call(
            "eth_getTransactionCount",
            json!([address_hex(&self.address), "pending"]),
        )?;
        let nonce = hex_u64(&nonce_v)
            .ok_or_else(|| self.bad("eth_getTransactionCount", nonce_v.to_string()))?;
        let price_v = self.call("eth_gasPrice", json!([]))?;
        let price =
            hex_u128(&price_v).ok_or_else(|| self.bad("eth_gasPrice", price_v.to_string()))?;
        // Twice the quoted price: still included if the base fee rises
        // for a few blocks (legacy transactions pay exactly their price).
        let tx = LegacyTx {
            nonce,
            gas_price: price.saturating_mul(2),
            gas_limit,
            to,
            value,
            data,
            chain_id: self.chain_id,
        };
        let signed = tx.sign(&self.key).map_err(|e| self.err("sign", e))?;
        self.broadcast(&signed)?;
        Ok(signed)
    }

    /// Sends `signed`; a node that already has it is fine.
    fn broadcast(&self, signed: &SignedTx) -> Result<(), AdapterError> {
        match self.client.call(
            "eth_sendRawTransaction",
            json!([format!("0x{}", hex::encode(&signed.raw))]),
        ) {
            Ok(_) => Ok(()),
            Err(ClientError::Rpc { message, .. })
                if message.contains("already known") || message.contains("nonce too low") =>
            {
                Ok(())
            }
            Err(e) => Err(self.err("eth_sendRawTransaction", e)),
        }
    }

    fn receipt(&self, hash: &[u8; 32]) -> Result<Option<Value>, AdapterError> {
        let v = self.call(
            "eth_getTransactionReceipt",
            json!([format!("0x{}", hex::encode(hash))]),
        )?;
        Ok((!v.is_null()).then_some(v))
    }

    /// The contract we lock in: the configured one, the one deployed
    /// before (its address on disk), or a new deployment.
    fn own_contract(&self) -> Result<EthAddress, AdapterError> {
        if let Some(c) = *lock(&self.contract) {
            // A configured address is checked before the first payment
            // into it (then remembered as verified).
            if !self.code_is_htlc(&c)? {
                return Err(self.err(
                    "contract",
                    format!("{} is not a RustyHtlc contract", address_hex(&c)),
                ));
            }
            return Ok(c);
        }
        let file = self
            .state_dir
            .join(format!("eth-{}-htlc-contract", self.chain_id));
        if let Some(c) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|s| parse_address(s.trim()).ok())
        {
            if self.code_is_htlc(&c)? {
                *lock(&self.contract) = Some(c);
                return Ok(c);
            }
        }
        let code = hex::decode(CREATION_CODE.trim()).map_err(|e| self.err("deploy", e))?;
        let signed = self.send(None, 0, code, GAS_DEPLOY)?;
        let started = Instant::now();
        let receipt = loop {
            if let Some(r) = self.receipt(&signed.hash)? {
                break r;
            }
            if started.elapsed() > DEPLOY_WAIT {
                return Err(self.err("deploy", "the deployment was not mined within 60 s"));
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        let contract = receipt
            .get("contractAddress")
            .and_then(Value::as_str)
            .and_then(|s| parse_address(s).ok())
            .ok_or_else(|| self.bad("eth_getTransactionReceipt", "no contractAddress"))?;
        if !self.code_is_htlc(&contract)? {
            return Err(self.err("deploy", "the deployed code is not RustyHtlc's"));
        }
        std::fs::write(&file, address_hex(&contract)).map_err(|e| self.err("deploy", e))?;
        tracing::info!(target: "bridge", contract = %address_hex(&contract), "deployed RustyHtlc");
        *lock(&self.contract) = Some(contract);
        Ok(contract)
    }

    /// The lock's state and amount (`locks(id)`).
    fn lock_state(&self, contract: &EthAddress, id: &[u8; 32]) -> Result<u8, AdapterError> {
        let out = self.eth_call(contract, &call_data(LOCKS_FN, &[*id]))?;
        word(&out, 5)
            .and_then(|w| word_to_u128(&w))
            .and_then(|s| u8::try_from(s).ok())
            .ok_or_else(|| self.bad("eth_call", "locks(id) is not six words"))
    }

    /// The `Locked` event of a funding transaction, if it is mined,
    /// succeeded and locked in a genuine `RustyHtlc`.
    fn locked_event(&self, htlc: &HtlcRef) -> Result<Option<LockedEvent>, AdapterError> {
        const M: &str = "eth_getTransactionReceipt";
        let hash: [u8; 32] = hex::decode(&htlc.txid)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| self.err(M, format!("`{}` is not a transaction hash", htlc.txid)))?;
        let Some(receipt) = self.receipt(&hash)? else {
            return Ok(None);
        };
        if hex_u64(&receipt["status"]) != Some(1) {
            return Err(self.err(M, "the funding transaction failed (reverted)"));
        }
        let block =
            hex_u64(&receipt["blockNumber"]).ok_or_else(|| self.bad(M, "no blockNumber"))?;
        let locked_topic = topic(LOCKED_EVENT);
        let logs = receipt["logs"].as_array().cloned().unwrap_or_default();
        let Some(log) = logs.iter().find(|l| {
            l["topics"][0]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case(&locked_topic))
        }) else {
            return Err(self.err(M, "the transaction locked nothing in an HTLC contract"));
        };
        let contract = log["address"]
            .as_str()
            .and_then(|s| parse_address(s).ok())
            .ok_or_else(|| self.bad(M, "a log without an address"))?;
        if !self.code_is_htlc(&contract)? {
            return Err(self.err(
                M,
                format!("{} is not the RustyHtlc contract", address_hex(&contract)),
            ));
        }
        let topic_word = |i: usize| -> Option<[u8; 32]> {
            hex_data(&log["topics"][i]).and_then(|b| b.try_into().ok())
        };
        let data = hex_data(&log["data"]).unwrap_or_default();
        let event = (|| {
            Some(LockedEvent {
                contract,
                id: topic_word(1)?,
                sender: word_to_address(&topic_word(2)?)?,
                recipient: word_to_address(&topic_word(3)?)?,
                wei: word_to_u128(&word(&data, 0)?)?,
                secret_hash: word(&data, 1)?,
                lock_height: u64::try_from(word_to_u128(&word(&data, 2)?)?).ok()?,
                block,
            })
        })();
        event
            .map(Some)
            .ok_or_else(|| self.bad(M, "a malformed Locked event"))
    }

    fn event_of(&self, htlc: &HtlcRef) -> Result<LockedEvent, AdapterError> {
        self.locked_event(htlc)?
            .ok_or_else(|| self.err("htlc", format!("funding {} is not mined", htlc.txid)))
    }

    /// Sends `data` to the lock's contract once per (what, lock): a retry
    /// resends the same transaction while it is unmined; a new one is
    /// signed only after `eth_call` shows it would succeed.
    fn spend(
        &self,
        what: &'static str,
        event: &LockedEvent,
        data: Vec<u8>,
    ) -> Result<String, AdapterError> {
        let key = (what, event.id);
        let previous = lock(&self.sent).get(&key).cloned();
        if let Some(signed) = previous {
            match self.receipt(&signed.hash)? {
                None => {
                    self.broadcast(&signed)?;
                    return Ok(hex::encode(signed.hash));
                }
                Some(r) if hex_u64(&r["status"]) == Some(1) => return Ok(hex::encode(signed.hash)),
                Some(_) => {
                    lock(&self.sent).remove(&key);
                }
            }
        }
        // Refused calls (not open, wrong secret, too early) end here with
        // the contract's reason, costing nothing.
        self.eth_call(&event.contract, &data)?;
        let signed = self.send(Some(event.contract), 0, data, GAS_SPEND)?;
        lock(&self.sent).insert(key, signed.clone());
        Ok(hex::encode(signed.hash))
    }

    /// The recipient and lock id of our lock with `terms`.
    fn terms_lock(&self, terms: &HtlcTerms) -> Result<(EthAddress, [u8; 32]), AdapterError> {
        let recipient = parse_address(&terms.recipient).map_err(|e| self.err("htlc", e))?;
        let id = lock_id(
            &self.address,
            &recipient,
            &terms.secret_hash,
            terms.locktime,
        );
        Ok((recipient, id))
    }

    fn funding_of(&self, contract: EthAddress, signed_hash: [u8; 32]) -> HtlcFunding {
        HtlcFunding {
            htlc: HtlcRef {
                txid: hex::encode(signed_hash),
                vout: 0,
            },
            script: hex::encode(contract),
            refund_tx: String::new(),
            refund_txid: String::new(),
        }
    }
}

impl ChainAdapter for EthChain {
    fn network(&self) -> &str {
        &self.network
    }

    fn final_depth(&self) -> u64 {
        self.final_depth
    }

    fn tip_height(&self) -> Result<u64, AdapterError> {
        let v = self.call("eth_blockNumber", json!([]))?;
        hex_u64(&v).ok_or_else(|| self.bad("eth_blockNumber", v.to_string()))
    }

    /// Our one account: it receives redeems and refunds.
    fn new_address(&self) -> Result<String, AdapterError> {
        Ok(address_hex(&self.address))
    }

    fn fund(&self, terms: &HtlcTerms, amount: u64) -> Result<HtlcFunding, AdapterError> {
        if terms.hash_alg != HashAlg::Sha256 {
            return Err(self.err("fund", "Ethereum HTLCs lock to SHA-256 only"));
        }
        let (recipient, id) = self.terms_lock(terms)?;
        let contract = self.own_contract()?;
        if let Some(signed) = lock(&self.sent).get(&("lock", id)).cloned() {
            self.broadcast(&signed)?;
            return Ok(self.funding_of(contract, signed.hash));
        }
        if let Some(found) = self.find_funding(terms)? {
            return Ok(found);
        }
        let data = call_data(
            LOCK_FN,
            &[
                word_address(&recipient),
                terms.secret_hash,
                word_uint(terms.locktime.into()),
            ],
        );
        let wei = u128::from(amount) * WEI_PER_UNIT;
        let signed = self.send(Some(contract), wei, data, GAS_LOCK)?;
        lock(&self.sent).insert(("lock", id), signed.clone());
        Ok(self.funding_of(contract, signed.hash))
    }

    fn find_funding(&self, terms: &HtlcTerms) -> Result<Option<HtlcFunding>, AdapterError> {
        let (_, id) = self.terms_lock(terms)?;
        let contract = self.own_contract()?;
        if self.lock_state(&contract, &id)? == STATE_NONE {
            return Ok(None);
        }
        let logs = self.call(
            "eth_getLogs",
            json!([{
                "address": address_hex(&contract),
                "fromBlock": "0x0",
                "toBlock": "latest",
                "topics": [topic(LOCKED_EVENT), format!("0x{}", hex::encode(id))],
            }]),
        )?;
        let hash = logs
            .get(0)
            .and_then(|l| hex_data(&l["transactionHash"]))
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| self.bad("eth_getLogs", "an open lock without its Locked event"))?;
        Ok(Some(self.funding_of(contract, hash)))
    }

    fn audit(&self, htlc: &HtlcRef) -> Result<Option<HtlcView>, AdapterError> {
        let Some(event) = self.locked_event(htlc)? else {
            return Ok(None);
        };
        let state = self.lock_state(&event.contract, &event.id)?;
        let tip = self.tip_height()?;
        Ok(Some(HtlcView {
            amount: u64::try_from(event.wei / WEI_PER_UNIT).unwrap_or(u64::MAX),
            hash_alg: HashAlg::Sha256,
            secret_hash: event.secret_hash,
            recipient: address_hex(&event.recipient),
            refund: address_hex(&event.sender),
            locktime: event.lock_height,
            confirmations: tip.saturating_sub(event.block) + 1,
            chainlocked: false,
            spent: state != STATE_OPEN,
        }))
    }

    fn find_spend(&self, htlc: &HtlcRef) -> Result<Option<HtlcSpend>, AdapterError> {
        let Some(event) = self.locked_event(htlc)? else {
            return Ok(None);
        };
        let (redeemed, refunded) = (topic(REDEEMED_EVENT), topic(REFUNDED_EVENT));
        let logs = self.call(
            "eth_getLogs",
            json!([{
                "address": address_hex(&event.contract),
                "fromBlock": format!("0x{:x}", event.block),
                "toBlock": "latest",
                "topics": [[redeemed, refunded], format!("0x{}", hex::encode(event.id))],
            }]),
        )?;
        let Some(log) = logs.as_array().and_then(|l| l.first()) else {
            return Ok(None);
        };
        const M: &str = "eth_getLogs";
        let txid = log["transactionHash"]
            .as_str()
            .and_then(|s| s.strip_prefix("0x"))
            .ok_or_else(|| self.bad(M, "a log without its transaction"))?
            .to_ascii_lowercase();
        let block = hex_u64(&log["blockNumber"]).ok_or_else(|| self.bad(M, "no blockNumber"))?;
        let is_redeem = log["topics"][0]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(&redeemed));
        let secret = if is_redeem {
            let data = hex_data(&log["data"]).unwrap_or_default();
            Some(word(&data, 0).ok_or_else(|| self.bad(M, "a Redeemed event without a secret"))?)
        } else {
            None
        };
        let tip = self.tip_height()?;
        Ok(Some(HtlcSpend {
            txid,
            confirmations: tip.saturating_sub(block) + 1,
            secret,
            chainlocked: false,
        }))
    }

    fn redeem(&self, htlc: &HtlcRef, secret: [u8; 32]) -> Result<String, AdapterError> {
        let event = self.event_of(htlc)?;
        let data = call_data(REDEEM_FN, &[event.id, secret]);
        self.spend("redeem", &event, data)
    }

    fn refund(&self, htlc: &HtlcRef) -> Result<String, AdapterError> {
        let event = self.event_of(htlc)?;
        let data = call_data(REFUND_FN, &[event.id]);
        self.spend("refund", &event, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusty_crypto::eth::abi::selector;

    /// The selectors solc put in the ABI's functions are the ones this
    /// adapter calls.
    #[test]
    fn selectors_match_the_committed_abi() {
        let abi: Value = serde_json::from_str(include_str!("RustyHtlc.abi.json")).unwrap();
        let names: Vec<String> = abi
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let inputs: Vec<&str> = item["inputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["type"].as_str().unwrap())
                    .collect();
                format!(
                    "{}({})",
                    item["name"].as_str().unwrap_or(""),
                    inputs.join(",")
                )
            })
            .collect();
        for signature in [
            LOCK_FN,
            REDEEM_FN,
            REFUND_FN,
            LOCKS_FN,
            LOCKED_EVENT,
            REDEEMED_EVENT,
            REFUNDED_EVENT,
        ] {
            assert!(
                names.iter().any(|n| n == signature),
                "{signature} not in the ABI"
            );
        }
        // And the runtime code contains each function's selector.
        for f in [LOCK_FN, REDEEM_FN, REFUND_FN, LOCKS_FN] {
            let sel = hex::encode(selector(f));
            assert!(RUNTIME_CODE.contains(&sel), "{f} ({sel}) not in the code");
        }
    }

    #[test]
    fn words_refuse_dirty_high_bytes() {
        let mut w = [0u8; 32];
        w[31] = 1;
        assert_eq!(word_to_address(&w).map(|a| a[19]), Some(1));
        w[0] = 1;
        assert_eq!(word_to_address(&w), None);
        assert_eq!(word_to_u128(&w), None);
        assert_eq!(word(&[0u8; 40], 1), None);
    }
}
