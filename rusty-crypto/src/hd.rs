//! Wallet keys: BIP-39 mnemonics and SLIP-0010 Ed25519 derivation.
//!
//! A wallet is one 24-word [`Mnemonic`]; its seed ([`Mnemonic::to_seed`]) is the
//! root of an [`ExtendedSecretKey`] tree. Ed25519 secret keys are hashed before
//! use, so unlike secp256k1 they cannot be tweaked additively: SLIP-0010 therefore
//! defines only hardened derivation for Ed25519, and there are no extended public keys.
//! A non-hardened index is an error rather than silently hardened, so a path always
//! means the same key in every SLIP-0010 wallet.

use std::{fmt, str::FromStr};

use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha512;
use zeroize::{Zeroize, Zeroizing};

use crate::{
    ed25519::{PublicKey, SecretKey},
    CryptoError, Result,
};

/// The hardened bit of a derivation index: child `n'` is index `HARDENED + n`.
pub const HARDENED: u32 = 1 << 31;

/// HMAC key of the SLIP-0010 Ed25519 master key.
const ED25519_CURVE_KEY: &[u8] = b"ed25519 seed";

/// BIP-32 stores the depth in one byte; deeper paths are certainly mistakes.
const MAX_PATH_DEPTH: usize = 255;

/// A BIP-39 mnemonic (English word list). [`Debug`] never prints the words.
#[derive(Clone, PartialEq, Eq)]
pub struct Mnemonic(bip39::Mnemonic);

impl Mnemonic {
    /// Number of words of a generated mnemonic (256 bits of entropy).
    pub const GENERATED_WORDS: usize = 24;

    /// A fresh 24-word mnemonic from 32 bytes of OS entropy.
    pub fn generate() -> Result<Self> {
        let mut entropy = Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(entropy.as_mut())
            .map_err(|e| CryptoError::Rng(e.to_string()))?;
        Self::from_entropy(entropy.as_ref())
    }

    /// The mnemonic encoding `entropy` (16, 20, 24, 28 or 32 bytes).
    pub fn from_entropy(entropy: &[u8]) -> Result<Self> {
        bip39::Mnemonic::from_entropy(entropy)
            .map(Mnemonic)
            .map_err(CryptoError::InvalidMnemonic)
    }

    /// Parses and validates a phrase of 12 to 24 words: every word must be on the
    /// list and the checksum must match. Case and surrounding whitespace are ignored.
    pub fn parse(phrase: &str) -> Result<Self> {
        let lower = Zeroizing::new(phrase.trim().to_lowercase());
        bip39::Mnemonic::parse(lower.as_str())
            .map(Mnemonic)
            .map_err(CryptoError::InvalidMnemonic)
    }

    /// The words separated by single spaces. Treat it like a private key.
    pub fn phrase(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.to_string())
    }

    /// Number of words (12 to 24).
    pub fn word_count(&self) -> usize {
        self.0.word_count()
    }

    /// The 64-byte BIP-39 seed (PBKDF2-HMAC-SHA512, 2048 rounds) for `passphrase`
    /// (empty if the user set none). Every passphrase gives a valid, different wallet.
    pub fn to_seed(&self, passphrase: &str) -> Zeroizing<[u8; 64]> {
        Zeroizing::new(self.0.to_seed(passphrase))
    }
}

impl FromStr for Mnemonic {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self> {
        Mnemonic::parse(s)
    }
}

impl fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mnemonic({} words, <redacted>)", self.word_count())
    }
}

/// A SLIP-0010 Ed25519 extended secret key: a secret key and the chain code that,
/// together with it, derives the children. Zeroized on drop.
#[derive(Clone)]
pub struct ExtendedSecretKey {
    secret: [u8; 32],
    chain_code: [u8; 32],
}

