use std::collections::HashMap;

use revm::{
    database::InMemoryDB, primitives::keccak256, Database, ExecuteCommitEvm, MainBuilder,
    MainContext,
};

use super::*;

/// The state as plain maps, changed by applying outcomes.
#[derive(Default)]
struct MapState {
    accounts: HashMap<[u8; 20], EvmAccount>,
    storage: HashMap<([u8; 20], [u8; 32]), [u8; 32]>,
    code: HashMap<[u8; 32], Vec<u8>>,
}

impl EvmState for MapState {
    fn account(&self, address: &[u8; 20]) -> Result<Option<EvmAccount>, String> {
        Ok(self.accounts.get(address).cloned())
    }
    fn storage(&self, address: &[u8; 20], slot: &[u8; 32]) -> Result<[u8; 32], String> {
        Ok(self
            .storage
            .get(&(*address, *slot))
            .copied()
            .unwrap_or_default())
    }
    fn code(&self, code_hash: &[u8; 32]) -> Result<Option<Vec<u8>>, String> {
        Ok(self.code.get(code_hash).cloned())
    }
}

impl MapState {
    /// CALLER alone, with `balance` wei.
    fn funded(balance: u128) -> MapState {
        let mut state = MapState::default();
        state.accounts.insert(
            CALLER,
            EvmAccount {
                nonce: 0,
                balance: wei(balance),
                code_hash: KECCAK_EMPTY.0,
            },
        );
        state
    }

    fn apply(&mut self, outcome: &Outcome) {
        for c in &outcome.changes {
            self.accounts.insert(c.address, c.account.clone());
            if let Some(code) = &c.new_code {
                self.code.insert(c.account.code_hash, code.clone());
            }
            for (slot, value) in &c.storage {
                self.storage.insert((c.address, *slot), *value);
            }
        }
    }
}

const CALLER: [u8; 20] = [0x11; 20];

fn wei(n: u128) -> [u8; 32] {
    U256::from(n).to_be_bytes::<32>()
}

/// Returns slot 0; with 32 bytes of calldata, stores them there first.
const RUNTIME: &str = "3615600b57600035600055 5b600054600052 60206000f3";
/// Stores 42 in slot 0, then returns RUNTIME (23 bytes at offset 17).
const INIT: &str = "602a600055 6017601160003 9 60176000f3";

fn code(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).unwrap()
}

fn block() -> BlockContext {
    BlockContext {
        chain_id: 31337,
        number: 1,
        timestamp: 1_700_000_000,
        gas_limit: 30_000_000,
        base_fee: 1,
        coinbase: [0xcc; 20],
        prevrandao: [0; 32],
        ancestors: Vec::new(),
    }
}

/// BLOCKHASH reads the block context's ancestors (zero for the current
/// block), PREVRANDAO its `prevrandao`.
#[test]
fn blockhash_and_prevrandao_read_the_block_context() {
    // Returns BLOCKHASH(n-1), BLOCKHASH(n-2), BLOCKHASH(n), PREVRANDAO.
    let runtime = code("6001430340600052 6002430340602052 4340604052 44606052 60806000f3");
    let contract = [0x77; 20];
    let mut state = MapState::funded(10u128.pow(18));
    let hash = keccak256(&runtime).0;
    state.accounts.insert(
        contract,
        EvmAccount {
            nonce: 1,
            balance: wei(0),
            code_hash: hash,
        },
    );
    state.code.insert(hash, runtime);
    let ctx = BlockContext {
        number: 5,
        prevrandao: [0xab; 32],
        ancestors: vec![[4; 32], [3; 32], [2; 32], [1; 32], [0xee; 32]],
        ..block()
    };
    let mut call = calls(contract).remove(2);
    call.nonce = 0;
    let outcome = execute(&state, &ctx, &call).unwrap();
    assert!(outcome.success, "{outcome:?}");
    let words: Vec<&[u8]> = outcome.output.chunks(32).collect();
    assert_eq!(words, [&[4u8; 32][..], &[3; 32], &[0; 32], &[0xab; 32]]);
}

