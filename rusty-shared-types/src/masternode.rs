//! Masternode, quorum and ChainLock payloads (architecture §5, after Dash's
//! DIP-3, DIP-6 and DIP-8).
//!
//! BLS keys and signatures appear here as their compressed bytes (48-byte
//! G1 public keys, 96-byte G2 signatures, min-pk); `rusty-crypto::bls`
//! parses and checks them. Every message a key signs is a domain-separated
//! BLAKE3 hash defined in this module, so signers and verifiers cannot
//! disagree about it.

use crate::{
    encoding::{write_bytes, write_vec, Decode, DecodeError, DecodeResult, Reader},
    hash::Domain,
    Encode, Hash256, Script,
};

/// A compressed BLS12-381 G1 public key.
pub type BlsPublicKeyBytes = [u8; 48];
/// A compressed BLS12-381 G2 signature.
pub type BlsSignatureBytes = [u8; 96];
/// An Ed25519 public key.
pub type Ed25519PublicKeyBytes = [u8; 32];
/// An Ed25519 signature.
pub type Ed25519SignatureBytes = [u8; 64];

/// Longest service address (a multiaddr in text form), bytes.
pub const MAX_SERVICE_LEN: usize = 256;
/// Largest quorum any network uses; bounds bit vectors and vectors.
pub const MAX_QUORUM_SIZE: usize = 400;
/// Largest payout script, bytes.
pub const MAX_PAYOUT_SCRIPT: usize = 128;
/// The operator reward share is in basis points (10 000 = all of it).
pub const MAX_OPERATOR_REWARD_BPS: u16 = 10_000;

/// A fixed-length vector of bits (quorum members), packed LSB first. The
/// encoding is canonical: bits past the length must be zero.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct BitSet {
    len: usize,
    bytes: Vec<u8>,
}

impl BitSet {
    /// `len` bits, all clear.
    pub fn new(len: usize) -> Self {
        BitSet {
            len,
            bytes: vec![0; len.div_ceil(8)],
        }
    }

    pub fn from_bools(bits: &[bool]) -> Self {
        let mut s = BitSet::new(bits.len());
        for (i, &b) in bits.iter().enumerate() {
            s.set(i, b);
        }
        s
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.bytes[i / 8] & (1 << (i % 8)) != 0
    }

    /// Sets bit `i`; out-of-range indexes are ignored.
    pub fn set(&mut self, i: usize, value: bool) {
        if i >= self.len {
            return;
        }
        if value {
            self.bytes[i / 8] |= 1 << (i % 8);
        } else {
            self.bytes[i / 8] &= !(1 << (i % 8));
        }
    }

    /// Number of set bits.
    pub fn count(&self) -> usize {
        self.bytes.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// Indexes of the set bits, ascending.
    pub fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).filter(|&i| self.get(i))
    }
}

impl Encode for BitSet {
    fn encode_to(&self, out: &mut Vec<u8>) {
        crate::encoding::write_compact_size(out, self.len as u64);
        out.extend_from_slice(&self.bytes);
    }
}

impl Decode for BitSet {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let len = r.length("bit set", MAX_QUORUM_SIZE, 0)?;
        let bytes = r.take(len.div_ceil(8))?.to_vec();
        if len % 8 != 0 {
            if let Some(last) = bytes.last() {
                if last >> (len % 8) != 0 {
                    return Err(DecodeError::InvalidValue("bit set padding"));
                }
            }
        }
        Ok(BitSet { len, bytes })
    }
}

fn write_service(out: &mut Vec<u8>, service: &str) {
    write_bytes(out, service.as_bytes());
}

/// A service address: printable ASCII, at most [`MAX_SERVICE_LEN`] bytes.
fn read_service(r: &mut Reader<'_>) -> DecodeResult<String> {
    let raw = r.bytes("service", MAX_SERVICE_LEN)?;
    if !raw.iter().all(|b| b.is_ascii_graphic()) {
        return Err(DecodeError::InvalidValue("service address"));
    }
    String::from_utf8(raw).map_err(|_| DecodeError::InvalidValue("service address"))
}

fn read_payout(r: &mut Reader<'_>) -> DecodeResult<Script> {
    Ok(Script::new(r.bytes("payout script", MAX_PAYOUT_SCRIPT)?))
}

