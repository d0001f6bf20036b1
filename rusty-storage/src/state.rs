//! Account state over the [`trie`](crate::trie), in Ethereum's layout:
//! an account trie keyed by the hash of the 20-byte address (secure
//! keys), each account `rlp[nonce, balance, storage root, code hash]`, and
//! one storage trie per account keyed by the hash of the 32-byte slot,
//! each value the RLP of the word without leading zeros (a zero word is
//! no entry).
//!
//! [`StateTrie::commit`] commits every touched storage trie, writes the
//! new storage roots into their accounts, then commits the account trie:
//! one root for the whole state, and the nodes to store with the block.

use std::collections::BTreeMap;

use rusty_shared_types::rlp::{self, Item};

use crate::trie::{NewNodes, NodeStore, Trie, TrieError, TrieHasher};

/// A 20-byte account address.
pub type Address = [u8; 20];

/// keccak256 of no code. Code hashes are Keccak-256 whatever hashes the
/// trie: the EVM's `EXTCODEHASH` returns them.
pub const KECCAK_EMPTY: [u8; 32] = [
    0xc5, 0xd2, 0x46, 0x01, 0x86, 0xf7, 0x23, 0x3c, 0x92, 0x7e, 0x7d, 0xb2, 0xdc, 0xc7, 0x03, 0xc0,
    0xe5, 0x00, 0xb6, 0x53, 0xca, 0x82, 0x27, 0x3b, 0x7b, 0xfa, 0xd8, 0x04, 0x5d, 0x85, 0xa4, 0x70,
];

/// An account as the state trie keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub nonce: u64,
    /// Wei, 256-bit big-endian.
    pub balance: [u8; 32],
    pub storage_root: [u8; 32],
    /// keccak256 of the account's code ([`KECCAK_EMPTY`] for none).
    pub code_hash: [u8; 32],
}

impl Account {
    /// A fresh account: no nonce, no balance, no storage, no code.
    pub fn empty<H: TrieHasher>() -> Account {
        Account {
            nonce: 0,
            balance: [0; 32],
            storage_root: H::hash(&[0x80]),
            code_hash: KECCAK_EMPTY,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        rlp::encode(&Item::List(vec![
            Item::uint(self.nonce.into()),
            Item::uint_bytes(&self.balance),
            Item::Bytes(self.storage_root.to_vec()),
            Item::Bytes(self.code_hash.to_vec()),
        ]))
    }

    /// An account from its RLP (`key` names it in errors).
    pub fn decode(key: &[u8; 32], bytes: &[u8]) -> Result<Account, TrieError> {
        let corrupt = |why: String| TrieError::Corrupt(*key, why);
        let item = rlp::decode(bytes).map_err(|e| corrupt(e.to_string()))?;
        let fields = item.list().map_err(|e| corrupt(e.to_string()))?;
        let [nonce, balance, storage_root, code_hash] = fields else {
            return Err(corrupt("an account is four fields".into()));
        };
        let hash = |it: &rlp::Rlp<'_>| -> Result<[u8; 32], TrieError> {
            it.bytes()
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| corrupt("a bad 256-bit field".into()))
        };
        let nonce = nonce.uint().map_err(|e| corrupt(e.to_string()))?;
        Ok(Account {
            nonce: u64::try_from(nonce).map_err(|_| corrupt("a nonce over 64 bits".into()))?,
            balance: balance
                .uint256()
                .map_err(|_| corrupt("a bad 256-bit field".into()))?,
            storage_root: hash(storage_root)?,
            code_hash: hash(code_hash)?,
        })
    }
}

/// The whole account state: the account trie and the storage tries of the
/// accounts touched since the last commit.
pub struct StateTrie<H, S> {
    accounts: Trie<H, S>,
    /// Storage tries opened for writing, by address (ordered, so a commit
    /// is deterministic).
    storage: BTreeMap<Address, Trie<H, S>>,
    store: S,
}

impl<H, S> std::fmt::Debug for StateTrie<H, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateTrie")
            .field("open_storage_tries", &self.storage.len())
            .finish()
    }
}

impl<H: TrieHasher, S: NodeStore + Clone> StateTrie<H, S> {
    /// The state whose root is `root`, its nodes in `store`.
    pub fn at(root: [u8; 32], store: S) -> Self {
        StateTrie {
            accounts: Trie::at(root, store.clone()),
            storage: BTreeMap::new(),
            store,
        }
    }

