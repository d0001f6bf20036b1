//! Storage backends: RocksDB on disk and a `BTreeMap` in memory.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    path::Path,
    sync::RwLock,
};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, Direction, IteratorMode, Options, DB,
};

use crate::{BatchOp, RawBatch, Result, StorageError};

type KvIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a>;

/// What a key-value store must provide.
pub trait Backend: Send + Sync + fmt::Debug {
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Applies all operations atomically.
    fn write(&self, batch: RawBatch) -> Result<()>;
    /// Entries from `from` (inclusive; `None` = the first or, reversed, the
    /// last key) in key order or reversed.
    fn iter<'a>(&'a self, table: &'static str, from: Option<Vec<u8>>, reverse: bool) -> KvIter<'a>;
    fn flush(&self) -> Result<()>;
}

/// RocksDB tuning the node exposes.
#[derive(Debug, Clone)]
pub struct RocksOptions {
    /// Block cache size in bytes.
    pub cache_bytes: usize,
    /// fsync the WAL on every batch: survives power loss, not only process
    /// crashes. Off by default, like Bitcoin Core (the WAL already makes a
    /// `kill -9` safe).
    pub sync_writes: bool,
}

impl Default for RocksOptions {
    fn default() -> Self {
        RocksOptions {
            cache_bytes: 64 << 20,
            sync_writes: false,
        }
    }
}

/// RocksDB with one column family per table.
pub struct RocksBackend {
    db: DB,
    sync_writes: bool,
    /// The column families it was opened with (flushed together).
    tables: Vec<&'static str>,
}

impl fmt::Debug for RocksBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RocksBackend")
            .field("path", &self.db.path())
            .finish()
    }
}

impl RocksBackend {
    pub fn open(path: &Path, tables: &[&'static str], opts: RocksOptions) -> Result<Self> {
        let cache = Cache::new_lru_cache(opts.cache_bytes);
        let mut table_opts = BlockBasedOptions::default();
        table_opts.set_block_cache(&cache);
        table_opts.set_bloom_filter(10.0, false);
        let mut cf_opts = Options::default();
        cf_opts.set_block_based_table_factory(&table_opts);
        cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);

        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_open_files(512);
        db_opts.set_keep_log_file_num(4);

        let cfs = tables
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, cf_opts.clone()));
        let db = DB::open_cf_descriptors(&db_opts, path, cfs).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("lock") || msg.contains("LOCK") {
                StorageError::Locked(path.display().to_string())
            } else {
                StorageError::Backend(msg)
            }
        })?;
        Ok(RocksBackend {
            db,
            sync_writes: opts.sync_writes,
            tables: tables.to_vec(),
        })
    }

    fn cf(&self, table: &'static str) -> Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(table)
            .ok_or(StorageError::UnknownTable(table))
    }
}

fn backend_err(e: rocksdb::Error) -> StorageError {
    StorageError::Backend(e.to_string())
}

impl Backend for RocksBackend {
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(table)?, key).map_err(backend_err)
    }

    fn write(&self, batch: RawBatch) -> Result<()> {
        let mut wb = rocksdb::WriteBatch::default();
        for op in batch.ops {
            match op {
                BatchOp::Put { table, key, value } => wb.put_cf(self.cf(table)?, key, value),
                BatchOp::Delete { table, key } => wb.delete_cf(self.cf(table)?, key),
            }
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(self.sync_writes);
        self.db.write_opt(wb, &wo).map_err(backend_err)
    }

    fn iter<'a>(&'a self, table: &'static str, from: Option<Vec<u8>>, reverse: bool) -> KvIter<'a> {
        let cf = match self.cf(table) {
            Ok(cf) => cf,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let dir = if reverse {
            Direction::Reverse
        } else {
            Direction::Forward
        };
        let iter = match &from {
            Some(k) => self.db.iterator_cf(cf, IteratorMode::From(k, dir)),
            None if reverse => self.db.iterator_cf(cf, IteratorMode::End),
            None => self.db.iterator_cf(cf, IteratorMode::Start),
        };
        Box::new(iter.map(|r| {
            r.map(|(k, v)| (k.into_vec(), v.into_vec()))
                .map_err(backend_err)
        }))
    }

    fn flush(&self) -> Result<()> {
        // Every column family, not only the default one: what is left in a
        // memtable is replayed from the write-ahead log at the next open.
        for table in &self.tables {
            self.db.flush_cf(self.cf(table)?).map_err(backend_err)?;
        }
        self.db.flush().map_err(backend_err)?;
        self.db.flush_wal(true).map_err(backend_err)
    }
}

type MemTable = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory backend for unit tests. Batches apply under one write lock,
/// so they are atomic here too.
#[derive(Debug, Default)]
pub struct MemBackend {
    tables: RwLock<HashMap<&'static str, MemTable>>,
}

impl MemBackend {
    pub fn new(tables: &[&'static str]) -> Self {
        MemBackend {
            tables: RwLock::new(tables.iter().map(|t| (*t, BTreeMap::new())).collect()),
        }
    }
}

impl Backend for MemBackend {
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        let t = tables.get(table).ok_or(StorageError::UnknownTable(table))?;
        Ok(t.get(key).cloned())
    }

    fn write(&self, batch: RawBatch) -> Result<()> {
        let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
        // Validate first so a bad batch changes nothing.
        for op in &batch.ops {
            let table = match op {
                BatchOp::Put { table, .. } | BatchOp::Delete { table, .. } => *table,
            };
            if !tables.contains_key(table) {
                return Err(StorageError::UnknownTable(table));
            }
        }
        for op in batch.ops {
            match op {
                BatchOp::Put { table, key, value } => {
                    tables.entry(table).or_default().insert(key, value);
                }
                BatchOp::Delete { table, key } => {
                    tables.entry(table).or_default().remove(&key);
                }
            }
        }
        Ok(())
    }

    fn iter<'a>(&'a self, table: &'static str, from: Option<Vec<u8>>, reverse: bool) -> KvIter<'a> {
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        let Some(t) = tables.get(table) else {
            return Box::new(std::iter::once(Err(StorageError::UnknownTable(table))));
        };
        // Snapshot the range: simple, and tests only.
        let items: Vec<(Vec<u8>, Vec<u8>)> = match (from, reverse) {
            (None, false) => t.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            (None, true) => t
                .iter()
                .rev()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            (Some(k), false) => t.range(k..).map(|(k, v)| (k.clone(), v.clone())).collect(),
            (Some(k), true) => t
                .range(..=k)
                .rev()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        Box::new(items.into_iter().map(Ok))
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}