/// Registers a masternode. The collateral is output `collateral_vout` of
/// this same transaction, so the signatures of its inputs (whose sighash
/// covers the payload) are the collateral owner's consent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProRegister {
    pub collateral_vout: u32,
    /// Ed25519 key that may update the registrar fields.
    pub owner_key: Ed25519PublicKeyBytes,
    /// BLS key the node operates with (DKG, signing shares).
    pub operator_key: BlsPublicKeyBytes,
    /// Ed25519 key for governance votes.
    pub voting_key: Ed25519PublicKeyBytes,
    /// Where the masternode's rewards go.
    pub payout: Script,
    /// Share of each payment the operator gets, in basis points.
    pub operator_reward_bps: u16,
    /// The node's P2P address, a multiaddr ending in `/p2p/<peer id>`.
    pub service: String,
}

/// Changes a masternode's service address (and the operator's payout);
/// signed by the operator key. Revives a PoSe-banned masternode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProUpdateService {
    pub pro_tx_hash: Hash256,
    pub service: String,
    /// Receives the operator's share of payments, if set.
    pub operator_payout: Option<Script>,
    pub signature: BlsSignatureBytes,
}

/// Changes the operator and voting keys and the payout; signed by the owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProUpdateRegistrar {
    pub pro_tx_hash: Hash256,
    pub operator_key: BlsPublicKeyBytes,
    pub voting_key: Ed25519PublicKeyBytes,
    pub payout: Script,
    pub signature: Ed25519SignatureBytes,
}

/// The operator stops serving: the masternode is banned until a new
/// operator key is set by the owner; signed by the operator key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProRevoke {
    pub pro_tx_hash: Hash256,
    pub reason: u16,
    pub signature: BlsSignatureBytes,
}

/// The result of a DKG, mined in a block: the quorum's verification
/// vector (its first point is the quorum public key) and the members that
/// took part correctly, signed by the members and by the new quorum itself.
/// A null commitment (no valid members, no vector) records a failed DKG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumCommitment {
    /// Hash of the block at `quorum_height` that started the DKG.
    pub quorum_hash: Hash256,
    pub quorum_height: u64,
    /// Members whose operator signatures are aggregated in `members_sig`.
    pub signers: BitSet,
    /// Members that completed the DKG; they hold key shares.
    pub valid_members: BitSet,
    /// The quorum's verification vector (threshold points); empty when null.
    pub quorum_vvec: Vec<BlsPublicKeyBytes>,
    /// Threshold signature of [`QuorumCommitment::signing_hash`] under the
    /// quorum public key.
    pub quorum_sig: BlsSignatureBytes,
    /// Aggregate of the signers' operator signatures of the same hash.
    pub members_sig: BlsSignatureBytes,
}

impl QuorumCommitment {
    /// A commitment recording that the DKG of `quorum_hash` failed.
    pub fn null(quorum_hash: Hash256, quorum_height: u64, size: usize) -> Self {
        QuorumCommitment {
            quorum_hash,
            quorum_height,
            signers: BitSet::new(size),
            valid_members: BitSet::new(size),
            quorum_vvec: Vec::new(),
            quorum_sig: [0; 96],
            members_sig: [0; 96],
        }
    }

    pub fn is_null(&self) -> bool {
        self.quorum_vvec.is_empty()
    }

    /// What members sign: the quorum, its valid members and its vector.
    pub fn signing_hash(&self) -> Hash256 {
        commitment_signing_hash(
            &self.quorum_hash,
            self.quorum_height,
            &self.valid_members,
            &self.quorum_vvec,
        )
    }

    /// The quorum public key (first point of the vector).
    pub fn public_key(&self) -> Option<&BlsPublicKeyBytes> {
        self.quorum_vvec.first()
    }
}

/// [`QuorumCommitment::signing_hash`] from its parts, for members building
/// a premature commitment.
pub fn commitment_signing_hash(
    quorum_hash: &Hash256,
    quorum_height: u64,
    valid_members: &BitSet,
    quorum_vvec: &[BlsPublicKeyBytes],
) -> Hash256 {
    let mut buf = Vec::with_capacity(64 + quorum_vvec.len() * 48);
    quorum_hash.encode_to(&mut buf);
    quorum_height.encode_to(&mut buf);
    valid_members.encode_to(&mut buf);
    write_vec(&mut buf, quorum_vvec);
    Hash256::domain_hash(Domain::QuorumCommitment, &buf)
}

/// A quorum's threshold signature that block `block_hash` is the chain at
/// `height`: nothing below it can be reorganised any more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainLock {
    pub height: u64,
    pub block_hash: Hash256,
    pub signature: BlsSignatureBytes,
}

impl ChainLock {
    /// What a header's `chainlock_hash` commits to.
    pub fn hash(&self) -> Hash256 {
        Hash256::domain_hash(Domain::ChainLock, &self.encode())
    }

