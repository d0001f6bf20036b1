//! What speaking to Ethereum takes: Keccak-256, RLP encoding, secp256k1
//! keys and addresses, and signed legacy transactions with EIP-155 replay
//! protection. The bridge's Ethereum adapter signs its own transactions
//! with these, so it works against any Ethereum node, not only one that
//! holds its key.
//!
//! RLP itself is `rusty_shared_types::rlp`.

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use rusty_shared_types::rlp;

pub mod tx;

/// The pieces of the Solidity ABI the node's own calls need: function
/// selectors and 32-byte words (the bridge's HTLC calls, the ERC-20 bench).
pub mod abi {
    use super::{keccak256, EthAddress};

    /// The first four bytes of keccak256 of a function's signature.
    pub fn selector(signature: &str) -> [u8; 4] {
        let hash = keccak256(signature.as_bytes());
        [hash[0], hash[1], hash[2], hash[3]]
    }

    pub fn word_address(address: &EthAddress) -> [u8; 32] {
        let mut word = [0u8; 32];
        word[12..].copy_from_slice(address);
        word
    }

    pub fn word_uint(value: u128) -> [u8; 32] {
        let mut word = [0u8; 32];
        word[16..].copy_from_slice(&value.to_be_bytes());
        word
    }

    /// A call's data: the selector, then 32-byte words.
    pub fn call_data(function: &str, words: &[[u8; 32]]) -> Vec<u8> {
        let mut data = selector(function).to_vec();
        for word in words {
            data.extend_from_slice(word);
        }
        data
    }
}
use sha3::{Digest, Keccak256};
use thiserror::Error;

/// Keccak-256 (Ethereum's hash: the pre-standard padding, not SHA3-256).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// A 20-byte Ethereum address.
pub type EthAddress = [u8; 20];

/// `0x` and 40 lower-case hex digits (the form the bridge compares).
pub fn address_hex(address: &EthAddress) -> String {
    format!("0x{}", hex::encode(address))
}

/// An address from `0x` and 40 hex digits, any case (a mixed-case
/// checksum is not required, as most tools).
pub fn parse_address(s: &str) -> Result<EthAddress, EthError> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(digits).map_err(|_| EthError::Address(s.to_string()))?;
    bytes
        .try_into()
        .map_err(|_| EthError::Address(s.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EthError {
    #[error("not a secp256k1 private key (expected 32 bytes of hex, 0x optional)")]
    Key,
    #[error("`{0}` is not an Ethereum address (expected 0x and 40 hex digits)")]
    Address(String),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("the signature does not recover to a key")]
    Recover,
}

/// A secp256k1 key that signs Ethereum transactions.
#[derive(Clone)]
pub struct EthKey {
    key: SigningKey,
}

impl std::fmt::Debug for EthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EthKey({})", address_hex(&self.address()))
    }
}

impl EthKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<EthKey, EthError> {
        SigningKey::from_slice(bytes)
            .map(|key| EthKey { key })
            .map_err(|_| EthError::Key)
    }

    /// A key from hex text (as in a key file: `0x` optional, whitespace
    /// around it ignored).
    pub fn from_hex(text: &str) -> Result<EthKey, EthError> {
        let text = text.trim();
        let bytes =
            hex::decode(text.strip_prefix("0x").unwrap_or(text)).map_err(|_| EthError::Key)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| EthError::Key)?;
        EthKey::from_bytes(&bytes)
    }

    pub fn address(&self) -> EthAddress {
        public_key_address(self.key.verifying_key())
    }

    /// `(r, s, recovery id)` over a 32-byte hash, `s` in the lower half.
    fn sign_hash(&self, hash: &[u8; 32]) -> Result<([u8; 32], [u8; 32], u8), EthError> {
        let (signature, recovery) = self
            .key
            .sign_prehash_recoverable(hash)
            .map_err(|e| EthError::Sign(e.to_string()))?;
        // k256 signs with a low s already; normalising again is a no-op
        // then, and keeps the recovery id right if it ever is not.
        let (signature, recovery) = match signature.normalize_s() {
            Some(low) => (
                low,
                RecoveryId::new(!recovery.is_y_odd(), recovery.is_x_reduced()),
            ),
            None => (signature, recovery),
        };
        let (r, s) = signature.split_bytes();
        Ok((r.into(), s.into(), recovery.to_byte()))
    }
}

