//! The Ethereum JSON-RPC methods ([`super::api::eth`]) over the account
//! world of `rusty_core::contracts`.
//!
//! Every read runs as one query on the chain service, so a result comes
//! from one state. An Ethereum block is our block at the same height and
//! hash; its transactions are the block's Ethereum transactions (by
//! keccak256 hash), in block order.

mod filters;
mod json;
mod subscribe;

use std::{sync::Arc, time::Instant};

use jsonrpsee::{core::RpcResult, types::ErrorObjectOwned};
use ruint::aliases::U256;
use rusty_core::{
    contracts::{exec, AccountWorld, ContractError},
    state::{NodeState, TxRejection},
    validation::ValidationError,
};
use rusty_crypto::eth::parse_address;
use rusty_shared_types::{evm::EvmParams, Hash256, Payload, Transaction};
use rusty_vm::evm::{self, EvmCall, EvmError};
use serde_json::{json, Value};

pub(crate) use self::filters::EthFilters;
use self::filters::{Cursor, FilterKind};
use super::{api::eth::EthApiServer, RpcContext};

/// Ethereum's error codes.
pub mod codes {
    /// Invalid parameters (JSON-RPC 2.0).
    pub const INVALID_PARAMS: i32 = -32602;
    /// geth's server error: a refused transaction, an unknown block.
    pub const SERVER_ERROR: i32 = -32000;
    /// A call that reverted; `data` is the revert output.
    pub const EXECUTION_REVERTED: i32 = 3;
}

/// Most blocks with contract activity (a changed state root) one
/// `eth_getLogs` reads; blocks without it cost nothing, so a range from
/// block 0 (ethers' `queryFilter` default) works on a long chain.
const MAX_LOG_BLOCKS: u64 = 10_000;
/// Most heights one `eth_getLogs` looks at (each a lookup in memory on the
/// chain's thread, about 0.1 s for all of them).
const MAX_LOG_HEIGHTS: u64 = 1_000_000;
/// Most blocks one `eth_feeHistory` reports (geth's limit).
const MAX_FEE_HISTORY: u64 = 1_024;

#[derive(Debug)]
pub struct EthRpc(pub Arc<RpcContext>);

fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(codes::INVALID_PARAMS, message.into(), None::<()>)
}

fn server(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(codes::SERVER_ERROR, message.into(), None::<()>)
}

fn state_error(e: ContractError) -> ErrorObjectOwned {
    server(e.to_string())
}

/// `0x`-prefixed hex of a quantity (no leading zeros).
pub(crate) fn qty(v: impl Into<u128>) -> String {
    format!("{:#x}", v.into())
}

pub(crate) fn qty256(v: U256) -> String {
    format!("{v:#x}")
}

pub(crate) use rusty_core::contracts::hex as data;

fn parse_addr(s: &str) -> Result<[u8; 20], ErrorObjectOwned> {
    parse_address(s).map_err(|_| invalid(format!("invalid address {s:?}")))
}

fn parse_data(s: &str, what: &str) -> Result<Vec<u8>, ErrorObjectOwned> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| invalid(format!("{what}: hex string without 0x prefix")))?;
    hex::decode(digits).map_err(|_| invalid(format!("{what}: invalid hex")))
}

fn parse_word(s: &str, what: &str) -> Result<[u8; 32], ErrorObjectOwned> {
    Ok(parse_qty(s, what)?.to_be_bytes())
}

/// A hex quantity (or a JSON number) up to 256 bits.
fn parse_qty(s: &str, what: &str) -> Result<U256, ErrorObjectOwned> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| invalid(format!("{what}: hex string without 0x prefix")))?;
    if digits.is_empty() || digits.len() > 64 {
        return Err(invalid(format!("{what}: invalid quantity {s:?}")));
    }
    U256::from_str_radix(digits, 16).map_err(|_| invalid(format!("{what}: invalid quantity {s:?}")))
}

