//! Payloads of paid content (the media layer's payments).
//!
//! - Tag 7, [`ContentPurchase`]: a viewer pays for content. Output 0 pays
//!   at least `price` to the pay-to-pubkey-hash of the creator's key (the
//!   key that signed the content's manifest). The payload names the key the
//!   content key is to be sealed to.
//! - Tag 8, [`KeyRelease`]: the creator publishes the content key sealed to
//!   the buyer. Input 0 spends output 0 of the purchase, so only the holder
//!   of the creator's key can release (the script check proves it), each
//!   purchase is released at most once (the output is spent), and the key
//!   stays on chain after the creator goes offline.
//!
//! Which content a purchase is for, and whether its price matches the
//! manifest, is the buyer's node's business (it builds the purchase from the
//! verified manifest); consensus checks the payment and the release's link
//! to it.

use crate::{
    encoding::{Decode, DecodeResult, Encode, Reader},
    Hash256,
};

/// Bytes of a sealed content key: ephemeral X25519 key, the 32-byte key
/// encrypted, a 16-byte tag.
pub const WRAPPED_KEY_LEN: usize = 80;

/// Tag 7: a payment for content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentPurchase {
    /// The content id (BLAKE3 of its signed manifest).
    pub content_id: Hash256,
    /// The creator's Ed25519 key (the manifest's signer); output 0 pays
    /// its pay-to-pubkey-hash.
    pub creator: [u8; 32],
    /// The price paid, base units (> 0); output 0 carries at least this.
    pub price: u64,
    /// The buyer's X25519 public key the content key is sealed to.
    pub buyer_key: [u8; 32],
}

/// Tag 8: the content key of a purchase, sealed to its buyer.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRelease {
    /// The purchase's txid; input 0 spends its output 0.
    pub purchase: Hash256,
    pub wrapped_key: [u8; WRAPPED_KEY_LEN],
}

impl std::fmt::Debug for KeyRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRelease")
            .field("purchase", &self.purchase)
            .finish_non_exhaustive()
    }
}

impl Encode for ContentPurchase {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.content_id.encode_to(out);
        self.creator.encode_to(out);
        self.price.encode_to(out);
        self.buyer_key.encode_to(out);
    }
}

impl Decode for ContentPurchase {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ContentPurchase {
            content_id: Hash256::decode_from(r)?,
            creator: r.array()?,
            price: r.u64()?,
            buyer_key: r.array()?,
        })
    }
}

impl Encode for KeyRelease {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.purchase.encode_to(out);
        out.extend_from_slice(&self.wrapped_key);
    }
}

impl Decode for KeyRelease {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(KeyRelease {
            purchase: Hash256::decode_from(r)?,
            wrapped_key: r.array()?,
        })
    }
}
