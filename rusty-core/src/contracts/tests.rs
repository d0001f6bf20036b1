//! The account world on a dev chain in memory: deposits, an Ethereum
//! deployment and call mined by templates, the errors that refuse
//! transactions, and a reorganisation that switches the root back.

use rusty_crypto::eth::{
    create_address,
    tx::{EthTxFields, EthTxType},
    EthKey,
};
use rusty_shared_types::{
    evm::{deposit_script, EthTxPayload},
    Amount, Hash256, Payload, Transaction, TxOut,
};

use super::{withdraw, *};
use crate::{
    state::{NodeState, TxRejection},
    test_utils::{coinbase_at, memory_state, Key, NOW},
    validation::ValidationError,
};

/// Stores the first calldata word at slot 0: `PUSH1 0 CALLDATALOAD PUSH1 0
/// SSTORE STOP`.
const RUNTIME: &str = "60003560005500";
/// Returns [`RUNTIME`]: `PUSH1 7 PUSH1 12 PUSH1 0 CODECOPY PUSH1 7 PUSH1 0
/// RETURN`, then the runtime.
const INIT: &str = "6007600c60003960076000f3";

const CHAIN_ID: u64 = 7373;
const GWEI: u128 = 1_000_000_000;

fn eth_key() -> EthKey {
    EthKey::from_bytes(&[0x11; 32]).expect("key")
}

fn fields(nonce: u64, to: Option<[u8; 20]>, input: Vec<u8>) -> EthTxFields {
    EthTxFields {
        tx_type: EthTxType::DynamicFee,
        chain_id: Some(CHAIN_ID),
        nonce,
        max_priority_fee_per_gas: 0,
        max_fee_per_gas: 2 * GWEI,
        gas_limit: 200_000,
        to,
        value: [0; 32],
        input,
        access_list: Vec::new(),
    }
}

fn native(raw: Vec<u8>) -> Transaction {
    Transaction {
        version: 1,
        inputs: Vec::new(),
        outputs: Vec::new(),
        lock_time: 0,
        payload: Some(Payload::EthTx(EthTxPayload { raw })),
    }
}

fn signed(f: &EthTxFields) -> Transaction {
    native(f.sign(&eth_key()).expect("signs"))
}

fn contract_error(r: Result<Hash256, TxRejection>) -> ContractError {
    match r {
        Err(TxRejection::Invalid(ValidationError::Contract(e))) => e,
        other => panic!("expected a contract error, got {other:?}"),
    }
}

/// A dev state whose mature coinbase funded `eth_key()` with 5 coins.
fn funded() -> (NodeState, Key) {
    let miner = Key::new(1);
    let mut s = memory_state(None);
    s.generate(11, &miner.address, u64::MAX, NOW)
        .expect("mines");
    deposit_five_coins(&mut s, &miner);
    (s, miner)
}

/// Deposits 5 coins of `miner`'s first coinbase to `eth_key()` and mines
/// the block.
fn deposit_five_coins(s: &mut NodeState, miner: &Key) {
    let (prevout, spent) = coinbase_at(s, 1);
    let deposit = TxOut {
        value: Amount::from_coins(5).expect("amount"),
        lock: deposit_script(&eth_key().address()),
    };
    let change = TxOut {
        value: spent
            .value
            .checked_sub(Amount::from_coins(6).expect("amount"))
            .expect("value"),
        lock: miner.address.lock_script(),
    };
    let tx = miner.spend(prevout, &spent, vec![deposit, change]);
    s.accept_transaction(tx, NOW).expect("accepted");
    s.generate(1, &miner.address, u64::MAX, NOW).expect("mines");
}

fn balance(s: &NodeState, a: &[u8; 20]) -> U256 {
    s.chain().accounts().nonce_and_balance(a).expect("state").1
}

