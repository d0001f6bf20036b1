//! Coins leaving the account world: the withdraw system contract and the
//! settlement transaction that pays its withdrawals out as UTXOs.
//!
//! The contract lives at [`WITHDRAW_ADDRESS`] in every state (its code is
//! part of the rules, not stored in the trie). A call with a value of
//! whole base units (a multiple of 10¹⁰ wei-units) and, as call data, the
//! lock script to pay emits one log `LOG2(data = script, topics = [TOPIC,
//! value])`; anything else reverts. Only that code can emit logs from
//! that address, and a reverted frame's logs are dropped, so after each
//! transaction the executor reads the logs it left at that address, debits
//! the address by their values and records the withdrawals. A log whose
//! script is not a standard spendable script is paid back to the
//! transaction's sender instead.
//!
//! Each block with withdrawals ends with one settlement transaction — no
//! inputs, [`Payload::Settlement`] with the height, one output per
//! withdrawal in order — which every node recomputes and compares.

use std::sync::OnceLock;

use ruint::aliases::U256;
use rusty_crypto::eth::keccak256;
use rusty_shared_types::{
    evm::{SettlementPayload, WEI_PER_UNIT},
    Amount, Payload, Script, Transaction, TxOut,
};
use rusty_vm::evm::EvmLog;

/// Where the withdraw contract answers.
pub const WITHDRAW_ADDRESS: [u8; 20] = {
    let mut a = [0u8; 20];
    a[17] = 0x01;
    a
};

/// Largest lock script a withdrawal may pay.
pub const MAX_WITHDRAW_SCRIPT: usize = 100;

/// The log's first topic: keccak256 of the event's signature.
pub fn topic() -> [u8; 32] {
    keccak256(b"rusty.withdraw(bytes,uint256)")
}

/// The contract's code (hand-assembled; see the module documentation):
///
/// ```text
/// CALLVALUE ISZERO PUSH1 fail JUMPI              ; a value is required
/// PUSH5 10^10 CALLVALUE MOD PUSH1 fail JUMPI     ; of whole base units
/// CALLDATASIZE PUSH1 0 PUSH1 0 CALLDATACOPY      ; the script to memory
/// CALLVALUE PUSH32 topic CALLDATASIZE PUSH1 0 LOG2 STOP
/// fail: JUMPDEST PUSH1 0 PUSH1 0 REVERT
/// ```
pub fn code() -> &'static [u8] {
    static CODE: OnceLock<Vec<u8>> = OnceLock::new();
    CODE.get_or_init(|| {
        let fail = 61u8;
        let mut c = vec![0x34, 0x15, 0x60, fail, 0x57];
        c.extend([
            0x64, 0x02, 0x54, 0x0b, 0xe4, 0x00, 0x34, 0x06, 0x60, fail, 0x57,
        ]);
        c.extend([0x36, 0x60, 0x00, 0x60, 0x00, 0x37, 0x34, 0x7f]);
        c.extend(topic());
        c.extend([0x36, 0x60, 0x00, 0xa2, 0x00]);
        debug_assert_eq!(c.len(), usize::from(fail));
        c.extend([0x5b, 0x60, 0x00, 0x60, 0x00, 0xfd]);
        c
    })
}

pub fn code_hash() -> [u8; 32] {
    static HASH: OnceLock<[u8; 32]> = OnceLock::new();
    *HASH.get_or_init(|| keccak256(code()))
}

/// One log the withdraw contract left: the script to pay and the value.
pub(crate) fn parse_log(log: &EvmLog) -> Option<(Vec<u8>, U256)> {
    if log.address != WITHDRAW_ADDRESS || log.topics.len() != 2 || log.topics[0] != topic() {
        return None;
    }
    Some((log.data.clone(), U256::from_be_bytes(log.topics[1])))
}

/// The output a withdrawal pays, if its script and value are payable.
pub(crate) fn payout(script: &[u8], wei: U256) -> Option<TxOut> {
    if script.len() > MAX_WITHDRAW_SCRIPT {
        return None;
    }
    let lock = Script::new(script.to_vec());
    if !rusty_vm::templates::classify(&lock).is_standard() || lock.is_unspendable() {
        return None;
    }
    let unit = U256::from(WEI_PER_UNIT);
    if !(wei % unit).is_zero() {
        return None;
    }
    let units = u64::try_from(wei / unit).ok()?;
    Some(TxOut {
        value: Amount::from_units(units).ok()?,
        lock,
    })
}

/// The settlement transaction paying `outputs` at `height`.
pub fn settlement_tx(height: u64, outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: 1,
        inputs: Vec::new(),
        outputs,
        lock_time: 0,
        payload: Some(Payload::Settlement(SettlementPayload { height })),
    }
}
