//! The standard scripts: builders for lock and unlock scripts, and matchers that
//! recognise them (wallets, RPC, mempool policy).
//!
//! | kind | lock script | unlock script |
//! |------|-------------|---------------|
//! | P2PKH ([`Script::p2pkh`]) | `DUP PUBKEYHASH <pkh> EQUALVERIFY CHECKSIG` | `<sig> <pk>` |
//! | m-of-n multisig ([`multisig`]) | `<pk1> CHECKSIG <pk2> CHECKSIGADD … <pkn> CHECKSIGADD <m> NUMEQUAL` | one signature or empty per key |
//! | HTLC ([`htlc`]) | see below | claim: `<sig> <pk> <secret> 1`; refund: `<sig> <pk> 0` |
//! | data carrier ([`Script::data_carrier`]) | `RETURN [<data>]` | unspendable |
//!
//! The HTLC lock script:
//!
//! ```text
//! IF
//!     SIZE 32 EQUALVERIFY  SHA256|BLAKE3 <hash> EQUALVERIFY   # a 32-byte preimage
//!     DUP PUBKEYHASH <recipient pkh>
//! ELSE
//!     <timeout> CHECKLOCKTIMEVERIFY|CHECKSEQUENCEVERIFY DROP
//!     DUP PUBKEYHASH <refund pkh>
//! ENDIF
//! EQUALVERIFY CHECKSIG
//! ```
//!
//! The secret's size is fixed at 32 bytes so the same swap can be locked on a chain
//! whose script limits differ: a preimage one chain accepts and the other rejects would
//! let one party claim on one side only.
//!
//! Matchers accept exactly the bytes the builders produce, so a script is standard iff
//! rebuilding it from what the matcher extracted gives it back.

use rusty_crypto::PublicKey;
use rusty_shared_types::{script::op, Hash256, Script};
use sha2::{Digest, Sha256};

use crate::{
    builder::ScriptBuilder,
    instruction::{instructions, Instruction},
    num::{self, MAX_LOCKTIME_NUM_LEN},
};

/// Most keys in a standard multisig script.
pub const MAX_MULTISIG_KEYS: usize = 20;

/// Size of an HTLC secret (preimage), in bytes.
pub const HTLC_SECRET_SIZE: usize = 32;

/// Largest absolute HTLC timeout: the largest 5-byte script number, which is what
/// `CHECKLOCKTIMEVERIFY` reads.
pub const MAX_ABSOLUTE_TIMEOUT: u64 = (1 << 39) - 1;

/// What kind of standard script a lock script is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptKind {
    /// Pay to the public key with this hash.
    P2pkh(Hash256),
    /// `m` signatures of `n` keys.
    Multisig { m: u8, n: u8 },
    /// Hash-time-locked contract ([`parse_htlc`] gives the parameters).
    Htlc,
    /// `OP_RETURN` data carrier: unspendable.
    DataCarrier,
    /// Anything else. Valid in a block, but not relayed by default.
    NonStandard,
}

impl ScriptKind {
    /// The Bitcoin Core-style name used by RPC (`"type"` fields).
    pub fn name(&self) -> &'static str {
        match self {
            ScriptKind::P2pkh(_) => "pubkeyhash",
            ScriptKind::Multisig { .. } => "multisig",
            ScriptKind::Htlc => "htlc",
            ScriptKind::DataCarrier => "nulldata",
            ScriptKind::NonStandard => "nonstandard",
        }
    }

    /// Whether outputs of this kind are standard (relayed and mined by default).
    pub fn is_standard(&self) -> bool {
        !matches!(self, ScriptKind::NonStandard)
    }
}

/// Recognises a standard lock script.
pub fn classify(script: &Script) -> ScriptKind {
    if let Some(pkh) = script.as_p2pkh() {
        return ScriptKind::P2pkh(pkh);
    }
    if let Some((m, keys)) = parse_multisig(script) {
        // Both are at most MAX_MULTISIG_KEYS = 20.
        return ScriptKind::Multisig {
            m: m as u8,
            n: keys.len() as u8,
        };
    }
    if parse_htlc(script).is_some() {
        return ScriptKind::Htlc;
    }
    if parse_data_carrier(script).is_some() {
        return ScriptKind::DataCarrier;
    }
    ScriptKind::NonStandard
}