#[test]
fn deposit_deploy_and_call_are_mined_with_a_state_root() {
    let (mut s, miner) = funded();
    let me = eth_key().address();
    let five = U256::from(5u64) * U256::from(10u64).pow(U256::from(18u64));
    assert_eq!(balance(&s, &me), five);
    assert!(!s.chain().tip_entry().header.state_root.is_zero());

    let deploy = signed(&fields(
        0,
        None,
        ::hex::decode(format!("{INIT}{RUNTIME}")).unwrap(),
    ));
    s.accept_transaction(deploy, NOW).expect("deploy accepted");
    assert_eq!(s.eth_pending_nonce(&me).unwrap(), 1);
    let contract = create_address(&me, 0);
    let mut word = [0u8; 32];
    word[31] = 7;
    s.accept_transaction(signed(&fields(1, Some(contract), word.to_vec())), NOW)
        .expect("call accepted");
    assert_eq!(s.eth_pool().len(), 2);
    s.generate(1, &miner.address, u64::MAX, NOW).expect("mines");
    assert!(s.eth_pool().is_empty(), "mined transactions leave the pool");

    let world = s.chain().accounts();
    assert_eq!(
        world.code_of(&contract).unwrap(),
        ::hex::decode(RUNTIME).unwrap()
    );
    assert_eq!(world.storage_word(&contract, &[0; 32]).unwrap(), word);
    let (nonce, after) = world.nonce_and_balance(&me).unwrap();
    assert_eq!(nonce, 2);
    assert_eq!(world.nonce_of(&me).unwrap(), 2);
    // The withdraw contract, as the EVM sees it (the trie keeps only its
    // balance): its code and a contract's nonce.
    assert_eq!(
        world.code_of(&withdraw::WITHDRAW_ADDRESS).unwrap(),
        withdraw::code()
    );
    assert_eq!(world.nonce_of(&withdraw::WITHDRAW_ADDRESS).unwrap(), 1);
    let tip = s.chain().tip();
    let receipts = s.chain().receipts(&tip).unwrap().0;
    assert_eq!(receipts.len(), 2);
    assert_eq!(receipts[0].contract_address, Some(contract));
    assert!(receipts.iter().all(|r| r.success));
    let gas: u64 = receipts.iter().map(|r| r.gas_used).sum();
    assert_eq!(receipts[1].cumulative_gas_used, gas);
    // Base fee 1 gwei, no tip: exactly gas × 1 gwei left the account.
    assert_eq!(five - after, U256::from(gas) * U256::from(GWEI));
    let location = s
        .chain()
        .eth_tx_location(&receipts[1].tx_hash)
        .unwrap()
        .unwrap();
    assert_eq!(location.block, tip);
}

#[test]
fn bad_transactions_get_ethereum_errors_and_change_nothing() {
    let (mut s, _) = funded();
    let root = s.chain().tip_entry().header.state_root;
    let mut wrong_chain = fields(0, Some([9; 20]), Vec::new());
    wrong_chain.chain_id = Some(1);
    assert!(matches!(
        contract_error(s.accept_transaction(signed(&wrong_chain), NOW)),
        ContractError::WrongChainId {
            expected: CHAIN_ID,
            found: 1
        }
    ));
    let mut cheap = fields(0, Some([9; 20]), Vec::new());
    cheap.max_fee_per_gas = 1;
    assert!(matches!(
        contract_error(s.accept_transaction(signed(&cheap), NOW)),
        ContractError::FeeCapTooLow { .. }
    ));
    let mut rich = fields(0, Some([9; 20]), Vec::new());
    rich.value = U256::from(6u64)
        .saturating_mul(U256::from(10u64).pow(U256::from(18u64)))
        .to_be_bytes();
    assert!(matches!(
        contract_error(s.accept_transaction(signed(&rich), NOW)),
        ContractError::InsufficientFunds { .. }
    ));
    let mut low_gas = fields(0, Some([9; 20]), Vec::new());
    low_gas.gas_limit = 20_000;
    assert!(matches!(
        contract_error(s.accept_transaction(signed(&low_gas), NOW)),
        ContractError::IntrinsicGasTooLow {
            needed: 21_000,
            limit: 20_000
        }
    ));
    let garbage = native(vec![0x02, 0xc0]);
    assert!(matches!(
        contract_error(s.accept_transaction(garbage, NOW)),
        ContractError::Decode(_)
    ));
    // The wrapper is fixed, so its txid is too: another version of the
    // same signed bytes would be the same transaction under a second id.
    let mut other_version = signed(&fields(0, Some([9; 20]), Vec::new()));
    other_version.version = 2;
    assert!(matches!(
        contract_error(s.accept_transaction(other_version, NOW)),
        ContractError::BadShape
    ));
    assert!(s.eth_pool().is_empty());
    assert_eq!(s.chain().tip_entry().header.state_root, root);

    // A replacement must raise the fees by 10 %; a mined nonce is too low.
    let first = fields(0, Some([9; 20]), Vec::new());
    s.accept_transaction(signed(&first), NOW).expect("accepted");
    let mut same = first.clone();
    same.gas_limit = 21_001;
    assert!(matches!(
        contract_error(s.accept_transaction(signed(&same), NOW)),
        ContractError::ReplacementUnderpriced
    ));
    s.generate(1, &Key::new(1).address, u64::MAX, NOW)
        .expect("mines");
    assert!(matches!(
        contract_error(s.accept_transaction(signed(&same), NOW)),
        ContractError::NonceTooLow {
            expected: 1,
            found: 0
        }
    ));
}

