//! JSON renderings of chain objects in Bitcoin Core's shapes.

use ruint::aliases::U256;
use rusty_shared_types::{
    Address, Amount, Block, BlockHeader, Encode, Network, Payload, Script, Transaction, TxOut,
};
use rusty_vm::{instruction::disassemble, templates::classify};
use serde_json::{json, Value};

use rusty_core::{
    chain::Chain,
    pow,
    tables::{BlockUndo, IndexEntry},
};

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

/// Hashes per second over the last `blocks` blocks of the active chain:
/// the chain work they added over the time they took (Core's
/// `getnetworkhashps`); 0 with fewer than two blocks or no elapsed time.
pub fn network_hashps(chain: &Chain, blocks: u64) -> f64 {
    let tip = chain.tip_entry();
    let start_height = tip.height.saturating_sub(blocks);
    let Some(start) = chain.hash_at(start_height).and_then(|h| chain.entry(&h)) else {
        return 0.0;
    };
    let elapsed = tip.header.time.saturating_sub(start.header.time);
    if elapsed == 0 || tip.height == start.height {
        return 0.0;
    }
    let work =
        U256::from_be_bytes(tip.chain_work).saturating_sub(U256::from_be_bytes(start.chain_work));
    u256_to_f64(&work) / elapsed as f64
}

/// Difficulty relative to the network's easiest target (1.0 at the limit).
pub fn difficulty(bits: u32, network: Network) -> f64 {
    let limit = pow::target_from_compact(network.params().pow_limit_bits).unwrap_or(U256::MAX);
    match pow::target_from_compact(bits) {
        Ok(t) if t > U256::ZERO => u256_to_f64(&limit) / u256_to_f64(&t),
        _ => 0.0,
    }
}

/// A lock script as Core's `scriptPubKey`: `asm` is FerrisScript's
/// disassembly (its own opcodes, Bitcoin's conventions: pushes as hex,
/// small numbers as digits).
pub fn script_pubkey(script: &Script, network: Network) -> Value {
    let mut v = json!({
        "asm": disassemble(script),
        "hex": hex::encode(script.as_bytes()),
        "type": classify(script).name(),
    });
    if let Some(a) = Address::from_lock_script(network, script) {
        v["address"] = json!(a.to_string());
    }
    v
}

/// An unlock script as Core's `scriptSig`.
fn script_sig(script: &Script) -> Value {
    json!({
        "asm": disassemble(script),
        "hex": hex::encode(script.as_bytes()),
    })
}

/// An output a transaction spends, as `getrawtransaction` verbosity 2
/// shows it in `vin[].prevout`.
#[derive(Debug, Clone)]
pub struct Prevout {
    /// Created by a coinbase.
    pub generated: bool,
    /// Height of the block that created it; Core's `MEMPOOL_HEIGHT`
    /// (0x7fffffff) for an output of a pool transaction.
    pub height: u64,
    pub output: TxOut,
}

/// Core's height for an output created in the mempool.
pub const MEMPOOL_HEIGHT: u64 = 0x7fff_ffff;

/// What a transaction is rendered with beyond its own bytes.
#[derive(Debug, Clone, Default)]
pub struct TxExtras {
    /// Include the serialized transaction as `hex` (getrawtransaction,
    /// getblock verbosity 2; not decoderawtransaction).
    pub hex: bool,
    /// The fee, when the spent outputs are known (getblock verbosity 2
    /// from the block's undo data; mempool entries).
    pub fee: Option<Amount>,
    /// The spent outputs in input order (getrawtransaction verbosity 2).
    pub prevouts: Option<Vec<Prevout>>,
}

/// A transaction in Core's shape. There is no witness: `vsize` equals
/// `size` and `weight` is 4 × `size`, as BIP 141 defines them for a
/// transaction without one.
pub fn transaction(tx: &Transaction, network: Network, extras: &TxExtras) -> Value {
    let vin: Vec<Value> = match &tx.payload {
        // The coinbase has no inputs; its payload (height, extra data) is
        // what Bitcoin's coinbase script carries, so that is `coinbase`.
        Some(p @ Payload::Coinbase(_)) if tx.inputs.is_empty() => {
            vec![json!({ "coinbase": hex::encode(p.encode()), "sequence": u32::MAX })]
        }
        _ => tx
            .inputs
            .iter()
            .enumerate()
            .map(|(n, i)| {
                let mut v = json!({
                    "txid": i.prevout.txid.to_string(),
                    "vout": i.prevout.vout,
                    "scriptSig": script_sig(&i.unlock),
                    "sequence": i.sequence,
                });
                if let Some(p) = extras.prevouts.as_ref().and_then(|p| p.get(n)) {
                    v["prevout"] = json!({
                        "generated": p.generated,
                        "height": p.height,
                        "value": amount(p.output.value),
                        "scriptPubKey": script_pubkey(&p.output.lock, network),
                    });
                }
                v
            })
            .collect(),
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
        "weight": size.saturating_mul(4),
        "locktime": tx.lock_time,
        "vin": vin,
        "vout": vout,
    });
    if let Some(p) = &tx.payload {
        v["payload"] = json!({ "type": p.kind() });
    }
    if let Some(fee) = extras.fee {
        v["fee"] = amount(fee);
    }
    if extras.hex {
        v["hex"] = json!(hex::encode(tx.encode()));
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

/// `getblock` at verbosity 1 (txids) or 2 (decoded transactions, each
/// with `hex`, and `fee` when `undo` — the coins the block spent, in input
/// order — is at hand).
pub fn block(
    chain: &Chain,
    entry: &IndexEntry,
    block: &Block,
    verbosity: u8,
    undo: Option<&BlockUndo>,
) -> Value {
    let mut v = header(chain, entry, Some(block.txs.len()));
    let size = block.encode().len();
    v["size"] = json!(size);
    v["strippedsize"] = json!(size);
    v["weight"] = json!(size.saturating_mul(4));
    let network = chain.params().network;
    v["tx"] = if verbosity >= 2 {
        let mut spent = undo.map(|u| u.spent.iter());
        let txs = block.txs.iter().map(|t| {
            let mut fee = None;
            if !t.inputs.is_empty() {
                if let Some(spent) = spent.as_mut() {
                    let inputs: Option<Vec<Amount>> = t
                        .inputs
                        .iter()
                        .map(|_| spent.next().map(|c| c.output.value))
                        .collect();
                    let paid = Amount::checked_sum(t.outputs.iter().map(|o| o.value)).ok();
                    fee = inputs
                        .and_then(|i| Amount::checked_sum(i).ok())
                        .zip(paid)
                        .and_then(|(i, o)| i.checked_sub(o).ok());
                }
            }
            transaction(
                t,
                network,
                &TxExtras {
                    hex: true,
                    fee,
                    prevouts: None,
                },
            )
        });
        Value::Array(txs.collect())
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
