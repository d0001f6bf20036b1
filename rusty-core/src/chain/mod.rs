//! The block tree, the active chain and the UTXO set.
//!
//! [`Chain`] keeps every known block's index entry in memory, stores blocks,
//! undo data and coins in RocksDB, and follows the chain with the most
//! cumulative work. Connecting or disconnecting a block is one atomic write
//! batch that moves the UTXO set, the undo data, the height index and the
//! tip pointer together, so a crash between any two batches leaves a
//! consistent (if not yet best) tip; [`Chain::open`] then finishes any
//! interrupted reorganisation.

use std::collections::HashMap;

use ruint::aliases::U256;
use rusty_shared_types::{
    decode_exact, Block, BlockHeader, ChainLock, ChainParams, Encode, Hash256, OutPoint,
    Transaction,
};
use rusty_storage::{Database, StorageError};
use tracing::{debug, info, warn};

mod coins;
mod connect;
mod index;

pub use coins::{CoinCache, CoinChanges, CoinView, UtxoTotals};
use connect::{connect_block_into, Connecting};

use crate::{
    governance::{GovBlock, GovState},
    masternode::{MnError, MnState},
    pow,
    tables::{
        ActiveChain, BlockIndex, BlockStatus, Blocks, Coin, GovUndoTable, IndexEntry, MnUndoTable,
        TxIndex, TxLocation, Undo, Utxos, META_CHAINLOCK, META_GOV_STATE, META_MN_STATE, META_TIP,
    },
    validation::{self, ValidationError},
};

/// Errors of the chain state.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The block or transaction breaks a consensus rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The database contradicts itself (e.g. a missing block on the active
    /// chain): restart with a fresh datadir or reindex.
    #[error("chain database is inconsistent: {0}")]
    Inconsistent(String),
    /// The datadir holds another network's chain.
    #[error(
        "the database holds a different genesis block ({found}); is --datadir/--network right?"
    )]
    WrongGenesis { found: Hash256 },
}

pub type Result<T> = std::result::Result<T, ChainError>;

/// A change of the active chain, for the mempool and the wallet.
#[derive(Debug, Clone)]
pub enum ChainEvent {
    /// `txids` are those of `block.txs`, in order (computed once, when
    /// the block was checked).
    Connected {
        block: Block,
        height: u64,
        txids: Vec<Hash256>,
    },
    Disconnected {
        block: Block,
        height: u64,
    },
}

/// A block that failed to connect during activation, and why.
pub type ConnectFailure = (Hash256, ValidationError);

/// What happened to a submitted block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockAcceptance {
    /// Stored, and the active chain now ends in it.
    BecameTip,
    /// Stored and valid so far, but on a branch with less work.
    SideBranch,
}

/// What [`Chain::apply_chainlock`] did.
#[derive(Debug)]
pub enum LockOutcome {
    /// No newer than the best ChainLock: nothing to do.
    Stale,
    /// The new best ChainLock, and the active-chain changes it caused.
    Applied(Vec<ChainEvent>),
    /// Invalid; `events` are the active-chain changes of judging it on its
    /// own branch (there and back), which the wallet and mempool must
    /// still hear of.
    Rejected {
        error: ValidationError,
        events: Vec<ChainEvent>,
    },
}

/// The block tree and the active chain over the database.
#[derive(Debug)]
pub struct Chain {
    db: Database,
    params: &'static ChainParams,
    index: HashMap<Hash256, IndexEntry>,
    /// Hashes of the active chain by height.
    active: Vec<Hash256>,
    /// The block just stored by `process_block`, with its hash and txids,
    /// so connecting it neither reads it back nor hashes it again.
    recent: Option<(Hash256, Block, Vec<Hash256>)>,
    /// The valid block with the most work seen (fork choice candidate).
    most_work: Hash256,
    /// Coin changes of connected blocks not yet written to the database.
    coins: CoinCache,
    /// Blocks connected since the last flush.
    unflushed_blocks: usize,
    /// The masternode list and quorums at the active tip.
    mn: MnState,
    /// Treasury, governed values, live proposals and tallies at the tip.
    gov: GovState,
    /// The highest verified ChainLock: no reorganisation below it.
    best_chainlock: Option<ChainLock>,
    /// The highest verified ChainLock whose block was stored when a higher
    /// one arrived: it holds fork choice while the best lock's block is
    /// still on its way (not persisted: after a restart the best lock alone
    /// constrains, as before it arrived).
    known_chainlock: Option<ChainLock>,
    /// Blocks whose ChainLock was judged on their own branch
    /// ([`Chain::adopt_branch_chainlock`]), each tried once.
    tried_branch_locks: std::collections::HashSet<Hash256>,
    /// Ethereum senders recovered at pool admission, reused by connects.
    senders: crate::contracts::pool::SenderCache,
    /// Decoded state-trie nodes (the top levels stay hot).
    state_nodes: rusty_storage::trie::NodeCache,
    /// State-trie nodes of connected blocks, written at the next flush.
    unwritten_nodes: rusty_storage::trie::UnwrittenNodes,
    /// Transaction indexes and receipts of connected blocks, written at
    /// the next flush.
    unwritten_index: index::UnwrittenIndex,
}