#[test]
fn a_block_with_a_wrong_state_root_is_refused() {
    let (mut s, miner) = funded();
    s.accept_transaction(signed(&fields(0, Some([9; 20]), Vec::new())), NOW)
        .expect("accepted");
    let template = s.block_template(&miner.address.lock_script(), NOW, Vec::new());
    let mut block = template.block;
    assert_eq!(block.txs.len(), 2, "coinbase and the ethereum transaction");
    block.header.state_root = Hash256([1; 32]);
    crate::pow::solve(&mut block.header, &template.target, u64::MAX).expect("solves");
    let tip = s.chain().tip();
    let err = s.submit_block(block, NOW);
    assert!(
        format!("{err:?}").contains("BadStateRoot"),
        "refused for its root: {err:?}"
    );
    assert_eq!(s.chain().tip(), tip);
}

#[test]
fn a_reorganisation_switches_the_root_back() {
    let (mut s, miner) = funded();
    let funded_root = s.chain().tip_entry().header.state_root;
    s.accept_transaction(signed(&fields(0, Some([9; 20]), Vec::new())), NOW)
        .expect("accepted");
    s.generate(1, &miner.address, u64::MAX, NOW).expect("mines");
    let tip = s.chain().tip();
    let hash = s.chain().receipts(&tip).unwrap().0[0].tx_hash;
    assert!(s.chain().eth_tx_location(&hash).unwrap().is_some());

    // A longer branch from the funded block, without the transaction.
    let mut other = memory_state(None);
    for h in 1..s.chain().height() {
        let b = s
            .chain()
            .block(&s.chain().hash_at(h).unwrap())
            .unwrap()
            .unwrap();
        other.submit_block(b, NOW).expect("same blocks");
    }
    other
        .generate(2, &Key::new(2).address, u64::MAX, NOW)
        .expect("mines");
    for h in s.chain().height()..=other.chain().height() {
        let b = other
            .chain()
            .block(&other.chain().hash_at(h).unwrap())
            .unwrap()
            .unwrap();
        s.submit_block(b, NOW).expect("branch block");
    }
    assert_eq!(s.chain().tip(), other.chain().tip());
    assert_eq!(s.chain().tip_entry().header.state_root, funded_root);
    assert!(s.chain().eth_tx_location(&hash).unwrap().is_none());
    // The disconnected block's receipts stay readable by its hash: a log
    // filter reports their logs again, removed.
    assert_eq!(s.chain().receipts(&tip).unwrap().0[0].tx_hash, hash);
    assert!(!s.chain().is_active(&tip));
    // The transaction is back in the pool, valid on the new branch.
    assert_eq!(s.eth_pool().len(), 1);
}

fn to_withdraw(nonce: u64, wei: U256, script: &[u8]) -> EthTxFields {
    let mut f = fields(nonce, Some(withdraw::WITHDRAW_ADDRESS), script.to_vec());
    f.value = wei.to_be_bytes();
    f
}

fn coin_wei() -> U256 {
    U256::from(10u64).pow(U256::from(18u64))
}

#[test]
fn withdrawals_are_paid_by_the_settlement_transaction() {
    let (mut s, miner) = funded();
    let me = eth_key().address();
    let payee = Key::new(2);
    let script = payee.address.lock_script();
    // A payable withdrawal, one to an unspendable script (paid back), one
    // of a fraction of a base unit (reverts).
    s.accept_transaction(signed(&to_withdraw(0, coin_wei(), script.as_bytes())), NOW)
        .expect("withdrawal accepted");
    let burn = rusty_shared_types::Script::data_carrier(b"nowhere").expect("script");
    s.accept_transaction(signed(&to_withdraw(1, coin_wei(), burn.as_bytes())), NOW)
        .expect("accepted");
    s.accept_transaction(
        signed(&to_withdraw(2, U256::from(5u64), script.as_bytes())),
        NOW,
    )
    .expect("accepted");
    s.generate(1, &miner.address, u64::MAX, NOW).expect("mines");

    let tip = s.chain().tip();
    let block = s.chain().block(&tip).unwrap().unwrap();
    let settlement = block.txs.last().expect("txs");
    assert!(matches!(settlement.payload, Some(Payload::Settlement(_))));
    assert_eq!(settlement.outputs.len(), 1);
    assert_eq!(settlement.outputs[0].value, Amount::from_coins(1).unwrap());
    assert_eq!(settlement.outputs[0].lock, script);
    let coin = s
        .chain()
        .coin(&rusty_shared_types::OutPoint::new(settlement.txid(), 0))
        .unwrap()
        .expect("the withdrawal is a coin");
    assert_eq!(coin.output.lock, script);

    let receipts = s.chain().receipts(&tip).unwrap().0;
    assert_eq!(
        receipts.iter().map(|r| r.success).collect::<Vec<_>>(),
        [true, true, false]
    );
    let gas: u64 = receipts.iter().map(|r| r.gas_used).sum();
    let five = U256::from(5u64) * coin_wei();
    // One coin left; the refused one came back; gas was paid.
    assert_eq!(
        balance(&s, &me),
        five - coin_wei() - U256::from(gas) * U256::from(GWEI)
    );
    assert_eq!(balance(&s, &withdraw::WITHDRAW_ADDRESS), U256::ZERO);
    // A settlement is never relayed loose.
    assert!(s.accept_transaction(settlement.clone(), NOW).is_err());
}

