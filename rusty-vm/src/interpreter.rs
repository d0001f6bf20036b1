//! The FerrisScript interpreter: runs an input's unlock script, then the spent
//! output's lock script, on one stack.
//!
//! # Rules
//!
//! - The unlock script may only push data (pushes and `OP_1`..`OP_16`).
//! - Each script is at most [`MAX_SCRIPT_SIZE`] bytes and holds at most
//!   [`MAX_OPS_PER_SCRIPT`] non-push opcodes, counted whether or not their branch
//!   executes. There are no loops and no backward jumps, so evaluation is linear in
//!   the script size and every script terminates.
//! - The stack holds at most [`MAX_STACK_SIZE`] elements (FerrisScript has no
//!   altstack, so this is the whole limit) of at most [`MAX_PUSH_SIZE`] bytes each.
//!
//! [`MAX_PUSH_SIZE`]: rusty_shared_types::script::MAX_PUSH_SIZE
//! - Pushes are minimal, and a push, even in a branch that does not run, must be
//!   well-formed (see [`crate::instruction`]); an unknown opcode fails the script
//!   wherever it appears.
//! - `IF`/`NOTIF` take an empty element (false) or exactly `[0x01]` (true), like
//!   Bitcoin's MINIMALIF; every `IF` is closed by an `ENDIF` in the same script.
//! - Numbers are Bitcoin `CScriptNum`s (see [`crate::num`]): 4 bytes for `NUMEQUAL`
//!   and `CHECKSIGADD`, 5 bytes for the lock-time opcodes.
//! - Success: after both scripts, exactly one element is left and it is true.
//!
//! # Opcodes
//!
//! | opcode | stack effect |
//! |--------|--------------|
//! | `OP_0`, pushes, `OP_1`..`OP_16` | `-- x` |
//! | `IF`/`NOTIF`/`ELSE`/`ENDIF` | `b --` and branch |
//! | `VERIFY` | `b --`, fails if false |
//! | `RETURN` | fails |
//! | `DROP`, `DUP`, `SWAP` | `a --`, `a -- a a`, `a b -- b a` |
//! | `SIZE` | `a -- a len(a)` |
//! | `EQUAL`, `EQUALVERIFY` | `a b -- (a == b)` bytewise |
//! | `NUMEQUAL`, `NUMEQUALVERIFY` | `a b -- (a == b)` as numbers |
//! | `SHA256`, `BLAKE3` | `a -- H(a)`, plain hashes so hashlocks match other chains |
//! | `PUBKEYHASH` | `pk -- BLAKE3_PubkeyHash(pk)` (`rusty_crypto::pubkey_hash`) |
//! | `CHECKSIG`, `CHECKSIGVERIFY` | `sig pk -- ok` |
//! | `CHECKSIGADD` | `sig n pk -- n+ok` (Taproot's BIP-342 semantics) |
//! | `CHECKLOCKTIMEVERIFY` | `t -- t`: BIP-65 against `tx.lock_time` |
//! | `CHECKSEQUENCEVERIFY` | `n -- n`: relative lock of `n` blocks via the input's sequence |
//!
//! # Signatures (NULLFAIL)
//!
//! A public key operand must be exactly 32 bytes. An empty signature makes a check
//! false (`CHECKSIGADD` adds nothing). A non-empty signature must be 64 bytes or 65
//! with a canonical sighash byte (see [`crate::sighash`]) *and* valid, or the script
//! fails. Since no script can succeed because a signature is invalid, the checks can be
//! handed to a [`DeferredChecker`](crate::DeferredChecker) and batch-verified later
//! without changing any verdict.
//!
//! # Lock times
//!
//! `CHECKLOCKTIMEVERIFY` (BIP-65): the argument is non-negative, of the same kind as
//! `tx.lock_time` (both heights below [`LOCKTIME_THRESHOLD`] or both UNIX times at or
//! above it), at most `tx.lock_time`, and the input's sequence is not
//! [`SEQUENCE_FINAL`]. Consensus separately requires the lock time to have passed.
//!
//! `CHECKSEQUENCEVERIFY` counts blocks only: the argument is in `0..=0xffff`, the
//! input's sequence has the disable flag (bit 31) clear and its low 16 bits are at least
//! the argument. Consensus separately requires the spent coin to be that many blocks
//! old. Both opcodes leave their argument on the stack (follow them with `DROP`).
#![deny(clippy::arithmetic_side_effects)]

