//! Helpers for tests (unit tests, and other crates' and integration tests
//! through the `test-utils` feature): a node state on the in-memory backend
//! and a test-held key.

use rusty_crypto::{
    ed25519::{pubkey_hash, SecretKey},
    keystore::KdfParams,
};
use rusty_shared_types::{
    transaction::SEQUENCE_FINAL, Address, Network, OutPoint, Transaction, TxIn, TxOut,
};
use rusty_storage::Database;

use crate::{
    chain::Chain,
    mempool::Mempool,
    state::NodeState,
    tables::{SCHEMA_VERSION, TABLES},
    wallet::Wallet,
};

/// A far-future clock: no block is ever "too new" in unit tests.
pub const NOW: u64 = 4_000_000_000;

pub fn memory_chain() -> Chain {
    let db = Database::in_memory(TABLES, SCHEMA_VERSION).expect("in-memory db");
    Chain::open(db, Network::Dev.params(), NOW)
        .expect("chain")
        .0
}

/// Dev chain + mempool on the in-memory backend, with a wallet in `dir`
/// when given.
pub fn memory_state(wallet_dir: Option<&std::path::Path>) -> NodeState {
    let wallet = wallet_dir.map(|d| {
        Wallet::open_or_create(
            d,
            Network::Dev,
            "",
            true,
            KdfParams::insecure_fast_for_tests(),
        )
        .expect("wallet")
        .expect("created")
    });
    NodeState::new(memory_chain(), Mempool::new(1 << 20, 1_000), wallet)
}

#[derive(Debug)]
pub struct Key {
    pub secret: SecretKey,
    pub address: Address,
}

impl Key {
    pub fn new(seed: u8) -> Key {
        let secret = SecretKey::from_bytes([seed; 32]);
        let address = Address::p2pkh(Network::Dev, pubkey_hash(&secret.public_key()));
        Key { secret, address }
    }

    /// A transaction spending one coin, signed with this key. It signs
    /// directly rather than through the wallet signer (which refuses a key
    /// that does not match the output), so tests can also forge wrong signers.
    pub fn spend(&self, prevout: OutPoint, spent: &TxOut, outputs: Vec<TxOut>) -> Transaction {
        sign_spend(&self.secret, prevout, spent, outputs, None)
    }
}

/// A transaction spending the one coin `prevout` (which is `spent`) into
/// `outputs`, with `payload`, signed by `secret` (pay-to-pubkey-hash).
pub fn sign_spend(
    secret: &SecretKey,
    prevout: OutPoint,
    spent: &TxOut,
    outputs: Vec<TxOut>,
    payload: Option<rusty_shared_types::Payload>,
) -> Transaction {
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn {
            prevout,
            unlock: Default::default(),
            sequence: SEQUENCE_FINAL,
        }],
        outputs,
        lock_time: 0,
        payload,
    };
    let sig = {
        let cache = rusty_vm::SighashCache::new(&tx, std::slice::from_ref(spent))
            .expect("one spent output per input");
        rusty_vm::signer::sign_input(&cache, 0, rusty_vm::SighashType::default(), secret)
            .expect("signs")
    };
    tx.inputs[0].unlock = rusty_vm::templates::p2pkh_unlock(&sig, &secret.public_key());
    tx
}

/// The coinbase output of the active block at `height`.
pub fn coinbase_at(state: &NodeState, height: u64) -> (OutPoint, TxOut) {
    let hash = state.chain().hash_at(height).expect("height");
    let block = state.chain().block(&hash).expect("db").expect("block");
    (
        OutPoint::new(block.txs[0].txid(), 0),
        block.txs[0].outputs[0].clone(),
    )
}

impl crate::state::NodeState {
    /// Mines `count` blocks paying `address` in the calling thread (unit
    /// tests; a node grinds off its chain thread, see `rusty-node`'s
    /// `ChainHandle::generate`). Gives up on a block after `max_tries`
    /// nonces.
    pub fn generate(
        &mut self,
        count: u64,
        address: &rusty_shared_types::Address,
        max_tries: u64,
        now: u64,
    ) -> Result<Vec<rusty_shared_types::Hash256>, crate::chain::ChainError> {
        let mut hashes = Vec::new();
        for _ in 0..count {
            let template = self.block_template(&address.lock_script(), now, Vec::new());
            let mut block = template.block;
            if crate::pow::solve(&mut block.header, &template.target, max_tries).is_none() {
                break;
            }
            let hash = block.hash();
            self.submit_block(block, now)?;
            hashes.push(hash);
        }
        Ok(hashes)
    }
}

/// A dev state with a wallet in `dir`, mature coins and `n` masternodes
/// registered from that wallet (which so holds their owner and voting
/// keys); returns the state, the registrations, the operator keys and the
/// wallet's mining address.
pub fn with_masternodes(
    dir: &std::path::Path,
    n: usize,
) -> (
    NodeState,
    Vec<rusty_shared_types::Hash256>,
    Vec<rusty_crypto::bls::SecretKey>,
    Address,
) {
    let mut s = memory_state(Some(dir));
    let addr = s
        .wallet_mut()
        .expect("wallet")
        .new_address()
        .expect("address");
    s.generate(12 + n as u64, &addr, u64::MAX, NOW)
        .expect("mined");
    let mut keys = Vec::new();
    let mut pros = Vec::new();
    for i in 0..n {
        let key = rusty_crypto::bls::SecretKey::from_bytes(&[i as u8 + 1; 32]).expect("bls key");
        let reg = crate::state::Registration {
            operator_key: key.public_key().to_bytes(),
            service: format!("/ip4/127.0.0.1/tcp/{}/p2p/12D3KooWtest{i}", 30_000 + i),
            operator_reward_bps: 0,
            payout: None,
        };
        let r = s.register_masternode(reg, 2_000, NOW).expect("registered");
        pros.push(r.pro_tx_hash);
        keys.push(key);
    }
    s.generate(1, &addr, u64::MAX, NOW).expect("mined");
    assert_eq!(s.chain().mn().valid_count(), n);
    (s, pros, keys, addr)
}