#[test]
fn a_block_with_a_wrong_settlement_is_refused() {
    let (mut s, miner) = funded();
    let script = Key::new(2).address.lock_script();
    s.accept_transaction(signed(&to_withdraw(0, coin_wei(), script.as_bytes())), NOW)
        .expect("accepted");
    let template = s.block_template(&miner.address.lock_script(), NOW, Vec::new());
    for tamper in 0..3 {
        let mut block = template.block.clone();
        match tamper {
            // Pays more than was withdrawn.
            0 => block.txs.last_mut().unwrap().outputs[0].value = Amount::from_coins(2).unwrap(),
            // Leaves the settlement out.
            1 => {
                block.txs.pop();
            }
            // Settles twice.
            _ => {
                let extra = withdraw::settlement_tx(0, block.txs.last().unwrap().outputs.clone());
                block.txs.push(extra);
            }
        }
        block.header.merkle_root = crate::validation::block_merkle_root(&block.txs);
        crate::pow::solve(&mut block.header, &template.target, u64::MAX).expect("solves");
        let tip = s.chain().tip();
        let err = s.submit_block(block, NOW);
        assert!(
            format!("{err:?}").contains("Settlement"),
            "tamper {tamper}: {err:?}"
        );
        assert_eq!(s.chain().tip(), tip);
    }
}

