//! The signature hash: what a transaction signature commits to.
//!
//! Modelled on BIP-341 (Taproot), with BLAKE3 keyed for [`Domain::Sighash`] instead of
//! tagged SHA-256. A signature is 64 bytes ([`SighashType::Default`], which signs
//! everything) or 65 bytes whose last byte is an explicit type: `0x01` ALL, `0x02`
//! NONE, `0x03` SINGLE, each optionally `| 0x80` ANYONECANPAY. Any other 65th byte,
//! including `0x00`, is non-canonical and invalid. `Default` and explicit `ALL` sign the
//! same fields but commit to different type bytes (`0x00` vs `0x01`), so nobody can turn
//! a valid 64-byte signature into a valid 65-byte one and change the wtxid.
//!
//! # The message
//!
//! [`SighashCache::new`] hashes, once per transaction, each of these lists with plain
//! BLAKE3 (what a field's bytes are is its canonical encoding):
//!
//! | sub-hash    | over, for every input/output in order                          |
//! |-------------|----------------------------------------------------------------|
//! | `prevouts`  | the input's outpoint (txid ‖ vout u32)                          |
//! | `amounts`   | the spent output's value (u64)                                 |
//! | `locks`     | the spent output's lock script (CompactSize length ‖ bytes)    |
//! | `sequences` | the input's sequence (u32)                                     |
//! | `outputs`   | each output (value ‖ lock script)                              |
//! | `payload`   | the payload option (`0`, or `1` ‖ payload encoding)            |
//!
//! [`SighashCache::sighash`] then hashes, under the `Sighash` domain key:
//!
//! 1. the type byte (`0x00` for `Default`), `version` (u32), `lock_time` (u64), `payload`;
//! 2. unless ANYONECANPAY: `prevouts`, `amounts`, `locks`, `sequences`;
//! 3. for ALL/`Default`: `outputs`; for SINGLE: BLAKE3 of the output at the input's
//!    index (an error if there is none); for NONE: nothing;
//! 4. with ANYONECANPAY: this input's outpoint, spent value, spent lock script and
//!    sequence;
//! 5. the input index (u64). Unlike BIP-341 this is committed with ANYONECANPAY too, so
//!    such a signature is bound to its position among the inputs.
//!
//! Unlock scripts are never hashed: a signature cannot commit to itself, and the txid
//! excludes them for the same reason. Committing to every spent amount and lock script
//! (not only this input's) lets an offline signer trust the fee it is shown.
//!
//! Each sub-hash is computed once, so signing or verifying all `n` inputs costs O(n)
//! hashing rather than the O(n²) of Bitcoin's legacy sighash.
#![deny(clippy::arithmetic_side_effects)]

use std::fmt;

use rusty_crypto::Signature;
use rusty_shared_types::{encoding::write_option, Domain, Encode, Hash256, Transaction, TxOut};

use crate::{Result, ScriptError};

/// Which parts of the transaction a signature commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SighashType {
    /// A 64-byte signature: commits to every input and output.
    #[default]
    Default,
    /// `0x01`: the same commitments as `Default`, written explicitly.
    All,
    /// `0x02`: every input, no output ("anyone may decide where the money goes").
    None,
    /// `0x03`: every input and only the output at this input's index.
    Single,
    /// `0x81`: only this input, every output (crowdfunding: others may add inputs).
    AllAnyoneCanPay,
    /// `0x82`: only this input, no output.
    NoneAnyoneCanPay,
    /// `0x83`: only this input and the output at its index.
    SingleAnyoneCanPay,
}

/// Which outputs a [`SighashType`] covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputsCommitted {
    All,
    None,
    Single,
}

impl SighashType {
    /// Every type, in the order of their cache slots.
    pub const ALL_TYPES: [SighashType; 7] = [
        SighashType::Default,
        SighashType::All,
        SighashType::None,
        SighashType::Single,
        SighashType::AllAnyoneCanPay,
        SighashType::NoneAnyoneCanPay,
        SighashType::SingleAnyoneCanPay,
    ];

