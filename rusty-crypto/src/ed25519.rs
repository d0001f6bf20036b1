//! Consensus-safe Ed25519.
//!
//! Verification follows [ZIP-215] as implemented by `ed25519-zebra`: point encodings
//! need not be canonical, `s` must be canonical, and the cofactored equation
//! `[8][s]B = [8]R + [8][k]A` is checked. RFC 8032 lets implementations pick either the
//! cofactored or the cofactorless equation, and batch verification is necessarily
//! cofactored, so with other libraries a crafted signature can pass a batch yet fail
//! alone — a consensus split between nodes that validate differently. Under ZIP-215
//! [`verify`], [`BatchVerifier`] and [`verify_batch_parallel`] accept exactly the same
//! signatures.
//!
//! Consensus messages are 32-byte sighashes. [`BatchVerifier::queue`] hashes the message
//! into its challenge scalar on the spot, so queueing borrows the message and never
//! copies or allocates per message.
//!
//! [ZIP-215]: https://zips.z.cash/zip-0215

use std::{fmt, str::FromStr};

use ed25519_zebra::{batch, SigningKey, VerificationKey, VerificationKeyBytes};
use rusty_shared_types::{Domain, Hash256};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

use crate::{CryptoError, Result};

/// Below this many signatures per thread, spawning a thread costs more than it saves.
const MIN_SIGNATURES_PER_THREAD: usize = 8;

/// An Ed25519 public key: 32 bytes as they appear on chain.
///
/// The bytes are not checked to be a curve point on construction; [`verify`] rejects a
/// key that is not (a consensus rule, not a parse error, so a transaction carrying such
/// a key still decodes and is then found invalid).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature: `R || s`, 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

/// An Ed25519 signing key. Zeroized on drop; [`Debug`] shows only the public key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl PublicKey {
    /// The key's 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Checks `sig` over `msg` under this key; see [`verify`].
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<()> {
        verify(self, msg, sig)
    }
}

impl Signature {
    /// The signature's 64 bytes, `R || s`.
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    fn to_zebra(self) -> ed25519_zebra::Signature {
        ed25519_zebra::Signature::from_bytes(&self.0)
    }
}

impl SecretKey {
    /// A fresh key from the operating system's random number generator.
    ///
    /// # Panics
    ///
    /// If the OS generator fails, which on supported platforms means the system is
    /// unusable (the `getrandom` contract).
    pub fn generate() -> Self {
        SecretKey(SigningKey::new(rand_core::OsRng))
    }

    /// The key with the 32-byte RFC 8032 seed `bytes`; every value is a valid key.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretKey(SigningKey::from(bytes))
    }

    /// The 32-byte seed. The caller owns the copy and should zeroize it when done.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(VerificationKeyBytes::from(&self.0).into())
    }

    /// Signs `msg` (deterministic, RFC 8032).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg).to_bytes())
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// Verifies `sig` over `msg` under `pk` with the ZIP-215 rules.
pub fn verify(pk: &PublicKey, msg: &[u8], sig: &Signature) -> Result<()> {
    let vk = VerificationKey::try_from(pk.0).map_err(|_| CryptoError::InvalidPublicKey)?;
    vk.verify(&sig.to_zebra(), msg)
        .map_err(|_| CryptoError::InvalidSignature)
}

/// The hash committed to by pay-to-pubkey-hash scripts and addresses.
pub fn pubkey_hash(pk: &PublicKey) -> Hash256 {
    Hash256::domain_hash(Domain::PubkeyHash, &pk.0)
}

/// Collects signatures and verifies them together, about twice as fast as one by one.
///
/// The result is all-or-nothing: [`verify`](Self::verify) fails if any queued signature
/// is invalid (or any key malformed), without saying which. Callers that need the
/// culprit re-check the items individually, which is only worth doing on failure.
#[derive(Default)]
pub struct BatchVerifier {
    /// Each item already holds its challenge scalar `k = H(R || A || msg)`.
    items: Vec<batch::Item>,
}

impl BatchVerifier {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier with room for `capacity` signatures before it reallocates.
    pub fn with_capacity(capacity: usize) -> Self {
        BatchVerifier {
            items: Vec::with_capacity(capacity),
        }
    }

