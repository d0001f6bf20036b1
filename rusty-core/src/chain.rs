//! The block tree, the active chain and the UTXO set.
//!
//! [`Chain`] keeps every known block's index entry in memory, stores blocks,
//! undo data and coins in RocksDB, and follows the chain with the most
//! cumulative work. Connecting or disconnecting a block is one atomic write
//! batch that moves the UTXO set, the undo data, the height index and the
//! tip pointer together, so a crash between any two batches leaves a
//! consistent (if not yet best) tip; [`Chain::open`] then finishes any
//! interrupted reorganisation.

use std::collections::{HashMap, HashSet};

use ruint::aliases::U256;
use rusty_shared_types::{
    decode_exact, Amount, Block, BlockHeader, ChainLock, ChainParams, Encode, Hash256, OutPoint,
    Transaction,
};
use rusty_storage::{Database, StorageError};
use rusty_vm::DeferredChecker;
use tracing::{debug, info, warn};

use crate::{
    masternode::{MnError, MnState},
    pow,
    tables::{
        ActiveChain, BlockIndex, BlockStatus, BlockUndo, Blocks, Coin, IndexEntry, MnUndoTable,
        TxIndex, TxLocation, Undo, Utxos, META_CHAINLOCK, META_MN_STATE, META_TIP,
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
    Connected { block: Block, height: u64 },
    Disconnected { block: Block, height: u64 },
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
    /// The highest verified ChainLock: no reorganisation below it.
    best_chainlock: Option<ChainLock>,
}

/// Flush the coin cache once it holds this many changes…
const MAX_UNFLUSHED_COINS: usize = 500_000;
/// …or this many blocks were connected since the last flush (bounds the
/// replay after a crash).
const MAX_UNFLUSHED_BLOCKS: usize = 1_000;

/// Coin changes since the last flush, Bitcoin Core's `dbcache` in small.
///
/// The database holds the UTXO set as of the `tip` meta record; blocks
/// connected after it have their block data, undo data and indexes on disk
/// but their coin changes only here. A flush writes the changes and moves the
/// `tip` record in one batch. After a crash the node reopens at that tip and
/// fork choice connects the stored blocks again, so nothing is lost and
/// nothing is half-applied.
#[derive(Debug, Default)]
pub struct CoinCache {
    /// `Some` = unspent, `None` = spent; `fresh` = created since the last
    /// flush, so not in the database (spending it needs no database delete).
    changes: HashMap<OutPoint, (Option<Coin>, bool)>,
}

impl CoinCache {
    /// `Some(answer)` if the cache knows the coin's state.
    fn lookup(&self, outpoint: &OutPoint) -> Option<Option<&Coin>> {
        self.changes.get(outpoint).map(|(c, _)| c.as_ref())
    }

    fn apply(&mut self, changes: CoinChanges) {
        for outpoint in changes.spent {
            match self.changes.get(&outpoint) {
                Some((_, true)) => {
                    self.changes.remove(&outpoint);
                }
                _ => {
                    self.changes.insert(outpoint, (None, false));
                }
            }
        }
        for (outpoint, coin) in changes.created {
            self.changes.insert(outpoint, (Some(coin), true));
        }
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// The UTXO set as validation sees it: the cache over the database.
#[derive(Debug, Clone, Copy)]
pub struct CoinView<'a> {
    pub db: &'a Database,
    pub cache: &'a CoinCache,
}

impl CoinView<'_> {
    pub fn get(&self, outpoint: &OutPoint) -> Result<Option<Coin>> {
        match self.cache.lookup(outpoint) {
            Some(c) => Ok(c.cloned()),
            None => Ok(self.db.get::<Utxos>(outpoint)?),
        }
    }
}

/// What connecting a block does to the UTXO set.
#[derive(Debug, Default)]
pub struct CoinChanges {
    /// Coins from before the block that it spends.
    pub spent: Vec<OutPoint>,
    /// Coins it creates and leaves unspent.
    pub created: HashMap<OutPoint, Coin>,
}

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
            best_chainlock: None,
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

    pub fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>> {
        self.coin_view().get(outpoint)
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
        Ok(self
            .db
            .get::<TxIndex>(txid)?
            .filter(|loc| self.is_active(&loc.block)))
    }

    /// Writes the cached coin changes and moves the database's tip record
    /// to the active tip, in one batch.
    pub fn flush(&mut self) -> Result<()> {
        let mut batch = self.db.batch();
        for (outpoint, (coin, _)) in &self.coins.changes {
            match coin {
                Some(c) => batch.put::<Utxos>(outpoint, c),
                None => batch.delete::<Utxos>(outpoint),
            }
        }
        batch.put_meta(META_TIP, self.tip().encode());
        batch.put_meta(META_MN_STATE, self.mn.encode());
        let changes = self.coins.len();
        self.db.commit(batch)?;
        self.coins.changes.clear();
        self.unflushed_blocks = 0;
        debug!(target: "chain", changes, tip = %self.tip(), "flushed coin cache");
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
    /// containing the best ChainLock. A locked block not yet known
    /// constrains nothing.
    fn lock_allows(&self, hash: &Hash256, prev: &Hash256, height: u64) -> bool {
        let Some(cl) = &self.best_chainlock else {
            return true;
        };
        if !self.index.contains_key(&cl.block_hash) {
            return true;
        }
        if height <= cl.height {
            return self.ancestor(&cl.block_hash, height) == Some(*hash);
        }
        if height == cl.height.saturating_add(1) {
            return *prev == cl.block_hash;
        }
        self.ancestor(prev, cl.height) == Some(cl.block_hash)
    }

    /// The masternode list and quorums at the active tip.
    pub fn mn(&self) -> &MnState {
        &self.mn
    }

    /// The highest verified ChainLock.
    pub fn best_chainlock(&self) -> Option<&ChainLock> {
        self.best_chainlock.as_ref()
    }

    /// Verifies `cl` against the quorums at the tip and, if it is higher
    /// than the best one, makes it the best: the chain moves onto the
    /// locked block's branch if needed and never reorganises below it.
    /// `Ok(None)` for a ChainLock that is valid but not new.
    pub fn apply_chainlock(&mut self, cl: ChainLock, now: u64) -> Result<Option<Vec<ChainEvent>>> {
        if self
            .best_chainlock
            .as_ref()
            .is_some_and(|best| best.height >= cl.height)
        {
            return Ok(None);
        }
        self.mn
            .verify_chainlock(self.params, &cl)
            .map_err(ValidationError::from)?;
        let mut batch = self.db.batch();
        batch.put_meta(META_CHAINLOCK, cl.encode());
        self.db.commit(batch)?;
        info!(target: "chainlock", height = cl.height, block = %cl.block_hash, "new best ChainLock");
        self.best_chainlock = Some(cl);
        self.most_work = self.scan_most_work();
        let (events, _) = self.activate_best_chain(now, None)?;
        Ok(Some(events))
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
        }
        Ok((events, failures))
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
        let mut batch = self.db.batch();
        let changes = connect_block_into(
            self.coin_view(),
            self.params,
            Connecting {
                block: &block,
                hash,
                txids: &txids,
                height,
                parent_mtp: self.median_time_past(&block.header.prev_hash),
            },
            &mut batch,
        )?;
        let active = &self.active;
        let mn_undo = self
            .mn
            .apply_block(self.params, &block, &txids, hash, height, &|h| {
                active.get(usize::try_from(h).ok()?).copied()
            })
            .map_err(ValidationError::from)?;
        if block.header.mn_list_root != self.mn.list_root() {
            self.mn.undo(mn_undo);
            return Err(ValidationError::from(MnError::BadListRoot).into());
        }
        batch.put::<MnUndoTable>(&hash, &mn_undo);
        let validated = started.elapsed();
        if let Err(e) = self.db.commit(batch) {
            self.mn.undo(mn_undo);
            return Err(e.into());
        }
        self.coins.apply(changes);
        self.unflushed_blocks += 1;
        self.active.push(hash);
        if self.coins.len() > MAX_UNFLUSHED_COINS || self.unflushed_blocks >= MAX_UNFLUSHED_BLOCKS {
            self.flush()?;
        }
        debug!(target: "chain", %hash, height, txs = block.txs.len(),
               read_us = read.as_micros() as u64,
               validate_us = (validated - read).as_micros() as u64,
               write_us = (started.elapsed() - validated).as_micros() as u64,
               "connected block");
        Ok(ChainEvent::Connected { block, height })
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
        batch.delete::<Undo>(&hash);
        batch.delete::<MnUndoTable>(&hash);
        batch.delete::<ActiveChain>(&height);
        let prev = block.header.prev_hash;
        batch.put_meta(META_TIP, prev.encode());
        batch.put_meta(META_MN_STATE, mn.encode());
        self.db.commit(batch)?;
        self.mn = mn;
        self.active.pop();
        debug!(target: "chain", %hash, height, "disconnected block");
        Ok(ChainEvent::Disconnected { block, height })
    }
}

