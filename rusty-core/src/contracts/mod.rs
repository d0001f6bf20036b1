//! The account world: EVM accounts in a state trie beside the UTXO set.
//!
//! Coins enter it through deposit outputs (`rusty_shared_types::evm`),
//! Ethereum-signed transactions run in it on revm (`rusty_vm::evm`), and
//! each block's header commits to its state root (zero while the state is
//! empty, so blocks without contracts look as before). The trie's nodes
//! are kept by hash and never changed, so a reorganisation only switches
//! the root: disconnecting a block deletes its receipts and index entries,
//! nothing else.
//!
//! - [`AccountWorld`]: the state at one root, readable by the EVM, and
//!   the changes a block makes to it.
//! - [`exec`]: a block's account-world effects (deposits, transactions,
//!   receipts, the new root), the same code for templates and connects.
//! - [`pool`]: Ethereum transactions waiting for a block, by sender and
//!   nonce.

pub mod exec;
pub mod pool;
mod receipt;
#[cfg(test)]
mod tests;
pub mod withdraw;

use std::collections::HashMap;

use ruint::aliases::U256;
use rusty_crypto::eth::{keccak256, tx::EthTxError};
use rusty_shared_types::Hash256;
use rusty_storage::{
    state::{Account, StateTrie, KECCAK_EMPTY},
    trie::{Blake3Hasher, NewNodes, NodeBytes, NodeStore, TableNodes, Trie, TrieError, TrieHasher},
    Database,
};
use rusty_vm::evm::{AccountChange, EvmAccount, EvmState};

pub use exec::{BlockEffects, BlockExecutor};
pub use receipt::{BlockReceipts, EthReceipt};

/// A proof: the nodes on a key's path, root first.
pub type Proof = Vec<Vec<u8>>;

/// Code by keccak256.
pub type CodeByHash = Vec<([u8; 32], Vec<u8>)>;

/// Nodes of the state tries, by BLAKE3 hash.
pub type StateStore<'a> = TableNodes<'a, crate::tables::StateNodes>;

/// Why an Ethereum transaction or a block's account-world effects were
/// refused. The messages follow geth's where tools match on them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("contracts are not active on this network at height {0}")]
    NotActive(u64),
    #[error("invalid transaction: {0}")]
    Decode(#[from] EthTxError),
    #[error("an ethereum transaction is version 1 with no inputs, no outputs and lock time 0")]
    BadShape,
    #[error("invalid chain id: expected {expected}, found {found}")]
    WrongChainId { expected: u64, found: u64 },
    #[error("only replay-protected (EIP-155) transactions allowed over RPC")]
    NotReplayProtected,
    #[error("nonce too low: next nonce {expected}, tx nonce {found}")]
    NonceTooLow { expected: u64, found: u64 },
    #[error("nonce too high: next nonce {expected}, tx nonce {found}")]
    NonceTooHigh { expected: u64, found: u64 },
    #[error(
        "insufficient funds for gas * price + value: address {address} have {have} want {want}"
    )]
    InsufficientFunds {
        address: String,
        have: U256,
        want: U256,
    },
    #[error(
        "max fee per gas less than block base fee: maxFeePerGas: {max_fee}, baseFee: {base_fee}"
    )]
    FeeCapTooLow { max_fee: u128, base_fee: u64 },
    #[error("exceeds block gas limit")]
    GasLimitExceeded,
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    #[error("already known")]
    AlreadyKnown,
    #[error("txpool is full")]
    PoolFull,
    #[error("intrinsic gas too low: the transaction needs {needed} gas before it runs, its limit is {limit}")]
    IntrinsicGasTooLow { needed: u64, limit: u64 },
    #[error("a coinbase may not deposit into the account world: its coins must mature first")]
    CoinbaseDeposit,
    #[error("{0}")]
    Evm(String),
    #[error("a balance would exceed 2^256 wei")]
    BalanceOverflow,
    #[error("settlement: {0}")]
    BadSettlement(String),
    #[error("state root {found} differs from the computed {expected}")]
    BadStateRoot { expected: Hash256, found: Hash256 },
    /// The state could not be read or is corrupt: the node's fault.
    #[error("state: {0}")]
    State(String),
}