    /// The signing request id of the ChainLock at `height`:
    /// `hash("clsig", height)`.
    pub fn request_id(height: u64) -> Hash256 {
        request_id("clsig", height)
    }
}

/// A signing request id: `hash(kind, index)`.
pub fn request_id(kind: &str, index: u64) -> Hash256 {
    let mut buf = Vec::with_capacity(kind.len() + 9);
    write_bytes(&mut buf, kind.as_bytes());
    index.encode_to(&mut buf);
    Hash256::domain_hash(Domain::RequestId, &buf)
}

/// The message a quorum signs for request `request_id` about `msg_hash`.
pub fn quorum_sign_hash(
    quorum_hash: &Hash256,
    request_id: &Hash256,
    msg_hash: &Hash256,
) -> Hash256 {
    let mut buf = [0u8; 96];
    buf[..32].copy_from_slice(&quorum_hash.0);
    buf[32..64].copy_from_slice(&request_id.0);
    buf[64..].copy_from_slice(&msg_hash.0);
    Hash256::domain_hash(Domain::QuorumSign, &buf)
}

impl Encode for ProRegister {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.collateral_vout.encode_to(out);
        self.owner_key.encode_to(out);
        self.operator_key.encode_to(out);
        self.voting_key.encode_to(out);
        write_bytes(out, self.payout.as_bytes());
        self.operator_reward_bps.encode_to(out);
        write_service(out, &self.service);
    }
}

impl Decode for ProRegister {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ProRegister {
            collateral_vout: r.u32()?,
            owner_key: r.array()?,
            operator_key: r.array()?,
            voting_key: r.array()?,
            payout: read_payout(r)?,
            operator_reward_bps: r.u16()?,
            service: read_service(r)?,
        })
    }
}

impl ProUpdateService {
    /// The encoding without the signature (what the signature covers).
    pub fn encode_unsigned(&self, out: &mut Vec<u8>) {
        self.pro_tx_hash.encode_to(out);
        write_service(out, &self.service);
        match &self.operator_payout {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                write_bytes(out, s.as_bytes());
            }
        }
    }
}

impl Encode for ProUpdateService {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.encode_unsigned(out);
        self.signature.encode_to(out);
    }
}

impl Decode for ProUpdateService {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ProUpdateService {
            pro_tx_hash: Hash256::decode_from(r)?,
            service: read_service(r)?,
            operator_payout: match r.u8()? {
                0 => None,
                1 => Some(read_payout(r)?),
                t => {
                    return Err(DecodeError::InvalidTag {
                        what: "operator payout",
                        tag: u64::from(t),
                    })
                }
            },
            signature: r.array()?,
        })
    }
}

impl ProUpdateRegistrar {
    pub fn encode_unsigned(&self, out: &mut Vec<u8>) {
        self.pro_tx_hash.encode_to(out);
        self.operator_key.encode_to(out);
        self.voting_key.encode_to(out);
        write_bytes(out, self.payout.as_bytes());
    }
}

impl Encode for ProUpdateRegistrar {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.encode_unsigned(out);
        self.signature.encode_to(out);
    }
}

impl Decode for ProUpdateRegistrar {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ProUpdateRegistrar {
            pro_tx_hash: Hash256::decode_from(r)?,
            operator_key: r.array()?,
            voting_key: r.array()?,
            payout: read_payout(r)?,
            signature: r.array()?,
        })
    }
}

impl ProRevoke {
    pub fn encode_unsigned(&self, out: &mut Vec<u8>) {
        self.pro_tx_hash.encode_to(out);
        self.reason.encode_to(out);
    }
}

impl Encode for ProRevoke {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.encode_unsigned(out);
        self.signature.encode_to(out);
    }
}

impl Decode for ProRevoke {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ProRevoke {
            pro_tx_hash: Hash256::decode_from(r)?,
            reason: r.u16()?,
            signature: r.array()?,
        })
    }
}

impl Encode for QuorumCommitment {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.quorum_hash.encode_to(out);
        self.quorum_height.encode_to(out);
        self.signers.encode_to(out);
        self.valid_members.encode_to(out);
        write_vec(out, &self.quorum_vvec);
        self.quorum_sig.encode_to(out);
        self.members_sig.encode_to(out);
    }
}

impl Decode for QuorumCommitment {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(QuorumCommitment {
            quorum_hash: Hash256::decode_from(r)?,
            quorum_height: r.u64()?,
            signers: BitSet::decode_from(r)?,
            valid_members: BitSet::decode_from(r)?,
            quorum_vvec: r.vec("quorum vvec", MAX_QUORUM_SIZE, 48)?,
            quorum_sig: r.array()?,
            members_sig: r.array()?,
        })
    }
}

