//! Order-preserving key encodings: iteration follows the key order, so
//! integers are big-endian here (values use the little-endian canonical
//! encoding).

use rusty_shared_types::{DecodeError, Hash256, OutPoint};

/// A table key.
pub trait TableKey: Sized {
    fn encode_key(&self) -> Vec<u8>;
    fn decode_key(bytes: &[u8]) -> Result<Self, DecodeError>;
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], DecodeError> {
    bytes
        .try_into()
        .map_err(|_| DecodeError::InvalidValue("key length"))
}

impl TableKey for Hash256 {
    fn encode_key(&self) -> Vec<u8> {
        self.0.to_vec()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(Hash256(fixed(bytes)?))
    }
}

impl TableKey for u64 {
    fn encode_key(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(u64::from_be_bytes(fixed(bytes)?))
    }
}

impl TableKey for OutPoint {
    fn encode_key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(36);
        k.extend_from_slice(&self.txid.0);
        k.extend_from_slice(&self.vout.to_be_bytes());
        k
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, DecodeError> {
        let b: [u8; 36] = fixed(bytes)?;
        let mut txid = [0u8; 32];
        txid.copy_from_slice(&b[..32]);
        let vout = u32::from_be_bytes([b[32], b[33], b[34], b[35]]);
        Ok(OutPoint::new(Hash256(txid), vout))
    }
}
