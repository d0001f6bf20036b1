//! Unit tests of the chain: reorganisations, invalid blocks, crash
//! replay, in-block spends; and the block-tree property test.

use rusty_shared_types::{Amount, TxOut};

use super::*;
use crate::test_utils::{coinbase_at, memory_state, Key, NOW};

#[test]
fn genesis_only_chain() {
    let s = memory_state(None);
    assert_eq!(s.chain().height(), 0);
    assert_eq!(s.chain().tip(), s.params().genesis_block().hash());
    assert_eq!(
        s.chain().median_time_past(&s.chain().tip()),
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
    assert!(a.chain().coin(&a_coin).expect("db").is_some());

    // Feed b's heavier branch to a.
    let mut events = Vec::new();
    for h in 1..=3 {
        let block = b
            .chain()
            .block(&b.chain().hash_at(h).expect("h"))
            .expect("db")
            .expect("block");
        let (acceptance, ev) = a.chain_mut().process_block(block, NOW + 1).expect("valid");
        events.extend(ev);
        assert_eq!(acceptance == BlockAcceptance::BecameTip, h == 3);
    }
    assert_eq!(a.chain().tip(), b.chain().tip());
    let disconnected = events
        .iter()
        .filter(|e| matches!(e, ChainEvent::Disconnected { .. }))
        .count();
    assert_eq!(disconnected, 2);
    // a's own coinbase is gone; b's is there.
    assert!(a.chain().coin(&a_coin).expect("db").is_none());
    let (b_coin, _) = coinbase_at(&b, 1);
    assert!(a.chain().coin(&b_coin).expect("db").is_some());
    // The tx index followed too.
    assert!(a.chain().tx_location(&a_coin.txid).expect("db").is_none());
    assert!(a.chain().tx_location(&b_coin.txid).expect("db").is_some());
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
    crate::pow::solve(&mut t.block.header, &t.target, u64::MAX).expect("solved");
    let bad = t.block.clone();
    let err = s
        .chain_mut()
        .process_block(bad.clone(), NOW)
        .expect_err("invalid");
    assert!(
        matches!(
            err,
            ChainError::Invalid(ValidationError::BadCoinbaseAmount { .. })
        ),
        "{err}"
    );
    assert_eq!(s.chain().height(), 0);
    assert!(matches!(
        s.chain_mut().process_block(bad.clone(), NOW),
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
    crate::pow::solve(&mut child.header, &t.target, u64::MAX).expect("solved");
    assert!(matches!(
        s.chain_mut().process_block(child, NOW),
        Err(ChainError::Invalid(ValidationError::PrevBlockInvalid(_)))
    ));
    // A valid block still connects.
    s.generate(1, &key.address, u64::MAX, NOW).expect("mines");
    assert_eq!(s.chain().height(), 1);
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
    crate::pow::solve(&mut t.block.header, &t.target, u64::MAX).expect("solved");
    let err = s
        .chain_mut()
        .process_block(t.block, NOW)
        .expect_err("bad signature");
    assert!(
        matches!(err, ChainError::Invalid(ValidationError::BadSignature(id)) if id == bad_txid),
        "{err}"
    );
    assert_eq!(s.chain().height(), 12);
}

#[test]
fn unflushed_blocks_are_replayed_after_a_crash() {
    let key = Key::new(8);
    let db =
        rusty_storage::Database::in_memory(crate::tables::TABLES, crate::tables::SCHEMA_VERSION)
            .unwrap();
    let params = rusty_shared_types::Network::Dev.params();
    let (chain, _) = Chain::open(db.clone(), params, NOW).unwrap();
    let mut s =
        crate::state::NodeState::new(chain, crate::mempool::Mempool::new(1 << 20, 1000), None);
    s.generate(12, &key.address, u64::MAX, NOW).unwrap();
    s.chain_mut().flush().unwrap();
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
    let tip = s.chain().tip();
    assert!(!s.chain().coins.is_empty(), "changes are cached");
    // The index entry waits for the flush, and reads find it meanwhile.
    assert!(db
        .get::<crate::tables::TxIndex>(&tx.txid())
        .unwrap()
        .is_none());
    assert!(s.chain().tx_location(&tx.txid()).unwrap().is_some());
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
    crate::pow::solve(&mut t.block.header, &t.target, u64::MAX).expect("solved");
    let err = s
        .chain_mut()
        .process_block(t.block, NOW)
        .expect_err("double spend");
    assert!(
        matches!(err, ChainError::Invalid(ValidationError::MissingOrSpent(p)) if p == op),
        "{err}"
    );
    assert_eq!(s.chain().height(), 11);
    assert!(s.chain().coin(&op).expect("db").is_some());
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
    assert!(s.mempool().is_empty());
    assert!(s.chain().coin(&op).expect("db").is_none());
    assert!(s.chain().coin(&op2).expect("db").is_none());
    assert!(s.chain().coin(&op3).expect("db").is_some());
    // Disconnect by reorging onto a longer branch from height 11.
    let mut other = memory_state(None);
    for h in 1..=11 {
        let b = s
            .chain()
            .block(&s.chain().hash_at(h).expect("h"))
            .expect("db")
            .expect("b");
        other.chain_mut().process_block(b, NOW).expect("copy");
    }
    other
        .generate(2, &Key::new(6).address, u64::MAX, NOW + 5)
        .expect("branch");
    for h in 12..=13 {
        let b = other
            .chain()
            .block(&other.chain().hash_at(h).expect("h"))
            .expect("db")
            .expect("b");
        let (_, ev) = s.chain_mut().process_block(b, NOW + 5).expect("valid");
        s.apply_events(ev, NOW + 5);
    }
    assert_eq!(s.chain().height(), 13);
    assert!(s.chain().coin(&op).expect("db").is_some(), "restored");
    assert!(
        s.chain().coin(&op2).expect("db").is_none(),
        "created and spent in the block: gone"
    );
    assert!(s.chain().coin(&op3).expect("db").is_none());
    // Both transactions are back in the mempool, parent first.
    assert_eq!(s.mempool().len(), 2);
}

/// Whatever order blocks of a random block tree arrive in (with side
/// branches, reorganisations and invalid blocks), the UTXO set equals the one
/// built by connecting only the final active chain from scratch.
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
        crate::pow::solve(&mut header, &target, u64::MAX).unwrap();
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

/// A ChainLock whose block has not arrived yet must not free fork choice
/// from the lock below it: the node stays on the locked branch instead of
/// going back to its own heavier branch beneath that lock. (Locks are set
/// unverified here; verification is the masternode tests' business.)
#[test]
fn a_lock_ahead_of_its_block_keeps_the_lock_below_binding() {
    let block_at = |s: &crate::state::NodeState, h: u64| {
        s.chain()
            .block(&s.chain().hash_at(h).expect("h"))
            .expect("db")
            .expect("block")
    };
    let lock = |height: u64, block_hash: Hash256| ChainLock {
        height,
        block_hash,
        signature: [0; 96],
    };
    let key = Key::new(1);
    // Ours: two blocks, then a third mined on a copy.
    let mut ours = memory_state(None);
    ours.generate(2, &key.address, u64::MAX, NOW).expect("ours");
    let mut copy = memory_state(None);
    for h in 1..=2 {
        copy.chain_mut()
            .process_block(block_at(&ours, h), NOW)
            .expect("copied");
    }
    copy.generate(1, &key.address, u64::MAX, NOW).expect("copy");
    // Theirs: three blocks of another branch.
    let mut theirs = memory_state(None);
    theirs
        .generate(3, &key.address, u64::MAX, NOW + 1)
        .expect("theirs");
    let their_hash = |h| theirs.chain().hash_at(h).expect("h");

    // Their first block arrives and is locked: we reorganise onto it.
    ours.chain_mut()
        .process_block(block_at(&theirs, 1), NOW)
        .expect("side block");
    let mut events = Vec::new();
    ours.chain_mut()
        .set_best_chainlock(lock(1, their_hash(1)), NOW, &mut events)
        .expect("lock 1");
    assert_eq!(ours.chain().tip(), their_hash(1));

    // The lock on their second block comes before the block itself.
    ours.chain_mut()
        .set_best_chainlock(lock(2, their_hash(2)), NOW, &mut events)
        .expect("lock 2");
    assert_eq!(
        ours.chain().tip(),
        their_hash(1),
        "went back below the lock at height 1"
    );
    // Our own branch grows heavier meanwhile: refused, below the lock.
    let verdict = ours.chain_mut().process_block(block_at(&copy, 3), NOW);
    assert!(
        matches!(
            verdict,
            Err(ChainError::Invalid(ValidationError::ForkBelowFinality))
        ),
        "{verdict:?}"
    );
    assert_eq!(ours.chain().tip(), their_hash(1));

    // Their blocks arrive: the best lock binds from then on.
    for h in 2..=3 {
        ours.chain_mut()
            .process_block(block_at(&theirs, h), NOW + 1)
            .expect("their block");
    }
    assert_eq!(ours.chain().tip(), their_hash(3));
    assert_eq!(
        ours.chain().binding_chainlock(),
        Some(&lock(2, their_hash(2)))
    );
}
