//! Where signature checks go: verified on the spot, or collected for a batch.
//!
//! The NULLFAIL rule makes the two interchangeable. A signature check with an empty
//! signature is false without touching the checker; with a non-empty one, the
//! signature must be valid or the whole script fails. So a script's outcome never
//! depends on a signature being *invalid*: assuming every non-empty signature is valid
//! (what [`DeferredChecker`] does) and verifying them all afterwards gives exactly the
//! verdict of verifying each at once (what [`ImmediateChecker`] does). Blocks use the
//! deferred form and one batch verification, about twice as fast.

use std::fmt;

use rusty_crypto::{CryptoError, PublicKey, Signature};
use rusty_shared_types::Hash256;

/// Receives every signature check a script performs with a non-empty signature.
pub trait SignatureChecker {
    /// Whether `sig` is a valid signature of `msg` under `pk`. Returning `false` fails
    /// the script (NULLFAIL).
    fn check(&mut self, pk: &PublicKey, msg: &Hash256, sig: &Signature) -> bool;
}

/// Verifies each signature as the script reaches it (mempool, RPC, wallets).
#[derive(Debug, Default, Clone, Copy)]
pub struct ImmediateChecker;

impl SignatureChecker for ImmediateChecker {
    fn check(&mut self, pk: &PublicKey, msg: &Hash256, sig: &Signature) -> bool {
        rusty_crypto::verify(pk, msg.as_bytes(), sig).is_ok()
    }
}

/// Records each signature and reports it valid; the caller must batch-verify the
/// collection (e.g. with [`DeferredChecker::verify`]) before trusting any verdict.
#[derive(Default, Clone)]
pub struct DeferredChecker {
    items: Vec<(PublicKey, [u8; 32], Signature)>,
}

impl DeferredChecker {
    pub fn new() -> Self {
        Self::default()
    }

    /// A checker with room for `capacity` signatures (a block's input count is a good
    /// guess) before it reallocates.
    pub fn with_capacity(capacity: usize) -> Self {
        DeferredChecker {
            items: Vec::with_capacity(capacity),
        }
    }

    /// The collected `(public key, sighash, signature)` triples, in check order.
    pub fn items(&self) -> &[(PublicKey, [u8; 32], Signature)] {
        &self.items
    }

    /// The collected triples, in the form `rusty_crypto::verify_batch_parallel` takes.
    pub fn into_items(self) -> Vec<(PublicKey, [u8; 32], Signature)> {
        self.items
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Batch-verifies everything collected on up to `threads` threads. All-or-nothing:
    /// an error means at least one signature (or public key) is invalid.
    pub fn verify(self, threads: usize) -> Result<(), CryptoError> {
        rusty_crypto::verify_batch_parallel(self.items, threads)
    }
}

impl SignatureChecker for DeferredChecker {
    fn check(&mut self, pk: &PublicKey, msg: &Hash256, sig: &Signature) -> bool {
        self.items.push((*pk, msg.0, *sig));
        true
    }
}

impl fmt::Debug for DeferredChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredChecker")
            .field("len", &self.items.len())
            .finish()
    }
}