fn word(n: u8) -> Vec<u8> {
    let mut w = vec![0u8; 32];
    w[31] = n;
    w
}

/// The three transactions of the scenario: deploy, store 7, read.
fn calls(contract: [u8; 20]) -> Vec<EvmCall> {
    let base = |nonce, to, input| EvmCall {
        caller: CALLER,
        to,
        value: [0; 32],
        input,
        gas_limit: 200_000,
        gas_price: 1,
        max_priority_fee: None,
        nonce,
        tx_type: 0,
        access_list: Vec::new(),
        simulate: false,
    };
    vec![
        base(0, None, [code(INIT), code(RUNTIME)].concat()),
        base(1, Some(contract), word(7)),
        base(2, Some(contract), Vec::new()),
    ]
}

/// Deploys, writes and reads a contract over our state view, and raw
/// revm on its own in-memory database runs the same transactions to the
/// same outputs, gas and storage.
#[test]
fn a_contract_deploys_stores_and_reads_as_on_raw_revm() {
    let contract = rusty_crypto::eth::create_address(&CALLER, 0);
    let mut state = MapState::funded(10u128.pow(18));
    let mut ours = Vec::new();
    for call in calls(contract) {
        let outcome = execute(&state, &block(), &call).unwrap();
        assert!(outcome.success, "{outcome:?}");
        state.apply(&outcome);
        ours.push(outcome);
    }
    assert_eq!(ours[0].created, Some(contract));
    let created = ours[0]
        .changes
        .iter()
        .find(|c| c.address == contract)
        .unwrap();
    assert_eq!(created.new_code.as_deref(), Some(&code(RUNTIME)[..]));
    assert_eq!(created.account.code_hash, keccak256(code(RUNTIME)).0);
    assert_eq!(
        state.storage(&contract, &[0; 32]).unwrap(),
        wei(7),
        "{:?}",
        ours[1]
    );
    assert_eq!(ours[2].output, word(7));
    assert_eq!(state.accounts[&CALLER].nonce, 3);

    // The yardstick: revm alone, on its own database.
    let mut db = InMemoryDB::default();
    db.insert_account_info(
        Address::from(CALLER),
        AccountInfo {
            balance: U256::from(10u128.pow(18)),
            ..Default::default()
        },
    );
    let mut evm = Context::mainnet()
        .with_db(db)
        .modify_cfg_chained(|c| set_rules(c, &block(), false))
        .modify_block_chained(|b| set_block(b, &block()))
        .build_mainnet();
    for (call, outcome) in calls(contract).into_iter().zip(&ours) {
        let tx = tx_env(&call, block().chain_id).unwrap();
        let raw = evm.transact_commit(tx).unwrap();
        assert_eq!(raw.tx_gas_used(), outcome.gas_used);
        assert_eq!(
            raw.output().map(|o| o.to_vec()),
            Some(outcome.output.clone())
        );
    }
    let raw_slot = evm
        .ctx
        .journaled_state
        .database
        .storage(Address::from(contract), U256::ZERO)
        .unwrap();
    assert_eq!(raw_slot.to_be_bytes::<32>(), wei(7));
}

#[test]
fn invalid_transactions_are_errors_and_change_nothing() {
    let state = MapState::funded(1000);
    let mut call = calls([0; 20]).remove(0);
    call.nonce = 5;
    assert!(matches!(
        execute(&state, &block(), &call),
        Err(EvmError::Invalid(_))
    ));
    // 200,000 gas at 1 wei does not fit a balance of 1,000 wei.
    call.nonce = 0;
    assert!(matches!(
        execute(&state, &block(), &call),
        Err(EvmError::Invalid(_))
    ));
    assert_eq!(state.accounts[&CALLER].nonce, 0);
}