fn qty_value(v: &Value, what: &str) -> Result<U256, ErrorObjectOwned> {
    match v {
        Value::String(s) => parse_qty(s, what),
        Value::Number(n) => n
            .as_u64()
            .map(U256::from)
            .ok_or_else(|| invalid(format!("{what}: invalid quantity {n}"))),
        _ => Err(invalid(format!("{what}: expected a hex quantity"))),
    }
}

fn small(v: U256, what: &str) -> Result<u64, ErrorObjectOwned> {
    u64::try_from(v).map_err(|_| invalid(format!("{what} out of range")))
}

fn parse_hash32(s: &str) -> Result<[u8; 32], ErrorObjectOwned> {
    parse_data(s, "hash")?
        .try_into()
        .map_err(|_| invalid(format!("invalid hash {s:?}")))
}

/// A block parameter: a tag, a number, or EIP-1898's object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockRef {
    Latest,
    /// The tip's state with the pool's nonces (`pending`).
    Pending,
    Number(u64),
    Hash(Hash256),
}

fn parse_block_ref(v: Option<&Value>) -> Result<BlockRef, ErrorObjectOwned> {
    match v {
        None | Some(Value::Null) => Ok(BlockRef::Latest),
        Some(Value::String(s)) => match s.as_str() {
            "latest" | "safe" | "finalized" => Ok(BlockRef::Latest),
            "pending" => Ok(BlockRef::Pending),
            "earliest" => Ok(BlockRef::Number(0)),
            _ => Ok(BlockRef::Number(small(
                parse_qty(s, "block number")?,
                "block number",
            )?)),
        },
        Some(Value::Number(_)) => Ok(BlockRef::Number(small(
            qty_value(v.unwrap_or(&Value::Null), "block number")?,
            "block number",
        )?)),
        Some(Value::Object(o)) => {
            if let Some(Value::String(h)) = o.get("blockHash") {
                Ok(BlockRef::Hash(Hash256(parse_hash32(h)?)))
            } else if let Some(n) = o.get("blockNumber") {
                parse_block_ref(Some(n))
            } else {
                Err(invalid("block object needs blockHash or blockNumber"))
            }
        }
        Some(_) => Err(invalid("invalid block parameter")),
    }
}

/// The active block a reference names: height and hash.
fn resolve(s: &NodeState, r: BlockRef) -> Result<(u64, Hash256), ErrorObjectOwned> {
    let chain = s.chain();
    match r {
        BlockRef::Latest | BlockRef::Pending => Ok((chain.height(), chain.tip())),
        BlockRef::Number(n) => chain
            .hash_at(n)
            .map(|h| (n, h))
            .ok_or_else(|| server("header not found")),
        BlockRef::Hash(h) if chain.is_active(&h) => chain
            .entry(&h)
            .map(|e| (e.height, h))
            .ok_or_else(|| server("header not found")),
        BlockRef::Hash(_) => Err(server("header not found")),
    }
}

/// The account state after block `hash`.
fn world_at<'s>(s: &'s NodeState, hash: &Hash256) -> Result<AccountWorld<'s>, ErrorObjectOwned> {
    let entry = s
        .chain()
        .entry(hash)
        .ok_or_else(|| server("header not found"))?;
    Ok(s.chain().accounts_at(entry.header.state_root))
}

fn evm_params(ctx: &RpcContext) -> Result<EvmParams, ErrorObjectOwned> {
    ctx.network
        .params()
        .evm
        .ok_or_else(|| server(format!("contracts are not active on {}", ctx.network)))
}

