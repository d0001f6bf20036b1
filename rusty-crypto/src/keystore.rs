//! The encrypted keystore: secret bytes (the wallet seed) at rest.
//!
//! The passphrase is stretched with Argon2id into a 256-bit key that seals the secret
//! with XChaCha20-Poly1305. The file is self-describing JSON:
//!
//! ```json
//! {
//!   "version": 1,
//!   "kdf": { "algorithm": "argon2id", "m_cost": 65536, "t_cost": 3, "p_cost": 1,
//!            "salt": "<16 bytes hex>" },
//!   "cipher": { "algorithm": "xchacha20poly1305", "nonce": "<24 bytes hex>" },
//!   "ciphertext": "<secret || 16-byte tag, hex>"
//! }
//! ```
//!
//! Every header field that matters feeds either the key (KDF parameters, salt) or the
//! cipher (nonce), so tampering with any of them fails authentication just like a wrong
//! passphrase; no associated data is needed. The random 24-byte nonce makes reuse
//! negligible even though every save re-encrypts under the same passphrase.
//!
//! A keystore file may come from anywhere, so its Argon2 costs are bounded
//! ([`KdfParams::validate`]) before any memory is allocated, and [`KeystoreFile::load`]
//! refuses oversized files. Plaintext never reaches the disk: [`KeystoreFile::save`]
//! writes only the sealed form, atomically and readable by the owner alone.

use std::{
    fs::{self, File, OpenOptions},
    io::{ErrorKind, Read, Write},
    path::{Path, PathBuf},
};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::{
    aead::{Aead, KeyInit},
    Key, XChaCha20Poly1305, XNonce,
};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{CryptoError, Result};

/// The only keystore format version this build reads and writes.
pub const KEYSTORE_VERSION: u32 = 1;
/// Largest secret a keystore holds; a seed is 64 bytes, this leaves ample room.
pub const MAX_SECRET_LEN: usize = 4096;

const KDF_ALGORITHM: &str = "argon2id";
const CIPHER_ALGORITHM: &str = "xchacha20poly1305";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// A well-formed file is well under 10 KiB even at [`MAX_SECRET_LEN`].
const MAX_FILE_LEN: u64 = 64 * 1024;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Number of passes over the memory.
    pub t_cost: u32,
    /// Degree of parallelism (lanes).
    pub p_cost: u32,
}

impl KdfParams {
    /// Upper memory bound, 1 GiB: 16 times the default, yet a hostile file cannot make
    /// us allocate more than that.
    pub const MAX_M_COST_KIB: u32 = 1024 * 1024;
    /// Upper bound on passes (CPU time scales linearly with it).
    pub const MAX_T_COST: u32 = 16;
    /// Upper bound on lanes.
    pub const MAX_P_COST: u32 = 16;

    /// Cheap parameters so tests do not spend seconds in the KDF. Never for real keys.
    pub fn insecure_fast_for_tests() -> Self {
        KdfParams {
            m_cost_kib: 256,
            t_cost: 1,
            p_cost: 1,
        }
    }

    /// Checks the costs are within this crate's bounds (and Argon2's own minimums).
    pub fn validate(&self) -> Result<()> {
        let out_of_bounds = |what: String| Err(CryptoError::KdfParamsOutOfBounds(what));
        let KdfParams {
            m_cost_kib: m,
            t_cost: t,
            p_cost: p,
        } = *self;
        if !(1..=Self::MAX_P_COST).contains(&p) {
            return out_of_bounds(format!("p_cost {p} not in 1..={}", Self::MAX_P_COST));
        }
        if !(1..=Self::MAX_T_COST).contains(&t) {
            return out_of_bounds(format!("t_cost {t} not in 1..={}", Self::MAX_T_COST));
        }
        // Argon2 needs at least 8 KiB per lane; `p` is at most 16 so this cannot overflow.
        let min_m = 8 * p;
        if !(min_m..=Self::MAX_M_COST_KIB).contains(&m) {
            return out_of_bounds(format!(
                "m_cost {m} KiB not in {min_m}..={}",
                Self::MAX_M_COST_KIB
            ));
        }
        Ok(())
    }

