//! Assembling scripts with canonical pushes.

use rusty_shared_types::{
    script::{op, MAX_PUSH_SIZE},
    Script,
};

use crate::num;

/// Builds a script, always choosing the minimal push encoding the interpreter
/// requires.
#[derive(Debug, Default, Clone)]
pub struct ScriptBuilder(Vec<u8>);

impl ScriptBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one opcode byte as is.
    pub fn push_opcode(mut self, code: u8) -> Self {
        self.0.push(code);
        self
    }

    /// Appends a push of `data` with the shortest encoding.
    ///
    /// # Panics
    ///
    /// If `data` is longer than [`MAX_PUSH_SIZE`]: no valid script can push it, so
    /// asking for it is a bug in the caller.
    pub fn push_slice(mut self, data: &[u8]) -> Self {
        assert!(
            data.len() <= MAX_PUSH_SIZE,
            "push of {} bytes exceeds MAX_PUSH_SIZE",
            data.len()
        );
        match data {
            [] => self.0.push(op::OP_0),
            // One-byte 1..=16 have their own opcodes; a direct push would be non-minimal.
            [n @ 1..=16] => self.0.push(op::OP_1.wrapping_add(*n).wrapping_sub(1)),
            _ => {
                // The assertion above bounds the length by 520, so these casts are exact.
                let len = data.len();
                if len <= usize::from(op::OP_PUSHBYTES_MAX) {
                    self.0.push(len as u8);
                } else if len <= usize::from(u8::MAX) {
                    self.0.extend_from_slice(&[op::OP_PUSHDATA1, len as u8]);
                } else {
                    self.0.push(op::OP_PUSHDATA2);
                    self.0.extend_from_slice(&(len as u16).to_le_bytes());
                }
                self.0.extend_from_slice(data);
            }
        }
        self
    }

    /// Appends the number `n` as a script number (`OP_0`, `OP_1`..`OP_16`, or a push).
    pub fn push_int(self, n: i64) -> Self {
        let (buf, len) = num::encode(n);
        self.push_slice(&buf[..len])
    }

    pub fn into_script(self) -> Script {
        Script::new(self.0)
    }

    /// The bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::instruction::{instructions, Instruction};

    #[test]
    fn pushes_are_minimal_and_parse_back() {
        for len in [0usize, 1, 2, 75, 76, 255, 256, 520] {
            for fill in [0u8, 1, 16, 17, 0x81] {
                let data = vec![fill; len];
                let script = ScriptBuilder::new().push_slice(&data).into_script();
                let parsed: Vec<_> = instructions(script.as_bytes())
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(parsed.len(), 1);
                match parsed[0] {
                    Instruction::Push(d) => assert_eq!(d, &data[..]),
                    Instruction::Op(code) => {
                        assert_eq!(len, 1);
                        assert_eq!(code, op::OP_1 + fill - 1);
                    }
                }
            }
        }
    }

    #[test]
    fn small_ints_use_their_opcodes() {
        let s = ScriptBuilder::new()
            .push_int(0)
            .push_int(1)
            .push_int(16)
            .push_int(17)
            .push_int(-1)
            .into_script();
        assert_eq!(
            s.as_bytes(),
            [op::OP_0, op::OP_1, op::OP_16, 1, 17, 1, 0x81]
        );
    }
}
