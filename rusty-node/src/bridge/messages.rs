//! The swap protocol's messages between the two parties' nodes: offer,
//! accept, funded, abort (governance-crosschain.md B4). Each is signed by
//! its sender's key and names its swap, so the receiver can drop forged
//! ones and treat repeats as no-ops; redeems and refunds are read from the
//! chains, never from messages. Canonical encoding, strict decoders: text
//! fields are bounded and restricted to the characters they need, so a
//! decoded message re-encodes to exactly its bytes.
//!
//! Depends on `rusty-shared-types` and `rusty-crypto` only (the fuzz target
//! includes this file).

use rusty_crypto::{PublicKey, SecretKey, Signature};
use rusty_shared_types::{
    encoding::{write_bytes, DecodeResult, Reader},
    script::MAX_SCRIPT_SIZE,
    Decode, DecodeError, Domain, Encode, Hash256,
};

/// `kind` of a swap message in a direct frame.
pub const DIRECT_KIND_SWAP: u8 = 2;

/// Longest network name (`par-dev`, `eth:31337`).
pub const MAX_NETWORK_LEN: usize = 32;
/// Longest address (bech32m of our chains, `0x` + 40 hex for Ethereum).
pub const MAX_ADDRESS_LEN: usize = 96;
/// Longest abort reason.
pub const MAX_REASON_LEN: usize = 200;

/// Which hash locks a swap's HTLCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Blake3,
    Sha256,
}

impl HashAlg {
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Blake3 => "blake3",
            HashAlg::Sha256 => "sha256",
        }
    }

    fn tag(self) -> u8 {
        match self {
            HashAlg::Blake3 => 0,
            HashAlg::Sha256 => 1,
        }
    }
}

/// An amount of one chain's coin, in its base units.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Asset {
    /// The network's name (`dev`, `par-dev`, …).
    pub network: String,
    pub amount: u64,
}

/// What a swap message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapBody {
    /// The initiator proposes: it gives `give` (locked on its chain until
    /// height `t1`) for `want` (which the participant locks until `t2` on
    /// the other chain), both locked to `secret_hash`.
    Offer {
        swap_id: Hash256,
        give: Asset,
        want: Asset,
        hash_alg: HashAlg,
        secret_hash: [u8; 32],
        t1: u64,
        t2: u64,
        /// The initiator's address on the `want` chain (the participant's
        /// HTLC pays it).
        initiator_redeem: String,
        /// UNIX seconds after which the offer may not be accepted.
        offer_expiry: u64,
    },
    /// The participant takes the offer.
    Accept {
        swap_id: Hash256,
        /// The participant's address on the `give` chain (the initiator's
        /// HTLC pays it).
        participant_redeem: String,
    },
    /// The sender's HTLC is on chain: a hint, checked by audit.
    Funded {
        swap_id: Hash256,
        network: String,
        txid: Hash256,
        vout: u32,
        htlc_script: Vec<u8>,
        locktime: u64,
    },
    /// The sender gives up before funding.
    Abort { swap_id: Hash256, reason: String },
}

impl SwapBody {
    pub fn swap_id(&self) -> Hash256 {
        match self {
            SwapBody::Offer { swap_id, .. }
            | SwapBody::Accept { swap_id, .. }
            | SwapBody::Funded { swap_id, .. }
            | SwapBody::Abort { swap_id, .. } => *swap_id,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            SwapBody::Offer { .. } => "offer",
            SwapBody::Accept { .. } => "accept",
            SwapBody::Funded { .. } => "funded",
            SwapBody::Abort { .. } => "abort",
        }
    }
}

/// A swap message and its sender's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapMessage {
    pub sender: PublicKey,
    pub body: SwapBody,
    pub signature: Signature,
}

impl SwapMessage {
    /// `body` signed by `key`.
    pub fn sign(body: SwapBody, key: &SecretKey) -> SwapMessage {
        let sender = key.public_key();
        let hash = signing_hash(&sender, &body);
        SwapMessage {
            sender,
            signature: key.sign(hash.as_bytes()),
            body,
        }
    }

    /// Whether the signature is the sender's over this body.
    pub fn verify(&self) -> bool {
        let hash = signing_hash(&self.sender, &self.body);
        self.sender.verify(hash.as_bytes(), &self.signature).is_ok()
    }
}

/// What the sender signs: the domain-separated hash of its key and the body.
pub fn signing_hash(sender: &PublicKey, body: &SwapBody) -> Hash256 {
    let mut bytes = sender.as_bytes().to_vec();
    body.encode_to(&mut bytes);
    Hash256::domain_hash(Domain::SwapMessage, &bytes)
}

/// Network names are lowercase letters, digits, `-` and `:`.
fn valid_network(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NETWORK_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b':')
}

