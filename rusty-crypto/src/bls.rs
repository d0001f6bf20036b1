//! BLS12-381 signatures and threshold secret sharing for masternode quorums.
//!
//! - Scheme: `blst` min-pk (48-byte public keys in G1, 96-byte signatures in
//!   G2) with the IETF proof-of-possession ciphersuite, so signatures of
//!   one message by many keys aggregate and verify against the aggregated
//!   key ([`Signature::fast_aggregate_verify`]) without rogue-key attacks,
//!   provided every key came with a valid [`PublicKey::verify_possession`].
//! - Decoders validate: public keys and signatures must be on the curve, in
//!   the prime-order subgroup and not the identity.
//! - Threshold: a secret [`Polynomial`] of degree `t − 1` over the scalar
//!   field; member `i`'s share is its value at the member's [`MemberId`];
//!   the public [`VerificationVector`] (the coefficients times the G1
//!   generator) lets anyone check a share and derive any member's public
//!   share. Any `t` signature shares recover the quorum signature by
//!   Lagrange interpolation at zero ([`recover_signature`]).
//! - [`EncryptedShare`]: a DKG share encrypted to a member's operator key
//!   (ephemeral Diffie-Hellman in G1, BLAKE3 key derivation,
//!   XChaCha20-Poly1305).
//!
//! Scalar arithmetic is done here (mod r, with `ruint`); group arithmetic
//! only through `blst`'s safe API (multi-scalar multiplication), so the
//! crate stays free of `unsafe`.

use blst::{
    blst_p1_affine, blst_p2_affine,
    min_pk::{
        AggregatePublicKey, AggregateSignature, PublicKey as BlstPublicKey,
        SecretKey as BlstSecretKey, Signature as BlstSignature,
    },
    MultiPoint, BLST_ERROR,
};
use chacha20poly1305::{
    aead::{Aead, KeyInit},
    XChaCha20Poly1305, XNonce,
};
use std::ops::{Add, Mul, Sub};

use rand_core::{CryptoRng, RngCore};
use ruint::aliases::{U256, U512};

/// Domain separation of signatures (IETF BLS, proof-of-possession suite).
pub const DST_SIGNATURE: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// Domain separation of proofs of possession.
pub const DST_POSSESSION: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

pub const SECRET_KEY_SIZE: usize = 32;
pub const PUBLIC_KEY_SIZE: usize = 48;
pub const SIGNATURE_SIZE: usize = 96;

/// The order r of the BLS12-381 scalar field.
const R: U256 =
    ruint::uint!(0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001_U256);

/// Why a BLS operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlsError {
    #[error("invalid BLS secret key (zero or not below the group order)")]
    InvalidSecretKey,
    #[error("invalid BLS public key: {0}")]
    InvalidPublicKey(&'static str),
    #[error("invalid BLS signature: {0}")]
    InvalidSignature(&'static str),
    #[error("nothing to aggregate")]
    Empty,
    #[error("{got} shares, {needed} needed")]
    NotEnoughShares { got: usize, needed: usize },
    #[error("two shares from the same member")]
    DuplicateMember,
    #[error("encrypted share does not decrypt under this key")]
    Decryption,
    #[error("a threshold must be between 1 and the member count")]
    BadThreshold,
}

fn describe(e: BLST_ERROR) -> &'static str {
    match e {
        BLST_ERROR::BLST_BAD_ENCODING => "bad encoding",
        BLST_ERROR::BLST_POINT_NOT_ON_CURVE => "point not on the curve",
        BLST_ERROR::BLST_POINT_NOT_IN_GROUP => "point not in the subgroup",
        BLST_ERROR::BLST_PK_IS_INFINITY => "identity point",
        _ => "rejected",
    }
}

// ---------------------------------------------------------------------------
// Scalars mod r.

/// An element of the scalar field (mod r).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Scalar(U256);

impl Scalar {
    pub const ZERO: Scalar = Scalar(U256::ZERO);
    pub const ONE: Scalar = Scalar(U256::from_limbs([1, 0, 0, 0]));

    /// A uniformly random scalar (512 random bits reduced mod r).
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Scalar {
        let mut wide = [0u8; 64];
        rng.fill_bytes(&mut wide);
        Scalar::from_wide(&wide)
    }