    /// The byte committed to by the sighash and, except for `Default`, appended to the
    /// signature.
    pub const fn to_byte(self) -> u8 {
        match self {
            SighashType::Default => 0x00,
            SighashType::All => 0x01,
            SighashType::None => 0x02,
            SighashType::Single => 0x03,
            SighashType::AllAnyoneCanPay => 0x81,
            SighashType::NoneAnyoneCanPay => 0x82,
            SighashType::SingleAnyoneCanPay => 0x83,
        }
    }

    /// The type named by an explicit 65th signature byte. `0x00` is rejected: the
    /// default type is spelled by leaving the byte out.
    pub const fn from_byte(byte: u8) -> Option<SighashType> {
        Some(match byte {
            0x01 => SighashType::All,
            0x02 => SighashType::None,
            0x03 => SighashType::Single,
            0x81 => SighashType::AllAnyoneCanPay,
            0x82 => SighashType::NoneAnyoneCanPay,
            0x83 => SighashType::SingleAnyoneCanPay,
            _ => return None,
        })
    }

    /// Whether the signature covers only its own input.
    pub const fn anyone_can_pay(self) -> bool {
        matches!(
            self,
            SighashType::AllAnyoneCanPay
                | SighashType::NoneAnyoneCanPay
                | SighashType::SingleAnyoneCanPay
        )
    }

    const fn outputs(self) -> OutputsCommitted {
        match self {
            SighashType::Default | SighashType::All | SighashType::AllAnyoneCanPay => {
                OutputsCommitted::All
            }
            SighashType::None | SighashType::NoneAnyoneCanPay => OutputsCommitted::None,
            SighashType::Single | SighashType::SingleAnyoneCanPay => OutputsCommitted::Single,
        }
    }

    /// A dense index `0..7`, for per-type caches.
    pub(crate) const fn slot(self) -> usize {
        match self {
            SighashType::Default => 0,
            SighashType::All => 1,
            SighashType::None => 2,
            SighashType::Single => 3,
            SighashType::AllAnyoneCanPay => 4,
            SighashType::NoneAnyoneCanPay => 5,
            SighashType::SingleAnyoneCanPay => 6,
        }
    }
}

/// Splits a non-empty script signature into the Ed25519 signature and its sighash type:
/// 64 bytes is `Default`, 65 bytes needs a canonical type byte; anything else is
/// [`ScriptError::InvalidSignatureEncoding`].
pub fn parse_signature(sig: &[u8]) -> Result<(Signature, SighashType)> {
    let (bytes, ty) = match sig.len() {
        64 => (sig, SighashType::Default),
        65 => {
            let ty =
                SighashType::from_byte(sig[64]).ok_or(ScriptError::InvalidSignatureEncoding)?;
            (&sig[..64], ty)
        }
        _ => return Err(ScriptError::InvalidSignatureEncoding),
    };
    let mut out = [0u8; 64];
    out.copy_from_slice(bytes);
    Ok((Signature(out), ty))
}

/// Sub-hashes shared by every input's signature hash, computed once per transaction.
///
/// Borrows the transaction and the outputs its inputs spend; see the
/// [module documentation](self) for exactly what is hashed.
#[derive(Clone)]
pub struct SighashCache<'a> {
    tx: &'a Transaction,
    spent: &'a [TxOut],
    prevouts: [u8; 32],
    amounts: [u8; 32],
    locks: [u8; 32],
    sequences: [u8; 32],
    outputs: [u8; 32],
    payload: [u8; 32],
    /// Deriving the domain key costs a few compressions; clone a keyed hasher instead.
    keyed: blake3::Hasher,
}

