//! Properties over random scripts and random transactions.

use super::*;

/// Bytes biased towards real opcodes, so random scripts get past the first byte.
fn script_bytes() -> impl Strategy<Value = Vec<u8>> {
    let known = prop::sample::select(vec![
        op::OP_0,
        1,
        2,
        32,
        op::OP_PUSHDATA1,
        op::OP_1,
        op_n(2),
        op::OP_16,
        op::OP_IF,
        op::OP_NOTIF,
        op::OP_ELSE,
        op::OP_ENDIF,
        op::OP_VERIFY,
        op::OP_DROP,
        op::OP_DUP,
        op::OP_SWAP,
        op::OP_SIZE,
        op::OP_EQUAL,
        op::OP_EQUALVERIFY,
        op::OP_NUMEQUAL,
        op::OP_NUMEQUALVERIFY,
        op::OP_SHA256,
        op::OP_PUBKEYHASH,
        op::OP_BLAKE3,
        op::OP_CHECKSIG,
        op::OP_CHECKSIGVERIFY,
        op::OP_CHECKLOCKTIMEVERIFY,
        op::OP_CHECKSEQUENCEVERIFY,
        op::OP_CHECKSIGADD,
    ]);
    vec(prop_oneof![any::<u8>(), known], 0..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary scripts never panic, and both checkers agree on them.
    #[test]
    fn random_scripts_never_panic(
        unlock in script_bytes(),
        lock in script_bytes(),
        raw_unlock in vec(any::<u8>(), 0..64),
        raw_lock in vec(any::<u8>(), 0..64),
        sequence: u32,
        lock_time: u64,
    ) {
        // Biased scripts, raw bytes, and a lock script run on an empty stack.
        let cases = [(unlock, lock.clone()), (raw_unlock, raw_lock), (vec![], lock)];
        for (u, l) in cases {
            let mut s = Spend::raw(u, l);
            s.tx.inputs[0].sequence = sequence;
            s.tx.lock_time = lock_time;
            let _ = s.verify(0);
            let _ = disassemble(&s.spent[0].lock);
            let _ = classify(&s.spent[0].lock);
            let _ = count_sigops(&s.spent[0].lock);
        }
    }

    /// Any transaction whose inputs all spend P2PKH outputs verifies once signed.
    #[test]
    fn random_p2pkh_spends_verify(
        mut tx in arbitrary::transaction(),
        seeds in vec(any::<[u8; 32]>(), 5),
        amounts in vec(arbitrary::amount(), 5),
    ) {
        if tx.inputs.is_empty() {
            tx.inputs.push(TxIn {
                prevout: OutPoint::new(Hash256([1; 32]), 0),
                unlock: Script::default(),
                sequence: SEQUENCE_FINAL,
            });
        }
        let keys: Vec<_> = seeds.into_iter().map(SecretKey::from_bytes).collect();
        let spent: Vec<_> = (0..tx.inputs.len())
            .map(|i| TxOut { value: amounts[i], lock: Script::p2pkh(&pkh(&keys[i])) })
            .collect();
        sign_p2pkh(&mut tx, &spent, |h| keys.iter().find(|k| pkh(k) == *h).cloned()).unwrap();
        let s = Spend { tx, spent };
        prop_assert_eq!(s.verify_all(), Ok(()));
    }
}
