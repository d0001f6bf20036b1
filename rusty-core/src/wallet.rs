//! The node's HD wallet.
//!
//! One BIP-39 mnemonic, stored only inside an Argon2id + XChaCha20-Poly1305
//! keystore (`<datadir>/wallets/<name>/keystore.json`); keys are derived by
//! SLIP-10 on `m/44'/1337'/0'/<chain>'/<index>'` (chain 0 receive, 1 change).
//! `wallet.json` beside it holds only the next unused indexes.
//!
//! The wallet follows the chain through [`ChainEvent`]s and is rebuilt by a
//! scan of the active chain at start, so its balances always agree with the
//! UTXO set, also after a reorg or a crash.

#![deny(clippy::arithmetic_side_effects)]

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    path::{Path, PathBuf},
};

use rusty_crypto::{
    ed25519::{pubkey_hash, PublicKey, SecretKey},
    hd::{ExtendedSecretKey, Mnemonic, HARDENED},
    keystore::{KdfParams, KeystoreFile},
};
use rusty_shared_types::{
    transaction::SEQUENCE_FINAL, Address, Amount, Block, Hash256, Network, OutPoint, Payload,
    Script, Transaction, TxIn, TxOut,
};
use serde::{Deserialize, Serialize};

use crate::{chain::ChainEvent, mempool::Mempool};

/// Unused addresses watched beyond the last used one on each chain.
const LOOKAHEAD: u32 = 20;
/// Change smaller than this is left to the fee rather than creating dust.
const DUST: u64 = 1_000;
/// BIP-44-style account path; 1337' is Rusty Coin's coin type.
const ACCOUNT_PATH: &str = "m/44'/1337'/0'";

/// The account's HD chain whose key owns the wallet's EVM account (0 is
/// receiving, 1 change).
const EVM_CHAIN: u32 = 2;

/// Wallet errors.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("wallet file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("wallet metadata {} is corrupt: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(transparent)]
    Crypto(#[from] rusty_crypto::CryptoError),
    #[error("insufficient funds: {available} spendable, {needed} needed (amount + fee)")]
    InsufficientFunds { available: Amount, needed: Amount },
    #[error("amount must be positive and within the money range")]
    InvalidAmount,
    #[error("signing failed: {0}")]
    Signing(String),
}

pub type Result<T> = std::result::Result<T, WalletError>;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletMeta {
    version: u32,
    next_receive: u32,
    next_change: u32,
}

#[derive(Debug)]
struct KeyInfo {
    secret: SecretKey,
    chain: u32,
    index: u32,
}

/// A coin the wallet owns on the active chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletCoin {
    pub outpoint: OutPoint,
    pub output: TxOut,
    pub height: u64,
    pub is_coinbase: bool,
}

/// A confirmed transaction that touched the wallet.
#[derive(Debug, Clone)]
pub struct WalletTx {
    pub tx: Transaction,
    pub txid: Hash256,
    pub block: Hash256,
    pub height: u64,
    pub time: u64,
    /// Value of the wallet's coins this transaction spent.
    pub debit: Amount,
}

/// Balances in Bitcoin Core's `getbalances` sense.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balances {
    /// Mature confirmed coins and the wallet's own unconfirmed change.
    pub trusted: Amount,
    /// Unconfirmed payments from others.
    pub untrusted_pending: Amount,
    /// Coinbase outputs not yet mature.
    pub immature: Amount,
}

/// The wallet.
#[derive(Debug)]
pub struct Wallet {
    network: Network,
    dir: PathBuf,
    account: ExtendedSecretKey,
    meta: WalletMeta,
    derived: [u32; 2],
    keys: HashMap<Hash256, KeyInfo>,
    coins: BTreeMap<OutPoint, WalletCoin>,
    /// Coins spent on the active chain, kept to restore them on a reorg.
    spent: HashMap<OutPoint, WalletCoin>,
    history: Vec<WalletTx>,
}

