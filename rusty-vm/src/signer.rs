//! Signing transaction inputs, for the wallet.

use rusty_crypto::{pubkey_hash, SecretKey};
use rusty_shared_types::{Hash256, Transaction, TxOut};
use thiserror::Error;

use crate::{
    sighash::{SighashCache, SighashType},
    templates::p2pkh_unlock,
    ScriptError,
};

/// Why a wallet could not sign a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignError {
    /// The signature hash could not be computed (wrong spent outputs, bad index,
    /// SIGHASH_SINGLE without a matching output).
    #[error(transparent)]
    Sighash(#[from] ScriptError),
    /// No key for the public key hash a P2PKH input pays to.
    #[error("no key for input {input}, which spends to public key hash {pubkey_hash}")]
    MissingKey {
        /// The input that could not be signed.
        input: usize,
        /// The hash its spent output is locked to.
        pubkey_hash: Hash256,
    },
    /// The key returned for a public key hash does not hash to it, so its signature
    /// could never unlock the input.
    #[error("the key supplied for input {input} does not match public key hash {pubkey_hash}")]
    WrongKey {
        /// The input whose key is wrong.
        input: usize,
        /// The hash its spent output is locked to.
        pubkey_hash: Hash256,
    },
}

/// Signs input `input_index` with `key` under `ty`: the signature as it goes in an
/// unlock script (64 bytes for [`SighashType::Default`], otherwise 65 with the type
/// byte appended).
pub fn sign_input(
    cache: &SighashCache<'_>,
    input_index: usize,
    ty: SighashType,
    key: &SecretKey,
) -> Result<Vec<u8>, ScriptError> {
    let msg = cache.sighash(input_index, ty)?;
    let mut sig = Vec::with_capacity(65);
    sig.extend_from_slice(key.sign(msg.as_bytes()).as_bytes());
    if ty != SighashType::Default {
        sig.push(ty.to_byte());
    }
    Ok(sig)
}

/// Fills the unlock script of every input whose spent output (`spent[i]` for input
/// `i`) is P2PKH, signing with [`SighashType::Default`] with the key `keys` returns for
/// its public key hash. Other inputs are left untouched, for the caller to complete.
///
/// Fails without modifying `tx` if a key is missing or wrong.
pub fn sign_p2pkh(
    tx: &mut Transaction,
    spent: &[TxOut],
    keys: impl Fn(&Hash256) -> Option<SecretKey>,
) -> Result<(), SignError> {
    // Unlock scripts are not part of the sighash, so every signature can be made from
    // the unsigned transaction and written in afterwards.
    let cache = SighashCache::new(tx, spent)?;
    let mut unlocks = Vec::with_capacity(spent.len());
    for (input, out) in spent.iter().enumerate() {
        let Some(pkh) = out.lock.as_p2pkh() else {
            continue;
        };
        let key = keys(&pkh).ok_or(SignError::MissingKey {
            input,
            pubkey_hash: pkh,
        })?;
        let pk = key.public_key();
        if pubkey_hash(&pk) != pkh {
            return Err(SignError::WrongKey {
                input,
                pubkey_hash: pkh,
            });
        }
        let sig = sign_input(&cache, input, SighashType::Default, &key)?;
        unlocks.push((input, p2pkh_unlock(&sig, &pk)));
    }
    for (input, unlock) in unlocks {
        tx.inputs[input].unlock = unlock;
    }
    Ok(())
}