    /// Queues `sig` over `msg` under `pk`. `msg` is typically a `[u8; 32]` sighash but
    /// any byte slice works; it is hashed now and not retained.
    pub fn queue<M>(&mut self, pk: &PublicKey, msg: &M, sig: &Signature)
    where
        M: AsRef<[u8]> + ?Sized,
    {
        let vk = VerificationKeyBytes::from(pk.0);
        self.items
            .push(batch::Item::from((vk, sig.to_zebra(), msg)));
    }

    /// Number of signatures queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Verifies every queued signature; an empty batch is valid.
    ///
    /// Batch coefficients come from the thread-local CSPRNG: an attacker who could
    /// predict them could craft invalid signatures that cancel out in the sum.
    pub fn verify(mut self) -> Result<()> {
        // A batch of one has no terms to merge; plain verification is cheaper.
        if self.items.len() == 1 {
            return self
                .items
                .swap_remove(0)
                .verify_single()
                .map_err(|_| CryptoError::InvalidSignature);
        }
        let mut verifier = batch::Verifier::new();
        for item in self.items {
            verifier.queue(item);
        }
        verifier
            .verify(rand::thread_rng())
            .map_err(|_| CryptoError::InvalidSignature)
    }
}

impl fmt::Debug for BatchVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchVerifier")
            .field("len", &self.items.len())
            .finish()
    }
}

/// Batch-verifies `(public key, sighash, signature)` triples split across up to
/// `threads` threads (the calling thread is one of them). All-or-nothing like
/// [`BatchVerifier::verify`]; `threads == 0` is treated as 1.
pub fn verify_batch_parallel(
    items: Vec<(PublicKey, [u8; 32], Signature)>,
    threads: usize,
) -> Result<()> {
    let threads = threads
        .min(items.len().div_ceil(MIN_SIGNATURES_PER_THREAD))
        .max(1);
    if threads == 1 {
        return verify_chunk(&items);
    }
    let chunk_len = items.len().div_ceil(threads);

    std::thread::scope(|scope| {
        let mut chunks = items.chunks(chunk_len);
        let own = chunks.next();
        let workers: Vec<_> = chunks
            .map(|chunk| scope.spawn(move || verify_chunk(chunk)))
            .collect();
        let mut result = own.map_or(Ok(()), verify_chunk);
        for worker in workers {
            // Join every worker even after a failure so none outlives the scope's
            // borrow; a worker panic is a bug and is propagated as such.
            let outcome = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            result = result.and(outcome);
        }
        result
    })
}

/// Batch-verifies `items`; on failure (rare: an invalid block) checks them
/// one by one and returns the index of the first invalid signature, so the
/// caller can name its transaction. `None`: all valid.
pub fn first_invalid(items: &[(PublicKey, [u8; 32], Signature)]) -> Option<usize> {
    if verify_chunk(items).is_ok() {
        return None;
    }
    Some(
        items
            .iter()
            .position(|(pk, msg, sig)| verify(pk, msg, sig).is_err())
            .unwrap_or(0),
    )
}