use std::sync::OnceLock;

use rusty_crypto::PublicKey;
use rusty_shared_types::{
    script::{op, MAX_SCRIPT_SIZE},
    transaction::{
        LOCKTIME_THRESHOLD, SEQUENCE_FINAL, SEQUENCE_LOCKTIME_DISABLE_FLAG, SEQUENCE_LOCKTIME_MASK,
    },
    Domain, Hash256, Script, Transaction, TxIn, TxOut,
};
use sha2::{Digest, Sha256};

use crate::{
    instruction::{instructions, opcode_name, Instruction},
    num::{self, MAX_LOCKTIME_NUM_LEN, MAX_NUM_LEN},
    sighash::{parse_signature, SighashCache, SighashType},
    Result, ScriptError, SignatureChecker,
};

/// Most non-push opcodes in one script (Bitcoin's limit). Bounds evaluation time and
/// the number of signature checks per script.
pub const MAX_OPS_PER_SCRIPT: usize = 201;

/// Most elements on the stack at any time (Bitcoin's limit for stack plus altstack;
/// FerrisScript has no altstack).
pub const MAX_STACK_SIZE: usize = 1000;

/// Everything the scripts of one input can see: the transaction, the input's index and
/// the spent outputs, all through the transaction's [`SighashCache`].
#[derive(Debug, Clone, Copy)]
pub struct InputContext<'a> {
    sighashes: &'a SighashCache<'a>,
    input_index: usize,
}

impl<'a> InputContext<'a> {
    /// The context of input `input_index` of the cache's transaction.
    pub fn new(sighashes: &'a SighashCache<'a>, input_index: usize) -> Result<Self> {
        let inputs = sighashes.tx().inputs.len();
        if input_index >= inputs {
            return Err(ScriptError::InputIndexOutOfRange {
                index: input_index,
                inputs,
            });
        }
        Ok(InputContext {
            sighashes,
            input_index,
        })
    }

    pub fn tx(&self) -> &'a Transaction {
        self.sighashes.tx()
    }

    pub fn input_index(&self) -> usize {
        self.input_index
    }

    pub fn sighashes(&self) -> &'a SighashCache<'a> {
        self.sighashes
    }

    /// The input being verified.
    pub fn input(&self) -> &'a TxIn {
        // `new` checked the index, and `SighashCache::new` that `spent` is as long.
        &self.tx().inputs[self.input_index]
    }

    /// The output this input spends, whose lock script must be satisfied.
    pub fn spent_output(&self) -> &'a TxOut {
        &self.sighashes.spent()[self.input_index]
    }
}

/// Verifies one input: its unlock script followed by the spent output's lock script.
///
/// Signatures go to `checker`; with a [`DeferredChecker`](crate::DeferredChecker) an
/// `Ok` only means "valid if every collected signature is".
pub fn verify_input(ctx: &InputContext<'_>, checker: &mut dyn SignatureChecker) -> Result<()> {
    let mut vm = Interpreter {
        ctx,
        checker,
        // A P2PKH spend peaks at four elements; anything bigger grows once or twice.
        stack: Vec::with_capacity(8),
        sighashes: [None; SighashType::ALL_TYPES.len()],
    };
    vm.run(ctx.input().unlock.as_bytes(), ScriptRole::Unlock)?;
    vm.run(ctx.spent_output().lock.as_bytes(), ScriptRole::Lock)?;
    match vm.stack.as_slice() {
        [] => Err(ScriptError::EvalFalse),
        [only] if num::is_true(only.bytes()) => Ok(()),
        [.., top] if !num::is_true(top.bytes()) => Err(ScriptError::EvalFalse),
        many => Err(ScriptError::CleanStack(many.len())),
    }
}

