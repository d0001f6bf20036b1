//! The EVM: `revm` (pinned exactly, no C builds) over the chain's account
//! state, through [`EvmState`], a read-only view any state can give (the
//! trie in `rusty-storage`, a map in tests). [`execute`] runs one call or
//! creation under the Cancun rules and returns what it changed as plain
//! data ([`AccountChange`]), for the caller to write into the trie and
//! commit with the block; nothing here writes.

use std::rc::Rc;

use revm::{
    context::{BlockEnv, CfgEnv, Context, TxEnv},
    context_interface::result::{EVMError, ExecutionResult, HaltReason, Output},
    context_interface::transaction::{AccessList, AccessListItem},
    database_interface::{DBErrorMarker, DatabaseRef, WrapDatabaseRef},
    handler::{MainnetContext, MainnetEvm},
    primitives::{hardfork::SpecId, Address, Bytes, TxKind, B256, KECCAK_EMPTY, U256},
    state::{AccountInfo, Bytecode},
    ExecuteEvm, MainBuilder, MainContext,
};
use thiserror::Error;

/// An account as the EVM sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmAccount {
    pub nonce: u64,
    /// Wei, big-endian.
    pub balance: [u8; 32],
    /// keccak256 of the code.
    pub code_hash: [u8; 32],
}

/// What the EVM reads of the state.
pub trait EvmState {
    fn account(&self, address: &[u8; 20]) -> Result<Option<EvmAccount>, String>;
    /// A storage word (zero where none).
    fn storage(&self, address: &[u8; 20], slot: &[u8; 32]) -> Result<[u8; 32], String>;
    /// Code by its keccak256.
    fn code(&self, code_hash: &[u8; 32]) -> Result<Option<Vec<u8>>, String>;
}

/// The state could not be read: the block cannot be executed here.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("state: {0}")]
pub struct StateError(pub String);

impl DBErrorMarker for StateError {}

/// Analysed contract code by hash, for the calls of one block: the same
/// contract runs many times a block, and reading its code and analysing
/// its jump destinations again for each call was a quarter of the EVM's
/// time in `bench erc20`. Code by hash never changes, so nothing is ever
/// stale here.
#[derive(Debug, Default)]
struct CodeCache(std::cell::RefCell<std::collections::HashMap<B256, Bytecode>>);

/// Calls of one block share the cache at most this many codes, so a block
/// touching many contracts holds a bounded amount.
const MAX_CACHED_CODES: usize = 1_024;

/// The state as revm reads it. A trait object, so that revm is
/// instantiated once, here (a generic would instantiate it in each
/// caller's crate, at that crate's optimisation level).
struct Db<'a> {
    state: Rc<dyn EvmState + 'a>,
    code: CodeCache,
    block: BlockContext,
}

/// A borrowed state as an owned one (for [`execute`]).
struct Borrowed<'b>(&'b dyn EvmState);

impl EvmState for Borrowed<'_> {
    fn account(&self, address: &[u8; 20]) -> Result<Option<EvmAccount>, String> {
        self.0.account(address)
    }

    fn storage(&self, address: &[u8; 20], slot: &[u8; 32]) -> Result<[u8; 32], String> {
        self.0.storage(address, slot)
    }

    fn code(&self, code_hash: &[u8; 32]) -> Result<Option<Vec<u8>>, String> {
        self.0.code(code_hash)
    }
}

type RefEvm<'a> = MainnetEvm<MainnetContext<WrapDatabaseRef<Db<'a>>>>;

/// A revm instance over `db`, with the chain's rules and `db`'s block.
fn build_evm(db: Db<'_>, simulate: bool) -> RefEvm<'_> {
    let mut cfg = CfgEnv::default();
    set_rules(&mut cfg, &db.block, simulate);
    let mut block = BlockEnv::default();
    set_block(&mut block, &db.block);
    Context::mainnet()
        .modify_cfg_chained(|c| *c = cfg)
        .modify_block_chained(|b| *b = block)
        .with_ref_db(db)
        .build_mainnet()
}

impl Db<'_> {
    fn load_code(&self, code_hash: B256) -> Result<Bytecode, StateError> {
        let code = self.state.code(&code_hash.0).map_err(StateError)?;
        code.map(|c| Bytecode::new_raw(Bytes::from(c)))
            .ok_or_else(|| StateError(format!("no code with hash {code_hash}")))
    }
}

