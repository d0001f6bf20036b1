use std::collections::HashMap;

use super::*;
use crate::trie::{
    tests::{Keccak, SECURE_TRIE_TEST1},
    Blake3Hasher,
};

type MemStore = HashMap<[u8; 32], Vec<u8>>;

/// ethereum/tests TrieTests/hex_encoded_securetrie_test.json `test1`: five
/// accounts (one with storage, one with code) whose state root is known.
#[test]
fn accounts_give_the_ethereum_state_root() {
    let store = MemStore::new();
    let mut state = StateTrie::<Keccak, _>::empty(&store);
    for (address, rlp_hex) in SECURE_TRIE_TEST1 {
        let address: Address = hex::decode(address).unwrap().try_into().unwrap();
        let bytes = hex::decode(rlp_hex).unwrap();
        let account = Account::decode(&[0; 32], &bytes).unwrap();
        assert_eq!(account.encode(), bytes);
        state.set_account(&address, &account).unwrap();
    }
    let (root, _) = state.commit().unwrap();
    assert_eq!(
        hex::encode(root),
        "730a444e08ab4b8dee147c9b232fc52d34a223d600031c1e9d25bfc985cbd797"
    );
    // A fresh account's fields are Ethereum's empty roots.
    let empty = Account::empty::<Keccak>();
    assert_eq!(
        hex::encode(empty.storage_root),
        "56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
    );
    assert_eq!(
        hex::encode(empty.code_hash),
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    );
    assert_eq!(empty.code_hash, Keccak::hash(&[]));
    // On the chain too: the trie's hash is BLAKE3, the code hash is not.
    assert_eq!(Account::empty::<Blake3Hasher>().code_hash, KECCAK_EMPTY);
}

/// Storage writes land in the account's storage root at commit, read back
/// from the stored nodes, and a zero word is no entry.
#[test]
fn storage_commits_into_its_account_and_reads_back() {
    let mut store = MemStore::new();
    let who: Address = [0xaa; 20];
    let mut state = StateTrie::<Blake3Hasher, _>::empty(store.clone());
    let mut account = Account::empty::<Blake3Hasher>();
    account.nonce = 1;
    state.set_account(&who, &account).unwrap();
    let slot = |i: u8| {
        let mut s = [0u8; 32];
        s[31] = i;
        s
    };
    let mut one = [0u8; 32];
    one[31] = 1;
    for i in 0..20 {
        state.set_storage(&who, &slot(i), &one).unwrap();
    }
    state.set_storage(&who, &slot(3), &[0; 32]).unwrap();
    assert_eq!(state.storage(&who, &slot(4)).unwrap(), one);
    let (root, nodes) = state.commit().unwrap();
    store.extend(nodes);

    let reopened = StateTrie::<Blake3Hasher, _>::at(root, store.clone());
    assert_eq!(reopened.storage(&who, &slot(4)).unwrap(), one);
    assert_eq!(reopened.storage(&who, &slot(3)).unwrap(), [0; 32]);
    assert_eq!(reopened.storage(&[0xbb; 20], &slot(4)).unwrap(), [0; 32]);
    let stored = reopened.account(&who).unwrap().unwrap();
    assert_eq!(stored.nonce, 1);
    // The storage root is that of the slots alone, as a secure trie.
    let mut alone = Trie::<Blake3Hasher, _>::new(MemStore::new());
    for i in (0..20).filter(|i| *i != 3) {
        alone
            .insert(&Blake3Hasher::hash(&slot(i)), vec![0x01])
            .unwrap();
    }
    assert_eq!(stored.storage_root, alone.root_hash());

    // Clearing every slot gives back the empty storage root.
    let mut state = StateTrie::<Blake3Hasher, _>::at(root, store.clone());
    for i in 0..20 {
        state.set_storage(&who, &slot(i), &[0; 32]).unwrap();
    }
    let (root2, nodes) = state.commit().unwrap();
    store.extend(nodes);
    let cleared = StateTrie::<Blake3Hasher, _>::at(root2, store);
    assert_eq!(
        cleared.account(&who).unwrap().unwrap().storage_root,
        Trie::<Blake3Hasher, MemStore>::empty_root()
    );
}

#[test]
fn malformed_accounts_are_refused() {
    let good = Account::empty::<Keccak>().encode();
    assert!(Account::decode(&[0; 32], &good).is_ok());
    for bad in [
        vec![0xc0],
        vec![0xc4, 0x80, 0x80, 0x80, 0x80],
        good[..good.len() - 1].to_vec(),
        [&good[..], &[0]].concat(),
    ] {
        assert!(Account::decode(&[0; 32], &bad).is_err(), "{bad:?}");
    }
}

#[derive(Debug, Clone)]
enum Op {
    SetAccount(u8, u64),
    Remove(u8),
    SetWord(u8, u8, u8),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        (0u8..4, 0u64..3).prop_map(|(a, n)| Op::SetAccount(a, n)),
        (0u8..4).prop_map(Op::Remove),
        (0u8..4, 0u8..3, 0u8..3).prop_map(|(a, s, v)| Op::SetWord(a, s, v)),
    ]
}

/// Applies `op` as the account layer does: a word is only written to an
/// account that exists (set first, keeping its storage root).
fn apply<S: NodeStore + Clone>(state: &mut StateTrie<Keccak, S>, op: &Op) {
    let address = |a: u8| [a; 20];
    match *op {
        Op::SetAccount(a, nonce) => {
            let mut account = state
                .account(&address(a))
                .unwrap()
                .unwrap_or_else(Account::empty::<Keccak>);
            account.nonce = nonce + 1;
            state.set_account(&address(a), &account).unwrap();
        }
        Op::Remove(a) => state.remove_account(&address(a)).unwrap(),
        Op::SetWord(a, slot, value) => {
            let mut account = state
                .account(&address(a))
                .unwrap()
                .unwrap_or_else(Account::empty::<Keccak>);
            account.nonce = account.nonce.max(1);
            state.set_account(&address(a), &account).unwrap();
            state
                .set_storage(&address(a), &[slot; 32], &[value; 32])
                .unwrap();
        }
    }
}

proptest::proptest! {
    /// Committing once after many changes (the overlay) gives the root,
    /// and the reads, of committing after every change.
    #[test]
    fn the_overlay_commits_to_the_root_of_changes_written_one_by_one(
        ops in proptest::collection::vec(op(), 0..40),
    ) {
        let mut store = MemStore::new();
        let mut batched = StateTrie::<Keccak, _>::empty(MemStore::new());
        let mut root = StateTrie::<Keccak, MemStore>::empty(MemStore::new()).commit().unwrap().0;
        for op in &ops {
            apply(&mut batched, op);
            let mut one = StateTrie::<Keccak, _>::at(root, store.clone());
            apply(&mut one, op);
            let (new_root, nodes) = one.commit().unwrap();
            store.extend(nodes);
            root = new_root;
            // The overlay reads what the committed state holds.
            let committed = StateTrie::<Keccak, _>::at(root, store.clone());
            for a in 0u8..4 {
                proptest::prop_assert_eq!(
                    batched.account(&[a; 20]).unwrap().map(|x| x.nonce),
                    committed.account(&[a; 20]).unwrap().map(|x| x.nonce)
                );
                for slot in 0u8..3 {
                    proptest::prop_assert_eq!(
                        batched.storage(&[a; 20], &[slot; 32]).unwrap(),
                        committed.storage(&[a; 20], &[slot; 32]).unwrap()
                    );
                }
            }
        }
        proptest::prop_assert_eq!(batched.commit().unwrap().0, root);
    }
}
