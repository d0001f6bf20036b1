//! Ethereum-signed transactions from their raw bytes (EIP-2718 envelopes):
//! legacy (type 0, with or without EIP-155), access-list (type 1, EIP-2930)
//! and dynamic-fee (type 2, EIP-1559) are decoded and their sender
//! recovered; blob (type 3) and set-code (type 4) transactions are refused
//! with an error that says so. The bytes come from anyone
//! (`eth_sendRawTransaction`, blocks), so decoding is strict: canonical
//! RLP only, integers without leading zeros, a low `s` (EIP-2), and a
//! signature that recovers.

use rusty_shared_types::rlp::{self, Item, Rlp, RlpError};
use thiserror::Error;

use super::{keccak256, recover_address, EthAddress, EthKey};

/// Largest transaction accepted (as geth's txpool: 128 KiB).
pub const MAX_TX_SIZE: usize = 128 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EthTxType {
    Legacy,
    AccessList,
    DynamicFee,
}

impl EthTxType {
    pub fn number(self) -> u8 {
        match self {
            EthTxType::Legacy => 0,
            EthTxType::AccessList => 1,
            EthTxType::DynamicFee => 2,
        }
    }
}

/// One access-list entry: an address and storage slots.
pub type AccessListItem = (EthAddress, Vec<[u8; 32]>);

/// A transaction's fields, whatever its type (fees as EIP-1559 sees them:
/// a legacy or type-1 gas price is both its max fee and its tip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthTxFields {
    pub tx_type: EthTxType,
    /// `None` only for a legacy transaction without EIP-155.
    pub chain_id: Option<u64>,
    pub nonce: u64,
    pub max_priority_fee_per_gas: u128,
    pub max_fee_per_gas: u128,
    pub gas_limit: u64,
    /// `None` creates a contract.
    pub to: Option<EthAddress>,
    /// Wei, 256-bit big-endian.
    pub value: [u8; 32],
    pub input: Vec<u8>,
    pub access_list: Vec<AccessListItem>,
}

/// A decoded, signature-checked transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthTx {
    pub fields: EthTxFields,
    pub sender: EthAddress,
    /// keccak256 of the raw bytes: the hash Ethereum tools know it by.
    pub hash: [u8; 32],
    pub signature: EthSignature,
}