/// A block being connected, with what the caller already knows of it.
struct Connecting<'a> {
    block: &'a Block,
    hash: Hash256,
    /// The txids of `block.txs`, in order.
    txids: &'a [Hash256],
    height: u64,
    /// Median time past of the parent (for lock times).
    parent_mtp: u64,
}

/// Validates `block` against the UTXO set in `db` for connection at `height`
/// and adds its effects (coins, undo data, indexes) to `batch`. Nothing is
/// written on error.
///
/// Three phases: (1) serially, decide where each input's coin comes from (an
/// earlier transaction of this block, or the database) and catch double
/// spends inside the block; (2) on every core, each thread takes a run of
/// transactions, reads their coins, checks amounts, lock times and scripts,
/// then batch-verifies that run's signatures; (3) serially, sum the fees,
/// check the coinbase and build the write batch.
fn connect_block_into(
    coins: CoinView<'_>,
    params: &ChainParams,
    connecting: Connecting<'_>,
    batch: &mut rusty_storage::WriteBatch,
) -> Result<CoinChanges> {
    let Connecting {
        block,
        hash,
        txids,
        height,
        parent_mtp,
    } = connecting;
    // Phase 1: coin sources and in-block double spends.
    let mut created: HashMap<OutPoint, Coin> = HashMap::new();
    let mut spent_here: HashSet<OutPoint> = HashSet::new();
    // Spends of coins from before this block (the others never reach disk).
    let mut spent_outside: Vec<OutPoint> = Vec::new();
    let mut sources: Vec<Vec<Option<Coin>>> = Vec::with_capacity(block.txs.len());
    for (tx, txid) in block.txs.iter().zip(txids).skip(1) {
        if !validation::is_final(tx, height, parent_mtp) {
            return Err(ValidationError::NonFinal(tx.lock_time).into());
        }
        let mut tx_sources = Vec::with_capacity(tx.inputs.len());
        for input in &tx.inputs {
            if !spent_here.insert(input.prevout) {
                return Err(ValidationError::MissingOrSpent(input.prevout).into());
            }
            let in_block = created.remove(&input.prevout);
            if in_block.is_none() {
                spent_outside.push(input.prevout);
            }
            tx_sources.push(in_block);
        }
        sources.push(tx_sources);
        add_outputs(&mut created, tx, *txid, height, false);
    }

    // Phase 2: coins, amounts, scripts and signatures, in parallel runs.
    let txs = &block.txs[1..];
    let threads = verify_threads().min(txs.len().div_ceil(64)).max(1);
    let run_len = txs.len().div_ceil(threads).max(1);
    let mut work: Vec<Run<'_>> = txs
        .chunks(run_len)
        .zip(sources.chunks_mut(run_len))
        .enumerate()
        .map(|(i, (run, srcs))| (i * run_len, run, srcs))
        .collect();
    let own = if work.is_empty() {
        None
    } else {
        Some(work.remove(0))
    };
    let runs: Vec<RunResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .into_iter()
            .map(|(offset, run, srcs)| {
                scope.spawn(move || check_run(coins, params, height, offset, run, srcs))
            })
            .collect();
        let mut results = Vec::with_capacity(threads);
        if let Some((offset, run, srcs)) = own {
            results.push(check_run(coins, params, height, offset, run, srcs));
        }
        for h in handles {
            results.push(h.join().unwrap_or_else(|_| {
                Err((
                    usize::MAX,
                    ChainError::Inconsistent("validation thread panicked".into()),
                ))
            }));
        }
        results
    });

    // Phase 3: fees, coinbase, writes. The first failing transaction (in
    // block order) names the error, so the verdict does not depend on timing.
    let mut fees = Amount::ZERO;
    let mut undo = BlockUndo::default();
    let mut first_err: Option<(usize, ChainError)> = None;
    for run in runs {
        match run {
            Ok((run_fees, coins)) => {
                fees = fees
                    .checked_add(run_fees)
                    .map_err(|_| ValidationError::InputValueOutOfRange)?;
                undo.spent.extend(coins);
            }
            Err((i, e)) => {
                if first_err.as_ref().is_none_or(|(j, _)| i < *j) {
                    first_err = Some((i, e));
                }
            }
        }
    }
    if let Some((_, e)) = first_err {
        return Err(e);
    }
    let coinbase = &block.txs[0];
    let max = params
        .coinbase_subsidy(height)
        .checked_add(fees)
        .map_err(|_| ValidationError::OutputValueOutOfRange)?;
    let paid = coinbase
        .output_value()
        .map_err(|_| ValidationError::OutputValueOutOfRange)?;
    if paid > max {
        return Err(ValidationError::BadCoinbaseAmount { max, found: paid }.into());
    }
    add_outputs(&mut created, coinbase, txids[0], height, true);

    for (i, txid) in txids.iter().enumerate() {
        batch.put::<TxIndex>(
            txid,
            &TxLocation {
                block: hash,
                index: i as u32,
            },
        );
    }
    batch.put::<Undo>(&hash, &undo);
    batch.put::<ActiveChain>(&height, &hash);
    Ok(CoinChanges {
        spent: spent_outside,
        created,
    })
}