impl<'a> SighashCache<'a> {
    /// Precomputes the sub-hashes of `tx`. `spent[i]` must be the output spent by
    /// `tx.inputs[i]`.
    pub fn new(tx: &'a Transaction, spent: &'a [TxOut]) -> Result<Self> {
        if spent.len() != tx.inputs.len() {
            return Err(ScriptError::SpentOutputsMismatch {
                inputs: tx.inputs.len(),
                spent: spent.len(),
            });
        }
        let mut scratch = Vec::with_capacity(64);
        let mut prevouts = blake3::Hasher::new();
        let mut sequences = blake3::Hasher::new();
        for input in &tx.inputs {
            update_encoded(&mut prevouts, &mut scratch, &input.prevout);
            sequences.update(&input.sequence.to_le_bytes());
        }
        let mut amounts = blake3::Hasher::new();
        let mut locks = blake3::Hasher::new();
        for out in spent {
            amounts.update(&out.value.units().to_le_bytes());
            update_encoded(&mut locks, &mut scratch, &out.lock);
        }
        let mut outputs = blake3::Hasher::new();
        for out in &tx.outputs {
            update_encoded(&mut outputs, &mut scratch, out);
        }
        scratch.clear();
        write_option(&mut scratch, &tx.payload);
        Ok(SighashCache {
            tx,
            spent,
            prevouts: *prevouts.finalize().as_bytes(),
            amounts: *amounts.finalize().as_bytes(),
            locks: *locks.finalize().as_bytes(),
            sequences: *sequences.finalize().as_bytes(),
            outputs: *outputs.finalize().as_bytes(),
            payload: *blake3::hash(&scratch).as_bytes(),
            keyed: Domain::Sighash.hasher(),
        })
    }

    /// The transaction being signed.
    pub fn tx(&self) -> &'a Transaction {
        self.tx
    }

    /// The outputs spent by the inputs, in input order.
    pub fn spent(&self) -> &'a [TxOut] {
        self.spent
    }

    /// The signature hash of input `input_index` under `ty`.
    pub fn sighash(&self, input_index: usize, ty: SighashType) -> Result<Hash256> {
        let (Some(input), Some(spent)) =
            (self.tx.inputs.get(input_index), self.spent.get(input_index))
        else {
            return Err(ScriptError::InputIndexOutOfRange {
                index: input_index,
                inputs: self.tx.inputs.len(),
            });
        };
        let mut h = self.keyed.clone();
        h.update(&[ty.to_byte()]);
        h.update(&self.tx.version.to_le_bytes());
        h.update(&self.tx.lock_time.to_le_bytes());
        h.update(&self.payload);
        if !ty.anyone_can_pay() {
            h.update(&self.prevouts);
            h.update(&self.amounts);
            h.update(&self.locks);
            h.update(&self.sequences);
        }
        match ty.outputs() {
            OutputsCommitted::All => {
                h.update(&self.outputs);
            }
            OutputsCommitted::None => {}
            OutputsCommitted::Single => {
                let out = self
                    .tx
                    .outputs
                    .get(input_index)
                    .ok_or(ScriptError::SighashSingleNoOutput { index: input_index })?;
                h.update(blake3::hash(&out.encode()).as_bytes());
            }
        }
        if ty.anyone_can_pay() {
            h.update(&input.prevout.encode());
            h.update(&spent.value.units().to_le_bytes());
            h.update(&spent.lock.encode());
            h.update(&input.sequence.to_le_bytes());
        }
        // `usize` is at most 64 bits on every supported target.
        h.update(&(input_index as u64).to_le_bytes());
        Ok(Hash256(*h.finalize().as_bytes()))
    }
}

/// Feeds the canonical encoding of `value` to `h`, reusing `scratch`.
fn update_encoded<T: Encode>(h: &mut blake3::Hasher, scratch: &mut Vec<u8>, value: &T) {
    scratch.clear();
    value.encode_to(scratch);
    h.update(scratch);
}

