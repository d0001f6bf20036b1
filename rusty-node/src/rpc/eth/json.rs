//! Ethereum's JSON shapes of blocks, transactions, receipts, logs and
//! proofs, with the fields and types ethers.js, viem and web3.py read.

use jsonrpsee::types::ErrorObjectOwned;
use ruint::aliases::U256;
use rusty_core::{
    contracts::{AccountWorld, ContractError, EthReceipt},
    state::NodeState,
};
use rusty_crypto::eth::{keccak256, tx as eth_tx};
use rusty_shared_types::{evm::EvmParams, Hash256, Payload};
use serde_json::{json, Value};

use super::{
    data, invalid, parse_addr, parse_block_ref, parse_hash32, qty, qty256, server, BlockRef,
};

/// keccak256(rlp([])): the hash of no uncles.
const EMPTY_UNCLES: &str = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347";

fn store(e: impl std::fmt::Display) -> ErrorObjectOwned {
    server(e.to_string())
}

/// Gas used by a block's Ethereum transactions.
pub(super) fn gas_used(receipts: &rusty_core::contracts::BlockReceipts) -> u64 {
    receipts.0.last().map_or(0, |r| r.cumulative_gas_used)
}

/// The 2048-bit bloom of logs (Ethereum's `logsBloom`): each address and
/// topic sets three bits chosen by its keccak256.
fn bloom<'a>(logs: impl IntoIterator<Item = &'a rusty_vm::evm::EvmLog>) -> [u8; 256] {
    let mut bits = [0u8; 256];
    let mut add = |item: &[u8]| {
        let h = keccak256(item);
        for i in [0, 2, 4] {
            let bit = (usize::from(h[i]) << 8 | usize::from(h[i + 1])) & 2047;
            bits[255 - bit / 8] |= 1 << (bit % 8);
        }
    };
    for log in logs {
        add(&log.address);
        for t in &log.topics {
            add(t);
        }
    }
    bits
}

/// Where a transaction sits, for its JSON.
struct Placed {
    block: Hash256,
    height: u64,
    /// Position among the block's Ethereum transactions.
    index: usize,
}

/// Block hash, height and the receipts of the block holding `hash`.
fn locate(
    s: &NodeState,
    hash: &[u8; 32],
) -> Result<Option<(Placed, EthReceipt, Vec<EthReceipt>)>, ErrorObjectOwned> {
    let chain = s.chain();
    let Some(loc) = chain.eth_tx_location(hash).map_err(store)? else {
        return Ok(None);
    };
    let Some(height) = chain.entry(&loc.block).map(|e| e.height) else {
        return Ok(None);
    };
    let receipts = chain.receipts(&loc.block).map_err(store)?.0;
    let Some(index) = receipts.iter().position(|r| r.tx_hash == *hash) else {
        return Ok(None);
    };
    let receipt = receipts[index].clone();
    Ok(Some((
        Placed {
            block: loc.block,
            height,
            index,
        },
        receipt,
        receipts,
    )))
}