fn verify_chunk(chunk: &[(PublicKey, [u8; 32], Signature)]) -> Result<()> {
    let mut batch = BatchVerifier::with_capacity(chunk.len());
    for (pk, msg, sig) in chunk {
        batch.queue(pk, msg, sig);
    }
    batch.verify()
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self> {
        decode_hex("public key", s).map(PublicKey)
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl FromStr for Signature {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self> {
        decode_hex("signature", s).map(Signature)
    }
}

fn decode_hex<const N: usize>(what: &'static str, s: &str) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|e| CryptoError::MalformedEncoding {
        what,
        reason: format!("expected {} hex digits: {e}", 2 * N),
    })?;
    Ok(out)
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_bytes([n; 32])
    }

    fn signed_sighashes(n: usize) -> Vec<(PublicKey, [u8; 32], Signature)> {
        (0..n)
            .map(|i| {
                let sk = key(i as u8);
                let msg = *Hash256::domain_hash(Domain::Sighash, &i.to_le_bytes()).as_bytes();
                (sk.public_key(), msg, sk.sign(&msg))
            })
            .collect()
    }

    #[test]
    fn rfc8032_test_1() {
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let sk = SecretKey::from_bytes(seed);
        assert_eq!(
            sk.public_key().to_string(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = sk.sign(b"");
        assert_eq!(
            sig.to_string(),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        verify(&sk.public_key(), b"", &sig).unwrap();
        assert_eq!(sk.to_bytes(), seed);
    }

    #[test]
    fn sign_verify_and_rejections() {
        let sk = SecretKey::generate();
        let pk = sk.public_key();
        let sig = sk.sign(b"pay alice");
        pk.verify(b"pay alice", &sig).unwrap();

        assert!(matches!(
            verify(&pk, b"pay mallory", &sig),
            Err(CryptoError::InvalidSignature)
        ));
        assert!(matches!(
            verify(&key(9).public_key(), b"pay alice", &sig),
            Err(CryptoError::InvalidSignature)
        ));
        let mut bad = sig;
        bad.0[40] ^= 1;
        assert!(verify(&pk, b"pay alice", &bad).is_err());
    }

    #[test]
    fn malformed_public_key_is_rejected() {
        // y = 2 is not the y-coordinate of any point on edwards25519.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        let pk = PublicKey(bytes);
        let sig = key(1).sign(b"m");
        assert!(matches!(
            verify(&pk, b"m", &sig),
            Err(CryptoError::InvalidPublicKey)
        ));
        let mut batch = BatchVerifier::new();
        batch.queue(&pk, b"m", &sig);
        batch.queue(&key(1).public_key(), b"m", &sig);
        assert!(batch.verify().is_err());
    }

    #[test]
    fn single_and_batch_agree_on_zip215_edge_cases() {
        // Identity public key, identity R, s = 0: accepted by the cofactored ZIP-215
        // equation. Libraries that differ here between single and batch checks can split
        // consensus; ours must agree with itself either way.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let pk = PublicKey(identity);
        let mut sig_bytes = [0u8; 64];
        sig_bytes[..32].copy_from_slice(&identity);
        let sig = Signature(sig_bytes);
        let msg = [7u8; 32];
        let single = verify(&pk, &msg, &sig).is_ok();
        assert!(single, "ZIP-215 accepts small-order keys");

        let mut batch = BatchVerifier::new();
        batch.queue(&pk, &msg, &sig);
        batch.queue(&pk, &[8u8; 32], &sig);
        assert_eq!(batch.verify().is_ok(), single);

        // Non-canonical s (s = l + small) is rejected by both.
        let sk = key(3);
        let mut sig = sk.sign(&msg);
        // l = 2^252 + 27742317777372353535851937790883648493; adding l to s keeps the
        // equation true but makes the encoding non-canonical.
        let l: [u8; 32] =
            hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
                .unwrap()
                .try_into()
                .unwrap();
        let mut carry = 0u16;
        for (s_byte, l_byte) in sig.0[32..].iter_mut().zip(l) {
            let sum = u16::from(*s_byte) + u16::from(l_byte) + carry;
            *s_byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        let single = verify(&sk.public_key(), &msg, &sig).is_ok();
        assert!(!single);
        let mut batch = BatchVerifier::new();
        batch.queue(&sk.public_key(), &msg, &sig);
        batch.queue(&key(4).public_key(), &msg, &key(4).sign(&msg));
        assert!(batch.verify().is_err());
    }

    #[test]
    fn rfc8032_test_2_batch() {
        let pk: PublicKey = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
            .parse()
            .unwrap();
        let sig: Signature = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00".parse().unwrap();
        verify(&pk, &[0x72], &sig).unwrap();
        let mut batch = BatchVerifier::new();
        batch.queue(&pk, &[0x72u8][..], &sig);
        batch.queue(&pk, &[0x72u8], &sig);
        batch.verify().unwrap();
    }

    #[test]
    fn batch_of_64_valid_passes() {
        let items = signed_sighashes(64);
        let mut batch = BatchVerifier::with_capacity(items.len());
        for (pk, msg, sig) in &items {
            batch.queue(pk, msg, sig);
        }
        assert_eq!(batch.len(), 64);
        batch.verify().unwrap();

        // Many signatures by one key take zebra's coalescing path.
        let sk = key(42);
        let mut batch = BatchVerifier::new();
        for i in 0u8..64 {
            let msg = [i; 32];
            batch.queue(&sk.public_key(), &msg, &sk.sign(&msg));
        }
        batch.verify().unwrap();
    }

    #[test]
    fn batch_with_one_bad_signature_fails() {
        for bad in [0, 31, 63] {
            let mut items = signed_sighashes(64);
            items[bad].1[0] ^= 1;
            let mut batch = BatchVerifier::new();
            for (pk, msg, sig) in &items {
                batch.queue(pk, msg, sig);
            }
            assert!(matches!(batch.verify(), Err(CryptoError::InvalidSignature)));
        }
    }

    #[test]
    fn small_batches() {
        assert!(BatchVerifier::new().is_empty());
        BatchVerifier::new().verify().unwrap();
        let mut one = signed_sighashes(1);
        let mut batch = BatchVerifier::new();
        batch.queue(&one[0].0, &one[0].1, &one[0].2);
        batch.verify().unwrap();
        one[0].2 .0[0] ^= 1;
        let mut batch = BatchVerifier::new();
        batch.queue(&one[0].0, &one[0].1, &one[0].2);
        assert!(batch.verify().is_err());
    }

    #[test]
    fn parallel_matches_batch() {
        for threads in [0, 1, 2, 3, 8] {
            for n in [0, 1, 7, 64, 101] {
                verify_batch_parallel(signed_sighashes(n), threads).unwrap();
            }
            // The bad signature lands in the first, a middle and the last chunk.
            for bad in [0, 50, 100] {
                let mut items = signed_sighashes(101);
                items[bad].2 .0[5] ^= 0x10;
                assert!(matches!(
                    verify_batch_parallel(items, threads),
                    Err(CryptoError::InvalidSignature)
                ));
            }
        }
    }

    #[test]
    fn pubkey_hash_is_domain_separated() {
        let pk = key(1).public_key();
        assert_eq!(
            pubkey_hash(&pk),
            Hash256::domain_hash(Domain::PubkeyHash, pk.as_bytes())
        );
        assert_ne!(pubkey_hash(&pk).0, *blake3::hash(&pk.0).as_bytes());
        assert_ne!(pubkey_hash(&pk), pubkey_hash(&key(2).public_key()));
    }

    #[test]
    fn hex_serde_and_debug() {
        let sk = key(5);
        let pk = sk.public_key();
        let sig = sk.sign(b"x");
        let json = serde_json::to_string(&(pk, sig)).unwrap();
        assert_eq!(json, format!("[\"{pk}\",\"{sig}\"]"));
        let back: (PublicKey, Signature) = serde_json::from_str(&json).unwrap();
        assert_eq!(back, (pk, sig));
        assert!(serde_json::from_str::<PublicKey>("\"abcd\"").is_err());
        assert!("zz".parse::<Signature>().is_err());

        let debug = format!("{sk:?}");
        assert!(debug.contains(&pk.to_string()));
        assert!(!debug.contains(&hex::encode(sk.to_bytes())));
    }

    proptest! {
        #[test]
        fn sign_verify_round_trip(seed in any::<[u8; 32]>(), msg in prop::collection::vec(any::<u8>(), 0..200), flip in any::<prop::sample::Index>()) {
            let sk = SecretKey::from_bytes(seed);
            let sig = sk.sign(&msg);
            prop_assert!(verify(&sk.public_key(), &msg, &sig).is_ok());
            let mut batch = BatchVerifier::new();
            batch.queue(&sk.public_key(), &msg[..], &sig);
            batch.queue(&sk.public_key(), &msg[..], &sig);
            prop_assert!(batch.verify().is_ok());

            if !msg.is_empty() {
                let mut other = msg.clone();
                other[flip.index(msg.len())] ^= 1;
                prop_assert!(verify(&sk.public_key(), &other, &sig).is_err());
            }
        }
    }
}