impl fmt::Debug for SighashCache<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SighashCache")
            .field("txid", &self.tx.txid())
            .field("inputs", &self.tx.inputs.len())
            .field("prevouts", &Hash256(self.prevouts))
            .field("amounts", &Hash256(self.amounts))
            .field("locks", &Hash256(self.locks))
            .field("sequences", &Hash256(self.sequences))
            .field("outputs", &Hash256(self.outputs))
            .field("payload", &Hash256(self.payload))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use rusty_shared_types::{Amount, CoinbasePayload, OutPoint, Payload, Script, TxIn};

    use super::{SighashType as T, *};

    fn sample() -> (Transaction, Vec<TxOut>) {
        let input = |n: u8| TxIn {
            prevout: OutPoint::new(Hash256([n; 32]), u32::from(n)),
            unlock: Script::new(vec![n]),
            sequence: 0xffff_fffe,
        };
        let output = |n: u64| TxOut {
            value: Amount::from_units(n * 1000).unwrap(),
            lock: Script::p2pkh(&Hash256([n as u8; 32])),
        };
        let tx = Transaction {
            version: 1,
            inputs: vec![input(1), input(2), input(3)],
            outputs: vec![output(1), output(2)],
            lock_time: 7,
            payload: None,
        };
        (tx, vec![output(10), output(11), output(12)])
    }

    /// Every sighash of every input, or the error each produced.
    fn all(tx: &Transaction, spent: &[TxOut]) -> Vec<Result<Hash256>> {
        let cache = SighashCache::new(tx, spent).unwrap();
        (0..tx.inputs.len())
            .flat_map(|i| SighashType::ALL_TYPES.map(|ty| cache.sighash(i, ty)))
            .collect()
    }

    /// For input `i`, which of the 7 types changed between two sets of hashes.
    fn changed(a: &[Result<Hash256>], b: &[Result<Hash256>], i: usize) -> Vec<SighashType> {
        SighashType::ALL_TYPES
            .into_iter()
            .filter(|ty| a[i * 7 + ty.slot()] != b[i * 7 + ty.slot()])
            .collect()
    }

    #[test]
    fn type_bytes_round_trip_and_reject_non_canonical() {
        for ty in SighashType::ALL_TYPES {
            assert_eq!(SighashType::ALL_TYPES[ty.slot()], ty);
            if ty != T::Default {
                assert_eq!(SighashType::from_byte(ty.to_byte()), Some(ty));
            }
        }
        for b in [0x00, 0x04, 0x80, 0x84, 0xff, 0x41] {
            assert_eq!(SighashType::from_byte(b), None);
        }
        assert!(parse_signature(&[0; 63]).is_err());
        assert!(parse_signature(&[0; 66]).is_err());
        assert_eq!(parse_signature(&[0; 64]).unwrap().1, T::Default);
        let mut sig = [0u8; 65];
        assert!(parse_signature(&sig).is_err());
        sig[64] = 0x83;
        assert_eq!(parse_signature(&sig).unwrap().1, T::SingleAnyoneCanPay);
    }

    #[test]
    fn every_type_and_input_hashes_differently() {
        let (tx, spent) = sample();
        // Input 2 has no output for SINGLE to sign: 3 × 7 − 2 hashes.
        let hashes: Vec<_> = all(&tx, &spent)
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        assert_eq!(hashes.len(), 19);
        let mut unique = hashes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), hashes.len());
    }

    #[test]
    fn spent_outputs_must_match_inputs() {
        let (tx, spent) = sample();
        assert_eq!(
            SighashCache::new(&tx, &spent[..2]).unwrap_err(),
            ScriptError::SpentOutputsMismatch {
                inputs: 3,
                spent: 2
            }
        );
        let cache = SighashCache::new(&tx, &spent).unwrap();
        assert!(matches!(
            cache.sighash(3, T::Default),
            Err(ScriptError::InputIndexOutOfRange {
                index: 3,
                inputs: 3
            })
        ));
    }

    #[test]
    fn single_needs_an_output_at_the_same_index() {
        let (tx, spent) = sample();
        let cache = SighashCache::new(&tx, &spent).unwrap();
        assert!(cache.sighash(1, T::Single).is_ok());
        for ty in [T::Single, T::SingleAnyoneCanPay] {
            assert_eq!(
                cache.sighash(2, ty),
                Err(ScriptError::SighashSingleNoOutput { index: 2 })
            );
        }
    }

    #[test]
    fn unlock_scripts_are_not_hashed() {
        let (mut tx, spent) = sample();
        let before = all(&tx, &spent);
        tx.inputs[0].unlock = Script::new(vec![1, 2, 3]);
        tx.inputs[2].unlock = Script::default();
        assert_eq!(all(&tx, &spent), before);
    }

    #[test]
    fn header_fields_are_always_committed() {
        let (tx, spent) = sample();
        let before = all(&tx, &spent);
        let edits: [fn(&mut Transaction); 3] = [
            |tx| tx.version = 2,
            |tx| tx.lock_time = 8,
            |tx| {
                tx.payload = Some(Payload::Coinbase(CoinbasePayload {
                    height: 1,
                    extra: vec![],
                }))
            },
        ];
        for edit in edits {
            let mut tx2 = tx.clone();
            edit(&mut tx2);
            let after = all(&tx2, &spent);
            for i in 0..2 {
                // Input 2 has no SINGLE output: those two stay errors.
                assert_eq!(changed(&before, &after, i).len(), 7);
            }
        }
    }

    #[test]
    fn outputs_commitment_follows_the_type() {
        let (tx, spent) = sample();
        let before = all(&tx, &spent);
        // Change output 1: ALL-like types of every input change; SINGLE only for input 1.
        let mut tx2 = tx.clone();
        tx2.outputs[1].value = Amount::from_units(1).unwrap();
        let after = all(&tx2, &spent);
        assert_eq!(
            changed(&before, &after, 0),
            [T::Default, T::All, T::AllAnyoneCanPay]
        );
        assert_eq!(
            changed(&before, &after, 1),
            [
                T::Default,
                T::All,
                T::Single,
                T::AllAnyoneCanPay,
                T::SingleAnyoneCanPay
            ]
        );
        // Adding an output changes the ALL commitment but not SINGLE of input 0.
        let mut tx3 = tx.clone();
        tx3.outputs.push(tx.outputs[0].clone());
        let after = all(&tx3, &spent);
        assert_eq!(
            changed(&before, &after, 0),
            [T::Default, T::All, T::AllAnyoneCanPay]
        );
    }

    #[test]
    fn inputs_commitment_follows_anyone_can_pay() {
        let (tx, spent) = sample();
        let before = all(&tx, &spent);
        let non_acp = [T::Default, T::All, T::None, T::Single];
        // Another input's outpoint, sequence, spent amount or spent lock.
        let mut variants = Vec::new();
        let mut t = tx.clone();
        t.inputs[2].prevout.vout = 99;
        variants.push((t, spent.clone()));
        let mut t = tx.clone();
        t.inputs[2].sequence = 0;
        variants.push((t, spent.clone()));
        let mut s = spent.clone();
        s[2].value = Amount::from_units(1).unwrap();
        variants.push((tx.clone(), s));
        let mut s = spent.clone();
        s[2].lock = Script::new(vec![0x51]);
        variants.push((tx.clone(), s));
        for (t, s) in &variants {
            assert_eq!(changed(&before, &all(t, s), 0), non_acp);
        }
        // This input's own fields: every type changes.
        let mut t = tx.clone();
        t.inputs[0].sequence = 0;
        assert_eq!(changed(&before, &all(&t, &spent), 0).len(), 7);
        let mut s = spent.clone();
        s[0].lock = Script::new(vec![0x51]);
        assert_eq!(changed(&before, &all(&tx, &s), 0).len(), 7);
        // Adding an input: only ANYONECANPAY signatures of input 0 survive.
        let mut t = tx.clone();
        t.inputs.push(tx.inputs[0].clone());
        let mut s = spent.clone();
        s.push(spent[0].clone());
        assert_eq!(changed(&before, &all(&t, &s), 0), non_acp);
    }
}
