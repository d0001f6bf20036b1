//! Mining: `getblocktemplate`, `submitblock`, `generatetoaddress`,
//! `getmininginfo`.

use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use serde::{Deserialize, Serialize};

/// A transaction of a block template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateTransaction {
    /// The transaction, hex.
    pub data: String,
    pub txid: String,
    /// The witness txid (the same as `txid` here).
    pub hash: String,
    /// 1-based indexes of the template's transactions this one spends
    /// from, which must come first.
    pub depends: Vec<usize>,
    /// Fee in base units.
    pub fee: u64,
    pub size: usize,
    /// 4 × `size`: there is no witness discount.
    pub weight: usize,
}

/// `getblocktemplate`'s result (BIP 22 fields that apply here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockTemplateResult {
    pub version: u32,
    /// Deployment rules in force; none (no version-bits deployments).
    pub rules: Vec<String>,
    pub vbavailable: serde_json::Map<String, serde_json::Value>,
    /// BIP 23 capabilities; none (no proposal mode).
    pub capabilities: Vec<String>,
    pub vbrequired: u32,
    pub previousblockhash: String,
    pub transactions: Vec<TemplateTransaction>,
    /// Data to put in the coinbase; none.
    pub coinbaseaux: serde_json::Map<String, serde_json::Value>,
    /// What the coinbase may pay, base units (subsidy + fees).
    pub coinbasevalue: u64,
    /// Changes when the template would: the tip and the mempool's size.
    pub longpollid: String,
    /// The proof-of-work target, 64 hex digits.
    pub target: String,
    pub mintime: u64,
    pub curtime: u64,
    pub mutable: Vec<String>,
    pub noncerange: String,
    pub sizelimit: usize,
    /// 4 × `sizelimit`.
    pub weightlimit: usize,
    pub bits: String,
    pub height: u64,
}

/// `getmininginfo`'s result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MiningInfo {
    pub blocks: u64,
    pub bits: String,
    pub difficulty: f64,
    /// The tip's proof-of-work target, 64 hex digits.
    pub target: String,
    /// Hashes per second the network did over the last 120 blocks
    /// (chain work over elapsed time).
    pub networkhashps: f64,
    pub pooledtx: usize,
    pub chain: String,
    /// The node's own miner is running.
    pub generate: bool,
    pub genproclimit: usize,
    pub minedblocks: u64,
    pub totalhashes: u64,
    /// Node warnings; an array of strings, as Core 28+.
    pub warnings: Vec<String>,
}

/// Mining, as Bitcoin Core's (regtest's `generatetoaddress` included).
#[rpc(server, client)]
pub trait MiningApi {
    /// A template for the next block. `template_request` is accepted as
    /// Core's (`{"rules": ["segwit"]}` from BIP 22/23 miners) and only
    /// checked to be an object: there is one template mode.
    #[method(name = "getblocktemplate")]
    async fn get_block_template(
        &self,
        template_request: Option<serde_json::Value>,
    ) -> RpcResult<BlockTemplateResult>;

    /// Submits a block given as hex: `null` when accepted as the new tip,
    /// `"inconclusive"` on a side branch, else the reject reason.
    #[method(name = "submitblock")]
    async fn submit_block(&self, hexdata: String) -> RpcResult<Option<String>>;

    /// Mines `nblocks` blocks paying `address`, giving up on a block after
    /// `maxtries` nonces (default 1,000,000); returns their hashes.
    #[method(name = "generatetoaddress")]
    async fn generate_to_address(
        &self,
        nblocks: u64,
        address: String,
        maxtries: Option<u64>,
    ) -> RpcResult<Vec<String>>;

    /// The miner's and the chain's state.
    #[method(name = "getmininginfo")]
    async fn get_mining_info(&self) -> RpcResult<MiningInfo>;
}
