//! The one error type of script validation and signature hashing.

use thiserror::Error;

/// Why an input's scripts, or the signature hash of a transaction, was rejected.
///
/// Every variant is a consensus failure: a transaction carrying it is invalid, no
/// matter which node evaluates it. The messages name the rule that was broken so an
/// operator or wallet developer can tell what to change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScriptError {
    /// [`SighashCache::new`](crate::SighashCache::new) needs exactly one spent output
    /// per input, in input order.
    #[error("{spent} spent outputs given for a transaction with {inputs} inputs; pass one per input, in order")]
    SpentOutputsMismatch {
        /// Inputs of the transaction.
        inputs: usize,
        /// Spent outputs supplied.
        spent: usize,
    },
    /// An input index past the end of the transaction's inputs.
    #[error("input index {index} out of range: the transaction has {inputs} inputs")]
    InputIndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// Inputs of the transaction.
        inputs: usize,
    },
    /// `SIGHASH_SINGLE` signs "the output at my index", and there is none.
    #[error("SIGHASH_SINGLE on input {index}, but the transaction has no output {index}")]
    SighashSingleNoOutput {
        /// The signing input, which has no output at the same index.
        index: usize,
    },
    /// A lock or unlock script longer than [`MAX_SCRIPT_SIZE`](rusty_shared_types::script::MAX_SCRIPT_SIZE).
    #[error("script of {size} bytes exceeds the limit of {max} bytes")]
    ScriptTooLarge {
        /// Size of the script.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Unlock scripts may only push data; logic belongs in the lock script.
    #[error("unlock script contains opcode {0:#04x}; unlock scripts may only push data")]
    UnlockNotPushOnly(u8),
    /// A script has more than [`MAX_OPS_PER_SCRIPT`](crate::MAX_OPS_PER_SCRIPT)
    /// non-push opcodes (counted whether or not their branch executes).
    #[error("script has more than {max} non-push opcodes", max = crate::MAX_OPS_PER_SCRIPT)]
    TooManyOps,
    /// The stack would hold more than [`MAX_STACK_SIZE`](crate::MAX_STACK_SIZE) elements.
    #[error("stack would exceed {max} elements", max = crate::MAX_STACK_SIZE)]
    StackOverflow,
    /// An opcode needs more stack elements than there are.
    #[error("opcode {0:#04x} needs more stack elements than there are")]
    StackUnderflow(u8),
    /// A push of more than [`MAX_PUSH_SIZE`](rusty_shared_types::script::MAX_PUSH_SIZE) bytes.
    #[error("push of {size} bytes exceeds the element limit of {max} bytes")]
    PushTooLarge {
        /// Bytes pushed.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Data pushed with a longer opcode than necessary (e.g. `PUSHDATA1` for 10
    /// bytes, or a one-byte push of 5 instead of `OP_5`). Pushes are canonical so a
    /// third party cannot re-encode an unlock script and change the wtxid.
    #[error("non-minimal push of {size} bytes; use the shortest push opcode")]
    NonMinimalPush {
        /// Bytes pushed.
        size: usize,
    },
    /// A push opcode whose length or data runs past the end of the script.
    #[error("push opcode runs past the end of the script")]
    TruncatedPush,
    /// `ELSE`/`ENDIF` without `IF`, or an `IF` left open at the end of a script.
    #[error("unbalanced conditional: every IF/NOTIF needs exactly one ENDIF in the same script")]
    UnbalancedConditional,
    /// The argument of `IF`/`NOTIF` must be empty (false) or exactly `[0x01]` (true),
    /// so a third party cannot swap one truthy value for another.
    #[error("IF/NOTIF argument must be empty or exactly 0x01")]
    NonMinimalIf,
    /// `VERIFY` found false on the stack.
    #[error("OP_VERIFY failed: top of stack is false")]
    VerifyFailed,
    /// `EQUALVERIFY` found two different elements (in templates: a wrong public key
    /// for the hash, a wrong secret, or a secret of the wrong size).
    #[error("OP_EQUALVERIFY failed: the two top elements differ")]
    EqualVerifyFailed,
    /// `NUMEQUALVERIFY` found two different numbers.
    #[error("OP_NUMEQUALVERIFY failed: the two top numbers differ")]
    NumEqualVerifyFailed,
    /// `CHECKSIGVERIFY` was given an empty signature.
    #[error("OP_CHECKSIGVERIFY failed: the signature is empty")]
    CheckSigVerifyFailed,
    /// `RETURN` was executed: the output is unspendable.
    #[error("OP_RETURN executed: the output is unspendable")]
    OpReturn,
    /// A byte that is not a FerrisScript opcode, anywhere in a script (even in a
    /// branch that does not execute).
    #[error("unknown opcode {0:#04x}")]
    UnknownOpcode(u8),
    /// A number operand that is too long or not minimally encoded.
    #[error("invalid script number: more than {max_len} bytes or not minimally encoded")]
    InvalidNumber {
        /// The largest encoding the opcode accepts (4 for arithmetic, 5 for lock times).
        max_len: usize,
    },
    /// A non-empty signature that is not 64 bytes, or 65 bytes ending in a canonical
    /// sighash type (`0x01`-`0x03`, optionally `| 0x80`).
    #[error("invalid signature encoding: expected 64 bytes, or 65 with a sighash type 0x01-0x03 or 0x81-0x83")]
    InvalidSignatureEncoding,
    /// A public key operand that is not 32 bytes.
    #[error("invalid public key: expected 32 bytes, got {0}")]
    InvalidPublicKey(usize),
    /// A non-empty signature that does not verify (NULLFAIL: a signature that is meant
    /// to fail must be empty, so every non-empty one can be batch-verified).
    #[error("signature verification failed (a failing signature must be empty)")]
    SignatureCheckFailed,
    /// `CHECKLOCKTIMEVERIFY` with a negative argument.
    #[error("OP_CHECKLOCKTIMEVERIFY argument is negative")]
    NegativeLockTime,
    /// `CHECKLOCKTIMEVERIFY` failed: the transaction's lock time is of the other kind
    /// (height vs time) or earlier than required, or the input's sequence is final.
    #[error("lock time not satisfied: tx lock_time must be the same kind (height/time) and at least {required}, with a non-final input sequence")]
    LockTimeNotSatisfied {
        /// The lock time the script requires.
        required: i64,
    },
    /// `CHECKSEQUENCEVERIFY` with an argument outside `0..=0xffff` blocks.
    #[error("OP_CHECKSEQUENCEVERIFY argument {0} outside 0..=65535 blocks")]
    SequenceArgOutOfRange(i64),
    /// `CHECKSEQUENCEVERIFY` failed: the input's sequence disables relative locks or
    /// is below the required number of blocks.
    #[error("relative lock not satisfied: input sequence must have bit 31 clear and its low 16 bits at least {required}")]
    SequenceNotSatisfied {
        /// Blocks the script requires.
        required: i64,
    },
    /// The scripts ran to the end with an empty stack or a false top element.
    #[error("script evaluated to false")]
    EvalFalse,
    /// The scripts succeeded but left more than one element (clean-stack rule).
    #[error("script left {0} elements on the stack; exactly one must remain")]
    CleanStack(usize),
}

/// Result of script validation and signature hashing.
pub type Result<T, E = ScriptError> = std::result::Result<T, E>;
