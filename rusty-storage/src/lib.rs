//! Typed tables over a key-value store.
//!
//! - [`Table`]: a column family with a typed key ([`TableKey`], order
//!   preserving) and value (the canonical encoding).
//! - [`Database`]: reads, ordered iteration and atomic [`WriteBatch`]es over
//!   a [`backend`]: RocksDB on disk for the node, an in-memory map for unit
//!   tests. Both implement the same trait, so one test body runs on both.
//! - A schema version is stored in the `meta` column family and checked at
//!   open, so an old binary never misreads a newer database.
//!
//! - [`trie`]: a Merkle Patricia Trie in Ethereum's layout, its nodes in a
//!   table by hash (the contracts' state), and [`state`]: accounts and
//!   their storage tries on it, in Ethereum's layout.
//!
//! Crash safety comes from atomicity: every state change of the node is one
//! write batch, and RocksDB's write-ahead log makes a batch all-or-nothing
//! across a `kill -9`.

pub mod backend;
mod key;
pub mod state;
pub mod trie;

use std::{path::Path, sync::Arc};

pub use backend::{Backend, MemBackend, RocksBackend, RocksOptions};
pub use key::TableKey;
use rusty_shared_types::{decode_exact, Decode, DecodeError, Encode};

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The underlying RocksDB reported an error.
    #[error("database error: {0}")]
    Backend(String),
    /// Another process holds the database lock.
    #[error("the database at {0} is in use by another process (is a node already running on this datadir?)")]
    Locked(String),
    /// A stored value failed to decode: the database is corrupt or from an
    /// incompatible version.
    #[error("corrupt value in table {table}: {source}")]
    Corrupt {
        table: &'static str,
        source: DecodeError,
    },
    /// The database was written with another schema version.
    #[error("database schema version {found} is not supported by this build (expected {expected}); reindex or use a matching release")]
    SchemaMismatch { found: u32, expected: u32 },
    /// A table that was not declared when the database was opened.
    #[error("unknown table {0}")]
    UnknownTable(&'static str),
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// A typed column family.
pub trait Table: 'static {
    /// The column family name.
    const NAME: &'static str;
    type Key: TableKey;
    type Value: Encode + Decode;
}

/// Declares a database's tables once: for each, a unit struct with its
/// [`Table`] impl (column family name, key and value types), and one list
/// of every column family to open the database with, so a table cannot be
/// declared and then forgotten at open.
///
/// ```
/// use rusty_storage::{tables, Table};
///
/// tables! {
///     /// Every table of this database.
///     pub const ALL_TABLES;
///     /// Numbers by name.
///     pub table Numbers: u64 => u64 = "numbers";
///     table Names: u64 => u64 = "names";
/// }
/// assert_eq!(Numbers::NAME, "numbers");
/// assert_eq!(ALL_TABLES, &["numbers", "names"]);
/// ```
#[macro_export]
macro_rules! tables {
    (
        $(#[$list_meta:meta])*
        $list_vis:vis const $list:ident;
        $(
            $(#[$meta:meta])*
            $vis:vis table $name:ident: $key:ty => $value:ty = $cf:literal;
        )+
    ) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy)]
            $vis struct $name;
            impl $crate::Table for $name {
                const NAME: &'static str = $cf;
                type Key = $key;
                type Value = $value;
            }
        )+
        $(#[$list_meta])*
        $list_vis const $list: &[&'static str] = &[$(<$name as $crate::Table>::NAME),+];
    };
}

/// The built-in table holding the schema version and other metadata.
pub const META_TABLE: &str = "meta";
const SCHEMA_KEY: &[u8] = b"schema_version";

/// A database of typed tables. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    backend: Arc<dyn Backend>,
    /// The first write that failed (a full disk, an I/O error). RocksDB
    /// refuses further writes after one, and the in-memory state above it
    /// can no longer be trusted to match the disk: the owner stops.
    write_failure: Arc<std::sync::OnceLock<String>>,
}