impl ExtendedSecretKey {
    /// The master key `m` of `seed` (16 to 64 bytes, normally [`Mnemonic::to_seed`]).
    pub fn master(seed: &[u8]) -> Result<Self> {
        if !(16..=64).contains(&seed.len()) {
            return Err(CryptoError::InvalidSeedLength(seed.len()));
        }
        // Every 32-byte string is a valid Ed25519 secret, so unlike secp256k1 there is
        // no retry loop.
        Ok(Self::from_hmac(ED25519_CURVE_KEY, &[seed]))
    }

    /// The child at `index`, which must be hardened (`index >= HARDENED`).
    pub fn derive_child(&self, index: u32) -> Result<Self> {
        if index < HARDENED {
            return Err(CryptoError::NonHardenedIndex(index));
        }
        // I = HMAC-SHA512(c_par, 0x00 || k_par || ser32(i)), fed in parts so the
        // parent secret is not copied into a scratch buffer.
        Ok(Self::from_hmac(
            &self.chain_code,
            &[&[0u8], &self.secret, &index.to_be_bytes()],
        ))
    }

    /// Derives `path` relative to this key, which is taken to be `m`
    /// (e.g. `"m/44'/1337'/0'/0'/5'"`); see [`parse_path`].
    pub fn derive_path(&self, path: &str) -> Result<Self> {
        parse_path(path)?
            .into_iter()
            .try_fold(self.clone(), |key, index| key.derive_child(index))
    }

    /// The Ed25519 signing key.
    pub fn secret_key(&self) -> SecretKey {
        SecretKey::from_bytes(self.secret)
    }

    /// The public key of [`secret_key`](Self::secret_key).
    pub fn public_key(&self) -> PublicKey {
        self.secret_key().public_key()
    }

    /// The raw 32-byte secret (the RFC 8032 seed of [`secret_key`](Self::secret_key)).
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The chain code, needed (with the secret) to derive children.
    pub fn chain_code(&self) -> &[u8; 32] {
        &self.chain_code
    }

    /// Splits HMAC-SHA512(`key`, concatenation of `data`) into secret and chain code.
    fn from_hmac(key: &[u8], data: &[&[u8]]) -> Self {
        let mut mac =
            Hmac::<Sha512>::new_from_slice(key).expect("HMAC is defined for keys of any length");
        for part in data {
            mac.update(part);
        }
        let mut out = mac.finalize().into_bytes();
        let (il, ir) = out.split_at(32);
        let mut key = ExtendedSecretKey {
            secret: [0; 32],
            chain_code: [0; 32],
        };
        key.secret.copy_from_slice(il);
        key.chain_code.copy_from_slice(ir);
        out.as_mut_slice().zeroize();
        key
    }
}

impl Drop for ExtendedSecretKey {
    fn drop(&mut self) {
        self.secret.zeroize();
        self.chain_code.zeroize();
    }
}