mod supply {
    //! The supply invariant over random deposits, transfers and
    //! withdrawals: the UTXO set plus every account balance plus the base
    //! fees burned is what the chain issued, block after block.

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Coins from the miner's wallet coin into the account.
        Deposit(u64),
        /// Wei-units to another account.
        Transfer(u64),
        /// Coins back out, to a payable or an unpayable script.
        Withdraw(u64, bool),
        Mine,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1u64..3).prop_map(Op::Deposit),
            (1u64..1_000_000).prop_map(Op::Transfer),
            ((1u64..3), any::<bool>()).prop_map(|(c, ok)| Op::Withdraw(c, ok)),
            Just(Op::Mine),
        ]
    }

    /// What the chain issued: every coinbase less the UTXO fees it
    /// collected (settlements come from the account world, not issuance).
    fn issued(s: &NodeState) -> u128 {
        let mut total = 0u128;
        for h in 1..=s.chain().height() {
            let hash = s.chain().hash_at(h).unwrap();
            let block = s.chain().block(&hash).unwrap().unwrap();
            let undo = s.chain().block_undo(&hash).unwrap().unwrap();
            let coinbase: u128 = block.txs[0]
                .outputs
                .iter()
                .map(|o| u128::from(o.value.units()))
                .sum();
            let spent: u128 = undo
                .spent
                .iter()
                .map(|c| u128::from(c.output.value.units()))
                .sum();
            let paid: u128 = block.txs[1..]
                .iter()
                .filter(|t| !matches!(t.payload, Some(Payload::Settlement(_))))
                .flat_map(|t| &t.outputs)
                .map(|o| u128::from(o.value.units()))
                .sum();
            total += coinbase - (spent - paid);
        }
        total
    }

    fn burned(s: &NodeState) -> U256 {
        let mut total = U256::ZERO;
        for h in 1..=s.chain().height() {
            let hash = s.chain().hash_at(h).unwrap();
            for r in s.chain().receipts(&hash).unwrap().0 {
                total += U256::from(r.gas_used) * U256::from(GWEI);
            }
        }
        total
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn utxos_accounts_and_burns_add_up_to_the_issued_supply(ops in proptest::collection::vec(op(), 1..14)) {
            let (mut s, miner) = funded();
            let me = eth_key().address();
            let other = [0x77; 20];
            let payee = Key::new(3).address.lock_script();
            let burn = rusty_shared_types::Script::data_carrier(b"x").unwrap();
            let mut coinbase_height = 2;
            let mut nonce = 0;
            let known = [me, other, withdraw::WITHDRAW_ADDRESS, [0; 20]];
            let check = |s: &NodeState| {
                let accounts = known.iter().fold(U256::ZERO, |t, a| t + balance(s, a));
                let utxos = U256::from(s.chain().utxo_totals().unwrap().total);
                let unit = U256::from(rusty_shared_types::evm::WEI_PER_UNIT);
                assert_eq!(
                    utxos * unit + accounts + burned(s),
                    U256::from(issued(s)) * unit,
                    "at height {}", s.chain().height()
                );
            };
            for op in ops {
                match op {
                    Op::Deposit(coins) => {
                        let (prevout, spent) = coinbase_at(&s, coinbase_height);
                        coinbase_height += 1;
                        let deposit = TxOut {
                            value: Amount::from_coins(coins).unwrap(),
                            lock: deposit_script(&me),
                        };
                        let change = TxOut {
                            value: spent.value.checked_sub(Amount::from_coins(coins + 1).unwrap()).unwrap(),
                            lock: miner.address.lock_script(),
                        };
                        let _ = s.accept_transaction(miner.spend(prevout, &spent, vec![deposit, change]), NOW);
                    }
                    Op::Transfer(wei) => {
                        let mut f = fields(nonce, Some(other), Vec::new());
                        f.value = U256::from(wei).to_be_bytes();
                        if s.accept_transaction(signed(&f), NOW).is_ok() {
                            nonce += 1;
                        }
                    }
                    Op::Withdraw(coins, payable) => {
                        let script = if payable { &payee } else { &burn };
                        let f = to_withdraw(nonce, U256::from(coins) * coin_wei(), script.as_bytes());
                        if s.accept_transaction(signed(&f), NOW).is_ok() {
                            nonce += 1;
                        }
                    }
                    Op::Mine => {
                        s.generate(1, &miner.address, u64::MAX, NOW).unwrap();
                        check(&s);
                    }
                }
            }
            // A pooled transaction the account can no longer afford (the
            // pool checks each against the tip alone) stays pooled, unmined.
            s.generate(1, &miner.address, u64::MAX, NOW).unwrap();
            check(&s);
        }
    }
}

/// A node's state on RocksDB in `dir`, as a node opens it.
fn rocksdb_state(dir: &std::path::Path) -> NodeState {
    let db = Database::open_rocksdb(
        dir,
        crate::tables::TABLES,
        crate::tables::SCHEMA_VERSION,
        rusty_storage::RocksOptions::default(),
    )
    .expect("opens");
    let (chain, _) = crate::chain::Chain::open(db, rusty_shared_types::Network::Dev.params(), NOW)
        .expect("chain");
    NodeState::new(chain, crate::mempool::Mempool::new(1 << 20, 1_000), None)
}

/// Copies blocks `from..=to` of `src`'s active chain to `dst`.
fn copy_blocks(src: &NodeState, dst: &mut NodeState, from: u64, to: u64) {
    for h in from..=to {
        let hash = src.chain().hash_at(h).expect("active");
        let block = src.chain().block(&hash).expect("read").expect("stored");
        dst.submit_block(block, NOW).expect("connects");
    }
}

/// What the account world's effects look like at a node's tip.
#[derive(Debug, PartialEq)]
struct Effects {
    root: Hash256,
    receipts: usize,
    located: usize,
    my_balance: U256,
    stored_word: [u8; 32],
    withdrawal_coin: bool,
}

fn effects(
    s: &NodeState,
    hashes: &[[u8; 32]],
    contract: &[u8; 20],
    payout: &rusty_shared_types::OutPoint,
) -> Effects {
    let chain = s.chain();
    let receipts = (0..=chain.height())
        .map(|h| {
            chain
                .receipts(&chain.hash_at(h).expect("active"))
                .expect("read")
                .0
                .len()
        })
        .sum();
    Effects {
        root: chain.tip_entry().header.state_root,
        receipts,
        located: hashes
            .iter()
            .filter(|h| chain.eth_tx_location(h).expect("read").is_some())
            .count(),
        my_balance: balance(s, &eth_key().address()),
        stored_word: chain
            .accounts()
            .storage_word(contract, &[0; 32])
            .expect("state"),
        withdrawal_coin: chain.coin(payout).expect("read").is_some(),
    }
}