/// A transaction's JSON; `placed` is `None` while pooled.
fn transaction_json(tx: &eth_tx::EthTx, placed: Option<&Placed>, price: u128) -> Value {
    let f = &tx.fields;
    let mut v = json!({
        "hash": data(&tx.hash),
        "nonce": qty(f.nonce),
        "blockHash": placed.map(|p| data(&p.block.0)),
        "blockNumber": placed.map(|p| qty(p.height)),
        "transactionIndex": placed.map(|p| qty(p.index as u64)),
        "from": data(&tx.sender),
        "to": f.to.map(|t| data(&t)),
        "value": qty256(U256::from_be_bytes(f.value)),
        "gas": qty(f.gas_limit),
        "gasPrice": qty(price),
        "input": data(&f.input),
        "type": qty(f.tx_type.number()),
        "v": qty(tx.signature.v),
        "r": qty256(U256::from_be_bytes(tx.signature.r)),
        "s": qty256(U256::from_be_bytes(tx.signature.s)),
    });
    if let Some(id) = f.chain_id {
        v["chainId"] = json!(qty(id));
    }
    if f.tx_type != eth_tx::EthTxType::Legacy {
        v["yParity"] = json!(qty(tx.signature.v));
        v["accessList"] = json!(f
            .access_list
            .iter()
            .map(|(a, slots)| json!({
                "address": data(a),
                "storageKeys": slots.iter().map(|s| data(s)).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>());
    }
    if f.tx_type == eth_tx::EthTxType::DynamicFee {
        v["maxFeePerGas"] = json!(qty(f.max_fee_per_gas));
        v["maxPriorityFeePerGas"] = json!(qty(f.max_priority_fee_per_gas));
    }
    v
}

/// The Ethereum transaction `index` of block `hash`, decoded.
fn decoded_at(
    s: &NodeState,
    block: &Hash256,
    index: u32,
) -> Result<eth_tx::EthTx, ErrorObjectOwned> {
    let b = s
        .chain()
        .block(block)
        .map_err(store)?
        .ok_or_else(|| server("block not stored"))?;
    match b.txs.get(index as usize).and_then(|t| t.payload.as_ref()) {
        Some(Payload::EthTx(p)) => eth_tx::decode(&p.raw).map_err(store),
        _ => Err(server("indexed transaction is not an ethereum transaction")),
    }
}

pub(super) fn transaction_by_hash(
    s: &NodeState,
    hash: &[u8; 32],
) -> Result<Value, ErrorObjectOwned> {
    if let Some((placed, receipt, _)) = locate(s, hash)? {
        let tx = decoded_at(s, &placed.block, receipt.index)?;
        return Ok(transaction_json(
            &tx,
            Some(&placed),
            receipt.effective_gas_price,
        ));
    }
    // A pooled transaction's price is its fee cap until it is mined (as
    // geth reports it).
    Ok(match s.eth_pool().get(hash) {
        Some(p) => transaction_json(&p.eth, None, p.eth.fields.max_fee_per_gas),
        None => Value::Null,
    })
}

fn log_json(
    log: &rusty_vm::evm::EvmLog,
    placed: &Placed,
    tx_hash: &[u8; 32],
    log_index: usize,
    removed: bool,
) -> Value {
    json!({
        "address": data(&log.address),
        "topics": log.topics.iter().map(|t| data(t)).collect::<Vec<_>>(),
        "data": data(&log.data),
        "blockNumber": qty(placed.height),
        "blockHash": data(&placed.block.0),
        "transactionHash": data(tx_hash),
        "transactionIndex": qty(placed.index as u64),
        "logIndex": qty(log_index as u64),
        "removed": removed,
    })
}

pub(super) fn receipt_by_hash(s: &NodeState, hash: &[u8; 32]) -> Result<Value, ErrorObjectOwned> {
    let Some((placed, r, all)) = locate(s, hash)? else {
        return Ok(Value::Null);
    };
    let first_log: usize = all[..placed.index].iter().map(|r| r.logs.len()).sum();
    let logs: Vec<Value> = r
        .logs
        .iter()
        .enumerate()
        .map(|(i, l)| log_json(l, &placed, &r.tx_hash, first_log + i, false))
        .collect();
    Ok(json!({
        "transactionHash": data(&r.tx_hash),
        "transactionIndex": qty(placed.index as u64),
        "blockHash": data(&placed.block.0),
        "blockNumber": qty(placed.height),
        "from": data(&r.from),
        "to": r.to.map(|t| data(&t)),
        "cumulativeGasUsed": qty(r.cumulative_gas_used),
        "gasUsed": qty(r.gas_used),
        "effectiveGasPrice": qty(r.effective_gas_price),
        "contractAddress": r.contract_address.map(|a| data(&a)),
        "logs": logs,
        "logsBloom": data(&bloom(&r.logs)),
        "status": qty(u64::from(r.success)),
        "type": qty(r.tx_type),
    }))
}

pub(super) fn block(
    s: &NodeState,
    evm: &EvmParams,
    hash: &Hash256,
    full: bool,
) -> Result<Value, ErrorObjectOwned> {
    let chain = s.chain();
    let entry = chain
        .entry(hash)
        .ok_or_else(|| server("header not found"))?;
    let receipts = chain.receipts(hash).map_err(store)?;
    let b = chain
        .block(hash)
        .map_err(store)?
        .ok_or_else(|| server("block not stored"))?;
    let transactions: Vec<Value> = receipts
        .0
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if !full {
                return Ok(json!(data(&r.tx_hash)));
            }
            let placed = Placed {
                block: *hash,
                height: entry.height,
                index: i,
            };
            let tx = decoded_at(s, hash, r.index)?;
            Ok(transaction_json(&tx, Some(&placed), r.effective_gas_price))
        })
        .collect::<Result<_, ErrorObjectOwned>>()?;
    let h = &entry.header;
    let size = rusty_shared_types::Encode::encode(&b).len() as u64;
    let zero32 = data(&[0; 32]);
    Ok(json!({
        "number": qty(entry.height),
        "hash": data(&hash.0),
        "parentHash": data(&h.prev_hash.0),
        "nonce": "0x0000000000000000",
        // What PREVRANDAO read in this block (the parent's hash), where
        // geth reports the beacon's randomness since the merge.
        "mixHash": data(&h.prev_hash.0),
        "sha3Uncles": EMPTY_UNCLES,
        "logsBloom": data(&bloom(receipts.0.iter().flat_map(|r| &r.logs))),
        "transactionsRoot": data(&h.merkle_root.0),
        "stateRoot": data(&h.state_root.0),
        "receiptsRoot": zero32,
        "miner": data(&[0; 20]),
        "difficulty": "0x0",
        "totalDifficulty": "0x0",
        "extraData": "0x",
        "size": qty(size),
        "gasLimit": qty(evm.block_gas_limit),
        "gasUsed": qty(gas_used(&receipts)),
        "timestamp": qty(h.time),
        "baseFeePerGas": qty(evm.base_fee),
        "transactions": transactions,
        "uncles": [],
    }))
}

/// `eth_getLogs`'s filter.
#[derive(Debug)]
pub struct LogFilter {
    pub from: BlockRef,
    pub to: BlockRef,
    pub block_hash: Option<Hash256>,
    addresses: Vec<[u8; 20]>,
    /// Per position: any of these (empty: anything).
    topics: Vec<Vec<[u8; 32]>>,
}

impl LogFilter {
    pub fn parse(v: &Value) -> Result<LogFilter, ErrorObjectOwned> {
        let o = v
            .as_object()
            .ok_or_else(|| invalid("the filter must be an object"))?;
        let addresses = match o.get("address") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(a)) => vec![parse_addr(a)?],
            Some(Value::Array(list)) => list
                .iter()
                .map(|a| {
                    a.as_str()
                        .ok_or_else(|| invalid("address must be a string"))
                        .and_then(parse_addr)
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("address must be a string or an array")),
        };
        let one = |t: &Value| -> Result<Vec<[u8; 32]>, ErrorObjectOwned> {
            match t {
                Value::Null => Ok(Vec::new()),
                Value::String(s) => Ok(vec![parse_hash32(s)?]),
                Value::Array(any) => any
                    .iter()
                    .map(|t| {
                        t.as_str()
                            .ok_or_else(|| invalid("topic must be a string"))
                            .and_then(parse_hash32)
                    })
                    .collect(),
                _ => Err(invalid("invalid topic")),
            }
        };
        let topics = match o.get("topics") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ts)) if ts.len() <= 4 => {
                ts.iter().map(one).collect::<Result<_, _>>()?
            }
            Some(_) => return Err(invalid("topics must be an array of at most 4")),
        };
        let block_hash = match o.get("blockHash") {
            Some(Value::String(h)) => Some(Hash256(parse_hash32(h)?)),
            _ => None,
        };
        if block_hash.is_some() && (o.contains_key("fromBlock") || o.contains_key("toBlock")) {
            return Err(invalid("blockHash excludes fromBlock and toBlock"));
        }
        Ok(LogFilter {
            from: parse_block_ref(o.get("fromBlock"))?,
            to: parse_block_ref(o.get("toBlock"))?,
            block_hash,
            addresses,
            topics,
        })
    }

    /// As geth matches: a filter with more topic positions than the log
    /// has topics never matches it, even where those positions are null
    /// (ERC-20's and ERC-721's `Transfer` differ only in their count).
    fn matches(&self, log: &rusty_vm::evm::EvmLog) -> bool {
        (self.addresses.is_empty() || self.addresses.contains(&log.address))
            && self.topics.len() <= log.topics.len()
            && self.topics.iter().enumerate().all(|(i, any)| {
                any.is_empty() || log.topics.get(i).is_some_and(|t| any.contains(t))
            })
    }
}

