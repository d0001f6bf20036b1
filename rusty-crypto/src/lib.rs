//! Cryptographic primitives of Rusty Coin.
//!
//! This crate owns every algorithm the rest of the node relies on for integrity and
//! authenticity; no other crate talks to a curve, KDF or cipher library directly.
//!
//! - [`merkle`]: the BLAKE3 merkle root of a block's transactions (leaf and node
//!   domains kept apart; an odd node is promoted, never duplicated).
//! - [`ed25519`]: consensus-safe Ed25519 on `ed25519-zebra` (ZIP-215 rules, so single,
//!   batch and parallel batch verification always agree), [`PublicKey`], [`Signature`],
//!   [`SecretKey`], [`BatchVerifier`] and the pubkey hash used by addresses.
//! - [`hd`]: BIP-39 mnemonics and SLIP-0010 hardened Ed25519 key derivation for the
//!   wallet.
//! - [`bls`]: BLS12-381 (blst, min-pk) signatures with proofs of possession,
//!   aggregation, threshold secret sharing and DKG share encryption for
//!   masternode quorums (measured against raw `blst` by `rusty-bench`).
//! - [`eth`]: Keccak-256, RLP, secp256k1 keys and EIP-155 transactions, for
//!   the bridge's Ethereum adapter.
//! - [`keystore`]: the wallet seed encrypted at rest with Argon2id and
//!   XChaCha20-Poly1305, saved atomically with owner-only permissions.
//!
//! Hashes themselves ([`Hash256`](rusty_shared_types::Hash256) and its domains) live in
//! `rusty-shared-types` because plain data needs them too.
//!
//! The crate starts no tasks; the only threads it spawns are the scoped workers of
//! [`verify_batch_parallel`], which are joined before it returns.

// Tests may unwrap: a panic there is the failure report.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod bls;
pub mod ed25519;
pub mod eth;
pub mod hd;
pub mod keystore;
pub mod merkle;

pub use ed25519::{
    first_invalid, pubkey_hash, verify, verify_batch_parallel, BatchVerifier, PublicKey, SecretKey,
    Signature,
};
pub use hd::{ExtendedSecretKey, Mnemonic};
pub use keystore::{KdfParams, KeystoreFile};
pub use merkle::merkle_root;

/// Errors of the cryptographic primitives.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The 32 bytes are not the encoding of a curve point, so they cannot be an
    /// Ed25519 public key.
    #[error("malformed Ed25519 public key")]
    InvalidPublicKey,
    /// A signature (or at least one signature of a batch) does not verify.
    #[error("invalid Ed25519 signature")]
    InvalidSignature,
    /// Text or hex that should encode a key or signature does not.
    #[error("malformed {what}: {reason}")]
    MalformedEncoding {
        /// What was being decoded ("public key", "signature").
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A BIP-39 phrase or entropy was rejected (unknown word, bad checksum, bad length).
    #[error("invalid BIP-39 mnemonic: {0}")]
    InvalidMnemonic(#[source] bip39::Error),
    /// A master seed must be 16 to 64 bytes (128 to 512 bits, as BIP-32 and SLIP-0010
    /// require).
    #[error("seed of {0} bytes; expected 16 to 64")]
    InvalidSeedLength(usize),
    /// SLIP-0010 Ed25519 only defines hardened derivation; the index lacks the hardened bit.
    #[error("non-hardened derivation index {0} (Ed25519 keys derive hardened children only)")]
    NonHardenedIndex(u32),
    /// A derivation path string could not be parsed.
    #[error("invalid derivation path {path:?}: {reason}")]
    InvalidDerivationPath {
        /// The path as given.
        path: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The keystore could not be decrypted: the passphrase is wrong or the file was
    /// modified (an AEAD cannot tell the two apart, by design).
    #[error("wrong passphrase or corrupted keystore")]
    WrongPassphrase,
    /// The keystore uses a version, KDF or cipher this build does not implement.
    #[error("unsupported keystore: {0}")]
    UnsupportedKeystore(String),
    /// The keystore is structurally wrong: bad hex, wrong salt or nonce length,
    /// truncated ciphertext, oversized file.
    #[error("malformed keystore: {0}")]
    MalformedKeystore(String),
    /// The Argon2 cost parameters are outside the range we accept; checked before any
    /// memory is allocated, so a hostile file cannot exhaust RAM or CPU.
    #[error("KDF parameters out of bounds: {0}")]
    KdfParamsOutOfBounds(String),
    /// The key derivation function itself failed.
    #[error("key derivation failed: {0}")]
    Kdf(String),
    /// The secret to encrypt is larger than a keystore may hold.
    #[error("secret of {len} bytes exceeds the keystore limit of {max} bytes")]
    SecretTooLarge {
        /// Length of the secret given.
        len: usize,
        /// The largest secret accepted.
        max: usize,
    },
    /// The operating system's random number generator failed.
    #[error("OS random number generator failed: {0}")]
    Rng(String),
    /// The keystore file is not valid JSON of the expected shape.
    #[error("keystore JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Reading or writing a keystore file failed.
    #[error("keystore I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Result of the cryptographic primitives.
pub type Result<T, E = CryptoError> = std::result::Result<T, E>;