/// Addresses are ASCII letters and digits (bech32m, or `0x` hex).
fn valid_address(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ADDRESS_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Reasons are printable ASCII.
fn valid_reason(s: &str) -> bool {
    s.len() <= MAX_REASON_LEN && s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn read_text(
    r: &mut Reader<'_>,
    what: &'static str,
    max: usize,
    valid: fn(&str) -> bool,
) -> DecodeResult<String> {
    let bytes = r.bytes(what, max)?;
    let s = String::from_utf8(bytes).map_err(|_| DecodeError::InvalidValue(what))?;
    if !valid(&s) {
        return Err(DecodeError::InvalidValue(what));
    }
    Ok(s)
}

impl Encode for Asset {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write_bytes(out, self.network.as_bytes());
        self.amount.encode_to(out);
    }
}

impl Decode for Asset {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let network = read_text(r, "network", MAX_NETWORK_LEN, valid_network)?;
        let amount = r.u64()?;
        if amount == 0 {
            return Err(DecodeError::InvalidValue("amount"));
        }
        Ok(Asset { network, amount })
    }
}

impl Encode for SwapBody {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            SwapBody::Offer {
                swap_id,
                give,
                want,
                hash_alg,
                secret_hash,
                t1,
                t2,
                initiator_redeem,
                offer_expiry,
            } => {
                out.push(0);
                swap_id.encode_to(out);
                give.encode_to(out);
                want.encode_to(out);
                out.push(hash_alg.tag());
                out.extend_from_slice(secret_hash);
                t1.encode_to(out);
                t2.encode_to(out);
                write_bytes(out, initiator_redeem.as_bytes());
                offer_expiry.encode_to(out);
            }
            SwapBody::Accept {
                swap_id,
                participant_redeem,
            } => {
                out.push(1);
                swap_id.encode_to(out);
                write_bytes(out, participant_redeem.as_bytes());
            }
            SwapBody::Funded {
                swap_id,
                network,
                txid,
                vout,
                htlc_script,
                locktime,
            } => {
                out.push(2);
                swap_id.encode_to(out);
                write_bytes(out, network.as_bytes());
                txid.encode_to(out);
                vout.encode_to(out);
                write_bytes(out, htlc_script);
                locktime.encode_to(out);
            }
            SwapBody::Abort { swap_id, reason } => {
                out.push(3);
                swap_id.encode_to(out);
                write_bytes(out, reason.as_bytes());
            }
        }
    }
}

impl Decode for SwapBody {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let tag = r.u8()?;
        let swap_id = Hash256::decode_from(r)?;
        Ok(match tag {
            0 => {
                let give = Asset::decode_from(r)?;
                let want = Asset::decode_from(r)?;
                let hash_alg = match r.u8()? {
                    0 => HashAlg::Blake3,
                    1 => HashAlg::Sha256,
                    t => {
                        return Err(DecodeError::InvalidTag {
                            what: "hash algorithm",
                            tag: u64::from(t),
                        })
                    }
                };
                let secret_hash = r.array::<32>()?;
                let t1 = r.u64()?;
                let t2 = r.u64()?;
                let initiator_redeem = read_text(r, "address", MAX_ADDRESS_LEN, valid_address)?;
                let offer_expiry = r.u64()?;
                if give.network == want.network {
                    return Err(DecodeError::InvalidValue("offer on one network"));
                }
                SwapBody::Offer {
                    swap_id,
                    give,
                    want,
                    hash_alg,
                    secret_hash,
                    t1,
                    t2,
                    initiator_redeem,
                    offer_expiry,
                }
            }
            1 => SwapBody::Accept {
                swap_id,
                participant_redeem: read_text(r, "address", MAX_ADDRESS_LEN, valid_address)?,
            },
            2 => SwapBody::Funded {
                swap_id,
                network: read_text(r, "network", MAX_NETWORK_LEN, valid_network)?,
                txid: Hash256::decode_from(r)?,
                vout: r.u32()?,
                htlc_script: r.bytes("htlc script", MAX_SCRIPT_SIZE)?,
                locktime: r.u64()?,
            },
            3 => SwapBody::Abort {
                swap_id,
                reason: read_text(r, "reason", MAX_REASON_LEN, valid_reason)?,
            },
            t => {
                return Err(DecodeError::InvalidTag {
                    what: "swap message",
                    tag: u64::from(t),
                })
            }
        })
    }
}

impl Encode for SwapMessage {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.sender.as_bytes());
        self.body.encode_to(out);
        out.extend_from_slice(self.signature.as_bytes());
    }
}