/// Signature-checking opcodes in `script`, counted statically (also in branches that
/// may not run); block limits on signature checks use this. Counting stops at a
/// malformed push, after which the script cannot run anyway.
pub fn count_sigops(script: &Script) -> usize {
    instructions(script.as_bytes())
        .map_while(|ins| ins.ok())
        .filter(|ins| {
            matches!(
                ins,
                Instruction::Op(op::OP_CHECKSIG | op::OP_CHECKSIGVERIFY | op::OP_CHECKSIGADD)
            )
        })
        .count()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScriptRole {
    Unlock,
    Lock,
}

/// A stack element. Pushed data is borrowed from the script and computed values
/// (hashes, numbers, booleans, all at most 32 bytes) live inline, so evaluation
/// allocates nothing beyond the stack itself and `DUP` is a copy of 40 bytes.
#[derive(Debug, Clone, Copy)]
enum Elem<'a> {
    Borrowed(&'a [u8]),
    Inline { len: u8, buf: [u8; 32] },
}

impl Elem<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Elem::Borrowed(b) => b,
            Elem::Inline { len, buf } => &buf[..usize::from(*len)],
        }
    }

    fn hash(digest: [u8; 32]) -> Self {
        Elem::Inline {
            len: 32,
            buf: digest,
        }
    }

    fn bool(value: bool) -> Self {
        Self::num(i64::from(value))
    }

    fn num(n: i64) -> Self {
        let (enc, len) = num::encode(n);
        let mut buf = [0u8; 32];
        buf[..len].copy_from_slice(&enc[..len]);
        // `encode` returns at most 9 bytes.
        Elem::Inline {
            len: len as u8,
            buf,
        }
    }
}

/// Open `IF`s of one script without a vector (Bitcoin's `ConditionStack`): only the
/// depth and the position of the outermost false branch matter.
#[derive(Debug, Default)]
struct Conditions {
    depth: usize,
    first_false: Option<usize>,
}

impl Conditions {
    fn executing(&self) -> bool {
        self.first_false.is_none()
    }

    fn open(&mut self, taken: bool) {
        if !taken && self.first_false.is_none() {
            self.first_false = Some(self.depth);
        }
        // Depth is bounded by the opcode limit.
        self.depth = self.depth.saturating_add(1);
    }

    fn flip(&mut self) -> Result<()> {
        let top = self
            .depth
            .checked_sub(1)
            .ok_or(ScriptError::UnbalancedConditional)?;
        match self.first_false {
            None => self.first_false = Some(top),
            Some(pos) if pos == top => self.first_false = None,
            // An outer branch is false: this one stays skipped either way.
            Some(_) => {}
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.depth = self
            .depth
            .checked_sub(1)
            .ok_or(ScriptError::UnbalancedConditional)?;
        if self.first_false == Some(self.depth) {
            self.first_false = None;
        }
        Ok(())
    }
}

struct Interpreter<'a, 'c> {
    ctx: &'c InputContext<'a>,
    checker: &'c mut dyn SignatureChecker,
    stack: Vec<Elem<'a>>,
    /// Each sighash type is hashed at most once per input, however many keys sign.
    sighashes: [Option<Hash256>; SighashType::ALL_TYPES.len()],
}

impl<'a> Interpreter<'a, '_> {
    fn run(&mut self, script: &'a [u8], role: ScriptRole) -> Result<()> {
        if script.len() > MAX_SCRIPT_SIZE {
            return Err(ScriptError::ScriptTooLarge {
                size: script.len(),
                max: MAX_SCRIPT_SIZE,
            });
        }
        let mut ops = 0usize;
        let mut cond = Conditions::default();
        for ins in instructions(script) {
            let code = match ins? {
                Instruction::Push(data) => {
                    if cond.executing() {
                        self.push(Elem::Borrowed(data))?;
                    }
                    continue;
                }
                Instruction::Op(code) if (op::OP_1..=op::OP_16).contains(&code) => {
                    if cond.executing() {
                        self.push(Elem::num(i64::from(
                            code.wrapping_sub(op::OP_1).wrapping_add(1),
                        )))?;
                    }
                    continue;
                }
                Instruction::Op(code) => code,
            };
            if role == ScriptRole::Unlock {
                return Err(ScriptError::UnlockNotPushOnly(code));
            }
            ops = ops.saturating_add(1);
            if ops > MAX_OPS_PER_SCRIPT {
                return Err(ScriptError::TooManyOps);
            }
            if opcode_name(code).is_none() {
                return Err(ScriptError::UnknownOpcode(code));
            }
            match code {
                op::OP_IF | op::OP_NOTIF => {
                    let taken = if cond.executing() {
                        let arg = self.pop(code)?;
                        let truth = match arg.bytes() {
                            [] => false,
                            [1] => true,
                            _ => return Err(ScriptError::NonMinimalIf),
                        };
                        truth == (code == op::OP_IF)
                    } else {
                        false
                    };
                    cond.open(taken);
                }
                op::OP_ELSE => cond.flip()?,
                op::OP_ENDIF => cond.close()?,
                _ if !cond.executing() => {}
                _ => self.execute(code)?,
            }
        }
        if cond.depth != 0 {
            return Err(ScriptError::UnbalancedConditional);
        }
        Ok(())
    }