/// `<sig> <pk>`: spends a P2PKH output. `sig` is 64 bytes, or 65 with a sighash type.
pub fn p2pkh_unlock(sig: &[u8], pk: &PublicKey) -> Script {
    ScriptBuilder::new()
        .push_slice(sig)
        .push_slice(pk.as_bytes())
        .into_script()
}

/// `m`-of-`keys.len()` multisig with `CHECKSIGADD`, or `None` unless
/// `1 <= m <= n <= 20`.
pub fn multisig(m: usize, keys: &[PublicKey]) -> Option<Script> {
    if m == 0 || m > keys.len() || keys.len() > MAX_MULTISIG_KEYS {
        return None;
    }
    let mut b = ScriptBuilder::new();
    for (i, pk) in keys.iter().enumerate() {
        let check = if i == 0 {
            op::OP_CHECKSIG
        } else {
            op::OP_CHECKSIGADD
        };
        b = b.push_slice(pk.as_bytes()).push_opcode(check);
    }
    // m <= 20.
    Some(
        b.push_int(m as i64)
            .push_opcode(op::OP_NUMEQUAL)
            .into_script(),
    )
}

/// The unlock script of a multisig output: `sigs[i]` is the signature for key `i` of
/// the lock script, or empty for a key that does not sign. Exactly `m` must be
/// non-empty, and every non-empty one must be valid (a wrong signature fails the
/// script rather than counting as zero).
///
/// The lock script checks key 1 first, so its signature has to be on top of the stack:
/// the signatures are pushed in reverse.
pub fn multisig_unlock<S: AsRef<[u8]>>(sigs: &[S]) -> Script {
    sigs.iter()
        .rev()
        .fold(ScriptBuilder::new(), |b, sig| b.push_slice(sig.as_ref()))
        .into_script()
}

/// `(m, keys)` if `script` is exactly a [`multisig`] script.
pub fn parse_multisig(script: &Script) -> Option<(usize, Vec<PublicKey>)> {
    let mut keys = Vec::new();
    let mut m = None;
    let mut it = instructions(script.as_bytes());
    while let Some(ins) = it.next() {
        match ins.ok()? {
            Instruction::Push(pk) if pk.len() == 32 && m.is_none() => {
                keys.push(PublicKey(pk.try_into().ok()?));
                let expected = if keys.len() == 1 {
                    op::OP_CHECKSIG
                } else {
                    op::OP_CHECKSIGADD
                };
                if it.next()?.ok()? != Instruction::Op(expected) {
                    return None;
                }
            }
            ins if m.is_none() => m = Some(small_number(ins)?),
            Instruction::Op(op::OP_NUMEQUAL) if it.next().is_none() => break,
            _ => return None,
        }
    }
    let m = usize::try_from(m?).ok()?;
    // Rebuilding rejects m out of range and any non-canonical spelling of m.
    (multisig(m, &keys)? == *script).then_some((m, keys))
}

/// Which hash an HTLC's hashlock uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashKind {
    /// Plain BLAKE3 (`OP_BLAKE3`).
    Blake3,
    /// SHA-256 (`OP_SHA256`), for swaps with SHA-256 chains.
    Sha256,
}

impl HashKind {
    /// The hashlock of `secret`.
    pub fn hash(self, secret: &[u8]) -> [u8; 32] {
        match self {
            HashKind::Blake3 => *blake3::hash(secret).as_bytes(),
            HashKind::Sha256 => Sha256::digest(secret).into(),
        }
    }

    fn opcode(self) -> u8 {
        match self {
            HashKind::Blake3 => op::OP_BLAKE3,
            HashKind::Sha256 => op::OP_SHA256,
        }
    }
}

