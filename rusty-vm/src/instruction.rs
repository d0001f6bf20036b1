//! Splitting script bytes into instructions, with the push rules enforced.
//!
//! Every push is checked as it is read, whether or not its branch will execute:
//! it must fit [`MAX_PUSH_SIZE`], lie within the script, and use the shortest
//! encoding (`OP_0` for empty, `OP_1`..`OP_16` for the one-byte values 1..16, a direct
//! push up to 75 bytes, `PUSHDATA1` up to 255, `PUSHDATA2` beyond). One canonical
//! encoding per script means nobody can re-encode someone else's unlock script to
//! change its wtxid.
#![deny(clippy::arithmetic_side_effects)]

use std::fmt::Write as _;

use rusty_shared_types::{
    script::{op, MAX_PUSH_SIZE},
    Script,
};

use crate::{Result, ScriptError};

/// One step of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instruction<'a> {
    /// Data pushed by `OP_0`, a direct push, `PUSHDATA1` or `PUSHDATA2`; borrowed
    /// from the script.
    Push(&'a [u8]),
    /// Any other byte, including `OP_1`..`OP_16` and unknown opcodes.
    Op(u8),
}

impl Instruction<'_> {
    /// Pushes and `OP_1`..`OP_16` are the only instructions an unlock script may hold;
    /// they are also the ones that do not count towards the opcode limit.
    pub fn is_push(&self) -> bool {
        match *self {
            Instruction::Push(_) => true,
            Instruction::Op(code) => (op::OP_1..=op::OP_16).contains(&code),
        }
    }
}

/// Iterator over a script's instructions; yields one error and then stops.
#[derive(Debug, Clone)]
pub struct Instructions<'a> {
    rest: &'a [u8],
}

/// The instructions of `script`.
pub fn instructions(script: &[u8]) -> Instructions<'_> {
    Instructions { rest: script }
}

impl<'a> Instructions<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(ScriptError::TruncatedPush);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn next_inner(&mut self, code: u8) -> Result<Instruction<'a>> {
        let (len, shortest_allowed) = match code {
            op::OP_0 => return Ok(Instruction::Push(&[])),
            1..=op::OP_PUSHBYTES_MAX => (usize::from(code), 1),
            op::OP_PUSHDATA1 => (usize::from(self.take(1)?[0]), 76),
            op::OP_PUSHDATA2 => {
                let b = self.take(2)?;
                (usize::from(u16::from_le_bytes([b[0], b[1]])), 256)
            }
            _ => return Ok(Instruction::Op(code)),
        };
        if len > MAX_PUSH_SIZE {
            return Err(ScriptError::PushTooLarge {
                size: len,
                max: MAX_PUSH_SIZE,
            });
        }
        let data = self.take(len)?;
        let small_number = len == 1 && (1..=16).contains(&data[0]);
        if len < shortest_allowed || small_number {
            return Err(ScriptError::NonMinimalPush { size: len });
        }
        Ok(Instruction::Push(data))
    }
}

impl<'a> Iterator for Instructions<'a> {
    type Item = Result<Instruction<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&code, tail) = self.rest.split_first()?;
        self.rest = tail;
        let item = self.next_inner(code);
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

/// The name of a FerrisScript opcode, or `None` for push-data bytes and unknown
/// opcodes.
pub fn opcode_name(code: u8) -> Option<&'static str> {
    Some(match code {
        op::OP_0 => "OP_0",
        op::OP_PUSHDATA1 => "OP_PUSHDATA1",
        op::OP_PUSHDATA2 => "OP_PUSHDATA2",
        op::OP_IF => "OP_IF",
        op::OP_NOTIF => "OP_NOTIF",
        op::OP_ELSE => "OP_ELSE",
        op::OP_ENDIF => "OP_ENDIF",
        op::OP_VERIFY => "OP_VERIFY",
        op::OP_RETURN => "OP_RETURN",
        op::OP_DROP => "OP_DROP",
        op::OP_DUP => "OP_DUP",
        op::OP_SWAP => "OP_SWAP",
        op::OP_SIZE => "OP_SIZE",
        op::OP_EQUAL => "OP_EQUAL",
        op::OP_EQUALVERIFY => "OP_EQUALVERIFY",
        op::OP_NUMEQUAL => "OP_NUMEQUAL",
        op::OP_NUMEQUALVERIFY => "OP_NUMEQUALVERIFY",
        op::OP_SHA256 => "OP_SHA256",
        op::OP_PUBKEYHASH => "OP_PUBKEYHASH",
        op::OP_BLAKE3 => "OP_BLAKE3",
        op::OP_CHECKSIG => "OP_CHECKSIG",
        op::OP_CHECKSIGVERIFY => "OP_CHECKSIGVERIFY",
        op::OP_CHECKLOCKTIMEVERIFY => "OP_CHECKLOCKTIMEVERIFY",
        op::OP_CHECKSEQUENCEVERIFY => "OP_CHECKSEQUENCEVERIFY",
        op::OP_CHECKSIGADD => "OP_CHECKSIGADD",
        _ => return None,
    })
}