impl DatabaseRef for Db<'_> {
    type Error = StateError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        let account = self
            .state
            .account(&address.into_array())
            .map_err(StateError)?;
        let Some(a) = account else {
            return Ok(None);
        };
        let code_hash = B256::from(a.code_hash);
        Ok(Some(AccountInfo {
            balance: U256::from_be_bytes(a.balance),
            nonce: a.nonce,
            code_hash,
            // With the account, so that revm does not ask for it by hash
            // as its own step (a contract's code is read by every call).
            code: Some(self.code_by_hash_ref(code_hash)?),
            ..Default::default()
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, StateError> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        if let Some(code) = self.code.0.borrow().get(&code_hash) {
            return Ok(code.clone());
        }
        let code = self.load_code(code_hash)?;
        let mut cache = self.code.0.borrow_mut();
        if cache.len() < MAX_CACHED_CODES {
            cache.insert(code_hash, code.clone());
        }
        Ok(code)
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, StateError> {
        let word = self
            .state
            .storage(&address.into_array(), &index.to_be_bytes::<32>())
            .map_err(StateError)?;
        Ok(U256::from_be_bytes(word))
    }

    /// revm asks only for the 256 blocks before this one.
    fn block_hash_ref(&self, number: u64) -> Result<B256, StateError> {
        let back = self.block.number.saturating_sub(number);
        let hash = usize::try_from(back)
            .ok()
            .and_then(|back| back.checked_sub(1))
            .and_then(|i| self.block.ancestors.get(i));
        Ok(hash.map_or(B256::ZERO, |h| B256::from(*h)))
    }
}

/// The block a call runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockContext {
    pub chain_id: u64,
    pub number: u64,
    pub timestamp: u64,
    pub gas_limit: u64,
    pub base_fee: u64,
    pub coinbase: [u8; 20],
    /// What `PREVRANDAO` (formerly `DIFFICULTY`) reads.
    pub prevrandao: [u8; 32],
    /// Hashes of the blocks before this one, parent first, up to 256:
    /// what `BLOCKHASH` reads (zero beyond them).
    pub ancestors: Vec<[u8; 32]>,
}

/// One call or creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmCall {
    pub caller: [u8; 20],
    /// `None` creates a contract from `input`.
    pub to: Option<[u8; 20]>,
    pub value: [u8; 32],
    pub input: Vec<u8>,
    pub gas_limit: u64,
    /// The gas price, or for a type-2 transaction its max fee per gas.
    pub gas_price: u128,
    /// A type-2 transaction's max priority fee per gas.
    pub max_priority_fee: Option<u128>,
    pub nonce: u64,
    /// EIP-2718 type (0, 1 or 2).
    pub tx_type: u8,
    /// EIP-2930 access list: addresses and storage slots warmed up front.
    pub access_list: Vec<([u8; 20], Vec<[u8; 32]>)>,
    /// A simulation (`eth_call`, `eth_estimateGas`): the nonce is not
    /// checked, as Ethereum nodes run them.
    pub simulate: bool,
}

/// A log as the EVM emitted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmLog {
    pub address: [u8; 20],
    pub topics: Vec<[u8; 32]>,
    pub data: Vec<u8>,
}

/// What an account became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChange {
    pub address: [u8; 20],
    pub account: EvmAccount,
    /// The code, when the call created the account.
    pub new_code: Option<Vec<u8>>,
    /// Changed storage words (zero: cleared).
    pub storage: Vec<([u8; 32], [u8; 32])>,
    pub destroyed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Success; a revert or halt still charges gas and bumps the nonce.
    pub success: bool,
    pub gas_used: u64,
    /// Return (or revert) data.
    pub output: Vec<u8>,
    pub created: Option<[u8; 20]>,
    pub logs: Vec<EvmLog>,
    pub changes: Vec<AccountChange>,
    /// Why execution stopped without a revert (out of gas, an invalid
    /// opcode, …), in geth's words without geth's details; `None` on
    /// success and on a revert.
    pub halt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EvmError {
    /// Not executable at all (bad nonce, too little balance for gas, …):
    /// the transaction is invalid and changes nothing.
    #[error("invalid transaction: {0}")]
    Invalid(String),
}