/// When an HTLC's refund path opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timeout {
    /// A lock time (`CHECKLOCKTIMEVERIFY`): a block height below 500 000 000, a UNIX time
    /// at or above. The refund transaction sets `lock_time` to at least this value (of
    /// the same kind) and a non-final sequence on the HTLC input.
    Absolute(u64),
    /// Blocks after the HTLC output confirms (`CHECKSEQUENCEVERIFY`). The refund input
    /// sets its sequence to at least this value, with bit 31 clear.
    RelativeBlocks(u16),
}

/// The parameters of a hash-time-locked contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HtlcParams {
    pub hash_kind: HashKind,
    /// The hash of the 32-byte secret that lets the recipient claim.
    pub hash: [u8; 32],
    /// Who can claim with the secret.
    pub recipient_pkh: Hash256,
    /// Who can take the money back after the timeout.
    pub refund_pkh: Hash256,
    pub timeout: Timeout,
}

/// The HTLC lock script, or `None` if an absolute timeout exceeds
/// [`MAX_ABSOLUTE_TIMEOUT`].
pub fn htlc(params: &HtlcParams) -> Option<Script> {
    let (timeout, check) = match params.timeout {
        Timeout::Absolute(t) if t <= MAX_ABSOLUTE_TIMEOUT => {
            (i64::try_from(t).ok()?, op::OP_CHECKLOCKTIMEVERIFY)
        }
        Timeout::Absolute(_) => return None,
        Timeout::RelativeBlocks(n) => (i64::from(n), op::OP_CHECKSEQUENCEVERIFY),
    };
    let script = ScriptBuilder::new()
        .push_opcode(op::OP_IF)
        .push_opcode(op::OP_SIZE)
        .push_int(HTLC_SECRET_SIZE as i64)
        .push_opcode(op::OP_EQUALVERIFY)
        .push_opcode(params.hash_kind.opcode())
        .push_slice(&params.hash)
        .push_opcode(op::OP_EQUALVERIFY)
        .push_opcode(op::OP_DUP)
        .push_opcode(op::OP_PUBKEYHASH)
        .push_slice(params.recipient_pkh.as_bytes())
        .push_opcode(op::OP_ELSE)
        .push_int(timeout)
        .push_opcode(check)
        .push_opcode(op::OP_DROP)
        .push_opcode(op::OP_DUP)
        .push_opcode(op::OP_PUBKEYHASH)
        .push_slice(params.refund_pkh.as_bytes())
        .push_opcode(op::OP_ENDIF)
        .push_opcode(op::OP_EQUALVERIFY)
        .push_opcode(op::OP_CHECKSIG)
        .into_script();
    Some(script)
}

/// `<sig> <pk> <secret> 1`: the recipient claims with the secret.
pub fn htlc_claim_unlock(sig: &[u8], pk: &PublicKey, secret: &[u8; HTLC_SECRET_SIZE]) -> Script {
    ScriptBuilder::new()
        .push_slice(sig)
        .push_slice(pk.as_bytes())
        .push_slice(secret)
        .push_int(1)
        .into_script()
}

/// `<sig> <pk> 0`: the refund key takes the money back after the timeout.
pub fn htlc_refund_unlock(sig: &[u8], pk: &PublicKey) -> Script {
    ScriptBuilder::new()
        .push_slice(sig)
        .push_slice(pk.as_bytes())
        .push_int(0)
        .into_script()
}