/// A run of transactions for one validation thread: its offset among the
/// block's non-coinbase transactions, the transactions and their coin sources.
type Run<'a> = (usize, &'a [Transaction], &'a mut [Vec<Option<Coin>>]);

/// Fees and spent coins (in input order) of a run of transactions, or the
/// index of the first failing transaction (within the block's non-coinbase
/// transactions) with its error.
type RunResult = std::result::Result<(Amount, Vec<Coin>), (usize, ChainError)>;

/// Phase 2 of [`connect_block_into`] for one run of transactions starting at
/// `offset`: coins from the database where phase 1 left `None`, amount and
/// lock checks, scripts with deferred signatures, then one batch
/// verification of the run's signatures.
fn check_run(
    view: CoinView<'_>,
    params: &ChainParams,
    height: u64,
    offset: usize,
    txs: &[Transaction],
    sources: &mut [Vec<Option<Coin>>],
) -> RunResult {
    let mut fees = Amount::ZERO;
    let mut spent = Vec::with_capacity(txs.len());
    let mut checker = DeferredChecker::with_capacity(txs.len());
    // Number of deferred signatures after each transaction.
    let mut sigs_after = Vec::with_capacity(txs.len());
    let mut read_time = std::time::Duration::ZERO;
    let started = std::time::Instant::now();
    for (i, (tx, srcs)) in txs.iter().zip(sources.iter_mut()).enumerate() {
        let fail = |e: ChainError| (offset + i, e);
        let read_start = std::time::Instant::now();
        let mut coins = Vec::with_capacity(tx.inputs.len());
        for (input, src) in tx.inputs.iter().zip(srcs.iter_mut()) {
            let coin = match src.take() {
                Some(c) => Some(c),
                None => view.get(&input.prevout).map_err(fail)?,
            }
            .ok_or_else(|| fail(ValidationError::MissingOrSpent(input.prevout).into()))?;
            coins.push(coin);
        }
        read_time += read_start.elapsed();
        let fee =
            validation::check_tx_inputs(tx, &coins, height, params).map_err(|e| fail(e.into()))?;
        fees = fees
            .checked_add(fee)
            .map_err(|_| fail(ValidationError::InputValueOutOfRange.into()))?;
        validation::verify_scripts(tx, &coins, &mut checker).map_err(|e| fail(e.into()))?;
        sigs_after.push(checker.len());
        spent.extend(coins);
    }
    let scripts_done = started.elapsed();
    let items = checker.into_items();
    let mut batch = rusty_crypto::ed25519::BatchVerifier::with_capacity(items.len());
    for (pk, msg, sig) in &items {
        batch.queue(pk, msg, sig);
    }
    if batch.verify().is_err() {
        // Rare (an invalid block): find the culprit for a precise error.
        let bad = items
            .iter()
            .position(|(pk, msg, sig)| rusty_crypto::ed25519::verify(pk, msg, sig).is_err())
            .unwrap_or(0);
        let i = sigs_after.partition_point(|&end| end <= bad);
        let txid = txs.get(i).map(Transaction::txid).unwrap_or_default();
        return Err((offset + i, ValidationError::BadSignature(txid).into()));
    }
    tracing::trace!(target: "chain", txs = txs.len(), read_us = read_time.as_micros() as u64,
                    scripts_us = (scripts_done - read_time).as_micros() as u64,
                    verify_us = (started.elapsed() - scripts_done).as_micros() as u64, "validated run");
    Ok((fees, spent))
}