/// A revert is an outcome, not an error: gas is charged, the nonce moves,
/// storage stays.
#[test]
fn a_revert_charges_gas_and_keeps_storage() {
    let mut state = MapState::funded(10u128.pow(18));
    // SSTORE(0, 1) then REVERT(0, 0).
    let mut call = calls([0; 20]).remove(0);
    call.input = code("6001600055 60006000fd");
    let outcome = execute(&state, &block(), &call).unwrap();
    assert!(!outcome.success);
    assert_eq!(outcome.halt, None, "a revert is not a halt");
    assert!(outcome.gas_used > 21_000);
    state.apply(&outcome);
    assert_eq!(state.accounts[&CALLER].nonce, 1);
    let contract = rusty_crypto::eth::create_address(&CALLER, 0);
    assert_eq!(state.storage(&contract, &[0; 32]).unwrap(), [0; 32]);
}

/// EIP-3607: a transaction from an account with code is invalid, but a
/// simulation (`eth_call`, `eth_estimateGas`) may run from one, as geth
/// runs them (multisig and ERC-4337 tools call "from" a contract).
#[test]
fn a_simulation_may_run_from_a_contract_and_a_transaction_may_not() {
    let mut state = MapState::funded(10u128.pow(18));
    let deploy = calls([0; 20]).remove(0);
    let contract = rusty_crypto::eth::create_address(&CALLER, 0);
    let outcome = execute(&state, &block(), &deploy).unwrap();
    state.apply(&outcome);
    // The contract calls itself, reading slot 0 (42 from its constructor).
    let mut call = calls(contract).remove(2);
    call.caller = contract;
    call.gas_price = 0;
    call.nonce = 1;
    // Unpriced, as eth_call runs (the contract holds nothing for gas).
    let block = BlockContext {
        base_fee: 0,
        ..block()
    };
    let refused = execute(&state, &block, &call);
    assert!(
        matches!(&refused, Err(EvmError::Invalid(why)) if why.contains("not an eoa")),
        "{refused:?}"
    );
    call.simulate = true;
    let simulated = execute(&state, &block, &call).unwrap();
    assert!(simulated.success, "{simulated:?}");
    assert_eq!(simulated.output, word(42));
}

/// A halt says why in geth's words (clients match on them); it charges
/// all the gas given.
#[test]
fn a_halt_says_why_as_geth_does() {
    let state = MapState::funded(10u128.pow(18));
    for (init, why) in [
        ("fe", "invalid opcode"),
        ("600056", "invalid jump destination"),
        ("01", "stack underflow"),
        ("5b600056", "out of gas"),
    ] {
        let mut call = calls([0; 20]).remove(0);
        call.input = code(init);
        call.gas_limit = 100_000;
        let outcome = execute(&state, &block(), &call).unwrap();
        assert!(!outcome.success, "{init}");
        assert_eq!(outcome.halt.as_deref(), Some(why), "{init}");
        assert_eq!(outcome.gas_used, 100_000, "{init}");
    }
}

/// The intrinsic gas follows Cancun's schedule: 4 per zero calldata byte
/// and 16 per other, 32,000 more and 2 per init-code word for a creation
/// (EIP-3860), 2,400 per access-list address and 1,900 per slot, and no
/// calldata floor (Prague's EIP-7623 would raise the first case).
#[test]
fn intrinsic_gas_follows_the_cancun_schedule() {
    assert_eq!(intrinsic_gas(&[], false, 0, 0), 21_000);
    assert_eq!(intrinsic_gas(&[1, 0, 2], false, 0, 0), 21_036);
    assert_eq!(intrinsic_gas(&[0; 33], true, 0, 0), 53_136);
    assert_eq!(intrinsic_gas(&[], false, 1, 2), 21_000 + 2_400 + 3_800);
    // 1,000 nonzero bytes: 37,000 here; Prague's floor would make it 61,000.
    assert_eq!(intrinsic_gas(&[7; 1000], false, 0, 0), 37_000);
}
