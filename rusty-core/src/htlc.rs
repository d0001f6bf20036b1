//! Spending hash-time-locked contracts (the template is
//! `rusty_vm::templates::htlc`): the redeem with the secret, the refund
//! after the lock time, and reading which of the two a spend was. The
//! bridge's chain adapter uses these through the node's `htlc_*` RPC
//! methods; here they are plain functions over one output, so the rules are
//! tested without a node.

use rusty_crypto::{pubkey_hash, SecretKey};
use rusty_shared_types::{Amount, Hash256, OutPoint, Script, Transaction, TxIn, TxOut};
use rusty_vm::{
    htlc_claim_unlock, htlc_refund_unlock,
    instruction::instructions,
    sign_input,
    templates::{parse_htlc, HTLC_SECRET_SIZE},
    HtlcParams, Instruction, SighashCache, SighashType, Timeout,
};
use thiserror::Error;

/// Encoded size of an HTLC spend with one P2PKH output, at most: the
/// redeem's unlock is a 64-byte signature, a 32-byte key, the 32-byte secret
/// and the branch selector, each with its push byte.
pub const HTLC_SPEND_SIZE: usize = 4 + 1 + (36 + 3 + 131 + 4) + 1 + (8 + 1 + 37) + 8 + 1;

/// Why an HTLC spend could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HtlcError {
    #[error("the output is not an HTLC")]
    NotHtlc,
    #[error("the HTLC's refund path uses a relative lock; only absolute locks are spent here")]
    RelativeLock,
    #[error("the secret does not match the HTLC's hash")]
    WrongSecret,
    #[error("the key given is not the HTLC's {0} key")]
    WrongKey(&'static str),
    #[error("the HTLC holds {value}, not enough for the fee of {fee}")]
    BelowFee { value: Amount, fee: Amount },
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Which branch of an HTLC a transaction spends it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HtlcPath {
    /// The recipient, with the 32-byte secret.
    Redeem([u8; HTLC_SECRET_SIZE]),
    /// The refund key, after the lock time.
    Refund,
}

/// The HTLC parameters of `out`, with an absolute (height or time) lock.
pub fn htlc_of(out: &TxOut) -> Result<(HtlcParams, u64), HtlcError> {
    let params = parse_htlc(&out.lock).ok_or(HtlcError::NotHtlc)?;
    match params.timeout {
        Timeout::Absolute(t) => Ok((params, t)),
        Timeout::RelativeBlocks(_) => Err(HtlcError::RelativeLock),
    }
}

/// A signed transaction spending the HTLC `out` at `outpoint` by `path` with
/// `key`, paying everything but the fee (`fee_rate` units per 1000 bytes)
/// to `to_pkh`. A refund sets the lock time to the HTLC's and a non-final
/// sequence, so it is valid from the first block after the lock; it can be
/// made (and saved) long before that.
pub fn spend_htlc(
    outpoint: OutPoint,
    out: &TxOut,
    path: HtlcPath,
    key: &SecretKey,
    to_pkh: &Hash256,
    fee_rate: u64,
) -> Result<Transaction, HtlcError> {
    let (params, lock) = htlc_of(out)?;
    let key_hash = pubkey_hash(&key.public_key());
    let (lock_time, sequence) = match path {
        HtlcPath::Redeem(secret) => {
            if params.hash_kind.hash(&secret) != params.hash {
                return Err(HtlcError::WrongSecret);
            }
            if key_hash != params.recipient_pkh {
                return Err(HtlcError::WrongKey("recipient"));
            }
            (0, rusty_shared_types::transaction::SEQUENCE_FINAL)
        }
        HtlcPath::Refund => {
            if key_hash != params.refund_pkh {
                return Err(HtlcError::WrongKey("refund"));
            }
            (lock, rusty_shared_types::transaction::SEQUENCE_FINAL - 1)
        }
    };
    let fee = fee_rate
        .saturating_mul(HTLC_SPEND_SIZE as u64)
        .div_ceil(1000);
    let fee = Amount::from_units(fee).map_err(|_| HtlcError::BelowFee {
        value: out.value,
        fee: Amount::MAX,
    })?;
    let value = out
        .value
        .checked_sub(fee)
        .ok()
        .filter(|v| *v > Amount::ZERO)
        .ok_or(HtlcError::BelowFee {
            value: out.value,
            fee,
        })?;
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn {
            prevout: outpoint,
            unlock: Script::default(),
            sequence,
        }],
        outputs: vec![TxOut {
            value,
            lock: Script::p2pkh(to_pkh),
        }],
        lock_time,
        payload: None,
    };
    let spent = [out.clone()];
    let cache = SighashCache::new(&tx, &spent).map_err(|e| HtlcError::Signing(e.to_string()))?;
    let sig = sign_input(&cache, 0, SighashType::Default, key)
        .map_err(|e| HtlcError::Signing(e.to_string()))?;
    let pk = key.public_key();
    tx.inputs[0].unlock = match path {
        HtlcPath::Redeem(secret) => htlc_claim_unlock(&sig, &pk, &secret),
        HtlcPath::Refund => htlc_refund_unlock(&sig, &pk),
    };
    Ok(tx)
}

