//! One test body, run against both backends.

use rusty_shared_types::{Hash256, OutPoint};

use super::*;

crate::tables! {
    const TABLES;
    table Numbers: u64 => Hash256 = "numbers";
    table Coins: OutPoint => u64 = "coins";
}

fn exercise(db: &Database) {
    assert_eq!(db.get::<Numbers>(&1).unwrap(), None);
    let mut b = db.batch();
    for i in [5u64, 1, 300, 2] {
        b.put::<Numbers>(&i, &Hash256([i as u8; 32]));
    }
    b.put::<Coins>(&OutPoint::new(Hash256([1; 32]), 7), &42);
    db.commit(b).unwrap();
    assert_eq!(db.get::<Numbers>(&300).unwrap(), Some(Hash256([44; 32])));
    assert_eq!(
        db.get::<Coins>(&OutPoint::new(Hash256([1; 32]), 7))
            .unwrap(),
        Some(42)
    );

    // Big-endian keys iterate in numeric order.
    let keys: Vec<u64> = db.iter_from::<Numbers>(&2).map(|r| r.unwrap().0).collect();
    assert_eq!(keys, vec![2, 5, 300]);
    let rev: Vec<u64> = db.iter_rev::<Numbers>().map(|r| r.unwrap().0).collect();
    assert_eq!(rev, vec![300, 5, 2, 1]);

    let mut b = db.batch();
    b.delete::<Numbers>(&5);
    db.commit(b).unwrap();
    assert!(!db.contains::<Numbers>(&5).unwrap());
}

#[test]
fn memory_backend() {
    exercise(&Database::in_memory(TABLES, 1).unwrap());
}

#[test]
fn rocksdb_backend_and_schema_check() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open_rocksdb(dir.path(), TABLES, 1, RocksOptions::default()).unwrap();
        exercise(&db);
        // A second open of the same directory is refused while the first lives.
        let err =
            Database::open_rocksdb(dir.path(), TABLES, 1, RocksOptions::default()).unwrap_err();
        assert!(matches!(err, StorageError::Locked(_)), "{err}");
    }
    let db = Database::open_rocksdb(dir.path(), TABLES, 1, RocksOptions::default()).unwrap();
    assert_eq!(db.get::<Numbers>(&300).unwrap(), Some(Hash256([44; 32])));
    drop(db);
    let err = Database::open_rocksdb(dir.path(), TABLES, 2, RocksOptions::default()).unwrap_err();
    assert!(matches!(
        err,
        StorageError::SchemaMismatch {
            found: 1,
            expected: 2
        }
    ));
}

#[test]
fn corrupt_values_are_errors_not_panics() {
    let db = Database::in_memory(TABLES, 1).unwrap();
    let mut raw = RawBatch::default();
    raw.put(Numbers::NAME, 9u64.encode_key(), vec![1, 2, 3]);
    db.backend.write(raw).unwrap();
    assert!(matches!(
        db.get::<Numbers>(&9),
        Err(StorageError::Corrupt { .. })
    ));
}