impl Wallet {
    /// Opens the wallet in `dir`, or creates one (new mnemonic) if `create`
    /// and none exists.
    pub fn open_or_create(
        dir: &Path,
        network: Network,
        passphrase: &str,
        create: bool,
        kdf: KdfParams,
    ) -> Result<Option<Wallet>> {
        let ks_path = dir.join("keystore.json");
        if !ks_path.exists() {
            if !create {
                return Ok(None);
            }
            fs::create_dir_all(dir).map_err(|source| WalletError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            let mnemonic = Mnemonic::generate()?;
            let ks = KeystoreFile::encrypt(mnemonic.phrase().as_bytes(), passphrase, kdf)?;
            ks.save(&ks_path)?;
            tracing::info!(target: "wallet", path = %ks_path.display(), "created a new wallet");
        }
        let ks = KeystoreFile::load(&ks_path)?;
        let phrase = ks.decrypt(passphrase)?;
        let phrase = std::str::from_utf8(&phrase).map_err(|_| WalletError::Corrupt {
            path: ks_path.clone(),
            reason: "mnemonic is not UTF-8".into(),
        })?;
        let mnemonic = Mnemonic::parse(phrase)?;
        let seed = mnemonic.to_seed("");
        let account = ExtendedSecretKey::master(seed.as_ref())?.derive_path(ACCOUNT_PATH)?;
        let meta_path = dir.join("wallet.json");
        let meta = if meta_path.exists() {
            let text = fs::read_to_string(&meta_path).map_err(|source| WalletError::Io {
                path: meta_path.clone(),
                source,
            })?;
            serde_json::from_str(&text).map_err(|e| WalletError::Corrupt {
                path: meta_path.clone(),
                reason: e.to_string(),
            })?
        } else {
            WalletMeta {
                version: 1,
                next_receive: 0,
                next_change: 0,
            }
        };
        let mut w = Wallet {
            network,
            dir: dir.to_path_buf(),
            account,
            meta,
            derived: [0, 0],
            keys: HashMap::new(),
            coins: BTreeMap::new(),
            spent: HashMap::new(),
            history: Vec::new(),
        };
        w.derive_lookahead()?;
        w.save_meta()?;
        Ok(Some(w))
    }

    fn derive_lookahead(&mut self) -> Result<()> {
        for chain in 0..2u32 {
            let next = if chain == 0 {
                self.meta.next_receive
            } else {
                self.meta.next_change
            };
            let want = next.saturating_add(LOOKAHEAD);
            let chain_key = self.account.derive_child(HARDENED | chain)?;
            while self.derived[chain as usize] < want {
                let index = self.derived[chain as usize];
                let secret = chain_key.derive_child(HARDENED | index)?.secret_key();
                let pkh = pubkey_hash(&secret.public_key());
                self.keys.insert(
                    pkh,
                    KeyInfo {
                        secret,
                        chain,
                        index,
                    },
                );
                self.derived[chain as usize] = index.saturating_add(1);
            }
        }
        Ok(())
    }

    fn save_meta(&self) -> Result<()> {
        let path = self.dir.join("wallet.json");
        let tmp = self.dir.join("wallet.json.tmp");
        let text = serde_json::to_string_pretty(&self.meta).map_err(|e| WalletError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let io = |source| WalletError::Io {
            path: path.clone(),
            source,
        };
        fs::write(&tmp, text).map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)
    }

    fn next_key(&mut self, chain: u32) -> Result<Hash256> {
        let index = if chain == 0 {
            &mut self.meta.next_receive
        } else {
            &mut self.meta.next_change
        };
        let i = *index;
        *index = i.saturating_add(1);
        self.derive_lookahead()?;
        self.save_meta()?;
        let chain_key = self.account.derive_child(HARDENED | chain)?;
        let pk: PublicKey = chain_key.derive_child(HARDENED | i)?.public_key();
        Ok(pubkey_hash(&pk))
    }

    /// A fresh receiving address.
    pub fn new_address(&mut self) -> Result<Address> {
        let pkh = self.next_key(0)?;
        Ok(Address::p2pkh(self.network, pkh))
    }

    /// Whether `script` pays one of the wallet's change keys (chain 1).
    pub fn is_change(&self, script: &Script) -> bool {
        script
            .as_p2pkh()
            .and_then(|h| self.keys.get(&h))
            .is_some_and(|k| k.chain == 1)
    }

    pub fn is_mine(&self, script: &Script) -> bool {
        script
            .as_p2pkh()
            .is_some_and(|h| self.keys.contains_key(&h))
    }

    /// Marks a key used (found on chain) so the lookahead moves past it.
    fn mark_used(&mut self, pkh: &Hash256) {
        let Some(info) = self.keys.get(pkh) else {
            return;
        };
        let (chain, index) = (info.chain, info.index);
        let next = if chain == 0 {
            &mut self.meta.next_receive
        } else {
            &mut self.meta.next_change
        };
        if index >= *next {
            *next = index.saturating_add(1);
            // Best effort: the chain is the source of truth for coins.
            let _ = self.derive_lookahead();
            let _ = self.save_meta();
        }
    }

    /// Follows the active chain.
    pub fn apply(&mut self, event: &ChainEvent) {
        match event {
            ChainEvent::Connected { block, height, .. } => self.connect(block, *height),
            ChainEvent::Disconnected { block, height } => self.disconnect(block, *height),
        }
    }

    fn connect(&mut self, block: &Block, height: u64) {
        let hash = block.hash();
        for tx in &block.txs {
            let txid = tx.txid();
            let mut debit = Amount::ZERO;
            let mut touched = false;
            for input in &tx.inputs {
                if let Some(coin) = self.coins.remove(&input.prevout) {
                    debit = debit.checked_add(coin.output.value).unwrap_or(Amount::MAX);
                    self.spent.insert(input.prevout, coin);
                    touched = true;
                }
            }
            for (vout, out) in tx.outputs.iter().enumerate() {
                if let Some(pkh) = out.lock.as_p2pkh().filter(|h| self.keys.contains_key(h)) {
                    self.mark_used(&pkh);
                    let outpoint = OutPoint::new(txid, vout as u32);
                    self.coins.insert(
                        outpoint,
                        WalletCoin {
                            outpoint,
                            output: out.clone(),
                            height,
                            is_coinbase: tx.is_coinbase(),
                        },
                    );
                    touched = true;
                }
            }
            if touched {
                self.history.push(WalletTx {
                    tx: tx.clone(),
                    txid,
                    block: hash,
                    height,
                    time: block.header.time,
                    debit,
                });
            }
        }
    }

    fn disconnect(&mut self, block: &Block, height: u64) {
        for tx in block.txs.iter().rev() {
            let txid = tx.txid();
            for vout in 0..tx.outputs.len() {
                self.coins.remove(&OutPoint::new(txid, vout as u32));
            }
            for input in &tx.inputs {
                if let Some(coin) = self.spent.remove(&input.prevout) {
                    self.coins.insert(input.prevout, coin);
                }
            }
        }
        self.history.retain(|t| t.height != height);
    }

    fn is_mature(&self, coin: &WalletCoin, tip_height: u64, maturity: u64) -> bool {
        !coin.is_coinbase || tip_height.saturating_add(1).saturating_sub(coin.height) >= maturity
    }

    /// Balances against the tip and the mempool.
    pub fn balances(&self, tip_height: u64, maturity: u64, mempool: &Mempool) -> Balances {
        let mut b = Balances::default();
        for coin in self.coins.values() {
            if mempool.spender(&coin.outpoint).is_some() {
                continue;
            }
            let slot = if self.is_mature(coin, tip_height, maturity) {
                &mut b.trusted
            } else {
                &mut b.immature
            };
            *slot = slot.checked_add(coin.output.value).unwrap_or(Amount::MAX);
        }
        for entry in mempool.entries() {
            let ours = entry.spent.iter().all(|o| self.is_mine(&o.lock)) && !entry.spent.is_empty();
            for (vout, out) in entry.tx.outputs.iter().enumerate() {
                if !self.is_mine(&out.lock)
                    || mempool
                        .spender(&OutPoint::new(entry.txid, vout as u32))
                        .is_some()
                {
                    continue;
                }
                let slot = if ours {
                    &mut b.trusted
                } else {
                    &mut b.untrusted_pending
                };
                *slot = slot.checked_add(out.value).unwrap_or(Amount::MAX);
            }
        }
        b
    }

    /// Confirmed coins (for `listunspent`).
    pub fn coins(&self) -> impl Iterator<Item = &WalletCoin> {
        self.coins.values()
    }

    /// Confirmed wallet transactions, oldest first.
    pub fn history(&self) -> &[WalletTx] {
        &self.history
    }

    /// Coins spendable now: mature, unspent by the mempool, plus unconfirmed
    /// change of the wallet's own pool transactions.
    fn spendable(
        &self,
        tip_height: u64,
        maturity: u64,
        mempool: &Mempool,
    ) -> Vec<(OutPoint, TxOut)> {
        let mut out: Vec<(OutPoint, TxOut)> = self
            .coins
            .values()
            .filter(|c| {
                self.is_mature(c, tip_height, maturity) && mempool.spender(&c.outpoint).is_none()
            })
            .map(|c| (c.outpoint, c.output.clone()))
            .collect();
        for entry in mempool.entries() {
            let ours = !entry.spent.is_empty() && entry.spent.iter().all(|o| self.is_mine(&o.lock));
            if !ours {
                continue;
            }
            for (vout, o) in entry.tx.outputs.iter().enumerate() {
                let op = OutPoint::new(entry.txid, vout as u32);
                if self.is_mine(&o.lock) && mempool.spender(&op).is_none() {
                    out.push((op, o.clone()));
                }
            }
        }
        out
    }

    /// Builds and signs a payment of `amount` to `to` at `fee_rate` (units
    /// per 1000 bytes), with change to a new change address. Largest coins
    /// first, so few inputs are needed.
    pub fn create_payment(
        &mut self,
        to: &Address,
        amount: Amount,
        fee_rate: u64,
        tip_height: u64,
        maturity: u64,
        mempool: &Mempool,
    ) -> Result<Transaction> {
        let outputs = vec![TxOut {
            value: amount,
            lock: to.lock_script(),
        }];
        let spend = Spend {
            fee_rate,
            tip_height,
            maturity,
            mempool,
            locked: &|_| false,
        };
        self.create_transaction(outputs, 0, |_| None, spend)
    }

    /// Builds and signs a transaction paying `outputs` (their sum must be
    /// positive), with change to a new change address. `payload` makes the
    /// transaction's payload from its inputs (special transactions sign
    /// over them) and adds at most `payload_size` bytes. Largest coins
    /// first, skipping `spend.locked` ones (masternode collaterals).
    pub fn create_transaction(
        &mut self,
        payment: Vec<TxOut>,
        payload_size: usize,
        payload: impl FnOnce(&[TxIn]) -> Option<Payload>,
        spend: Spend<'_>,
    ) -> Result<Transaction> {
        let Spend {
            fee_rate,
            tip_height,
            maturity,
            mempool,
            locked,
        } = spend;
        let amount = Amount::checked_sum(payment.iter().map(|o| o.value))
            .map_err(|_| WalletError::InvalidAmount)?;
        if amount == Amount::ZERO {
            return Err(WalletError::InvalidAmount);
        }
        let extra_fee = Amount::from_units((payload_size as u64).saturating_mul(fee_rate) / 1000)
            .map_err(|_| WalletError::InvalidAmount)?;
        let estimate = |inputs: usize, outputs: usize| {
            estimate_fee(inputs, outputs, fee_rate)
                .checked_add(extra_fee)
                .unwrap_or(Amount::MAX)
        };
        let n_out = payment.len().saturating_add(1);
        let mut candidates = self.spendable(tip_height, maturity, mempool);
        candidates.retain(|(op, _)| !locked(op));
        candidates.sort_by(|a, b| b.1.value.cmp(&a.1.value).then(a.0.cmp(&b.0)));
        let available =
            Amount::checked_sum(candidates.iter().map(|c| c.1.value)).unwrap_or(Amount::MAX);

        let mut selected: Vec<(OutPoint, TxOut)> = Vec::new();
        let mut total = Amount::ZERO;
        for c in candidates {
            total = total
                .checked_add(c.1.value)
                .map_err(|_| WalletError::InvalidAmount)?;
            selected.push(c);
            let fee = estimate(selected.len(), n_out);
            if amount.checked_add(fee).is_ok_and(|need| total >= need) {
                break;
            }
        }
        let fee = estimate(selected.len(), n_out);
        let needed = amount
            .checked_add(fee)
            .map_err(|_| WalletError::InvalidAmount)?;
        if total < needed {
            return Err(WalletError::InsufficientFunds { available, needed });
        }
        let mut outputs = payment;
        let change = total
            .checked_sub(needed)
            .map_err(|_| WalletError::InvalidAmount)?;
        if change.units() >= DUST {
            let pkh = self.next_key(1)?;
            outputs.push(TxOut {
                value: change,
                lock: Script::p2pkh(&pkh),
            });
        }
        let inputs: Vec<TxIn> = selected
            .iter()
            .map(|(op, _)| TxIn {
                prevout: *op,
                unlock: Script::default(),
                sequence: SEQUENCE_FINAL,
            })
            .collect();
        let payload = payload(&inputs);
        let mut tx = Transaction {
            version: 1,
            inputs,
            outputs,
            lock_time: 0,
            payload,
        };
        let spent: Vec<TxOut> = selected.into_iter().map(|(_, o)| o).collect();
        rusty_vm::signer::sign_p2pkh(&mut tx, &spent, |pkh| {
            self.keys.get(pkh).map(|k| k.secret.clone())
        })
        .map_err(|e| WalletError::Signing(e.to_string()))?;
        Ok(tx)
    }

    /// The secp256k1 key of the wallet's EVM account, derived from the
    /// wallet's seed (hardened chain 2 of the account, hashed into a
    /// secp256k1 scalar): the same mnemonic gives the same account, and its
    /// transactions are ordinary Ethereum ones that every tool can read.
    pub fn evm_key(&self) -> Result<rusty_crypto::eth::EthKey> {
        let child = self.account.derive_child(HARDENED | EVM_CHAIN)?;
        // A hash is a valid scalar but with probability ~2^-128 of being
        // zero or above the order; the counter moves past such a value.
        for counter in 0u32.. {
            let mut input = b"rusty-coin wallet EVM account v1".to_vec();
            input.extend_from_slice(child.secret_bytes());
            input.extend_from_slice(&counter.to_le_bytes());
            let scalar = rusty_crypto::eth::keccak256(&input);
            if let Ok(key) = rusty_crypto::eth::EthKey::from_bytes(&scalar) {
                return Ok(key);
            }
        }
        Err(WalletError::Signing("no EVM key could be derived".into()))
    }

    /// The signing key for a public key hash (tests and tools).
    pub fn key_for(&self, pkh: &Hash256) -> Option<SecretKey> {
        self.keys.get(pkh).map(|k| k.secret.clone())
    }
}

/// Where a new transaction's coins come from: the fee rate, the chain
/// position for maturity, the mempool (coins it spends are taken) and the
/// coins never to spend.
pub struct Spend<'a> {
    pub fee_rate: u64,
    pub tip_height: u64,
    pub maturity: u64,
    pub mempool: &'a Mempool,
    pub locked: &'a dyn Fn(&OutPoint) -> bool,
}