    /// Stretches `passphrase` with `salt` into a cipher key. Validates first, so the
    /// allocation Argon2 makes is bounded.
    fn derive_key(&self, passphrase: &str, salt: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        self.validate()?;
        let params = Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|e| CryptoError::KdfParamsOutOfBounds(e.to_string()))?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
            .map_err(|e| CryptoError::Kdf(e.to_string()))?;
        Ok(key)
    }
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: about a quarter of a second on a laptop, the kind of
    /// cost RFC 9106 suggests for memory-constrained interactive use.
    fn default() -> Self {
        KdfParams {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

/// The on-disk keystore; see the [module docs](self) for the format.
///
/// Fields are kept as they appear in the file (hex strings, free-form algorithm names)
/// so a bad file still parses and [`decrypt`](Self::decrypt) can say precisely what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoreFile {
    /// Format version; only [`KEYSTORE_VERSION`] is understood.
    pub version: u32,
    /// How the key is derived from the passphrase.
    pub kdf: KeystoreKdf,
    /// How the secret is sealed with that key.
    pub cipher: KeystoreCipher,
    /// Hex of the sealed secret followed by the 16-byte Poly1305 tag.
    pub ciphertext: String,
}

/// The `kdf` section of a [`KeystoreFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoreKdf {
    /// Always `"argon2id"`.
    pub algorithm: String,
    /// Memory in KiB.
    pub m_cost: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Degree of parallelism.
    pub p_cost: u32,
    /// Hex of the 16-byte random salt.
    pub salt: String,
}

/// The `cipher` section of a [`KeystoreFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoreCipher {
    /// Always `"xchacha20poly1305"`.
    pub algorithm: String,
    /// Hex of the 24-byte random nonce.
    pub nonce: String,
}

/// A keystore's fields, checked and decoded.
struct Checked {
    params: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl KeystoreFile {
    /// Seals `secret` under `passphrase` with a fresh random salt and nonce.
    pub fn encrypt(secret: &[u8], passphrase: &str, params: KdfParams) -> Result<Self> {
        if secret.len() > MAX_SECRET_LEN {
            return Err(CryptoError::SecretTooLarge {
                len: secret.len(),
                max: MAX_SECRET_LEN,
            });
        }
        let mut salt = [0u8; SALT_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        for buf in [&mut salt[..], &mut nonce[..]] {
            OsRng
                .try_fill_bytes(buf)
                .map_err(|e| CryptoError::Rng(e.to_string()))?;
        }
        let key = params.derive_key(passphrase, &salt)?;
        let ciphertext = XChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
            .encrypt(XNonce::from_slice(&nonce), secret)
            // The AEAD only refuses messages of hundreds of GiB; ours is bounded above.
            .map_err(|_| CryptoError::SecretTooLarge {
                len: secret.len(),
                max: MAX_SECRET_LEN,
            })?;
        Ok(KeystoreFile {
            version: KEYSTORE_VERSION,
            kdf: KeystoreKdf {
                algorithm: KDF_ALGORITHM.to_owned(),
                m_cost: params.m_cost_kib,
                t_cost: params.t_cost,
                p_cost: params.p_cost,
                salt: hex::encode(salt),
            },
            cipher: KeystoreCipher {
                algorithm: CIPHER_ALGORITHM.to_owned(),
                nonce: hex::encode(nonce),
            },
            ciphertext: hex::encode(ciphertext),
        })
    }

    /// Recovers the secret.
    ///
    /// Fails with [`CryptoError::WrongPassphrase`] if authentication fails (wrong
    /// passphrase or modified file), and with a specific error, before running the KDF,
    /// if the file is of an unsupported kind or malformed.
    pub fn decrypt(&self, passphrase: &str) -> Result<Zeroizing<Vec<u8>>> {
        let checked = self.check()?;
        let key = checked.params.derive_key(passphrase, &checked.salt)?;
        XChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
            .decrypt(XNonce::from_slice(&checked.nonce), &checked.ciphertext[..])
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::WrongPassphrase)
    }

    /// The KDF parameters recorded in the file (not validated).
    pub fn kdf_params(&self) -> KdfParams {
        KdfParams {
            m_cost_kib: self.kdf.m_cost,
            t_cost: self.kdf.t_cost,
            p_cost: self.kdf.p_cost,
        }
    }

    /// Writes the keystore to `path` atomically: the JSON goes to `<path>.tmp`
    /// (created with mode 0600 on unix), is flushed to disk, then renamed over `path`, so
    /// a crash leaves either the old file or the new one, never a torn one.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = serde_json::to_vec_pretty(self)?;
        write_private(path, &json)?;
        Ok(())
    }

