//! JSON renderings of chain objects in Bitcoin Core's shapes.

use ruint::aliases::U256;
use rusty_shared_types::{
    Address, Amount, Block, BlockHeader, Encode, Network, Script, Transaction,
};
use rusty_vm::templates::classify;
use serde_json::{json, Value};

use rusty_core::{chain::Chain, pow, tables::IndexEntry};

/// Amounts are JSON numbers in coins, as in Bitcoin Core.
pub fn amount(a: Amount) -> Value {
    json!(a.as_coins_f64())
}

/// A U256 as an f64 (for difficulty ratios only).
fn u256_to_f64(v: &U256) -> f64 {
    v.as_limbs().iter().rev().fold(0.0f64, |acc, limb| {
        acc * 18_446_744_073_709_551_616.0 + *limb as f64
    })
}

/// Difficulty relative to the network's easiest target (1.0 at the limit).
pub fn difficulty(bits: u32, network: Network) -> f64 {
    let limit = pow::target_from_compact(network.params().pow_limit_bits).unwrap_or(U256::MAX);
    match pow::target_from_compact(bits) {
        Ok(t) if t > U256::ZERO => u256_to_f64(&limit) / u256_to_f64(&t),
        _ => 0.0,
    }
}

pub fn script_pubkey(script: &Script, network: Network) -> Value {
    let mut v = json!({
        "hex": hex::encode(script.as_bytes()),
        "type": classify(script).name(),
    });
    if let Some(a) = Address::from_lock_script(network, script) {
        v["address"] = json!(a.to_string());
    }
    v
}

/// A transaction without block context (`decoderawtransaction`).
pub fn transaction(tx: &Transaction, network: Network) -> Value {
    let vin: Vec<Value> = if let Some(h) = tx.coinbase_height() {
        vec![json!({ "coinbase": true, "height": h, "sequence": u32::MAX })]
    } else {
        tx.inputs
            .iter()
            .map(|i| {
                json!({
                    "txid": i.prevout.txid.to_string(),
                    "vout": i.prevout.vout,
                    "scriptSig": { "hex": hex::encode(i.unlock.as_bytes()) },
                    "sequence": i.sequence,
                })
            })
            .collect()
    };
    let vout: Vec<Value> = tx
        .outputs
        .iter()
        .enumerate()
        .map(|(n, o)| {
            json!({
                "value": amount(o.value),
                "n": n,
                "scriptPubKey": script_pubkey(&o.lock, network),
            })
        })
        .collect();
    let size = tx.size();
    let mut v = json!({
        "txid": tx.txid().to_string(),
        "hash": tx.wtxid().to_string(),
        "version": tx.version,
        "size": size,
        "vsize": size,
        "locktime": tx.lock_time,
        "vin": vin,
        "vout": vout,
    });
    if let Some(p) = &tx.payload {
        v["payload"] = json!({ "type": p.kind() });
    }
    v
}

/// Header fields shared by `getblockheader` and `getblock`.
pub fn header(chain: &Chain, entry: &IndexEntry, n_tx: Option<usize>) -> Value {
    let h: &BlockHeader = &entry.header;
    let hash = h.hash();
    let network = chain.params().network;
    let confirmations: i64 = if chain.is_active(&hash) {
        i64::try_from(
            chain
                .height()
                .saturating_sub(entry.height)
                .saturating_add(1),
        )
        .unwrap_or(i64::MAX)
    } else {
        -1
    };
    let mut v = json!({
        "hash": hash.to_string(),
        "confirmations": confirmations,
        "height": entry.height,
        "version": h.version,
        "versionHex": format!("{:08x}", h.version),
        "merkleroot": h.merkle_root.to_string(),
        "stateroot": h.state_root.to_string(),
        "mnlistroot": h.mn_list_root.to_string(),
        "chainlockhash": h.chainlock_hash.to_string(),
        "time": h.time,
        "mediantime": chain.median_time_past(&hash),
        "nonce": h.nonce,
        "bits": format!("{:08x}", h.bits),
        "difficulty": difficulty(h.bits, network),
        "chainwork": hex::encode(entry.chain_work),
    });
    if let Some(n) = n_tx {
        v["nTx"] = json!(n);
    }
    if entry.height > 0 {
        v["previousblockhash"] = json!(h.prev_hash.to_string());
    }
    if confirmations > 0 {
        if let Some(next) = chain.hash_at(entry.height.saturating_add(1)) {
            v["nextblockhash"] = json!(next.to_string());
        }
    }
    v
}

/// `getblock` at verbosity 1 (txids) or 2 (decoded transactions).
pub fn block(chain: &Chain, entry: &IndexEntry, block: &Block, verbosity: u8) -> Value {
    let mut v = header(chain, entry, Some(block.txs.len()));
    v["size"] = json!(block.encode().len());
    let network = chain.params().network;
    v["tx"] = if verbosity >= 2 {
        Value::Array(block.txs.iter().map(|t| transaction(t, network)).collect())
    } else {
        Value::Array(
            block
                .txs
                .iter()
                .map(|t| json!(t.txid().to_string()))
                .collect(),
        )
    };
    v
}