/// A node on RocksDB in `dir` with 11 blocks mined to `Key::new(1)` (its
/// coinbase 1 mature) and flushed.
fn flushed_rocksdb_state(dir: &std::path::Path) -> (NodeState, Key) {
    let miner = Key::new(1);
    let mut s = rocksdb_state(dir);
    s.generate(11, &miner.address, u64::MAX, NOW)
        .expect("mines");
    s.chain_mut().flush().expect("flushes");
    (s, miner)
}

/// A block's state-trie nodes wait in memory until the chain flushes
/// (read from there meanwhile), then are in the table.
#[test]
fn state_nodes_are_written_at_the_flush() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut s, miner) = flushed_rocksdb_state(dir.path());
    deposit_five_coins(&mut s, &miner);
    let root = s.chain().tip_entry().header.state_root;
    assert!(!root.is_zero());
    let in_table = |s: &NodeState| {
        s.chain()
            .db()
            .get::<crate::tables::StateNodes>(&root)
            .expect("reads")
            .is_some()
    };
    let five = U256::from(5u64) * coin_wei();
    assert!(!in_table(&s));
    assert_eq!(balance(&s, &eth_key().address()), five);
    s.chain_mut().flush().expect("flushes");
    assert!(in_table(&s));
    assert_eq!(balance(&s, &eth_key().address()), five);
}

/// A deposit, a deployment, a call and a withdrawal mined after the last
/// coin-cache flush survive a crash (the state dropped unflushed, RocksDB
/// reopened from disk: the unflushed blocks connect again to the same
/// root, receipts, index and withdrawal coin), a longer branch without
/// them (everything back to the state before the deposit), and the
/// original branch made longer again (everything restored).
#[test]
fn contract_effects_survive_a_crash_and_reorganisations_both_ways() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut s, miner) = flushed_rocksdb_state(dir.path());
    let fork = s.chain().height();
    let before = s.chain().tip_entry().header.state_root;

    deposit_five_coins(&mut s, &miner);
    let me = eth_key().address();
    let contract = create_address(&me, 0);
    let mut word = [0u8; 32];
    word[31] = 42;
    let payee = Key::new(3).address.lock_script();
    let txs = [
        signed(&fields(
            0,
            None,
            ::hex::decode(format!("{INIT}{RUNTIME}")).expect("hex"),
        )),
        signed(&fields(1, Some(contract), word.to_vec())),
        signed(&to_withdraw(2, coin_wei(), payee.as_bytes())),
    ];
    let mut hashes = Vec::new();
    for tx in txs {
        if let Some(Payload::EthTx(p)) = &tx.payload {
            hashes.push(rusty_crypto::eth::keccak256(&p.raw));
        }
        s.accept_transaction(tx, NOW).expect("accepted");
    }
    s.generate(1, &miner.address, u64::MAX, NOW).expect("mines");
    let tip_block = s
        .chain()
        .block(&s.chain().tip())
        .expect("read")
        .expect("stored");
    let settlement = tip_block.txs.last().expect("txs");
    assert!(matches!(settlement.payload, Some(Payload::Settlement(_))));
    let payout = rusty_shared_types::OutPoint::new(settlement.txid(), 0);
    let mined = effects(&s, &hashes, &contract, &payout);
    assert_eq!(
        (
            mined.receipts,
            mined.located,
            mined.stored_word,
            mined.withdrawal_coin
        ),
        (3, 3, word, true)
    );
    // The original branch, kept for later.
    let mined_height = s.chain().height();
    let mut original = memory_state(None);
    copy_blocks(&s, &mut original, 1, s.chain().height());

    // Crash: nothing flushed since the fork point.
    drop(s);
    let mut s = rocksdb_state(dir.path());
    assert_eq!(
        effects(&s, &hashes, &contract, &payout),
        mined,
        "replayed to the same effects"
    );

    // A longer branch from the fork point, without any of it.
    let mut other = memory_state(None);
    copy_blocks(&s, &mut other, 1, fork);
    other
        .generate(3, &Key::new(2).address, u64::MAX, NOW)
        .expect("mines");
    copy_blocks(&other, &mut s, fork + 1, other.chain().height());
    assert_eq!(s.chain().tip(), other.chain().tip());
    let undone = effects(&s, &hashes, &contract, &payout);
    assert_eq!(
        undone,
        Effects {
            root: before,
            receipts: 0,
            located: 0,
            my_balance: U256::ZERO,
            stored_word: [0; 32],
            withdrawal_coin: false,
        }
    );

    // The original branch, longer again: everything comes back.
    original
        .generate(2, &miner.address, u64::MAX, NOW)
        .expect("mines");
    // (s still holds the branch's first blocks, on the side.)
    copy_blocks(
        &original,
        &mut s,
        mined_height + 1,
        original.chain().height(),
    );
    assert_eq!(s.chain().tip(), original.chain().tip());
    assert_eq!(effects(&s, &hashes, &contract, &payout), mined);
}