/// `eth_call`'s call object.
fn parse_call(v: &Value, evm: &EvmParams) -> Result<(EvmCall, bool), ErrorObjectOwned> {
    let o = v
        .as_object()
        .ok_or_else(|| invalid("the call must be an object"))?;
    let addr = |k: &str| -> Result<Option<[u8; 20]>, ErrorObjectOwned> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => parse_addr(s).map(Some),
            Some(_) => Err(invalid(format!("{k}: expected an address"))),
        }
    };
    let number = |k: &str| -> Result<Option<U256>, ErrorObjectOwned> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => qty_value(v, k).map(Some),
        }
    };
    let input = match (o.get("input"), o.get("data")) {
        (Some(Value::String(s)), _) | (None | Some(Value::Null), Some(Value::String(s))) => {
            parse_data(s, "input")?
        }
        _ => Vec::new(),
    };
    let gas = number("gas")?
        .map(|g| small(g, "gas"))
        .transpose()?
        .unwrap_or(evm.block_gas_limit)
        .min(evm.block_gas_limit);
    let fee = number("maxFeePerGas")?.or(number("gasPrice")?);
    let tip = number("maxPriorityFeePerGas")?;
    let price = |v: U256| u128::try_from(v).map_err(|_| invalid("fee out of range"));
    let priced = fee.is_some_and(|f| !f.is_zero());
    let call = EvmCall {
        caller: addr("from")?.unwrap_or([0; 20]),
        to: addr("to")?,
        value: number("value")?.unwrap_or_default().to_be_bytes(),
        input,
        gas_limit: gas,
        gas_price: fee.map(price).transpose()?.unwrap_or(0),
        max_priority_fee: tip.map(price).transpose()?,
        nonce: 0,
        tx_type: if tip.is_some() { 2 } else { 0 },
        access_list: Vec::new(),
        simulate: true,
    };
    Ok((call, priced))
}

/// Runs a simulated call at block `hash`; unpriced calls run without a
/// base fee, as geth runs them.
fn simulate(
    s: &NodeState,
    evm_params: &EvmParams,
    hash: &Hash256,
    height: u64,
    mut call: EvmCall,
    priced: bool,
) -> Result<evm::Outcome, ErrorObjectOwned> {
    let world = world_at(s, hash)?;
    let (time, parent) = s
        .chain()
        .entry(hash)
        .map_or((0, Hash256::ZERO), |e| (e.header.time, e.header.prev_hash));
    let ancestors = s.chain().ancestor_hashes(&parent);
    let mut ctx = exec::block_context(evm_params, height, time, ancestors);
    if !priced {
        ctx.base_fee = 0;
    }
    call.nonce = world
        .nonce_and_balance(&call.caller)
        .map_err(state_error)?
        .0;
    evm::execute(&world, &ctx, &call).map_err(|EvmError::Invalid(why)| server(why))
}