impl Database {
    /// Opens (or creates) a RocksDB database at `path` with `tables` plus the
    /// meta table, and checks its schema version.
    pub fn open_rocksdb(
        path: &Path,
        tables: &[&'static str],
        schema_version: u32,
        opts: RocksOptions,
    ) -> Result<Database> {
        let backend = RocksBackend::open(path, &with_meta(tables), opts)?;
        Database::with_backend(Arc::new(backend), schema_version)
    }

    /// An in-memory database, for unit tests.
    pub fn in_memory(tables: &[&'static str], schema_version: u32) -> Result<Database> {
        let backend = MemBackend::new(&with_meta(tables));
        Database::with_backend(Arc::new(backend), schema_version)
    }

    fn with_backend(backend: Arc<dyn Backend>, schema_version: u32) -> Result<Database> {
        let db = Database {
            backend,
            write_failure: Arc::default(),
        };
        match db.backend.get(META_TABLE, SCHEMA_KEY)? {
            None => {
                let mut batch = RawBatch::default();
                batch.put(META_TABLE, SCHEMA_KEY.to_vec(), schema_version.encode());
                db.backend.write(batch)?;
            }
            Some(bytes) => {
                let found =
                    decode_exact::<u32>(&bytes).map_err(|source| StorageError::Corrupt {
                        table: META_TABLE,
                        source,
                    })?;
                if found != schema_version {
                    return Err(StorageError::SchemaMismatch {
                        found,
                        expected: schema_version,
                    });
                }
            }
        }
        Ok(db)
    }

    /// The value stored under `key`.
    pub fn get<T: Table>(&self, key: &T::Key) -> Result<Option<T::Value>> {
        match self.backend.get(T::NAME, &key.encode_key())? {
            None => Ok(None),
            Some(bytes) => decode_value::<T>(&bytes).map(Some),
        }
    }

    pub fn contains<T: Table>(&self, key: &T::Key) -> Result<bool> {
        Ok(self.backend.get(T::NAME, &key.encode_key())?.is_some())
    }

    /// Raw metadata (schema version, tips…) by name.
    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.backend.get(META_TABLE, key.as_bytes())
    }

    /// Entries with keys `>= from` in key order.
    pub fn iter_from<T: Table>(
        &self,
        from: &T::Key,
    ) -> impl Iterator<Item = Result<(T::Key, T::Value)>> + '_ {
        self.iter_raw::<T>(Some(from.encode_key()), false)
    }

    /// All entries in key order.
    pub fn iter_all<T: Table>(&self) -> impl Iterator<Item = Result<(T::Key, T::Value)>> + '_ {
        self.iter_raw::<T>(None, false)
    }

    /// All entries in reverse key order.
    pub fn iter_rev<T: Table>(&self) -> impl Iterator<Item = Result<(T::Key, T::Value)>> + '_ {
        self.iter_raw::<T>(None, true)
    }

    fn iter_raw<T: Table>(
        &self,
        from: Option<Vec<u8>>,
        reverse: bool,
    ) -> impl Iterator<Item = Result<(T::Key, T::Value)>> + '_ {
        self.backend
            .iter(T::NAME, from, reverse)
            .map(|item| -> Result<(T::Key, T::Value)> {
                let (k, v) = item?;
                let key = T::Key::decode_key(&k).map_err(|source| StorageError::Corrupt {
                    table: T::NAME,
                    source,
                })?;
                Ok((key, decode_value::<T>(&v)?))
            })
    }

    /// A new, empty batch. Nothing happens until [`Database::commit`].
    pub fn batch(&self) -> WriteBatch {
        WriteBatch {
            raw: RawBatch::default(),
        }
    }

    /// Applies every write of `batch` atomically.
    pub fn commit(&self, batch: WriteBatch) -> Result<()> {
        self.backend
            .write(batch.raw)
            .inspect_err(|e| self.note_write_failure(e))
    }

    /// Flushes memtables to disk (clean shutdown).
    pub fn flush(&self) -> Result<()> {
        self.backend
            .flush()
            .inspect_err(|e| self.note_write_failure(e))
    }

    fn note_write_failure(&self, e: &StorageError) {
        let _ = self.write_failure.set(e.to_string());
    }

    /// The first write or flush that failed, if any did.
    pub fn write_failure(&self) -> Option<&str> {
        self.write_failure.get().map(String::as_str)
    }
}

fn with_meta(tables: &[&'static str]) -> Vec<&'static str> {
    let mut all = vec![META_TABLE];
    all.extend(tables.iter().copied().filter(|t| *t != META_TABLE));
    all
}

fn decode_value<T: Table>(bytes: &[u8]) -> Result<T::Value> {
    decode_exact::<T::Value>(bytes).map_err(|source| StorageError::Corrupt {
        table: T::NAME,
        source,
    })
}

/// Untyped operations of a batch, in order.
#[derive(Debug, Default)]
pub struct RawBatch {
    pub ops: Vec<BatchOp>,
}

impl RawBatch {
    fn put(&mut self, table: &'static str, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(BatchOp::Put { table, key, value });
    }
}

/// One write.
#[derive(Debug)]
pub enum BatchOp {
    Put {
        table: &'static str,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        table: &'static str,
        key: Vec<u8>,
    },
}

/// Typed writes applied atomically by [`Database::commit`].
#[derive(Debug)]
#[must_use = "a write batch does nothing until committed"]
pub struct WriteBatch {
    raw: RawBatch,
}

impl WriteBatch {
    pub fn put<T: Table>(&mut self, key: &T::Key, value: &T::Value) {
        self.raw.put(T::NAME, key.encode_key(), value.encode());
    }

    pub fn delete<T: Table>(&mut self, key: &T::Key) {
        self.raw.ops.push(BatchOp::Delete {
            table: T::NAME,
            key: key.encode_key(),
        });
    }

    pub fn put_meta(&mut self, key: &str, value: Vec<u8>) {
        self.raw.put(META_TABLE, key.as_bytes().to_vec(), value);
    }

    pub fn len(&self) -> usize {
        self.raw.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.ops.is_empty()
    }
}

#[cfg(test)]
mod tests;