    /// 64 bytes (big-endian) reduced mod r: unbiased for hash outputs.
    pub fn from_wide(bytes: &[u8; 64]) -> Scalar {
        let wide = U512::from_be_bytes(*bytes);
        let r = U512::from(R);
        let reduced = wide.reduce_mod(r);
        let limbs = reduced.as_limbs();
        Scalar(U256::from_limbs([limbs[0], limbs[1], limbs[2], limbs[3]]))
    }

    /// Hashes `data` into a scalar (BLAKE3 XOF under `context`).
    pub fn hash(context: &str, data: &[u8]) -> Scalar {
        let mut h = blake3::Hasher::new_derive_key(context);
        h.update(data);
        let mut wide = [0u8; 64];
        h.finalize_xof().fill(&mut wide);
        Scalar::from_wide(&wide)
    }

    /// A canonical big-endian encoding (must be below r).
    pub fn from_be_bytes(bytes: &[u8; 32]) -> Option<Scalar> {
        let v = U256::from_be_bytes(*bytes);
        (v < R).then_some(Scalar(v))
    }

    pub fn to_be_bytes(self) -> [u8; 32] {
        self.0.to_be_bytes()
    }

    /// Little-endian, as `blst`'s multi-scalar multiplication wants.
    fn to_le_bytes(self) -> [u8; 32] {
        self.0.to_le_bytes()
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// The multiplicative inverse; `None` for zero.
    pub fn invert(self) -> Option<Scalar> {
        self.0.inv_mod(R).map(Scalar)
    }
}

impl Add for Scalar {
    type Output = Scalar;
    fn add(self, o: Scalar) -> Scalar {
        Scalar(self.0.add_mod(o.0, R))
    }
}

impl Sub for Scalar {
    type Output = Scalar;
    fn sub(self, o: Scalar) -> Scalar {
        Scalar(self.0.add_mod(R - o.0.reduce_mod(R), R))
    }
}

impl Mul for Scalar {
    type Output = Scalar;
    fn mul(self, o: Scalar) -> Scalar {
        Scalar(self.0.mul_mod(o.0, R))
    }
}

/// Σ scalar_i · point_i in G1.
fn msm_g1(points: &[blst_p1_affine], scalars: &[Scalar]) -> AggregatePublicKey {
    let bytes: Vec<u8> = scalars.iter().flat_map(|s| s.to_le_bytes()).collect();
    AggregatePublicKey::from(points.mult(&bytes, 255))
}

/// Σ scalar_i · point_i in G2.
fn msm_g2(points: &[blst_p2_affine], scalars: &[Scalar]) -> AggregateSignature {
    let bytes: Vec<u8> = scalars.iter().flat_map(|s| s.to_le_bytes()).collect();
    AggregateSignature::from(points.mult(&bytes, 255))
}

// ---------------------------------------------------------------------------
// Keys and signatures.

/// A BLS secret key (zeroized by `blst` when dropped).
#[derive(Clone)]
pub struct SecretKey(BlstSecretKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bls::SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> SecretKey {
        loop {
            if let Ok(k) = SecretKey::from_scalar(Scalar::random(rng)) {
                return k;
            }
        }
    }

    /// The key with this scalar; zero is refused.
    pub fn from_scalar(s: Scalar) -> Result<SecretKey, BlsError> {
        if s.is_zero() {
            return Err(BlsError::InvalidSecretKey);
        }
        BlstSecretKey::from_bytes(&s.to_be_bytes())
            .map(SecretKey)
            .map_err(|_| BlsError::InvalidSecretKey)
    }

    pub fn from_bytes(bytes: &[u8; SECRET_KEY_SIZE]) -> Result<SecretKey, BlsError> {
        let s = Scalar::from_be_bytes(bytes).ok_or(BlsError::InvalidSecretKey)?;
        SecretKey::from_scalar(s)
    }

    pub fn to_bytes(&self) -> [u8; SECRET_KEY_SIZE] {
        self.0.to_bytes()
    }

    fn scalar(&self) -> Scalar {
        // A valid key is below r by construction.
        Scalar(U256::from_be_bytes(self.0.to_bytes()))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.sk_to_pk())
    }

    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg, DST_SIGNATURE, &[]))
    }

    /// A proof that the holder of this key registered its public key.
    pub fn prove_possession(&self) -> Signature {
        Signature(
            self.0
                .sign(&self.public_key().to_bytes(), DST_POSSESSION, &[]),
        )
    }
}