/// Pooled Ethereum transactions are saved with the mempool and come back
/// into the pool of a node that loads the file.
#[test]
fn pooled_ethereum_transactions_survive_a_restart_through_the_mempool_file() {
    let (mut s, _) = funded();
    for nonce in 0..3 {
        s.accept_transaction(signed(&fields(nonce, Some([9; 20]), Vec::new())), NOW)
            .expect("accepted");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mempool.dat");
    assert_eq!(s.save_mempool(&path).expect("saves"), 3);

    let mut restarted = memory_state(None);
    copy_blocks(&s, &mut restarted, 1, s.chain().height());
    assert_eq!(restarted.load_mempool(&path), (3, 0));
    assert_eq!(restarted.eth_pool().len(), 3);
    assert_eq!(
        restarted
            .eth_pending_nonce(&eth_key().address())
            .expect("state"),
        3
    );
}

/// A contract storing `BLOCKHASH(NUMBER - 1)` stores the hash of the
/// block before the one that mined the call: the template and every
/// connecting node read the same chain.
#[test]
fn blockhash_reads_our_chain() {
    let (mut s, miner) = funded();
    // PUSH1 1 NUMBER SUB BLOCKHASH PUSH1 0 SSTORE STOP, behind an init
    // code returning its 9 bytes.
    let init = ::hex::decode("6009600c60003960096000f3600143034060005500").expect("hex");
    s.accept_transaction(signed(&fields(0, None, init)), NOW)
        .expect("deploy accepted");
    s.generate(1, &miner.address, u64::MAX, NOW).expect("mines");
    let contract = create_address(&eth_key().address(), 0);
    s.accept_transaction(signed(&fields(1, Some(contract), Vec::new())), NOW)
        .expect("call accepted");
    let parent = s.chain().tip();
    s.generate(1, &miner.address, u64::MAX, NOW).expect("mines");
    assert_eq!(
        s.chain().receipts(&s.chain().tip()).expect("read").0.len(),
        1,
        "the call was mined"
    );
    let stored = s
        .chain()
        .accounts()
        .storage_word(&contract, &[0; 32])
        .expect("state");
    assert_eq!(stored, parent.0);
}

/// A block of 40 Ethereum transactions is decoded on worker threads while
/// it runs; one among them whose signature no longer recovers (or recovers
/// to another sender, whose nonce is wrong) fails the whole block and
/// changes nothing, and the untampered block connects.
#[test]
fn a_bad_signature_inside_a_large_block_refuses_it() {
    let (mut s, miner) = funded();
    for nonce in 0..40 {
        s.accept_transaction(signed(&fields(nonce, Some([9; 20]), Vec::new())), NOW)
            .expect("accepted");
    }
    let template = s.block_template(&miner.address.lock_script(), NOW, Vec::new());
    assert_eq!(template.block.txs.len(), 41, "all 40 in the template");
    let mut block = template.block.clone();
    let Some(Payload::EthTx(p)) = &mut block.txs[25].payload else {
        panic!("an Ethereum transaction");
    };
    // The last byte of `s`.
    let last = p.raw.len() - 1;
    p.raw[last] ^= 0x01;
    block.header.merkle_root = crate::validation::block_merkle_root(&block.txs);
    crate::pow::solve(&mut block.header, &template.target, u64::MAX).expect("solves");
    let tip = s.chain().tip();
    let root = s.chain().tip_entry().header.state_root;
    let err = s.submit_block(block, NOW);
    assert!(err.is_err(), "{err:?}");
    assert_eq!(s.chain().tip(), tip);
    assert_eq!(s.chain().tip_entry().header.state_root, root);

    s.submit_block(template.block.clone(), NOW)
        .expect("the real block connects");
    assert_eq!(
        s.chain().receipts(&s.chain().tip()).expect("read").0.len(),
        40
    );
}

/// The pool refuses what could never be mined, and so never leaves: a
/// gas limit below the transaction's intrinsic gas (queued behind a gap,
/// it is not run at admission), and a queue its sender's balance cannot
/// pay for as a whole.
#[test]
fn the_pool_refuses_what_could_never_be_mined() {
    let (mut s, _) = funded();
    let mut free = fields(1, Some([9; 20]), vec![1, 0, 2]);
    free.gas_limit = 0;
    assert!(matches!(
        contract_error(s.accept_transaction(signed(&free), NOW)),
        ContractError::IntrinsicGasTooLow {
            needed: 21_036,
            limit: 0
        }
    ));
    let mut create = fields(1, None, vec![0; 33]);
    create.gas_limit = 53_000;
    assert!(matches!(
        contract_error(s.accept_transaction(signed(&create), NOW)),
        ContractError::IntrinsicGasTooLow { needed: 53_136, .. }
    ));
    // 5 coins: one queued transaction of 3 fits, a second does not.
    let three = U256::from(3u64) * coin_wei();
    let mut first = fields(1, Some([9; 20]), Vec::new());
    first.value = three.to_be_bytes();
    s.accept_transaction(signed(&first), NOW).expect("queued");
    let mut second = fields(2, Some([9; 20]), Vec::new());
    second.value = three.to_be_bytes();
    assert!(matches!(
        contract_error(s.accept_transaction(signed(&second), NOW)),
        ContractError::InsufficientFunds { .. }
    ));
    assert_eq!(s.eth_pool().len(), 1);
}

/// A coinbase's coins wait for maturity: one that deposits them into the
/// account world (where a withdrawal could spend them at once) is refused.
#[test]
fn a_coinbase_may_not_deposit() {
    let (mut s, miner) = funded();
    let template = s.block_template(&miner.address.lock_script(), NOW, Vec::new());
    let mut block = template.block;
    let reward = block.txs[0].outputs[0].value;
    let one = Amount::from_coins(1).unwrap();
    block.txs[0].outputs[0].value = reward.checked_sub(one).unwrap();
    block.txs[0].outputs.push(TxOut {
        value: one,
        lock: deposit_script(&eth_key().address()),
    });
    block.header.merkle_root = crate::validation::block_merkle_root(&block.txs);
    crate::pow::solve(&mut block.header, &template.target, u64::MAX).expect("solves");
    let tip = s.chain().tip();
    let err = s.submit_block(block, NOW);
    assert!(
        format!("{err:?}").contains("CoinbaseDeposit"),
        "refused for its deposit: {err:?}"
    );
    assert_eq!(s.chain().tip(), tip);
}

/// A template's Ethereum transactions and the settlement that pays their
/// withdrawals fit the room given together: the settlement is not added
/// on top (a block over the size limit would be refused by every node).
#[test]
fn a_template_leaves_room_for_its_settlement() {
    let (mut s, _) = funded();
    let payee = Key::new(2).address.lock_script();
    let withdrawal = signed(&to_withdraw(0, coin_wei(), payee.as_bytes()));
    let size = withdrawal.size();
    s.accept_transaction(withdrawal, NOW).expect("accepted");
    let height = s.chain().height() + 1;
    let fill = |room: usize| {
        let mut header = s.chain().tip_entry().header.clone();
        header.time = NOW;
        let mut txs = Vec::new();
        s.fill_eth_template(&mut header, &mut txs, height, room);
        txs
    };
    // Room for the withdrawal alone: not for its settlement too.
    let txs = fill(size);
    let used: usize = txs.iter().map(Transaction::size).sum();
    assert!(used <= size, "{used} bytes in {size}");
    assert!(txs.is_empty(), "{txs:?}");
    // Room for both: both.
    let txs = fill(size + 200);
    assert_eq!(txs.len(), 2);
    assert!(matches!(txs[1].payload, Some(Payload::Settlement(_))));
    assert!(txs.iter().map(Transaction::size).sum::<usize>() <= size + 200);
}

/// Under Cancun a contract that self-destructs to itself in the
/// transaction that created it burns its balance (EIP-6780): counted as
/// burned, the supply still adds up, and the block connects.
#[test]
fn value_burned_by_a_self_destruct_is_counted() {
    let (mut s, miner) = funded();
    let me = eth_key().address();
    let before = balance(&s, &me);
    // Init code: SELFDESTRUCT(ADDRESS).
    let mut create = fields(0, None, ::hex::decode("30ff").unwrap());
    create.value = coin_wei().to_be_bytes();
    s.accept_transaction(signed(&create), NOW)
        .expect("accepted");
    let height = s.chain().height();
    s.generate(1, &miner.address, u64::MAX, NOW).expect("mines");
    assert_eq!(s.chain().height(), height + 1, "the block connected");
    let receipts = s.chain().receipts(&s.chain().tip()).unwrap().0;
    assert!(receipts[0].success);
    let gas = U256::from(receipts[0].gas_used) * U256::from(GWEI);
    assert_eq!(balance(&s, &me), before - coin_wei() - gas);
    assert_eq!(balance(&s, &create_address(&me, 0)), U256::ZERO);
}
