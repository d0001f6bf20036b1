//! The coin cache and the UTXO view validation reads through.

use std::collections::HashMap;

use rusty_shared_types::OutPoint;
use rusty_storage::Database;

use super::Result;
use crate::tables::{Coin, Utxos};

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
    pub(super) fn lookup(&self, outpoint: &OutPoint) -> Option<Option<&Coin>> {
        self.changes.get(outpoint).map(|(c, _)| c.as_ref())
    }

    pub(super) fn apply(&mut self, changes: CoinChanges) {
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

    /// Puts every change into `batch` (the flush).
    pub(super) fn write_to(&self, batch: &mut rusty_storage::WriteBatch) {
        for (outpoint, (coin, _)) in &self.changes {
            match coin {
                Some(c) => batch.put::<Utxos>(outpoint, c),
                None => batch.delete::<Utxos>(outpoint),
            }
        }
    }

    /// Forgets every change (after a flush committed them).
    pub(super) fn clear(&mut self) {
        self.changes.clear();
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

/// Count and value of the whole UTXO set (`gettxoutsetinfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UtxoTotals {
    pub txouts: u64,
    /// Base units; a u128 so that no set of coins can overflow it.
    pub total: u128,
}

impl CoinView<'_> {
    /// Calls `f` on every unspent coin: the database's, overlaid by the
    /// cache's changes. Reads every coin: a diagnostic (`gettxoutsetinfo`,
    /// the chaos soak's supply check, `getaddressutxos`), not a path any
    /// block takes.
    pub fn for_each(&self, mut f: impl FnMut(&OutPoint, &Coin)) -> Result<()> {
        for item in self.db.iter_all::<Utxos>() {
            let (outpoint, coin) = item?;
            // The cache's answer wins for every coin it knows (spent, or
            // visited from the cache below).
            if self.cache.lookup(&outpoint).is_none() {
                f(&outpoint, &coin);
            }
        }
        for (outpoint, (coin, _)) in &self.cache.changes {
            if let Some(coin) = coin {
                f(outpoint, coin);
            }
        }
        Ok(())
    }

    /// Count and value of the whole set.
    pub fn totals(&self) -> Result<UtxoTotals> {
        let mut t = UtxoTotals::default();
        self.for_each(|_, coin| {
            t.txouts += 1;
            t.total += u128::from(coin.output.value.units());
        })?;
        Ok(t)
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