/// A validated BLS public key (in G1, not the identity).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(BlstPublicKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bls::PublicKey({})", hex::encode(self.to_bytes()))
    }
}

impl PublicKey {
    /// Decodes a compressed key; rejects points off the curve, outside the
    /// subgroup, and the identity.
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicKey, BlsError> {
        BlstPublicKey::key_validate(bytes)
            .map(PublicKey)
            .map_err(|e| BlsError::InvalidPublicKey(describe(e)))
    }

    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_SIZE] {
        self.0.compress()
    }

    /// Checks a proof of possession made by [`SecretKey::prove_possession`].
    pub fn verify_possession(&self, proof: &Signature) -> bool {
        proof
            .0
            .verify(true, &self.to_bytes(), DST_POSSESSION, &[], &self.0, false)
            == BLST_ERROR::BLST_SUCCESS
    }

    /// The sum of keys (for one message signed by all of them). Only safe
    /// for keys with verified proofs of possession.
    pub fn aggregate(keys: &[PublicKey]) -> Result<PublicKey, BlsError> {
        if keys.is_empty() {
            return Err(BlsError::Empty);
        }
        let refs: Vec<&BlstPublicKey> = keys.iter().map(|k| &k.0).collect();
        let agg = AggregatePublicKey::aggregate(&refs, false)
            .map_err(|e| BlsError::InvalidPublicKey(describe(e)))?;
        PublicKey::checked(agg.to_public_key())
    }

    fn checked(pk: BlstPublicKey) -> Result<PublicKey, BlsError> {
        pk.validate()
            .map(|_| PublicKey(pk))
            .map_err(|e| BlsError::InvalidPublicKey(describe(e)))
    }

    fn affine(&self) -> blst_p1_affine {
        *<&blst_p1_affine>::from(&self.0)
    }
}

/// A validated BLS signature (in G2, not the identity).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(BlstSignature);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bls::Signature({})", hex::encode(self.to_bytes()))
    }
}

impl Signature {
    /// Decodes a compressed signature; rejects points off the curve,
    /// outside the subgroup, and the identity.
    pub fn from_bytes(bytes: &[u8]) -> Result<Signature, BlsError> {
        BlstSignature::sig_validate(bytes, true)
            .map(Signature)
            .map_err(|e| BlsError::InvalidSignature(describe(e)))
    }

    pub fn to_bytes(&self) -> [u8; SIGNATURE_SIZE] {
        self.0.compress()
    }

    pub fn verify(&self, msg: &[u8], key: &PublicKey) -> bool {
        self.0.verify(false, msg, DST_SIGNATURE, &[], &key.0, false) == BLST_ERROR::BLST_SUCCESS
    }

    /// The sum of signatures.
    pub fn aggregate(sigs: &[Signature]) -> Result<Signature, BlsError> {
        if sigs.is_empty() {
            return Err(BlsError::Empty);
        }
        let refs: Vec<&BlstSignature> = sigs.iter().map(|s| &s.0).collect();
        let agg = AggregateSignature::aggregate(&refs, false)
            .map_err(|e| BlsError::InvalidSignature(describe(e)))?;
        Signature::checked(agg.to_signature())
    }

    /// One message signed by every key (keys need proofs of possession).
    pub fn fast_aggregate_verify(&self, msg: &[u8], keys: &[PublicKey]) -> bool {
        if keys.is_empty() {
            return false;
        }
        let refs: Vec<&BlstPublicKey> = keys.iter().map(|k| &k.0).collect();
        self.0
            .fast_aggregate_verify(false, msg, DST_SIGNATURE, &refs)
            == BLST_ERROR::BLST_SUCCESS
    }

