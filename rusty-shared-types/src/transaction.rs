//! Transactions: inputs spending outpoints, outputs locking amounts, a lock
//! time and an optional typed payload.
//!
//! Two ids: the **txid** hashes the transaction *without* its unlock scripts,
//! so signatures can never change it (outpoints reference txids); the
//! **wtxid** hashes everything and is what the block merkle root commits to.

use crate::{
    encoding::{
        write_bytes, write_option, write_vec, Decode, DecodeError, DecodeResult, Encode, Reader,
    },
    hash::Domain,
    masternode::{
        ChainLock, ProRegister, ProRevoke, ProUpdateRegistrar, ProUpdateService, QuorumCommitment,
    },
    Amount, Hash256, Script,
};

/// Upper bound on inputs or outputs a decoder accepts; consensus size limits
/// are tighter and checked by validation.
pub const MAX_TX_IO: usize = 100_000;

/// Lock times below this are block heights, at or above it UNIX times.
pub const LOCKTIME_THRESHOLD: u64 = 500_000_000;

/// An input's sequence that opts out of lock time and relative lock rules.
pub const SEQUENCE_FINAL: u32 = 0xffff_ffff;

/// Set in a sequence to disable its relative lock (BIP-68's disable flag).
pub const SEQUENCE_LOCKTIME_DISABLE_FLAG: u32 = 1 << 31;

/// With the disable flag clear, the low 16 bits are a relative lock in blocks.
pub const SEQUENCE_LOCKTIME_MASK: u32 = 0x0000_ffff;

/// Largest coinbase `extra` field, in bytes.
pub const MAX_COINBASE_EXTRA: usize = 100;

/// A reference to one output of an earlier transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OutPoint {
    pub txid: Hash256,
    pub vout: u32,
}

impl OutPoint {
    pub const fn new(txid: Hash256, vout: u32) -> Self {
        OutPoint { txid, vout }
    }
}

impl Encode for OutPoint {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.txid.encode_to(out);
        self.vout.encode_to(out);
    }
    fn encoded_size_hint(&self) -> usize {
        36
    }
}

impl Decode for OutPoint {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(OutPoint {
            txid: Hash256::decode_from(r)?,
            vout: r.u32()?,
        })
    }
}

/// A transaction input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxIn {
    pub prevout: OutPoint,
    /// Unlock data (pushes only), executed before the spent output's lock script.
    pub unlock: Script,
    /// [`SEQUENCE_FINAL`], or a relative lock in blocks (BIP-68 style).
    pub sequence: u32,
}

impl Encode for TxIn {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.prevout.encode_to(out);
        self.unlock.encode_to(out);
        self.sequence.encode_to(out);
    }
}

impl Decode for TxIn {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(TxIn {
            prevout: OutPoint::decode_from(r)?,
            unlock: Script::decode_from(r)?,
            sequence: r.u32()?,
        })
    }
}

/// A transaction output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxOut {
    pub value: Amount,
    pub lock: Script,
}

impl Encode for TxOut {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.value.encode_to(out);
        self.lock.encode_to(out);
    }
}

impl Decode for TxOut {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(TxOut {
            value: Amount::decode_from(r)?,
            lock: Script::decode_from(r)?,
        })
    }
}

/// The block reward transaction's data: the height makes every coinbase (and
/// so every txid) unique; `extra` is free space for miners' extra nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoinbasePayload {
    pub height: u64,
    pub extra: Vec<u8>,
}