impl Decode for SwapMessage {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(SwapMessage {
            sender: PublicKey(r.array::<32>()?),
            body: SwapBody::decode_from(r)?,
            signature: Signature(r.array::<64>()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rusty_shared_types::decode_exact;

    use super::*;

    fn network() -> impl Strategy<Value = String> {
        "[a-z0-9:-]{1,32}"
    }

    fn address() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9]{1,96}"
    }

    fn hash() -> impl Strategy<Value = Hash256> {
        any::<[u8; 32]>().prop_map(Hash256)
    }

    fn body() -> impl Strategy<Value = SwapBody> {
        prop_oneof![
            (
                hash(),
                (network(), 1..u64::MAX),
                (network(), 1..u64::MAX),
                any::<bool>(),
                any::<[u8; 32]>(),
                any::<(u64, u64, u64)>(),
                address()
            )
                .prop_filter("two networks", |(_, g, w, ..)| g.0 != w.0)
                .prop_map(
                    |(
                        swap_id,
                        give,
                        want,
                        sha,
                        secret_hash,
                        (t1, t2, offer_expiry),
                        initiator_redeem,
                    )| {
                        SwapBody::Offer {
                            swap_id,
                            give: Asset {
                                network: give.0,
                                amount: give.1,
                            },
                            want: Asset {
                                network: want.0,
                                amount: want.1,
                            },
                            hash_alg: if sha {
                                HashAlg::Sha256
                            } else {
                                HashAlg::Blake3
                            },
                            secret_hash,
                            t1,
                            t2,
                            initiator_redeem,
                            offer_expiry,
                        }
                    }
                ),
            (hash(), address()).prop_map(|(swap_id, participant_redeem)| SwapBody::Accept {
                swap_id,
                participant_redeem
            }),
            (
                hash(),
                network(),
                hash(),
                any::<u32>(),
                proptest::collection::vec(any::<u8>(), 0..200),
                any::<u64>()
            )
                .prop_map(|(swap_id, network, txid, vout, htlc_script, locktime)| {
                    SwapBody::Funded {
                        swap_id,
                        network,
                        txid,
                        vout,
                        htlc_script,
                        locktime,
                    }
                }),
            (hash(), "[ -~]{0,200}")
                .prop_map(|(swap_id, reason)| SwapBody::Abort { swap_id, reason }),
        ]
    }

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_bytes([seed; 32])
    }

    proptest! {
        #[test]
        fn signed_messages_round_trip_and_verify(body in body(), seed in 1u8..) {
            let m = SwapMessage::sign(body, &key(seed));
            let bytes = m.encode();
            let back = decode_exact::<SwapMessage>(&bytes).expect("decodes");
            prop_assert!(back.verify());
            prop_assert_eq!(back, m);
        }

        #[test]
        fn any_flipped_bit_is_refused_or_unsigned(body in body(), bit in any::<prop::sample::Index>()) {
            let bytes = SwapMessage::sign(body, &key(7)).encode();
            let mut forged = bytes.clone();
            let i = bit.index(bytes.len() * 8);
            forged[i / 8] ^= 1 << (i % 8);
            if let Ok(m) = decode_exact::<SwapMessage>(&forged) {
                prop_assert!(!m.verify(), "a forged message verified");
            }
        }

        #[test]
        fn arbitrary_bytes_decode_to_exact_encodings(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(m) = decode_exact::<SwapMessage>(&bytes) {
                prop_assert_eq!(m.encode(), bytes);
            }
        }
    }

    #[test]
    fn strict_fields_are_enforced() {
        let offer = |give: &str, want: &str, redeem: &str| SwapBody::Offer {
            swap_id: Hash256([1; 32]),
            give: Asset {
                network: give.into(),
                amount: 5,
            },
            want: Asset {
                network: want.into(),
                amount: 9,
            },
            hash_alg: HashAlg::Sha256,
            secret_hash: [2; 32],
            t1: 40,
            t2: 20,
            initiator_redeem: redeem.into(),
            offer_expiry: 1,
        };
        let decodes = |b: &SwapBody| decode_exact::<SwapBody>(&b.encode()).is_ok();
        assert!(decodes(&offer("dev", "par-dev", "dpar1abc")));
        assert!(!decodes(&offer("dev", "dev", "dpar1abc")), "one network");
        assert!(
            !decodes(&offer("DEV", "par-dev", "dpar1abc")),
            "uppercase network"
        );
        assert!(
            !decodes(&offer("dev", "par-dev", "dpar1 abc")),
            "space in address"
        );
        assert!(!decodes(&offer("dev", "par-dev", "")), "empty address");
        let mut zero = offer("dev", "par-dev", "x");
        if let SwapBody::Offer { give, .. } = &mut zero {
            give.amount = 0;
        }
        assert!(!decodes(&zero), "zero amount");
        let abort = SwapBody::Abort {
            swap_id: Hash256([1; 32]),
            reason: "bad\nline".into(),
        };
        assert!(!decodes(&abort), "control character in reason");
        let mut bytes = offer("dev", "par-dev", "x").encode();
        bytes.push(0);
        assert!(decode_exact::<SwapBody>(&bytes).is_err(), "trailing byte");
        bytes[0] = 9;
        assert!(decode_exact::<SwapBody>(&bytes).is_err(), "unknown tag");
    }
}