    /// Reads and checks a keystore saved by [`save`](Self::save). Errors on files too
    /// large to be a keystore, invalid JSON, unknown fields, unsupported versions or
    /// algorithms, out-of-bounds KDF costs and malformed hex.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let file = File::open(path.as_ref())?;
        let mut bytes = Vec::new();
        // `take` rather than trusting the metadata length, which can change under us.
        file.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE_LEN {
            return Err(CryptoError::MalformedKeystore(format!(
                "file larger than {MAX_FILE_LEN} bytes"
            )));
        }
        let keystore: KeystoreFile = serde_json::from_slice(&bytes)?;
        keystore.check()?;
        Ok(keystore)
    }

    /// Validates everything that can be checked without the passphrase, cheapest first.
    fn check(&self) -> Result<Checked> {
        if self.version != KEYSTORE_VERSION {
            return Err(CryptoError::UnsupportedKeystore(format!(
                "version {} (this build reads version {KEYSTORE_VERSION})",
                self.version
            )));
        }
        if self.kdf.algorithm != KDF_ALGORITHM {
            return Err(CryptoError::UnsupportedKeystore(format!(
                "KDF {:?} (expected {KDF_ALGORITHM:?})",
                self.kdf.algorithm
            )));
        }
        if self.cipher.algorithm != CIPHER_ALGORITHM {
            return Err(CryptoError::UnsupportedKeystore(format!(
                "cipher {:?} (expected {CIPHER_ALGORITHM:?})",
                self.cipher.algorithm
            )));
        }
        let params = self.kdf_params();
        params.validate()?;

        let mut salt = [0u8; SALT_LEN];
        decode_exact("salt", &self.kdf.salt, &mut salt)?;
        let mut nonce = [0u8; NONCE_LEN];
        decode_exact("nonce", &self.cipher.nonce, &mut nonce)?;
        let max_hex = 2 * (MAX_SECRET_LEN + TAG_LEN);
        if self.ciphertext.len() > max_hex {
            return Err(CryptoError::MalformedKeystore(format!(
                "ciphertext longer than {max_hex} hex digits"
            )));
        }
        let ciphertext = hex::decode(&self.ciphertext)
            .map_err(|e| CryptoError::MalformedKeystore(format!("ciphertext: {e}")))?;
        if ciphertext.len() < TAG_LEN {
            return Err(CryptoError::MalformedKeystore(format!(
                "ciphertext of {} bytes is shorter than the {TAG_LEN}-byte tag",
                ciphertext.len()
            )));
        }
        Ok(Checked {
            params,
            salt,
            nonce,
            ciphertext,
        })
    }
}

fn decode_exact(field: &str, hex_str: &str, out: &mut [u8]) -> Result<()> {
    hex::decode_to_slice(hex_str, out).map_err(|e| {
        CryptoError::MalformedKeystore(format!(
            "{field}: expected {} hex digits: {e}",
            2 * out.len()
        ))
    })
}

/// `<path>.tmp`, next to `path` so the rename stays on one filesystem.
/// Writes a secret file readable by its owner only (mode 0600 on unix),
/// atomically: the bytes go to `<path>.tmp`, are synced, and the file is
/// renamed into place, so a crash leaves either the old file or the new one,
/// never a torn one. Creates the parent directory if needed.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let tmp = tmp_path(path);
    // A leftover from an interrupted write may have other permissions;
    // `create_new` below then guarantees the file we write is ours with our
    // mode.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        // Best effort: the error that matters is the one being returned.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_parent_dir(path)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Makes the rename itself durable: on unix a rename is only persisted once the