    pub fn empty(store: S) -> Self {
        Self::at(Trie::<H, S>::empty_root(), store)
    }

    fn account_key(address: &Address) -> [u8; 32] {
        H::hash(address)
    }

    pub fn account(&self, address: &Address) -> Result<Option<Account>, TrieError> {
        let key = Self::account_key(address);
        self.accounts
            .get(&key)?
            .map(|bytes| Account::decode(&key, &bytes))
            .transpose()
    }

    /// Sets an account as given (a commit then replaces the storage root
    /// of an account whose storage was written).
    pub fn set_account(&mut self, address: &Address, account: &Account) -> Result<(), TrieError> {
        let key = Self::account_key(address);
        self.accounts.insert(&key, account.encode())
    }

    /// Removes an account and its storage.
    pub fn remove_account(&mut self, address: &Address) -> Result<(), TrieError> {
        self.storage.remove(address);
        self.accounts.remove(&Self::account_key(address))
    }

    fn storage_trie(&mut self, address: &Address) -> Result<&mut Trie<H, S>, TrieError> {
        if !self.storage.contains_key(address) {
            let root = self
                .account(address)?
                .map_or_else(Trie::<H, S>::empty_root, |a| a.storage_root);
            self.storage
                .insert(*address, Trie::at(root, self.store.clone()));
        }
        self.storage
            .get_mut(address)
            .ok_or(TrieError::Store("storage trie vanished".into()))
    }

    /// A storage word (zero where nothing is stored).
    pub fn storage(&self, address: &Address, slot: &[u8; 32]) -> Result<[u8; 32], TrieError> {
        let key = H::hash(slot);
        let value = match self.storage.get(address) {
            Some(trie) => trie.get(&key)?,
            None => match self.account(address)? {
                Some(a) => Trie::<H, S>::at(a.storage_root, self.store.clone()).get(&key)?,
                None => None,
            },
        };
        let Some(value) = value else {
            return Ok([0; 32]);
        };
        let item = rlp::decode(&value).map_err(|e| TrieError::Corrupt(key, e.to_string()))?;
        item.uint256()
            .map_err(|e| TrieError::Corrupt(key, e.to_string()))
    }

    /// Sets a storage word of an existing account; zero removes it.
    pub fn set_storage(
        &mut self,
        address: &Address,
        slot: &[u8; 32],
        value: &[u8; 32],
    ) -> Result<(), TrieError> {
        let key = H::hash(slot);
        let trie = self.storage_trie(address)?;
        if value.iter().all(|b| *b == 0) {
            trie.remove(&key)
        } else {
            trie.insert(&key, rlp::encode(&Item::uint_bytes(value)))
        }
    }

    /// The nodes on the path to `address`'s account (EIP-1186's
    /// `accountProof`), from the last committed root.
    pub fn account_proof(&self, address: &Address) -> Result<Vec<Vec<u8>>, TrieError> {
        self.accounts.proof(&Self::account_key(address))
    }

    /// The nodes on the path to a storage word (EIP-1186's storage
    /// `proof`) in the account's committed storage trie; empty for no
    /// account.
    pub fn storage_proof(
        &self,
        address: &Address,
        slot: &[u8; 32],
    ) -> Result<Vec<Vec<u8>>, TrieError> {
        match self.account(address)? {
            Some(a) => Trie::<H, S>::at(a.storage_root, self.store.clone()).proof(&H::hash(slot)),
            None => Ok(Vec::new()),
        }
    }

    /// The state root, and every node made since the last commit.
    pub fn commit(&mut self) -> Result<([u8; 32], NewNodes), TrieError> {
        let mut nodes = Vec::new();
        for (address, mut trie) in std::mem::take(&mut self.storage) {
            let (root, new) = trie.commit();
            nodes.extend(new);
            let mut account = self.account(&address)?.unwrap_or_else(Account::empty::<H>);
            if account.storage_root != root {
                account.storage_root = root;
                self.set_account(&address, &account)?;
            }
        }
        let (root, new) = self.accounts.commit();
        nodes.extend(new);
        Ok((root, nodes))
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