impl Encode for ChainLock {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.height.encode_to(out);
        self.block_hash.encode_to(out);
        self.signature.encode_to(out);
    }
    fn encoded_size_hint(&self) -> usize {
        8 + 32 + 96
    }
}

impl Decode for ChainLock {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ChainLock {
            height: r.u64()?,
            block_hash: Hash256::decode_from(r)?,
            signature: r.array()?,
        })
    }
}

/// The message an owner (Ed25519) or operator (BLS) key signs for a
/// special transaction: the payload without its signature, bound to the
/// transaction's inputs so it cannot be replayed in another transaction.
pub fn protx_sig_hash(kind: u8, unsigned_payload: &[u8], inputs_hash: &Hash256) -> Hash256 {
    let mut buf = Vec::with_capacity(unsigned_payload.len() + 33);
    buf.push(kind);
    buf.extend_from_slice(unsigned_payload);
    buf.extend_from_slice(&inputs_hash.0);
    Hash256::domain_hash(Domain::ProTxSig, &buf)
}

/// A special-transaction payload signed by the masternode's operator key
/// (BLS) over [`protx_sig_hash`].
pub trait OperatorSigned: Sized {
    /// The payload tag.
    const TAG: u8;
    /// The encoding without the signature.
    fn encode_unsigned(&self, out: &mut Vec<u8>);
    fn signature(&self) -> &BlsSignatureBytes;
    fn set_signature(&mut self, signature: BlsSignatureBytes);
    fn into_payload(self) -> crate::Payload;

    /// What the operator signs, in a transaction with these inputs.
    fn sig_hash(&self, inputs_hash: &Hash256) -> Hash256 {
        let mut unsigned = Vec::new();
        self.encode_unsigned(&mut unsigned);
        protx_sig_hash(Self::TAG, &unsigned, inputs_hash)
    }
}

impl OperatorSigned for ProUpdateService {
    const TAG: u8 = 2;
    fn encode_unsigned(&self, out: &mut Vec<u8>) {
        ProUpdateService::encode_unsigned(self, out)
    }
    fn signature(&self) -> &BlsSignatureBytes {
        &self.signature
    }
    fn set_signature(&mut self, signature: BlsSignatureBytes) {
        self.signature = signature;
    }
    fn into_payload(self) -> crate::Payload {
        crate::Payload::ProUpdateService(self)
    }
}

impl OperatorSigned for ProRevoke {
    const TAG: u8 = 4;
    fn encode_unsigned(&self, out: &mut Vec<u8>) {
        ProRevoke::encode_unsigned(self, out)
    }
    fn signature(&self) -> &BlsSignatureBytes {
        &self.signature
    }
    fn set_signature(&mut self, signature: BlsSignatureBytes) {
        self.signature = signature;
    }
    fn into_payload(self) -> crate::Payload {
        crate::Payload::ProRevoke(self)
    }
}

/// Hash of a transaction's input outpoints (what [`protx_sig_hash`] binds to).
pub fn inputs_hash(inputs: &[crate::TxIn]) -> Hash256 {
    let mut buf = Vec::with_capacity(inputs.len() * 36);
    for i in inputs {
        i.prevout.encode_to(&mut buf);
    }
    Hash256::domain_hash(Domain::ProTxSig, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode_exact;

    #[test]
    fn bitset_round_trips_and_rejects_padding() {
        let mut b = BitSet::new(11);
        b.set(0, true);
        b.set(10, true);
        assert_eq!(b.count(), 2);
        assert_eq!(b.ones().collect::<Vec<_>>(), vec![0, 10]);
        let enc = b.encode();
        assert_eq!(decode_exact::<BitSet>(&enc).unwrap(), b);
        let mut bad = enc.clone();
        *bad.last_mut().unwrap() |= 0x80;
        assert!(decode_exact::<BitSet>(&bad).is_err());
    }

    #[test]
    fn request_ids_differ_by_kind_and_index() {
        assert_ne!(ChainLock::request_id(1), ChainLock::request_id(2));
        assert_ne!(request_id("clsig", 1), request_id("islock", 1));
    }

    #[test]
    fn service_must_be_printable_ascii() {
        let reg = ProRegister {
            collateral_vout: 0,
            owner_key: [1; 32],
            operator_key: [2; 48],
            voting_key: [3; 32],
            payout: Script::new(vec![1, 2]),
            operator_reward_bps: 0,
            service: "/ip4/1.2.3.4/tcp/1 x".into(),
        };
        assert!(decode_exact::<ProRegister>(&reg.encode()).is_err());
    }
}