/// The least gas with which `call` succeeds at block `hash` (a binary
/// search: refunds and the 63/64 rule make it more than the gas used).
pub(crate) fn estimate(
    s: &NodeState,
    evm: &EvmParams,
    hash: &Hash256,
    height: u64,
    call: &EvmCall,
    priced: bool,
) -> Result<u64, ErrorObjectOwned> {
    let run = |gas: u64| {
        let mut c = call.clone();
        c.gas_limit = gas;
        simulate(s, evm, hash, height, c, priced)
    };
    let cap = gas_affordable(s, hash, call, priced)?.min(call.gas_limit);
    let first = run(cap)?;
    if first.halt.as_deref() == Some("out of gas") {
        return Err(server(format!("gas required exceeds allowance ({cap})")));
    }
    if !first.success {
        return Err(failed(&first));
    }
    let (mut lo, mut hi) = (first.gas_used.saturating_sub(1), cap);
    if run(first.gas_used).is_ok_and(|o| o.success) {
        hi = first.gas_used;
    }
    while hi.saturating_sub(lo) > 1 {
        let mid = lo + (hi - lo) / 2;
        if run(mid).is_ok_and(|o| o.success) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

/// The most gas the caller of a priced `call` can pay for at block `hash`
/// after its value, `u64::MAX` if unpriced. As geth does: the search starts
/// there rather than at the block's limit, which a modest balance at the
/// offered fee cannot cover (viem sends its fees with every estimate).
fn gas_affordable(
    s: &NodeState,
    hash: &Hash256,
    call: &EvmCall,
    priced: bool,
) -> Result<u64, ErrorObjectOwned> {
    if !priced || call.gas_price == 0 {
        return Ok(u64::MAX);
    }
    let (_, balance) = world_at(s, hash)?
        .nonce_and_balance(&call.caller)
        .map_err(state_error)?;
    let available = balance
        .checked_sub(U256::from_be_bytes(call.value))
        .ok_or_else(|| server("insufficient funds for transfer"))?;
    let allowance = available / U256::from(call.gas_price);
    Ok(u64::try_from(allowance).unwrap_or(u64::MAX))
}

/// A failed call as geth reports it: a revert with its data (code 3), a
/// halt by its reason ("out of gas", "invalid opcode", …; code -32000).
fn failed(outcome: &evm::Outcome) -> ErrorObjectOwned {
    match &outcome.halt {
        Some(why) => server(why.clone()),
        None => ErrorObjectOwned::owned(
            codes::EXECUTION_REVERTED,
            "execution reverted",
            Some(data(&outcome.output)),
        ),
    }
}

fn rejection(e: TxRejection) -> ErrorObjectOwned {
    match e {
        TxRejection::Invalid(ValidationError::Contract(c)) => server(c.to_string()),
        other => server(other.to_string()),
    }
}

/// Submits a signed Ethereum transaction to the node's pool; its keccak256
/// hash, or geth's refusal.
pub(crate) async fn submit_raw(ctx: &RpcContext, raw: Vec<u8>) -> RpcResult<String> {
    let hash = rusty_crypto::eth::keccak256(&raw);
    let tx = Transaction {
        version: 1,
        inputs: Vec::new(),
        outputs: Vec::new(),
        lock_time: 0,
        payload: Some(Payload::EthTx(rusty_shared_types::evm::EthTxPayload {
            raw,
        })),
    };
    super::running(ctx.chain.accept_transaction(tx).await)?.map_err(rejection)?;
    Ok(data(&hash))
}

/// `eth_getLogs` (and `eth_getFilterLogs`): the logs `f` matches over its
/// range or block.
fn logs_matching(s: &NodeState, f: &json::LogFilter) -> Result<Value, ErrorObjectOwned> {
    let (from, to) = match f.block_hash {
        Some(h) => {
            let (n, _) = resolve(s, BlockRef::Hash(h))?;
            (n, n)
        }
        None => (resolve(s, f.from)?.0, resolve(s, f.to)?.0),
    };
    if from > to {
        // geth's words; an empty answer would hide swapped bounds.
        return Err(server("invalid block range params"));
    }
    if to - from >= MAX_LOG_HEIGHTS {
        return Err(server(format!(
            "query exceeds the limit of {MAX_LOG_HEIGHTS} blocks; narrow fromBlock..toBlock"
        )));
    }
    let blocks = filters::log_blocks(s.chain(), from, to, MAX_LOG_BLOCKS).map_err(|max| {
        server(format!(
            "query exceeds the limit of {max} blocks with contract activity; narrow fromBlock..toBlock"
        ))
    })?;
    let mut out = Vec::new();
    json::logs(s, f, &blocks, false, &mut out)?;
    Ok(Value::Array(out))
}

/// What is new for a filter since `cursor`, and where its next poll starts.
fn filter_changes(
    s: &NodeState,
    kind: &FilterKind,
    cursor: Cursor,
) -> Result<(Value, Cursor), ErrorObjectOwned> {
    let hashes =
        |list: Vec<[u8; 32]>| Value::Array(list.iter().map(|h| Value::String(data(h))).collect());
    let block = match (kind, cursor) {
        (FilterKind::PendingTransactions, Cursor::Arrival(after)) => {
            let (arrived, last) = s.eth_pool().arrivals_after(after);
            return Ok((hashes(arrived), Cursor::Arrival(last)));
        }
        (FilterKind::Blocks | FilterKind::Logs(_), Cursor::Block(height, hash)) => (height, hash),
        _ => return Err(server("filter not found")),
    };
    let walk = filters::walk(s.chain(), block, filters::MAX_BLOCKS_PER_POLL);
    let next = Cursor::Block(walk.next.0, walk.next.1);
    let FilterKind::Logs(f) = kind else {
        // A block filter reports the blocks that joined the chain.
        return Ok((hashes(walk.added.iter().map(|(_, b)| b.0).collect()), next));
    };
    // Only numbered bounds limit a filter's changes, as in geth.
    let in_range = |(height, _): &(u64, Hash256)| {
        !matches!(f.from, BlockRef::Number(n) if *height < n)
            && !matches!(f.to, BlockRef::Number(n) if *height > n)
    };
    let mut removed: Vec<(u64, Hash256)> = walk.removed.into_iter().filter(in_range).collect();
    removed.reverse();
    let added: Vec<(u64, Hash256)> = walk.added.into_iter().filter(in_range).collect();
    let mut out = Vec::new();
    json::logs(s, f, &removed, true, &mut out)?;
    json::logs(s, f, &added, false, &mut out)?;
    Ok((Value::Array(out), next))
}

impl EthRpc {
    /// Installs a filter starting at the tip (or the pool's last
    /// admission); its id.
    async fn install(&self, kind: FilterKind) -> RpcResult<String> {
        let pending = matches!(kind, FilterKind::PendingTransactions);
        let cursor = self
            .query(move |s| {
                Ok(if pending {
                    Cursor::Arrival(s.eth_pool().last_arrival())
                } else {
                    Cursor::Block(s.chain().height(), s.chain().tip())
                })
            })
            .await?;
        let id = self.0.eth_filters.install(kind, cursor, Instant::now())?;
        Ok(filters::format_id(id))
    }

    async fn query<R: Send + 'static>(
        &self,
        f: impl FnOnce(&NodeState) -> Result<R, ErrorObjectOwned> + Send + 'static,
    ) -> RpcResult<R> {
        self.0.with_state(f).await?
    }

    /// Reads an account field at a block.
    async fn account_read<R: Send + 'static>(
        &self,
        address: &str,
        block: Option<Value>,
        read: impl FnOnce(&NodeState, &AccountWorld<'_>, [u8; 20]) -> Result<R, ContractError>
            + Send
            + 'static,
    ) -> RpcResult<R> {
        let address = parse_addr(address)?;
        let r = parse_block_ref(block.as_ref())?;
        self.query(move |s| {
            let (_, hash) = resolve(s, r)?;
            let world = world_at(s, &hash)?;
            read(s, &world, address).map_err(state_error)
        })
        .await
    }
}

#[jsonrpsee::core::async_trait]
impl EthApiServer for EthRpc {
    async fn chain_id(&self) -> RpcResult<String> {
        Ok(qty(evm_params(&self.0)?.chain_id))
    }

    async fn net_version(&self) -> RpcResult<String> {
        Ok(evm_params(&self.0)?.chain_id.to_string())
    }

    async fn net_listening(&self) -> RpcResult<bool> {
        Ok(true)
    }

    async fn client_version(&self) -> RpcResult<String> {
        Ok(format!("rusty-coin/v{}", env!("CARGO_PKG_VERSION")))
    }

    async fn syncing(&self) -> RpcResult<bool> {
        Ok(false)
    }

    async fn accounts(&self) -> RpcResult<Vec<String>> {
        Ok(Vec::new())
    }

    async fn block_number(&self) -> RpcResult<String> {
        self.query(|s| Ok(qty(s.chain().height()))).await
    }

    async fn gas_price(&self) -> RpcResult<String> {
        Ok(qty(evm_params(&self.0)?.base_fee))
    }

    async fn max_priority_fee(&self) -> RpcResult<String> {
        Ok(qty(0u64))
    }

    async fn fee_history(
        &self,
        block_count: Value,
        newest: Value,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<Value> {
        let evm = evm_params(&self.0)?;
        let count =
            small(qty_value(&block_count, "blockCount")?, "blockCount")?.min(MAX_FEE_HISTORY);
        let r = parse_block_ref(Some(&newest))?;
        self.query(move |s| {
            let (newest, _) = resolve(s, r)?;
            let oldest = newest.saturating_add(1).saturating_sub(count);
            let mut ratios = Vec::new();
            let mut rewards = Vec::new();
            for h in oldest..=newest {
                if count == 0 {
                    break;
                }
                let hash = s
                    .chain()
                    .hash_at(h)
                    .ok_or_else(|| server("header not found"))?;
                let used = json::gas_used(
                    &s.chain()
                        .receipts(&hash)
                        .map_err(|e| server(e.to_string()))?,
                );
                ratios.push(json!(used as f64 / evm.block_gas_limit as f64));
                if let Some(p) = &percentiles {
                    rewards.push(json!(vec![qty(0u64); p.len()]));
                }
            }
            let n = ratios.len();
            let mut out = json!({
                "oldestBlock": qty(oldest),
                "baseFeePerGas": vec![qty(evm.base_fee); n + 1],
                "gasUsedRatio": ratios,
            });
            if percentiles.is_some() {
                out["reward"] = json!(rewards);
            }
            Ok(out)
        })
        .await
    }

    async fn get_balance(&self, address: String, block: Option<Value>) -> RpcResult<String> {
        self.account_read(&address, block, |_, w, a| {
            Ok(qty256(w.nonce_and_balance(&a)?.1))
        })
        .await
    }

    async fn get_transaction_count(
        &self,
        address: String,
        block: Option<Value>,
    ) -> RpcResult<String> {
        let pending = parse_block_ref(block.as_ref())? == BlockRef::Pending;
        self.account_read(&address, block, move |s, w, a| {
            let nonce = w.nonce_of(&a)?;
            Ok(qty(if pending {
                s.eth_pool().pending_nonce(&a, nonce)
            } else {
                nonce
            }))
        })
        .await
    }

    async fn get_code(&self, address: String, block: Option<Value>) -> RpcResult<String> {
        self.account_read(&address, block, |_, w, a| Ok(data(&w.code_of(&a)?)))
            .await
    }

    async fn get_storage_at(
        &self,
        address: String,
        slot: String,
        block: Option<Value>,
    ) -> RpcResult<String> {
        let slot = parse_word(&slot, "slot")?;
        self.account_read(&address, block, move |_, w, a| {
            Ok(data(&w.storage_word(&a, &slot)?))
        })
        .await
    }

    async fn call(&self, call: Value, block: Option<Value>) -> RpcResult<String> {
        let evm = evm_params(&self.0)?;
        let (call, priced) = parse_call(&call, &evm)?;
        let r = parse_block_ref(block.as_ref())?;
        self.query(move |s| {
            let (height, hash) = resolve(s, r)?;
            let outcome = simulate(s, &evm, &hash, height, call, priced)?;
            if outcome.success {
                Ok(data(&outcome.output))
            } else {
                Err(failed(&outcome))
            }
        })
        .await
    }

    async fn estimate_gas(&self, call: Value, block: Option<Value>) -> RpcResult<String> {
        let evm = evm_params(&self.0)?;
        let (call, priced) = parse_call(&call, &evm)?;
        let r = parse_block_ref(block.as_ref())?;
        self.query(move |s| {
            let (height, hash) = resolve(s, r)?;
            estimate(s, &evm, &hash, height, &call, priced).map(qty)
        })
        .await
    }

    async fn send_raw_transaction(&self, raw: String) -> RpcResult<String> {
        submit_raw(&self.0, parse_data(&raw, "transaction")?).await
    }

    async fn get_transaction_by_hash(&self, hash: String) -> RpcResult<Value> {
        let hash = parse_hash32(&hash)?;
        self.query(move |s| json::transaction_by_hash(s, &hash))
            .await
    }

    async fn get_transaction_receipt(&self, hash: String) -> RpcResult<Value> {
        let hash = parse_hash32(&hash)?;
        self.query(move |s| json::receipt_by_hash(s, &hash)).await
    }

    async fn get_block_by_number(&self, block: Value, full: Option<bool>) -> RpcResult<Value> {
        let r = parse_block_ref(Some(&block))?;
        let evm = evm_params(&self.0)?;
        self.query(move |s| match resolve(s, r) {
            Ok((_, hash)) => json::block(s, &evm, &hash, full.unwrap_or(false)),
            Err(_) => Ok(Value::Null),
        })
        .await
    }

    async fn get_block_by_hash(&self, hash: String, full: Option<bool>) -> RpcResult<Value> {
        let hash = Hash256(parse_hash32(&hash)?);
        let evm = evm_params(&self.0)?;
        self.query(move |s| {
            if !s.chain().is_active(&hash) {
                return Ok(Value::Null);
            }
            json::block(s, &evm, &hash, full.unwrap_or(false))
        })
        .await
    }

    async fn get_logs(&self, filter: Value) -> RpcResult<Value> {
        let f = json::LogFilter::parse(&filter)?;
        self.query(move |s| logs_matching(s, &f)).await
    }

    async fn new_filter(&self, filter: Value) -> RpcResult<String> {
        let f = json::LogFilter::parse(&filter)?;
        if f.block_hash.is_some() {
            return Err(invalid(
                "eth_newFilter takes fromBlock and toBlock, not blockHash",
            ));
        }
        self.install(FilterKind::Logs(Arc::new(f))).await
    }

    async fn new_block_filter(&self) -> RpcResult<String> {
        self.install(FilterKind::Blocks).await
    }

    async fn new_pending_transaction_filter(&self, full: Option<bool>) -> RpcResult<String> {
        if full == Some(true) {
            return Err(invalid(
                "full transactions are not served by this filter; pass false",
            ));
        }
        self.install(FilterKind::PendingTransactions).await
    }

    async fn get_filter_changes(&self, id: String) -> RpcResult<Value> {
        let id = filters::parse_id(&id)?;
        let Some((kind, cursor, poll)) = self.0.eth_filters.begin_poll(id, Instant::now())? else {
            // Another poll of this filter is reading the chain: it reports
            // what is new.
            return Ok(Value::Array(Vec::new()));
        };
        let (changes, next) = self
            .query(move |s| filter_changes(s, &kind, cursor))
            .await?;
        poll.done(next);
        Ok(changes)
    }

    async fn get_filter_logs(&self, id: String) -> RpcResult<Value> {
        let id = filters::parse_id(&id)?;
        match self.0.eth_filters.kind(id, Instant::now())? {
            FilterKind::Logs(f) => self.query(move |s| logs_matching(s, &f)).await,
            // geth's answer for a filter of blocks or transactions.
            FilterKind::Blocks | FilterKind::PendingTransactions => Err(server("filter not found")),
        }
    }

    async fn uninstall_filter(&self, id: String) -> RpcResult<bool> {
        Ok(filters::parse_id(&id).is_ok_and(|id| self.0.eth_filters.uninstall(id)))
    }

    async fn eth_subscribe(
        &self,
        pending: jsonrpsee::PendingSubscriptionSink,
        kind: String,
        filter: Option<Value>,
    ) -> jsonrpsee::core::SubscriptionResult {
        self.subscription(pending, kind, filter).await
    }

    async fn get_proof(
        &self,
        address: String,
        slots: Vec<String>,
        block: Option<Value>,
    ) -> RpcResult<Value> {
        let slots = slots
            .iter()
            .map(|s| parse_word(s, "storage key"))
            .collect::<Result<Vec<_>, _>>()?;
        self.account_read(&address, block, move |_, w, a| json::proof(w, &a, &slots))
            .await
    }
}

/// Serves the Ethereum methods alone on `bind`, without authentication,
/// as Ethereum nodes serve them (`--eth-rpc-bind`): they hold no keys, and
/// MetaMask and most tools cannot send credentials. Batches are
/// unlimited in count; a request body is at most 32 MiB.
pub async fn start_eth_server(
    bind: std::net::SocketAddr,
    ctx: Arc<RpcContext>,
    metrics: Option<crate::metrics::RpcMetrics>,
) -> std::io::Result<(jsonrpsee::server::ServerHandle, std::net::SocketAddr)> {
    let server = jsonrpsee::server::Server::builder()
        .max_request_body_size(32 << 20)
        .set_rpc_middleware(
            jsonrpsee::server::RpcServiceBuilder::new()
                .layer(crate::metrics::RpcMetricsLayer(metrics)),
        )
        .build(bind)
        .await?;
    let addr = server.local_addr()?;
    Ok((server.start(EthRpc(ctx).into_rpc()), addr))
}
