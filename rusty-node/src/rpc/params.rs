//! Every method's parameters, and checking them as Bitcoin Core does.
//!
//! [`SIGNATURES`] is the one list of the methods the node serves: `help`
//! prints it, docs/rpc.md must document each entry (a unit test checks),
//! and [`CoreParamsLayer`] uses it to answer calls as Core answers them:
//!
//! * wrong arity (too few or too many positional parameters): code `-1`
//!   (`RPC_MISC_ERROR`) with the method's usage as the message, as Core's
//!   `RPCHelpMan::HandleRequest` does. jsonrpsee alone ignores extra
//!   parameters, so `getblockcount ["junk", 5]` answered a height;
//! * a parameter of the wrong JSON type: code `-3` (`RPC_TYPE_ERROR`),
//!   "JSON value of type string is not of expected type number"; jsonrpsee
//!   answers `-32602` with serde's message;
//! * a parameter of the right type with a value no type admits (a negative
//!   count, say): `-8` (`RPC_INVALID_PARAMETER`).
//!
//! Values the handler itself judges (a height beyond the tip, a malformed
//! hash) get their codes from the handler, `-8` and `-5` as Core's.

use std::fmt::Write as _;

use futures::{future::BoxFuture, FutureExt};
use jsonrpsee::{
    core::server::MethodResponse,
    server::middleware::rpc::RpcServiceT,
    types::{ErrorObjectOwned, Request},
};
use serde_json::Value;

use super::codes;

/// Where a method belongs in `help`'s listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Blockchain,
    Bridge,
    Control,
    Ethereum,
    Evo,
    Governance,
    Media,
    Mining,
    Network,
    Rawtransactions,
    Wallet,
}

impl Category {
    fn title(self) -> &'static str {
        match self {
            Category::Blockchain => "Blockchain",
            Category::Bridge => "Bridge (hash-time-locked contracts)",
            Category::Control => "Control",
            Category::Ethereum => {
                "Ethereum (eth_, net_, web3_; Ethereum's conventions and error codes)"
            }
            Category::Evo => "Evo (masternodes, quorums, ChainLocks)",
            Category::Governance => "Governance",
            Category::Media => "Media",
            Category::Mining => "Mining",
            Category::Network => "Network",
            Category::Rawtransactions => "Rawtransactions",
            Category::Wallet => "Wallet",
        }
    }
}

/// One method's name, positional parameters and one-line summary.
#[derive(Debug, Clone, Copy)]
pub struct Signature {
    pub name: &'static str,
    pub category: Category,
    /// Parameter names in order; the first `required` must be given.
    pub params: &'static [&'static str],
    pub required: usize,
    pub summary: &'static str,
}

impl Signature {
    /// Core's usage line: `getblock "blockhash" ( verbosity )`.
    pub fn usage_line(&self) -> String {
        let mut line = self.name.to_owned();
        for p in &self.params[..self.required] {
            let _ = write!(line, " {p}");
        }
        if self.params.len() > self.required {
            line.push_str(" (");
            for p in &self.params[self.required..] {
                let _ = write!(line, " {p}");
            }
            line.push_str(" )");
        }
        line
    }

    /// The usage a wrong call gets, as Core's `help <method>` begins.
    pub fn usage(&self) -> String {
        format!("{}\n\n{}\n", self.usage_line(), self.summary)
    }

    /// Whether `n` positional parameters fit.
    pub fn accepts(&self, n: usize) -> bool {
        (self.required..=self.params.len()).contains(&n)
    }
}

macro_rules! signatures {
    ($( $name:literal $cat:ident [$($req:literal),*] [$($opt:literal),*] $summary:literal; )*) => {
        /// Every method the node serves, in `help`'s order.
        pub const SIGNATURES: &[Signature] = &[$(
            Signature {
                name: $name,
                category: Category::$cat,
                params: &[$($req,)* $($opt,)*],
                required: <[&str]>::len(&[$($req),*]),
                summary: $summary,
            },
        )*];
    };
}

