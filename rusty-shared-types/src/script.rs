//! Scripts as data: the byte string, the opcode table of FerrisScript and the
//! pay-to-pubkey-hash template. The interpreter lives in `rusty-vm`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    encoding::{write_bytes, Decode, DecodeResult, Encode, Reader},
    Hash256,
};

/// Largest lock or unlock script, in bytes.
pub const MAX_SCRIPT_SIZE: usize = 10_000;

/// Largest data pushed by one opcode (and largest stack element).
pub const MAX_PUSH_SIZE: usize = 520;

/// Largest payload of a data-carrier (`OP_RETURN`) output.
pub const MAX_DATA_CARRIER_SIZE: usize = 80;

/// FerrisScript opcodes. Bytes `0x01..=0x4b` push that many following bytes.
pub mod op {
    /// Pushes an empty element (false).
    pub const OP_0: u8 = 0x00;
    /// Pushes the next N bytes for N in `0x01..=0x4b`.
    pub const OP_PUSHBYTES_MAX: u8 = 0x4b;
    /// Next byte is a length, then that many bytes.
    pub const OP_PUSHDATA1: u8 = 0x4c;
    /// Next two bytes (LE) are a length, then that many bytes.
    pub const OP_PUSHDATA2: u8 = 0x4d;
    /// `OP_1`..`OP_16` push the numbers 1..16.
    pub const OP_1: u8 = 0x51;
    pub const OP_16: u8 = 0x60;
    pub const OP_IF: u8 = 0x63;
    pub const OP_NOTIF: u8 = 0x64;
    pub const OP_ELSE: u8 = 0x67;
    pub const OP_ENDIF: u8 = 0x68;
    pub const OP_VERIFY: u8 = 0x69;
    /// Marks an output provably unspendable (data carrier).
    pub const OP_RETURN: u8 = 0x6a;
    pub const OP_DROP: u8 = 0x75;
    pub const OP_DUP: u8 = 0x76;
    pub const OP_SWAP: u8 = 0x7c;
    pub const OP_SIZE: u8 = 0x82;
    pub const OP_EQUAL: u8 = 0x87;
    pub const OP_EQUALVERIFY: u8 = 0x88;
    pub const OP_NUMEQUAL: u8 = 0x9c;
    pub const OP_NUMEQUALVERIFY: u8 = 0x9d;
    /// SHA-256 of the top element (HTLC hashlocks shared with SHA-256 chains).
    pub const OP_SHA256: u8 = 0xa8;
    /// Domain-separated BLAKE3 public key hash (`Domain::PubkeyHash`).
    pub const OP_PUBKEYHASH: u8 = 0xa9;
    /// Plain BLAKE3 of the top element (HTLC hashlocks).
    pub const OP_BLAKE3: u8 = 0xaa;
    pub const OP_CHECKSIG: u8 = 0xac;
    pub const OP_CHECKSIGVERIFY: u8 = 0xad;
    pub const OP_CHECKLOCKTIMEVERIFY: u8 = 0xb1;
    pub const OP_CHECKSEQUENCEVERIFY: u8 = 0xb2;
    /// Taproot-style `sig n pk -- n+(sig valid)` for batch-friendly multisig.
    pub const OP_CHECKSIGADD: u8 = 0xba;
}

/// A lock or unlock script. The bytes are not parsed until executed.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Script(Vec<u8>);

impl Script {
    pub fn new(bytes: Vec<u8>) -> Script {
        Script(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `OP_DUP OP_PUBKEYHASH <32-byte hash> OP_EQUALVERIFY OP_CHECKSIG`.
    pub fn p2pkh(pubkey_hash: &Hash256) -> Script {
        let mut s = Vec::with_capacity(37);
        s.extend_from_slice(&[op::OP_DUP, op::OP_PUBKEYHASH, 32]);
        s.extend_from_slice(&pubkey_hash.0);
        s.extend_from_slice(&[op::OP_EQUALVERIFY, op::OP_CHECKSIG]);
        Script(s)
    }

    /// The public key hash if this is exactly the pay-to-pubkey-hash template.
    pub fn as_p2pkh(&self) -> Option<Hash256> {
        let s = &self.0;
        if s.len() == 37
            && s[0] == op::OP_DUP
            && s[1] == op::OP_PUBKEYHASH
            && s[2] == 32
            && s[35] == op::OP_EQUALVERIFY
            && s[36] == op::OP_CHECKSIG
        {
            let mut h = [0u8; 32];
            h.copy_from_slice(&s[3..35]);
            Some(Hash256(h))
        } else {
            None
        }
    }

    /// `OP_RETURN <data>`: a provably unspendable data carrier.
    pub fn data_carrier(data: &[u8]) -> Option<Script> {
        if data.len() > MAX_DATA_CARRIER_SIZE {
            return None;
        }
        let mut s = Vec::with_capacity(data.len() + 3);
        s.push(op::OP_RETURN);
        if !data.is_empty() {
            if data.len() <= usize::from(op::OP_PUSHBYTES_MAX) {
                s.push(data.len() as u8);
            } else {
                s.push(op::OP_PUSHDATA1);
                s.push(data.len() as u8);
            }
            s.extend_from_slice(data);
        }
        Some(Script(s))
    }

    /// Outputs locked by a script starting with `OP_RETURN`, or too large to
    /// ever execute, can never be spent and stay out of the UTXO set.
    pub fn is_unspendable(&self) -> bool {
        self.0.first() == Some(&op::OP_RETURN) || self.0.len() > MAX_SCRIPT_SIZE
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Script({})", hex::encode(&self.0))
    }
}

impl Encode for Script {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write_bytes(out, &self.0);
    }
    fn encoded_size_hint(&self) -> usize {
        self.0.len() + 3
    }
}

impl Decode for Script {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(Script(r.bytes("script", MAX_SCRIPT_SIZE)?))
    }
}

impl Serialize for Script {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Script {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = hex::decode(s).map_err(serde::de::Error::custom)?;
        if bytes.len() > MAX_SCRIPT_SIZE {
            return Err(serde::de::Error::custom("script too large"));
        }
        Ok(Script(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2pkh_template_round_trip() {
        let h = Hash256([7u8; 32]);
        let s = Script::p2pkh(&h);
        assert_eq!(s.as_p2pkh(), Some(h));
        assert!(!s.is_unspendable());
        let mut bad = s.clone().into_bytes();
        bad[36] = op::OP_CHECKSIGVERIFY;
        assert_eq!(Script::new(bad).as_p2pkh(), None);
    }

    #[test]
    fn data_carrier() {
        assert!(Script::data_carrier(&[1u8; 80]).unwrap().is_unspendable());
        assert!(Script::data_carrier(&[1u8; 81]).is_none());
    }
}