impl ContractError {
    /// Whether a block failing with this error is its sender's fault
    /// (anything but our own unreadable state).
    pub fn is_peer_fault(&self) -> bool {
        !matches!(self, ContractError::State(_))
    }
}

impl From<TrieError> for ContractError {
    fn from(e: TrieError) -> Self {
        ContractError::State(e.to_string())
    }
}

impl From<rusty_storage::StorageError> for ContractError {
    fn from(e: rusty_storage::StorageError) -> Self {
        ContractError::State(e.to_string())
    }
}

/// The trie root a header's `state_root` stands for: zero is the empty
/// state.
pub fn trie_root(header_root: Hash256) -> [u8; 32] {
    if header_root.is_zero() {
        Trie::<Blake3Hasher, StateStore<'_>>::empty_root()
    } else {
        header_root.0
    }
}

/// The header's `state_root` for a trie root (zero for the empty state).
pub fn header_root(trie_root: [u8; 32]) -> Hash256 {
    if trie_root == Trie::<Blake3Hasher, StateStore<'_>>::empty_root() {
        Hash256::ZERO
    } else {
        Hash256(trie_root)
    }
}

/// The account state at one root, with the changes made on it since.
pub struct AccountWorld<'a> {
    trie: StateTrie<Blake3Hasher, StateStore<'a>>,
    db: &'a Database,
    /// Code created since the root, by keccak256.
    new_code: HashMap<[u8; 32], Vec<u8>>,
    /// Wei-units added to and taken from balances since the root (the
    /// supply check: their difference is what came in less what left).
    added: U256,
    removed: U256,
}

impl std::fmt::Debug for AccountWorld<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountWorld")
            .field("new_code", &self.new_code.len())
            .finish()
    }
}

impl<'a> AccountWorld<'a> {
    /// The state at `header_root` with its trie's nodes read from
    /// `store` (the chain's: its node cache and the nodes it has not
    /// written yet, in front of the table).
    pub fn over(db: &'a Database, header_root: Hash256, store: StateStore<'a>) -> Self {
        AccountWorld {
            trie: StateTrie::at(trie_root(header_root), store),
            db,
            new_code: HashMap::new(),
            added: U256::ZERO,
            removed: U256::ZERO,
        }
    }

    /// Records a balance going from `old` to `new`.
    fn track(&mut self, old: U256, new: U256) {
        record_flow(&mut self.added, &mut self.removed, old, new);
    }

    /// Wei-units added to and taken from balances since the root.
    pub fn balance_flow(&self) -> (U256, U256) {
        (self.added, self.removed)
    }

    pub fn account(&self, address: &[u8; 20]) -> Result<Option<Account>, ContractError> {
        Ok(self.trie.account(address)?)
    }

    /// Nonce and balance (zero for no account).
    pub fn nonce_and_balance(&self, address: &[u8; 20]) -> Result<(u64, U256), ContractError> {
        Ok(self
            .account(address)?
            .map(|a| (a.nonce, U256::from_be_bytes(a.balance)))
            .unwrap_or_default())
    }

    /// An account's nonce as the EVM sees it (`eth_getTransactionCount`):
    /// the withdraw contract's is 1, as for any contract, though the trie
    /// keeps only its balance.
    pub fn nonce_of(&self, address: &[u8; 20]) -> Result<u64, ContractError> {
        if *address == withdraw::WITHDRAW_ADDRESS {
            return Ok(1);
        }
        Ok(self.nonce_and_balance(address)?.0)
    }

    pub fn storage_word(
        &self,
        address: &[u8; 20],
        slot: &[u8; 32],
    ) -> Result<[u8; 32], ContractError> {
        Ok(self.trie.storage(address, slot)?)
    }

    /// An account's code as the EVM runs it (empty for none; the withdraw
    /// contract's comes with the rules, not from the trie).
    pub fn code_of(&self, address: &[u8; 20]) -> Result<Vec<u8>, ContractError> {
        if *address == withdraw::WITHDRAW_ADDRESS {
            return Ok(withdraw::code().to_vec());
        }
        match self.account(address)? {
            Some(a) if a.code_hash != KECCAK_EMPTY => self
                .code_by_hash(&a.code_hash)?
                .ok_or_else(|| ContractError::State(format!("code {} missing", hex(&a.code_hash)))),
            _ => Ok(Vec::new()),
        }
    }

