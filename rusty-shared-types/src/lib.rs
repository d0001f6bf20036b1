//! Plain data of the Rusty Coin chain, shared by every other crate.
//!
//! - [`encoding`]: the canonical binary encoding (CompactSize lengths, strict
//!   decoders) used for hashing, the wire and the database.
//! - [`hash`]: [`Hash256`] and the BLAKE3 hashing [`Domain`]s.
//! - [`amount`]: [`Amount`] in base units with checked arithmetic.
//! - [`script`]: [`Script`] bytes and the FerrisScript opcode table.
//! - [`transaction`] and [`block`]: the ledger's objects.
//! - [`masternode`]: masternode, quorum commitment and ChainLock payloads.
//! - [`params`]: [`ChainParams`] of the `main`, `test` and `dev` networks.
//! - [`address`]: bech32m [`Address`]es.
//! - [`rlp`]: Ethereum's RLP, with a strict decoder.
//! - [`evm`]: the account world's parameters, deposit outputs and the
//!   payload carrying an Ethereum-signed transaction.
//!
//! No I/O and no heavy dependencies live here.

pub mod address;
pub mod amount;
pub mod block;
pub mod encoding;
pub mod evm;
pub mod governance;
pub mod hash;
pub mod masternode;
pub mod media;
pub mod params;
pub mod rlp;
pub mod script;
pub mod transaction;

pub use address::{Address, AddressError};
pub use amount::{Amount, AmountError, COIN, MAX_MONEY};
pub use block::{Block, BlockHeader, HEADER_SIZE};
pub use encoding::{decode_exact, Decode, DecodeError, Encode};
pub use hash::{Domain, Hash256};
pub use masternode::{BitSet, ChainLock, QuorumCommitment};
pub use params::{Chain, ChainParams, Network};
pub use script::Script;
pub use transaction::{CoinbasePayload, OutPoint, Payload, Transaction, TxIn, TxOut};

#[cfg(any(test, feature = "proptest"))]
pub mod arbitrary;