    fn push(&mut self, elem: Elem<'a>) -> Result<()> {
        if self.stack.len() >= MAX_STACK_SIZE {
            return Err(ScriptError::StackOverflow);
        }
        self.stack.push(elem);
        Ok(())
    }

    fn pop(&mut self, code: u8) -> Result<Elem<'a>> {
        self.stack.pop().ok_or(ScriptError::StackUnderflow(code))
    }

    fn top(&self, code: u8) -> Result<&Elem<'a>> {
        self.stack.last().ok_or(ScriptError::StackUnderflow(code))
    }

    fn pop_num(&mut self, code: u8) -> Result<i64> {
        num::decode(self.pop(code)?.bytes(), MAX_NUM_LEN)
    }

    /// Runs one non-push, non-conditional opcode in an executing branch.
    fn execute(&mut self, code: u8) -> Result<()> {
        match code {
            op::OP_VERIFY => {
                if !num::is_true(self.pop(code)?.bytes()) {
                    return Err(ScriptError::VerifyFailed);
                }
            }
            op::OP_RETURN => return Err(ScriptError::OpReturn),
            op::OP_DROP => {
                self.pop(code)?;
            }
            op::OP_DUP => {
                let top = *self.top(code)?;
                self.push(top)?;
            }
            op::OP_SWAP => {
                let len = self.stack.len();
                let below = len
                    .checked_sub(2)
                    .ok_or(ScriptError::StackUnderflow(code))?;
                self.stack.swap(below, len.saturating_sub(1));
            }
            op::OP_SIZE => {
                // Elements are at most 520 bytes.
                let size = self.top(code)?.bytes().len() as i64;
                self.push(Elem::num(size))?;
            }
            op::OP_EQUAL | op::OP_EQUALVERIFY => {
                let b = self.pop(code)?;
                let a = self.pop(code)?;
                let equal = a.bytes() == b.bytes();
                if code == op::OP_EQUAL {
                    self.push(Elem::bool(equal))?;
                } else if !equal {
                    return Err(ScriptError::EqualVerifyFailed);
                }
            }
            op::OP_NUMEQUAL | op::OP_NUMEQUALVERIFY => {
                let b = self.pop_num(code)?;
                let a = self.pop_num(code)?;
                if code == op::OP_NUMEQUAL {
                    self.push(Elem::bool(a == b))?;
                } else if a != b {
                    return Err(ScriptError::NumEqualVerifyFailed);
                }
            }
            op::OP_SHA256 => {
                let digest = Sha256::digest(self.pop(code)?.bytes());
                self.push(Elem::hash(digest.into()))?;
            }
            op::OP_BLAKE3 => {
                let digest = blake3::hash(self.pop(code)?.bytes());
                self.push(Elem::hash(*digest.as_bytes()))?;
            }
            op::OP_PUBKEYHASH => {
                let digest = pubkey_hash(self.pop(code)?.bytes());
                self.push(Elem::hash(digest))?;
            }
            op::OP_CHECKSIG | op::OP_CHECKSIGVERIFY => {
                let pk = self.pop(code)?;
                let sig = self.pop(code)?;
                let ok = self.check_sig(sig.bytes(), pk.bytes())?;
                if code == op::OP_CHECKSIG {
                    self.push(Elem::bool(ok))?;
                } else if !ok {
                    return Err(ScriptError::CheckSigVerifyFailed);
                }
            }
            op::OP_CHECKSIGADD => {
                let pk = self.pop(code)?;
                let n = self.pop_num(code)?;
                let sig = self.pop(code)?;
                let ok = self.check_sig(sig.bytes(), pk.bytes())?;
                // `n` fits 4 bytes, so this cannot overflow; checked all the same.
                let sum = n
                    .checked_add(i64::from(ok))
                    .ok_or(ScriptError::InvalidNumber {
                        max_len: MAX_NUM_LEN,
                    })?;
                self.push(Elem::num(sum))?;
            }
            op::OP_CHECKLOCKTIMEVERIFY => {
                let arg = num::decode(self.top(code)?.bytes(), MAX_LOCKTIME_NUM_LEN)?;
                self.check_lock_time(arg)?;
            }
            op::OP_CHECKSEQUENCEVERIFY => {
                let arg = num::decode(self.top(code)?.bytes(), MAX_LOCKTIME_NUM_LEN)?;
                self.check_sequence(arg)?;
            }
            // `run` rejected unknown opcodes and handled pushes and conditionals.
            other => return Err(ScriptError::UnknownOpcode(other)),
        }
        Ok(())
    }

    /// A signature check under the NULLFAIL rule: `Ok(false)` only for an empty
    /// signature; a non-empty one is valid or an error.
    fn check_sig(&mut self, sig: &[u8], pk: &[u8]) -> Result<bool> {
        let pk: [u8; 32] = pk
            .try_into()
            .map_err(|_| ScriptError::InvalidPublicKey(pk.len()))?;
        if sig.is_empty() {
            return Ok(false);
        }
        let (sig, ty) = parse_signature(sig)?;
        let msg = self.sighash(ty)?;
        if self.checker.check(&PublicKey(pk), &msg, &sig) {
            Ok(true)
        } else {
            Err(ScriptError::SignatureCheckFailed)
        }
    }

    fn sighash(&mut self, ty: SighashType) -> Result<Hash256> {
        let slot = &mut self.sighashes[ty.slot()];
        if let Some(hash) = *slot {
            return Ok(hash);
        }
        let hash = self.ctx.sighashes().sighash(self.ctx.input_index(), ty)?;
        *slot = Some(hash);
        Ok(hash)
    }

    fn check_lock_time(&self, arg: i64) -> Result<()> {
        let required = u64::try_from(arg).map_err(|_| ScriptError::NegativeLockTime)?;
        let lock_time = self.ctx.tx().lock_time;
        let same_kind = (required < LOCKTIME_THRESHOLD) == (lock_time < LOCKTIME_THRESHOLD);
        // A final sequence would let the transaction skip its lock time altogether.
        if !same_kind || required > lock_time || self.ctx.input().sequence == SEQUENCE_FINAL {
            return Err(ScriptError::LockTimeNotSatisfied { required: arg });
        }
        Ok(())
    }

    fn check_sequence(&self, arg: i64) -> Result<()> {
        if !(0..=i64::from(SEQUENCE_LOCKTIME_MASK)).contains(&arg) {
            return Err(ScriptError::SequenceArgOutOfRange(arg));
        }
        let sequence = self.ctx.input().sequence;
        if sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG != 0
            || i64::from(sequence & SEQUENCE_LOCKTIME_MASK) < arg
        {
            return Err(ScriptError::SequenceNotSatisfied { required: arg });
        }
        Ok(())
    }
}

/// `rusty_crypto::pubkey_hash` over arbitrary bytes, with the domain key derived once
/// per process: P2PKH runs this for every input.
fn pubkey_hash(data: &[u8]) -> [u8; 32] {
    static KEYED: OnceLock<blake3::Hasher> = OnceLock::new();
    let mut h = KEYED.get_or_init(|| Domain::PubkeyHash.hasher()).clone();
    h.update(data);
    *h.finalize().as_bytes()
}