/// Flush the coin cache once it holds this many changes…
const MAX_UNFLUSHED_COINS: usize = 500_000;
/// …or the governance vote cache this many records…
const MAX_UNFLUSHED_VOTES: usize = 200_000;
/// …or this many blocks were connected since the last flush (bounds the
/// replay after a crash)…
const MAX_UNFLUSHED_BLOCKS: usize = 1_000;
/// …or the state-trie nodes not yet written hold this many bytes…
const MAX_UNWRITTEN_NODE_BYTES: usize = 256 << 20;
/// …or the indexes and receipts not yet written this many.
const MAX_UNWRITTEN_INDEX_BYTES: usize = 128 << 20;

fn work_of(entry: &IndexEntry) -> U256 {
    U256::from_be_bytes(entry.chain_work)
}

impl Chain {
    /// Opens the chain state, creating the genesis block on first use and
    /// finishing a reorganisation a crash interrupted.
    pub fn open(
        db: Database,
        params: &'static ChainParams,
        now: u64,
    ) -> Result<(Chain, Vec<ChainEvent>)> {
        let mut index = HashMap::new();
        for item in db.iter_from::<BlockIndex>(&Hash256::ZERO) {
            let (hash, entry) = item?;
            index.insert(hash, entry);
        }
        let genesis = params.genesis_block();
        let genesis_hash = genesis.hash();
        let mut chain = Chain {
            db,
            params,
            index,
            active: Vec::new(),
            recent: None,
            most_work: Hash256::ZERO,
            coins: CoinCache::default(),
            unflushed_blocks: 0,
            mn: MnState::default(),
            gov: GovState::genesis(params),
            best_chainlock: None,
            known_chainlock: None,
            tried_branch_locks: Default::default(),
            senders: Default::default(),
            state_nodes: Default::default(),
            unwritten_nodes: Default::default(),
            unwritten_index: Default::default(),
        };
        match chain.db.get::<ActiveChain>(&0)? {
            None => chain.init_genesis(&genesis)?,
            Some(h) if h != genesis_hash => return Err(ChainError::WrongGenesis { found: h }),
            Some(_) => {}
        }
        chain.load_active()?;
        if let Some(bytes) = chain.db.get_meta(META_MN_STATE)? {
            chain.mn = decode_exact(&bytes)
                .map_err(|e| ChainError::Inconsistent(format!("masternode state record: {e}")))?;
        }
        match chain.db.get_meta(META_GOV_STATE)? {
            Some(bytes) => {
                chain.gov = decode_exact(&bytes).map_err(|e| {
                    ChainError::Inconsistent(format!("governance state record: {e}"))
                })?;
            }
            None if chain.height() > 0 => {
                return Err(ChainError::Inconsistent(
                    "no governance state recorded above the genesis block".into(),
                ))
            }
            None => {}
        }
        if let Some(bytes) = chain.db.get_meta(META_CHAINLOCK)? {
            chain.best_chainlock = Some(
                decode_exact(&bytes)
                    .map_err(|e| ChainError::Inconsistent(format!("ChainLock record: {e}")))?,
            );
        }
        chain.most_work = chain.scan_most_work();
        let events = chain.activate_best_chain(now, None).map(|(ev, _)| ev)?;
        info!(target: "chain", height = chain.height(), tip = %chain.tip(), "chain state loaded");
        Ok((chain, events))
    }

    fn init_genesis(&mut self, genesis: &Block) -> Result<()> {
        let hash = genesis.hash();
        let target = pow::target_from_compact(genesis.header.bits)
            .map_err(|_| ChainError::Inconsistent("genesis bits".into()))?;
        let entry = IndexEntry {
            header: genesis.header.clone(),
            height: 0,
            chain_work: pow::block_work(&target).to_be_bytes(),
            status: BlockStatus::Valid,
        };
        // The genesis outputs are unspendable by construction: no coins.
        let mut batch = self.db.batch();
        batch.put::<BlockIndex>(&hash, &entry);
        batch.put::<Blocks>(&hash, genesis);
        batch.put::<ActiveChain>(&0, &hash);
        batch.put::<TxIndex>(
            &genesis.txs[0].txid(),
            &TxLocation {
                block: hash,
                index: 0,
            },
        );
        batch.put_meta(META_TIP, hash.encode());
        self.db.commit(batch)?;
        self.index.insert(hash, entry);
        info!(target: "chain", %hash, network = %self.params.network, "created genesis block");
        Ok(())
    }

    fn load_active(&mut self) -> Result<()> {
        let tip_bytes = self
            .db
            .get_meta(META_TIP)?
            .ok_or_else(|| ChainError::Inconsistent("no tip recorded".into()))?;
        let tip: Hash256 = decode_exact(&tip_bytes)
            .map_err(|e| ChainError::Inconsistent(format!("tip record: {e}")))?;
        let tip_height = self
            .index
            .get(&tip)
            .ok_or_else(|| ChainError::Inconsistent(format!("tip {tip} not in the block index")))?
            .height;
        // Walk back from the tip through the index: the height table may hold
        // stale entries above the tip, which are ignored.
        let mut active = vec![Hash256::ZERO; usize::try_from(tip_height).unwrap_or(0) + 1];
        let mut cursor = tip;
        for h in (0..active.len()).rev() {
            active[h] = cursor;
            if h > 0 {
                cursor = self.index[&cursor].header.prev_hash;
                if !self.index.contains_key(&cursor) {
                    return Err(ChainError::Inconsistent(format!(
                        "missing ancestor {cursor}"
                    )));
                }
            }
        }
        self.active = active;
        Ok(())
    }

    pub fn params(&self) -> &'static ChainParams {
        self.params
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn tip(&self) -> Hash256 {
        *self.active.last().unwrap_or(&Hash256::ZERO)
    }