/// Threads for block signature verification: every core.
fn verify_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn add_outputs(
    created: &mut HashMap<OutPoint, Coin>,
    tx: &Transaction,
    txid: Hash256,
    height: u64,
    is_coinbase: bool,
) {
    for (vout, out) in tx.outputs.iter().enumerate() {
        if out.lock.is_unspendable() {
            continue;
        }
        created.insert(
            OutPoint::new(txid, vout as u32),
            Coin {
                output: out.clone(),
                height,
                is_coinbase,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use rusty_shared_types::{Amount, TxOut};

    use super::*;
    use crate::test_utils::{coinbase_at, memory_state, Key, NOW};

    #[test]
    fn genesis_only_chain() {
        let s = memory_state(None);
        assert_eq!(s.chain.height(), 0);
        assert_eq!(s.chain.tip(), s.params().genesis_block().hash());
        assert_eq!(
            s.chain.median_time_past(&s.chain.tip()),
            s.params().genesis_time
        );
    }

    #[test]
    fn reorg_moves_the_utxo_set_and_back() {
        let key_a = Key::new(1);
        let key_b = Key::new(2);
        let mut a = memory_state(None);
        let mut b = memory_state(None);
        a.generate(2, &key_a.address, u64::MAX, NOW)
            .expect("a mines");
        b.generate(3, &key_b.address, u64::MAX, NOW + 1)
            .expect("b mines");
        let (a_coin, _) = coinbase_at(&a, 1);
        assert!(a.chain.coin(&a_coin).expect("db").is_some());

        // Feed b's heavier branch to a.
        let mut events = Vec::new();
        for h in 1..=3 {
            let block = b
                .chain
                .block(&b.chain.hash_at(h).expect("h"))
                .expect("db")
                .expect("block");
            let (acceptance, ev) = a.chain.process_block(block, NOW + 1).expect("valid");
            events.extend(ev);
            assert_eq!(acceptance == BlockAcceptance::BecameTip, h == 3);
        }
        assert_eq!(a.chain.tip(), b.chain.tip());
        let disconnected = events
            .iter()
            .filter(|e| matches!(e, ChainEvent::Disconnected { .. }))
            .count();
        assert_eq!(disconnected, 2);
        // a's own coinbase is gone; b's is there.
        assert!(a.chain.coin(&a_coin).expect("db").is_none());
        let (b_coin, _) = coinbase_at(&b, 1);
        assert!(a.chain.coin(&b_coin).expect("db").is_some());
        // The tx index followed too.
        assert!(a.chain.tx_location(&a_coin.txid).expect("db").is_none());
        assert!(a.chain.tx_location(&b_coin.txid).expect("db").is_some());
    }

    #[test]
    fn block_failing_to_connect_is_marked_invalid_with_descendants() {
        let key = Key::new(3);
        let mut s = memory_state(None);
        let mut t = s.block_template(&key.address.lock_script(), NOW, Vec::new());
        // Pay one unit too much: passes context-free checks, fails to connect.
        t.block.txs[0].outputs[0].value =
            Amount::from_units(t.block.txs[0].outputs[0].value.units() + 1).expect("amount");
        t.block.header.merkle_root = validation::block_merkle_root(&t.block.txs);
        crate::miner::solve(&mut t.block.header, &t.target, u64::MAX).expect("solved");
        let bad = t.block.clone();
        let err = s
            .chain
            .process_block(bad.clone(), NOW)
            .expect_err("invalid");
        assert!(
            matches!(
                err,
                ChainError::Invalid(ValidationError::BadCoinbaseAmount { .. })
            ),
            "{err}"
        );
        assert_eq!(s.chain.height(), 0);
        assert!(matches!(
            s.chain.process_block(bad.clone(), NOW),
            Err(ChainError::Invalid(ValidationError::DuplicateInvalidBlock(
                _
            )))
        ));

        // A child of the invalid block is refused outright.
        let mut child = bad.clone();
        child.header.prev_hash = bad.hash();
        child.txs[0] = Transaction {
            payload: Some(rusty_shared_types::Payload::Coinbase(
                rusty_shared_types::CoinbasePayload {
                    height: 2,
                    extra: Vec::new(),
                },
            )),
            ..child.txs[0].clone()
        };
        child.header.merkle_root = validation::block_merkle_root(&child.txs);
        child.header.time += 1;
        crate::miner::solve(&mut child.header, &t.target, u64::MAX).expect("solved");
        assert!(matches!(
            s.chain.process_block(child, NOW),
            Err(ChainError::Invalid(ValidationError::PrevBlockInvalid(_)))
        ));
        // A valid block still connects.
        s.generate(1, &key.address, u64::MAX, NOW).expect("mines");
        assert_eq!(s.chain.height(), 1);
    }

    #[test]
    fn block_with_a_bad_signature_names_the_transaction() {
        let key = Key::new(7);
        let mut s = memory_state(None);
        s.generate(12, &key.address, u64::MAX, NOW).expect("mines");
        let mut t = s.block_template(&key.address.lock_script(), NOW, Vec::new());
        let mut bad_txid = Hash256::ZERO;
        for h in 1..=2 {
            let (op, out) = coinbase_at(&s, h);
            let mut tx = key.spend(
                op,
                &out,
                vec![TxOut {
                    value: Amount::from_units(out.value.units() - 1000).expect("a"),
                    lock: key.address.lock_script(),
                }],
            );
            if h == 2 {
                let mut unlock = tx.inputs[0].unlock.clone().into_bytes();
                unlock[10] ^= 0x40;
                tx.inputs[0].unlock = rusty_shared_types::Script::new(unlock);
                bad_txid = tx.txid();
            }
            t.block.txs.push(tx);
        }
        t.block.header.merkle_root = validation::block_merkle_root(&t.block.txs);
        crate::miner::solve(&mut t.block.header, &t.target, u64::MAX).expect("solved");
        let err = s
            .chain
            .process_block(t.block, NOW)
            .expect_err("bad signature");
        assert!(
            matches!(err, ChainError::Invalid(ValidationError::BadSignature(id)) if id == bad_txid),
            "{err}"
        );
        assert_eq!(s.chain.height(), 12);
    }

    #[test]
    fn unflushed_blocks_are_replayed_after_a_crash() {
        let key = Key::new(8);
        let db = rusty_storage::Database::in_memory(
            crate::tables::TABLES,
            crate::tables::SCHEMA_VERSION,
        )
        .unwrap();
        let params = rusty_shared_types::Network::Dev.params();
        let (chain, _) = Chain::open(db.clone(), params, NOW).unwrap();
        let mut s =
            crate::state::NodeState::new(chain, crate::mempool::Mempool::new(1 << 20, 1000), None);
        s.generate(12, &key.address, u64::MAX, NOW).unwrap();
        s.chain.flush().unwrap();
        s.generate(5, &key.address, u64::MAX, NOW).unwrap();
        // Spend a coin in an unflushed block too.
        let (op, out) = coinbase_at(&s, 2);
        let tx = key.spend(
            op,
            &out,
            vec![TxOut {
                value: Amount::from_units(out.value.units() - 1000).unwrap(),
                lock: key.address.lock_script(),
            }],
        );
        s.accept_transaction(tx.clone(), NOW).unwrap();
        s.generate(1, &key.address, u64::MAX, NOW).unwrap();
        let tip = s.chain.tip();
        assert!(!s.chain.coins.is_empty(), "changes are cached");
        // "Crash": the state goes away without a flush; the database keeps
        // only what was committed.
        drop(s);
        let (reopened, events) = Chain::open(db, params, NOW).unwrap();
        assert_eq!(reopened.tip(), tip, "stored blocks were connected again");
        assert_eq!(events.len(), 6);
        assert!(
            reopened.coin(&op).unwrap().is_none(),
            "the spend was replayed"
        );
        assert!(reopened
            .coin(&OutPoint::new(tx.txid(), 0))
            .unwrap()
            .is_some());
        assert!(reopened.tx_location(&tx.txid()).unwrap().is_some());
    }

    #[test]
    fn in_block_double_spend_is_rejected() {
        let key = Key::new(4);
        let mut s = memory_state(None);
        s.generate(11, &key.address, u64::MAX, NOW).expect("mines");
        let (op, out) = coinbase_at(&s, 1);
        let pay = |v| {
            vec![TxOut {
                value: Amount::from_units(v).expect("amount"),
                lock: key.address.lock_script(),
            }]
        };
        let t1 = key.spend(op, &out, pay(out.value.units() - 1000));
        let t2 = key.spend(op, &out, pay(out.value.units() - 2000));
        let mut t = s.block_template(&key.address.lock_script(), NOW, Vec::new());
        t.block.txs.push(t1);
        t.block.txs.push(t2);
        t.block.header.merkle_root = validation::block_merkle_root(&t.block.txs);
        crate::miner::solve(&mut t.block.header, &t.target, u64::MAX).expect("solved");
        let err = s
            .chain
            .process_block(t.block, NOW)
            .expect_err("double spend");
        assert!(
            matches!(err, ChainError::Invalid(ValidationError::MissingOrSpent(p)) if p == op),
            "{err}"
        );
        assert_eq!(s.chain.height(), 11);
        assert!(s.chain.coin(&op).expect("db").is_some());
    }

    #[test]
    fn chained_spends_inside_one_block_connect_and_disconnect() {
        let key = Key::new(5);
        let mut s = memory_state(None);
        s.generate(11, &key.address, u64::MAX, NOW).expect("mines");
        let (op, out) = coinbase_at(&s, 1);
        let t1 = key.spend(
            op,
            &out,
            vec![TxOut {
                value: Amount::from_units(out.value.units() - 1000).expect("a"),
                lock: key.address.lock_script(),
            }],
        );
        let op2 = OutPoint::new(t1.txid(), 0);
        let t2 = key.spend(
            op2,
            &t1.outputs[0],
            vec![TxOut {
                value: Amount::from_units(out.value.units() - 2000).expect("a"),
                lock: key.address.lock_script(),
            }],
        );
        let op3 = OutPoint::new(t2.txid(), 0);
        s.accept_transaction(t1, NOW).expect("t1");
        s.accept_transaction(t2, NOW)
            .expect("t2 spends t1 in the pool");
        s.generate(1, &key.address, u64::MAX, NOW)
            .expect("mines both");
        assert!(s.mempool.is_empty());
        assert!(s.chain.coin(&op).expect("db").is_none());
        assert!(s.chain.coin(&op2).expect("db").is_none());
        assert!(s.chain.coin(&op3).expect("db").is_some());
        // Disconnect by reorging onto a longer branch from height 11.
        let mut other = memory_state(None);
        for h in 1..=11 {
            let b = s
                .chain
                .block(&s.chain.hash_at(h).expect("h"))
                .expect("db")
                .expect("b");
            other.chain.process_block(b, NOW).expect("copy");
        }
        other
            .generate(2, &Key::new(6).address, u64::MAX, NOW + 5)
            .expect("branch");
        for h in 12..=13 {
            let b = other
                .chain
                .block(&other.chain.hash_at(h).expect("h"))
                .expect("db")
                .expect("b");
            let (_, ev) = s.chain.process_block(b, NOW + 5).expect("valid");
            s.apply_events(ev, NOW + 5);
        }
        assert_eq!(s.chain.height(), 13);
        assert!(s.chain.coin(&op).expect("db").is_some(), "restored");
        assert!(
            s.chain.coin(&op2).expect("db").is_none(),
            "created and spent in the block: gone"
        );
        assert!(s.chain.coin(&op3).expect("db").is_none());
        // Both transactions are back in the mempool, parent first.
        assert_eq!(s.mempool.len(), 2);
    }
}

/// Whatever order blocks of a random block tree arrive in (with side
/// branches, reorganisations and invalid blocks), the UTXO set equals the one
/// built by connecting only the final active chain from scratch.
#[cfg(test)]
mod properties {
    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;
    use rusty_shared_types::{
        Amount, Block, BlockHeader, CoinbasePayload, Hash256, OutPoint, Payload, Transaction, TxOut,
    };

    use super::*;
    use crate::test_utils::{memory_chain, Key, NOW};

    struct Node {
        block: Block,
        height: u64,
        /// Coinbase outputs of this block's ancestry (and itself) by height.
        coinbases: Vec<(OutPoint, TxOut)>,
        /// Outpoints spent in the ancestry.
        spent: HashSet<OutPoint>,
    }

    fn child(parent: &Node, key: &Key, spend: bool, invalid: bool, salt: u64) -> Node {
        let height = parent.height + 1;
        let params = rusty_shared_types::Network::Dev.params();
        let mut spent = parent.spent.clone();
        let mut txs = Vec::new();
        let mut fees = 0;
        if spend && height > params.coinbase_maturity + 1 {
            let (op, out) =
                parent.coinbases[(height - params.coinbase_maturity - 1) as usize].clone();
            if spent.insert(op) {
                txs.push(key.spend(
                    op,
                    &out,
                    vec![TxOut {
                        value: Amount::from_units(out.value.units() - 5_000).unwrap(),
                        lock: key.address.lock_script(),
                    }],
                ));
                fees = 5_000;
            }
        }
        let reward = params.coinbase_subsidy(height).units() + fees + u64::from(invalid);
        let coinbase = Transaction {
            version: 1,
            inputs: vec![],
            outputs: vec![TxOut {
                value: Amount::from_units(reward).unwrap(),
                lock: key.address.lock_script(),
            }],
            lock_time: 0,
            payload: Some(Payload::Coinbase(CoinbasePayload {
                height,
                extra: salt.to_le_bytes().to_vec(),
            })),
        };
        let mut coinbases = parent.coinbases.clone();
        coinbases.push((
            OutPoint::new(coinbase.txid(), 0),
            coinbase.outputs[0].clone(),
        ));
        txs.insert(0, coinbase);
        let mut header = BlockHeader {
            version: validation::BLOCK_VERSION,
            prev_hash: parent.block.hash(),
            merkle_root: validation::block_merkle_root(&txs),
            state_root: Hash256::ZERO,
            mn_list_root: Hash256::ZERO,
            chainlock_hash: Hash256::ZERO,
            time: parent.block.header.time + 1,
            bits: params.pow_limit_bits,
            nonce: 0,
        };
        let target = pow::target_from_compact(header.bits).unwrap();
        crate::miner::solve(&mut header, &target, u64::MAX).unwrap();
        Node {
            block: Block { header, txs },
            height,
            coinbases,
            spent,
        }
    }

    fn utxos(chain: &Chain) -> HashMap<OutPoint, Coin> {
        chain
            .db()
            .iter_from::<Utxos>(&OutPoint::default())
            .map(|r| r.unwrap())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn utxo_set_matches_a_replay_of_the_active_chain(
            steps in proptest::collection::vec((0u8..8, any::<bool>(), 0u8..20), 1..80)
        ) {
            let key = Key::new(11);
            let genesis = rusty_shared_types::Network::Dev.params().genesis_block();
            let mut nodes = vec![Node { block: genesis, height: 0, coinbases: vec![(OutPoint::default(), TxOut { value: Amount::ZERO, lock: Default::default() })], spent: HashSet::new() }];
            let mut chain = memory_chain();
            let mut invalid_parents = HashSet::new();
            let mut valid = vec![0usize];
            for (i, (back, spend, bad)) in steps.into_iter().enumerate() {
                // Mostly extend one of the newest blocks; sometimes fork further back.
                // Build on blocks with valid ancestry (an invalid branch
                // would only grow dead wood), forking 1, 2 or 5 back at times.
                let back = [0, 0, 0, 0, 0, 1, 2, 5][usize::from(back)];
                let parent_index = valid[valid.len().saturating_sub(1 + back)];
                let parent = &nodes[parent_index];
                let invalid = bad == 0;
                let node = child(parent, &key, spend, invalid, i as u64);
                let hash = node.block.hash();
                let result = chain.process_block(node.block.clone(), NOW);
                if invalid || invalid_parents.contains(&node.block.header.prev_hash) {
                    // Refused now, or stored on a side branch until it would
                    // become the tip; never part of the active chain.
                    invalid_parents.insert(hash);
                } else {
                    prop_assert!(result.is_ok(), "{result:?}");
                    valid.push(nodes.len());
                }
                prop_assert!(!invalid_parents.contains(&chain.tip()));
                nodes.push(node);
            }
            // Replay only the active chain into a fresh database.
            let mut fresh = memory_chain();
            for h in 1..=chain.height() {
                let block = chain.block(&chain.hash_at(h).unwrap()).unwrap().unwrap();
                fresh.process_block(block, NOW).unwrap();
            }
            prop_assert_eq!(fresh.tip(), chain.tip());
            // Every coin agrees through the cache, and on disk after a flush.
            for (outpoint, coin) in utxos(&chain) {
                if chain.coin(&outpoint).unwrap().is_none() {
                    prop_assert!(fresh.coin(&outpoint).unwrap().is_none());
                } else {
                    prop_assert_eq!(fresh.coin(&outpoint).unwrap(), Some(coin));
                }
            }
            chain.flush().unwrap();
            fresh.flush().unwrap();
            prop_assert_eq!(utxos(&fresh), utxos(&chain));
        }
    }
}