/// Typed payloads. Each kind has a fixed tag; unknown tags are rejected by the
/// decoder, so a new kind is a consensus change by construction. Tag 11 carries
/// Ethereum-signed transactions, 12 a block's withdrawals; tags 13.. are
/// reserved for peg payloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Tag 0: marks the coinbase.
    Coinbase(CoinbasePayload),
    /// Tag 1: registers a masternode.
    ProRegister(ProRegister),
    /// Tag 2: a masternode's new service address (operator-signed).
    ProUpdateService(ProUpdateService),
    /// Tag 3: new operator/voting keys or payout (owner-signed).
    ProUpdateRegistrar(ProUpdateRegistrar),
    /// Tag 4: the operator revokes its service (operator-signed).
    ProRevoke(ProRevoke),
    /// Tag 5: a DKG result; only in blocks, in a transaction without
    /// inputs or outputs.
    QuorumCommitment(QuorumCommitment),
    /// Tag 6: the best ChainLock a miner knows; only in blocks, in a
    /// transaction without inputs or outputs, committed by the header.
    ChainLock(ChainLock),
    /// Tag 7: a payment for content (output 0 pays the creator).
    ContentPurchase(crate::media::ContentPurchase),
    /// Tag 8: a content key sealed to a buyer (input 0 spends the
    /// purchase's output 0).
    KeyRelease(crate::media::KeyRelease),
    /// Tag 9: a governance proposal (the transaction burns the fee).
    Proposal(crate::governance::Proposal),
    /// Tag 10: a masternode's votes, signed with its voting key; no inputs,
    /// no outputs.
    Vote(crate::governance::VoteBatch),
    /// Tag 11: an Ethereum-signed transaction (no inputs, no outputs: its
    /// gas is paid from the sender's account).
    EthTx(crate::evm::EthTxPayload),
    /// Tag 12: a block's withdrawals from the account world, paid as its
    /// outputs; no inputs, last in its block, recomputed by every node.
    Settlement(crate::evm::SettlementPayload),
}

impl Payload {
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Coinbase(_) => "coinbase",
            Payload::ProRegister(_) => "pro_register",
            Payload::ProUpdateService(_) => "pro_update_service",
            Payload::ProUpdateRegistrar(_) => "pro_update_registrar",
            Payload::ProRevoke(_) => "pro_revoke",
            Payload::QuorumCommitment(_) => "quorum_commitment",
            Payload::ChainLock(_) => "chainlock",
            Payload::ContentPurchase(_) => "content_purchase",
            Payload::KeyRelease(_) => "key_release",
            Payload::Proposal(_) => "proposal",
            Payload::Vote(_) => "vote",
            Payload::EthTx(_) => "eth_tx",
            Payload::Settlement(_) => "settlement",
        }
    }

    /// The payload's tag byte.
    pub fn tag(&self) -> u8 {
        match self {
            Payload::Coinbase(_) => 0,
            Payload::ProRegister(_) => 1,
            Payload::ProUpdateService(_) => 2,
            Payload::ProUpdateRegistrar(_) => 3,
            Payload::ProRevoke(_) => 4,
            Payload::QuorumCommitment(_) => 5,
            Payload::ChainLock(_) => 6,
            Payload::ContentPurchase(_) => 7,
            Payload::KeyRelease(_) => 8,
            Payload::Proposal(_) => 9,
            Payload::Vote(_) => 10,
            Payload::EthTx(_) => 11,
            Payload::Settlement(_) => 12,
        }
    }
}

impl Encode for Payload {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        match self {
            Payload::Coinbase(c) => {
                c.height.encode_to(out);
                write_bytes(out, &c.extra);
            }
            Payload::ProRegister(p) => p.encode_to(out),
            Payload::ProUpdateService(p) => p.encode_to(out),
            Payload::ProUpdateRegistrar(p) => p.encode_to(out),
            Payload::ProRevoke(p) => p.encode_to(out),
            Payload::QuorumCommitment(p) => p.encode_to(out),
            Payload::ChainLock(p) => p.encode_to(out),
            Payload::ContentPurchase(p) => p.encode_to(out),
            Payload::KeyRelease(p) => p.encode_to(out),
            Payload::Proposal(p) => p.encode_to(out),
            Payload::Vote(p) => p.encode_to(out),
            Payload::EthTx(p) => p.encode_to(out),
            Payload::Settlement(p) => p.encode_to(out),
        }
    }
}

impl Decode for Payload {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        match r.u8()? {
            0 => Ok(Payload::Coinbase(CoinbasePayload {
                height: r.u64()?,
                extra: r.bytes("coinbase extra", MAX_COINBASE_EXTRA)?,
            })),
            1 => Ok(Payload::ProRegister(ProRegister::decode_from(r)?)),
            2 => Ok(Payload::ProUpdateService(ProUpdateService::decode_from(r)?)),
            3 => Ok(Payload::ProUpdateRegistrar(
                ProUpdateRegistrar::decode_from(r)?,
            )),
            4 => Ok(Payload::ProRevoke(ProRevoke::decode_from(r)?)),
            5 => Ok(Payload::QuorumCommitment(QuorumCommitment::decode_from(r)?)),
            6 => Ok(Payload::ChainLock(ChainLock::decode_from(r)?)),
            7 => Ok(Payload::ContentPurchase(
                crate::media::ContentPurchase::decode_from(r)?,
            )),
            8 => Ok(Payload::KeyRelease(crate::media::KeyRelease::decode_from(
                r,
            )?)),
            9 => Ok(Payload::Proposal(crate::governance::Proposal::decode_from(
                r,
            )?)),
            10 => Ok(Payload::Vote(crate::governance::VoteBatch::decode_from(r)?)),
            11 => Ok(Payload::EthTx(crate::evm::EthTxPayload::decode_from(r)?)),
            12 => Ok(Payload::Settlement(
                crate::evm::SettlementPayload::decode_from(r)?,
            )),
            t => Err(DecodeError::InvalidTag {
                what: "payload",
                tag: u64::from(t),
            }),
        }
    }
}