    pub fn height(&self) -> u64 {
        self.active.len().saturating_sub(1) as u64
    }

    pub fn tip_entry(&self) -> &IndexEntry {
        &self.index[&self.tip()]
    }

    pub fn entry(&self, hash: &Hash256) -> Option<&IndexEntry> {
        self.index.get(hash)
    }

    pub fn hash_at(&self, height: u64) -> Option<Hash256> {
        usize::try_from(height)
            .ok()
            .and_then(|h| self.active.get(h))
            .copied()
    }

    pub fn is_active(&self, hash: &Hash256) -> bool {
        self.index
            .get(hash)
            .is_some_and(|e| self.hash_at(e.height) == Some(*hash))
    }

    pub fn chain_work(&self) -> U256 {
        work_of(self.tip_entry())
    }

    pub fn block(&self, hash: &Hash256) -> Result<Option<Block>> {
        Ok(self.db.get::<Blocks>(hash)?)
    }

    /// The coins `hash` spent, in input order (coinbase excluded), kept
    /// while the block is connected (for disconnecting it) and after.
    pub fn block_undo(&self, hash: &Hash256) -> Result<Option<crate::tables::BlockUndo>> {
        Ok(self.db.get::<Undo>(hash)?)
    }

    /// The account world at the active tip.
    pub fn accounts(&self) -> crate::contracts::AccountWorld<'_> {
        self.accounts_at(self.tip_entry().header.state_root)
    }

    /// `from` and the blocks before it, newest first, up to 256 (what a
    /// child block's `BLOCKHASH` reads); empty for an unknown block, and
    /// where the child runs no contracts (nothing reads them: every
    /// connect and template asks).
    pub fn ancestor_hashes(&self, from: &Hash256) -> Vec<[u8; 32]> {
        let child = self.index.get(from).map(|e| e.height.saturating_add(1));
        if child
            .and_then(|h| crate::contracts::exec::active_params(self.params, h))
            .is_none()
        {
            return Vec::new();
        }
        let mut hashes = Vec::new();
        let mut at = *from;
        while hashes.len() < 256 {
            let Some(entry) = self.index.get(&at) else {
                break;
            };
            hashes.push(at.0);
            if entry.height == 0 {
                break;
            }
            at = entry.header.prev_hash;
        }
        hashes
    }

    /// The account world a header's `state_root` commits to, read through
    /// the chain's node cache.
    pub fn accounts_at(&self, header_root: Hash256) -> crate::contracts::AccountWorld<'_> {
        let store = rusty_storage::trie::TableNodes::cached(&self.db, &self.state_nodes)
            .with_unwritten(&self.unwritten_nodes);
        crate::contracts::AccountWorld::over(&self.db, header_root, store)
    }

    /// [`Chain::accounts_at`] without the node cache, as a node that just
    /// started reads it (benchmarks).
    pub fn accounts_uncached(&self, header_root: Hash256) -> crate::contracts::AccountWorld<'_> {
        let store =
            rusty_storage::trie::TableNodes::new(&self.db).with_unwritten(&self.unwritten_nodes);
        crate::contracts::AccountWorld::over(&self.db, header_root, store)
    }

    /// Remembers the sender recovered for an Ethereum transaction that
    /// decoded, so a block carrying it does not recover it again.
    pub fn remember_sender(&mut self, tx: &rusty_crypto::eth::tx::EthTx) {
        self.senders.insert(tx);
    }

    /// Where an Ethereum transaction (by keccak256) sits in the active
    /// chain.
    pub fn eth_tx_location(&self, hash: &[u8; 32]) -> Result<Option<TxLocation>> {
        // As `tx_location`: an entry of a block off the active chain is
        // ignored (disconnects delete theirs in the same batch).
        let hash = Hash256(*hash);
        let location = match self.unwritten_index.eth_tx_location(&hash) {
            Some(loc) => Some(loc),
            None => self.db.get::<crate::tables::EthTxIndex>(&hash)?,
        };
        Ok(location.filter(|loc| self.is_active(&loc.block)))
    }

    /// The receipts of a stored block's Ethereum transactions.
    pub fn receipts(&self, block: &Hash256) -> Result<crate::contracts::BlockReceipts> {
        if let Some(receipts) = self.unwritten_index.receipts(block) {
            return Ok(receipts.clone());
        }
        Ok(self
            .db
            .get::<crate::tables::Receipts>(block)?
            .unwrap_or_default())
    }

    pub fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>> {
        self.coin_view().get(outpoint)
    }

    /// Count and value of the UTXO set at the tip (reads every coin).
    pub fn utxo_totals(&self) -> Result<UtxoTotals> {
        self.coin_view().totals()
    }

    /// The unspent coins locked by `script` at the tip, at most `limit`
    /// (Dash's `getaddressutxos` without an address index: it reads every
    /// coin, so callers bound how often it runs).
    pub fn coins_of_script(
        &self,
        script: &rusty_shared_types::Script,
        limit: usize,
    ) -> Result<Vec<(OutPoint, Coin)>> {
        let mut found = Vec::new();
        self.coin_view().for_each(|outpoint, coin| {
            if found.len() < limit && &coin.output.lock == script {
                found.push((*outpoint, coin.clone()));
            }
        })?;
        Ok(found)
    }

    fn coin_view(&self) -> CoinView<'_> {
        CoinView {
            db: &self.db,
            cache: &self.coins,
        }
    }

    /// Where `txid` sits in the active chain. Index entries of blocks left
    /// off the active chain by a crash before a flush are ignored.
    pub fn tx_location(&self, txid: &Hash256) -> Result<Option<TxLocation>> {
        let location = match self.unwritten_index.tx_location(txid) {
            Some(loc) => Some(loc),
            None => self.db.get::<TxIndex>(txid)?,
        };
        Ok(location.filter(|loc| self.is_active(&loc.block)))
    }

    /// Writes the state-trie nodes and the indexes and receipts held since
    /// the last flush, in two batches built and written on two threads at
    /// once (RocksDB inserts concurrent batches into its memtables in
    /// parallel; one batch of some 20,000 keys took 30-40 ms after 5,000
    /// ERC-20 transfers). They may reach the database before the tip
    /// record moves: nodes are named by their hash, and an index entry of
    /// a block above the recorded tip is ignored after a crash (the block
    /// is connected again, which writes it again).
    fn write_held_records(&self) -> Result<()> {
        let (db, nodes, index) = (&self.db, &self.unwritten_nodes, &self.unwritten_index);
        let (nodes_written, index_written) = std::thread::scope(|scope| {
            let node_writer = scope.spawn(|| {
                let mut batch = db.batch();
                nodes.for_each(|hash, bytes| crate::contracts::write_node(&mut batch, hash, bytes));
                db.commit(batch)
            });
            let mut batch = db.batch();
            index.write_to(&mut batch);
            let index_written = db.commit(batch);
            let nodes_written = node_writer.join().unwrap_or_else(|_| {
                Err(StorageError::Backend(
                    "the trie node writer panicked".into(),
                ))
            });
            (nodes_written, index_written)
        });
        nodes_written?;
        index_written?;
        Ok(())
    }

    /// Writes what the chain holds for its next flush, then the cached
    /// coin changes with the database's tip record moved to the active
    /// tip, in one batch.
    pub fn flush(&mut self) -> Result<()> {
        let started = std::time::Instant::now();
        let (nodes, node_bytes) = (self.unwritten_nodes.len(), self.unwritten_nodes.bytes());
        let index_bytes = self.unwritten_index.bytes();
        self.write_held_records()?;
        let records = started.elapsed();
        let mut batch = self.db.batch();
        self.coins.write_to(&mut batch);
        batch.put_meta(META_TIP, self.tip().encode());
        batch.put_meta(META_MN_STATE, self.mn.encode());
        self.gov.write_to(&mut batch);
        let changes = self.coins.len();
        self.db.commit(batch)?;
        self.coins.clear();
        self.gov.written();
        self.unwritten_nodes.written();
        self.unwritten_index.written();
        self.unflushed_blocks = 0;
        debug!(target: "chain", changes, nodes, node_bytes, index_bytes,
               records_us = records.as_micros() as u64,
               tip_us = (started.elapsed() - records).as_micros() as u64,
               tip = %self.tip(), "flushed coin cache");
        Ok(())
    }

    /// Number of blocks on side branches and the active chain.
    pub fn known_blocks(&self) -> usize {
        self.index.len()
    }

    /// Median time of the block `hash` and up to ten ancestors.
    pub fn median_time_past(&self, hash: &Hash256) -> u64 {
        let mut times = Vec::with_capacity(self.params.median_time_span);
        let mut cursor = self.index.get(hash);
        while let Some(e) = cursor {
            times.push(e.header.time);
            if times.len() == self.params.median_time_span || e.height == 0 {
                break;
            }
            cursor = self.index.get(&e.header.prev_hash);
        }
        times.sort_unstable();
        times.get(times.len() / 2).copied().unwrap_or(0)
    }

    /// The difficulty bits a child of `parent` must carry: ASERT anchored at
    /// the genesis block (whose parent time is taken as genesis time minus
    /// one spacing), or the pow limit on networks without retargeting.
    pub fn next_bits(&self, parent: &IndexEntry) -> u32 {
        let p = self.params;
        if p.pow_no_retargeting {
            return p.pow_limit_bits;
        }
        let spacing = i64::try_from(p.target_spacing).unwrap_or(i64::MAX);
        let anchor_parent_time = i64::try_from(p.genesis_time)
            .unwrap_or(i64::MAX)
            .saturating_sub(spacing);
        let time_diff = i64::try_from(parent.header.time)
            .unwrap_or(i64::MAX)
            .saturating_sub(anchor_parent_time);
        let height_diff = i64::try_from(parent.height).unwrap_or(i64::MAX);
        let limit = pow::target_from_compact(p.pow_limit_bits).unwrap_or(U256::MAX);
        let asert = pow::asert::AsertParams {
            target_spacing: spacing,
            half_life: i64::try_from(p.asert_half_life_secs()).unwrap_or(i64::MAX),
            pow_limit: limit,
        };
        pow::asert::next_bits_asert(p.pow_limit_bits, &asert, time_diff, height_diff)
            .unwrap_or(p.pow_limit_bits)
    }

    /// Validates and stores a block, then follows the most-work chain.
    /// Returns what happened to the block and the active-chain changes.
    pub fn process_block(
        &mut self,
        block: Block,
        now: u64,
    ) -> Result<(BlockAcceptance, Vec<ChainEvent>)> {
        let hash = block.hash();
        if let Some(e) = self.index.get(&hash) {
            return Err(match e.status {
                BlockStatus::Invalid => ValidationError::DuplicateInvalidBlock(hash),
                BlockStatus::Valid => ValidationError::DuplicateBlock(hash),
            }
            .into());
        }
        let started = std::time::Instant::now();
        let txids = validation::check_block_txids(&block, self.params)?;
        let checked = started.elapsed();
        let parent = self
            .index
            .get(&block.header.prev_hash)
            .ok_or(ValidationError::PrevBlockNotFound(block.header.prev_hash))?;
        if parent.status == BlockStatus::Invalid {
            return Err(ValidationError::PrevBlockInvalid(block.header.prev_hash).into());
        }
        self.check_header_context(&block.header, parent, now)?;
        let height = parent.height.saturating_add(1);
        if !self.lock_allows(&hash, &block.header.prev_hash, height) {
            return Err(ValidationError::ForkBelowFinality.into());
        }
        let expected_cb_height = block.txs[0].coinbase_height();
        if expected_cb_height != Some(height) {
            return Err(ValidationError::BadCoinbaseHeight {
                expected: height,
                found: expected_cb_height.unwrap_or(0),
            }
            .into());
        }
        let target = pow::target_from_compact(block.header.bits)
            .map_err(|_| ValidationError::BadBitsEncoding(block.header.bits))?;
        let work = work_of(parent).saturating_add(pow::block_work(&target));
        let entry = IndexEntry {
            header: block.header.clone(),
            height,
            chain_work: work.to_be_bytes(),
            status: BlockStatus::Valid,
        };
        let mut batch = self.db.batch();
        batch.put::<BlockIndex>(&hash, &entry);
        batch.put::<Blocks>(&hash, &block);
        self.db.commit(batch)?;
        if self
            .index
            .get(&self.most_work)
            .is_none_or(|best| work_of(&entry) > work_of(best))
        {
            self.most_work = hash;
        }
        self.index.insert(hash, entry);
        debug!(target: "chain", %hash, height, check_us = checked.as_micros() as u64,
               store_us = (started.elapsed() - checked).as_micros() as u64, "stored block");
        self.recent = Some((hash, block, txids));

        let (events, failures) = self.activate_best_chain(now, Some(hash))?;
        if let Some(err) = failures
            .into_iter()
            .find(|(h, _)| *h == hash)
            .map(|(_, e)| e)
        {
            return Err(err.into());
        }
        let acceptance = if self.is_active(&hash) {
            BlockAcceptance::BecameTip
        } else {
            BlockAcceptance::SideBranch
        };
        Ok((acceptance, events))
    }

    fn check_header_context(
        &self,
        header: &BlockHeader,
        parent: &IndexEntry,
        now: u64,
    ) -> Result<()> {
        let expected = self.next_bits(parent);
        if header.bits != expected {
            return Err(ValidationError::BadDiffBits {
                expected,
                found: header.bits,
            }
            .into());
        }
        let mtp = self.median_time_past(&header.prev_hash);
        if header.time <= mtp {
            return Err(ValidationError::TimeTooOld {
                time: header.time,
                mtp,
            }
            .into());
        }
        let max_ahead = self.params.max_future_block_time;
        if header.time > now.saturating_add(max_ahead) {
            return Err(ValidationError::TimeTooNew {
                time: header.time,
                now,
                max_ahead,
            }
            .into());
        }
        Ok(())
    }

    /// The valid block with the most work whose ancestors are all valid.
    /// Kept incrementally ([`Chain::most_work`]); the active tip wins ties.
    fn best_candidate(&self) -> Hash256 {
        if !self.is_lock_compatible(&self.tip()) {
            // The active chain conflicts with a ChainLock: leave it, even
            // for a chain with less work.
            return self.scan_most_work();
        }
        match self.index.get(&self.most_work) {
            Some(e)
                if e.status == BlockStatus::Valid
                    && work_of(e) > self.chain_work()
                    && self.is_lock_compatible(&self.most_work) =>
            {
                self.most_work
            }
            _ => self.tip(),
        }
    }

    /// The ancestor of `hash` at `height` (`hash` itself at its height).
    pub fn ancestor(&self, hash: &Hash256, height: u64) -> Option<Hash256> {
        let mut cursor = *hash;
        loop {
            let e = self.index.get(&cursor)?;
            if e.height == height {
                return Some(cursor);
            }
            if e.height < height {
                return None;
            }
            if self.hash_at(e.height) == Some(cursor) {
                return self.hash_at(height);
            }
            cursor = e.header.prev_hash;
        }
    }

    /// Whether the indexed block `hash` can be on a chain containing the
    /// best ChainLock.
    fn is_lock_compatible(&self, hash: &Hash256) -> bool {
        self.index
            .get(hash)
            .is_some_and(|e| self.lock_allows(hash, &e.header.prev_hash, e.height))
    }

    /// Whether block `hash` (parent `prev`, at `height`) is on a chain
    /// containing the ChainLock that binds fork choice
    /// ([`Chain::binding_chainlock`]). No stored locked block, no constraint.
    fn lock_allows(&self, hash: &Hash256, prev: &Hash256, height: u64) -> bool {
        let Some(cl) = self.binding_chainlock() else {
            return true;
        };
        if height <= cl.height {
            return self.ancestor(&cl.block_hash, height) == Some(*hash);
        }
        if height == cl.height.saturating_add(1) {
            return *prev == cl.block_hash;
        }
        self.ancestor(prev, cl.height) == Some(cl.block_hash)
    }

    /// The best ChainLock if its block is stored, else the highest earlier
    /// one whose block is. A lock can outrun its block (gossip races the
    /// block's relay); the lock below it still binds meanwhile. Without
    /// this fallback a node that had just reorganised onto a locked block
    /// went back to its own branch below that lock when the next lock
    /// arrived first (found by `rusty-cli chaos`).
    fn binding_chainlock(&self) -> Option<&ChainLock> {
        [self.best_chainlock.as_ref(), self.known_chainlock.as_ref()]
            .into_iter()
            .flatten()
            .find(|cl| self.index.contains_key(&cl.block_hash))
    }

    /// The masternode list and quorums at the active tip.
    pub fn mn(&self) -> &MnState {
        &self.mn
    }

    /// The governance state at the active tip.
    pub fn gov(&self) -> &GovState {
        &self.gov
    }

    /// The highest verified ChainLock.
    pub fn best_chainlock(&self) -> Option<&ChainLock> {
        self.best_chainlock.as_ref()
    }

    /// Verifies `cl` against the quorums at the tip and, if it is higher
    /// than the best one, makes it the best: the chain moves onto the
    /// locked block's branch if needed and never reorganises below it.
    /// [`LockOutcome::Stale`] for a ChainLock no higher than the best one
    /// (not verified); one that fails against our quorums is judged on its
    /// own branch ([`Chain::adopt_branch_chainlock`]).
    pub fn apply_chainlock(&mut self, cl: ChainLock, now: u64) -> Result<LockOutcome> {
        if self
            .best_chainlock
            .as_ref()
            .is_some_and(|best| best.height >= cl.height)
        {
            return Ok(LockOutcome::Stale);
        }
        if let Err(e) = self.mn.verify_chainlock(self.params, &cl) {
            return self.adopt_branch_chainlock(cl, ValidationError::from(e), now);
        }
        let mut events = Vec::new();
        self.set_best_chainlock(cl, now, &mut events)?;
        Ok(LockOutcome::Applied(events))
    }

    fn set_best_chainlock(
        &mut self,
        cl: ChainLock,
        now: u64,
        events: &mut Vec<ChainEvent>,
    ) -> Result<()> {
        let mut batch = self.db.batch();
        batch.put_meta(META_CHAINLOCK, cl.encode());
        self.db.commit(batch)?;
        info!(target: "chainlock", height = cl.height, block = %cl.block_hash, "new best ChainLock");
        if let Some(binding) = self.binding_chainlock() {
            self.known_chainlock = Some(binding.clone());
        }
        self.best_chainlock = Some(cl);
        self.most_work = self.scan_most_work();
        let (more, _) = self.activate_best_chain(now, None)?;
        events.extend(more);
        Ok(())
    }

    /// A ChainLock that does not verify against our quorums may be valid on
    /// its own branch: the quorums that sign a height are those the chain
    /// holding the block mined, and a branch that mined a different DKG
    /// commitment (a partition across a DKG) signs with a quorum our chain
    /// does not know. If the locked block is stored, valid and on a chain
    /// containing our best ChainLock, move to it and judge the lock there:
    /// valid, it becomes the best ChainLock (fork choice then stays); not
    /// valid, fork choice takes us back and the lock is rejected. Each
    /// block is tried once. Without this, a node that mined alone through a
    /// DKG stayed on its own fork for good once the network's locks moved
    /// to the new quorum (found by `rusty-cli chaos`).
    fn adopt_branch_chainlock(
        &mut self,
        cl: ChainLock,
        error: ValidationError,
        now: u64,
    ) -> Result<LockOutcome> {
        let triable = self.index.get(&cl.block_hash).is_some_and(|e| {
            e.status == BlockStatus::Valid
                && e.height == cl.height
                && !self.is_active(&cl.block_hash)
        }) && self.is_lock_compatible(&cl.block_hash)
            && self.tried_branch_locks.insert(cl.block_hash);
        if !triable {
            return Ok(LockOutcome::Rejected {
                error,
                events: Vec::new(),
            });
        }
        let mut events = Vec::new();
        let mut failures = Vec::new();
        info!(target: "chainlock", height = cl.height, block = %cl.block_hash,
              "a ChainLock of another branch: judging it on its branch");
        self.reorganise_to(cl.block_hash, &mut events, &mut failures)?;
        if self.tip() == cl.block_hash && self.mn.verify_chainlock(self.params, &cl).is_ok() {
            self.set_best_chainlock(cl, now, &mut events)?;
            return Ok(LockOutcome::Applied(events));
        }
        // Not valid there either: back to the best chain, and the wallet and
        // mempool still hear of both moves.
        self.most_work = self.scan_most_work();
        let (back, _) = self.activate_best_chain(now, None)?;
        events.extend(back);
        warn!(target: "chainlock", height = cl.height, block = %cl.block_hash,
              "the ChainLock does not verify on its own branch either");
        Ok(LockOutcome::Rejected { error, events })
    }

    /// Full scan for the valid block with the most work (at open and after
    /// marking blocks invalid; every new block updates it incrementally).
    fn scan_most_work(&self) -> Hash256 {
        let (mut best, mut best_work) = if self.is_lock_compatible(&self.tip()) {
            (self.tip(), self.chain_work())
        } else {
            (self.hash_at(0).unwrap_or_default(), U256::ZERO)
        };
        for (hash, e) in &self.index {
            if e.status == BlockStatus::Valid
                && work_of(e) > best_work
                && self.is_lock_compatible(hash)
            {
                best = *hash;
                best_work = work_of(e);
            }
        }
        best
    }

    /// Reorganises onto the most-work valid chain. Blocks that fail to
    /// connect are marked invalid (with their descendants) and reported.
    fn activate_best_chain(
        &mut self,
        now: u64,
        _hint: Option<Hash256>,
    ) -> Result<(Vec<ChainEvent>, Vec<ConnectFailure>)> {
        let _ = now;
        let mut events = Vec::new();
        let mut failures = Vec::new();
        loop {
            let best = self.best_candidate();
            if best == self.tip() {
                break;
            }
            self.reorganise_to(best, &mut events, &mut failures)?;
        }
        Ok((events, failures))
    }

    /// Makes the stored block `best` the tip: disconnects to the fork point
    /// and connects up to it, stopping at (and marking) a block that fails.
    fn reorganise_to(
        &mut self,
        best: Hash256,
        events: &mut Vec<ChainEvent>,
        failures: &mut Vec<ConnectFailure>,
    ) -> Result<()> {
        // Path from the fork point up to `best`.
        let mut path = Vec::new();
        let mut cursor = best;
        while !self.is_active(&cursor) {
            path.push(cursor);
            cursor = self.index[&cursor].header.prev_hash;
        }
        let fork_height = self.index[&cursor].height;
        if fork_height < self.height() {
            info!(target: "chain", from = %self.tip(), to = %best, fork_height,
                  depth = self.height() - fork_height, "reorganising");
        }
        while self.height() > fork_height {
            events.push(self.disconnect_tip()?);
        }
        for hash in path.into_iter().rev() {
            match self.connect(hash) {
                Ok(ev) => events.push(ev),
                Err(ChainError::Invalid(err)) => {
                    warn!(target: "chain", %hash, %err, "block failed to connect");
                    self.mark_invalid(hash)?;
                    failures.push((hash, err));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn mark_invalid(&mut self, bad: Hash256) -> Result<()> {
        let bad_height = self.index[&bad].height;
        let mut to_mark = vec![bad];
        for (hash, e) in &self.index {
            if e.height <= bad_height || e.status == BlockStatus::Invalid {
                continue;
            }
            let mut cursor = e.header.prev_hash;
            while let Some(p) = self.index.get(&cursor) {
                if cursor == bad {
                    to_mark.push(*hash);
                    break;
                }
                if p.height <= bad_height {
                    break;
                }
                cursor = p.header.prev_hash;
            }
        }
        let mut batch = self.db.batch();
        for hash in to_mark {
            if let Some(e) = self.index.get_mut(&hash) {
                e.status = BlockStatus::Invalid;
                batch.put::<BlockIndex>(&hash, e);
            }
        }
        self.db.commit(batch)?;
        self.most_work = self.scan_most_work();
        Ok(())
    }

    /// Connects the stored block `hash` on top of the tip.
    fn connect(&mut self, hash: Hash256) -> Result<ChainEvent> {
        let started = std::time::Instant::now();
        let (block, txids) = match self.recent.take() {
            Some((h, b, txids)) if h == hash => (b, txids),
            _ => {
                let b = self
                    .db
                    .get::<Blocks>(&hash)?
                    .ok_or_else(|| ChainError::Inconsistent(format!("block {hash} not stored")))?;
                let txids = b.txs.iter().map(Transaction::txid).collect();
                (b, txids)
            }
        };
        let read = started.elapsed();
        let height = self.index[&hash].height;
        let rewards = self.gov.rewards(self.params, height);
        let size = validation::block_size(&block);
        let max = usize::try_from(rewards.values.max_block_size).unwrap_or(usize::MAX);
        if size > max {
            return Err(ValidationError::BlockTooLarge { size, max }.into());
        }
        let connecting = Connecting {
            block: &block,
            hash,
            txids: &txids,
            height,
            parent_mtp: self.median_time_past(&block.header.prev_hash),
            rewards: &rewards,
        };
        let (coins, db, params) = (self.coin_view(), &self.db, self.params);
        let check_coins = move || {
            let mut batch = db.batch();
            connect_block_into(coins, params, connecting, &mut batch).map(|c| (c, batch))
        };
        let parent_root = self.index[&block.header.prev_hash].header.state_root;
        let run_accounts = || {
            let started = std::time::Instant::now();
            let effects = crate::contracts::exec::execute_block(
                self.accounts_at(parent_root),
                self.params,
                height,
                &block,
                self.ancestor_hashes(&block.header.prev_hash),
                &self.senders,
            );
            (effects, started.elapsed())
        };
        // The coin checks and the account world read different state and
        // share nothing they write: a block with Ethereum transactions runs
        // the coin checks on another thread while this one runs its EVM
        // (one core: the second was idle whenever the pool had recovered
        // the senders); any other block checks its coins alone, first.
        let has_eth_txs = block
            .txs
            .iter()
            .any(|t| matches!(t.payload, Some(rusty_shared_types::Payload::EthTx(_))));
        let ((changes, mut batch), (effects, accounts)) = if has_eth_txs {
            let (coins_checked, accounts_run) = std::thread::scope(|scope| {
                let coins = scope.spawn(check_coins);
                let accounts_run = run_accounts();
                let coins_checked = coins.join().unwrap_or_else(|_| {
                    Err(ChainError::Inconsistent(
                        "the coin check thread panicked".into(),
                    ))
                });
                (coins_checked, accounts_run)
            });
            // The coins' verdict first, as when they ran first.
            (coins_checked?, accounts_run)
        } else {
            let coins_checked = check_coins()?;
            (coins_checked, run_accounts())
        };
        let effects = effects.map_err(ValidationError::from)?;
        effects.write(&mut batch);
        let active = &self.active;
        let mn_undo = self
            .mn
            .apply_block(
                self.params,
                &block,
                &txids,
                hash,
                height,
                rewards.coinbase_reward(),
                &|h| active.get(usize::try_from(h).ok()?).copied(),
            )
            .map_err(ValidationError::from)?;
        if block.header.mn_list_root != self.mn.list_root() {
            self.mn.undo(mn_undo);
            return Err(ValidationError::from(MnError::BadListRoot).into());
        }
        // Masternodes that were on the list before the block and changed:
        // a new registration has no votes to count or uncount.
        let mn_before: Vec<(Hash256, bool)> = mn_undo
            .entries
            .iter()
            .filter_map(|(pro, before)| before.as_ref().map(|e| (*pro, e.is_valid())))
            .collect();
        let gov_undo = match self.gov.apply_block(&GovBlock {
            params: self.params,
            db: &self.db,
            mn: &self.mn,
            mn_before: &mn_before,
            txs: &block.txs,
            txids: &txids,
            height,
            rewards: &rewards,
        }) {
            Ok(u) => u,
            Err(e) => {
                self.mn.undo(mn_undo);
                return Err(e);
            }
        };
        batch.put::<MnUndoTable>(&hash, &mn_undo);
        batch.put::<GovUndoTable>(&hash, &gov_undo);
        let validated = started.elapsed();
        if let Err(e) = self.db.commit(batch) {
            self.gov.undo(gov_undo);
            self.mn.undo(mn_undo);
            return Err(e.into());
        }
        self.coins.apply(changes);
        self.unwritten_nodes.hold(effects.nodes);
        self.unwritten_index.hold(hash, &txids, effects.receipts);
        self.unflushed_blocks += 1;
        self.active.push(hash);
        if self.coins.len() > MAX_UNFLUSHED_COINS
            || self.unwritten_nodes.bytes() > MAX_UNWRITTEN_NODE_BYTES
            || self.unwritten_index.bytes() > MAX_UNWRITTEN_INDEX_BYTES
            || self.gov.cached_votes() > MAX_UNFLUSHED_VOTES
            || self.unflushed_blocks >= MAX_UNFLUSHED_BLOCKS
        {
            self.flush()?;
        }
        debug!(target: "chain", %hash, height, txs = block.txs.len(),
               read_us = read.as_micros() as u64,
               validate_us = (validated - read).as_micros() as u64,
               accounts_us = accounts.as_micros() as u64,
               write_us = (started.elapsed() - validated).as_micros() as u64,
               "connected block");
        Ok(ChainEvent::Connected {
            block,
            height,
            txids,
        })
    }

    /// Disconnects the tip block, restoring the coins it spent.
    fn disconnect_tip(&mut self) -> Result<ChainEvent> {
        // Reorganisations are rare: write the cache out first so the
        // disconnect below is again one self-contained batch.
        if !self.coins.is_empty() || self.unflushed_blocks > 0 {
            self.flush()?;
        }
        let hash = self.tip();
        let height = self.height();
        if height == 0 {
            return Err(ChainError::Inconsistent(
                "cannot disconnect the genesis block".into(),
            ));
        }
        let block = self
            .db
            .get::<Blocks>(&hash)?
            .ok_or_else(|| ChainError::Inconsistent(format!("block {hash} not stored")))?;
        let undo = self
            .db
            .get::<Undo>(&hash)?
            .ok_or_else(|| ChainError::Inconsistent(format!("undo data of {hash} missing")))?;
        let mut batch = self.db.batch();
        let mut spent = undo.spent.iter().rev();
        // Reverse order: a coin created and spent inside the block is restored
        // by the later transaction and then deleted by the earlier one.
        for tx in block.txs.iter().rev() {
            let txid = tx.txid();
            for vout in 0..tx.outputs.len() {
                batch.delete::<Utxos>(&OutPoint::new(txid, vout as u32));
            }
            batch.delete::<TxIndex>(&txid);
            for input in tx.inputs.iter().rev() {
                let coin = spent.next().ok_or_else(|| {
                    ChainError::Inconsistent(format!("undo data of {hash} too short"))
                })?;
                batch.put::<Utxos>(&input.prevout, coin);
            }
        }
        let mn_undo = self.db.get::<MnUndoTable>(&hash)?.ok_or_else(|| {
            ChainError::Inconsistent(format!("masternode undo data of {hash} missing"))
        })?;
        let mut mn = self.mn.clone();
        mn.undo(mn_undo);
        let gov_undo = self.db.get::<GovUndoTable>(&hash)?.ok_or_else(|| {
            ChainError::Inconsistent(format!("governance undo data of {hash} missing"))
        })?;
        let mut gov = self.gov.clone();
        gov.undo(gov_undo);
        gov.write_to(&mut batch);
        crate::contracts::exec::unwrite(&self.db, &hash, &mut batch)
            .map_err(ValidationError::from)?;
        batch.delete::<Undo>(&hash);
        batch.delete::<MnUndoTable>(&hash);
        batch.delete::<GovUndoTable>(&hash);
        batch.delete::<ActiveChain>(&height);
        let prev = block.header.prev_hash;
        batch.put_meta(META_TIP, prev.encode());
        batch.put_meta(META_MN_STATE, mn.encode());
        self.db.commit(batch)?;
        self.mn = mn;
        gov.written();
        self.gov = gov;
        self.active.pop();
        debug!(target: "chain", %hash, height, "disconnected block");
        Ok(ChainEvent::Disconnected { block, height })
    }
}

/// A block being connected, with what the caller already knows of it.
#[cfg(test)]
mod tests;
