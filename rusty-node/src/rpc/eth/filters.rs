//! Ethereum's polled filters, as geth keeps them: `eth_newFilter`,
//! `eth_newBlockFilter` and `eth_newPendingTransactionFilter` install one,
//! `eth_getFilterChanges` returns what is new since the filter's last poll,
//! `eth_getFilterLogs` a log filter's whole range, `eth_uninstallFilter`
//! drops one. ethers.js listens to contract events this way
//! (`contract.on`), web3.py's `create_filter` and `w3.eth.filter` are
//! nothing else.
//!
//! A filter is a cursor: the last block it reported (its hash, so a poll
//! after a reorg reports the logs of the blocks that left the chain with
//! `removed: true`, then those of the blocks that joined it), or the last
//! pool admission it reported. The table is a store with its own lock,
//! like the web UI's sessions: each operation is one short critical
//! section; the chain is read outside it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use jsonrpsee::types::ErrorObjectOwned;
use rand::Rng;
use rusty_core::chain::Chain;
use rusty_shared_types::Hash256;

use super::{json::LogFilter, server};

/// A filter not polled for this long is dropped (geth's deadline).
pub(super) const FILTER_TIMEOUT: Duration = Duration::from_secs(300);
/// Filters at most, over every client: the port is unauthenticated.
pub(super) const MAX_FILTERS: usize = 4_096;
/// Blocks one poll reports at most; the next poll goes on from there.
pub(super) const MAX_BLOCKS_PER_POLL: u64 = 1_024;

/// What a filter watches.
#[derive(Debug, Clone)]
pub(super) enum FilterKind {
    Logs(Arc<LogFilter>),
    Blocks,
    PendingTransactions,
}

/// Where a filter's next poll starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cursor {
    /// After this block (height and hash).
    Block(u64, Hash256),
    /// After this pool admission ([`rusty_core::contracts::pool::EthPool::last_arrival`]).
    Arrival(u64),
}

#[derive(Debug)]
struct Installed {
    kind: FilterKind,
    cursor: Cursor,
    last_used: Instant,
    /// A poll is reading the chain for it: a second poll meanwhile
    /// answers "nothing new" rather than report the same changes twice.
    polling: bool,
}

/// The node's filters (shared by its RPC port and `--eth-rpc-bind`).
#[derive(Debug, Default)]
pub(crate) struct EthFilters {
    table: Mutex<HashMap<u128, Installed>>,
}

/// geth's answer for an unknown, expired or uninstalled id.
fn not_found() -> ErrorObjectOwned {
    server("filter not found")
}

/// A filter id as clients send it back: `0x` and up to 32 hex digits.
pub(super) fn parse_id(id: &str) -> Result<u128, ErrorObjectOwned> {
    id.strip_prefix("0x")
        .filter(|d| !d.is_empty() && d.len() <= 32)
        .and_then(|d| u128::from_str_radix(d, 16).ok())
        .ok_or_else(not_found)
}

pub(super) fn format_id(id: u128) -> String {
    format!("{id:#x}")
}