signatures! {
    "getaddressutxos" Blockchain ["addresses"] [] "Returns the unspent outputs paying the addresses (reads the whole UTXO set; no address index).";
    "getbestblockhash" Blockchain [] [] "Returns the hash of the best (tip) block in the most-work fully-validated chain.";
    "getblock" Blockchain ["\"blockhash\""] ["verbosity"] "Returns the block: hex (verbosity 0), decoded with txids (1, the default) or with decoded transactions (2).";
    "getblockchaininfo" Blockchain [] [] "Returns an object with the state of the block chain.";
    "getblockcount" Blockchain [] [] "Returns the height of the most-work fully-validated chain.";
    "getblockhash" Blockchain ["height"] [] "Returns the hash of the block at `height` in the best chain.";
    "getblockheader" Blockchain ["\"blockhash\""] ["verbose"] "Returns the header, decoded (verbose, the default) or as hex.";
    "getmempoolinfo" Blockchain [] [] "Returns details on the active state of the transaction memory pool.";
    "getrawmempool" Blockchain [] ["verbose"] "Returns the txids in the mempool, or with verbose an object of entries by txid.";
    "gettxoutsetinfo" Blockchain [] [] "Returns the UTXO set's size and total value, and the treasury balance.";
    "gettxout" Blockchain ["\"txid\"", "n"] ["include_mempool"] "Returns details about an unspent transaction output, or null.";
    "subscribe_newblocks" Blockchain [] [] "Every new tip, as it becomes the tip (WebSocket subscription).";
    "help" Control [] ["\"command\""] "Lists every method, or the usage of one.";
    "stop" Control [] [] "Stops the node.";
    "contract_address" Wallet [] [] "The address of the wallet's own EVM account (its key derived from the wallet's seed).";
    "contract_balance" Wallet ["\"address\""] [] "An EVM account at the tip: balance in coins and wei-units, nonce, whether it has code.";
    "contract_deposit" Wallet ["\"address\"", "amount"] [] "Pays coins from the wallet into an EVM account (0x address) through a deposit output.";
    "contract_send" Wallet ["to", "\"data\""] ["\"value\"", "gas"] "Signs an Ethereum transaction with the wallet's EVM key and sends it (to null: a creation); returns its hash.";
    "eth_accounts" Ethereum [] [] "Always empty: keys stay in the clients.";
    "eth_blockNumber" Ethereum [] [] "The tip's height, hex.";
    "eth_call" Ethereum ["call"] ["block"] "Runs a call without mining it; returns its output, or error 3 with the revert data.";
    "eth_chainId" Ethereum [] [] "The EIP-155 chain id, hex.";
    "eth_estimateGas" Ethereum ["call"] ["block"] "The least gas with which the call succeeds.";
    "eth_feeHistory" Ethereum ["blockCount", "newestBlock"] ["rewardPercentiles"] "Base fees (constant) and gas used ratios of recent blocks.";
    "eth_gasPrice" Ethereum [] [] "The base fee per gas, hex wei-units.";
    "eth_getBalance" Ethereum ["address"] ["block"] "An account's balance in wei-units (10^18 per coin).";
    "eth_getBlockByHash" Ethereum ["hash"] ["full"] "A block in Ethereum's shape, with its Ethereum transactions.";
    "eth_getBlockByNumber" Ethereum ["block"] ["full"] "A block in Ethereum's shape, with its Ethereum transactions.";
    "eth_getCode" Ethereum ["address"] ["block"] "An account's code.";
    "eth_getLogs" Ethereum ["filter"] [] "Logs matching address and topics over a range reading at most 10,000 blocks with contract activity.";
    "eth_newFilter" Ethereum ["filter"] [] "Installs a log filter (as eth_getLogs'); returns its id.";
    "eth_newBlockFilter" Ethereum [] [] "Installs a filter of new block hashes; returns its id.";
    "eth_newPendingTransactionFilter" Ethereum [] ["full"] "Installs a filter of the hashes of transactions admitted to the pool; returns its id.";
    "eth_getFilterChanges" Ethereum ["id"] [] "What is new for a filter since its last poll (removed logs after a reorg marked removed).";
    "eth_getFilterLogs" Ethereum ["id"] [] "Every log a log filter matches over its range.";
    "eth_uninstallFilter" Ethereum ["id"] [] "Drops a filter; whether it existed.";
    "eth_subscribe" Ethereum ["\"kind\""] ["filter"] "Over WebSocket: newHeads, logs (with a filter) or newPendingTransactions, as eth_subscription messages.";
    "eth_unsubscribe" Ethereum ["id"] [] "Ends an eth_subscribe subscription; whether it existed.";
    "eth_getProof" Ethereum ["address", "storageKeys"] ["block"] "EIP-1186 account and storage proofs (BLAKE3 trie nodes).";
    "eth_getStorageAt" Ethereum ["address", "slot"] ["block"] "A storage word.";
    "eth_getTransactionByHash" Ethereum ["hash"] [] "A mined or pooled Ethereum transaction by its keccak256 hash.";
    "eth_getTransactionCount" Ethereum ["address"] ["block"] "An account's nonce; with pending, counting the pool.";
    "eth_getTransactionReceipt" Ethereum ["hash"] [] "A mined Ethereum transaction's receipt and logs.";
    "eth_maxPriorityFeePerGas" Ethereum [] [] "The suggested tip: zero.";
    "eth_sendRawTransaction" Ethereum ["raw"] [] "Submits a signed Ethereum transaction (types 0 with EIP-155, 1 and 2).";
    "eth_syncing" Ethereum [] [] "Always false.";
    "net_listening" Ethereum [] [] "Always true.";
    "net_version" Ethereum [] [] "The chain id, decimal.";
    "web3_clientVersion" Ethereum [] [] "The node's name and version.";
    "dkginfo" Evo [] [] "Returns this node's DKG sessions.";
    "getbestchainlock" Evo [] [] "Returns the best ChainLock this node knows.";
    "masternode" Evo ["\"command\""] ["arg1"] "Masternode information: count, list, status, winners (Dash's subcommands).";
    "protx" Evo ["\"command\""] ["arg1", "arg2", "arg3", "arg4"] "Provider transactions: register, update_service, revoke, list [type] [detailed], info (Dash's subcommands).";
    "quorum" Evo ["\"command\""] ["arg1"] "Quorums: list [count], info, members, dkgstatus (Dash's subcommands).";
    "getgovernanceinfo" Governance [] [] "Returns the governance schedule, thresholds and budget (Dash's keys).";
    "getsuperblockbudget" Governance ["index"] [] "Returns what the superblock at a height may pay.";
    "gobject" Governance ["\"command\""] ["arg1", "arg2", "arg3", "arg4", "arg5"] "Governance objects: count, list, get, getcurrentvotes, check, prepare, submit, vote-many, vote-alias (Dash's subcommands).";
    "gov_get" Governance ["\"proposal\""] [] "Returns a live proposal with its tally, threshold, margin and projected payout height.";
    "gov_list" Governance [] ["\"state\""] "Returns the live proposals (state: all, open, closed, passing, failing).";
    "gov_params" Governance [] [] "Returns the governed values in force, their bounds and pending changes.";
    "gov_submit" Governance ["proposal"] [] "Submits a proposal from the wallet (burns the proposal fee); returns its hash.";
    "gov_treasury" Governance [] [] "Returns the treasury's balance and the next superblock's budget.";
    "gov_vote" Governance ["\"proposal\"", "\"outcome\""] ["\"masternode\""] "Votes yes, no or abstain as one masternode or every one the wallet holds the voting key of.";
    "subscribe_governance" Governance [] [] "Blocks carrying proposals or votes, snapshots and superblocks (WebSocket subscription).";
    "bridge_swap" Bridge ["\"peer\"", "\"give\"", "\"want\""] [] "Offers \"<amount> <network>\" for another to a peer of this chain; the swap then runs by itself.";
    "bridge_accept" Bridge ["\"id\""] [] "Takes a received offer (see bridge_offers).";
    "bridge_status" Bridge ["\"id\""] [] "Returns a swap's state, txids, refund_available_at and must_redeem_before.";
    "bridge_list" Bridge [] ["\"state\""] "Returns every swap, or those in one state or status.";
    "bridge_refund" Bridge ["\"id\""] [] "Refunds our HTLC now; refused before its lock, with the height it opens at.";
    "bridge_offers" Bridge [] [] "Returns the offers received and not taken.";
    "htlc_fund" Bridge ["\"recipient\"", "amount", "\"secret_hash\"", "\"hash_alg\"", "locktime"] ["\"refund_address\""] "Pays coins from the wallet into an HTLC; returns the outpoint, script and the refund signed in advance.";
    "htlc_find" Bridge ["\"recipient\"", "\"secret_hash\"", "\"hash_alg\"", "locktime", "\"refund_address\""] [] "Returns the HTLC output with exactly these terms (mempool or the last 1,000 blocks), or null.";
    "htlc_audit" Bridge ["\"txid\"", "vout"] [] "Returns an HTLC output's amount, hash, keys, lock, confirmations, ChainLock and spent state.";
    "htlc_redeem" Bridge ["\"txid\"", "vout", "\"secret\""] ["broadcast"] "Redeems an HTLC with its secret to the recipient's address (the wallet's key).";
    "htlc_refund" Bridge ["\"txid\"", "vout"] ["broadcast"] "Refunds an HTLC to its refund address once the tip reaches its lock; refused before, with the height.";
    "htlc_findspend" Bridge ["\"txid\"", "vout"] [] "Returns how an HTLC was spent (redeem with its secret, or refund), or null while unspent.";
    "stream_broadcast" Media [] ["options"] "Starts a live broadcast; returns its content id.";
    "stream_broadcast_end" Media ["\"id\""] [] "Ends a live broadcast.";
    "stream_broadcast_push" Media ["\"id\"", "\"data\""] [] "Pushes base64 input to a live broadcast.";
    "stream_buy" Media ["\"id\""] [] "Pays for priced content from the wallet.";
    "stream_info" Media ["\"id\""] [] "Returns one content's manifest summary.";
    "stream_list" Media [] [] "Lists the content in the local store.";
    "stream_publish" Media ["\"path\""] ["options"] "Publishes a file.";
    "stream_read" Media ["\"id\"", "offset", "length"] ["wait"] "Reads bytes of content (base64), fetching them first.";
    "stream_search" Media ["\"query\""] [] "Searches local and announced content.";
    "stream_segments" Media ["\"id\"", "from"] ["wait"] "Live segments from sequence number `from`.";
    "stream_status" Media [] ["\"id\""] "Download progress of one content, or of every download.";
    "stream_unwatch" Media ["\"id\""] [] "Stops watching a live stream.";
    "stream_view" Media ["\"id\""] [] "Starts fetching content (or joins a live stream).";
    "generatetoaddress" Mining ["nblocks", "\"address\""] ["maxtries"] "Mines blocks to an address immediately.";
    "getblocktemplate" Mining [] ["template_request"] "Returns a block template for external miners.";
    "getmininginfo" Mining [] [] "Returns mining-related information.";
    "submitblock" Mining ["\"hexdata\""] [] "Submits a mined block.";
    "addnode" Network ["\"node\"", "\"command\""] [] "Adds, removes or tries a connection to a node once.";
    "clearbanned" Network [] [] "Clears every ban.";
    "disconnectnode" Network [] ["\"address\"", "nodeid"] "Disconnects a peer by address or id.";
    "getconnectioncount" Network [] [] "Returns the number of connections.";
    "getnetworkinfo" Network [] [] "Returns P2P networking state.";
    "getnodehealth" Network [] [] "Returns the node's health: chain, mempool, peers, masternodes, ChainLock lag, DKG, media, process (as /metrics).";
    "getpeerinfo" Network [] [] "Returns data about each connected peer.";
    "listbanned" Network [] [] "Lists banned peers.";
    "setban" Network ["\"subnet\"", "\"command\""] ["bantime", "absolute"] "Adds or removes a ban.";
    "decoderawtransaction" Rawtransactions ["\"hexstring\""] [] "Decodes a serialized transaction.";
    "getrawtransaction" Rawtransactions ["\"txid\""] ["verbosity"] "Returns a transaction: hex (0), decoded (1), or decoded with its fee and spent outputs (2).";
    "sendrawtransaction" Rawtransactions ["\"hexstring\""] [] "Submits a serialized transaction to the mempool and the network.";
    "getbalance" Wallet [] [] "Returns the wallet's trusted balance.";
    "getbalances" Wallet [] [] "Returns the wallet's balances by kind.";
    "getnewaddress" Wallet [] [] "Returns a new receiving address.";
    "listtransactions" Wallet [] ["\"label\"", "count", "skip"] "Returns the wallet's most recent transactions.";
    "listunspent" Wallet [] ["minconf", "maxconf"] "Returns the wallet's unspent outputs.";
    "sendtoaddress" Wallet ["\"address\"", "amount"] [] "Sends an amount to an address.";
    "validateaddress" Wallet ["\"address\""] [] "Returns information about an address.";
}

