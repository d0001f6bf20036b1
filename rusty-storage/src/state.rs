//! Account state over the [`trie`](crate::trie), in Ethereum's layout:
//! an account trie keyed by the hash of the 20-byte address (secure
//! keys), each account `rlp[nonce, balance, storage root, code hash]`, and
//! one storage trie per account keyed by the hash of the 32-byte slot,
//! each value the RLP of the word without leading zeros (a zero word is
//! no entry).
//!
//! Reads and writes between commits go through an overlay of accounts and
//! storage words (a block's transactions read and write the same few
//! accounts and slots over and over: a transfer's sender is written once
//! per transaction, and walking the trie each time was most of a block's
//! state cost). [`StateTrie::commit`] writes the overlay into the tries,
//! commits every touched storage trie, writes the new storage roots into
//! their accounts, then commits the account trie: one root for the whole
//! state, and the nodes to store with the block.

use std::{cell::RefCell, collections::HashMap};

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

/// The whole account state: the account trie, and the accounts and
/// storage words read or written since the last commit.
pub struct StateTrie<H, S> {
    accounts: Trie<H, S>,
    store: S,
    /// Accounts as they are now (`None`: no account), for those read or
    /// written since the last commit.
    account_overlay: RefCell<Map<Address, Option<Account>>>,
    /// Storage words as they are now, for those read or written, by
    /// account (a removal drops its account's words at once).
    word_overlay: RefCell<Map<Address, Words>>,
    /// What the overlay holds that the tries do not: accounts, and slots
    /// by account, in write order with repeats (sorted and deduplicated
    /// once, when the overlay is written).
    written_accounts: Vec<Address>,
    written_words: Map<Address, Vec<[u8; 32]>>,
}

/// The overlay's maps. Their keys are addresses and slots that
/// transactions chose, so the hasher is seeded: foldhash's, several times
/// cheaper than SipHash on these short keys (SipHash was a twentieth of a
/// block's connect in `bench erc20`).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// An account's storage words by slot.
type Words = Map<[u8; 32], [u8; 32]>;

impl<H, S> std::fmt::Debug for StateTrie<H, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateTrie")
            .field("written_accounts", &self.written_accounts.len())
            .field("written_words", &self.written_words.len())
            .finish()
    }
}

impl<H: TrieHasher, S: NodeStore + Clone> StateTrie<H, S> {
    /// The state whose root is `root`, its nodes in `store`.
    pub fn at(root: [u8; 32], store: S) -> Self {
        StateTrie {
            accounts: Trie::at(root, store.clone()),
            store,
            account_overlay: RefCell::default(),
            word_overlay: RefCell::default(),
            written_accounts: Vec::new(),
            written_words: Map::default(),
        }
    }

    pub fn empty(store: S) -> Self {
        Self::at(Trie::<H, S>::empty_root(), store)
    }

    fn account_key(address: &Address) -> [u8; 32] {
        H::hash(address)
    }

    pub fn account(&self, address: &Address) -> Result<Option<Account>, TrieError> {
        if let Some(account) = self.account_overlay.borrow().get(address) {
            return Ok(account.clone());
        }
        let account = self.trie_account(address)?;
        self.account_overlay
            .borrow_mut()
            .insert(*address, account.clone());
        Ok(account)
    }

    /// The account in the account trie (without the overlay).
    fn trie_account(&self, address: &Address) -> Result<Option<Account>, TrieError> {
        let key = Self::account_key(address);
        self.accounts
            .get(&key)?
            .map(|bytes| Account::decode(&key, &bytes))
            .transpose()
    }

    /// Sets an account as given (a commit then replaces the storage root
    /// of an account whose storage was written).
    pub fn set_account(&mut self, address: &Address, account: &Account) -> Result<(), TrieError> {
        self.account_overlay
            .get_mut()
            .insert(*address, Some(account.clone()));
        self.written_accounts.push(*address);
        Ok(())
    }

