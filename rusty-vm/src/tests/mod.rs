//! End-to-end tests: real transactions signed with real keys, verified through
//! [`verify_input`] with both signature checkers.
//!
//! Every verification in these modules goes through [`Spend::verify`], which also checks
//! that the deferred checker collects exactly the signatures the immediate checker
//! verifies and that both give the same verdict.

#![allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]

use proptest::{collection::vec, prelude::*};
use rusty_crypto::{pubkey_hash, PublicKey, SecretKey, Signature};
use rusty_shared_types::{
    arbitrary,
    script::{op, MAX_SCRIPT_SIZE},
    transaction::{SEQUENCE_FINAL, SEQUENCE_LOCKTIME_DISABLE_FLAG},
    Amount, Hash256, OutPoint, Script, Transaction, TxIn, TxOut,
};

use crate::{templates::HTLC_SECRET_SIZE, *};

mod htlc;
mod multisig;
mod properties;
mod script;
mod signing;

fn key(n: u8) -> SecretKey {
    SecretKey::from_bytes([n; 32])
}

/// `OP_n` for 1..=16 (the opcode table names only `OP_1` and `OP_16`).
const fn op_n(n: u8) -> u8 {
    op::OP_1 + n - 1
}

fn pkh(key: &SecretKey) -> Hash256 {
    pubkey_hash(&key.public_key())
}

fn coins(n: u64) -> Amount {
    Amount::from_coins(n).unwrap()
}

/// Delegates to [`ImmediateChecker`] and records every check it was asked for.
#[derive(Default)]
struct Recording {
    checked: Vec<(PublicKey, [u8; 32], Signature)>,
}

impl SignatureChecker for Recording {
    fn check(&mut self, pk: &PublicKey, msg: &Hash256, sig: &Signature) -> bool {
        self.checked.push((*pk, msg.0, *sig));
        ImmediateChecker.check(pk, msg, sig)
    }
}

/// A transaction spending one output per lock script, with two outputs of its own.
#[derive(Debug, Clone)]
struct Spend {
    tx: Transaction,
    spent: Vec<TxOut>,
}

impl Spend {
    fn new(locks: Vec<Script>) -> Self {
        let inputs = (0..locks.len())
            .map(|i| TxIn {
                prevout: OutPoint::new(Hash256([i as u8 + 1; 32]), i as u32),
                unlock: Script::default(),
                sequence: SEQUENCE_FINAL,
            })
            .collect();
        let spent = locks
            .into_iter()
            .map(|lock| TxOut {
                value: coins(10),
                lock,
            })
            .collect();
        let tx = Transaction {
            version: 1,
            inputs,
            outputs: vec![
                TxOut {
                    value: coins(6),
                    lock: Script::p2pkh(&Hash256([0xa0; 32])),
                },
                TxOut {
                    value: coins(3),
                    lock: Script::p2pkh(&Hash256([0xa1; 32])),
                },
            ],
            lock_time: 0,
            payload: None,
        };
        Spend { tx, spent }
    }

    fn raw(unlock: Vec<u8>, lock: Vec<u8>) -> Self {
        let mut s = Spend::new(vec![Script::new(lock)]);
        s.tx.inputs[0].unlock = Script::new(unlock);
        s
    }

    fn sign(&self, input: usize, ty: SighashType, key: &SecretKey) -> Vec<u8> {
        let cache = SighashCache::new(&self.tx, &self.spent).unwrap();
        sign_input(&cache, input, ty, key).unwrap()
    }

    fn unlock(&mut self, input: usize, unlock: Script) -> &mut Self {
        self.tx.inputs[input].unlock = unlock;
        self
    }

    /// Verifies `input` with the immediate checker and with the deferred one plus a
    /// batch verification, asserts both agree, and returns the immediate verdict.
    fn verify(&self, input: usize) -> Result<()> {
        let cache = SighashCache::new(&self.tx, &self.spent).unwrap();
        let ctx = InputContext::new(&cache, input).unwrap();
        let mut recording = Recording::default();
        let immediate = verify_input(&ctx, &mut recording);
        let mut deferred = DeferredChecker::new();
        let lazy = verify_input(&ctx, &mut deferred);
        assert!(deferred.items().starts_with(&recording.checked));
        let batch_ok = deferred.clone().verify(1).is_ok();
        match &immediate {
            Ok(()) => {
                assert_eq!(lazy, Ok(()));
                assert_eq!(deferred.items(), &recording.checked[..]);
                assert!(batch_ok);
            }
            // A deferred run only learns about a bad signature from the batch.
            Err(ScriptError::SignatureCheckFailed) => assert!(lazy.is_err() || !batch_ok),
            // Every check before the failure passed in both runs, so they failed alike.
            Err(_) => assert_eq!(lazy, immediate),
        }
        immediate
    }

    fn verify_all(&self) -> Result<()> {
        (0..self.tx.inputs.len()).try_for_each(|i| self.verify(i))
    }
}

fn p2pkh_spend(keys: &[SecretKey]) -> Spend {
    let locks = keys.iter().map(|k| Script::p2pkh(&pkh(k))).collect();
    let mut s = Spend::new(locks);
    sign_p2pkh(&mut s.tx, &s.spent, |h| {
        keys.iter().find(|k| pkh(k) == *h).cloned()
    })
    .unwrap();
    s
}

fn run(unlock: Vec<u8>, lock: Vec<u8>) -> Result<()> {
    Spend::raw(unlock, lock).verify(0)
}