/// The signature of `method`, if the node serves it.
pub fn signature(method: &str) -> Option<&'static Signature> {
    SIGNATURES.iter().find(|s| s.name == method)
}

/// `help`'s listing: usage lines by category, as Core's.
pub fn help_listing() -> String {
    let mut out = String::new();
    let mut categories: Vec<Category> = Vec::new();
    for s in SIGNATURES {
        if !categories.contains(&s.category) {
            categories.push(s.category);
        }
    }
    for (i, c) in categories.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "== {} ==", c.title());
        for s in SIGNATURES.iter().filter(|s| s.category == *c) {
            let _ = writeln!(out, "{}", s.usage_line());
        }
    }
    out
}

/// How many positional parameters a call carries; `None` for named
/// parameters (an object), which jsonrpsee matches by name.
fn positional_count(params: Option<&str>) -> Option<usize> {
    let Some(raw) = params else {
        return Some(0);
    };
    if raw.trim() == "null" {
        return Some(0);
    }
    // Counts the elements without building them: every call passes here,
    // and `submitblock`'s one parameter is megabytes of hex.
    serde_json::from_str::<Vec<serde::de::IgnoredAny>>(raw)
        .ok()
        .map(|v| v.len())
}

/// Core's name of a JSON value's type.
pub fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The JSON type serde names in "invalid type: string \"x\", …".
fn json_type_of_unexpected(unexpected: &str) -> &'static str {
    let word = unexpected.split([' ', ':']).next().unwrap_or_default();
    match word {
        "string" | "character" => "string",
        "integer" | "floating" => "number",
        "boolean" => "bool",
        "null" | "unit" => "null",
        "sequence" => "array",
        "map" => "object",
        _ => "unknown",
    }
}