/// The parameters of `script` if it is exactly an [`htlc`] script.
pub fn parse_htlc(script: &Script) -> Option<HtlcParams> {
    let ins: Vec<Instruction<'_>> = instructions(script.as_bytes())
        .collect::<Result<_, _>>()
        .ok()?;
    // Only the variable parts are extracted here (by their positions in the template);
    // the fixed opcodes are checked by rebuilding the script below.
    if ins.len() != 20 {
        return None;
    }
    let (
        Instruction::Op(hash_op),
        Instruction::Push(hash),
        Instruction::Push(recipient),
        timeout,
        Instruction::Op(check),
        Instruction::Push(refund),
    ) = (ins[4], ins[5], ins[9], ins[11], ins[12], ins[16])
    else {
        return None;
    };
    let hash_kind = match hash_op {
        op::OP_BLAKE3 => HashKind::Blake3,
        op::OP_SHA256 => HashKind::Sha256,
        _ => return None,
    };
    let timeout = small_number(timeout)?;
    let timeout = match check {
        op::OP_CHECKLOCKTIMEVERIFY => Timeout::Absolute(u64::try_from(timeout).ok()?),
        op::OP_CHECKSEQUENCEVERIFY => Timeout::RelativeBlocks(u16::try_from(timeout).ok()?),
        _ => return None,
    };
    let params = HtlcParams {
        hash_kind,
        hash: hash.try_into().ok()?,
        recipient_pkh: Hash256(recipient.try_into().ok()?),
        refund_pkh: Hash256(refund.try_into().ok()?),
        timeout,
    };
    (htlc(&params)? == *script).then_some(params)
}

/// The carried data if `script` is exactly a [`Script::data_carrier`] script.
///
/// Read byte by byte rather than as instructions: the carrier never executes, and its
/// builder pushes one-byte payloads such as `[0x05]` directly, which the interpreter
/// would call non-minimal.
pub fn parse_data_carrier(script: &Script) -> Option<&[u8]> {
    let data = match script.as_bytes() {
        [op::OP_RETURN] => &[][..],
        [op::OP_RETURN, op::OP_PUSHDATA1, _, data @ ..] => data,
        [op::OP_RETURN, _, data @ ..] => data,
        _ => return None,
    };
    (Script::data_carrier(data)? == *script).then_some(data)
}