impl std::fmt::Debug for Spend<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spend")
            .field("fee_rate", &self.fee_rate)
            .field("tip_height", &self.tip_height)
            .finish_non_exhaustive()
    }
}

/// Encoded size of a P2PKH transaction with `inputs` inputs and `outputs`
/// outputs: version 4, counts 1+1, input 36+1+98+4, output 8+1+37, lock
/// time 8, payload tag 1.
pub fn p2pkh_tx_size(inputs: usize, outputs: usize) -> usize {
    let per_in = 36usize + 1 + 98 + 4;
    let per_out = 8usize + 1 + 37;
    4usize
        .saturating_add(2)
        .saturating_add(inputs.saturating_mul(per_in))
        .saturating_add(outputs.saturating_mul(per_out))
        .saturating_add(9)
}

fn estimate_fee(inputs: usize, outputs: usize, fee_rate: u64) -> Amount {
    let size = p2pkh_tx_size(inputs, outputs) as u128;
    let fee = u128::from(fee_rate).saturating_mul(size).div_ceil(1000);
    Amount::from_units(u64::try_from(fee).unwrap_or(u64::MAX)).unwrap_or(Amount::MAX)
}

#[cfg(test)]
mod tests {
    use rusty_shared_types::Encode;

    use super::*;
    use crate::test_utils::{memory_state, Key, NOW};