/// The JSON type serde's "expected …" names.
fn json_type_of_expected(expected: &str) -> &'static str {
    let e = expected.trim();
    let numeric = [
        "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "usize", "f32", "f64",
    ];
    if numeric.iter().any(|n| e.starts_with(n)) || e.contains("integer") || e.contains("number") {
        "number"
    } else if e.contains("boolean") || e == "bool" {
        "bool"
    } else if e.contains("string") || e == "char" {
        "string"
    } else if e.contains("sequence") || e.contains("tuple") || e.contains("array") {
        "array"
    } else if e.contains("map") || e.starts_with("struct") {
        "object"
    } else {
        "another type"
    }
}

/// Core's -3 for parameter `position` (1-based) named `name`, of JSON type
/// `got` where `want` was expected.
pub fn wrong_type(position: usize, name: &str, got: &Value, want: &str) -> ErrorObjectOwned {
    let key = format!("Position {position} ({name})");
    let what = format!(
        "JSON value of type {} is not of expected type {want}",
        json_type_name(got)
    );
    type_error(key, what)
}

/// Core 28's -3: `Wrong type passed:` and an object naming the parameter,
/// indented by 4 as Core writes it.
fn type_error(key: String, what: String) -> ErrorObjectOwned {
    let detail = format!("{{\n    {}: {}\n}}", Value::from(key), Value::from(what));
    super::rpc_error(codes::TYPE_ERROR, format!("Wrong type passed:\n{detail}"))
}