/// A number pushed as data or as `OP_1`..`OP_16`, as the lock-time opcodes read it.
fn small_number(ins: Instruction<'_>) -> Option<i64> {
    match ins {
        Instruction::Push(data) => num::decode(data, MAX_LOCKTIME_NUM_LEN).ok(),
        Instruction::Op(code) if (op::OP_1..=op::OP_16).contains(&code) => {
            Some(i64::from(code.wrapping_sub(op::OP_1).wrapping_add(1)))
        }
        Instruction::Op(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn keys(n: u8) -> Vec<PublicKey> {
        (1..=n).map(|i| PublicKey([i; 32])).collect()
    }

    fn sample_htlc(timeout: Timeout, hash_kind: HashKind) -> HtlcParams {
        HtlcParams {
            hash_kind,
            hash: hash_kind.hash(&[9; 32]),
            recipient_pkh: Hash256([1; 32]),
            refund_pkh: Hash256([2; 32]),
            timeout,
        }
    }

    #[test]
    fn names() {
        let kinds = [
            (ScriptKind::P2pkh(Hash256::ZERO), "pubkeyhash"),
            (ScriptKind::Multisig { m: 1, n: 1 }, "multisig"),
            (ScriptKind::Htlc, "htlc"),
            (ScriptKind::DataCarrier, "nulldata"),
            (ScriptKind::NonStandard, "nonstandard"),
        ];
        for (kind, name) in kinds {
            assert_eq!(kind.name(), name);
            assert_eq!(kind.is_standard(), name != "nonstandard");
        }
    }

    #[test]
    fn classifies_every_template() {
        let pkh = Hash256([5; 32]);
        assert_eq!(classify(&Script::p2pkh(&pkh)), ScriptKind::P2pkh(pkh));
        for n in 1..=20u8 {
            for m in 1..=n {
                let s = multisig(usize::from(m), &keys(n)).unwrap();
                assert_eq!(classify(&s), ScriptKind::Multisig { m, n });
                assert_eq!(parse_multisig(&s), Some((usize::from(m), keys(n))));
            }
        }
        assert_eq!(
            classify(&htlc(&sample_htlc(Timeout::Absolute(100), HashKind::Sha256)).unwrap()),
            ScriptKind::Htlc
        );
        for len in [0, 1, 75, 76, 80] {
            let s = Script::data_carrier(&vec![3; len]).unwrap();
            assert_eq!(classify(&s), ScriptKind::DataCarrier);
            assert_eq!(parse_data_carrier(&s), Some(&vec![3; len][..]));
        }
        assert_eq!(classify(&Script::default()), ScriptKind::NonStandard);
        assert_eq!(
            classify(&Script::new(vec![op::OP_1])),
            ScriptKind::NonStandard
        );
    }

    #[test]
    fn multisig_bounds() {
        assert!(multisig(0, &keys(3)).is_none());
        assert!(multisig(4, &keys(3)).is_none());
        assert!(multisig(1, &keys(21)).is_none());
        assert!(multisig(1, &[]).is_none());
        assert!(multisig(20, &keys(20)).is_some());
    }

    #[test]
    fn near_misses_are_non_standard() {
        // Multisig ending in NUMEQUALVERIFY, or with a trailing opcode.
        let mut s = multisig(2, &keys(3)).unwrap().into_bytes();
        *s.last_mut().unwrap() = op::OP_NUMEQUALVERIFY;
        assert_eq!(classify(&Script::new(s.clone())), ScriptKind::NonStandard);
        s.pop();
        s.extend_from_slice(&[op::OP_NUMEQUAL, op::OP_DROP]);
        assert_eq!(classify(&Script::new(s)), ScriptKind::NonStandard);
        // m = 2 spelled as a one-byte push parses (non-minimally) and is rejected.
        let mut s = multisig(2, &keys(3)).unwrap().into_bytes();
        let len = s.len();
        s.splice(len - 2..len - 1, [1, 2]);
        assert_eq!(classify(&Script::new(s)), ScriptKind::NonStandard);
        // An HTLC whose secret size is 31.
        let mut s = htlc(&sample_htlc(Timeout::RelativeBlocks(10), HashKind::Blake3))
            .unwrap()
            .into_bytes();
        assert_eq!(s[3], 32);
        s[3] = 31;
        assert_eq!(classify(&Script::new(s)), ScriptKind::NonStandard);
        // Data carrier with two pushes.
        let s = Script::new(vec![op::OP_RETURN, 1, 0xaa, 1, 0xbb]);
        assert_eq!(classify(&s), ScriptKind::NonStandard);
    }

    #[test]
    fn htlc_timeout_range() {
        let p = |t| sample_htlc(Timeout::Absolute(t), HashKind::Blake3);
        assert!(htlc(&p(MAX_ABSOLUTE_TIMEOUT)).is_some());
        assert!(htlc(&p(MAX_ABSOLUTE_TIMEOUT + 1)).is_none());
    }

    #[test]
    fn multisig_unlock_reverses() {
        let s = multisig_unlock(&[vec![0xaa; 64], vec![], vec![0xbb; 64]]);
        let mut expected = vec![64];
        expected.extend_from_slice(&[0xbb; 64]);
        expected.push(op::OP_0);
        expected.push(64);
        expected.extend_from_slice(&[0xaa; 64]);
        assert_eq!(s.as_bytes(), expected);
    }

    fn timeout() -> impl Strategy<Value = Timeout> {
        prop_oneof![
            (0..=MAX_ABSOLUTE_TIMEOUT).prop_map(Timeout::Absolute),
            any::<u16>().prop_map(Timeout::RelativeBlocks),
        ]
    }

    proptest! {
        #[test]
        fn htlc_round_trip(
            timeout in timeout(),
            sha in any::<bool>(),
            hash in any::<[u8; 32]>(),
            r in any::<[u8; 32]>(),
            f in any::<[u8; 32]>(),
        ) {
            let params = HtlcParams {
                hash_kind: if sha { HashKind::Sha256 } else { HashKind::Blake3 },
                hash,
                recipient_pkh: Hash256(r),
                refund_pkh: Hash256(f),
                timeout,
            };
            let script = htlc(&params).unwrap();
            prop_assert_eq!(parse_htlc(&script), Some(params));
            prop_assert_eq!(classify(&script), ScriptKind::Htlc);
        }

        #[test]
        fn matchers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let script = Script::new(bytes);
            let _ = classify(&script);
            let _ = parse_multisig(&script);
            let _ = parse_htlc(&script);
            let _ = parse_data_carrier(&script);
        }
    }
}