/// directory entry is flushed.
fn sync_parent_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"sixty-four bytes of wallet seed, give or take a few of them ....";

    fn sealed() -> KeystoreFile {
        KeystoreFile::encrypt(
            SECRET,
            "correct horse",
            KdfParams::insecure_fast_for_tests(),
        )
        .unwrap()
    }

    #[test]
    fn round_trip() {
        let ks = sealed();
        assert_eq!(ks.decrypt("correct horse").unwrap().as_slice(), SECRET);
        assert_eq!(ks.kdf_params(), KdfParams::insecure_fast_for_tests());
        // Fresh salt and nonce each time.
        let again = sealed();
        assert_ne!(ks.kdf.salt, again.kdf.salt);
        assert_ne!(ks.cipher.nonce, again.cipher.nonce);
        assert_ne!(ks.ciphertext, again.ciphertext);
        // Empty secrets and empty passphrases are legal.
        let empty = KeystoreFile::encrypt(b"", "", KdfParams::insecure_fast_for_tests()).unwrap();
        assert!(empty.decrypt("").unwrap().is_empty());
    }

    #[test]
    fn json_shape() {
        let ks = sealed();
        let v: serde_json::Value = serde_json::to_value(&ks).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["kdf"]["algorithm"], "argon2id");
        assert_eq!(v["kdf"]["m_cost"], 256);
        assert_eq!(v["kdf"]["t_cost"], 1);
        assert_eq!(v["kdf"]["p_cost"], 1);
        assert_eq!(v["kdf"]["salt"].as_str().unwrap().len(), 32);
        assert_eq!(v["cipher"]["algorithm"], "xchacha20poly1305");
        assert_eq!(v["cipher"]["nonce"].as_str().unwrap().len(), 48);
        assert_eq!(
            v["ciphertext"].as_str().unwrap().len(),
            2 * (SECRET.len() + TAG_LEN)
        );
        let json = serde_json::to_string(&ks).unwrap();
        assert!(!json.contains(&hex::encode(SECRET)));

        let mut extra = v.clone();
        extra["kdf"]["pepper"] = "00".into();
        assert!(serde_json::from_value::<KeystoreFile>(extra).is_err());
        let mut extra = v;
        extra["comment"] = "hi".into();
        assert!(serde_json::from_value::<KeystoreFile>(extra).is_err());
    }

    #[test]
    fn wrong_passphrase() {
        assert!(matches!(
            sealed().decrypt("Correct horse"),
            Err(CryptoError::WrongPassphrase)
        ));
    }

    #[test]
    fn tampering_fails_authentication() {
        fn flip_hex(s: &mut String, at: usize) {
            let mut bytes = hex::decode(&*s).unwrap();
            bytes[at] ^= 1;
            *s = hex::encode(bytes);
        }
        let ks = sealed();
        for at in [0, SECRET.len() - 1, SECRET.len()] {
            let mut t = ks.clone();
            flip_hex(&mut t.ciphertext, at);
            assert!(matches!(
                t.decrypt("correct horse"),
                Err(CryptoError::WrongPassphrase)
            ));
        }
        let mut t = ks.clone();
        flip_hex(&mut t.kdf.salt, 3);
        assert!(matches!(
            t.decrypt("correct horse"),
            Err(CryptoError::WrongPassphrase)
        ));
        let mut t = ks.clone();
        flip_hex(&mut t.cipher.nonce, 20);
        assert!(matches!(
            t.decrypt("correct horse"),
            Err(CryptoError::WrongPassphrase)
        ));
        let mut t = ks.clone();
        t.kdf.t_cost = 2;
        assert!(matches!(
            t.decrypt("correct horse"),
            Err(CryptoError::WrongPassphrase)
        ));
        let mut t = ks;
        t.ciphertext.truncate(t.ciphertext.len() - 2);
        assert!(matches!(
            t.decrypt("correct horse"),
            Err(CryptoError::WrongPassphrase)
        ));
    }

    #[test]
    fn hostile_params_rejected_before_kdf() {
        let ks = sealed();
        let cases: [(u32, u32, u32); 7] = [
            (u32::MAX, 1, 1), // 4 TiB
            (KdfParams::MAX_M_COST_KIB + 1, 1, 1),
            (256, 0, 1),
            (256, u32::MAX, 1),
            (256, 1, 0),
            (256, 1, 1000),
            (8, 1, 2), // below Argon2's 8 KiB per lane
        ];
        for (m, t, p) in cases {
            let mut h = ks.clone();
            h.kdf.m_cost = m;
            h.kdf.t_cost = t;
            h.kdf.p_cost = p;
            assert!(
                matches!(
                    h.decrypt("correct horse"),
                    Err(CryptoError::KdfParamsOutOfBounds(_))
                ),
                "m={m} t={t} p={p}"
            );
            let params = KdfParams {
                m_cost_kib: m,
                t_cost: t,
                p_cost: p,
            };
            assert!(KeystoreFile::encrypt(b"s", "p", params).is_err());
        }
        KdfParams::default().validate().unwrap();
    }

    #[test]
    fn unsupported_and_malformed_files() {
        let ks = sealed();
        let decrypt = |ks: KeystoreFile| ks.decrypt("correct horse").unwrap_err();

        let mut t = ks.clone();
        t.version = 2;
        assert!(matches!(decrypt(t), CryptoError::UnsupportedKeystore(_)));
        let mut t = ks.clone();
        t.kdf.algorithm = "scrypt".into();
        assert!(matches!(decrypt(t), CryptoError::UnsupportedKeystore(_)));
        let mut t = ks.clone();
        t.cipher.algorithm = "aes-256-gcm".into();
        assert!(matches!(decrypt(t), CryptoError::UnsupportedKeystore(_)));

        let mut t = ks.clone();
        t.kdf.salt = "zz".repeat(16);
        assert!(matches!(decrypt(t), CryptoError::MalformedKeystore(_)));
        let mut t = ks.clone();
        t.kdf.salt.push_str("00");
        assert!(matches!(decrypt(t), CryptoError::MalformedKeystore(_)));
        let mut t = ks.clone();
        t.cipher.nonce.truncate(46);
        assert!(matches!(decrypt(t), CryptoError::MalformedKeystore(_)));
        let mut t = ks.clone();
        t.ciphertext.push('0');
        assert!(matches!(decrypt(t), CryptoError::MalformedKeystore(_)));
        let mut t = ks.clone();
        t.ciphertext.truncate(2 * TAG_LEN - 2);
        assert!(matches!(decrypt(t), CryptoError::MalformedKeystore(_)));
        let mut t = ks;
        t.ciphertext = "00".repeat(MAX_SECRET_LEN + TAG_LEN + 1);
        assert!(matches!(decrypt(t), CryptoError::MalformedKeystore(_)));

        assert!(matches!(
            KeystoreFile::encrypt(
                &[0; MAX_SECRET_LEN + 1],
                "p",
                KdfParams::insecure_fast_for_tests()
            ),
            Err(CryptoError::SecretTooLarge { .. })
        ));
    }

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        let ks = sealed();
        ks.save(&path).unwrap();
        assert!(!tmp_path(&path).exists());

        let loaded = KeystoreFile::load(&path).unwrap();
        assert_eq!(loaded, ks);
        assert_eq!(loaded.decrypt("correct horse").unwrap().as_slice(), SECRET);
        let on_disk = fs::read(&path).unwrap();
        assert!(!on_disk.windows(8).any(|w| w == &SECRET[..8]));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        // Overwrite, with a stale world-readable tmp file lying around.
        fs::write(tmp_path(&path), b"stale").unwrap();
        let other = sealed();
        other.save(&path).unwrap();
        assert_eq!(KeystoreFile::load(&path).unwrap(), other);
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn load_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");

        assert!(matches!(KeystoreFile::load(&path), Err(CryptoError::Io(_))));

        fs::write(&path, b"{ not json").unwrap();
        assert!(matches!(
            KeystoreFile::load(&path),
            Err(CryptoError::Json(_))
        ));

        fs::write(&path, vec![b' '; MAX_FILE_LEN as usize + 1]).unwrap();
        assert!(matches!(
            KeystoreFile::load(&path),
            Err(CryptoError::MalformedKeystore(_))
        ));

        let mut hostile = sealed();
        hostile.kdf.m_cost = u32::MAX;
        fs::write(&path, serde_json::to_vec(&hostile).unwrap()).unwrap();
        assert!(matches!(
            KeystoreFile::load(&path),
            Err(CryptoError::KdfParamsOutOfBounds(_))
        ));
    }
}