/// The Ethereum rules the chain runs.
const SPEC: SpecId = SpecId::CANCUN;

/// The gas a transaction costs before its first instruction under the
/// chain's rules, as execution charges it (revm's own computation): the
/// base, its calldata, a creation's init code words and its access list
/// (`access_list` addresses holding `access_slots` slots in all). A
/// transaction whose limit is below it can never run.
pub fn intrinsic_gas(
    input: &[u8],
    is_create: bool,
    access_list: usize,
    access_slots: usize,
) -> u64 {
    let gas = revm::interpreter::gas::calculate_initial_tx_gas(
        SPEC,
        input,
        is_create,
        access_list as u64,
        access_slots as u64,
        0,
        None,
    );
    gas.initial_regular_gas
        .saturating_add(gas.initial_state_gas)
        .max(gas.floor_gas)
}

/// The chain's rules (set through `modify_cfg_chained`, which passes
/// them on to the journal).
fn set_rules(cfg: &mut CfgEnv, block: &BlockContext, simulate: bool) {
    cfg.chain_id = block.chain_id;
    // The spec and its gas schedule together: setting `spec` alone keeps
    // the default (later) fork's gas parameters, such as Prague's calldata
    // floor (EIP-7623), which ethereum/tests' Cancun cases caught.
    cfg.set_spec_and_mainnet_gas_params(SPEC);
    cfg.disable_nonce_check = simulate;
    // Simulations may run "from" a contract (a multisig, an ERC-4337
    // entry point), as geth runs them; a transaction never can (EIP-3607).
    cfg.disable_eip3607 = simulate;
}

/// `block`'s environment.
fn set_block(env: &mut BlockEnv, block: &BlockContext) {
    env.number = U256::from(block.number);
    env.timestamp = U256::from(block.timestamp);
    env.gas_limit = block.gas_limit;
    env.basefee = block.base_fee;
    env.beneficiary = Address::from(block.coinbase);
    env.prevrandao = Some(B256::from(block.prevrandao));
}

/// `call` as revm's transaction.
fn tx_env(call: &EvmCall, chain_id: u64) -> Result<TxEnv, EvmError> {
    TxEnv::builder()
        .caller(Address::from(call.caller))
        .kind(match call.to {
            Some(to) => TxKind::Call(Address::from(to)),
            None => TxKind::Create,
        })
        .value(U256::from_be_bytes(call.value))
        .data(Bytes::from(call.input.clone()))
        .gas_limit(call.gas_limit)
        .gas_price(call.gas_price)
        .nonce(call.nonce)
        .chain_id(Some(chain_id))
        .tx_type(Some(call.tx_type))
        .gas_priority_fee(call.max_priority_fee)
        .access_list(AccessList(
            call.access_list
                .iter()
                .map(|(address, slots)| AccessListItem {
                    address: Address::from(*address),
                    storage_keys: slots.iter().map(|s| B256::from(*s)).collect(),
                })
                .collect(),
        ))
        .build()
        .map_err(|e| EvmError::Invalid(format!("{e:?}")))
}

/// Why revm refused a transaction, in geth's words where Ethereum tools
/// match on them (ethers' `INSUFFICIENT_FUNDS`, `NONCE_EXPIRED`, …).
fn invalid(e: EVMError<StateError>) -> EvmError {
    use revm::context_interface::result::InvalidTransaction as T;
    let text = match &e {
        EVMError::Transaction(t) => match t {
            T::LackOfFundForMaxFee { fee, balance } => {
                format!("insufficient funds for gas * price + value: have {balance} want {fee}")
            }
            T::NonceTooLow { tx, state } => {
                format!("nonce too low: next nonce {state}, tx nonce {tx}")
            }
            T::NonceTooHigh { tx, state } => {
                format!("nonce too high: next nonce {state}, tx nonce {tx}")
            }
            T::CallGasCostMoreThanGasLimit { .. } | T::GasFloorMoreThanGasLimit { .. } => {
                "intrinsic gas too low".to_owned()
            }
            T::GasPriceLessThanBasefee => "max fee per gas less than block base fee".to_owned(),
            T::PriorityFeeGreaterThanMaxFee => {
                "max priority fee per gas higher than max fee per gas".to_owned()
            }
            T::CallerGasLimitMoreThanBlock => "exceeds block gas limit".to_owned(),
            T::CreateInitCodeSizeLimit => "max initcode size exceeded".to_owned(),
            T::RejectCallerWithCode => "sender not an eoa".to_owned(),
            other => other.to_string(),
        },
        other => other.to_string(),
    };
    EvmError::Invalid(text)
}