fn public_key_address(key: &VerifyingKey) -> EthAddress {
    point_address(key.as_affine())
}

/// keccak256 of the uncompressed point without its tag byte, last 20 bytes.
fn point_address(point: &k256::AffinePoint) -> EthAddress {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    let point = point.to_encoded_point(false);
    let hash = keccak256(&point.as_bytes()[1..]);
    let mut address = [0u8; 20];
    address.copy_from_slice(&hash[12..]);
    address
}

/// The address whose key signed `hash` as `(r, s, recovery id)`.
///
/// Recovery ids 0 and 1 (every Ethereum signature) take the direct
/// formula Q = r⁻¹(s·R − z·G) with one double-scalar multiplication. The
/// `ecdsa` crate's recovery also verifies the signature against the key
/// it recovered, which doubles the cost (recovery is most of what an
/// Ethereum transaction costs a block connect) and, for a low `s`, cannot
/// fail: with x(R) = r by construction, u₁G + u₂Q with u₁ = z/s,
/// u₂ = r/s is R again. A high `s` is refused, as that verification
/// refuses it. The rare ids 2 and 3 (x(R) = r + n) go through the `ecdsa`
/// crate.
pub fn recover_address(
    hash: &[u8; 32],
    r: &[u8; 32],
    s: &[u8; 32],
    recovery: u8,
) -> Result<EthAddress, EthError> {
    use k256::elliptic_curve::{
        ops::{Invert, LinearCombination, Reduce},
        point::DecompressPoint,
        scalar::IsHigh,
        subtle::Choice,
        Group, PrimeField,
    };
    use k256::{AffinePoint, ProjectivePoint, Scalar, U256};

    if recovery > 1 {
        let signature = Signature::from_scalars(*r, *s).map_err(|_| EthError::Recover)?;
        let recovery = RecoveryId::from_byte(recovery).ok_or(EthError::Recover)?;
        let key = VerifyingKey::recover_from_prehash(hash, &signature, recovery)
            .map_err(|_| EthError::Recover)?;
        return Ok(public_key_address(&key));
    }
    // r and s in [1, n-1], as `Signature::from_scalars` requires.
    let scalar = |bytes: &[u8; 32]| -> Result<Scalar, EthError> {
        let value: Option<Scalar> = Scalar::from_repr((*bytes).into()).into();
        value
            .filter(|v| !bool::from(v.is_zero()))
            .ok_or(EthError::Recover)
    };
    let (r_scalar, s_scalar) = (scalar(r)?, scalar(s)?);
    if bool::from(s_scalar.is_high()) {
        return Err(EthError::Recover);
    }
    let point: Option<AffinePoint> =
        AffinePoint::decompress(&(*r).into(), Choice::from(recovery)).into();
    let point = ProjectivePoint::from(point.ok_or(EthError::Recover)?);
    let z = <Scalar as Reduce<U256>>::reduce_bytes(&(*hash).into());
    // Variable time is fine: nothing here is secret.
    let r_inv: Scalar = Option::from(Invert::invert_vartime(&r_scalar)).ok_or(EthError::Recover)?;
    let u1 = -(r_inv * z);
    let u2 = r_inv * s_scalar;
    let q = ProjectivePoint::lincomb(&ProjectivePoint::GENERATOR, &u1, &point, &u2);
    if bool::from(q.is_identity()) {
        return Err(EthError::Recover);
    }
    Ok(point_address(&q.to_affine()))
}

/// A legacy (type 0) transaction, replay-protected by EIP-155.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyTx {
    pub nonce: u64,
    pub gas_price: u128,
    pub gas_limit: u64,
    /// `None` creates a contract.
    pub to: Option<EthAddress>,
    pub value: u128,
    pub data: Vec<u8>,
    pub chain_id: u64,
}

/// A signed transaction: its bytes for `eth_sendRawTransaction` and its
/// hash (keccak256 of the bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTx {
    pub raw: Vec<u8>,
    pub hash: [u8; 32],
}