    fn code_by_hash(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, ContractError> {
        if let Some(code) = self.new_code.get(hash) {
            return Ok(Some(code.clone()));
        }
        Ok(self
            .db
            .get::<crate::tables::ContractCode>(&Hash256(*hash))?
            .map(|b| b.0))
    }

    /// The EIP-1186 proof of an account and of some of its storage
    /// words, against the committed root (BLAKE3 nodes).
    pub fn proof(
        &self,
        address: &[u8; 20],
        slots: &[[u8; 32]],
    ) -> Result<(Proof, Vec<Proof>), ContractError> {
        let account_proof = self.trie.account_proof(address)?;
        let storage = slots
            .iter()
            .map(|s| self.trie.storage_proof(address, s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((account_proof, storage))
    }

    /// Adds `wei` to `address`'s balance, creating the account.
    pub fn credit(&mut self, address: &[u8; 20], wei: U256) -> Result<(), ContractError> {
        let mut account = self
            .account(address)?
            .unwrap_or_else(Account::empty::<Blake3Hasher>);
        let old = U256::from_be_bytes(account.balance);
        let balance = old.checked_add(wei).ok_or(ContractError::BalanceOverflow)?;
        self.track(old, balance);
        account.balance = balance.to_be_bytes();
        self.trie.set_account(address, &account)?;
        Ok(())
    }

    /// Sets the balance of a balance-only account (the withdraw
    /// contract's), removing it at zero.
    fn set_balance(&mut self, address: &[u8; 20], wei: U256) -> Result<(), ContractError> {
        let (_, old) = self.nonce_and_balance(address)?;
        self.track(old, wei);
        if wei.is_zero() {
            self.trie.remove_account(address)?;
            return Ok(());
        }
        let mut account = self
            .account(address)?
            .unwrap_or_else(Account::empty::<Blake3Hasher>);
        account.balance = wei.to_be_bytes();
        self.trie.set_account(address, &account)?;
        Ok(())
    }

    /// Takes `wei` from a balance-only account (which must hold it).
    pub(crate) fn debit(&mut self, address: &[u8; 20], wei: U256) -> Result<(), ContractError> {
        let (_, balance) = self.nonce_and_balance(address)?;
        let left = balance
            .checked_sub(wei)
            .ok_or_else(|| ContractError::State(format!("{} cannot pay {wei}", hex(address))))?;
        self.set_balance(address, left)
    }

    /// Writes what one transaction changed. Accounts left empty (no nonce,
    /// balance or code) are removed, as EIP-161 requires.
    pub fn apply(&mut self, changes: &[AccountChange]) -> Result<(), ContractError> {
        for change in changes {
            if change.address == withdraw::WITHDRAW_ADDRESS {
                self.set_balance(&change.address, U256::from_be_bytes(change.account.balance))?;
                continue;
            }
            let (added, removed) = (&mut self.added, &mut self.removed);
            write_change(&mut self.trie, change, &mut self.new_code, |old, new| {
                record_flow(added, removed, old, new)
            })?;
        }
        Ok(())
    }

    /// The new header root, the nodes and the code to store.
    fn commit(&mut self) -> Result<(Hash256, NewNodes, CodeByHash), ContractError> {
        let (root, nodes) = self.trie.commit()?;
        let code = std::mem::take(&mut self.new_code).into_iter().collect();
        Ok((header_root(root), nodes, code))
    }
}

impl EvmState for AccountWorld<'_> {
    fn account(&self, address: &[u8; 20]) -> Result<Option<EvmAccount>, String> {
        let account = AccountWorld::account(self, address).map_err(|e| e.to_string())?;
        if *address == withdraw::WITHDRAW_ADDRESS {
            // The system contract: its code comes with the rules; the
            // trie keeps only a balance it may hold between withdrawals.
            return Ok(Some(EvmAccount {
                nonce: 1,
                balance: account.map_or([0; 32], |a| a.balance),
                code_hash: withdraw::code_hash(),
            }));
        }
        Ok(account.map(|a| EvmAccount {
            nonce: a.nonce,
            balance: a.balance,
            code_hash: a.code_hash,
        }))
    }

    fn storage(&self, address: &[u8; 20], slot: &[u8; 32]) -> Result<[u8; 32], String> {
        self.storage_word(address, slot).map_err(|e| e.to_string())
    }

    fn code(&self, code_hash: &[u8; 32]) -> Result<Option<Vec<u8>>, String> {
        if *code_hash == withdraw::code_hash() {
            return Ok(Some(withdraw::code().to_vec()));
        }
        self.code_by_hash(code_hash).map_err(|e| e.to_string())
    }
}

/// The world a [`BlockExecutor`] shares with its revm instance (which
/// reads it only while a transaction runs; the executor changes it only
/// between transactions).
#[derive(Debug)]
pub(crate) struct SharedWorld<'a>(pub(crate) std::cell::RefCell<AccountWorld<'a>>);

impl EvmState for SharedWorld<'_> {
    fn account(&self, address: &[u8; 20]) -> Result<Option<EvmAccount>, String> {
        EvmState::account(&*self.0.borrow(), address)
    }