    /// Removes an account and its storage.
    pub fn remove_account(&mut self, address: &Address) -> Result<(), TrieError> {
        self.account_overlay.get_mut().insert(*address, None);
        self.written_accounts.push(*address);
        // Its words are gone with it: a later read finds no account, or
        // the empty storage of one created again.
        self.word_overlay.get_mut().remove(address);
        self.written_words.remove(address);
        Ok(())
    }

    /// A storage word (zero where nothing is stored).
    pub fn storage(&self, address: &Address, slot: &[u8; 32]) -> Result<[u8; 32], TrieError> {
        if let Some(word) = self
            .word_overlay
            .borrow()
            .get(address)
            .and_then(|words| words.get(slot))
        {
            return Ok(*word);
        }
        let word = match self.account(address)? {
            Some(a) => {
                Self::stored_word(&Trie::<H, S>::at(a.storage_root, self.store.clone()), slot)?
            }
            None => [0; 32],
        };
        self.word_overlay
            .borrow_mut()
            .entry(*address)
            .or_default()
            .insert(*slot, word);
        Ok(word)
    }

    /// A word in a storage trie.
    fn stored_word(trie: &Trie<H, S>, slot: &[u8; 32]) -> Result<[u8; 32], TrieError> {
        let key = H::hash(slot);
        let Some(value) = trie.get(&key)? else {
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
        self.word_overlay
            .get_mut()
            .entry(*address)
            .or_default()
            .insert(*slot, *value);
        self.written_words.entry(*address).or_default().push(*slot);
        Ok(())
    }

    /// Writes the overlay's accounts into the account trie (a storage
    /// trie then opens at its account's root).
    fn write_accounts(&mut self) -> Result<(), TrieError> {
        let accounts = std::mem::take(self.account_overlay.get_mut());
        let mut written = std::mem::take(&mut self.written_accounts);
        written.sort_unstable();
        written.dedup();
        for address in written {
            let key = Self::account_key(&address);
            match accounts.get(&address) {
                // An account created again after a removal starts with
                // the storage root its caller gave it.
                Some(Some(account)) => self.accounts.insert(&key, account.encode())?,
                Some(None) | None => self.accounts.remove(&key)?,
            }
        }
        Ok(())
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
        match self.trie_account(address)? {
            Some(a) => Trie::<H, S>::at(a.storage_root, self.store.clone()).proof(&H::hash(slot)),
            None => Ok(Vec::new()),
        }
    }

    /// The state root, and every node made since the last commit: the
    /// accounts written, then each account's words written into its
    /// storage trie (in one batch: a large one runs on two threads) and
    /// its new storage root into its account, then the account trie
    /// committed.
    pub fn commit(&mut self) -> Result<([u8; 32], NewNodes), TrieError>
    where
        H: Sync,
        S: Sync,
    {
        self.write_accounts()?;
        let words = std::mem::take(self.word_overlay.get_mut());
        let mut written: Vec<(Address, Vec<[u8; 32]>)> = std::mem::take(&mut self.written_words)
            .into_iter()
            .collect();
        written.sort_unstable_by_key(|(address, _)| *address);
        let mut nodes = Vec::new();
        for (address, mut slots) in written {
            slots.sort_unstable();
            slots.dedup();
            let account_words = words.get(&address);
            let entries = slots
                .into_iter()
                .map(|slot| {
                    let value = account_words
                        .and_then(|w| w.get(&slot))
                        .copied()
                        .unwrap_or([0; 32]);
                    // A zero word is no entry: an empty value removes it.
                    let stored = if value.iter().all(|b| *b == 0) {
                        Vec::new()
                    } else {
                        rlp::encode(&Item::uint_bytes(&value))
                    };
                    (H::hash(&slot).to_vec(), stored)
                })
                .collect();
            // The account as just written (or a fresh one, whose storage
            // starts empty); its storage root is the base of the batch.
            let mut account = self
                .trie_account(&address)?
                .unwrap_or_else(Account::empty::<H>);
            let (root, new) =
                Trie::<H, S>::at(account.storage_root, self.store.clone()).commit_batch(entries)?;
            nodes.extend(new);
            if account.storage_root != root {
                account.storage_root = root;
                self.accounts
                    .insert(&Self::account_key(&address), account.encode())?;
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