impl EthFilters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u128, Installed>> {
        // A panic while holding the lock leaves the map whole (no
        // operation here can stop half-way through a change).
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Installs a filter starting at `cursor`; its id. Filters idle for
    /// [`FILTER_TIMEOUT`] are dropped first.
    pub(super) fn install(
        &self,
        kind: FilterKind,
        cursor: Cursor,
        now: Instant,
    ) -> Result<u128, ErrorObjectOwned> {
        let mut table = self.lock();
        table.retain(|_, f| f.polling || now.duration_since(f.last_used) < FILTER_TIMEOUT);
        if table.len() >= MAX_FILTERS {
            // The port is unauthenticated: refusing new filters would let
            // one client lock out the rest; the least recently used goes
            // instead (its owner gets "filter not found" and installs it
            // again, as after a restart).
            let oldest = table
                .iter()
                .filter(|(_, f)| !f.polling)
                .min_by_key(|(_, f)| f.last_used)
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => {
                    table.remove(&id);
                }
                None => return Err(server(format!("too many filters ({MAX_FILTERS}) in use"))),
            }
        }
        let mut rng = rand::thread_rng();
        let id = loop {
            let id: u128 = rng.gen();
            if id != 0 && !table.contains_key(&id) {
                break id;
            }
        };
        table.insert(
            id,
            Installed {
                kind,
                cursor,
                last_used: now,
                polling: false,
            },
        );
        Ok(id)
    }

    /// A filter's kind, counting as a use of it (`eth_getFilterLogs`).
    pub(super) fn kind(&self, id: u128, now: Instant) -> Result<FilterKind, ErrorObjectOwned> {
        let mut table = self.lock();
        let f = live(&mut table, id, now)?;
        f.last_used = now;
        Ok(f.kind.clone())
    }

    /// Starts a poll of filter `id`: its kind and cursor, with a guard
    /// that ends the poll (moving the cursor if the guard was given the
    /// next one) when dropped; `None` while another poll of it runs.
    pub(super) fn begin_poll(
        self: &Arc<Self>,
        id: u128,
        now: Instant,
    ) -> Result<Option<(FilterKind, Cursor, Poll)>, ErrorObjectOwned> {
        let mut table = self.lock();
        let f = live(&mut table, id, now)?;
        f.last_used = now;
        if f.polling {
            return Ok(None);
        }
        f.polling = true;
        let poll = Poll {
            filters: self.clone(),
            id,
            next: None,
        };
        Ok(Some((f.kind.clone(), f.cursor, poll)))
    }

    /// Drops filter `id`; whether it was installed.
    pub(super) fn uninstall(&self, id: u128) -> bool {
        self.lock().remove(&id).is_some()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The filter `id`, unless missing or expired (an expired one is dropped).
fn live(
    table: &mut HashMap<u128, Installed>,
    id: u128,
    now: Instant,
) -> Result<&mut Installed, ErrorObjectOwned> {
    let expired = table
        .get(&id)
        .is_some_and(|f| !f.polling && now.duration_since(f.last_used) >= FILTER_TIMEOUT);
    if expired {
        table.remove(&id);
    }
    table.get_mut(&id).ok_or_else(not_found)
}

/// A poll in progress ([`EthFilters::begin_poll`]). Dropped without a
/// next cursor (an error, or the client gone), it leaves the cursor as it
/// was, so the changes are reported by the next poll.
#[derive(Debug)]
pub(super) struct Poll {
    filters: Arc<EthFilters>,
    id: u128,
    next: Option<Cursor>,
}

impl Poll {
    /// The poll reported everything up to `next`.
    pub(super) fn done(mut self, next: Cursor) {
        self.next = Some(next);
    }
}

impl Drop for Poll {
    fn drop(&mut self) {
        let mut table = self.filters.lock();
        // Uninstalled meanwhile: nothing to move.
        if let Some(f) = table.get_mut(&self.id) {
            f.polling = false;
            if let Some(next) = self.next {
                f.cursor = next;
            }
        }
    }
}

/// What the walks read of the block tree.
pub(super) trait BlockTree {
    fn tip_height(&self) -> u64;
    fn active_at(&self, height: u64) -> Option<Hash256>;
    fn in_active_chain(&self, hash: &Hash256) -> bool;
    fn parent_of(&self, hash: &Hash256) -> Option<Hash256>;
    /// The account-state root block `hash` committed to.
    fn state_root_of(&self, hash: &Hash256) -> Option<Hash256>;
}

impl BlockTree for Chain {
    fn tip_height(&self) -> u64 {
        self.height()
    }

    fn active_at(&self, height: u64) -> Option<Hash256> {
        self.hash_at(height)
    }

    fn in_active_chain(&self, hash: &Hash256) -> bool {
        self.is_active(hash)
    }

    fn parent_of(&self, hash: &Hash256) -> Option<Hash256> {
        self.entry(hash).map(|e| e.header.prev_hash)
    }

    fn state_root_of(&self, hash: &Hash256) -> Option<Hash256> {
        self.entry(hash).map(|e| e.header.state_root)
    }
}

/// The blocks between a filter's cursor and the tip.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Walk {
    /// Blocks reported before that left the active chain, newest first.
    pub(super) removed: Vec<(u64, Hash256)>,
    /// Active blocks after the cursor (or after the fork), oldest first.
    pub(super) added: Vec<(u64, Hash256)>,
    /// Where the next poll starts.
    pub(super) next: (u64, Hash256),
}

/// Walks from `cursor` (a block reported before) back to the active chain
/// and on to the tip, at most `max_blocks` blocks each way. A cursor lost
/// from the tree, or further than `max_blocks` from the active chain,
/// starts again at the tip, reporting nothing.
pub(super) fn walk(tree: &impl BlockTree, cursor: (u64, Hash256), max_blocks: u64) -> Walk {
    let tip = || {
        let h = tree.tip_height();
        (h, tree.active_at(h).unwrap_or(Hash256::ZERO))
    };
    let (mut height, mut hash) = cursor;
    let mut removed = Vec::new();
    while !tree.in_active_chain(&hash) {
        let parent = tree.parent_of(&hash);
        let Some(parent) = parent.filter(|_| height > 0 && (removed.len() as u64) < max_blocks)
        else {
            return Walk {
                next: tip(),
                ..Walk::default()
            };
        };
        removed.push((height, hash));
        height -= 1;
        hash = parent;
    }
    let last = tree.tip_height().min(height.saturating_add(max_blocks));
    let added: Vec<(u64, Hash256)> = (height.saturating_add(1)..=last)
        .map_while(|h| tree.active_at(h).map(|b| (h, b)))
        .collect();
    let next = added.last().copied().unwrap_or((height, hash));
    Walk {
        removed,
        added,
        next,
    }
}

/// The blocks of `from..=to` that can hold logs: those whose state root
/// differs from their parent's (an Ethereum transaction always moves its
/// sender's nonce, so a block that left the account state as it was has
/// none), at most `max_blocks` of them; `Err(max_blocks)` if more. Blocks
/// without contracts cost a lookup in memory, not a read of the database.
pub(super) fn log_blocks(
    tree: &impl BlockTree,
    from: u64,
    to: u64,
    max_blocks: u64,
) -> Result<Vec<(u64, Hash256)>, u64> {
    let mut before = from
        .checked_sub(1)
        .and_then(|h| tree.active_at(h))
        .and_then(|h| tree.state_root_of(&h));
    let mut out = Vec::new();
    for height in from..=to {
        let Some(hash) = tree.active_at(height) else {
            break;
        };
        let root = tree.state_root_of(&hash);
        if root.is_none() || root != before {
            if out.len() as u64 == max_blocks {
                return Err(max_blocks);
            }
            out.push((height, hash));
        }
        before = root;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