/// A transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub version: u32,
    pub inputs: Vec<TxIn>,
    pub outputs: Vec<TxOut>,
    /// 0, a block height (< [`LOCKTIME_THRESHOLD`]) or a UNIX time.
    pub lock_time: u64,
    pub payload: Option<Payload>,
}

impl Transaction {
    /// A coinbase has no inputs and a coinbase payload.
    pub fn is_coinbase(&self) -> bool {
        self.inputs.is_empty() && matches!(self.payload, Some(Payload::Coinbase(_)))
    }

    /// A block-only special transaction (quorum commitment or ChainLock):
    /// no inputs, no outputs, created by the miner, never relayed loose.
    pub fn is_block_special(&self) -> bool {
        self.inputs.is_empty()
            && self.outputs.is_empty()
            && matches!(
                self.payload,
                Some(Payload::QuorumCommitment(_) | Payload::ChainLock(_))
            )
    }

    pub fn coinbase_height(&self) -> Option<u64> {
        match &self.payload {
            Some(Payload::Coinbase(c)) if self.inputs.is_empty() => Some(c.height),
            _ => None,
        }
    }

    /// The encoding with every unlock script left out: what the txid hashes.
    pub fn encode_stripped_to(&self, out: &mut Vec<u8>) {
        self.version.encode_to(out);
        crate::encoding::write_compact_size(out, self.inputs.len() as u64);
        for i in &self.inputs {
            i.prevout.encode_to(out);
            i.sequence.encode_to(out);
        }
        write_vec(out, &self.outputs);
        self.lock_time.encode_to(out);
        write_option(out, &self.payload);
    }

    /// The id outpoints refer to; independent of unlock data.
    pub fn txid(&self) -> Hash256 {
        let mut buf = Vec::with_capacity(self.encoded_size_hint());
        self.encode_stripped_to(&mut buf);
        Hash256::domain_hash(Domain::Txid, &buf)
    }

    /// The txid and the wtxid from `encoded`, this transaction's full
    /// encoding. A transaction without inputs has no unlock data, so its
    /// stripped encoding is `encoded` itself and is not built again (most
    /// of a block of Ethereum transactions).
    pub fn ids_from_encoding(&self, encoded: &[u8]) -> (Hash256, Hash256) {
        let txid = if self.inputs.is_empty() {
            Hash256::domain_hash(Domain::Txid, encoded)
        } else {
            self.txid()
        };
        (txid, Hash256::domain_hash(Domain::Wtxid, encoded))
    }

    /// The id committed by the block merkle root; covers unlock data.
    pub fn wtxid(&self) -> Hash256 {
        Hash256::domain_hash(Domain::Wtxid, &self.encode())
    }

    /// Encoded size in bytes (what fees and block limits count).
    pub fn size(&self) -> usize {
        self.encode().len()
    }

    /// Sum of output values; fails if it leaves the money range.
    pub fn output_value(&self) -> Result<Amount, crate::AmountError> {
        Amount::checked_sum(self.outputs.iter().map(|o| o.value))
    }
}

impl Encode for Transaction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.version.encode_to(out);
        write_vec(out, &self.inputs);
        write_vec(out, &self.outputs);
        self.lock_time.encode_to(out);
        write_option(out, &self.payload);
    }
    fn encoded_size_hint(&self) -> usize {
        24 + self.inputs.len() * 150 + self.outputs.len() * 48
    }
}

impl Decode for Transaction {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(Transaction {
            version: r.u32()?,
            // An input is at least 36 + 1 + 4 bytes, an output 8 + 1.
            inputs: r.vec("inputs", MAX_TX_IO, 41)?,
            outputs: r.vec("outputs", MAX_TX_IO, 9)?,
            lock_time: r.u64()?,
            payload: r.option("payload")?,
        })
    }
}