impl fmt::Debug for ExtendedSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtendedSecretKey")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// Parses a derivation path such as `"m/44'/1337'/0'/0'/5'"` into hardened indices.
///
/// The path starts at `m`; each component is a decimal index below 2^31 marked hardened
/// with `'`, `h` or `H`. An unmarked component is [`CryptoError::NonHardenedIndex`].
pub fn parse_path(path: &str) -> Result<Vec<u32>> {
    let invalid = |reason| CryptoError::InvalidDerivationPath {
        path: path.to_owned(),
        reason,
    };
    let mut parts = path.split('/');
    if parts.next() != Some("m") {
        return Err(invalid("must start with \"m\""));
    }
    let indices = parts
        .map(|part| {
            let (digits, hardened) = match part.strip_suffix(['\'', 'h', 'H']) {
                Some(digits) => (digits, true),
                None => (part, false),
            };
            // `u32::from_str` would also take "+5"; only plain digits are an index.
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("each component must be a decimal index"));
            }
            let index: u32 = digits
                .parse()
                .ok()
                .filter(|&n| n < HARDENED)
                .ok_or_else(|| invalid("index must be below 2^31"))?;
            if hardened {
                Ok(index | HARDENED)
            } else {
                Err(CryptoError::NonHardenedIndex(index))
            }
        })
        .collect::<Result<Vec<u32>>>()?;
    if indices.len() > MAX_PATH_DEPTH {
        return Err(invalid("deeper than 255 levels"));
    }
    Ok(indices)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// One step of a SLIP-0010 test vector: path, chain code, private key, public key
    /// (the spec's 33-byte form, with its leading 0x00).
    type Step = (&'static str, &'static str, &'static str, &'static str);

    fn check_vector(seed_hex: &str, steps: &[Step]) {
        let seed = hex::decode(seed_hex).unwrap();
        let master = ExtendedSecretKey::master(&seed).unwrap();
        let mut chained = master.clone();
        for (i, &(path, chain_code, private, public)) in steps.iter().enumerate() {
            let key = master.derive_path(path).unwrap();
            assert_eq!(
                hex::encode(key.chain_code()),
                chain_code,
                "{path} chain code"
            );
            assert_eq!(
                hex::encode(key.secret_bytes()),
                private,
                "{path} private key"
            );
            assert_eq!(
                format!("00{}", key.public_key()),
                public,
                "{path} public key"
            );
            if i > 0 {
                let last = parse_path(path).unwrap().pop().unwrap();
                chained = chained.derive_child(last).unwrap();
            }
            assert_eq!(chained.secret_bytes(), key.secret_bytes(), "{path} chained");
        }
    }

    #[test]
    fn slip10_ed25519_vector_1() {
        check_vector(
            "000102030405060708090a0b0c0d0e0f",
            &[
                (
                    "m",
                    "90046a93de5380a72b5e45010748567d5ea02bbf6522f979e05c0d8d8ca9fffb",
                    "2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7",
                    "00a4b2856bfec510abab89753fac1ac0e1112364e7d250545963f135f2a33188ed",
                ),
                (
                    "m/0'",
                    "8b59aa11380b624e81507a27fedda59fea6d0b779a778918a2fd3590e16e9c69",
                    "68e0fe46dfb67e368c75379acec591dad19df3cde26e63b93a8e704f1dade7a3",
                    "008c8a13df77a28f3445213a0f432fde644acaa215fc72dcdf300d5efaa85d350c",
                ),
                (
                    "m/0'/1'",
                    "a320425f77d1b5c2505a6b1b27382b37368ee640e3557c315416801243552f14",
                    "b1d0bad404bf35da785a64ca1ac54b2617211d2777696fbffaf208f746ae84f2",
                    "001932a5270f335bed617d5b935c80aedb1a35bd9fc1e31acafd5372c30f5c1187",
                ),
                (
                    "m/0'/1'/2'",
                    "2e69929e00b5ab250f49c3fb1c12f252de4fed2c1db88387094a0f8c4c9ccd6c",
                    "92a5b23c0b8a99e37d07df3fb9966917f5d06e02ddbd909c7e184371463e9fc9",
                    "00ae98736566d30ed0e9d2f4486a64bc95740d89c7db33f52121f8ea8f76ff0fc1",
                ),
                (
                    "m/0'/1'/2'/2'",
                    "8f6d87f93d750e0efccda017d662a1b31a266e4a6f5993b15f5c1f07f74dd5cc",
                    "30d1dc7e5fc04c31219ab25a27ae00b50f6fd66622f6e9c913253d6511d1e662",
                    "008abae2d66361c879b900d204ad2cc4984fa2aa344dd7ddc46007329ac76c429c",
                ),
                (
                    "m/0'/1'/2'/2'/1000000000'",
                    "68789923a0cac2cd5a29172a475fe9e0fb14cd6adb5ad98a3fa70333e7afa230",
                    "8f94d394a8e8fd6b1bc2f3f49f5c47e385281d5c17e65324b0f62483e37e8793",
                    "003c24da049451555d51a7014a37337aa4e12d41e485abccfa46b47dfb2af54b7a",
                ),
            ],
        );
    }

    #[test]
    fn slip10_ed25519_vector_2() {
        check_vector(
            "fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a29f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542",
            &[
                (
                    "m",
                    "ef70a74db9c3a5af931b5fe73ed8e1a53464133654fd55e7a66f8570b8e33c3b",
                    "171cb88b1b3c1db25add599712e36245d75bc65a1a5c9e18d76f9f2b1eab4012",
                    "008fe9693f8fa62a4305a140b9764c5ee01e455963744fe18204b4fb948249308a",
                ),
                (
                    "m/0'",
                    "0b78a3226f915c082bf118f83618a618ab6dec793752624cbeb622acb562862d",
                    "1559eb2bbec5790b0c65d8693e4d0875b1747f4970ae8b650486ed7470845635",
                    "0086fab68dcb57aa196c77c5f264f215a112c22a912c10d123b0d03c3c28ef1037",
                ),
                (
                    "m/0'/2147483647'",
                    "138f0b2551bcafeca6ff2aa88ba8ed0ed8de070841f0c4ef0165df8181eaad7f",
                    "ea4f5bfe8694d8bb74b7b59404632fd5968b774ed545e810de9c32a4fb4192f4",
                    "005ba3b9ac6e90e83effcd25ac4e58a1365a9e35a3d3ae5eb07b9e4d90bcf7506d",
                ),
                (
                    "m/0'/2147483647'/1'",
                    "73bd9fff1cfbde33a1b846c27085f711c0fe2d66fd32e139d3ebc28e5a4a6b90",
                    "3757c7577170179c7868353ada796c839135b3d30554bbb74a4b1e4a5a58505c",
                    "002e66aa57069c86cc18249aecf5cb5a9cebbfd6fadeab056254763874a9352b45",
                ),
                (
                    "m/0'/2147483647'/1'/2147483646'",
                    "0902fe8a29f9140480a00ef244bd183e8a13288e4412d8389d140aac1794825a",
                    "5837736c89570de861ebc173b1086da4f505d4adb387c6a1b1342d5e4ac9ec72",
                    "00e33c0f7d81d843c572275f287498e8d408654fdf0d1e065b84e2e6f157aab09b",
                ),
                (
                    "m/0'/2147483647'/1'/2147483646'/2'",
                    "5d70af781f3a37b829f0d060924d5e960bdc02e85423494afc0b1a41bbe196d4",
                    "551d333177df541ad876a60ea71f00447931c0a9da16f227c11ea080d7391b8d",
                    "0047150c75db263559a70d5778bf36abbab30fb061ad69f69ece61a72b0cfa4fc0",
                ),
            ],
        );
    }

    #[test]
    fn bip39_all_zero_entropy_vector() {
        let m = Mnemonic::from_entropy(&[0u8; 32]).unwrap();
        let expected = format!("{} art", ["abandon"; 23].join(" "));
        assert_eq!(m.phrase().as_str(), expected);
        assert_eq!(
            hex::encode(m.to_seed("TREZOR")),
            "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3cca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8"
        );
        assert_ne!(m.to_seed(""), m.to_seed("TREZOR"));
        assert_eq!(
            Mnemonic::parse(&format!("  {}\n", expected.to_uppercase())).unwrap(),
            m
        );
    }

    #[test]
    fn generated_mnemonic_round_trips() {
        let m = Mnemonic::generate().unwrap();
        assert_eq!(m.word_count(), Mnemonic::GENERATED_WORDS);
        let parsed: Mnemonic = m.phrase().parse().unwrap();
        assert_eq!(parsed, m);
        assert_ne!(Mnemonic::generate().unwrap(), m);
        let zero = Mnemonic::from_entropy(&[0u8; 32]).unwrap();
        assert!(!format!("{zero:?}").contains("abandon"));
    }

    #[test]
    fn bad_phrases_are_rejected() {
        let valid = format!("{} art", ["abandon"; 23].join(" "));
        // Wrong checksum word.
        let bad_checksum = format!("{} abandon", ["abandon"; 23].join(" "));
        assert!(matches!(
            Mnemonic::parse(&bad_checksum),
            Err(CryptoError::InvalidMnemonic(bip39::Error::InvalidChecksum))
        ));
        let unknown = valid.replacen("abandon", "abandonx", 1);
        let err = Mnemonic::parse(&unknown).unwrap_err();
        assert!(err.to_string().contains("unknown word"), "{err}");
        assert!(Mnemonic::parse("abandon abandon").is_err());
        assert!(Mnemonic::parse("").is_err());
        assert!(Mnemonic::from_entropy(&[0u8; 15]).is_err());
    }

    #[test]
    fn seed_to_account_key() {
        let m = Mnemonic::from_entropy(&[7u8; 32]).unwrap();
        let seed = m.to_seed("");
        let master = ExtendedSecretKey::master(seed.as_ref()).unwrap();
        let a = master.derive_path("m/44'/1337'/0'/0'/5'").unwrap();
        let b = master.derive_path("m/44h/1337H/0'/0h/5'").unwrap();
        assert_eq!(a.secret_bytes(), b.secret_bytes());
        assert_eq!(a.secret_key().public_key(), a.public_key());
        assert_ne!(
            a.public_key(),
            master
                .derive_path("m/44'/1337'/0'/0'/6'")
                .unwrap()
                .public_key()
        );
        let debug = format!("{a:?}");
        assert!(!debug.contains(&hex::encode(a.secret_bytes())));
    }

    #[test]
    fn invalid_seeds_and_paths() {
        assert!(matches!(
            ExtendedSecretKey::master(&[0u8; 15]),
            Err(CryptoError::InvalidSeedLength(15))
        ));
        assert!(ExtendedSecretKey::master(&[0u8; 65]).is_err());
        let m = ExtendedSecretKey::master(&[1u8; 32]).unwrap();

        assert!(matches!(
            m.derive_child(5),
            Err(CryptoError::NonHardenedIndex(5))
        ));
        assert!(matches!(
            m.derive_path("m/44'/0"),
            Err(CryptoError::NonHardenedIndex(0))
        ));
        for bad in [
            "",
            "44'",
            "M/0'",
            "m/",
            "m//0'",
            "m/'",
            "m/+5'",
            "m/-1'",
            "m/0x1'",
            "m/2147483648'",
            "m/99999999999'",
            "m/0''",
            " m/0'",
        ] {
            assert!(
                matches!(
                    parse_path(bad),
                    Err(CryptoError::InvalidDerivationPath { .. })
                ),
                "{bad:?} should be rejected"
            );
        }
        let deep = format!("m{}", "/0'".repeat(256));
        assert!(parse_path(&deep).is_err());
        assert_eq!(parse_path("m").unwrap(), Vec::<u32>::new());
        assert_eq!(
            parse_path("m/44'/1337'/0'/0'/5'").unwrap(),
            vec![
                44 | HARDENED,
                1337 | HARDENED,
                HARDENED,
                HARDENED,
                5 | HARDENED
            ]
        );
    }

    proptest! {
        #[test]
        fn path_equals_chained_children(indices in prop::collection::vec(0u32..HARDENED, 0..6)) {
            let master = ExtendedSecretKey::master(&[9u8; 64]).unwrap();
            let path = indices.iter().fold(String::from("m"), |p, i| format!("{p}/{i}'"));
            let by_path = master.derive_path(&path).unwrap();
            let mut by_child = master.clone();
            for i in &indices {
                by_child = by_child.derive_child(i | HARDENED).unwrap();
            }
            prop_assert_eq!(by_path.secret_bytes(), by_child.secret_bytes());
            prop_assert_eq!(by_path.chain_code(), by_child.chain_code());
        }
    }
}