impl LegacyTx {
    fn fields(&self) -> tx::EthTxFields {
        let mut value = [0u8; 32];
        value[16..].copy_from_slice(&self.value.to_be_bytes());
        tx::EthTxFields {
            tx_type: tx::EthTxType::Legacy,
            chain_id: Some(self.chain_id),
            nonce: self.nonce,
            max_priority_fee_per_gas: self.gas_price,
            max_fee_per_gas: self.gas_price,
            gas_limit: self.gas_limit,
            to: self.to,
            value,
            input: self.data.clone(),
            access_list: Vec::new(),
        }
    }

    /// What is signed (EIP-155): the fields, the chain id, 0, 0.
    pub fn signing_hash(&self) -> [u8; 32] {
        self.fields().signing_hash()
    }

    pub fn sign(&self, key: &EthKey) -> Result<SignedTx, EthError> {
        let raw = self.fields().sign(key)?;
        let hash = keccak256(&raw);
        Ok(SignedTx { raw, hash })
    }
}

/// The address a contract created by `sender` with `nonce` gets (CREATE).
pub fn create_address(sender: &EthAddress, nonce: u64) -> EthAddress {
    use rlp::Item;
    let encoded = rlp::encode(&Item::List(vec![
        Item::Bytes(sender.to_vec()),
        Item::uint(nonce.into()),
    ]));
    let hash = keccak256(&encoded);
    let mut address = [0u8; 20];
    address.copy_from_slice(&hash[12..]);
    address
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keccak_of_the_empty_string() {
        assert_eq!(
            hex::encode(keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    /// The well-known first development account of hardhat and anvil.
    #[test]
    fn address_of_a_known_key() {
        let key = EthKey::from_hex(
            "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n",
        )
        .unwrap();
        assert_eq!(
            address_hex(&key.address()),
            "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
        );
    }

    #[test]
    fn a_signature_recovers_to_its_signer() {
        let key = EthKey::from_bytes(&[7; 32]).unwrap();
        let hash = keccak256(b"swap");
        let (r, s, v) = key.sign_hash(&hash).unwrap();
        assert_eq!(recover_address(&hash, &r, &s, v).unwrap(), key.address());
        let other = recover_address(&hash, &r, &s, v ^ 1);
        assert_ne!(other.ok(), Some(key.address()));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// The direct recovery agrees with the `ecdsa` crate's checked one
        /// for real signatures, for the other parity, and for arbitrary
        /// `(r, s)`, high `s` included (refused by both).
        #[test]
        fn direct_recovery_agrees_with_the_checked_one(
            seed in proptest::array::uniform32(1u8..),
            hash in proptest::array::uniform32(proptest::num::u8::ANY),
            junk_r in proptest::array::uniform32(proptest::num::u8::ANY),
            junk_s in proptest::array::uniform32(proptest::num::u8::ANY),
        ) {
            let checked = |r: &[u8; 32], s: &[u8; 32], v: u8| -> Option<EthAddress> {
                let signature = Signature::from_scalars(*r, *s).ok()?;
                let id = RecoveryId::from_byte(v)?;
                VerifyingKey::recover_from_prehash(&hash, &signature, id)
                    .ok()
                    .map(|k| public_key_address(&k))
            };
            let key = EthKey::from_bytes(&seed).expect("a nonzero seed below n is a key");
            let (r, s, v) = key.sign_hash(&hash).expect("signs");
            proptest::prop_assert_eq!(recover_address(&hash, &r, &s, v).ok(), Some(key.address()));
            for (r, s, v) in [(r, s, v ^ 1), (junk_r, junk_s, 0), (junk_r, junk_s, 1)] {
                proptest::prop_assert_eq!(recover_address(&hash, &r, &s, v).ok(), checked(&r, &s, v));
            }
        }
    }

    /// The address of the first contract hardhat's account 0 deploys.
    #[test]
    fn create_address_of_a_known_deployer() {
        let sender = parse_address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266").unwrap();
        assert_eq!(
            address_hex(&create_address(&sender, 0)),
            "0x5fbdb2315678afecb367f032d93f642f64180aa3"
        );
    }

    #[test]
    fn bad_keys_and_addresses_are_refused() {
        assert_eq!(EthKey::from_hex("0x12").unwrap_err(), EthError::Key);
        assert_eq!(EthKey::from_bytes(&[0; 32]).unwrap_err(), EthError::Key);
        assert!(parse_address("0x1234").is_err());
        assert!(parse_address("0xzz39fd6e51aad88f6f4ce6ab8827279cfffb9226").is_err());
    }
}