/// The logs `f` matches in `blocks` (height and hash, in the order given),
/// appended to `out`; `removed` for blocks that left the active chain.
pub(super) fn logs(
    s: &NodeState,
    f: &LogFilter,
    blocks: &[(u64, Hash256)],
    removed: bool,
    out: &mut Vec<Value>,
) -> Result<(), ErrorObjectOwned> {
    for &(height, hash) in blocks {
        let receipts = s.chain().receipts(&hash).map_err(store)?;
        let mut log_index = 0;
        for (index, r) in receipts.0.iter().enumerate() {
            let placed = Placed {
                block: hash,
                height,
                index,
            };
            for log in &r.logs {
                if f.matches(log) {
                    out.push(log_json(log, &placed, &r.tx_hash, log_index, removed));
                }
                log_index += 1;
            }
        }
    }
    Ok(())
}

pub(super) fn proof(
    w: &AccountWorld<'_>,
    address: &[u8; 20],
    slots: &[[u8; 32]],
) -> Result<Value, ContractError> {
    let (account_proof, storage_proofs) = w.proof(address, slots)?;
    let account = w.account(address)?;
    let (nonce, balance, storage_hash, code_hash) = match &account {
        Some(a) => (
            a.nonce,
            U256::from_be_bytes(a.balance),
            a.storage_root,
            a.code_hash,
        ),
        None => (
            0,
            U256::ZERO,
            rusty_core::contracts::trie_root(Hash256::ZERO),
            rusty_storage::state::KECCAK_EMPTY,
        ),
    };
    let storage = slots
        .iter()
        .zip(storage_proofs)
        .map(|(slot, proof)| {
            let value = w.storage_word(address, slot)?;
            Ok(json!({
                "key": data(slot),
                "value": qty256(U256::from_be_bytes(value)),
                "proof": proof.iter().map(|n| data(n)).collect::<Vec<_>>(),
            }))
        })
        .collect::<Result<Vec<_>, ContractError>>()?;
    Ok(json!({
        "address": data(address),
        "accountProof": account_proof.iter().map(|n| data(n)).collect::<Vec<_>>(),
        "balance": qty256(balance),
        "codeHash": data(&code_hash),
        "nonce": qty(nonce),
        "storageHash": data(&storage_hash),
        "storageProof": storage,
    }))
}