    #[test]
    fn size_estimate_matches_signed_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = memory_state(Some(dir.path()));
        let addr = s.wallet_mut().unwrap().new_address().unwrap();
        s.generate(14, &addr, u64::MAX, NOW).unwrap();
        let to = Key::new(9).address;
        // Two coins are needed for 60 RSC: a 2-input, 2-output transaction.
        let (wallet, mempool) = s.wallet_and_mempool();
        let tx = wallet
            .unwrap()
            .create_payment(&to, Amount::from_coins(60).unwrap(), 2_000, 14, 10, mempool)
            .unwrap();
        assert_eq!(tx.inputs.len(), 2);
        assert_eq!(tx.outputs.len(), 2);
        assert_eq!(tx.encode().len(), p2pkh_tx_size(2, 2));
        s.accept_transaction(tx, NOW)
            .expect("the wallet's transaction is valid");
    }

    #[test]
    fn balances_follow_maturity_and_mempool() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = memory_state(Some(dir.path()));
        let addr = s.wallet_mut().unwrap().new_address().unwrap();
        s.generate(12, &addr, u64::MAX, NOW).unwrap();
        let b = s.wallet().unwrap().balances(12, 10, s.mempool());
        // Heights 1..=3 are spendable in block 13.
        // Each coinbase is the subsidy less the treasury's 10%: 45 RSC.
        assert_eq!(b.trusted, Amount::from_coins(135).unwrap());
        assert_eq!(b.immature, Amount::from_coins(405).unwrap());
        let to = Key::new(9).address;
        s.send_to_address(&to, Amount::from_coins(1).unwrap(), 2_000, NOW)
            .unwrap();
        let after = s.wallet().unwrap().balances(12, 10, s.mempool());
        assert!(after.trusted < Amount::from_coins(134).unwrap());
        assert!(after.trusted > Amount::from_units(133 * COIN_UNITS + 99_000_000).unwrap());
        // Too much: a specific error, nothing changes.
        let err = s.send_to_address(&to, Amount::from_coins(1_000).unwrap(), 2_000, NOW);
        assert!(matches!(
            err,
            Err(crate::state::SendError::Wallet(
                WalletError::InsufficientFunds { .. }
            ))
        ));
        assert_eq!(s.mempool().len(), 1);
    }

    const COIN_UNITS: u64 = rusty_shared_types::COIN;

    #[test]
    fn reopening_with_the_wrong_passphrase_fails() {
        let dir = tempfile::tempdir().unwrap();
        let kdf = KdfParams::insecure_fast_for_tests();
        let w = Wallet::open_or_create(dir.path(), Network::Dev, "right", true, kdf)
            .unwrap()
            .unwrap();
        let first = w.keys.len();
        drop(w);
        assert!(matches!(
            Wallet::open_or_create(dir.path(), Network::Dev, "wrong", false, kdf),
            Err(WalletError::Crypto(
                rusty_crypto::CryptoError::WrongPassphrase
            ))
        ));
        let again = Wallet::open_or_create(dir.path(), Network::Dev, "right", false, kdf)
            .unwrap()
            .unwrap();
        assert_eq!(again.keys.len(), first);
        // No keystore and no permission to create: no wallet.
        let empty = tempfile::tempdir().unwrap();
        assert!(
            Wallet::open_or_create(empty.path(), Network::Dev, "", false, kdf)
                .unwrap()
                .is_none()
        );
    }
}