/// The call's positional parameters, to name the one that failed.
#[derive(Debug, Clone, Copy)]
pub struct CallParams<'p> {
    pub signature: Option<&'static Signature>,
    pub values: &'p [Value],
}

/// Which positional parameter serde's "unexpected" part describes: the
/// first of that JSON type (and, for scalars, that value).
fn failed_position(unexpected: &str, values: &[Value]) -> Option<usize> {
    let (kind, shown) = unexpected.split_once(' ').unwrap_or((unexpected, ""));
    // serde shows strings quoted (`string "x"`) and numbers and booleans
    // in backticks (`` integer `5` ``).
    let shown = shown.trim_matches(|c| c == '"' || c == '`');
    values.iter().position(|v| match (kind, v) {
        ("string", Value::String(s)) => s == shown,
        ("integer" | "floating", Value::Number(n)) => n.to_string() == shown || kind == "floating",
        ("boolean", Value::Bool(b)) => b.to_string() == shown,
        ("null" | "unit", Value::Null) => true,
        ("sequence", Value::Array(_)) => true,
        ("map", Value::Object(_)) => true,
        _ => false,
    })
}

/// Core's error for a parameter jsonrpsee could not decode, from serde's
/// message (jsonrpsee puts it in the error's `data`). A wrong type is -3
/// in Core 28's words: `Wrong type passed:` and an object naming the
/// parameter, `"Position 1 (height)": "JSON value of type string is not of
/// expected type number"`.
pub fn core_param_error(serde_message: &str, call: CallParams<'_>) -> ErrorObjectOwned {
    // Serde appends " at line 1 column 7" for JSON input: not ours to show.
    let message = serde_message
        .rsplit_once(" at line ")
        .map_or(serde_message, |(m, _)| m);
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((unexpected, expected)) = rest.split_once(", expected ") {
            let what = format!(
                "JSON value of type {} is not of expected type {}",
                json_type_of_unexpected(unexpected),
                json_type_of_expected(expected)
            );
            let position = failed_position(unexpected, call.values);
            let key = match (position, call.signature) {
                (Some(i), Some(sig)) => {
                    let name = sig.params.get(i).map_or("", |n| n.trim_matches('"'));
                    format!("Position {} ({name})", i.saturating_add(1))
                }
                (Some(i), None) => format!("Position {}", i.saturating_add(1)),
                (None, _) => "Parameter".to_owned(),
            };
            return type_error(key, what);
        }
    }
    super::rpc_error(
        codes::INVALID_PARAMETER,
        format!("Invalid parameter: {message}"),
    )
}