    fn storage(&self, address: &[u8; 20], slot: &[u8; 32]) -> Result<[u8; 32], String> {
        EvmState::storage(&*self.0.borrow(), address, slot)
    }

    fn code(&self, code_hash: &[u8; 32]) -> Result<Option<Vec<u8>>, String> {
        EvmState::code(&*self.0.borrow(), code_hash)
    }
}

/// Adds a balance's move from `old` to `new` to what balances gained or
/// lost.
fn record_flow(added: &mut U256, removed: &mut U256, old: U256, new: U256) {
    if new >= old {
        *added = added.saturating_add(new - old);
    } else {
        *removed = removed.saturating_add(old - new);
    }
}

/// Writes what one transaction did to one account into `trie` (any
/// hasher, any store: the chain's BLAKE3 trie, or a Keccak one for
/// Ethereum's conformance tests). `track` sees each balance's old and new
/// value. Accounts left empty (no nonce, balance or code) are removed, as
/// EIP-161 requires; new code goes to `new_code` by keccak256.
pub fn write_change<H: TrieHasher, S: NodeStore + Clone>(
    trie: &mut StateTrie<H, S>,
    change: &AccountChange,
    new_code: &mut HashMap<[u8; 32], Vec<u8>>,
    mut track: impl FnMut(U256, U256),
) -> Result<(), ContractError> {
    let a = &change.account;
    let before = trie.account(&change.address)?;
    let old = before
        .as_ref()
        .map_or(U256::ZERO, |b| U256::from_be_bytes(b.balance));
    let new = if change.destroyed {
        U256::ZERO
    } else {
        U256::from_be_bytes(a.balance)
    };
    track(old, new);
    let empty = a.nonce == 0 && a.balance == [0; 32] && a.code_hash == KECCAK_EMPTY;
    if change.destroyed || (empty && change.storage.is_empty()) {
        trie.remove_account(&change.address)?;
        return Ok(());
    }
    let storage_root =
        before.map_or_else(|| Account::empty::<H>().storage_root, |b| b.storage_root);
    if let Some(code) = &change.new_code {
        new_code.insert(keccak256(code), code.clone());
    }
    trie.set_account(
        &change.address,
        &Account {
            nonce: a.nonce,
            balance: a.balance,
            storage_root,
            code_hash: a.code_hash,
        },
    )?;
    for (slot, value) in &change.storage {
        trie.set_storage(&change.address, slot, value)?;
    }
    Ok(())
}

/// `0x`-prefixed lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    format!("0x{}", ::hex::encode(bytes))
}

/// Adds a trie node to a batch (content-addressed: writing it again is
/// harmless).
pub(crate) fn write_node(batch: &mut rusty_storage::WriteBatch, hash: &[u8; 32], bytes: &[u8]) {
    batch.put::<crate::tables::StateNodes>(&Hash256(*hash), &NodeBytes(bytes.to_vec()));
}

/// Adds contract code to a batch.
pub(crate) fn write_code(batch: &mut rusty_storage::WriteBatch, code: &CodeByHash) {
    for (hash, bytes) in code {
        batch.put::<crate::tables::ContractCode>(&Hash256(*hash), &NodeBytes(bytes.clone()));
    }
}
