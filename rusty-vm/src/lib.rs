//! FerrisScript: the small, bounded stack language that locks Rusty Coin outputs, its
//! standard templates and the signature hash.
//!
//! An input is valid when its unlock script (data pushes only), followed by the lock
//! script of the output it spends, leaves exactly one true element on the stack.
//!
//! - [`sighash`]: [`SighashCache`] computes the BIP-341-style BLAKE3 signature hash of
//!   every input in O(n) for the whole transaction; [`SighashType`] is ALL by default
//!   (64-byte signatures) or NONE/SINGLE/ANYONECANPAY with a 65th byte.
//! - [`interpreter`]: [`verify_input`] runs the scripts of one input under the limits
//!   (10 000-byte scripts, 201 opcodes, 1 000 stack elements of 520 bytes, minimal
//!   pushes, no loops) and the NULLFAIL signature rule.
//! - [`checker`]: where signature checks go. [`ImmediateChecker`] verifies each at once;
//!   [`DeferredChecker`] collects them so a block batch-verifies every signature in one
//!   go. NULLFAIL guarantees both give the same verdict.
//! - [`templates`]: P2PKH, m-of-n multisig (`CHECKSIGADD`), HTLC (BLAKE3 or SHA-256
//!   hashlock, absolute or relative timeout) and data carrier builders, their unlock
//!   scripts, and [`classify`] for RPC and relay policy.
//! - [`signer`]: wallet signing, [`sign_input`] and [`sign_p2pkh`].
//! - [`instruction`], [`num`], [`builder`]: parsing, script numbers, and a
//!   [`ScriptBuilder`] that always emits canonical pushes.
//!
//! The opcode table itself is plain data in
//! [`rusty_shared_types::script::op`]. Nothing here does I/O or spawns tasks.

pub mod builder;
pub mod checker;
mod error;
pub mod evm;
pub mod instruction;
pub mod interpreter;
pub mod num;
pub mod sighash;
pub mod signer;
pub mod templates;

#[cfg(test)]
mod tests;

pub use builder::ScriptBuilder;
pub use checker::{DeferredChecker, ImmediateChecker, SignatureChecker};
pub use error::{Result, ScriptError};
pub use instruction::{disassemble, Instruction};
pub use interpreter::{
    count_sigops, verify_input, InputContext, MAX_OPS_PER_SCRIPT, MAX_STACK_SIZE,
};
pub use sighash::{SighashCache, SighashType};
pub use signer::{sign_input, sign_p2pkh, SignError};
pub use templates::{
    classify, htlc, htlc_claim_unlock, htlc_refund_unlock, multisig, multisig_unlock, p2pkh_unlock,
    HashKind, HtlcParams, ScriptKind, Timeout,
};