/// jsonrpsee RPC middleware that checks arity and translates parameter
/// errors to Core's codes (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreParamsLayer;

impl<S> tower::Layer<S> for CoreParamsLayer {
    type Service = CoreParams<S>;

    fn layer(&self, inner: S) -> CoreParams<S> {
        CoreParams { inner }
    }
}

/// The service [`CoreParamsLayer`] wraps around each call.
#[derive(Debug, Clone)]
pub struct CoreParams<S> {
    inner: S,
}

impl<'a, S> RpcServiceT<'a> for CoreParams<S>
where
    S: RpcServiceT<'a> + Send + Sync + Clone + 'static,
{
    type Future = BoxFuture<'a, MethodResponse>;

    fn call(&self, request: Request<'a>) -> Self::Future {
        let id = request.id().into_owned();
        let sig = signature(request.method_name());
        // Ethereum's methods keep Ethereum's codes and messages.
        if sig.is_some_and(|s| s.category == Category::Ethereum) {
            return self.inner.call(request).boxed();
        }
        // Borrowed from the request body: kept to name a failed parameter,
        // decoded only if the call fails with one.
        let raw_params = request.params.clone();
        if let Some(sig) = sig {
            let count = positional_count(raw_params.as_deref().map(|p| p.get()));
            if count.is_some_and(|n| !sig.accepts(n)) {
                let usage = super::rpc_error(codes::MISC_ERROR, sig.usage());
                return futures::future::ready(MethodResponse::error(id, usage)).boxed();
            }
        }
        let call = self.inner.call(request);
        async move {
            let response = call.await;
            if response.as_error_code() != Some(codes::INVALID_PARAMS) {
                return response;
            }
            let serde_message = serde_json::from_str::<Value>(response.as_result())
                .ok()
                .and_then(|v| v["error"]["data"].as_str().map(str::to_owned));
            let values = match raw_params
                .as_deref()
                .map(|p| serde_json::from_str::<Value>(p.get()))
            {
                Some(Ok(Value::Array(v))) => v,
                _ => Vec::new(),
            };
            let call = CallParams {
                signature: sig,
                values: &values,
            };
            match serde_message {
                Some(m) => MethodResponse::error(id, core_param_error(&m, call)),
                // The handler's own -32602, with its own message: kept.
                None => response,
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn usage_lines_are_cores() {
        let s = signature("getblock").expect("served");
        assert_eq!(s.usage_line(), "getblock \"blockhash\" ( verbosity )");
        assert!(s.accepts(1) && s.accepts(2));
        assert!(!s.accepts(0) && !s.accepts(3));
        let s = signature("getblockcount").expect("served");
        assert_eq!(s.usage_line(), "getblockcount");
        assert!(s.accepts(0) && !s.accepts(2));
        let listing = help_listing();
        assert!(
            listing.starts_with("== Blockchain ==\ngetaddressutxos addresses\n"),
            "{listing}"
        );
        assert!(listing.contains("\ngetbestblockhash\n"));
    }

    #[test]
    fn serde_messages_become_cores() {
        let values = [json!("x")];
        let call = CallParams {
            signature: signature("getblockhash"),
            values: &values,
        };
        let e = core_param_error(
            "invalid type: string \"x\", expected i64 at line 1 column 4",
            call,
        );
        assert_eq!(e.code(), codes::TYPE_ERROR);
        assert_eq!(
            e.message(),
            "Wrong type passed:\n{\n    \"Position 1 (height)\": \"JSON value of type string is not of expected type number\"\n}"
        );
        let values = [json!("00"), json!(5)];
        let call = CallParams {
            signature: signature("getblock"),
            values: &values,
        };
        let e = core_param_error("invalid type: integer `5`, expected a boolean", call);
        assert!(
            e.message()
                .contains("\"Position 2 (verbosity)\": \"JSON value of type number is not of expected type bool\""),
            "{}",
            e.message()
        );
        let none = CallParams {
            signature: None,
            values: &[],
        };
        let e = core_param_error("invalid type: string \"yes\", expected a string", none);
        assert!(e.message().starts_with("Wrong type passed:"));
        let e = core_param_error("invalid value: integer `-1`, expected u32", none);
        assert_eq!(e.code(), codes::INVALID_PARAMETER);
    }

    #[test]
    fn positional_counts() {
        assert_eq!(positional_count(None), Some(0));
        assert_eq!(positional_count(Some("null")), Some(0));
        assert_eq!(positional_count(Some("[1,\"a\",null]")), Some(3));
        assert_eq!(positional_count(Some("{\"height\":1}")), None);
    }
}
