//! Wire messages of the quorum layer: DKG messages (sent member to member
//! over the network's `direct` protocol), signature shares and ChainLocks
//! (gossiped on the `chainlocks` topic). All in the canonical encoding with
//! strict decoders; a DKG message is signed by its sender's operator key.

use rusty_shared_types::{
    encoding::{write_vec, DecodeResult, Reader},
    masternode::{BlsPublicKeyBytes, BlsSignatureBytes, MAX_QUORUM_SIZE},
    BitSet, ChainLock, Decode, DecodeError, Domain, Encode, Hash256,
};

/// `kind` of a DKG message in a direct frame.
pub const DIRECT_KIND_DKG: u8 = 1;

/// Encoded size of an encrypted share: ephemeral point, nonce, ciphertext.
pub const ENCRYPTED_SHARE_SIZE: usize = 48 + 24 + 48;

/// One step of a member's DKG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkgBody {
    /// The sender's verification vector and a share for every member,
    /// encrypted to that member's operator key (member order).
    Contribution {
        vvec: Vec<BlsPublicKeyBytes>,
        shares: Vec<[u8; ENCRYPTED_SHARE_SIZE]>,
    },
    /// Members whose share to the sender was missing or wrong.
    Complaint { bad: BitSet },
    /// The plaintext shares for the members that complained about the sender.
    Justification { shares: Vec<(u16, [u8; 32])> },
    /// The sender's view of the result, signed by its operator key and by
    /// its new key share.
    Premature {
        valid: BitSet,
        vvec: Vec<BlsPublicKeyBytes>,
        op_sig: BlsSignatureBytes,
        share_sig: BlsSignatureBytes,
    },
}

impl DkgBody {
    pub fn phase(&self) -> u8 {
        match self {
            DkgBody::Contribution { .. } => 0,
            DkgBody::Complaint { .. } => 1,
            DkgBody::Justification { .. } => 2,
            DkgBody::Premature { .. } => 3,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            DkgBody::Contribution { .. } => "contribution",
            DkgBody::Complaint { .. } => "complaint",
            DkgBody::Justification { .. } => "justification",
            DkgBody::Premature { .. } => "premature commitment",
        }
    }
}

/// A signed DKG message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgMessage {
    pub quorum_hash: Hash256,
    /// The sender's pro_tx_hash.
    pub sender: Hash256,
    pub body: DkgBody,
    /// Operator signature of [`DkgMessage::signing_hash`].
    pub signature: BlsSignatureBytes,
}

impl DkgMessage {
    fn encode_unsigned(&self, out: &mut Vec<u8>) {
        self.quorum_hash.encode_to(out);
        self.sender.encode_to(out);
        out.push(self.body.phase());
        match &self.body {
            DkgBody::Contribution { vvec, shares } => {
                write_vec(out, vvec);
                write_vec(out, shares);
            }
            DkgBody::Complaint { bad } => bad.encode_to(out),
            DkgBody::Justification { shares } => {
                rusty_shared_types::encoding::write_compact_size(out, shares.len() as u64);
                for (i, s) in shares {
                    i.encode_to(out);
                    s.encode_to(out);
                }
            }
            DkgBody::Premature {
                valid,
                vvec,
                op_sig,
                share_sig,
            } => {
                valid.encode_to(out);
                write_vec(out, vvec);
                op_sig.encode_to(out);
                share_sig.encode_to(out);
            }
        }
    }

    /// What the sender's operator key signs.
    pub fn signing_hash(&self) -> Hash256 {
        let mut buf = Vec::new();
        self.encode_unsigned(&mut buf);
        Hash256::domain_hash(Domain::DkgMessage, &buf)
    }
}

impl Encode for DkgMessage {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.encode_unsigned(out);
        self.signature.encode_to(out);
    }
}

struct JustifiedShare(u16, [u8; 32]);

impl Decode for JustifiedShare {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(JustifiedShare(r.u16()?, r.array()?))
    }
}