/// Which path `unlock` (an input's unlock script spending an HTLC) took,
/// with the secret of a redeem. `None` for anything else: the consensus
/// rules already decided the spend was valid, so only its shape is read.
pub fn read_htlc_unlock(unlock: &Script) -> Option<HtlcPath> {
    let ins: Vec<Instruction<'_>> = instructions(unlock.as_bytes())
        .collect::<Result<_, _>>()
        .ok()?;
    use rusty_shared_types::script::op::OP_1;
    match ins.as_slice() {
        [Instruction::Push(_), Instruction::Push(_), Instruction::Push(secret), Instruction::Op(OP_1)] => {
            Some(HtlcPath::Redeem((*secret).try_into().ok()?))
        }
        [Instruction::Push(_), Instruction::Push(_), Instruction::Push([])] => {
            Some(HtlcPath::Refund)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use rusty_shared_types::{Encode, COIN};
    use rusty_vm::{verify_input, HashKind, ImmediateChecker, InputContext};

    use super::*;

    const SECRET: [u8; 32] = [7; 32];
    const LOCK: u64 = 140;

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_bytes([seed; 32])
    }

    fn htlc_out(kind: HashKind) -> TxOut {
        let params = HtlcParams {
            hash_kind: kind,
            hash: kind.hash(&SECRET),
            recipient_pkh: pubkey_hash(&key(1).public_key()),
            refund_pkh: pubkey_hash(&key(2).public_key()),
            timeout: Timeout::Absolute(LOCK),
        };
        TxOut {
            value: Amount::from_units(2 * COIN).expect("amount"),
            lock: rusty_vm::htlc(&params).expect("script"),
        }
    }

    fn verifies(tx: &Transaction, out: &TxOut) -> bool {
        let spent = [out.clone()];
        let cache = SighashCache::new(tx, &spent).expect("cache");
        let ctx = InputContext::new(&cache, 0).expect("context");
        verify_input(&ctx, &mut ImmediateChecker).is_ok()
    }

    const OP: OutPoint = OutPoint {
        txid: Hash256([3; 32]),
        vout: 1,
    };

    #[test]
    fn redeem_and_refund_verify_and_read_back() {
        for kind in [HashKind::Sha256, HashKind::Blake3] {
            let out = htlc_out(kind);
            let to = Hash256([9; 32]);
            let redeem =
                spend_htlc(OP, &out, HtlcPath::Redeem(SECRET), &key(1), &to, 1000).expect("redeem");
            assert!(verifies(&redeem, &out));
            assert!(redeem.encode().len() <= HTLC_SPEND_SIZE);
            assert_eq!(
                read_htlc_unlock(&redeem.inputs[0].unlock),
                Some(HtlcPath::Redeem(SECRET))
            );
            let refund =
                spend_htlc(OP, &out, HtlcPath::Refund, &key(2), &to, 1000).expect("refund");
            assert!(verifies(&refund, &out));
            assert_eq!(refund.lock_time, LOCK);
            assert_eq!(
                read_htlc_unlock(&refund.inputs[0].unlock),
                Some(HtlcPath::Refund)
            );
            // Value out is value in less the fee, never more.
            assert!(redeem.outputs[0].value < out.value);
            assert_eq!(redeem.outputs[0].lock, Script::p2pkh(&to));
        }
    }

    #[test]
    fn wrong_secret_key_or_output_is_refused() {
        let out = htlc_out(HashKind::Sha256);
        let to = Hash256([9; 32]);
        assert_eq!(
            spend_htlc(OP, &out, HtlcPath::Redeem([8; 32]), &key(1), &to, 1000),
            Err(HtlcError::WrongSecret)
        );
        assert_eq!(
            spend_htlc(OP, &out, HtlcPath::Redeem(SECRET), &key(2), &to, 1000),
            Err(HtlcError::WrongKey("recipient"))
        );
        assert_eq!(
            spend_htlc(OP, &out, HtlcPath::Refund, &key(1), &to, 1000),
            Err(HtlcError::WrongKey("refund"))
        );
        let p2pkh = TxOut {
            value: out.value,
            lock: Script::p2pkh(&to),
        };
        assert_eq!(
            spend_htlc(OP, &p2pkh, HtlcPath::Refund, &key(2), &to, 1000),
            Err(HtlcError::NotHtlc)
        );
        let dust = TxOut {
            value: Amount::from_units(10).expect("amount"),
            ..out
        };
        assert!(matches!(
            spend_htlc(OP, &dust, HtlcPath::Refund, &key(2), &to, 1000),
            Err(HtlcError::BelowFee { .. })
        ));
    }

    #[test]
    fn other_unlocks_are_not_read_as_htlc_spends() {
        let p2pkh_unlock = rusty_vm::p2pkh_unlock(&[1; 64], &key(1).public_key());
        assert_eq!(read_htlc_unlock(&p2pkh_unlock), None);
        assert_eq!(read_htlc_unlock(&Script::new(vec![0xff, 0x4c])), None);
        // A 31-byte "secret" is no redeem.
        let short = rusty_vm::ScriptBuilder::new()
            .push_slice(&[1; 64])
            .push_slice(&[2; 32])
            .push_slice(&[3; 31])
            .push_int(1)
            .into_script();
        assert_eq!(read_htlc_unlock(&short), None);
    }
}