/// Runs `call` against `state` in `block`; changes nothing in `state`.
pub fn execute(
    state: &dyn EvmState,
    block: &BlockContext,
    call: &EvmCall,
) -> Result<Outcome, EvmError> {
    let db = Db {
        state: Rc::new(Borrowed(state)),
        code: CodeCache::default(),
        block: block.clone(),
    };
    let mut evm = build_evm(db, call.simulate);
    let done = evm
        .transact(tx_env(call, block.chain_id)?)
        .map_err(invalid)?;
    Ok(outcome_of(done))
}

/// One revm instance for a block's transactions, run in order: its
/// context (instruction table, precompiles, call-frame buffers) is built
/// once per block (per transaction, a profile of `bench erc20` put close
/// to half of the EVM's time in building and dropping it; once per block
/// gained about a tenth of the connect). It reads `state`, which its owner
/// changes between transactions (the owner shares it, and never changes
/// it during one); revm's journal starts empty for each transaction, so
/// every transaction reads the state as the ones before it left it.
pub struct BlockEvm<'a> {
    evm: RefEvm<'a>,
    state: Rc<dyn EvmState + 'a>,
    block: BlockContext,
}

impl std::fmt::Debug for BlockEvm<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockEvm")
            .field("number", &self.block.number)
            .finish()
    }
}