impl Decode for DkgMessage {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let quorum_hash = Hash256::decode_from(r)?;
        let sender = Hash256::decode_from(r)?;
        let body = match r.u8()? {
            0 => DkgBody::Contribution {
                vvec: r.vec("vvec", MAX_QUORUM_SIZE, 48)?,
                shares: r.vec("shares", MAX_QUORUM_SIZE, ENCRYPTED_SHARE_SIZE)?,
            },
            1 => DkgBody::Complaint {
                bad: BitSet::decode_from(r)?,
            },
            2 => DkgBody::Justification {
                shares: r
                    .vec::<JustifiedShare>("justified shares", MAX_QUORUM_SIZE, 34)?
                    .into_iter()
                    .map(|s| (s.0, s.1))
                    .collect(),
            },
            3 => DkgBody::Premature {
                valid: BitSet::decode_from(r)?,
                vvec: r.vec("vvec", MAX_QUORUM_SIZE, 48)?,
                op_sig: r.array()?,
                share_sig: r.array()?,
            },
            t => {
                return Err(DecodeError::InvalidTag {
                    what: "dkg message",
                    tag: u64::from(t),
                })
            }
        };
        Ok(DkgMessage {
            quorum_hash,
            sender,
            body,
            signature: r.array()?,
        })
    }
}

/// A member's signature share for a signing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigShare {
    pub quorum_hash: Hash256,
    pub height: u64,
    pub block_hash: Hash256,
    pub member: u16,
    pub share: BlsSignatureBytes,
}

/// What travels on the `chainlocks` topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainLockGossip {
    Share(SigShare),
    Lock(ChainLock),
}

impl Encode for ChainLockGossip {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            ChainLockGossip::Share(s) => {
                out.push(0);
                s.quorum_hash.encode_to(out);
                s.height.encode_to(out);
                s.block_hash.encode_to(out);
                s.member.encode_to(out);
                s.share.encode_to(out);
            }
            ChainLockGossip::Lock(cl) => {
                out.push(1);
                cl.encode_to(out);
            }
        }
    }
}

impl Decode for ChainLockGossip {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        match r.u8()? {
            0 => Ok(ChainLockGossip::Share(SigShare {
                quorum_hash: Hash256::decode_from(r)?,
                height: r.u64()?,
                block_hash: Hash256::decode_from(r)?,
                member: r.u16()?,
                share: r.array()?,
            })),
            1 => Ok(ChainLockGossip::Lock(ChainLock::decode_from(r)?)),
            t => Err(DecodeError::InvalidTag {
                what: "chainlock gossip",
                tag: u64::from(t),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rusty_shared_types::{arbitrary, decode_exact};

    use super::*;

    fn sig() -> impl Strategy<Value = [u8; 96]> {
        proptest::collection::vec(any::<u8>(), 96).prop_map(|v| {
            let mut a = [0u8; 96];
            a.copy_from_slice(&v);
            a
        })
    }

    fn body() -> impl Strategy<Value = DkgBody> {
        prop_oneof![
            (0usize..4, 0usize..4).prop_map(|(t, n)| DkgBody::Contribution {
                vvec: vec![[7; 48]; t],
                shares: vec![[9; ENCRYPTED_SHARE_SIZE]; n],
            }),
            arbitrary::bitset().prop_map(|bad| DkgBody::Complaint { bad }),
            proptest::collection::vec((any::<u16>(), any::<[u8; 32]>()), 0..4)
                .prop_map(|shares| DkgBody::Justification { shares }),
            (arbitrary::bitset(), sig(), sig()).prop_map(|(valid, op_sig, share_sig)| {
                DkgBody::Premature {
                    valid,
                    vvec: vec![[1; 48]; 2],
                    op_sig,
                    share_sig,
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn dkg_message_round_trips(q in arbitrary::hash(), s in arbitrary::hash(), body in body(), sig in sig()) {
            arbitrary::assert_round_trip(&DkgMessage { quorum_hash: q, sender: s, body, signature: sig });
        }

        #[test]
        fn gossip_round_trips(q in arbitrary::hash(), h: u64, b in arbitrary::hash(), m: u16, share in sig()) {
            arbitrary::assert_round_trip(&ChainLockGossip::Share(SigShare { quorum_hash: q, height: h, block_hash: b, member: m, share }));
            arbitrary::assert_round_trip(&ChainLockGossip::Lock(ChainLock { height: h, block_hash: b, signature: share }));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(m) = decode_exact::<DkgMessage>(&bytes) {
                prop_assert_eq!(m.encode(), bytes.clone());
            }
            if let Ok(g) = decode_exact::<ChainLockGossip>(&bytes) {
                prop_assert_eq!(g.encode(), bytes);
            }
        }
    }
}