    /// Message `i` signed by key `i`, all aggregated into `self`.
    pub fn aggregate_verify(&self, msgs: &[&[u8]], keys: &[PublicKey]) -> bool {
        if keys.is_empty() || msgs.len() != keys.len() {
            return false;
        }
        let refs: Vec<&BlstPublicKey> = keys.iter().map(|k| &k.0).collect();
        self.0
            .aggregate_verify(false, msgs, DST_SIGNATURE, &refs, false)
            == BLST_ERROR::BLST_SUCCESS
    }

    fn checked(sig: BlstSignature) -> Result<Signature, BlsError> {
        sig.validate(true)
            .map(|_| Signature(sig))
            .map_err(|e| BlsError::InvalidSignature(describe(e)))
    }

    fn affine(&self) -> blst_p2_affine {
        *<&blst_p2_affine>::from(&self.0)
    }
}

// ---------------------------------------------------------------------------
// Threshold secret sharing.

/// A quorum member's evaluation point: a nonzero scalar derived from its
/// identity (e.g. the masternode's registration hash).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MemberId(Scalar);

impl MemberId {
    pub fn from_identity(identity: &[u8]) -> MemberId {
        let s = Scalar::hash("rusty-coin bls member-id v1", identity);
        // Zero would be the secret itself; the chance is 2^-255.
        MemberId(if s.is_zero() { Scalar::ONE } else { s })
    }

    pub fn scalar(self) -> Scalar {
        self.0
    }
}

/// A secret polynomial; its constant term is the shared secret.
pub struct Polynomial {
    coefficients: Vec<Scalar>,
}

impl std::fmt::Debug for Polynomial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Polynomial(degree {}, <redacted>)",
            self.coefficients.len() - 1
        )
    }
}

impl Drop for Polynomial {
    fn drop(&mut self) {
        for c in &mut self.coefficients {
            *c = Scalar::ZERO;
        }
    }
}

impl Polynomial {
    /// A random polynomial for a `threshold`-of-n sharing (degree
    /// `threshold − 1`), every coefficient nonzero.
    pub fn random<R: RngCore + CryptoRng>(
        threshold: usize,
        rng: &mut R,
    ) -> Result<Polynomial, BlsError> {
        if threshold == 0 {
            return Err(BlsError::BadThreshold);
        }
        let coefficients = (0..threshold)
            .map(|_| loop {
                let s = Scalar::random(rng);
                if !s.is_zero() {
                    break s;
                }
            })
            .collect();
        Ok(Polynomial { coefficients })
    }

    pub fn threshold(&self) -> usize {
        self.coefficients.len()
    }

    /// The value at `x` (Horner).
    pub fn evaluate(&self, x: Scalar) -> Scalar {
        self.coefficients
            .iter()
            .rev()
            .fold(Scalar::ZERO, |acc, c| acc.mul(x).add(*c))
    }

    /// The share of `member`.
    pub fn share(&self, member: MemberId) -> Result<SecretKey, BlsError> {
        SecretKey::from_scalar(self.evaluate(member.0))
    }

    /// The shared secret (the constant term).
    pub fn secret(&self) -> Result<SecretKey, BlsError> {
        SecretKey::from_scalar(self.coefficients[0])
    }