/// Human-readable form of a script (Bitcoin's "asm"): pushes as hex, `OP_1`..`OP_16`
/// as numbers, other opcodes by name, unknown ones as `OP_UNKNOWN<0x..>`. A malformed
/// push ends the text with `[error]`.
pub fn disassemble(script: &Script) -> String {
    let mut out = String::new();
    for ins in instructions(script.as_bytes()) {
        if !out.is_empty() {
            out.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = match ins {
            Ok(Instruction::Push([])) => write!(out, "0"),
            Ok(Instruction::Push(data)) => data.iter().try_for_each(|b| write!(out, "{b:02x}")),
            Ok(Instruction::Op(code)) if (op::OP_1..=op::OP_16).contains(&code) => {
                write!(out, "{}", code.saturating_sub(op::OP_1).saturating_add(1))
            }
            Ok(Instruction::Op(code)) => match opcode_name(code) {
                Some(name) => write!(out, "{name}"),
                None => write!(out, "OP_UNKNOWN<{code:#04x}>"),
            },
            Err(_) => write!(out, "[error]"),
        };
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Vec<Instruction<'_>>> {
        instructions(bytes).collect()
    }

    #[test]
    fn minimal_pushes_accepted() {
        assert_eq!(parse(&[0]).unwrap(), [Instruction::Push(&[])]);
        assert_eq!(parse(&[1, 0]).unwrap(), [Instruction::Push(&[0])]);
        assert_eq!(parse(&[1, 17]).unwrap(), [Instruction::Push(&[17])]);
        let mut s = vec![op::OP_PUSHDATA1, 76];
        s.extend_from_slice(&[7; 76]);
        assert_eq!(parse(&s).unwrap(), [Instruction::Push(&[7; 76])]);
        let mut s = vec![op::OP_PUSHDATA2, 0, 1];
        s.extend_from_slice(&[7; 256]);
        assert_eq!(parse(&s).unwrap(), [Instruction::Push(&[7; 256])]);
    }

    #[test]
    fn non_minimal_pushes_rejected() {
        let non_minimal =
            |bytes: &[u8]| matches!(parse(bytes), Err(ScriptError::NonMinimalPush { .. }));
        // One-byte 1..16 must be OP_1..OP_16.
        assert!(non_minimal(&[1, 5]));
        assert!(non_minimal(&[1, 16]));
        // Empty must be OP_0.
        assert!(non_minimal(&[op::OP_PUSHDATA1, 0]));
        let mut s = vec![op::OP_PUSHDATA1, 75];
        s.extend_from_slice(&[7; 75]);
        assert!(non_minimal(&s));
        let mut s = vec![op::OP_PUSHDATA2, 255, 0];
        s.extend_from_slice(&[7; 255]);
        assert!(non_minimal(&s));
    }

    #[test]
    fn oversize_and_truncated_rejected() {
        let mut s = vec![op::OP_PUSHDATA2, 0x09, 0x02];
        s.extend_from_slice(&[7; 521]);
        assert_eq!(
            parse(&s),
            Err(ScriptError::PushTooLarge {
                size: 521,
                max: 520
            })
        );
        assert_eq!(parse(&[3, 1, 2]), Err(ScriptError::TruncatedPush));
        assert_eq!(
            parse(&[op::OP_PUSHDATA2, 1]),
            Err(ScriptError::TruncatedPush)
        );
        // The iterator stops after the error.
        let mut it = instructions(&[3, 1]);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn disassembles() {
        let s = Script::p2pkh(&rusty_shared_types::Hash256([0xab; 32]));
        assert_eq!(
            disassemble(&s),
            format!(
                "OP_DUP OP_PUBKEYHASH {} OP_EQUALVERIFY OP_CHECKSIG",
                "ab".repeat(32)
            )
        );
        let s = Script::new(vec![0, op::OP_1, op::OP_16, 0xff, 2, 0xbe, 0xef, 3]);
        assert_eq!(disassemble(&s), "0 1 16 OP_UNKNOWN<0xff> beef [error]");
    }
}