impl<'a> BlockEvm<'a> {
    pub fn new(state: Rc<dyn EvmState + 'a>, block: &BlockContext) -> BlockEvm<'a> {
        let evm = build_evm(Self::db(&state, block), false);
        BlockEvm {
            evm,
            state,
            block: block.clone(),
        }
    }

    fn db(state: &Rc<dyn EvmState + 'a>, block: &BlockContext) -> Db<'a> {
        Db {
            state: Rc::clone(state),
            code: CodeCache::default(),
            block: block.clone(),
        }
    }

    /// Runs `call` (never a simulation: the nonce is checked) as the next
    /// transaction of the block; changes nothing in the state.
    pub fn execute(&mut self, call: &EvmCall) -> Result<Outcome, EvmError> {
        let tx = tx_env(call, self.block.chain_id)?;
        match self.evm.transact(tx) {
            Ok(done) => Ok(outcome_of(done)),
            Err(e) => {
                // revm calls its journal broken after a failed
                // transaction: start the next one on a fresh instance.
                self.evm = build_evm(Self::db(&self.state, &self.block), false);
                Err(invalid(e))
            }
        }
    }
}

/// What revm's result says, as plain data.
fn outcome_of(done: revm::context_interface::result::ResultAndState) -> Outcome {
    let gas_used = done.result.tx_gas_used();
    let mut halt = None;
    let (success, output, created, logs) = match done.result {
        ExecutionResult::Success { output, logs, .. } => {
            let created = match &output {
                Output::Create(_, address) => address.map(Address::into_array),
                Output::Call(_) => None,
            };
            (true, output.into_data().to_vec(), created, logs)
        }
        ExecutionResult::Revert { output, logs, .. } => (false, output.to_vec(), None, logs),
        ExecutionResult::Halt { reason, logs, .. } => {
            halt = Some(halt_message(&reason));
            (false, Vec::new(), None, logs)
        }
    };
    let logs = logs
        .into_iter()
        .map(|l| EvmLog {
            address: l.address.into_array(),
            topics: l.data.topics().iter().map(|t| t.0).collect(),
            data: l.data.data.to_vec(),
        })
        .collect();
    let mut changes: Vec<AccountChange> = done
        .state
        .into_iter()
        .filter(|(_, a)| a.is_touched())
        .map(|(address, a)| {
            let mut storage: Vec<([u8; 32], [u8; 32])> = a
                .storage
                .iter()
                .filter(|(_, s)| s.is_changed())
                .map(|(k, s)| (k.to_be_bytes::<32>(), s.present_value.to_be_bytes::<32>()))
                .collect();
            storage.sort();
            AccountChange {
                address: address.into_array(),
                account: EvmAccount {
                    nonce: a.info.nonce,
                    balance: a.info.balance.to_be_bytes::<32>(),
                    code_hash: a.info.code_hash.0,
                },
                new_code: a
                    .is_created()
                    .then(|| a.info.code.as_ref().map(|c| c.original_bytes().to_vec()))
                    .flatten(),
                storage,
                destroyed: a.is_selfdestructed(),
            }
        })
        .collect();
    // The state comes back as a hash map: sort for a deterministic diff.
    changes.sort_by_key(|c| c.address);
    Outcome {
        success,
        gas_used,
        output,
        created,
        logs,
        changes,
        halt,
    }
}

/// A halt in geth's words (`core/vm/errors.go`), which clients match on,
/// without the details geth appends to some (`invalid opcode: INVALID`,
/// `stack underflow (0 <=> 2)`: revm does not report them); revm's own
/// words for the few geth has none for.
fn halt_message(reason: &HaltReason) -> String {
    let geth = match reason {
        HaltReason::OutOfGas(_) => "out of gas",
        HaltReason::OpcodeNotFound | HaltReason::InvalidFEOpcode | HaltReason::NotActivated => {
            "invalid opcode"
        }
        HaltReason::InvalidJump => "invalid jump destination",
        HaltReason::StackUnderflow => "stack underflow",
        HaltReason::StackOverflow => "stack limit reached 1024",
        HaltReason::OutOfOffset => "return data out of bounds",
        HaltReason::CreateCollision => "contract address collision",
        HaltReason::NonceOverflow => "nonce uint64 overflow",
        HaltReason::CreateContractSizeLimit => "max code size exceeded",
        HaltReason::CreateContractStartingWithEF => "invalid code: must not begin with 0xef",
        HaltReason::CreateInitCodeSizeLimit => "max initcode size exceeded",
        HaltReason::StateChangeDuringStaticCall | HaltReason::CallNotAllowedInsideStatic => {
            "write protection"
        }
        HaltReason::OutOfFunds => "insufficient balance for transfer",
        HaltReason::CallTooDeep => "max call depth exceeded",
        other => return other.to_string(),
    };
    geth.to_string()
}

/// The yardstick of `rusty-cli bench erc20`: revm alone on its own
/// in-memory database (`InMemoryDB`, committing after each transaction),
/// with the same rules and the same transactions as ours. Runs `setup`
/// untimed after crediting `funded`, then `timed`; returns the time the
/// timed calls took and the gas they used. A call that fails to run is an
/// error.
pub fn raw_revm_yardstick(
    block: &BlockContext,
    funded: &[([u8; 20], [u8; 32])],
    setup: &[EvmCall],
    timed: &[EvmCall],
) -> Result<(std::time::Duration, u64), EvmError> {
    use revm::{database::InMemoryDB, ExecuteCommitEvm};
    let mut db = InMemoryDB::default();
    for (address, wei) in funded {
        db.insert_account_info(
            Address::from(*address),
            AccountInfo {
                balance: U256::from_be_bytes(*wei),
                ..Default::default()
            },
        );
    }
    let mut evm = Context::mainnet()
        .with_db(db)
        .modify_cfg_chained(|c| set_rules(c, block, false))
        .modify_block_chained(|b| set_block(b, block))
        .build_mainnet();
    for call in setup {
        evm.transact_commit(tx_env(call, block.chain_id)?)
            .map_err(|e| EvmError::Invalid(e.to_string()))?;
    }
    let envs = timed
        .iter()
        .map(|c| tx_env(c, block.chain_id))
        .collect::<Result<Vec<_>, _>>()?;
    let started = std::time::Instant::now();
    let mut gas = 0u64;
    for tx in envs {
        let done = evm
            .transact_commit(tx)
            .map_err(|e| EvmError::Invalid(e.to_string()))?;
        gas = gas.saturating_add(done.tx_gas_used());
    }
    Ok((started.elapsed(), gas))
}

#[cfg(test)]
#[path = "evm_tests.rs"]
mod tests;