    /// The public commitments to the coefficients.
    pub fn verification_vector(&self) -> Result<VerificationVector, BlsError> {
        let keys = self
            .coefficients
            .iter()
            .map(|c| SecretKey::from_scalar(*c).map(|k| k.public_key()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(VerificationVector(keys))
    }
}

/// `coefficient_i · G1` of a secret polynomial: public, lets anyone check
/// shares and compute public shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationVector(Vec<PublicKey>);

impl VerificationVector {
    pub fn new(commitments: Vec<PublicKey>) -> Result<VerificationVector, BlsError> {
        if commitments.is_empty() {
            return Err(BlsError::Empty);
        }
        Ok(VerificationVector(commitments))
    }

    pub fn commitments(&self) -> &[PublicKey] {
        &self.0
    }

    pub fn threshold(&self) -> usize {
        self.0.len()
    }

    /// The public key of the shared secret.
    pub fn public_key(&self) -> PublicKey {
        self.0[0]
    }

    /// `share(member) · G1`, computed from the commitments alone.
    pub fn public_share(&self, member: MemberId) -> Result<PublicKey, BlsError> {
        let mut powers = Vec::with_capacity(self.0.len());
        let mut p = Scalar::ONE;
        for _ in 0..self.0.len() {
            powers.push(p);
            p = p.mul(member.0);
        }
        let points: Vec<blst_p1_affine> = self.0.iter().map(|k| k.affine()).collect();
        PublicKey::checked(msm_g1(&points, &powers).to_public_key())
    }

    /// Whether `share` is the value of the committed polynomial at `member`.
    pub fn verify_share(&self, member: MemberId, share: &SecretKey) -> bool {
        self.public_share(member)
            .is_ok_and(|expected| expected == share.public_key())
    }

    /// The commitments of the sum of the polynomials (a DKG combines the
    /// qualified contributions this way).
    pub fn sum(vectors: &[VerificationVector]) -> Result<VerificationVector, BlsError> {
        let first = vectors.first().ok_or(BlsError::Empty)?;
        if vectors.iter().any(|v| v.0.len() != first.0.len()) {
            return Err(BlsError::BadThreshold);
        }
        let keys = (0..first.0.len())
            .map(|i| PublicKey::aggregate(&vectors.iter().map(|v| v.0[i]).collect::<Vec<_>>()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(VerificationVector(keys))
    }
}

/// The sum of secret shares one member received (its final share of the
/// summed polynomial).
pub fn sum_shares(shares: &[SecretKey]) -> Result<SecretKey, BlsError> {
    let s = shares
        .iter()
        .fold(Scalar::ZERO, |acc, k| acc.add(k.scalar()));
    SecretKey::from_scalar(s)
}

/// Lagrange coefficients at zero for the points `xs` (distinct, nonzero).
fn lagrange_at_zero(xs: &[Scalar]) -> Result<Vec<Scalar>, BlsError> {
    let mut out = Vec::with_capacity(xs.len());
    for (i, xi) in xs.iter().enumerate() {
        let mut num = Scalar::ONE;
        let mut den = Scalar::ONE;
        for (j, xj) in xs.iter().enumerate() {
            if i == j {
                continue;
            }
            num = num.mul(*xj);
            den = den.mul(xj.sub(*xi));
        }
        out.push(num.mul(den.invert().ok_or(BlsError::DuplicateMember)?));
    }
    Ok(out)
}

/// The Lagrange coefficients at zero of the first `threshold` shares, and
/// those shares' values, after checking there are enough shares from
/// distinct members.
fn interpolation<T>(
    shares: &[(MemberId, T)],
    threshold: usize,
) -> Result<(Vec<Scalar>, impl Iterator<Item = &T>), BlsError> {
    if threshold == 0 {
        return Err(BlsError::BadThreshold);
    }
    if shares.len() < threshold {
        return Err(BlsError::NotEnoughShares {
            got: shares.len(),
            needed: threshold,
        });
    }
    let mut seen = std::collections::HashSet::new();
    if !shares.iter().all(|(id, _)| seen.insert(id.0.to_be_bytes())) {
        return Err(BlsError::DuplicateMember);
    }
    let used = &shares[..threshold];
    let xs: Vec<Scalar> = used.iter().map(|(id, _)| id.0).collect();
    Ok((lagrange_at_zero(&xs)?, used.iter().map(|(_, v)| v)))
}

/// The quorum signature from `threshold` signature shares (extra shares
/// are ignored). Shares are not checked here: verify each against its
/// member's public share first, or verify the result.
pub fn recover_signature(
    shares: &[(MemberId, Signature)],
    threshold: usize,
) -> Result<Signature, BlsError> {
    let (lambdas, sigs) = interpolation(shares, threshold)?;
    let points: Vec<blst_p2_affine> = sigs.map(Signature::affine).collect();
    Signature::checked(msm_g2(&points, &lambdas).to_signature())
}

/// The quorum public key from `threshold` public shares.
pub fn recover_public_key(
    shares: &[(MemberId, PublicKey)],
    threshold: usize,
) -> Result<PublicKey, BlsError> {
    let (lambdas, keys) = interpolation(shares, threshold)?;
    let points: Vec<blst_p1_affine> = keys.map(PublicKey::affine).collect();
    PublicKey::checked(msm_g1(&points, &lambdas).to_public_key())
}

// ---------------------------------------------------------------------------
// Share encryption.

/// A secret share encrypted to one member's BLS operator key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedShare {
    /// `e · G1` for the sender's ephemeral scalar `e`.
    pub ephemeral: [u8; PUBLIC_KEY_SIZE],
    pub nonce: [u8; 24],
    /// The 32-byte share and the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

fn share_key(shared_point: &PublicKey, ephemeral: &[u8; PUBLIC_KEY_SIZE]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("rusty-coin dkg share-encryption v1");
    h.update(&shared_point.to_bytes());
    h.update(ephemeral);
    *h.finalize().as_bytes()
}

/// `s · P` for a secret scalar and a public point.
fn dh(secret: &SecretKey, point: &PublicKey) -> Result<PublicKey, BlsError> {
    PublicKey::checked(msm_g1(&[point.affine()], &[secret.scalar()]).to_public_key())
}

impl EncryptedShare {
    /// Encrypts `share` so that only the holder of `recipient`'s secret key
    /// can read it; `context` (e.g. quorum hash and member index) is bound
    /// as associated data.
    pub fn encrypt<R: RngCore + CryptoRng>(
        share: &SecretKey,
        recipient: &PublicKey,
        context: &[u8],
        rng: &mut R,
    ) -> Result<EncryptedShare, BlsError> {
        let e = SecretKey::generate(rng);
        let ephemeral = e.public_key().to_bytes();
        let key = share_key(&dh(&e, recipient)?, &ephemeral);
        let mut nonce = [0u8; 24];
        rng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new((&key).into());
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                chacha20poly1305::aead::Payload {
                    msg: &share.to_bytes(),
                    aad: context,
                },
            )
            .map_err(|_| BlsError::Decryption)?;
        Ok(EncryptedShare {
            ephemeral,
            nonce,
            ciphertext,
        })
    }

    /// Decrypts with the recipient's secret key.
    pub fn decrypt(&self, recipient: &SecretKey, context: &[u8]) -> Result<SecretKey, BlsError> {
        let eph = PublicKey::from_bytes(&self.ephemeral)?;
        let key = share_key(&dh(recipient, &eph)?, &self.ephemeral);
        let cipher = XChaCha20Poly1305::new((&key).into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(&self.nonce),
                chacha20poly1305::aead::Payload {
                    msg: &self.ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| BlsError::Decryption)?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| BlsError::Decryption)?;
        SecretKey::from_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{rngs::StdRng, SeedableRng};

    fn rng(seed: u64) -> StdRng {
        StdRng::seed_from_u64(seed)
    }

    #[test]
    fn sign_verify_and_encodings() {
        let mut r = rng(1);
        let sk = SecretKey::generate(&mut r);
        let pk = sk.public_key();
        let sig = sk.sign(b"block");
        assert!(sig.verify(b"block", &pk));
        assert!(!sig.verify(b"blocks", &pk));
        assert!(!sig.verify(b"block", &SecretKey::generate(&mut r).public_key()));
        assert_eq!(PublicKey::from_bytes(&pk.to_bytes()), Ok(pk));
        assert_eq!(Signature::from_bytes(&sig.to_bytes()), Ok(sig));
        assert_eq!(
            SecretKey::from_bytes(&sk.to_bytes()).map(|k| k.public_key()),
            Ok(pk)
        );
        // Garbage, the identity and out-of-range scalars are refused.
        assert!(PublicKey::from_bytes(&[0u8; 48]).is_err());
        let mut inf = [0u8; 48];
        inf[0] = 0xc0;
        assert!(PublicKey::from_bytes(&inf).is_err());
        let mut inf_sig = [0u8; 96];
        inf_sig[0] = 0xc0;
        assert!(Signature::from_bytes(&inf_sig).is_err());
        assert!(SecretKey::from_bytes(&[0u8; 32]).is_err());
        assert!(SecretKey::from_bytes(&[0xff; 32]).is_err());
    }

    #[test]
    fn possession_proofs_and_aggregation() {
        let mut r = rng(2);
        let keys: Vec<SecretKey> = (0..5).map(|_| SecretKey::generate(&mut r)).collect();
        let pks: Vec<PublicKey> = keys.iter().map(|k| k.public_key()).collect();
        for (k, pk) in keys.iter().zip(&pks) {
            assert!(pk.verify_possession(&k.prove_possession()));
            // A signature of the key bytes is not a proof (other domain).
            assert!(!pk.verify_possession(&k.sign(&pk.to_bytes())));
        }
        let sigs: Vec<Signature> = keys.iter().map(|k| k.sign(b"m")).collect();
        let agg = Signature::aggregate(&sigs).unwrap();
        assert!(agg.fast_aggregate_verify(b"m", &pks));
        assert!(agg.verify(b"m", &PublicKey::aggregate(&pks).unwrap()));
        assert!(!agg.fast_aggregate_verify(b"m", &pks[..4]));
        let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i]).collect();
        let distinct: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let agg = Signature::aggregate(&distinct).unwrap();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        assert!(agg.aggregate_verify(&refs, &pks));
        assert!(!agg.aggregate_verify(&refs[..4], &pks[..4]));
        assert_eq!(Signature::aggregate(&[]), Err(BlsError::Empty));
    }

    #[test]
    fn scalar_field_arithmetic() {
        let mut r = rng(3);
        for _ in 0..50 {
            let a = Scalar::random(&mut r);
            let b = Scalar::random(&mut r);
            assert_eq!(a.add(b).sub(b), a);
            assert_eq!(a.sub(a), Scalar::ZERO);
            if !a.is_zero() {
                assert_eq!(a.mul(a.invert().unwrap()), Scalar::ONE);
            }
        }
        assert_eq!(Scalar::ZERO.invert(), None);
        assert!(Scalar::from_be_bytes(&R.to_be_bytes()).is_none());
    }

    fn quorum(n: usize, t: usize, seed: u64) -> (Polynomial, Vec<MemberId>, Vec<SecretKey>) {
        let mut r = rng(seed);
        let poly = Polynomial::random(t, &mut r).unwrap();
        let ids: Vec<MemberId> = (0..n as u32)
            .map(|i| MemberId::from_identity(&i.to_le_bytes()))
            .collect();
        let shares = ids.iter().map(|id| poly.share(*id).unwrap()).collect();
        (poly, ids, shares)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// Any t of n shares recover the same signature, verifying under
        /// the quorum key; t − 1 do not.
        #[test]
        fn any_t_of_n_shares_recover_the_quorum_signature(
            n in 2usize..9,
            t_frac in 0.0f64..1.0,
            seed in any::<u64>(),
            pick in prop::collection::vec(any::<prop::sample::Index>(), 8),
        ) {
            let t = 1 + ((n - 1) as f64 * t_frac) as usize;
            let (poly, ids, shares) = quorum(n, t, seed);
            let vvec = poly.verification_vector().unwrap();
            let qpk = vvec.public_key();
            prop_assert_eq!(qpk, poly.secret().unwrap().public_key());
            let msg = b"chainlock";
            let sig_shares: Vec<(MemberId, Signature)> = ids
                .iter()
                .zip(&shares)
                .map(|(id, s)| (*id, s.sign(msg)))
                .collect();
            // Every share checks against the vector, and so does its
            // signature against the public share.
            for ((id, share), (_, sig)) in ids.iter().zip(&shares).zip(&sig_shares) {
                prop_assert!(vvec.verify_share(*id, share));
                prop_assert!(sig.verify(msg, &vvec.public_share(*id).unwrap()));
            }
            // Two different subsets of size t (chosen by `pick`).
            let mut order: Vec<usize> = (0..n).collect();
            for (i, ix) in pick.iter().enumerate() {
                let j = ix.index(n);
                order.swap(i % n, j);
            }
            let subset_a: Vec<_> = order.iter().take(t).map(|&i| sig_shares[i]).collect();
            let subset_b: Vec<_> = order.iter().rev().take(t).map(|&i| sig_shares[i]).collect();
            let a = recover_signature(&subset_a, t).unwrap();
            let b = recover_signature(&subset_b, t).unwrap();
            prop_assert_eq!(a, b);
            prop_assert!(a.verify(msg, &qpk));
            prop_assert_eq!(a, poly.secret().unwrap().sign(msg));
            let pk_shares: Vec<_> = order
                .iter()
                .take(t)
                .map(|&i| (ids[i], shares[i].public_key()))
                .collect();
            prop_assert_eq!(recover_public_key(&pk_shares, t).unwrap(), qpk);
            // t − 1 shares: refused, and forcing a lower threshold gives a
            // signature that does not verify (when t > 1).
            prop_assert!(recover_signature(&subset_a[..t - 1], t).is_err());
            if t > 1 {
                let short = recover_signature(&subset_a[..t - 1], t - 1).unwrap();
                prop_assert!(!short.verify(msg, &qpk));
            }
        }
    }

    #[test]
    fn a_wrong_share_fails_verification_and_duplicates_are_refused() {
        let (poly, ids, shares) = quorum(5, 3, 9);
        let vvec = poly.verification_vector().unwrap();
        assert!(!vvec.verify_share(ids[0], &shares[1]));
        let sig = shares[0].sign(b"m");
        assert_eq!(
            recover_signature(&[(ids[0], sig), (ids[0], sig), (ids[1], sig)], 3),
            Err(BlsError::DuplicateMember)
        );
    }

    #[test]
    fn a_dkg_of_summed_contributions_recovers_under_the_summed_key() {
        // Three dealers each share a polynomial among the same 4 members;
        // each member sums what it received.
        let (n, t) = (4, 3);
        let ids: Vec<MemberId> = (0..n as u32)
            .map(|i| MemberId::from_identity(&i.to_le_bytes()))
            .collect();
        let mut r = rng(11);
        let polys: Vec<Polynomial> = (0..3)
            .map(|_| Polynomial::random(t, &mut r).unwrap())
            .collect();
        let vvecs: Vec<VerificationVector> = polys
            .iter()
            .map(|p| p.verification_vector().unwrap())
            .collect();
        let quorum_vvec = VerificationVector::sum(&vvecs).unwrap();
        let finals: Vec<SecretKey> = ids
            .iter()
            .map(|id| {
                let received: Vec<SecretKey> =
                    polys.iter().map(|p| p.share(*id).unwrap()).collect();
                sum_shares(&received).unwrap()
            })
            .collect();
        for (id, s) in ids.iter().zip(&finals) {
            assert!(quorum_vvec.verify_share(*id, s));
        }
        let sigs: Vec<(MemberId, Signature)> = ids
            .iter()
            .zip(&finals)
            .map(|(id, s)| (*id, s.sign(b"tip")))
            .collect();
        let sig = recover_signature(&sigs[1..], t).unwrap();
        assert!(sig.verify(b"tip", &quorum_vvec.public_key()));
    }

    #[test]
    fn shares_encrypt_to_one_operator_key_only() {
        let mut r = rng(5);
        let operator = SecretKey::generate(&mut r);
        let other = SecretKey::generate(&mut r);
        let share = SecretKey::generate(&mut r);
        let enc = EncryptedShare::encrypt(&share, &operator.public_key(), b"q1/3", &mut r).unwrap();
        let dec = enc.decrypt(&operator, b"q1/3").unwrap();
        assert_eq!(dec.to_bytes(), share.to_bytes());
        assert_eq!(
            enc.decrypt(&other, b"q1/3").err(),
            Some(BlsError::Decryption)
        );
        assert_eq!(
            enc.decrypt(&operator, b"q1/4").err(),
            Some(BlsError::Decryption)
        );
        let mut tampered = enc.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(tampered.decrypt(&operator, b"q1/3").is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_the_decoders(
            pk in prop::collection::vec(any::<u8>(), 0..100),
            sig in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            if let Ok(k) = PublicKey::from_bytes(&pk) {
                prop_assert_eq!(k.to_bytes().to_vec(), pk);
            }
            if let Ok(s) = Signature::from_bytes(&sig) {
                prop_assert_eq!(s.to_bytes().to_vec(), sig);
            }
        }
    }
}
