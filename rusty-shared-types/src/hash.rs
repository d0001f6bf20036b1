//! 32-byte hashes and domain-separated BLAKE3.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 32-byte BLAKE3 digest. Displayed and parsed as 64 lowercase hex digits in
/// natural byte order (no Bitcoin-style reversal).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash256(pub [u8; 32]);

impl Hash256 {
    /// The all-zero hash: "no previous block", "no state root yet".
    pub const ZERO: Hash256 = Hash256([0u8; 32]);

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0u8; 32]
    }

    /// BLAKE3 of `data` under the key derived from `domain`. Every object kind
    /// hashes under its own domain, so two kinds can never collide.
    pub fn domain_hash(domain: Domain, data: &[u8]) -> Hash256 {
        let mut h = domain.hasher();
        h.update(data);
        Hash256(*h.finalize().as_bytes())
    }
}

impl fmt::Display for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash256({})", hex::encode(self.0))
    }
}

/// Error parsing a hash from hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hex digits for a hash")]
pub struct ParseHashError;

impl FromStr for Hash256 {
    type Err = ParseHashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseHashError)?;
        Ok(Hash256(out))
    }
}

impl Serialize for Hash256 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Hash256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Hashing domains. Each is turned into a BLAKE3 derived key from the context
/// string `"rusty-coin <kind> v1"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Block header (block id and proof of work).
    Header,
    /// Transaction id: the transaction without its unlock data.
    Txid,
    /// Witness transaction id: the transaction with its unlock data.
    Wtxid,
    /// Merkle tree leaf.
    MerkleLeaf,
    /// Merkle tree inner node.
    MerkleNode,
    /// Signature hash of a transaction input.
    Sighash,
    /// Public key hash used by pay-to-pubkey-hash scripts and addresses.
    PubkeyHash,
    /// What the owner or operator key of a masternode special transaction signs.
    ProTxSig,
    /// A leaf of the masternode-list merkle tree (one list entry).
    MasternodeEntry,
    /// What the members of a quorum sign in a DKG commitment.
    QuorumCommitment,
    /// A signing request id (e.g. `clsig` + height).
    RequestId,
    /// The message a quorum threshold-signs for a request.
    QuorumSign,
    /// A ChainLock (what a header's `chainlock_hash` commits to).
    ChainLock,
    /// A DKG message (what its sender's operator key signs).
    DkgMessage,
    /// A content id: the full encoding of a signed media manifest.
    ContentManifest,
    /// A media chunk: its index followed by its bytes.
    MediaChunk,
    /// A live media segment: its stream's content id, its sequence number and
    /// its bytes.
    MediaSegment,
    /// A bridge swap message (what its sender's key signs).
    SwapMessage,
}

impl Domain {
    pub const fn context(self) -> &'static str {
        match self {
            Domain::Header => "rusty-coin header v1",
            Domain::Txid => "rusty-coin txid v1",
            Domain::Wtxid => "rusty-coin wtxid v1",
            Domain::MerkleLeaf => "rusty-coin merkle-leaf v1",
            Domain::MerkleNode => "rusty-coin merkle-node v1",
            Domain::Sighash => "rusty-coin sighash v1",
            Domain::PubkeyHash => "rusty-coin pubkey-hash v1",
            Domain::ProTxSig => "rusty-coin protx-sig v1",
            Domain::MasternodeEntry => "rusty-coin masternode-entry v1",
            Domain::QuorumCommitment => "rusty-coin quorum-commitment v1",
            Domain::RequestId => "rusty-coin request-id v1",
            Domain::QuorumSign => "rusty-coin quorum-sign v1",
            Domain::ChainLock => "rusty-coin chainlock v1",
            Domain::DkgMessage => "rusty-coin dkg-message v1",
            Domain::ContentManifest => "rusty-coin content-manifest v1",
            Domain::MediaChunk => "rusty-coin media-chunk v1",
            Domain::MediaSegment => "rusty-coin media-segment v1",
            Domain::SwapMessage => "rusty-coin swap-message v1",
        }
    }

    /// Every domain, in declaration order (the index of [`Domain::hasher`]'s
    /// table).
    const ALL: [Domain; 18] = [
        Domain::Header,
        Domain::Txid,
        Domain::Wtxid,
        Domain::MerkleLeaf,
        Domain::MerkleNode,
        Domain::Sighash,
        Domain::PubkeyHash,
        Domain::ProTxSig,
        Domain::MasternodeEntry,
        Domain::QuorumCommitment,
        Domain::RequestId,
        Domain::QuorumSign,
        Domain::ChainLock,
        Domain::DkgMessage,
        Domain::ContentManifest,
        Domain::MediaChunk,
        Domain::MediaSegment,
        Domain::SwapMessage,
    ];

    /// A fresh hasher keyed for this domain: a copy of one built once per
    /// process. Deriving the key hashes the context string, a compression
    /// as costly as hashing a 64-byte message; a transaction's ids, a
    /// merkle node or a block hash would each pay it again.
    pub fn hasher(self) -> blake3::Hasher {
        type Table = Vec<(Domain, blake3::Hasher)>;
        static HASHERS: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
        let table = HASHERS.get_or_init(|| {
            Domain::ALL
                .iter()
                .map(|d| (*d, blake3::Hasher::new_derive_key(d.context())))
                .collect()
        });
        // A domain missing from `ALL` (or out of its order) derives its key.
        match table.get(self as usize) {
            Some((d, h)) if *d == self => h.clone(),
            _ => blake3::Hasher::new_derive_key(self.context()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_separate() {
        let a = Hash256::domain_hash(Domain::Txid, b"x");
        let b = Hash256::domain_hash(Domain::Wtxid, b"x");
        assert_ne!(a, b);
    }

    #[test]
    fn cached_hashers_are_the_derived_keys() {
        for (i, d) in Domain::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i, "{d:?} out of order in Domain::ALL");
            let mut cached = d.hasher();
            let mut derived = blake3::Hasher::new_derive_key(d.context());
            cached.update(b"some message");
            derived.update(b"some message");
            assert_eq!(cached.finalize(), derived.finalize(), "{d:?}");
        }
    }

    #[test]
    fn hex_round_trip() {
        let h = Hash256::domain_hash(Domain::Header, b"genesis");
        let s = h.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<Hash256>().unwrap(), h);
        assert!("zz".parse::<Hash256>().is_err());
    }
}
