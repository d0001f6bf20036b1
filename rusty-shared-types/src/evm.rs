//! The account world's plain data: its parameters per network, the
//! deposit output that moves coins into it, the payload that carries an
//! Ethereum-signed transaction, and the unit conversion.
//!
//! Coins live as UTXOs; an account balance is in wei-units, 10¹⁸ to the
//! coin like ether, so `msg.value` and wallets show whole coins. One base
//! unit (10⁻⁸ coin) is [`WEI_PER_UNIT`] = 10¹⁰ wei-units.

use crate::{
    encoding::{write_bytes, Decode, DecodeResult, Encode, Reader},
    Amount, Script,
};

/// Wei-units per base unit: 10¹⁸ per coin over 10⁸ base units per coin.
pub const WEI_PER_UNIT: u128 = 10_000_000_000;

/// Largest raw Ethereum transaction a payload carries (as geth's pool).
pub const MAX_ETH_TX_SIZE: usize = 128 * 1024;

/// The marker that starts a deposit output's data.
pub const DEPOSIT_MARKER: &[u8; 4] = b"evm:";

/// A network's account world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvmParams {
    /// EIP-155 chain id: signed transactions must name it.
    pub chain_id: u64,
    /// The first height whose header commits to the account state.
    pub activation_height: u64,
    /// Gas all of a block's Ethereum transactions may use together.
    pub block_gas_limit: u64,
    /// The constant `baseFeePerGas`, in wei-units per gas; burned.
    pub base_fee: u64,
}

/// An Ethereum-signed transaction, carried as its raw EIP-2718 bytes
/// (decoded, and its sender recovered, by `rusty_crypto::eth::tx`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EthTxPayload {
    pub raw: Vec<u8>,
}

impl Encode for EthTxPayload {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write_bytes(out, &self.raw);
    }
}

impl Decode for EthTxPayload {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(EthTxPayload {
            raw: r.bytes("ethereum transaction", MAX_ETH_TX_SIZE)?,
        })
    }
}

/// The settlement transaction's payload: the block's height (which makes
/// its txid unique). Its outputs pay the block's withdrawals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementPayload {
    pub height: u64,
}

impl Encode for SettlementPayload {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.height.encode_to(out);
    }
}

impl Decode for SettlementPayload {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(SettlementPayload { height: r.u64()? })
    }
}

/// `OP_RETURN <"evm:" address>`: an output whose value leaves the UTXO
/// set and is credited to `address`'s account when its block connects.
pub fn deposit_script(address: &[u8; 20]) -> Script {
    let mut data = Vec::with_capacity(24);
    data.extend_from_slice(DEPOSIT_MARKER);
    data.extend_from_slice(address);
    // 24 bytes is within every data-carrier limit.
    Script::data_carrier(&data).unwrap_or_default()
}

/// The account a deposit output credits, if `script` is exactly one.
pub fn parse_deposit(script: &Script) -> Option<[u8; 20]> {
    match script.as_bytes() {
        [crate::script::op::OP_RETURN, 24, rest @ ..] if rest.len() == 24 => {
            let (marker, address) = rest.split_at(4);
            (marker == DEPOSIT_MARKER).then(|| address.try_into().ok())?
        }
        _ => None,
    }
}

/// An amount in wei-units (never overflows: the money range is far below
/// 2¹²⁸ / 10¹⁰).
pub fn to_wei(amount: Amount) -> u128 {
    u128::from(amount.units()) * WEI_PER_UNIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deposit_script_round_trips_and_is_unspendable() {
        let address = [0x42; 20];
        let script = deposit_script(&address);
        assert!(script.is_unspendable());
        assert_eq!(parse_deposit(&script), Some(address));
        // Another marker, or another length, is not a deposit.
        let mut other = b"evx:".to_vec();
        other.extend_from_slice(&address);
        assert_eq!(parse_deposit(&Script::data_carrier(&other).unwrap()), None);
        assert_eq!(
            parse_deposit(&Script::data_carrier(&[0; 24][..20]).unwrap()),
            None
        );
        assert_eq!(to_wei(Amount::from_units(3).unwrap()), 30_000_000_000);
    }
}