/// A transaction's signature as JSON-RPC reports it: `v` is the legacy
/// `v` (27/28, or EIP-155's `chain id × 2 + 35/36`) or a typed
/// transaction's y parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthSignature {
    pub v: u64,
    pub r: [u8; 32],
    pub s: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EthTxError {
    #[error("empty transaction")]
    Empty,
    #[error("transaction of {0} bytes exceeds the {MAX_TX_SIZE}-byte limit")]
    TooLarge(usize),
    #[error("blob transactions (type 3, EIP-4844) are not supported on this chain")]
    Blob,
    #[error("set-code transactions (type 4, EIP-7702) are not supported on this chain")]
    SetCode,
    #[error("transaction type {0} is not supported")]
    UnknownType(u8),
    #[error("rlp: {0}")]
    Rlp(#[from] RlpError),
    #[error("invalid transaction: {0}")]
    Field(&'static str),
    #[error("invalid signature: {0}")]
    Signature(&'static str),
}

/// The order's half: `s` above it is the malleable twin (EIP-2).
const SECP256K1_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

fn uint_u64(item: &Rlp<'_>, what: &'static str) -> Result<u64, EthTxError> {
    let v = item.uint()?;
    u64::try_from(v).map_err(|_| EthTxError::Field(what))
}

fn word(item: &Rlp<'_>, what: &'static str) -> Result<[u8; 32], EthTxError> {
    item.uint256().map_err(|_| EthTxError::Field(what))
}

fn address(item: &Rlp<'_>) -> Result<EthAddress, EthTxError> {
    item.bytes()?
        .try_into()
        .map_err(|_| EthTxError::Field("an address must be 20 bytes"))
}

fn to_field(item: &Rlp<'_>) -> Result<Option<EthAddress>, EthTxError> {
    match item.bytes()? {
        [] => Ok(None),
        _ => address(item).map(Some),
    }
}

fn access_list(item: &Rlp<'_>) -> Result<Vec<AccessListItem>, EthTxError> {
    item.list()?
        .iter()
        .map(|entry| {
            let [addr, slots] = entry.list()? else {
                return Err(EthTxError::Field(
                    "an access-list entry is [address, slots]",
                ));
            };
            let slots = slots
                .list()?
                .iter()
                .map(|s| {
                    s.bytes()?
                        .try_into()
                        .map_err(|_| EthTxError::Field("a storage key must be 32 bytes"))
                })
                .collect::<Result<Vec<[u8; 32]>, EthTxError>>()?;
            Ok((address(addr)?, slots))
        })
        .collect()
}

/// The signer of `fields` by `(y_parity, r, s)`, strictly; `known` if it
/// was recovered before.
fn recover(
    fields: &EthTxFields,
    known: Option<EthAddress>,
    parity: u8,
    r: &Rlp<'_>,
    s: &Rlp<'_>,
) -> Result<(EthAddress, [u8; 32], [u8; 32]), EthTxError> {
    let r = word(r, "r").map_err(|_| EthTxError::Signature("r is not a 256-bit integer"))?;
    let s = word(s, "s").map_err(|_| EthTxError::Signature("s is not a 256-bit integer"))?;
    if s > SECP256K1_HALF_ORDER {
        return Err(EthTxError::Signature(
            "s is in the upper half of the order (EIP-2)",
        ));
    }
    if let Some(sender) = known {
        return Ok((sender, r, s));
    }
    let sender = recover_address(&fields.signing_hash(), &r, &s, parity)
        .map_err(|_| EthTxError::Signature("it recovers to no key"))?;
    Ok((sender, r, s))
}

/// Decodes and checks `raw` (as `eth_sendRawTransaction` receives it).
pub fn decode(raw: &[u8]) -> Result<EthTx, EthTxError> {
    decode_known(raw, |_| None)
}

/// [`decode`], taking the sender from `known` (by the transaction's hash)
/// where it has been recovered before instead of recovering it again: a
/// block's transactions that entered the pool first. Recovery is most of
/// a decode's cost; every other check still runs. `known` must only
/// answer for hashes whose bytes decoded to that sender.
pub fn decode_known(
    raw: &[u8],
    known: impl Fn(&[u8; 32]) -> Option<EthAddress>,
) -> Result<EthTx, EthTxError> {
    let first = *raw.first().ok_or(EthTxError::Empty)?;
    if raw.len() > MAX_TX_SIZE {
        return Err(EthTxError::TooLarge(raw.len()));
    }
    let hash = keccak256(raw);
    let known = known(&hash);
    let (fields, sender, signature) = match first {
        0xc0..=0xff => decode_legacy(raw, known)?,
        1 => decode_typed(EthTxType::AccessList, raw, known)?,
        2 => decode_typed(EthTxType::DynamicFee, raw, known)?,
        3 => return Err(EthTxError::Blob),
        4 => return Err(EthTxError::SetCode),
        other => return Err(EthTxError::UnknownType(other)),
    };
    Ok(EthTx {
        fields,
        sender,
        hash,
        signature,
    })
}

/// Fields, sender and signature of a decoded transaction.
type Decoded = (EthTxFields, EthAddress, EthSignature);

fn decode_legacy(raw: &[u8], known: Option<EthAddress>) -> Result<Decoded, EthTxError> {
    let item = rlp::decode(raw)?;
    let [nonce, price, gas, to, value, input, v, r, s] = item.list()? else {
        return Err(EthTxError::Field("a legacy transaction has 9 fields"));
    };
    let gas_price = price.uint()?;
    let v = v.uint()?;
    let (chain_id, parity) = match v {
        27 | 28 => (None, (v - 27) as u8),
        35.. => (
            Some(u64::try_from((v - 35) / 2).map_err(|_| EthTxError::Signature("v is too large"))?),
            ((v - 35) % 2) as u8,
        ),
        _ => return Err(EthTxError::Signature("v is neither 27/28 nor EIP-155")),
    };
    let fields = EthTxFields {
        tx_type: EthTxType::Legacy,
        chain_id,
        nonce: uint_u64(nonce, "nonce")?,
        max_priority_fee_per_gas: gas_price,
        max_fee_per_gas: gas_price,
        gas_limit: uint_u64(gas, "gas limit")?,
        to: to_field(to)?,
        value: word(value, "value")?,
        input: input.bytes()?.to_vec(),
        access_list: Vec::new(),
    };
    let (sender, r, s) = recover(&fields, known, parity, r, s)?;
    let v = u64::try_from(v).map_err(|_| EthTxError::Signature("v is too large"))?;
    Ok((fields, sender, EthSignature { v, r, s }))
}

fn decode_typed(
    tx_type: EthTxType,
    raw: &[u8],
    known: Option<EthAddress>,
) -> Result<Decoded, EthTxError> {
    let item = rlp::decode(&raw[1..])?;
    let items = item.list()?;
    let (fees, rest): (_, &[Rlp<'_>]) = match (tx_type, items) {
        (EthTxType::AccessList, [chain, nonce, price, rest @ ..]) if rest.len() == 8 => {
            let p = price.uint()?;
            ((chain, nonce, p, p), rest)
        }
        (EthTxType::DynamicFee, [chain, nonce, tip, max, rest @ ..]) if rest.len() == 8 => {
            ((chain, nonce, tip.uint()?, max.uint()?), rest)
        }
        _ => return Err(EthTxError::Field("wrong number of fields for the type")),
    };
    let (chain, nonce, tip, max) = fees;
    let [gas, to, value, input, list, parity, r, s] = rest else {
        return Err(EthTxError::Field("wrong number of fields for the type"));
    };
    if tip > max {
        return Err(EthTxError::Field(
            "max priority fee per gas above max fee per gas",
        ));
    }
    let parity = match parity.uint()? {
        p @ (0 | 1) => p as u8,
        _ => return Err(EthTxError::Signature("y parity must be 0 or 1")),
    };
    let fields = EthTxFields {
        tx_type,
        chain_id: Some(uint_u64(chain, "chain id")?),
        nonce: uint_u64(nonce, "nonce")?,
        max_priority_fee_per_gas: tip,
        max_fee_per_gas: max,
        gas_limit: uint_u64(gas, "gas limit")?,
        to: to_field(to)?,
        value: word(value, "value")?,
        input: input.bytes()?.to_vec(),
        access_list: access_list(list)?,
    };
    let (sender, r, s) = recover(&fields, known, parity, r, s)?;
    let signature = EthSignature {
        v: u64::from(parity),
        r,
        s,
    };
    Ok((fields, sender, signature))
}

impl EthTxFields {
    /// The fields as signed, without the signature.
    fn unsigned_items(&self) -> Vec<Item> {
        let to = Item::Bytes(self.to.map(|a| a.to_vec()).unwrap_or_default());
        let common = |out: &mut Vec<Item>| {
            out.extend([
                Item::uint(self.gas_limit.into()),
                to.clone(),
                Item::uint_bytes(&self.value),
                Item::Bytes(self.input.clone()),
            ]);
        };
        let mut items = Vec::new();
        match self.tx_type {
            EthTxType::Legacy => {
                items.extend([
                    Item::uint(self.nonce.into()),
                    Item::uint(self.max_fee_per_gas),
                ]);
                common(&mut items);
                if let Some(id) = self.chain_id {
                    items.extend([Item::uint(id.into()), Item::uint(0), Item::uint(0)]);
                }
            }
            EthTxType::AccessList | EthTxType::DynamicFee => {
                items.extend([
                    Item::uint(self.chain_id.unwrap_or_default().into()),
                    Item::uint(self.nonce.into()),
                ]);
                if self.tx_type == EthTxType::DynamicFee {
                    items.push(Item::uint(self.max_priority_fee_per_gas));
                }
                items.push(Item::uint(self.max_fee_per_gas));
                common(&mut items);
                items.push(Item::List(
                    self.access_list
                        .iter()
                        .map(|(a, slots)| {
                            Item::List(vec![
                                Item::Bytes(a.to_vec()),
                                Item::List(slots.iter().map(|s| Item::Bytes(s.to_vec())).collect()),
                            ])
                        })
                        .collect(),
                ));
            }
        }
        items
    }

    fn envelope(&self, items: Vec<Item>) -> Vec<u8> {
        let body = rlp::encode(&Item::List(items));
        match self.tx_type {
            EthTxType::Legacy => body,
            t => [&[t.number()][..], &body].concat(),
        }
    }

    /// What the sender signs.
    pub fn signing_hash(&self) -> [u8; 32] {
        keccak256(&self.envelope(self.unsigned_items()))
    }

    /// The raw signed transaction (what a wallet sends).
    pub fn sign(&self, key: &EthKey) -> Result<Vec<u8>, super::EthError> {
        let (r, s, parity) = key.sign_hash(&self.signing_hash())?;
        let v = match (self.tx_type, self.chain_id) {
            (EthTxType::Legacy, Some(id)) => u128::from(id) * 2 + 35 + u128::from(parity),
            (EthTxType::Legacy, None) => 27 + u128::from(parity),
            _ => u128::from(parity),
        };
        let mut items = self.unsigned_items();
        if self.tx_type == EthTxType::Legacy && self.chain_id.is_some() {
            items.truncate(6);
        }
        items.extend([Item::uint(v), Item::uint_bytes(&r), Item::uint_bytes(&s)]);
        Ok(self.envelope(items))
    }
}

#[cfg(test)]
#[path = "tx_tests.rs"]
mod tests;
